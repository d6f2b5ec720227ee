//! The path model: net-nodes, the links between them and what each node did.

use std::fmt;

use serde::Serialize;

use crate::suspicion::Suspicion;
use skoop_netstack::packet::Packet;

/// Kinds of net-node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetNodeKind {
    Pod,
    Node,
    External,
}

/// A net-node: pods `namespace/name`, nodes by name, external by address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NetNode {
    #[serde(rename = "type")]
    pub kind: NetNodeKind,
    pub id: String,
}

impl fmt::Display for NetNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            NetNodeKind::Pod => "pod",
            NetNodeKind::Node => "node",
            NetNodeKind::External => "external",
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
    Wireguard,
    Ipvlan,
    Macvlan,
    Vlan,
    /// The network between nodes (the cloud's), or between a node and the outside.
    Underlay,
    Local,
    External,
}

impl LinkKind {
    /// As reports name it.
    pub fn name(self) -> &'static str {
        match self {
            LinkKind::Veth => "veth",
            LinkKind::Vxlan => "vxlan",
            LinkKind::Ipip => "ipip",
            LinkKind::Wireguard => "wireguard",
            LinkKind::Ipvlan => "ipvlan",
            LinkKind::Macvlan => "macvlan",
            LinkKind::Vlan => "vlan",
            LinkKind::Underlay => "underlay",
            LinkKind::Local => "local",
            LinkKind::External => "external",
        }
    }

    /// The link a tunnel's packets cross.
    pub fn of_tunnel(kind: skoop_netstack::packet::EncapKind) -> LinkKind {
        use skoop_netstack::packet::EncapKind;
        match kind {
            EncapKind::Vxlan => LinkKind::Vxlan,
            EncapKind::Ipip => LinkKind::Ipip,
            EncapKind::Wireguard => LinkKind::Wireguard,
        }
    }
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
pub struct Transmission {
    pub next: NetNode,
    pub kind: LinkKind,
    pub packet: Packet,
    pub oif: Option<String>,
    pub iif: Option<String>,
    /// The L2 neighbour address the sender resolved (gateway or on-link destination).
    pub next_hop_address: Option<std::net::Ipv4Addr>,
    /// The destination MAC of a tunnelled frame (the sender's neighbour
    /// entry), which the receiving device must own.
    pub dst_mac: Option<String>,
    /// The device the (inner) packet left its net-node by and its MTU: a
    /// full-size packet above it needs path-MTU discovery.
    pub mtu: Option<(String, u32)>,
}

/// What an extension answered for one hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStep {
    pub action: Action,
    pub transmissions: Vec<Transmission>,
    /// Packets of branches that end here while others go on.
    pub dropped: Vec<Packet>,
    pub suspicions: Vec<Suspicion>,
}

/// What the kernel pipeline decided for one branch of a packet at a hop:
/// the route and the netfilter rules that matched, so a reader sees why the
/// packet went where it went (or was dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The netns the pipeline walked (`node-1`, `node-1/default/web-1`).
    pub netns: String,
    /// The packet as it entered the pipeline.
    pub packet: Packet,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iif: Option<String>,
    /// `deliver on eth0`, `transmit on eth0 to 192.168.0.12`, `drop: …`.
    pub fate: String,
    /// The packet as it left (after NAT).
    pub out: Packet,
    /// The route that decided, as `ip route` prints it, with its table and rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Every netfilter rule that matched, in order (`table chain #n: rule`).
    pub rules: Vec<String>,
    /// What the link layer decided after the pipeline (device, neighbour,
    /// FDB entry, veth peer, bridge port, encapsulation), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link: Vec<String>,
    /// The transmitting interface, for matching the decision to a link.
    #[serde(skip)]
    pub oif: Option<String>,
}

impl Decision {
    /// One decision per branch of a pipeline pass.
    pub fn of(
        netns: &str,
        q: &skoop_netstack::pipeline::ForwardQuery,
        branches: &[skoop_netstack::pipeline::Forwarded],
    ) -> Vec<Decision> {
        use skoop_netstack::pipeline::Fate;
        branches
            .iter()
            .map(|f| {
                let (fate, oif) = match &f.fate {
                    Fate::Deliver { iif } => (format!("deliver on {iif}"), None),
                    Fate::Transmit { oif, next_hop } => (
                        format!(
                            "{} on {oif} to {next_hop}",
                            if f.bridged { "bridge" } else { "transmit" }
                        ),
                        Some(oif.clone()),
                    ),
                    Fate::Drop(cause) => (format!("drop: {cause}"), None),
                };
                Decision {
                    netns: netns.to_string(),
                    packet: q.packet,
                    iif: q.iif.clone(),
                    fate,
                    out: f.packet,
                    route: f.route.as_ref().map(|r| {
                        if r.text.starts_with("ip rule") {
                            return r.text.clone();
                        }
                        let table = match r.table {
                            254 => "main".to_string(),
                            255 => "local".to_string(),
                            t => t.to_string(),
                        };
                        format!("{} (table {table}, rule {})", r.text, r.rule_priority)
                    }),
                    rules: f
                        .rules
                        .iter()
                        .map(|h| {
                            // The rule as iptables-save prints it, less its `-A CHAIN`.
                            let rule = h
                                .rule
                                .strip_prefix(&format!("-A {} ", h.chain))
                                .unwrap_or(&h.rule);
                            match (&h.family, h.handle) {
                                (Some(f), Some(handle)) => {
                                    format!("{f} {} {} handle {handle}: {rule}", h.table, h.chain)
                                }
                                (Some(f), None) => format!("{f} {} {} {rule}", h.table, h.chain),
                                (None, _) if h.index == 0 => {
                                    format!("{} {} policy {rule}", h.table, h.chain)
                                }
                                (None, _) => {
                                    format!("{} {} #{}: {rule}", h.table, h.chain, h.index)
                                }
                            }
                        })
                        .collect(),
                    link: vec![],
                    oif,
                }
            })
            .collect()
    }
}
