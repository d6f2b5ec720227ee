//! What the host's kernel walk found at one net-node: each branch's pipeline
//! passes, link-layer steps and end, with the host's suspicions. `walk.rs`
//! produces it; kube-proxy's cross-check (`service.rs`), the plugin
//! (`plugin.rs`) and the diagnosis loop read it.

use crate::path::{Decision, NetNode, Transmission};
use crate::suspicion::Level;
use crate::suspicion::Suspicion;
use skoop_netstack::link::LinkStep;
use skoop_netstack::packet::Packet;
use skoop_netstack::{Forwarded, NetstackError};

/// How one branch ends at the net-node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchEnd {
    /// Delivered to a local socket: the packet as delivered, on `iif`.
    Delivered { packet: Packet, iif: String },
    /// Sent on to another net-node.
    Sent(Transmission),
    /// Dropped: the packet, the kind of cause and what decided.
    Dropped {
        packet: Packet,
        kind: String,
        cause: String,
    },
    /// A fact it needs was not collected.
    Unknown { why: String },
}

impl From<NetstackError> for BranchEnd {
    fn from(e: NetstackError) -> BranchEnd {
        BranchEnd::Unknown { why: e.to_string() }
    }
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
    pub at: NetNode,
    /// The net-node the packet came from and the link it crossed; None:
    /// originated here.
    pub upstream: Option<(NetNode, Transmission)>,
    /// The packet as the net-node's kernel took it (decapsulated).
    pub packet: Packet,
    pub branches: Vec<WalkBranch>,
    /// The host's suspicions about this walk.
    pub suspicions: Vec<Suspicion>,
    /// What each pipeline pass decided, for the report.
    pub decisions: Vec<Decision>,
}

impl KernelWalk {
    pub(crate) fn new(at: &NetNode, packet: Packet) -> KernelWalk {
        KernelWalk {
            at: at.clone(),
            upstream: None,
            packet,
            branches: Vec::new(),
            suspicions: Vec::new(),
            decisions: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, level: Level, message: String) {
        self.add_about(None, level, message);
    }

    pub(crate) fn add_about(&mut self, about: Option<&NetNode>, level: Level, message: String) {
        let f = Suspicion {
            level,
            message,
            node: about.map(|h| h.id.clone()),
        };
        if !self.suspicions.contains(&f) {
            self.suspicions.push(f);
        }
    }

    pub(crate) fn unknown(&mut self, why: String) {
        self.add(Level::Warning, format!("cannot check {why}"));
        self.branches.push(WalkBranch {
            passes: vec![],
            steps: vec![],
            end: BranchEnd::Unknown { why },
            mtus: vec![],
        });
    }
}
