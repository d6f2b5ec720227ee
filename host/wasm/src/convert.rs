//! Conversions between the host's types and the WIT types at the boundary.
//! Values coming from an extension are validated: a malformed answer is an
//! error naming the extension, never a panic.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::bindings::{netstack as wn, types as wt, walk as ww};
use crate::sandbox::{Secrets, clean, escape};
use skoop_engine::cluster::{NodeFacts, Owner, PodFacts, ServiceFacts};
use skoop_engine::kernel_walk::{BranchEnd, KernelWalk, WalkBranch};
use skoop_engine::path::{Action, LinkKind, NetNode, NetNodeKind, NodeStep, Transmission};
use skoop_engine::suspicion::Level;
use skoop_engine::suspicion::Suspicion;
use skoop_netstack::dump::{FdbEntry, Interface, Neighbour};
use skoop_netstack::link::{LinkStep, NetnsId};
use skoop_netstack::netfilter::{Hook, Outcome, RuleHit, Verdict};
use skoop_netstack::packet::{Encap, EncapKind, Packet, Protocol};
use skoop_netstack::{NetstackError, RouteHit, RouteKind};

pub fn ip_to(ip: Ipv4Addr) -> wt::IpAddress {
    let [a, b, c, d] = ip.octets();
    wt::IpAddress::Ipv4((a, b, c, d))
}

pub fn ip_from(ip: &wt::IpAddress) -> Result<Ipv4Addr, String> {
    match ip {
        wt::IpAddress::Ipv4((a, b, c, d)) => Ok(Ipv4Addr::new(*a, *b, *c, *d)),
        wt::IpAddress::Ipv6(_) => Err("an IPv6 address (this host simulates IPv4 flows)".into()),
    }
}

pub fn prefix_to(p: Ipv4Net) -> wt::IpPrefix {
    wt::IpPrefix {
        address: ip_to(p.addr()),
        prefix_len: p.prefix_len(),
    }
}

pub fn protocol_to(p: Protocol) -> wt::Protocol {
    match p {
        Protocol::Tcp => wt::Protocol::Tcp,
        Protocol::Udp => wt::Protocol::Udp,
        Protocol::Icmp => wt::Protocol::Icmp,
        Protocol::Sctp => wt::Protocol::Sctp,
        // Never a flow's protocol: only a tunnel's outer packet, which the
        // contract carries as an encapsulation instead.
        Protocol::Ipip => wt::Protocol::Icmp,
    }
}

pub fn protocol_from(p: wt::Protocol) -> Result<Protocol, String> {
    match p {
        wt::Protocol::Tcp => Ok(Protocol::Tcp),
        wt::Protocol::Udp => Ok(Protocol::Udp),
        wt::Protocol::Icmp => Ok(Protocol::Icmp),
        wt::Protocol::Sctp => Ok(Protocol::Sctp),
        wt::Protocol::Icmpv6 => Err("ICMPv6 (this host simulates IPv4 flows)".into()),
    }
}

pub fn level_from(l: wt::Level) -> Level {
    match l {
        wt::Level::Info => Level::Info,
        wt::Level::Warning => Level::Warning,
        wt::Level::Critical => Level::Critical,
        wt::Level::Fatal => Level::Fatal,
    }
}

pub fn level_to(l: Level) -> wt::Level {
    match l {
        Level::Info => wt::Level::Info,
        Level::Warning => wt::Level::Warning,
        Level::Critical => wt::Level::Critical,
        Level::Fatal => wt::Level::Fatal,
    }
}

fn encap_kind_to(k: EncapKind) -> wt::EncapKind {
    match k {
        EncapKind::Vxlan => wt::EncapKind::Vxlan,
        EncapKind::Ipip => wt::EncapKind::Ipip,
        EncapKind::Wireguard => wt::EncapKind::Wireguard,
    }
}

