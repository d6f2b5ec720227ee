//! Plain Rust types for what crosses the host boundary, with conversions to
//! and from the generated WIT types (which stay private to the SDK).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::cni::skoop::extension::{cluster as wc, types as wt};
use crate::provider::exports::skoop::extension::provider as wp;
use crate::{Error, Result};

/// How bad a suspicion is; ordered from [`Level::Info`] to [`Level::Fatal`].
/// The host exits with status 3 when any suspicion is critical or fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Worth knowing; traffic is not affected.
    Info,
    /// May affect traffic, or a fact could not be checked.
    Warning,
    /// Very likely breaks traffic.
    Critical,
    /// Certainly breaks traffic.
    Fatal,
}

/// Transport protocol of the diagnosed flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    /// ICMP (ports are ignored).
    Icmp,
    Sctp,
    /// ICMPv6 (ports are ignored).
    Icmpv6,
}

/// Tunnel header kinds wrapped around a packet on an overlay link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EncapKind {
    /// VXLAN over UDP.
    Vxlan,
    /// IP-in-IP.
    Ipip,
    /// WireGuard over UDP.
    Wireguard,
    /// Any other (geneve, gre, ...).
    Other,
}

/// Kinds of net-node a packet can visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetNodeKind {
    /// A pod's network namespace (host-network pods are nodes).
    Pod,
    /// A node's host network namespace.
    Node,
    /// Anything outside the cluster.
    External,
}

/// Kinds of link between two net-nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkKind {
    /// A veth pair between a pod and its node.
    Veth,
    /// A VXLAN overlay between two nodes.
    Vxlan,
    /// An IP-in-IP overlay between two nodes.
    Ipip,
    /// A WireGuard tunnel between two nodes.
    Wireguard,
    /// An ipvlan device between a pod and its node's parent interface.
    Ipvlan,
    /// A macvlan device between a pod and its node's parent interface.
    Macvlan,
    /// A VLAN sub-interface between a pod and the underlay.
    Vlan,
    /// The underlay (the cloud network) between two nodes or to the outside.
    Underlay,
    /// Delivery inside one network namespace.
    Local,
    /// To or from the outside of the cluster.
    External,
    /// Any other.
    Other,
}

/// What a net-node did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActionKind {
    /// It originated the packet.
    Send,
    /// It passed the packet on.
    Forward,
    /// It delivered the packet to a local socket (or, for a reply, to the client).
    Serve,
    /// It dropped the packet.
    Drop,
    /// It cannot tell: a fact it needs was not collected (the suspicions say which).
    Unknown,
}

/// How Services are implemented on the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProxyMode {
    /// kube-proxy in iptables mode.
    Iptables,
    /// kube-proxy in IPVS mode.
    Ipvs,
    /// kube-proxy in nftables mode.
    Nftables,
    /// No kube-proxy (the CNI handles services, or there are none).
    None,
}

/// Cluster-wide settings of this diagnosis, from flags or detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The network plugin in use (e.g. "flannel").
    pub network_plugin: String,
    /// The cloud provider in use (e.g. "generic").
    pub cloud_provider: String,
    /// How Services are implemented.
    pub proxy_mode: ProxyMode,
    /// The cluster (pod) CIDR, when known.
    pub cluster_cidr: Option<Ipv4Net>,
}

/// The wiring a provider chooses for a diagnosis
/// ([`CloudProvider::create_network`](crate::CloudProvider::create_network)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPlan {
    /// The CNI plugin to use, by registry name.
    pub plugin: String,
    /// How Services are implemented.
    pub proxy_mode: ProxyMode,
    /// Whether this provider answers for the underlay (its `underlay` methods).
    pub infra_shim: bool,
}

/// The ephemeral source port skoop uses for simulated clients.
pub const EPHEMERAL_PORT: u16 = 40000;

/// One suspicion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspicion {
    pub level: Level,
    pub message: String,
    /// The net-node the suspicion is about, when not the reporting one.
    pub about: Option<String>,
}

