#!/usr/bin/env python3
"""Self-test of the moto harness: start a moto_server, build every scenario with --auth, check
with the printed read-only keys (SigV4-signed boto3 calls) that the topology is what the
scenario promises and that auth is really on, then stop the server.

    python3 tests/cloud/selftest.py [--endpoint URL] [--scenario NAME ...] [--venv DIR]

Without --endpoint it starts (and always stops) its own server through moto_server.py.
Ends with the line `N passed, N failed`; exit status 1 if anything failed.
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, HERE)
import moto_venv  # noqa: E402

try:
    import boto3
    from botocore.exceptions import ClientError
except ImportError:
    _ap = argparse.ArgumentParser(add_help=False)
    _ap.add_argument("--venv")
    moto_venv.reexec_in_venv(_ap.parse_known_args()[0].venv)

import moto_scenarios  # noqa: E402


def clients(out, secret=None):
    kw = dict(region_name=out["region"], endpoint_url=out["endpoint"],
              aws_access_key_id=out["access_key_id"],
              aws_secret_access_key=secret or out["secret_access_key"])
    return boto3.client("ec2", **kw), boto3.client("elbv2", **kw)


def error_code(fn):
    try:
        fn()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


def routes(ec2, rtb):
    return ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]


def ingress(ec2, sg):
    return ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]["IpPermissions"]


def has_rule(perms, proto, port=None, self_sg=None):
    for p in perms:
        if p["IpProtocol"] != proto:
            continue
        if port is not None and not (p.get("FromPort", -1) <= port <= p.get("ToPort", -1)):
            continue
        if self_sg and not any(g["GroupId"] == self_sg for g in p.get("UserIdGroupPairs", [])):
            continue
        return True
    return False


def eni_sdc(ec2, out):
    enis = [n["eni_id"] for n in out["nodes"].values()]
    return {e["NetworkInterfaceId"]: e["SourceDestCheck"]
            for e in ec2.describe_network_interfaces(NetworkInterfaceIds=enis)["NetworkInterfaces"]}


def pod_routes(ec2, out):
    return {r["DestinationCidrBlock"]: r.get("NetworkInterfaceId") for r in routes(ec2, out["ids"]["rtb"])
            if r.get("DestinationCidrBlock", "").startswith("10.244.")}


def check(name, out):
    ec2, elb = clients(out)
    ids = out["ids"]
    failures = []

    def expect(cond, what):
        if not cond:
            failures.append(what)

    # auth is on and the keys are the read-only identity
    expect(out["auth"] is True, "auth is on")
    res = ec2.describe_instances()["Reservations"]
    got = {i["PrivateIpAddress"]: i for r in res for i in r["Instances"]}
    expect(len(got) == 3, "3 instances described with the printed keys")
    for node, n in out["nodes"].items():
        i = got.get(n["ip"])
        expect(i is not None and i["InstanceId"] == n["instance_id"], f"{node} is {n['instance_id']} at {n['ip']}")
    bad, _ = clients(out, secret="x" + out["secret_access_key"][1:])
    expect(error_code(bad.describe_instances) == "AuthFailure", "wrong secret -> AuthFailure")
    expect(error_code(lambda: ec2.create_vpc(CidrBlock="10.9.0.0/16")) == "AccessDenied",
           "CreateVpc -> AccessDenied for the read-only user")
    expect(error_code(elb.describe_load_balancers) is None, "elasticloadbalancing:Describe* allowed")
    expect(error_code(lambda: ec2.get_managed_prefix_list_entries(PrefixListId="pl-63a5400a")) != "AccessDenied",
           "ec2:GetManagedPrefixListEntries allowed")

    perms = ingress(ec2, ids["sg_node"])
    rt = routes(ec2, ids["rtb"])
    default_route = [r for r in rt if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
    if name in ("healthy", "no-egress-route", "pod-cidr-routes", "no-route-to-pod-cidr", "source-dest-check-on"):
        expect(has_rule(perms, "-1", self_sg=ids["sg_node"]), "SG allows all from itself")
    if name == "healthy":
        expect(default_route and default_route[0].get("GatewayId") == ids["igw"], "0.0.0.0/0 -> IGW")
        expect(all(n["public_ip"] for n in out["nodes"].values()), "public IPs")
    if name == "sg-blocks-vxlan":
        expect(not has_rule(perms, "udp", 8472) and not has_rule(perms, "-1"), "no UDP 8472 ingress")
        expect(has_rule(perms, "tcp", 22) and has_rule(perms, "tcp", 10250), "TCP 22 and 10250 allowed")
    if name == "sg-by-group-reference":
        expect(has_rule(perms, "udp", 8472, self_sg=ids["sg_node"]), "UDP 8472 from self")
        expect(has_rule(perms, "tcp", 8080, self_sg=ids["sg_node"]), "TCP 8080 from self")
        expect(not any(p.get("IpRanges") for p in perms), "no CIDR sources")
    if name in ("nacl-denies-ephemeral", "nacl-implicit-deny"):
        acl = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id",
                                                  "Values": [ids["subnet_b"]]}])["NetworkAcls"]
        expect(len(acl) == 1 and acl[0]["NetworkAclId"] == ids["nacl"], "subnet_b uses the custom NACL")
        entries = acl[0]["Entries"] if acl else []
        deny = [e for e in entries if e["RuleAction"] == "deny" and not e["Egress"]]
        allow = {(e["Protocol"], e["PortRange"]["From"]) for e in entries
                 if e["RuleAction"] == "allow" and not e["Egress"] and "PortRange" in e}
        expect(allow == {("17", 8472), ("6", 8080), ("6", 22)}, f"inbound allows UDP 8472, TCP 8080, 22 ({allow})")
        if name == "nacl-denies-ephemeral":
            expect(any(e["RuleNumber"] == 200 and e["PortRange"] == {"From": 1024, "To": 65535} for e in deny),
                   "inbound deny TCP 1024-65535 at rule 200")
        else:
            expect(not deny and len(entries) == 4, "only the 3 inbound allows and the egress allow (no * entries)")
        expect(out["nodes"]["node-3"]["subnet_id"] == ids["subnet_b"], "node-3 in subnet_b")
        a = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [ids["subnet"]]}])
        expect(a["NetworkAcls"][0]["NetworkAclId"] == ids["nacl_default"], "subnet keeps the default NACL")
    if name == "no-route-to-pod-cidr":
        expect(not pod_routes(ec2, out), "no pod CIDR routes")
        expect(not any(eni_sdc(ec2, out).values()), "ENI source/dest check off")
    if name in ("pod-cidr-routes", "source-dest-check-on"):
        pr = pod_routes(ec2, out)
        expect(pr == {n["pod_cidr"]: n["eni_id"] for n in out["nodes"].values()}, "pod CIDR -> node ENI routes")
        sdc = eni_sdc(ec2, out)
        attr = [ec2.describe_instance_attribute(InstanceId=n["instance_id"], Attribute="sourceDestCheck")
                ["SourceDestCheck"]["Value"] for n in out["nodes"].values()]
        want = name == "source-dest-check-on"
        expect(all(v == want for v in sdc.values()), f"ENI source/dest check {want}")
        expect(all(v == want for v in attr), f"instance source/dest check {want}")
    if name == "no-egress-route":
        expect(not default_route, "no 0.0.0.0/0 route")
    if name == "nat-egress":
        expect(default_route and default_route[0].get("NatGatewayId") == ids["nat"], "0.0.0.0/0 -> NAT")
        nat = ec2.describe_nat_gateways(NatGatewayIds=[ids["nat"]])["NatGateways"][0]
        expect(nat["State"] == "available", "NAT available")
        pub = routes(ec2, ids["rtb_public"])
        expect(any(r.get("GatewayId") == ids["igw"] for r in pub), "public subnet -> IGW")
        expect(not any(n["public_ip"] for n in out["nodes"].values()), "no public IPs")
        assoc = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [ids["subnet"]]}])
        expect(assoc["RouteTables"][0]["RouteTableId"] == ids["rtb_private"], "node subnet -> private rtb")
    if name.startswith("elb-"):
        lb = elb.describe_load_balancers(LoadBalancerArns=[ids["lb_arn"]])["LoadBalancers"][0]
        expect(lb["State"]["Code"] == "active" and lb["Type"] == "network", "NLB active")
        ls = elb.describe_listeners(LoadBalancerArn=ids["lb_arn"])["Listeners"]
        ports = [lst["Port"] for lst in ls]
        expect(ports == [443] if name == "elb-listener-missing" else ports == [80], f"listener ports {ports}")
        th = {d["Target"]["Id"]: d["TargetHealth"]
              for d in elb.describe_target_health(TargetGroupArn=ids["tg_arn"])["TargetHealthDescriptions"]}
        n3 = out["nodes"]["node-3"]["instance_id"]
        for node, n in out["nodes"].items():
            h = th.get(n["instance_id"], {})
            if name == "elb-target-unused" and n["instance_id"] == n3:
                expect(h.get("State") == "unused" and h.get("Reason") == "Target.InvalidState",
                       f"{node} unused/Target.InvalidState (got {h})")
            else:
                expect(h.get("State") == "healthy", f"{node} healthy (got {h})")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint")
    ap.add_argument("--scenario", nargs="*")
    ap.add_argument("--venv")
    args = ap.parse_args()
    names = args.scenario or list(moto_scenarios.SCENARIOS)
    server = None
    passed = failed = 0
    try:
        endpoint = args.endpoint
        if not endpoint:
            cmd = [sys.executable, os.path.join(HERE, "moto_server.py"), "start"]
            if args.venv:
                cmd += ["--venv", args.venv]
            server = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            endpoint = server["endpoint"]
            print(f"moto_server pid {server['pid']} at {endpoint}, ready in {server['startup_seconds']} s")
        for name in names:
            t = time.monotonic()
            try:
                out = moto_scenarios.run(endpoint, name, auth=True, seed=42)
                failures = check(name, out)
            except Exception as e:
                failures = [f"{type(e).__name__}: {e}"]
            took = time.monotonic() - t
            if failures:
                failed += 1
                print(f"FAIL {name} ({took:.2f} s): " + "; ".join(failures))
            else:
                passed += 1
                print(f"ok   {name} ({took:.2f} s)")
    finally:
        if server:
            r = subprocess.run([sys.executable, os.path.join(HERE, "moto_server.py"), "stop", str(server["pid"])],
                               capture_output=True, text=True)
            if r.returncode != 0:
                print(r.stderr.strip())
                failed += 1
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
