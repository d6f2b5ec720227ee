//! The seam between the diagnosis loop and the CNI plugin: a trait the wasm
//! runtime implements with components and tests implement natively, and the
//! errors a plugin call can end in.

use std::fmt;
use std::time::Duration;

use crate::cluster::{NodeFacts, PodFacts, ServiceFacts};
use crate::kernel_walk::KernelWalk;
use crate::path::{Decision, NodeStep};
use crate::suspicion::Suspicion;
use skoop_netstack::packet::Packet;

/// How a call into an extension failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It ran past its deadline.
    Timeout(Duration),
    /// It grew memory past the limit.
    Memory(usize),
    /// It trapped (a panic, an unreachable, an out-of-bounds access).
    Trap(String),
    /// It answered something the contract does not allow.
    Malformed(String),
    /// It returned an error value.
    Refused(RefusedKind, String),
}

/// The error variants an extension can return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedKind {
    Unavailable,
    Invalid,
    Internal,
}

/// A failed call into an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub extension: String,
    pub call: String,
    pub failure: Failure,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "extension {} failed in {}: ", self.extension, self.call)?;
        match &self.failure {
            Failure::Timeout(d) => write!(
                f,
                "no answer within {:.1}s; it was stopped (raise --extension-timeout if it is just slow)",
                d.as_secs_f64()
            ),
            Failure::Memory(b) => write!(
                f,
                "it exceeded its memory limit of {} MiB and was stopped (see --extension-memory)",
                b >> 20
            ),
            Failure::Trap(m) => write!(f, "it crashed: {m}"),
            Failure::Malformed(m) => write!(f, "malformed answer: {m}"),
            Failure::Refused(_, m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CallError {}

/// What a net-node's walk is for, by what the packet is addressed to as
/// it arrives (before the node's own NAT): which of the plugin's roles is
/// asked about it.
pub enum Role<'a> {
    /// A pod originates the packet.
    PodSend(&'a PodFacts),
    /// A pod receives it.
    PodReceive(&'a PodFacts),
    /// At a node, for a pod (here or elsewhere).
    ToPod(&'a NodeFacts, &'a PodFacts),
    /// At a node, for another node's host network.
    ToHost(&'a NodeFacts, &'a NodeFacts),
    /// At a node, for a Service.
    ToService(&'a NodeFacts, &'a ServiceFacts),
    /// At a node, for the outside.
    ToExternal(&'a NodeFacts),
    /// At a node, for the node itself.
    Serve(&'a NodeFacts),
}

/// A plugin's answer about one net-node's walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopAnswer {
    /// The host's walk stands; the CNI's suspicions about it, and the
    /// branches (by index) it knows go no further.
    Checks(Vec<Suspicion>, Vec<usize>),
    /// The plugin walked the net-node itself (an eBPF datapath): its step
    /// replaces the host's.
    Walked(NodeStep),
}

/// A plugin's answer about one net-node's walk, with what the kernel
/// pipeline decided while the plugin answered (it may walk packets through
/// the host's pipeline itself), to be filed under that net-node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub hop: HopAnswer,
    pub decisions: Vec<Decision>,
}

impl From<HopAnswer> for Answer {
    fn from(hop: HopAnswer) -> Answer {
        Answer {
            hop,
            decisions: Vec::new(),
        }
    }
}

/// A CNI plugin as the diagnosis loop sees it: it is shown the host's walk
/// of each net-node and adds what its CNI knows.
pub trait Plugin {
    /// What the CNI knows about `walk`, a net-node's walk in `role`.
    fn hop(&mut self, role: Role<'_>, walk: &KernelWalk) -> Result<Answer, CallError>;

    /// The node owning `ip`, an address of no pod and no node in the objects
    /// (a tunnel device's). The default knows none.
    fn address_owner(&mut self, ip: std::net::Ipv4Addr) -> Result<Option<String>, CallError> {
        let _ = ip;
        Ok(None)
    }

    /// What the cloud underlay does to `packet` from node `src` (leaving by
    /// `oif`) to node `dst`, or to the outside when `dst` is None (the cloud
    /// provider's underlay export). The default has no underlay to check.
    fn underlay(
        &mut self,
        src: &NodeFacts,
        oif: &str,
        dst: Option<&NodeFacts>,
        packet: &Packet,
    ) -> Result<Underlay, CallError> {
        let _ = (src, oif, dst, packet);
        Ok(Underlay::default())
    }

    /// What the cloud underlay does to `packet`, from outside the cluster,
    /// on its way to `node`. The default has no underlay to check.
    fn underlay_from_outside(
        &mut self,
        node: &NodeFacts,
        packet: &Packet,
    ) -> Result<Underlay, CallError> {
        let _ = (node, packet);
        Ok(Underlay::default())
    }
}

/// What the cloud does to a packet on the underlay.
#[derive(Debug, Clone, Default)]
pub struct Underlay {
    /// The cloud devices passed, as one line each (`security-group sg-1: ...`).
    pub hops: Vec<String>,
    pub suspicions: Vec<crate::suspicion::Suspicion>,
    /// The packet as the node receives it, when the cloud translated it on
    /// the way in (a load balancer to `node-ip:node-port`); None: unchanged.
    pub packet: Option<Packet>,
    /// The MAC of the receiving interface, when the cloud delivers to one
    /// other than the node's primary (an ENI holding the destination).
    pub delivered_to: Option<String>,
}
