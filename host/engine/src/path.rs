//! The path model: net-nodes, the links between them and what each node did.

use std::fmt;

use serde::Serialize;

use crate::packet::Packet;
use crate::suspicion::Level;

/// Kinds of net-node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Pod,
    Node,
    External,
}

/// A net-node: pods `namespace/name`, nodes by name, external by address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct HopId {
    #[serde(rename = "type")]
    pub kind: NodeKind,
    pub id: String,
}

impl fmt::Display for HopId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            NodeKind::Pod => "pod",
            NodeKind::Node => "node",
            NodeKind::External => "external",
        };
        write!(f, "{kind} {}", self.id)
    }
}

/// Kinds of link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    Veth,
    Vxlan,
    Ipip,
    Infra,
    Local,
    External,
}

/// What a net-node did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Send,
    Forward,
    Serve,
    Drop,
    /// The hop could not tell: facts were missing.
    Unknown,
}

/// A packet leaving a net-node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tx {
    pub next: HopId,
    pub kind: LinkKind,
    pub packet: Packet,
    pub oif: Option<String>,
    pub iif: Option<String>,
    /// The L2 neighbour address the sender resolved (gateway or on-link destination).
    pub next_hop_address: Option<std::net::Ipv4Addr>,
}

/// What an extension answered for one hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub transmissions: Vec<Tx>,
    /// Packets of branches that end here while others go on.
    pub dropped: Vec<Packet>,
    pub findings: Vec<Finding>,
}

/// A finding as an extension reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub message: String,
    /// The net-node it is about, when not the reporting one.
    pub about: Option<String>,
}