impl Suspicion {
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Suspicion {
            level,
            message: message.into(),
            about: None,
        }
    }

    /// The suspicion is about another net-node (a node by name, a pod as `ns/name`).
    pub fn about(mut self, net_node: &str) -> Self {
        self.about = Some(net_node.to_string());
        self
    }
}

/// The outer header of an encapsulated packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encap {
    pub kind: EncapKind,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub vni: Option<u32>,
    /// The outer UDP destination port of VXLAN (the device's `dstport`).
    pub port: Option<u16>,
}

/// The packet of the diagnosed flow at one point of its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub src: Ipv4Addr,
    pub sport: u16,
    pub dst: Ipv4Addr,
    pub dport: u16,
    pub protocol: Protocol,
    pub mark: u32,
    pub encap: Option<Encap>,
    pub reply: bool,
    /// The IP TOS byte.
    pub tos: u8,
    /// The size in bytes of the (inner) IP packet: full-size, as large as
    /// the path's ends let it; 0 when not known.
    pub size: u32,
    /// For ICMP: the message's (type, code); None: not known.
    pub icmp: Option<(u8, u8)>,
}

impl Packet {
    /// "request" or "reply", for messages.
    pub fn direction(&self) -> &'static str {
        if self.reply { "reply" } else { "request" }
    }

    /// The packet with its outer header removed.
    pub fn decapsulated(mut self) -> Packet {
        self.encap = None;
        self
    }

    /// `src:sport -> dst:dport/proto`.
    pub fn tuple(&self) -> String {
        format!(
            "{}:{} -> {}:{}/{}",
            self.src,
            self.sport,
            self.dst,
            self.dport,
            protocol_name(self.protocol)
        )
    }
}

/// `tcp`, `udp` or `icmp`.
pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Icmp => "icmp",
        Protocol::Sctp => "sctp",
        Protocol::Icmpv6 => "icmpv6",
    }
}

/// A pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub ip: Ipv4Addr,
    pub node: String,
    pub host_network: bool,
    pub ready: bool,
    pub phase: String,
    pub ports: Vec<(String, u16, Protocol)>,
    pub labels: Vec<(String, String)>,
    /// Annotations, e.g. a CNI's address annotations.
    pub annotations: Vec<(String, String)>,
}

impl Pod {
    /// `namespace/name`, the pod's net-node id.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The pod as a net-node.
    pub fn net_node(&self) -> NetNode {
        if self.host_network {
            NetNode::node(&self.node)
        } else {
            NetNode::pod(&self.id())
        }
    }

    /// An annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub ip: Ipv4Addr,
    pub pod_cidrs: Vec<Ipv4Net>,
    pub ready: bool,
    pub host_interface: Option<String>,
    pub annotations: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    /// `spec.providerID`, e.g. `aws:///us-east-1a/i-0abc`.
    pub provider_id: Option<String>,
}

impl Node {
    /// The node as a net-node.
    pub fn net_node(&self) -> NetNode {
        NetNode::node(&self.name)
    }

    /// A label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// An annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// True when `ip` is in one of the node's pod CIDRs.
    pub fn owns_pod_ip(&self, ip: Ipv4Addr) -> bool {
        self.pod_cidrs.iter().any(|c| c.contains(&ip))
    }
}

/// A service port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    pub node_port: Option<u16>,
}

/// A service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    pub service_type: String,
    pub cluster_ips: Vec<Ipv4Addr>,
    pub ports: Vec<ServicePort>,
}

impl Service {
    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Who owns an address in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Pod(Pod),
    Node(Node),
    Service(Service),
    External(Ipv4Addr),
}

/// A net-node: where a packet is (pods `namespace/name`, nodes by name,
/// external by address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetNode {
    pub kind: NetNodeKind,
    pub id: String,
}

