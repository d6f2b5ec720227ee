//! What the host's kernel walk did at a net-node, as a CNI plugin is shown
//! it, and how the plugin answers.
//!
//! The host walks every packet through each net-node's kernel itself: the
//! netns pipeline (PREROUTING or OUTPUT, routing through the policy rules,
//! INPUT or FORWARD, POSTROUTING, conntrack), then the link layer (a veth to
//! its peer, a bridge to its port, a VXLAN device through its neighbour and
//! FDB entries to the remote VTEP, an IP-in-IP or WireGuard tunnel, the
//! underlay). A plugin sees the result, [`KernelWalk`], and answers with
//! what only its CNI knows: the devices and entries the CNI should have
//! made, the MTUs it configures, what its agent programs
//! ([`HopAnswer::Checks`]). Only a plugin whose datapath the kernel walk
//! cannot see (eBPF) walks the net-node itself ([`HopAnswer::Walked`]).
//!
//! ```
//! use skoop_sdk::prelude::*;
//!
//! /// The CNI names its bridge `br-acme`: a branch that leaves by another
//! /// device for a pod of this node is the CNI's route gone missing.
//! fn check(walk: &KernelWalk, pod: &Pod) -> HopAnswer {
//!     let mut f = Suspicions::new();
//!     for b in walk.sent() {
//!         if let Some(oif) = b.oif()
//!             && oif != "br-acme"
//!         {
//!             f.critical(format!("pod {} is reached by {oif}, not br-acme", pod.id()));
//!         }
//!     }
//!     f.into()
//! }
//! # let _ = check;
//! ```

use std::net::Ipv4Addr;

use crate::cni::skoop::extension::walk as ww;
use crate::host::{self, DropCause, FdbEntry, Forwarded, Interface, Neighbour, Netns, Route};
use crate::types::*;
use crate::{Result, Suspicions};

/// One decision of the link layer, after the pipeline sent the packet out
/// of a device.
#[derive(Debug, Clone)]
pub enum LinkStep {
    /// The device the packet left (or arrived) by.
    Device(Interface),
    /// The neighbour entry that gave the next hop's MAC.
    Neighbour(Neighbour),
    /// No neighbour entry: resolved by ARP, and who answered.
    Resolved(String),
    /// The FDB entry that decided (a bridge port, a VXLAN remote).
    Fdb(FdbEntry),
    /// The far end of a veth: its netns and device.
    VethPeer(Netns, String),
    /// The bridge port the frame left by.
    BridgePort(String),
    /// The packet was encapsulated.
    Encapsulate(Encap),
    /// The route the tunnel's outer packet took.
    UnderlayRoute(Route),
    /// The receiving device that decapsulated the packet.
    Decapsulate(String),
    /// Anything else, as text.
    Other(String),
}

/// Where a branch went after the pipeline.
#[derive(Debug, Clone)]
pub enum Carried {
    /// Delivered to a local socket.
    Delivered,
    /// Sent over a link to another net-node.
    Sent(Transmission),
    /// Dropped here (by the pipeline or the link layer).
    Dropped(DropCause),
}

/// One branch of the walk at a net-node.
#[derive(Debug, Clone)]
pub struct Branch {
    /// The pipeline passes of the branch here: the flow's own packet's
    /// first, then a tunnel's outer packet's.
    pub passes: Vec<Forwarded>,
    /// The link layer's decisions, in order.
    pub link: Vec<LinkStep>,
    /// How the branch ends here.
    pub carried: Carried,
    /// The device and MTU a full-size packet did not fit, if one.
    pub mtu_limit: Option<(String, u32)>,
}

impl Branch {
    /// The route the flow's packet took here.
    pub fn route(&self) -> Option<&Route> {
        self.inner().and_then(|p| p.route.as_ref())
    }

    /// The pass of the flow's own packet (the first; a tunnel's outer
    /// packet's pass follows it).
    pub fn inner(&self) -> Option<&Forwarded> {
        self.passes.first()
    }

