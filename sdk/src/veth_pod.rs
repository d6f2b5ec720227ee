//! A pod attached to its node by a veth pair: the common case for flannel,
//! calico and most CNIs. Implements the pod side of `send` and `receive` with
//! every pod check, on the request and the reply alike.

use crate::findings::Expect;
use crate::host::{self, Fate, ForwardQuery, Interface, Netns};
use crate::types::*;
use crate::{Findings, Result};

/// A veth pod: `iface` inside the pod, its peer on the node.
#[derive(Debug, Clone)]
pub struct VethPod {
    /// The pod-side interface name (normally `eth0`).
    pub iface: String,
    /// The MTU the CNI configures on pods, if it is fixed.
    pub mtu: Option<u32>,
    /// The bridge the node-side peer must be enslaved to (flannel: `cni0`), if any.
    pub bridge: Option<String>,
}

impl VethPod {
    /// A pod with `eth0`.
    pub fn new(mtu: Option<u32>, bridge: Option<&str>) -> Self {
        VethPod {
            iface: "eth0".to_string(),
            mtu,
            bridge: bridge.map(str::to_string),
        }
    }

    /// Checks every pod hop makes; returns the pod interface when it is usable.
    fn pod_checks(&self, ns: &Netns, pod: &Pod, f: &mut Findings) -> Result<Option<Interface>> {
        if !pod.ready {
            f.warning(format!(
                "pod {} is not ready (phase {})",
                pod.id(),
                pod.phase
            ));
        }
        let what = format!("lo of pod {}", pod.id());
        match f.tolerate(&what, ns.interface("lo"))? {
            Some(Some(lo)) if !lo.up() => f.fatal(format!(
                "{what} is down: localhost and the pod's own address are unreachable inside it, so probes and sidecars fail (ip link set lo up)"
            )),
            Some(None) => f.fatal(format!("{what} is missing")),
            _ => {}
        }
        f.ip_rules(ns)?;
        let expect = Expect {
            mtu: self.mtu,
            missing: Level::Critical,
            state: false,
            ..Expect::default()
        };
        let Some(iface) = f.interface(ns, &self.iface, expect)? else {
            return Ok(None);
        };
        let what = format!("interface {} of pod {}", self.iface, pod.id());
        if !iface.admin_up {
            f.fatal(format!(
                "{what} is administratively down (ip link set {} up)",
                self.iface
            ));
            return Ok(None);
        }
        if !iface.oper_up {
            // The carrier comes from the peer: blame it when it is the cause.
            if self.node_peer(pod, &iface, f)?.is_some() {
                f.fatal(format!("{what} is up but has no carrier"));
            }
            return Ok(None);
        }
        Ok(Some(iface))
    }

    /// The node-side peer of the pod interface, checked; `None` when the pod
    /// is cut off. Findings about the peer are the node's.
    fn node_peer(&self, pod: &Pod, iface: &Interface, f: &mut Findings) -> Result<Option<String>> {
        let node_ns = Netns::node(&pod.node);
        let Some(index) = iface.peer_index else {
            f.fatal(format!(
                "{} of pod {} has no veth peer",
                iface.name,
                pod.id()
            ));
            return Ok(None);
        };
        let what = format!("veth peer of pod {}", pod.id());
        let Some(found) = f.tolerate(&what, node_ns.interface_by_index(index))? else {
            return Ok(None);
        };
        let node = pod.node.as_str();
        let Some(peer) = found else {
            f.add_about(
                node,
                Level::Fatal,
                format!("{what} (ifindex {index}) is missing on node {node}"),
            );
            return Ok(None);
        };
        let mut cut_off = false;
        let mut fatal = |f: &mut Findings, msg: String| {
            f.add_about(node, Level::Fatal, msg);
            cut_off = true;
        };
        if peer.kind != "veth" {
            fatal(
                f,
                format!(
                    "{what} {} on node {node} is a {} device, not a veth",
                    peer.name, peer.kind
                ),
            );
        }
        // A peer without carrier because the pod side is down is a consequence,
        // reported on the pod's interface.
        if !peer.admin_up || (!peer.oper_up && iface.admin_up) {
            fatal(
                f,
                format!(
                    "{what} {} on node {node} is down: the pod is cut off (ip link set {} up)",
                    peer.name, peer.name
                ),
            );
        }
        if let Some(bridge) = &self.bridge {
            match &peer.master {
                None => fatal(
                    f,
                    format!(
                        "{what} {} on node {node} is not attached to bridge {bridge}",
                        peer.name
                    ),
                ),
                Some(m) if m != bridge => fatal(
                    f,
                    format!(
                        "{what} {} on node {node} is attached to {m}, not {bridge}",
                        peer.name
                    ),
                ),
                Some(_) => {}
            }
        }
        Ok((!cut_off).then_some(peer.name))
    }

