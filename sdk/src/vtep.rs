//! What a VXLAN CNI programs on a node for one remote VTEP, checked against
//! the entries the host's walk used.
//!
//! A VXLAN CNI (flannel's vxlan backend, Calico's VXLAN mode, ...) routes a
//! remote node's pods `via VTEP dev DEV onlink` and programs two entries for
//! it: a permanent neighbour entry (the VTEP address → the remote device's
//! MAC) and an FDB entry (that MAC → the remote node's address). The plugin
//! knows what they should be (from annotations, its datastore, the remote
//! device); the host's walk shows which ones the kernel used.

use std::net::Ipv4Addr;

use crate::walk::Branch;
use crate::{KernelWalk, Suspicions};

/// One remote VTEP as the CNI programs it.
#[derive(Debug, Clone)]
pub struct VtepEntries<'a> {
    /// The CNI's name, for messages (`flannel`, `Calico`).
    pub cni: &'a str,
    /// The node the entries are on.
    pub node: &'a str,
    /// The VXLAN device (`flannel.1`, `vxlan.calico`).
    pub dev: &'a str,
    /// The VTEP address the route sends to (its gateway).
    pub vtep: Ipv4Addr,
    /// The node the VTEP belongs to.
    pub owner: &'a str,
    /// The MAC the CNI gives that VTEP, and where it says so
    /// (`node node-2's VtepMAC`); None: not known.
    pub mac: Option<(&'a str, &'a str)>,
    /// Where the FDB entry for that MAC must send the packet.
    pub remote: Ipv4Addr,
    /// How the CNI's agent programs the entries (`flanneld programs it PERMANENT`).
    pub programmed_by: &'a str,
}

impl VtepEntries<'_> {
    /// Compare branch `i`'s neighbour and FDB entries with the CNI's. Where
    /// the host's walk already stopped the branch at an entry, the CNI's
    /// view of it is the reason (a warning), not a second fault; where the
    /// kernel sent it on with a wrong entry, the fault is critical and the
    /// branch ends here: the remote device takes only frames for its own MAC,
    /// and only the node at the entry's address gets the packet.
    pub fn check(&self, walk: &KernelWalk, i: usize, b: &Branch, f: &mut Suspicions) {
        let stopped = b
            .dropped()
            .is_some_and(|d| matches!(d.kind.as_str(), "neighbour" | "fdb" | "tunnel"));
        let Self {
            cni,
            node,
            dev,
            vtep,
            owner,
            remote,
            ..
        } = *self;
        match (b.neighbour(), self.mac) {
            (Some(n), Some((want, whose)))
                if n.lladdr
                    .as_deref()
                    .is_some_and(|m| !m.eq_ignore_ascii_case(want)) =>
            {
                let msg = format!(
                    "node {node}'s neighbour entry for VTEP {vtep} on {dev} is {}, but {whose} is {want}: stale {cni} state",
                    n.lladdr.as_deref().unwrap_or_default()
                );
                self.fault(walk, i, stopped, msg, f);
            }
            (None, _) if stopped => f.warning(format!(
                "node {node} has no neighbour entry for VTEP {vtep} of node {owner} on {dev}: {}",
                self.programmed_by
            )),
            (None, None) => f.warning(format!(
                "the VTEP MAC of node {owner} is not known to {cni}: its neighbour and FDB entries on node {node} are not checked"
            )),
            _ => {}
        }
        let mut entries = b.fdb().peekable();
        if entries.peek().is_none()
            && b.dropped().is_some_and(|d| d.kind == "fdb")
            && let Some(mac) = b
                .neighbour()
                .and_then(|n| n.lladdr.as_deref())
                .or(self.mac.map(|(m, _)| m))
        {
            f.warning(format!(
                "node {node} has no FDB entry on {dev} for VTEP MAC {mac} of node {owner}: {cni} programs `{mac} dst {remote}`"
            ));
        }
        for e in entries {
            let Some(dst) = e.dst.filter(|d| *d != remote) else {
                continue;
            };
            let holder = crate::host::cluster::node_by_ip(dst)
                .map(|n| format!("node {}", n.name))
                .unwrap_or_else(|| "no node".to_string());
            let msg = format!(
                "node {node}'s FDB entry on {dev} for VTEP MAC {} of node {owner} points at {dst} ({holder}), but node {owner} is {remote}: stale {cni} state",
                e.mac
            );
            self.fault(walk, i, stopped, msg, f);
        }
    }

    fn fault(&self, walk: &KernelWalk, i: usize, stopped: bool, msg: String, f: &mut Suspicions) {
        if stopped {
            f.warning(msg);
        } else {
            f.critical(msg);
            if walk.branches.get(i).is_some_and(|b| b.sent().is_some()) {
                f.end(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::DropCause;
    use crate::walk::tests::{packet, vxlan_branch};
    use crate::{Carried, Level, NetNode};

    /// node-1's entries for node-2's VTEP 10.244.1.0, whose flannel.1 has
    /// MAC `want`.
    fn entries(want: &str) -> VtepEntries<'_> {
        VtepEntries {
            cni: "flannel",
            node: "node-1",
            dev: "flannel.1",
            vtep: Ipv4Addr::new(10, 244, 1, 0),
            owner: "node-2",
            mac: Some((want, "node node-2's VtepMAC")),
            remote: Ipv4Addr::new(192, 168, 0, 12),
            programmed_by: "flanneld programs it PERMANENT",
        }
    }

    fn walk(b: Branch) -> KernelWalk {
        KernelWalk {
            at: NetNode::node("node-1"),
            upstream: None,
            packet: packet(),
            branches: vec![b],
            suspicions: vec![],
        }
    }

    #[test]
    fn entries_as_the_cni_programs_them_are_quiet() {
        let w = walk(vxlan_branch());
        let mut f = Suspicions::new();
        entries("8e:b7:e5:7f:ec:c1").check(&w, 0, &w.branches[0], &mut f);
        assert!(f.suspicions.is_empty(), "{:?}", f.suspicions);
        assert!(f.ends.is_empty());
    }

    #[test]
    fn a_stale_neighbour_mac_the_kernel_sends_on_is_critical_and_ends_the_branch() {
        let w = walk(vxlan_branch());
        let mut f = Suspicions::new();
        entries("76:1e:34:c8:1a:6c").check(&w, 0, &w.branches[0], &mut f);
        let s = &f.suspicions;
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].level, Level::Critical);
        assert!(
            s[0].message.contains("8e:b7:e5:7f:ec:c1")
                && s[0].message.contains("76:1e:34:c8:1a:6c"),
            "{}",
            s[0].message
        );
        assert_eq!(f.ends, vec![0]);
    }

    #[test]
    fn where_the_host_stopped_the_branch_the_cnis_view_is_the_reason() {
        let stopped = Branch {
            carried: Carried::Dropped(DropCause {
                kind: "fdb".into(),
                message: "node node-1 has no FDB entry on flannel.1".into(),
                rule: None,
                route: None,
            }),
            ..vxlan_branch()
        };
        let w = walk(stopped);
        let mut f = Suspicions::new();
        entries("76:1e:34:c8:1a:6c").check(&w, 0, &w.branches[0], &mut f);
        assert!(f.suspicions.iter().all(|s| s.level == Level::Warning));
        assert!(!f.suspicions.is_empty());
        assert!(f.ends.is_empty());
    }
}
