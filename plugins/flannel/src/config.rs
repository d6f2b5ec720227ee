//! flannel's configuration: flags first, then the `kube-flannel-cfg` ConfigMap
//! as flannel itself reads it (`net-conf.json`).

use ipnet::Ipv4Net;
use serde::Deserialize;
use skoop_sdk::host::{Netns, cluster};
use skoop_sdk::{Error, Result, Suspicion};

/// The flannel backends this plugin understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    HostGw,
    Vxlan,
}

impl Backend {
    fn parse(s: &str) -> Option<Backend> {
        match s.to_ascii_lowercase().as_str() {
            "host-gw" | "hostgw" => Some(Backend::HostGw),
            "vxlan" => Some(Backend::Vxlan),
            _ => None,
        }
    }

    /// The name flannel's config uses.
    pub fn name(self) -> &'static str {
        match self {
            Backend::HostGw => "host-gw",
            Backend::Vxlan => "vxlan",
        }
    }

    /// Bytes the backend's encapsulation takes from the host MTU.
    pub fn overhead(self) -> u32 {
        match self {
            Backend::HostGw => 0,
            Backend::Vxlan => 50,
        }
    }
}

/// Resolved plugin configuration.
#[derive(Debug, Clone)]
pub struct FlannelConfig {
    pub backend: Backend,
    /// flannel's `Network` (the cluster CIDR), when known.
    pub network: Option<Ipv4Net>,
    pub pod_mtu_override: Option<u32>,
    pub require_bridge_nf: bool,
    /// VXLAN network identifier (net-conf.json `Backend.VNI`, default 1).
    pub vni: u32,
    /// VXLAN UDP port (`Backend.Port`, default 8472).
    pub port: u16,
    /// `Backend.DirectRouting`: same-subnet nodes are reached without VXLAN.
    pub direct_routing: bool,
}

#[derive(Deserialize)]
struct NetConf {
    #[serde(rename = "Network")]
    network: Option<String>,
    #[serde(rename = "Backend")]
    backend: Option<BackendConf>,
}

#[derive(Deserialize)]
struct BackendConf {
    #[serde(rename = "Type")]
    kind: Option<String>,
    /// VXLAN network identifier (flannel's default 1; the device is `flannel.<VNI>`).
    #[serde(rename = "VNI")]
    vni: Option<u32>,
    /// VXLAN UDP port (flannel's default on Linux: 8472).
    #[serde(rename = "Port")]
    port: Option<u16>,
    /// Nodes on the same subnet are routed directly, as host-gw does.
    #[serde(rename = "DirectRouting", default)]
    direct_routing: bool,
}

#[derive(Deserialize)]
struct ConfigMap {
    #[serde(default)]
    data: std::collections::BTreeMap<String, String>,
}

const CONFIGMAP_PLACES: [(&str, &str); 2] = [
    ("kube-flannel", "kube-flannel-cfg"),
    ("kube-system", "kube-flannel-cfg"),
];

