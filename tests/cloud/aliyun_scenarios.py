#!/usr/bin/env python3
"""Alibaba Cloud scenarios for the 3-node test cluster (tests/fixtures/bundles/vxlan and host-gw),
served by aliyun_fake.py.

    python3 tests/cloud/aliyun_scenarios.py --list
    python3 tests/cloud/aliyun_scenarios.py --scenario NAME [--endpoint URL] [--world]

Prints one JSON object:
    {"scenario", "description", "region", "access_key_id", "access_key_secret",
     "nodes": {"node-1": {"instance_id", "provider_id", "ip", "zone"}, ...},
     "ids": {"vpc", "vswitch", "sg", "sg_a", "sg_b", "route_table", "nat_gateway",
             "snat_table", "snat_entry", ...}}
With --endpoint, the scenario's world is loaded into the fake at URL first (POST /fake/scenario).
With --world, the world itself is printed (what the fake serves) instead.

The cluster: node-1 192.168.0.11 (pods 10.244.0.0/24), node-2 192.168.0.12 (10.244.1.0/24),
node-3 192.168.0.13 (10.244.2.0/24), one ECS instance each in vSwitch 192.168.0.0/24 of a
192.168.0.0/16 VPC in cn-hangzhou. The vSwitch's (system) route table routes each pod CIDR to
its node, as ACK's flannel does, and 0.0.0.0/0 to a NAT gateway.

Standard library only.
"""

import argparse
import copy
import json
import sys
import urllib.request

sys.dont_write_bytecode = True

REGION = "cn-hangzhou"
ZONE = "cn-hangzhou-i"
ACCESS_KEY_ID = "LTAI5tSkoopFakeKey00001"
ACCESS_KEY_SECRET = "skoopFakeSecret8Hq2ZrX4vN7mPw1T"

VPC_ID = "vpc-bp1skoopvpc000000001"
VROUTER = "vrt-bp1skoopvrt000000001"
VSWITCH = "vsw-bp1skoopnodes0000001"
ROUTE_TABLE = "vtb-bp1skoopsys00000001"
SG = "sg-bp1skoopnodes0000001"
SG_A = "sg-bp1skoopgroupa000001"
SG_B = "sg-bp1skoopgroupb000001"
NGW = "ngw-bp1skoopnat00000001"
STB = "stb-bp1skoopsnat0000001"
SNAT = "snat-bp1skoopvsw000001"
SNAT_VPC = "snat-bp1skoopvpc000001"
LB = "lb-bp1skoopweb00000001"
RSP = "rsp-bp1skoopweb0000001"

NODES = {
    "node-1": ("192.168.0.11", "10.244.0.0/24"),
    "node-2": ("192.168.0.12", "10.244.1.0/24"),
    "node-3": ("192.168.0.13", "10.244.2.0/24"),
}


def instance_id(node):
    return f"i-bp1skoopnode{node[-1]}000000"


def route_id(node):
    return f"rte-bp1skooppods{node[-1]}00001"


def pod_cidr_rule():
    # ACK adds the pod CIDR to the node security group: natively routed pods
    # reach each other by their own addresses.
    return {"Direction": "ingress", "IpProtocol": "ALL", "PortRange": "-1/-1",
            "SourceCidrIp": "10.244.0.0/16", "Policy": "Accept", "Priority": "1",
            "Description": "pod CIDR"}


