//! A node hop that does what the node's kernel does, and nothing a CNI would
//! add: the host's forwarding pipeline ([`Netns::forward`]: PREROUTING,
//! routing with the policy rules, INPUT or FORWARD, POSTROUTING) decides
//! every branch, and each branch that leaves the node is followed the way
//! the kernel sends it:
//!
//! - out of a pod's veth, or of the bridge its veth is enslaved to: to the pod;
//! - out of a VXLAN device: the neighbour entry gives the MAC, the device's
//!   FDB the remote VTEP, and the packet is encapsulated (VNI, port and local
//!   address of the device) toward the node owning that address, whose
//!   device must have that MAC (and accept that VNI and port);
//! - out of an IP-in-IP device: encapsulated toward the route's gateway;
//! - out of any other device: to the node whose address is the L2 next hop,
//!   else outside the cluster (for a destination in the cluster, with a
//!   warning that only the network between the nodes can carry it there).
//!
//! When the node's NAT changes the destination (conntrack undoing a
//! masquerade for a reply, a DNAT of the node's own rules), the branch is
//! followed to the new destination. A tunnel's outer packet must have a
//! route and an up device, and a tunnel device must not be narrower than
//! the sending pod's interface. Every drop is reported with what decided it,
//! and the underlay of each hop between nodes or to the outside is checked by
//! the cloud provider ([`host::infra`](crate::host::infra)). The checks a CNI
//! implies beyond the kernel (expected devices, MTUs, routes its agent
//! programs) are the plugin's to add.
//!
//! [`CniPlugin`](crate::CniPlugin)'s node hops use it by default; a plugin
//! that overrides one can still call it and add its own checks:
//!
//! ```
//! use skoop_sdk::prelude::*;
//!
//! fn to_pod(node: &Node, upstream: Option<&Link>, packet: Packet, pod: &Pod) -> Result<NodeStep> {
//!     let mut hop = KernelHop::new(node, upstream, packet);
//!     // A check of your CNI's own, reported on this node's hop.
//!     hop.findings().sysctl(
//!         &host::Netns::node(&node.name),
//!         "net.ipv4.ip_forward",
//!         "1",
//!         Level::Fatal,
//!         "the node routes pod traffic",
//!     )?;
//!     hop.to_pod(pod)
//! }
//! ```

use std::net::Ipv4Addr;

use crate::findings::{Expect, route_kind_name};
use crate::host::{Fate, ForwardQuery, Forwarded, Interface, Netns, RouteKind, cluster, infra};
use crate::types::*;
use crate::{Findings, Result, VethPod};

/// Where a packet is headed: as the host dispatched it, or, when the
/// node's NAT changed its destination, what the new destination is.
#[derive(Clone)]
enum Toward {
    /// A pod on this node.
    LocalPod(Pod),
    /// This node itself.
    Local,
    /// Another node (its host network, or a pod on it).
    Node(Node),
    /// Outside the cluster.
    External,
}

/// What the pipeline did with the packet at this node.
struct Walk {
    /// The packet as it entered the pipeline (decapsulated).
    packet: Packet,
    /// The branches that go on (transmitted or delivered).
    live: Vec<Forwarded>,
    /// The packets of the branches it dropped (already reported).
    dropped: Vec<Packet>,
}

/// A local pod's veth on the node: its name, and the bridge it is enslaved to.
struct Peer {
    name: String,
    master: Option<String>,
}

/// One packet at one node, handled as the node's kernel handles it.
///
/// Build it with [`KernelHop::new`], optionally add findings of your own
/// with [`KernelHop::findings`], then finish it with the method matching the
/// destination the host dispatched: [`to_pod`](KernelHop::to_pod),
/// [`to_host`](KernelHop::to_host), [`to_external`](KernelHop::to_external)
/// or [`serve`](KernelHop::serve).
pub struct KernelHop<'a> {
    node: &'a Node,
    upstream: Option<&'a Link>,
    packet: Packet,
    veth: VethPod,
    ns: Netns,
    f: Findings,
}

impl<'a> KernelHop<'a> {
    /// `packet` at `node`, arrived over `upstream` (None: the node originates it).
    pub fn new(node: &'a Node, upstream: Option<&'a Link>, packet: Packet) -> Self {
        KernelHop {
            node,
            upstream,
            packet,
            veth: VethPod::new(None, None),
            ns: Netns::node(&node.name),
            f: Findings::new(),
        }
    }

