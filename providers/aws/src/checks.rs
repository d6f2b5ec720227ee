//! The underlay checks, as pure functions over the typed EC2 resources.
//!
//! Each check appends to an [`Underlay`]: the device it passed as a hop (with
//! the rule or route that decided), and a suspicion when the device drops the
//! packet. Every suspicion names the resource and the rule, and ends with the
//! AWS Reachability Analyzer explanation code in parentheses.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
pub use skoop_sdk::underlay::{EPHEMERAL, Flow, Port, Tunnel, VXLAN_PORT};
use skoop_sdk::{Level, Suspicion, Underlay, UnderlayHop};

use crate::ec2::{
    AclEntry, ICMP, IpProtocol, NetworkAcl, NetworkInterface, Permission, Route, RouteDestination,
    RouteTable, SecurityGroup, has_ports, protocol_name,
};

/// Linux's default `net.ipv4.ip_local_port_range`: the ports a node's clients use.
pub const LINUX_EPHEMERAL: (u16, u16) = (32768, 60999);

/// Why a fact could not be fetched from the cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The API answered an error.
    Api { code: String, message: String },
    /// Replaying a recording that lacks the request.
    NotRecorded,
    /// No credentials were configured and the endpoint wants them.
    NoCredentials,
    /// Anything else (transport, unexpected answer).
    Other(String),
}

/// The fetch result of one cloud fact.
pub type Fetch<T> = Result<T, FetchError>;

/// The one warning given when no credentials are configured.
pub const NO_CREDENTIALS: &str = "cannot check the AWS underlay: no AWS credentials; give --aws-access-key-id and --aws-secret-access-key (or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add the profile named by --aws-profile or AWS_PROFILE, else \"default\", to ~/.aws/credentials)";

/// The warning when `subject` cannot be checked.
pub fn cannot_check(subject: &str, e: &FetchError) -> Suspicion {
    let message = match e {
        FetchError::Api { code, message } if message.is_empty() => {
            format!("cannot check {subject}: {code}")
        }
        FetchError::Api { code, message } => format!("cannot check {subject}: {code}: {message}"),
        FetchError::NotRecorded => format!("cannot check {subject} (not recorded)"),
        FetchError::NoCredentials => NO_CREDENTIALS.to_string(),
        FetchError::Other(m) => format!("cannot check {subject}: {m}"),
    };
    Suspicion::new(Level::Warning, message)
}

/// The managed prefix lists' entries, fetched on demand.
pub trait PrefixLists {
    fn prefix_list(&self, id: &str) -> Fetch<Vec<Ipv4Net>>;
}

/// No prefix lists known (tests, and resources that use none).
pub struct NoPrefixLists;

impl PrefixLists for NoPrefixLists {
    fn prefix_list(&self, _: &str) -> Fetch<Vec<Ipv4Net>> {
        Ok(vec![])
    }
}

/// An ENI on the path, with what names it in messages.
#[derive(Debug, Clone, Copy)]
pub struct Attachment<'a> {
    pub eni: &'a NetworkInterface,
    /// `node n1, instance i-0abc`.
    pub owner: &'a str,
}

impl Attachment<'_> {
    /// `eni-0abc (node n1, instance i-0abc)`.
    pub fn name(&self) -> String {
        if self.owner.is_empty() {
            self.eni.id.clone()
        } else {
            format!("{} ({})", self.eni.id, self.owner)
        }
    }
}

fn hop(kind: &str, id: &str, detail: String) -> UnderlayHop {
    UnderlayHop {
        kind: kind.into(),
        id: id.into(),
        detail,
    }
}

fn critical(u: &mut Underlay, message: String) {
    push(u, Suspicion::new(Level::Critical, message));
}

/// Add a suspicion unless the same one is there.
pub fn push(u: &mut Underlay, s: Suspicion) {
    if !u.suspicions.contains(&s) {
        u.suspicions.push(s);
    }
}

// ---- security groups -------------------------------------------------------

/// Which rules of a security group apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Egress,
    Ingress,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Egress => "egress",
            Direction::Ingress => "ingress",
        }
    }

    fn preposition(self) -> &'static str {
        match self {
            Direction::Egress => "to",
            Direction::Ingress => "from",
        }
    }
}

/// `tcp 30000-32767`, `udp 8472`, `all traffic`, `icmp all`.
fn permission_what(p: &Permission) -> String {
    let range = |from: Option<i32>, to: Option<i32>| match (from, to) {
        (None | Some(-1), _) => None,
        (Some(f), Some(t)) if f == t || t == -1 => Some(f.to_string()),
        (Some(f), Some(t)) => Some(format!("{f}-{t}")),
        (Some(f), None) => Some(f.to_string()),
    };
    match p.protocol {
        IpProtocol::All => "all traffic".into(),
        IpProtocol::Number(n) if n == ICMP => match range(p.from_port, None) {
            Some(t) => format!("icmp type {t}"),
            None => "icmp all".into(),
        },
        IpProtocol::Number(n) if has_ports(n) => match range(p.from_port, p.to_port) {
            Some(r) => format!("{} {r}", protocol_name(n)),
            None => format!("{} all ports", protocol_name(n)),
        },
        IpProtocol::Number(n) => protocol_name(n),
    }
}

fn ports_match(p: &Permission, flow: &Flow) -> bool {
    let IpProtocol::Number(n) = p.protocol else {
        return true;
    };
    if has_ports(n) {
        let from = p.from_port.unwrap_or(-1);
        let to = p.to_port.unwrap_or(-1);
        if from < 0 {
            return true;
        }
        let (lo, hi) = flow.dport.range().unwrap_or((0, 0));
        i32::from(lo) >= from && i32::from(hi) <= to.max(from)
    } else if n == ICMP {
        // fromPort is the ICMP type, toPort the code; skoop's probes are echoes.
        let icmp_type = if flow.reply { 0 } else { 8 };
        let t = p.from_port.unwrap_or(-1);
        let c = p.to_port.unwrap_or(-1);
        (t < 0 || t == icmp_type) && c <= 0
    } else {
        true
    }
}

