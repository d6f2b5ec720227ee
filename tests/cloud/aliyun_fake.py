#!/usr/bin/env python3
"""A small fake of Alibaba Cloud's ECS, VPC and SLB RPC APIs for skoop's tests.

    python3 tests/cloud/aliyun_fake.py start [--port 0] [--host 127.0.0.1]
                                             [--scenario NAME] [--timeout 10] [--log FILE]
        Starts the fake in its own session and waits until it answers. Prints one JSON line:
            {"pid": 12345, "port": 41679, "endpoint": "http://127.0.0.1:41679", "log": "/tmp/..."}
        `pid` is the server process itself. With --scenario, the scenario of
        aliyun_scenarios.py is loaded at start.

    python3 tests/cloud/aliyun_fake.py stop PID [--timeout 10]
        Refuses a PID that is not an aliyun_fake server. SIGTERM, then SIGKILL. Prints
        {"stopped": PID}. A PID that is already gone is not an error.

    python3 tests/cloud/aliyun_fake.py serve [--port 0] [--host 127.0.0.1] [--scenario NAME]
        Runs the server in the foreground.

    python3 tests/cloud/aliyun_fake.py sign --key-id ID --secret S --host H --query Q
                                            --action A --version V --date D --nonce N
        Prints the ACS3-HMAC-SHA256 Authorization header the verifier expects for a
        POST with an empty body (a known-answer vector for the Rust signer).

The server:
  * answers `POST /fake/scenario` (JSON: the world, as aliyun_scenarios.py --world prints
    it) by replacing its world; `GET /fake/health`; `GET /fake/requests` (what it served);
  * answers every other request as Alibaba Cloud's RPC gateway: the action and version
    from the `x-acs-action`/`x-acs-version` headers (V3) or the `Action`/`Version` query
    parameters, parameters from the query string (and a form body);
  * VERIFIES the V3 signature (ACS3-HMAC-SHA256) against the world's credentials and
    answers errors in the documented shape ({"RequestId","HostId","Code","Message",
    "Recommend"}): IncompleteSignature (400) when it is missing or malformed,
    InvalidAccessKeyId.NotFound (404) for an unknown key, SignatureDoesNotMatch (400)
    for a wrong secret, InvalidSecurityToken.MismatchWithAccessKey (400);
  * serves DescribeInstances, DescribeNetworkInterfaces, DescribeSecurityGroups,
    DescribeSecurityGroupAttribute, DescribePrefixListAttributes (ECS 2014-05-26),
    DescribeVpcs, DescribeVSwitches, DescribeRouteTables, DescribeRouteEntryList,
    DescribeNatGateways, DescribeSnatTableEntries (VPC 2016-04-28),
    DescribeLoadBalancers, DescribeLoadBalancerListeners,
    DescribeLoadBalancerTCPListenerAttribute, DescribeLoadBalancerUDPListenerAttribute,
    DescribeAccessControlListAttribute, DescribeVServerGroupAttribute,
    DescribeHealthStatus (SLB 2014-05-15) from the world, in the shapes of
    shared/reference/aliyun-api-shapes.md, with their paging.

Standard library only.
"""

import argparse
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

ALGORITHM = "ACS3-HMAC-SHA256"
ECS, VPC, SLB = "2014-05-26", "2016-04-28", "2014-05-15"


# ---- signing ---------------------------------------------------------------

def pct(s):
    """RFC 3986: unreserved characters stay, the rest is %XX (space %20, * %2A)."""
    return urllib.parse.quote(s, safe="~")


def canonical_query(pairs):
    return "&".join(f"{k}={v}" for k, v in sorted((pct(k), pct(v)) for k, v in pairs))


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def string_to_sign(method, path, pairs, headers, signed, body):
    """headers: lower-case name -> value."""
    canonical_headers = "".join(f"{n}:{headers.get(n, '').strip()}\n" for n in signed)
    request = "\n".join([
        method.upper(), path or "/", canonical_query(pairs), canonical_headers,
        ";".join(signed), sha256_hex(body),
    ])
    return request, f"{ALGORITHM}\n{sha256_hex(request.encode())}"


def signature(secret, to_sign):
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(key_id, secret, method, path, pairs, headers, body):
    signed = sorted(headers)
    _, to_sign = string_to_sign(method, path, pairs, headers, signed, body)
    return f"{ALGORITHM} Credential={key_id},SignedHeaders={';'.join(signed)},Signature={signature(secret, to_sign)}"


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


REQUIRED = ["host", "x-acs-action", "x-acs-content-sha256", "x-acs-date",
            "x-acs-signature-nonce", "x-acs-version"]