    /// How pods are attached (the default: `VethPod::new(None, None)`, a veth
    /// on any bridge or none): used to find and check a local pod's veth.
    pub fn veth(mut self, veth: VethPod) -> Self {
        self.veth = veth;
        self
    }

    /// The findings of this hop so far: add your own checks here; they are
    /// attached to the step this hop returns.
    pub fn findings(&mut self) -> &mut Findings {
        &mut self.f
    }

    /// The packet is for `pod`: on this node, the branch must leave by the
    /// pod's veth (or the bridge it is enslaved to); on another node, it is
    /// followed toward that node.
    pub fn to_pod(mut self, pod: &Pod) -> Result<NodeStep> {
        if pod.host_network {
            return match cluster::node(&pod.node) {
                Some(n) if n.name != self.node.name => self.to_host(&n),
                _ => self.serve(),
            };
        }
        if pod.node == self.node.name {
            return self.walk(Toward::LocalPod(pod.clone()));
        }
        match cluster::node(&pod.node) {
            Some(target) => self.walk(Toward::Node(target)),
            None => {
                self.f.fatal(format!(
                    "pod {} runs on node {}, which is not in the cluster",
                    pod.id(),
                    pod.node
                ));
                self.f.dropped()
            }
        }
    }

    /// The packet is for `target`'s host network.
    pub fn to_host(self, target: &Node) -> Result<NodeStep> {
        if target.name == self.node.name {
            return self.serve();
        }
        self.walk(Toward::Node(target.clone()))
    }

    /// The packet is for an address outside the cluster.
    pub fn to_external(self) -> Result<NodeStep> {
        self.walk(Toward::External)
    }

    /// The packet is for this node: the kernel must deliver it locally, and
    /// (for a request) something must listen — unless the node's NAT sends
    /// it on (a reply whose masquerade conntrack undoes, a port the node
    /// DNATs to a pod), which is then followed.
    pub fn serve(self) -> Result<NodeStep> {
        self.walk(Toward::Local)
    }

    /// Run the pipeline and follow each branch toward where it is headed.
    fn walk(mut self, toward: Toward) -> Result<NodeStep> {
        let Some(walk) = self.ingress()? else {
            return self.f.dropped();
        };
        let mut transmissions = Vec::new();
        let mut dropped = walk.dropped;
        let mut served = false;
        let mut peers: Vec<(String, Option<Peer>)> = Vec::new();
        for o in walk.live {
            let toward = if o.packet.dst == walk.packet.dst {
                toward.clone()
            } else {
                self.retarget(&o.packet, &toward)
            };
            let dir = o.packet.direction();
            let sent = match (&toward, &o.fate) {
                (Toward::Local, Fate::Deliver(_)) | (Toward::External, Fate::Deliver(_)) => {
                    if matches!(toward, Toward::External) {
                        // The node holds the address: the kernel answers it itself.
                        self.f.info(format!(
                            "node {} delivers the {dir} for {} locally: it holds the address",
                            self.node.name, o.packet.dst
                        ));
                    }
                    if !o.packet.reply {
                        self.f.listening(&self.ns, &o.packet, Level::Fatal)?;
                    }
                    served = true;
                    continue;
                }
                (_, Fate::Deliver(_)) => {
                    self.f.fatal(format!(
                        "node {} delivers the {dir} for {} ({}) to itself: it holds the address",
                        self.node.name,
                        o.packet.dst,
                        whom(&toward)
                    ));
                    None
                }
                (Toward::Local, Fate::Transmit { oif, .. }) => {
                    self.f.fatal(format!(
                        "node {} does not deliver the {dir} for {} locally: its kernel sends it out of {oif}{}",
                        self.node.name,
                        o.packet.dst,
                        by_route(&o)
                    ));
                    None
                }
                (Toward::LocalPod(pod), Fate::Transmit { oif, next_hop }) => {
                    let id = pod.id();
                    let peer = match peers.iter().position(|(p, _)| *p == id) {
                        Some(i) => &peers[i].1,
                        None => {
                            let peer = self.peer(pod)?;
                            peers.push((id, peer));
                            &peers[peers.len() - 1].1
                        }
                    };
                    match peer {
                        Some(peer) => self.onto_veth(&o, oif, *next_hop, pod, peer)?,
                        None => None,
                    }
                }
                (_, Fate::Transmit { oif, next_hop }) => {
                    self.transmit(&o, oif, *next_hop, &toward)?
                }
                (_, Fate::Drop(_)) => None,
            };
            match sent {
                Some(t) => transmissions.push(t),
                None => dropped.push(o.packet),
            }
        }
        if transmissions.is_empty() && served {
            return Ok(self.f.into_step(NodeStep::serve()));
        }
        self.finish(transmissions, dropped)
    }

