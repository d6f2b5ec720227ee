#!/usr/bin/env python3
"""Build an EKS-like AWS topology for skoop's 3-node test cluster in a running moto_server.

    python3 tests/cloud/moto_scenarios.py --endpoint http://127.0.0.1:PORT --scenario NAME
                                          [--auth] [--seed 42] [--venv DIR]
    python3 tests/cloud/moto_scenarios.py --list

Each run starts from a clean moto: it turns auth off, POSTs /moto-api/reset (which also wipes
IAM) and /moto-api/seed (stable IDs), builds the scenario with boto3 as moto's default admin,
creates the read-only IAM user `skoop-test` with an access key, and with --auth only then turns
signature and IAM checking on (POST /moto-api/reset-auth, body `0`). So every scenario runs
with auth on, and its printed keys are valid for it. Prints one JSON object on stdout (shape
in tests/cloud/README.md). Runs under any python3: it re-executes itself under the moto venv
(see moto_venv.py) when boto3 is not importable.

The cluster (the tests' bundles): node-1 192.168.0.11 (pods 10.244.0.0/24), node-2
192.168.0.12 (10.244.1.0/24), node-3 192.168.0.13 (10.244.2.0/24); flannel VXLAN is UDP 8472
between node IPs; pods and Service backends listen on TCP 8080.
"""

import argparse
import json
import os
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moto_venv  # noqa: E402

try:
    import boto3
    from botocore.config import Config
except ImportError:  # running under a python3 without boto3: use the moto venv
    _ap = argparse.ArgumentParser(add_help=False)
    _ap.add_argument("--venv")
    moto_venv.reexec_in_venv(_ap.parse_known_args()[0].venv)

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
CLUSTER = "skoop"
AMI = "ami-ekslinux"  # "amazon-eks-node-linux" in moto's built-in AMI catalogue
INSTANCE_TYPE = "m5.large"
VPC_CIDR = "192.168.0.0/16"
POD_CIDR = "10.244.0.0/16"
NODES = [  # name, bundle IP, pod CIDR
    ("node-1", "192.168.0.11", "10.244.0.0/24"),
    ("node-2", "192.168.0.12", "10.244.1.0/24"),
    ("node-3", "192.168.0.13", "10.244.2.0/24"),
]
READ_ONLY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Action": [
            "ec2:Describe*",
            "ec2:GetManagedPrefixListEntries",
            "elasticloadbalancing:Describe*",
        ],
        "Resource": "*",
    }],
}
IAM_USER = "skoop-test"

# ---------------------------------------------------------------------------------------------
# moto's own API


