//! What the host lends an extension, in plain Rust: the cluster view, the
//! netstack simulation of each network namespace, service resolution, the
//! underlay and logging. Everything here is read-only.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::cni::skoop::extension::{
    cluster as wc, log as wl, netstack as wn, service as ws, types as wt,
};
use crate::types::*;
use crate::{Error, Result};

thread_local! {
    // Answers the host gave during the current export call. The facts do not
    // change while the host waits for a call, and a hop's checks ask for the
    // same device or node several times: each is one boundary crossing.
    static MEMO: RefCell<Memo> = RefCell::default();
}

#[derive(Default)]
struct Memo {
    interfaces: HashMap<(String, String), Option<wn::InterfaceInfo>>,
    nodes: HashMap<String, Option<wt::NodeInfo>>,
}

/// Forget the answers of the previous export call (the glue calls this as
/// each call begins).
pub(crate) fn forget_answers() {
    MEMO.with(|m| *m.borrow_mut() = Memo::default());
}

/// Netfilter hooks, in the order a packet can meet them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

/// Kinds of route, as `ip route` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    /// Forward to a gateway or a directly connected host.
    Unicast,
    /// Deliver locally.
    Local,
    /// Broadcast address.
    Broadcast,
    /// Silently discard.
    Blackhole,
    /// Discard with host-unreachable.
    Unreachable,
    /// Discard with administratively-prohibited.
    Prohibit,
    /// Continue the lookup with the next rule.
    Throw,
}

/// The fate of a packet at a netfilter hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// It goes on.
    Accept,
    /// It is silently dropped.
    Drop,
    /// It is dropped and the sender told (REJECT).
    Reject,
}

/// One netfilter rule a packet met.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleHit {
    /// For an nftables rule, its family (`ip`, `ip6`, `inet`, ...); None for iptables.
    pub family: Option<String>,
    /// The nftables rule handle.
    pub handle: Option<u64>,
    /// Table (iptables: raw, mangle, nat, filter, security; nftables: its name).
    pub table: String,
    /// Chain.
    pub chain: String,
    /// 1-based position of the rule in its chain; 0 for the chain policy.
    pub index: u32,
    /// The rule as `iptables-save` prints it (or `policy DROP`).
    pub rule: String,
}

/// A policy routing rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpRule {
    /// Priority.
    pub priority: u32,
    /// `from` selector; None: all.
    pub src: Option<Ipv4Net>,
    /// `to` selector; None: all.
    pub dst: Option<Ipv4Net>,
    /// `iif` selector.
    pub iif: Option<String>,
    /// `oif` selector.
    pub oif: Option<String>,
    /// `fwmark` selector as (mark, mask).
    pub fwmark: Option<(u32, u32)>,
    /// Negated (`not`).
    pub negated: bool,
    /// `lookup`, `goto`, `blackhole`, `unreachable`, `prohibit`, `nop`.
    pub action: String,
    /// The table it selects, for `lookup` rules.
    pub table: Option<u32>,
    /// The rule as `ip rule` prints it.
    pub text: String,
}

// Private conversions of the enums above to and from their generated twins.
mirror!(
    hook_to,
    hook_from,
    Hook,
    wn::Hook,
    [Prerouting, Input, Forward, Output, Postrouting]
);
mirror!(
    route_kind_to,
    route_kind_from,
    RouteKind,
    wn::RouteKind,
    [
        Unicast,
        Local,
        Broadcast,
        Blackhole,
        Unreachable,
        Prohibit,
        Throw
    ]
);
mirror!(
    verdict_to,
    verdict_from,
    Verdict,
    wn::Verdict,
    [Accept, Drop, Reject]
);

fn rule_hit_from(r: wn::RuleHit) -> RuleHit {
    RuleHit {
        family: r.family,
        handle: r.handle,
        table: r.table,
        chain: r.chain,
        index: r.index,
        rule: r.rule,
    }
}

/// The cluster view.
pub mod cluster {
    use super::*;

