//! The link layer: where a frame goes once the pipeline has sent a packet out
//! of a device, as Linux decides it from the dumps.
//!
//! ```text
//! transmit on DEV to NEXT-HOP ─▶ veth       ─▶ the peer's netns, arriving on the peer
//!                             ─▶ bridge     ─▶ the port whose far end holds NEXT-HOP (neighbour
//!                                              entry → FDB entry, else who answers ARP); a frame
//!                                              bridged back out of the port it came in by needs
//!                                              the port's hairpin flag
//!                             ─▶ vxlan      ─▶ neighbour entry (MAC) → FDB entry (remote VTEP; the
//!                                              all-zero default entries flood) → outer UDP packet,
//!                                              which the same netns then sends as its own
//!                             ─▶ ipip       ─▶ outer IP-in-IP packet to the route's gateway
//!                             ─▶ wireguard  ─▶ the peer whose allowed-ips hold the destination →
//!                                              outer UDP packet to its endpoint
//!                             ─▶ macvlan, ipvlan, vlan ─▶ out of the parent device, onto the wire
//!                             ─▶ any other  ─▶ onto the wire, to NEXT-HOP (its neighbour entry)
//! ```
//!
//! and on the receiving side, [`decapsulate`]: a tunnel packet delivered to
//! this netns goes to the device that terminates it (VNI and port for VXLAN).
//! Every decision is a [`LinkStep`] the report shows; every failure a
//! [`LinkDrop`] naming the device or entry at fault. Who is on the other end
//! of the wire (another node, a router outside the cluster) is the caller's
//! question: it knows the cluster's addresses.

use std::fmt;
use std::net::Ipv4Addr;

use crate::dump::{FdbEntry, Interface, Neighbour};
use crate::packet::{Encap, EncapKind, Packet, Protocol};
use crate::{Netstack, NetstackError, Netstacks};

/// A network namespace of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NetnsId {
    /// A node's host netns, by node name.
    Node(String),
    /// A pod's netns: its node and `namespace/name`.
    Pod { node: String, pod: String },
}

impl NetnsId {
    /// The node whose kernel holds this netns.
    pub fn node(&self) -> &str {
        match self {
            NetnsId::Node(n) | NetnsId::Pod { node: n, .. } => n,
        }
    }

    /// As messages name it: `node node-1`, `pod default/web-1`.
    pub fn label(&self) -> String {
        match self {
            NetnsId::Node(n) => format!("node {n}"),
            NetnsId::Pod { pod, .. } => format!("pod {pod}"),
        }
    }
}

impl fmt::Display for NetnsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// The VXLAN header overhead (outer IPv4, UDP, VXLAN, inner Ethernet).
pub const VXLAN_OVERHEAD: u32 = 50;
/// The IP-in-IP header overhead.
pub const IPIP_OVERHEAD: u32 = 20;
/// The WireGuard overhead over IPv4 (outer IPv4, UDP, WireGuard header, tag).
pub const WIREGUARD_OVERHEAD: u32 = 60;
/// The UDP source port range VXLAN picks from by default (the local port range).
const VXLAN_SPORTS: (u16, u16) = (32768, 60999);
/// The all-zero MAC of a VXLAN device's default (flooding) FDB entries.
pub const FLOOD_MAC: &str = "00:00:00:00:00:00";

/// One decision of the link layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkStep {
    /// The device the packet left by (or arrived on), with its kind and MTU.
    Device { dev: String, kind: String, mtu: u32 },
    /// The neighbour entry that gave the next hop's link-layer address.
    Neighbour(Neighbour),
    /// No usable neighbour entry: the address is resolved by ARP; who
    /// answers. `was`: the state of the entry the dump holds when it is one
    /// the kernel asks again for (FAILED, INCOMPLETE).
    Resolved {
        dev: String,
        ip: Ipv4Addr,
        by: String,
        was: Option<String>,
    },
    /// The FDB entry that decided.
    Fdb(FdbEntry),
    /// The far end of a veth.
    VethPeer { netns: NetnsId, dev: String },
    /// The bridge port the frame leaves by.
    BridgePort { bridge: String, port: String },
    /// The packet was encapsulated by `dev`.
    Encapsulate { dev: String, encap: Encap },
    /// The tunnel packet was taken by `dev` and decapsulated.
    Decapsulate { dev: String },
    /// Anything else, as text.
    Other(String),
}

impl fmt::Display for LinkStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkStep::Device { dev, kind, mtu } => write!(f, "device {dev} ({kind}, mtu {mtu})"),
            LinkStep::Neighbour(n) => write!(
                f,
                "neighbour {} dev {}{} {}",
                n.ip,
                n.dev,
                n.lladdr
                    .as_ref()
                    .map(|m| format!(" lladdr {m}"))
                    .unwrap_or_default(),
                n.state
            ),
            LinkStep::Resolved { dev, ip, by, was: None } => write!(f, "ARP for {ip} on {dev}: {by}"),
            LinkStep::Resolved {
                dev,
                ip,
                by,
                was: Some(state),
            } => write!(f, "ARP for {ip} on {dev} (the entry was {state}, asked again): {by}"),
            LinkStep::Fdb(e) => write!(f, "fdb {}", fdb_text(e)),
            LinkStep::VethPeer { netns, dev } => write!(f, "veth peer {dev} in {netns}"),
            LinkStep::BridgePort { bridge, port } => write!(f, "bridge {bridge} port {port}"),
            LinkStep::Encapsulate { dev, encap } => {
                write!(f, "{dev} encapsulates: {}", encap_text(encap))
            }
            LinkStep::Decapsulate { dev } => write!(f, "{dev} decapsulates"),
            LinkStep::Other(s) => f.write_str(s),
        }
    }
}

/// An FDB entry as `bridge fdb` prints it.
pub fn fdb_text(e: &FdbEntry) -> String {
    let mut s = format!("{} dev {}", e.mac, e.dev);
    if let Some(d) = e.dst {
        s.push_str(&format!(" dst {d}"));
    }
    if let Some(m) = &e.master {
        s.push_str(&format!(" master {m}"));
    }
    for f in &e.flags {
        s.push(' ');
        s.push_str(f);
    }
    s
}

