//! Calico's configuration as the cluster holds it: IP pools (per-pool
//! encapsulation, natOutgoing), IPAM block affinities (which node owns a pod
//! address), FelixConfiguration, the `calico-config` ConfigMap, the
//! operator's Installation, and the node annotations calico-node writes.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Deserialize;
use serde_json::Value;
use skoop_sdk::host::{Netns, cluster};
use skoop_sdk::{Error, Level, Node, Result, Suspicion};

/// The kinds the plugin reads (declared in its metadata).
pub const POOL_V1: (&str, &str) = ("crd.projectcalico.org/v1", "IPPool");
pub const POOL_V3: (&str, &str) = ("projectcalico.org/v3", "IPPool");
pub const BLOCK_AFFINITY: (&str, &str) = ("crd.projectcalico.org/v1", "BlockAffinity");
pub const FELIX: (&str, &str) = ("crd.projectcalico.org/v1", "FelixConfiguration");
pub const INSTALLATION: (&str, &str) = ("operator.tigera.io/v1", "Installation");
pub const CLUSTER_INFORMATION: (&str, &str) = ("crd.projectcalico.org/v1", "ClusterInformation");
pub const DAEMONSET: (&str, &str) = ("apps/v1", "DaemonSet");

/// The release in a calico-node image reference
/// (`docker.io/calico/node:v3.29.1`, `…/node:v3.30.0@sha256:…`).
pub fn image_release(image: &str) -> Option<(u32, u32)> {
    let image = image.split('@').next().unwrap_or(image);
    let (repo, tag) = image.rsplit_once(':')?;
    // A registry port (`host:5000/calico/node`) is not a tag.
    if tag.contains('/') || !repo.ends_with("node") {
        return None;
    }
    release(tag)
}

/// The calico-node container's image of the calico-node DaemonSet.
fn calico_node_image(daemonsets: &[Value]) -> Option<String> {
    daemonsets
        .iter()
        .filter(|d| d.pointer("/metadata/name").and_then(Value::as_str) == Some("calico-node"))
        .flat_map(|d| {
            d.pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .find(|c| c.get("name").and_then(Value::as_str) == Some("calico-node"))
        .and_then(|c| c.get("image").and_then(Value::as_str).map(str::to_string))
}

/// The policy kinds felix programs, by the Calico release that began to.
const ENFORCED_SINCE: &[((u32, u32), &str)] = &[
    ((0, 0), "networking.k8s.io/v1/NetworkPolicy"),
    (
        (3, 29),
        "policy.networking.k8s.io/v1alpha1/AdminNetworkPolicy",
    ),
    (
        (3, 30),
        "policy.networking.k8s.io/v1alpha1/BaselineAdminNetworkPolicy",
    ),
];

/// `v3.29.1` (ClusterInformation's `calicoVersion`) as (3, 29).
pub fn release(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some((major, minor))
}

/// The policy kinds a Calico release enforces.
pub fn enforced_by(release: (u32, u32)) -> Vec<String> {
    ENFORCED_SINCE
        .iter()
        .filter(|(since, _)| release >= *since)
        .map(|(_, kind)| kind.to_string())
        .collect()
}

/// Node annotations calico-node writes.
pub const ANN_ADDRESS: &str = "projectcalico.org/IPv4Address";
pub const ANN_IPIP: &str = "projectcalico.org/IPv4IPIPTunnelAddr";
pub const ANN_VXLAN: &str = "projectcalico.org/IPv4VXLANTunnelAddr";
pub const ANN_WIREGUARD: &str = "projectcalico.org/IPv4WireguardInterfaceAddr";

/// An encapsulation mode for IPIP or VXLAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncapMode {
    Never,
    Always,
    CrossSubnet,
}

impl EncapMode {
    /// Calico's values; an empty or absent field is `Never`.
    fn parse(s: Option<&str>, what: &str) -> Result<EncapMode> {
        match s.unwrap_or("") {
            "" | "Never" => Ok(EncapMode::Never),
            "Always" => Ok(EncapMode::Always),
            "CrossSubnet" => Ok(EncapMode::CrossSubnet),
            other => Err(Error::Invalid(format!(
                "{what}: {other:?} is not a Calico encapsulation mode (Never, Always, CrossSubnet)"
            ))),
        }
    }
}

/// How Calico carries traffic between two nodes for one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain routing via the remote node's address (BIRD).
    Bgp,
    /// IP-in-IP on `tunl0`.
    Ipip,
    /// VXLAN on `vxlan.calico`.
    Vxlan,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Bgp => "BGP",
            Mode::Ipip => "IPIP",
            Mode::Vxlan => "VXLAN",
        }
    }
}

/// One IP pool.
#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    pub cidr: Ipv4Net,
    pub ipip: EncapMode,
    pub vxlan: EncapMode,
    pub nat_outgoing: bool,
    pub disabled: bool,
    pub node_selector: String,
    pub block_size: u8,
}