def verify(method, path, pairs, headers, body, credentials):
    """Raise ApiError unless the request carries a valid V3 signature."""
    auth = headers.get("authorization", "")
    if not auth:
        raise ApiError(400, "MissingAuthorization" if not headers.get("x-acs-action") else "IncompleteSignature",
                       "The request signature does not conform to Aliyun standards: no Authorization header.")
    if not auth.startswith(ALGORITHM + " "):
        raise ApiError(400, "IncompleteSignature", f"Unsupported signature algorithm; expected {ALGORITHM}.")
    fields = {}
    for part in auth[len(ALGORITHM) + 1:].split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    key_id, signed, sig = fields.get("Credential"), fields.get("SignedHeaders"), fields.get("Signature")
    if not key_id or not signed or not sig:
        raise ApiError(400, "IncompleteSignature", "The Authorization header lacks Credential, SignedHeaders or Signature.")
    signed = signed.split(";")
    missing = [h for h in REQUIRED if h not in signed]
    if "x-acs-security-token" in headers and "x-acs-security-token" not in signed:
        missing.append("x-acs-security-token")
    if missing or signed != sorted(signed):
        raise ApiError(400, "IncompleteSignature", f"SignedHeaders must be sorted and include {', '.join(missing) or 'them'}.")
    cred = credentials.get(key_id)
    if cred is None:
        raise ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    if headers.get("x-acs-content-sha256") != sha256_hex(body):
        raise ApiError(400, "SignatureDoesNotMatch", "x-acs-content-sha256 is not the SHA-256 of the body.")
    token = cred.get("token")
    if token and headers.get("x-acs-security-token") != token:
        raise ApiError(400, "InvalidSecurityToken.MismatchWithAccessKey", "The security token does not belong to the access key.")
    _, to_sign = string_to_sign(method, path, pairs, headers, signed, body)
    if not hmac.compare_digest(signature(cred["secret"], to_sign), sig):
        raise ApiError(400, "SignatureDoesNotMatch",
                       "Specified signature does not match our calculation. server string to sign is:"
                       + to_sign.replace("\n", " "))


# ---- the APIs ---------------------------------------------------------------

def json_list(params, key):
    raw = params.get(key)
    if raw is None:
        return None
    try:
        v = json.loads(raw)
    except ValueError:
        raise ApiError(400, f"InvalidParameter.{key}", f"The specified parameter {key} is not a valid JSON array.")
    if not isinstance(v, list):
        raise ApiError(400, f"InvalidParameter.{key}", f"The specified parameter {key} is not a valid JSON array.")
    return [str(x) for x in v]


def numbered(params, key):
    out, n = [], 1
    while f"{key}.{n}" in params:
        out.append(params[f"{key}.{n}"])
        n += 1
    return out


def paged(items, params, wrap, inner, default_size=10, max_size=100):
    try:
        page = max(1, int(params.get("PageNumber", "1")))
        size = min(max_size, max(1, int(params.get("PageSize", str(default_size)))))
    except ValueError:
        raise ApiError(400, "InvalidParameter", "PageNumber and PageSize must be integers.")
    chunk = items[(page - 1) * size: page * size]
    return {"TotalCount": len(items), "PageNumber": page, "PageSize": size, wrap: {inner: chunk}}


def cidr_contains(cidr, ip):
    import ipaddress
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


class World:
    def __init__(self, data=None):
        self.data = data or {"region": "cn-hangzhou", "credentials": {}}

    def get(self, key):
        return self.data.get(key, [])

    @property
    def region(self):
        return self.data.get("region", "cn-hangzhou")


def instance_json(i):
    enis = []
    for e in i.get("Enis", []):
        ips = e.get("PrivateIps") or [e["PrimaryIp"]]
        enis.append({
            "NetworkInterfaceId": e["NetworkInterfaceId"],
            "Type": e.get("Type", "Primary"),
            "MacAddress": e.get("MacAddress", "00:16:3e:00:00:00"),
            "PrimaryIpAddress": e["PrimaryIp"],
            "PrivateIpSets": {"PrivateIpSet": [
                {"Primary": ip == e["PrimaryIp"], "PrivateIpAddress": ip} for ip in ips]},
            "Ipv6Sets": {"Ipv6Set": []},
        })
    eip = i.get("EipAddress") or ""
    return {
        "InstanceId": i["InstanceId"],
        "InstanceName": i.get("InstanceName", ""),
        "HostName": i.get("InstanceName", ""),
        "RegionId": i.get("RegionId", ""),
        "ZoneId": i.get("ZoneId", ""),
        "Status": i.get("Status", "Running"),
        "InstanceNetworkType": "vpc",
        "InstanceType": "ecs.g7.xlarge",
        "OSType": "linux",
        "VpcAttributes": {
            "VpcId": i["VpcId"],
            "VSwitchId": i["VSwitchId"],
            "NatIpAddress": "",
            "PrivateIpAddress": {"IpAddress": [i["PrivateIp"]]},
        },
        "InnerIpAddress": {"IpAddress": []},
        "PublicIpAddress": {"IpAddress": [i["PublicIp"]] if i.get("PublicIp") else []},
        "EipAddress": {"AllocationId": f"eip-{i['InstanceId'][2:]}" if eip else "", "IpAddress": eip,
                       "Bandwidth": 5 if eip else 0, "InternetChargeType": "", "IsSupportUnassociate": True},
        "SecurityGroupIds": {"SecurityGroupId": list(i.get("SecurityGroupIds", []))},
        "NetworkInterfaces": {"NetworkInterface": enis},
        "Tags": {"Tag": []},
        "OperationLocks": {"LockReason": []},
    }


