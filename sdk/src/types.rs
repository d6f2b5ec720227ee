//! Plain Rust types for what crosses the host boundary, with conversions to
//! and from the generated WIT types.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::cni::skoop::extension::{cluster as wc, types as wt};
use crate::{Error, Result};

pub use wt::{ActionKind, EncapKind, Level, LinkKind, NetNodeKind, Protocol};

/// How Services are implemented.
pub use wc::ProxyMode;
/// Cluster-wide settings of this diagnosis.
pub use wc::Settings;

/// The wiring a provider chooses for a diagnosis.
pub use crate::provider::exports::skoop::extension::provider::NetworkPlan;

/// The ephemeral source port skoop uses for simulated clients.
pub const EPHEMERAL_PORT: u16 = 40000;

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspicion {
    pub level: Level,
    pub message: String,
    /// The net-node the finding is about, when not the reporting one.
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

    /// The finding is about another net-node (a node by name, a pod as `ns/name`).
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
}

impl Pod {
    /// `namespace/name`, the pod's net-node id.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The pod as a hop.
    pub fn hop(&self) -> Hop {
        if self.host_network {
            Hop::node(&self.node)
        } else {
            Hop::pod(&self.id())
        }
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
    /// The node as a hop.
    pub fn hop(&self) -> Hop {
        Hop::node(&self.name)
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

/// What an address is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Pod(Pod),
    Node(Node),
    Service(Service),
    External(Ipv4Addr),
}

/// A net-node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub kind: NetNodeKind,
    pub id: String,
}

impl Hop {
    pub fn pod(id: &str) -> Hop {
        Hop {
            kind: NetNodeKind::Pod,
            id: id.to_string(),
        }
    }
    pub fn node(name: &str) -> Hop {
        Hop {
            kind: NetNodeKind::Node,
            id: name.to_string(),
        }
    }
    pub fn external(ip: Ipv4Addr) -> Hop {
        Hop {
            kind: NetNodeKind::External,
            id: ip.to_string(),
        }
    }
}

/// A packet leaving a net-node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmission {
    pub next_hop: Hop,
    pub kind: LinkKind,
    pub packet: Packet,
    pub oif: Option<String>,
    pub iif: Option<String>,
    /// The L2 neighbour address it is sent to (route gateway, or the destination on-link).
    pub next_hop_address: Option<Ipv4Addr>,
}

impl Transmission {
    /// A transmission to `next_hop` over a link of `kind`, with no interfaces named.
    pub fn new(next_hop: Hop, kind: LinkKind, packet: Packet) -> Transmission {
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
    pub source: Hop,
    pub kind: LinkKind,
    pub packet: Packet,
    pub oif: Option<String>,
    pub iif: Option<String>,
    /// The L2 neighbour address the sender resolved, if known.
    pub next_hop_address: Option<Ipv4Addr>,
}

/// What a net-node did with a packet.
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