impl NetNode {
    pub fn pod(id: &str) -> NetNode {
        NetNode {
            kind: NetNodeKind::Pod,
            id: id.to_string(),
        }
    }
    pub fn node(name: &str) -> NetNode {
        NetNode {
            kind: NetNodeKind::Node,
            id: name.to_string(),
        }
    }
    pub fn external(ip: Ipv4Addr) -> NetNode {
        NetNode {
            kind: NetNodeKind::External,
            id: ip.to_string(),
        }
    }
}

/// A packet leaving a net-node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmission {
    pub next_hop: NetNode,
    pub kind: LinkKind,
    pub packet: Packet,
    pub oif: Option<String>,
    pub iif: Option<String>,
    /// The L2 neighbour address it is sent to (route gateway, or the destination on-link).
    pub next_hop_address: Option<Ipv4Addr>,
}

impl Transmission {
    /// A transmission to `next_hop` over a link of `kind`, with no interfaces named.
    pub fn new(next_hop: NetNode, kind: LinkKind, packet: Packet) -> Transmission {
        Transmission {
            next_hop,
            kind,
            packet,
            oif: None,
            iif: None,
            next_hop_address: None,
        }
    }

    /// Leaving by `oif`.
    pub fn oif(mut self, oif: impl Into<String>) -> Transmission {
        self.oif = Some(oif.into());
        self
    }

    /// Arriving on `iif` at the next hop.
    pub fn iif(mut self, iif: impl Into<String>) -> Transmission {
        self.iif = Some(iif.into());
        self
    }

    /// Sent to the L2 neighbour `addr`.
    pub fn via(mut self, addr: Ipv4Addr) -> Transmission {
        self.next_hop_address = Some(addr);
        self
    }
}

/// A packet arriving at a net-node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub source: NetNode,
    pub kind: LinkKind,
    pub packet: Packet,
    pub oif: Option<String>,
    pub iif: Option<String>,
    /// The L2 neighbour address the sender resolved, if known.
    pub next_hop_address: Option<Ipv4Addr>,
}

/// What a net-node did with a packet: the value every hop returns.
///
/// Build it with [`NodeStep::forward`] (one [`Transmission`] per branch: ECMP
/// next hops, Service backends), [`NodeStep::serve`], [`NodeStep::drop`] or
/// [`NodeStep::unknown`], and attach suspicions with [`NodeStep::with`] (or
/// [`Suspicions::into_step`](crate::Suspicions::into_step)).
///
/// ```
/// use skoop_sdk::prelude::*;
///
/// let packet = Packet {
///     src: "10.244.0.5".parse().unwrap(),
///     sport: EPHEMERAL_PORT,
///     dst: "10.244.1.7".parse().unwrap(),
///     dport: 8080,
///     protocol: Protocol::Tcp,
///     mark: 0,
///     encap: None,
///     reply: false,
///     tos: 0,
///     size: 0,
///     icmp: None,
/// };
///
/// // The node sends the packet to node-2 over the underlay, leaving by eth0.
/// let step = NodeStep::forward(vec![
///     Transmission::new(NetNode::node("node-2"), LinkKind::Underlay, packet)
///         .oif("eth0")
///         .iif("eth0")
///         .via("192.168.0.12".parse().unwrap()),
/// ])
/// .with(vec![Suspicion::new(Level::Info, "routed by the host-gw route")]);
/// assert_eq!(step.action, ActionKind::Forward);
/// assert_eq!(step.transmissions[0].next_hop, NetNode::node("node-2"));
///
/// // A pod that accepts it; a hop that drops it, and says why.
/// assert_eq!(NodeStep::serve().action, ActionKind::Serve);
/// let dropped = NodeStep::drop().with(vec![Suspicion::new(Level::Fatal, "no route to 10.244.1.7")]);
/// assert!(dropped.transmissions.is_empty());
///
/// // Branches computed separately fold into one step; a dropped branch is kept.
/// let mut both = NodeStep::forward(vec![]);
/// both.merge(packet, step);
/// both.merge(packet, dropped);
/// assert_eq!((both.transmissions.len(), both.dropped.len(), both.suspicions.len()), (1, 1, 2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStep {
    pub action: ActionKind,
    pub transmissions: Vec<Transmission>,
    /// Packets of branches that end here while others go on.
    pub dropped: Vec<Packet>,
    pub suspicions: Vec<Suspicion>,
}