def instance_ips(i):
    ips = {i["PrivateIp"]}
    for e in i.get("Enis", []):
        ips.update(e.get("PrivateIps") or [e["PrimaryIp"]])
    return ips


def in_region(w, params):
    region = params.get("RegionId")
    if not region:
        raise ApiError(400, "MissingRegionId", "RegionId is mandatory for this action.")
    return region == w.region


def describe_instances(w, p):
    items = w.get("instances") if in_region(w, p) else []
    ids = json_list(p, "InstanceIds")
    if ids is not None:
        if len(ids) > 100:
            raise ApiError(400, "InvalidParameter.InstanceIds", "InstanceIds holds at most 100 ids.")
        items = [i for i in items if i["InstanceId"] in ids]
    ips = json_list(p, "PrivateIpAddresses")
    if ips is not None:
        if p.get("InstanceNetworkType") != "vpc":
            raise ApiError(400, "InvalidParameter.Conflict",
                           "PrivateIpAddresses is valid only with InstanceNetworkType vpc.")
        items = [i for i in items if instance_ips(i) & set(ips)]
    if p.get("VpcId"):
        items = [i for i in items if i["VpcId"] == p["VpcId"]]
    out = paged([instance_json(i) for i in items], p, "Instances", "Instance")
    out["NextToken"] = ""
    return out


def all_enis(w):
    for i in w.get("instances"):
        for e in i.get("Enis", []):
            yield i, e


def eni_json(i, e):
    ips = e.get("PrivateIps") or [e["PrimaryIp"]]
    public = e.get("PublicIps", {})
    sets = []
    for ip in ips:
        s = {"Primary": ip == e["PrimaryIp"], "PrivateIpAddress": ip, "PrivateDnsName": ""}
        if ip in public:
            s["AssociatedPublicIp"] = {"PublicIpAddress": public[ip], "AllocationId": f"eip-{ip.replace('.', '')}"}
        sets.append(s)
    out = {
        "NetworkInterfaceId": e["NetworkInterfaceId"],
        "Type": e.get("Type", "Primary"),
        "Status": "InUse",
        "InstanceId": i["InstanceId"],
        "VpcId": i["VpcId"],
        "VSwitchId": e.get("VSwitchId", i["VSwitchId"]),
        "ZoneId": i.get("ZoneId", ""),
        "PrivateIpAddress": e["PrimaryIp"],
        "MacAddress": e.get("MacAddress", "00:16:3e:00:00:00"),
        "SourceDestCheck": False,
        "SecurityGroupIds": {"SecurityGroupId": list(e.get("SecurityGroupIds", i.get("SecurityGroupIds", [])))},
        "PrivateIpSets": {"PrivateIpSet": sets},
        "Attachment": {"InstanceId": i["InstanceId"], "DeviceIndex": 0 if e.get("Type", "Primary") == "Primary" else 1},
        "Tags": {"Tag": []},
    }
    if e["PrimaryIp"] in public:
        out["AssociatedPublicIp"] = {"PublicIpAddress": public[e["PrimaryIp"]], "AllocationId": ""}
    return out


def describe_network_interfaces(w, p):
    items = list(all_enis(w)) if in_region(w, p) else []
    ids = numbered(p, "NetworkInterfaceId")
    if ids:
        items = [(i, e) for i, e in items if e["NetworkInterfaceId"] in ids]
    if p.get("InstanceId"):
        items = [(i, e) for i, e in items if i["InstanceId"] == p["InstanceId"]]
    if p.get("VpcId"):
        items = [(i, e) for i, e in items if i["VpcId"] == p["VpcId"]]
    ips = numbered(p, "PrivateIpAddress")
    if ips:
        items = [(i, e) for i, e in items if set(e.get("PrivateIps") or [e["PrimaryIp"]]) & set(ips)]
    out = paged([eni_json(i, e) for i, e in items], p, "NetworkInterfaceSets", "NetworkInterfaceSet",
                max_size=1000)
    out["NextToken"] = ""
    return out