fn encap_kind_from(k: &wt::EncapKind) -> Result<EncapKind, String> {
    match k {
        wt::EncapKind::Vxlan => Ok(EncapKind::Vxlan),
        wt::EncapKind::Ipip => Ok(EncapKind::Ipip),
        wt::EncapKind::Wireguard => Ok(EncapKind::Wireguard),
        wt::EncapKind::Other(o) => Err(format!(
            "an encapsulation this host does not follow ({})",
            escape(o)
        )),
    }
}

pub fn encap_to(e: &Encap) -> wt::Encapsulation {
    wt::Encapsulation {
        kind: encap_kind_to(e.kind),
        src: ip_to(e.src),
        dst: ip_to(e.dst),
        vni: e.vni,
        port: e.port,
    }
}

pub fn packet_to(p: &Packet) -> wt::Packet {
    wt::Packet {
        src: ip_to(p.src),
        sport: p.sport,
        dst: ip_to(p.dst),
        dport: p.dport,
        protocol: protocol_to(p.protocol),
        mark: p.mark,
        encap: p.encap.as_ref().map(encap_to),
        reply: p.reply,
        tos: p.tos,
        size: p.size,
        icmp: p.icmp.map(|m| wt::IcmpMessage {
            type_: m.kind,
            code: m.code,
        }),
    }
}

pub fn packet_from(p: &wt::Packet) -> Result<Packet, String> {
    Ok(Packet {
        src: ip_from(&p.src)?,
        sport: p.sport,
        dst: ip_from(&p.dst)?,
        dport: p.dport,
        protocol: protocol_from(p.protocol)?,
        mark: p.mark,
        encap: match &p.encap {
            None => None,
            Some(e) => Some(Encap {
                kind: encap_kind_from(&e.kind)?,
                src: ip_from(&e.src)?,
                dst: ip_from(&e.dst)?,
                vni: e.vni,
                port: e.port,
            }),
        },
        reply: p.reply,
        tos: p.tos,
        size: p.size,
        icmp: p.icmp.map(|m| skoop_netstack::packet::Icmp {
            kind: m.type_,
            code: m.code,
        }),
    })
}

pub fn hop_to(h: &NetNode) -> wt::NetNode {
    wt::NetNode {
        kind: match h.kind {
            NetNodeKind::Pod => wt::NetNodeKind::Pod,
            NetNodeKind::Node => wt::NetNodeKind::Node,
            NetNodeKind::External => wt::NetNodeKind::External,
        },
        id: h.id.clone(),
    }
}

pub fn hop_from(h: &wt::NetNode) -> NetNode {
    NetNode {
        kind: match h.kind {
            wt::NetNodeKind::Pod => NetNodeKind::Pod,
            wt::NetNodeKind::Node => NetNodeKind::Node,
            wt::NetNodeKind::External => NetNodeKind::External,
        },
        id: h.id.clone(),
    }
}

pub fn link_kind_to(k: LinkKind) -> wt::LinkKind {
    match k {
        LinkKind::Veth => wt::LinkKind::Veth,
        LinkKind::Vxlan => wt::LinkKind::Vxlan,
        LinkKind::Ipip => wt::LinkKind::Ipip,
        LinkKind::Wireguard => wt::LinkKind::Wireguard,
        LinkKind::Ipvlan => wt::LinkKind::Ipvlan,
        LinkKind::Macvlan => wt::LinkKind::Macvlan,
        LinkKind::Vlan => wt::LinkKind::Vlan,
        LinkKind::Underlay => wt::LinkKind::Underlay,
        LinkKind::Local => wt::LinkKind::Local,
        LinkKind::External => wt::LinkKind::External,
    }
}

