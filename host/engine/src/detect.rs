//! Detection of the settings a diagnosis needs, each overridable by a flag.
//! A failure names the flag to pass and what was looked at.

use std::collections::BTreeMap;

use anyhow::Result;
use ipnet::Ipv4Net;
use serde_json::Value;

use crate::cluster::ClusterView;
use crate::dump::{NetnsDump, NodeDump};
use crate::error::bad_input;

/// How Services are implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
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

/// Well-known network plugins and the DaemonSets that reveal them, for a
/// helpful message when one runs but no extension for it is loaded.
const KNOWN_PLUGINS: &[(&str, &[&str])] = &[
    ("flannel", &["kube-flannel-ds", "kube-flannel-ds-amd64"]),
    ("calico", &["calico-node"]),
    ("canal", &["canal"]),
    ("cilium", &["cilium"]),
    ("terway", &["terway", "terway-eniip", "terway-eni"]),
    ("weave", &["weave-net"]),
    ("antrea", &["antrea-agent"]),
    ("kube-router", &["kube-router"]),
];

/// Settings, with what each was detected from.
#[derive(Debug, Clone)]
pub struct Detected {
    pub settings: Settings,
    /// One line per setting: its value and where it came from.
    pub notes: Vec<String>,
    /// Detections that failed without stopping the diagnosis, each naming
    /// what was looked at and the flag to pass.
    pub warnings: Vec<String>,
}

/// True when kube-proxy's mode can only come from node dumps: no flag and
/// no ConfigMap kube-system/kube-proxy.
pub fn proxy_mode_needs_dumps(view: &ClusterView, flags: &Overrides) -> bool {
    flags.proxy_mode.is_none() && kube_proxy_config(view).is_none()
}

/// Detect every setting not given on the command line. `plugins` maps a
/// plugin name to the DaemonSet names that reveal it.
pub fn settings(
    view: &ClusterView,
    dumps: &BTreeMap<String, NodeDump>,
    flags: &Overrides,
    plugins: &BTreeMap<String, Vec<String>>,
) -> Result<Settings> {
    let hosts: Vec<(&str, &NetnsDump)> = dumps.iter().map(|(n, d)| (n.as_str(), &d.host)).collect();
    detect(view, &hosts, flags, plugins).map(|d| d.settings)
}

/// Detect every setting not given on the command line, explaining each.
/// `hosts` are the host netns dumps at hand (by node), for kube-proxy's mode
/// when it has no ConfigMap.
pub fn detect(
    view: &ClusterView,
    hosts: &[(&str, &NetnsDump)],
    flags: &Overrides,
    plugins: &BTreeMap<String, Vec<String>>,
) -> Result<Detected> {
    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    let network_plugin = match &flags.network_plugin {
        Some(p) => {
            notes.push(format!("network plugin {p} (--network-plugin)"));
            p.clone()
        }
        None => {
            let (p, how) = network_plugin_explained(view, plugins)?;
            notes.push(format!("network plugin {p} (detected from {how})"));
            p
        }
    };
    let proxy_mode = match flags.proxy_mode {
        Some(m) => {
            notes.push(format!("kube-proxy mode {} (--proxy-mode)", m.name()));
            m
        }
        None => {
            let (m, how) = proxy_mode_explained(view, hosts)?;
            notes.push(format!(
                "kube-proxy mode {} (detected from {how})",
                m.name()
            ));
            m
        }
    };
    let cluster_cidr = match flags.cluster_cidr {
        Some(c) => {
            notes.push(format!("cluster CIDR {c} (--cluster-cidr)"));
            Some(c)
        }
        None => match cluster_cidr_explained(view) {
            Some((c, how)) => {
                notes.push(format!("cluster CIDR {c} (detected from {how})"));
                Some(c)
            }
            None => {
                let w = "cannot detect the cluster CIDR: ConfigMap kube-system/kube-proxy has no clusterCIDR and no node has spec.podCIDR(s); pass --cluster-cidr CIDR".to_string();
                notes.push(format!("cluster CIDR unknown: {w}"));
                warnings.push(w);
                None
            }
        },
    };
    let cloud_provider = match &flags.cloud_provider {
        Some(c) => {
            notes.push(format!("cloud provider {c} (--cloud-provider)"));
            c.clone()
        }
        None => {
            notes.push("cloud provider generic (default; pass --cloud-provider NAME)".into());
            "generic".to_string()
        }
    };
    Ok(Detected {
        settings: Settings {
            network_plugin,
            cloud_provider,
            proxy_mode,
            cluster_cidr,
        },
        notes,
        warnings,
    })
}

