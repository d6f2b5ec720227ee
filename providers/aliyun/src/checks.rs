//! The underlay checks, as pure functions over typed Alibaba Cloud resources:
//! security groups (ECS), route tables and NAT gateways (VPC).
//!
//! Each check appends to an [`Underlay`]: the device the packet passed as a
//! hop (with the rule or route that decided), and a suspicion naming the
//! resource and the rule when the device drops it. The levels follow
//! KubeSkoop's Aliyun provider (a drop is FATAL), with its bugs fixed.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
pub use skoop_sdk::underlay::{EPHEMERAL, Flow, Port, Tunnel, VXLAN_PORT};
use skoop_sdk::{Level, Suspicion, Underlay, UnderlayHop};

use crate::client::FetchError;
use crate::model::{GroupKind, NatGateway, RouteEntry, Rule, SecurityGroup, SnatEntry, has_ports};

/// The one warning given when no credentials are configured.
pub const NO_CREDENTIALS: &str = "cannot check the Alibaba Cloud underlay: no credentials; give --aliyun-access-key-id and --aliyun-access-key-secret (or set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or put access_key_id and access_key_secret in the profile named by --aliyun-profile or ALIBABA_CLOUD_PROFILE, else \"default\", of ~/.alibabacloud/credentials)";

/// The one warning given when no region is configured or labelled.
pub const NO_REGION: &str = "cannot check the Alibaba Cloud underlay: no region; give --aliyun-region or set ALIBABA_CLOUD_REGION_ID (or label the nodes with topology.kubernetes.io/region)";

/// The warning when `subject` cannot be checked.
pub fn cannot_check(subject: &str, e: &FetchError) -> Suspicion {
    let message = match e {
        FetchError::Api { api, code, message } if message.is_empty() => {
            format!("cannot check {subject}: {api}: {code}")
        }
        FetchError::Api { api, code, message } => {
            format!("cannot check {subject}: {api}: {code}: {message}")
        }
        FetchError::NotRecorded => format!("cannot check {subject} (not recorded)"),
        FetchError::NoCredentials => NO_CREDENTIALS.to_string(),
        FetchError::NoRegion => NO_REGION.to_string(),
        FetchError::Other(m) => format!("cannot check {subject}: {m}"),
    };
    Suspicion::new(Level::Warning, message)
}

/// Add a suspicion unless the same one is there.
pub fn push(u: &mut Underlay, s: Suspicion) {
    if !u.suspicions.contains(&s) {
        u.suspicions.push(s);
    }
}

pub fn fatal(u: &mut Underlay, message: String) {
    push(u, Suspicion::new(Level::Fatal, message));
}

pub fn warning(u: &mut Underlay, message: String) {
    push(u, Suspicion::new(Level::Warning, message));
}

pub fn hop(u: &mut Underlay, kind: &str, id: &str, detail: String) {
    let h = UnderlayHop {
        kind: kind.into(),
        id: id.into(),
        detail,
    };
    if !u.hops.contains(&h) {
        u.hops.push(h);
    }
}

// ---- flows ----------------------------------------------------------------

// ---- security groups ----------------------------------------------------------

/// Which rules of a security group apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Egress,
    Ingress,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Egress => "outbound",
            Direction::Ingress => "inbound",
        }
    }
}

/// The other end of a flow at a security group: its address, and when it
/// is an ENI of the VPC, the groups of that ENI and its addresses.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub addr: Option<Ipv4Addr>,
    /// The groups of the peer's ENI, when `addr` is one of its addresses.
    pub groups: Vec<String>,
    /// `instance i-abc (node n2)`, for messages.
    pub name: String,
}

/// The ENI a security group check is at.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    /// `instance i-abc (node n1)`.
    pub name: &'a str,
    pub addr: Ipv4Addr,
}

/// What a set of security groups decides for one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A rule decided: (group id, rule).
    Rule(String, Rule),
    /// Allowed by the groups' defaults: the reason.
    DefaultAccept(String),
    /// Dropped by the groups' defaults: the reason.
    DefaultDrop(String),
}

impl Verdict {
    pub fn allows(&self) -> bool {
        match self {
            Verdict::Rule(_, r) => r.accept,
            Verdict::DefaultAccept(_) => true,
            Verdict::DefaultDrop(_) => false,
        }
    }
}

fn port_in(range: Option<(u16, u16)>, port: Port) -> bool {
    match (range, port.range()) {
        (None, _) => true,
        // A port range on a protocol without ports does not restrict it.
        (Some(_), None) => true,
        (Some((lo, hi)), Some((a, b))) => a >= lo && b <= hi,
    }
}