    /// The settings of this diagnosis.
    pub fn settings() -> Settings {
        settings_from(&wc::current_settings())
    }

    /// The cluster CIDR, when known.
    pub fn cluster_cidr() -> Option<Ipv4Net> {
        wc::current_settings()
            .cluster_cidrs
            .iter()
            .find_map(|p| prefix_from(p).ok())
    }

    /// Who owns `ip`, given the destination port and protocol (a node's
    /// address with a NodePort is a Service).
    pub fn owner_of(ip: Ipv4Addr, port: u16, protocol: Protocol) -> Result<Owner> {
        owner_from(&wc::owner_of(ip_to(ip), port, protocol_to(protocol)))
    }

    /// A pod by `namespace/name`.
    pub fn pod(id: &str) -> Option<Pod> {
        wc::pod(id).and_then(|p| pod_from(&p).ok())
    }

    /// The pods scheduled on node `name`.
    pub fn pods_on(name: &str) -> Vec<Pod> {
        wc::pods_on(name)
            .iter()
            .filter_map(|p| pod_from(p).ok())
            .collect()
    }

    /// A node by name.
    pub fn node(name: &str) -> Option<Node> {
        let known = MEMO.with(|m| m.borrow().nodes.get(name).cloned());
        let answer = known.unwrap_or_else(|| {
            let n = wc::node(name);
            MEMO.with(|m| m.borrow_mut().nodes.insert(name.to_string(), n.clone()));
            n
        });
        answer.and_then(|n| node_from(&n).ok())
    }

    /// Every node.
    pub fn nodes() -> Vec<Node> {
        wc::nodes()
            .iter()
            .filter_map(|n| node_from(n).ok())
            .collect()
    }

    /// The node whose pod CIDR holds `ip`.
    pub fn node_owning_pod_ip(ip: Ipv4Addr) -> Option<Node> {
        nodes().into_iter().find(|n| n.owns_pod_ip(ip))
    }

    /// The node whose InternalIP is `ip` (one indexed lookup on the host; port 0
    /// is no NodePort, so a node address classifies as the node).
    pub fn node_by_ip(ip: Ipv4Addr) -> Option<Node> {
        match owner_of(ip, 0, Protocol::Tcp) {
            Ok(Owner::Node(n)) => Some(n),
            _ => None,
        }
    }

    /// A Kubernetes object, deserialized. Declare its kind in `Metadata::reads`.
    pub fn get_object<T: serde::de::DeserializeOwned>(
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<T>> {
        let json = wc::get_object(api_version, kind, namespace, name).map_err(error_from)?;
        match json {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| Error::Invalid(format!("{kind} {namespace}/{name}: {e}"))),
        }
    }

    /// Every object of a kind (in `namespace`, or all when empty),
    /// deserialized. Declare its kind in `Metadata::reads`. An object that
    /// does not fit `T` is an error naming it; see [`list_readable`] to
    /// read the others and say which were left out.
    pub fn list_objects<T: serde::de::DeserializeOwned>(
        api_version: &str,
        kind: &str,
        namespace: &str,
    ) -> Result<Vec<T>> {
        let read = list_readable(api_version, kind, namespace)?;
        match read.unreadable.into_iter().next() {
            Some(u) => Err(Error::Invalid(format!("{api_version} {u}"))),
            None => Ok(read.objects),
        }
    }

    /// The objects of a kind that fit `T`, and a line for each that does
    /// not, naming it and the field at fault by its JSON path: one
    /// malformed object need not stop a diagnosis it may have nothing to
    /// do with. Declare the kind in `Metadata::reads`.
    pub fn list_readable<T: serde::de::DeserializeOwned>(
        api_version: &str,
        kind: &str,
        namespace: &str,
    ) -> Result<Readable<T>> {
        let list = wc::list_objects(api_version, kind, namespace).map_err(error_from)?;
        let mut read = Readable {
            objects: Vec::with_capacity(list.len()),
            unreadable: Vec::new(),
        };
        for text in &list {
            match serde_json::from_str(text) {
                Ok(o) => read.objects.push(o),
                Err(_) => read.unreadable.push(unreadable::<T>(kind, text)),
            }
        }
        Ok(read)
    }

