"""Regenerates the XML fixtures beside this file from a running moto_server 5.2.5:

    moto_server -H 127.0.0.1 -p 5155 &
    python3 capture.py [http://127.0.0.1:5155] [--auth]

It resets moto, seeds its ids (the same ids on every run, except ELBv2's), builds two subnets
with a NAT and an internet gateway, security groups (self reference, CIDRs, a prefix list, IP
protocol 4), a custom network ACL without the `*` entries, two instances (one with a secondary
private IP and a public IP, one with a second ENI whose source/dest check is off) and an NLB,
then saves the raw answers of the Describe calls. With --auth it then creates a read-only IAM user,
turns on moto's SigV4 and IAM checking and prints the user's key as the last line,
`{"access_key_id": ..., "secret_access_key": ...}` (for tests/moto.rs). The end-to-end scenarios
live in tests/cloud/.
"""
import boto3, os, sys, json
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
EP = ARGS[0] if ARGS else "http://127.0.0.1:5155"
OUT = os.path.dirname(os.path.abspath(__file__))
RENAME = {"DescribeInstances1": "DescribeInstancesByIp", "DescribeInstances2": "ErrorInstanceNotFound",
          "DescribeLoadBalancers1": "ErrorLoadBalancerNotFound"}
import urllib.request
# Auth off (a text/plain body: a form type makes moto answer 500), then reset and seed.
urllib.request.urlopen(urllib.request.Request(EP + "/moto-api/reset-auth", data=b"inf", headers={"Content-Type": "text/plain"}, method="POST"))
urllib.request.urlopen(urllib.request.Request(EP + "/moto-api/reset", method="POST"))
urllib.request.urlopen(urllib.request.Request(EP + "/moto-api/seed?a=42", method="POST"))
kw = dict(endpoint_url=EP, region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
ec2 = boto3.client("ec2", **kw)
elb = boto3.client("elbv2", **kw)
captured = {}

def dump(prefix=""):
    for k, v in captured.items():
        for n, c in enumerate(v):
            name = f"{k}{'' if n == 0 else n}"
            open(f"{OUT}/{prefix}{RENAME.get(name, name)}.xml", "wb").write(c)
def hook(http_response, parsed, model, **k):
    captured.setdefault(model.name, []).append(http_response.content)
ec2.meta.events.register("after-call.ec2.*", hook)
elb.meta.events.register("after-call.elastic-load-balancing-v2.*", hook)

vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock="10.1.0.0/16")
sa = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
sb = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
nat = ec2.create_nat_gateway(SubnetId=sa, AllocationId=alloc)["NatGateway"]["NatGatewayId"]
main_rt = ec2.describe_route_tables(Filters=[{"Name":"vpc-id","Values":[vpc]}])["RouteTables"][0]["RouteTableId"]
ec2.create_route(RouteTableId=main_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
ec2.associate_route_table(RouteTableId=rt, SubnetId=sb)
ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
pl = ec2.create_managed_prefix_list(PrefixListName="office", MaxEntries=5, AddressFamily="IPv4", Entries=[{"Cidr":"192.0.2.0/24","Description":"office"},{"Cidr":"198.51.100.0/24"}])["PrefixList"]["PrefixListId"]

sg = ec2.create_security_group(GroupName="nodes", Description="k8s nodes", VpcId=vpc)["GroupId"]
sg2 = ec2.create_security_group(GroupName="lb", Description="lb", VpcId=vpc)["GroupId"]
ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
  {"IpProtocol":"-1","UserIdGroupPairs":[{"GroupId":sg}]},
  {"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"0.0.0.0/0","Description":"ssh"}]},
  {"IpProtocol":"udp","FromPort":8472,"ToPort":8472,"IpRanges":[{"CidrIp":"10.0.0.0/16"}]},
  {"IpProtocol":"icmp","FromPort":-1,"ToPort":-1,"IpRanges":[{"CidrIp":"10.0.0.0/8"}]},
  {"IpProtocol":"tcp","FromPort":30000,"ToPort":32767,"UserIdGroupPairs":[{"GroupId":sg2}], "PrefixListIds":[{"PrefixListId":pl}]},
  {"IpProtocol":"4","FromPort":-1,"ToPort":-1,"IpRanges":[{"CidrIp":"10.0.0.0/16"}]},
])
ec2.revoke_security_group_egress(GroupId=sg2, IpPermissions=[{"IpProtocol":"-1","IpRanges":[{"CidrIp":"0.0.0.0/0"}]}])
ec2.authorize_security_group_egress(GroupId=sg2, IpPermissions=[{"IpProtocol":"6","FromPort":30000,"ToPort":32767,"UserIdGroupPairs":[{"GroupId":sg}]}])

acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Protocol="6", RuleAction="allow", Egress=False, CidrBlock="0.0.0.0/0", PortRange={"From":80,"To":80})
ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=110, Protocol="-1", RuleAction="allow", Egress=False, CidrBlock="10.0.0.0/16")
ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=90, Protocol="17", RuleAction="deny", Egress=True, CidrBlock="10.0.1.0/24", PortRange={"From":8472,"To":8472})
ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=200, Protocol="-1", RuleAction="allow", Egress=True, CidrBlock="0.0.0.0/0")
ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=120, Protocol="1", RuleAction="allow", Egress=False, CidrBlock="0.0.0.0/0", IcmpTypeCode={"Code":-1,"Type":-1})
# associate custom acl with subnet b
assoc = [a for n in ec2.describe_network_acls(Filters=[{"Name":"association.subnet-id","Values":[sb]}])["NetworkAcls"] for a in n["Associations"] if a["SubnetId"]==sb][0]["NetworkAclAssociationId"]
ec2.replace_network_acl_association(AssociationId=assoc, NetworkAclId=acl)

ami = ec2.describe_images()["Images"][0]["ImageId"]
i1 = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.medium",
    NetworkInterfaces=[{"DeviceIndex":0,"SubnetId":sa,"Groups":[sg],"AssociatePublicIpAddress":True,"PrivateIpAddresses":[{"PrivateIpAddress":"10.0.1.10","Primary":True},{"PrivateIpAddress":"10.0.1.11","Primary":False}]}])["Instances"][0]["InstanceId"]
i2 = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.medium", SubnetId=sb, SecurityGroupIds=[sg], PrivateIpAddress="10.0.2.20")["Instances"][0]["InstanceId"]
p1 = ec2.describe_instances(InstanceIds=[i1])['Reservations'][0]['Instances'][0]['NetworkInterfaces'][0]['NetworkInterfaceId']
ec2.assign_private_ip_addresses(NetworkInterfaceId=p1, PrivateIpAddresses=['10.0.1.11'])
eni = ec2.create_network_interface(SubnetId=sb, Groups=[sg, sg2], PrivateIpAddress="10.0.2.30", Description="extra")["NetworkInterface"]["NetworkInterfaceId"]
ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=i2, DeviceIndex=1)
ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value":False})
ec2.create_route(RouteTableId=rt, DestinationCidrBlock="10.244.1.0/24", InstanceId=i1)
ec2.create_route(RouteTableId=rt, DestinationCidrBlock="10.244.2.0/24", NetworkInterfaceId=eni)
ec2.create_route(RouteTableId=main_rt, DestinationPrefixListId=pl, GatewayId=igw)

# describes (captured)
captured.clear()
ec2.describe_instances(InstanceIds=[i1, i2])
ec2.describe_instances(Filters=[{"Name":"private-ip-address","Values":["10.0.2.20"]}])
ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])
ec2.describe_security_groups(GroupIds=[sg, sg2])
ec2.describe_network_acls(Filters=[{"Name":"vpc-id","Values":[vpc]}])
ec2.describe_route_tables(Filters=[{"Name":"vpc-id","Values":[vpc]}])
ec2.describe_subnets(SubnetIds=[sa, sb])
ec2.describe_vpcs(VpcIds=[vpc])
ec2.describe_nat_gateways(NatGatewayIds=[nat])
ec2.describe_internet_gateways(Filters=[{"Name":"attachment.vpc-id","Values":[vpc]}])
ec2.get_managed_prefix_list_entries(PrefixListId=pl)
try:
    ec2.describe_instances(InstanceIds=["i-00000000000000000"])
except Exception as e:
    print("expected error", e)

dump()
captured.clear()
lb = elb.create_load_balancer(Name="web", Subnets=[sa, sb], SecurityGroups=[sg2], Scheme="internet-facing", Type="network")["LoadBalancers"][0]["LoadBalancerArn"]
tg = elb.create_target_group(Name="web-tg", Protocol="TCP", Port=30080, VpcId=vpc, TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
elb.register_targets(TargetGroupArn=tg, Targets=[{"Id":i1,"Port":30080},{"Id":i2,"Port":30080}])
elb.create_listener(LoadBalancerArn=lb, Protocol="TCP", Port=80, DefaultActions=[{"Type":"forward","TargetGroupArn":tg}])
ec2.stop_instances(InstanceIds=[i2])
captured.clear()
elb.describe_load_balancers()
elb.describe_listeners(LoadBalancerArn=lb)
elb.describe_target_groups(LoadBalancerArn=lb)
elb.describe_target_health(TargetGroupArn=tg)
try:
    elb.describe_load_balancers(Names=["nope"])
except Exception as e:
    print("expected error", e)
dump()
print(json.dumps(dict(vpc=vpc, sa=sa, sb=sb, igw=igw, nat=nat, rt=rt, main_rt=main_rt, sg=sg, sg2=sg2, acl=acl, i1=i1, i2=i2, eni=eni, pl=pl)))

if "--auth" in sys.argv:
    iam = boto3.client("iam", **kw)
    iam.create_user(UserName="skoop")
    iam.put_user_policy(UserName="skoop", PolicyName="read-only", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
            "ec2:Describe*", "ec2:GetManagedPrefixListEntries", "elasticloadbalancing:Describe*"]}]}))
    key = iam.create_access_key(UserName="skoop")["AccessKey"]
    urllib.request.urlopen(urllib.request.Request(EP + "/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}, method="POST"))
    print(json.dumps({"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}))
