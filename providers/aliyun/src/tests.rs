//! The paths over a fake cloud: each check fires on a crafted case and is
//! quiet on the healthy one.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::json;
use skoop_sdk::{EPHEMERAL_PORT, Encap, EncapKind, Level, Node, Packet, Protocol, Underlay};

use crate::checks::NO_CREDENTIALS;
use crate::client::{Fetch, FetchError};
use crate::cloud::Cloud;
use crate::model::*;
use crate::path::{self, LbService};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

const I1: &str = "i-bp1node0000000000001";
const I2: &str = "i-bp1node0000000000002";
const I3: &str = "i-bp1node0000000000003";
const SG: &str = "sg-bp1nodes00000000001";
const SG_A: &str = "sg-bp1groupa0000000001";
const SG_B: &str = "sg-bp1groupb0000000001";
const VSW: &str = "vsw-bp1nodes0000000001";
const VPC_ID: &str = "vpc-bp1cluster000000001";
const VTB: &str = "vtb-bp1system00000001";
const NGW: &str = "ngw-bp1cluster000000001";
const STB: &str = "stb-bp1cluster000000001";

fn node(n: u8) -> Node {
    Node {
        name: format!("node-{n}"),
        ip: ip(&format!("192.168.0.1{n}")),
        pod_cidrs: vec![net(&format!("10.244.{}.0/24", n - 1))],
        ready: true,
        host_interface: Some("eth0".into()),
        annotations: vec![],
        labels: vec![("topology.kubernetes.io/region".into(), "cn-hangzhou".into())],
        provider_id: Some(format!("cn-hangzhou.i-bp1node000000000000{n}")),
    }
}

fn instance(n: u8, group: &str) -> Instance {
    let addr = ip(&format!("192.168.0.1{n}"));
    Instance {
        id: format!("i-bp1node000000000000{n}"),
        name: format!("node-{n}"),
        status: "Running".into(),
        vpc_id: VPC_ID.into(),
        vswitch_id: VSW.into(),
        private_ips: vec![addr],
        security_groups: vec![group.into()],
        public_ips: vec![],
        eip: None,
        enis: vec![Eni {
            id: format!("eni-bp1node{n}primary0001"),
            kind: "Primary".into(),
            instance_id: format!("i-bp1node000000000000{n}"),
            primary_ip: Some(addr),
            ips: vec![addr],
            ..Eni::default()
        }],
    }
}

fn rule(
    ingress: bool,
    proto: &str,
    ports: Option<(u16, u16)>,
    accept: bool,
    priority: u32,
    peer: &str,
) -> Rule {
    crate::checks::tests_support::rule(ingress, proto, ports, accept, priority, peer)
}

fn group(id: &str, kind: GroupKind, rules: Vec<Rule>) -> SecurityGroup {
    SecurityGroup {
        id: id.into(),
        kind,
        inner_accept: true,
        vpc_id: VPC_ID.into(),
        rules,
    }
}

fn route(id: &str, dst: &str, kind: &str, target: &str) -> RouteEntry {
    RouteEntry {
        id: id.into(),
        destination: net(dst),
        kind: if kind == "local" {
            "System".into()
        } else {
            "Custom".into()
        },
        status: "Available".into(),
        next_hops: vec![NextHop {
            kind: kind.into(),
            id: target.into(),
        }],
    }
}

/// A cloud from typed resources; `errors` fails the named fetch.
#[derive(Default, Clone)]
struct World {
    nodes: Vec<Node>,
    instances: Vec<Instance>,
    enis: Vec<Eni>,
    groups: Vec<SecurityGroup>,
    routes: Vec<RouteEntry>,
    nats: Vec<NatGateway>,
    snat: Vec<SnatEntry>,
    lbs: Vec<LoadBalancer>,
    listeners: Vec<Listener>,
    groups_slb: Vec<VServerGroup>,
    health: Vec<BackendHealth>,
    errors: HashMap<&'static str, FetchError>,
}

