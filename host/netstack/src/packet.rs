//! The host's own packet model (the WIT `packet` converted at the boundary).

use std::fmt;
use std::net::Ipv4Addr;

use serde::Serialize;

/// Transport protocol of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Sctp,
    /// IP-in-IP: the outer packet of a tunnel, never a flow's own protocol.
    Ipip,
}

impl Protocol {
    /// The name iptables and ss use.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Sctp => "sctp",
            Protocol::Ipip => "ipip",
        }
    }

    /// IANA protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Icmp => 1,
            Protocol::Sctp => 132,
            Protocol::Ipip => 4,
        }
    }

    /// The name Kubernetes objects use (`TCP`, `UDP`, `SCTP`; the others
    /// upper-cased likewise).
    pub fn kubernetes_name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Icmp => "ICMP",
            Protocol::Sctp => "SCTP",
            Protocol::Ipip => "IPIP",
        }
    }

    /// A protocol a Kubernetes port may name: `TCP`, `UDP` or `SCTP` (any case).
    pub fn parse_kubernetes(s: &str) -> Option<Protocol> {
        Protocol::parse(s).filter(|p| matches!(p, Protocol::Tcp | Protocol::Udp | Protocol::Sctp))
    }

    /// Parses `tcp`, `udp`, `icmp`, `sctp` (any case).
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "icmp" => Some(Protocol::Icmp),
            "sctp" => Some(Protocol::Sctp),
            "ipip" | "ipencap" => Some(Protocol::Ipip),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Overlay header kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EncapKind {
    Vxlan,
    Ipip,
    Wireguard,
}

impl EncapKind {
    /// The kernel's link kind of the device that does it.
    pub fn name(self) -> &'static str {
        match self {
            EncapKind::Vxlan => "vxlan",
            EncapKind::Ipip => "ipip",
            EncapKind::Wireguard => "wireguard",
        }
    }
}

/// The outer header of an encapsulated packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Encap {
    pub kind: EncapKind,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    /// The outer UDP destination port of VXLAN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// A packet of the diagnosed flow at one point of its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Packet {
    pub src: Ipv4Addr,
    pub sport: u16,
    pub dst: Ipv4Addr,
    pub dport: u16,
    pub protocol: Protocol,
    /// skb->mark.
    pub mark: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encap: Option<Encap>,
    /// The reply direction of the flow (conntrack ESTABLISHED); NAT tables are not consulted.
    pub reply: bool,
    /// The IP TOS byte (`ip rule … tos`, `-m tos`, set by the TOS/DSCP targets).
    #[serde(skip_serializing_if = "is_zero")]
    pub tos: u8,
    /// The size in bytes of the (inner) IP packet: a diagnosis sends full-size
    /// packets, as large as the path's ends let it; 0 when not known.
    #[serde(skip_serializing_if = "is_zero32")]
    pub size: u32,
    /// For ICMP: the message's type and code; None: not known (any type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp: Option<Icmp>,
}

/// An ICMP message's type and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Icmp {
    #[serde(rename = "type")]
    pub kind: u8,
    pub code: u8,
}

impl Icmp {
    /// Destination unreachable, fragmentation needed (RFC 1191): what a
    /// router answers a DF packet larger than the next link's MTU with.
    pub const FRAG_NEEDED: Icmp = Icmp { kind: 3, code: 4 };

    /// An error message (destination unreachable, source quench, redirect,
    /// time exceeded, parameter problem): conntrack files it as RELATED to
    /// the connection whose header it quotes.
    pub fn is_error(self) -> bool {
        matches!(self.kind, 3 | 4 | 5 | 11 | 12)
    }

    /// As iptables names it (`--icmp-type`), else `type/code`.
    pub fn name(self) -> String {
        match (self.kind, self.code) {
            (0, 0) => "echo-reply".into(),
            (8, 0) => "echo-request".into(),
            (3, 4) => "fragmentation-needed".into(),
            (3, 3) => "port-unreachable".into(),
            (3, 1) => "host-unreachable".into(),
            (11, 0) => "ttl-zero-during-transit".into(),
            (k, c) => format!("{k}/{c}"),
        }
    }
}

fn is_zero32(v: &u32) -> bool {
    *v == 0
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

impl Packet {
    /// The 5-tuple with ports, e.g. `10.244.1.5:40000 -> 10.96.0.10:80/tcp`.
    pub fn tuple(&self) -> String {
        if let Some(m) = self.icmp {
            return format!("{} -> {} icmp {}", self.src, self.dst, m.name());
        }
        format!(
            "{}:{} -> {}:{}/{}",
            self.src, self.sport, self.dst, self.dport, self.protocol
        )
    }
}

impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.tuple())?;
        if self.mark != 0 {
            write!(f, " mark {:#x}", self.mark)?;
        }
        if let Some(e) = &self.encap {
            write!(f, " in {} {} -> {}", e.kind.name(), e.src, e.dst)?;
        }
        Ok(())
    }
}
