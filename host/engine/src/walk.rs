//! The host's kernel walk of one net-node: a packet arrives (or is
//! originated), the netns's pipeline decides each branch, the link layer
//! follows each transmitted branch out of its device — through a tunnel,
//! whose outer packet takes its own pass through the same netns — until the
//! branch is delivered, sent on to another net-node, or dropped with what
//! decided it. A tunnel packet arriving here is first delivered as its outer
//! packet and decapsulated by the device that terminates it.
//!
//! The walk knows no CNI: the plugin is shown it afterwards and adds what
//! its CNI knows. Who is on the other end of a wire (another node, a router
//! outside the cluster) is decided from the cluster's addresses, and the
//! cloud provider checks the underlay between them.

use std::net::Ipv4Addr;

use crate::cluster::NodeFacts;
use crate::facts::Facts;
use crate::kernel_walk::{BranchEnd, KernelWalk, WalkBranch};
use crate::path::{Decision, LinkKind, NetNode, NetNodeKind, Transmission};
use crate::plugin::{CallError, Plugin};
use crate::suspicion::Level;
use crate::suspicion::Suspicion;
use skoop_netstack::link::{self, Carriage, Frame, LinkEnd, LinkStep, NetnsId};
use skoop_netstack::packet::{Packet, Protocol};
use skoop_netstack::{DropCause, Fate, ForwardQuery, Forwarded, Netstack};

/// Tunnels inside tunnels the walk follows at one net-node.
const MAX_PASSES: usize = 4;

/// How a packet reaches a net-node.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The packet as it travels (with its outer header on a tunnel).
    pub packet: Packet,
    /// The interface it arrives on; None: originated here.
    pub iif: Option<String>,
    /// The L2 next hop the sender resolved.
    pub l2_next_hop: Option<Ipv4Addr>,
    /// A tunnelled frame's destination MAC.
    pub dst_mac: Option<String>,
    /// The link it crossed.
    pub kind: Option<LinkKind>,
    /// The net-node that sent it.
    pub sender: Option<NetNode>,
    /// This net-node's conntrack finds the packet invalid for its
    /// connection (it saw only the other direction): ctstate INVALID.
    pub ct_invalid: bool,
}

impl Arrival {
    /// A packet the net-node originates.
    pub fn originated(packet: Packet) -> Arrival {
        Arrival {
            packet,
            iif: None,
            l2_next_hop: None,
            dst_mac: None,
            kind: None,
            sender: None,
            ct_invalid: false,
        }
    }

    /// A packet arriving over `tx`.
    pub fn over(tx: &Transmission) -> Arrival {
        Arrival {
            packet: tx.packet,
            iif: tx.iif.clone(),
            l2_next_hop: tx.next_hop_address,
            dst_mac: tx.dst_mac.clone(),
            kind: Some(tx.kind),
            sender: None,
            ct_invalid: false,
        }
    }
}

/// The netns of a net-node: a pod's, or a node's host netns.
pub fn netns_of(facts: &Facts, at: &NetNode) -> Option<NetnsId> {
    match at.kind {
        NetNodeKind::Node => Some(NetnsId::Node(at.id.clone())),
        NetNodeKind::Pod => {
            let node = facts
                .view
                .pods
                .get(&at.id)
                .map(|p| p.node.clone())
                .or_else(|| facts.netstacks.node_of_pod(&at.id))?;
            Some(NetnsId::Pod {
                node,
                pod: at.id.clone(),
            })
        }
        NetNodeKind::External => None,
    }
}

/// The net-node a netns is.
pub fn hop_of(ns: &NetnsId) -> NetNode {
    match ns {
        NetnsId::Node(n) => NetNode {
            kind: NetNodeKind::Node,
            id: n.clone(),
        },
        NetnsId::Pod { pod, .. } => NetNode {
            kind: NetNodeKind::Pod,
            id: pod.clone(),
        },
    }
}

/// Walks packets through net-nodes; the plugin lends the underlay checks
/// (its cloud provider) and the owners of tunnel addresses.
pub struct Walker<'a> {
    pub facts: &'a Facts,
    pub plugin: &'a mut dyn Plugin,
}