/// Check the security groups of `at` for `flow`: its egress rules toward the
/// destination, or its ingress rules from the source. Security groups are
/// stateful, so only the first packet of a connection is checked (callers
/// skip replies that are not encapsulated). `peer` is the other end's ENI when
/// it is in the VPC (security-group references match its members).
pub fn check_security_groups(
    u: &mut Underlay,
    at: Attachment<'_>,
    groups: &[SecurityGroup],
    direction: Direction,
    flow: &Flow,
    peer: Option<&NetworkInterface>,
    lists: &dyn PrefixLists,
) {
    let peer_addr = match direction {
        Direction::Egress => flow.dst,
        Direction::Ingress => flow.src,
    };
    let mut reference_miss: Option<String> = None;
    for g in groups {
        let rules = match direction {
            Direction::Egress => &g.egress,
            Direction::Ingress => &g.ingress,
        };
        for rule in rules {
            if !rule.protocol.covers(flow.protocol) || !ports_match(rule, flow) {
                continue;
            }
            let what = permission_what(rule);
            let to = direction.preposition();
            let mut matched: Option<String> = rule
                .cidrs
                .iter()
                .find(|c| c.contains(&peer_addr))
                .map(|c| format!("{what} {to} {c}"));
            if matched.is_none() {
                for pl in &rule.prefix_lists {
                    match lists.prefix_list(pl) {
                        Ok(entries) => {
                            if let Some(c) = entries.iter().find(|c| c.contains(&peer_addr)) {
                                matched = Some(format!("{what} {to} {pl} ({c})"));
                                break;
                            }
                        }
                        Err(e) => push(u, cannot_check(&format!("prefix list {pl}"), &e)),
                    }
                }
            }
            if matched.is_none()
                && let Some(peer) = peer
            {
                for r in &rule.groups {
                    if !peer.groups.contains(r) {
                        continue;
                    }
                    if peer.owns(peer_addr) {
                        matched = Some(format!("{what} {to} {r}"));
                        break;
                    }
                    reference_miss.get_or_insert_with(|| {
                        format!(
                            "; rule {what} {to} {r} of {} matches members of {r} by their private IPs only, and {peer_addr} is not one of {}'s ({}): a pod address routed natively, or not NATed to the node's address",
                            g.id,
                            peer.id,
                            peer.addresses()
                        )
                    });
                }
            }
            if let Some(rule_text) = matched {
                u.hops.push(hop(
                    "security-group",
                    &g.id,
                    format!(
                        "{}: rule {rule_text} allows {}",
                        direction.name(),
                        flow.describe()
                    ),
                ));
                return;
            }
        }
    }
    let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    let which = match ids.len() {
        0 => "no security group".to_string(),
        1 => format!("security group {}", ids[0]),
        _ => format!("security groups {}", ids.join(", ")),
    };
    critical(
        u,
        format!(
            "no {} rule of {which} of {} allows {}{} (ENI_SG_RULES_MISMATCH)",
            direction.name(),
            at.name(),
            flow.describe(),
            reference_miss.unwrap_or_default()
        ),
    );
}

// ---- network ACLs ----------------------------------------------------------

/// `allow tcp 80 from 0.0.0.0/0`, `deny all traffic to 10.0.1.0/24`.
fn entry_text(e: &AclEntry) -> String {
    let action = if e.allow { "allow" } else { "deny" };
    let what = match (e.protocol, e.ports) {
        (IpProtocol::Number(n), Some((f, t))) if has_ports(n) && f == t => {
            format!("{} {f}", protocol_name(n))
        }
        (IpProtocol::Number(n), Some((f, t))) if has_ports(n) => {
            format!("{} {f}-{t}", protocol_name(n))
        }
        (p, _) => p.name(),
    };
    let to = if e.egress { "to" } else { "from" };
    let cidr = e
        .cidr
        .map(|c| c.to_string())
        .unwrap_or_else(|| "an IPv6 range".into());
    format!("{action} {what} {to} {cidr}")
}