impl Pool {
    /// The mode between two nodes; `same_subnet` is whether the remote
    /// node's address is on the local node's subnet (CrossSubnet).
    pub fn mode(&self, same_subnet: bool) -> Mode {
        let pick = |m: EncapMode| match m {
            EncapMode::Always => true,
            EncapMode::CrossSubnet => !same_subnet,
            EncapMode::Never => false,
        };
        if pick(self.vxlan) {
            Mode::Vxlan
        } else if pick(self.ipip) {
            Mode::Ipip
        } else {
            Mode::Bgp
        }
    }

    /// Bytes the pool's encapsulation takes from the host MTU.
    pub fn overhead(&self) -> u32 {
        if self.vxlan != EncapMode::Never {
            50
        } else if self.ipip != EncapMode::Never {
            20
        } else {
            0
        }
    }
}

/// One IPAM block affine to a node.
#[derive(Debug, Clone)]
pub struct Block {
    pub cidr: Ipv4Net,
    pub node: String,
}

/// Everything the plugin resolved at setup.
#[derive(Debug, Clone, Default)]
pub struct CalicoConfig {
    /// None: no pool object in the cluster view ("cannot check").
    pub pools: Option<Vec<Pool>>,
    /// None: no BlockAffinity object in the cluster view.
    pub blocks: Option<Vec<Block>>,
    pub interface_prefix: String,
    pub vxlan_vni: u32,
    pub vxlan_port: u16,
    /// A fixed pod MTU (flag, calico-config `veth_mtu`, Installation or FelixConfiguration).
    pub pod_mtu: Option<(u32, String)>,
    pub wireguard: bool,
    pub operator: bool,
    /// The Calico release running (ClusterInformation `default`), when known.
    pub release: Option<(u32, u32)>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct PoolObject {
    #[serde(default)]
    metadata: Meta,
    spec: PoolSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PoolSpec {
    cidr: String,
    ipip_mode: Option<String>,
    vxlan_mode: Option<String>,
    /// Older CRDs: `ipip: {enabled, mode}`.
    ipip: Option<LegacyIpip>,
    #[serde(default)]
    nat_outgoing: bool,
    #[serde(default)]
    disabled: bool,
    node_selector: Option<String>,
    block_size: Option<u8>,
}

#[derive(Deserialize)]
struct LegacyIpip {
    #[serde(default)]
    enabled: bool,
    mode: Option<String>,
}

#[derive(Deserialize)]
struct AffinityObject {
    #[serde(default)]
    metadata: Meta,
    spec: AffinitySpec,
}

#[derive(Deserialize)]
struct AffinitySpec {
    cidr: String,
    node: String,
    state: Option<String>,
    deleted: Option<Value>,
}

#[derive(Deserialize)]
struct Object {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: Value,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    status: Value,
}

fn parse_pool(o: PoolObject, api: &str) -> Result<Pool> {
    let what = format!("{api} IPPool {}", o.metadata.name);
    let cidr: Ipv4Net = o.spec.cidr.parse().map_err(|_| {
        Error::Invalid(format!(
            "{what}: cidr {:?} is not an IPv4 prefix",
            o.spec.cidr
        ))
    })?;
    let legacy = o.spec.ipip.as_ref().filter(|l| l.enabled).map(|l| {
        l.mode
            .as_deref()
            .map(|m| {
                if m == "cross-subnet" {
                    "CrossSubnet"
                } else {
                    "Always"
                }
            })
            .unwrap_or("Always")
    });
    Ok(Pool {
        name: o.metadata.name,
        cidr: cidr.trunc(),
        ipip: EncapMode::parse(
            o.spec.ipip_mode.as_deref().or(legacy),
            &format!("{what} ipipMode"),
        )?,
        vxlan: EncapMode::parse(o.spec.vxlan_mode.as_deref(), &format!("{what} vxlanMode"))?,
        nat_outgoing: o.spec.nat_outgoing,
        disabled: o.spec.disabled,
        node_selector: o.spec.node_selector.unwrap_or_else(|| "all()".into()),
        block_size: o.spec.block_size.unwrap_or(26),
    })
}

/// Pools from an operator Installation's `calicoNetwork.ipPools`.
fn installation_pools(spec: &Value) -> Result<Vec<Pool>> {
    let mut out = Vec::new();
    let list = spec
        .pointer("/calicoNetwork/ipPools")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, p) in list.iter().enumerate() {
        let Some(cidr) = p.get("cidr").and_then(Value::as_str) else {
            continue;
        };
        let Ok(cidr) = cidr.parse::<Ipv4Net>() else {
            continue; // IPv6 pools are not simulated.
        };
        let encap = p
            .get("encapsulation")
            .and_then(Value::as_str)
            .unwrap_or("IPIP");
        let (ipip, vxlan) = match encap {
            "IPIP" => (EncapMode::Always, EncapMode::Never),
            "IPIPCrossSubnet" => (EncapMode::CrossSubnet, EncapMode::Never),
            "VXLAN" => (EncapMode::Never, EncapMode::Always),
            "VXLANCrossSubnet" => (EncapMode::Never, EncapMode::CrossSubnet),
            "None" => (EncapMode::Never, EncapMode::Never),
            other => {
                return Err(Error::Invalid(format!(
                    "operator.tigera.io/v1 Installation default: ipPools[{i}].encapsulation {other:?} is not one of IPIP, IPIPCrossSubnet, VXLAN, VXLANCrossSubnet, None"
                )));
            }
        };
        out.push(Pool {
            name: p
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("installation-pool-{i}")),
            cidr: cidr.trunc(),
            ipip,
            vxlan,
            nat_outgoing: p.get("natOutgoing").and_then(Value::as_str) != Some("Disabled"),
            disabled: p.get("disabled").and_then(Value::as_bool).unwrap_or(false),
            node_selector: p
                .get("nodeSelector")
                .and_then(Value::as_str)
                .unwrap_or("all()")
                .to_string(),
            block_size: p
                .get("blockSize")
                .and_then(Value::as_u64)
                .and_then(|b| u8::try_from(b).ok())
                .unwrap_or(26),
        });
    }
    Ok(out)
}

