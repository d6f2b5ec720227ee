//! flannel's configuration: flags first, then the `kube-flannel-cfg` ConfigMap
//! as flannel itself reads it (`net-conf.json`).

use ipnet::Ipv4Net;
use serde::Deserialize;
use skoop_sdk::host::{Netns, cluster};
use skoop_sdk::{Error, Node, Result, Suspicion};

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

/// The plugin's flags as given (None: not given).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--flannel-backend-type`.
    pub backend_type: Option<String>,
    /// `--flannel-pod-mtu`.
    pub pod_mtu: Option<String>,
    /// `--flannel-bridge-nf-call-iptables`.
    pub bridge_nf_call_iptables: Option<String>,
}

impl Flags {
    fn from_host() -> Flags {
        Flags {
            backend_type: cluster::config("flannel-backend-type"),
            pod_mtu: cluster::config("flannel-pod-mtu"),
            bridge_nf_call_iptables: cluster::config("flannel-bridge-nf-call-iptables"),
        }
    }
}

impl FlannelConfig {
    /// Resolve the configuration from the cluster view; the suspicions are
    /// cluster-wide.
    pub fn load() -> Result<(FlannelConfig, Vec<Suspicion>)> {
        let (netconf, place) = read_netconf()?;
        FlannelConfig::resolve(
            netconf,
            place,
            &Flags::from_host(),
            cluster::cluster_cidr(),
            &cluster::nodes(),
        )
    }

