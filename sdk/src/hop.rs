//! A CNI plugin's checks of one node hop, by role.
//!
//! The five node roles of [`CniPlugin`](crate::CniPlugin) (`to_pod`,
//! `to_host`, `to_service`, `to_external`, `serve`) differ in what the packet
//! is for, not in how a plugin goes about them: the checks every node hop
//! gets, then the role's own, then the suspicions as the answer. A plugin that
//! answers them alike overrides [`CniPlugin::at_node`](crate::CniPlugin::at_node)
//! alone, builds its per-hop state there, and lets [`NodeChecks::answer`]
//! run the role; the state implements only what its CNI knows.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use skoop_sdk::prelude::*;
//!
//! /// Pods of every node on the CNI's bridge `br-acme`.
//! struct Hop<'a> {
//!     hop: NodeHop<'a>,
//! }
//!
//! impl<'a> NodeChecks<'a> for Hop<'a> {
//!     fn hop(&mut self) -> &mut NodeHop<'a> {
//!         &mut self.hop
//!     }
//!
//!     fn toward(&mut self, _i: usize, b: &Branch, dst: Ipv4Addr) -> Result<()> {
//!         if let Some(oif) = b.oif()
//!             && oif != "br-acme"
//!         {
//!             self.hop.f.critical(format!("{dst} is reached by {oif}, not br-acme"));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! struct Acme;
//!
//! impl CniPlugin for Acme {
//!     fn setup() -> Result<(Self, Vec<Suspicion>)> {
//!         Ok((Acme, vec![]))
//!     }
//!
//!     fn at_node(&self, node: &Node, walk: &KernelWalk, role: NodeRole<'_>) -> Result<HopAnswer> {
//!         Hop { hop: NodeHop::new(node, walk) }.answer(role)
//!     }
//! }
//! # let _ = Acme::setup;
//! ```

use std::net::Ipv4Addr;

use crate::host::Netns;
use crate::types::{Node, Pod, Service};
use crate::walk::{Branch, HopAnswer, KernelWalk};
use crate::{Result, Suspicions};