impl Walker<'_> {
    /// Walk `arrival` through net-node `at`.
    pub fn walk(&mut self, at: &NetNode, arrival: &Arrival) -> Result<KernelWalk, CallError> {
        let inner = Packet {
            encap: None,
            ..arrival.packet
        };
        let mut w = KernelWalk::new(at, inner);
        let Some(ns) = netns_of(self.facts, at) else {
            w.unknown(format!("{at}: no network namespace"));
            return Ok(w);
        };
        self.object_checks(&mut w, &ns);
        let stack = match self.facts.netstacks.netns(&ns) {
            Ok(s) => s,
            Err(e) => {
                w.unknown(format!("{at}: {e}"));
                return Ok(w);
            }
        };
        if let NetnsId::Pod { pod, .. } = &ns {
            pod_checks(&mut w, stack, pod);
        }
        match (arrival.packet.encap, &arrival.iif) {
            (Some(_), Some(iif)) => self.arrive_tunnelled(&mut w, &ns, stack, arrival, iif)?,
            _ => {
                let q = ForwardQuery {
                    packet: inner,
                    iif: arrival.iif.clone(),
                    l2_next_hop: arrival.l2_next_hop,
                    tos: 0,
                    stand_in: self.stand_in(&mut w, &ns, stack, &inner),
                    ct_invalid: arrival.ct_invalid,
                };
                let passes = self.pass(&mut w, stack, &q);
                for f in passes {
                    self.branch(&mut w, &ns, stack, vec![], f, 0)?;
                }
            }
        }
        Ok(w)
    }

    /// Service translations from the EndpointSlices, where the node's own
    /// rules cannot say: kube-proxy's nftables mode (not simulated), or
    /// rules that were not collected.
    fn stand_in(
        &self,
        w: &mut KernelWalk,
        ns: &NetnsId,
        stack: &Netstack,
        p: &Packet,
    ) -> Vec<Packet> {
        use crate::settings::ProxyMode;
        let NetnsId::Node(node) = ns else {
            return vec![];
        };
        let facts = self.facts;
        if p.reply || crate::service::find(&facts.view, p).is_none() {
            return vec![];
        }
        let why = match facts.settings.proxy_mode {
            ProxyMode::Nftables => match stack.nft() {
                Ok(Some(nft)) if crate::service::has_kube_proxy_table(nft) => return vec![],
                Ok(_) => "its dump holds no `ip kube-proxy` nftables table".to_string(),
                Err(e) => e.to_string(),
            },
            ProxyMode::Iptables => match stack.rules() {
                Ok(_) => return vec![],
                Err(e) => e.to_string(),
            },
            ProxyMode::Ipvs => match stack.ipvs(p) {
                Ok(_) => return vec![],
                Err(e) => e.to_string(),
            },
            ProxyMode::None => return vec![],
        };
        w.add(
            Level::Warning,
            format!(
                "cannot check kube-proxy's rules on node {node} ({why}): Service translation is taken from the EndpointSlices"
            ),
        );
        self.model_backends(node, p)
    }

    fn model_backends(&self, node: &str, p: &Packet) -> Vec<Packet> {
        let proxy = crate::service::ProxyConfig::from_settings(&self.facts.settings);
        crate::service::resolve(&self.facts.view, node, p, &proxy)
            .backends
            .into_iter()
            .map(|b| b.packet)
            .collect()
    }

    /// Object-level facts about the net-node itself.
    fn object_checks(&self, w: &mut KernelWalk, ns: &NetnsId) {
        let said = match ns {
            NetnsId::Node(n) => self
                .facts
                .view
                .nodes
                .get(n)
                .and_then(crate::objects::node_state),
            NetnsId::Pod { pod, .. } => self
                .facts
                .view
                .pods
                .get(pod)
                .and_then(crate::objects::pod_state),
        };
        if let Some((level, message)) = said {
            w.add(level, message);
        }
    }

    /// One pipeline pass, its facts-not-collected and notes reported.
    fn pass(&self, w: &mut KernelWalk, stack: &Netstack, q: &ForwardQuery) -> Vec<Forwarded> {
        let mut tables = self
            .facts
            .conntrack
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ct = tables.entry(stack.label.clone()).or_default();
        let out = stack.forward(ct, q);
        drop(tables);
        for f in &out {
            for u in &f.unchecked {
                w.add(Level::Warning, format!("cannot check {u}"));
            }
            for note in &f.notes {
                w.add(
                    Level::Warning,
                    format!("iptables of {}: {note}", stack.label),
                );
            }
        }
        let hops: Vec<(&str, Ipv4Addr)> = out
            .iter()
            .filter_map(|f| match &f.fate {
                Fate::Transmit { oif, next_hop } => Some((oif.as_str(), *next_hop)),
                _ => None,
            })
            .collect();
        if hops.len() > 1
            && hops.iter().any(|h| *h != hops[0])
            && let Some(r) = out.iter().find_map(|f| f.route.as_ref())
            && out
                .iter()
                .all(|f| f.route.as_ref().is_none_or(|o| o.text == r.text))
        {
            w.add(
                Level::Info,
                format!(
                    "{} has {} ECMP next hops to {} (`{}`): each is followed",
                    stack.label,
                    hops.len(),
                    q.packet.dst,
                    r.text
                ),
            );
        }
        w.decisions.extend(Decision::of(&stack.label, q, &out));
        out
    }

    /// A tunnel packet arrives: its outer packet is delivered here and the
    /// terminating device takes the inner one.
    fn arrive_tunnelled(
        &mut self,
        w: &mut KernelWalk,
        ns: &NetnsId,
        stack: &Netstack,
        arrival: &Arrival,
        iif: &str,
    ) -> Result<(), CallError> {
        let Some(encap) = arrival.packet.encap else {
            return Ok(());
        };
        let Some(outer) = link::outer_of(&arrival.packet) else {
            return Ok(());
        };
        let q = ForwardQuery::received(outer, iif, arrival.l2_next_hop);
        for f in self.pass(w, stack, &q) {
            match &f.fate {
                Fate::Deliver { .. } => {
                    match link::decapsulate(stack, &encap, arrival.dst_mac.as_deref()) {
                        Ok(dev) => {
                            let steps = vec![LinkStep::Decapsulate { dev: dev.clone() }];
                            let inner = Packet {
                                encap: None,
                                ..arrival.packet
                            };
                            let q = ForwardQuery {
                                stand_in: self.stand_in(w, ns, stack, &inner),
                                ct_invalid: arrival.ct_invalid,
                                ..ForwardQuery::received(inner, &dev, None)
                            };
                            for g in self.pass(w, stack, &q) {
                                // The flow's own packet's pass first.
                                let passes = vec![g.clone(), f.clone()];
                                self.branch_with(w, ns, stack, steps.clone(), passes, g, 0)?;
                            }
                        }
                        Err(d) => {
                            // A stale MAC is the sender's entry at fault.
                            let about = (d.kind == "neighbour")
                                .then_some(arrival.sender.as_ref())
                                .flatten();
                            w.add_about(about, Level::Critical, d.message.clone());
                            w.branches.push(WalkBranch {
                                passes: vec![f.clone()],
                                steps: vec![],
                                end: BranchEnd::Dropped {
                                    packet: arrival.packet,
                                    kind: d.kind.to_string(),
                                    cause: d.message,
                                },
                                mtus: vec![],
                            });
                        }
                    }
                }
                Fate::Drop(cause) => {
                    let what = format!(
                        "the {} packet carrying the {} from {}",
                        encap.kind.name(),
                        direction(&arrival.packet),
                        encap.src
                    );
                    self.dropped(
                        w,
                        ns,
                        stack,
                        vec![f.clone()],
                        vec![],
                        &f,
                        cause,
                        Some(&what),
                    );
                }
                Fate::Transmit { .. } => {
                    // The outer packet is not for this netns: it is routed
                    // on, still encapsulated.
                    self.branch(w, ns, stack, vec![], f.clone(), 1)?;
                }
            }
        }
        Ok(())
    }

    fn branch(
        &mut self,
        w: &mut KernelWalk,
        ns: &NetnsId,
        stack: &Netstack,
        steps: Vec<LinkStep>,
        f: Forwarded,
        depth: usize,
    ) -> Result<(), CallError> {
        let passes = vec![f.clone()];
        self.branch_with(w, ns, stack, steps, passes, f, depth)
    }

    /// Where one pipeline branch goes from here.
    #[allow(clippy::too_many_arguments)]
    fn branch_with(
        &mut self,
        w: &mut KernelWalk,
        ns: &NetnsId,
        stack: &Netstack,
        steps: Vec<LinkStep>,
        passes: Vec<Forwarded>,
        f: Forwarded,
        depth: usize,
    ) -> Result<(), CallError> {
        match &f.fate {
            Fate::Deliver { iif } => {
                self.delivered(w, stack, &f, iif);
                w.branches.push(WalkBranch {
                    passes,
                    steps,
                    end: BranchEnd::Delivered {
                        packet: f.packet,
                        iif: iif.clone(),
                    },
                    mtus: vec![],
                });
            }
            Fate::Drop(cause) => {
                self.dropped(w, ns, stack, passes, steps, &f, cause, None);
            }
            Fate::Transmit { oif, next_hop } => {
                let frame = Frame {
                    from: ns,
                    oif,
                    next_hop: *next_hop,
                    packet: f.packet,
                    ingress_port: f.ingress_port.as_deref(),
                };
                if self.bridged_without_conntrack(w, stack, &f) {
                    w.branches.push(WalkBranch {
                        passes,
                        steps,
                        end: BranchEnd::Dropped {
                            packet: f.packet,
                            kind: "bridge".into(),
                            cause: "bridged without conntrack".into(),
                        },
                        mtus: vec![],
                    });
                    return Ok(());
                }
                let mtu = stack.interface(oif).map(|i| (oif.clone(), i.mtu));
                for c in link::carry(&self.facts.netstacks, &frame) {
                    note_link(w, &stack.label, &f, &c.steps);
                    let mut steps = steps.clone();
                    steps.extend(c.steps.iter().cloned());
                    let mut mtus: Vec<(String, u32)> = mtu.clone().into_iter().collect();
                    self.carried(w, ns, stack, &f, passes.clone(), steps, &mut mtus, c, depth)?;
                }
            }
        }
        Ok(())
    }

    /// A reply a bridge forwards without br_netfilter is never seen by
    /// conntrack: the Service NAT its connection had is not undone, and the
    /// client's stack drops a reply from an address it never sent to.
    fn bridged_without_conntrack(
        &self,
        w: &mut KernelWalk,
        stack: &Netstack,
        f: &Forwarded,
    ) -> bool {
        if !(f.bridged && f.packet.reply) {
            return false;
        }
        let key = "net.bridge.bridge-nf-call-iptables";
        let nf = stack.sysctl(key);
        if nf == Some("1") {
            return false;
        }
        let natted = self
            .facts
            .conntrack
            .lock()
            .ok()
            .and_then(|t| {
                t.get(&stack.label)
                    .and_then(|ct| ct.reply_of(&f.packet).copied())
            })
            .is_some_and(|e| e.dnat() || e.snat());
        if !natted {
            return false;
        }
        let why = "the reply between two pods on the bridge is bridged without iptables, so conntrack never undoes the Service NAT and the client drops it";
        let msg = match nf {
            None => format!(
                "br_netfilter is not loaded on {} (no {key}): {why}",
                stack.label
            ),
            Some(v) => format!(
                "sysctl {key} of {} is {}, must be 1: {why}",
                stack.label,
                v.trim()
            ),
        };
        w.add(Level::Fatal, msg);
        true
    }

    /// Where a frame the link layer carried ends.
    #[allow(clippy::too_many_arguments)]
    fn carried(
        &mut self,
        w: &mut KernelWalk,
        ns: &NetnsId,
        stack: &Netstack,
        f: &Forwarded,
        passes: Vec<Forwarded>,
        steps: Vec<LinkStep>,
        mtus: &mut Vec<(String, u32)>,
        c: Carriage,
        depth: usize,
    ) -> Result<(), CallError> {
        let packet = f.packet;
        let end = match c.end {
            LinkEnd::Dropped(d) => {
                let uncollected = self.uncollected_pod(ns, &packet);
                if let Some(pod) = uncollected {
                    let why = format!("pod {pod}: its network namespace was not collected");
                    w.add(Level::Warning, format!("cannot check {why}"));
                    BranchEnd::Unknown { why }
                } else if d.kind == "unavailable" {
                    w.add(
                        Level::Warning,
                        format!("cannot check the link from {ns}: {}", d.message),
                    );
                    BranchEnd::Unknown { why: d.message }
                } else {
                    let level = if d.kind == "neighbour" || d.kind == "fdb" {
                        Level::Critical
                    } else {
                        Level::Fatal
                    };
                    let mut about = d.about.as_ref().map(hop_of);
                    let mut message = d.message.clone();
                    if about.is_none()
                        && (d.kind == "neighbour" || d.kind == "bridge")
                        && let Some((pod, why)) = self.address_not_held(&packet)
                    {
                        message = format!("{message}: {why}");
                        about = Some(pod);
                    }
                    w.add_about(about.as_ref(), level, message);
                    BranchEnd::Dropped {
                        packet,
                        kind: d.kind.to_string(),
                        cause: d.message,
                    }
                }
            }
            LinkEnd::Netns { to, iif } => {
                let kind = match to {
                    NetnsId::Pod { .. } | NetnsId::Node(_) if to != *ns => LinkKind::Veth,
                    _ => LinkKind::Local,
                };
                BranchEnd::Sent(Transmission {
                    next: hop_of(&to),
                    kind,
                    packet,
                    oif: Some(f_oif(f)),
                    iif: Some(iif),
                    next_hop_address: f_next_hop(f),
                    dst_mac: None,
                    mtu: None,
                })
            }
            LinkEnd::Wire { .. } if let Some(pod) = self.uncollected_pod(ns, &packet) => {
                let why = format!("pod {pod}: its network namespace was not collected");
                w.add(Level::Warning, format!("cannot check {why}"));
                BranchEnd::Unknown { why }
            }
            LinkEnd::Wire {
                netns: out_ns,
                oif,
                next_hop,
            } => match self.beyond_wire(
                w,
                &out_ns,
                &oif,
                next_hop,
                packet,
                LinkKind::Underlay,
                &steps,
            )? {
                Ok(tx) => BranchEnd::Sent(tx),
                Err(end) => end,
            },
            LinkEnd::Encapsulated {
                tunnel,
                packet: inner,
                outer,
                dst_mac,
            } => {
                if depth >= MAX_PASSES {
                    w.add(
                        Level::Warning,
                        format!(
                            "{}: tunnels nested too deep to follow at {}",
                            stack.label, tunnel
                        ),
                    );
                    BranchEnd::Unknown {
                        why: "nested tunnels".into(),
                    }
                } else {
                    return self.outer_pass(
                        w, ns, stack, passes, steps, mtus, &tunnel, inner, outer, dst_mac, depth,
                    );
                }
            }
        };
        w.branches.push(WalkBranch {
            passes,
            steps,
            end,
            mtus: std::mem::take(mtus),
        });
        Ok(())
    }

    /// A tunnel's outer packet leaves the netns as a packet of its own: its
    /// own pass (OUTPUT, routing, POSTROUTING) and link.
    #[allow(clippy::too_many_arguments)]
    fn outer_pass(
        &mut self,
        w: &mut KernelWalk,
        ns: &NetnsId,
        stack: &Netstack,
        passes: Vec<Forwarded>,
        steps: Vec<LinkStep>,
        mtus: &mut Vec<(String, u32)>,
        tunnel: &str,
        inner: Packet,
        outer: Packet,
        dst_mac: Option<String>,
        depth: usize,
    ) -> Result<(), CallError> {
        let Some(encap) = inner.encap else {
            return Ok(());
        };
        let q = ForwardQuery::originated(outer);
        let kind = LinkKind::of_tunnel(encap.kind);
        for o in self.pass(w, stack, &q) {
            let mut passes = passes.clone();
            passes.push(o.clone());
            let mut steps = steps.clone();
            match &o.fate {
                Fate::Transmit { oif, next_hop } => {
                    if let Some(r) = &o.route {
                        steps.push(LinkStep::Other(format!(
                            "the {} outer packet to {} routes `{}`",
                            encap.kind.name(),
                            encap.dst,
                            r.text
                        )));
                    }
                    let frame = Frame {
                        from: ns,
                        oif,
                        next_hop: *next_hop,
                        packet: o.packet,
                        ingress_port: None,
                    };
                    for c in link::carry(&self.facts.netstacks, &frame) {
                        note_link(w, &stack.label, &o, &c.steps);
                        let mut steps = steps.clone();
                        steps.extend(c.steps.iter().cloned());
                        let end = match c.end {
                            LinkEnd::Wire {
                                netns: out_ns,
                                oif,
                                next_hop,
                            } => {
                                // The underlay carries the outer packet; the
                                // path shows the inner one with its header.
                                let carried = Packet {
                                    encap: Some(skoop_netstack::packet::Encap {
                                        src: o.packet.src,
                                        ..encap
                                    }),
                                    ..inner
                                };
                                match self.beyond_wire(
                                    w, &out_ns, &oif, next_hop, carried, kind, &steps,
                                )? {
                                    Ok(mut tx) => {
                                        tx.oif = Some(tunnel.to_string());
                                        tx.dst_mac = dst_mac.clone();
                                        BranchEnd::Sent(tx)
                                    }
                                    Err(BranchEnd::Dropped { kind, cause, .. }) => {
                                        BranchEnd::Dropped {
                                            packet: inner,
                                            kind,
                                            cause,
                                        }
                                    }
                                    Err(end) => end,
                                }
                            }
                            LinkEnd::Dropped(d) => {
                                let msg = format!(
                                    "the {} outer packet to {} ({}): {}",
                                    encap.kind.name(),
                                    encap.dst,
                                    tunnel,
                                    d.message
                                );
                                w.add(Level::Fatal, msg.clone());
                                BranchEnd::Dropped {
                                    packet: inner,
                                    kind: d.kind.to_string(),
                                    cause: msg,
                                }
                            }
                            LinkEnd::Netns { to, iif } => BranchEnd::Sent(Transmission {
                                next: hop_of(&to),
                                kind,
                                packet: inner,
                                oif: Some(tunnel.to_string()),
                                iif: Some(iif),
                                next_hop_address: None,
                                dst_mac: dst_mac.clone(),
                                mtu: None,
                            }),
                            LinkEnd::Encapsulated { .. } => {
                                w.add(
                                    Level::Warning,
                                    format!(
                                        "{}: the {} outer packet to {} enters another tunnel, which is not followed",
                                        stack.label,
                                        encap.kind.name(),
                                        encap.dst
                                    ),
                                );
                                BranchEnd::Unknown {
                                    why: "nested tunnels".into(),
                                }
                            }
                        };
                        let _ = depth;
                        w.branches.push(WalkBranch {
                            passes: passes.clone(),
                            steps,
                            end,
                            mtus: mtus.clone(),
                        });
                    }
                }
                Fate::Drop(cause) => {
                    let what = format!(
                        "the {} outer packet to {} ({}) carrying the {}",
                        encap.kind.name(),
                        encap.dst,
                        tunnel,
                        direction(&inner)
                    );
                    self.dropped(w, ns, stack, passes, steps, &o, cause, Some(&what));
                }
                Fate::Deliver { .. } => {
                    let msg = format!(
                        "{} sends the {} outer packet for {} to its own address {}: the tunnel loops back",
                        stack.label,
                        encap.kind.name(),
                        inner.dst,
                        encap.dst
                    );
                    w.add(Level::Fatal, msg.clone());
                    w.branches.push(WalkBranch {
                        passes,
                        steps,
                        end: BranchEnd::Dropped {
                            packet: inner,
                            kind: "tunnel".into(),
                            cause: msg,
                        },
                        mtus: mtus.clone(),
                    });
                }
            }
        }
        mtus.clear();
        Ok(())
    }

    /// Out of a node onto the wire: who is at the next hop — a node (by its
    /// address, or one its dump holds) or a router beyond the cluster, which
    /// carries it by its destination — and what the cloud underlay does.
    /// `steps` are the link layer's decisions that led here (the FDB entry
    /// that chose a tunnel's remote end). Err: how the branch ends.
    #[allow(clippy::too_many_arguments)]
    fn beyond_wire(
        &mut self,
        w: &mut KernelWalk,
        out_ns: &NetnsId,
        oif: &str,
        next_hop: Ipv4Addr,
        packet: Packet,
        kind: LinkKind,
        steps: &[LinkStep],
    ) -> Result<Result<Transmission, BranchEnd>, CallError> {
        let facts = self.facts;
        let node_name = out_ns.node().to_string();
        let Some(src) = facts.view.nodes.get(&node_name) else {
            return Ok(Ok(external_tx(packet, oif, next_hop)));
        };
        let underlay_drop = |why: &str| BranchEnd::Dropped {
            packet,
            kind: "underlay".into(),
            cause: why.to_string(),
        };
        let dst = packet.encap.map(|e| e.dst).unwrap_or(packet.dst);
        let dir = direction(&packet);
        let node_at_dst = self.node_owning(dst)?;
        let pod_node = if node_at_dst.is_none() {
            self.pod_cidr_owner(dst)
        } else {
            None
        };
        let target = node_at_dst.clone().or_else(|| pod_node.clone());
        let at_next_hop = self.node_owning(next_hop)?;
        // The next hop is a node; else a router beyond the cluster carries
        // the packet to a node's address by itself, and to a pod address
        // only if it has a route for the pod CIDR (the warning below).
        let next = match (&at_next_hop, &node_at_dst) {
            (Some(n), _) if n.name != node_name => Some(n.clone()),
            (_, Some(t)) if t.name != node_name => Some(t.clone()),
            _ => None,
        };
        let pod_node = pod_node.filter(|n| n.name != node_name && next.is_none());
        if let (Some(t), Some(n)) = (&target, &next)
            && t.name != n.name
            && t.name != node_name
        {
            w.add(
                Level::Warning,
                format!(
                    "node {node_name} sends the {dir} for {dst} (node {}) through node {}{}: a detour",
                    t.name,
                    n.name,
                    route_of(w).map(|r| format!(" (`{r}`)")).unwrap_or_default()
                ),
            );
        }
        let next = match (next, pod_node) {
            (Some(n), _) => n,
            (None, Some(owner)) => {
                w.add(
                    Level::Warning,
                    format!(
                        "node {node_name} sends the {dir} for {dst} (node {}) to {next_hop}{}, which is no node: it reaches node {} only if the network between the nodes routes {} there",
                        owner.name,
                        route_of(w).map(|r| format!(" (`{r}`)")).unwrap_or_default(),
                        owner.name,
                        owner
                            .pod_cidrs
                            .iter()
                            .find(|c| c.contains(&dst))
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| dst.to_string())
                    ),
                );
                owner
            }
            (None, None) if packet.encap.is_some() => {
                let e = packet.encap.map(|e| e.kind.name()).unwrap_or_default();
                let msg = match self.chosen_by(steps) {
                    Some(by) => format!(
                        "node {node_name}'s FDB entry {by} sends the {e} packet carrying the {dir} for {} to {dst}, which is no node's address: no VTEP takes it and the packet goes nowhere",
                        packet.dst
                    ),
                    None => format!(
                        "node {node_name} sends the {e} packet carrying the {dir} for {} to {dst}, which is no node's address: no VTEP takes it and the packet goes nowhere",
                        packet.dst
                    ),
                };
                w.add(Level::Critical, msg.clone());
                return Ok(Err(BranchEnd::Dropped {
                    packet,
                    kind: "tunnel".into(),
                    cause: msg,
                }));
            }
            (None, None) => {
                let u = self.plugin.underlay(src, oif, None, &packet)?;
                self.underlay_suspicions(w, &node_name, oif, "the outside", &packet, &u);
                if let Some(f) = blocks(&u) {
                    return Ok(Err(underlay_drop(&f.message)));
                }
                let mut tx = external_tx(packet, oif, next_hop);
                if matches!(kind, LinkKind::Vxlan | LinkKind::Ipip | LinkKind::Wireguard) {
                    tx.kind = kind;
                }
                return Ok(Ok(tx));
            }
        };
        let u = self.plugin.underlay(src, oif, Some(&next), &packet)?;
        self.underlay_suspicions(
            w,
            &node_name,
            oif,
            &format!("node {}", next.name),
            &packet,
            &u,
        );
        if let Some(f) = blocks(&u) {
            return Ok(Err(underlay_drop(&f.message)));
        }
        let iif = u
            .delivered_to
            .as_deref()
            .and_then(|mac| self.interface_with_mac(&next.name, mac))
            // The frame goes to the MAC that answered ARP for the next hop:
            // it arrives on the device holding that address.
            .or_else(|| self.interface_holding(&next.name, next_hop))
            .or_else(|| self.interface_holding(&next.name, dst))
            .or_else(|| next.host_interface.clone());
        Ok(Ok(Transmission {
            next: NetNode {
                kind: NetNodeKind::Node,
                id: next.name.clone(),
            },
            kind,
            packet,
            oif: Some(oif.to_string()),
            iif,
            next_hop_address: Some(next_hop),
            dst_mac: None,
            mtu: None,
        }))
    }

    fn underlay_suspicions(
        &self,
        w: &mut KernelWalk,
        node: &str,
        oif: &str,
        to: &str,
        packet: &Packet,
        u: &crate::plugin::Underlay,
    ) {
        for f in &u.suspicions {
            if !w.suspicions.contains(f) {
                w.suspicions.push(f.clone());
            }
        }
        w.decisions.extend(underlay_decision(
            &format!("node {node}"),
            oif,
            to,
            packet,
            u,
        ));
    }

    /// The node that holds `ip`: by its InternalIP, an address in its dump
    /// (a second interface, a tunnel device), or as the plugin says.
    fn node_owning(&mut self, ip: Ipv4Addr) -> Result<Option<NodeFacts>, CallError> {
        let view = &self.facts.view;
        if let Some(n) = view.node_by_ip(ip) {
            return Ok(Some(n.clone()));
        }
        if view.pod_by_ip(ip).is_some() || view.service_by_ip(ip).is_some() {
            return Ok(None);
        }
        for name in self.facts.netstacks.loaded_nodes() {
            if let Some(stack) = self.facts.netstacks.loaded_node(&name)
                && stack.is_local(ip)
                && let Some(n) = view.nodes.get(&name)
            {
                return Ok(Some(n.clone()));
            }
        }
        Ok(self
            .plugin
            .address_owner(ip)?
            .and_then(|n| view.nodes.get(&n).cloned()))
    }

    /// A pod of this node the packet is for whose netns the dump lacks: the
    /// link layer cannot find its end, and that says nothing about it.
    fn uncollected_pod(&self, ns: &NetnsId, packet: &Packet) -> Option<String> {
        let pod = self.facts.view.pod_by_ip(packet.dst)?;
        (!pod.host_network && pod.node == ns.node() && self.facts.netstacks.pod(&pod.id()).is_err())
            .then(|| pod.id())
    }

    /// A pod whose object gives it the packet's destination, though its
    /// netns does not hold that address: why nothing answers ARP for it.
    fn address_not_held(&self, packet: &Packet) -> Option<(NetNode, String)> {
        let pod = self.facts.view.pod_by_ip(packet.dst)?;
        if pod.host_network {
            return None;
        }
        let stack = self.facts.netstacks.pod(&pod.id()).ok()?;
        if stack.is_local(packet.dst) || stack.absent("routes").is_err() {
            return None;
        }
        if stack.interfaces().iter().all(|i| i.kind == "loopback") {
            // Nothing but lo: the pair was deleted, which the node did (its
            // end went with it).
            return Some((
                NetNode {
                    kind: NetNodeKind::Node,
                    id: pod.node.clone(),
                },
                format!(
                    "pod {} has address {} in the cluster, but its network namespace has no eth0 (no device but lo): its veth pair is missing on node {}",
                    pod.id(),
                    packet.dst,
                    pod.node
                ),
            ));
        }
        let held: Vec<String> = stack
            .interfaces()
            .iter()
            .filter(|i| i.kind != "loopback")
            .flat_map(|i| i.addresses.iter().map(|a| format!("{} on {}", a, i.name)))
            .collect();
        Some((
            NetNode {
                kind: NetNodeKind::Pod,
                id: pod.id(),
            },
            format!(
                "pod {} has address {} in the cluster, but its network namespace holds {}",
                pod.id(),
                packet.dst,
                if held.is_empty() {
                    "no address".to_string()
                } else {
                    held.join(", ")
                }
            ),
        ))
    }

    /// The node whose pod CIDR holds `ip`.
    fn pod_cidr_owner(&self, ip: Ipv4Addr) -> Option<NodeFacts> {
        let view = &self.facts.view;
        if let Some(p) = view.pod_by_ip(ip).filter(|p| !p.host_network) {
            return view.nodes.get(&p.node).cloned();
        }
        view.nodes
            .values()
            .find(|n| n.pod_cidrs.iter().any(|c| c.contains(&ip)))
            .cloned()
    }

    fn interface_holding(&self, node: &str, ip: Ipv4Addr) -> Option<String> {
        let stack = self.facts.netstacks.loaded_node(node)?;
        stack
            .interfaces()
            .iter()
            .find(|i| i.addresses.iter().any(|a| a.addr() == ip))
            .map(|i| i.name.clone())
    }

    /// How the link layer chose a tunnel's remote end: the FDB entry, and
    /// which node's device has the MAC it is for (and that node's address),
    /// so a stale entry names both sides.
    fn chosen_by(&self, steps: &[LinkStep]) -> Option<String> {
        let e = steps.iter().rev().find_map(|s| match s {
            LinkStep::Fdb(e) => Some(e),
            _ => None,
        })?;
        let mut s = format!("`{}`", link::fdb_text(e));
        let holder = self
            .facts
            .netstacks
            .loaded_nodes()
            .into_iter()
            .find_map(|node| {
                let dev = self.interface_with_mac(&node, &e.mac)?;
                Some((node, dev))
            });
        if let Some((node, dev)) = holder {
            let addr = self
                .facts
                .view
                .nodes
                .get(&node)
                .map(|n| format!(", whose address is {}", n.ip))
                .unwrap_or_default();
            s.push_str(&format!(" (the MAC of {dev} on node {node}{addr})"));
        }
        Some(s)
    }

    fn interface_with_mac(&self, node: &str, mac: &str) -> Option<String> {
        let stack = self.facts.netstacks.loaded_node(node)?;
        stack
            .interfaces()
            .iter()
            .find(|i| {
                i.mac
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(mac))
            })
            .map(|i| i.name.clone())
    }

    /// A request delivered here must find a listening socket; a packet for
    /// an address this pod does not hold never gets here.
    fn delivered(&self, w: &mut KernelWalk, stack: &Netstack, f: &Forwarded, _iif: &str) {
        let p = f.packet;
        if p.reply || matches!(p.protocol, Protocol::Icmp | Protocol::Ipip) {
            return;
        }
        match stack.listening(p.protocol, p.dst, p.dport) {
            Ok(true) => {}
            Ok(false) => w.add(
                Level::Fatal,
                format!(
                    "nothing listens on {} port {} on {} of {}",
                    p.protocol, p.dport, p.dst, stack.label
                ),
            ),
            Err(e) => w.add(Level::Warning, format!("cannot check {e}")),
        }
    }

    /// A branch the pipeline dropped: the suspicion names what decided.
    #[allow(clippy::too_many_arguments)]
    fn dropped(
        &self,
        w: &mut KernelWalk,
        ns: &NetnsId,
        stack: &Netstack,
        passes: Vec<Forwarded>,
        steps: Vec<LinkStep>,
        f: &Forwarded,
        cause: &DropCause,
        what: Option<&str>,
    ) {
        let (kind, msg, about) = drop_message(&self.facts.netstacks, ns, stack, f, cause, what);
        let end = if kind == "unavailable" {
            w.add(
                Level::Warning,
                format!("cannot check {}: {msg}", stack.label),
            );
            BranchEnd::Unknown { why: msg }
        } else if f.uncertain {
            // A rule whose match the host cannot decide forks the packet:
            // the other outcome walks on, and this one is a warning, not a
            // drop the verdict counts.
            let about = about.as_ref().map(hop_of);
            w.add_about(about.as_ref(), Level::Warning, msg);
            return;
        } else {
            let about = about.as_ref().map(hop_of);
            w.add_about(about.as_ref(), Level::Fatal, msg.clone());
            BranchEnd::Dropped {
                packet: f.packet,
                kind: kind.to_string(),
                cause: msg,
            }
        };
        w.branches.push(WalkBranch {
            passes,
            steps,
            end,
            mtus: vec![],
        });
    }
}