impl World {
    /// Three nodes in one basic group; the vSwitch routes its CIDR locally,
    /// the pod CIDRs to their nodes and the rest to a NAT gateway whose SNAT
    /// entry covers the vSwitch.
    fn healthy() -> World {
        World {
            nodes: vec![node(1), node(2), node(3)],
            instances: vec![instance(1, SG), instance(2, SG), instance(3, SG)],
            groups: vec![group(
                SG,
                GroupKind::Normal,
                vec![rule(true, "ALL", None, true, 1, "10.244.0.0/16")],
            )],
            routes: vec![
                route("rte-sys", "192.168.0.0/24", "local", ""),
                route("rte-pods0", "10.244.0.0/24", "Instance", I1),
                route("rte-pods1", "10.244.1.0/24", "Instance", I2),
                route("rte-pods2", "10.244.2.0/24", "Instance", I3),
                route("rte-nat", "0.0.0.0/0", "NatGateway", NGW),
            ],
            nats: vec![NatGateway {
                id: NGW.into(),
                status: "Available".into(),
                network_type: "internet".into(),
                snat_table_ids: vec![STB.into()],
            }],
            snat: vec![SnatEntry {
                id: "snat-bp1vsw0000000001".into(),
                table_id: STB.into(),
                source_cidr: Some(net("192.168.0.0/24")),
                source_vswitch: VSW.into(),
                eni: String::new(),
                snat_ip: "47.96.0.100".into(),
                status: "Available".into(),
            }],
            ..World::default()
        }
    }

    fn fail(&self, what: &'static str) -> Fetch<()> {
        match self.errors.get(what) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

impl Cloud for World {
    fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    fn region(&self) -> &str {
        "cn-hangzhou"
    }
    fn instance_of(&self, node: &Node) -> Fetch<Option<Instance>> {
        self.fail("instances")?;
        let id = node
            .provider_id
            .as_deref()
            .and_then(crate::cloud::parse_provider_id)
            .map(|(_, i)| i);
        Ok(self
            .instances
            .iter()
            .find(|i| Some(i.id.as_str()) == id)
            .or_else(|| self.instances.iter().find(|i| i.owns(node.ip)))
            .cloned())
    }
    fn enis(&self) -> Fetch<Vec<Eni>> {
        self.fail("enis")?;
        Ok(self.enis.clone())
    }
    fn security_group(&self, id: &str) -> Fetch<Option<SecurityGroup>> {
        self.fail("groups")?;
        Ok(self.groups.iter().find(|g| g.id == id).cloned())
    }
    fn prefix_list(&self, _: &str) -> Fetch<Vec<Ipv4Net>> {
        Ok(vec![])
    }
    fn vpc(&self, id: &str) -> Fetch<Option<Vpc>> {
        Ok(Some(Vpc {
            id: id.into(),
            cidrs: vec![net("192.168.0.0/16")],
            vrouter_id: "vrt-1".into(),
        }))
    }
    fn vswitches(&self, vpc: &str) -> Fetch<Vec<VSwitch>> {
        self.fail("vswitches")?;
        Ok(vec![VSwitch {
            id: VSW.into(),
            vpc_id: vpc.into(),
            cidr: Some(net("192.168.0.0/24")),
            route_table_id: VTB.into(),
        }])
    }
    fn system_route_table(&self, _: &str) -> Fetch<Option<String>> {
        Ok(Some(VTB.into()))
    }
    fn route_entries(&self, _: &str) -> Fetch<Vec<RouteEntry>> {
        self.fail("routes")?;
        Ok(self.routes.clone())
    }
    fn nat_gateway(&self, id: &str) -> Fetch<Option<NatGateway>> {
        Ok(self.nats.iter().find(|g| g.id == id).cloned())
    }
    fn snat_entries(&self, table: &str) -> Fetch<Vec<SnatEntry>> {
        self.fail("snat")?;
        Ok(self
            .snat
            .iter()
            .filter(|e| e.table_id == table)
            .cloned()
            .collect())
    }
    fn load_balancer(&self, address: Ipv4Addr) -> Fetch<Option<LoadBalancer>> {
        Ok(self
            .lbs
            .iter()
            .find(|l| l.address == address.to_string())
            .cloned())
    }
    fn listener(&self, _: &str, port: u16, protocol: &str) -> Fetch<Option<Listener>> {
        Ok(self
            .listeners
            .iter()
            .find(|l| l.port == port && l.protocol == protocol)
            .cloned())
    }
    fn acl(&self, id: &str) -> Fetch<Acl> {
        Ok(Acl {
            id: id.into(),
            entries: vec![net("10.0.0.0/8")],
        })
    }
    fn vserver_group(&self, id: &str) -> Fetch<VServerGroup> {
        Ok(self
            .groups_slb
            .iter()
            .find(|g| g.id == id)
            .cloned()
            .unwrap_or_default())
    }
    fn health(&self, _: &str, _: u16, _: &str) -> Fetch<Vec<BackendHealth>> {
        Ok(self.health.clone())
    }
}

fn packet(src: &str, dst: &str, dport: u16) -> Packet {
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
        ..packet("10.244.0.5", "10.244.1.7", 8080)
    }
}

fn lines(u: &Underlay) -> Vec<String> {
    u.suspicions
        .iter()
        .map(|s| format!("{} {}", level_name(s.level), s.message))
        .collect()
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Info => "Info",
        Level::Warning => "Warning",
        Level::Critical => "Critical",
        Level::Fatal => "Fatal",
    }
}