fn encap_text(e: &Encap) -> String {
    let mut s = format!("{} {} -> {}", e.kind.name(), e.src, e.dst);
    if let Some(v) = e.vni {
        s.push_str(&format!(" vni {v}"));
    }
    if let Some(p) = e.port {
        s.push_str(&format!(" port {p}"));
    }
    s
}

/// Why the link layer dropped a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkDrop {
    /// `device`, `neighbour`, `fdb`, `bridge`, `tunnel`, `unavailable`.
    pub kind: &'static str,
    /// A sentence naming the device or entry that decided.
    pub message: String,
    /// The netns at fault when it is not the sender's (a veth's far end that
    /// does not answer ARP).
    pub about: Option<NetnsId>,
}

impl fmt::Display for LinkDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Where a frame went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEnd {
    /// Into another netns of the same node, arriving on `iif`.
    Netns { to: NetnsId, iif: String },
    /// Encapsulated by a tunnel device: the outer packet (`packet` with
    /// [`Packet::encap`] set) now leaves this netns as a packet of its own;
    /// `outer` is that packet as the pipeline walks it.
    Encapsulated {
        tunnel: String,
        packet: Packet,
        outer: Packet,
        /// The inner frame's destination MAC (a VXLAN neighbour's), which the
        /// receiving device must own.
        dst_mac: Option<String>,
    },
    /// Onto the wire beyond this netns: out of `oif` (in `netns`, which
    /// differs from the sender's for a pod's macvlan/ipvlan) to the L2 next
    /// hop.
    Wire {
        netns: NetnsId,
        oif: String,
        next_hop: Ipv4Addr,
    },
    /// Dropped at the link layer.
    Dropped(LinkDrop),
}

/// One way a frame went (several: flooded to more than one VTEP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carriage {
    pub steps: Vec<LinkStep>,
    pub end: LinkEnd,
}

impl Carriage {
    fn to(steps: Vec<LinkStep>, end: LinkEnd) -> Carriage {
        Carriage { steps, end }
    }

    fn dropped(steps: Vec<LinkStep>, kind: &'static str, message: String) -> Carriage {
        Carriage {
            steps,
            end: LinkEnd::Dropped(LinkDrop {
                kind,
                message,
                about: None,
            }),
        }
    }
}

/// What the link layer is asked: `packet` leaves `from` by `oif` toward the
/// L2 next hop `next_hop`.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    pub from: &'a NetnsId,
    pub oif: &'a str,
    pub next_hop: Ipv4Addr,
    pub packet: Packet,
    /// The bridge port the frame came in by, when the pipeline bridged it
    /// (the hairpin rule applies on the way out).
    pub ingress_port: Option<&'a str>,
}

/// A neighbour entry the kernel does not use as it is but resolves again.
fn unresolved(n: &Neighbour) -> bool {
    matches!(n.state.as_str(), "FAILED" | "INCOMPLETE")
}

/// Follow a transmitted frame one link further. Where the dump holds a
/// FAILED or INCOMPLETE entry for the next hop, the kernel asks again: the
/// answer (or why none comes) decides, and the entry's state is noted.
pub fn carry(stacks: &Netstacks, frame: &Frame) -> Vec<Carriage> {
    let mut out = carry_frame(stacks, frame);
    let stale = stacks
        .netns(frame.from)
        .ok()
        .and_then(|s| s.neighbour(frame.oif, frame.next_hop).ok().flatten())
        .filter(|n| unresolved(n));
    if let Some(n) = stale {
        for c in &mut out {
            let mut noted = false;
            for step in &mut c.steps {
                if let LinkStep::Resolved { ip, was, .. } = step
                    && *ip == frame.next_hop
                {
                    *was = Some(n.state.clone());
                    noted = true;
                }
            }
            if !noted && !matches!(c.end, LinkEnd::Dropped(_)) {
                c.steps.push(LinkStep::Resolved {
                    dev: frame.oif.to_string(),
                    ip: frame.next_hop,
                    by: "asked again on the link".into(),
                    was: Some(n.state.clone()),
                });
            }
            if let LinkEnd::Dropped(d) = &mut c.end
                && d.kind != "unavailable"
            {
                d.message = format!(
                    "{}'s neighbour entry for {} on {} is {}, and asked again: {}",
                    frame.from, frame.next_hop, frame.oif, n.state, d.message
                );
            }
        }
    }
    out
}

fn carry_frame(stacks: &Netstacks, frame: &Frame) -> Vec<Carriage> {
    let stack = match stacks.netns(frame.from) {
        Ok(s) => s,
        Err(e) => return vec![unavailable(vec![], &e)],
    };
    let Some(dev) = stack.interface(frame.oif) else {
        if stack.absent("interfaces").is_err() {
            // The pipeline already said it could not check the devices.
            return vec![Carriage::to(
                vec![],
                LinkEnd::Wire {
                    netns: frame.from.clone(),
                    oif: frame.oif.to_string(),
                    next_hop: frame.next_hop,
                },
            )];
        }
        return vec![Carriage::dropped(
            vec![],
            "device",
            format!("interface {} of {} does not exist", frame.oif, frame.from),
        )];
    };
    let steps = vec![device_step(dev)];
    match dev.kind.as_str() {
        "veth" => vec![over_veth(stacks, stack, frame, dev, steps)],
        "bridge" => over_bridge(stacks, stack, frame, dev, steps),
        "vxlan" => over_vxlan(stack, frame, dev, steps),
        "ipip" => vec![over_ipip(stack, frame, dev, steps)],
        "wireguard" => vec![over_wireguard(frame, dev, steps)],
        "macvlan" | "ipvlan" | "vlan" | "macvtap" | "ipvtap" => {
            vec![over_parent(stacks, stack, frame, dev, steps)]
        }
        // Loopback hands the packet back to this netns, which takes only
        // its own addresses from it.
        "loopback" if stack.is_local(frame.packet.dst) => vec![Carriage::to(
            steps,
            LinkEnd::Netns {
                to: frame.from.clone(),
                iif: dev.name.clone(),
            },
        )],
        "loopback" => vec![Carriage::dropped(
            steps,
            "device",
            format!(
                "{} sends the {} for {} out of {}, the loopback device, which only delivers to the netns's own addresses: it is dropped",
                frame.from,
                if frame.packet.reply { "reply" } else { "request" },
                frame.packet.dst,
                dev.name
            ),
        )],
        _ => vec![onto_wire(stack, frame, frame.from.clone(), dev, steps)],
    }
}