/// What the cloud underlay did with `packet` from `from` (`node node-1`,
/// `the outside`), as a decision of the path: the cloud devices passed, in
/// order. None when the provider said nothing.
pub(crate) fn underlay_decision(
    from: &str,
    oif: &str,
    to: &str,
    packet: &Packet,
    u: &crate::plugin::Underlay,
) -> Option<Decision> {
    if u.hops.is_empty() && u.suspicions.is_empty() {
        return None;
    }
    let blocked = blocks(u);
    Some(Decision {
        netns: format!("underlay from {from}"),
        packet: *packet,
        iif: None,
        fate: match blocked {
            Some(f) => format!("drop: {}", f.message),
            None => format!("carry to {to}"),
        },
        out: *packet,
        route: None,
        rules: u.hops.clone(),
        link: vec![],
        oif: (!oif.is_empty()).then(|| oif.to_string()),
    })
}

/// File the link layer's decisions under the pipeline decision they follow.
fn note_link(w: &mut KernelWalk, netns: &str, f: &Forwarded, steps: &[LinkStep]) {
    for s in steps {
        if let LinkStep::Resolved {
            dev,
            ip,
            by,
            was: Some(state),
        } = s
        {
            // The kernel asks again and gets an answer: the entry tells of
            // an earlier loss (FAILED) or a question in flight (INCOMPLETE),
            // not of this packet's fate.
            w.add(
                if state == "FAILED" {
                    Level::Warning
                } else {
                    Level::Info
                },
                format!(
                    "{netns}'s neighbour entry for {ip} on {dev} is {state}: ARP went unanswered when last tried; the kernel asks again for the next packet ({by}), but if it keeps failing, something between them drops ARP"
                ),
            );
        }
    }
    let oif = f_oif(f);
    if let Some(d) =
        w.decisions.iter_mut().rev().find(|d| {
            d.netns == netns && d.out == f.packet && d.oif.as_deref() == Some(oif.as_str())
        })
    {
        for s in steps {
            let line = s.to_string();
            if !d.link.contains(&line) {
                d.link.push(line);
            }
        }
    }
}