pub fn link_kind_from(k: &wt::LinkKind) -> Result<LinkKind, String> {
    Ok(match k {
        wt::LinkKind::Veth => LinkKind::Veth,
        wt::LinkKind::Vxlan => LinkKind::Vxlan,
        wt::LinkKind::Ipip => LinkKind::Ipip,
        wt::LinkKind::Wireguard => LinkKind::Wireguard,
        wt::LinkKind::Ipvlan => LinkKind::Ipvlan,
        wt::LinkKind::Macvlan => LinkKind::Macvlan,
        wt::LinkKind::Vlan => LinkKind::Vlan,
        wt::LinkKind::Underlay => LinkKind::Underlay,
        wt::LinkKind::Local => LinkKind::Local,
        wt::LinkKind::External => LinkKind::External,
        wt::LinkKind::Other(o) => {
            return Err(format!(
                "a link kind this host does not know ({})",
                escape(o)
            ));
        }
    })
}

/// The link a packet arrived over.
pub fn link_to(from: &NetNode, tx: &Transmission) -> wt::Link {
    wt::Link {
        source: hop_to(from),
        kind: link_kind_to(tx.kind),
        packet: packet_to(&tx.packet),
        oif: tx.oif.clone(),
        iif: tx.iif.clone(),
        next_hop_address: tx.next_hop_address.map(ip_to),
    }
}

pub fn transmission_to(tx: &Transmission) -> wt::Transmission {
    wt::Transmission {
        next_hop: hop_to(&tx.next),
        kind: link_kind_to(tx.kind),
        packet: packet_to(&tx.packet),
        oif: tx.oif.clone(),
        iif: tx.iif.clone(),
        next_hop_address: tx.next_hop_address.map(ip_to),
    }
}

pub fn step_from(s: &wt::NodeStep, secrets: &Secrets) -> Result<NodeStep, String> {
    let mut transmissions = Vec::with_capacity(s.transmissions.len());
    for t in &s.transmissions {
        transmissions.push(Transmission {
            next: hop_from(&t.next_hop),
            kind: link_kind_from(&t.kind)?,
            packet: packet_from(&t.packet)?,
            oif: t.oif.clone(),
            iif: t.iif.clone(),
            next_hop_address: t.next_hop_address.as_ref().map(ip_from).transpose()?,
            dst_mac: None,
            mtu: None,
        });
    }
    Ok(NodeStep {
        action: match s.action {
            wt::ActionKind::Send => Action::Send,
            wt::ActionKind::Forward => Action::Forward,
            wt::ActionKind::Serve => Action::Serve,
            wt::ActionKind::Drop => Action::Drop,
            wt::ActionKind::Unknown => Action::Unknown,
        },
        transmissions,
        dropped: s
            .dropped
            .iter()
            .map(packet_from)
            .collect::<Result<_, _>>()?,
        suspicions: suspicions_from(&s.suspicions, secrets),
    })
}

fn netns_to(n: &NetnsId) -> wt::Netns {
    match n {
        NetnsId::Node(n) => wt::Netns::Node(n.clone()),
        NetnsId::Pod { pod, .. } => wt::Netns::Pod(pod.clone()),
    }
}

fn neighbour_to(n: &Neighbour) -> wn::Neighbour {
    wn::Neighbour {
        ip: ip_to(n.ip),
        dev: n.dev.clone(),
        lladdr: n.lladdr.clone(),
        state: n.state.clone(),
    }
}

pub fn fdb_to(e: &FdbEntry) -> wn::FdbEntry {
    let mut flags = e.flags.clone();
    if e.master.is_some() && !flags.iter().any(|f| f == "master") {
        flags.push("master".into());
    }
    wn::FdbEntry {
        mac: e.mac.clone(),
        dev: e.dev.clone(),
        dst: e.dst.map(ip_to),
        flags,
    }
}