    /// The device the flow's packet left by, when it was transmitted.
    pub fn oif(&self) -> Option<&str> {
        match &self.inner()?.fate {
            host::Fate::Transmit { oif, .. } => Some(oif.as_str()),
            _ => None,
        }
    }

    /// The L2 next hop the flow's packet was sent to.
    pub fn next_hop(&self) -> Option<Ipv4Addr> {
        match &self.inner()?.fate {
            host::Fate::Transmit { next_hop, .. } => Some(*next_hop),
            _ => None,
        }
    }

    /// The packet as it left this net-node (or was delivered, or dropped).
    pub fn packet(&self) -> Option<Packet> {
        match &self.carried {
            Carried::Sent(t) => Some(t.packet),
            _ => self.inner().map(|p| p.packet),
        }
    }

    /// The neighbour entry the link layer used, if one.
    pub fn neighbour(&self) -> Option<&Neighbour> {
        self.link.iter().find_map(|s| match s {
            LinkStep::Neighbour(n) => Some(n),
            _ => None,
        })
    }

    /// The FDB entries the link layer used.
    pub fn fdb(&self) -> impl Iterator<Item = &FdbEntry> {
        self.link.iter().filter_map(|s| match s {
            LinkStep::Fdb(e) => Some(e),
            _ => None,
        })
    }

    /// The devices the packet crossed, in order.
    pub fn devices(&self) -> impl Iterator<Item = &Interface> {
        self.link.iter().filter_map(|s| match s {
            LinkStep::Device(i) => Some(i),
            _ => None,
        })
    }

    /// The encapsulation, when the branch was tunnelled.
    pub fn encapsulation(&self) -> Option<&Encap> {
        self.link.iter().find_map(|s| match s {
            LinkStep::Encapsulate(e) => Some(e),
            _ => None,
        })
    }

    /// The device that decapsulated the packet here, if one did.
    pub fn decapsulated_by(&self) -> Option<&str> {
        self.link.iter().find_map(|s| match s {
            LinkStep::Decapsulate(d) => Some(d.as_str()),
            _ => None,
        })
    }

    /// Where the branch was sent, if it was.
    pub fn sent(&self) -> Option<&Transmission> {
        match &self.carried {
            Carried::Sent(t) => Some(t),
            _ => None,
        }
    }

    /// Why the branch was dropped, if it was.
    pub fn dropped(&self) -> Option<&DropCause> {
        match &self.carried {
            Carried::Dropped(d) => Some(d),
            _ => None,
        }
    }

    /// Delivered to a local socket.
    pub fn delivered(&self) -> bool {
        matches!(self.carried, Carried::Delivered)
    }

    /// The netns pipeline dropped the branch (a netfilter rule, a route or
    /// its absence, a sysctl, a fact not collected): the host named why, and
    /// a CNI's checks of the branch's route and devices have nothing to add.
    pub fn pipeline_dropped(&self) -> bool {
        self.dropped().is_some_and(|d| {
            matches!(
                d.kind.as_str(),
                "netfilter" | "no-route" | "route" | "not-forwarding" | "rp-filter" | "unavailable"
            )
        })
    }
}

/// What the host's kernel walk did with a packet at one net-node.
#[derive(Debug, Clone)]
pub struct KernelWalk {
    /// The net-node.
    pub at: NetNode,
    /// Where the packet came from; None: this net-node originates it.
    pub upstream: Option<Link>,
    /// The packet as this net-node's kernel took it (decapsulated).
    pub packet: Packet,
    /// One entry per branch (Service backends, ECMP next hops, FDB destinations).
    pub branches: Vec<Branch>,
    /// What the host already reported about this walk (drops with their
    /// cause, facts not collected): a plugin adds to them, not repeats them.
    pub suspicions: Vec<Suspicion>,
}