fn ranges_text(ranges: &[(u16, u16)]) -> String {
    ranges
        .iter()
        .map(|(l, h)| {
            if l == h {
                l.to_string()
            } else {
                format!("{l}-{h}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a network ACL decides for each part of a flow's port range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclVerdict {
    /// (port range, deciding entry; None: the implicit final deny).
    pub parts: Vec<((u16, u16), Option<AclEntry>)>,
}

impl AclVerdict {
    fn denied(&self) -> Vec<(u16, u16)> {
        merge_ranges(
            self.parts
                .iter()
                .filter(|(_, e)| !e.as_ref().is_some_and(|e| e.allow))
                .map(|(r, _)| *r)
                .collect(),
        )
    }

    fn allowed(&self) -> Vec<(u16, u16)> {
        let mut v: Vec<(u16, u16)> = self
            .parts
            .iter()
            .filter(|(_, e)| e.as_ref().is_some_and(|e| e.allow))
            .map(|(r, _)| *r)
            .collect();
        v.sort();
        merge_ranges(v)
    }

    fn rules(&self, allow: bool) -> Vec<String> {
        let mut out: Vec<String> = vec![];
        for (_, e) in &self.parts {
            let t = match e {
                Some(e) if e.allow == allow => {
                    format!("rule {} ({})", e.rule_number, entry_text(e))
                }
                None if !allow => "rule * (deny all traffic, the final rule)".to_string(),
                _ => continue,
            };
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }
}

fn merge_ranges(mut v: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    v.sort();
    let mut out: Vec<(u16, u16)> = vec![];
    for (l, h) in v {
        match out.last_mut() {
            Some((_, ph)) if u32::from(l) <= u32::from(*ph) + 1 => *ph = (*ph).max(h),
            _ => out.push((l, h)),
        }
    }
    out
}

/// Evaluate a network ACL's entries of one direction for `flow`: in rule
/// number order, first match wins, and whatever no entry matches hits the
/// implicit final deny (rule `*`, present or not in the entries).
pub fn evaluate_acl(acl: &NetworkAcl, egress: bool, flow: &Flow) -> AclVerdict {
    let mut entries: Vec<&AclEntry> = acl.entries.iter().filter(|e| e.egress == egress).collect();
    entries.sort_by_key(|e| e.rule_number);
    let peer = if egress { flow.dst } else { flow.src };
    let mut undecided = vec![flow.dport.range().unwrap_or((0, 0))];
    let mut parts = vec![];
    for e in entries {
        if undecided.is_empty() {
            break;
        }
        if !e.protocol.covers(flow.protocol) || !e.cidr.is_some_and(|c| c.contains(&peer)) {
            continue;
        }
        let (elo, ehi) = match (e.protocol, e.ports) {
            (IpProtocol::Number(n), Some(r)) if has_ports(n) && has_ports(flow.protocol) => r,
            _ => (0, u16::MAX),
        };
        let mut rest = vec![];
        for (lo, hi) in undecided {
            let (l, h) = (lo.max(elo), hi.min(ehi));
            if l > h {
                rest.push((lo, hi));
                continue;
            }
            parts.push(((l, h), Some(e.clone())));
            if lo < l {
                rest.push((lo, l - 1));
            }
            if h < hi {
                rest.push((h + 1, hi));
            }
        }
        undecided = rest;
    }
    parts.extend(undecided.into_iter().map(|r| (r, None)));
    AclVerdict { parts }
}

/// Check the network ACL of subnet `subnet` for `flow` leaving (`egress`) or
/// entering it. A deny is CRITICAL; a reply the ACL admits on only part of
/// the ephemeral ports is a WARNING.
pub fn check_acl(
    u: &mut Underlay,
    acl: &NetworkAcl,
    subnet: &str,
    egress: bool,
    flow: &Flow,
    add_hop: bool,
) {
    let verdict = evaluate_acl(acl, egress, flow);
    let way = if egress { "outbound" } else { "inbound" };
    let allowed = verdict.allowed();
    let (lo, hi) = flow.dport.range().unwrap_or((0, 0));
    let all = allowed == vec![(lo, hi)];
    if allowed.is_empty() {
        critical(
            u,
            format!(
                "network ACL {} of subnet {subnet} denies {} {way}: {} (SUBNET_ACL_RESTRICTION)",
                acl.id,
                flow.describe(),
                verdict.rules(false).join(", ")
            ),
        );
        return;
    }
    if !all {
        // Part of the ephemeral ports: fine for Linux clients when theirs are all admitted.
        let linux = allowed
            .iter()
            .any(|(l, h)| *l <= LINUX_EPHEMERAL.0 && *h >= LINUX_EPHEMERAL.1);
        let denied = verdict.denied();
        if !linux {
            critical(
                u,
                format!(
                    "network ACL {} of subnet {subnet} denies {} {way} on ports {}, among them Linux clients' {}-{}: {}; it admits ports {} only ({}) (SUBNET_ACL_RESTRICTION)",
                    acl.id,
                    flow.describe(),
                    ranges_text(&denied),
                    LINUX_EPHEMERAL.0,
                    LINUX_EPHEMERAL.1,
                    verdict.rules(false).join(", "),
                    ranges_text(&allowed),
                    verdict.rules(true).join(", ")
                ),
            );
            return;
        }
        push(
            u,
            Suspicion::new(
                Level::Warning,
                format!(
                    "network ACL {} of subnet {subnet} admits {} {way} on ports {} only ({}), enough for Linux clients' {}-{}; clients using ports {} are denied by {} (SUBNET_ACL_RESTRICTION)",
                    acl.id,
                    flow.describe(),
                    ranges_text(&allowed),
                    verdict.rules(true).join(", "),
                    LINUX_EPHEMERAL.0,
                    LINUX_EPHEMERAL.1,
                    ranges_text(&denied),
                    verdict.rules(false).join(", ")
                ),
            ),
        );
    }
    if add_hop {
        u.hops.push(hop(
            "network-acl",
            &acl.id,
            format!(
                "{way}: {} allows {}",
                verdict.rules(true).join(", "),
                flow.describe()
            ),
        ));
    }
}

// ---- route tables ----------------------------------------------------------

/// The route table of `subnet`: its explicit association, else the VPC's main table.
pub fn route_table_of<'a>(tables: &'a [RouteTable], subnet: &str) -> Option<&'a RouteTable> {
    tables
        .iter()
        .find(|t| t.subnets.iter().any(|s| s == subnet))
        .or_else(|| tables.iter().find(|t| t.main))
}

/// The network ACL of `subnet`: the one associated with it, else the VPC's default.
pub fn acl_of<'a>(acls: &'a [NetworkAcl], subnet: &str) -> Option<&'a NetworkAcl> {
    acls.iter()
        .find(|a| a.subnets.iter().any(|s| s == subnet))
        .or_else(|| acls.iter().find(|a| a.default))
}

/// The VPC's CIDRs, as the destinations of the table's `local` routes.
pub fn local_cidrs(table: &RouteTable) -> Vec<Ipv4Net> {
    table
        .routes
        .iter()
        .filter(|r| r.is_local())
        .filter_map(|r| match r.destination {
            RouteDestination::Cidr(c) => Some(c),
            RouteDestination::PrefixList(_) => None,
        })
        .collect()
}

/// The route for `dst`: longest prefix match over CIDR and prefix-list
/// destinations (a prefix list matches with its matching entry's length).
pub fn best_route<'a>(
    u: &mut Underlay,
    table: &'a RouteTable,
    dst: Ipv4Addr,
    lists: &dyn PrefixLists,
) -> Option<&'a Route> {
    let mut best: Option<(u8, &Route)> = None;
    for r in &table.routes {
        let len = match &r.destination {
            RouteDestination::Cidr(c) => c.contains(&dst).then_some(c.prefix_len()),
            RouteDestination::PrefixList(pl) => match lists.prefix_list(pl) {
                Ok(entries) => entries
                    .iter()
                    .filter(|c| c.contains(&dst))
                    .map(|c| c.prefix_len())
                    .max(),
                Err(e) => {
                    push(u, cannot_check(&format!("prefix list {pl}"), &e));
                    None
                }
            },
        };
        if let Some(len) = len
            && best.is_none_or(|(l, _)| len > l)
        {
            best = Some((len, r));
        }
    }
    best.map(|(_, r)| r)
}

/// What the route for a destination must point at.
#[derive(Debug, Clone, Copy)]
pub enum RouteExpectation<'a> {
    /// Any route will do.
    Any,
    /// Straight to a node: the VPC's local route inside the VPC, else a
    /// route to the node's instance or one of its ENIs (pods routed natively).
    Node {
        name: &'a str,
        instance: &'a str,
        enis: &'a [String],
    },
}