/// What the packet is for as it arrives at a node (before the node's NAT):
/// the node roles of a [`CniPlugin`](crate::CniPlugin), one variant each.
#[derive(Debug, Clone, Copy)]
pub enum NodeRole<'a> {
    /// A pod, here or on another node (`to_pod`).
    Pod(&'a Pod),
    /// Another node's host network (`to_host`).
    Host(&'a Node),
    /// A Service; the node's own rules translated it in the walk (`to_service`).
    Service(&'a Service),
    /// An address outside the cluster (`to_external`).
    External,
    /// The node itself (`serve`).
    Serve,
}

/// What every node hop's checks hold: the node, the host's walk of it, the
/// node's network namespace and the suspicions so far.
#[derive(Debug)]
pub struct NodeHop<'a> {
    pub node: &'a Node,
    pub walk: &'a KernelWalk,
    pub ns: Netns,
    pub f: Suspicions,
}

impl<'a> NodeHop<'a> {
    /// A hop at `node` with no suspicions yet.
    pub fn new(node: &'a Node, walk: &'a KernelWalk) -> Self {
        NodeHop {
            node,
            walk,
            ns: Netns::node(&node.name),
            f: Suspicions::new(),
        }
    }
}

/// A plugin's checks of one node hop: it supplies what its CNI knows (the
/// checks every hop gets, and each role's); [`answer`](NodeChecks::answer)
/// runs them for a role. Every part defaults to nothing to check.
pub trait NodeChecks<'a>: Sized {
    /// The hop's shared state.
    fn hop(&mut self) -> &mut NodeHop<'a>;

    /// Checks every node hop gets, before the role's.
    fn common(&mut self) -> Result<()> {
        Ok(())
    }

    /// Branch `i` of the walk, whose packet is for `dst`: the pod's address,
    /// or for a Service the backend the node's rules translated it to.
    fn toward(&mut self, i: usize, b: &Branch, dst: Ipv4Addr) -> Result<()> {
        let _ = (i, b, dst);
        Ok(())
    }

    /// The packet is for `target`'s host network.
    fn toward_host(&mut self, target: &Node) -> Result<()> {
        let _ = target;
        Ok(())
    }

    /// The packet leaves the cluster.
    fn toward_outside(&mut self) -> Result<()> {
        Ok(())
    }

    /// Run the checks of `role`: [`common`](NodeChecks::common), then the
    /// role's own (none when the packet is for this node), and answer with
    /// the suspicions.
    fn answer(mut self, role: NodeRole<'_>) -> Result<HopAnswer> {
        self.common()?;
        // The walk outlives the hop's borrow of itself: the role's checks
        // take `self` mutably while going through its branches.
        let walk = self.hop().walk;
        match role {
            NodeRole::Pod(pod) => {
                for (i, b, dst) in walk.destinations(Some(pod)) {
                    self.toward(i, b, dst)?;
                }
            }
            NodeRole::Service(_) => {
                for (i, b, dst) in walk.destinations(None) {
                    self.toward(i, b, dst)?;
                }
            }
            NodeRole::Host(target) => self.toward_host(target)?,
            NodeRole::External => self.toward_outside()?,
            NodeRole::Serve => {}
        }
        Ok(std::mem::take(&mut self.hop().f).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{NetNode, Suspicion};
    use crate::walk::tests::{packet, vxlan_branch};

    /// Records which parts `answer` ran, in order, as suspicions.
    struct Trace<'a> {
        hop: NodeHop<'a>,
    }

    impl<'a> NodeChecks<'a> for Trace<'a> {
        fn hop(&mut self) -> &mut NodeHop<'a> {
            &mut self.hop
        }
        fn common(&mut self) -> Result<()> {
            self.hop.f.info("common");
            Ok(())
        }
        fn toward(&mut self, i: usize, _b: &Branch, dst: Ipv4Addr) -> Result<()> {
            self.hop.f.info(format!("toward {i} {dst}"));
            Ok(())
        }
        fn toward_host(&mut self, target: &Node) -> Result<()> {
            self.hop.f.info(format!("host {}", target.name));
            Ok(())
        }
        fn toward_outside(&mut self) -> Result<()> {
            self.hop.f.info("outside");
            self.hop.f.end(0);
            Ok(())
        }
    }

    fn node(name: &str) -> Node {
        Node {
            name: name.into(),
            ip: Ipv4Addr::new(192, 168, 0, 11),
            pod_cidrs: vec!["10.244.0.0/24".parse().expect("cidr")],
            ready: true,
            host_interface: Some("eth0".into()),
            annotations: vec![],
            labels: vec![],
            provider_id: None,
        }
    }

    fn pod() -> Pod {
        Pod {
            namespace: "default".into(),
            name: "server".into(),
            ip: Ipv4Addr::new(10, 244, 1, 99),
            node: "node-2".into(),
            host_network: false,
            ready: true,
            phase: "Running".into(),
            ports: vec![],
            labels: vec![],
            annotations: vec![],
        }
    }

    fn trace(walk: &KernelWalk, role: NodeRole<'_>) -> (Vec<String>, Vec<usize>) {
        let at = node("node-1");
        let answer = Trace {
            hop: NodeHop::new(&at, walk),
        }
        .answer(role)
        .expect("answer");
        match answer {
            HopAnswer::Checks { suspicions, ends } => (
                suspicions
                    .into_iter()
                    .map(|s: Suspicion| s.message)
                    .collect(),
                ends,
            ),
            HopAnswer::Walked(_) => panic!("checks answer with checks"),
        }
    }

    #[test]
    fn each_role_runs_the_common_checks_then_its_own() {
        let walk = KernelWalk {
            at: NetNode::node("node-1"),
            upstream: None,
            packet: packet(),
            branches: vec![vxlan_branch(), vxlan_branch()],
            suspicions: vec![],
        };
        // A pod: every branch is for the pod's own address.
        let (said, _) = trace(&walk, NodeRole::Pod(&pod()));
        assert_eq!(
            said,
            ["common", "toward 0 10.244.1.99", "toward 1 10.244.1.99"]
        );
        // A Service: each branch for the address its packet is for here.
        let service = Service {
            namespace: "default".into(),
            name: "web".into(),
            service_type: "ClusterIP".into(),
            cluster_ips: vec![Ipv4Addr::new(10, 96, 0, 10)],
            ports: vec![],
        };
        let (said, _) = trace(&walk, NodeRole::Service(&service));
        assert_eq!(
            said,
            ["common", "toward 0 10.244.1.7", "toward 1 10.244.1.7"]
        );
        let (said, _) = trace(&walk, NodeRole::Host(&node("node-2")));
        assert_eq!(said, ["common", "host node-2"]);
        // The branches a role ends come back with the answer.
        let (said, ends) = trace(&walk, NodeRole::External);
        assert_eq!(
            (said, ends),
            (vec!["common".into(), "outside".into()], vec![0])
        );
        let (said, _) = trace(&walk, NodeRole::Serve);
        assert_eq!(said, ["common"]);
    }
}
