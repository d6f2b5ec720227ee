//! Detection of the settings a diagnosis needs, each overridable by a flag.
//! A failure names the flag to pass and what was looked at.

use std::collections::BTreeMap;

use anyhow::Result;
use ipnet::{IpNet, Ipv4Net};
use serde::Deserialize;

use crate::cluster::{ClusterView, PodFacts};
use crate::settings::{DEFAULT_MASQ_MARK, ProxyMode, Settings};
use skoop_error::bad_input;
use skoop_netstack::dump::NetnsDump;

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

/// What reveals that a loaded CNI plugin is in use.
#[derive(Debug, Clone, Default)]
pub struct Reveals {
    /// DaemonSet names (its own, or the owner of a pod).
    pub daemonsets: Vec<String>,
    /// Kinds as `apiVersion/Kind` (an operator's install object).
    pub objects: Vec<String>,
}

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
    flags.proxy_mode.is_none() && kube_proxy_text(view).is_none()
}

/// Detect every setting not given on the command line, explaining each.
/// `hosts` are the host netns dumps at hand (by node), for kube-proxy's mode
/// when it has no ConfigMap.
pub fn detect(
    view: &ClusterView,
    hosts: &[(&str, &NetnsDump)],
    flags: &Overrides,
    plugins: &BTreeMap<String, Reveals>,
) -> Result<Detected> {
    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    let kube_proxy = kube_proxy_config(view)?;
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
            let (m, how) = proxy_mode_explained(kube_proxy.as_ref(), hosts)?;
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
        None => match cluster_cidr_explained(view, kube_proxy.as_ref(), &mut warnings) {
            Some((c, how)) => {
                notes.push(format!("cluster CIDR {c} (detected from {how})"));
                Some(c)
            }
            None => {
                let w = "cannot detect the cluster CIDR: ConfigMap kube-system/kube-proxy has no IPv4 clusterCIDR and no node has spec.podCIDR(s); pass --cluster-cidr CIDR".to_string();
                notes.push(format!("cluster CIDR unknown: {w}"));
                warnings.push(w);
                None
            }
        },
    };
    let masquerade = kube_proxy
        .as_ref()
        .map(|c| c.masquerade(proxy_mode))
        .transpose()?;
    match &masquerade {
        Some(m) => {
            notes.push(format!("masquerade mark {:#x} ({})", m.mark, m.how));
            if m.all {
                notes.push(format!(
                    "kube-proxy masquerades all Service traffic ({}.masqueradeAll of {KUBE_PROXY_CM})",
                    m.section
                ));
            }
        }
        None => notes.push(format!(
            "masquerade mark unknown (no {KUBE_PROXY_CM}); Services use kube-proxy's default {DEFAULT_MASQ_MARK:#x}"
        )),
    }
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
            masquerade_mark: masquerade.as_ref().map(|m| m.mark),
            masquerade_all: masquerade.is_some_and(|m| m.all),
        },
        notes,
        warnings,
    })
}

fn daemonset_names(view: &ClusterView) -> Vec<(String, String)> {
    view.objects("apps/v1", "DaemonSet", "")
        .iter()
        .map(|d| (d.namespace.clone(), d.name.clone()))
        .collect()
}

/// The DaemonSet a pod belongs to: its owner, else a name `<ds>-<suffix>`.
fn pod_daemonset<'a>(pod: &PodFacts, candidates: &[&'a str]) -> Option<&'a str> {
    let owner = pod.daemonset.as_deref();
    let name = pod.name.as_str();
    candidates.iter().copied().find(|ds| match owner {
        Some(o) => o == *ds,
        None => name
            .strip_prefix(*ds)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|suffix| !suffix.is_empty() && !suffix.contains('-')),
    })
}

/// The plugin whose DaemonSet (or DaemonSet pods) runs in the cluster.
pub fn network_plugin(view: &ClusterView, plugins: &BTreeMap<String, Reveals>) -> Result<String> {
    network_plugin_explained(view, plugins).map(|(p, _)| p)
}