/// Whether `rule` matches `flow` at `at` with the other end `peer`;
/// `prefix_list` resolves prefix-list ids (None: unknown).
pub fn rule_matches(
    rule: &Rule,
    direction: Direction,
    flow: &Flow,
    at: &At<'_>,
    peer: &Peer,
    prefix_list: &dyn Fn(&str) -> Option<Vec<Ipv4Net>>,
) -> bool {
    if rule.ingress != (direction == Direction::Ingress) || rule.ipv6_only {
        return false;
    }
    let Some(proto) = rule.protocol else {
        return false;
    };
    if !proto.covers(flow.protocol) {
        return false;
    }
    // PortRange is the packet's destination port, SourcePortRange its source port.
    if has_ports(flow.protocol)
        && (!port_in(rule.ports, flow.dport) || !port_in(rule.source_ports, flow.sport))
    {
        return false;
    }
    // The local end named by the rule (both must match: AND, not OR).
    if let Some(local) = rule.local_cidr()
        && !local.contains(&at.addr)
    {
        return false;
    }
    let Some(peer_addr) = peer.addr else {
        return false;
    };
    // A CIDR wins over a group when a rule has both.
    if let Some(c) = rule.peer_cidr() {
        return c.contains(&peer_addr);
    }
    if let Some(g) = rule.peer_group() {
        return peer.groups.iter().any(|x| x == g);
    }
    if let Some(pl) = rule.peer_prefix_list() {
        return prefix_list(pl).is_some_and(|cidrs| cidrs.iter().any(|c| c.contains(&peer_addr)));
    }
    false
}

/// Evaluate the rules of `groups` (all the groups of one ENI) for `flow`,
/// in Alibaba Cloud's documented order: priority (lower first), then at
/// equal priority a drop rule beats an accept rule. What no rule matches
/// gets the default: a basic group allows all outbound traffic and inbound
/// traffic from members of the same basic group (when its internal access
/// policy accepts); an enterprise group drops both.
pub fn evaluate(
    groups: &[&SecurityGroup],
    direction: Direction,
    flow: &Flow,
    at: &At<'_>,
    peer: &Peer,
    prefix_list: &dyn Fn(&str) -> Option<Vec<Ipv4Net>>,
) -> Verdict {
    let mut matching: Vec<(&SecurityGroup, &Rule)> = groups
        .iter()
        .flat_map(|g| g.rules.iter().map(move |r| (*g, r)))
        .filter(|(_, r)| rule_matches(r, direction, flow, at, peer, prefix_list))
        .collect();
    matching.sort_by_key(|(_, r)| (r.priority, r.accept));
    if let Some((g, r)) = matching.first() {
        return Verdict::Rule(g.id.clone(), (*r).clone());
    }
    let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    match direction {
        Direction::Egress => {
            let enterprise: Vec<&str> = groups
                .iter()
                .filter(|g| g.kind == GroupKind::Enterprise)
                .map(|g| g.id.as_str())
                .collect();
            if groups.is_empty() {
                Verdict::DefaultDrop("it is in no security group".into())
            } else if enterprise.is_empty() {
                Verdict::DefaultAccept(format!(
                    "basic security group {} allows all outbound traffic by default",
                    ids.join(", ")
                ))
            } else {
                Verdict::DefaultDrop(format!(
                    "enterprise security group {} drops outbound traffic that no rule allows",
                    enterprise.join(", ")
                ))
            }
        }
        Direction::Ingress => {
            let shared = groups.iter().find(|g| {
                g.kind == GroupKind::Normal && g.inner_accept && peer.groups.contains(&g.id)
            });
            if let Some(g) = shared {
                return Verdict::DefaultAccept(format!(
                    "{} and {} are both in basic security group {}, whose members reach each other",
                    at.name, peer.name, g.id
                ));
            }
            let isolated: Vec<&str> = groups
                .iter()
                .filter(|g| {
                    g.kind == GroupKind::Normal && !g.inner_accept && peer.groups.contains(&g.id)
                })
                .map(|g| g.id.as_str())
                .collect();
            let why = if !isolated.is_empty() {
                format!(
                    "the internal access policy of basic security group {} isolates its members",
                    isolated.join(", ")
                )
            } else if groups.iter().any(|g| g.kind == GroupKind::Enterprise) {
                "enterprise security groups drop inbound traffic that no rule allows".to_string()
            } else {
                "inbound traffic that no rule allows is dropped".to_string()
            };
            Verdict::DefaultDrop(why)
        }
    }
}

fn which_groups(groups: &[&SecurityGroup]) -> String {
    let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    match ids.len() {
        0 => "no security group".into(),
        1 => format!("security group {}", ids[0]),
        _ => format!("security groups {}", ids.join(", ")),
    }
}

/// Check the security groups of the ENI at `at` for `flow`; FATAL when they
/// drop it, a hop naming the deciding rule when they let it through.
#[allow(clippy::too_many_arguments)]
pub fn check_security_groups(
    u: &mut Underlay,
    groups: &[&SecurityGroup],
    direction: Direction,
    flow: &Flow,
    at: &At<'_>,
    peer: &Peer,
    prefix_list: &dyn Fn(&str) -> Option<Vec<Ipv4Net>>,
) -> bool {
    let verdict = evaluate(groups, direction, flow, at, peer, prefix_list);
    let way = direction.name();
    let hop_id = groups
        .iter()
        .map(|g| g.id.as_str())
        .collect::<Vec<_>>()
        .join(",");
    match &verdict {
        Verdict::Rule(g, r) if r.accept => hop(
            u,
            "security-group",
            g,
            format!(
                "{way} rule {} (priority {}, {}) allows {}",
                r.id,
                r.priority,
                r.describe(),
                flow.describe()
            ),
        ),
        Verdict::Rule(g, r) => fatal(
            u,
            format!(
                "security group {g} of {} drops {} {way}: rule {} (priority {}, {}) matches it first",
                at.name,
                flow.describe(),
                r.id,
                r.priority,
                r.describe()
            ),
        ),
        Verdict::DefaultAccept(why) => hop(
            u,
            "security-group",
            &hop_id,
            format!("{way}: {why}, which allows {}", flow.describe()),
        ),
        Verdict::DefaultDrop(why) => fatal(
            u,
            format!(
                "no {way} rule of {} of {} allows {}, and {why}",
                which_groups(groups),
                at.name,
                flow.describe()
            ),
        ),
    }
    verdict.allows()
}