def find(items, key, value, code, what):
    for x in items:
        if x.get(key) == value:
            return x
    raise ApiError(404, code, f"The specified {what} does not exist.")


def describe_security_groups(w, p):
    items = w.get("security_groups") if in_region(w, p) else []
    ids = json_list(p, "SecurityGroupIds")
    if ids is not None:
        items = [g for g in items if g["SecurityGroupId"] in ids]
    if p.get("SecurityGroupId"):
        items = [g for g in items if g["SecurityGroupId"] == p["SecurityGroupId"]]
    if p.get("VpcId"):
        items = [g for g in items if g.get("VpcId") == p["VpcId"]]
    rows = [{
        "SecurityGroupId": g["SecurityGroupId"],
        "SecurityGroupName": g.get("SecurityGroupName", ""),
        "SecurityGroupType": g.get("SecurityGroupType", "normal"),
        "VpcId": g.get("VpcId", ""),
        "Description": "",
        "RuleCount": len(g.get("Permissions", [])),
        "ServiceManaged": False,
        "Tags": {"Tag": []},
    } for g in items]
    out = paged(rows, p, "SecurityGroups", "SecurityGroup")
    out["RegionId"] = w.region
    return out


PERMISSION_KEYS = ["SecurityGroupRuleId", "Direction", "IpProtocol", "PortRange", "SourcePortRange",
                   "SourceCidrIp", "DestCidrIp", "SourceGroupId", "DestGroupId", "SourcePrefixListId",
                   "DestPrefixListId", "Ipv6SourceCidrIp", "Ipv6DestCidrIp", "Policy", "Priority",
                   "NicType", "Description", "CreateTime"]


def describe_security_group_attribute(w, p):
    if not p.get("SecurityGroupId"):
        raise ApiError(400, "MissingSecurityGroupId", "SecurityGroupId is mandatory for this action.")
    groups = w.get("security_groups") if in_region(w, p) else []
    g = find(groups, "SecurityGroupId", p["SecurityGroupId"], "InvalidSecurityGroupId.NotFound", "security group")
    perms = []
    for n, r in enumerate(g.get("Permissions", [])):
        row = {k: "" for k in PERMISSION_KEYS}
        row.update({"SecurityGroupRuleId": f"sgr-{g['SecurityGroupId'][3:]}{n:02d}", "NicType": "intranet",
                    "Policy": "Accept", "Priority": "1", "PortRange": "-1/-1", "IpProtocol": "ALL"})
        row.update({k: str(v) for k, v in r.items()})
        perms.append(row)
    direction = p.get("Direction", "all")
    if direction in ("ingress", "egress"):
        perms = [r for r in perms if r["Direction"] == direction]
    return {
        "RegionId": w.region,
        "SecurityGroupId": g["SecurityGroupId"],
        "SecurityGroupName": g.get("SecurityGroupName", ""),
        "VpcId": g.get("VpcId", ""),
        "InnerAccessPolicy": g.get("InnerAccessPolicy", "Accept"),
        "Description": "",
        "NextToken": "",
        "Permissions": {"Permission": perms},
    }


def describe_prefix_list_attributes(w, p):
    lists = w.data.get("prefix_lists", {})
    pid = p.get("PrefixListId", "")
    if pid not in lists:
        raise ApiError(404, "InvalidPrefixListId.NotFound", "The specified prefix list does not exist.")
    return {"PrefixListId": pid, "AddressFamily": "IPv4",
            "Entries": {"Entry": [{"Cidr": c, "Description": ""} for c in lists[pid]]}}


def describe_vpcs(w, p):
    items = w.get("vpcs") if in_region(w, p) else []
    if p.get("VpcId"):
        ids = [x.strip() for x in p["VpcId"].split(",")]
        items = [v for v in items if v["VpcId"] in ids]
    rows = [{
        "VpcId": v["VpcId"], "VpcName": v.get("VpcName", ""), "RegionId": w.region, "Status": "Available",
        "CidrBlock": v["CidrBlock"], "VRouterId": v["VRouterId"], "IsDefault": False,
        "SecondaryCidrBlocks": {"SecondaryCidrBlock": v.get("SecondaryCidrBlocks", [])},
        "UserCidrs": {"UserCidr": v.get("UserCidrs", [])},
        "VSwitchIds": {"VSwitchId": [s["VSwitchId"] for s in w.get("vswitches") if s["VpcId"] == v["VpcId"]]},
        "NatGatewayIds": {"NatGatewayIds": [g["NatGatewayId"] for g in w.get("nat_gateways") if g["VpcId"] == v["VpcId"]]},
        "RouterTableIds": {"RouterTableIds": [t["RouteTableId"] for t in w.get("route_tables") if t["VpcId"] == v["VpcId"]]},
        "Tags": {"Tag": []},
    } for v in items]
    return paged(rows, p, "Vpcs", "Vpc", max_size=50)


