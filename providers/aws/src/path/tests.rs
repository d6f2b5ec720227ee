//! The three paths over an in-memory cloud: a healthy two-subnet VPC, then
//! one fault at a time.

use std::cell::RefCell;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use skoop_sdk::{EPHEMERAL_PORT, Encap, EncapKind, Level, Node, Packet, Protocol, Underlay};

use super::*;
use crate::checks::{Fetch, FetchError, PrefixLists};
use crate::ec2::{
    AclEntry, Instance, InternetGateway, IpProtocol, NatGateway, NetworkAcl, NetworkInterface,
    Permission, PrivateIp, Route, RouteDestination, RouteTable, SecurityGroup,
};
use crate::elb::{Listener, LoadBalancer, TargetHealth};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

#[derive(Clone)]
struct World {
    instances: Vec<Instance>,
    groups: Vec<SecurityGroup>,
    acls: Vec<NetworkAcl>,
    tables: Vec<RouteTable>,
    nats: Vec<NatGateway>,
    igws: Vec<InternetGateway>,
    lb_enis: Vec<NetworkInterface>,
    lbs: Vec<LoadBalancer>,
    listeners: Vec<(String, Listener)>,
    health: Vec<(String, TargetHealth)>,
    fail: Option<FetchError>,
    calls: RefCell<Vec<String>>,
}

