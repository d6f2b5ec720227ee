//! What a CNI that attaches pods by veth pairs knows about them: the pod's
//! interface is a veth of the MTU the CNI configures, and its peer on the
//! node is up and, for a bridge CNI, a port of the CNI's bridge. These are
//! checks of the CNI's layout; the host's walk has already moved the packet.

use crate::host::Netns;
use crate::suspicions::Expect;
use crate::types::*;
use crate::{Result, Suspicions};

/// A veth pod's layout: `iface` inside the pod, its peer on the node.
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

    /// Check the pod's side: `iface` exists, is a veth, has the CNI's MTU
    /// (a different MTU is a warning: the host's walk judges what it does to
    /// full-size packets). Returns the node-side peer's name when it is
    /// found and laid out as the CNI does it.
    pub fn check(&self, pod: &Pod, f: &mut Suspicions) -> Result<Option<String>> {
        let ns = Netns::pod(&pod.id());
        let expect = Expect {
            kind: Some("veth"),
            mtu: self.mtu,
            missing: Level::Critical,
            mtu_level: Level::Warning,
            state: false,
            ..Expect::default()
        };
        let Some(iface) = f.interface(&ns, &self.iface, expect)? else {
            return Ok(None);
        };
        if iface.kind != "veth" {
            return Ok(None);
        }
        self.peer(pod, iface.peer_index, f)
    }

    /// The node-side peer of the pod's veth (ifindex `peer_index` on the
    /// pod's node), checked against the CNI's layout; suspicions about it are
    /// the node's.
    fn peer(
        &self,
        pod: &Pod,
        peer_index: Option<u32>,
        f: &mut Suspicions,
    ) -> Result<Option<String>> {
        let node = pod.node.as_str();
        let what = format!("veth peer of pod {}", pod.id());
        let Some(index) = peer_index else {
            f.fatal(format!(
                "{} of pod {} has no veth peer",
                self.iface,
                pod.id()
            ));
            return Ok(None);
        };
        let Some(found) = f.tolerate(&what, Netns::node(node).interface_by_index(index))? else {
            return Ok(None);
        };
        let Some(peer) = found else {
            f.add_about(
                node,
                Level::Fatal,
                format!("{what} (ifindex {index}) is missing on node {node}"),
            );
            return Ok(None);
        };
        if let Some(bridge) = &self.bridge {
            let wrong = match &peer.master {
                None => Some(format!(
                    "{what} {} on node {node} is not attached to bridge {bridge}",
                    peer.name
                )),
                Some(m) if m != bridge => Some(format!(
                    "{what} {} on node {node} is attached to {m}, not {bridge}",
                    peer.name
                )),
                Some(_) => None,
            };
            if let Some(msg) = wrong {
                f.add_about(node, Level::Fatal, msg);
                return Ok(None);
            }
        }
        Ok(Some(peer.name))
    }
}