def describe_vswitches(w, p):
    items = w.get("vswitches") if in_region(w, p) else []
    if p.get("VpcId"):
        items = [s for s in items if s["VpcId"] == p["VpcId"]]
    if p.get("VSwitchId"):
        items = [s for s in items if s["VSwitchId"] == p["VSwitchId"]]
    tables = {t["RouteTableId"]: t for t in w.get("route_tables")}
    rows = []
    for s in items:
        t = tables.get(s.get("RouteTableId", ""), {})
        rows.append({
            "VSwitchId": s["VSwitchId"], "VpcId": s["VpcId"], "CidrBlock": s["CidrBlock"],
            "ZoneId": s.get("ZoneId", ""), "Status": "Available", "IsDefault": False,
            "AvailableIpAddressCount": 250,
            "RouteTable": {"RouteTableId": s.get("RouteTableId", ""), "RouteTableType": t.get("RouteTableType", "")},
            "Tags": {"Tag": []},
        })
    return paged(rows, p, "VSwitches", "VSwitch", max_size=50)


def entry_json(t, e):
    hop_type, hop_id = e.get("NextHopType", "local"), e.get("NextHopId", "")
    return {
        "RouteEntryId": e["RouteEntryId"], "RouteTableId": t["RouteTableId"],
        "DestinationCidrBlock": e["DestinationCidrBlock"], "Type": e.get("Type", "Custom"),
        "Status": e.get("Status", "Available"), "IpVersion": "IPv4", "RouteEntryName": "",
        "Description": "", "Origin": "", "ServiceType": "",
        "NextHops": {"NextHop": [{"NextHopType": hop_type, "NextHopId": hop_id, "Enabled": 1,
                                  "Weight": 100, "NextHopRegionId": w_region(t)}]},
    }


def w_region(t):
    return t.get("RegionId", "")


def describe_route_tables(w, p):
    items = w.get("route_tables") if in_region(w, p) else []
    if p.get("VRouterId"):
        items = [t for t in items if t["VRouterId"] == p["VRouterId"]]
    if p.get("RouteTableId"):
        items = [t for t in items if t["RouteTableId"] == p["RouteTableId"]]
    rows = []
    for t in items:
        rows.append({
            "RouteTableId": t["RouteTableId"], "RouteTableType": t["RouteTableType"],
            "VRouterId": t["VRouterId"], "Status": "Available",
            "RouteEntrys": {"RouteEntry": [{
                "RouteEntryId": e["RouteEntryId"], "RouteTableId": t["RouteTableId"],
                "DestinationCidrBlock": e["DestinationCidrBlock"], "Type": e.get("Type", "Custom"),
                "NextHopType": e.get("NextHopType", "local"), "InstanceId": e.get("NextHopId", ""),
                "Status": e.get("Status", "Available"), "NextHops": {"NextHop": []},
            } for e in t.get("Entries", [])]},
            "VSwitchIds": {"VSwitchId": [s["VSwitchId"] for s in w.get("vswitches")
                                         if s.get("RouteTableId") == t["RouteTableId"]]},
        })
    return paged(rows, p, "RouteTables", "RouteTable", max_size=50)


def describe_route_entry_list(w, p):
    if not p.get("RouteTableId"):
        raise ApiError(400, "MissingRouteTableId", "RouteTableId is mandatory for this action.")
    tables = w.get("route_tables") if in_region(w, p) else []
    t = find(tables, "RouteTableId", p["RouteTableId"], "InvalidRouteTableId.NotFound", "route table")
    rows = [entry_json(t, e) for e in t.get("Entries", [])]
    try:
        size = min(100, max(1, int(p.get("MaxResult", "50"))))
        start = int(p.get("NextToken") or "0")
    except ValueError:
        raise ApiError(400, "InvalidNextToken", "The specified NextToken is invalid.")
    chunk = rows[start:start + size]
    nxt = str(start + size) if start + size < len(rows) else ""
    return {"TotalCount": len(rows), "NextToken": nxt, "RouteEntrys": {"RouteEntry": chunk}}