    /// The node's NAT changed the destination (conntrack undoing a
    /// masquerade for a reply, a DNAT of the node's own rules): where the
    /// packet now heads.
    fn retarget(&self, packet: &Packet, was: &Toward) -> Toward {
        // Port 0: a node's address is the node, never one of its NodePorts.
        match cluster::classify(packet.dst, 0, packet.protocol) {
            Ok(Endpoint::Pod(p)) if !p.host_network && p.node == self.node.name => {
                Toward::LocalPod(p)
            }
            Ok(Endpoint::Pod(p)) => match cluster::node(&p.node) {
                Some(n) if n.name == self.node.name => Toward::Local,
                Some(n) => Toward::Node(n),
                None => was.clone(),
            },
            Ok(Endpoint::Node(n)) if n.name == self.node.name => Toward::Local,
            Ok(Endpoint::Node(n)) => Toward::Node(n),
            Ok(Endpoint::External(_)) => Toward::External,
            Ok(Endpoint::Service(_)) | Err(_) => was.clone(),
        }
    }

    /// The node-side veth of a local pod, checked; `None`: the pod is cut
    /// off (reported).
    fn peer(&mut self, pod: &Pod) -> Result<Option<Peer>> {
        let Some(name) = self.veth.node_side(pod, &mut self.f)? else {
            return Ok(None);
        };
        let master = self
            .f
            .tolerate(
                &format!("interface {name} of {}", self.ns.label()),
                self.ns.interface(&name),
            )?
            .flatten()
            .and_then(|i| i.master);
        Ok(Some(Peer { name, master }))
    }

    /// A branch for a pod on this node must leave by its veth, or by the
    /// bridge the veth is enslaved to.
    fn onto_veth(
        &mut self,
        o: &Forwarded,
        oif: &str,
        next_hop: Ipv4Addr,
        pod: &Pod,
        peer: &Peer,
    ) -> Result<Option<Transmission>> {
        if oif != peer.name && peer.master.as_deref() != Some(oif) {
            let bridge = peer
                .master
                .as_ref()
                .map(|m| format!(" or bridge {m}"))
                .unwrap_or_default();
            self.f.fatal(format!(
                "node {} sends the {} for pod {} ({}) out of {oif}{}, not to the pod's veth {}{bridge}",
                self.node.name,
                o.packet.direction(),
                pod.id(),
                o.packet.dst,
                by_route(o),
                peer.name
            ));
            return Ok(None);
        }
        if !o.bridged {
            self.f.neighbour(&self.ns, oif, next_hop, Level::Critical)?;
        }
        Ok(Some(
            Transmission::new(pod.hop(), LinkKind::Veth, o.packet)
                .oif(peer.name.clone())
                .iif(self.veth.iface.clone()),
        ))
    }

    /// The step: forward over `transmissions`, or a drop when none is left.
    fn finish(self, transmissions: Vec<Transmission>, dropped: Vec<Packet>) -> Result<NodeStep> {
        if transmissions.is_empty() {
            return self.f.dropped();
        }
        let mut step = NodeStep::forward(transmissions);
        step.dropped = dropped;
        Ok(self.f.into_step(step))
    }