impl KernelWalk {
    /// Each branch (with its index, for [`Suspicions::end`]) and the address
    /// its packet is for here: `pod`'s, else — for a Service — the backend
    /// the node's rules translated it to.
    pub fn destinations<'w>(
        &'w self,
        pod: Option<&'w Pod>,
    ) -> impl Iterator<Item = (usize, &'w Branch, Ipv4Addr)> + 'w {
        self.branches.iter().enumerate().filter_map(move |(i, b)| {
            let dst = match pod {
                Some(p) => p.ip,
                None => b.packet()?.dst,
            };
            Some((i, b, dst))
        })
    }

    /// Each branch the pipeline did not drop ([`Branch::pipeline_dropped`]),
    /// with its index.
    pub fn past_pipeline(&self) -> impl Iterator<Item = (usize, &Branch)> {
        self.branches
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.pipeline_dropped())
    }

    /// The branches sent on to another net-node.
    pub fn sent(&self) -> impl Iterator<Item = &Branch> {
        self.branches.iter().filter(|b| b.sent().is_some())
    }

    /// The branches dropped here.
    pub fn dropped(&self) -> impl Iterator<Item = &Branch> {
        self.branches.iter().filter(|b| b.dropped().is_some())
    }

    /// Some branch was delivered here.
    pub fn delivered(&self) -> bool {
        self.branches.iter().any(Branch::delivered)
    }

    /// The host already found something that breaks traffic here.
    pub fn broken(&self) -> bool {
        self.suspicions
            .iter()
            .any(|s| matches!(s.level, Level::Critical | Level::Fatal))
    }

    /// The host reported something about `what` (a device, an entry) already.
    pub fn mentions(&self, what: &str) -> bool {
        self.suspicions.iter().any(|s| s.message.contains(what))
    }
}

/// A CNI plugin's answer for one net-node.
#[derive(Debug, Clone)]
pub enum HopAnswer {
    /// The host's walk stands; the CNI's suspicions about it (empty: nothing
    /// to add), and the branches (by index in [`KernelWalk::branches`]) the
    /// CNI knows go no further though the kernel sent them on.
    Checks {
        suspicions: Vec<Suspicion>,
        ends: Vec<usize>,
    },
    /// The plugin's own walk of the net-node, replacing the host's: only for
    /// a datapath the kernel walk cannot see (eBPF).
    Walked(NodeStep),
}

impl HopAnswer {
    /// Nothing to add to the host's walk.
    pub fn fine() -> HopAnswer {
        HopAnswer::Checks {
            suspicions: Vec::new(),
            ends: Vec::new(),
        }
    }
}

impl From<Suspicions> for HopAnswer {
    fn from(f: Suspicions) -> HopAnswer {
        let ends = f.ends.clone();
        HopAnswer::Checks {
            suspicions: f.into_suspicions(),
            ends,
        }
    }
}

impl From<Vec<Suspicion>> for HopAnswer {
    fn from(suspicions: Vec<Suspicion>) -> HopAnswer {
        HopAnswer::Checks {
            suspicions,
            ends: Vec::new(),
        }
    }
}

// ---- conversions -------------------------------------------------------

fn link_step_from(s: &ww::LinkStep) -> Result<LinkStep> {
    Ok(match s {
        ww::LinkStep::Device(i) => LinkStep::Device(host::interface_from(i)?),
        ww::LinkStep::Neighbour(n) => LinkStep::Neighbour(host::neighbour_from(n)?),
        ww::LinkStep::Resolved(t) => LinkStep::Resolved(t.clone()),
        ww::LinkStep::Fdb(e) => LinkStep::Fdb(host::fdb_from(e)?),
        ww::LinkStep::VethPeer((ns, dev)) => LinkStep::VethPeer(Netns::from_wit(ns), dev.clone()),
        ww::LinkStep::BridgePort(p) => LinkStep::BridgePort(p.clone()),
        ww::LinkStep::Encapsulate(e) => LinkStep::Encapsulate(encap_from(e)?),
        ww::LinkStep::UnderlayRoute(r) => LinkStep::UnderlayRoute(host::route_from(r)?),
        ww::LinkStep::Decapsulate(d) => LinkStep::Decapsulate(d.clone()),
        ww::LinkStep::Other(t) => LinkStep::Other(t.clone()),
    })
}