def describe_nat_gateways(w, p):
    items = w.get("nat_gateways") if in_region(w, p) else []
    if p.get("NatGatewayId"):
        items = [g for g in items if g["NatGatewayId"] == p["NatGatewayId"]]
    if p.get("VpcId"):
        items = [g for g in items if g["VpcId"] == p["VpcId"]]
    rows = [{
        "NatGatewayId": g["NatGatewayId"], "VpcId": g["VpcId"], "Status": g.get("Status", "Available"),
        "BusinessStatus": "Normal", "NatType": "Enhanced", "NetworkType": g.get("NetworkType", "internet"),
        "Spec": "", "Name": "", "RegionId": w.region,
        "SnatTableIds": {"SnatTableId": list(g.get("SnatTableIds", []))},
        "ForwardTableIds": {"ForwardTableId": []},
        "IpLists": {"IpList": [{"IpAddress": ip, "UsingStatus": "UsedBySnatTable", "SnatEntryEnabled": True}
                               for ip in g.get("Ips", [])]},
    } for g in items]
    return paged(rows, p, "NatGateways", "NatGateway", max_size=50)


def describe_snat_table_entries(w, p):
    items = w.get("snat_entries") if in_region(w, p) else []
    if p.get("SnatTableId"):
        tables = [t for g in w.get("nat_gateways") for t in g.get("SnatTableIds", [])]
        if p["SnatTableId"] not in tables:
            raise ApiError(404, "InvalidSnatTableId.NotFound", "The specified SNAT table does not exist.")
        items = [e for e in items if e["SnatTableId"] == p["SnatTableId"]]
    if p.get("SourceCIDR"):
        items = [e for e in items if e.get("SourceCIDR") == p["SourceCIDR"]]
    gw = {t: g["NatGatewayId"] for g in w.get("nat_gateways") for t in g.get("SnatTableIds", [])}
    rows = [{
        "SnatEntryId": e["SnatEntryId"], "SnatTableId": e["SnatTableId"],
        "NatGatewayId": gw.get(e["SnatTableId"], ""), "SourceCIDR": e.get("SourceCIDR", ""),
        "SourceVSwitchId": e.get("SourceVSwitchId", ""), "NetworkInterfaceId": e.get("NetworkInterfaceId", ""),
        "SnatIp": e.get("SnatIp", ""), "Status": e.get("Status", "Available"), "SnatEntryName": "",
        "EipAffinity": "0",
    } for e in items]
    return paged(rows, p, "SnatTableEntries", "SnatTableEntry", max_size=50)


def describe_load_balancers(w, p):
    items = w.get("load_balancers") if in_region(w, p) else []
    for key in ("Address", "LoadBalancerId", "AddressType", "VpcId"):
        if p.get(key):
            vals = [x.strip() for x in p[key].split(",")]
            items = [lb for lb in items if lb.get(key) in vals]
    rows = [{
        "LoadBalancerId": lb["LoadBalancerId"], "LoadBalancerName": lb.get("LoadBalancerName", ""),
        "Address": lb["Address"], "AddressType": lb.get("AddressType", "internet"),
        "AddressIPVersion": "ipv4", "LoadBalancerStatus": lb.get("LoadBalancerStatus", "active"),
        "NetworkType": "vpc", "RegionId": w.region, "VpcId": lb.get("VpcId", ""),
        "VSwitchId": lb.get("VSwitchId", ""), "Tags": {"Tag": []},
    } for lb in items]
    return paged(rows, p, "LoadBalancers", "LoadBalancer", max_size=100)


def listener_json(lb, l):
    return {
        "LoadBalancerId": lb["LoadBalancerId"], "ListenerPort": int(l["ListenerPort"]),
        "ListenerProtocol": l.get("ListenerProtocol", "tcp").lower(), "Status": l.get("Status", "running"),
        "BackendServerPort": int(l.get("BackendServerPort", 0)), "Bandwidth": -1, "Scheduler": "wrr",
        "AclStatus": l.get("AclStatus", "off"), "AclType": l.get("AclType", ""),
        "AclId": (l.get("AclIds") or [""])[0], "AclIds": list(l.get("AclIds", [])),
        "VServerGroupId": l.get("VServerGroupId", ""), "Description": "",
    }


def describe_load_balancer_listeners(w, p):
    ids = numbered(p, "LoadBalancerId")
    items = []
    for lb in (w.get("load_balancers") if in_region(w, p) else []):
        if ids and lb["LoadBalancerId"] not in ids:
            continue
        for l in lb.get("Listeners", []):
            items.append(listener_json(lb, l))
    if p.get("ListenerPort"):
        items = [l for l in items if str(l["ListenerPort"]) == p["ListenerPort"]]
    if p.get("ListenerProtocol"):
        items = [l for l in items if l["ListenerProtocol"] == p["ListenerProtocol"].lower()]
    return {"TotalCount": len(items), "MaxResults": 20, "NextToken": "", "Listeners": items}


