#!/usr/bin/env python3
"""Regenerate tests/cloud/fixtures/: real moto XML responses, captured from seeded scenarios
and then edited into states moto cannot produce (see fixtures/README.md).

    python3 tests/cloud/capture_fixtures.py [--endpoint URL] [--out DIR] [--venv DIR]

Without --endpoint it starts (and stops) its own moto_server. Each fixture is the raw body
botocore received (hooked at `before-parse`), edited by exact string replacement (each edit
must match exactly once), then parsed with botocore's own parser against the service model
to prove the shape is still valid and the edited value is read back. Writes manifest.json
beside the fixtures: for each file the scenario + seed it came from (run that scenario with
the same seed and moto's IDs match the fixture), the request, and the edit.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, HERE)
import moto_venv  # noqa: E402

try:
    import boto3
    from botocore import parsers
except ImportError:
    _ap = argparse.ArgumentParser(add_help=False)
    _ap.add_argument("--venv")
    moto_venv.reexec_in_venv(_ap.parse_known_args()[0].venv)

import moto_scenarios  # noqa: E402

SEED = 42


class Capture:
    def __init__(self, endpoint):
        kw = dict(region_name=moto_scenarios.REGION, endpoint_url=endpoint,
                  aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x")
        self.ec2 = boto3.client("ec2", **kw)
        self.elb = boto3.client("elbv2", **kw)
        self.bodies = {}
        for c in (self.ec2, self.elb):
            c.meta.events.register("before-parse", self._hook)

    def _hook(self, operation_model, response_dict, **_):
        self.bodies[operation_model.name] = response_dict["body"].decode()

    def call(self, client, op, **params):
        getattr(client, op)(**params)
        model = client.meta.service_model.operation_model(
            client.meta.method_to_api_mapping[op])
        return self.bodies[model.name]


def parse(client, action, body):
    sm = client.meta.service_model
    p = parsers.create_parser(sm.metadata["protocol"])
    return p.parse({"body": body.encode(), "headers": {}, "status_code": 200},
                   sm.operation_model(action).output_shape)


def replace_once(body, old, new):
    n = body.count(old)
    if n != 1:
        raise SystemExit(f"capture_fixtures.py: edit expected 1 match, found {n}: {old[:120]}")
    return body.replace(old, new)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint")
    ap.add_argument("--out", default=os.path.join(HERE, "fixtures"))
    ap.add_argument("--venv")
    args = ap.parse_args()
    server = None
    endpoint = args.endpoint
    if not endpoint:
        cmd = [sys.executable, os.path.join(HERE, "moto_server.py"), "start"]
        server = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        endpoint = server["endpoint"]
    try:
        manifest = build(endpoint, args.out)
    finally:
        if server:
            subprocess.run([sys.executable, os.path.join(HERE, "moto_server.py"), "stop", str(server["pid"])],
                           check=True, capture_output=True)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    for m in manifest:
        print(f"{m['file']:48} {m['scenario']:22} {m['service']}:{m['action']}")


def build(endpoint, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    manifest = []

    def write(name, scenario, client, action, params, body, edit, check):
        parsed = parse(client, action, body)
        check(parsed)  # raises AssertionError if the edited value does not read back
        with open(os.path.join(out_dir, name), "w") as f:
            f.write(body if body.endswith("\n") else body + "\n")
        manifest.append({"file": name, "scenario": scenario, "seed": SEED,
                         "service": client.meta.service_model.endpoint_prefix, "action": action,
                         "params": params, "edit": edit})

    # (a) pod-cidr-routes: the route to node-2's pod CIDR becomes a blackhole ------------------
    out = moto_scenarios.run(endpoint, "pod-cidr-routes", auth=False, seed=SEED)
    cap = Capture(endpoint)
    ids, nodes = out["ids"], out["nodes"]
    params = {"Filters": [{"Name": "vpc-id", "Values": [ids["vpc"]]}]}
    body = cap.call(cap.ec2, "describe_route_tables", **params)
    eni2 = nodes["node-2"]["eni_id"]
    route = (f"<item><destinationCidrBlock>10.244.1.0/24</destinationCidrBlock><networkInterfaceId>{eni2}"
             "</networkInterfaceId><origin>CreateRoute</origin><state>")
    body = replace_once(body, route + "active</state>", route + "blackhole</state>")

    def chk_blackhole(p):
        r = [r for r in p["RouteTables"][0]["Routes"] if r.get("DestinationCidrBlock") == "10.244.1.0/24"]
        assert r and r[0]["State"] == "blackhole" and r[0]["NetworkInterfaceId"] == eni2, r
    write("describe_route_tables_blackhole.xml", "pod-cidr-routes", cap.ec2, "DescribeRouteTables", params, body,
          f"route 10.244.1.0/24 -> {eni2} (node-2's ENI): <state>active</state> -> <state>blackhole</state> "
          "(as AWS shows it once node-2's ENI is gone, e.g. the instance was terminated)", chk_blackhole)

    # (b) elb-healthy: node-2's target fails its health checks ---------------------------------
    out = moto_scenarios.run(endpoint, "elb-healthy", auth=False, seed=SEED)
    cap = Capture(endpoint)
    ids, nodes = out["ids"], out["nodes"]
    params = {"TargetGroupArn": ids["tg_arn"]}
    body = cap.call(cap.elb, "describe_target_health", **params)
    i2 = nodes["node-2"]["instance_id"]
    member = (f"<Target><Id>{i2}</Id><Port>30080</Port></Target><HealthCheckPort>traffic-port</HealthCheckPort>"
              "<TargetHealth>")
    body = replace_once(body, member + "<State>healthy</State>",
                        member + "<State>unhealthy</State><Reason>Target.FailedHealthChecks</Reason>"
                        "<Description>Health checks failed</Description>")

    def chk_unhealthy(p):
        th = {d["Target"]["Id"]: d["TargetHealth"] for d in p["TargetHealthDescriptions"]}
        assert th[i2] == {"State": "unhealthy", "Reason": "Target.FailedHealthChecks",
                          "Description": "Health checks failed"}, th
        assert sum(h["State"] == "healthy" for h in th.values()) == 2, th
    write("describe_target_health_unhealthy.xml", "elb-healthy", cap.elb, "DescribeTargetHealth", params, body,
          f"node-2's target {i2}:30080: State healthy -> unhealthy, added Reason Target.FailedHealthChecks "
          "and Description 'Health checks failed'", chk_unhealthy)

    # (f) elb-healthy: the NLB's requester-managed ENI, which moto never creates -----------------
    params = {"Filters": [{"Name": "vpc-id", "Values": [ids["vpc"]]}]}
    body = cap.call(cap.ec2, "describe_network_interfaces", **params)
    lb_id = ids["lb_arn"].rsplit("/", 1)[1]
    lb_eni = "eni-0e1b5f0a9c3d2e4f6"
    desc = f"ELB net/{ids['lb_name']}/{lb_id}"
    item = (
        "<item><association><ipOwnerId>amazon</ipOwnerId><publicDnsName>ec2-54-214-0-100.compute-1.amazonaws.com"
        "</publicDnsName><publicIp>54.214.0.100</publicIp></association><attachment>"
        "<attachmentId>ela-attach-0a1b2c3d4e5f60718</attachmentId><deleteOnTermination>false</deleteOnTermination>"
        "<deviceIndex>1</deviceIndex><networkCardIndex>0</networkCardIndex><instanceOwnerId>amazon-aws"
        "</instanceOwnerId><status>attached</status></attachment><availabilityZone>us-east-1a</availabilityZone>"
        f"<description>{desc}</description><groupSet/><interfaceType>network_load_balancer</interfaceType>"
        "<ipv6AddressesSet/><macAddress>02:00:00:0e:1b:5f</macAddress>"
        f"<networkInterfaceId>{lb_eni}</networkInterfaceId><ownerId>{out['account_id']}</ownerId>"
        "<privateDnsName>ip-192-168-0-100.ec2.internal</privateDnsName><privateIpAddress>192.168.0.100"
        "</privateIpAddress><privateIpAddressesSet><item><association><ipOwnerId>amazon</ipOwnerId>"
        "<publicDnsName>ec2-54-214-0-100.compute-1.amazonaws.com</publicDnsName><publicIp>54.214.0.100</publicIp>"
        "</association><primary>true</primary><privateDnsName>ip-192-168-0-100.ec2.internal</privateDnsName>"
        "<privateIpAddress>192.168.0.100</privateIpAddress></item></privateIpAddressesSet>"
        "<requesterId>amazon-elb</requesterId><requesterManaged>true</requesterManaged>"
        "<sourceDestCheck>true</sourceDestCheck><status>in-use</status>"
        f"<subnetId>{ids['subnet']}</subnetId><tagSet/><vpcId>{ids['vpc']}</vpcId></item>")
    body = replace_once(body, "</networkInterfaceSet>", item + "</networkInterfaceSet>")

    def chk_lb_eni(p):
        e = [e for e in p["NetworkInterfaces"] if e["NetworkInterfaceId"] == lb_eni]
        assert e and e[0]["InterfaceType"] == "network_load_balancer" and e[0]["RequesterManaged"], e
        assert e[0]["Description"] == desc and e[0]["PrivateIpAddress"] == "192.168.0.100", e
        assert len(p["NetworkInterfaces"]) == 4
    write("describe_network_interfaces_nlb_eni.xml", "elb-healthy", cap.ec2, "DescribeNetworkInterfaces", params,
          body, f"appended the NLB's requester-managed ENI {lb_eni} (interfaceType network_load_balancer, "
          f"requesterId amazon-elb, description '{desc}', 192.168.0.100 in subnet {ids['subnet']}, "
          "public IP 54.214.0.100, no security groups) after the three node ENIs", chk_lb_eni)

    # (c) healthy: DescribeInstances in pages of 2 reservations (moto's own nextToken) ---------
    out = moto_scenarios.run(endpoint, "healthy", auth=False, seed=SEED)
    cap = Capture(endpoint)
    ids, nodes = out["ids"], out["nodes"]
    params = {"MaxResults": 2}
    body1 = cap.call(cap.ec2, "describe_instances", **params)
    p1 = parse(cap.ec2, "DescribeInstances", body1)
    token = p1["NextToken"]
    params2 = {"MaxResults": 2, "NextToken": token}
    body2 = cap.call(cap.ec2, "describe_instances", **params2)

    def chk_page1(p):
        assert p["NextToken"] == token and len(p["Reservations"]) == 2, p.get("NextToken")

    def chk_page2(p):
        assert "NextToken" not in p and len(p["Reservations"]) == 1, p.get("NextToken")
        assert p["Reservations"][0]["Instances"][0]["InstanceId"] == nodes["node-3"]["instance_id"]
    write("describe_instances_page1.xml", "healthy", cap.ec2, "DescribeInstances", params, body1,
          f"none: moto paginates DescribeInstances by reservation; node-1 and node-2, nextToken {token}",
          chk_page1)
    write("describe_instances_page2.xml", "healthy", cap.ec2, "DescribeInstances", params2, body2,
          "none: the page after describe_instances_page1.xml; node-3, no nextToken", chk_page2)

    # (d) healthy: DescribeSecurityGroups split into two pages (moto ignores MaxResults here) ---
    params = {"Filters": [{"Name": "vpc-id", "Values": [ids["vpc"]]}], "MaxResults": 5}
    body = cap.call(cap.ec2, "describe_security_groups", **params)
    start = body.index("<securityGroupInfo>") + len("<securityGroupInfo>")
    end = body.index("</securityGroupInfo>")
    items, depth, pos, cur = [], 0, start, start
    while pos < end:  # split the top-level <item>s
        if body.startswith("<item>", pos):
            depth += 1
            pos += 6
        elif body.startswith("</item>", pos):
            depth -= 1
            pos += 7
            if depth == 0:
                items.append(body[cur:pos])
                cur = pos
        else:
            pos += 1
    assert len(items) == 2 and "<groupName>default</groupName>" in items[0], len(items)
    sg_token = "eyJza29vcCI6ICJmaXh0dXJlIHNnIHBhZ2UgMiJ9"
    head, tail = body[:start], body[end:]
    page1 = head + items[0] + tail.replace("</securityGroupInfo>", f"</securityGroupInfo><nextToken>{sg_token}</nextToken>", 1)
    page2 = head + items[1] + tail
    sg_node = ids["sg_node"]

    def chk_sg1(p):
        assert p["NextToken"] == sg_token and [g["GroupName"] for g in p["SecurityGroups"]] == ["default"]

    def chk_sg2(p):
        assert "NextToken" not in p and [g["GroupId"] for g in p["SecurityGroups"]] == [sg_node]
    write("describe_security_groups_page1.xml", "healthy", cap.ec2, "DescribeSecurityGroups", params, page1,
          f"kept only the first group (the VPC's default SG) and added <nextToken>{sg_token}</nextToken>",
          chk_sg1)
    write("describe_security_groups_page2.xml", "healthy", cap.ec2, "DescribeSecurityGroups",
          dict(params, NextToken=sg_token), page2,
          f"kept only the second group (the node SG {sg_node}); no nextToken", chk_sg2)

    # (e) nacl-implicit-deny: the custom NACL with AWS's `*` deny entries ----------------------
    out = moto_scenarios.run(endpoint, "nacl-implicit-deny", auth=False, seed=SEED)
    cap = Capture(endpoint)
    ids = out["ids"]
    params = {"Filters": [{"Name": "vpc-id", "Values": [ids["vpc"]]}]}
    body = cap.call(cap.ec2, "describe_network_acls", **params)
    deny = "".join(
        f"<item><cidrBlock>0.0.0.0/0</cidrBlock><egress>{e}</egress><protocol>-1</protocol>"
        "<ruleAction>deny</ruleAction><ruleNumber>32767</ruleNumber></item>" for e in ("false", "true"))
    acl = ids["nacl"]
    marker = f"</entrySet><default>false</default><networkAclId>{acl}</networkAclId>"
    body = replace_once(body, marker, deny + marker)

    def chk_acl(p):
        a = [a for a in p["NetworkAcls"] if a["NetworkAclId"] == acl][0]
        star = [e for e in a["Entries"] if e["RuleNumber"] == 32767]
        assert len(star) == 2 and all(e["RuleAction"] == "deny" for e in star), star
    write("describe_network_acls_implicit_deny.xml", "nacl-implicit-deny", cap.ec2, "DescribeNetworkAcls", params,
          body, f"appended to custom NACL {acl}'s entrySet the two `*` entries AWS adds to every NACL "
          "(rule 32767, protocol -1, 0.0.0.0/0, deny; ingress and egress), copied from moto's own default "
          "NACL entries", chk_acl)
    return manifest


if __name__ == "__main__":
    main()