impl NodeStep {
    /// Forward over `transmissions`.
    pub fn forward(transmissions: Vec<Transmission>) -> Self {
        NodeStep {
            action: ActionKind::Forward,
            transmissions,
            dropped: vec![],
            suspicions: vec![],
        }
    }

    /// Delivered here.
    pub fn serve() -> Self {
        NodeStep {
            action: ActionKind::Serve,
            transmissions: vec![],
            dropped: vec![],
            suspicions: vec![],
        }
    }

    /// Dropped here.
    pub fn drop() -> Self {
        NodeStep {
            action: ActionKind::Drop,
            transmissions: vec![],
            dropped: vec![],
            suspicions: vec![],
        }
    }

    /// Attach suspicions.
    pub fn with(mut self, suspicions: Vec<Suspicion>) -> Self {
        self.suspicions.extend(suspicions);
        self
    }

    /// It cannot tell what happens: facts were missing.
    pub fn unknown() -> Self {
        NodeStep {
            action: ActionKind::Unknown,
            transmissions: vec![],
            dropped: vec![],
            suspicions: vec![],
        }
    }

    /// Fold the step of another branch, which carried `packet`, into this one:
    /// its transmissions become more branches; if it dropped, the drop is kept.
    pub fn merge(&mut self, packet: Packet, other: NodeStep) {
        if other.action == ActionKind::Serve {
            self.action = ActionKind::Serve;
        }
        if other.action == ActionKind::Drop && other.transmissions.is_empty() {
            self.dropped.push(packet);
        }
        self.transmissions.extend(other.transmissions);
        self.dropped.extend(other.dropped);
        for s in other.suspicions {
            if !self.suspicions.contains(&s) {
                self.suspicions.push(s);
            }
        }
    }
}

// ---- conversions -------------------------------------------------------

mirror!(
    level_to,
    level_from,
    Level,
    wt::Level,
    [Info, Warning, Critical, Fatal]
);
mirror!(
    protocol_to,
    protocol_from,
    Protocol,
    wt::Protocol,
    [Tcp, Udp, Icmp, Sctp, Icmpv6]
);
mirror!(
    net_node_kind_to,
    net_node_kind_from,
    NetNodeKind,
    wt::NetNodeKind,
    [Pod, Node, External]
);
mirror!(
    action_kind_to,
    action_kind_from,
    ActionKind,
    wt::ActionKind,
    [Send, Forward, Serve, Drop, Unknown]
);
mirror!(
    proxy_mode_to,
    proxy_mode_from,
    ProxyMode,
    wc::ProxyMode,
    [Iptables, Ipvs, Nftables, None]
);

pub(crate) fn encap_kind_from(k: &wt::EncapKind) -> EncapKind {
    match k {
        wt::EncapKind::Vxlan => EncapKind::Vxlan,
        wt::EncapKind::Ipip => EncapKind::Ipip,
        wt::EncapKind::Wireguard => EncapKind::Wireguard,
        wt::EncapKind::Other(_) => EncapKind::Other,
    }
}

pub(crate) fn encap_kind_to(k: EncapKind) -> wt::EncapKind {
    match k {
        EncapKind::Vxlan => wt::EncapKind::Vxlan,
        EncapKind::Ipip => wt::EncapKind::Ipip,
        EncapKind::Wireguard => wt::EncapKind::Wireguard,
        EncapKind::Other => wt::EncapKind::Other("other".into()),
    }
}

pub(crate) fn link_kind_from(k: &wt::LinkKind) -> LinkKind {
    match k {
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
        wt::LinkKind::Other(_) => LinkKind::Other,
    }
}

pub(crate) fn link_kind_to(k: LinkKind) -> wt::LinkKind {
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
        LinkKind::Other => wt::LinkKind::Other("other".into()),
    }
}