def moto_api(endpoint, path, body=b"", content_type="text/plain"):
    req = urllib.request.Request(endpoint.rstrip("/") + path, data=body, method="POST",
                                 headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def set_auth(endpoint, on):
    # reset-auth reads request.data as a number: it must be text/plain, not a form body
    # (a form content type makes moto answer 500). `0` = check every request from now on,
    # `inf` = check none (moto's default).
    moto_api(endpoint, "/moto-api/reset-auth", b"0" if on else b"inf")


# ---------------------------------------------------------------------------------------------
# building blocks


def tags(name, **extra):
    t = [{"Key": "Name", "Value": name}, {"Key": f"kubernetes.io/cluster/{CLUSTER}", "Value": "shared"}]
    t += [{"Key": k, "Value": v} for k, v in extra.items()]
    return t


class Builder:
    def __init__(self, endpoint):
        kw = dict(region_name=REGION, endpoint_url=endpoint,
                  aws_access_key_id="AKIAIOSFODNN7EXAMPLE",  # any key works while auth is off
                  aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                  config=Config(retries={"max_attempts": 1}))
        self.ec2 = boto3.client("ec2", **kw)
        self.elb = boto3.client("elbv2", **kw)
        self.iam = boto3.client("iam", **kw)
        self.endpoint = endpoint
        self.ids = {}
        self.nodes = {}
        self.notes = []
        self.elb_ports = None

    # -- network -------------------------------------------------------------------------------
    def vpc(self):
        v = self.ec2.create_vpc(CidrBlock=VPC_CIDR, TagSpecifications=[
            {"ResourceType": "vpc", "Tags": tags(f"eksctl-{CLUSTER}-cluster/VPC")}])["Vpc"]["VpcId"]
        self.ec2.modify_vpc_attribute(VpcId=v, EnableDnsHostnames={"Value": True})
        self.ids["vpc"] = v
        rtb = self.ec2.describe_route_tables(Filters=[
            {"Name": "vpc-id", "Values": [v]}, {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
        self.ids["rtb"] = rtb["RouteTableId"]  # the main route table
        acl = self.ec2.describe_network_acls(Filters=[
            {"Name": "vpc-id", "Values": [v]}, {"Name": "default", "Values": ["true"]}])["NetworkAcls"][0]
        self.ids["nacl_default"] = acl["NetworkAclId"]
        self.ids["nacl"] = acl["NetworkAclId"]
        return v

    def subnet(self, key, cidr, zone, public=False):
        s = self.ec2.create_subnet(VpcId=self.ids["vpc"], CidrBlock=cidr, AvailabilityZone=zone,
                                   TagSpecifications=[{"ResourceType": "subnet", "Tags": tags(
                                       f"{CLUSTER}-{key}", **{"kubernetes.io/role/elb" if public
                                                             else "kubernetes.io/role/internal-elb": "1"})}]
                                   )["Subnet"]["SubnetId"]
        if public:
            self.ec2.modify_subnet_attribute(SubnetId=s, MapPublicIpOnLaunch={"Value": True})
        self.ids[key] = s
        return s

    def igw(self, default_route_in=None):
        g = self.ec2.create_internet_gateway(TagSpecifications=[
            {"ResourceType": "internet-gateway", "Tags": tags(f"{CLUSTER}-igw")}])["InternetGateway"]["InternetGatewayId"]
        self.ec2.attach_internet_gateway(InternetGatewayId=g, VpcId=self.ids["vpc"])
        self.ids["igw"] = g
        if default_route_in:
            self.ec2.create_route(RouteTableId=default_route_in, DestinationCidrBlock="0.0.0.0/0", GatewayId=g)
        return g

    def node_sg(self, ingress):
        """The shared node security group. `ingress` is a list of IpPermissions; the literal
        string "self" as a source means a reference to this group. Egress: AWS's default
        allow-all rule is kept."""
        sg = self.ec2.create_security_group(
            VpcId=self.ids["vpc"], GroupName=f"eks-{CLUSTER}-nodegroup-sg",
            Description="Communication between all nodes in the cluster",
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tags(f"eks-{CLUSTER}-node-sg")}])["GroupId"]
        self.ids["sg_node"] = sg
        perms = []
        for p in ingress:
            p = dict(p)
            if p.pop("self", False):
                p["UserIdGroupPairs"] = [{"GroupId": sg, "Description": "from nodes (this group)"}]
            perms.append(p)
        if perms:
            self.ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=perms)
        return sg

    # -- instances -----------------------------------------------------------------------------
    def instances(self, placement, public_ip):
        """placement: node name -> (subnet key, zone, ip)."""
        for name, bundle_ip, pod_cidr in NODES:
            subnet_key, zone, ip = placement[name]
            r = self.ec2.run_instances(
                ImageId=AMI, InstanceType=INSTANCE_TYPE, MinCount=1, MaxCount=1,
                Placement={"AvailabilityZone": zone},
                # SubnetId + SecurityGroupIds (not a NetworkInterfaces spec): moto then lists the
                # groups on the instance too, as AWS does; the public IP comes from the subnet's
                # MapPublicIpOnLaunch.
                SubnetId=self.ids[subnet_key], PrivateIpAddress=ip, SecurityGroupIds=[self.ids["sg_node"]],
                TagSpecifications=[{"ResourceType": "instance", "Tags": [
                    {"Key": "Name", "Value": f"{CLUSTER}-ng-{name}"},
                    {"Key": f"kubernetes.io/cluster/{CLUSTER}", "Value": "owned"},
                    {"Key": "eks:cluster-name", "Value": CLUSTER},
                    {"Key": "eks:nodegroup-name", "Value": "ng-1"},
                    {"Key": "skoop-test/node", "Value": name}]}])
            inst = r["Instances"][0]
            assert bool(inst.get("PublicIpAddress")) == public_ip, f"{name}: public IP {inst.get('PublicIpAddress')}"
            eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
            self.nodes[name] = {
                "instance_id": inst["InstanceId"],
                "zone": zone,
                "ip": ip,
                "bundle_ip": bundle_ip,
                "pod_cidr": pod_cidr,
                "subnet": subnet_key,  # the key of its subnet in "ids"
                "subnet_id": self.ids[subnet_key],
                "eni_id": eni,
                "provider_id": f"aws:///{zone}/{inst['InstanceId']}",
            }

    def disable_source_dest_check(self):
        for n in self.nodes.values():
            # moto does not tie the instance attribute to the primary ENI (nor the other way
            # round), so set both, as real AWS would show them.
            self.ec2.modify_network_interface_attribute(NetworkInterfaceId=n["eni_id"],
                                                        SourceDestCheck={"Value": False})
            self.ec2.modify_instance_attribute(InstanceId=n["instance_id"], SourceDestCheck={"Value": False})

    def pod_cidr_routes(self, rtb):
        for n in self.nodes.values():
            self.ec2.create_route(RouteTableId=rtb, DestinationCidrBlock=n["pod_cidr"],
                                  NetworkInterfaceId=n["eni_id"])

    def finish_nodes(self):
        """Fill in state, public IP and source/dest check as DescribeInstances reports them."""
        ids = [n["instance_id"] for n in self.nodes.values()]
        by_id = {}
        for res in self.ec2.describe_instances(InstanceIds=ids)["Reservations"]:
            for i in res["Instances"]:
                by_id[i["InstanceId"]] = i
        for n in self.nodes.values():
            i = by_id[n["instance_id"]]
            n["state"] = i["State"]["Name"]
            n["public_ip"] = i.get("PublicIpAddress")
            n["source_dest_check"] = i["NetworkInterfaces"][0]["SourceDestCheck"] if i["NetworkInterfaces"] else None

    # -- load balancer -------------------------------------------------------------------------
    def nlb(self, listener_port, register_stopped=None):
        lb = self.elb.create_load_balancer(
            Name=f"k8s-default-web-{CLUSTER}", Subnets=[self.ids["subnet"]], Type="network",
            Scheme="internet-facing", IpAddressType="ipv4",
            Tags=[{"Key": "kubernetes.io/service-name", "Value": "default/web"},
                  {"Key": f"kubernetes.io/cluster/{CLUSTER}", "Value": "owned"}])["LoadBalancers"][0]
        tg = self.elb.create_target_group(
            Name=f"k8s-default-web-{CLUSTER}-30080", Protocol="TCP", Port=30080, VpcId=self.ids["vpc"],
            TargetType="instance", HealthCheckProtocol="TCP", HealthCheckPort="traffic-port",
            HealthyThresholdCount=3, UnhealthyThresholdCount=3, HealthCheckIntervalSeconds=10,
        )["TargetGroups"][0]
        self.elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[
            {"Id": n["instance_id"], "Port": 30080} for n in self.nodes.values()])
        listener = self.elb.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=listener_port,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Listeners"][0]
        self.ids.update({
            "lb_arn": lb["LoadBalancerArn"], "lb_dns": lb["DNSName"], "lb_name": lb["LoadBalancerName"],
            "tg_arn": tg["TargetGroupArn"], "listener_arn": listener["ListenerArn"],
        })
        self.elb_ports = {"listener_port": listener_port, "service_port": 80, "node_port": 30080}
        if register_stopped:
            self.ec2.stop_instances(InstanceIds=[self.nodes[register_stopped]["instance_id"]])
        # make moto move the LB from `provisioning` to `active` now, not in the provider's first call
        self.elb.describe_load_balancers(LoadBalancerArns=[lb["LoadBalancerArn"]])

    # -- the read-only identity skoop uses ----------------------------------------------------
    def iam_user(self):
        self.iam.create_user(UserName=IAM_USER, Tags=[{"Key": "purpose", "Value": "skoop cloud tests"}])
        self.iam.put_user_policy(UserName=IAM_USER, PolicyName="skoop-read-only",
                                 PolicyDocument=json.dumps(READ_ONLY_POLICY))
        k = self.iam.create_access_key(UserName=IAM_USER)["AccessKey"]
        return k["AccessKeyId"], k["SecretAccessKey"]