def listener_attribute(protocol):
    def handler(w, p):
        lbs = w.get("load_balancers") if in_region(w, p) else []
        lb = find(lbs, "LoadBalancerId", p.get("LoadBalancerId"), "InvalidLoadBalancerId.NotFound", "load balancer")
        for l in lb.get("Listeners", []):
            if str(l["ListenerPort"]) == p.get("ListenerPort") and l.get("ListenerProtocol", "tcp").lower() == protocol:
                out = listener_json(lb, l)
                out["AclIds"] = {"AclId": out["AclIds"]}
                return out
        raise ApiError(404, "InvalidParameter", "The specified port of the listener does not exist.")
    return handler


def describe_acl_attribute(w, p):
    acl = find(w.get("acls"), "AclId", p.get("AclId"), "AclNotExist", "access control list")
    return {"AclId": acl["AclId"], "AclName": acl.get("AclName", ""), "AddressIPVersion": "ipv4",
            "AclEntrys": {"AclEntry": [{"AclEntryIP": c, "AclEntryComment": ""} for c in acl.get("Entries", [])]},
            "RelatedListeners": {"RelatedListener": []}}


def describe_vserver_group_attribute(w, p):
    g = find(w.get("vserver_groups"), "VServerGroupId", p.get("VServerGroupId"),
             "InvalidParameter.VServerGroupId", "vServer group")
    return {"VServerGroupId": g["VServerGroupId"], "VServerGroupName": g.get("VServerGroupName", ""),
            "LoadBalancerId": g.get("LoadBalancerId", ""),
            "BackendServers": {"BackendServer": [
                {"ServerId": b.get("ServerId", ""), "ServerIp": b.get("ServerIp", ""), "Port": int(b["Port"]),
                 "Weight": 100, "Type": b.get("Type", "ecs"), "Description": ""}
                for b in g.get("BackendServers", [])]}}


def describe_health_status(w, p):
    rows = [h for h in w.get("health") if h["LoadBalancerId"] == p.get("LoadBalancerId")]
    if p.get("ListenerPort"):
        rows = [h for h in rows if str(h["ListenerPort"]) == p["ListenerPort"]]
    if p.get("ListenerProtocol"):
        rows = [h for h in rows if h.get("Protocol", "tcp") == p["ListenerProtocol"].lower()]
    return {"BackendServers": {"BackendServer": [
        {"ListenerPort": int(h["ListenerPort"]), "Port": int(h["Port"]), "Protocol": h.get("Protocol", "tcp"),
         "ServerId": h.get("ServerId", ""), "ServerIp": h.get("ServerIp", ""),
         "ServerHealthStatus": h.get("ServerHealthStatus", "normal")} for h in rows]}}


HANDLERS = {
    (ECS, "DescribeInstances"): describe_instances,
    (ECS, "DescribeNetworkInterfaces"): describe_network_interfaces,
    (ECS, "DescribeSecurityGroups"): describe_security_groups,
    (ECS, "DescribeSecurityGroupAttribute"): describe_security_group_attribute,
    (ECS, "DescribePrefixListAttributes"): describe_prefix_list_attributes,
    (VPC, "DescribeVpcs"): describe_vpcs,
    (VPC, "DescribeVSwitches"): describe_vswitches,
    (VPC, "DescribeRouteTables"): describe_route_tables,
    (VPC, "DescribeRouteEntryList"): describe_route_entry_list,
    (VPC, "DescribeNatGateways"): describe_nat_gateways,
    (VPC, "DescribeSnatTableEntries"): describe_snat_table_entries,
    (SLB, "DescribeLoadBalancers"): describe_load_balancers,
    (SLB, "DescribeLoadBalancerListeners"): describe_load_balancer_listeners,
    (SLB, "DescribeLoadBalancerTCPListenerAttribute"): listener_attribute("tcp"),
    (SLB, "DescribeLoadBalancerUDPListenerAttribute"): listener_attribute("udp"),
    (SLB, "DescribeAccessControlListAttribute"): describe_acl_attribute,
    (SLB, "DescribeVServerGroupAttribute"): describe_vserver_group_attribute,
    (SLB, "DescribeHealthStatus"): describe_health_status,
}