    /// What [`list_readable`] read.
    #[derive(Debug, Clone)]
    pub struct Readable<T> {
        pub objects: Vec<T>,
        /// `IPPool extra: spec.cidr: expected a string, found a list`, one
        /// per object left out.
        pub unreadable: Vec<String>,
    }

    /// `KIND NAME: PATH: why` for an object that does not read as a `T`.
    fn unreadable<T: serde::de::DeserializeOwned>(kind: &str, text: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let name = match (
            value
                .pointer("/metadata/namespace")
                .and_then(|n| n.as_str()),
            value.pointer("/metadata/name").and_then(|n| n.as_str()),
        ) {
            (Some(ns), Some(n)) if !ns.is_empty() => format!("{ns}/{n}"),
            (_, Some(n)) => n.to_string(),
            _ => "(no readable name)".into(),
        };
        match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(_) => format!("{kind} {name}: cannot be read"),
            Err(e) => {
                let path = e.path().to_string();
                let why = e.inner().to_string();
                if path == "." {
                    format!("{kind} {name}: {why}")
                } else {
                    format!("{kind} {name}: {path}: {why}")
                }
            }
        }
    }

    /// The value of one of this extension's config keys.
    pub fn config(key: &str) -> Option<String> {
        wc::config(key)
    }
}

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub kind: String,
    pub mtu: u32,
    pub admin_up: bool,
    pub oper_up: bool,
    pub master: Option<String>,
    pub peer_index: Option<u32>,
    /// The device it is stacked on (a VLAN's, ipvlan's or macvlan's parent).
    pub link: Option<String>,
    pub addresses: Vec<Ipv4Net>,
    pub mac: Option<String>,
    /// VXLAN id, for vxlan devices.
    pub vxlan_id: Option<u32>,
    /// The UDP destination port, for vxlan devices.
    pub vxlan_port: Option<u16>,
    /// The local (source) address, for vxlan devices that set one.
    pub vxlan_local: Option<Ipv4Addr>,
}

impl Interface {
    /// Admin and operationally up.
    pub fn up(&self) -> bool {
        self.admin_up && self.oper_up
    }
}

/// A route: a table entry, or one next hop of a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub table: u32,
    pub kind: RouteKind,
    pub prefix: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    pub dev: Option<String>,
    pub source: Option<Ipv4Addr>,
    pub rule_priority: u32,
    /// As `ip route` prints it.
    pub text: String,
    /// The protocol that installed it (`kernel`, `bird`, ...), when known.
    pub proto: Option<String>,
    /// `host`, `link` or `universe`, when known.
    pub scope: Option<String>,
    pub metric: u32,
    pub onlink: bool,
}

pub(crate) fn route_from(r: &wn::Route) -> Result<Route> {
    Ok(Route {
        table: r.table,
        kind: route_kind_from(r.kind),
        prefix: prefix_from(&r.prefix)?,
        gateway: r.gateway.as_ref().map(ip_from).transpose()?,
        dev: r.dev.clone(),
        source: r.source.as_ref().map(ip_from).transpose()?,
        rule_priority: r.rule_priority,
        text: r.text.clone(),
        proto: r.proto.clone(),
        scope: r.scope.clone(),
        metric: r.metric,
        onlink: r.onlink,
    })
}

/// Where a packet enters a netns's kernel pipeline ([`Netns::forward`]).
#[derive(Debug, Clone)]
pub struct ForwardQuery {
    pub packet: Packet,
    /// The interface it arrives on; None: originated in the netns.
    pub iif: Option<String>,
    /// The L2 neighbour address the sender resolved (see [`Link::next_hop_address`]).
    pub l2_next_hop: Option<Ipv4Addr>,
    /// The TOS byte.
    pub tos: u8,
}