fn link_step_to(s: &LinkStep, device: impl Fn(&str) -> Option<wn::InterfaceInfo>) -> ww::LinkStep {
    match s {
        LinkStep::Device { dev, .. } => match device(dev) {
            Some(i) => ww::LinkStep::Device(i),
            None => ww::LinkStep::Other(s.to_string()),
        },
        LinkStep::Neighbour(n) => ww::LinkStep::Neighbour(neighbour_to(n)),
        LinkStep::Resolved { by, .. } => ww::LinkStep::Resolved(by.clone()),
        LinkStep::Fdb(e) => ww::LinkStep::Fdb(fdb_to(e)),
        LinkStep::VethPeer { netns, dev } => ww::LinkStep::VethPeer((netns_to(netns), dev.clone())),
        LinkStep::BridgePort { port, .. } => ww::LinkStep::BridgePort(port.clone()),
        LinkStep::Encapsulate { encap, .. } => ww::LinkStep::Encapsulate(encap_to(encap)),
        LinkStep::Decapsulate { dev } => ww::LinkStep::Decapsulate(dev.clone()),
        LinkStep::Other(t) => ww::LinkStep::Other(t.clone()),
    }
}

/// The host's walk of a net-node, as a plugin is shown it. Devices are
/// looked up in the netns they are named in (the walk's own, or a pod's
/// on the node).
pub fn walk_to(
    w: &KernelWalk,
    device: impl Fn(&str) -> Option<wn::InterfaceInfo>,
) -> ww::KernelWalk {
    ww::KernelWalk {
        at: hop_to(&w.at),
        upstream: w.upstream.as_ref().map(|(from, tx)| link_to(from, tx)),
        packet: packet_to(&w.packet),
        branches: w.branches.iter().map(|b| branch_to(b, &device)).collect(),
        suspicions: suspicions_to(&w.suspicions),
    }
}

fn branch_to(b: &WalkBranch, device: &impl Fn(&str) -> Option<wn::InterfaceInfo>) -> ww::Branch {
    let carried = match &b.end {
        BranchEnd::Delivered { .. } => ww::Carried::Delivered,
        BranchEnd::Sent(tx) => ww::Carried::Sent(transmission_to(tx)),
        BranchEnd::Dropped { kind, cause, .. } => ww::Carried::Dropped(wn::DropCause {
            kind: kind.clone(),
            message: cause.clone(),
            rule: b.passes.iter().find_map(|f| match &f.fate {
                skoop_netstack::Fate::Drop(skoop_netstack::DropCause::Netfilter { by, .. }) => {
                    by.as_ref().map(hit_to)
                }
                _ => None,
            }),
            route: b.passes.iter().find_map(|f| match &f.fate {
                skoop_netstack::Fate::Drop(skoop_netstack::DropCause::Route(r)) => {
                    Some(route_to(r))
                }
                _ => None,
            }),
        }),
        BranchEnd::Unknown { why } => ww::Carried::Dropped(wn::DropCause {
            kind: "unavailable".into(),
            message: why.clone(),
            rule: None,
            route: None,
        }),
    };
    ww::Branch {
        passes: b.passes.iter().map(forwarded_to).collect(),
        link: b.steps.iter().map(|s| link_step_to(s, device)).collect(),
        carried,
        mtu_limit: b
            .mtus
            .iter()
            .min_by_key(|(_, m)| *m)
            .filter(|(_, m)| b.passes.first().is_some_and(|f| f.packet.size > *m))
            .cloned(),
    }
}

pub fn suspicions_from(list: &[wt::Suspicion], secrets: &Secrets) -> Vec<Suspicion> {
    list.iter()
        .map(|s| Suspicion {
            level: level_from(s.level),
            message: clean(secrets, &s.message),
            node: s.about.as_deref().map(|a| clean(secrets, a)),
        })
        .collect()
}

pub fn suspicions_to(list: &[Suspicion]) -> Vec<wt::Suspicion> {
    list.iter()
        .map(|f| wt::Suspicion {
            level: level_to(f.level),
            message: f.message.clone(),
            about: f.node.clone(),
        })
        .collect()
}

pub fn error_text(e: &wt::Error, secrets: &Secrets) -> String {
    match e {
        wt::Error::Unavailable(m) => format!("not collected: {}", clean(secrets, m)),
        wt::Error::Invalid(m) => clean(secrets, m),
        wt::Error::Internal(m) => format!("internal error: {}", clean(secrets, m)),
    }
}