    /// Decapsulation (a tunnel packet goes to the device that terminates
    /// it), then the kernel pipeline. Drops are reported; `None`: the
    /// pipeline could not run (the findings say why).
    fn ingress(&mut self) -> Result<Option<Walk>> {
        if !self.node.ready {
            self.f.fatal(format!("node {} is NotReady", self.node.name));
        }
        let mut packet = self.packet;
        let mut iif = None;
        let mut l2_next_hop = None;
        if let Some(up) = self.upstream {
            l2_next_hop = up.next_hop_address;
            iif = up.iif.clone();
            if iif.is_none() && matches!(up.kind, LinkKind::Infra | LinkKind::External) {
                iif = self.node.host_interface.clone();
            }
            if let Some(encap) = packet.encap {
                let Some(dev) = self.terminating_device(&encap, up.iif.as_deref())? else {
                    return Ok(None);
                };
                packet = packet.decapsulated();
                iif = Some(dev);
                l2_next_hop = None;
            }
        }
        let q = ForwardQuery {
            packet,
            iif,
            l2_next_hop,
            tos: 0,
        };
        let Some(outs) = self.f.forward(&self.ns, &q)? else {
            return Ok(None);
        };
        let mut walk = Walk {
            packet: q.packet,
            live: vec![],
            dropped: vec![],
        };
        for o in outs {
            if let Fate::Drop(cause) = &o.fate {
                self.f.report_drop(&self.ns, &q.packet, &o);
                // An uncertain drop is a warning and a fact not collected
                // makes the hop "unknown": neither is a drop the findings
                // explain, so only certain drops end a branch here.
                if !o.uncertain && cause.kind != "unavailable" {
                    walk.dropped.push(o.packet);
                }
            } else {
                walk.live.push(o);
            }
        }
        Ok(Some(walk))
    }

    /// The tunnel device that receives `encap` here: the one the sender
    /// named, else the one of that kind (and VNI). `None`: the kernel drops
    /// the packet (reported).
    fn terminating_device(&mut self, encap: &Encap, named: Option<&str>) -> Result<Option<String>> {
        let kind = tunnel_kind(encap.kind);
        let name = match named {
            Some(n) => Some(n.to_string()),
            None => self
                .f
                .tolerate(
                    &format!("interfaces of {}", self.ns.label()),
                    self.ns.interfaces(),
                )?
                .unwrap_or_default()
                .into_iter()
                .find(|i| i.kind == kind && (encap.vni.is_none() || i.vxlan_id == encap.vni))
                .map(|i| i.name),
        };
        let Some(name) = name else {
            if !self.f.unknown {
                self.f.critical(format!(
                    "node {} has no {kind} device for the {} {}: the kernel drops it",
                    self.node.name,
                    describe_encap(encap),
                    self.packet.tuple()
                ));
            }
            return Ok(None);
        };
        let expect = Expect {
            kind: Some(kind),
            ..Expect::default()
        };
        let dev = self.f.interface(&self.ns, &name, expect)?;
        if self.f.blocking() {
            return Ok(None);
        }
        if let Some(dev) = dev
            && encap.kind == EncapKind::Vxlan
        {
            let what = format!("{name} of node {}", self.node.name);
            if let (Some(have), Some(sent)) = (dev.vxlan_id, encap.vni)
                && have != sent
            {
                self.f.critical(format!(
                    "{what} has VNI {have}, but the VXLAN packet from {} carries VNI {sent}: the kernel drops it",
                    encap.src
                ));
                return Ok(None);
            }
            if let (Some(have), Some(sent)) = (dev.vxlan_port, encap.port)
                && have != sent
            {
                self.f.critical(format!(
                    "{what} listens on UDP port {have}, but the VXLAN packet from {} is sent to port {sent}: the kernel drops it",
                    encap.src
                ));
                return Ok(None);
            }
        }
        Ok(Some(name))
    }