/// Look up `flow.dst` in the route table of `subnet`; returns the route taken.
pub fn check_route<'a>(
    u: &mut Underlay,
    table: &'a RouteTable,
    subnet: &str,
    flow: &Flow,
    expect: RouteExpectation<'_>,
    lists: &dyn PrefixLists,
) -> Option<&'a Route> {
    let dst = flow.dst;
    let Some(route) = best_route(u, table, dst, lists) else {
        critical(
            u,
            format!(
                "route table {} of subnet {subnet} has no route to {dst} for {} (NO_ROUTE_TO_DESTINATION)",
                table.id,
                flow.describe()
            ),
        );
        return None;
    };
    if route.blackhole() {
        critical(
            u,
            format!(
                "route table {} of subnet {subnet} sends {dst} by route {}, whose target no longer exists (state blackhole) (BAD_STATE_ROUTE)",
                table.id,
                route.text()
            ),
        );
        return None;
    }
    u.hops.push(hop(
        "route-table",
        &table.id,
        format!("route {} takes {}", route.text(), flow.describe()),
    ));
    if let RouteExpectation::Node {
        name,
        instance,
        enis,
    } = expect
    {
        let to_node = route.instance_id.as_deref() == Some(instance)
            || route
                .network_interface_id
                .as_ref()
                .is_some_and(|e| enis.contains(e));
        let in_vpc = local_cidrs(table).iter().any(|c| c.contains(&dst));
        if to_node {
            // A route to the node itself.
        } else if in_vpc && route.is_local() {
            // Delivered in the VPC.
        } else if in_vpc {
            push(
                u,
                Suspicion::new(
                    Level::Warning,
                    format!(
                        "route table {} of subnet {subnet} sends {dst} by route {}, more specific than the VPC's local route: {} goes through {} instead of straight to node {name} (MORE_SPECIFIC_ROUTE)",
                        table.id,
                        route.text(),
                        flow.describe(),
                        route.target()
                    ),
                ),
            );
        } else {
            critical(
                u,
                format!(
                    "route table {} of subnet {subnet} sends {dst}, outside the VPC's CIDRs, by route {} instead of to node {name} (instance {instance}): {} does not reach the node (NO_ROUTE_TO_DESTINATION)",
                    table.id,
                    route.text(),
                    flow.describe()
                ),
            );
        }
    }
    Some(route)
}

// ---- source/destination check ---------------------------------------------