fn blocks(u: &crate::plugin::Underlay) -> Option<&Suspicion> {
    u.suspicions
        .iter()
        .find(|f| matches!(f.level, Level::Critical | Level::Fatal))
}

fn external_tx(packet: Packet, oif: &str, next_hop: Ipv4Addr) -> Transmission {
    let dst = packet.encap.map(|e| e.dst).unwrap_or(packet.dst);
    Transmission {
        next: NetNode {
            kind: NetNodeKind::External,
            id: dst.to_string(),
        },
        kind: LinkKind::External,
        packet,
        oif: Some(oif.to_string()),
        iif: None,
        next_hop_address: Some(next_hop),
        dst_mac: None,
        mtu: None,
    }
}

fn f_oif(f: &Forwarded) -> String {
    match &f.fate {
        Fate::Transmit { oif, .. } => oif.clone(),
        _ => String::new(),
    }
}

fn f_next_hop(f: &Forwarded) -> Option<Ipv4Addr> {
    match &f.fate {
        Fate::Transmit { next_hop, .. } => Some(*next_hop),
        _ => None,
    }
}

/// The route of the walk's latest decision, for messages.
fn route_of(w: &KernelWalk) -> Option<String> {
    w.decisions.iter().rev().find_map(|d| {
        d.route
            .as_ref()
            .map(|r| r.split(" (table").next().unwrap_or(r).to_string())
    })
}