fn quiet(u: &Underlay) {
    assert!(u.suspicions.is_empty(), "{:#?}", lines(u));
}

fn one(u: &Underlay, level: Level, needles: &[&str]) {
    assert!(
        u.suspicions
            .iter()
            .any(|s| s.level == level && needles.iter().all(|n| s.message.contains(n))),
        "no {level:?} with {needles:?} in {:#?}",
        lines(u)
    );
}

#[test]
fn healthy_vxlan_and_host_gw_are_quiet() {
    let w = World::healthy();
    let u = path::node_to_node(
        &w,
        &node(1),
        &node(2),
        &vxlan("192.168.0.11", "192.168.0.12"),
    );
    quiet(&u);
    let kinds: Vec<&str> = u.hops.iter().map(|h| h.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["security-group", "route-table", "security-group"]
    );
    assert!(
        u.hops[2].detail.contains("both in basic security group"),
        "{:?}",
        u.hops
    );
    let u = path::node_to_node(
        &w,
        &node(1),
        &node(2),
        &packet("10.244.0.5", "10.244.1.7", 8080),
    );
    quiet(&u);
    assert!(u.hops.iter().any(|h| h.detail.contains("rte-pods1")));
    // The reply of a natively routed flow: no security groups (stateful), the route still.
    let mut reply = packet("10.244.1.7", "10.244.0.5", EPHEMERAL_PORT);
    reply.sport = 8080;
    reply.reply = true;
    let u = path::node_to_node(&w, &node(2), &node(1), &reply);
    quiet(&u);
    assert_eq!(u.hops.len(), 1);
}

#[test]
fn security_group_blocking_vxlan_is_fatal() {
    let mut w = World::healthy();
    w.groups[0].rules.push(rule(
        true,
        "UDP",
        Some((8472, 8472)),
        false,
        1,
        "192.168.0.0/16",
    ));
    w.groups[0]
        .rules
        .push(rule(true, "ALL", None, true, 1, "192.168.0.0/16"));
    let u = path::node_to_node(
        &w,
        &node(1),
        &node(2),
        &vxlan("192.168.0.11", "192.168.0.12"),
    );
    one(
        &u,
        Level::Fatal,
        &[
            SG,
            I2,
            "8472",
            "drop udp 8472/8472 from 192.168.0.0/16",
            "inbound",
        ],
    );
    // Natively routed pods are not VXLAN: the same rule lets them pass.
    let u = path::node_to_node(
        &w,
        &node(1),
        &node(2),
        &packet("10.244.0.5", "10.244.1.7", 8080),
    );
    quiet(&u);
}

#[test]
fn groups_are_evaluated_whether_or_not_nodes_share_one() {
    // Different groups, granted by group id: healthy.
    let mut w = World::healthy();
    w.instances = vec![instance(1, SG_A), instance(2, SG_B), instance(3, SG_B)];
    w.groups = vec![
        group(SG_A, GroupKind::Normal, vec![]),
        group(
            SG_B,
            GroupKind::Normal,
            vec![rule(true, "UDP", Some((8472, 8472)), true, 1, SG_A)],
        ),
    ];
    let u = path::node_to_node(
        &w,
        &node(1),
        &node(2),
        &vxlan("192.168.0.11", "192.168.0.12"),
    );
    quiet(&u);
    // Different groups, no rule: blocked.
    w.groups[1].rules.clear();
    let u = path::node_to_node(
        &w,
        &node(1),
        &node(2),
        &vxlan("192.168.0.11", "192.168.0.12"),
    );
    one(
        &u,
        Level::Fatal,
        &[
            SG_B,
            I2,
            "no inbound rule",
            "the VXLAN request udp 192.168.0.11 -> 192.168.0.12:8472",
        ],
    );
    // An enterprise sender drops outbound traffic no rule allows.
    w.groups[0].kind = GroupKind::Enterprise;
    let u = path::node_to_node(
        &w,
        &node(1),
        &node(2),
        &vxlan("192.168.0.11", "192.168.0.12"),
    );
    one(&u, Level::Fatal, &[SG_A, I1, "outbound"]);
}