def base():
    instances = []
    for node, (ip, _) in NODES.items():
        iid = instance_id(node)
        instances.append({
            "InstanceId": iid, "InstanceName": node, "RegionId": REGION, "ZoneId": ZONE,
            "VpcId": VPC_ID, "VSwitchId": VSWITCH, "PrivateIp": ip,
            "SecurityGroupIds": [SG],
            "Enis": [{"NetworkInterfaceId": f"eni-bp1skoopnode{node[-1]}00001", "Type": "Primary",
                      "PrimaryIp": ip}],
        })
    entries = [{"RouteEntryId": "rte-bp1skoopsys0000001", "DestinationCidrBlock": "192.168.0.0/24",
                "Type": "System", "NextHopType": "local", "NextHopId": ""},
               {"RouteEntryId": "rte-bp1skoopsvc0000001", "DestinationCidrBlock": "100.64.0.0/10",
                "Type": "System", "NextHopType": "service", "NextHopId": ""}]
    for node, (_, pods) in NODES.items():
        entries.append({"RouteEntryId": route_id(node), "DestinationCidrBlock": pods, "Type": "Custom",
                        "NextHopType": "Instance", "NextHopId": instance_id(node)})
    entries.append({"RouteEntryId": "rte-bp1skoopnat0000001", "DestinationCidrBlock": "0.0.0.0/0",
                    "Type": "Custom", "NextHopType": "NatGateway", "NextHopId": NGW})
    return {
        "region": REGION,
        "credentials": {ACCESS_KEY_ID: {"secret": ACCESS_KEY_SECRET}},
        "instances": instances,
        "security_groups": [{
            "SecurityGroupId": SG, "SecurityGroupName": "k8s-nodes", "SecurityGroupType": "normal",
            "InnerAccessPolicy": "Accept", "VpcId": VPC_ID, "Permissions": [pod_cidr_rule()],
        }],
        "prefix_lists": {},
        "vpcs": [{"VpcId": VPC_ID, "CidrBlock": "192.168.0.0/16", "VRouterId": VROUTER}],
        "vswitches": [{"VSwitchId": VSWITCH, "VpcId": VPC_ID, "CidrBlock": "192.168.0.0/24", "ZoneId": ZONE,
                       "RouteTableId": ROUTE_TABLE}],
        "route_tables": [{"RouteTableId": ROUTE_TABLE, "RouteTableType": "System", "VRouterId": VROUTER,
                          "VpcId": VPC_ID, "Entries": entries}],
        "nat_gateways": [{"NatGatewayId": NGW, "VpcId": VPC_ID, "Status": "Available", "NetworkType": "internet",
                          "SnatTableIds": [STB], "Ips": ["47.96.100.1"]}],
        "snat_entries": [{"SnatEntryId": SNAT, "SnatTableId": STB, "SourceCIDR": "192.168.0.0/24",
                          "SourceVSwitchId": VSWITCH, "SnatIp": "47.96.100.1", "Status": "Available"}],
        # A CLB in front of Service default/web-nodeport (port 80, node port 30080; ETP Cluster: every node).
        "load_balancers": [{"LoadBalancerId": LB, "Address": "47.96.200.1", "AddressType": "internet",
                            "LoadBalancerStatus": "active", "VpcId": VPC_ID,
                            "Listeners": [{"ListenerPort": 80, "ListenerProtocol": "tcp", "Status": "running",
                                           "AclStatus": "off", "VServerGroupId": RSP}]}],
        "acls": [],
        "vserver_groups": [{"VServerGroupId": RSP, "LoadBalancerId": LB, "BackendServers": [
            {"ServerId": instance_id(n), "Port": 30080, "Type": "ecs"} for n in NODES]}],
        "health": [{"LoadBalancerId": LB, "ListenerPort": 80, "Protocol": "tcp", "ServerId": instance_id(n),
                    "ServerIp": ip, "Port": 30080, "ServerHealthStatus": "normal"}
                   for n, (ip, _) in NODES.items()],
    }


def entries(world):
    return world["route_tables"][0]["Entries"]


def two_groups(world, rules_a, rules_b):
    """node-1 in group A, node-2 and node-3 in group B."""
    for i in world["instances"]:
        i["SecurityGroupIds"] = [SG_A] if i["InstanceName"] == "node-1" else [SG_B]
    world["security_groups"] = [
        {"SecurityGroupId": SG_A, "SecurityGroupName": "group-a", "SecurityGroupType": "normal",
         "InnerAccessPolicy": "Accept", "VpcId": VPC_ID, "Permissions": [pod_cidr_rule()] + rules_a},
        {"SecurityGroupId": SG_B, "SecurityGroupName": "group-b", "SecurityGroupType": "normal",
         "InnerAccessPolicy": "Accept", "VpcId": VPC_ID, "Permissions": [pod_cidr_rule()] + rules_b},
    ]


def healthy(w):
    return "one basic node security group (members reach each other), pod CIDR routes to their nodes, 0.0.0.0/0 to a NAT gateway with a SNAT entry for the vSwitch CIDR"


def sg_blocks_vxlan(w):
    w["security_groups"][0]["Permissions"] += [
        {"Direction": "ingress", "IpProtocol": "UDP", "PortRange": "8472/8472", "SourceCidrIp": "192.168.0.0/16",
         "Policy": "Drop", "Priority": "1", "Description": "no VXLAN"},
        {"Direction": "ingress", "IpProtocol": "ALL", "PortRange": "-1/-1", "SourceCidrIp": "192.168.0.0/16",
         "Policy": "Accept", "Priority": "1", "Description": "the VPC (the drop wins at equal priority)"},
    ]
    return "the node group drops UDP 8472 from the VPC at priority 1, beside an accept-all of the same priority"