/// `request` or `reply`.
pub fn direction(p: &Packet) -> &'static str {
    if p.icmp.is_some_and(|m| m.is_error()) {
        "ICMP error"
    } else if p.reply {
        "reply"
    } else {
        "request"
    }
}

/// Checks every pod's own netns gets: its loopback.
fn pod_checks(w: &mut KernelWalk, stack: &Netstack, pod: &str) {
    if stack.absent("interfaces").is_err() {
        return;
    }
    let what = format!("lo of pod {pod}");
    match stack.interface("lo") {
        Some(lo) if !lo.admin_up => w.add(
            Level::Fatal,
            format!(
                "{what} is down: localhost and the pod's own address are unreachable inside it, so probes and sidecars fail (ip link set lo up)"
            ),
        ),
        None => w.add(Level::Fatal, format!("{what} is missing")),
        _ => {}
    }
}

/// The kind and sentence of a pipeline drop, worded after what decided it.
fn drop_message(
    stacks: &skoop_netstack::Netstacks,
    ns: &NetnsId,
    stack: &Netstack,
    f: &Forwarded,
    cause: &DropCause,
    what: Option<&str>,
) -> (&'static str, String, Option<NetnsId>) {
    let dir = direction(&f.packet);
    let label = &stack.label;
    let the = match what {
        Some(w) => w.to_string(),
        None => format!("the {dir} {}", f.packet.tuple()),
    };
    let (kind, msg) = match cause {
        DropCause::Netfilter { by, verdict, hook } => {
            let verb = match (
                matches!(verdict, skoop_netstack::netfilter::Verdict::Reject),
                f.uncertain,
            ) {
                (true, false) => "rejects",
                (false, false) => "drops",
                (true, true) => "may reject",
                (false, true) => "may drop",
            };
            let rule = match by {
                Some(h) => h.describe(),
                None => format!("a netfilter {} hook", hook.chain_name()),
            };
            ("netfilter", format!("{rule} {verb} {the} on {label}"))
        }
        DropCause::NoRoute => (
            "no-route",
            format!("{label} has no route to {} for {the}", f.packet.dst),
        ),
        DropCause::Route(r) => {
            let table = match r.table {
                0 => format!("ip rule {}", r.rule_priority),
                254 => format!("table main (ip rule {})", r.rule_priority),
                t => format!("table {t} (ip rule {})", r.rule_priority),
            };
            let kind = format!("{:?}", r.kind).to_lowercase();
            (
                "route",
                format!(
                    "{label} routes {} to a {kind} route (`{}`, {table}): {the} is discarded",
                    f.packet.dst, r.text
                ),
            )
        }
        DropCause::NotForwarding { sysctl, value } => (
            "not-forwarding",
            format!("{label} drops {the}: {sysctl} is {value}, so the packet is not forwarded"),
        ),
        DropCause::RpFilter { iif, mode, reverse } => (
            "rp-filter",
            format!(
                "{label} drops {the}: reverse-path filter (rp_filter={mode}) on {iif}: the route back to the source is {reverse}"
            ),
        ),
        DropCause::Device { dev, why } => {
            let peer = if why.starts_with("has no carrier") {
                link::carrier_lost_to(stacks, ns, dev)
            } else {
                None
            };
            match peer {
                Some((p, about)) => {
                    return (
                        "device",
                        format!("interface {dev} of {label} {why}: {p}"),
                        about,
                    );
                }
                None => (
                    "device",
                    format!("interface {dev} of {label} {why}: {the} is dropped"),
                ),
            }
        }
        DropCause::Unavailable(m) => ("unavailable", m.clone()),
    };
    (kind, msg, None)
}

#[cfg(test)]
pub(crate) mod tests {
    //! The host's walk over small dumps. [`Lab`] builds a flannel-style
    //! cluster the diagnosis tests share: nodes n1, n2 (, n3) on
    //! 192.168.0.0/24 (nN is 192.168.0.1N with pod CIDR 10.244.(N-1).0/24
    //! behind bridge cni0), pods d/a (10.244.0.5 on n1) and d/b (10.244.1.7
    //! on n2) listening on TCP 8080, and between the nodes either flannel.1
    //! VXLAN devices (MTU 1450) or host-gw routes via eth0.

    use std::collections::BTreeMap;

    use serde_json::{Value, json};

    use super::*;
    use crate::cluster::ClusterView;
    use crate::plugin::{Answer, HopAnswer, Role};
    use crate::settings::{ProxyMode, Settings};
    use skoop_netstack::Netstacks;
    use skoop_netstack::dump::{FdbEntry, NetnsDump, NodeDump, PodNetns};
    use skoop_netstack::packet::{Encap, EncapKind};

