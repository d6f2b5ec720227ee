//! skoop's flannel plugin: pods on a `cni0` bridge, remote pod CIDRs reached
//! through the `host-gw` backend (a route via the remote node) or the `vxlan`
//! backend (`flannel.1`, with a neighbour and an FDB entry per remote VTEP).

mod config;
mod node;

#[cfg(feature = "component")]
use skoop_sdk::export_cni_plugin;
use skoop_sdk::meta::{StaticConfigKey, StaticMetadata};
use skoop_sdk::{CniPlugin, Link, Node, NodeStep, Packet, Pod, Result, Suspicion, VethPod};

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
        let (config, findings) = FlannelConfig::load()?;
        Ok((Flannel { config }, findings))
    }

    fn pod_send(&self, pod: &Pod, packet: Packet) -> Result<NodeStep> {
        self.veth_pod(&pod.node).send(pod, packet)
    }

    fn pod_receive(&self, pod: &Pod, upstream: &Link) -> Result<NodeStep> {
        self.veth_pod(&pod.node).receive(pod, upstream)
    }

    fn to_pod(
        &self,
        node: &Node,
        upstream: Option<&Link>,
        packet: Packet,
        pod: &Pod,
    ) -> Result<NodeStep> {
        node::Hop::new(self, node, upstream, packet).toward_pod(pod)
    }

    fn to_host(
        &self,
        node: &Node,
        upstream: Option<&Link>,
        packet: Packet,
        target: &Node,
    ) -> Result<NodeStep> {
        node::Hop::new(self, node, upstream, packet).toward_host(target)
    }

    fn to_external(
        &self,
        node: &Node,
        upstream: Option<&Link>,
        packet: Packet,
    ) -> Result<NodeStep> {
        node::Hop::new(self, node, upstream, packet).toward_external()
    }

    fn serve(&self, node: &Node, upstream: Option<&Link>, packet: Packet) -> Result<NodeStep> {
        node::Hop::new(self, node, upstream, packet).serve()
    }
}

#[cfg(feature = "component")]
export_cni_plugin!(Flannel);