    /// The configuration from flannel's `net-conf.json` (None: no ConfigMap
    /// or no such key; `place`: the ConfigMap's namespace/name), the flags,
    /// the cluster CIDR (used when net-conf.json has no `Network`) and the
    /// nodes (their pod CIDRs are checked against the network).
    fn resolve(
        netconf: Option<NetConf>,
        place: Option<&str>,
        flags: &Flags,
        cluster_cidr: Option<Ipv4Net>,
        nodes: &[Node],
    ) -> Result<(FlannelConfig, Vec<Suspicion>)> {
        let mut suspicions = Vec::new();
        let flag = flags.backend_type.as_ref();
        let from_cm = netconf
            .as_ref()
            .and_then(|n| n.backend.as_ref())
            .and_then(|b| b.kind.as_ref());
        let chosen = match (flag, from_cm) {
            (Some(f), _) => f,
            (None, Some(c)) => c,
            (None, None) => {
                return Err(Error::Invalid(format!(
                    "cannot tell the flannel backend: ConfigMap {} has no net-conf.json Backend.Type; pass --flannel-backend-type vxlan|host-gw",
                    place.unwrap_or("kube-flannel/kube-flannel-cfg")
                )));
            }
        };
        let backend = Backend::parse(chosen).ok_or_else(|| {
            Error::Invalid(format!(
                "flannel backend {chosen:?} is not supported (host-gw, vxlan); pass --flannel-backend-type"
            ))
        })?;
        if let (Some(f), Some(c)) = (flag, from_cm)
            && Backend::parse(c) != Some(backend)
        {
            suspicions.push(Suspicion::new(
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
            .or(cluster_cidr);
        if let Some(net) = network {
            for node in nodes {
                for cidr in &node.pod_cidrs {
                    if !net.contains(cidr) {
                        suspicions.push(Suspicion::new(
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
            match &flags.pod_mtu {
                None => None,
                Some(v) => Some(v.parse::<u32>().map_err(|_| {
                    Error::Invalid(format!("--flannel-pod-mtu {v:?} is not a number"))
                })?),
            };
        let require_bridge_nf = flags
            .bridge_nf_call_iptables
            .as_ref()
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
            suspicions,
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
        return Ok((Some(parse_netconf(text, place)?), Some(place)));
    }
    Ok((None, None))
}

/// `net-conf.json` as flannel reads it, from the ConfigMap at `place`.
fn parse_netconf(text: &str, place: &str) -> Result<NetConf> {
    serde_json::from_str(text).map_err(|e| {
        Error::Invalid(format!(
            "ConfigMap {place}: net-conf.json is not valid JSON: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use skoop_sdk::Level;

    const PLACE: &str = "kube-flannel/kube-flannel-cfg";

    /// kube-flannel.yml's own net-conf.json.
    const UPSTREAM: &str = r#"{
  "Network": "10.244.0.0/16",
  "EnableNFTables": false,
  "Backend": {
    "Type": "vxlan"
  }
}"#;

    fn node(name: &str, pod_cidr: &str) -> Node {
        Node {
            name: name.into(),
            ip: "192.168.0.11".parse().unwrap(),
            pod_cidrs: vec![pod_cidr.parse().unwrap()],
            ready: true,
            host_interface: Some("eth0".into()),
            annotations: vec![],
            labels: vec![],
            provider_id: None,
        }
    }

    fn resolve(
        netconf: &str,
        flags: &Flags,
        cluster_cidr: Option<&str>,
        nodes: &[Node],
    ) -> Result<(FlannelConfig, Vec<Suspicion>)> {
        let netconf = parse_netconf(netconf, PLACE).unwrap();
        FlannelConfig::resolve(
            Some(netconf),
            Some(PLACE),
            flags,
            cluster_cidr.map(|c| c.parse().unwrap()),
            nodes,
        )
    }

    /// The flags with one given, by its command-line name.
    fn flag(name: &str, value: &str) -> Flags {
        let mut flags = Flags::default();
        let slot = match name {
            "flannel-backend-type" => &mut flags.backend_type,
            "flannel-pod-mtu" => &mut flags.pod_mtu,
            "flannel-bridge-nf-call-iptables" => &mut flags.bridge_nf_call_iptables,
            _ => panic!("no flag {name}"),
        };
        *slot = Some(value.into());
        flags
    }

    fn messages(suspicions: &[Suspicion]) -> Vec<(Level, &str)> {
        suspicions
            .iter()
            .map(|s| (s.level, s.message.as_str()))
            .collect()
    }

    #[test]
    fn backend_types_are_flannels_names() {
        // flannel's Backend.Type values for these two backends.
        assert_eq!(Backend::parse("vxlan"), Some(Backend::Vxlan));
        assert_eq!(Backend::parse("host-gw"), Some(Backend::HostGw));
        // Backends flannel has that this plugin does not check.
        for other in ["udp", "ipip", "wireguard", "alloc", ""] {
            assert_eq!(Backend::parse(other), None, "{other}");
        }
        assert_eq!(Backend::Vxlan.name(), "vxlan");
        assert_eq!(Backend::HostGw.name(), "host-gw");
    }

    #[test]
    fn vxlan_takes_50_bytes_of_the_host_mtu_and_host_gw_none() {
        // flannel's vxlan backend sets flannel.<VNI>'s MTU (and subnet.env's
        // FLANNEL_MTU) to the interface MTU less 50: outer IPv4 20, UDP 8,
        // VXLAN 8, inner Ethernet 14. host-gw routes unencapsulated.
        assert_eq!(Backend::Vxlan.overhead(), 50);
        assert_eq!(Backend::HostGw.overhead(), 0);
    }

    #[test]
    fn upstream_net_conf_gives_flannels_vxlan_defaults() {
        let (c, suspicions) = resolve(UPSTREAM, &Flags::default(), None, &[]).unwrap();
        assert_eq!(c.backend, Backend::Vxlan);
        assert_eq!(c.network, Some("10.244.0.0/16".parse().unwrap()));
        // flannel's defaults: VNI 1, UDP port 8472 (the Linux kernel's), no DirectRouting.
        assert_eq!(c.vni, 1);
        assert_eq!(c.port, 8472);
        assert!(!c.direct_routing);
        assert_eq!(c.vxlan_dev(), "flannel.1");
        // No flags: no MTU override, bridge-nf-call-iptables required.
        assert_eq!(c.pod_mtu_override, None);
        assert!(c.require_bridge_nf);
        assert!(suspicions.is_empty(), "{suspicions:?}");
    }

    #[test]
    fn net_conf_vxlan_settings_are_read() {
        let netconf = r#"{"Network": "10.42.0.0/16",
            "Backend": {"Type": "vxlan", "VNI": 4096, "Port": 4789, "DirectRouting": true}}"#;
        let (c, _) = resolve(netconf, &Flags::default(), None, &[]).unwrap();
        assert_eq!(c.network, Some("10.42.0.0/16".parse().unwrap()));
        assert_eq!((c.vni, c.port, c.direct_routing), (4096, 4789, true));
        // flanneld names the device after the VNI.
        assert_eq!(c.vxlan_dev(), "flannel.4096");
    }

    #[test]
    fn host_gw_from_net_conf() {
        let netconf = r#"{"Network": "10.244.0.0/16", "Backend": {"Type": "host-gw"}}"#;
        let (c, suspicions) = resolve(netconf, &Flags::default(), None, &[]).unwrap();
        assert_eq!(c.backend, Backend::HostGw);
        assert!(suspicions.is_empty());
    }

    #[test]
    fn a_flag_overriding_the_configmap_backend_is_a_warning() {
        let flags = flag("flannel-backend-type", "host-gw");
        let (c, suspicions) = resolve(UPSTREAM, &flags, None, &[]).unwrap();
        assert_eq!(c.backend, Backend::HostGw);
        assert_eq!(
            messages(&suspicions),
            [(
                Level::Warning,
                "--flannel-backend-type host-gw overrides the cluster's flannel backend vxlan"
            )]
        );
        // The same backend, as the flag spells it: nothing to say.
        let flags = flag("flannel-backend-type", "VXLAN");
        let (c, suspicions) = resolve(UPSTREAM, &flags, None, &[]).unwrap();
        assert_eq!(c.backend, Backend::Vxlan);
        assert!(suspicions.is_empty(), "{suspicions:?}");
    }

    #[test]
    fn no_backend_anywhere_or_an_unsupported_one_is_an_error() {
        let err = FlannelConfig::resolve(None, None, &Flags::default(), None, &[]).unwrap_err();
        let Error::Invalid(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("--flannel-backend-type"), "{msg}");
        let netconf = r#"{"Network": "10.244.0.0/16", "Backend": {"Type": "udp"}}"#;
        let err = resolve(netconf, &Flags::default(), None, &[]).unwrap_err();
        assert!(
            matches!(&err, Error::Invalid(m) if m.contains("\"udp\"")),
            "{err:?}"
        );
    }

    #[test]
    fn a_pod_cidr_outside_the_network_is_a_warning() {
        let nodes = [
            node("node-1", "10.244.0.0/24"),
            node("node-2", "10.96.5.0/24"),
        ];
        let (_, suspicions) = resolve(UPSTREAM, &Flags::default(), None, &nodes).unwrap();
        assert_eq!(
            messages(&suspicions),
            [(
                Level::Warning,
                "pod CIDR 10.96.5.0/24 of node node-2 is outside flannel's network 10.244.0.0/16"
            )]
        );
    }

    #[test]
    fn without_a_network_the_cluster_cidr_is_flannels() {
        let netconf = r#"{"Backend": {"Type": "vxlan"}}"#;
        let nodes = [node("node-1", "10.244.0.0/24")];
        let (c, suspicions) =
            resolve(netconf, &Flags::default(), Some("10.240.0.0/12"), &nodes).unwrap();
        assert_eq!(c.network, Some("10.240.0.0/12".parse().unwrap()));
        assert!(suspicions.is_empty(), "{suspicions:?}");
        // net-conf.json's Network wins over the cluster CIDR.
        let (c, suspicions) =
            resolve(UPSTREAM, &Flags::default(), Some("10.32.0.0/16"), &nodes).unwrap();
        assert_eq!(c.network, Some("10.244.0.0/16".parse().unwrap()));
        assert!(suspicions.is_empty(), "{suspicions:?}");
    }

    #[test]
    fn the_pod_mtu_flag_must_be_a_number() {
        let flags = flag("flannel-pod-mtu", "1450");
        let (c, _) = resolve(UPSTREAM, &flags, None, &[]).unwrap();
        assert_eq!(c.pod_mtu_override, Some(1450));
        // The flag is the pod MTU on every node, whatever the host MTU.
        assert_eq!(c.pod_mtu("node-1"), Some(1450));
        let flags = flag("flannel-pod-mtu", "15OO");
        let err = resolve(UPSTREAM, &flags, None, &[]).unwrap_err();
        assert_eq!(
            err,
            Error::Invalid("--flannel-pod-mtu \"15OO\" is not a number".into())
        );
    }

    #[test]
    fn bridge_nf_call_iptables_is_required_unless_false() {
        let flags = |v: &str| flag("flannel-bridge-nf-call-iptables", v);
        let (c, _) = resolve(UPSTREAM, &flags("false"), None, &[]).unwrap();
        assert!(!c.require_bridge_nf);
        let (c, _) = resolve(UPSTREAM, &flags("true"), None, &[]).unwrap();
        assert!(c.require_bridge_nf);
    }

    #[test]
    fn net_conf_that_is_not_json_names_the_configmap() {
        let err = parse_netconf("{\"Network\": ", PLACE).err();
        assert!(
            matches!(&err, Some(Error::Invalid(m)) if m.starts_with("ConfigMap kube-flannel/kube-flannel-cfg: net-conf.json is not valid JSON")),
            "{err:?}"
        );
    }
}