    /// The node-side veth of `pod`, checked (exists, is a veth, up, on the
    /// right bridge). `None` when the pod is cut off from its node.
    pub fn node_side(&self, pod: &Pod, f: &mut Findings) -> Result<Option<String>> {
        let ns = Netns::pod(&pod.id());
        let what = format!("interface {} of pod {}", self.iface, pod.id());
        match f.tolerate(&what, ns.interface(&self.iface))? {
            Some(Some(iface)) => self.node_peer(pod, &iface, f),
            Some(None) => {
                f.critical(format!("{what} is missing"));
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// The pod originates `packet`: its kernel pipeline (route, OUTPUT,
    /// POSTROUTING) decides; every branch that leaves by the pod interface
    /// crosses the veth to the node.
    pub fn send(&self, pod: &Pod, packet: Packet) -> Result<NodeStep> {
        let ns = Netns::pod(&pod.id());
        let mut f = Findings::new();
        let Some(iface) = self.pod_checks(&ns, pod, &mut f)? else {
            return f.dropped();
        };
        let Some(outs) = f.forward(&ns, &ForwardQuery::originated(packet))? else {
            return f.dropped();
        };
        let mut step = NodeStep::forward(vec![]);
        let mut peer: Option<Option<String>> = None;
        for o in outs {
            match &o.fate {
                Fate::Drop(_) => {
                    f.report_drop(&ns, &packet, &o);
                    step.dropped.push(o.packet);
                }
                Fate::Deliver(_) => step.transmissions.push(
                    Transmission::new(pod.hop(), LinkKind::Local, packet)
                        .oif("lo")
                        .iif("lo"),
                ),
                Fate::Transmit { oif, next_hop } => {
                    if *oif != self.iface {
                        let via = o
                            .route
                            .as_ref()
                            .map(|r| r.text.clone())
                            .unwrap_or_else(|| format!("dev {oif}"));
                        f.fatal(format!(
                            "pod {} routes the {} to {} via `{via}`, not via {}",
                            pod.id(),
                            packet.direction(),
                            packet.dst,
                            self.iface
                        ));
                        step.dropped.push(o.packet);
                        continue;
                    }
                    f.neighbour(&ns, &self.iface, *next_hop, Level::Critical)?;
                    if peer.is_none() {
                        peer = Some(self.node_peer(pod, &iface, &mut f)?);
                    }
                    let Some(Some(peer)) = &peer else {
                        step.dropped.push(o.packet);
                        continue;
                    };
                    step.transmissions.push(
                        Transmission::new(Hop::node(&pod.node), LinkKind::Veth, o.packet)
                            .oif(self.iface.clone())
                            .iif(peer.clone())
                            .via(*next_hop),
                    );
                }
            }
        }
        if step.transmissions.is_empty() {
            return f.dropped();
        }
        Ok(f.into_step(step))
    }

    /// The pod receives a packet from its node (or from itself): its kernel
    /// pipeline (PREROUTING, the routing decision, INPUT) decides.
    pub fn receive(&self, pod: &Pod, upstream: &Link) -> Result<NodeStep> {
        let ns = Netns::pod(&pod.id());
        let mut f = Findings::new();
        if self.pod_checks(&ns, pod, &mut f)?.is_none() {
            return f.dropped();
        }
        let iif = if upstream.kind == LinkKind::Local {
            "lo"
        } else {
            self.iface.as_str()
        };
        let q = ForwardQuery::received(upstream.packet, iif, upstream.next_hop_address);
        let Some(outs) = f.forward(&ns, &q)? else {
            return f.dropped();
        };
        let mut served = false;
        for o in &outs {
            let packet = o.packet;
            match &o.fate {
                Fate::Deliver(_) => {
                    if !packet.reply {
                        f.listening(&ns, &packet, Level::Fatal)?;
                    }
                    served = true;
                }
                Fate::Drop(cause) if cause.kind == "netfilter" => {
                    f.report_drop(&ns, &upstream.packet, o)
                }
                _ => {
                    if let Some(false) =
                        f.tolerate("addresses of the pod", ns.is_local(packet.dst))?
                    {
                        f.fatal(format!(
                            "the {} for {} reaches pod {} but {} is not an address of the pod",
                            packet.direction(),
                            packet.dst,
                            pod.id(),
                            packet.dst
                        ));
                    } else {
                        f.report_drop(&ns, &upstream.packet, o);
                    }
                }
            }
        }
        if !served {
            return f.dropped();
        }
        host::log(
            Level::Info,
            &format!(
                "pod {} accepts the {}",
                pod.id(),
                upstream.packet.direction()
            ),
        );
        Ok(f.into_step(NodeStep::serve()))
    }
}