pub(crate) fn settings_from(s: &wc::Settings) -> Settings {
    Settings {
        network_plugin: s.network_plugin.clone(),
        cloud_provider: s.cloud_provider.clone(),
        proxy_mode: proxy_mode_from(s.proxy_mode),
        cluster_cidr: s.cluster_cidrs.iter().find_map(|p| prefix_from(p).ok()),
    }
}

pub(crate) fn network_plan_to(p: NetworkPlan) -> wp::NetworkPlan {
    wp::NetworkPlan {
        plugin: p.plugin,
        proxy_mode: proxy_mode_to(p.proxy_mode),
        infra_shim: p.infra_shim,
    }
}

/// This SDK version works in IPv4: an IPv6 address is refused by name.
pub(crate) fn ip_from(ip: &wt::IpAddress) -> Result<Ipv4Addr> {
    match ip {
        wt::IpAddress::Ipv4((a, b, c, d)) => Ok(Ipv4Addr::new(*a, *b, *c, *d)),
        wt::IpAddress::Ipv6(g) => Err(Error::Invalid(format!(
            "{} is IPv6, which this SDK version does not handle",
            std::net::Ipv6Addr::new(g.0, g.1, g.2, g.3, g.4, g.5, g.6, g.7)
        ))),
    }
}

/// The first IPv4 address of a list (a pod's or node's addresses).
fn first_v4(list: &[wt::IpAddress], what: &str) -> Result<Ipv4Addr> {
    list.iter()
        .find_map(|ip| ip_from(ip).ok())
        .ok_or_else(|| Error::Invalid(format!("{what} has no IPv4 address")))
}

pub(crate) fn ip_to(ip: Ipv4Addr) -> wt::IpAddress {
    let [a, b, c, d] = ip.octets();
    wt::IpAddress::Ipv4((a, b, c, d))
}

pub(crate) fn prefix_from(p: &wt::IpPrefix) -> Result<Ipv4Net> {
    Ipv4Net::new(ip_from(&p.address)?, p.prefix_len)
        .map_err(|e| Error::Invalid(format!("bad prefix: {e}")))
}

pub(crate) fn encap_from(e: &wt::Encapsulation) -> Result<Encap> {
    Ok(Encap {
        kind: encap_kind_from(&e.kind),
        src: ip_from(&e.src)?,
        dst: ip_from(&e.dst)?,
        vni: e.vni,
        port: e.port,
    })
}

pub(crate) fn packet_from(p: &wt::Packet) -> Result<Packet> {
    Ok(Packet {
        src: ip_from(&p.src)?,
        sport: p.sport,
        dst: ip_from(&p.dst)?,
        dport: p.dport,
        protocol: protocol_from(p.protocol),
        mark: p.mark,
        encap: p.encap.as_ref().map(encap_from).transpose()?,
        reply: p.reply,
        tos: p.tos,
        size: p.size,
        icmp: p.icmp.map(|m| (m.type_, m.code)),
    })
}

pub(crate) fn packet_to(p: &Packet) -> wt::Packet {
    wt::Packet {
        src: ip_to(p.src),
        sport: p.sport,
        dst: ip_to(p.dst),
        dport: p.dport,
        protocol: protocol_to(p.protocol),
        mark: p.mark,
        encap: p.encap.map(|e| wt::Encapsulation {
            kind: encap_kind_to(e.kind),
            src: ip_to(e.src),
            dst: ip_to(e.dst),
            vni: e.vni,
            port: e.port,
        }),
        reply: p.reply,
        tos: p.tos,
        size: p.size,
        icmp: p.icmp.map(|(type_, code)| wt::IcmpMessage { type_, code }),
    }
}

pub(crate) fn pod_from(p: &wt::PodInfo) -> Result<Pod> {
    Ok(Pod {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        ip: first_v4(&p.ips, &format!("pod {}/{}", p.namespace, p.name))?,
        node: p.node.clone(),
        host_network: p.host_network,
        ready: p.ready,
        phase: p.phase.clone(),
        ports: p
            .ports
            .iter()
            .map(|(name, port, proto)| (name.clone(), *port, protocol_from(*proto)))
            .collect(),
        labels: p.labels.clone(),
        annotations: p.annotations.clone(),
    })
}