impl World {
    fn call(&self, what: &str) -> Fetch<()> {
        self.calls.borrow_mut().push(what.to_string());
        match &self.fail {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

impl PrefixLists for World {
    fn prefix_list(&self, id: &str) -> Fetch<Vec<Ipv4Net>> {
        self.call(&format!("pl {id}"))?;
        Ok(vec![])
    }
}

impl Cloud for World {
    fn instance_by_id(&self, id: &str) -> Fetch<Option<Instance>> {
        self.call(&format!("instance {id}"))?;
        Ok(self.instances.iter().find(|i| i.id == id).cloned())
    }
    fn instance_by_ip(&self, addr: Ipv4Addr) -> Fetch<Option<Instance>> {
        self.call(&format!("instance {addr}"))?;
        Ok(self
            .instances
            .iter()
            .find(|i| i.private_ip == Some(addr))
            .cloned())
    }
    fn security_group(&self, id: &str) -> Fetch<Option<SecurityGroup>> {
        self.call(&format!("group {id}"))?;
        Ok(self.groups.iter().find(|g| g.id == id).cloned())
    }
    fn network_acls(&self, vpc: &str) -> Fetch<Vec<NetworkAcl>> {
        self.call(&format!("acls {vpc}"))?;
        Ok(self.acls.clone())
    }
    fn route_tables(&self, vpc: &str) -> Fetch<Vec<RouteTable>> {
        self.call(&format!("tables {vpc}"))?;
        Ok(self.tables.clone())
    }
    fn nat_gateway(&self, id: &str) -> Fetch<Option<NatGateway>> {
        self.call(&format!("nat {id}"))?;
        Ok(self.nats.iter().find(|n| n.id == id).cloned())
    }
    fn internet_gateways(&self, vpc: &str) -> Fetch<Vec<InternetGateway>> {
        self.call(&format!("igws {vpc}"))?;
        Ok(self.igws.clone())
    }
    fn load_balancer_interfaces(&self) -> Fetch<Vec<NetworkInterface>> {
        self.call("lb enis")?;
        Ok(self.lb_enis.clone())
    }
    fn load_balancers(&self) -> Fetch<Vec<LoadBalancer>> {
        self.call("lbs")?;
        Ok(self.lbs.clone())
    }
    fn listeners(&self, arn: &str) -> Fetch<Vec<Listener>> {
        self.call(&format!("listeners {arn}"))?;
        Ok(self
            .listeners
            .iter()
            .filter(|(a, _)| a == arn)
            .map(|(_, l)| l.clone())
            .collect())
    }
    fn target_health(&self, arn: &str) -> Fetch<Vec<TargetHealth>> {
        self.call(&format!("health {arn}"))?;
        Ok(self
            .health
            .iter()
            .filter(|(a, _)| a == arn)
            .map(|(_, t)| t.clone())
            .collect())
    }
}

fn eni(
    id: &str,
    subnet: &str,
    addr: &str,
    public: Option<&str>,
    instance: &str,
) -> NetworkInterface {
    NetworkInterface {
        id: id.into(),
        subnet_id: subnet.into(),
        vpc_id: "vpc-1".into(),
        private_ip: Some(ip(addr)),
        private_ips: vec![PrivateIp {
            address: ip(addr),
            primary: true,
            public_ip: public.map(ip),
        }],
        groups: vec!["sg-nodes".into()],
        source_dest_check: true,
        public_ip: public.map(ip),
        device_index: Some(0),
        instance_id: Some(instance.into()),
        ..NetworkInterface::default()
    }
}

fn instance(id: &str, e: NetworkInterface) -> Instance {
    Instance {
        id: id.into(),
        state: "running".into(),
        subnet_id: e.subnet_id.clone(),
        vpc_id: "vpc-1".into(),
        availability_zone: "us-east-1a".into(),
        private_ip: e.private_ip,
        public_ip: e.public_ip,
        source_dest_check: Some(true),
        groups: e.groups.clone(),
        interfaces: vec![e],
    }
}

fn perm(proto: &str, from: i32, to: i32, cidrs: &[&str], groups: &[&str]) -> Permission {
    Permission {
        protocol: IpProtocol::parse(proto).unwrap(),
        from_port: Some(from),
        to_port: Some(to),
        cidrs: cidrs.iter().map(|c| net(c)).collect(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        prefix_lists: vec![],
    }
}

fn entry(
    n: u32,
    proto: &str,
    allow: bool,
    egress: bool,
    cidr: &str,
    ports: Option<(u16, u16)>,
) -> AclEntry {
    AclEntry {
        rule_number: n,
        protocol: IpProtocol::parse(proto).unwrap(),
        allow,
        egress,
        cidr: Some(net(cidr)),
        ports,
    }
}

fn route(dst: &str, target: &str) -> Route {
    let mut r = Route {
        destination: RouteDestination::Cidr(net(dst)),
        gateway_id: None,
        nat_gateway_id: None,
        instance_id: None,
        network_interface_id: None,
        vpc_peering_connection_id: None,
        transit_gateway_id: None,
        other_target: None,
        state: "active".into(),
    };
    match target.split('-').next() {
        Some("nat") => r.nat_gateway_id = Some(target.into()),
        Some("i") => r.instance_id = Some(target.into()),
        Some("eni") => r.network_interface_id = Some(target.into()),
        _ => r.gateway_id = Some(target.into()),
    }
    r
}

/// vpc-1 10.0.0.0/16; subnet-a 10.0.1.0/24 (main table: internet gateway),
/// subnet-b 10.0.2.0/24 (its own table: NAT gateway in subnet-a). Node n1
/// (i-1, eni-1, 10.0.1.10, public 54.0.0.1) in subnet-a, node n2 (i-2,
/// eni-2, 10.0.2.20) in subnet-b; both in sg-nodes. Pod CIDRs 10.244.1.0/24
/// and 10.244.2.0/24 are routed to the nodes.
fn world() -> World {
    let all_acl = |id: &str, default: bool, subnets: &[&str]| NetworkAcl {
        id: id.into(),
        vpc_id: "vpc-1".into(),
        default,
        entries: vec![
            entry(100, "-1", true, true, "0.0.0.0/0", None),
            entry(32767, "-1", false, true, "0.0.0.0/0", None),
            entry(100, "-1", true, false, "0.0.0.0/0", None),
            entry(32767, "-1", false, false, "0.0.0.0/0", None),
        ],
        subnets: subnets.iter().map(|s| s.to_string()).collect(),
    };
    World {
        instances: vec![
            instance(
                "i-1",
                eni("eni-1", "subnet-a", "10.0.1.10", Some("54.0.0.1"), "i-1"),
            ),
            instance("i-2", eni("eni-2", "subnet-b", "10.0.2.20", None, "i-2")),
        ],
        groups: vec![SecurityGroup {
            id: "sg-nodes".into(),
            name: "nodes".into(),
            vpc_id: "vpc-1".into(),
            ingress: vec![
                perm("-1", -1, -1, &[], &["sg-nodes"]),
                perm("-1", -1, -1, &["10.244.0.0/16"], &[]),
                perm("tcp", 22, 22, &["0.0.0.0/0"], &[]),
            ],
            egress: vec![perm("-1", -1, -1, &["0.0.0.0/0"], &[])],
        }],
        acls: vec![
            all_acl("acl-default", true, &["subnet-a"]),
            all_acl("acl-b", false, &["subnet-b"]),
        ],
        tables: vec![
            RouteTable {
                id: "rtb-main".into(),
                vpc_id: "vpc-1".into(),
                routes: vec![
                    route("10.0.0.0/16", "local"),
                    route("0.0.0.0/0", "igw-1"),
                    route("10.244.2.0/24", "i-2"),
                ],
                subnets: vec![],
                main: true,
            },
            RouteTable {
                id: "rtb-b".into(),
                vpc_id: "vpc-1".into(),
                routes: vec![
                    route("10.0.0.0/16", "local"),
                    route("0.0.0.0/0", "nat-1"),
                    route("10.244.1.0/24", "eni-1"),
                ],
                subnets: vec!["subnet-b".into()],
                main: false,
            },
        ],
        nats: vec![NatGateway {
            id: "nat-1".into(),
            state: "available".into(),
            subnet_id: "subnet-a".into(),
            vpc_id: "vpc-1".into(),
            connectivity_type: "public".into(),
            public_ips: vec![ip("54.0.0.9")],
        }],
        igws: vec![InternetGateway {
            id: "igw-1".into(),
            attachments: vec![("vpc-1".into(), "available".into())],
        }],
        lb_enis: vec![],
        lbs: vec![],
        listeners: vec![],
        health: vec![],
        fail: None,
        calls: RefCell::new(vec![]),
    }
}

const LB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/web/1";
const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/9";

/// The world with a network load balancer `web` at 10.0.1.100 (public
/// 3.3.3.3) listening on TCP 80 for target group web-tg: both nodes on port
/// 30080, healthy; the nodes admit NodePorts from anywhere.
fn with_load_balancer() -> World {
    let mut w = world();
    let mut lb_eni = eni("eni-lb", "subnet-a", "10.0.1.100", Some("3.3.3.3"), "");
    lb_eni.description = "ELB net/web/1".into();
    lb_eni.groups.clear();
    w.lb_enis = vec![lb_eni];
    w.lbs = vec![LoadBalancer {
        arn: LB.into(),
        name: "web".into(),
        dns_name: "web-1.elb.us-east-1.amazonaws.com".into(),
        scheme: "internet-facing".into(),
        vpc_id: "vpc-1".into(),
        state: "active".into(),
        kind: "network".into(),
        security_groups: vec![],
    }];
    w.listeners = vec![(
        LB.into(),
        Listener {
            arn: "l-1".into(),
            port: 80,
            protocol: "TCP".into(),
            target_groups: vec![TG.into()],
        },
    )];
    let target = |id: &str| TargetHealth {
        id: id.into(),
        port: Some(30080),
        state: "healthy".into(),
        reason: String::new(),
        description: String::new(),
    };
    w.health = vec![(TG.into(), target("i-1")), (TG.into(), target("i-2"))];
    w.groups[0]
        .ingress
        .push(perm("tcp", 30000, 32767, &["0.0.0.0/0"], &[]));
    w
}

fn node(name: &str, addr: &str, provider_id: Option<&str>) -> Node {
    Node {
        name: name.into(),
        ip: ip(addr),
        pod_cidrs: vec![],
        ready: true,
        host_interface: None,
        annotations: vec![],
        labels: vec![],
        provider_id: provider_id.map(str::to_string),
    }
}

fn n1() -> Node {
    node("n1", "10.0.1.10", Some("aws:///us-east-1a/i-1"))
}

fn n2() -> Node {
    node("n2", "10.0.2.20", Some("aws:///us-east-1b/i-2"))
}

fn tcp(src: &str, dst: &str, dport: u16) -> Packet {
    Packet {
        src: ip(src),
        sport: EPHEMERAL_PORT,
        dst: ip(dst),
        dport,
        protocol: Protocol::Tcp,
        mark: 0,
        encap: None,
        reply: false,
        tos: 0,
        size: 0,
        icmp: None,
    }
}

fn vxlan(src: &str, dst: &str) -> Packet {
    Packet {
        encap: Some(Encap {
            kind: EncapKind::Vxlan,
            src: ip(src),
            dst: ip(dst),
            vni: Some(1),
            port: Some(8472),
        }),
        ..tcp("10.244.1.5", "10.244.2.5", 80)
    }
}

fn kinds(u: &Underlay) -> Vec<(&str, &str)> {
    u.hops
        .iter()
        .map(|h| (h.kind.as_str(), h.id.as_str()))
        .collect()
}

fn bad(u: &Underlay) -> Vec<String> {
    u.suspicions
        .iter()
        .filter(|s| s.level != Level::Info)
        .map(|s| s.message.clone())
        .collect()
}

#[test]
fn provider_ids_and_regions() {
    assert_eq!(instance_id("aws:///us-east-1a/i-0abc"), Some("i-0abc"));
    assert_eq!(instance_id("aws://us-east-1a/i-0abc"), Some("i-0abc"));
    assert_eq!(instance_id("gce://p/z/n"), None);
    assert_eq!(instance_id("aws:///us-east-1a/"), None);
    assert_eq!(zone("aws:///us-east-1a/i-0abc"), Some("us-east-1a"));
    assert_eq!(region_of(&n1()).as_deref(), Some("us-east-1"));
    let mut n = n1();
    n.labels
        .push(("topology.kubernetes.io/region".into(), "eu-west-3".into()));
    assert_eq!(region_of(&n).as_deref(), Some("eu-west-3"));
    assert_eq!(region_of(&node("x", "10.0.0.1", None)), None);
}

#[test]
fn healthy_vxlan_between_subnets_is_quiet_and_passes_every_device() {
    let w = world();
    let u = node_to_node(&w, &n1(), &n2(), &vxlan("10.0.1.10", "10.0.2.20"));
    assert!(bad(&u).is_empty(), "{:?}", u.suspicions);
    assert_eq!(
        kinds(&u),
        vec![
            ("security-group", "sg-nodes"),
            ("network-acl", "acl-default"),
            ("route-table", "rtb-main"),
            ("network-acl", "acl-b"),
            ("security-group", "sg-nodes"),
        ]
    );
    assert_eq!(
        u.hops[2].detail,
        "route 10.0.0.0/16 -> local takes the VXLAN request udp 10.0.1.10 -> 10.0.2.20:8472"
    );
    assert_eq!(
        u.hops[4].detail,
        "ingress: rule all traffic from sg-nodes allows the VXLAN request udp 10.0.1.10 -> 10.0.2.20:8472"
    );
    // Each fact once: two instances, the groups, the ACLs and the tables.
    assert_eq!(
        *w.calls.borrow(),
        vec![
            "instance i-1",
            "instance i-2",
            "group sg-nodes",
            "acls vpc-1",
            "tables vpc-1"
        ]
    );
}

#[test]
fn same_subnet_skips_network_acls() {
    let mut w = world();
    w.instances[1] = instance("i-2", eni("eni-2", "subnet-a", "10.0.1.20", None, "i-2"));
    for a in &mut w.acls {
        a.entries.clear();
    }
    let u = node_to_node(
        &w,
        &n1(),
        &node("n2", "10.0.1.20", Some("aws:///us-east-1a/i-2")),
        &vxlan("10.0.1.10", "10.0.1.20"),
    );
    assert!(bad(&u).is_empty(), "{:?}", u.suspicions);
    assert!(!w.calls.borrow().iter().any(|c| c.starts_with("acls")));
    assert!(!u.hops.iter().any(|h| h.kind == "network-acl"));
}

#[test]
fn a_network_acl_denying_vxlan_is_critical_both_ways() {
    let mut w = world();
    w.acls[1].entries = vec![
        entry(90, "17", false, false, "10.0.1.0/24", Some((8472, 8472))),
        entry(100, "-1", true, false, "0.0.0.0/0", None),
        entry(100, "-1", true, true, "0.0.0.0/0", None),
    ];
    let u = node_to_node(&w, &n1(), &n2(), &vxlan("10.0.1.10", "10.0.2.20"));
    assert_eq!(
        bad(&u),
        vec![
            "network ACL acl-b of subnet subnet-b denies the VXLAN request udp 10.0.1.10 -> 10.0.2.20:8472 inbound: rule 90 (deny udp 8472 from 10.0.1.0/24) (SUBNET_ACL_RESTRICTION)"
        ]
    );
    assert!(u.suspicions.iter().all(|s| s.level == Level::Critical));
    // The other way, its egress is checked for the request and its ingress for the return tunnel.
    let u = node_to_node(&w, &n2(), &n1(), &vxlan("10.0.2.20", "10.0.1.10"));
    assert_eq!(
        bad(&u),
        vec![
            "network ACL acl-b of subnet subnet-b denies the VXLAN reply udp 10.0.1.10 -> 10.0.2.20:8472 inbound: rule 90 (deny udp 8472 from 10.0.1.0/24) (SUBNET_ACL_RESTRICTION)"
        ]
    );
}

#[test]
fn the_reply_check_of_a_request_reads_as_the_reply_itself() {
    let mut w = world();
    // subnet-b admits tcp 80 in and nothing out.
    w.acls[1].entries = vec![entry(100, "6", true, false, "0.0.0.0/0", Some((80, 80)))];
    let request = node_to_node(&w, &n1(), &n2(), &tcp("10.0.1.10", "10.0.2.20", 80));
    let expected = "network ACL acl-b of subnet subnet-b denies the reply tcp 10.0.2.20:80 -> 10.0.1.10 on ephemeral ports 1024-65535 outbound: rule * (deny all traffic, the final rule) (SUBNET_ACL_RESTRICTION)";
    assert_eq!(bad(&request), vec![expected]);
    let reply = Packet {
        src: ip("10.0.2.20"),
        sport: 80,
        dst: ip("10.0.1.10"),
        dport: EPHEMERAL_PORT,
        reply: true,
        ..tcp("1.1.1.1", "1.1.1.1", 1)
    };
    let back = node_to_node(&w, &n2(), &n1(), &reply);
    assert_eq!(bad(&back), vec![expected]);
    // Security groups are stateful: the reply is not checked against them.
    assert!(!back.hops.iter().any(|h| h.kind == "security-group"));
}

#[test]
fn missing_security_group_rule_is_critical() {
    let mut w = world();
    w.groups[0].ingress = vec![perm("tcp", 22, 22, &["0.0.0.0/0"], &[])];
    let u = node_to_node(&w, &n1(), &n2(), &vxlan("10.0.1.10", "10.0.2.20"));
    assert_eq!(
        bad(&u),
        vec![
            "no ingress rule of security group sg-nodes of eni-2 (node n2, instance i-2) allows the VXLAN request udp 10.0.1.10 -> 10.0.2.20:8472 (ENI_SG_RULES_MISMATCH)"
        ]
    );
}

#[test]
fn native_pod_routing_needs_routes_and_the_check_off() {
    let mut w = world();
    for i in &mut w.instances {
        i.interfaces[0].source_dest_check = false;
    }
    let pods = tcp("10.244.1.5", "10.244.2.5", 80);
    let u = node_to_node(&w, &n1(), &n2(), &pods);
    assert!(bad(&u).is_empty(), "{:?}", u.suspicions);
    assert_eq!(
        u.hops[2].detail,
        "route 10.244.2.0/24 -> i-2 takes the request tcp 10.244.1.5 -> 10.244.2.5:80"
    );

    // The route points at the wrong node.
    let mut wrong = w.clone();
    wrong.tables[0].routes[2] = route("10.244.2.0/24", "i-1");
    let u = node_to_node(&wrong, &n1(), &n2(), &pods);
    assert_eq!(
        bad(&u),
        vec![
            "route table rtb-main of subnet subnet-a sends 10.244.2.5, outside the VPC's CIDRs, by route 10.244.2.0/24 -> i-1 instead of to node n2 (instance i-2): the request tcp 10.244.1.5 -> 10.244.2.5:80 does not reach the node (NO_ROUTE_TO_DESTINATION)"
        ]
    );

    // No route at all: the default route to the internet gateway takes it.
    let mut none = w.clone();
    none.tables[0].routes.truncate(2);
    let u = node_to_node(&none, &n1(), &n2(), &pods);
    assert!(bad(&u)[0].contains("by route 0.0.0.0/0 -> igw-1 instead of to node n2"));

    // A blackhole route.
    let mut hole = w.clone();
    hole.tables[0].routes[2].state = "blackhole".into();
    let u = node_to_node(&hole, &n1(), &n2(), &pods);
    assert!(bad(&u)[0].ends_with("(BAD_STATE_ROUTE)"));

    // Source/destination check on: both ends drop.
    let u = node_to_node(&world(), &n1(), &n2(), &pods);
    let b = bad(&u);
    assert_eq!(b.len(), 2, "{b:?}");
    assert_eq!(
        b[0],
        "eni-1 (node n1, instance i-1) has the source/destination check on and sends the request tcp 10.244.1.5 -> 10.244.2.5:80 from 10.244.1.5, which is not one of its private IPs (10.0.1.10): turn the check off (ENI_SOURCE_DEST_CHECK_RESTRICTION)"
    );
    assert_eq!(
        b[1],
        "eni-2 (node n2, instance i-2) has the source/destination check on and receives the request tcp 10.244.1.5 -> 10.244.2.5:80 for 10.244.2.5, which is not one of its private IPs (10.0.2.20): turn the check off (ENI_SOURCE_DEST_CHECK_RESTRICTION)"
    );
}

#[test]
fn pod_addresses_do_not_match_security_group_references() {
    let mut w = world();
    for i in &mut w.instances {
        i.interfaces[0].source_dest_check = false;
    }
    w.groups[0].ingress.remove(1);
    let u = node_to_node(&w, &n1(), &n2(), &tcp("10.244.1.5", "10.244.2.5", 80));
    let b = bad(&u);
    assert_eq!(b.len(), 1);
    assert!(b[0].contains("matches members of sg-nodes by their private IPs only, and 10.244.1.5 is not one of eni-1's (10.0.1.10)"), "{}", b[0]);
    assert!(b[0].ends_with("(ENI_SG_RULES_MISMATCH)"));
}

#[test]
fn instance_lookup_and_cloud_errors_are_warnings() {
    let w = world();
    // No provider ID: by address.
    let u = node_to_node(
        &w,
        &node("n1", "10.0.1.10", None),
        &n2(),
        &vxlan("10.0.1.10", "10.0.2.20"),
    );
    assert!(bad(&u).is_empty());
    assert_eq!(w.calls.borrow()[0], "instance 10.0.1.10");
    // Unknown.
    let u = node_to_node(
        &w,
        &node("n9", "10.0.9.9", Some("aws:///us-east-1a/i-9")),
        &n2(),
        &vxlan("10.0.9.9", "10.0.2.20"),
    );
    assert_eq!(
        bad(&u),
        vec![
            "cannot check the EC2 instance of node n9: no EC2 instance found by instance i-9 of its provider ID nor by its address 10.0.9.9"
        ]
    );
    assert_eq!(u.suspicions[0].level, Level::Warning);
    assert!(u.hops.is_empty());
    // An API error.
    let mut denied = world();
    denied.fail = Some(FetchError::Api {
        code: "AuthFailure".into(),
        message: "AWS was not able to validate the provided access credentials".into(),
    });
    let u = node_to_node(&denied, &n1(), &n2(), &vxlan("10.0.1.10", "10.0.2.20"));
    assert_eq!(
        bad(&u),
        vec![
            "cannot check the EC2 instance of node n1: AuthFailure: AWS was not able to validate the provided access credentials"
        ]
    );
    assert_eq!(u.suspicions[0].level, Level::Warning);
    let mut replay = world();
    replay.fail = Some(FetchError::NotRecorded);
    let u = node_to_external(&replay, &n1(), &tcp("10.0.1.10", "8.8.8.8", 443));
    assert_eq!(
        bad(&u),
        vec!["cannot check the EC2 instance of node n1 (not recorded)"]
    );
}

#[test]
fn healthy_egress_through_internet_and_nat_gateways() {
    let w = world();
    let u = node_to_external(&w, &n1(), &tcp("10.0.1.10", "8.8.8.8", 443));
    assert!(bad(&u).is_empty(), "{:?}", u.suspicions);
    assert_eq!(
        kinds(&u),
        vec![
            ("security-group", "sg-nodes"),
            ("network-acl", "acl-default"),
            ("route-table", "rtb-main"),
            ("internet-gateway", "igw-1"),
        ]
    );
    assert_eq!(
        u.hops[3].detail,
        "translates the source 10.0.1.10 to its public IP 54.0.0.1"
    );

    let u = node_to_external(&w, &n2(), &tcp("10.0.2.20", "8.8.8.8", 443));
    assert!(bad(&u).is_empty(), "{:?}", u.suspicions);
    assert_eq!(
        kinds(&u),
        vec![
            ("security-group", "sg-nodes"),
            ("network-acl", "acl-b"),
            ("route-table", "rtb-b"),
            ("nat-gateway", "nat-1"),
            ("route-table", "rtb-main"),
            ("internet-gateway", "igw-1"),
        ]
    );
}

#[test]
fn egress_faults() {
    // No public IP behind an internet gateway.
    let mut w = world();
    w.instances[0].interfaces[0].private_ips[0].public_ip = None;
    w.instances[0].interfaces[0].public_ip = None;
    let u = node_to_external(&w, &n1(), &tcp("10.0.1.10", "8.8.8.8", 443));
    assert_eq!(
        bad(&u),
        vec![
            "route table rtb-main of subnet subnet-a sends the request tcp 10.0.1.10 -> 8.8.8.8:443 to internet gateway igw-1 (route 0.0.0.0/0 -> igw-1), but 10.0.1.10 of eni-1 (node n1, instance i-1) has no public IP: the internet gateway drops it (IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS)"
        ]
    );
    // A NAT gateway that is gone.
    let mut w = world();
    w.nats[0].state = "deleted".into();
    let u = node_to_external(&w, &n2(), &tcp("10.0.2.20", "8.8.8.8", 443));
    assert_eq!(
        bad(&u),
        vec![
            "NAT gateway nat-1 (route 0.0.0.0/0 -> nat-1 of route table rtb-b) is deleted, not available: it drops the request tcp 10.0.2.20 -> 8.8.8.8:443 (BAD_STATE)"
        ]
    );
    // A NAT gateway whose subnet has no way out.
    let mut w = world();
    w.tables[0].routes.remove(1);
    let u = node_to_external(&w, &n2(), &tcp("10.0.2.20", "8.8.8.8", 443));
    assert_eq!(
        bad(&u),
        vec![
            "route table rtb-main of subnet subnet-a has no route to 8.8.8.8 for the request tcp 10.0.2.20 -> 8.8.8.8:443 (NO_ROUTE_TO_DESTINATION)"
        ]
    );
    // No default route.
    let mut w = world();
    w.tables[1].routes.remove(1);
    let u = node_to_external(&w, &n2(), &tcp("10.0.2.20", "8.8.8.8", 443));
    assert!(bad(&u)[0].starts_with("route table rtb-b of subnet subnet-b has no route to 8.8.8.8"));
    // Egress blocked by the security group, and the reply by the network ACL.
    let mut w = world();
    w.groups[0].egress = vec![perm("tcp", 443, 443, &["10.0.0.0/8"], &[])];
    w.acls[0].entries.retain(|e| e.egress);
    let u = node_to_external(&w, &n1(), &tcp("10.0.1.10", "8.8.8.8", 443));
    assert_eq!(
        bad(&u),
        vec![
            "no egress rule of security group sg-nodes of eni-1 (node n1, instance i-1) allows the request tcp 10.0.1.10 -> 8.8.8.8:443 (ENI_SG_RULES_MISMATCH)",
            "network ACL acl-default of subnet subnet-a denies the reply tcp 8.8.8.8:443 -> 10.0.1.10 on ephemeral ports 1024-65535 inbound: rule * (deny all traffic, the final rule) (SUBNET_ACL_RESTRICTION)"
        ]
    );
}

#[test]
fn ingress_from_outside() {
    let w = world();
    // To the public IP, on an admitted port.
    let u = external_to_node(&w, &n1(), &tcp("203.0.113.7", "54.0.0.1", 22));
    assert!(bad(&u).is_empty(), "{:?}", u.suspicions);
    assert_eq!(
        kinds(&u),
        vec![
            ("internet-gateway", "igw-1"),
            ("network-acl", "acl-default"),
            ("security-group", "sg-nodes")
        ]
    );
    assert_eq!(
        u.hops[0].detail,
        "translates the destination 54.0.0.1 to 10.0.1.10"
    );
    assert_eq!(
        u.hops[2].detail,
        "ingress: rule tcp 22 from 0.0.0.0/0 allows the request tcp 203.0.113.7 -> 10.0.1.10:22"
    );
    // A port no rule admits.
    let u = external_to_node(&w, &n1(), &tcp("203.0.113.7", "54.0.0.1", 8080));
    assert_eq!(
        bad(&u),
        vec![
            "no ingress rule of security group sg-nodes of eni-1 (node n1, instance i-1) allows the request tcp 203.0.113.7 -> 10.0.1.10:8080 (ENI_SG_RULES_MISMATCH)"
        ]
    );
    // The subnet sends replies to a NAT gateway: asymmetric, dropped.
    let mut w = world();
    w.tables[0].routes[1] = route("0.0.0.0/0", "nat-1");
    let u = external_to_node(&w, &n1(), &tcp("203.0.113.7", "54.0.0.1", 22));
    assert_eq!(
        bad(&u),
        vec![
            "route table rtb-main of subnet subnet-a sends the reply tcp 10.0.1.10:22 -> 203.0.113.7 on ephemeral ports 1024-65535 by route 0.0.0.0/0 -> nat-1, not back through internet gateway igw-1: the reply from the public IP 54.0.0.1 is not translated back and is dropped (NO_ROUTE_TO_DESTINATION)"
        ]
    );
    // No internet gateway attached.
    let mut w = world();
    w.igws.clear();
    let u = external_to_node(&w, &n1(), &tcp("203.0.113.7", "54.0.0.1", 22));
    assert!(bad(&u)[0].starts_with("vpc-1 has no internet gateway attached"));
    // Denied by the network ACL.
    let mut w = world();
    w.acls[0].entries = vec![entry(50, "6", false, false, "203.0.113.0/24", None)];
    let u = external_to_node(&w, &n1(), &tcp("203.0.113.7", "10.0.1.10", 22));
    assert_eq!(
        bad(&u)[0],
        "network ACL acl-default of subnet subnet-a denies the request tcp 203.0.113.7 -> 10.0.1.10:22 inbound: rule 50 (deny tcp from 203.0.113.0/24) (SUBNET_ACL_RESTRICTION)"
    );
    // An address neither the node's nor a load balancer's: said, not silently passed.
    let u = external_to_node(&world(), &n1(), &tcp("203.0.113.7", "34.1.2.3", 80));
    assert!(u.hops.is_empty());
    assert_eq!(u.suspicions.len(), 1);
    assert!(
        u.suspicions[0].message.starts_with(
            "no load balancer network interface and no interface of node n1 owns 34.1.2.3"
        ),
        "{:?}",
        u.suspicions
    );
}

#[test]
fn prefetch_asks_everything_the_checks_ask() {
    let w = world();
    let warnings = prefetch(&w, &[n1(), n2(), node("n9", "10.0.9.9", None)]);
    assert_eq!(
        warnings
            .iter()
            .map(|s| s.message.as_str())
            .collect::<Vec<_>>(),
        vec![
            "cannot check the EC2 instance of node n9: no EC2 instance found by its provider ID nor by its address 10.0.9.9"
        ]
    );
    let prefetched: Vec<String> = w.calls.borrow().clone();
    w.calls.borrow_mut().clear();
    node_to_node(&w, &n1(), &n2(), &vxlan("10.0.1.10", "10.0.2.20"));
    node_to_node(&w, &n1(), &n2(), &tcp("10.244.1.5", "10.244.2.5", 80));
    node_to_external(&w, &n2(), &tcp("10.0.2.20", "8.8.8.8", 443));
    external_to_node(&w, &n1(), &tcp("203.0.113.7", "54.0.0.1", 22));
    let asked = w.calls.borrow().clone();
    for call in &asked {
        assert!(
            prefetched.contains(call),
            "{call} not prefetched: {prefetched:?}"
        );
    }
}

#[test]
fn through_a_network_load_balancer() {
    let w = with_load_balancer();
    let u = external_to_node(&w, &n2(), &tcp("203.0.113.7", "3.3.3.3", 80));
    assert!(bad(&u).is_empty(), "{:?}", u.suspicions);
    assert_eq!(
        kinds(&u),
        vec![
            ("load-balancer", "net/web/1"),
            ("network-acl", "acl-b"),
            ("security-group", "sg-nodes")
        ]
    );
    assert_eq!(
        u.hops[0].detail,
        "listener TCP 80 of load balancer web forwards the request tcp 203.0.113.7 -> 3.3.3.3:80 to target group web-tg, where i-2 port 30080 is healthy"
    );
    assert_eq!(
        u.hops[2].detail,
        "ingress: rule tcp 30000-32767 from 0.0.0.0/0 allows the request tcp 203.0.113.7 -> 10.0.2.20:30080"
    );
    // By its private address too.
    let u = external_to_node(&w, &n2(), &tcp("10.0.1.7", "10.0.1.100", 80));
    assert!(bad(&u).is_empty(), "{:?}", u.suspicions);

    // No listener on the port.
    let u = external_to_node(&w, &n2(), &tcp("203.0.113.7", "3.3.3.3", 443));
    assert_eq!(
        bad(&u),
        vec![
            "load balancer web has no listener for the request tcp 203.0.113.7 -> 3.3.3.3:443; it listens on TCP 80 (ELBV2_LISTENERS_MISMATCH)"
        ]
    );
    // A listener with no target group.
    let mut empty = with_load_balancer();
    empty.listeners[0].1.target_groups.clear();
    let u = external_to_node(&empty, &n2(), &tcp("203.0.113.7", "3.3.3.3", 80));
    assert_eq!(
        bad(&u),
        vec![
            "listener TCP 80 of load balancer web forwards the request tcp 203.0.113.7 -> 3.3.3.3:80 to no target group (ELBV2_LISTENER_HAS_NO_TG)"
        ]
    );
    // An unhealthy target.
    let mut sick = with_load_balancer();
    sick.health[1].1.state = "unhealthy".into();
    sick.health[1].1.reason = "Target.FailedHealthChecks".into();
    sick.health[1].1.description = "Health checks failed".into();
    let u = external_to_node(&sick, &n2(), &tcp("203.0.113.7", "3.3.3.3", 80));
    assert_eq!(
        bad(&u),
        vec![
            "target i-2 port 30080 (node n2) of target group web-tg of listener TCP 80 of load balancer web is unhealthy (Target.FailedHealthChecks: Health checks failed): the load balancer does not send it the request tcp 203.0.113.7 -> 3.3.3.3:80 (BAD_STATE)"
        ]
    );
    assert!(!u.hops.iter().any(|h| h.kind == "load-balancer"));
    // Not a target.
    let mut other = with_load_balancer();
    other.health.remove(1);
    let u = external_to_node(&other, &n2(), &tcp("203.0.113.7", "3.3.3.3", 80));
    assert_eq!(u.suspicions[0].level, Level::Warning);
    assert!(
        u.suspicions[0]
            .message
            .ends_with("(TARGET_ADDRESS_RESTRICTION)")
    );
    // The node's security group does not admit the NodePort from the client.
    let mut closed = with_load_balancer();
    closed.groups[0].ingress.pop();
    let u = external_to_node(&closed, &n2(), &tcp("203.0.113.7", "3.3.3.3", 80));
    assert_eq!(
        bad(&u),
        vec![
            "no ingress rule of security group sg-nodes of eni-2 (node n2, instance i-2) allows the request tcp 203.0.113.7 -> 10.0.2.20:30080 (ENI_SG_RULES_MISMATCH)"
        ]
    );
    // Not active.
    let mut new = with_load_balancer();
    new.lbs[0].state = "provisioning".into();
    let u = external_to_node(&new, &n2(), &tcp("203.0.113.7", "3.3.3.3", 80));
    assert!(bad(&u)[0].ends_with("(BAD_STATE)"));
}

#[test]
fn prefetch_covers_load_balancers() {
    let w = with_load_balancer();
    prefetch(&w, &[n1(), n2()]);
    let prefetched: Vec<String> = w.calls.borrow().clone();
    w.calls.borrow_mut().clear();
    external_to_node(&w, &n2(), &tcp("203.0.113.7", "3.3.3.3", 80));
    for call in w.calls.borrow().iter() {
        assert!(prefetched.contains(call), "{call} not prefetched");
    }
}

#[test]
fn a_node_address_the_cloud_does_not_know_stands_for_the_instance_address() {
    // The bundle says 192.168.0.13, the instance has 10.0.2.20.
    let w = world();
    let n3 = node("n2", "192.168.0.13", Some("aws:///us-east-1b/i-2"));
    let u = node_to_node(&w, &n1(), &n3, &vxlan("10.0.1.10", "192.168.0.13"));
    assert!(bad(&u).is_empty(), "{:?}", u.suspicions);
    assert!(
        u.hops[0]
            .detail
            .ends_with("udp 10.0.1.10 -> 10.0.2.20:8472"),
        "{}",
        u.hops[0].detail
    );
    let u = node_to_node(&w, &n3, &n1(), &vxlan("192.168.0.13", "10.0.1.10"));
    assert!(bad(&u).is_empty(), "{:?}", u.suspicions);
    let u = node_to_external(&w, &n3, &tcp("192.168.0.13", "8.8.8.8", 443));
    assert!(bad(&u).is_empty(), "{:?}", u.suspicions);
    let u = external_to_node(&w, &n3, &tcp("10.0.1.7", "192.168.0.13", 22));
    assert!(bad(&u).is_empty(), "{:?}", u.suspicions);
    assert_eq!(u.hops.len(), 2);
}