    /// Where one transmitted branch goes; `None`: it goes nowhere (reported).
    fn transmit(
        &mut self,
        o: &Forwarded,
        oif: &str,
        next_hop: Ipv4Addr,
        toward: &Toward,
    ) -> Result<Option<Transmission>> {
        let dev = self
            .f
            .tolerate(
                &format!("interface {oif} of {}", self.ns.label()),
                self.ns.interface(oif),
            )?
            .flatten();
        let packet = o.packet;
        let dir = packet.direction();
        match dev.as_ref().map(|d| d.kind.as_str()) {
            Some("vxlan") => return self.over_vxlan(o, oif, next_hop, dev.as_ref(), toward),
            Some("ipip") => return self.over_ipip(o, oif, next_hop, dev.as_ref(), toward),
            Some("veth") => {
                // A veth on the node leads into a pod, not toward another
                // node or the outside.
                self.f.fatal(format!(
                    "node {} sends the {dir} for {} ({}) into veth {oif}{}, a pod's interface",
                    self.node.name,
                    packet.dst,
                    whom(toward),
                    by_route(o)
                ));
                return Ok(None);
            }
            _ => {}
        }
        if !o.bridged {
            self.f.neighbour(&self.ns, oif, next_hop, Level::Fatal)?;
        }
        let next = cluster::node_by_ip(next_hop).filter(|n| n.name != self.node.name);
        if let Some(next) = next {
            if let Toward::Node(target) = toward
                && target.name != next.name
            {
                self.f.warning(format!(
                    "node {} sends the {dir} for {} (node {}) through node {}{}",
                    self.node.name,
                    packet.dst,
                    target.name,
                    next.name,
                    by_route(o)
                ));
            }
            let suspicions = infra::node_to_node(&self.node.name, oif, &next.name, &packet)?;
            self.f.extend(suspicions);
            let mut t = Transmission::new(next.hop(), LinkKind::Infra, packet)
                .oif(oif)
                .via(next_hop);
            t.iif = next.host_interface.clone();
            return Ok(Some(t));
        }
        match toward {
            Toward::External | Toward::Local | Toward::LocalPod(_) => {
                let suspicions = infra::node_to_external(&self.node.name, oif, &packet)?;
                self.f.extend(suspicions);
                Ok(Some(
                    Transmission::new(Hop::external(packet.dst), LinkKind::External, packet)
                        .oif(oif)
                        .via(next_hop),
                ))
            }
            Toward::Node(target) => {
                // The kernel hands it to a router outside the cluster: only
                // the network between the nodes (e.g. a cloud route table)
                // can carry it to the target; the cloud provider checks that.
                self.f.warning(format!(
                    "node {} sends the {dir} for {} (node {}) to {next_hop}{}, which is no node: it reaches node {} only if the network between the nodes routes {} there",
                    self.node.name,
                    packet.dst,
                    target.name,
                    by_route(o),
                    target.name,
                    packet.dst
                ));
                let suspicions = infra::node_to_node(&self.node.name, oif, &target.name, &packet)?;
                self.f.extend(suspicions);
                let mut t = Transmission::new(target.hop(), LinkKind::Infra, packet)
                    .oif(oif)
                    .via(next_hop);
                t.iif = target.host_interface.clone();
                Ok(Some(t))
            }
        }
    }

    /// Out of a VXLAN device: neighbour entry → MAC, FDB → remote VTEP.
    fn over_vxlan(
        &mut self,
        o: &Forwarded,
        oif: &str,
        next_hop: Ipv4Addr,
        dev: Option<&Interface>,
        toward: &Toward,
    ) -> Result<Option<Transmission>> {
        let name = &self.node.name;
        let neigh = self.f.tolerate(
            &format!("neighbour {next_hop} on {oif} of node {name}"),
            self.ns.neighbour(oif, next_hop),
        )?;
        let Some(neigh) = neigh else {
            return Ok(None);
        };
        let Some(fdb) = self
            .f
            .tolerate(&format!("FDB of {oif} on node {name}"), self.ns.fdb(oif))?
        else {
            return Ok(None);
        };
        // The kernel addresses the frame to the neighbour's MAC; without a
        // neighbour entry it can only flood its ARP to the all-zero entries.
        let mac = match &neigh {
            Some(n) if n.failed() || n.lladdr.is_none() => {
                self.f.critical(format!(
                    "node {name}'s neighbour entry for {next_hop} on {oif} is {} with no MAC: the VXLAN frame cannot be addressed",
                    n.state
                ));
                return Ok(None);
            }
            Some(n) => n.lladdr.clone(),
            None => None,
        };
        const FLOOD: &str = "00:00:00:00:00:00";
        let entry = match &mac {
            Some(mac) => fdb
                .iter()
                .find(|e| e.mac.eq_ignore_ascii_case(mac) && e.dst.is_some()),
            None => fdb.iter().find(|e| e.mac == FLOOD && e.dst.is_some()),
        };
        let Some(remote) = entry.and_then(|e| e.dst) else {
            let msg = match &mac {
                Some(mac) => format!(
                    "node {name} has no FDB entry on {oif} for MAC {mac} (neighbour {next_hop}): the kernel has no VTEP to send the VXLAN packet to"
                ),
                None => format!(
                    "node {name} has no neighbour entry for {next_hop} on {oif} and no default FDB entry to resolve it: the VXLAN packet has no destination"
                ),
            };
            self.f.critical(msg);
            return Ok(None);
        };
        let for_whom = match toward {
            Toward::Node(t) => format!(" for node {} ({})", t.name, t.ip),
            _ => String::new(),
        };
        let Some(peer) = cluster::node_by_ip(remote) else {
            self.f.critical(format!(
                "node {name}'s FDB entry on {oif} for {} (neighbour {next_hop}) points at {remote}, which is no node's address: the VXLAN packet{for_whom} goes nowhere",
                mac.as_deref().unwrap_or(FLOOD)
            ));
            return Ok(None);
        };
        if let Toward::Node(t) = toward
            && t.name != peer.name
        {
            self.f.warning(format!(
                "node {name}'s FDB entry on {oif} (neighbour {next_hop}) sends the VXLAN packet{for_whom} to node {} ({remote})",
                peer.name
            ));
        }
        let vni = dev.and_then(|d| d.vxlan_id);
        let remote_dev = peer_tunnel(&peer, "vxlan", vni);
        // The remote kernel takes only frames for its device's MAC.
        if let (Some(have), Some(want)) = (&mac, remote_dev.as_ref().and_then(|d| d.mac.as_ref()))
            && !have.eq_ignore_ascii_case(want)
        {
            self.f.critical(format!(
                "node {name}'s neighbour entry for {next_hop} on {oif} is {have}, but {} of node {} has MAC {want}: node {} drops the VXLAN frames (stale neighbour entry)",
                remote_dev.as_ref().map(|d| d.name.as_str()).unwrap_or(oif),
                peer.name,
                peer.name
            ));
            return Ok(None);
        }
        let encap = Encap {
            kind: EncapKind::Vxlan,
            src: dev.and_then(|d| d.vxlan_local).unwrap_or(self.node.ip),
            dst: remote,
            vni,
            port: dev.and_then(|d| d.vxlan_port),
        };
        let iif = remote_dev.map(|d| d.name);
        self.tunnel(o, oif, dev, &peer, encap, LinkKind::Vxlan, iif)
    }

