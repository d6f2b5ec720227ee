//! skoop's Calico plugin: what Calico's CNI, IPAM, BIRD and felix program on
//! a node — pods on cali veths (eth0 /32, default via 169.254.1.1 answered
//! by proxy ARP on the host side), /32 routes per pod and blackhole routes
//! per IPAM block, per-pool encapsulation between nodes (BGP, IPIP on tunl0,
//! VXLAN on vxlan.calico, CrossSubnet, WireGuard) — checked against the
//! host's walk of each hop. Felix's policy chains are ordinary iptables
//! rules the host's pipeline runs; this plugin names their policies.
//!
//! Build it on its own with
//! `cargo build -p calico --target wasm32-wasip2 --profile wasm-ext`
//! (the file is `target/wasm32-wasip2/wasm-ext/calico.wasm`) and load it with
//! `skoop --extension calico.wasm diagnose ...`; it replaces the built-in.

mod config;
mod node;
mod selector;
mod sha1;

#[cfg(target_arch = "wasm32")]
use skoop_sdk::export_cni_plugin;
use skoop_sdk::meta::{StaticConfigKey, StaticMetadata};

use skoop_sdk::host::cluster;
use skoop_sdk::{
    CniPlugin, HopAnswer, KernelWalk, Node, NodeChecks, NodeHop, NodeRole, Pod, Result, Suspicion,
};

pub use config::{CalicoConfig, EncapMode, Mode, Pool};
pub use node::felix_policy;

/// Calico's gateway address inside every pod, answered by proxy ARP.
pub const POD_GATEWAY: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 1, 1);

/// The plugin value, built once by `setup`.
pub struct Calico {
    config: CalicoConfig,
}

impl CniPlugin for Calico {
    const METADATA: Option<StaticMetadata> = Some(StaticMetadata {
        name: "calico",
        version: env!("CARGO_PKG_VERSION"),
        description: "Calico: cali veths with proxy ARP, IPAM blocks, BGP/IPIP/VXLAN/CrossSubnet/WireGuard per IPPool, felix policy",
        config: &[StaticConfigKey::new(
            "calico-pod-mtu",
            "pod MTU Calico configures (default: calico-config veth_mtu, the Installation, FelixConfiguration, else the host MTU less the encapsulation)",
        )],
        // The kinds of config.rs (a test checks they agree).
        reads: &[
            "v1/ConfigMap",
            "crd.projectcalico.org/v1/IPPool",
            "projectcalico.org/v3/IPPool",
            "crd.projectcalico.org/v1/BlockAffinity",
            "crd.projectcalico.org/v1/FelixConfiguration",
            "operator.tigera.io/v1/Installation",
            "crd.projectcalico.org/v1/ClusterInformation",
            "apps/v1/DaemonSet",
        ],
        detect_daemonsets: &["calico-node"],
        // An operator install, even where calico-node is not in view.
        detect_objects: &["operator.tigera.io/v1/Installation"],
        // felix programs Kubernetes NetworkPolicy into the dataplane; admin
        // policies from 3.29 and 3.30 (`enforces` below, by the release running).
        enforces: &["networking.k8s.io/v1/NetworkPolicy"],
        ..StaticMetadata::EMPTY
    });

    fn setup() -> Result<(Self, Vec<Suspicion>)> {
        let (config, suspicions) = CalicoConfig::load()?;
        Ok((Calico { config }, suspicions))
    }

    /// What the running release enforces; unknown: the metadata's word.
    fn enforces(&self) -> Option<Vec<String>> {
        self.config.release.map(config::enforced_by)
    }

    fn pod_send(&self, pod: &Pod, walk: &KernelWalk) -> Result<HopAnswer> {
        node::pod(self, pod, walk, true)
    }

    fn pod_receive(&self, pod: &Pod, walk: &KernelWalk) -> Result<HopAnswer> {
        node::pod(self, pod, walk, false)
    }

    /// A node's IPIP, VXLAN or WireGuard tunnel address (annotations
    /// calico-node writes): a flow from it starts at that node.
    fn address_owner(&self, ip: std::net::Ipv4Addr) -> Option<String> {
        cluster::nodes()
            .into_iter()
            .find(|n| config::tunnel_addresses(n).contains(&ip))
            .map(|n| n.name)
    }

    fn at_node(&self, node: &Node, walk: &KernelWalk, role: NodeRole<'_>) -> Result<HopAnswer> {
        let hop = NodeHop::new(node, walk);
        node::Checks { plugin: self, hop }.answer(role)
    }
}

// Exported only in the component: a native build (unit tests) has no host to link against.
#[cfg(target_arch = "wasm32")]
export_cni_plugin!(Calico);

#[cfg(test)]
mod metadata_tests {
    use super::*;

    fn kind(k: (&str, &str)) -> String {
        format!("{}/{}", k.0, k.1)
    }

    #[test]
    fn the_static_metadata_names_the_kinds_the_plugin_reads() {
        let m = <Calico as CniPlugin>::metadata();
        for k in [
            config::POOL_V1,
            config::POOL_V3,
            config::BLOCK_AFFINITY,
            config::FELIX,
            config::INSTALLATION,
            config::CLUSTER_INFORMATION,
            config::DAEMONSET,
        ] {
            assert!(m.reads.contains(&kind(k)), "{k:?} not in {:?}", m.reads);
        }
        assert_eq!(m.detect_objects, vec![kind(config::INSTALLATION)]);
    }
}