pub(crate) fn node_from(n: &wt::NodeInfo) -> Result<Node> {
    Ok(Node {
        name: n.name.clone(),
        ip: first_v4(&n.ips, &format!("node {}", n.name))?,
        pod_cidrs: n
            .pod_cidrs
            .iter()
            .filter_map(|p| prefix_from(p).ok())
            .collect(),
        ready: n.ready,
        host_interface: n.host_interface.clone(),
        annotations: n.annotations.clone(),
        labels: n.labels.clone(),
        provider_id: n.provider_id.clone(),
    })
}

pub(crate) fn service_from(s: &wt::ServiceInfo) -> Result<Service> {
    Ok(Service {
        namespace: s.namespace.clone(),
        name: s.name.clone(),
        service_type: s.service_type.clone(),
        cluster_ips: s
            .cluster_ips
            .iter()
            .filter_map(|ip| ip_from(ip).ok())
            .collect(),
        ports: s
            .ports
            .iter()
            .map(|p| ServicePort {
                name: p.name.clone(),
                protocol: protocol_from(p.protocol),
                port: p.port,
                node_port: p.node_port,
            })
            .collect(),
    })
}

pub(crate) fn owner_from(e: &wt::Owner) -> Result<Owner> {
    Ok(match e {
        wt::Owner::Pod(p) => Owner::Pod(pod_from(p)?),
        wt::Owner::Node(n) => Owner::Node(node_from(n)?),
        wt::Owner::Service(s) => Owner::Service(service_from(s)?),
        wt::Owner::External(ip) => Owner::External(ip_from(ip)?),
    })
}

pub(crate) fn net_node_from(h: &wt::NetNode) -> NetNode {
    NetNode {
        kind: net_node_kind_from(h.kind),
        id: h.id.clone(),
    }
}

pub(crate) fn net_node_to(h: &NetNode) -> wt::NetNode {
    wt::NetNode {
        kind: net_node_kind_to(h.kind),
        id: h.id.clone(),
    }
}

pub(crate) fn link_from(l: &wt::Link) -> Result<Link> {
    Ok(Link {
        source: net_node_from(&l.source),
        kind: link_kind_from(&l.kind),
        packet: packet_from(&l.packet)?,
        oif: l.oif.clone(),
        iif: l.iif.clone(),
        next_hop_address: l.next_hop_address.as_ref().map(ip_from).transpose()?,
    })
}

pub(crate) fn transmission_from(t: &wt::Transmission) -> Result<Transmission> {
    Ok(Transmission {
        next_hop: net_node_from(&t.next_hop),
        kind: link_kind_from(&t.kind),
        packet: packet_from(&t.packet)?,
        oif: t.oif.clone(),
        iif: t.iif.clone(),
        next_hop_address: t.next_hop_address.as_ref().map(ip_from).transpose()?,
    })
}

pub(crate) fn suspicion_to(s: &Suspicion) -> wt::Suspicion {
    wt::Suspicion {
        level: level_to(s.level),
        message: s.message.clone(),
        about: s.about.clone(),
    }
}

pub(crate) fn suspicion_from(s: &wt::Suspicion) -> Suspicion {
    Suspicion {
        level: level_from(s.level),
        message: s.message.clone(),
        about: s.about.clone(),
    }
}

pub(crate) fn step_to(s: &NodeStep) -> wt::NodeStep {
    wt::NodeStep {
        action: action_kind_to(s.action),
        transmissions: s
            .transmissions
            .iter()
            .map(|t| wt::Transmission {
                next_hop: net_node_to(&t.next_hop),
                kind: link_kind_to(t.kind),
                packet: packet_to(&t.packet),
                oif: t.oif.clone(),
                iif: t.iif.clone(),
                next_hop_address: t.next_hop_address.map(ip_to),
            })
            .collect(),
        dropped: s.dropped.iter().map(packet_to).collect(),
        suspicions: s.suspicions.iter().map(suspicion_to).collect(),
    }
}