    /// The part every tunnel shares: the inner packet must fit the device,
    /// the outer one is routed on the node and carried by the underlay to
    /// `peer`, where it arrives on `iif` (else on a device named as `oif`).
    #[allow(clippy::too_many_arguments)]
    fn tunnel(
        &mut self,
        o: &Forwarded,
        oif: &str,
        dev: Option<&Interface>,
        peer: &Node,
        encap: Encap,
        kind: LinkKind,
        iif: Option<String>,
    ) -> Result<Option<Transmission>> {
        if let Some(dev) = dev
            && !self.tunnel_mtu(dev, &o.packet)
        {
            return Ok(None);
        }
        let Some(underlay_if) = self.underlay(encap.dst, peer)? else {
            return Ok(None);
        };
        let packet = Packet {
            encap: Some(encap),
            mark: 0,
            ..o.packet
        };
        let suspicions = infra::node_to_node(&self.node.name, &underlay_if, &peer.name, &packet)?;
        self.f.extend(suspicions);
        Ok(Some(
            Transmission::new(peer.hop(), kind, packet)
                .oif(oif)
                .iif(iif.unwrap_or_else(|| oif.to_string())),
        ))
    }

    /// Out of an IP-in-IP device: encapsulated toward the route's gateway.
    fn over_ipip(
        &mut self,
        o: &Forwarded,
        oif: &str,
        next_hop: Ipv4Addr,
        dev: Option<&Interface>,
        toward: &Toward,
    ) -> Result<Option<Transmission>> {
        let name = &self.node.name;
        let Some(peer) = cluster::node_by_ip(next_hop) else {
            self.f.critical(format!(
                "node {name} sends the {} for {} over {oif} to {next_hop}{}, which is no node's address",
                o.packet.direction(),
                o.packet.dst,
                by_route(o)
            ));
            return Ok(None);
        };
        if let Toward::Node(t) = toward
            && t.name != peer.name
        {
            self.f.warning(format!(
                "node {name} sends the {} for {} (node {}) through node {} over {oif}",
                o.packet.direction(),
                o.packet.dst,
                t.name,
                peer.name
            ));
        }
        let encap = Encap {
            kind: EncapKind::Ipip,
            src: self.node.ip,
            dst: next_hop,
            vni: None,
            port: None,
        };
        let iif = peer_tunnel(&peer, "ipip", None).map(|d| d.name);
        self.tunnel(o, oif, dev, &peer, encap, LinkKind::Ipip, iif)
    }