#[test]
fn routes_of_natively_routed_pods() {
    let mut w = World::healthy();
    w.routes.retain(|r| r.id != "rte-pods1");
    let u = path::node_to_node(
        &w,
        &node(1),
        &node(2),
        &packet("10.244.0.5", "10.244.1.7", 8080),
    );
    one(&u, Level::Fatal, &[VTB, "no route entry for 10.244.1.7"]);
    let mut w = World::healthy();
    for r in &mut w.routes {
        if r.id == "rte-pods1" {
            r.next_hops[0].id = I3.into();
        }
    }
    let u = path::node_to_node(
        &w,
        &node(1),
        &node(2),
        &packet("10.244.0.5", "10.244.1.7", 8080),
    );
    one(&u, Level::Fatal, &[VTB, "rte-pods1", I3, I2, "node-2"]);
    // VXLAN does not need pod routes.
    let u = path::node_to_node(
        &w,
        &node(1),
        &node(2),
        &vxlan("192.168.0.11", "192.168.0.12"),
    );
    quiet(&u);
}

#[test]
fn snat_eip_and_routes_to_the_internet() {
    let w = World::healthy();
    let out = packet("192.168.0.11", "1.1.1.1", 443);
    let u = path::node_to_external(&w, &node(1), &out);
    quiet(&u);
    assert!(
        u.hops
            .iter()
            .any(|h| h.kind == "nat-gateway" && h.id == NGW)
    );
    // A SNAT entry for the VPC CIDR covers the node.
    let mut w2 = World::healthy();
    w2.snat[0].source_cidr = Some(net("192.168.0.0/16"));
    w2.snat[0].source_vswitch = String::new();
    quiet(&path::node_to_external(&w2, &node(1), &out));
    // None at all.
    let mut w3 = World::healthy();
    w3.snat.clear();
    let u = path::node_to_external(&w3, &node(1), &out);
    one(
        &u,
        Level::Fatal,
        &[NGW, "no SNAT entry for source 192.168.0.11", STB],
    );
    // An EIP on the instance needs no NAT gateway.
    let mut w4 = w3.clone();
    w4.instances[0].eip = Some(ip("47.96.0.11"));
    let u = path::node_to_external(&w4, &node(1), &out);
    quiet(&u);
    assert!(
        u.hops
            .iter()
            .any(|h| h.kind == "public-ip" && h.detail.contains("47.96.0.11"))
    );
    // No default route and no public IP.
    let mut w5 = World::healthy();
    w5.routes.retain(|r| r.id != "rte-nat");
    let u = path::node_to_external(&w5, &node(1), &out);
    one(
        &u,
        Level::Fatal,
        &[VTB, "no route entry for 1.1.1.1", "no public IP or EIP"],
    );
    // A route to something skoop cannot see beyond.
    let mut w6 = World::healthy();
    for r in &mut w6.routes {
        if r.id == "rte-nat" {
            r.next_hops[0] = NextHop {
                kind: "Attachment".into(),
                id: "tr-attach-1".into(),
            };
        }
    }
    let u = path::node_to_external(&w6, &node(1), &out);
    one(&u, Level::Warning, &["tr-attach-1", "cannot check"]);
}

#[test]
fn eip_on_a_secondary_eni() {
    let mut w = World::healthy();
    w.snat.clear();
    let extra = Eni {
        id: "eni-bp1node1second0001".into(),
        kind: "Secondary".into(),
        instance_id: I1.into(),
        vswitch_id: VSW.into(),
        vpc_id: VPC_ID.into(),
        primary_ip: Some(ip("192.168.0.21")),
        ips: vec![ip("192.168.0.21")],
        security_groups: vec![SG.into()],
        public_ips: vec![(Some(ip("192.168.0.21")), ip("47.96.0.21"))],
    };
    w.instances[0].enis.push(Eni {
        security_groups: vec![],
        public_ips: vec![],
        vswitch_id: String::new(),
        ..extra.clone()
    });
    w.enis = vec![extra];
    let u = path::node_to_external(&w, &node(1), &packet("192.168.0.21", "1.1.1.1", 443));
    quiet(&u);
    assert!(u.hops.iter().any(|h| h.detail.contains("47.96.0.21")));
    // The node's primary address has none: the missing SNAT entry counts.
    let u = path::node_to_external(&w, &node(1), &packet("192.168.0.11", "1.1.1.1", 443));
    one(&u, Level::Fatal, &["no SNAT entry"]);
}