# ---------------------------------------------------------------------------------------------
# scenarios

ALL_FROM_SELF = {"IpProtocol": "-1", "self": True}
ALL_FROM_PODS = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": POD_CIDR, "Description": "pod CIDR (native routing)"}]}
NODEPORT_FROM_ANYWHERE = {"IpProtocol": "tcp", "FromPort": 30080, "ToPort": 30080,
                          "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "NLB clients (client IP preserved)"}]}
SAME_SUBNET = {n: ("subnet", "us-east-1a", ip) for n, ip, _ in NODES}


def _public_cluster(b, ingress, default_route=True, public_ip=True):
    """VPC, one subnet 192.168.0.0/24 in us-east-1a using the main route table, IGW."""
    b.vpc()
    b.subnet("subnet", "192.168.0.0/24", "us-east-1a", public=True)
    b.igw(default_route_in=b.ids["rtb"] if default_route else None)
    b.node_sg(ingress)
    b.instances(SAME_SUBNET, public_ip=public_ip)


def s_healthy(b):
    _public_cluster(b, [ALL_FROM_SELF])


def s_sg_blocks_vxlan(b):
    _public_cluster(b, [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": VPC_CIDR}]},
        {"IpProtocol": "tcp", "FromPort": 10250, "ToPort": 10250, "IpRanges": [{"CidrIp": VPC_CIDR}]},
    ])


def s_sg_by_group_reference(b):
    _public_cluster(b, [
        {"IpProtocol": "udp", "FromPort": 8472, "ToPort": 8472, "self": True},
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "self": True},
    ])