    /// Attach findings.
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

pub(crate) fn ip_from(ip: &wt::IpAddress) -> Result<Ipv4Addr> {
    match ip {
        wt::IpAddress::Ipv4((a, b, c, d)) => Ok(Ipv4Addr::new(*a, *b, *c, *d)),
        wt::IpAddress::Ipv6(_) => Err(Error::Invalid("IPv6 is not supported yet".into())),
    }
}

pub(crate) fn ip_to(ip: Ipv4Addr) -> wt::IpAddress {
    let [a, b, c, d] = ip.octets();
    wt::IpAddress::Ipv4((a, b, c, d))
}

pub(crate) fn prefix_from(p: &wt::IpPrefix) -> Result<Ipv4Net> {
    Ipv4Net::new(ip_from(&p.address)?, p.prefix_len)
        .map_err(|e| Error::Invalid(format!("bad prefix: {e}")))
}

pub(crate) fn packet_from(p: &wt::Packet) -> Result<Packet> {
    Ok(Packet {
        src: ip_from(&p.src)?,
        sport: p.sport,
        dst: ip_from(&p.dst)?,
        dport: p.dport,
        protocol: p.protocol,
        mark: p.mark,
        encap: match &p.encap {
            Some(e) => Some(Encap {
                kind: e.kind,
                src: ip_from(&e.src)?,
                dst: ip_from(&e.dst)?,
                vni: e.vni,
                port: e.port,
            }),
            None => None,
        },
        reply: p.reply,
        tos: p.tos,
    })
}

pub(crate) fn packet_to(p: &Packet) -> wt::Packet {
    wt::Packet {
        src: ip_to(p.src),
        sport: p.sport,
        dst: ip_to(p.dst),
        dport: p.dport,
        protocol: p.protocol,
        mark: p.mark,
        encap: p.encap.map(|e| wt::Encapsulation {
            kind: e.kind,
            src: ip_to(e.src),
            dst: ip_to(e.dst),
            vni: e.vni,
            port: e.port,
        }),
        reply: p.reply,
        tos: p.tos,
    }
}

pub(crate) fn pod_from(p: &wt::PodInfo) -> Result<Pod> {
    Ok(Pod {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        ip: ip_from(&p.ip)?,
        node: p.node.clone(),
        host_network: p.host_network,
        ready: p.ready,
        phase: p.phase.clone(),
        ports: p.ports.clone(),
    })
}

pub(crate) fn node_from(n: &wt::NodeInfo) -> Result<Node> {
    Ok(Node {
        name: n.name.clone(),
        ip: ip_from(&n.ip)?,
        pod_cidrs: n.pod_cidrs.iter().map(prefix_from).collect::<Result<_>>()?,
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
        cluster_ips: s.cluster_ips.iter().map(ip_from).collect::<Result<_>>()?,
        ports: s
            .ports
            .iter()
            .map(|p| ServicePort {
                name: p.name.clone(),
                protocol: p.protocol,
                port: p.port,
                node_port: p.node_port,
            })
            .collect(),
    })
}

pub(crate) fn endpoint_from(e: &wt::Endpoint) -> Result<Endpoint> {
    Ok(match e {
        wt::Endpoint::Pod(p) => Endpoint::Pod(pod_from(p)?),
        wt::Endpoint::Node(n) => Endpoint::Node(node_from(n)?),
        wt::Endpoint::Service(s) => Endpoint::Service(service_from(s)?),
        wt::Endpoint::External(ip) => Endpoint::External(ip_from(ip)?),
    })
}

pub(crate) fn hop_from(h: &wt::Hop) -> Hop {
    Hop {
        kind: h.kind,
        id: h.id.clone(),
    }
}

pub(crate) fn hop_to(h: &Hop) -> wt::Hop {
    wt::Hop {
        kind: h.kind,
        id: h.id.clone(),
    }
}

pub(crate) fn link_from(l: &wt::Link) -> Result<Link> {
    Ok(Link {
        source: hop_from(&l.source),
        kind: l.kind,
        packet: packet_from(&l.packet)?,
        oif: l.oif.clone(),
        iif: l.iif.clone(),
        next_hop_address: l.next_hop_address.as_ref().map(ip_from).transpose()?,
    })
}

pub(crate) fn suspicion_to(s: &Suspicion) -> wt::Suspicion {
    wt::Suspicion {
        level: s.level,
        message: s.message.clone(),
        about: s.about.clone(),
    }
}

pub(crate) fn suspicion_from(s: &wt::Suspicion) -> Suspicion {
    Suspicion {
        level: s.level,
        message: s.message.clone(),
        about: s.about.clone(),
    }
}

pub(crate) fn step_to(s: &NodeStep) -> wt::NodeStep {
    wt::NodeStep {
        action: s.action,
        transmissions: s
            .transmissions
            .iter()
            .map(|t| wt::Transmission {
                next_hop: hop_to(&t.next_hop),
                kind: t.kind,
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