fn daemonset_names(view: &ClusterView) -> Vec<(String, String)> {
    view.objects("apps/v1", "DaemonSet", "")
        .iter()
        .filter_map(|d| {
            let name = d.pointer("/metadata/name").and_then(Value::as_str)?;
            let ns = d
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("");
            Some((ns.to_string(), name.to_string()))
        })
        .collect()
}

/// The DaemonSet a pod belongs to: its owner, else a name `<ds>-<suffix>`.
fn pod_daemonset<'a>(pod: &Value, candidates: &[&'a str]) -> Option<&'a str> {
    let owner = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| {
            refs.iter()
                .find(|r| r.get("kind").and_then(Value::as_str) == Some("DaemonSet"))
        })
        .and_then(|r| r.get("name"))
        .and_then(Value::as_str);
    let name = pod.pointer("/metadata/name").and_then(Value::as_str)?;
    candidates.iter().copied().find(|ds| match owner {
        Some(o) => o == *ds,
        None => name
            .strip_prefix(*ds)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|suffix| !suffix.is_empty() && !suffix.contains('-')),
    })
}

/// The plugin whose DaemonSet (or DaemonSet pods) runs in the cluster.
pub fn network_plugin(
    view: &ClusterView,
    plugins: &BTreeMap<String, Vec<String>>,
) -> Result<String> {
    network_plugin_explained(view, plugins).map(|(p, _)| p)
}