#[test]
fn external_to_node_and_load_balancers() {
    let w = World::healthy();
    // Inbound from the Internet: dropped by default.
    let u = path::external_to_node(
        &w,
        &node(2),
        &packet("8.8.8.8", "192.168.0.12", 30080),
        None,
    );
    one(&u, Level::Fatal, &[SG, I2, "inbound", "8.8.8.8"]);
    let mut w2 = World::healthy();
    w2.groups[0].rules.push(rule(
        true,
        "TCP",
        Some((30000, 32767)),
        true,
        1,
        "0.0.0.0/0",
    ));
    quiet(&path::external_to_node(
        &w2,
        &node(2),
        &packet("8.8.8.8", "192.168.0.12", 30080),
        None,
    ));
    // Through a CLB.
    let mut w3 = World::healthy();
    w3.lbs = vec![LoadBalancer {
        id: "lb-bp1web00000000001".into(),
        address: "47.96.1.1".into(),
        address_type: "internet".into(),
        status: "active".into(),
    }];
    w3.listeners = vec![Listener {
        port: 80,
        protocol: "tcp".into(),
        status: "running".into(),
        acl_status: "off".into(),
        vserver_group_id: "rsp-bp1web0000000001".into(),
        ..Listener::default()
    }];
    w3.groups_slb = vec![VServerGroup {
        id: "rsp-bp1web0000000001".into(),
        backends: [I1, I2, I3]
            .iter()
            .map(|i| Backend {
                server_id: i.to_string(),
                server_ip: None,
                port: 31080,
                kind: "ecs".into(),
            })
            .collect(),
    }];
    let svc = LbService {
        id: "default/web".into(),
        ingress: vec![ip("47.96.1.1")],
        ports: vec![(80, "tcp".into(), Some(31080))],
        local: false,
        endpoint_nodes: vec!["node-2".into()],
    };
    let to_lb = packet("8.8.8.8", "47.96.1.1", 80);
    let u = path::external_to_node(&w3, &node(2), &to_lb, Some(&svc));
    quiet(&u);
    assert!(u.hops.iter().any(|h| h.kind == "load-balancer"));
    // externalTrafficPolicy Local: two backends too many.
    let local = LbService {
        local: true,
        ..svc.clone()
    };
    let u = path::external_to_node(&w3, &node(2), &to_lb, Some(&local));
    one(&u, Level::Warning, &["has 3 backends", "expects 1"]);
    // A UDP port has no listener.
    let mut udp = to_lb;
    udp.protocol = Protocol::Udp;
    let u = path::external_to_node(&w3, &node(2), &udp, Some(&svc));
    one(
        &u,
        Level::Fatal,
        &["lb-bp1web00000000001", "no udp listener on port 80"],
    );
    // Whitelisted to 10/8 only.
    w3.listeners[0].acl_status = "on".into();
    w3.listeners[0].acl_type = "white".into();
    w3.listeners[0].acl_ids = vec!["acl-bp1web0000000001".into()];
    let u = path::external_to_node(&w3, &node(2), &to_lb, Some(&svc));
    one(
        &u,
        Level::Fatal,
        &["acl-bp1web0000000001", "whitelist", "8.8.8.8"],
    );
    // Not a CLB.
    let u = path::external_to_node(&w3, &node(2), &packet("8.8.8.8", "47.96.9.9", 80), None);
    one(&u, Level::Warning, &["no CLB", "47.96.9.9"]);
}

