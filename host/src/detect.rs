//! Detection of the settings a diagnosis needs, each overridable by a flag.
//! A failure names the flag to pass and what was looked at.

use std::collections::BTreeMap;

use anyhow::Result;
use ipnet::Ipv4Net;
use serde_json::Value;

use crate::cluster::ClusterView;
use crate::dump::NodeDump;
use crate::error::bad_input;

/// How Services are implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    Iptables,
    Ipvs,
    None,
}

impl ProxyMode {
    /// The name kube-proxy's config uses.
    pub fn name(self) -> &'static str {
        match self {
            ProxyMode::Iptables => "iptables",
            ProxyMode::Ipvs => "ipvs",
            ProxyMode::None => "none",
        }
    }
}

/// Settings of one diagnosis.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    pub network_plugin: String,
    pub cloud_provider: String,
    pub proxy_mode: ProxyMode,
    pub cluster_cidr: Option<Ipv4Net>,
}

/// What the user passed; `None` means detect.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub network_plugin: Option<String>,
    pub cloud_provider: Option<String>,
    pub proxy_mode: Option<ProxyMode>,
    pub cluster_cidr: Option<Ipv4Net>,
}

/// Detect every setting not given on the command line. `plugins` maps a
/// plugin name to the DaemonSet names that reveal it.
pub fn settings(
    view: &ClusterView,
    dumps: &BTreeMap<String, NodeDump>,
    flags: &Overrides,
    plugins: &BTreeMap<String, Vec<String>>,
) -> Result<Settings> {
    let network_plugin = match &flags.network_plugin {
        Some(p) => p.clone(),
        None => network_plugin(view, plugins)?,
    };
    let proxy_mode = match flags.proxy_mode {
        Some(m) => m,
        None => proxy_mode(view, dumps)?,
    };
    let cluster_cidr = flags.cluster_cidr.or_else(|| cluster_cidr(view));
    Ok(Settings {
        network_plugin,
        cloud_provider: flags
            .cloud_provider
            .clone()
            .unwrap_or_else(|| "generic".to_string()),
        proxy_mode,
        cluster_cidr,
    })
}

fn daemonset_names(view: &ClusterView) -> Vec<String> {
    view.objects("apps/v1", "DaemonSet", "")
        .iter()
        .filter_map(|d| d.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// The plugin whose DaemonSet runs in the cluster.
pub fn network_plugin(
    view: &ClusterView,
    plugins: &BTreeMap<String, Vec<String>>,
) -> Result<String> {
    let names = daemonset_names(view);
    for (plugin, daemonsets) in plugins {
        if names.iter().any(|n| daemonsets.contains(n)) {
            return Ok(plugin.clone());
        }
    }
    let known: Vec<String> = plugins
        .iter()
        .map(|(p, ds)| format!("{p} ({})", ds.join(", ")))
        .collect();
    Err(bad_input(format!(
        "cannot detect the network plugin: none of the DaemonSets in the cluster ({}) belongs to a loaded plugin [{}]; pass --network-plugin NAME",
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        },
        known.join("; ")
    )))
}

/// A top-level `key: value` of kube-proxy's config.conf. The file is a flat
/// KubeProxyConfiguration; only top-level scalars are read.
fn kube_proxy_key(config: &str, key: &str) -> Option<String> {
    config.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        Some(rest.trim().trim_matches('"').trim_matches('\'').to_string())
    })
}

fn kube_proxy_config(view: &ClusterView) -> Option<String> {
    view.object("v1", "ConfigMap", "kube-system", "kube-proxy")
        .and_then(|cm| cm.pointer("/data/config.conf"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// kube-proxy's mode: its ConfigMap, else what the node dumps show.
pub fn proxy_mode(view: &ClusterView, dumps: &BTreeMap<String, NodeDump>) -> Result<ProxyMode> {
    if let Some(conf) = kube_proxy_config(view) {
        return match kube_proxy_key(&conf, "mode").as_deref() {
            None | Some("") | Some("iptables") => Ok(ProxyMode::Iptables),
            Some("ipvs") => Ok(ProxyMode::Ipvs),
            Some(other) => Err(bad_input(format!(
                "ConfigMap kube-system/kube-proxy sets mode {other:?}, which skoop does not simulate; pass --proxy-mode iptables|ipvs|none"
            ))),
        };
    }
    let rules_show = |needle: &str| {
        dumps.values().any(|d| {
            d.host
                .iptables
                .as_deref()
                .is_some_and(|t| t.contains(needle))
        })
    };
    if rules_show("KUBE-SVC-") || rules_show("KUBE-SERVICES") {
        return Ok(ProxyMode::Iptables);
    }
    if dumps.is_empty() {
        return Err(bad_input(
            "cannot detect kube-proxy's mode: no ConfigMap kube-system/kube-proxy and no node dumps; pass --proxy-mode iptables|ipvs|none",
        ));
    }
    Ok(ProxyMode::None)
}

/// The cluster CIDR: kube-proxy's clusterCIDR, else the smallest prefix
/// holding every node's pod CIDR.
pub fn cluster_cidr(view: &ClusterView) -> Option<Ipv4Net> {
    if let Some(c) = kube_proxy_config(view)
        .and_then(|conf| kube_proxy_key(&conf, "clusterCIDR"))
        .and_then(|c| c.parse().ok())
    {
        return Some(c);
    }
    let cidrs: Vec<Ipv4Net> = view
        .nodes
        .values()
        .flat_map(|n| n.pod_cidrs.iter().copied())
        .collect();
    let first = *cidrs.first()?;
    (0..=first.prefix_len())
        .rev()
        .filter_map(|len| Ipv4Net::new(first.network(), len).ok().map(|n| n.trunc()))
        .find(|net| cidrs.iter().all(|c| net.contains(c)))
}

/// Fill each node's host interface: the interface holding its InternalIP.
pub fn host_interfaces(view: &mut ClusterView, dumps: &BTreeMap<String, NodeDump>) {
    for node in view.nodes.values_mut() {
        node.host_interface = dumps.get(&node.name).and_then(|d| {
            d.host
                .interfaces
                .iter()
                .find(|i| i.addresses.iter().any(|a| a.addr() == node.ip))
                .map(|i| i.name.clone())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_proxy_keys_are_read() {
        let conf = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nclusterCIDR: 10.244.0.0/16\nmode: \"ipvs\"\n";
        assert_eq!(kube_proxy_key(conf, "mode").as_deref(), Some("ipvs"));
        assert_eq!(
            kube_proxy_key(conf, "clusterCIDR").as_deref(),
            Some("10.244.0.0/16")
        );
        assert_eq!(kube_proxy_key(conf, "nope"), None);
    }
}