fn device_step(dev: &Interface) -> LinkStep {
    LinkStep::Device {
        dev: dev.name.clone(),
        kind: dev.kind.clone(),
        mtu: dev.mtu,
    }
}

fn unavailable(steps: Vec<LinkStep>, e: &NetstackError) -> Carriage {
    Carriage::dropped(steps, "unavailable", e.to_string())
}

/// The neighbour entry for `ip` on `dev`: `Ok(Some)` usable, `Ok(None)`
/// none or one the kernel resolves again (FAILED, INCOMPLETE: by ARP), `Err`
/// one that cannot be used (no address) or not collected.
fn neighbour<'s>(
    stack: &'s Netstack,
    from: &NetnsId,
    dev: &str,
    ip: Ipv4Addr,
) -> Result<Option<&'s Neighbour>, LinkDrop> {
    let n = match stack.neighbour(dev, ip) {
        Ok(n) => n,
        Err(e) => {
            return Err(LinkDrop {
                kind: "unavailable",
                message: e.to_string(),
                about: None,
            });
        }
    };
    match n {
        // The kernel asks again for such an entry when a packet needs it
        // (`carry` says what the dump's entry was).
        Some(n) if unresolved(n) => Ok(None),
        Some(n) if n.lladdr.is_none() && n.state != "NOARP" => Err(LinkDrop {
            kind: "neighbour",
            message: format!(
                "{from}'s neighbour entry for {ip} on {dev} ({}) has no MAC: the frame cannot be addressed",
                n.state
            ),
            about: None,
        }),
        other => Ok(other),
    }
}

/// Whether the netns on the far end of a link answers ARP for `ip` on its
/// device `dev`: it holds the address, or proxies ARP for it (proxy_arp on
/// the device and a route to `ip` out of another device).
fn answers_arp(stack: &Netstack, dev: &str, ip: Ipv4Addr) -> Result<String, String> {
    if stack.is_local(ip) {
        return Ok(format!("{} holds {ip}", stack.label));
    }
    let key = |d: &str| format!("net.ipv4.conf.{d}.proxy_arp");
    let on = |v: Option<&str>| v.is_some_and(|v| v.trim() == "1");
    let proxy = on(stack.sysctl(&key("all"))) || on(stack.sysctl(&key(dev)));
    if !proxy {
        let value = stack
            .sysctl(&key(dev))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "not collected".into());
        return Err(format!(
            "{} neither holds {ip} nor proxies ARP on {dev} (net.ipv4.conf.{dev}.proxy_arp is {value})",
            stack.label
        ));
    }
    // arp_process answers for another host only where the device forwards.
    let forwarding = stack
        .sysctl(&format!("net.ipv4.conf.{dev}.forwarding"))
        .map(|v| (format!("net.ipv4.conf.{dev}.forwarding"), v))
        .or_else(|| {
            stack
                .sysctl("net.ipv4.ip_forward")
                .map(|v| ("net.ipv4.ip_forward".to_string(), v))
        });
    if let Some((key, value)) = forwarding
        && value.trim() == "0"
    {
        return Err(format!(
            "{} proxies ARP on {dev} but does not forward ({key} is 0), so it does not answer for {ip}",
            stack.label
        ));
    }
    let q = crate::RouteQuery {
        dst: Some(ip),
        src: None,
        iif: Some(dev.to_string()),
        mark: 0,
    };
    let routed_away = stack
        .route(&q)
        .map(|hits| {
            hits.iter().any(|h| {
                h.kind == crate::RouteKind::Unicast && h.dev.as_deref().is_some_and(|d| d != dev)
            })
        })
        .unwrap_or(true);
    if routed_away {
        Ok(format!("{} answers by proxy ARP on {dev}", stack.label))
    } else {
        Err(format!(
            "{} proxies ARP on {dev} but has no route for {ip} out of another device, so it does not answer",
            stack.label
        ))
    }
}

/// The far end of a veth: the netns holding the interface whose ifindex is
/// the peer's, and that names this one as its peer.
fn veth_peer<'s>(
    stacks: &'s Netstacks,
    from: &NetnsId,
    dev: &Interface,
) -> Result<Option<(NetnsId, &'s Netstack, &'s Interface)>, NetstackError> {
    let Some(peer_index) = dev.peer_index else {
        return Ok(None);
    };
    let node = from.node().to_string();
    match from {
        NetnsId::Pod { .. } => {
            let host = stacks.node(&node)?;
            if let Some(i) = host.interface_by_index(peer_index)
                && i.peer_index.is_none_or(|p| p == dev.index)
            {
                return Ok(Some((NetnsId::Node(node), host, i)));
            }
            Ok(None)
        }
        NetnsId::Node(_) => {
            // A pod's interface names the node's veth by its ifindex, which
            // is unique on the node; the pods' own ifindexes are not.
            for (pod, stack) in stacks.pods_of(&node)? {
                if let Some(i) = stack
                    .interfaces()
                    .iter()
                    .find(|i| i.peer_index == Some(dev.index) && dev.peer_index == Some(i.index))
                {
                    let id = NetnsId::Pod {
                        node: node.clone(),
                        pod: pod.to_string(),
                    };
                    return Ok(Some((id, stack, i)));
                }
            }
            // Both ends in the node's netns: only where the collector did
            // not say the peer is elsewhere (ifindexes repeat across netns).
            if dev.peer_netnsid.is_some() {
                return Ok(None);
            }
            let host = stacks.node(&node)?;
            Ok(host
                .interface_by_index(peer_index)
                .filter(|i| i.peer_index == Some(dev.index) && i.name != dev.name)
                .map(|i| (from.clone(), host, i)))
        }
    }
}