NACL_ALLOW_OVERLAY = [  # (rule, egress, protocol, ports, cidr, action); protocol numbers: 6 tcp, 17 udp
    (100, False, "17", (8472, 8472), VPC_CIDR, "allow"),
    (110, False, "6", (8080, 8080), VPC_CIDR, "allow"),
    (120, False, "6", (22, 22), VPC_CIDR, "allow"),
]
NACL_EGRESS_ALL = [(100, True, "-1", None, "0.0.0.0/0", "allow")]


def _split_subnets_with_nacl(b, entries, what):
    # No two valid AWS subnets can separate .11, .12 and .13 (AWS's smallest subnet is a /28 and
    # 192.168.0.0/28 holds all three; moto even accepts a /29 but answers 500 for a /30). So
    # node-3 moves to 192.168.1.13 in a second subnet; its bundle_ip stays 192.168.0.13.
    b.vpc()
    b.subnet("subnet", "192.168.0.0/24", "us-east-1a", public=True)
    b.subnet("subnet_b", "192.168.1.0/24", "us-east-1b", public=True)
    b.igw(default_route_in=b.ids["rtb"])
    b.node_sg([ALL_FROM_SELF])
    b.instances({"node-1": ("subnet", "us-east-1a", "192.168.0.11"),
                 "node-2": ("subnet", "us-east-1a", "192.168.0.12"),
                 "node-3": ("subnet_b", "us-east-1b", "192.168.1.13")}, public_ip=True)
    acl = b.ec2.create_network_acl(VpcId=b.ids["vpc"], TagSpecifications=[
        {"ResourceType": "network-acl", "Tags": tags(f"{CLUSTER}-subnet-b-acl")}])["NetworkAcl"]["NetworkAclId"]
    for rule, egress, proto, ports, cidr, action in entries:
        kw = dict(NetworkAclId=acl, RuleNumber=rule, Protocol=proto, RuleAction=action,
                  Egress=egress, CidrBlock=cidr)
        if ports:
            kw["PortRange"] = {"From": ports[0], "To": ports[1]}
        b.ec2.create_network_acl_entry(**kw)
    # moto gives a custom NACL no `*` (32767) deny entries; real AWS has them (see
    # fixtures/describe_network_acls_implicit_deny.xml). They cannot be created through the
    # API (rule numbers stop at 32766), so the checker must apply the implicit deny itself.
    cur = b.ec2.describe_network_acls(Filters=[
        {"Name": "association.subnet-id", "Values": [b.ids["subnet_b"]]}])["NetworkAcls"][0]
    assoc_id = next(a["NetworkAclAssociationId"] for a in cur["Associations"]
                    if a["SubnetId"] == b.ids["subnet_b"])
    b.ec2.replace_network_acl_association(AssociationId=assoc_id, NetworkAclId=acl)
    b.ids.update({"nacl": acl, "nacl_subnet_b": acl, "nacl_subnet": b.ids["nacl_default"]})
    b.notes.append(
        "node-1, node-2 in subnet (192.168.0.0/24, us-east-1a, default NACL); node-3 at 192.168.1.13 "
        "(bundle: 192.168.0.13) in subnet_b (192.168.1.0/24, us-east-1b) with NACL ids.nacl, which "
        "allows inbound UDP 8472, TCP 8080 and TCP 22 from the VPC (rules 100-120), " + what + ": "
        "TCP replies to node-3 (e.g. node-3 -> node-1:8080: the SYN-ACK to node-3's ephemeral "
        "port) are dropped; node-1 -> node-3:8080 works; VXLAN (UDP 8472 both ways) is unaffected.")