/// The objects of `kind` that can be read; each that cannot is a WARNING
/// naming it and the field at fault, and is left out.
fn list<T: serde::de::DeserializeOwned>(
    kind: (&str, &str),
    suspicions: &mut Vec<Suspicion>,
) -> Result<Vec<T>> {
    let read = cluster::list_readable(kind.0, kind.1, "")?;
    for u in read.unreadable {
        suspicions.push(left_out(&format!("{} {u}", kind.0)));
    }
    Ok(read.objects)
}

/// A Calico object that cannot be read, said and left out.
fn left_out(what: &str) -> Suspicion {
    Suspicion::new(
        Level::Warning,
        format!("could not read {what}; it was left out, and Calico's checks did not see it"),
    )
}

fn u64_at(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(|x| {
        x.as_u64()
            .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
    })
}

/// An MTU setting: a positive number that fits a u32 (0 means "auto").
fn mtu_at(v: &Value, key: &str) -> Option<u32> {
    u64_at(v, key)
        .and_then(|m| u32::try_from(m).ok())
        .filter(|m| *m > 0)
}

impl CalicoConfig {
    /// Resolve the configuration; the suspicions are cluster-wide.
    pub fn load() -> Result<(CalicoConfig, Vec<Suspicion>)> {
        let mut suspicions = Vec::new();
        let mut pools = Vec::new();
        for o in list::<PoolObject>(POOL_V1, &mut suspicions)? {
            match parse_pool(o, POOL_V1.0) {
                Ok(p) => pools.push(p),
                Err(e) => suspicions.push(left_out(&e.to_string())),
            }
        }
        for o in list::<PoolObject>(POOL_V3, &mut suspicions)? {
            match parse_pool(o, POOL_V3.0) {
                Ok(p) if !pools.iter().any(|q| q.cidr == p.cidr) => pools.push(p),
                Ok(_) => {}
                Err(e) => suspicions.push(left_out(&e.to_string())),
            }
        }
        let installations: Vec<Object> = list(INSTALLATION, &mut suspicions)?;
        let installation = installations.iter().find(|o| o.metadata.name == "default");
        if pools.is_empty()
            && let Some(inst) = installation
        {
            pools = installation_pools(&inst.spec)?;
        }
        let pools = if pools.is_empty() {
            suspicions.push(Suspicion::new(
                Level::Warning,
                "cannot check Calico's IP pools: the cluster view has no IPPool (crd.projectcalico.org/v1 or projectcalico.org/v3) nor an operator Installation with ipPools; the Calico API group is missing or was not captured, so the encapsulation, pod MTU and natOutgoing checks are skipped",
            ));
            None
        } else {
            for p in pools
                .iter()
                .filter(|p| p.ipip != EncapMode::Never && p.vxlan != EncapMode::Never)
            {
                suspicions.push(Suspicion::new(
                    Level::Warning,
                    format!(
                        "IPPool {} ({}) enables both IPIP and VXLAN; Calico rejects such a pool",
                        p.name, p.cidr
                    ),
                ));
            }
            Some(pools)
        };
        let mut blocks = Vec::new();
        for o in list::<AffinityObject>(BLOCK_AFFINITY, &mut suspicions)? {
            let what = format!("BlockAffinity {}", o.metadata.name);
            if o.spec.state.as_deref().is_some_and(|s| s != "confirmed")
                || o.spec
                    .deleted
                    .as_ref()
                    .is_some_and(|d| d.as_bool() == Some(true) || d.as_str() == Some("true"))
            {
                continue;
            }
            let cidr: Ipv4Net = match o.spec.cidr.parse() {
                Ok(c) => c,
                Err(_) if o.spec.cidr.contains(':') => continue,
                Err(_) => {
                    suspicions.push(left_out(&format!(
                        "{what}: spec.cidr {:?} is not an IP prefix",
                        o.spec.cidr
                    )));
                    continue;
                }
            };
            blocks.push(Block {
                cidr: cidr.trunc(),
                node: o.spec.node,
            });
        }
        if let Some(pools) = &pools {
            suspicions.extend(node_selector_suspicions(pools, &blocks, &cluster::nodes()));
        }
        let blocks = if blocks.is_empty() {
            suspicions.push(Suspicion::new(
                Level::Warning,
                "cannot check Calico's IPAM blocks: the cluster view has no BlockAffinity (crd.projectcalico.org/v1); pod addresses are placed by the pod list only",
            ));
            None
        } else {
            Some(blocks)
        };
        let felix: Vec<Object> = list(FELIX, &mut suspicions)?;
        let felix = felix
            .iter()
            .find(|o| o.metadata.name == "default")
            .map(|o| o.spec.clone())
            .unwrap_or(Value::Null);
        let interface_prefix = felix
            .get("interfacePrefix")
            .and_then(Value::as_str)
            .and_then(|s| s.split(',').next())
            .unwrap_or("cali")
            .to_string();
        let vxlan_vni = u64_at(&felix, "vxlanVNI")
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(4096);
        let vxlan_port = u64_at(&felix, "vxlanPort")
            .and_then(|v| u16::try_from(v).ok())
            .unwrap_or(4789);
        let wireguard = felix
            .get("wireguardEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut pod_mtu = None;
        if let Some(v) = cluster::config("calico-pod-mtu") {
            let mtu = v
                .parse::<u32>()
                .map_err(|_| Error::Invalid(format!("--calico-pod-mtu {v:?} is not a number")))?;
            pod_mtu = Some((mtu, "--calico-pod-mtu".to_string()));
        }
        if pod_mtu.is_none()
            && let Some(mtu) = installation
                .and_then(|i| mtu_at(i.spec.get("calicoNetwork").unwrap_or(&Value::Null), "mtu"))
        {
            pod_mtu = Some((mtu, "Installation default calicoNetwork.mtu".into()));
        }
        if pod_mtu.is_none() {
            let cm: Option<Object> =
                match cluster::get_object("v1", "ConfigMap", "kube-system", "calico-config") {
                    Ok(cm) => cm,
                    Err(Error::Unavailable(_)) => None,
                    Err(e) => return Err(e),
                };
            if let Some(mtu) = cm.and_then(|c| mtu_at(&c.data, "veth_mtu")) {
                pod_mtu = Some((mtu, "ConfigMap kube-system/calico-config veth_mtu".into()));
            }
        }
        if pod_mtu.is_none() {
            let key = if wireguard {
                "wireguardMTU"
            } else {
                "vxlanMTU"
            };
            if let Some(mtu) = mtu_at(&felix, key) {
                pod_mtu = Some((mtu, format!("FelixConfiguration default {key}")));
            }
        }
        // calico-node writes its version into ClusterInformation; the
        // operator into its Installation's status.
        let info: Vec<Object> = list(CLUSTER_INFORMATION, &mut suspicions)?;
        let mut release = info
            .iter()
            .find(|o| o.metadata.name == "default")
            .and_then(|o| o.spec.get("calicoVersion"))
            .or_else(|| installation.and_then(|i| i.status.get("calicoVersion")))
            .and_then(Value::as_str)
            .and_then(release);
        if release.is_none() {
            // Else the image calico-node runs (a manifest install without
            // ClusterInformation in view).
            let daemonsets: Vec<Value> = list(DAEMONSET, &mut Vec::new())?;
            release = calico_node_image(&daemonsets)
                .as_deref()
                .and_then(image_release);
        }
        if release.is_none() {
            suspicions.push(Suspicion::new(
                Level::Info,
                "Calico's release is unknown (no calicoVersion in ClusterInformation default or the operator's Installation status, no version tag on the calico-node image): assumed it enforces NetworkPolicy only, so an AdminNetworkPolicy (enforced from 3.29) or BaselineAdminNetworkPolicy (from 3.30) deny is reported as not enforced; --enforces-network-policy true says otherwise",
            ));
        }
        Ok((
            CalicoConfig {
                pools,
                blocks,
                interface_prefix,
                vxlan_vni,
                vxlan_port,
                pod_mtu,
                wireguard,
                operator: installation.is_some(),
                release,
            },
            suspicions,
        ))
    }

    /// The most specific pool holding `ip`.
    pub fn pool_of(&self, ip: Ipv4Addr) -> Option<&Pool> {
        self.pools
            .as_ref()?
            .iter()
            .filter(|p| p.cidr.contains(&ip))
            .max_by_key(|p| p.cidr.prefix_len())
    }

    /// The node whose IPAM block holds `ip` (the most specific block), or
    /// whose tunnel address it is.
    pub fn owner_of(&self, ip: Ipv4Addr) -> Option<String> {
        if let Some(b) = self.blocks.as_ref().and_then(|bs| {
            bs.iter()
                .filter(|b| b.cidr.contains(&ip))
                .max_by_key(|b| b.cidr.prefix_len())
        }) {
            return Some(b.node.clone());
        }
        cluster::nodes()
            .into_iter()
            .find(|n| tunnel_addresses(n).contains(&ip))
            .map(|n| n.name)
    }

    /// The blocks of `node`.
    pub fn blocks_of(&self, node: &str) -> Vec<Ipv4Net> {
        self.blocks
            .iter()
            .flatten()
            .filter(|b| b.node == node)
            .map(|b| b.cidr)
            .collect()
    }

    /// The block holding `ip`.
    pub fn block_of(&self, ip: Ipv4Addr) -> Option<&Block> {
        self.blocks
            .as_ref()?
            .iter()
            .filter(|b| b.cidr.contains(&ip))
            .max_by_key(|b| b.cidr.prefix_len())
    }

    /// The host veth name Calico's CNI gives a pod: the interface prefix and
    /// the first hex digits of SHA-1 over `<namespace>.<pod>`, 15 bytes in all.
    pub fn veth_name(&self, namespace: &str, pod: &str) -> String {
        let hash = crate::sha1::hex(format!("{namespace}.{pod}").as_bytes());
        let keep = 15usize.saturating_sub(self.interface_prefix.len());
        format!("{}{}", self.interface_prefix, &hash[..keep.min(hash.len())])
    }

    /// The bytes the cluster's encapsulation takes from the host MTU, as
    /// calico-node's auto-detection computes it: the largest over the
    /// enabled encapsulations (WireGuard 60, VXLAN 50, IPIP 20).
    pub fn overhead(&self) -> Option<u32> {
        let pools = self.pools.as_ref()?;
        let mut o = pools
            .iter()
            .filter(|p| !p.disabled)
            .map(Pool::overhead)
            .max()
            .unwrap_or(0);
        if self.wireguard {
            o = o.max(60);
        }
        Some(o)
    }

    /// The pod MTU Calico gives pods on `node`, and where it comes from.
    pub fn pod_mtu(&self, node: &Node) -> Option<(u32, String)> {
        if let Some(m) = &self.pod_mtu {
            return Some(m.clone());
        }
        let overhead = self.overhead()?;
        let host_mtu = node
            .host_interface
            .as_ref()
            .and_then(|i| Netns::node(&node.name).interface(i).ok().flatten())
            .map(|i| i.mtu)?;
        Some((
            host_mtu.saturating_sub(overhead),
            format!("host MTU {host_mtu} less {overhead} for the enabled encapsulation"),
        ))
    }
}

/// The node's address as calico-node records it (`IPv4Address`, with its
/// prefix), else the InternalIP as a /32.
pub fn node_address(n: &Node) -> Ipv4Net {
    n.annotation(ANN_ADDRESS)
        .and_then(|a| a.parse::<Ipv4Net>().ok())
        .unwrap_or_else(|| Ipv4Net::from(n.ip))
}

/// IPPool `nodeSelector`s against the nodes' labels and `blockSize`s against
/// the blocks: a block whose pool no longer selects its node or has another
/// block size, a node no enabled pool selects, and a selector that does not
/// parse (all WARNINGs: existing pods keep their addresses, new pods on the
/// node are the ones to suffer).
fn node_selector_suspicions(pools: &[Pool], blocks: &[Block], nodes: &[Node]) -> Vec<Suspicion> {
    use crate::selector::Selector;
    let mut suspicions = Vec::new();
    let mut parsed = Vec::new();
    for p in pools {
        match Selector::parse(&p.node_selector) {
            Ok(s) => parsed.push((p, s)),
            Err(e) => suspicions.push(Suspicion::new(
                Level::Warning,
                format!(
                    "IPPool {} nodeSelector `{}` does not parse ({e}); Calico rejects it, and skoop cannot tell which nodes it serves",
                    p.name, p.node_selector
                ),
            )),
        }
    }
    let selects = |s: &Selector, node: &str| {
        nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| s.matches(&n.labels))
    };
    for b in blocks {
        let Some((pool, sel)) = parsed
            .iter()
            .filter(|(p, _)| p.cidr.contains(&b.cidr.network()))
            .max_by_key(|(p, _)| p.cidr.prefix_len())
        else {
            continue;
        };
        if b.cidr.prefix_len() != pool.block_size {
            suspicions.push(Suspicion::new(
                Level::Warning,
                format!(
                    "IPAM block {} on node {} is a /{}, but IPPool {} allocates /{} blocks (blockSize): the pool was re-created with another blockSize while blocks of the old one remain; routes follow the blocks",
                    b.cidr,
                    b.node,
                    b.cidr.prefix_len(),
                    pool.name,
                    pool.block_size
                ),
            ));
        }
        if selects(sel, &b.node) == Some(false) {
            suspicions.push(Suspicion::new(
                Level::Warning,
                format!(
                    "IPAM block {} on node {} belongs to IPPool {} whose nodeSelector `{}` does not select {}: Calico assigns no new addresses from it there; pods already holding one keep it, new pods on {} take another pool's or none",
                    b.cidr, b.node, pool.name, pool.node_selector, b.node, b.node
                ),
            ));
        }
    }
    for n in nodes {
        let served = parsed
            .iter()
            .any(|(p, s)| !p.disabled && s.matches(&n.labels));
        // Only when every selector could be read: an unreadable one might serve it.
        if !served && parsed.len() == pools.len() {
            suspicions.push(Suspicion::new(
                Level::Warning,
                format!(
                    "no enabled IPPool selects node {} (by its labels): new pods scheduled there get no address from Calico's IPAM",
                    n.name
                ),
            ));
        }
    }
    suspicions
}