impl ForwardQuery {
    /// A packet originated in the netns.
    pub fn originated(packet: Packet) -> ForwardQuery {
        ForwardQuery {
            packet,
            iif: None,
            l2_next_hop: None,
            tos: 0,
        }
    }

    /// A packet received on `iif`, sent to the L2 neighbour `l2_next_hop`.
    pub fn received(packet: Packet, iif: &str, l2_next_hop: Option<Ipv4Addr>) -> ForwardQuery {
        ForwardQuery {
            packet,
            iif: Some(iif.to_string()),
            l2_next_hop,
            tos: 0,
        }
    }
}

/// Why the pipeline dropped a packet.
#[derive(Debug, Clone)]
pub struct DropCause {
    /// `netfilter`, `no-route`, `route`, `not-forwarding`, `rp-filter`, `device`, `unavailable`, ...
    pub kind: String,
    /// A sentence naming what decided.
    pub message: String,
    pub rule: Option<RuleHit>,
    pub route: Option<Route>,
}

/// How one branch ends in a netns.
#[derive(Debug, Clone)]
pub enum Fate {
    /// Delivered locally; received on this interface.
    Deliver(String),
    /// Sent on `oif` to the L2 neighbour `next_hop`.
    Transmit { oif: String, next_hop: Ipv4Addr },
    /// Dropped.
    Drop(Box<DropCause>),
}

/// One branch of a pipeline walk ([`Netns::forward`]).
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub fate: Fate,
    /// The packet as it leaves (after NAT and marks).
    pub packet: Packet,
    pub route: Option<Route>,
    /// Bridged between two ports of a bridge.
    pub bridged: bool,
    /// Every netfilter rule that matched.
    pub rules: Vec<RuleHit>,
    pub uncertain: bool,
    pub notes: Vec<String>,
    /// Facts not collected that the walk needed.
    pub unchecked: Vec<String>,
    /// The connection was NATed in this netns.
    pub natted: bool,
}

pub(crate) fn drop_cause_from(d: wn::DropCause) -> Result<DropCause> {
    Ok(DropCause {
        kind: d.kind,
        message: d.message,
        rule: d.rule.map(rule_hit_from),
        route: d.route.as_ref().map(route_from).transpose()?,
    })
}

pub(crate) fn forwarded_from(f: wn::Forwarded) -> Result<Forwarded> {
    let fate = match f.fate {
        wn::Fate::Deliver(iif) => Fate::Deliver(iif),
        wn::Fate::Transmit(t) => Fate::Transmit {
            oif: t.oif,
            next_hop: ip_from(&t.next_hop)?,
        },
        wn::Fate::Drop(d) => Fate::Drop(Box::new(drop_cause_from(d)?)),
    };
    Ok(Forwarded {
        fate,
        packet: packet_from(&f.packet)?,
        route: f.route.as_ref().map(route_from).transpose()?,
        bridged: f.bridged,
        rules: f.rules.into_iter().map(rule_hit_from).collect(),
        uncertain: f.uncertain,
        notes: f.notes,
        unchecked: f.unchecked,
        natted: f.natted,
    })
}

/// A neighbour entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub ip: Ipv4Addr,
    pub dev: String,
    pub lladdr: Option<String>,
    pub state: String,
}

impl Neighbour {
    /// FAILED or INCOMPLETE: the address does not answer ARP.
    pub fn failed(&self) -> bool {
        matches!(self.state.as_str(), "FAILED" | "INCOMPLETE")
    }
}

/// A forwarding database entry (a bridge's or a VXLAN device's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbEntry {
    pub mac: String,
    pub dev: String,
    /// The remote VTEP, for VXLAN entries.
    pub dst: Option<Ipv4Addr>,
    /// `self`, `master`, `permanent`, `static`, ...
    pub flags: Vec<String>,
}

pub(crate) fn fdb_from(e: &wn::FdbEntry) -> Result<FdbEntry> {
    Ok(FdbEntry {
        mac: e.mac.clone(),
        dev: e.dev.clone(),
        dst: e.dst.as_ref().map(ip_from).transpose()?,
        flags: e.flags.clone(),
    })
}