def s_nacl_denies_ephemeral(b):
    _split_subnets_with_nacl(b, NACL_ALLOW_OVERLAY + [
        (200, False, "6", (1024, 65535), "0.0.0.0/0", "deny"),
        (300, False, "-1", None, "0.0.0.0/0", "allow"),
    ] + NACL_EGRESS_ALL, "then denies inbound TCP 1024-65535 (rule 200) and allows the rest (rule 300)")


def s_nacl_implicit_deny(b):
    _split_subnets_with_nacl(b, NACL_ALLOW_OVERLAY + NACL_EGRESS_ALL,
                             "and nothing else inbound (moto lists no `*` deny entry; AWS's implicit "
                             "deny applies)")


def _routed_cluster(b, routes, sdc_off):
    _public_cluster(b, [ALL_FROM_SELF, ALL_FROM_PODS])
    if routes:
        b.pod_cidr_routes(b.ids["rtb"])
    if sdc_off:
        b.disable_source_dest_check()


def s_no_route_to_pod_cidr(b):
    _routed_cluster(b, routes=False, sdc_off=True)


def s_pod_cidr_routes(b):
    _routed_cluster(b, routes=True, sdc_off=True)


def s_source_dest_check_on(b):
    _routed_cluster(b, routes=True, sdc_off=False)


def s_no_egress_route(b):
    _public_cluster(b, [ALL_FROM_SELF], default_route=False)