pub(crate) fn error_from(e: wt::Error) -> Error {
    match e {
        wt::Error::Unavailable(m) => Error::Unavailable(m),
        wt::Error::Invalid(m) => Error::Invalid(m),
        wt::Error::Internal(m) => Error::Internal(m),
    }
}

pub(crate) fn error_to(e: Error) -> wt::Error {
    match e {
        Error::Unavailable(m) => wt::Error::Unavailable(m),
        Error::Invalid(m) => wt::Error::Invalid(m),
        Error::Internal(m) => wt::Error::Internal(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_cross_the_boundary_unchanged() {
        for l in [Level::Info, Level::Warning, Level::Critical, Level::Fatal] {
            assert_eq!(level_from(level_to(l)), l);
        }
        assert!(Level::Info < Level::Warning && Level::Critical < Level::Fatal);
        for p in [
            Protocol::Tcp,
            Protocol::Udp,
            Protocol::Icmp,
            Protocol::Sctp,
            Protocol::Icmpv6,
        ] {
            assert_eq!(protocol_from(protocol_to(p)), p);
        }
        for k in [
            LinkKind::Veth,
            LinkKind::Vxlan,
            LinkKind::Ipip,
            LinkKind::Wireguard,
            LinkKind::Ipvlan,
            LinkKind::Macvlan,
            LinkKind::Vlan,
            LinkKind::Underlay,
            LinkKind::Local,
            LinkKind::External,
            LinkKind::Other,
        ] {
            assert_eq!(link_kind_from(&link_kind_to(k)), k);
        }
        for a in [
            ActionKind::Send,
            ActionKind::Forward,
            ActionKind::Serve,
            ActionKind::Drop,
            ActionKind::Unknown,
        ] {
            assert_eq!(action_kind_from(action_kind_to(a)), a);
        }
        for m in [
            ProxyMode::Iptables,
            ProxyMode::Ipvs,
            ProxyMode::Nftables,
            ProxyMode::None,
        ] {
            assert_eq!(proxy_mode_from(proxy_mode_to(m)), m);
        }
    }

    #[test]
    fn packets_and_settings_cross_the_boundary_unchanged() {
        let p = Packet {
            src: Ipv4Addr::new(10, 244, 0, 5),
            sport: EPHEMERAL_PORT,
            dst: Ipv4Addr::new(10, 244, 1, 7),
            dport: 8080,
            protocol: Protocol::Udp,
            mark: 0x4000,
            encap: Some(Encap {
                kind: EncapKind::Vxlan,
                src: Ipv4Addr::new(192, 168, 0, 11),
                dst: Ipv4Addr::new(192, 168, 0, 12),
                vni: Some(1),
                port: Some(8472),
            }),
            reply: true,
            tos: 0x10,
            size: 1450,
            icmp: None,
        };
        assert_eq!(packet_from(&packet_to(&p)).unwrap(), p);
        let s = settings_from(&wc::Settings {
            network_plugin: "flannel".into(),
            cloud_provider: "generic".into(),
            proxy_mode: wc::ProxyMode::Ipvs,
            cluster_cidrs: vec![wt::IpPrefix {
                address: ip_to(Ipv4Addr::new(10, 244, 0, 0)),
                prefix_len: 16,
            }],
            family: wt::IpFamily::Ipv4,
        });
        assert_eq!(s.proxy_mode, ProxyMode::Ipvs);
        assert_eq!(s.cluster_cidr, Some("10.244.0.0/16".parse().unwrap()));
        let plan = network_plan_to(NetworkPlan {
            plugin: "flannel".into(),
            proxy_mode: ProxyMode::Iptables,
            infra_shim: true,
        });
        assert!(plan.infra_shim && plan.proxy_mode == wc::ProxyMode::Iptables);
    }
}