pub(crate) fn neighbour_from(n: &wn::Neighbour) -> Result<Neighbour> {
    Ok(Neighbour {
        ip: ip_from(&n.ip)?,
        dev: n.dev.clone(),
        lladdr: n.lladdr.clone(),
        state: n.state.clone(),
    })
}

/// One outcome of a netfilter hook.
#[derive(Debug, Clone)]
pub struct FilterOutcome {
    pub verdict: Verdict,
    pub packet: Packet,
    pub uncertain: bool,
    pub trace: Vec<RuleHit>,
    pub decided_by: Option<RuleHit>,
    pub notes: Vec<String>,
}

/// A network namespace the host holds facts for.
#[derive(Debug, Clone)]
pub struct Netns {
    inner: wt::Netns,
    label: String,
}

impl Netns {
    /// A node's host network namespace.
    pub fn node(name: &str) -> Netns {
        Netns {
            inner: wt::Netns::Node(name.to_string()),
            label: format!("node {name}"),
        }
    }

    /// A pod's network namespace (`namespace/name`).
    pub fn pod(id: &str) -> Netns {
        Netns {
            inner: wt::Netns::Pod(id.to_string()),
            label: format!("pod {id}"),
        }
    }

    pub(crate) fn from_wit(ns: &wt::Netns) -> Netns {
        match ns {
            wt::Netns::Node(n) => Netns::node(n),
            wt::Netns::Pod(p) => Netns::pod(p),
        }
    }

    /// The pod's `namespace/name`, for a pod's netns.
    pub fn pod_id(&self) -> Option<&str> {
        match &self.inner {
            wt::Netns::Pod(p) => Some(p),
            wt::Netns::Node(_) => None,
        }
    }

    /// The net-node it belongs to: the node's name or the pod's `namespace/name`.
    pub fn net_node(&self) -> &str {
        match &self.inner {
            wt::Netns::Pod(p) | wt::Netns::Node(p) => p,
        }
    }

    /// "node x" or "pod ns/name", for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Every interface.
    pub fn interfaces(&self) -> Result<Vec<Interface>> {
        let list = wn::interfaces(&self.inner).map_err(error_from)?;
        list.iter().map(interface_from).collect()
    }

    /// An interface by name.
    pub fn interface(&self, name: &str) -> Result<Option<Interface>> {
        let key = (self.label.clone(), name.to_string());
        let known = MEMO.with(|m| m.borrow().interfaces.get(&key).cloned());
        let answer = match known {
            Some(a) => a,
            None => {
                let a = wn::interface_by_name(&self.inner, name).map_err(error_from)?;
                MEMO.with(|m| m.borrow_mut().interfaces.insert(key, a.clone()));
                a
            }
        };
        match answer {
            Some(i) => interface_from(&i).map(Some),
            None => Ok(None),
        }
    }

    /// An interface by ifindex.
    pub fn interface_by_index(&self, index: u32) -> Result<Option<Interface>> {
        match wn::interface_by_index(&self.inner, index).map_err(error_from)? {
            Some(i) => interface_from(&i).map(Some),
            None => Ok(None),
        }
    }

    /// A sysctl by dotted name.
    pub fn sysctl(&self, key: &str) -> Result<Option<String>> {
        wn::sysctl(&self.inner, key).map_err(error_from)
    }

    /// Policy routing rules.
    pub fn ip_rules(&self) -> Result<Vec<IpRule>> {
        let rules = wn::ip_rules(&self.inner).map_err(error_from)?;
        rules
            .into_iter()
            .map(|r| {
                Ok(IpRule {
                    priority: r.priority,
                    src: r.src.as_ref().map(prefix_from).transpose()?,
                    dst: r.dst.as_ref().map(prefix_from).transpose()?,
                    iif: r.iif,
                    oif: r.oif,
                    fwmark: r.fwmark,
                    negated: r.negated,
                    action: r.action,
                    table: r.table,
                    text: r.text,
                })
            })
            .collect()
    }

