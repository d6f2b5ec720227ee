//! The generic cloud provider: wires whatever CNI plugin the cluster runs with
//! the proxy mode it detected, and has nothing to check in the underlay.

use skoop_sdk::{
    CloudProvider, Error, Metadata, NetworkPlan, Node, Packet, Result, Settings, Suspicion,
    export_cloud_provider,
};

struct Generic;

impl CloudProvider for Generic {
    fn metadata() -> Metadata {
        Metadata {
            name: "generic".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Any cloud or bare metal: the underlay is assumed to carry node traffic"
                .into(),
            ..Metadata::default()
        }
    }

    fn create_network(settings: &Settings) -> Result<NetworkPlan> {
        if settings.network_plugin.is_empty() {
            return Err(Error::Invalid(
                "no network plugin given or detected; pass --network-plugin".into(),
            ));
        }
        Ok(NetworkPlan {
            plugin: settings.network_plugin.clone(),
            service_processor: settings.proxy_mode,
            infra_shim: false,
        })
    }

    fn node_to_node(_: &Node, _: &str, _: &Node, _: Packet) -> Result<Vec<Suspicion>> {
        Ok(vec![])
    }

    fn node_to_external(_: &Node, _: &str, _: Packet) -> Result<Vec<Suspicion>> {
        Ok(vec![])
    }
}

export_cloud_provider!(Generic);