fn network_plugin_explained(
    view: &ClusterView,
    plugins: &BTreeMap<String, Reveals>,
) -> Result<(String, String)> {
    let names = daemonset_names(view);
    for (plugin, reveals) in plugins {
        if let Some((ns, name)) = names.iter().find(|(_, n)| reveals.daemonsets.contains(n)) {
            return Ok((plugin.clone(), format!("DaemonSet {ns}/{name}")));
        }
    }
    for (plugin, reveals) in plugins {
        let candidates: Vec<&str> = reveals.daemonsets.iter().map(String::as_str).collect();
        if let Some(pod) = view
            .pods
            .values()
            .find(|p| pod_daemonset(p, &candidates).is_some())
        {
            return Ok((plugin.clone(), format!("pod {}", pod.id())));
        }
    }
    for (plugin, reveals) in plugins {
        for kind in &reveals.objects {
            let Some((api_version, k)) = kind.rsplit_once('/') else {
                continue;
            };
            if let Some(o) = view.objects(api_version, k, "").first() {
                let name = if o.namespace.is_empty() {
                    o.name.clone()
                } else {
                    format!("{}/{}", o.namespace, o.name)
                };
                return Ok((plugin.clone(), format!("{k} {name}")));
            }
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
                view.pods
                    .values()
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
        .map(|(p, r)| {
            let mut what = r.daemonsets.clone();
            what.extend(r.objects.iter().cloned());
            format!("{p} ({})", what.join(", "))
        })
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
        view.pods.len(),
        known.join("; ")
    )))
}

/// Where kube-proxy's configuration lives, for messages.
const KUBE_PROXY_CM: &str = "ConfigMap kube-system/kube-proxy";

/// kube-proxy's default `masqueradeBit`.
const DEFAULT_MASQ_BIT: u32 = 14;

/// The fields skoop reads of kube-proxy's KubeProxyConfiguration
/// (kubeproxy.config.k8s.io/v1alpha1); every other field is ignored. Each
/// may be absent or null, which means kube-proxy's default.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct KubeProxyConfiguration {
    mode: Option<String>,
    #[serde(rename = "clusterCIDR")]
    cluster_cidr: Option<String>,
    iptables: Option<Masquerading>,
    nftables: Option<Masquerading>,
}

/// The masquerade settings of one proxier section (`iptables`, `nftables`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Masquerading {
    masquerade_bit: Option<i64>,
    masquerade_all: Option<bool>,
}

/// kube-proxy's masquerading, with where it was read.
#[derive(Debug, PartialEq, Eq)]
struct Masquerade {
    mark: u32,
    all: bool,
    /// The config section it comes from: `iptables` or `nftables`.
    section: &'static str,
    how: String,
}

impl KubeProxyConfiguration {
    /// kube-proxy's mode; an empty mode is iptables (kube-proxy's default on Linux).
    fn proxy_mode(&self) -> Result<ProxyMode> {
        match self.mode.as_deref().map(str::trim) {
            None | Some("") | Some("iptables") => Ok(ProxyMode::Iptables),
            Some("ipvs") => Ok(ProxyMode::Ipvs),
            Some("nftables") => Ok(ProxyMode::Nftables),
            Some(other) => Err(bad_input(format!(
                "{KUBE_PROXY_CM} sets mode {other:?}, which skoop does not simulate; pass --proxy-mode iptables|ipvs|nftables|none"
            ))),
        }
    }