    /// The routes of table `table` (254 main, 255 local, or a numbered one).
    pub fn routes(&self, table: u32) -> Result<Vec<Route>> {
        let routes = wn::routes(&self.inner, table).map_err(error_from)?;
        routes.iter().map(route_from).collect()
    }

    /// Route lookup; empty means no route. For a datapath the host's walk
    /// cannot see (eBPF): the walk already routes every packet it follows.
    pub fn route(
        &self,
        dst: Ipv4Addr,
        src: Option<Ipv4Addr>,
        iif: Option<&str>,
        mark: u32,
    ) -> Result<Vec<Route>> {
        let q = wn::RouteQuery {
            dst: ip_to(dst),
            src: src.map(ip_to),
            iif: iif.map(str::to_string),
            mark,
        };
        let routes = wn::route_lookup(&self.inner, &q).map_err(error_from)?;
        routes.iter().map(route_from).collect()
    }

    /// Walk a packet through this netns as the kernel does (see the WIT
    /// `netstack.forward`): one entry per branch. The host keeps conntrack,
    /// so a reply is translated back where its request was NATed. For a
    /// datapath the host's walk cannot see (eBPF), which hands packets to
    /// the kernel.
    pub fn forward(&self, q: &ForwardQuery) -> Result<Vec<Forwarded>> {
        let wq = wn::ForwardQuery {
            packet: packet_to(&q.packet),
            iif: q.iif.clone(),
            l2_next_hop: q.l2_next_hop.map(ip_to),
            tos: q.tos,
        };
        let out = wn::forward(&self.inner, &wq).map_err(error_from)?;
        out.into_iter().map(forwarded_from).collect()
    }

    /// True when `ip` is local to this netns.
    pub fn is_local(&self, ip: Ipv4Addr) -> Result<bool> {
        wn::is_local(&self.inner, ip_to(ip)).map_err(error_from)
    }

    /// The neighbour entries on `dev` (every device when None); IPv4 only.
    pub fn neighbours(&self, dev: Option<&str>) -> Result<Vec<Neighbour>> {
        let list = wn::neighbours(&self.inner, dev).map_err(error_from)?;
        Ok(list.iter().filter_map(|n| neighbour_from(n).ok()).collect())
    }

    /// The neighbour entry for `ip` on `dev`.
    pub fn neighbour(&self, dev: &str, ip: Ipv4Addr) -> Result<Option<Neighbour>> {
        Ok(self.neighbours(Some(dev))?.into_iter().find(|n| n.ip == ip))
    }

    /// FDB entries on `dev`.
    pub fn fdb(&self, dev: &str) -> Result<Vec<FdbEntry>> {
        let list = wn::fdb(&self.inner, dev).map_err(error_from)?;
        list.iter().map(fdb_from).collect()
    }

    /// True when something listens on `ip` (or a wildcard) at `port`.
    pub fn listening(&self, protocol: Protocol, ip: Ipv4Addr, port: u16) -> Result<bool> {
        wn::listening(&self.inner, protocol_to(protocol), ip_to(ip), port).map_err(error_from)
    }

    /// Traverse a netfilter hook.
    pub fn netfilter(
        &self,
        hook: Hook,
        packet: &Packet,
        iif: Option<&str>,
        oif: Option<&str>,
    ) -> Result<Vec<FilterOutcome>> {
        let outcomes = wn::netfilter(&self.inner, hook_to(hook), &packet_to(packet), iif, oif)
            .map_err(error_from)?;
        outcomes
            .into_iter()
            .map(|o| {
                Ok(FilterOutcome {
                    verdict: verdict_from(o.verdict),
                    packet: packet_from(&o.packet)?,
                    uncertain: o.uncertain,
                    trace: o.trace.into_iter().map(rule_hit_from).collect(),
                    decided_by: o.decided_by.map(rule_hit_from),
                    notes: o.notes,
                })
            })
            .collect()
    }
}