# ---- the server -----------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    server_version = "aliyun-fake/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("aliyun_fake: " + (fmt % args) + "\n")

    def send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def handle_any(self, method):
        url = urllib.parse.urlsplit(self.path)
        body = self.body()
        state = self.server.state
        if url.path == "/fake/health":
            return self.send_json(200, {"ok": True})
        if url.path == "/fake/requests":
            with state["lock"]:
                return self.send_json(200, state["log"])
        if url.path == "/fake/scenario" and method == "POST":
            try:
                data = json.loads(body or b"{}")
            except ValueError as e:
                return self.send_json(400, {"error": f"not JSON: {e}"})
            with state["lock"]:
                state["world"] = World(data)
                state["log"] = []
            return self.send_json(200, {"loaded": data.get("scenario", "")})
        request_id = str(uuid.uuid4()).upper()
        pairs = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        params = dict(pairs)
        ctype = headers.get("content-type", "")
        if body and "application/x-www-form-urlencoded" in ctype:
            params.update(dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)))
        action = headers.get("x-acs-action") or params.get("Action", "")
        version = headers.get("x-acs-version") or params.get("Version", "")
        with state["lock"]:
            world = state["world"]
            state["log"].append({"action": action, "version": version, "query": url.query})
        try:
            if url.path != "/":
                raise ApiError(404, "InvalidAction.NotFound", f"No API at {url.path}; RPC APIs are at /.")
            verify(method, url.path, pairs, headers, body, world.data.get("credentials", {}))
            handler = HANDLERS.get((version, action))
            if handler is None:
                raise ApiError(404, "InvalidAction.NotFound",
                               f"Specified api is not found, please check your url and method: {action} {version}.")
            out = handler(world, params)
            out["RequestId"] = request_id
            return self.send_json(200, out)
        except ApiError as e:
            return self.send_json(e.status, {"RequestId": request_id, "HostId": headers.get("host", ""),
                                             "Code": e.code, "Message": e.message,
                                             "Recommend": f"https://api.aliyun.com/troubleshoot?q={e.code}"})


def serve(args):
    world = World()
    if args.scenario:
        import aliyun_scenarios
        world = World(aliyun_scenarios.build(args.scenario)["world"])
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.state = {"world": world, "log": [], "lock": threading.Lock()}
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(server.server_address[1]))
        os.replace(tmp, args.port_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def start(args):
    if args.log:
        log_path = os.path.abspath(args.log)
    else:
        fd, log_path = tempfile.mkstemp(prefix="skoop-aliyun-fake-", suffix=".log")
        os.close(fd)
    fd, port_file = tempfile.mkstemp(prefix="skoop-aliyun-fake-", suffix=".port")
    os.close(fd)
    os.unlink(port_file)
    cmd = [sys.executable, os.path.abspath(__file__), "serve", "--host", args.host,
           "--port", str(args.port), "--port-file", port_file]
    if args.scenario:
        cmd += ["--scenario", args.scenario]
    t0 = time.monotonic()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    port = None
    deadline = t0 + args.timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"aliyun_fake.py start: the server exited with status {proc.returncode} (log {log_path})")
        if port is None and os.path.exists(port_file):
            with open(port_file) as f:
                port = int(f.read().strip())
            os.unlink(port_file)
        if port is not None:
            try:
                with urllib.request.urlopen(f"http://{args.host}:{port}/fake/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.05)
    else:
        proc.kill()
        sys.exit(f"aliyun_fake.py start: not ready within {args.timeout:g} s (log {log_path})")
    print(json.dumps({"pid": proc.pid, "port": port, "endpoint": f"http://{args.host}:{port}",
                      "log": log_path, "startup_seconds": round(time.monotonic() - t0, 3)}))
    sys.stdout.flush()


def stop(args):
    pid = args.pid
    if not alive(pid):
        print(json.dumps({"stopped": pid}))
        return
    argv = cmdline(pid)
    if not any(a.endswith(b"aliyun_fake.py") for a in argv) or b"serve" not in argv:
        sys.exit(f"aliyun_fake.py stop: {pid} is not an aliyun_fake server")
    for sig, wait in ((signal.SIGTERM, args.timeout / 2), (signal.SIGKILL, args.timeout / 2)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and alive(pid):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
        if not alive(pid):
            break
    if alive(pid):
        sys.exit(f"aliyun_fake.py stop: {pid} is still running")
    print(json.dumps({"stopped": pid}))


def sign_cmd(args):
    pairs = urllib.parse.parse_qsl(args.query, keep_blank_values=True)
    headers = {
        "host": args.host, "x-acs-action": args.action, "x-acs-version": args.version,
        "x-acs-date": args.date, "x-acs-signature-nonce": args.nonce,
        "x-acs-content-sha256": sha256_hex(b""),
    }
    if args.token:
        headers["x-acs-security-token"] = args.token
    print(authorization(args.key_id, args.secret, "POST", "/", pairs, headers, b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--scenario")
    s.add_argument("--timeout", type=float, default=10)
    s.add_argument("--log")
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--scenario")
    s.add_argument("--port-file")
    s = sub.add_parser("stop")
    s.add_argument("pid", type=int)
    s.add_argument("--timeout", type=float, default=10)
    s = sub.add_parser("sign")
    for k in ("key-id", "secret", "host", "query", "action", "version", "date", "nonce"):
        s.add_argument(f"--{k}", required=True)
    s.add_argument("--token")
    args = ap.parse_args()
    {"start": start, "serve": serve, "stop": stop, "sign": sign_cmd}[args.cmd](args)


if __name__ == "__main__":
    main()
