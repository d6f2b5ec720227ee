//! skoop's Calico plugin: pods on cali veths (eth0 /32, default via
//! 169.254.1.1 answered by proxy ARP on the host side), /32 routes per pod
//! and blackhole routes per IPAM block, and per-pool encapsulation between
//! nodes (BGP, IPIP on tunl0, VXLAN on vxlan.calico, CrossSubnet, WireGuard).
//! Felix's policy chains are ordinary iptables rules the host pipeline runs.
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

use skoop_sdk::host::{Netns, cluster};
use skoop_sdk::{
    CniPlugin, Findings, Level, Link, Node, NodeStep, Packet, Pod, Result, Suspicion, VethPod,
};

pub use config::{CalicoConfig, EncapMode, Mode, Pool};
pub use node::felix_policy;

/// Calico's gateway address inside every pod, answered by proxy ARP.
pub const POD_GATEWAY: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 1, 1);

/// The plugin value, built once by `setup`.
pub struct Calico {
    config: CalicoConfig,
}

impl Calico {
    /// Pod checks Calico's layout adds to the veth pod's: the MTU the pool's
    /// encapsulation implies, the 169.254.1.1 gateway, and proxy ARP on the
    /// host veth (without it nothing answers the pod's ARP for its gateway).
    fn pod_checks(&self, pod: &Pod, step: &mut NodeStep, sending: bool) -> Result<()> {
        let mut f = Findings::new();
        let ns = Netns::pod(&pod.id());
        let node = cluster::node(&pod.node);
        if let Some((mtu, from)) = node.as_ref().and_then(|n| self.config.pod_mtu(n))
            && let Ok(Some(eth0)) = ns.interface("eth0")
        {
            if eth0.mtu > mtu {
                f.fatal(format!(
                    "eth0 of pod {} has MTU {}, above the {mtu} Calico expects ({from}): full-size packets do not fit the encapsulation and are dropped",
                    pod.id(),
                    eth0.mtu
                ));
            } else if eth0.mtu < mtu {
                f.warning(format!(
                    "eth0 of pod {} has MTU {}, below the {mtu} Calico expects ({from})",
                    pod.id(),
                    eth0.mtu
                ));
            }
        }
        if sending {
            let Some(t) = step.transmissions.first() else {
                return Ok(());
            };
            let via = t.next_hop_address;
            if via != Some(POD_GATEWAY) {
                f.warning(format!(
                    "pod {} sends via {} instead of Calico's gateway {POD_GATEWAY} (`default via {POD_GATEWAY} dev eth0`)",
                    pod.id(),
                    via.map(|v| v.to_string()).unwrap_or_else(|| "an on-link route".into())
                ));
            }
            if let Some(peer) = t.iif.clone() {
                let node_ns = Netns::node(&pod.node);
                let key = format!("net.ipv4.conf.{peer}.proxy_arp");
                let pinned = via
                    .and_then(|g| ns.neighbour("eth0", g).ok().flatten())
                    .is_some_and(|n| n.state == "PERMANENT");
                match f.tolerate(
                    &format!("sysctl {key} of node {}", pod.node),
                    node_ns.sysctl(&key),
                )? {
                    Some(Some(v)) if v.trim() != "1" && !pinned => {
                        f.add_about(
                            &pod.node,
                            Level::Fatal,
                            format!(
                                "proxy_arp is {} on {peer}, the host veth of pod {} on node {}: nothing answers the pod's ARP for its gateway {POD_GATEWAY}, so it cannot send (Calico's CNI sets net.ipv4.conf.{peer}.proxy_arp=1)",
                                v.trim(),
                                pod.id(),
                                pod.node
                            ),
                        );
                    }
                    Some(None) => f.warning(format!(
                        "cannot check proxy ARP on {peer} of node {}: {key} was not collected",
                        pod.node
                    )),
                    _ => {}
                }
            }
        }
        let blocking = f.blocking();
        *step = f.into_step(std::mem::replace(step, NodeStep::drop()));
        if blocking && !step.transmissions.is_empty() {
            let packets: Vec<Packet> = step.transmissions.drain(..).map(|t| t.packet).collect();
            step.dropped.extend(packets);
            step.action = skoop_sdk::ActionKind::Drop;
        }
        Ok(())
    }
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
        ],
        detect_daemonsets: &["calico-node"],
        // An operator install, even where calico-node is not in view.
        detect_objects: &["operator.tigera.io/v1/Installation"],
        // felix programs Kubernetes NetworkPolicy into the dataplane.
        enforces: &["networking.k8s.io/v1/NetworkPolicy"],
        ..StaticMetadata::EMPTY
    });

    fn setup() -> Result<(Self, Vec<Suspicion>)> {
        let (config, findings) = CalicoConfig::load()?;
        Ok((Calico { config }, findings))
    }

    fn pod_send(&self, pod: &Pod, packet: Packet) -> Result<NodeStep> {
        let mut step = VethPod::new(None, None).send(pod, packet)?;
        self.pod_checks(pod, &mut step, true)?;
        Ok(step)
    }

    /// A node's IPIP, VXLAN or WireGuard tunnel address (annotations
    /// calico-node writes): a flow from it starts at that node.
    fn address_owner(&self, ip: std::net::Ipv4Addr) -> Option<String> {
        cluster::nodes()
            .into_iter()
            .find(|n| config::tunnel_addresses(n).contains(&ip))
            .map(|n| n.name)
    }

    fn pod_receive(&self, pod: &Pod, upstream: &Link) -> Result<NodeStep> {
        let mut step = VethPod::new(None, None).receive(pod, upstream)?;
        self.pod_checks(pod, &mut step, false)?;
        Ok(step)
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
        ] {
            assert!(m.reads.contains(&kind(k)), "{k:?} not in {:?}", m.reads);
        }
        assert_eq!(m.detect_objects, vec![kind(config::INSTALLATION)]);
    }
}