fn network_plugin_explained(
    view: &ClusterView,
    plugins: &BTreeMap<String, Vec<String>>,
) -> Result<(String, String)> {
    let names = daemonset_names(view);
    for (plugin, daemonsets) in plugins {
        if let Some((ns, name)) = names.iter().find(|(_, n)| daemonsets.contains(n)) {
            return Ok((plugin.clone(), format!("DaemonSet {ns}/{name}")));
        }
    }
    let pods = view.objects("v1", "Pod", "");
    for (plugin, daemonsets) in plugins {
        let candidates: Vec<&str> = daemonsets.iter().map(String::as_str).collect();
        if let Some(pod) = pods
            .iter()
            .find(|p| pod_daemonset(p, &candidates).is_some())
        {
            let id = pod
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            let ns = pod
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("");
            return Ok((plugin.clone(), format!("pod {ns}/{id}")));
        }
    }
    let loaded: Vec<&str> = plugins.keys().map(String::as_str).collect();
    for (plugin, daemonsets) in KNOWN_PLUGINS {
        if loaded.contains(plugin) {
            continue;
        }
        let seen = names
            .iter()
            .find(|(_, n)| daemonsets.contains(&n.as_str()))
            .map(|(ns, n)| format!("DaemonSet {ns}/{n}"))
            .or_else(|| {
                pods.iter()
                    .find_map(|p| pod_daemonset(p, daemonsets))
                    .map(|ds| format!("pods of DaemonSet {ds}"))
            });
        if let Some(seen) = seen {
            return Err(bad_input(format!(
                "the cluster runs {plugin} ({seen}), but no extension for it is loaded (loaded: {}); load one with --extension FILE, or pass --network-plugin NAME",
                loaded.join(", ")
            )));
        }
    }
    let known: Vec<String> = plugins
        .iter()
        .map(|(p, ds)| format!("{p} ({})", ds.join(", ")))
        .collect();
    Err(bad_input(format!(
        "cannot detect the network plugin: none of the DaemonSets in the cluster ({}) nor of the {} pods belongs to a loaded plugin [{}]; pass --network-plugin NAME",
        if names.is_empty() {
            "none".to_string()
        } else {
            names
                .iter()
                .map(|(ns, n)| format!("{ns}/{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        pods.len(),
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
    let hosts: Vec<(&str, &NetnsDump)> = dumps.iter().map(|(n, d)| (n.as_str(), &d.host)).collect();
    proxy_mode_explained(view, &hosts).map(|(m, _)| m)
}

fn proxy_mode_explained(
    view: &ClusterView,
    hosts: &[(&str, &NetnsDump)],
) -> Result<(ProxyMode, String)> {
    if let Some(conf) = kube_proxy_config(view) {
        let how = "ConfigMap kube-system/kube-proxy".to_string();
        return match kube_proxy_key(&conf, "mode").as_deref() {
            None | Some("") | Some("iptables") => Ok((ProxyMode::Iptables, how)),
            Some("ipvs") => Ok((ProxyMode::Ipvs, how)),
            Some(other) => Err(bad_input(format!(
                "ConfigMap kube-system/kube-proxy sets mode {other:?}, which skoop does not simulate; pass --proxy-mode iptables|ipvs|none"
            ))),
        };
    }
    if hosts.is_empty() {
        return Err(bad_input(
            "cannot detect kube-proxy's mode: no ConfigMap kube-system/kube-proxy and no node dumps; pass --proxy-mode iptables|ipvs|none",
        ));
    }
    let names: Vec<&str> = hosts.iter().map(|(n, _)| *n).collect();
    let how = format!("the dumps of node {}", names.join(", "));
    let shows = |needle: &str| {
        hosts
            .iter()
            .any(|(_, h)| h.iptables.as_deref().is_some_and(|t| t.contains(needle)))
    };
    let ipvs = hosts
        .iter()
        .any(|(_, h)| h.ipvs.as_ref().is_some_and(|v| !v.is_empty()));
    if shows("KUBE-SVC-") || (!ipvs && shows("KUBE-SERVICES")) {
        return Ok((ProxyMode::Iptables, format!("KUBE-SERVICES rules in {how}")));
    }
    if ipvs {
        return Ok((ProxyMode::Ipvs, format!("IPVS services in {how}")));
    }
    Ok((
        ProxyMode::None,
        format!(
            "no ConfigMap kube-system/kube-proxy, and neither KUBE-SERVICES rules nor IPVS services in {how}; pass --proxy-mode if that is wrong"
        ),
    ))
}

/// The cluster CIDR: kube-proxy's clusterCIDR, else the smallest prefix
/// holding every node's pod CIDR.
pub fn cluster_cidr(view: &ClusterView) -> Option<Ipv4Net> {
    cluster_cidr_explained(view).map(|(c, _)| c)
}

fn cluster_cidr_explained(view: &ClusterView) -> Option<(Ipv4Net, String)> {
    if let Some(c) = kube_proxy_config(view)
        .and_then(|conf| kube_proxy_key(&conf, "clusterCIDR"))
        .and_then(|c| c.parse().ok())
    {
        return Some((c, "clusterCIDR of ConfigMap kube-system/kube-proxy".into()));
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
        .map(|c| (c, format!("the pod CIDRs of {} nodes", view.nodes.len())))
}

/// Fill each node's host interface: the interface holding its InternalIP.
pub fn host_interfaces(view: &mut ClusterView, dumps: &BTreeMap<String, NodeDump>) {
    host_interfaces_with(view, |name| dumps.get(name).map(|d| &d.host));
}

/// Fill the host interface of each node whose host netns `host` gives;
/// returns one warning per node whose dump has no interface with its
/// InternalIP.
pub fn host_interfaces_with<'a>(
    view: &mut ClusterView,
    host: impl Fn(&str) -> Option<&'a NetnsDump>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for node in view.nodes.values_mut() {
        let Some(netns) = host(&node.name) else {
            node.host_interface = None;
            continue;
        };
        node.host_interface = netns
            .interfaces
            .iter()
            .find(|i| i.addresses.iter().any(|a| a.addr() == node.ip))
            .map(|i| i.name.clone());
        if node.host_interface.is_none() {
            warnings.push(format!(
                "cannot detect the host interface of node {}: no interface in its dump holds its InternalIP {} (interfaces: {}); plugins assume eth0",
                node.name,
                node.ip,
                netns
                    .interfaces
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    warnings
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
