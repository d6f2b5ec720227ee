//! The settings a diagnosis runs with, as detection (or the user's flags)
//! decided them: the CNI plugin, the cloud provider and what kube-proxy does.

use ipnet::Ipv4Net;

/// kube-proxy's default masquerade mark (`masqueradeBit` 14), for when its
/// config could not be read.
pub const DEFAULT_MASQ_MARK: u32 = 0x4000;

/// How Services are implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    Iptables,
    Ipvs,
    /// kube-proxy's nftables proxier: its `ip kube-proxy` table, walked with
    /// the node's other nftables tables.
    Nftables,
    None,
}

impl ProxyMode {
    /// The name kube-proxy's config uses.
    pub fn name(self) -> &'static str {
        match self {
            ProxyMode::Iptables => "iptables",
            ProxyMode::Ipvs => "ipvs",
            ProxyMode::Nftables => "nftables",
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
    /// The mark kube-proxy's KUBE-MARK-MASQ sets (`1 << masqueradeBit`);
    /// `None` when there is no kube-proxy config to read it from.
    pub masquerade_mark: Option<u32>,
    /// kube-proxy masquerades all Service traffic (`masqueradeAll`).
    pub masquerade_all: bool,
}
