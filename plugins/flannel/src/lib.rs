//! skoop's flannel plugin: what flannel's CNI config and flanneld program on
//! a node — pods on the `cni0` bridge, remote pod CIDRs reached through the
//! `host-gw` backend (a route via the remote node) or the `vxlan` backend
//! (`flannel.1`, with a neighbour and an FDB entry per remote VTEP from the
//! nodes' annotations) — checked against the host's walk of each hop.

mod config;
mod node;

#[cfg(feature = "component")]
use skoop_sdk::export_cni_plugin;
use skoop_sdk::meta::{StaticConfigKey, StaticMetadata};
use skoop_sdk::{
    CniPlugin, HopAnswer, KernelWalk, Node, NodeChecks, NodeHop, NodeRole, Pod, Result, Suspicion,
    VethPod,
};

pub use config::{Backend, FlannelConfig};

/// The plugin value, built once by `setup`.
pub struct Flannel {
    config: FlannelConfig,
}

impl Flannel {
    /// The veth pod of `pod`'s node, with the MTU flannel gives pods there.
    fn veth_pod(&self, node: &str) -> VethPod {
        VethPod::new(self.config.pod_mtu(node), Some(node::BRIDGE))
    }
}

impl CniPlugin for Flannel {
    const METADATA: Option<StaticMetadata> = Some(StaticMetadata {
        name: "flannel",
        version: env!("CARGO_PKG_VERSION"),
        description: "flannel with the host-gw or vxlan backend, pods on the cni0 bridge",
        config: &[
            StaticConfigKey::new(
                "flannel-backend-type",
                "flannel backend: vxlan or host-gw (default: from ConfigMap kube-flannel-cfg)",
            ),
            StaticConfigKey::new(
                "flannel-pod-mtu",
                "pod MTU flannel configures (default: host interface MTU, minus 50 for vxlan)",
            ),
            StaticConfigKey {
                default: Some("true"),
                ..StaticConfigKey::new(
                    "flannel-bridge-nf-call-iptables",
                    "require net.bridge.bridge-nf-call-iptables=1 on nodes (true/false)",
                )
            },
        ],
        reads: &["v1/ConfigMap"],
        detect_daemonsets: &["kube-flannel-ds", "kube-flannel-ds-amd64"],
        // flannel enforces no policy.
        ..StaticMetadata::EMPTY
    });

    fn setup() -> Result<(Self, Vec<Suspicion>)> {
        let (config, suspicions) = FlannelConfig::load()?;
        Ok((Flannel { config }, suspicions))
    }

    fn pod_send(&self, pod: &Pod, _walk: &KernelWalk) -> Result<HopAnswer> {
        node::pod(self, pod)
    }

    fn pod_receive(&self, pod: &Pod, _walk: &KernelWalk) -> Result<HopAnswer> {
        node::pod(self, pod)
    }

    fn at_node(&self, node: &Node, walk: &KernelWalk, role: NodeRole<'_>) -> Result<HopAnswer> {
        let hop = NodeHop::new(node, walk);
        node::Checks { plugin: self, hop }.answer(role)
    }
}

#[cfg(feature = "component")]
export_cni_plugin!(Flannel);