def s_nat_egress(b):
    b.vpc()
    b.subnet("subnet", "192.168.0.0/24", "us-east-1a", public=False)
    b.subnet("subnet_public", "192.168.64.0/24", "us-east-1a", public=True)
    rtb_public = b.ec2.create_route_table(VpcId=b.ids["vpc"], TagSpecifications=[
        {"ResourceType": "route-table", "Tags": tags(f"{CLUSTER}-public")}])["RouteTable"]["RouteTableId"]
    rtb_private = b.ec2.create_route_table(VpcId=b.ids["vpc"], TagSpecifications=[
        {"ResourceType": "route-table", "Tags": tags(f"{CLUSTER}-private-us-east-1a")}])["RouteTable"]["RouteTableId"]
    b.igw(default_route_in=rtb_public)
    b.ec2.associate_route_table(RouteTableId=rtb_public, SubnetId=b.ids["subnet_public"])
    b.ec2.associate_route_table(RouteTableId=rtb_private, SubnetId=b.ids["subnet"])
    eip = b.ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = b.ec2.create_nat_gateway(SubnetId=b.ids["subnet_public"], AllocationId=eip,
                                   ConnectivityType="public", TagSpecifications=[
                                       {"ResourceType": "natgateway", "Tags": tags(f"{CLUSTER}-nat")}]
                                   )["NatGateway"]["NatGatewayId"]
    b.ec2.create_route(RouteTableId=rtb_private, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    b.node_sg([ALL_FROM_SELF])
    b.instances(SAME_SUBNET, public_ip=False)
    b.ids.update({"rtb_main": b.ids["rtb"], "rtb": rtb_private, "rtb_private": rtb_private,
                  "rtb_public": rtb_public, "nat": nat, "eip_alloc": eip})
    b.notes.append("nodes in private subnet 192.168.0.0/24 without public IPs; its route table "
                   "(ids.rtb = rtb_private) sends 0.0.0.0/0 to the NAT gateway in subnet_public "
                   "192.168.64.0/24, whose route table sends 0.0.0.0/0 to the IGW. The main route "
                   "table (rtb_main) has only the local route. moto gives the NAT gateway a private "
                   "IP outside its subnet and a 127.x public IP.")


def s_elb_healthy(b):
    _public_cluster(b, [ALL_FROM_SELF, NODEPORT_FROM_ANYWHERE])
    b.nlb(listener_port=80)


def s_elb_target_unused(b):
    _public_cluster(b, [ALL_FROM_SELF, NODEPORT_FROM_ANYWHERE])
    b.nlb(listener_port=80, register_stopped="node-3")
    b.notes.append("NLB TCP 80 -> target group (instance targets, TCP 30080) with all three nodes; "
                   "node-3 is stopped: its target is `unused` / `Target.InvalidState`.")


def s_elb_listener_missing(b):
    _public_cluster(b, [ALL_FROM_SELF, NODEPORT_FROM_ANYWHERE])
    b.nlb(listener_port=443)
    b.notes.append("The Service port is 80 but the NLB's only listener is TCP 443 (-> the target group).")


SCENARIOS = {
    "healthy": (s_healthy, "node SG allows all from itself, default NACL, main route table with 0.0.0.0/0 -> IGW, public IPs"),
    "sg-blocks-vxlan": (s_sg_blocks_vxlan, "node SG ingress only TCP 22 and TCP 10250 from the VPC CIDR (no UDP 8472)"),
    "sg-by-group-reference": (s_sg_by_group_reference, "node SG ingress UDP 8472 and TCP 8080 by reference to itself only (healthy node-to-node)"),
    "nacl-denies-ephemeral": (s_nacl_denies_ephemeral, "node-3 in a second subnet whose NACL denies inbound TCP 1024-65535 after allowing UDP 8472/TCP 8080"),
    "nacl-implicit-deny": (s_nacl_implicit_deny, "like nacl-denies-ephemeral, but the NACL only allows UDP 8472/TCP 8080/TCP 22 in: TCP replies die on the implicit deny"),
    "no-route-to-pod-cidr": (s_no_route_to_pod_cidr, "native routing: no 10.244.N.0/24 routes in the main route table (source/dest check off)"),
    "pod-cidr-routes": (s_pod_cidr_routes, "native routing healthy: 10.244.N.0/24 -> each node's ENI, source/dest check off"),
    "source-dest-check-on": (s_source_dest_check_on, "native routing: pod CIDR routes present, source/dest check left on"),
    "no-egress-route": (s_no_egress_route, "main route table without 0.0.0.0/0 (IGW attached, public IPs)"),
    "nat-egress": (s_nat_egress, "private subnet, 0.0.0.0/0 -> NAT gateway (available), no public IPs"),
    "elb-healthy": (s_elb_healthy, "NLB TCP 80 -> target group TCP 30080 with all three nodes healthy"),
    "elb-target-unused": (s_elb_target_unused, "NLB TCP 80 -> target group TCP 30080; node-3 stopped (unused/Target.InvalidState)"),
    "elb-listener-missing": (s_elb_listener_missing, "NLB with a listener on TCP 443 only (Service port 80)"),
}


def run(endpoint, scenario, auth, seed):
    timing = {}
    t = time.monotonic()
    set_auth(endpoint, False)           # build as moto's admin, whatever the last run left on
    moto_api(endpoint, "/moto-api/reset")  # wipes every backend, IAM included
    moto_api(endpoint, f"/moto-api/seed?a={seed}")
    timing["reset"] = round(time.monotonic() - t, 3)

    t = time.monotonic()
    b = Builder(endpoint)
    fn, description = SCENARIOS[scenario]
    fn(b)
    b.finish_nodes()
    key_id, secret = b.iam_user()
    timing["build"] = round(time.monotonic() - t, 3)

    if auth:
        t = time.monotonic()
        set_auth(endpoint, True)
        # self-check: the new read-only identity can describe through SigV4 checking
        boto3.client("ec2", region_name=REGION, endpoint_url=endpoint, aws_access_key_id=key_id,
                     aws_secret_access_key=secret).describe_vpcs()
        timing["auth"] = round(time.monotonic() - t, 3)

    return {
        "scenario": scenario,
        "description": description,
        "notes": b.notes,
        "endpoint": endpoint,
        "region": REGION,
        "account_id": ACCOUNT_ID,
        "auth": auth,
        "access_key_id": key_id,
        "secret_access_key": secret,
        "iam_user": IAM_USER,
        "nodes": b.nodes,
        "ids": b.ids,
        "elb": b.elb_ports,
        "timing": timing,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", help="moto_server URL, e.g. http://127.0.0.1:5055")
    ap.add_argument("--scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--auth", action="store_true",
                    help="turn on moto's SigV4 + IAM checking after building (keys: the printed read-only user)")
    ap.add_argument("--seed", type=int, default=42, help="moto ID seed (default 42; same seed, same IDs)")
    ap.add_argument("--venv", help="moto venv, used when boto3 is not importable by this python")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = ap.parse_args()
    if args.list:
        for name, (_, desc) in SCENARIOS.items():
            print(f"{name:24} {desc}")
        return
    if not args.endpoint or not args.scenario:
        ap.error("--endpoint and --scenario are required")
    try:
        out = run(args.endpoint, args.scenario, args.auth, args.seed)
    except Exception as e:  # one clear line, not a botocore traceback, for the Rust test's log
        sys.exit(f"moto_scenarios.py: scenario {args.scenario} failed: {type(e).__name__}: {e}")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
