//! The generic cloud provider: wires whatever CNI plugin the cluster runs with
//! the proxy mode it detected, and has nothing to check in the underlay.

use skoop_sdk::meta::StaticMetadata;
use skoop_sdk::{CloudProvider, Error, NetworkPlan, Result, Settings, export_cloud_provider};

struct Generic;

impl CloudProvider for Generic {
    const METADATA: Option<StaticMetadata> = Some(StaticMetadata {
        name: "generic",
        version: env!("CARGO_PKG_VERSION"),
        description: "Any cloud or bare metal: the underlay is assumed to carry node traffic",
        ..StaticMetadata::EMPTY
    });

    fn create_network(settings: &Settings) -> Result<NetworkPlan> {
        if settings.network_plugin.is_empty() {
            return Err(Error::Invalid(
                "no network plugin given or detected; pass --network-plugin".into(),
            ));
        }
        Ok(NetworkPlan {
            plugin: settings.network_plugin.clone(),
            proxy_mode: settings.proxy_mode,
            infra_shim: false,
        })
    }
}

export_cloud_provider!(Generic);