fn over_veth(
    stacks: &Netstacks,
    stack: &Netstack,
    frame: &Frame,
    dev: &Interface,
    mut steps: Vec<LinkStep>,
) -> Carriage {
    let (to, peer_stack, peer) = match veth_peer(stacks, frame.from, dev) {
        Ok(Some(p)) => p,
        Ok(None)
            if matches!(frame.from, NetnsId::Node(_))
                && (!dev.addresses.is_empty() || dev.peer_netnsid.is_some() && dev.master.is_none()) =>
        {
            // A node's uplink that is a veth (a kind or VM-in-netns node,
            // whose eth0's peer lives in the machine hosting it): its far end
            // is the network between the nodes. (A pod whose netns was not
            // collected is told apart by the walk, which knows the pods.)
            return Carriage::to(
                steps,
                LinkEnd::Wire {
                    netns: frame.from.clone(),
                    oif: frame.oif.to_string(),
                    next_hop: frame.next_hop,
                },
            );
        }
        Ok(None) => {
            let index = dev
                .peer_index
                .map(|i| format!(" (ifindex {i})"))
                .unwrap_or_default();
            return Carriage::dropped(
                steps,
                "device",
                format!(
                    "the veth peer{index} of {} in {} is not in any network namespace of node {} collected: the frame goes nowhere",
                    dev.name,
                    frame.from,
                    frame.from.node()
                ),
            );
        }
        Err(e) => return unavailable(steps, &e),
    };
    steps.push(LinkStep::VethPeer {
        netns: to.clone(),
        dev: peer.name.clone(),
    });
    if !peer.admin_up {
        return Carriage::dropped(
            steps,
            "device",
            format!(
                "the veth peer {} of {} in {} is down in {to} (ip link set {} up)",
                peer.name, dev.name, frame.from, peer.name
            ),
        );
    }
    if let Some(bridge) = &peer.master {
        // The frame enters the bridge the peer is a port of; the pipeline of
        // that netns decides whether it is bridged or routed.
        steps.push(LinkStep::Other(format!(
            "{} is a port of bridge {bridge}",
            peer.name
        )));
    }
    let resolved = match &peer.master {
        // The ARP broadcast floods the bridge: the bridge's own netns or the
        // far end of another port answers.
        Some(bridge) => resolve_on_bridge(stacks, stack, frame, dev, &to, peer_stack, bridge, &mut steps),
        None => resolve(stack, frame, dev, peer_stack, &peer.name, &mut steps),
    };
    if let Err((why, far_end)) = resolved {
        // Nothing answering ARP is the far end's doing; a FAILED entry of
        // the sender's own is the sender's.
        return Carriage {
            steps,
            end: LinkEnd::Dropped(LinkDrop {
                kind: "neighbour",
                message: why,
                about: far_end.then_some(to),
            }),
        };
    }
    Carriage::to(
        steps,
        LinkEnd::Netns {
            to,
            iif: peer.name.clone(),
        },
    )
}

/// The next hop must resolve on a veth whose far end is a bridge port: a
/// usable neighbour entry, or an ARP answer from the bridge's netns or the
/// far end of another of its ports.
#[allow(clippy::too_many_arguments)]
fn resolve_on_bridge(
    stacks: &Netstacks,
    stack: &Netstack,
    frame: &Frame,
    dev: &Interface,
    bridge_ns: &NetnsId,
    bridge_stack: &Netstack,
    bridge: &str,
    steps: &mut Vec<LinkStep>,
) -> Result<(), (String, bool)> {
    match neighbour(stack, frame.from, &dev.name, frame.next_hop) {
        Ok(Some(n)) => {
            steps.push(LinkStep::Neighbour(n.clone()));
            return Ok(());
        }
        Ok(None) => {}
        Err(d) if d.kind == "unavailable" => {
            steps.push(LinkStep::Other(format!("cannot check ARP: {}", d.message)));
            return Ok(());
        }
        Err(d) => return Err((d.message, false)),
    }
    if let Ok(by) = answers_arp(bridge_stack, bridge, frame.next_hop) {
        steps.push(LinkStep::Resolved {
            dev: dev.name.clone(),
            ip: frame.next_hop,
            by,
            was: None,
        });
        return Ok(());
    }
    let ports: Vec<&Interface> = bridge_stack
        .interfaces()
        .iter()
        .filter(|i| i.master.as_deref() == Some(bridge))
        .collect();
    let on_bridge = Frame {
        from: bridge_ns,
        ..frame.clone()
    };
    match flood_owner(stacks, &on_bridge, &ports) {
        Ok(Some((_, by))) => {
            steps.push(LinkStep::Resolved {
                dev: dev.name.clone(),
                ip: frame.next_hop,
                by,
                was: None,
            });
            Ok(())
        }
        Ok(None) => Err((
            format!(
                "nothing answers ARP for {} on {} of {}: neither {} nor any port of bridge {bridge} holds it",
                frame.next_hop, dev.name, frame.from, bridge_stack.label
            ),
            true,
        )),
        Err(e) => {
            steps.push(LinkStep::Other(format!("cannot check ARP: {e}")));
            Ok(())
        }
    }
}

/// The next hop must resolve to a MAC: a usable neighbour entry, or an ARP
/// answer from the far end.
fn resolve(
    stack: &Netstack,
    frame: &Frame,
    dev: &Interface,
    far: &Netstack,
    far_dev: &str,
    steps: &mut Vec<LinkStep>,
) -> Result<(), (String, bool)> {
    match neighbour(stack, frame.from, &dev.name, frame.next_hop) {
        Ok(Some(n)) => {
            steps.push(LinkStep::Neighbour(n.clone()));
            Ok(())
        }
        Ok(None) => match answers_arp(far, far_dev, frame.next_hop) {
            Ok(by) => {
                steps.push(LinkStep::Resolved {
                    dev: dev.name.clone(),
                    ip: frame.next_hop,
                    by,
                    was: None,
                });
                Ok(())
            }
            Err(why) => Err((
                format!(
                    "nothing answers ARP for {} on {} of {}: {why}",
                    frame.next_hop, dev.name, frame.from
                ),
                true,
            )),
        },
        Err(d) if d.kind == "unavailable" => {
            steps.push(LinkStep::Other(format!("cannot check ARP: {}", d.message)));
            Ok(())
        }
        Err(d) => Err((d.message, false)),
    }
}