pub fn netstack_error(e: NetstackError) -> wt::Error {
    match e {
        NetstackError::Unavailable(m) => wt::Error::Unavailable(m),
        NetstackError::Invalid(m) => wt::Error::Invalid(m),
    }
}

pub fn pod_to(p: &PodFacts, node_ip: Option<Ipv4Addr>) -> wt::PodInfo {
    wt::PodInfo {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        ips: p.ip.or(node_ip).map(ip_to).into_iter().collect(),
        node: p.node.clone(),
        host_network: p.host_network,
        ready: p.ready,
        phase: p.phase.clone(),
        ports: p
            .ports
            .iter()
            .map(|(n, port, proto)| (n.clone(), *port, protocol_to(*proto)))
            .collect(),
        labels: p
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        annotations: p.annotations.clone(),
    }
}

pub fn node_to(n: &NodeFacts) -> wt::NodeInfo {
    wt::NodeInfo {
        name: n.name.clone(),
        ips: vec![ip_to(n.ip)],
        pod_cidrs: n.pod_cidrs.iter().map(|c| prefix_to(*c)).collect(),
        ready: n.ready,
        host_interface: n.host_interface.clone(),
        annotations: n.annotations.clone(),
        labels: n.labels.clone(),
        provider_id: n.provider_id.clone(),
    }
}

pub fn service_to(s: &ServiceFacts) -> wt::ServiceInfo {
    wt::ServiceInfo {
        namespace: s.namespace.clone(),
        name: s.name.clone(),
        service_type: s.service_type.clone(),
        cluster_ips: s.cluster_ips.iter().map(|i| ip_to(*i)).collect(),
        ports: s
            .ports
            .iter()
            .map(|p| wt::ServicePort {
                name: p.name.clone(),
                protocol: protocol_to(p.protocol),
                port: p.port,
                node_port: p.node_port,
            })
            .collect(),
    }
}

pub fn owner_to(c: &Owner<'_>, node_ip: impl Fn(&str) -> Option<Ipv4Addr>) -> wt::Owner {
    match c {
        Owner::Pod(p) => wt::Owner::Pod(pod_to(p, node_ip(&p.node))),
        Owner::Node(n) => wt::Owner::Node(node_to(n)),
        Owner::Service(s) => wt::Owner::Service(service_to(s)),
        Owner::External(ip) => wt::Owner::External(ip_to(*ip)),
    }
}

pub fn interface_to(i: &Interface) -> wn::InterfaceInfo {
    wn::InterfaceInfo {
        name: i.name.clone(),
        index: i.index,
        kind: i.kind.clone(),
        mtu: i.mtu,
        admin_up: i.admin_up,
        oper_up: i.oper_up(),
        master: i.master.clone(),
        peer_index: i.peer_index,
        link: i.link.clone(),
        addresses: i.addresses.iter().map(|a| prefix_to(*a)).collect(),
        mac: i.mac.clone(),
        vxlan: i.vxlan.as_ref().map(|v| wn::VxlanInfo {
            vni: v.id,
            port: v.port,
            local: v.local.map(ip_to),
            dev: v.dev.clone(),
        }),
    }
}

pub fn route_to(r: &RouteHit) -> wn::Route {
    wn::Route {
        table: r.table,
        kind: match r.kind {
            RouteKind::Unicast => wn::RouteKind::Unicast,
            RouteKind::Local => wn::RouteKind::Local,
            RouteKind::Broadcast => wn::RouteKind::Broadcast,
            RouteKind::Blackhole => wn::RouteKind::Blackhole,
            RouteKind::Unreachable => wn::RouteKind::Unreachable,
            RouteKind::Prohibit => wn::RouteKind::Prohibit,
            RouteKind::Throw => wn::RouteKind::Throw,
        },
        prefix: prefix_to(r.prefix),
        gateway: r.gateway.map(ip_to),
        dev: r.dev.clone(),
        source: r.source.map(ip_to),
        rule_priority: r.rule_priority,
        text: r.text.clone(),
        proto: r.proto.clone(),
        scope: r.scope.clone(),
        metric: r.metric,
        onlink: r.onlink,
    }
}

