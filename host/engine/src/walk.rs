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
use crate::netstack::link::{self, Carriage, Frame, LinkEnd, LinkStep, NetnsId};
use crate::netstack::{DropCause, Fate, ForwardQuery, Forwarded, Netstack, NetstackError};
use crate::packet::{Packet, Protocol};
use crate::path::{Decision, Finding, HopId, LinkKind, NodeKind, Tx};
use crate::plugin::{CallError, Plugin};
use crate::suspicion::Level;

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
    pub sender: Option<HopId>,
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
    pub fn over(tx: &Tx) -> Arrival {
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

/// How one branch ends at the net-node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchEnd {
    /// Delivered to a local socket: the packet as delivered, on `iif`.
    Delivered { packet: Packet, iif: String },
    /// Sent on to another net-node.
    Sent(Tx),
    /// Dropped: the packet, the kind of cause and what decided.
    Dropped {
        packet: Packet,
        kind: String,
        cause: String,
    },
    /// A fact it needs was not collected.
    Unknown { why: String },
}

/// One branch of a net-node's walk.
#[derive(Debug, Clone)]
pub struct WalkBranch {
    /// The pipeline passes of the branch here, in order.
    pub passes: Vec<Forwarded>,
    /// The link layer's decisions, in order.
    pub steps: Vec<LinkStep>,
    pub end: BranchEnd,
    /// The devices the packet left by, with their MTUs (the smallest decides
    /// whether a full-size packet fits).
    pub mtus: Vec<(String, u32)>,
}

/// The host's walk of a packet at one net-node.
#[derive(Debug, Clone)]
pub struct KernelWalk {
    pub at: HopId,
    /// The net-node the packet came from and the link it crossed; None:
    /// originated here.
    pub upstream: Option<(HopId, Tx)>,
    /// The packet as the net-node's kernel took it (decapsulated).
    pub packet: Packet,
    pub branches: Vec<WalkBranch>,
    /// The host's suspicions about this walk.
    pub findings: Vec<Finding>,
    /// What each pipeline pass decided, for the report.
    pub decisions: Vec<Decision>,
}

impl KernelWalk {
    fn new(at: &HopId, packet: Packet) -> KernelWalk {
        KernelWalk {
            at: at.clone(),
            upstream: None,
            packet,
            branches: Vec::new(),
            findings: Vec::new(),
            decisions: Vec::new(),
        }
    }

    fn add(&mut self, level: Level, message: String) {
        self.add_about(None, level, message);
    }

    fn add_about(&mut self, about: Option<&HopId>, level: Level, message: String) {
        let f = Finding {
            level,
            message,
            about: about.map(|h| h.id.clone()),
        };
        if !self.findings.contains(&f) {
            self.findings.push(f);
        }
    }

    fn unknown(&mut self, why: String) {
        self.add(Level::Warning, format!("cannot check {why}"));
        self.branches.push(WalkBranch {
            passes: vec![],
            steps: vec![],
            end: BranchEnd::Unknown { why },
            mtus: vec![],
        });
    }
}

/// The netns of a net-node: a pod's, or a node's host netns.
pub fn netns_of(facts: &Facts, at: &HopId) -> Option<NetnsId> {
    match at.kind {
        NodeKind::Node => Some(NetnsId::Node(at.id.clone())),
        NodeKind::Pod => {
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
        NodeKind::External => None,
    }
}

/// The net-node a netns is.
pub fn hop_of(ns: &NetnsId) -> HopId {
    match ns {
        NetnsId::Node(n) => HopId {
            kind: NodeKind::Node,
            id: n.clone(),
        },
        NetnsId::Pod { pod, .. } => HopId {
            kind: NodeKind::Pod,
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
    pub fn walk(&mut self, at: &HopId, arrival: &Arrival) -> Result<KernelWalk, CallError> {
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
        use crate::detect::ProxyMode;
        let NetnsId::Node(node) = ns else {
            return vec![];
        };
        let facts = self.facts;
        if p.reply || crate::service::find(&facts.view, p).is_none() {
            return vec![];
        }
        let why = match facts.settings.proxy_mode {
            ProxyMode::Nftables => return self.model_backends(node, p),
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
        match ns {
            NetnsId::Node(n) => {
                if let Some(node) = self.facts.view.nodes.get(n)
                    && !node.ready
                {
                    w.add(Level::Fatal, format!("node {n} is NotReady"));
                }
            }
            NetnsId::Pod { pod, .. } => {
                if let Some(p) = self.facts.view.pods.get(pod)
                    && !p.ready
                {
                    w.add(
                        Level::Warning,
                        format!("pod {pod} is not ready (phase {})", p.phase),
                    );
                }
            }
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
                BranchEnd::Sent(Tx {
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
                                    encap: Some(crate::packet::Encap {
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
                            LinkEnd::Netns { to, iif } => BranchEnd::Sent(Tx {
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
    ) -> Result<Result<Tx, BranchEnd>, CallError> {
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
                self.underlay_findings(w, &node_name, oif, "the outside", &packet, &u);
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
        self.underlay_findings(
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
            .or_else(|| self.interface_holding(&next.name, dst))
            .or_else(|| next.host_interface.clone());
        Ok(Ok(Tx {
            next: HopId {
                kind: NodeKind::Node,
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

    fn underlay_findings(
        &self,
        w: &mut KernelWalk,
        node: &str,
        oif: &str,
        to: &str,
        packet: &Packet,
        u: &crate::plugin::Underlay,
    ) {
        for f in &u.findings {
            if !w.findings.contains(f) {
                w.findings.push(f.clone());
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
    fn address_not_held(&self, packet: &Packet) -> Option<(HopId, String)> {
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
                HopId {
                    kind: NodeKind::Node,
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
            HopId {
                kind: NodeKind::Pod,
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
    if u.hops.is_empty() && u.findings.is_empty() {
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
            // an earlier loss, not of this packet's fate.
            w.add(
                Level::Warning,
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

fn blocks(u: &crate::plugin::Underlay) -> Option<&Finding> {
    u.findings
        .iter()
        .find(|f| matches!(f.level, Level::Critical | Level::Fatal))
}

fn external_tx(packet: Packet, oif: &str, next_hop: Ipv4Addr) -> Tx {
    let dst = packet.encap.map(|e| e.dst).unwrap_or(packet.dst);
    Tx {
        next: HopId {
            kind: NodeKind::External,
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
    stacks: &crate::netstack::Netstacks,
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
                matches!(verdict, crate::netstack::netfilter::Verdict::Reject),
                f.uncertain,
            ) {
                (true, false) => "rejects",
                (false, false) => "drops",
                (true, true) => "may reject",
                (false, true) => "may drop",
            };
            let rule = match by {
                Some(h) if h.index == 0 => format!(
                    "{}/{} policy {}",
                    h.table,
                    h.chain,
                    h.rule.trim_start_matches("policy ")
                ),
                Some(h) => format!("{}/{} rule {} `{}`", h.table, h.chain, h.index, h.rule),
                None => format!("a {} hook", hook.chain_name()),
            };
            (
                "netfilter",
                format!("iptables {rule} {verb} {the} on {label}"),
            )
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

impl From<NetstackError> for BranchEnd {
    fn from(e: NetstackError) -> BranchEnd {
        BranchEnd::Unknown { why: e.to_string() }
    }
}