pub(crate) fn interface_from(i: &wn::InterfaceInfo) -> Result<Interface> {
    Ok(Interface {
        name: i.name.clone(),
        index: i.index,
        kind: i.kind.clone(),
        mtu: i.mtu,
        admin_up: i.admin_up,
        oper_up: i.oper_up,
        master: i.master.clone(),
        peer_index: i.peer_index,
        link: i.link.clone(),
        addresses: i
            .addresses
            .iter()
            .filter_map(|a| prefix_from(a).ok())
            .collect(),
        mac: i.mac.clone(),
        vxlan_id: i.vxlan.as_ref().map(|v| v.vni),
        vxlan_port: i.vxlan.as_ref().map(|v| v.port),
        vxlan_local: i
            .vxlan
            .as_ref()
            .and_then(|v| v.local.as_ref())
            .and_then(|ip| ip_from(ip).ok()),
    })
}

/// kube-proxy style Service resolution.
/// The host's policy evaluator (NetworkPolicy, AdminNetworkPolicy,
/// BaselineAdminNetworkPolicy), e.g. to cross-check what a plugin's agent programmed.
pub mod policy {
    use super::*;
    use crate::cni::skoop::extension::policy as wp;

    /// The verdict of one direction.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Verdict {
        /// "ingress" (at the destination pod) or "egress" (at the source pod).
        pub direction: String,
        /// The pod it is evaluated at, as `namespace/name`.
        pub pod: String,
        /// Whether the policies allow the packet.
        pub allowed: bool,
        /// What decided, e.g. "network-policy-allow", "network-policy-deny",
        /// "admin-network-policy", "baseline-admin-network-policy", "not-isolated",
        /// "self-traffic", "host-network", "node-local" (more may come).
        pub decision: String,
        /// The policies named by the decision (`namespace/name`, or an admin policy's name).
        pub policies: Vec<String>,
        /// One sentence: which policy and rule allowed, or for a deny the policies
        /// selecting the pod and the nearest misses.
        pub explanation: String,
    }

    /// Verdicts for a packet from `src` to `dst`:`dport` as the destination sees it (after
    /// DNAT/SNAT): egress when `src` is a pod, ingress when `dst` is.
    pub fn evaluate(src: Ipv4Addr, dst: Ipv4Addr, dport: u16, protocol: Protocol) -> Vec<Verdict> {
        wp::evaluate(ip_to(src), ip_to(dst), dport, protocol_to(protocol))
            .into_iter()
            .map(|v| Verdict {
                direction: v.direction,
                pod: v.pod,
                allowed: v.allowed,
                decision: v.decision,
                policies: v.policies,
                explanation: v.explanation,
            })
            .collect()
    }
}

/// Service resolution as the EndpointSlices describe it (the intent). The
/// host's walk translates Services from the node's own rules; this is for a
/// datapath the walk cannot see (an eBPF kube-proxy replacement).
pub mod service {
    use super::*;

    /// One backend: the translated packet and who it now goes to.
    #[derive(Debug, Clone)]
    pub struct Backend {
        pub packet: Packet,
        pub target: Owner,
    }

    /// Backends and suspicions for a Service packet.
    #[derive(Debug, Clone)]
    pub struct Resolution {
        pub backends: Vec<Backend>,
        pub suspicions: Vec<Suspicion>,
    }

    /// Resolve a packet addressed to a Service on `node`.
    pub fn resolve(node: &str, packet: Packet) -> Result<Resolution> {
        let r = ws::resolve(node, &packet_to(&packet)).map_err(error_from)?;
        Ok(Resolution {
            backends: r
                .backends
                .iter()
                .map(|b| {
                    Ok(Backend {
                        packet: packet_from(&b.packet)?,
                        target: owner_from(&b.target)?,
                    })
                })
                .collect::<Result<_>>()?,
            suspicions: r.suspicions.iter().map(suspicion_from).collect(),
        })
    }
}

/// Log a line (shown with `-v`).
pub fn log(level: Level, message: &str) {
    wl::log(level_to(level), message);
}