/// The tunnel addresses calico-node assigned to a node.
pub fn tunnel_addresses(n: &Node) -> Vec<Ipv4Addr> {
    [ANN_IPIP, ANN_VXLAN, ANN_WIREGUARD]
        .iter()
        .filter_map(|k| n.annotation(k))
        .filter_map(|a| a.split('/').next().and_then(|s| s.parse().ok()))
        .collect()
}

/// CrossSubnet: is `remote`'s address on `local`'s subnet? Decided by the
/// node addresses (not the pod address; KubeSkoop's B2).
pub fn same_subnet(local: &Node, remote: &Node) -> bool {
    let mine = node_address(local);
    let theirs = node_address(remote).addr();
    if mine.prefix_len() < 32 {
        return mine.contains(&theirs);
    }
    // No prefix recorded: the subnet of the host interface holding the address.
    local
        .host_interface
        .as_ref()
        .and_then(|i| Netns::node(&local.name).interface(i).ok().flatten())
        .is_some_and(|i| i.addresses.iter().any(|a| a.contains(&theirs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(ipip: EncapMode, vxlan: EncapMode) -> Pool {
        Pool {
            name: "p".into(),
            cidr: "10.244.0.0/16".parse().unwrap(),
            ipip,
            vxlan,
            nat_outgoing: true,
            disabled: false,
            node_selector: "all()".into(),
            block_size: 26,
        }
    }

    #[test]
    fn cross_subnet_encapsulates_only_across_subnets() {
        // Calico docs (IP pool ipipMode/vxlanMode): CrossSubnet encapsulates
        // only when the nodes are on different subnets.
        let p = pool(EncapMode::CrossSubnet, EncapMode::Never);
        assert_eq!(p.mode(true), Mode::Bgp);
        assert_eq!(p.mode(false), Mode::Ipip);
        let p = pool(EncapMode::Never, EncapMode::CrossSubnet);
        assert_eq!(p.mode(true), Mode::Bgp);
        assert_eq!(p.mode(false), Mode::Vxlan);
        let p = pool(EncapMode::Always, EncapMode::Never);
        assert_eq!(p.mode(true), Mode::Ipip);
        assert_eq!(
            pool(EncapMode::Never, EncapMode::Never).mode(false),
            Mode::Bgp
        );
    }

    #[test]
    fn encapsulation_modes_parse_like_calico() {
        assert_eq!(EncapMode::parse(None, "x"), Ok(EncapMode::Never));
        assert_eq!(EncapMode::parse(Some(""), "x"), Ok(EncapMode::Never));
        assert_eq!(
            EncapMode::parse(Some("CrossSubnet"), "x"),
            Ok(EncapMode::CrossSubnet)
        );
        assert!(EncapMode::parse(Some("always"), "x").is_err());
    }

    #[test]
    fn veth_name_follows_calicos_rule() {
        // `cali` + sha1("default.client-1")[:11], computed with Python's hashlib.
        let c = CalicoConfig {
            interface_prefix: "cali".into(),
            ..CalicoConfig::default()
        };
        assert_eq!(c.veth_name("default", "client-1"), "calib731b83791f");
        let c = CalicoConfig {
            interface_prefix: "azv".into(),
            ..CalicoConfig::default()
        };
        assert_eq!(c.veth_name("default", "client-1").len(), 15);
    }

    #[test]
    fn mtu_settings_zero_means_auto() {
        // calico-config `veth_mtu: "0"` is Calico's auto-detection.
        let v = serde_json::json!({"veth_mtu": "0", "a": "1440", "b": 1450, "c": 99999999999u64});
        assert_eq!(mtu_at(&v, "veth_mtu"), None);
        assert_eq!(mtu_at(&v, "a"), Some(1440));
        assert_eq!(mtu_at(&v, "b"), Some(1450));
        assert_eq!(mtu_at(&v, "c"), None);
        assert_eq!(mtu_at(&v, "missing"), None);
    }

    #[test]
    fn most_specific_pool_wins() {
        let mut small = pool(EncapMode::Never, EncapMode::Always);
        small.cidr = "10.244.8.0/21".parse().unwrap();
        let c = CalicoConfig {
            pools: Some(vec![pool(EncapMode::Always, EncapMode::Never), small]),
            ..CalicoConfig::default()
        };
        let ip = "10.244.9.1".parse().unwrap();
        assert_eq!(c.pool_of(ip).map(|p| p.cidr.prefix_len()), Some(21));
        let ip = "10.244.1.1".parse().unwrap();
        assert_eq!(c.pool_of(ip).map(|p| p.cidr.prefix_len()), Some(16));
    }

    fn node(name: &str, annotations: &[(&str, &str)], labels: &[(&str, &str)]) -> Node {
        let pairs = |l: &[(&str, &str)]| {
            l.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Node {
            name: name.into(),
            ip: "192.168.0.11".parse().unwrap(),
            pod_cidrs: vec![],
            ready: true,
            host_interface: Some("eth0".into()),
            annotations: pairs(annotations),
            labels: pairs(labels),
            provider_id: None,
        }
    }

    #[test]
    fn encapsulation_overheads_are_calicos() {
        // Calico's MTU guide: IP-in-IP takes 20 bytes, VXLAN 50, WireGuard 60.
        assert_eq!(pool(EncapMode::Always, EncapMode::Never).overhead(), 20);
        assert_eq!(
            pool(EncapMode::CrossSubnet, EncapMode::Never).overhead(),
            20
        );
        assert_eq!(pool(EncapMode::Never, EncapMode::Always).overhead(), 50);
        assert_eq!(pool(EncapMode::Never, EncapMode::Never).overhead(), 0);
        // The cluster's: the largest over the enabled pools, WireGuard on top.
        let mut disabled = pool(EncapMode::Never, EncapMode::Always);
        disabled.disabled = true;
        let c = CalicoConfig {
            pools: Some(vec![pool(EncapMode::Always, EncapMode::Never), disabled]),
            ..CalicoConfig::default()
        };
        assert_eq!(c.overhead(), Some(20));
        let c = CalicoConfig {
            wireguard: true,
            ..c
        };
        assert_eq!(c.overhead(), Some(60));
        // No pool in view: no expectation.
        assert_eq!(CalicoConfig::default().overhead(), None);
    }

    fn parse(pool: serde_json::Value) -> Result<Pool> {
        parse_pool(serde_json::from_value(pool).unwrap(), POOL_V1.0)
    }

    #[test]
    fn the_release_decides_which_admin_policies_felix_enforces() {
        // ClusterInformation's calicoVersion as calico-node writes it.
        assert_eq!(release("v3.29.1"), Some((3, 29)));
        assert_eq!(release("v3.30.0-0.dev"), Some((3, 30)));
        assert_eq!(release("3.28"), Some((3, 28)));
        assert_eq!(release("master"), None);
        assert_eq!(
            image_release("docker.io/calico/node:v3.29.1"),
            Some((3, 29))
        );
        assert_eq!(
            image_release("quay.io/calico/node:v3.30.2@sha256:0123abcd"),
            Some((3, 30))
        );
        assert_eq!(image_release("registry.local:5000/calico/node"), None);
        assert_eq!(image_release("calico/node:latest"), None);
        assert_eq!(image_release("calico/cni:v3.29.1"), None, "not calico-node");
        assert_eq!(release(""), None);
        let np = "networking.k8s.io/v1/NetworkPolicy";
        let anp = "policy.networking.k8s.io/v1alpha1/AdminNetworkPolicy";
        let banp = "policy.networking.k8s.io/v1alpha1/BaselineAdminNetworkPolicy";
        // AdminNetworkPolicy from v3.29, BaselineAdminNetworkPolicy from v3.30.
        assert_eq!(enforced_by((3, 28)), [np]);
        assert_eq!(enforced_by((3, 29)), [np, anp]);
        assert_eq!(enforced_by((3, 30)), [np, anp, banp]);
        assert_eq!(enforced_by((4, 0)), [np, anp, banp]);
    }

    #[test]
    fn ippools_read_as_the_crd_defines_them() {
        let p = parse(serde_json::json!({
            "metadata": {"name": "default-ipv4-ippool"},
            "spec": {"cidr": "192.168.0.0/16", "ipipMode": "CrossSubnet", "natOutgoing": true}
        }))
        .unwrap();
        assert_eq!(p.name, "default-ipv4-ippool");
        assert_eq!(p.cidr, "192.168.0.0/16".parse::<Ipv4Net>().unwrap());
        assert_eq!(
            (p.ipip, p.vxlan),
            (EncapMode::CrossSubnet, EncapMode::Never)
        );
        assert!(p.nat_outgoing && !p.disabled);
        // IPPool defaults: blockSize 26, nodeSelector all().
        assert_eq!(p.block_size, 26);
        assert_eq!(p.node_selector, "all()");
        // Pre-3.0 pools: `ipip: {enabled, mode}`, mode `always` or `cross-subnet`.
        let legacy = |ipip: serde_json::Value| {
            parse(serde_json::json!({"spec": {"cidr": "10.244.0.0/16", "ipip": ipip}}))
                .unwrap()
                .ipip
        };
        assert_eq!(
            legacy(serde_json::json!({"enabled": true})),
            EncapMode::Always
        );
        assert_eq!(
            legacy(serde_json::json!({"enabled": true, "mode": "cross-subnet"})),
            EncapMode::CrossSubnet
        );
        assert_eq!(
            legacy(serde_json::json!({"enabled": false, "mode": "always"})),
            EncapMode::Never
        );
        let err = parse(serde_json::json!({"spec": {"cidr": "fd00::/48"}})).unwrap_err();
        assert!(
            matches!(&err, Error::Invalid(m) if m.contains("fd00::/48")),
            "{err:?}"
        );
    }

    #[test]
    fn installation_pools_map_the_operators_encapsulation() {
        let spec = serde_json::json!({"calicoNetwork": {"ipPools": [
            {"cidr": "192.168.0.0/16"},
            {"name": "edge", "cidr": "10.10.0.0/16", "encapsulation": "VXLANCrossSubnet",
             "natOutgoing": "Disabled", "blockSize": 24, "nodeSelector": "zone == 'edge'"},
            {"cidr": "fd00:10:244::/48", "encapsulation": "None"},
        ]}});
        let pools = installation_pools(&spec).unwrap();
        // The IPv6 pool is not simulated.
        assert_eq!(pools.len(), 2);
        // The operator's defaults: IPIP, natOutgoing Enabled, blockSize 26.
        let p = &pools[0];
        assert_eq!((p.ipip, p.vxlan), (EncapMode::Always, EncapMode::Never));
        assert!(p.nat_outgoing);
        assert_eq!((p.block_size, p.node_selector.as_str()), (26, "all()"));
        let p = &pools[1];
        assert_eq!(p.name, "edge");
        assert_eq!(
            (p.ipip, p.vxlan),
            (EncapMode::Never, EncapMode::CrossSubnet)
        );
        assert!(!p.nat_outgoing);
        assert_eq!(
            (p.block_size, p.node_selector.as_str()),
            (24, "zone == 'edge'")
        );
        for (encap, ipip, vxlan) in [
            ("IPIPCrossSubnet", EncapMode::CrossSubnet, EncapMode::Never),
            ("VXLAN", EncapMode::Never, EncapMode::Always),
            ("None", EncapMode::Never, EncapMode::Never),
        ] {
            let spec = serde_json::json!({"calicoNetwork": {"ipPools": [
                {"cidr": "192.168.0.0/16", "encapsulation": encap}]}});
            let p = &installation_pools(&spec).unwrap()[0];
            assert_eq!((p.ipip, p.vxlan), (ipip, vxlan), "{encap}");
        }
        let spec = serde_json::json!({"calicoNetwork": {"ipPools": [
            {"cidr": "192.168.0.0/16", "encapsulation": "GENEVE"}]}});
        assert!(installation_pools(&spec).is_err());
    }

    #[test]
    fn node_addresses_come_from_calico_nodes_annotations() {
        let n = node(
            "node-1",
            &[
                (ANN_ADDRESS, "192.168.0.11/24"),
                (ANN_IPIP, "10.244.0.1"),
                (ANN_VXLAN, "10.244.0.2/32"),
                (ANN_WIREGUARD, "10.244.0.3"),
            ],
            &[],
        );
        assert_eq!(
            node_address(&n),
            "192.168.0.11/24".parse::<Ipv4Net>().unwrap()
        );
        let ips: Vec<Ipv4Addr> = ["10.244.0.1", "10.244.0.2", "10.244.0.3"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(tunnel_addresses(&n), ips);
        // Without calico-node's annotations: the InternalIP alone, no tunnels.
        let bare = node("node-1", &[], &[]);
        assert_eq!(
            node_address(&bare),
            "192.168.0.11/32".parse::<Ipv4Net>().unwrap()
        );
        assert!(tunnel_addresses(&bare).is_empty());
    }

    #[test]
    fn pool_selectors_and_block_sizes_are_checked_against_nodes_and_blocks() {
        let mut edge = pool(EncapMode::Always, EncapMode::Never);
        edge.name = "edge".into();
        edge.cidr = "10.10.0.0/16".parse().unwrap();
        edge.node_selector = "zone == 'edge'".into();
        let pools = [pool(EncapMode::Always, EncapMode::Never), edge];
        let block = |cidr: &str, node: &str| Block {
            cidr: cidr.parse().unwrap(),
            node: node.into(),
        };
        let nodes = [
            node("node-1", &[], &[("zone", "core")]),
            node("node-2", &[], &[("zone", "edge")]),
        ];
        // Blocks of their pools' size, on nodes the pools select: nothing to say.
        let blocks = [
            block("10.244.0.0/26", "node-1"),
            block("10.10.0.0/26", "node-2"),
        ];
        assert!(node_selector_suspicions(&pools, &blocks, &nodes).is_empty());
        // An edge block on a core node, and a /24 block of a /26 pool.
        let blocks = [
            block("10.244.1.0/24", "node-1"),
            block("10.10.0.64/26", "node-1"),
        ];
        let found = node_selector_suspicions(&pools, &blocks, &nodes);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|s| s.level == Level::Warning));
        assert!(found[0].message.starts_with(
            "IPAM block 10.244.1.0/24 on node node-1 is a /24, but IPPool p allocates /26 blocks"
        ));
        assert!(found[1].message.starts_with("IPAM block 10.10.0.64/26 on node node-1 belongs to IPPool edge whose nodeSelector `zone == 'edge'` does not select node-1"));
        // A node no enabled pool selects gets no addresses.
        let only_edge = [pools[1].clone()];
        let found = node_selector_suspicions(&only_edge, &[], &nodes);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .message
                .starts_with("no enabled IPPool selects node node-1")
        );
    }
}