def sg_allows_by_group_id(w):
    vxlan = lambda peer: {"Direction": "ingress", "IpProtocol": "UDP", "PortRange": "8472/8472",
                          "SourceGroupId": peer, "Policy": "Accept", "Priority": "1"}
    two_groups(w, [vxlan(SG_B)], [vxlan(SG_A)])
    return "node-1 in group A, node-2/3 in group B; each admits VXLAN from the other by SourceGroupId (KubeSkoop warns and checks nothing)"


def no_common_sg_but_blocked(w):
    two_groups(w, [], [])
    return "node-1 in group A, node-2/3 in group B; no rule admits VXLAN between them (KubeSkoop only warns that they share no group)"


def route_missing_pod_cidr(w):
    w["route_tables"][0]["Entries"] = [e for e in entries(w) if e["RouteEntryId"] != route_id("node-2")]
    return "no route entry for node-2's pod CIDR 10.244.1.0/24 (host-gw): the default route takes it to the NAT gateway"


def route_wrong_next_hop(w):
    for e in entries(w):
        if e["RouteEntryId"] == route_id("node-2"):
            e["NextHopId"] = instance_id("node-3")
    return "node-2's pod CIDR 10.244.1.0/24 is routed to node-3's instance (host-gw)"


def snat_by_vpc_cidr(w):
    w["snat_entries"] = [{"SnatEntryId": SNAT_VPC, "SnatTableId": STB, "SourceCIDR": "192.168.0.0/16",
                          "SnatIp": "47.96.100.1", "Status": "Available"}]
    return "the only SNAT entry is for the VPC CIDR 192.168.0.0/16 (KubeSkoop looks up the node's /32 and the exact vSwitch CIDR only)"


def no_snat(w):
    w["snat_entries"] = []
    return "the NAT gateway's SNAT table is empty and no node has an EIP"


def clb_listener_stopped(w):
    w["load_balancers"][0]["Listeners"][0]["Status"] = "stopped"
    return "the CLB's TCP 80 listener is stopped"


def clb_backend_unhealthy(w):
    for h in w["health"]:
        if h["ServerId"] == instance_id("node-2"):
            h["ServerHealthStatus"] = "abnormal"
    return "the CLB's health check fails on node-2's node port"


SCENARIOS = {
    "clb-listener-stopped": clb_listener_stopped,
    "clb-backend-unhealthy": clb_backend_unhealthy,
    "healthy": healthy,
    "sg-blocks-vxlan": sg_blocks_vxlan,
    "sg-allows-by-group-id": sg_allows_by_group_id,
    "no-common-sg-but-blocked": no_common_sg_but_blocked,
    "route-missing-pod-cidr": route_missing_pod_cidr,
    "route-wrong-next-hop": route_wrong_next_hop,
    "snat-by-vpc-cidr": snat_by_vpc_cidr,
    "no-snat": no_snat,
}


def build(name):
    if name not in SCENARIOS:
        raise SystemExit(f"aliyun_scenarios.py: unknown scenario {name!r}; one of {', '.join(SCENARIOS)}")
    world = copy.deepcopy(base())
    description = SCENARIOS[name](world)
    world["scenario"] = name
    nodes = {n: {"instance_id": instance_id(n), "provider_id": f"{REGION}.{instance_id(n)}", "ip": ip, "zone": ZONE}
             for n, (ip, _) in NODES.items()}
    ids = {
        "vpc": VPC_ID, "vrouter": VROUTER, "vswitch": VSWITCH, "route_table": ROUTE_TABLE,
        "sg": SG, "sg_a": SG_A, "sg_b": SG_B, "nat_gateway": NGW, "snat_table": STB,
        "snat_entry": SNAT, "snat_entry_vpc": SNAT_VPC, "lb": LB, "vserver_group": RSP,
        "route_node_2": route_id("node-2"),
    }
    return {
        "scenario": name, "description": description, "region": REGION,
        "access_key_id": ACCESS_KEY_ID, "access_key_secret": ACCESS_KEY_SECRET,
        "nodes": nodes, "ids": ids, "world": world,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario")
    ap.add_argument("--endpoint")
    ap.add_argument("--world", action="store_true")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.list:
        for name in SCENARIOS:
            print(f"{name}: {build(name)['description']}")
        return
    if not args.scenario:
        ap.error("--scenario NAME is required (or --list)")
    s = build(args.scenario)
    if args.endpoint:
        req = urllib.request.Request(args.endpoint.rstrip("/") + "/fake/scenario",
                                     data=json.dumps(s["world"]).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            if r.status != 200:
                raise SystemExit(f"aliyun_scenarios.py: the fake answered {r.status}")
    if args.world:
        print(json.dumps(s["world"]))
    else:
        s.pop("world")
        print(json.dumps(s))


if __name__ == "__main__":
    main()