// ---- route tables ---------------------------------------------------------------

/// The entry for `dst`: the longest matching prefix.
pub fn best_route(entries: &[RouteEntry], dst: Ipv4Addr) -> Option<&RouteEntry> {
    entries
        .iter()
        .filter(|e| e.destination.contains(&dst))
        .max_by_key(|e| e.destination.prefix_len())
}

/// What the route for a destination must point at.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// Any route will do.
    Any,
    /// The destination is an address of this instance: a system route
    /// inside the VPC, or a route to the instance or one of its ENIs.
    Instance {
        id: &'a str,
        node: &'a str,
        enis: &'a [String],
    },
    /// The destination is routed to the instance (a pod CIDR): the route's
    /// next hop must be the instance or one of its ENIs.
    RoutedTo {
        id: &'a str,
        node: &'a str,
        enis: &'a [String],
    },
}

fn is_hop_to(h: &crate::model::NextHop, id: &str, enis: &[String]) -> bool {
    (h.kind.eq_ignore_ascii_case("Instance") && h.id == id)
        || (h.kind.eq_ignore_ascii_case("NetworkInterface") && enis.contains(&h.id))
}

/// Look `flow.dst` up in route table `table` (of vSwitch `vswitch`); FATAL
/// when no entry matches or the entry sends it elsewhere than `expect`.
/// Returns the entry taken.
pub fn check_route<'a>(
    u: &mut Underlay,
    table: &str,
    vswitch: &str,
    entries: &'a [RouteEntry],
    flow: &Flow,
    expect: Expect<'_>,
) -> Option<&'a RouteEntry> {
    let dst = flow.dst;
    let Some(route) = best_route(entries, dst) else {
        fatal(
            u,
            format!(
                "route table {table} of vSwitch {vswitch} has no route entry for {dst}, so {} is dropped",
                flow.describe()
            ),
        );
        return None;
    };
    if !route.status.is_empty() && !route.status.eq_ignore_ascii_case("Available") {
        warning(
            u,
            format!(
                "route entry {} of route table {table} for {dst} is {}, not Available",
                route.describe(),
                route.status
            ),
        );
    }
    let (id, node, enis, local_ok) = match expect {
        Expect::Any => {
            hop(
                u,
                "route-table",
                table,
                format!("route entry {} takes {}", route.describe(), flow.describe()),
            );
            return Some(route);
        }
        Expect::Instance { id, node, enis } => (id, node, enis, true),
        Expect::RoutedTo { id, node, enis } => (id, node, enis, false),
    };
    let to_target = route
        .next_hops
        .iter()
        .filter(|h| is_hop_to(h, id, enis))
        .count();
    if (local_ok && route.is_local()) || (to_target > 0 && to_target == route.next_hops.len()) {
        hop(
            u,
            "route-table",
            table,
            format!("route entry {} takes {}", route.describe(), flow.describe()),
        );
    } else if to_target > 0 {
        warning(
            u,
            format!(
                "route table {table} of vSwitch {vswitch} spreads {dst} by route entry {} over several next hops, only some of which are instance {id} of node {node}",
                route.describe()
            ),
        );
    } else if route.is_local() {
        fatal(
            u,
            format!(
                "route table {table} of vSwitch {vswitch} has only the system route entry {} for {dst}, which is routed to instance {id} of node {node} by no entry, so {} is dropped",
                route.describe(),
                flow.describe()
            ),
        );
    } else if route.destination.prefix_len() == 0 {
        fatal(
            u,
            format!(
                "route table {table} of vSwitch {vswitch} has no route entry for {dst} but the default route entry {}, so {} goes there instead of to instance {id} of node {node}",
                route.describe(),
                flow.describe()
            ),
        );
    } else {
        fatal(
            u,
            format!(
                "route table {table} of vSwitch {vswitch} sends {dst} by route entry {} instead of to instance {id} of node {node}, so {} does not reach it",
                route.describe(),
                flow.describe()
            ),
        );
    }
    Some(route)
}

// ---- NAT gateways -------------------------------------------------------------

/// Where the source of an outbound flow sits, for SNAT matching.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub addr: Ipv4Addr,
    pub vswitch: &'a str,
    pub eni: &'a str,
    /// `instance i-abc (node n1)`.
    pub name: &'a str,
}

/// The SNAT entry that translates `src`: by a source CIDR that covers it
/// (an ECS /32, a vSwitch or a VPC CIDR), by its vSwitch, or by its ENI;
/// the most specific CIDR first.
pub fn snat_entry<'a>(entries: &'a [SnatEntry], src: &Source<'_>) -> Option<&'a SnatEntry> {
    let usable = |e: &&SnatEntry| e.status.is_empty() || e.status.eq_ignore_ascii_case("Available");
    entries
        .iter()
        .filter(usable)
        .filter(|e| !src.eni.is_empty() && e.eni == src.eni)
        .chain(
            entries
                .iter()
                .filter(usable)
                .filter(|e| e.source_cidr.is_some_and(|c| c.contains(&src.addr)))
                .max_by_key(|e| e.source_cidr.map(|c| c.prefix_len())),
        )
        .chain(entries.iter().filter(usable).filter(|e| {
            e.source_cidr.is_none() && !src.vswitch.is_empty() && e.source_vswitch == src.vswitch
        }))
        .next()
}