impl FlannelConfig {
    /// Resolve the configuration; the findings are cluster-wide.
    pub fn load() -> Result<(FlannelConfig, Vec<Suspicion>)> {
        let mut findings = Vec::new();
        let (netconf, place) = read_netconf()?;
        let flag = cluster::config("flannel-backend-type");
        let from_cm = netconf
            .as_ref()
            .and_then(|n| n.backend.as_ref())
            .and_then(|b| b.kind.clone());
        let chosen = match (&flag, &from_cm) {
            (Some(f), _) => f.clone(),
            (None, Some(c)) => c.clone(),
            (None, None) => {
                return Err(Error::Invalid(format!(
                    "cannot tell the flannel backend: ConfigMap {} has no net-conf.json Backend.Type; pass --flannel-backend-type vxlan|host-gw",
                    place.unwrap_or("kube-flannel/kube-flannel-cfg")
                )));
            }
        };
        let backend = Backend::parse(&chosen).ok_or_else(|| {
            Error::Invalid(format!(
                "flannel backend {chosen:?} is not supported (host-gw, vxlan); pass --flannel-backend-type"
            ))
        })?;
        if let (Some(f), Some(c)) = (&flag, &from_cm)
            && Backend::parse(c) != Some(backend)
        {
            findings.push(Suspicion::new(
                skoop_sdk::Level::Warning,
                format!("--flannel-backend-type {f} overrides the cluster's flannel backend {c}"),
            ));
        }
        let backend_conf = netconf.as_ref().and_then(|n| n.backend.as_ref());
        let vni = backend_conf.and_then(|b| b.vni).unwrap_or(1);
        let port = backend_conf.and_then(|b| b.port).unwrap_or(8472);
        let direct_routing = backend_conf.is_some_and(|b| b.direct_routing);
        let network = netconf
            .and_then(|n| n.network)
            .and_then(|n| n.parse::<Ipv4Net>().ok())
            .or_else(cluster::cluster_cidr);
        if let Some(net) = network {
            for node in cluster::nodes() {
                for cidr in &node.pod_cidrs {
                    if !net.contains(cidr) {
                        findings.push(Suspicion::new(
                            skoop_sdk::Level::Warning,
                            format!(
                                "pod CIDR {cidr} of node {} is outside flannel's network {net}",
                                node.name
                            ),
                        ));
                    }
                }
            }
        }
        let pod_mtu_override =
            match cluster::config("flannel-pod-mtu") {
                None => None,
                Some(v) => Some(v.parse::<u32>().map_err(|_| {
                    Error::Invalid(format!("--flannel-pod-mtu {v:?} is not a number"))
                })?),
            };
        let require_bridge_nf = cluster::config("flannel-bridge-nf-call-iptables")
            .map(|v| v != "false")
            .unwrap_or(true);
        Ok((
            FlannelConfig {
                backend,
                network,
                pod_mtu_override,
                require_bridge_nf,
                vni,
                port,
                direct_routing,
            },
            findings,
        ))
    }

    /// flannel's VXLAN device: `flannel.<VNI>`.
    pub fn vxlan_dev(&self) -> String {
        format!("flannel.{}", self.vni)
    }

    /// The MTU flannel gives pods on `node`: the host interface's MTU less
    /// the backend's overhead (flannel writes it to subnet.env).
    pub fn pod_mtu(&self, node: &str) -> Option<u32> {
        if let Some(mtu) = self.pod_mtu_override {
            return Some(mtu);
        }
        // Unknown host MTU: no expectation rather than a guessed 1500.
        let host_mtu = cluster::node(node)
            .and_then(|n| n.host_interface)
            .and_then(|ifname| Netns::node(node).interface(&ifname).ok().flatten())
            .map(|i| i.mtu)?;
        Some(host_mtu.saturating_sub(self.backend.overhead()))
    }
}

/// `net-conf.json` from the first place the ConfigMap exists, and that place.
fn read_netconf() -> Result<(Option<NetConf>, Option<&'static str>)> {
    for (ns, name) in CONFIGMAP_PLACES {
        let cm: Option<ConfigMap> = match cluster::get_object("v1", "ConfigMap", ns, name) {
            Ok(cm) => cm,
            Err(Error::Unavailable(_)) => None,
            Err(e) => return Err(e),
        };
        let Some(cm) = cm else { continue };
        let place = if ns == "kube-flannel" {
            "kube-flannel/kube-flannel-cfg"
        } else {
            "kube-system/kube-flannel-cfg"
        };
        let Some(text) = cm.data.get("net-conf.json") else {
            return Ok((None, Some(place)));
        };
        let conf: NetConf = serde_json::from_str(text).map_err(|e| {
            Error::Invalid(format!(
                "ConfigMap {place}: net-conf.json is not valid JSON: {e}"
            ))
        })?;
        return Ok((Some(conf), Some(place)));
    }
    Ok((None, None))
}