#[test]
fn cloud_errors_are_warnings_naming_the_api() {
    let mut w = World::healthy();
    w.errors.insert(
        "groups",
        FetchError::Api {
            api: "ECS DescribeSecurityGroupAttribute".into(),
            code: "Forbidden.RAM".into(),
            message: "User not authorized to operate on the specified resource.".into(),
        },
    );
    let u = path::node_to_node(
        &w,
        &node(1),
        &node(2),
        &vxlan("192.168.0.11", "192.168.0.12"),
    );
    one(
        &u,
        Level::Warning,
        &[
            "cannot check security group",
            SG,
            "ECS DescribeSecurityGroupAttribute: Forbidden.RAM: User not authorized",
        ],
    );
    assert!(u.suspicions.iter().all(|s| s.level == Level::Warning));
    let mut w = World::healthy();
    w.errors.insert("routes", FetchError::NotRecorded);
    let u = path::node_to_node(
        &w,
        &node(1),
        &node(2),
        &vxlan("192.168.0.11", "192.168.0.12"),
    );
    one(
        &u,
        Level::Warning,
        &["cannot check route table", VTB, "(not recorded)"],
    );
    let mut w = World::healthy();
    w.errors.insert("instances", FetchError::NoCredentials);
    let u = path::node_to_node(
        &w,
        &node(1),
        &node(2),
        &vxlan("192.168.0.11", "192.168.0.12"),
    );
    assert_eq!(lines(&u), vec![format!("Warning {NO_CREDENTIALS}")]);
    // A node that is no instance.
    let mut w = World::healthy();
    w.instances.remove(1);
    let u = path::node_to_node(
        &w,
        &node(1),
        &node(2),
        &vxlan("192.168.0.11", "192.168.0.12"),
    );
    one(
        &u,
        Level::Warning,
        &[
            "node node-2",
            "no ECS instance in region cn-hangzhou",
            I2,
            "192.168.0.12",
        ],
    );
}

#[test]
fn prefetch_walks_every_fetch() {
    let w = World::healthy();
    assert!(path::prefetch(&w, &[]).is_empty());
    let mut w = World::healthy();
    w.errors.insert("snat", FetchError::NotRecorded);
    let s = path::prefetch(&w, &[]);
    assert_eq!(s.len(), 1);
    assert!(s[0].message.contains(STB));
}