/// A NAT gateway on the way out: it must exist, be available, reach the
/// Internet, and have a SNAT entry for the source.
pub fn check_nat_gateway(
    u: &mut Underlay,
    id: &str,
    gateway: Option<&NatGateway>,
    entries: &[SnatEntry],
    flow: &Flow,
    src: &Source<'_>,
) {
    let Some(g) = gateway else {
        fatal(
            u,
            format!(
                "the route for {} points at NAT gateway {id}, which does not exist, so {} is dropped",
                flow.dst,
                flow.describe()
            ),
        );
        return;
    };
    if !g.status.is_empty() && !g.status.eq_ignore_ascii_case("Available") {
        fatal(
            u,
            format!(
                "NAT gateway {id} is {}, not Available, so it does not translate {}",
                g.status,
                flow.describe()
            ),
        );
        return;
    }
    if g.network_type.eq_ignore_ascii_case("intranet") {
        fatal(
            u,
            format!(
                "NAT gateway {id} is a VPC (intranet) NAT gateway, which reaches no Internet address such as {}",
                flow.dst
            ),
        );
        return;
    }
    match snat_entry(entries, src) {
        Some(e) => hop(
            u,
            "nat-gateway",
            id,
            format!("SNAT entry {} translates {}", e.describe(), flow.describe()),
        ),
        None => {
            let tables = if g.snat_table_ids.is_empty() {
                "it has no SNAT table".to_string()
            } else {
                format!("SNAT table {}", g.snat_table_ids.join(", "))
            };
            fatal(
                u,
                format!(
                    "NAT gateway {id} has no SNAT entry for source {} of {} in vSwitch {} in {tables}, so {} is not translated and does not reach the Internet",
                    src.addr,
                    src.name,
                    src.vswitch,
                    flow.describe()
                ),
            )
        }
    }
}

#[cfg(test)]
pub mod tests_support {
    use super::*;
    use crate::model::RuleProtocol;