    /// The outer packet of a tunnel is routed too: a route to `remote` and
    /// a neighbour that answers. Returns the device it leaves by (the host
    /// interface when the routes were not collected); `None`: no route.
    fn underlay(&mut self, remote: Ipv4Addr, peer: &Node) -> Result<Option<String>> {
        let fallback = self.node.host_interface.clone().unwrap_or_default();
        let what = format!("the route to {remote} on node {}", self.node.name);
        let Some(routes) = self
            .f
            .tolerate(&what, self.ns.route(remote, None, None, 0))?
        else {
            return Ok(Some(fallback));
        };
        let Some(route) = routes.first() else {
            self.f.fatal(format!(
                "node {} has no route to {remote} (node {}) for the tunnel's outer packet",
                self.node.name, peer.name
            ));
            return Ok(None);
        };
        if !matches!(route.kind, RouteKind::Unicast | RouteKind::Local) {
            self.f.fatal(format!(
                "node {} routes {remote} (node {}) to a {} route (`{}`): the tunnel's outer packet is discarded",
                self.node.name,
                peer.name,
                route_kind_name(route.kind),
                route.text
            ));
            return Ok(None);
        }
        let dev = route.dev.clone().unwrap_or(fallback);
        self.f.interface(&self.ns, &dev, Expect::default())?;
        self.f.neighbour(
            &self.ns,
            &dev,
            route.gateway.unwrap_or(remote),
            Level::Fatal,
        )?;
        if self.f.blocking() {
            return Ok(None);
        }
        Ok(Some(dev))
    }

    /// A pod of this node sending through a tunnel device whose MTU is below
    /// the pod's own: full-size packets are dropped (fragmentation needed).
    /// `false` when that is so (reported).
    fn tunnel_mtu(&mut self, dev: &Interface, packet: &Packet) -> bool {
        let Ok(Endpoint::Pod(pod)) = cluster::classify(packet.src, 0, packet.protocol) else {
            return true;
        };
        if pod.host_network || pod.node != self.node.name {
            return true;
        }
        let Ok(Some(eth)) = Netns::pod(&pod.id()).interface(&self.veth.iface) else {
            return true;
        };
        if eth.mtu <= dev.mtu {
            return true;
        }
        self.f.critical(format!(
            "interface {} of node {} has MTU {}, below the MTU {} of {} in pod {}: packets larger than {} bytes are dropped (fragmentation needed)",
            dev.name,
            self.node.name,
            dev.mtu,
            eth.mtu,
            self.veth.iface,
            pod.id(),
            dev.mtu
        ));
        false
    }
}

/// Where a packet is headed, for messages.
fn whom(toward: &Toward) -> String {
    match toward {
        Toward::LocalPod(p) => format!("pod {}", p.id()),
        Toward::Local => "this node".to_string(),
        Toward::Node(n) => format!("node {}", n.name),
        Toward::External => "the outside".to_string(),
    }
}

/// ` (`route`)` for messages, when a route decided.
fn by_route(o: &Forwarded) -> String {
    o.route
        .as_ref()
        .map(|r| format!(" (`{}`)", r.text))
        .unwrap_or_default()
}

fn tunnel_kind(kind: EncapKind) -> &'static str {
    match kind {
        EncapKind::Vxlan => "vxlan",
        EncapKind::Ipip => "ipip",
    }
}

fn describe_encap(e: &Encap) -> String {
    match (e.kind, e.vni) {
        (EncapKind::Vxlan, Some(vni)) => format!("VXLAN packet (VNI {vni}) from {}", e.src),
        (EncapKind::Vxlan, None) => format!("VXLAN packet from {}", e.src),
        (EncapKind::Ipip, _) => format!("IP-in-IP packet from {}", e.src),
    }
}

/// The tunnel device of `kind` (and VNI) on `peer`, from its dump (the
/// link's input interface, and its MAC); `None` when the dump does not say.
fn peer_tunnel(peer: &Node, kind: &str, vni: Option<u32>) -> Option<Interface> {
    Netns::node(&peer.name)
        .interfaces()
        .ok()?
        .into_iter()
        .find(|i| i.kind == kind && (vni.is_none() || i.vxlan_id == vni))
}
