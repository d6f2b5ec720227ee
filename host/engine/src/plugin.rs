//! The seam between the diagnosis loop and the CNI plugin: a trait the wasm
//! runtime implements with components and tests implement natively, and the
//! errors a plugin call can end in.

use std::fmt;
use std::time::Duration;

use crate::cluster::{NodeFacts, PodFacts, ServiceFacts};
use crate::packet::Packet;
use crate::path::{HopId, Step, Tx};

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

/// What a node hop is for.
pub enum NodeTarget<'a> {
    Pod(&'a PodFacts, Option<std::net::Ipv4Addr>),
    Host(&'a NodeFacts),
    Service(&'a ServiceFacts),
    External,
    Serve,
}

/// A CNI plugin as the diagnosis loop sees it.
pub trait Plugin {
    /// `pod` originates `packet`.
    fn pod_send(
        &mut self,
        pod: &PodFacts,
        node_ip: Option<std::net::Ipv4Addr>,
        packet: &Packet,
    ) -> Result<Step, CallError>;

    /// `pod` receives `tx`, sent by `from`.
    fn pod_receive(
        &mut self,
        pod: &PodFacts,
        node_ip: Option<std::net::Ipv4Addr>,
        from: &HopId,
        tx: &Tx,
    ) -> Result<Step, CallError>;

    /// A node hop, already dispatched by destination.
    fn node_hop(
        &mut self,
        node: &NodeFacts,
        upstream: Option<(&HopId, &Tx)>,
        packet: &Packet,
        target: NodeTarget<'_>,
    ) -> Result<Step, CallError>;

    /// The node owning `ip`, an address of no pod and no node in the objects
    /// (a tunnel device's). The default knows none.
    fn address_owner(&mut self, ip: std::net::Ipv4Addr) -> Result<Option<String>, CallError> {
        let _ = ip;
        Ok(None)
    }

    /// What the cloud underlay does to `packet`, from outside the cluster,
    /// on its way to `node` (the cloud provider's infra-shim). The default
    /// has no underlay to check.
    fn underlay_from_outside(
        &mut self,
        node: &NodeFacts,
        packet: &Packet,
    ) -> Result<Entry, CallError> {
        let _ = (node, packet);
        Ok(Entry::default())
    }
}

/// What the cloud does to a packet from outside on its way to a node.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub findings: Vec<crate::path::Finding>,
    /// The packet as the node receives it, when the cloud translated it
    /// (a load balancer to `node-ip:node-port`); None: unchanged.
    pub packet: Option<Packet>,
}