    /// How the nodes reach each other's pod CIDRs.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Backend {
        /// flannel.1 (VNI 1, port 8472) with a neighbour and FDB entry per peer.
        Vxlan,
        /// A route per peer's pod CIDR via its address on eth0.
        HostGw,
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("test address")
    }

    /// Node N's address, 192.168.0.1N.
    fn node_ip(n: u8) -> String {
        format!("192.168.0.{}", 10 + n)
    }

    /// The MAC of node N's flannel.1.
    fn vtep_mac(n: u8) -> String {
        format!("aa:aa:aa:aa:aa:{n:02x}")
    }

    /// The third octet of node N's pod CIDR.
    fn net(n: u8) -> u8 {
        n - 1
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

    /// Append `entry` to the list `list` of a netns dump.
    fn push_to(ns: &mut Value, list: &str, entry: Value) {
        match ns.get_mut(list).and_then(Value::as_array_mut) {
            Some(a) => a.push(entry),
            None => ns[list] = json!([entry]),
        }
    }

    /// Node N's host netns (of `count` nodes).
    fn host(n: u8, count: u8, backend: Backend) -> Value {
        let me = node_ip(n);
        let mtu = if backend == Backend::Vxlan {
            1450
        } else {
            1500
        };
        let mut interfaces = vec![
            dev(
                1,
                "lo",
                "loopback",
                json!({"mtu": 65536, "oper_state": "UNKNOWN", "addresses": ["127.0.0.1/8"]}),
            ),
            dev(
                2,
                "eth0",
                "device",
                json!({"addresses": [format!("{me}/24")], "mac": format!("52:54:00:00:00:{n:02x}")}),
            ),
            dev(
                4,
                "cni0",
                "bridge",
                json!({"mtu": mtu, "addresses": [format!("10.244.{}.1/24", net(n))], "mac": format!("0a:58:0a:f4:{:02x}:01", net(n))}),
            ),
        ];
        let mut routes = vec![
            json!({"table": 255, "type": "local", "dst": format!("{me}/32"), "dev": "eth0"}),
            json!({"table": 255, "type": "local", "dst": format!("10.244.{}.1/32", net(n)), "dev": "cni0"}),
            json!({"dst": "192.168.0.0/24", "dev": "eth0", "scope": "link", "prefsrc": me}),
            json!({"dst": format!("10.244.{}.0/24", net(n)), "dev": "cni0", "scope": "link", "prefsrc": format!("10.244.{}.1", net(n))}),
        ];
        let mut neighbours = vec![];
        let mut fdb = vec![];
        if backend == Backend::Vxlan {
            interfaces.push(dev(
                3,
                "flannel.1",
                "vxlan",
                json!({
                    "mtu": 1450, "oper_state": "UNKNOWN", "mac": vtep_mac(n),
                    "addresses": [format!("10.244.{}.0/32", net(n))],
                    "vxlan": {"id": 1, "port": 8472, "local": me, "dev": "eth0"}
                }),
            ));
            routes.push(json!({"table": 255, "type": "local", "dst": format!("10.244.{}.0/32", net(n)), "dev": "flannel.1"}));
        }
        for peer in (1..=count).filter(|p| *p != n) {
            let cidr = format!("10.244.{}.0/24", net(peer));
            match backend {
                Backend::Vxlan => {
                    let vtep = format!("10.244.{}.0", net(peer));
                    routes.push(
                        json!({"dst": cidr, "gateway": vtep, "dev": "flannel.1", "onlink": true}),
                    );
                    neighbours.push(json!({"ip": vtep, "dev": "flannel.1", "lladdr": vtep_mac(peer), "state": "PERMANENT"}));
                    fdb.push(json!({"mac": vtep_mac(peer), "dev": "flannel.1", "dst": node_ip(peer), "flags": ["self", "permanent"]}));
                }
                Backend::HostGw => {
                    routes.push(json!({"dst": cidr, "gateway": node_ip(peer), "dev": "eth0"}));
                }
            }
        }
        let mut sysctls = json!({
            "net.ipv4.ip_forward": "1",
            "net.bridge.bridge-nf-call-iptables": "1",
            "net.ipv4.conf.all.rp_filter": "0"
        });
        for d in ["eth0", "cni0", "flannel.1"] {
            sysctls[format!("net.ipv4.conf.{d}.rp_filter")] = json!("0");
            sysctls[format!("net.ipv4.conf.{d}.forwarding")] = json!("1");
        }
        json!({
            "interfaces": interfaces,
            "routes": routes,
            "neighbours": neighbours,
            "fdb": fdb,
            "sysctls": sysctls
        })
    }

    /// A pod's netns: eth0 a veth to the host's ifindex `peer`, the node's
    /// bridge its gateway, TCP 8080 listening.
    fn pod_netns(addr: Ipv4Addr, peer: u32, mtu: u32) -> Value {
        let [_, _, c, d] = addr.octets();
        json!({
            "interfaces": [
                dev(1, "lo", "loopback", json!({"mtu": 65536, "oper_state": "UNKNOWN", "addresses": ["127.0.0.1/8"]})),
                dev(2, "eth0", "veth", json!({
                    "mtu": mtu, "peer_index": peer, "peer_netnsid": 0,
                    "addresses": [format!("{addr}/24")], "mac": format!("0a:58:0a:f4:{c:02x}:{d:02x}")
                }))
            ],
            "routes": [
                {"table": 255, "type": "local", "dst": format!("{addr}/32"), "dev": "eth0"},
                {"dst": format!("10.244.{c}.0/24"), "dev": "eth0", "scope": "link", "prefsrc": addr.to_string()},
                {"dst": "0.0.0.0/0", "gateway": format!("10.244.{c}.1"), "dev": "eth0"}
            ],
            "sysctls": {"net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.eth0.rp_filter": "0"},
            "sockets": [{"protocol": "tcp", "ip": "0.0.0.0", "port": 8080}]
        })
    }

    struct PodDump {
        node: String,
        id: String,
        ip: Ipv4Addr,
        netns: Value,
    }

    /// The cluster's objects and dumps, to be changed by a test before
    /// [`Lab::facts`].
    pub(crate) struct Lab {
        nodes: u8,
        hosts: BTreeMap<String, Value>,
        pods: Vec<PodDump>,
        /// Rules of each node's filter table, as iptables-save prints them.
        filter: BTreeMap<String, Vec<String>>,
        not_ready: Vec<String>,
    }

    impl Lab {
        /// `nodes` nodes (2 or 3), pods d/a on n1 and d/b on n2.
        pub(crate) fn new(nodes: u8, backend: Backend) -> Lab {
            let mut lab = Lab {
                nodes,
                hosts: (1..=nodes)
                    .map(|n| (format!("n{n}"), host(n, nodes, backend)))
                    .collect(),
                pods: vec![],
                filter: BTreeMap::new(),
                not_ready: vec![],
            };
            lab.add_pod("n1", "d/a", "10.244.0.5");
            lab.add_pod("n2", "d/b", "10.244.1.7");
            lab
        }

        fn add_pod(&mut self, node: &str, id: &str, addr: &str) {
            let mtu = self.host(node)["interfaces"]
                .as_array()
                .and_then(|a| a.iter().find(|i| i["name"] == "cni0"))
                .and_then(|i| i["mtu"].as_u64())
                .unwrap_or(1500) as u32;
            let index = 10 + self.pods.iter().filter(|p| p.node == node).count() as u32;
            let veth = format!("veth-{}", id.rsplit('/').next().unwrap_or(id));
            self.push(
                node,
                "interfaces",
                dev(
                    index,
                    &veth,
                    "veth",
                    json!({"mtu": mtu, "master": "cni0", "peer_index": 2, "peer_netnsid": 0}),
                ),
            );
            self.pods.push(PodDump {
                node: node.into(),
                id: id.into(),
                ip: ip(addr),
                netns: pod_netns(ip(addr), index, mtu),
            });
        }

        /// A node's host netns dump.
        pub(crate) fn host(&mut self, node: &str) -> &mut Value {
            self.hosts
                .get_mut(node)
                .unwrap_or_else(|| panic!("no node {node} in the lab"))
        }

        /// Append `entry` to the list `list` (neighbours, fdb, ...) of a node's host netns.
        pub(crate) fn push(&mut self, node: &str, list: &str, entry: Value) {
            push_to(self.host(node), list, entry);
        }

        /// Replace the main-table route to `dst` of a node's host netns.
        pub(crate) fn route(&mut self, node: &str, route: Value) {
            let routes = self.host(node)["routes"]
                .as_array_mut()
                .expect("routes of the test dump");
            routes.retain(|r| !(r["dst"] == route["dst"] && r.get("table").is_none()));
            routes.push(route);
        }

        /// Point the FDB entry for `mac` on a node's flannel.1 at `dst`.
        pub(crate) fn fdb_dst(&mut self, node: &str, mac: &str, dst: &str) {
            let entry = self.host(node)["fdb"]
                .as_array_mut()
                .and_then(|a| a.iter_mut().find(|e| e["mac"] == mac))
                .unwrap_or_else(|| panic!("no FDB entry for {mac} on {node}"));
            entry["dst"] = json!(dst);
        }

        /// Add a rule (`-A CHAIN ...`) to a node's filter table.
        pub(crate) fn rule(&mut self, node: &str, rule: &str) {
            self.filter
                .entry(node.into())
                .or_default()
                .push(rule.into());
        }

        /// Give the pods' eth0, their host veths and the cni0 bridges `mtu`.
        pub(crate) fn pod_mtu(&mut self, mtu: u32) {
            let pod_side = self.pods.iter_mut().map(|p| &mut p.netns);
            for ns in self.hosts.values_mut().chain(pod_side) {
                for i in ns["interfaces"].as_array_mut().into_iter().flatten() {
                    if i["kind"] == "veth" || i["kind"] == "bridge" {
                        i["mtu"] = json!(mtu);
                    }
                }
            }
        }

        pub(crate) fn not_ready(&mut self, node: &str) {
            self.not_ready.push(node.into());
        }

        fn objects(&self) -> String {
            let condition = |ready: bool| json!([{"type": "Ready", "status": if ready { "True" } else { "False" }}]);
            let mut items: Vec<Value> = (1..=self.nodes)
                .map(|n| {
                    let name = format!("n{n}");
                    json!({
                        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                        "spec": {"podCIDRs": [format!("10.244.{}.0/24", net(n))]},
                        "status": {
                            "addresses": [{"type": "InternalIP", "address": node_ip(n)}],
                            "conditions": condition(!self.not_ready.contains(&name))
                        }
                    })
                })
                .collect();
            for p in &self.pods {
                let (namespace, name) = p.id.split_once('/').expect("namespace/name");
                items.push(json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"namespace": namespace, "name": name},
                    "spec": {"nodeName": p.node},
                    "status": {"phase": "Running", "podIP": p.ip.to_string(), "conditions": condition(true)}
                }));
            }
            json!({"kind": "List", "apiVersion": "v1", "items": items}).to_string()
        }

        pub(crate) fn facts(&self) -> Facts {
            let netns = |v: &Value| -> NetnsDump {
                serde_json::from_value(v.clone()).expect("test netns dump")
            };
            let dumps = self
                .hosts
                .iter()
                .map(|(name, h)| {
                    let mut h = h.clone();
                    let rules: String = self
                        .filter
                        .get(name)
                        .into_iter()
                        .flatten()
                        .map(|r| format!("{r}\n"))
                        .collect();
                    h["iptables"] = json!(format!(
                        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{rules}COMMIT\n"
                    ));
                    let pods = self
                        .pods
                        .iter()
                        .filter(|p| &p.node == name)
                        .map(|p| {
                            let (namespace, pod) = p.id.split_once('/').expect("namespace/name");
                            PodNetns {
                                namespace: namespace.into(),
                                name: pod.into(),
                                netns: netns(&p.netns),
                            }
                        })
                        .collect();
                    let dump = NodeDump {
                        version: skoop_netstack::dump::DUMP_VERSION,
                        node: name.clone(),
                        host: netns(&h),
                        pods,
                    };
                    (name.clone(), dump)
                })
                .collect();
            let mut view =
                ClusterView::parse(&self.objects(), "test", Default::default()).expect("test view");
            let netstacks = Netstacks::from_dumps(dumps);
            // As the CLI does: each node's interface holding its InternalIP.
            crate::detect::host_interfaces_with(&mut view, |n| {
                netstacks.loaded_node(n).map(|s| &s.dump)
            });
            Facts::new(
                view,
                netstacks,
                Settings {
                    network_plugin: "test".into(),
                    cloud_provider: "generic".into(),
                    proxy_mode: ProxyMode::None,
                    cluster_cidr: None,
                    masquerade_mark: None,
                    masquerade_all: false,
                },
            )
        }
    }

    /// A plugin that lets the host's walk stand everywhere.
    pub(crate) struct Stands;

    impl Plugin for Stands {
        fn hop(&mut self, _: Role<'_>, _: &KernelWalk) -> Result<Answer, CallError> {
            Ok(HopAnswer::Checks(vec![], vec![]).into())
        }
    }

    fn pod(id: &str) -> NetNode {
        NetNode {
            kind: NetNodeKind::Pod,
            id: id.into(),
        }
    }

    fn node(id: &str) -> NetNode {
        NetNode {
            kind: NetNodeKind::Node,
            id: id.into(),
        }
    }

    /// The request of the flow d/a → d/b:8080.
    fn request() -> Packet {
        Packet {
            src: ip("10.244.0.5"),
            sport: 40000,
            dst: ip("10.244.1.7"),
            dport: 8080,
            protocol: Protocol::Tcp,
            mark: 0,
            encap: None,
            reply: false,
            tos: 0,
            size: 0,
            icmp: None,
        }
    }

    fn walk(facts: &Facts, at: &NetNode, arrival: &Arrival) -> KernelWalk {
        Walker {
            facts,
            plugin: &mut Stands,
        }
        .walk(at, arrival)
        .expect("the test plugin does not fail")
    }

    /// What `tx` brings to its next hop, sent by `from`.
    fn over(from: &NetNode, tx: &Transmission) -> Arrival {
        Arrival {
            sender: Some(from.clone()),
            ..Arrival::over(tx)
        }
    }

    /// The one branch of a walk, sent on.
    fn sent(w: &KernelWalk) -> (&WalkBranch, &Transmission) {
        assert_eq!(
            w.branches.len(),
            1,
            "one branch expected: {:#?}",
            w.branches
        );
        match &w.branches[0].end {
            BranchEnd::Sent(tx) => (&w.branches[0], tx),
            other => panic!(
                "expected the branch sent on, got {other:?}: {:#?}",
                w.suspicions
            ),
        }
    }

    fn messages(w: &KernelWalk) -> Vec<(Level, &str)> {
        w.suspicions
            .iter()
            .map(|f| (f.level, f.message.as_str()))
            .collect()
    }

    /// n1's walk of the request d/a sent it.
    fn at_n1(facts: &Facts) -> KernelWalk {
        let w = walk(facts, &pod("d/a"), &Arrival::originated(request()));
        let (_, tx) = sent(&w);
        let tx = tx.clone();
        walk(facts, &node("n1"), &over(&pod("d/a"), &tx))
    }

    fn vxlan_fdb(n: u8) -> FdbEntry {
        FdbEntry {
            mac: vtep_mac(n),
            dev: "flannel.1".into(),
            dst: Some(ip(&node_ip(n))),
            master: None,
            vni: None,
            port: None,
            flags: vec!["self".into(), "permanent".into()],
        }
    }

    #[test]
    fn a_request_crosses_vxlan_to_the_pod_on_the_other_node() {
        let facts = Lab::new(2, Backend::Vxlan).facts();

        // d/a: out of eth0 to its gateway on cni0, into n1 on the veth.
        let w = walk(&facts, &pod("d/a"), &Arrival::originated(request()));
        assert_eq!(messages(&w), vec![]);
        let (_, tx) = sent(&w);
        assert_eq!(
            *tx,
            Transmission {
                next: node("n1"),
                kind: LinkKind::Veth,
                packet: request(),
                oif: Some("eth0".into()),
                iif: Some("veth-a".into()),
                next_hop_address: Some(ip("10.244.0.1")),
                dst_mac: None,
                mtu: None,
            }
        );

        // n1: routed to flannel.1, whose FDB entry for n2's VTEP decides the
        // outer destination; the outer packet leaves eth0 for n2.
        let w = walk(&facts, &node("n1"), &over(&pod("d/a"), tx));
        assert_eq!(messages(&w), vec![]);
        let (b, tx) = sent(&w);
        assert!(
            b.steps.contains(&LinkStep::Fdb(vxlan_fdb(2))),
            "{:#?}",
            b.steps
        );
        let vxlan = Encap {
            kind: EncapKind::Vxlan,
            src: ip("192.168.0.11"),
            dst: ip("192.168.0.12"),
            vni: Some(1),
            port: Some(8472),
        };
        assert_eq!(
            *tx,
            Transmission {
                next: node("n2"),
                kind: LinkKind::Vxlan,
                packet: Packet {
                    encap: Some(vxlan),
                    ..request()
                },
                oif: Some("flannel.1".into()),
                iif: Some("eth0".into()),
                next_hop_address: Some(ip("192.168.0.12")),
                dst_mac: Some(vtep_mac(2)),
                mtu: None,
            }
        );
        assert_eq!(b.mtus, vec![("flannel.1".to_string(), 1450)]);

        // n2: the outer packet is for n2, flannel.1 decapsulates, and the
        // inner one goes over cni0 and the veth to d/b.
        let w = walk(&facts, &node("n2"), &over(&node("n1"), tx));
        assert_eq!(messages(&w), vec![]);
        assert_eq!(w.packet, request(), "the walk shows the inner packet");
        let (b, tx) = sent(&w);
        assert_eq!(
            b.steps.first(),
            Some(&LinkStep::Decapsulate {
                dev: "flannel.1".into()
            })
        );
        assert!(
            b.steps.contains(&LinkStep::BridgePort {
                bridge: "cni0".into(),
                port: "veth-b".into()
            }),
            "{:#?}",
            b.steps
        );
        assert_eq!(
            *tx,
            Transmission {
                next: pod("d/b"),
                kind: LinkKind::Veth,
                packet: request(),
                oif: Some("cni0".into()),
                iif: Some("eth0".into()),
                next_hop_address: Some(ip("10.244.1.7")),
                dst_mac: None,
                mtu: None,
            }
        );

        // d/b: delivered to its socket on eth0.
        let w = walk(&facts, &pod("d/b"), &over(&node("n2"), tx));
        assert_eq!(messages(&w), vec![]);
        assert_eq!(w.branches.len(), 1);
        assert_eq!(
            w.branches[0].end,
            BranchEnd::Delivered {
                packet: request(),
                iif: "eth0".into()
            }
        );
    }

    const UNDECIDABLE: &str = "-A FORWARD -m set --match-set unknown-set src -j DROP";
    const DECIDABLE: &str = "-A FORWARD -d 10.244.1.7/32 -j DROP";

    #[test]
    fn an_undecidable_drop_rule_forks_the_packet_and_only_warns() {
        let mut lab = Lab::new(2, Backend::Vxlan);
        lab.rule("n1", UNDECIDABLE);
        let w = at_n1(&lab.facts());
        let (_, tx) = sent(&w);
        assert_eq!(tx.next, node("n2"));
        let may_drop = format!(
            "iptables filter/FORWARD rule 1 `{UNDECIDABLE}` may drop the request 10.244.0.5:40000 -> 10.244.1.7:8080/tcp on node n1"
        );
        let why = format!(
            "iptables of node n1: filter/FORWARD rule 1 ({UNDECIDABLE}): unknown ipset \"unknown-set\""
        );
        assert_eq!(
            messages(&w),
            vec![
                (Level::Warning, why.as_str()),
                (Level::Warning, may_drop.as_str())
            ]
        );
    }

    #[test]
    fn a_decidable_drop_rule_drops_the_branch_and_is_fatal() {
        let mut lab = Lab::new(2, Backend::Vxlan);
        lab.rule("n1", DECIDABLE);
        let w = at_n1(&lab.facts());
        let drops = format!(
            "iptables filter/FORWARD rule 1 `{DECIDABLE}` drops the request 10.244.0.5:40000 -> 10.244.1.7:8080/tcp on node n1"
        );
        assert_eq!(messages(&w), vec![(Level::Fatal, drops.as_str())]);
        assert_eq!(w.branches.len(), 1, "{:#?}", w.branches);
        assert_eq!(
            w.branches[0].end,
            BranchEnd::Dropped {
                packet: request(),
                kind: "netfilter".into(),
                cause: drops
            }
        );
    }

    #[test]
    fn an_fdb_entry_to_no_nodes_address_is_critical_and_names_the_entry_and_the_vtep() {
        let mut lab = Lab::new(2, Backend::Vxlan);
        lab.fdb_dst("n1", &vtep_mac(2), "192.168.0.99");
        let w = at_n1(&lab.facts());
        let msg = "node n1's FDB entry `aa:aa:aa:aa:aa:02 dev flannel.1 dst 192.168.0.99 self permanent` (the MAC of flannel.1 on node n2, whose address is 192.168.0.12) sends the vxlan packet carrying the request for 10.244.1.7 to 192.168.0.99, which is no node's address: no VTEP takes it and the packet goes nowhere";
        assert_eq!(messages(&w), vec![(Level::Critical, msg)]);
        assert_eq!(w.branches.len(), 1, "{:#?}", w.branches);
        assert_eq!(
            w.branches[0].end,
            BranchEnd::Dropped {
                packet: Packet {
                    encap: Some(Encap {
                        kind: EncapKind::Vxlan,
                        src: ip("192.168.0.11"),
                        dst: ip("192.168.0.99"),
                        vni: Some(1),
                        port: Some(8472),
                    }),
                    ..request()
                },
                kind: "tunnel".into(),
                cause: msg.into()
            }
        );
    }

    #[test]
    fn the_right_fdb_entry_sends_the_vxlan_packet_without_suspicions() {
        let w = at_n1(&Lab::new(2, Backend::Vxlan).facts());
        assert_eq!(messages(&w), vec![]);
        let (b, tx) = sent(&w);
        assert!(b.steps.contains(&LinkStep::Fdb(vxlan_fdb(2))));
        assert_eq!((tx.next.clone(), tx.kind), (node("n2"), LinkKind::Vxlan));
    }

    /// n2's walk of the request arriving from n1.
    fn at_n2(facts: &Facts) -> KernelWalk {
        let w = at_n1(facts);
        let (_, tx) = sent(&w);
        let tx = tx.clone();
        walk(facts, &node("n2"), &over(&node("n1"), &tx))
    }

    #[test]
    fn a_failed_neighbour_entry_the_pod_would_answer_warns_and_the_packet_goes_on() {
        let mut lab = Lab::new(2, Backend::Vxlan);
        lab.push(
            "n2",
            "neighbours",
            json!({"ip": "10.244.1.7", "dev": "cni0", "state": "FAILED"}),
        );
        let w = at_n2(&lab.facts());
        let msg = "node n2's neighbour entry for 10.244.1.7 on cni0 is FAILED: ARP went unanswered when last tried; the kernel asks again for the next packet (pod d/b holds 10.244.1.7), but if it keeps failing, something between them drops ARP";
        assert_eq!(messages(&w), vec![(Level::Warning, msg)]);
        let (b, tx) = sent(&w);
        assert_eq!(tx.next, pod("d/b"));
        assert!(
            b.steps.contains(&LinkStep::Resolved {
                dev: "cni0".into(),
                ip: ip("10.244.1.7"),
                by: "pod d/b holds 10.244.1.7".into(),
                was: Some("FAILED".into())
            }),
            "{:#?}",
            b.steps
        );
    }

    #[test]
    fn a_failed_neighbour_entry_for_the_host_gw_next_hop_warns_and_the_packet_goes_on() {
        let mut lab = Lab::new(2, Backend::HostGw);
        lab.push(
            "n1",
            "neighbours",
            json!({"ip": "192.168.0.12", "dev": "eth0", "state": "FAILED"}),
        );
        let w = at_n1(&lab.facts());
        let msg = "node n1's neighbour entry for 192.168.0.12 on eth0 is FAILED: ARP went unanswered when last tried; the kernel asks again for the next packet (asked again on the link), but if it keeps failing, something between them drops ARP";
        assert_eq!(messages(&w), vec![(Level::Warning, msg)]);
        let (_, tx) = sent(&w);
        assert_eq!(
            (tx.next.clone(), tx.kind, tx.iif.as_deref()),
            (node("n2"), LinkKind::Underlay, Some("eth0"))
        );
    }

    #[test]
    fn without_a_failed_entry_the_next_hops_resolve_quietly() {
        let w = at_n2(&Lab::new(2, Backend::Vxlan).facts());
        assert_eq!(messages(&w), vec![]);
        let (b, _) = sent(&w);
        assert!(
            b.steps
                .iter()
                .all(|s| !matches!(s, LinkStep::Resolved { was: Some(_), .. })),
            "{:#?}",
            b.steps
        );
        let w = at_n1(&Lab::new(2, Backend::HostGw).facts());
        assert_eq!(messages(&w), vec![]);
        let (_, tx) = sent(&w);
        assert_eq!(tx.next, node("n2"));
    }

    #[test]
    fn a_not_ready_node_is_fatal() {
        let mut lab = Lab::new(2, Backend::Vxlan);
        lab.not_ready("n1");
        let w = at_n1(&lab.facts());
        assert_eq!(messages(&w), vec![(Level::Fatal, "node n1 is NotReady")]);
    }

    #[test]
    fn a_routed_packet_arrives_on_the_interface_holding_the_next_hop() {
        // n1 and n2 also share 192.168.1.0/24 on eth1, and n1 sends n2's pod
        // CIDR there: the frame is addressed to the MAC that answered ARP for
        // 192.168.1.12, so n2's kernel receives it on eth1.
        let mut lab = Lab::new(2, Backend::HostGw);
        for (n, node) in [(1, "n1"), (2, "n2")] {
            lab.push(
                node,
                "interfaces",
                dev(
                    5,
                    "eth1",
                    "device",
                    json!({"addresses": [format!("192.168.1.1{n}/24")]}),
                ),
            );
            lab.push(
                node,
                "routes",
                json!({"table": 255, "type": "local", "dst": format!("192.168.1.1{n}/32"), "dev": "eth1"}),
            );
            lab.push(
                node,
                "routes",
                json!({"dst": "192.168.1.0/24", "dev": "eth1", "scope": "link"}),
            );
        }
        lab.route(
            "n1",
            json!({"dst": "10.244.1.0/24", "gateway": "192.168.1.12", "dev": "eth1"}),
        );
        let w = at_n1(&lab.facts());
        let (_, tx) = sent(&w);
        assert_eq!(
            (tx.next.clone(), tx.oif.as_deref(), tx.iif.as_deref()),
            (node("n2"), Some("eth1"), Some("eth1"))
        );
    }
}
