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

#[cfg(test)]
mod tests {
    use super::*;
    use skoop_sdk::ProxyMode;

    fn settings(plugin: &str, proxy_mode: ProxyMode) -> Settings {
        Settings {
            network_plugin: plugin.into(),
            cloud_provider: "generic".into(),
            proxy_mode,
            cluster_cidr: Some("10.244.0.0/16".parse().unwrap()),
        }
    }

    #[test]
    fn the_plan_is_the_settings_plugin_and_proxy_mode_without_underlay_checks() {
        let plan = Generic::create_network(&settings("flannel", ProxyMode::Ipvs)).unwrap();
        assert_eq!(
            plan,
            NetworkPlan {
                plugin: "flannel".into(),
                proxy_mode: ProxyMode::Ipvs,
                infra_shim: false,
            }
        );
        let plan = Generic::create_network(&settings("calico", ProxyMode::Nftables)).unwrap();
        assert_eq!(
            (plan.plugin.as_str(), plan.proxy_mode),
            ("calico", ProxyMode::Nftables)
        );
        assert!(!plan.infra_shim);
    }

    #[test]
    fn no_network_plugin_is_refused_naming_the_flag() {
        let err = Generic::create_network(&settings("", ProxyMode::Iptables)).unwrap_err();
        let Error::Invalid(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("--network-plugin"), "{msg}");
    }
}