    /// The IPv4 entry of `clusterCIDR` (comma-separated when dual-stack).
    /// `Err` carries a warning for an entry that is not a CIDR.
    fn ipv4_cluster_cidr(&self) -> std::result::Result<Option<Ipv4Net>, String> {
        let Some(value) = self.cluster_cidr.as_deref() else {
            return Ok(None);
        };
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry.parse::<IpNet>() {
                Ok(IpNet::V4(net)) => return Ok(Some(net)),
                Ok(IpNet::V6(_)) => {}
                Err(_) => {
                    return Err(format!(
                        "{KUBE_PROXY_CM} has clusterCIDR {value:?}, whose entry {entry:?} is not a CIDR; ignoring it"
                    ));
                }
            }
        }
        Ok(None)
    }

    /// The masquerade mark and masqueradeAll of the proxier `mode` runs:
    /// the `nftables` section in nftables mode, else the `iptables` one
    /// (which IPVS mode uses too).
    fn masquerade(&self, mode: ProxyMode) -> Result<Masquerade> {
        let (section, conf) = match mode {
            ProxyMode::Nftables => ("nftables", &self.nftables),
            _ => ("iptables", &self.iptables),
        };
        let conf = conf.as_ref();
        let (bit, how) = match conf.and_then(|c| c.masquerade_bit) {
            Some(bit) => (
                bit,
                format!("{section}.masqueradeBit {bit} of {KUBE_PROXY_CM}"),
            ),
            None => (
                i64::from(DEFAULT_MASQ_BIT),
                format!(
                    "kube-proxy's default masqueradeBit {DEFAULT_MASQ_BIT}; {KUBE_PROXY_CM} sets no {section}.masqueradeBit"
                ),
            ),
        };
        // kube-proxy itself refuses a bit outside 0..=31.
        let mark = u32::try_from(bit)
            .ok()
            .and_then(|b| 1u32.checked_shl(b))
            .ok_or_else(|| {
                bad_input(format!(
                    "{KUBE_PROXY_CM} sets {section}.masqueradeBit {bit}; kube-proxy accepts 0 to 31"
                ))
            })?;
        Ok(Masquerade {
            mark,
            all: conf.and_then(|c| c.masquerade_all).unwrap_or(false),
            section,
            how,
        })
    }
}

/// The text of kube-proxy's config.conf, when its ConfigMap has one.
fn kube_proxy_text(view: &ClusterView) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ConfigMap {
        data: Option<BTreeMap<String, String>>,
    }
    let cm: ConfigMap = view
        .object("v1", "ConfigMap", "kube-system", "kube-proxy")?
        .typed()
        .ok()?;
    cm.data?.remove("config.conf")
}

/// kube-proxy's configuration: `None` without its ConfigMap (or the
/// ConfigMap's config.conf); a document that is not a KubeProxyConfiguration
/// is bad input naming the ConfigMap, the key and the line.
fn kube_proxy_config(view: &ClusterView) -> Result<Option<KubeProxyConfiguration>> {
    kube_proxy_text(view)
        .map(|text| parse_kube_proxy(&text))
        .transpose()
}

fn parse_kube_proxy(text: &str) -> Result<KubeProxyConfiguration> {
    // An empty document is kube-proxy's defaults.
    if text.trim().is_empty() {
        return Ok(KubeProxyConfiguration::default());
    }
    serde_norway::from_str(text).map_err(|e| {
        let line = e
            .location()
            .map(|l| format!(" at line {}", l.line()))
            .unwrap_or_default();
        // The error's own text repeats the location: keep its message only.
        let text = e.to_string();
        let why = text.split(" at line ").next().unwrap_or(&text);
        bad_input(format!(
            "{KUBE_PROXY_CM}, key config.conf, is not a valid KubeProxyConfiguration{line}: {why}"
        ))
    })
}

fn proxy_mode_explained(
    kube_proxy: Option<&KubeProxyConfiguration>,
    hosts: &[(&str, &NetnsDump)],
) -> Result<(ProxyMode, String)> {
    if let Some(conf) = kube_proxy {
        return Ok((conf.proxy_mode()?, KUBE_PROXY_CM.to_string()));
    }
    if hosts.is_empty() {
        return Err(bad_input(format!(
            "cannot detect kube-proxy's mode: no {KUBE_PROXY_CM} and no node dumps; pass --proxy-mode iptables|ipvs|nftables|none"
        )));
    }
    let names: Vec<&str> = hosts.iter().map(|(n, _)| *n).collect();
    let how = format!("the dumps of node {}", names.join(", "));
    let shows = |needle: &str| {
        hosts
            .iter()
            .any(|(_, h)| h.iptables.as_ref().is_some_and(|t| t.contains(needle)))
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
            "no {KUBE_PROXY_CM}, and neither KUBE-SERVICES rules nor IPVS services in {how}; pass --proxy-mode if that is wrong"
        ),
    ))
}