fn branch_from(b: &ww::Branch) -> Result<Branch> {
    Ok(Branch {
        passes: b
            .passes
            .iter()
            .cloned()
            .map(host::forwarded_from)
            .collect::<Result<_>>()?,
        link: b.link.iter().map(link_step_from).collect::<Result<_>>()?,
        carried: match &b.carried {
            ww::Carried::Delivered => Carried::Delivered,
            ww::Carried::Sent(t) => Carried::Sent(transmission_from(t)?),
            ww::Carried::Dropped(d) => Carried::Dropped(host::drop_cause_from(d.clone())?),
        },
        mtu_limit: b.mtu_limit.clone(),
    })
}

pub(crate) fn walk_from(w: &ww::KernelWalk) -> Result<KernelWalk> {
    Ok(KernelWalk {
        at: net_node_from(&w.at),
        upstream: w.upstream.as_ref().map(link_from).transpose()?,
        packet: packet_from(&w.packet)?,
        branches: w.branches.iter().map(branch_from).collect::<Result<_>>()?,
        suspicions: w.suspicions.iter().map(suspicion_from).collect(),
    })
}

pub(crate) fn answer_to(a: HopAnswer) -> ww::HopAnswer {
    match a {
        HopAnswer::Checks { suspicions, ends } => ww::HopAnswer::Checks(ww::Checks {
            suspicions: suspicions.iter().map(suspicion_to).collect(),
            ends: ends.iter().map(|i| *i as u32).collect(),
        }),
        HopAnswer::Walked(s) => ww::HopAnswer::Walked(step_to(&s)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::host::{Fate, RouteKind};

    pub(crate) fn packet() -> Packet {
        Packet {
            src: Ipv4Addr::new(10, 244, 0, 5),
            sport: EPHEMERAL_PORT,
            dst: Ipv4Addr::new(10, 244, 1, 7),
            dport: 8080,
            protocol: Protocol::Tcp,
            mark: 0,
            encap: None,
            reply: false,
            tos: 0,
            size: 1450,
            icmp: None,
        }
    }

    fn pass(fate: Fate) -> Forwarded {
        Forwarded {
            fate,
            packet: packet(),
            route: Some(Route {
                table: 254,
                kind: RouteKind::Unicast,
                prefix: "10.244.1.0/24".parse().expect("prefix"),
                gateway: Some(Ipv4Addr::new(10, 244, 1, 0)),
                dev: Some("flannel.1".into()),
                source: None,
                rule_priority: 32766,
                text: "10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink".into(),
                proto: None,
                scope: None,
                metric: 0,
                onlink: true,
            }),
            bridged: false,
            rules: vec![],
            uncertain: false,
            notes: vec![],
            unchecked: vec![],
            natted: false,
        }
    }

    /// node-1 sends the request over flannel.1 to node-2's VTEP.
    pub(crate) fn vxlan_branch() -> Branch {
        let fdb = FdbEntry {
            mac: "8e:b7:e5:7f:ec:c1".into(),
            dev: "flannel.1".into(),
            dst: Some(Ipv4Addr::new(192, 168, 0, 12)),
            flags: vec!["self".into(), "permanent".into()],
        };
        let outer = Encap {
            kind: EncapKind::Vxlan,
            src: Ipv4Addr::new(192, 168, 0, 11),
            dst: Ipv4Addr::new(192, 168, 0, 12),
            vni: Some(1),
            port: Some(8472),
        };
        Branch {
            passes: vec![pass(Fate::Transmit {
                oif: "flannel.1".into(),
                next_hop: Ipv4Addr::new(10, 244, 1, 0),
            })],
            link: vec![
                LinkStep::Neighbour(Neighbour {
                    ip: Ipv4Addr::new(10, 244, 1, 0),
                    dev: "flannel.1".into(),
                    lladdr: Some(fdb.mac.clone()),
                    state: "PERMANENT".into(),
                }),
                LinkStep::Fdb(fdb),
                LinkStep::Encapsulate(outer),
            ],
            carried: Carried::Sent(Transmission::new(
                NetNode::node("node-2"),
                LinkKind::Vxlan,
                Packet {
                    encap: Some(outer),
                    ..packet()
                },
            )),
            mtu_limit: None,
        }
    }

    #[test]
    fn a_branch_names_its_route_device_and_entries() {
        let b = vxlan_branch();
        assert_eq!(b.oif(), Some("flannel.1"));
        assert_eq!(b.next_hop(), Some(Ipv4Addr::new(10, 244, 1, 0)));
        assert_eq!(
            b.route().map(|r| r.prefix.to_string()).as_deref(),
            Some("10.244.1.0/24")
        );
        assert_eq!(b.neighbour().map(|n| n.state.as_str()), Some("PERMANENT"));
        let fdb: Vec<_> = b.fdb().map(|e| e.dst).collect();
        assert_eq!(fdb, vec![Some(Ipv4Addr::new(192, 168, 0, 12))]);
        assert_eq!(b.encapsulation().and_then(|e| e.vni), Some(1));
        assert_eq!(b.decapsulated_by(), None);
        assert!(b.sent().is_some() && b.dropped().is_none() && !b.delivered());
        // The packet as it left: with its outer header.
        assert!(b.packet().is_some_and(|p| p.encap.is_some()));
    }

    #[test]
    fn a_dropped_branch_says_why_and_is_not_sent() {
        let cause = DropCause {
            kind: "fdb".into(),
            message: "node node-1 has no FDB entry on flannel.1".into(),
            rule: None,
            route: None,
        };
        let b = Branch {
            carried: Carried::Dropped(cause),
            ..vxlan_branch()
        };
        assert_eq!(b.dropped().map(|d| d.kind.as_str()), Some("fdb"));
        assert!(b.sent().is_none());
        // Without a transmission, the packet is the pass's.
        assert_eq!(b.packet().map(|p| p.encap), Some(None));
        let walk = KernelWalk {
            at: NetNode::node("node-1"),
            upstream: None,
            packet: packet(),
            branches: vec![vxlan_branch(), b],
            suspicions: vec![Suspicion::new(
                Level::Critical,
                "node node-1 has no FDB entry on flannel.1",
            )],
        };
        assert_eq!(walk.sent().count(), 1);
        assert_eq!(walk.dropped().count(), 1);
        assert!(!walk.delivered());
        assert!(walk.broken());
        assert!(walk.mentions("flannel.1") && !walk.mentions("cni0"));
    }

    #[test]
    fn a_pipeline_drop_is_told_from_a_link_layer_one() {
        let dropped = |kind: &str| Branch {
            carried: Carried::Dropped(DropCause {
                kind: kind.into(),
                message: String::new(),
                rule: None,
                route: None,
            }),
            ..vxlan_branch()
        };
        for kind in [
            "netfilter",
            "no-route",
            "route",
            "not-forwarding",
            "rp-filter",
            "unavailable",
        ] {
            assert!(dropped(kind).pipeline_dropped(), "{kind}");
        }
        // A missing FDB entry is the link layer's: the CNI's entries explain it.
        assert!(!dropped("fdb").pipeline_dropped());
        assert!(!vxlan_branch().pipeline_dropped());
        let walk = KernelWalk {
            at: NetNode::node("node-1"),
            upstream: None,
            packet: packet(),
            branches: vec![dropped("netfilter"), vxlan_branch(), dropped("fdb")],
            suspicions: vec![],
        };
        let past: Vec<usize> = walk.past_pipeline().map(|(i, _)| i).collect();
        assert_eq!(past, [1, 2]);
    }

    #[test]
    fn suspicions_become_checks_with_the_branches_they_end() {
        let mut f = Suspicions::new();
        f.critical("the CNI's route is missing");
        f.end(1);
        match HopAnswer::from(f) {
            HopAnswer::Checks { suspicions, ends } => {
                assert_eq!(suspicions.len(), 1);
                assert_eq!(suspicions[0].level, Level::Critical);
                assert_eq!(ends, vec![1]);
            }
            HopAnswer::Walked(_) => panic!("a plugin's suspicions are checks"),
        }
        match answer_to(HopAnswer::fine()) {
            ww::HopAnswer::Checks(c) => assert!(c.suspicions.is_empty() && c.ends.is_empty()),
            ww::HopAnswer::Walked(_) => panic!("nothing to add is checks"),
        }
    }
}
