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
            LinkStep::Resolved {
                dev,
                ip,
                by,
                was: None,
            } => write!(f, "ARP for {ip} on {dev}: {by}"),
            LinkStep::Resolved {
                dev,
                ip,
                by,
                was: Some(state),
            } => write!(
                f,
                "ARP for {ip} on {dev} (the entry was {state}, asked again): {by}"
            ),
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
                if frame.packet.reply {
                    "reply"
                } else {
                    "request"
                },
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
                && (!dev.addresses.is_empty()
                    || dev.peer_netnsid.is_some() && dev.master.is_none()) =>
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
        Some(bridge) => resolve_on_bridge(
            stacks, stack, frame, dev, &to, peer_stack, bridge, &mut steps,
        ),
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
            Ok(None) if let Some(out) = flood_beyond(stack, frame, &ports, &steps) => {
                return out;
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

/// No veth port leads to the next hop: the bridge floods the ARP request
/// (and then the frame) out of its other ports too, and whoever is beyond
/// an uplink or a tunnel port may answer. One carriage per such port that
/// is up; None when the bridge has none.
fn flood_beyond(
    stack: &Netstack,
    frame: &Frame,
    ports: &[&Interface],
    steps: &[LinkStep],
) -> Option<Vec<Carriage>> {
    let out: Vec<&Interface> = ports
        .iter()
        .copied()
        .filter(|p| {
            p.kind != "veth"
                && p.admin_up
                && p.oper_up()
                && frame.ingress_port != Some(p.name.as_str())
        })
        .collect();
    if out.is_empty() {
        return None;
    }
    let mut carriages = Vec::new();
    for port in out {
        let sub = Frame {
            oif: &port.name,
            ..frame.clone()
        };
        let mut head = steps.to_vec();
        head.push(LinkStep::Other(format!(
            "no port's far end holds {}: flooded out of {}",
            frame.next_hop, port.name
        )));
        head.push(LinkStep::BridgePort {
            bridge: frame.oif.to_string(),
            port: port.name.clone(),
        });
        head.push(device_step(port));
        let tail = match port.kind.as_str() {
            "vxlan" => over_vxlan(stack, &sub, port, vec![]),
            _ => vec![onto_wire(stack, &sub, frame.from.clone(), port, vec![])],
        };
        for mut c in tail {
            let mut s = head.clone();
            s.append(&mut c.steps);
            c.steps = s;
            carriages.push(c);
        }
    }
    Some(carriages)
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
        let peer = iface.peer_index.and_then(|p| host.interface_by_index(p));
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
    encapsulated(
        stack,
        frame,
        dev,
        steps,
        EncapKind::Ipip,
        local,
        remote,
        None,
    )
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
pub fn decapsulate(
    stack: &Netstack,
    encap: &Encap,
    dst_mac: Option<&str>,
) -> Result<String, LinkDrop> {
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
        EncapKind::Wireguard => (
            Protocol::Udp,
            0,
            e.port.unwrap_or(51820),
            WIREGUARD_OVERHEAD,
        ),
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::dump::{NetnsDump, NodeDump, PodNetns};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("test address")
    }

    fn tcp(src: &str, dst: &str) -> Packet {
        Packet {
            src: ip(src),
            sport: 40000,
            dst: ip(dst),
            dport: 8080,
            protocol: Protocol::Tcp,
            mark: 0,
            encap: None,
            reply: false,
            tos: 0,
            size: 1400,
            icmp: None,
        }
    }

    /// An interface, up with carrier and MTU 1500, with `extra` fields.
    fn dev(index: u32, name: &str, kind: &str, extra: Value) -> Value {
        let mut d = json!({
            "index": index, "name": name, "kind": kind, "mtu": 1500,
            "admin_up": true, "oper_state": "UP"
        });
        if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
            d.extend(extra.clone());
        }
        d
    }

    /// Set field `key` of interface `name` of a netns dump.
    fn set_dev(ns: &mut Value, name: &str, key: &str, value: Value) {
        let iface = ns["interfaces"]
            .as_array_mut()
            .and_then(|a| a.iter_mut().find(|i| i["name"] == name))
            .unwrap_or_else(|| panic!("no interface {name} in the test dump"));
        iface[key] = value;
    }

    /// Append `entry` to the list `list` (neighbours, fdb, routes, ...) of a netns dump.
    fn push(ns: &mut Value, list: &str, entry: Value) {
        match ns.get_mut(list).and_then(Value::as_array_mut) {
            Some(a) => a.push(entry),
            None => ns[list] = json!([entry]),
        }
    }

    fn node(name: &str, host: Value, pods: Vec<(&str, Value)>) -> (String, NodeDump) {
        let netns = |v: Value| -> NetnsDump { serde_json::from_value(v).expect("test netns dump") };
        let pods = pods
            .into_iter()
            .map(|(id, v)| {
                let (namespace, pod) = id.split_once('/').expect("namespace/name");
                PodNetns {
                    namespace: namespace.into(),
                    name: pod.into(),
                    netns: netns(v),
                }
            })
            .collect();
        let dump = NodeDump {
            version: crate::dump::DUMP_VERSION,
            node: name.into(),
            host: netns(host),
            pods,
        };
        (name.to_string(), dump)
    }

    fn stacks(nodes: Vec<(String, NodeDump)>) -> Netstacks {
        Netstacks::from_dumps(nodes.into_iter().collect())
    }

    fn host() -> NetnsId {
        NetnsId::Node("node-1".into())
    }

    fn pod(id: &str) -> NetnsId {
        NetnsId::Pod {
            node: "node-1".into(),
            pod: id.into(),
        }
    }

    fn send(
        stacks: &Netstacks,
        from: &NetnsId,
        oif: &str,
        next_hop: &str,
        packet: Packet,
    ) -> Vec<Carriage> {
        send_in(stacks, from, oif, next_hop, packet, None)
    }

    fn send_in(
        stacks: &Netstacks,
        from: &NetnsId,
        oif: &str,
        next_hop: &str,
        packet: Packet,
        ingress_port: Option<&str>,
    ) -> Vec<Carriage> {
        carry(
            stacks,
            &Frame {
                from,
                oif,
                next_hop: ip(next_hop),
                packet,
                ingress_port,
            },
        )
    }

    fn one(out: Vec<Carriage>) -> Carriage {
        assert_eq!(out.len(), 1, "one carriage expected: {out:#?}");
        out.into_iter().next().expect("one carriage")
    }

    fn drop_of(c: &Carriage) -> &LinkDrop {
        match &c.end {
            LinkEnd::Dropped(d) => d,
            other => panic!("expected a drop, got {other:?} after {:#?}", c.steps),
        }
    }

    fn step_dev(name: &str, kind: &str, mtu: u32) -> LinkStep {
        LinkStep::Device {
            dev: name.into(),
            kind: kind.into(),
            mtu,
        }
    }

    fn neigh(ip_: &str, dev_: &str, lladdr: Option<&str>, state: &str) -> Neighbour {
        Neighbour {
            ip: ip(ip_),
            dev: dev_.into(),
            lladdr: lladdr.map(Into::into),
            state: state.into(),
        }
    }

    fn to_json<T: serde::Serialize>(v: &T) -> Value {
        serde_json::to_value(v).expect("serialisable")
    }

    // ---- fixtures ----------------------------------------------------------

    const MAC_A: &str = "0a:58:0a:f4:00:05";
    const MAC_B: &str = "0a:58:0a:f4:00:06";

    /// A pod netns whose eth0 (ifindex 3) is a veth to the host's `peer`.
    fn bridged_pod(addr: &str, mac: &str, peer: u32, netnsid: i32) -> Value {
        json!({
            "interfaces": [
                dev(1, "lo", "loopback", json!({"mtu": 65536, "oper_state": "UNKNOWN", "addresses": ["127.0.0.1/8"]})),
                dev(3, "eth0", "veth", json!({"peer_index": peer, "peer_netnsid": netnsid, "addresses": [format!("{addr}/24")], "mac": mac}))
            ],
            "routes": [
                {"dst": "10.244.0.0/24", "dev": "eth0", "scope": "link"},
                {"dst": "0.0.0.0/0", "gateway": "10.244.0.1", "dev": "eth0"}
            ]
        })
    }

    /// node-1 (flannel/bridge style): cni0 10.244.0.1/24 with ports veth-a and
    /// veth-b to pods default/a (10.244.0.5) and default/b (10.244.0.6), both
    /// of whose eth0 is ifindex 3; eth0 192.168.0.1/24.
    struct Bridged {
        host: Value,
        a: Value,
        b: Value,
    }

    impl Bridged {
        fn new() -> Bridged {
            let host = json!({
                "interfaces": [
                    dev(1, "lo", "loopback", json!({"mtu": 65536, "oper_state": "UNKNOWN", "addresses": ["127.0.0.1/8"]})),
                    dev(2, "eth0", "device", json!({"addresses": ["192.168.0.1/24"]})),
                    dev(4, "cni0", "bridge", json!({"mtu": 1450, "addresses": ["10.244.0.1/24"], "mac": "0a:58:0a:f4:00:01"})),
                    dev(5, "veth-a", "veth", json!({"mtu": 1450, "master": "cni0", "peer_index": 3, "peer_netnsid": 0, "hairpin": false})),
                    dev(6, "veth-b", "veth", json!({"mtu": 1450, "master": "cni0", "peer_index": 3, "peer_netnsid": 1, "hairpin": false}))
                ],
                "routes": [
                    {"table": 255, "type": "local", "dst": "10.244.0.1/32", "dev": "cni0"},
                    {"table": 255, "type": "local", "dst": "192.168.0.1/32", "dev": "eth0"},
                    {"dst": "10.244.0.0/24", "dev": "cni0", "scope": "link"},
                    {"dst": "192.168.0.0/24", "dev": "eth0", "scope": "link"},
                    {"dst": "0.0.0.0/0", "gateway": "192.168.0.254", "dev": "eth0"}
                ],
                "sysctls": {"net.ipv4.ip_forward": "1"}
            });
            Bridged {
                host,
                a: bridged_pod("10.244.0.5", MAC_A, 5, 0),
                b: bridged_pod("10.244.0.6", MAC_B, 6, 0),
            }
        }

        fn stacks(self) -> Netstacks {
            stacks(vec![node(
                "node-1",
                self.host,
                vec![("default/a", self.a), ("default/b", self.b)],
            )])
        }
    }

    /// node-1 (Calico style): pod default/a's eth0 (ifindex 4, 10.244.0.5/32,
    /// default via 169.254.1.1) is a veth to the host's cali1 (ifindex 9, no
    /// address, proxy_arp on), with the pod's /32 route on cali1 and a
    /// default route out of eth0.
    struct Calico {
        host: Value,
        a: Value,
    }

    impl Calico {
        fn new() -> Calico {
            let host = json!({
                "interfaces": [
                    dev(1, "lo", "loopback", json!({"mtu": 65536, "oper_state": "UNKNOWN", "addresses": ["127.0.0.1/8"]})),
                    dev(2, "eth0", "device", json!({"addresses": ["192.168.0.1/24"]})),
                    dev(9, "cali1", "veth", json!({"peer_index": 4, "peer_netnsid": 0, "mac": "ee:ee:ee:ee:ee:ee"}))
                ],
                "routes": [
                    {"table": 255, "type": "local", "dst": "192.168.0.1/32", "dev": "eth0"},
                    {"dst": "10.244.0.5/32", "dev": "cali1", "scope": "link"},
                    {"dst": "192.168.0.0/24", "dev": "eth0", "scope": "link"},
                    {"dst": "0.0.0.0/0", "gateway": "192.168.0.254", "dev": "eth0"}
                ],
                "sysctls": {
                    "net.ipv4.ip_forward": "1",
                    "net.ipv4.conf.cali1.forwarding": "1",
                    "net.ipv4.conf.cali1.proxy_arp": "1"
                }
            });
            let a = json!({
                "interfaces": [
                    dev(1, "lo", "loopback", json!({"mtu": 65536, "oper_state": "UNKNOWN", "addresses": ["127.0.0.1/8"]})),
                    dev(4, "eth0", "veth", json!({"peer_index": 9, "peer_netnsid": 0, "addresses": ["10.244.0.5/32"], "mac": MAC_A}))
                ],
                "routes": [
                    {"dst": "169.254.1.1/32", "dev": "eth0", "scope": "link"},
                    {"dst": "0.0.0.0/0", "gateway": "169.254.1.1", "dev": "eth0"}
                ]
            });
            Calico { host, a }
        }

        fn stacks(self) -> Netstacks {
            stacks(vec![node("node-1", self.host, vec![("default/a", self.a)])])
        }
    }

    const VTEP_1: &str = "aa:aa:aa:aa:aa:01";
    const VTEP_2: &str = "aa:aa:aa:aa:aa:02";

    /// A flannel node's host netns: eth0 192.168.0.N/24, flannel.1 (VNI 1,
    /// port 8472) 10.244.(N-1).0/32.
    fn flannel_host(n: u8, mac: &str) -> Value {
        json!({
            "interfaces": [
                dev(2, "eth0", "device", json!({"addresses": [format!("192.168.0.{n}/24")]})),
                dev(5, "flannel.1", "vxlan", json!({
                    "mtu": 1450, "oper_state": "UNKNOWN", "mac": mac,
                    "addresses": [format!("10.244.{}.0/32", n - 1)],
                    "vxlan": {"id": 1, "port": 8472, "local": format!("192.168.0.{n}"), "dev": "eth0"}
                }))
            ],
            "routes": [
                {"dst": "192.168.0.0/24", "dev": "eth0", "scope": "link"}
            ]
        })
    }

    /// node-1 and node-2 with flannel.1; node-1's host netns is `host1`.
    fn flannel(host1: Value) -> Netstacks {
        stacks(vec![
            node("node-1", host1, vec![]),
            node("node-2", flannel_host(2, VTEP_2), vec![]),
        ])
    }

    fn fdb(mac: &str, dev_: &str, dst: &str) -> FdbEntry {
        FdbEntry {
            mac: mac.into(),
            dev: dev_.into(),
            dst: Some(ip(dst)),
            master: None,
            vni: None,
            port: None,
            flags: vec!["self".into(), "permanent".into()],
        }
    }

    // ---- 1. veth -------------------------------------------------------------

    #[test]
    fn veth_carries_to_the_peer_in_the_pod_netns() {
        let s = Calico::new().stacks();
        let c = one(send(
            &s,
            &host(),
            "cali1",
            "10.244.0.5",
            tcp("192.168.0.1", "10.244.0.5"),
        ));
        assert_eq!(
            c.steps,
            vec![
                step_dev("cali1", "veth", 1500),
                LinkStep::VethPeer {
                    netns: pod("default/a"),
                    dev: "eth0".into()
                },
                LinkStep::Resolved {
                    dev: "cali1".into(),
                    ip: ip("10.244.0.5"),
                    by: "pod default/a holds 10.244.0.5".into(),
                    was: None
                },
            ]
        );
        assert_eq!(
            c.end,
            LinkEnd::Netns {
                to: pod("default/a"),
                iif: "eth0".into()
            }
        );
    }

    #[test]
    fn veth_uses_a_usable_neighbour_entry_without_asking() {
        let mut f = Calico::new();
        let entry = json!({"ip": "10.244.0.5", "dev": "cali1", "lladdr": MAC_A, "state": "STALE"});
        push(&mut f.host, "neighbours", entry);
        let c = one(send(
            &f.stacks(),
            &host(),
            "cali1",
            "10.244.0.5",
            tcp("192.168.0.1", "10.244.0.5"),
        ));
        assert_eq!(
            c.steps[2],
            LinkStep::Neighbour(neigh("10.244.0.5", "cali1", Some(MAC_A), "STALE"))
        );
        assert_eq!(c.steps.len(), 3, "no ARP asked: {:#?}", c.steps);
        assert!(matches!(c.end, LinkEnd::Netns { .. }));
    }

    #[test]
    fn veth_whose_peer_is_admin_down_drops_naming_the_peer() {
        let mut f = Calico::new();
        set_dev(&mut f.a, "eth0", "admin_up", json!(false));
        set_dev(&mut f.a, "eth0", "oper_state", json!("DOWN"));
        set_dev(&mut f.host, "cali1", "oper_state", json!("LOWERLAYERDOWN"));
        let s = f.stacks();
        let c = one(send(
            &s,
            &host(),
            "cali1",
            "10.244.0.5",
            tcp("192.168.0.1", "10.244.0.5"),
        ));
        let d = drop_of(&c);
        assert_eq!(d.kind, "device");
        assert_eq!(
            d.message,
            "the veth peer eth0 of cali1 in node node-1 is down in pod default/a (ip link set eth0 up)"
        );
        assert!(c.steps.contains(&LinkStep::VethPeer {
            netns: pod("default/a"),
            dev: "eth0".into()
        }));
        // The carrier check of the walk blames the same end.
        let (why, about) = carrier_lost_to(&s, &host(), "cali1").expect("carrier lost to the peer");
        assert!(
            why.contains("the veth peer eth0 of cali1 is down in pod default/a"),
            "{why}"
        );
        assert_eq!(about, Some(pod("default/a")));
        assert_eq!(
            carrier_lost_to(&Calico::new().stacks(), &host(), "cali1").map(|(w, _)| w),
            None
        );
    }

    /// A kind node: its eth0 is a veth (ifindex 2) whose peer (ifindex 9) is
    /// in the machine hosting it, not collected; the host's cali1 has ifindex
    /// 9 and its peer, the pod's eth0, ifindex 2.
    fn colliding(eth0_netnsid: bool) -> Netstacks {
        let mut f = Calico::new();
        let mut eth0 = json!({"peer_index": 9, "addresses": ["192.168.0.1/24"]});
        if eth0_netnsid {
            eth0["peer_netnsid"] = json!(1);
        }
        f.host["interfaces"][1] = dev(2, "eth0", "veth", eth0);
        set_dev(&mut f.host, "cali1", "peer_index", json!(2));
        f.a["interfaces"][1] = dev(
            2,
            "eth0",
            "veth",
            json!({"peer_index": 9, "peer_netnsid": 0, "addresses": ["10.244.0.5/32"], "mac": MAC_A}),
        );
        f.stacks()
    }

    #[test]
    fn node_veth_with_its_peer_elsewhere_is_the_wire_despite_an_ifindex_collision() {
        let s = colliding(true);
        let c = one(send(
            &s,
            &host(),
            "eth0",
            "192.168.0.254",
            tcp("10.244.0.5", "8.8.8.8"),
        ));
        assert_eq!(c.steps, vec![step_dev("eth0", "veth", 1500)]);
        assert_eq!(
            c.end,
            LinkEnd::Wire {
                netns: host(),
                oif: "eth0".into(),
                next_hop: ip("192.168.0.254")
            }
        );
        // The cali veth with the colliding index still leads to its pod.
        let c = one(send(
            &s,
            &host(),
            "cali1",
            "10.244.0.5",
            tcp("192.168.0.1", "10.244.0.5"),
        ));
        assert_eq!(
            c.end,
            LinkEnd::Netns {
                to: pod("default/a"),
                iif: "eth0".into()
            }
        );
        // Without link-netnsid the dump says the peer is in the node's own
        // netns: ifindex 9 there is cali1, which names eth0 back.
        let c = one(send(
            &colliding(false),
            &host(),
            "eth0",
            "192.168.0.254",
            tcp("10.244.0.5", "8.8.8.8"),
        ));
        assert!(c.steps.contains(&LinkStep::VethPeer {
            netns: host(),
            dev: "cali1".into()
        }));
    }

    #[test]
    fn veth_pair_inside_the_node_netns_pairs_by_ifindex() {
        let mut f = Bridged::new();
        push(
            &mut f.host,
            "interfaces",
            dev(10, "v0", "veth", json!({"peer_index": 11})),
        );
        push(
            &mut f.host,
            "interfaces",
            dev(
                11,
                "v1",
                "veth",
                json!({"peer_index": 10, "addresses": ["10.9.0.2/30"]}),
            ),
        );
        let c = one(send(
            &f.stacks(),
            &host(),
            "v0",
            "10.9.0.2",
            tcp("10.9.0.1", "10.9.0.2"),
        ));
        assert_eq!(
            c.end,
            LinkEnd::Netns {
                to: host(),
                iif: "v1".into()
            }
        );
    }

    #[test]
    fn node_veth_with_its_peer_nowhere_and_no_address_is_dropped() {
        let mut f = Bridged::new();
        push(
            &mut f.host,
            "interfaces",
            dev(12, "vx", "veth", json!({"peer_index": 42})),
        );
        let c = one(send(
            &f.stacks(),
            &host(),
            "vx",
            "10.9.0.2",
            tcp("10.9.0.1", "10.9.0.2"),
        ));
        let d = drop_of(&c);
        assert_eq!(d.kind, "device");
        assert_eq!(
            d.message,
            "the veth peer (ifindex 42) of vx in node node-1 is not in any network namespace of node node-1 collected: the frame goes nowhere"
        );
        // With link-netnsid and no master it is an uplink: the wire.
        let mut f = Bridged::new();
        push(
            &mut f.host,
            "interfaces",
            dev(
                12,
                "vx",
                "veth",
                json!({"peer_index": 42, "peer_netnsid": 3}),
            ),
        );
        let c = one(send(
            &f.stacks(),
            &host(),
            "vx",
            "10.9.0.2",
            tcp("10.9.0.1", "10.9.0.2"),
        ));
        assert!(
            matches!(&c.end, LinkEnd::Wire { oif, .. } if oif == "vx"),
            "{c:#?}"
        );
    }

    // ---- 2. bridge -----------------------------------------------------------

    #[test]
    fn bridge_port_comes_from_the_neighbour_and_fdb_entries() {
        let mut f = Bridged::new();
        push(
            &mut f.host,
            "neighbours",
            json!({"ip": "10.244.0.6", "dev": "cni0", "lladdr": MAC_B, "state": "REACHABLE"}),
        );
        // The bridge's own (self) entry for the MAC is not a port's.
        push(
            &mut f.host,
            "fdb",
            json!({"mac": MAC_B, "dev": "cni0", "flags": ["self"]}),
        );
        let entry = FdbEntry {
            mac: MAC_B.into(),
            dev: "veth-b".into(),
            dst: None,
            master: Some("cni0".into()),
            vni: None,
            port: None,
            flags: vec![],
        };
        push(&mut f.host, "fdb", to_json(&entry));
        let c = one(send(
            &f.stacks(),
            &host(),
            "cni0",
            "10.244.0.6",
            tcp("10.244.0.1", "10.244.0.6"),
        ));
        assert_eq!(
            c.steps,
            vec![
                step_dev("cni0", "bridge", 1450),
                LinkStep::Neighbour(neigh("10.244.0.6", "cni0", Some(MAC_B), "REACHABLE")),
                LinkStep::Fdb(entry),
                LinkStep::BridgePort {
                    bridge: "cni0".into(),
                    port: "veth-b".into()
                },
                step_dev("veth-b", "veth", 1450),
                LinkStep::VethPeer {
                    netns: pod("default/b"),
                    dev: "eth0".into()
                },
            ]
        );
        assert_eq!(
            c.end,
            LinkEnd::Netns {
                to: pod("default/b"),
                iif: "eth0".into()
            }
        );
    }

    #[test]
    fn bridge_floods_without_entries_and_the_pod_holding_the_address_answers() {
        let s = Bridged::new().stacks();
        let c = one(send(
            &s,
            &host(),
            "cni0",
            "10.244.0.6",
            tcp("10.244.0.1", "10.244.0.6"),
        ));
        assert_eq!(
            c.steps,
            vec![
                step_dev("cni0", "bridge", 1450),
                LinkStep::Resolved {
                    dev: "cni0".into(),
                    ip: ip("10.244.0.6"),
                    by: "pod default/b holds 10.244.0.6".into(),
                    was: None
                },
                LinkStep::BridgePort {
                    bridge: "cni0".into(),
                    port: "veth-b".into()
                },
                step_dev("veth-b", "veth", 1450),
                LinkStep::VethPeer {
                    netns: pod("default/b"),
                    dev: "eth0".into()
                },
            ]
        );
        assert_eq!(
            c.end,
            LinkEnd::Netns {
                to: pod("default/b"),
                iif: "eth0".into()
            }
        );
    }

    #[test]
    fn bridge_drops_what_no_port_leads_to_and_names_who_holds_it() {
        let c = one(send(
            &Bridged::new().stacks(),
            &host(),
            "cni0",
            "10.244.0.9",
            tcp("10.244.0.1", "10.244.0.9"),
        ));
        let d = drop_of(&c);
        assert_eq!(d.kind, "bridge");
        assert_eq!(
            d.message,
            "no port of bridge cni0 in node node-1 leads to 10.244.0.9: no neighbour or FDB entry names one, and no port's far end answers ARP for it"
        );
        // A pod holding it whose veth is on no bridge is named.
        let mut f = Bridged::new();
        push(
            &mut f.host,
            "interfaces",
            dev(
                7,
                "veth-c",
                "veth",
                json!({"peer_index": 3, "peer_netnsid": 2}),
            ),
        );
        let c_pod = bridged_pod("10.244.0.9", "0a:58:0a:f4:00:09", 7, 0);
        let s = stacks(vec![node(
            "node-1",
            f.host,
            vec![("default/a", f.a), ("default/b", f.b), ("default/c", c_pod)],
        )]);
        let c = one(send(
            &s,
            &host(),
            "cni0",
            "10.244.0.9",
            tcp("10.244.0.1", "10.244.0.9"),
        ));
        assert!(
            drop_of(&c).message.ends_with(
                ": pod default/c holds it, but its veth veth-c is not attached to bridge cni0"
            ),
            "{}",
            drop_of(&c).message
        );
    }

    #[test]
    fn bridge_port_without_carrier_blames_the_admin_down_pod_end() {
        let mut f = Bridged::new();
        push(
            &mut f.host,
            "neighbours",
            json!({"ip": "10.244.0.6", "dev": "cni0", "lladdr": MAC_B, "state": "STALE"}),
        );
        push(
            &mut f.host,
            "fdb",
            json!({"mac": MAC_B, "dev": "veth-b", "master": "cni0"}),
        );
        set_dev(&mut f.host, "veth-b", "oper_state", json!("LOWERLAYERDOWN"));
        set_dev(&mut f.b, "eth0", "admin_up", json!(false));
        set_dev(&mut f.b, "eth0", "oper_state", json!("DOWN"));
        let c = one(send(
            &f.stacks(),
            &host(),
            "cni0",
            "10.244.0.6",
            tcp("10.244.0.1", "10.244.0.6"),
        ));
        let d = drop_of(&c);
        assert_eq!(d.kind, "device");
        assert_eq!(
            d.message,
            "port veth-b of bridge cni0 in node node-1 has no carrier: its peer eth0 in pod default/b is administratively down (ip link set eth0 up)"
        );
        assert_eq!(d.about, Some(pod("default/b")));
    }

    #[test]
    fn bridge_port_admin_down_itself_is_the_bridge_side_fault() {
        let mut f = Bridged::new();
        set_dev(&mut f.host, "veth-b", "admin_up", json!(false));
        set_dev(&mut f.host, "veth-b", "oper_state", json!("DOWN"));
        let c = one(send(
            &f.stacks(),
            &host(),
            "cni0",
            "10.244.0.6",
            tcp("10.244.0.1", "10.244.0.6"),
        ));
        let d = drop_of(&c);
        assert_eq!(d.kind, "device");
        assert_eq!(
            d.message,
            "port veth-b of bridge cni0 in node node-1 is down"
        );
        assert_eq!(d.about, None);
    }

    #[test]
    fn bridge_hairpin_off_drops_the_frame_sent_back_out_of_its_ingress_port() {
        let s = Bridged::new().stacks();
        let c = one(send_in(
            &s,
            &host(),
            "cni0",
            "10.244.0.5",
            tcp("10.244.0.5", "10.244.0.5"),
            Some("veth-a"),
        ));
        let d = drop_of(&c);
        assert_eq!(d.kind, "bridge");
        assert_eq!(
            d.message,
            "bridge cni0 of node node-1 would send the frame back out of veth-a, the port it came in by, but the port's hairpin flag is off: the bridge drops it (bridge link set dev veth-a hairpin on)"
        );
        // Another ingress port: no hairpin needed.
        let c = one(send_in(
            &s,
            &host(),
            "cni0",
            "10.244.0.5",
            tcp("10.244.0.6", "10.244.0.5"),
            Some("veth-b"),
        ));
        assert!(matches!(c.end, LinkEnd::Netns { .. }), "{c:#?}");
    }

    #[test]
    fn bridge_hairpin_on_carries_back_to_the_sender() {
        let mut f = Bridged::new();
        set_dev(&mut f.host, "veth-a", "hairpin", json!(true));
        let c = one(send_in(
            &f.stacks(),
            &host(),
            "cni0",
            "10.244.0.5",
            tcp("10.244.0.5", "10.244.0.5"),
            Some("veth-a"),
        ));
        assert_eq!(
            c.end,
            LinkEnd::Netns {
                to: pod("default/a"),
                iif: "eth0".into()
            }
        );
    }

    #[test]
    fn bridge_hairpin_not_collected_is_assumed_off() {
        let mut f = Bridged::new();
        set_dev(&mut f.host, "veth-a", "hairpin", Value::Null);
        let c = one(send_in(
            &f.stacks(),
            &host(),
            "cni0",
            "10.244.0.5",
            tcp("10.244.0.5", "10.244.0.5"),
            Some("veth-a"),
        ));
        assert!(
            drop_of(&c)
                .message
                .contains("hairpin flag is not collected")
        );
        assert!(c.steps.contains(&LinkStep::Other(
            "cannot check the hairpin flag of veth-a (not collected): assumed off".into()
        )));
    }

    /// What Linux does: a bridge floods a frame it has no FDB entry for (and
    /// the ARP request before it) out of every port, a physical uplink too,
    /// and the router on that wire answers.
    #[test]
    fn bridge_floods_out_of_a_physical_port_to_the_wire() {
        let host_ns = json!({
            "interfaces": [
                dev(2, "eth0", "device", json!({"master": "br0"})),
                dev(3, "br0", "bridge", json!({"addresses": ["192.168.0.1/24"]}))
            ],
            "routes": [
                {"dst": "192.168.0.0/24", "dev": "br0", "scope": "link"},
                {"dst": "0.0.0.0/0", "gateway": "192.168.0.254", "dev": "br0"}
            ]
        });
        let s = stacks(vec![node("node-1", host_ns, vec![])]);
        let c = one(send(
            &s,
            &host(),
            "br0",
            "192.168.0.254",
            tcp("192.168.0.1", "8.8.8.8"),
        ));
        assert_eq!(
            c.end,
            LinkEnd::Wire {
                netns: host(),
                oif: "eth0".into(),
                next_hop: ip("192.168.0.254")
            }
        );
    }

    // ---- 3. FAILED / INCOMPLETE neighbour entries ------------------------------

    #[test]
    fn failed_entry_is_asked_again_and_the_bridge_netns_answers() {
        let mut f = Bridged::new();
        push(
            &mut f.a,
            "neighbours",
            json!({"ip": "10.244.0.1", "dev": "eth0", "state": "FAILED"}),
        );
        let c = one(send(
            &f.stacks(),
            &pod("default/a"),
            "eth0",
            "10.244.0.1",
            tcp("10.244.0.5", "8.8.8.8"),
        ));
        assert_eq!(
            c.steps,
            vec![
                step_dev("eth0", "veth", 1500),
                LinkStep::VethPeer {
                    netns: host(),
                    dev: "veth-a".into()
                },
                LinkStep::Other("veth-a is a port of bridge cni0".into()),
                LinkStep::Resolved {
                    dev: "eth0".into(),
                    ip: ip("10.244.0.1"),
                    by: "node node-1 holds 10.244.0.1".into(),
                    was: Some("FAILED".into())
                },
            ]
        );
        assert_eq!(
            c.end,
            LinkEnd::Netns {
                to: host(),
                iif: "veth-a".into()
            }
        );
    }

    #[test]
    fn failed_entry_nobody_answers_drops_with_the_state_in_the_message() {
        let mut f = Bridged::new();
        push(
            &mut f.a,
            "neighbours",
            json!({"ip": "10.244.0.99", "dev": "eth0", "state": "FAILED"}),
        );
        let c = one(send(
            &f.stacks(),
            &pod("default/a"),
            "eth0",
            "10.244.0.99",
            tcp("10.244.0.5", "10.244.0.99"),
        ));
        let d = drop_of(&c);
        assert_eq!(d.kind, "neighbour");
        assert_eq!(
            d.message,
            "pod default/a's neighbour entry for 10.244.0.99 on eth0 is FAILED, and asked again: nothing answers ARP for 10.244.0.99 on eth0 of pod default/a: neither node node-1 nor any port of bridge cni0 holds it"
        );
        assert_eq!(d.about, Some(host()));
        // Without the entry, the same drop carries no state.
        let c = one(send(
            &Bridged::new().stacks(),
            &pod("default/a"),
            "eth0",
            "10.244.0.99",
            tcp("10.244.0.5", "10.244.0.99"),
        ));
        assert!(
            drop_of(&c)
                .message
                .starts_with("nothing answers ARP for 10.244.0.99")
        );
    }

    #[test]
    fn incomplete_entry_is_asked_again_and_proxy_arp_answers() {
        let mut f = Calico::new();
        push(
            &mut f.a,
            "neighbours",
            json!({"ip": "169.254.1.1", "dev": "eth0", "state": "INCOMPLETE"}),
        );
        let c = one(send(
            &f.stacks(),
            &pod("default/a"),
            "eth0",
            "169.254.1.1",
            tcp("10.244.0.5", "8.8.8.8"),
        ));
        assert_eq!(
            c.steps.last(),
            Some(&LinkStep::Resolved {
                dev: "eth0".into(),
                ip: ip("169.254.1.1"),
                by: "node node-1 answers by proxy ARP on cali1".into(),
                was: Some("INCOMPLETE".into())
            })
        );
        assert!(matches!(c.end, LinkEnd::Netns { .. }));
    }

    #[test]
    fn failed_entry_on_a_bridge_is_asked_again_by_flooding() {
        let mut f = Bridged::new();
        push(
            &mut f.host,
            "neighbours",
            json!({"ip": "10.244.0.6", "dev": "cni0", "state": "FAILED"}),
        );
        let c = one(send(
            &f.stacks(),
            &host(),
            "cni0",
            "10.244.0.6",
            tcp("10.244.0.1", "10.244.0.6"),
        ));
        assert_eq!(
            c.steps[1],
            LinkStep::Resolved {
                dev: "cni0".into(),
                ip: ip("10.244.0.6"),
                by: "pod default/b holds 10.244.0.6".into(),
                was: Some("FAILED".into())
            }
        );
        assert!(matches!(&c.end, LinkEnd::Netns { to, .. } if *to == pod("default/b")));
    }

    #[test]
    fn failed_entry_toward_the_wire_is_noted_as_asked_again() {
        let mut f = Bridged::new();
        push(
            &mut f.host,
            "neighbours",
            json!({"ip": "192.168.0.254", "dev": "eth0", "state": "FAILED"}),
        );
        let c = one(send(
            &f.stacks(),
            &host(),
            "eth0",
            "192.168.0.254",
            tcp("192.168.0.1", "8.8.8.8"),
        ));
        assert_eq!(
            c.steps,
            vec![
                step_dev("eth0", "device", 1500),
                LinkStep::Resolved {
                    dev: "eth0".into(),
                    ip: ip("192.168.0.254"),
                    by: "asked again on the link".into(),
                    was: Some("FAILED".into())
                },
            ]
        );
        assert!(matches!(c.end, LinkEnd::Wire { .. }));
    }

    // ---- 4. proxy ARP --------------------------------------------------------

    #[test]
    fn proxy_arp_on_the_cali_veth_answers_for_the_gateway() {
        let c = one(send(
            &Calico::new().stacks(),
            &pod("default/a"),
            "eth0",
            "169.254.1.1",
            tcp("10.244.0.5", "8.8.8.8"),
        ));
        assert_eq!(
            c.steps,
            vec![
                step_dev("eth0", "veth", 1500),
                LinkStep::VethPeer {
                    netns: host(),
                    dev: "cali1".into()
                },
                LinkStep::Resolved {
                    dev: "eth0".into(),
                    ip: ip("169.254.1.1"),
                    by: "node node-1 answers by proxy ARP on cali1".into(),
                    was: None
                },
            ]
        );
        assert_eq!(
            c.end,
            LinkEnd::Netns {
                to: host(),
                iif: "cali1".into()
            }
        );
    }

    fn calico_gateway_drop(f: Calico) -> LinkDrop {
        let c = one(send(
            &f.stacks(),
            &pod("default/a"),
            "eth0",
            "169.254.1.1",
            tcp("10.244.0.5", "8.8.8.8"),
        ));
        let d = drop_of(&c).clone();
        assert_eq!(d.kind, "neighbour");
        assert_eq!(d.about, Some(host()), "the far end does not answer");
        d
    }

    #[test]
    fn proxy_arp_without_forwarding_on_the_device_does_not_answer() {
        let mut f = Calico::new();
        f.host["sysctls"]["net.ipv4.conf.cali1.forwarding"] = json!("0");
        assert_eq!(
            calico_gateway_drop(f).message,
            "nothing answers ARP for 169.254.1.1 on eth0 of pod default/a: node node-1 proxies ARP on cali1 but does not forward (net.ipv4.conf.cali1.forwarding is 0), so it does not answer for 169.254.1.1"
        );
    }

    #[test]
    fn proxy_arp_falls_back_to_ip_forward_when_the_device_value_is_not_collected() {
        let mut f = Calico::new();
        let sysctls = f.host["sysctls"].as_object_mut().expect("sysctls");
        sysctls.remove("net.ipv4.conf.cali1.forwarding");
        sysctls.insert("net.ipv4.ip_forward".into(), json!("0"));
        assert!(
            calico_gateway_drop(f)
                .message
                .contains("does not forward (net.ipv4.ip_forward is 0)")
        );
    }

    #[test]
    fn proxy_arp_off_does_not_answer() {
        let mut f = Calico::new();
        f.host["sysctls"]["net.ipv4.conf.cali1.proxy_arp"] = json!("0");
        assert_eq!(
            calico_gateway_drop(f).message,
            "nothing answers ARP for 169.254.1.1 on eth0 of pod default/a: node node-1 neither holds 169.254.1.1 nor proxies ARP on cali1 (net.ipv4.conf.cali1.proxy_arp is 0)"
        );
        // net.ipv4.conf.all.proxy_arp is enough.
        let mut f = Calico::new();
        f.host["sysctls"]["net.ipv4.conf.cali1.proxy_arp"] = json!("0");
        f.host["sysctls"]["net.ipv4.conf.all.proxy_arp"] = json!("1");
        let c = one(send(
            &f.stacks(),
            &pod("default/a"),
            "eth0",
            "169.254.1.1",
            tcp("10.244.0.5", "8.8.8.8"),
        ));
        assert!(matches!(c.end, LinkEnd::Netns { .. }), "{c:#?}");
    }

    #[test]
    fn proxy_arp_without_a_route_away_does_not_answer() {
        let mut f = Calico::new();
        // Only the pod's own route and one back out of cali1 itself.
        f.host["routes"] = json!([
            {"dst": "10.244.0.5/32", "dev": "cali1", "scope": "link"},
            {"dst": "169.254.0.0/16", "dev": "cali1", "scope": "link"}
        ]);
        assert_eq!(
            calico_gateway_drop(f).message,
            "nothing answers ARP for 169.254.1.1 on eth0 of pod default/a: node node-1 proxies ARP on cali1 but has no route for 169.254.1.1 out of another device, so it does not answer"
        );
    }

    // ---- 5. VXLAN ------------------------------------------------------------

    #[test]
    fn vxlan_neighbour_and_unicast_fdb_entry_encapsulate_to_the_remote_vtep() {
        let mut h = flannel_host(1, VTEP_1);
        push(
            &mut h,
            "neighbours",
            json!({"ip": "10.244.1.0", "dev": "flannel.1", "lladdr": VTEP_2, "state": "PERMANENT"}),
        );
        // Another VTEP's entry and a default one: the unicast entry decides.
        push(
            &mut h,
            "fdb",
            to_json(&fdb("aa:aa:aa:aa:aa:03", "flannel.1", "192.168.0.3")),
        );
        push(
            &mut h,
            "fdb",
            to_json(&fdb(FLOOD_MAC, "flannel.1", "192.168.0.3")),
        );
        push(
            &mut h,
            "fdb",
            to_json(&fdb(VTEP_2, "flannel.1", "192.168.0.2")),
        );
        let s = flannel(h);
        let p = tcp("10.244.0.5", "10.244.1.7");
        let c = one(send(&s, &host(), "flannel.1", "10.244.1.0", p));
        let encap = Encap {
            kind: EncapKind::Vxlan,
            src: ip("192.168.0.1"),
            dst: ip("192.168.0.2"),
            vni: Some(1),
            port: Some(8472),
        };
        assert_eq!(
            c.steps,
            vec![
                step_dev("flannel.1", "vxlan", 1450),
                LinkStep::Neighbour(neigh("10.244.1.0", "flannel.1", Some(VTEP_2), "PERMANENT")),
                LinkStep::Fdb(fdb(VTEP_2, "flannel.1", "192.168.0.2")),
                LinkStep::Encapsulate {
                    dev: "flannel.1".into(),
                    encap
                },
            ]
        );
        let sport = vxlan_sport(&p);
        assert!((32768..=60999).contains(&sport));
        let outer = Packet {
            src: ip("192.168.0.1"),
            sport,
            dst: ip("192.168.0.2"),
            dport: 8472,
            protocol: Protocol::Udp,
            mark: 0,
            encap: None,
            reply: false,
            tos: 0,
            size: 1400 + VXLAN_OVERHEAD,
            icmp: None,
        };
        let inner = Packet {
            encap: Some(encap),
            ..p
        };
        assert_eq!(
            c.end,
            LinkEnd::Encapsulated {
                tunnel: "flannel.1".into(),
                packet: inner,
                outer,
                dst_mac: Some(VTEP_2.into())
            }
        );
        // The receiving side sees the same outer packet, and node-2's
        // flannel.1 takes it.
        assert_eq!(outer_of(&inner), Some(outer));
        let node2 = s.node("node-2").expect("node-2");
        assert_eq!(
            decapsulate(node2, &encap, Some(VTEP_2)),
            Ok("flannel.1".into())
        );
    }

    #[test]
    fn vxlan_fdb_entry_sets_its_own_vni_and_port() {
        let mut h = flannel_host(1, VTEP_1);
        push(
            &mut h,
            "neighbours",
            json!({"ip": "10.244.1.0", "dev": "flannel.1", "lladdr": VTEP_2, "state": "REACHABLE"}),
        );
        let mut e = fdb(VTEP_2, "flannel.1", "192.168.0.2");
        e.vni = Some(7);
        e.port = Some(4789);
        push(&mut h, "fdb", to_json(&e));
        let c = one(send(
            &flannel(h),
            &host(),
            "flannel.1",
            "10.244.1.0",
            tcp("10.244.0.5", "10.244.1.7"),
        ));
        match &c.end {
            LinkEnd::Encapsulated { packet, outer, .. } => {
                let encap = packet.encap.expect("encapsulated");
                assert_eq!((encap.vni, encap.port), (Some(7), Some(4789)));
                assert_eq!(outer.dport, 4789);
            }
            other => panic!("expected encapsulation, got {other:?}"),
        }
    }

    #[test]
    fn vxlan_without_fdb_entry_or_default_drops_naming_the_mac() {
        let mut h = flannel_host(1, VTEP_1);
        push(
            &mut h,
            "neighbours",
            json!({"ip": "10.244.1.0", "dev": "flannel.1", "lladdr": VTEP_2, "state": "PERMANENT"}),
        );
        // An entry for another MAC does not do.
        push(
            &mut h,
            "fdb",
            to_json(&fdb("aa:aa:aa:aa:aa:03", "flannel.1", "192.168.0.3")),
        );
        let c = one(send(
            &flannel(h),
            &host(),
            "flannel.1",
            "10.244.1.0",
            tcp("10.244.0.5", "10.244.1.7"),
        ));
        assert_eq!(c.steps.len(), 2, "device and neighbour: {:#?}", c.steps);
        let d = drop_of(&c);
        assert_eq!(d.kind, "fdb");
        assert_eq!(
            d.message,
            "node node-1 has no FDB entry on flannel.1 for MAC aa:aa:aa:aa:aa:02 (neighbour 10.244.1.0) and no default (00:00:00:00:00:00) entry: the VXLAN frame has no remote VTEP to go to"
        );
        // Nor without the neighbour entry.
        let c = one(send(
            &flannel(flannel_host(1, VTEP_1)),
            &host(),
            "flannel.1",
            "10.244.1.0",
            tcp("10.244.0.5", "10.244.1.7"),
        ));
        assert_eq!(drop_of(&c).kind, "fdb");
        assert!(
            drop_of(&c)
                .message
                .starts_with("node node-1 has no neighbour entry for 10.244.1.0 on flannel.1")
        );
    }

    #[test]
    fn vxlan_default_entries_flood_one_carriage_each() {
        let mut h = flannel_host(1, VTEP_1);
        let d2 = fdb(FLOOD_MAC, "flannel.1", "192.168.0.2");
        let d3 = fdb(FLOOD_MAC, "flannel.1", "192.168.0.3");
        push(&mut h, "fdb", to_json(&d2));
        push(&mut h, "fdb", to_json(&d3));
        let out = send(
            &flannel(h),
            &host(),
            "flannel.1",
            "10.244.1.0",
            tcp("10.244.0.5", "10.244.1.7"),
        );
        assert_eq!(out.len(), 2, "{out:#?}");
        for (c, (entry, remote)) in out.iter().zip([(&d2, "192.168.0.2"), (&d3, "192.168.0.3")]) {
            assert!(
                c.steps.contains(&LinkStep::Fdb(entry.clone())),
                "{:#?}",
                c.steps
            );
            assert!(c.steps.contains(&LinkStep::Other(
                "no neighbour entry for 10.244.1.0 on flannel.1: ARP is flooded to each default FDB entry's VTEP".into()
            )));
            match &c.end {
                LinkEnd::Encapsulated {
                    outer,
                    dst_mac,
                    packet,
                    ..
                } => {
                    assert_eq!(outer.dst, ip(remote));
                    assert_eq!(packet.encap.and_then(|e| e.vni), Some(1));
                    assert_eq!(*dst_mac, None);
                }
                other => panic!("expected encapsulation, got {other:?}"),
            }
        }
    }

    // ---- 6. decapsulate ------------------------------------------------------

    fn vxlan_from_node1(vni: u32, port: u16) -> Encap {
        Encap {
            kind: EncapKind::Vxlan,
            src: ip("192.168.0.1"),
            dst: ip("192.168.0.2"),
            vni: Some(vni),
            port: Some(port),
        }
    }

    fn node2(h: Value) -> Netstack {
        Netstack::new(
            "node node-2".into(),
            serde_json::from_value(h).expect("test netns dump"),
        )
    }

    #[test]
    fn decapsulate_takes_a_matching_vxlan_packet() {
        let n = node2(flannel_host(2, VTEP_2));
        assert_eq!(
            decapsulate(&n, &vxlan_from_node1(1, 8472), Some("AA:AA:AA:AA:AA:02")),
            Ok("flannel.1".into())
        );
        assert_eq!(
            decapsulate(&n, &vxlan_from_node1(1, 8472), None),
            Ok("flannel.1".into())
        );
    }

    #[test]
    fn decapsulate_drops_a_wrong_vni_naming_the_device() {
        let n = node2(flannel_host(2, VTEP_2));
        let d = decapsulate(&n, &vxlan_from_node1(2, 8472), Some(VTEP_2)).expect_err("wrong VNI");
        assert_eq!(d.kind, "tunnel");
        assert_eq!(
            d.message,
            "node node-2's VXLAN device flannel.1 listens on UDP port 8472 with VNI 1, but the VXLAN packet from 192.168.0.1 carries VNI 2: the kernel drops it"
        );
    }

    #[test]
    fn decapsulate_drops_a_wrong_port_or_without_a_vxlan_device() {
        let n = node2(flannel_host(2, VTEP_2));
        let d = decapsulate(&n, &vxlan_from_node1(1, 4789), None).expect_err("wrong port");
        assert_eq!(d.kind, "tunnel");
        assert_eq!(
            d.message,
            "node node-2's VXLAN device flannel.1 listens on UDP port 8472, but the VXLAN packet from 192.168.0.1 is sent to port 4789: the kernel drops it"
        );
        let mut h = flannel_host(2, VTEP_2);
        h["interfaces"]
            .as_array_mut()
            .expect("interfaces")
            .truncate(1);
        let d = decapsulate(&node2(h), &vxlan_from_node1(1, 8472), None).expect_err("no device");
        assert_eq!(
            d.message,
            "node node-2 has no VXLAN device to take the VXLAN packet from 192.168.0.1 (UDP port 8472): the kernel drops it"
        );
    }

    #[test]
    fn decapsulate_drops_on_a_down_device() {
        let mut h = flannel_host(2, VTEP_2);
        set_dev(&mut h, "flannel.1", "admin_up", json!(false));
        set_dev(&mut h, "flannel.1", "oper_state", json!("DOWN"));
        let d = decapsulate(&node2(h), &vxlan_from_node1(1, 8472), Some(VTEP_2)).expect_err("down");
        assert_eq!(d.kind, "device");
        assert_eq!(
            d.message,
            "vxlan device flannel.1 of node node-2 is down: the vxlan packet from 192.168.0.1 is dropped"
        );
    }

    #[test]
    fn decapsulate_drops_a_frame_for_another_mac() {
        let n = node2(flannel_host(2, VTEP_2));
        let d = decapsulate(&n, &vxlan_from_node1(1, 8472), Some("aa:aa:aa:aa:aa:99"))
            .expect_err("stale MAC");
        assert_eq!(d.kind, "neighbour");
        assert_eq!(
            d.message,
            "the VXLAN frame from 192.168.0.1 is addressed to MAC aa:aa:aa:aa:aa:99, but flannel.1 of node node-2 has MAC aa:aa:aa:aa:aa:02: node node-2 drops it (the sender's neighbour entry for it is stale)"
        );
    }

    #[test]
    fn decapsulate_ipip_needs_an_ipip_device() {
        let ipip = Encap {
            kind: EncapKind::Ipip,
            src: ip("192.168.0.1"),
            dst: ip("192.168.0.2"),
            vni: None,
            port: None,
        };
        let mut h = flannel_host(2, VTEP_2);
        let d = decapsulate(&node2(h.clone()), &ipip, None).expect_err("no tunl0");
        assert_eq!(
            d.message,
            "node node-2 has no ipip device to take the ipip packet from 192.168.0.1: the kernel drops it"
        );
        push(
            &mut h,
            "interfaces",
            dev(
                6,
                "tunl0",
                "ipip",
                json!({"mtu": 1480, "oper_state": "UNKNOWN"}),
            ),
        );
        assert_eq!(decapsulate(&node2(h), &ipip, None), Ok("tunl0".into()));
    }

    // ---- 7. loopback, the wire, missing devices ------------------------------

    #[test]
    fn loopback_delivers_only_local_addresses() {
        let s = Bridged::new().stacks();
        let c = one(send(
            &s,
            &host(),
            "lo",
            "10.96.0.10",
            tcp("10.244.0.1", "10.96.0.10"),
        ));
        let d = drop_of(&c);
        assert_eq!(d.kind, "device");
        assert_eq!(
            d.message,
            "node node-1 sends the request for 10.96.0.10 out of lo, the loopback device, which only delivers to the netns's own addresses: it is dropped"
        );
        let c = one(send(
            &s,
            &host(),
            "lo",
            "192.168.0.1",
            tcp("192.168.0.1", "192.168.0.1"),
        ));
        assert_eq!(
            c.end,
            LinkEnd::Netns {
                to: host(),
                iif: "lo".into()
            }
        );
    }

    #[test]
    fn plain_device_is_the_wire() {
        let mut f = Bridged::new();
        push(
            &mut f.host,
            "neighbours",
            json!({"ip": "192.168.0.254", "dev": "eth0", "lladdr": "02:00:00:00:00:fe", "state": "REACHABLE"}),
        );
        let c = one(send(
            &f.stacks(),
            &host(),
            "eth0",
            "192.168.0.254",
            tcp("192.168.0.1", "8.8.8.8"),
        ));
        assert_eq!(
            c.steps,
            vec![
                step_dev("eth0", "device", 1500),
                LinkStep::Neighbour(neigh(
                    "192.168.0.254",
                    "eth0",
                    Some("02:00:00:00:00:fe"),
                    "REACHABLE"
                )),
            ]
        );
        assert_eq!(
            c.end,
            LinkEnd::Wire {
                netns: host(),
                oif: "eth0".into(),
                next_hop: ip("192.168.0.254")
            }
        );
    }

    #[test]
    fn neighbour_entry_without_a_mac_drops_the_frame() {
        let mut f = Bridged::new();
        push(
            &mut f.host,
            "neighbours",
            json!({"ip": "192.168.0.254", "dev": "eth0", "state": "STALE"}),
        );
        let c = one(send(
            &f.stacks(),
            &host(),
            "eth0",
            "192.168.0.254",
            tcp("192.168.0.1", "8.8.8.8"),
        ));
        let d = drop_of(&c);
        assert_eq!(d.kind, "neighbour");
        assert_eq!(
            d.message,
            "node node-1's neighbour entry for 192.168.0.254 on eth0 (STALE) has no MAC: the frame cannot be addressed"
        );
    }

    #[test]
    fn missing_device_drops_unless_the_devices_were_not_collected() {
        let c = one(send(
            &Bridged::new().stacks(),
            &host(),
            "eth9",
            "192.168.0.254",
            tcp("192.168.0.1", "8.8.8.8"),
        ));
        assert_eq!(
            drop_of(&c).message,
            "interface eth9 of node node-1 does not exist"
        );
        let mut f = Bridged::new();
        f.host["absent"] = json!({"interfaces": "permission denied"});
        let c = one(send(
            &f.stacks(),
            &host(),
            "eth9",
            "192.168.0.254",
            tcp("192.168.0.1", "8.8.8.8"),
        ));
        assert!(
            matches!(&c.end, LinkEnd::Wire { oif, .. } if oif == "eth9"),
            "{c:#?}"
        );
    }

    // ---- ipip, wireguard, stacked devices -----------------------------------

    #[test]
    fn ipip_encapsulates_to_the_gateway_and_needs_one() {
        let mut h = flannel_host(1, VTEP_1);
        push(
            &mut h,
            "interfaces",
            dev(
                6,
                "tunl0",
                "ipip",
                json!({"mtu": 1480, "oper_state": "UNKNOWN", "tunnel": {"local": "192.168.0.1"}}),
            ),
        );
        let s = flannel(h);
        let c = one(send(
            &s,
            &host(),
            "tunl0",
            "192.168.0.2",
            tcp("10.244.0.5", "10.244.1.7"),
        ));
        match &c.end {
            LinkEnd::Encapsulated {
                tunnel,
                outer,
                packet,
                ..
            } => {
                assert_eq!(tunnel, "tunl0");
                assert_eq!(
                    (outer.src, outer.dst),
                    (ip("192.168.0.1"), ip("192.168.0.2"))
                );
                assert_eq!(outer.protocol, Protocol::Ipip);
                assert_eq!(outer.size, 1400 + IPIP_OVERHEAD);
                assert_eq!(packet.encap.map(|e| e.kind), Some(EncapKind::Ipip));
            }
            other => panic!("expected encapsulation, got {other:?}"),
        }
        // No gateway: the next hop is the destination itself.
        let c = one(send(
            &s,
            &host(),
            "tunl0",
            "10.244.1.7",
            tcp("10.244.0.5", "10.244.1.7"),
        ));
        let d = drop_of(&c);
        assert_eq!(d.kind, "tunnel");
        assert!(
            d.message.contains("over tunl0 without a gateway"),
            "{}",
            d.message
        );
    }

    #[test]
    fn wireguard_sends_to_the_peer_whose_allowed_ips_hold_the_destination() {
        let mut h = flannel_host(1, VTEP_1);
        let wg = json!({"listen_port": 51820, "fwmark": 0x100000, "peers": [
            {"public_key": "peer-wide", "endpoint": ["192.168.0.3", 51820], "allowed_ips": ["10.244.0.0/16"]},
            {"public_key": "peer-2", "endpoint": ["192.168.0.2", 51820], "allowed_ips": ["10.244.1.0/24"]}
        ]});
        push(
            &mut h,
            "interfaces",
            dev(
                7,
                "wg0",
                "wireguard",
                json!({"mtu": 1440, "oper_state": "UNKNOWN", "wireguard": wg}),
            ),
        );
        let s = flannel(h);
        let c = one(send(
            &s,
            &host(),
            "wg0",
            "10.244.1.7",
            tcp("10.244.0.5", "10.244.1.7"),
        ));
        match &c.end {
            LinkEnd::Encapsulated { outer, .. } => {
                assert_eq!(
                    (outer.dst, outer.dport, outer.sport),
                    (ip("192.168.0.2"), 51820, 51820)
                );
                assert_eq!(outer.mark, 0x100000);
                assert_eq!(outer.protocol, Protocol::Udp);
            }
            other => panic!("expected encapsulation, got {other:?}"),
        }
        let c = one(send(
            &s,
            &host(),
            "wg0",
            "10.245.0.1",
            tcp("10.244.0.5", "10.245.0.1"),
        ));
        let d = drop_of(&c);
        assert_eq!(d.kind, "tunnel");
        assert_eq!(
            d.message,
            "no WireGuard peer of wg0 in node node-1 has 10.245.0.1 in its allowed-ips: the kernel drops the packet (ENOKEY)"
        );
    }

    #[test]
    fn pod_macvlan_leaves_by_its_parent_in_the_node_netns() {
        let mut f = Bridged::new();
        push(
            &mut f.a,
            "interfaces",
            dev(
                5,
                "net1",
                "macvlan",
                json!({"link": "eth0", "addresses": ["192.168.0.50/24"]}),
            ),
        );
        let c = one(send(
            &f.stacks(),
            &pod("default/a"),
            "net1",
            "192.168.0.254",
            tcp("192.168.0.50", "8.8.8.8"),
        ));
        assert_eq!(
            c.end,
            LinkEnd::Wire {
                netns: host(),
                oif: "eth0".into(),
                next_hop: ip("192.168.0.254")
            }
        );
        let mut f = Bridged::new();
        push(
            &mut f.a,
            "interfaces",
            dev(
                5,
                "net1",
                "macvlan",
                json!({"link": "eth0", "addresses": ["192.168.0.50/24"]}),
            ),
        );
        set_dev(&mut f.host, "eth0", "oper_state", json!("DOWN"));
        let c = one(send(
            &f.stacks(),
            &pod("default/a"),
            "net1",
            "192.168.0.254",
            tcp("192.168.0.50", "8.8.8.8"),
        ));
        let d = drop_of(&c);
        assert_eq!(d.kind, "device");
        assert_eq!(
            d.message,
            "parent device eth0 in node node-1 of macvlan net1 is down or has no carrier"
        );
    }
}
