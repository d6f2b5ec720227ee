//! The node dump: what `skoop collect` writes for one node and a bundle holds
//! under `nodes/<node>.json`. Plain data, versioned; the simulation reads it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub use crate::netfilter::{RulesText, read_shared};

/// How an `absent` reason begins when the section was in the dump but could
/// not be read (then left out), rather than never collected.
pub const UNREADABLE: &str = "could not be read: ";

/// The dump format this build reads and writes.
pub const DUMP_VERSION: u32 = 1;

/// One node: its host netns and the netns of the pods on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDump {
    /// Must equal [`DUMP_VERSION`].
    pub version: u32,
    /// Node name, as in the cluster.
    pub node: String,
    /// The node's host network namespace.
    pub host: NetnsDump,
    /// Pod network namespaces on this node.
    #[serde(default)]
    pub pods: Vec<PodNetns>,
}

/// A pod's network namespace, keyed by the pod.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodNetns {
    pub namespace: String,
    pub name: String,
    pub netns: NetnsDump,
}

/// Everything collected from one network namespace.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetnsDump {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    /// Routes of every table.
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub neighbours: Vec<Neighbour>,
    #[serde(default)]
    pub fdb: Vec<FdbEntry>,
    /// Sysctls by dotted name, e.g. `net.ipv4.ip_forward`.
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    /// `iptables-save` output (IPv4), as text; shared with the parsed
    /// [`Ruleset`](crate::netfilter::Ruleset), which keeps rule lines as
    /// spans of it rather than a second copy of many megabytes. Read from
    /// JSON it stays escaped until a rule is read (see [`RulesText`]).
    #[serde(default)]
    pub iptables: Option<RulesText>,
    /// `ipset save` output, as text.
    #[serde(default)]
    pub ipsets: Option<String>,
    /// `nft -j list ruleset` output, the JSON text as nft printed it (read
    /// when a walk first needs it); None when nft printed nothing or the
    /// dump predates nftables collection (`absent` says when nft failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nft: Option<String>,
    /// `nft list chains`: the chain headers as nft prints them, read for
    /// the devices of ingress chains, which `nft -j` leaves out of its JSON
    /// (nft 1.0.6 does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nft_chains: Option<String>,
    /// Listening sockets.
    #[serde(default)]
    pub sockets: Vec<Socket>,
    /// IPVS virtual services; `None` when the kernel has no IPVS (see `absent`).
    #[serde(default)]
    pub ipvs: Option<Vec<IpvsService>>,
    /// Facts that could not be collected, by fact name (`iptables`, `ipset`,
    /// `ipvs`, `sockets`, ...), with the reason.
    #[serde(default)]
    pub absent: BTreeMap<String, String>,
}

/// A network interface.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    pub index: u32,
    pub name: String,
    /// Driver kind: device, loopback, veth, bridge, vxlan, ipip, dummy, ...
    pub kind: String,
    pub mtu: u32,
    /// IFF_UP.
    pub admin_up: bool,
    /// Operational state as the kernel reports it: UP, DOWN, UNKNOWN, LOWERLAYERDOWN, ...
    pub oper_state: String,
    #[serde(default)]
    pub master: Option<String>,
    /// For a veth, the ifindex of its peer.
    #[serde(default)]
    pub peer_index: Option<u32>,
    /// For a veth whose peer is in another network namespace, that
    /// namespace's id as this one knows it (`link-netnsid`); None: the peer
    /// is in the same namespace, or the collector did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_netnsid: Option<i32>,
    /// Addresses as CIDR strings, e.g. `10.244.1.1/24`.
    #[serde(default)]
    pub addresses: Vec<Ipv4Net>,
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub vxlan: Option<Vxlan>,
    /// The device this one is stacked on (a VLAN's, macvlan's or ipvlan's
    /// parent), by name in the node's host netns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// For a bridge port, its hairpin flag (`bridge link`); None: not a port,
    /// or not collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hairpin: Option<bool>,
    /// Point-to-point tunnel attributes (ipip, gre, sit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<Tunnel>,
    /// WireGuard attributes (`wg show DEV dump`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<Wireguard>,
}

/// A point-to-point tunnel's endpoints (`ip -d link`: `local A remote B`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tunnel {
    #[serde(default)]
    pub local: Option<Ipv4Addr>,
    #[serde(default)]
    pub remote: Option<Ipv4Addr>,
}

/// A WireGuard device's own port and its peers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wireguard {
    pub listen_port: u16,
    /// The fwmark its own UDP packets carry (Calico: 0x100000).
    #[serde(default)]
    pub fwmark: u32,
    #[serde(default)]
    pub peers: Vec<WireguardPeer>,
}