fn over_bridge(
    stacks: &Netstacks,
    stack: &Netstack,
    frame: &Frame,
    bridge: &Interface,
    mut steps: Vec<LinkStep>,
) -> Vec<Carriage> {
    let ports: Vec<&Interface> = stack
        .interfaces()
        .iter()
        .filter(|i| i.master.as_deref() == Some(bridge.name.as_str()))
        .collect();
    // The neighbour entry gives the MAC, the bridge's FDB the port.
    let mac = match neighbour(stack, frame.from, &bridge.name, frame.next_hop) {
        Ok(Some(n)) => {
            steps.push(LinkStep::Neighbour(n.clone()));
            n.lladdr.clone()
        }
        Ok(None) => None,
        Err(d) if d.kind == "unavailable" => None,
        Err(d) => return vec![Carriage::dropped(steps, "neighbour", d.message)],
    };
    let by_fdb = mac.as_ref().and_then(|mac| {
        stack.fdb_all().ok()?.iter().find(|e| {
            e.mac.eq_ignore_ascii_case(mac)
                && e.master.as_deref() == Some(bridge.name.as_str())
                && !e.flags.iter().any(|f| f == "self")
        })
    });
    let port = match by_fdb {
        Some(e) => {
            steps.push(LinkStep::Fdb(e.clone()));
            ports.iter().find(|p| p.name == e.dev).copied()
        }
        None => None,
    };
    // No FDB entry (or it names no port): the bridge floods, and the port
    // whose far end holds (or proxies) the address answers.
    let port = match port {
        Some(p) => p,
        None => match flood_owner(stacks, frame, &ports) {
            Ok(Some((p, by))) => {
                steps.push(LinkStep::Resolved {
                    dev: bridge.name.clone(),
                    ip: frame.next_hop,
                    by,
                    was: None,
                });
                p
            }
            Ok(None) => {
                let holder = holder_elsewhere(stacks, frame, &bridge.name)
                    .map(|h| format!(": {h}"))
                    .unwrap_or_default();
                return vec![Carriage::dropped(
                    steps,
                    "bridge",
                    format!(
                        "no port of bridge {} in {} leads to {}: no neighbour or FDB entry names one, and no port's far end answers ARP for it{holder}",
                        bridge.name, frame.from, frame.next_hop
                    ),
                )];
            }
            Err(e) => return vec![unavailable(steps, &e)],
        },
    };
    steps.push(LinkStep::BridgePort {
        bridge: bridge.name.clone(),
        port: port.name.clone(),
    });
    if frame.ingress_port == Some(port.name.as_str()) && port.hairpin != Some(true) {
        let flag = match port.hairpin {
            Some(false) => "off".to_string(),
            _ => "not collected".to_string(),
        };
        if port.hairpin.is_none() {
            steps.push(LinkStep::Other(format!(
                "cannot check the hairpin flag of {} (not collected): assumed off",
                port.name
            )));
        }
        return vec![Carriage::dropped(
            steps,
            "bridge",
            format!(
                "bridge {} of {} would send the frame back out of {}, the port it came in by, but the port's hairpin flag is {flag}: the bridge drops it (bridge link set dev {} hairpin on)",
                bridge.name, frame.from, port.name, port.name
            ),
        )];
    }
    if !port.admin_up || !port.oper_up() {
        // A veth without carrier is down at its far end: blame that end.
        let far_down = (port.admin_up && port.kind == "veth")
            .then(|| veth_peer(stacks, frame.from, port).ok().flatten())
            .flatten()
            .filter(|(_, _, peer)| !peer.admin_up);
        let (why, about) = match far_down {
            Some((to, _, peer)) => (
                format!(
                    "has no carrier: its peer {} in {to} is administratively down (ip link set {} up)",
                    peer.name, peer.name
                ),
                Some(to),
            ),
            None if port.admin_up => (format!("has no carrier (state {})", port.oper_state), None),
            None => ("is down".to_string(), None),
        };
        return vec![Carriage {
            steps,
            end: LinkEnd::Dropped(LinkDrop {
                kind: "device",
                message: format!(
                    "port {} of bridge {} in {} {why}",
                    port.name, bridge.name, frame.from
                ),
                about,
            }),
        }];
    }
    // Onward through the port: a veth to its peer, a tunnel or a wire.
    let sub = Frame {
        oif: &port.name,
        ..frame.clone()
    };
    let mut tail = match port.kind.as_str() {
        "veth" => vec![port_veth(stacks, &sub, port)],
        "vxlan" => over_vxlan(stack, &sub, port, vec![]),
        _ => vec![onto_wire(stack, &sub, frame.from.clone(), port, vec![])],
    };
    for c in &mut tail {
        let mut s = steps.clone();
        s.push(device_step(port));
        s.append(&mut c.steps);
        c.steps = s;
    }
    tail
}

/// Out of a bridge's veth port: the MAC was resolved on the bridge already.
fn port_veth(stacks: &Netstacks, frame: &Frame, port: &Interface) -> Carriage {
    match veth_peer(stacks, frame.from, port) {
        Ok(Some((to, _, peer))) => {
            let steps = vec![LinkStep::VethPeer {
                netns: to.clone(),
                dev: peer.name.clone(),
            }];
            if !peer.admin_up {
                return Carriage::dropped(
                    steps,
                    "device",
                    format!(
                        "the veth peer {} of bridge port {} in {} is down in {to}",
                        peer.name, port.name, frame.from
                    ),
                );
            }
            Carriage::to(
                steps,
                LinkEnd::Netns {
                    to,
                    iif: peer.name.clone(),
                },
            )
        }
        Ok(None) => Carriage::dropped(
            vec![],
            "device",
            format!(
                "bridge port {} of {} is a veth whose peer is in no network namespace collected",
                port.name, frame.from
            ),
        ),
        Err(e) => unavailable(vec![], &e),
    }
}

/// The port whose far end answers ARP for the next hop, when the bridge
/// must flood.
fn flood_owner<'p>(
    stacks: &Netstacks,
    frame: &Frame,
    ports: &[&'p Interface],
) -> Result<Option<(&'p Interface, String)>, NetstackError> {
    for port in ports {
        if port.kind != "veth" {
            continue;
        }
        if let Some((_, far, peer)) = veth_peer(stacks, frame.from, port)?
            && let Ok(by) = answers_arp(far, &peer.name, frame.next_hop)
        {
            return Ok(Some((port, by)));
        }
    }
    Ok(None)
}