#[test]
fn load_balancer_services_from_objects() {
    let services = vec![
        json!({"metadata": {"namespace": "default", "name": "web"}, "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80, "protocol": "TCP", "nodePort": 31080}]}, "status": {"loadBalancer": {"ingress": [{"ip": "47.96.1.1"}]}}}),
        json!({"metadata": {"namespace": "default", "name": "internal"}, "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}}),
    ];
    let slices = vec![
        json!({"metadata": {"namespace": "default", "labels": {"kubernetes.io/service-name": "web"}}, "endpoints": [{"nodeName": "node-2", "conditions": {"ready": true}}, {"nodeName": "node-3", "conditions": {"ready": false}}]}),
    ];
    let s = crate::lb_services(&services, &slices);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].id, "default/web");
    assert!(s[0].local);
    assert_eq!(s[0].ingress, vec![ip("47.96.1.1")]);
    assert_eq!(s[0].ports, vec![(80, "tcp".to_string(), Some(31080))]);
    assert_eq!(s[0].endpoint_nodes, vec!["node-2"]);
}

#[test]
fn settings_from_config_and_nodes() {
    let cfg: HashMap<&str, &str> = [
        ("aliyun-access-key-id", "LTAI5tSkoopTestKey0001"),
        (
            "aliyun-access-key-secret",
            "SkoopTestSecret0000000000000001",
        ),
    ]
    .into_iter()
    .collect();
    let get = |k: &str| cfg.get(k).map(|v| v.to_string());
    let s = crate::settings_from(&get, &[node(2), node(1)]);
    assert_eq!(s.region, "cn-hangzhou");
    assert!(s.credentials.is_some());
    assert!(s.endpoint.is_none());
    let mut n = node(1);
    n.labels.clear();
    n.provider_id = Some("alicloud://cn-beijing.i-2zeabc".into());
    let s = crate::settings_from(&|_| None, &[n.clone()]);
    assert_eq!(s.region, "cn-beijing");
    assert!(s.credentials.is_none());
    n.provider_id = None;
    assert_eq!(crate::settings_from(&|_| None, &[n]).region, "");
    let get = |k: &str| (k == "aliyun-region").then(|| "cn-shanghai".to_string());
    assert_eq!(crate::settings_from(&get, &[node(1)]).region, "cn-shanghai");
}

/// The real client and cloud over recorded answers: the requests depend on
/// the cluster only, none two alike, and the parsed answers drive the checks.
#[test]
fn requests_depend_on_the_cluster_only() {
    use crate::client::Client;
    use crate::client::tests::{Fake, settings};
    use crate::cloud::Aliyun;
    let fake = || {
        Fake::new()
            .answer("DescribeInstances", "InstanceIds=", 200, include_str!("testdata/DescribeInstances.json"))
            .answer("DescribeInstances", "PrivateIpAddresses=", 200, r#"{"TotalCount":0,"Instances":{"Instance":[]}}"#)
            .answer("DescribeNetworkInterfaces", "", 200, include_str!("testdata/DescribeNetworkInterfaces.json"))
            .answer("DescribeSecurityGroups", "", 200, r#"{"TotalCount":1,"SecurityGroups":{"SecurityGroup":[{"SecurityGroupId":"sg-bp1nodes00000000001","SecurityGroupType":"normal"}]}}"#)
            .answer("DescribeSecurityGroupAttribute", "", 200, include_str!("testdata/DescribeSecurityGroupAttribute.json"))
            .answer("DescribeVSwitches", "", 200, r#"{"TotalCount":1,"VSwitches":{"VSwitch":[{"VSwitchId":"vsw-bp1nodes0000000001","VpcId":"vpc-bp1cluster000000001","CidrBlock":"192.168.0.0/24","RouteTable":{"RouteTableId":"vtb-bp1system00000001","RouteTableType":"System"}}]}}"#)
            .answer("DescribeRouteEntryList", "", 200, include_str!("testdata/DescribeRouteEntryList.json"))
            .answer("DescribeNatGateways", "", 200, r#"{"NatGateways":{"NatGateway":[{"NatGatewayId":"ngw-bp1cluster000000001","Status":"Available","NetworkType":"internet","SnatTableIds":{"SnatTableId":["stb-bp1cluster000000001"]}}]}}"#)
            .answer("DescribeSnatTableEntries", "", 200, r#"{"TotalCount":1,"SnatTableEntries":{"SnatTableEntry":[{"SnatEntryId":"snat-1","SnatTableId":"stb-bp1cluster000000001","SourceCIDR":"192.168.0.0/16","SnatIp":"47.96.0.100","Status":"Available"}]}}"#)
    };
    let mut third = node(3);
    third.provider_id = None;
    let nodes = vec![node(2), node(1), third];
    let cloud = Aliyun::new(Client::new(settings(), fake()), nodes.clone());
    let warnings = path::prefetch(&cloud, &[]);
    assert!(
        warnings.iter().any(|w| w.message.contains("node node-3")),
        "node-3 is no instance: {warnings:?}"
    );
    let recorded: Vec<String> = cloud
        .client()
        .sent()
        .iter()
        .map(|r| r.url.clone())
        .collect();
    let mut unique = recorded.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), recorded.len(), "{recorded:#?}");
    assert!(
        recorded[0].contains(
            "InstanceIds=%5B%22i-bp1node0000000000001%22%2C%22i-bp1node0000000000002%22%5D"
        ),
        "{}",
        recorded[0]
    );
    assert!(
        recorded[1].contains("PrivateIpAddresses=%5B%22192.168.0.13%22%5D"),
        "{}",
        recorded[1]
    );

    // A diagnosis in another component asks only what was recorded.
    let fresh = Aliyun::new(Client::new(settings(), fake()), nodes);
    let u = path::node_to_node(
        &fresh,
        &node(1),
        &node(2),
        &vxlan("192.168.0.11", "192.168.0.12"),
    );
    // The test data's group drops VXLAN at priority 1.
    one(&u, Level::Fatal, &["sgr-bp1dropvxlan000001", "8472"]);
    let u = path::node_to_external(&fresh, &node(1), &packet("192.168.0.11", "1.1.1.1", 443));
    quiet(&u);
    for r in fresh.client().sent() {
        assert!(
            recorded.contains(&r.url),
            "{} was not asked by prefetch",
            r.url
        );
    }
}

#[test]
fn setup_warnings_once_per_component() {
    let mut w = World::healthy();
    w.errors.insert("instances", FetchError::NoCredentials);
    let warned = std::cell::Cell::new(false);
    let first = crate::once(
        path::node_to_node(
            &w,
            &node(1),
            &node(2),
            &vxlan("192.168.0.11", "192.168.0.12"),
        ),
        &warned,
    );
    assert_eq!(first.suspicions.len(), 1);
    let second = crate::once(
        path::node_to_external(&w, &node(1), &packet("192.168.0.11", "1.1.1.1", 443)),
        &warned,
    );
    assert!(second.suspicions.is_empty());
}