    pub fn rule(
        ingress: bool,
        proto: &str,
        ports: Option<(u16, u16)>,
        accept: bool,
        priority: u32,
        peer: &str,
    ) -> Rule {
        let (cidr, group) = if peer.starts_with("sg-") {
            (None, Some(peer.to_string()))
        } else {
            (Some(peer.parse::<Ipv4Net>().expect("a CIDR")), None)
        };
        Rule {
            id: format!("sgr-{priority}-{}", if accept { "a" } else { "d" }),
            ingress,
            protocol: RuleProtocol::parse(proto),
            ports,
            source_ports: None,
            accept,
            priority,
            source_cidr: if ingress { cidr } else { None },
            dest_cidr: if ingress { None } else { cidr },
            source_group: if ingress { group.clone() } else { None },
            dest_group: if ingress { None } else { group },
            source_prefix_list: None,
            dest_prefix_list: None,
            ipv6_only: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::rule;
    use super::*;
    use crate::model::NextHop;
    use crate::model::{IPIP, UDP};
    use skoop_sdk::{EPHEMERAL_PORT, Encap, EncapKind, Packet, Protocol};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
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

    fn ipip(src: &str, dst: &str) -> Packet {
        Packet {
            encap: Some(Encap {
                kind: EncapKind::Ipip,
                src: ip(src),
                dst: ip(dst),
                vni: None,
                port: None,
            }),
            ..packet("10.244.0.5", "10.244.1.7", 8080)
        }
    }

    fn sg(id: &str, kind: GroupKind, rules: Vec<Rule>) -> SecurityGroup {
        SecurityGroup {
            id: id.into(),
            kind,
            inner_accept: true,
            vpc_id: "vpc-1".into(),
            rules,
        }
    }

    fn none(_: &str) -> Option<Vec<Ipv4Net>> {
        None
    }

    fn at(addr: &str) -> At<'static> {
        At {
            name: "instance i-2 (node node-2)",
            addr: ip(addr),
        }
    }

    fn peer(addr: &str, groups: &[&str]) -> Peer {
        Peer {
            addr: Some(ip(addr)),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            name: "instance i-1 (node node-1)".into(),
        }
    }

    fn levels(u: &Underlay) -> Vec<Level> {
        u.suspicions.iter().map(|s| s.level).collect()
    }

    #[test]
    fn flows_are_the_outer_packet_of_tunnels() {
        let f = Flow::of(&vxlan("192.168.0.11", "192.168.0.12"));
        assert_eq!(
            (f.src, f.dst, f.protocol, f.dport),
            (ip("192.168.0.11"), ip("192.168.0.12"), UDP, Port::One(8472))
        );
        assert_eq!(
            f.describe(),
            "the VXLAN request udp 192.168.0.11 -> 192.168.0.12:8472"
        );
        let f = Flow::of(&ipip("192.168.0.11", "192.168.0.12"));
        assert_eq!((f.protocol, f.dport), (IPIP, Port::None));
        let f = Flow::of(&packet("10.244.0.5", "10.244.1.7", 8080));
        assert_eq!(
            f.describe(),
            "the request tcp 10.244.0.5 -> 10.244.1.7:8080"
        );
        let mut p = packet("10.244.1.7", "10.244.0.5", EPHEMERAL_PORT);
        p.sport = 8080;
        p.reply = true;
        let f = Flow::of(&p);
        assert!(!f.needs_stateful_check());
        assert_eq!(f.dport, Port::Ephemeral);
    }

    #[test]
    fn shared_basic_group_allows_members_and_blocks_outsiders() {
        let g = sg("sg-1", GroupKind::Normal, vec![]);
        let flow = Flow::of(&vxlan("192.168.0.11", "192.168.0.12"));
        let mut u = Underlay::default();
        assert!(check_security_groups(
            &mut u,
            &[&g],
            Direction::Ingress,
            &flow,
            &at("192.168.0.12"),
            &peer("192.168.0.11", &["sg-1"]),
            &none
        ));
        assert!(u.suspicions.is_empty());
        assert_eq!(u.hops[0].id, "sg-1");
        // Not a member: dropped by default.
        let mut u = Underlay::default();
        assert!(!check_security_groups(
            &mut u,
            &[&g],
            Direction::Ingress,
            &flow,
            &at("192.168.0.12"),
            &peer("192.168.0.11", &["sg-2"]),
            &none
        ));
        assert_eq!(levels(&u), vec![Level::Fatal]);
        assert_eq!(
            u.suspicions[0].message,
            "no inbound rule of security group sg-1 of instance i-2 (node node-2) allows the VXLAN request udp 192.168.0.11 -> 192.168.0.12:8472, and inbound traffic that no rule allows is dropped"
        );
        // Isolated members.
        let mut g2 = g.clone();
        g2.inner_accept = false;
        let mut u = Underlay::default();
        assert!(!check_security_groups(
            &mut u,
            &[&g2],
            Direction::Ingress,
            &flow,
            &at("192.168.0.12"),
            &peer("192.168.0.11", &["sg-1"]),
            &none
        ));
        assert!(
            u.suspicions[0]
                .message
                .contains("internal access policy of basic security group sg-1 isolates")
        );
        // Outbound: allowed by a basic group, dropped by an enterprise one.
        let mut u = Underlay::default();
        assert!(check_security_groups(
            &mut u,
            &[&g],
            Direction::Egress,
            &flow,
            &at("192.168.0.11"),
            &peer("192.168.0.12", &[]),
            &none
        ));
        let e = sg("sg-e", GroupKind::Enterprise, vec![]);
        let mut u = Underlay::default();
        assert!(!check_security_groups(
            &mut u,
            &[&e],
            Direction::Egress,
            &flow,
            &at("192.168.0.11"),
            &peer("192.168.0.12", &["sg-e"]),
            &none
        ));
        assert!(
            u.suspicions[0]
                .message
                .contains("enterprise security group sg-e drops outbound traffic")
        );
        // Enterprise members do not reach each other by default.
        let mut u = Underlay::default();
        assert!(!check_security_groups(
            &mut u,
            &[&e],
            Direction::Ingress,
            &flow,
            &at("192.168.0.12"),
            &peer("192.168.0.11", &["sg-e"]),
            &none
        ));
    }

    #[test]
    fn drop_wins_at_equal_priority_and_priority_comes_first() {
        let flow = Flow::of(&vxlan("192.168.0.11", "192.168.0.12"));
        let g = sg(
            "sg-1",
            GroupKind::Normal,
            vec![
                rule(true, "ALL", None, true, 1, "192.168.0.0/16"),
                rule(true, "UDP", Some((8472, 8472)), false, 1, "192.168.0.0/16"),
            ],
        );
        let mut u = Underlay::default();
        assert!(!check_security_groups(
            &mut u,
            &[&g],
            Direction::Ingress,
            &flow,
            &at("192.168.0.12"),
            &peer("192.168.0.11", &["sg-1"]),
            &none
        ));
        assert_eq!(
            u.suspicions[0].message,
            "security group sg-1 of instance i-2 (node node-2) drops the VXLAN request udp 192.168.0.11 -> 192.168.0.12:8472 inbound: rule sgr-1-d (priority 1, drop udp 8472/8472 from 192.168.0.0/16) matches it first"
        );
        // A higher-priority accept (lower number) beats the drop.
        let g = sg(
            "sg-1",
            GroupKind::Normal,
            vec![
                rule(true, "UDP", Some((8472, 8472)), false, 5, "192.168.0.0/16"),
                rule(true, "UDP", Some((8000, 9000)), true, 2, "192.168.0.11/32"),
            ],
        );
        let mut u = Underlay::default();
        assert!(check_security_groups(
            &mut u,
            &[&g],
            Direction::Ingress,
            &flow,
            &at("192.168.0.12"),
            &peer("192.168.0.11", &[]),
            &none
        ));
        assert!(
            u.hops[0]
                .detail
                .contains("rule sgr-2-a (priority 2, accept udp 8000/9000 from 192.168.0.11/32)")
        );
        // Rules of several groups of one ENI are sorted together.
        let a = sg(
            "sg-a",
            GroupKind::Normal,
            vec![rule(true, "ALL", None, true, 10, "0.0.0.0/0")],
        );
        let b = sg(
            "sg-b",
            GroupKind::Normal,
            vec![rule(true, "UDP", None, false, 3, "192.168.0.0/24")],
        );
        let mut u = Underlay::default();
        assert!(!check_security_groups(
            &mut u,
            &[&a, &b],
            Direction::Ingress,
            &flow,
            &at("192.168.0.12"),
            &peer("192.168.0.11", &[]),
            &none
        ));
        assert!(u.suspicions[0].message.starts_with("security group sg-b"));
    }

    #[test]
    fn rules_by_group_id_match_members() {
        let flow = Flow::of(&vxlan("192.168.0.11", "192.168.0.12"));
        let g = sg(
            "sg-2",
            GroupKind::Normal,
            vec![rule(true, "UDP", Some((8472, 8472)), true, 1, "sg-1")],
        );
        let mut u = Underlay::default();
        assert!(check_security_groups(
            &mut u,
            &[&g],
            Direction::Ingress,
            &flow,
            &at("192.168.0.12"),
            &peer("192.168.0.11", &["sg-1"]),
            &none
        ));
        let mut u = Underlay::default();
        assert!(!check_security_groups(
            &mut u,
            &[&g],
            Direction::Ingress,
            &flow,
            &at("192.168.0.12"),
            &peer("192.168.0.11", &["sg-3"]),
            &none
        ));
        // Outbound to members of a group.
        let g = sg(
            "sg-1",
            GroupKind::Enterprise,
            vec![rule(false, "UDP", None, true, 1, "sg-2")],
        );
        let mut u = Underlay::default();
        assert!(check_security_groups(
            &mut u,
            &[&g],
            Direction::Egress,
            &flow,
            &at("192.168.0.11"),
            &peer("192.168.0.12", &["sg-2"]),
            &none
        ));
    }

    #[test]
    fn both_cidrs_of_a_rule_must_match() {
        let flow = Flow::of(&packet("10.244.0.5", "192.168.0.12", 10250));
        let mut r = rule(true, "TCP", Some((10250, 10250)), true, 1, "10.244.0.0/16");
        r.dest_cidr = Some(net("192.168.0.99/32"));
        let g = sg("sg-1", GroupKind::Normal, vec![r]);
        let mut u = Underlay::default();
        assert!(!check_security_groups(
            &mut u,
            &[&g],
            Direction::Ingress,
            &flow,
            &at("192.168.0.12"),
            &peer("10.244.0.5", &[]),
            &none
        ));
        let mut r = rule(true, "TCP", Some((10250, 10250)), true, 1, "10.244.0.0/16");
        r.dest_cidr = Some(net("192.168.0.0/24"));
        let g = sg("sg-1", GroupKind::Normal, vec![r]);
        let mut u = Underlay::default();
        assert!(check_security_groups(
            &mut u,
            &[&g],
            Direction::Ingress,
            &flow,
            &at("192.168.0.12"),
            &peer("10.244.0.5", &[]),
            &none
        ));
    }

    #[test]
    fn icmp_gre_ipip_and_numbers() {
        let mut p = packet("192.168.0.11", "192.168.0.12", 0);
        p.protocol = Protocol::Icmp;
        let icmp = Flow::of(&p);
        let ipip = Flow::of(&ipip("192.168.0.11", "192.168.0.12"));
        for (proto, flow, ok) in [
            ("ICMP", icmp, true),
            ("ICMP", ipip, false),
            ("4", ipip, true),
            ("GRE", ipip, false),
            ("ALL", ipip, true),
            ("TCP", icmp, false),
        ] {
            let g = sg(
                "sg-1",
                GroupKind::Enterprise,
                vec![rule(true, proto, None, true, 1, "192.168.0.0/16")],
            );
            let mut u = Underlay::default();
            assert_eq!(
                check_security_groups(
                    &mut u,
                    &[&g],
                    Direction::Ingress,
                    &flow,
                    &at("192.168.0.12"),
                    &peer("192.168.0.11", &[]),
                    &none
                ),
                ok,
                "{proto} {flow:?}"
            );
        }
        let mut p = packet("192.168.0.11", "192.168.0.12", 0);
        p.protocol = Protocol::Tcp;
        p.encap = None;
        let gre_rule = rule(true, "GRE", None, true, 1, "192.168.0.0/16");
        let gre = Flow {
            protocol: crate::model::GRE,
            sport: Port::None,
            dport: Port::None,
            ..Flow::of(&p)
        };
        let g = sg("sg-1", GroupKind::Enterprise, vec![gre_rule]);
        let mut u = Underlay::default();
        assert!(check_security_groups(
            &mut u,
            &[&g],
            Direction::Ingress,
            &gre,
            &at("192.168.0.12"),
            &peer("192.168.0.11", &[]),
            &none
        ));
    }

    #[test]
    fn ports_prefix_lists_and_ipv6() {
        let flow = Flow::of(&packet("10.0.0.1", "192.168.0.12", 8080));
        // A range that covers only some of the port does not match; `dport 0` is no wildcard.
        let g = sg(
            "sg-1",
            GroupKind::Enterprise,
            vec![rule(true, "TCP", Some((80, 80)), true, 1, "0.0.0.0/0")],
        );
        let mut u = Underlay::default();
        assert!(!check_security_groups(
            &mut u,
            &[&g],
            Direction::Ingress,
            &flow,
            &at("192.168.0.12"),
            &peer("10.0.0.1", &[]),
            &none
        ));
        let mut r = rule(true, "TCP", Some((8080, 8080)), true, 1, "0.0.0.0/0");
        r.source_cidr = None;
        r.source_prefix_list = Some("pl-1".into());
        let g = sg("sg-1", GroupKind::Enterprise, vec![r.clone()]);
        let lists = |id: &str| (id == "pl-1").then(|| vec![net("10.0.0.0/8")]);
        let mut u = Underlay::default();
        assert!(check_security_groups(
            &mut u,
            &[&g],
            Direction::Ingress,
            &flow,
            &at("192.168.0.12"),
            &peer("10.0.0.1", &[]),
            &lists
        ));
        r.source_prefix_list = None;
        r.ipv6_only = true;
        let g = sg("sg-1", GroupKind::Enterprise, vec![r]);
        let mut u = Underlay::default();
        assert!(!check_security_groups(
            &mut u,
            &[&g],
            Direction::Ingress,
            &flow,
            &at("192.168.0.12"),
            &peer("10.0.0.1", &[]),
            &lists
        ));
    }

    fn entry(id: &str, dst: &str, hops: &[(&str, &str)]) -> RouteEntry {
        RouteEntry {
            id: id.into(),
            destination: net(dst),
            kind: if hops.is_empty() {
                "System".into()
            } else {
                "Custom".into()
            },
            status: "Available".into(),
            next_hops: hops
                .iter()
                .map(|(k, i)| NextHop {
                    kind: k.to_string(),
                    id: i.to_string(),
                })
                .collect(),
        }
    }

    fn table() -> Vec<RouteEntry> {
        vec![
            entry("rte-sys", "192.168.0.0/24", &[("local", "")]),
            entry("rte-pods1", "10.244.1.0/24", &[("Instance", "i-2")]),
            entry("rte-pods", "10.244.0.0/16", &[("Instance", "i-3")]),
            entry("rte-nat", "0.0.0.0/0", &[("NatGateway", "ngw-1")]),
        ]
    }

    #[test]
    fn longest_prefix_and_next_hop() {
        let t = table();
        assert_eq!(best_route(&t, ip("10.244.1.7")).unwrap().id, "rte-pods1");
        assert_eq!(best_route(&t, ip("10.244.2.7")).unwrap().id, "rte-pods");
        assert_eq!(best_route(&t, ip("1.1.1.1")).unwrap().id, "rte-nat");
        let enis: Vec<String> = vec!["eni-2".into()];
        let flow = Flow::of(&packet("10.244.0.5", "10.244.1.7", 8080));
        let mut u = Underlay::default();
        check_route(
            &mut u,
            "vtb-1",
            "vsw-1",
            &t,
            &flow,
            Expect::RoutedTo {
                id: "i-2",
                node: "node-2",
                enis: &enis,
            },
        );
        assert!(u.suspicions.is_empty(), "{:?}", u.suspicions);
        assert_eq!(u.hops[0].kind, "route-table");
        // The /16 points at another instance.
        let flow = Flow::of(&packet("10.244.0.5", "10.244.2.7", 8080));
        let mut u = Underlay::default();
        check_route(
            &mut u,
            "vtb-1",
            "vsw-1",
            &t,
            &flow,
            Expect::RoutedTo {
                id: "i-2",
                node: "node-2",
                enis: &enis,
            },
        );
        assert_eq!(levels(&u), vec![Level::Fatal]);
        assert_eq!(
            u.suspicions[0].message,
            "route table vtb-1 of vSwitch vsw-1 sends 10.244.2.7 by route entry rte-pods (10.244.0.0/16 -> Instance i-3) instead of to instance i-2 of node node-2, so the request tcp 10.244.0.5 -> 10.244.2.7:8080 does not reach it"
        );
        // A route to the instance's ENI is as good.
        let t2 = vec![entry(
            "rte-eni",
            "10.244.2.0/24",
            &[("NetworkInterface", "eni-2")],
        )];
        let mut u = Underlay::default();
        check_route(
            &mut u,
            "vtb-1",
            "vsw-1",
            &t2,
            &flow,
            Expect::RoutedTo {
                id: "i-2",
                node: "node-2",
                enis: &enis,
            },
        );
        assert!(u.suspicions.is_empty());
        // No entry at all.
        let t3 = vec![entry("rte-sys", "192.168.0.0/24", &[])];
        let mut u = Underlay::default();
        check_route(
            &mut u,
            "vtb-1",
            "vsw-1",
            &t3,
            &flow,
            Expect::RoutedTo {
                id: "i-2",
                node: "node-2",
                enis: &enis,
            },
        );
        assert_eq!(
            u.suspicions[0].message,
            "route table vtb-1 of vSwitch vsw-1 has no route entry for 10.244.2.7, so the request tcp 10.244.0.5 -> 10.244.2.7:8080 is dropped"
        );
        // A node address: the system route delivers it.
        let flow = Flow::of(&vxlan("192.168.0.11", "192.168.0.12"));
        let mut u = Underlay::default();
        check_route(
            &mut u,
            "vtb-1",
            "vsw-1",
            &t,
            &flow,
            Expect::Instance {
                id: "i-2",
                node: "node-2",
                enis: &enis,
            },
        );
        assert!(u.suspicions.is_empty());
        // A pod address covered only by the system route of a VPC CIDR.
        let t4 = vec![entry("rte-sys", "10.0.0.0/8", &[])];
        let flow = Flow::of(&packet("10.244.0.5", "10.244.1.7", 8080));
        let mut u = Underlay::default();
        check_route(
            &mut u,
            "vtb-1",
            "vsw-1",
            &t4,
            &flow,
            Expect::RoutedTo {
                id: "i-2",
                node: "node-2",
                enis: &enis,
            },
        );
        assert_eq!(levels(&u), vec![Level::Fatal]);
        // ECMP over the node and another: a warning.
        let t5 = vec![entry(
            "rte-ecmp",
            "10.244.1.0/24",
            &[("Instance", "i-2"), ("Instance", "i-9")],
        )];
        let mut u = Underlay::default();
        check_route(
            &mut u,
            "vtb-1",
            "vsw-1",
            &t5,
            &flow,
            Expect::RoutedTo {
                id: "i-2",
                node: "node-2",
                enis: &enis,
            },
        );
        assert_eq!(levels(&u), vec![Level::Warning]);
    }

    fn snat(id: &str, cidr: Option<&str>, vsw: &str, eni: &str) -> SnatEntry {
        SnatEntry {
            id: id.into(),
            table_id: "stb-1".into(),
            source_cidr: cidr.map(net),
            source_vswitch: vsw.into(),
            eni: eni.into(),
            snat_ip: "47.1.1.1".into(),
            status: "Available".into(),
        }
    }

    fn ngw() -> NatGateway {
        NatGateway {
            id: "ngw-1".into(),
            status: "Available".into(),
            network_type: "internet".into(),
            snat_table_ids: vec!["stb-1".into()],
        }
    }

    #[test]
    fn snat_entries_match_any_covering_source() {
        let src = Source {
            addr: ip("192.168.0.11"),
            vswitch: "vsw-1",
            eni: "eni-1",
            name: "instance i-1 (node node-1)",
        };
        let flow = Flow::of(&packet("192.168.0.11", "1.1.1.1", 443));
        for entries in [
            vec![snat("snat-vsw", Some("192.168.0.0/24"), "vsw-1", "")],
            vec![snat("snat-vpc", Some("192.168.0.0/16"), "", "")],
            vec![snat("snat-ecs", Some("192.168.0.11/32"), "", "")],
            vec![snat("snat-by-vsw", None, "vsw-1", "")],
            vec![snat("snat-eni", None, "", "eni-1")],
        ] {
            let mut u = Underlay::default();
            check_nat_gateway(&mut u, "ngw-1", Some(&ngw()), &entries, &flow, &src);
            assert!(u.suspicions.is_empty(), "{entries:?}: {:?}", u.suspicions);
            assert_eq!(u.hops[0].kind, "nat-gateway");
        }
        // The most specific wins.
        let e = vec![
            snat("snat-vpc", Some("192.168.0.0/16"), "", ""),
            snat("snat-ecs", Some("192.168.0.11/32"), "", ""),
        ];
        assert_eq!(snat_entry(&e, &src).unwrap().id, "snat-ecs");
        // Another vSwitch's entry does not.
        let e = vec![snat("snat-other", Some("192.168.1.0/24"), "vsw-2", "")];
        let mut u = Underlay::default();
        check_nat_gateway(&mut u, "ngw-1", Some(&ngw()), &e, &flow, &src);
        assert_eq!(
            u.suspicions[0].message,
            "NAT gateway ngw-1 has no SNAT entry for source 192.168.0.11 of instance i-1 (node node-1) in vSwitch vsw-1 in SNAT table stb-1, so the request tcp 192.168.0.11 -> 1.1.1.1:443 is not translated and does not reach the Internet"
        );
        // Missing, unavailable, intranet gateways.
        let mut u = Underlay::default();
        check_nat_gateway(&mut u, "ngw-9", None, &[], &flow, &src);
        assert!(
            u.suspicions[0]
                .message
                .contains("NAT gateway ngw-9, which does not exist")
        );
        let mut g = ngw();
        g.network_type = "intranet".into();
        let mut u = Underlay::default();
        check_nat_gateway(&mut u, "ngw-1", Some(&g), &[], &flow, &src);
        assert!(
            u.suspicions[0]
                .message
                .contains("VPC (intranet) NAT gateway")
        );
        let mut g = ngw();
        g.status = "Creating".into();
        let mut u = Underlay::default();
        check_nat_gateway(&mut u, "ngw-1", Some(&g), &[], &flow, &src);
        assert_eq!(levels(&u), vec![Level::Fatal]);
        // A pending entry does not translate yet.
        let mut e = snat("snat-vsw", Some("192.168.0.0/24"), "vsw-1", "");
        e.status = "Pending".into();
        assert!(snat_entry(&[e], &src).is_none());
    }

    #[test]
    fn fetch_errors_become_warnings() {
        let api = FetchError::Api {
            api: "ECS DescribeSecurityGroupAttribute".into(),
            code: "Forbidden.RAM".into(),
            message: "User not authorized".into(),
        };
        let s = cannot_check("security group sg-1 of node node-1", &api);
        assert_eq!(s.level, Level::Warning);
        assert_eq!(
            s.message,
            "cannot check security group sg-1 of node node-1: ECS DescribeSecurityGroupAttribute: Forbidden.RAM: User not authorized"
        );
        assert_eq!(
            cannot_check("the route table of vSwitch vsw-1", &FetchError::NotRecorded).message,
            "cannot check the route table of vSwitch vsw-1 (not recorded)"
        );
        assert_eq!(
            cannot_check("x", &FetchError::NoCredentials).message,
            NO_CREDENTIALS
        );
    }
}