/// A pipeline branch as the contract carries it.
pub fn forwarded_to(f: &skoop_netstack::Forwarded) -> wn::Forwarded {
    use skoop_netstack::{DropCause, Fate};
    let fate = match &f.fate {
        Fate::Deliver { iif } => wn::Fate::Deliver(iif.clone()),
        Fate::Transmit { oif, next_hop } => wn::Fate::Transmit(wn::Transmit {
            oif: oif.clone(),
            next_hop: ip_to(*next_hop),
        }),
        Fate::Drop(cause) => {
            let (kind, rule, route) = match cause {
                DropCause::Netfilter { by, .. } => ("netfilter", by.as_ref().map(hit_to), None),
                DropCause::NoRoute => ("no-route", None, None),
                DropCause::Route(r) => ("route", None, Some(route_to(r))),
                DropCause::NotForwarding { .. } => ("not-forwarding", None, None),
                DropCause::RpFilter { .. } => ("rp-filter", None, None),
                DropCause::Device { .. } => ("device", None, None),
                DropCause::Unavailable(_) => ("unavailable", None, None),
            };
            wn::Fate::Drop(wn::DropCause {
                kind: kind.to_string(),
                message: cause.to_string(),
                rule,
                route,
            })
        }
    };
    wn::Forwarded {
        fate,
        packet: packet_to(&f.packet),
        route: f.route.as_ref().map(route_to),
        bridged: f.bridged,
        rules: f.rules.iter().map(hit_to).collect(),
        uncertain: f.uncertain,
        notes: f.notes.clone(),
        unchecked: f.unchecked.clone(),
        natted: f.conntrack.is_some_and(|c| c.dnat() || c.snat()),
    }
}

pub fn hook_from(h: wn::Hook) -> Hook {
    match h {
        wn::Hook::Prerouting => Hook::Prerouting,
        wn::Hook::Input => Hook::Input,
        wn::Hook::Forward => Hook::Forward,
        wn::Hook::Output => Hook::Output,
        wn::Hook::Postrouting => Hook::Postrouting,
    }
}

fn hit_to(h: &RuleHit) -> wn::RuleHit {
    wn::RuleHit {
        family: h.family.clone(),
        handle: h.handle,
        table: h.table.clone(),
        chain: h.chain.clone(),
        index: h.index,
        rule: h.rule.clone(),
    }
}

pub fn outcome_to(o: &Outcome) -> wn::FilterOutcome {
    wn::FilterOutcome {
        verdict: match o.verdict {
            Verdict::Accept => wn::Verdict::Accept,
            Verdict::Drop => wn::Verdict::Drop,
            Verdict::Reject => wn::Verdict::Reject,
        },
        packet: packet_to(&o.packet),
        uncertain: o.uncertain,
        trace: o.trace.iter().map(hit_to).collect(),
        decided_by: o.decided_by.as_ref().map(hit_to),
        notes: o.notes.clone(),
    }
}

pub fn settings_to(s: &skoop_engine::settings::Settings) -> crate::bindings::cluster::Settings {
    use crate::bindings::cluster as wc;
    use skoop_engine::settings::ProxyMode;
    wc::Settings {
        network_plugin: s.network_plugin.clone(),
        cloud_provider: s.cloud_provider.clone(),
        proxy_mode: match s.proxy_mode {
            ProxyMode::Iptables => wc::ProxyMode::Iptables,
            ProxyMode::Ipvs => wc::ProxyMode::Ipvs,
            ProxyMode::Nftables => wc::ProxyMode::Nftables,
            ProxyMode::None => wc::ProxyMode::None,
        },
        cluster_cidrs: s.cluster_cidr.map(prefix_to).into_iter().collect(),
        family: wt::IpFamily::Ipv4,
    }
}