/// Who holds `frame.next_hop` on this node though no port of `bridge` leads
/// to it: a pod whose veth is on another bridge, or on none.
fn holder_elsewhere(stacks: &Netstacks, frame: &Frame, bridge: &str) -> Option<String> {
    let node = frame.from.node();
    let host = stacks.node(node).ok()?;
    for (pod, stack) in stacks.pods_of(node).ok()? {
        if !stack.is_local(frame.next_hop) {
            continue;
        }
        let iface = stack
            .interfaces()
            .iter()
            .find(|i| i.kind == "veth" && i.addresses.iter().any(|a| a.addr() == frame.next_hop))
            .or_else(|| stack.interfaces().iter().find(|i| i.kind == "veth"))?;
        let peer = iface
            .peer_index
            .and_then(|p| host.interface_by_index(p));
        return Some(match peer {
            Some(p) => match &p.master {
                Some(m) if m != bridge => format!(
                    "pod {pod} holds it, but its veth {} is attached to {m}, not {bridge}",
                    p.name
                ),
                Some(_) => format!("pod {pod} holds it behind {}", p.name),
                None => format!(
                    "pod {pod} holds it, but its veth {} is not attached to bridge {bridge}",
                    p.name
                ),
            },
            None => format!(
                "pod {pod} holds it, but the veth peer of its {} is missing on node {node}",
                iface.name
            ),
        });
    }
    None
}

/// Out of a VXLAN device: the neighbour entry gives the MAC, the device's
/// FDB the remote VTEP (the all-zero default entries flood to each of
/// theirs).
fn over_vxlan(
    stack: &Netstack,
    frame: &Frame,
    dev: &Interface,
    mut steps: Vec<LinkStep>,
) -> Vec<Carriage> {
    let from = frame.from;
    let hop = frame.next_hop;
    let mac = match neighbour(stack, from, &dev.name, hop) {
        Ok(Some(n)) => {
            steps.push(LinkStep::Neighbour(n.clone()));
            n.lladdr.clone()
        }
        Ok(None) => None,
        Err(d) => return vec![Carriage::dropped(steps, d.kind, d.message)],
    };
    let fdb = match stack.fdb(&dev.name) {
        Ok(f) => f,
        Err(e) => return vec![unavailable(steps, &e)],
    };
    let unicast: Vec<&FdbEntry> = match &mac {
        Some(mac) => fdb
            .iter()
            .copied()
            .filter(|e| e.mac.eq_ignore_ascii_case(mac) && e.dst.is_some())
            .collect(),
        None => vec![],
    };
    let (entries, flooded) = if unicast.is_empty() {
        let defaults: Vec<&FdbEntry> = fdb
            .iter()
            .copied()
            .filter(|e| e.mac == FLOOD_MAC && e.dst.is_some())
            .collect();
        (defaults, true)
    } else {
        (unicast, false)
    };
    if entries.is_empty() {
        let msg = match &mac {
            Some(mac) => format!(
                "{from} has no FDB entry on {} for MAC {mac} (neighbour {hop}) and no default (00:00:00:00:00:00) entry: the VXLAN frame has no remote VTEP to go to",
                dev.name
            ),
            None => format!(
                "{from} has no neighbour entry for {hop} on {} and no default (00:00:00:00:00:00) FDB entry to resolve it through: the VXLAN frame has no remote VTEP to go to",
                dev.name
            ),
        };
        return vec![Carriage::dropped(steps, "fdb", msg)];
    }
    let Some(vx) = &dev.vxlan else {
        return vec![Carriage::dropped(
            steps,
            "tunnel",
            format!(
                "vxlan device {} of {from} has no VXLAN attributes in the dump",
                dev.name
            ),
        )];
    };
    entries
        .into_iter()
        .map(|e| {
            let mut steps = steps.clone();
            steps.push(LinkStep::Fdb(e.clone()));
            if flooded && mac.is_none() {
                steps.push(LinkStep::Other(format!(
                    "no neighbour entry for {hop} on {}: ARP is flooded to each default FDB entry's VTEP",
                    dev.name
                )));
            }
            let Some(remote) = e.dst else {
                return Carriage::dropped(steps, "fdb", "FDB entry without dst".into());
            };
            let encap = Encap {
                kind: EncapKind::Vxlan,
                src: vx.local.unwrap_or(Ipv4Addr::UNSPECIFIED),
                dst: remote,
                vni: Some(e.vni.unwrap_or(vx.id)),
                port: Some(e.port.unwrap_or(vx.port)),
            };
            let outer = Packet {
                src: encap.src,
                sport: vxlan_sport(&frame.packet),
                dst: remote,
                dport: encap.port.unwrap_or(vx.port),
                protocol: Protocol::Udp,
                mark: 0,
                encap: None,
                // Both ways go to the VXLAN port from a hashed source port:
                // to conntrack each direction is a connection of its own.
                reply: false,
                tos: 0,
                size: frame.packet.size + VXLAN_OVERHEAD,
                icmp: None,
            };
            steps.push(LinkStep::Encapsulate {
                dev: dev.name.clone(),
                encap,
            });
            Carriage::to(
                steps,
                LinkEnd::Encapsulated {
                    tunnel: dev.name.clone(),
                    packet: Packet {
                        encap: Some(encap),
                        ..frame.packet
                    },
                    outer,
                    dst_mac: mac.clone(),
                },
            )
        })
        .collect()
}

/// The UDP source port VXLAN picks: a hash of the inner flow in the local
/// port range, the same for every packet of the flow.
fn vxlan_sport(inner: &Packet) -> u16 {
    let (lo, hi) = VXLAN_SPORTS;
    let h = u32::from(inner.src)
        .wrapping_mul(31)
        .wrapping_add(u32::from(inner.dst))
        .wrapping_mul(31)
        .wrapping_add(u32::from(inner.sport) << 16 | u32::from(inner.dport));
    lo + (h % u32::from(hi - lo + 1)) as u16
}

/// Out of an IP-in-IP device: to the route's gateway (Calico's `via NODE dev
/// tunl0 onlink`), or to the device's fixed remote.
fn over_ipip(stack: &Netstack, frame: &Frame, dev: &Interface, steps: Vec<LinkStep>) -> Carriage {
    let remote = dev
        .tunnel
        .as_ref()
        .and_then(|t| t.remote)
        .unwrap_or(frame.next_hop);
    if remote == frame.packet.dst && dev.tunnel.as_ref().and_then(|t| t.remote).is_none() {
        // Without a gateway the kernel has no outer destination: an ipip
        // device in NBMA mode (no remote) needs `via`.
        return Carriage::dropped(
            steps,
            "tunnel",
            format!(
                "{} sends {} over {} without a gateway: the IP-in-IP device has no remote, so there is no outer destination",
                frame.from, frame.packet.dst, dev.name
            ),
        );
    }
    let local = dev
        .tunnel
        .as_ref()
        .and_then(|t| t.local)
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    encapsulated(stack, frame, dev, steps, EncapKind::Ipip, local, remote, None)
}