/// The cluster CIDR: kube-proxy's (IPv4) clusterCIDR, else the smallest
/// prefix holding every node's pod CIDR.
pub fn cluster_cidr(view: &ClusterView) -> Result<Option<Ipv4Net>> {
    let conf = kube_proxy_config(view)?;
    Ok(cluster_cidr_explained(view, conf.as_ref(), &mut Vec::new()).map(|(c, _)| c))
}

/// `warnings` gets a clusterCIDR that is not a CIDR (kube-proxy would not
/// start with it, so the node pod CIDRs are a better guess).
fn cluster_cidr_explained(
    view: &ClusterView,
    kube_proxy: Option<&KubeProxyConfiguration>,
    warnings: &mut Vec<String>,
) -> Option<(Ipv4Net, String)> {
    match kube_proxy.map(KubeProxyConfiguration::ipv4_cluster_cidr) {
        Some(Ok(Some(c))) => return Some((c, format!("clusterCIDR of {KUBE_PROXY_CM}"))),
        Some(Err(w)) => warnings.push(w),
        Some(Ok(None)) | None => {}
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
    use skoop_error::is_bad_input;

    /// kube-proxy's config.conf as kubeadm writes it (kubeadm's defaults,
    /// kubeproxy.config.k8s.io/v1alpha1).
    const KUBEADM: &str = r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: 10.244.0.0/16
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpBeLiberal: false
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
  udpStreamTimeout: 0s
  udpTimeout: 0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
kind: KubeProxyConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
  verbosity: 0
metricsBindAddress: ""
mode: ""
nftables:
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
nodePortAddresses: null
oomScoreAdj: null
portRange: ""
showHiddenMetricsForPlatform: ""
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
"#;

    /// `KUBEADM` with `from` replaced by `to` (which must occur).
    fn with(from: &str, to: &str) -> KubeProxyConfiguration {
        assert!(KUBEADM.contains(from), "{from:?}");
        parse_kube_proxy(&KUBEADM.replacen(from, to, 1)).unwrap()
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn kubeadm_defaults_are_iptables_with_bit_14() {
        let c = parse_kube_proxy(KUBEADM).unwrap();
        assert_eq!(c.proxy_mode().unwrap(), ProxyMode::Iptables);
        assert_eq!(c.ipv4_cluster_cidr(), Ok(Some(net("10.244.0.0/16"))));
        let m = c.masquerade(ProxyMode::Iptables).unwrap();
        assert_eq!((m.mark, m.all, m.section), (0x4000, false, "iptables"));
        assert!(m.how.contains("default masqueradeBit 14"), "{}", m.how);
    }

    #[test]
    fn modes_are_read_and_empty_means_iptables() {
        for (mode, want) in [
            ("mode: \"\"", ProxyMode::Iptables),
            ("mode: iptables", ProxyMode::Iptables),
            ("mode: \"ipvs\"", ProxyMode::Ipvs),
            ("mode: nftables", ProxyMode::Nftables),
            ("mode: null", ProxyMode::Iptables),
        ] {
            let c = with("mode: \"\"", mode);
            assert_eq!(c.proxy_mode().unwrap(), want, "{mode}");
        }
        // No mode key at all, and an empty document: kube-proxy's defaults.
        let c = with("mode: \"\"\n", "");
        assert_eq!(c.proxy_mode().unwrap(), ProxyMode::Iptables);
        let c = parse_kube_proxy("").unwrap();
        assert_eq!(c.proxy_mode().unwrap(), ProxyMode::Iptables);
        assert_eq!(c.masquerade(ProxyMode::Iptables).unwrap().mark, 0x4000);
        let e = with("mode: \"\"", "mode: kernelspace")
            .proxy_mode()
            .unwrap_err();
        assert!(is_bad_input(&e));
        let msg = e.to_string();
        assert!(
            msg.contains("\"kernelspace\"") && msg.contains("--proxy-mode"),
            "{msg}"
        );
    }

    #[test]
    fn dual_stack_cluster_cidr_takes_the_ipv4_entry() {
        let c = with(
            "clusterCIDR: 10.244.0.0/16",
            "clusterCIDR: 10.244.0.0/16,fd00:10:244::/56",
        );
        assert_eq!(c.ipv4_cluster_cidr(), Ok(Some(net("10.244.0.0/16"))));
        let c = with(
            "clusterCIDR: 10.244.0.0/16",
            "clusterCIDR: \"fd00:10:244::/56, 10.42.0.0/16\"",
        );
        assert_eq!(c.ipv4_cluster_cidr(), Ok(Some(net("10.42.0.0/16"))));
        let c = with(
            "clusterCIDR: 10.244.0.0/16",
            "clusterCIDR: fd00:10:244::/56",
        );
        assert_eq!(c.ipv4_cluster_cidr(), Ok(None), "IPv6 only");
        let c = with("clusterCIDR: 10.244.0.0/16", "clusterCIDR: \"\"");
        assert_eq!(c.ipv4_cluster_cidr(), Ok(None));
        let c = with("clusterCIDR: 10.244.0.0/16", "clusterCIDR: 10.244.0.0/33");
        let w = c.ipv4_cluster_cidr().unwrap_err();
        assert!(w.contains("\"10.244.0.0/33\" is not a CIDR"), "{w}");
    }

    #[test]
    fn masquerade_bit_15_and_masquerade_all() {
        let c = with(
            "  masqueradeAll: false\n  masqueradeBit: null\n  minSyncPeriod: 0s\n  syncPeriod: 0s\nipvs:",
            "  masqueradeAll: true\n  masqueradeBit: 15\n  minSyncPeriod: 0s\n  syncPeriod: 0s\nipvs:",
        );
        let m = c.masquerade(ProxyMode::Iptables).unwrap();
        assert_eq!((m.mark, m.all), (0x8000, true));
        assert_eq!(
            m.how,
            "iptables.masqueradeBit 15 of ConfigMap kube-system/kube-proxy"
        );
        // IPVS mode marks with the iptables section's bit too.
        assert_eq!(c.masquerade(ProxyMode::Ipvs).unwrap().mark, 0x8000);
        // nftables mode reads its own section, which keeps the default.
        assert_eq!(c.masquerade(ProxyMode::Nftables).unwrap().mark, 0x4000);
        let bad = with("masqueradeBit: null", "masqueradeBit: 32");
        let e = bad.masquerade(ProxyMode::Iptables).unwrap_err();
        assert!(is_bad_input(&e));
        assert!(e.to_string().contains("masqueradeBit 32"), "{e}");
        let negative = with("masqueradeBit: null", "masqueradeBit: -1");
        assert!(negative.masquerade(ProxyMode::Iptables).is_err());
    }

    #[test]
    fn nftables_mode_reads_the_nftables_section() {
        let c = with(
            "mode: \"\"\nnftables:\n  masqueradeAll: false\n  masqueradeBit: null",
            "mode: nftables\nnftables:\n  masqueradeAll: true\n  masqueradeBit: 13",
        );
        assert_eq!(c.proxy_mode().unwrap(), ProxyMode::Nftables);
        let m = c.masquerade(ProxyMode::Nftables).unwrap();
        assert_eq!((m.mark, m.all, m.section), (0x2000, true, "nftables"));
        assert!(m.how.starts_with("nftables.masqueradeBit 13"), "{}", m.how);
    }

    #[test]
    fn malformed_config_names_the_configmap_key_and_line() {
        // A tab where indentation belongs (line 5) is not YAML.
        let text = KUBEADM.replacen("  acceptContentTypes", "\tacceptContentTypes", 1);
        let e = parse_kube_proxy(&text).unwrap_err();
        assert!(is_bad_input(&e));
        let msg = e.to_string();
        for part in [
            "ConfigMap kube-system/kube-proxy",
            "config.conf",
            "at line 5",
        ] {
            assert!(msg.contains(part), "{part:?} not in {msg}");
        }
        // Valid YAML of the wrong shape names its line too.
        let e = parse_kube_proxy(&KUBEADM.replacen("masqueradeBit: null", "masqueradeBit: [1]", 1))
            .unwrap_err();
        assert!(e.to_string().contains("at line 30"), "{e}");
        let e = parse_kube_proxy("- just\n- a list\n").unwrap_err();
        assert!(e.to_string().contains("config.conf"), "{e}");
    }

    /// A view holding only kube-proxy's ConfigMap with `conf`.
    fn view(conf: &str) -> ClusterView {
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"namespace": "kube-system", "name": "kube-proxy"},
             "data": {"config.conf": conf}}]});
        ClusterView::parse(&list.to_string(), "test", Default::default()).unwrap()
    }

    #[test]
    fn an_install_object_reveals_its_plugin_when_no_daemonset_is_in_view() {
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "operator.tigera.io/v1", "kind": "Installation",
             "metadata": {"name": "default"}, "spec": {}}]});
        let kind = "operator.tigera.io/v1/Installation";
        let view = ClusterView::parse(
            &list.to_string(),
            "test",
            crate::cluster::Retain::with_reads([kind]),
        )
        .unwrap();
        let reveals = |objects: Vec<String>| Reveals {
            daemonsets: vec!["calico-node".into()],
            objects,
        };
        let plugins = BTreeMap::from([("calico".to_string(), reveals(vec![kind.into()]))]);
        let (p, how) = network_plugin_explained(&view, &plugins).unwrap();
        assert_eq!(
            (p.as_str(), how.as_str()),
            ("calico", "Installation default")
        );
        // Without the declaration the same view reveals nothing.
        let plugins = BTreeMap::from([("calico".to_string(), reveals(vec![]))]);
        let e = network_plugin_explained(&view, &plugins).unwrap_err();
        assert!(
            e.to_string().contains("cannot detect the network plugin"),
            "{e}"
        );
    }

    fn flags() -> Overrides {
        Overrides {
            network_plugin: Some("flannel".into()),
            ..Overrides::default()
        }
    }

    #[test]
    fn detection_reports_mode_cidr_and_masquerade_mark() {
        let conf = KUBEADM
            .replacen("mode: \"\"", "mode: nftables", 1)
            .replacen(
                "clusterCIDR: 10.244.0.0/16",
                "clusterCIDR: 10.244.0.0/16,fd00:10:244::/56",
                1,
            );
        let d = detect(&view(&conf), &[], &flags(), &BTreeMap::new()).unwrap();
        assert_eq!(d.settings.proxy_mode, ProxyMode::Nftables);
        assert_eq!(d.settings.cluster_cidr, Some(net("10.244.0.0/16")));
        assert_eq!(d.settings.masquerade_mark, Some(0x4000));
        assert!(!d.settings.masquerade_all);
        assert!(
            d.notes.iter().any(|n| n
                == "masquerade mark 0x4000 (kube-proxy's default masqueradeBit 14; ConfigMap kube-system/kube-proxy sets no nftables.masqueradeBit)"),
            "{:?}",
            d.notes
        );
        let e = detect(&view("mode: [\n"), &[], &flags(), &BTreeMap::new()).unwrap_err();
        assert!(is_bad_input(&e));
        assert!(e.to_string().contains("config.conf"), "{e}");
    }
}