/// EC2 drops a packet whose source (when sending) or destination (when
/// receiving) is not one of the ENI's own addresses, unless the ENI's
/// source/destination check is off.
pub fn check_source_dest(u: &mut Underlay, at: Attachment<'_>, flow: &Flow, sending: bool) {
    let addr = if sending { flow.src } else { flow.dst };
    if at.eni.owns(addr) || !at.eni.source_dest_check {
        return;
    }
    let verb = if sending { "sends" } else { "receives" };
    let from = if sending { "from" } else { "for" };
    critical(
        u,
        format!(
            "{} has the source/destination check on and {verb} {} {from} {addr}, which is not one of its private IPs ({}): turn the check off (ENI_SOURCE_DEST_CHECK_RESTRICTION)",
            at.name(),
            flow.describe(),
            at.eni.addresses()
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ec2::PrivateIp;
    use crate::ec2::{IPIP, UDP};
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

    fn eni(id: &str, addr: &str, groups: &[&str]) -> NetworkInterface {
        NetworkInterface {
            id: id.into(),
            subnet_id: "subnet-a".into(),
            vpc_id: "vpc-1".into(),
            private_ip: Some(ip(addr)),
            private_ips: vec![PrivateIp {
                address: ip(addr),
                primary: true,
                public_ip: None,
            }],
            groups: groups.iter().map(|g| g.to_string()).collect(),
            source_dest_check: true,
            device_index: Some(0),
            ..NetworkInterface::default()
        }
    }

    fn rule(proto: &str, from: i32, to: i32, cidrs: &[&str], groups: &[&str]) -> Permission {
        Permission {
            protocol: IpProtocol::parse(proto).unwrap(),
            from_port: Some(from),
            to_port: Some(to),
            cidrs: cidrs.iter().map(|c| net(c)).collect(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            prefix_lists: vec![],
        }
    }

    fn sg(id: &str, ingress: Vec<Permission>, egress: Vec<Permission>) -> SecurityGroup {
        SecurityGroup {
            id: id.into(),
            name: id.into(),
            vpc_id: "vpc-1".into(),
            ingress,
            egress,
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

    fn acl(entries: Vec<AclEntry>) -> NetworkAcl {
        NetworkAcl {
            id: "acl-1".into(),
            vpc_id: "vpc-1".into(),
            default: false,
            entries,
            subnets: vec!["subnet-b".into()],
        }
    }

    fn levels(u: &Underlay) -> Vec<Level> {
        u.suspicions.iter().map(|s| s.level).collect()
    }

    fn vxlan(src: &str, dst: &str, port: Option<u16>) -> Packet {
        Packet {
            encap: Some(Encap {
                kind: EncapKind::Vxlan,
                src: ip(src),
                dst: ip(dst),
                vni: Some(1),
                port,
            }),
            ..packet("10.244.1.2", "10.244.2.3", 80)
        }
    }

    #[test]
    fn flows_of_packets() {
        let f = Flow::of(&vxlan("10.0.1.10", "10.0.2.20", Some(8472)));
        assert_eq!(
            (f.src, f.dst, f.protocol),
            (ip("10.0.1.10"), ip("10.0.2.20"), UDP)
        );
        assert_eq!(f.dport, Port::One(8472));
        assert_eq!(
            f.describe(),
            "the VXLAN request udp 10.0.1.10 -> 10.0.2.20:8472"
        );
        assert_eq!(
            Flow::of(&vxlan("10.0.1.10", "10.0.2.20", None)).dport,
            Port::One(4789)
        );
        let r = f.reversed();
        assert_eq!(
            (r.src, r.dst, r.dport, r.reply),
            (ip("10.0.2.20"), ip("10.0.1.10"), Port::One(8472), true)
        );

        let mut p = vxlan("10.0.1.10", "10.0.2.20", None);
        if let Some(e) = p.encap.as_mut() {
            e.kind = EncapKind::Ipip;
        }
        let f = Flow::of(&p);
        assert_eq!((f.protocol, f.dport), (IPIP, Port::None));
        assert_eq!(
            f.describe(),
            "the IP-in-IP request ipip 10.0.1.10 -> 10.0.2.20"
        );

        let f = Flow::of(&packet("10.0.1.10", "10.0.2.20", 80));
        assert_eq!(f.describe(), "the request tcp 10.0.1.10 -> 10.0.2.20:80");
        let r = f.reversed();
        assert_eq!(
            r.describe(),
            "the reply tcp 10.0.2.20:80 -> 10.0.1.10 on ephemeral ports 1024-65535"
        );
        // The host's reply packet reads the same.
        let reply = Packet {
            src: ip("10.0.2.20"),
            sport: 80,
            dst: ip("10.0.1.10"),
            dport: EPHEMERAL_PORT,
            reply: true,
            ..packet("1.1.1.1", "1.1.1.1", 1)
        };
        assert_eq!(Flow::of(&reply), r);
        let icmp = Packet {
            protocol: Protocol::Icmp,
            ..packet("10.0.1.10", "10.0.2.20", 0)
        };
        assert_eq!(
            Flow::of(&icmp).describe(),
            "the request icmp 10.0.1.10 -> 10.0.2.20"
        );
    }

    #[test]
    fn security_group_cidr_rule_allows_and_missing_rule_is_critical() {
        let src = eni("eni-s", "10.0.1.10", &["sg-s"]);
        let at = Attachment {
            eni: &src,
            owner: "node n1, instance i-1",
        };
        let flow = Flow::of(&vxlan("10.0.1.10", "10.0.2.20", Some(8472)));
        let groups = [sg(
            "sg-s",
            vec![rule("udp", 8472, 8472, &["10.0.0.0/16"], &[])],
            vec![],
        )];

        let mut u = Underlay::default();
        check_security_groups(
            &mut u,
            at,
            &groups,
            Direction::Ingress,
            &Flow {
                dst: ip("10.0.1.10"),
                src: ip("10.0.2.20"),
                ..flow
            },
            None,
            &NoPrefixLists,
        );
        assert!(u.suspicions.is_empty(), "{:?}", u.suspicions);
        assert_eq!(u.hops.len(), 1);
        assert_eq!(u.hops[0].kind, "security-group");
        assert_eq!(u.hops[0].id, "sg-s");
        assert!(
            u.hops[0].detail.contains("rule udp 8472 from 10.0.0.0/16"),
            "{}",
            u.hops[0].detail
        );

        // The wrong port.
        let other = Flow {
            dport: Port::One(4789),
            ..flow
        };
        let mut u = Underlay::default();
        check_security_groups(
            &mut u,
            at,
            &groups,
            Direction::Ingress,
            &other,
            None,
            &NoPrefixLists,
        );
        assert_eq!(levels(&u), vec![Level::Critical]);
        assert_eq!(
            u.suspicions[0].message,
            "no ingress rule of security group sg-s of eni-s (node n1, instance i-1) allows the VXLAN request udp 10.0.1.10 -> 10.0.2.20:4789 (ENI_SG_RULES_MISMATCH)"
        );
        assert!(u.hops.is_empty());

        // No egress rule at all.
        let mut u = Underlay::default();
        check_security_groups(
            &mut u,
            at,
            &groups,
            Direction::Egress,
            &flow,
            None,
            &NoPrefixLists,
        );
        assert_eq!(levels(&u), vec![Level::Critical]);
        assert!(
            u.suspicions[0]
                .message
                .starts_with("no egress rule of security group sg-s")
        );
    }

    #[test]
    fn security_group_all_traffic_icmp_and_ipip() {
        let src = eni("eni-s", "10.0.1.10", &["sg-s"]);
        let at = Attachment {
            eni: &src,
            owner: "",
        };
        let all = [sg(
            "sg-s",
            vec![],
            vec![rule("-1", -1, -1, &["0.0.0.0/0"], &[])],
        )];
        let ipip = Flow::of(&{
            let mut p = vxlan("10.0.1.10", "10.0.2.20", None);
            if let Some(e) = p.encap.as_mut() {
                e.kind = EncapKind::Ipip;
            }
            p
        });
        let mut u = Underlay::default();
        check_security_groups(
            &mut u,
            at,
            &all,
            Direction::Egress,
            &ipip,
            None,
            &NoPrefixLists,
        );
        assert!(u.suspicions.is_empty());
        assert!(
            u.hops[0]
                .detail
                .starts_with("egress: rule all traffic to 0.0.0.0/0 allows")
        );

        // IP-in-IP needs protocol 4: a tcp/udp/icmp rule does not do.
        let some = [sg(
            "sg-s",
            vec![
                rule("tcp", 0, 65535, &["10.0.0.0/8"], &[]),
                rule("udp", 0, 65535, &["10.0.0.0/8"], &[]),
                rule("icmp", -1, -1, &["10.0.0.0/8"], &[]),
            ],
            vec![],
        )];
        let mut u = Underlay::default();
        check_security_groups(
            &mut u,
            at,
            &some,
            Direction::Ingress,
            &ipip,
            None,
            &NoPrefixLists,
        );
        assert_eq!(levels(&u), vec![Level::Critical]);
        let with4 = [sg(
            "sg-s",
            vec![rule("4", -1, -1, &["10.0.0.0/16"], &[])],
            vec![],
        )];
        let mut u = Underlay::default();
        check_security_groups(
            &mut u,
            at,
            &with4,
            Direction::Ingress,
            &ipip,
            None,
            &NoPrefixLists,
        );
        assert!(u.suspicions.is_empty());

        // ICMP echo by type 8, not by type 3.
        let icmp = Flow::of(&Packet {
            protocol: Protocol::Icmp,
            ..packet("10.0.2.20", "10.0.1.10", 0)
        });
        let echo = [sg(
            "sg-s",
            vec![rule("icmp", 8, -1, &["10.0.0.0/16"], &[])],
            vec![],
        )];
        let mut u = Underlay::default();
        check_security_groups(
            &mut u,
            at,
            &echo,
            Direction::Ingress,
            &icmp,
            None,
            &NoPrefixLists,
        );
        assert!(u.suspicions.is_empty());
        let unreachable = [sg(
            "sg-s",
            vec![rule("icmp", 3, -1, &["10.0.0.0/16"], &[])],
            vec![],
        )];
        let mut u = Underlay::default();
        check_security_groups(
            &mut u,
            at,
            &unreachable,
            Direction::Ingress,
            &icmp,
            None,
            &NoPrefixLists,
        );
        assert_eq!(levels(&u), vec![Level::Critical]);
    }

    #[test]
    fn security_group_references_match_member_private_ips_only() {
        let src = eni("eni-s", "10.0.1.10", &["sg-nodes"]);
        let dst = eni("eni-d", "10.0.2.20", &["sg-nodes"]);
        let at = Attachment {
            eni: &dst,
            owner: "node n2, instance i-2",
        };
        let groups = [sg(
            "sg-nodes",
            vec![rule("-1", -1, -1, &[], &["sg-nodes"])],
            vec![],
        )];
        let flow = Flow::of(&packet("10.0.1.10", "10.0.2.20", 80));
        let mut u = Underlay::default();
        check_security_groups(
            &mut u,
            at,
            &groups,
            Direction::Ingress,
            &flow,
            Some(&src),
            &NoPrefixLists,
        );
        assert!(u.suspicions.is_empty());
        assert!(u.hops[0].detail.contains("all traffic from sg-nodes"));

        // A pod address routed natively does not match the reference.
        let pod = Flow::of(&packet("10.244.1.5", "10.0.2.20", 80));
        let mut u = Underlay::default();
        check_security_groups(
            &mut u,
            at,
            &groups,
            Direction::Ingress,
            &pod,
            Some(&src),
            &NoPrefixLists,
        );
        assert_eq!(levels(&u), vec![Level::Critical]);
        assert_eq!(
            u.suspicions[0].message,
            "no ingress rule of security group sg-nodes of eni-d (node n2, instance i-2) allows the request tcp 10.244.1.5 -> 10.0.2.20:80; rule all traffic from sg-nodes of sg-nodes matches members of sg-nodes by their private IPs only, and 10.244.1.5 is not one of eni-s's (10.0.1.10): a pod address routed natively, or not NATed to the node's address (ENI_SG_RULES_MISMATCH)"
        );

        // The peer is no member.
        let stranger = eni("eni-x", "10.0.1.10", &["sg-other"]);
        let mut u = Underlay::default();
        check_security_groups(
            &mut u,
            at,
            &groups,
            Direction::Ingress,
            &flow,
            Some(&stranger),
            &NoPrefixLists,
        );
        assert_eq!(levels(&u), vec![Level::Critical]);
    }

    struct Lists;
    impl PrefixLists for Lists {
        fn prefix_list(&self, id: &str) -> Fetch<Vec<Ipv4Net>> {
            match id {
                "pl-office" => Ok(vec![net("192.0.2.0/24")]),
                _ => Err(FetchError::Api {
                    code: "InvalidPrefixListID.NotFound".into(),
                    message: "gone".into(),
                }),
            }
        }
    }

    #[test]
    fn security_group_prefix_lists() {
        let d = eni("eni-d", "10.0.2.20", &["sg-d"]);
        let at = Attachment { eni: &d, owner: "" };
        let mut r = rule("tcp", 30000, 32767, &[], &[]);
        r.prefix_lists = vec!["pl-gone".into(), "pl-office".into()];
        let groups = [sg("sg-d", vec![r], vec![])];
        let flow = Flow::of(&packet("192.0.2.7", "10.0.2.20", 30080));
        let mut u = Underlay::default();
        check_security_groups(&mut u, at, &groups, Direction::Ingress, &flow, None, &Lists);
        assert_eq!(levels(&u), vec![Level::Warning]);
        assert_eq!(
            u.suspicions[0].message,
            "cannot check prefix list pl-gone: InvalidPrefixListID.NotFound: gone"
        );
        assert!(
            u.hops[0]
                .detail
                .contains("tcp 30000-32767 from pl-office (192.0.2.0/24)")
        );
        let far = Flow::of(&packet("203.0.113.9", "10.0.2.20", 30080));
        let mut u = Underlay::default();
        check_security_groups(&mut u, at, &groups, Direction::Ingress, &far, None, &Lists);
        assert!(levels(&u).contains(&Level::Critical));
    }

    #[test]
    fn acl_first_match_wins_in_rule_number_order() {
        // moto's order: not sorted by rule number.
        let a = acl(vec![
            entry(200, "-1", true, true, "0.0.0.0/0", None),
            entry(90, "17", false, true, "10.0.1.0/24", Some((8472, 8472))),
        ]);
        let flow = Flow::of(&vxlan("10.0.2.20", "10.0.1.10", Some(8472)));
        let mut u = Underlay::default();
        check_acl(&mut u, &a, "subnet-b", true, &flow, true);
        assert_eq!(levels(&u), vec![Level::Critical]);
        assert_eq!(
            u.suspicions[0].message,
            "network ACL acl-1 of subnet subnet-b denies the VXLAN request udp 10.0.2.20 -> 10.0.1.10:8472 outbound: rule 90 (deny udp 8472 to 10.0.1.0/24) (SUBNET_ACL_RESTRICTION)"
        );
        assert!(u.hops.is_empty());
        // Another port passes by rule 200.
        let ok = Flow {
            dport: Port::One(4789),
            ..flow
        };
        let mut u = Underlay::default();
        check_acl(&mut u, &a, "subnet-b", true, &ok, true);
        assert!(u.suspicions.is_empty());
        assert_eq!(u.hops[0].kind, "network-acl");
        assert_eq!(
            u.hops[0].detail,
            "outbound: rule 200 (allow all traffic to 0.0.0.0/0) allows the VXLAN request udp 10.0.2.20 -> 10.0.1.10:4789"
        );
    }

    #[test]
    fn acl_implicit_deny_without_the_star_entry() {
        let a = acl(vec![entry(
            100,
            "6",
            true,
            false,
            "0.0.0.0/0",
            Some((80, 80)),
        )]);
        let flow = Flow::of(&packet("10.0.1.10", "10.0.2.20", 443));
        let mut u = Underlay::default();
        check_acl(&mut u, &a, "subnet-b", false, &flow, true);
        assert_eq!(
            u.suspicions[0].message,
            "network ACL acl-1 of subnet subnet-b denies the request tcp 10.0.1.10 -> 10.0.2.20:443 inbound: rule * (deny all traffic, the final rule) (SUBNET_ACL_RESTRICTION)"
        );
        let http = Flow::of(&packet("10.0.1.10", "10.0.2.20", 80));
        let mut u = Underlay::default();
        check_acl(&mut u, &a, "subnet-b", false, &http, true);
        assert!(u.suspicions.is_empty());
        // The reply to the client's ephemeral port is denied outbound (no egress entry).
        let mut u = Underlay::default();
        check_acl(&mut u, &a, "subnet-b", true, &http.reversed(), false);
        assert_eq!(levels(&u), vec![Level::Critical]);
        assert!(u.suspicions[0].message.contains(
            "denies the reply tcp 10.0.2.20:80 -> 10.0.1.10 on ephemeral ports 1024-65535 outbound"
        ));
    }

    #[test]
    fn acl_partial_ephemeral_range_is_a_warning() {
        let a = acl(vec![
            entry(100, "6", true, true, "0.0.0.0/0", Some((32768, 65535))),
            entry(110, "6", false, true, "0.0.0.0/0", Some((1024, 2047))),
        ]);
        let flow = Flow::of(&packet("10.0.1.10", "10.0.2.20", 80)).reversed();
        let mut u = Underlay::default();
        check_acl(&mut u, &a, "subnet-b", true, &flow, false);
        assert_eq!(levels(&u), vec![Level::Warning]);
        assert_eq!(
            u.suspicions[0].message,
            "network ACL acl-1 of subnet subnet-b admits the reply tcp 10.0.2.20:80 -> 10.0.1.10 on ephemeral ports 1024-65535 outbound on ports 32768-65535 only (rule 100 (allow tcp 32768-65535 to 0.0.0.0/0)), enough for Linux clients' 32768-60999; clients using ports 1024-32767 are denied by rule 110 (deny tcp 1024-2047 to 0.0.0.0/0), rule * (deny all traffic, the final rule) (SUBNET_ACL_RESTRICTION)"
        );
        // Only a service port of the range: the reply to a Linux client is dropped.
        let d = acl(vec![entry(
            110,
            "6",
            true,
            true,
            "10.0.0.0/8",
            Some((8080, 8080)),
        )]);
        let mut u = Underlay::default();
        check_acl(&mut u, &d, "subnet-b", true, &flow, true);
        assert_eq!(levels(&u), vec![Level::Critical]);
        assert_eq!(
            u.suspicions[0].message,
            "network ACL acl-1 of subnet subnet-b denies the reply tcp 10.0.2.20:80 -> 10.0.1.10 on ephemeral ports 1024-65535 outbound on ports 1024-8079, 8081-65535, among them Linux clients' 32768-60999: rule * (deny all traffic, the final rule); it admits ports 8080 only (rule 110 (allow tcp 8080 to 10.0.0.0/8)) (SUBNET_ACL_RESTRICTION)"
        );
        assert!(u.hops.is_empty());
        // The whole range allowed: quiet.
        let b = acl(vec![entry(
            100,
            "6",
            true,
            true,
            "0.0.0.0/0",
            Some((1024, 65535)),
        )]);
        let mut u = Underlay::default();
        check_acl(&mut u, &b, "subnet-b", true, &flow, false);
        assert!(u.suspicions.is_empty());
        // Two rules that together cover it: quiet.
        let c = acl(vec![
            entry(100, "6", true, true, "0.0.0.0/0", Some((1024, 30000))),
            entry(101, "-1", true, true, "10.0.0.0/8", None),
        ]);
        let mut u = Underlay::default();
        check_acl(&mut u, &c, "subnet-b", true, &flow, false);
        assert!(u.suspicions.is_empty(), "{:?}", u.suspicions);
    }

    #[test]
    fn acl_ipv6_and_other_protocols_do_not_match() {
        let mut v6 = entry(50, "-1", false, false, "0.0.0.0/0", None);
        v6.cidr = None;
        let a = acl(vec![
            v6,
            entry(60, "17", true, false, "0.0.0.0/0", None),
            entry(70, "4", true, false, "10.0.0.0/8", None),
        ]);
        let tcp = Flow::of(&packet("10.0.1.10", "10.0.2.20", 80));
        let mut u = Underlay::default();
        check_acl(&mut u, &a, "subnet-b", false, &tcp, true);
        assert_eq!(levels(&u), vec![Level::Critical]);
        let mut p = vxlan("10.0.1.10", "10.0.2.20", None);
        if let Some(e) = p.encap.as_mut() {
            e.kind = EncapKind::Ipip;
        }
        let mut u = Underlay::default();
        check_acl(&mut u, &a, "subnet-b", false, &Flow::of(&p), true);
        assert!(u.suspicions.is_empty());
        assert!(
            u.hops[0]
                .detail
                .contains("rule 70 (allow ipip from 10.0.0.0/8)")
        );
    }

    fn route(dst: &str, target: &str) -> Route {
        let mut r = Route {
            destination: if dst.starts_with("pl-") {
                RouteDestination::PrefixList(dst.into())
            } else {
                RouteDestination::Cidr(net(dst))
            },
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
            Some("pcx") => r.vpc_peering_connection_id = Some(target.into()),
            _ => r.gateway_id = Some(target.into()),
        }
        r
    }

    fn table(routes: Vec<Route>) -> RouteTable {
        RouteTable {
            id: "rtb-1".into(),
            vpc_id: "vpc-1".into(),
            routes,
            subnets: vec!["subnet-a".into()],
            main: false,
        }
    }

    #[test]
    fn routes_longest_prefix_and_prefix_lists() {
        let t = table(vec![
            route("10.0.0.0/16", "local"),
            route("0.0.0.0/0", "igw-1"),
            route("192.0.0.0/8", "nat-1"),
            route("pl-office", "pcx-1"),
        ]);
        let mut u = Underlay::default();
        assert_eq!(
            best_route(&mut u, &t, ip("10.0.2.20"), &Lists).map(Route::target),
            Some("local".into())
        );
        assert_eq!(
            best_route(&mut u, &t, ip("192.0.2.1"), &Lists).map(Route::target),
            Some("pcx-1".into())
        );
        assert_eq!(
            best_route(&mut u, &t, ip("192.1.2.1"), &Lists).map(Route::target),
            Some("nat-1".into())
        );
        assert_eq!(
            best_route(&mut u, &t, ip("8.8.8.8"), &Lists).map(Route::target),
            Some("igw-1".into())
        );
        assert!(u.suspicions.is_empty());
    }

    #[test]
    fn route_missing_and_blackhole_are_critical() {
        let mut bh = route("10.244.2.0/24", "eni-gone");
        bh.state = "blackhole".into();
        let t = table(vec![route("10.0.0.0/16", "local"), bh]);
        let flow = Flow::of(&packet("10.244.1.5", "10.244.2.5", 80));
        let mut u = Underlay::default();
        assert!(
            check_route(
                &mut u,
                &t,
                "subnet-a",
                &flow,
                RouteExpectation::Any,
                &NoPrefixLists
            )
            .is_none()
        );
        assert_eq!(
            u.suspicions[0].message,
            "route table rtb-1 of subnet subnet-a sends 10.244.2.5 by route 10.244.2.0/24 -> eni-gone, whose target no longer exists (state blackhole) (BAD_STATE_ROUTE)"
        );
        let lost = Flow::of(&packet("10.0.1.10", "172.16.0.1", 80));
        let mut u = Underlay::default();
        assert!(
            check_route(
                &mut u,
                &t,
                "subnet-a",
                &lost,
                RouteExpectation::Any,
                &NoPrefixLists
            )
            .is_none()
        );
        assert_eq!(
            u.suspicions[0].message,
            "route table rtb-1 of subnet subnet-a has no route to 172.16.0.1 for the request tcp 10.0.1.10 -> 172.16.0.1:80 (NO_ROUTE_TO_DESTINATION)"
        );
        let ok = Flow::of(&packet("10.0.1.10", "10.0.2.20", 80));
        let mut u = Underlay::default();
        assert!(
            check_route(
                &mut u,
                &t,
                "subnet-a",
                &ok,
                RouteExpectation::Any,
                &NoPrefixLists
            )
            .is_some()
        );
        assert!(u.suspicions.is_empty());
        assert_eq!(
            u.hops[0].detail,
            "route 10.0.0.0/16 -> local takes the request tcp 10.0.1.10 -> 10.0.2.20:80"
        );
    }

    #[test]
    fn native_pod_routes_must_point_at_the_destination_node() {
        let enis = vec!["eni-d".to_string()];
        let expect = RouteExpectation::Node {
            name: "n2",
            instance: "i-2",
            enis: &enis,
        };
        let flow = Flow::of(&packet("10.244.1.5", "10.244.2.5", 80));
        for good in [
            route("10.244.2.0/24", "i-2"),
            route("10.244.2.0/24", "eni-d"),
        ] {
            let t = table(vec![
                route("10.0.0.0/16", "local"),
                good,
                route("0.0.0.0/0", "nat-1"),
            ]);
            let mut u = Underlay::default();
            check_route(&mut u, &t, "subnet-a", &flow, expect, &NoPrefixLists);
            assert!(u.suspicions.is_empty(), "{:?}", u.suspicions);
        }
        let wrong = table(vec![
            route("10.0.0.0/16", "local"),
            route("10.244.2.0/24", "i-3"),
            route("0.0.0.0/0", "nat-1"),
        ]);
        let mut u = Underlay::default();
        check_route(&mut u, &wrong, "subnet-a", &flow, expect, &NoPrefixLists);
        assert_eq!(levels(&u), vec![Level::Critical]);
        assert_eq!(
            u.suspicions[0].message,
            "route table rtb-1 of subnet subnet-a sends 10.244.2.5, outside the VPC's CIDRs, by route 10.244.2.0/24 -> i-3 instead of to node n2 (instance i-2): the request tcp 10.244.1.5 -> 10.244.2.5:80 does not reach the node (NO_ROUTE_TO_DESTINATION)"
        );
        let default_only = table(vec![
            route("10.0.0.0/16", "local"),
            route("0.0.0.0/0", "nat-1"),
        ]);
        let mut u = Underlay::default();
        check_route(
            &mut u,
            &default_only,
            "subnet-a",
            &flow,
            expect,
            &NoPrefixLists,
        );
        assert!(
            u.suspicions[0]
                .message
                .contains("by route 0.0.0.0/0 -> nat-1 instead of to node n2")
        );
        // Inside the VPC, a more specific route through a middlebox is a warning.
        let inside = Flow::of(&packet("10.0.1.10", "10.0.2.20", 80));
        let mb = table(vec![
            route("10.0.0.0/16", "local"),
            route("10.0.2.0/24", "eni-firewall"),
        ]);
        let mut u = Underlay::default();
        check_route(&mut u, &mb, "subnet-a", &inside, expect, &NoPrefixLists);
        assert_eq!(levels(&u), vec![Level::Warning]);
        assert!(u.suspicions[0].message.ends_with("(MORE_SPECIFIC_ROUTE)"));
    }

    #[test]
    fn source_dest_check() {
        let mut e = eni("eni-s", "10.0.1.10", &[]);
        let at = Attachment {
            eni: &e,
            owner: "node n1, instance i-1",
        };
        let pod = Flow::of(&packet("10.244.1.5", "10.244.2.5", 80));
        let mut u = Underlay::default();
        check_source_dest(&mut u, at, &pod, true);
        assert_eq!(
            u.suspicions[0].message,
            "eni-s (node n1, instance i-1) has the source/destination check on and sends the request tcp 10.244.1.5 -> 10.244.2.5:80 from 10.244.1.5, which is not one of its private IPs (10.0.1.10): turn the check off (ENI_SOURCE_DEST_CHECK_RESTRICTION)"
        );
        let mut u = Underlay::default();
        check_source_dest(&mut u, at, &pod, false);
        assert!(
            u.suspicions[0]
                .message
                .contains("receives the request tcp 10.244.1.5 -> 10.244.2.5:80 for 10.244.2.5")
        );
        // The node's own address, a secondary address, or the check off: quiet.
        let own = Flow::of(&packet("10.0.1.10", "10.0.2.20", 80));
        let mut u = Underlay::default();
        check_source_dest(&mut u, at, &own, true);
        assert!(u.suspicions.is_empty());
        e.private_ips.push(PrivateIp {
            address: ip("10.244.1.5"),
            primary: false,
            public_ip: None,
        });
        let at = Attachment { eni: &e, owner: "" };
        check_source_dest(&mut u, at, &pod, true);
        assert!(u.suspicions.is_empty());
        e.private_ips.pop();
        e.source_dest_check = false;
        let at = Attachment { eni: &e, owner: "" };
        check_source_dest(&mut u, at, &pod, true);
        assert!(u.suspicions.is_empty());
    }

    #[test]
    fn table_and_acl_of_a_subnet() {
        let mut main = table(vec![]);
        main.id = "rtb-main".into();
        main.main = true;
        main.subnets.clear();
        let t = table(vec![]);
        let tables = vec![main, t];
        assert_eq!(
            route_table_of(&tables, "subnet-a").map(|t| t.id.as_str()),
            Some("rtb-1")
        );
        assert_eq!(
            route_table_of(&tables, "subnet-z").map(|t| t.id.as_str()),
            Some("rtb-main")
        );
        let mut d = acl(vec![]);
        d.id = "acl-default".into();
        d.default = true;
        d.subnets.clear();
        let acls = vec![d, acl(vec![])];
        assert_eq!(
            acl_of(&acls, "subnet-b").map(|a| a.id.as_str()),
            Some("acl-1")
        );
        assert_eq!(
            acl_of(&acls, "subnet-q").map(|a| a.id.as_str()),
            Some("acl-default")
        );
    }

    #[test]
    fn fetch_errors_become_warnings() {
        let api = FetchError::Api {
            code: "AuthFailure".into(),
            message: "AWS was not able to validate the provided access credentials".into(),
        };
        assert_eq!(
            cannot_check("the EC2 instance of node n1", &api).message,
            "cannot check the EC2 instance of node n1: AuthFailure: AWS was not able to validate the provided access credentials"
        );
        assert_eq!(
            cannot_check("x", &FetchError::NotRecorded).message,
            "cannot check x (not recorded)"
        );
        assert_eq!(
            cannot_check("x", &FetchError::NoCredentials).message,
            NO_CREDENTIALS
        );
        assert_eq!(cannot_check("x", &api).level, Level::Warning);
    }
}