/// Out of a WireGuard device: the peer whose allowed-ips hold the
/// destination, to its endpoint.
fn over_wireguard(frame: &Frame, dev: &Interface, steps: Vec<LinkStep>) -> Carriage {
    let Some(wg) = &dev.wireguard else {
        return Carriage::dropped(
            steps,
            "unavailable",
            format!(
                "WireGuard device {} of {} (its peers were not collected)",
                dev.name, frame.from
            ),
        );
    };
    let dst = frame.packet.dst;
    let peer = wg
        .peers
        .iter()
        .filter(|p| p.allowed_ips.iter().any(|n| n.contains(&dst)))
        .max_by_key(|p| {
            p.allowed_ips
                .iter()
                .filter(|n| n.contains(&dst))
                .map(|n| n.prefix_len())
                .max()
        });
    let Some(peer) = peer else {
        return Carriage::dropped(
            steps,
            "tunnel",
            format!(
                "no WireGuard peer of {} in {} has {dst} in its allowed-ips: the kernel drops the packet (ENOKEY)",
                dev.name, frame.from
            ),
        );
    };
    let Some((ip, port)) = peer.endpoint else {
        return Carriage::dropped(
            steps,
            "tunnel",
            format!(
                "WireGuard peer {} of {} in {} has no endpoint: the packet cannot be sent (EDESTADDRREQ)",
                peer.public_key, dev.name, frame.from
            ),
        );
    };
    let encap = Encap {
        kind: EncapKind::Wireguard,
        src: Ipv4Addr::UNSPECIFIED,
        dst: ip,
        vni: None,
        port: Some(port),
    };
    let outer = Packet {
        src: Ipv4Addr::UNSPECIFIED,
        sport: wg.listen_port,
        dst: ip,
        dport: port,
        protocol: Protocol::Udp,
        mark: wg.fwmark,
        encap: None,
        reply: frame.packet.reply,
        tos: 0,
        size: frame.packet.size + WIREGUARD_OVERHEAD,
        icmp: None,
    };
    let mut steps = steps;
    steps.push(LinkStep::Other(format!(
        "wireguard peer {} allowed-ips {} endpoint {ip}:{port}",
        peer.public_key,
        peer.allowed_ips
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )));
    steps.push(LinkStep::Encapsulate {
        dev: dev.name.clone(),
        encap,
    });
    Carriage::to(
        steps,
        LinkEnd::Encapsulated {
            tunnel: dev.name.clone(),
            packet: Packet {
                encap: Some(encap),
                ..frame.packet
            },
            outer,
            dst_mac: None,
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn encapsulated(
    _stack: &Netstack,
    frame: &Frame,
    dev: &Interface,
    mut steps: Vec<LinkStep>,
    kind: EncapKind,
    local: Ipv4Addr,
    remote: Ipv4Addr,
    port: Option<u16>,
) -> Carriage {
    let encap = Encap {
        kind,
        src: local,
        dst: remote,
        vni: None,
        port,
    };
    let outer = Packet {
        src: local,
        sport: 0,
        dst: remote,
        dport: 0,
        protocol: Protocol::Ipip,
        mark: 0,
        encap: None,
        reply: frame.packet.reply,
        tos: 0,
        size: frame.packet.size + IPIP_OVERHEAD,
        icmp: None,
    };
    steps.push(LinkStep::Encapsulate {
        dev: dev.name.clone(),
        encap,
    });
    Carriage::to(
        steps,
        LinkEnd::Encapsulated {
            tunnel: dev.name.clone(),
            packet: Packet {
                encap: Some(encap),
                ..frame.packet
            },
            outer,
            dst_mac: None,
        },
    )
}

/// Out of a macvlan, ipvlan or VLAN device: its frames leave by the parent
/// device onto the wire, without the parent's netns routing them.
fn over_parent(
    stacks: &Netstacks,
    stack: &Netstack,
    frame: &Frame,
    dev: &Interface,
    mut steps: Vec<LinkStep>,
) -> Carriage {
    let Some(parent) = dev.link.clone() else {
        return Carriage::dropped(
            steps,
            "device",
            format!(
                "{} device {} of {} has no parent device in the dump",
                dev.kind, dev.name, frame.from
            ),
        );
    };
    if let Err(d) = neighbour(stack, frame.from, &dev.name, frame.next_hop) {
        if d.kind != "unavailable" {
            return Carriage::dropped(steps, d.kind, d.message);
        }
    } else if let Ok(Some(n)) = stack.neighbour(&dev.name, frame.next_hop) {
        steps.push(LinkStep::Neighbour(n.clone()));
    }
    // A pod's device stacked on a node device: the parent is in the node's netns.
    let (netns, parent_stack) = match frame.from {
        NetnsId::Pod { node, .. } => match stacks.node(node) {
            Ok(s) => (NetnsId::Node(node.clone()), s),
            Err(e) => return unavailable(steps, &e),
        },
        NetnsId::Node(_) => (frame.from.clone(), stack),
    };
    let Some(p) = parent_stack.interface(&parent) else {
        return Carriage::dropped(
            steps,
            "device",
            format!(
                "parent device {parent} of {} ({} in {}) does not exist in {netns}",
                dev.name, dev.kind, frame.from
            ),
        );
    };
    steps.push(LinkStep::Other(format!(
        "{} {} sends through its parent {parent} in {netns}",
        dev.kind, dev.name
    )));
    if !p.admin_up || !p.oper_up() {
        return Carriage::dropped(
            steps,
            "device",
            format!(
                "parent device {parent} in {netns} of {} {} is down or has no carrier",
                dev.kind, dev.name
            ),
        );
    }
    steps.push(device_step(p));
    Carriage::to(
        steps,
        LinkEnd::Wire {
            netns,
            oif: parent,
            next_hop: frame.next_hop,
        },
    )
}

/// Onto the wire beyond the netns: the next hop must resolve.
fn onto_wire(
    stack: &Netstack,
    frame: &Frame,
    netns: NetnsId,
    dev: &Interface,
    mut steps: Vec<LinkStep>,
) -> Carriage {
    match neighbour(stack, frame.from, &dev.name, frame.next_hop) {
        Ok(Some(n)) => steps.push(LinkStep::Neighbour(n.clone())),
        Ok(None) => {}
        Err(d) if d.kind == "unavailable" => {
            steps.push(LinkStep::Other(format!("cannot check ARP: {}", d.message)))
        }
        Err(d) => return Carriage::dropped(steps, d.kind, d.message),
    }
    Carriage::to(
        steps,
        LinkEnd::Wire {
            netns,
            oif: dev.name.clone(),
            next_hop: frame.next_hop,
        },
    )
}

/// A tunnel packet delivered to this netns: the device that terminates it.
/// `Ok(dev)`: decapsulated by `dev`; `Err`: no device takes it (the kernel
/// drops it, or answers with ICMP port unreachable).
pub fn decapsulate(stack: &Netstack, encap: &Encap, dst_mac: Option<&str>) -> Result<String, LinkDrop> {
    let label = &stack.label;
    let devices: Vec<&Interface> = stack
        .interfaces()
        .iter()
        .filter(|i| i.kind == encap.kind.name())
        .collect();
    let taken = match encap.kind {
        EncapKind::Vxlan => {
            let port = encap.port.unwrap_or(8472);
            let on_port: Vec<&&Interface> = devices
                .iter()
                .filter(|d| d.vxlan.as_ref().is_some_and(|v| v.port == port))
                .collect();
            let found = on_port.iter().find(|d| {
                d.vxlan
                    .as_ref()
                    .is_some_and(|v| encap.vni.is_none_or(|n| n == v.id))
            });
            match found {
                Some(d) => *d,
                None => {
                    let msg = match (on_port.first(), devices.first()) {
                        (Some(d), _) => format!(
                            "{label}'s VXLAN device {} listens on UDP port {port} with VNI {}, but the VXLAN packet from {} carries VNI {}: the kernel drops it",
                            d.name,
                            d.vxlan.as_ref().map(|v| v.id).unwrap_or_default(),
                            encap.src,
                            encap.vni.unwrap_or_default()
                        ),
                        (None, Some(d)) => format!(
                            "{label}'s VXLAN device {} listens on UDP port {}, but the VXLAN packet from {} is sent to port {port}: the kernel drops it",
                            d.name,
                            d.vxlan.as_ref().map(|v| v.port).unwrap_or_default(),
                            encap.src
                        ),
                        (None, None) => format!(
                            "{label} has no VXLAN device to take the VXLAN packet from {} (UDP port {port}): the kernel drops it",
                            encap.src
                        ),
                    };
                    return Err(LinkDrop {
                        kind: "tunnel",
                        message: msg,
                        about: None,
                    });
                }
            }
        }
        _ => match devices.first() {
            Some(d) => *d,
            None => {
                return Err(LinkDrop {
                    kind: "tunnel",
                    message: format!(
                        "{label} has no {} device to take the {} packet from {}: the kernel drops it",
                        encap.kind.name(),
                        encap.kind.name(),
                        encap.src
                    ),
                    about: None,
                });
            }
        },
    };
    if !taken.admin_up {
        return Err(LinkDrop {
            kind: "device",
            message: format!(
                "{} device {} of {label} is down: the {} packet from {} is dropped",
                encap.kind.name(),
                taken.name,
                encap.kind.name(),
                encap.src
            ),
            about: None,
        });
    }
    // The device takes only frames for its own MAC.
    if let (Some(want), Some(have)) = (dst_mac, taken.mac.as_deref())
        && !want.eq_ignore_ascii_case(have)
    {
        return Err(LinkDrop {
            kind: "neighbour",
            message: format!(
                "the VXLAN frame from {} is addressed to MAC {want}, but {} of {label} has MAC {have}: {label} drops it (the sender's neighbour entry for it is stale)",
                encap.src, taken.name
            ),
            // The sender's stale entry is at fault: the caller knows who sent it.
            about: None,
        });
    }
    Ok(taken.name.clone())
}

/// The outer packet a tunnel packet arrives as, for the receiving pipeline.
pub fn outer_of(packet: &Packet) -> Option<Packet> {
    let e = packet.encap?;
    let (protocol, sport, dport, overhead) = match e.kind {
        EncapKind::Vxlan => (
            Protocol::Udp,
            vxlan_sport(&Packet {
                encap: None,
                ..*packet
            }),
            e.port.unwrap_or(8472),
            VXLAN_OVERHEAD,
        ),
        EncapKind::Wireguard => (Protocol::Udp, 0, e.port.unwrap_or(51820), WIREGUARD_OVERHEAD),
        EncapKind::Ipip => (Protocol::Ipip, 0, 0, IPIP_OVERHEAD),
    };
    Some(Packet {
        src: e.src,
        sport,
        dst: e.dst,
        dport,
        protocol,
        mark: 0,
        encap: None,
        reply: packet.reply && e.kind != EncapKind::Vxlan,
        tos: 0,
        size: packet.size + overhead,
        icmp: None,
    })
}

/// When a veth has no carrier, whether its peer is why (down, or missing),
/// and the netns the peer is in.
pub fn carrier_lost_to(
    stacks: &Netstacks,
    from: &NetnsId,
    dev: &str,
) -> Option<(String, Option<NetnsId>)> {
    let stack = stacks.netns(from).ok()?;
    let iface = stack.interface(dev)?;
    if iface.kind != "veth" {
        return None;
    }
    match veth_peer(stacks, from, iface) {
        Ok(Some((to, _, peer))) if !peer.admin_up => Some((
            format!(
                "the veth peer {} of {dev} is down in {to}: {from} is cut off (ip link set {} up)",
                peer.name, peer.name
            ),
            Some(to),
        )),
        Ok(None) => Some((
            format!(
                "the veth peer of {dev} in {from} is missing on node {}",
                from.node()
            ),
            Some(NetnsId::Node(from.node().to_string())),
        )),
        _ => None,
    }
}