/// One WireGuard peer: where it is and which inner addresses go to it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireguardPeer {
    pub public_key: String,
    #[serde(default)]
    pub endpoint: Option<(Ipv4Addr, u16)>,
    #[serde(default)]
    pub allowed_ips: Vec<Ipv4Net>,
}

impl Interface {
    /// Operationally up: state UP, or UNKNOWN with IFF_UP (loopback, tunnels).
    pub fn oper_up(&self) -> bool {
        self.admin_up && matches!(self.oper_state.as_str(), "UP" | "UNKNOWN")
    }
}

/// VXLAN device attributes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vxlan {
    pub id: u32,
    #[serde(default = "default_vxlan_port")]
    pub port: u16,
    #[serde(default)]
    pub local: Option<Ipv4Addr>,
    #[serde(default)]
    pub dev: Option<String>,
}

fn default_vxlan_port() -> u16 {
    8472
}

/// A route of any table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Table id: 255 local, 254 main, 253 default, others custom.
    #[serde(default = "main_table")]
    pub table: u32,
    /// unicast, local, broadcast, blackhole, unreachable, prohibit, throw.
    #[serde(default = "unicast", rename = "type")]
    pub kind: String,
    /// Destination prefix (`0.0.0.0/0` for default).
    pub dst: Ipv4Net,
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub dev: Option<String>,
    /// host, link, universe (default).
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub proto: Option<String>,
    #[serde(default)]
    pub metric: u32,
    #[serde(default)]
    pub prefsrc: Option<Ipv4Addr>,
    #[serde(default)]
    pub onlink: bool,
    /// ECMP next hops; when present, `gateway`/`dev` are unused.
    #[serde(default)]
    pub nexthops: Vec<NextHop>,
}

/// One next hop of a multipath route.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextHop {
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    pub dev: String,
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default)]
    pub onlink: bool,
}

fn main_table() -> u32 {
    254
}
fn unicast() -> String {
    "unicast".to_string()
}
fn one() -> u32 {
    1
}

/// A policy routing rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub priority: u32,
    #[serde(default)]
    pub not: bool,
    #[serde(default)]
    pub from: Option<Ipv4Net>,
    #[serde(default)]
    pub to: Option<Ipv4Net>,
    #[serde(default)]
    pub fwmark: Option<u32>,
    #[serde(default)]
    pub fwmask: Option<u32>,
    #[serde(default)]
    pub iif: Option<String>,
    #[serde(default)]
    pub oif: Option<String>,
    #[serde(default)]
    pub tos: Option<u8>,
    /// lookup (default), goto, blackhole, unreachable, prohibit.
    #[serde(default = "lookup")]
    pub action: String,
    /// The table, for `lookup`.
    #[serde(default)]
    pub table: Option<u32>,
    /// The target priority, for `goto`.
    #[serde(default)]
    pub goto: Option<u32>,
}

fn lookup() -> String {
    "lookup".to_string()
}

/// A neighbour (ARP) entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neighbour {
    pub ip: Ipv4Addr,
    pub dev: String,
    #[serde(default)]
    pub lladdr: Option<String>,
    /// PERMANENT, REACHABLE, STALE, DELAY, PROBE, FAILED, INCOMPLETE, NOARP.
    pub state: String,
}

/// A forwarding database entry: a bridge's (port by MAC) or a VXLAN
/// device's (remote VTEP by MAC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FdbEntry {
    pub mac: String,
    pub dev: String,
    #[serde(default)]
    pub dst: Option<Ipv4Addr>,
    #[serde(default)]
    pub master: Option<String>,
    /// The VXLAN VNI, when the entry sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    /// The VXLAN UDP port, when the entry sets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `self`, `master`, `permanent`, `static`, `extern_learn`, as `bridge fdb` prints them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// An IPVS virtual service (`ipvsadm -Ln`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpvsService {
    /// tcp, udp or sctp; `None` for a firewall-mark service.
    #[serde(default)]
    pub protocol: Option<String>,
    /// Virtual address (none for a firewall-mark service).
    #[serde(default)]
    pub address: Option<Ipv4Addr>,
    #[serde(default)]
    pub port: Option<u16>,
    /// Firewall mark, for fwmark services.
    #[serde(default)]
    pub fwmark: Option<u32>,
    /// Scheduler: rr, wrr, lc, sh, ...
    pub scheduler: String,
    #[serde(default)]
    pub real_servers: Vec<IpvsRealServer>,
}

/// An IPVS real server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpvsRealServer {
    pub address: Ipv4Addr,
    pub port: u16,
    pub weight: u32,
    /// Masq (NAT), Route (DR), Tunnel.
    #[serde(default = "masq")]
    pub forward: String,
}

fn masq() -> String {
    "Masq".to_string()
}

/// A listening socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Socket {
    /// tcp or udp.
    pub protocol: String,
    /// Bound address; `0.0.0.0` for any.
    pub ip: Ipv4Addr,
    pub port: u16,
}
