//! skoop-netstack: a Linux network-namespace simulator built from node dumps.
//! One netns: interfaces, sysctls, policy routing, neighbours/FDB, sockets and netfilter.

pub mod dump;
pub mod ipvs;
pub mod link;
pub mod netfilter;
pub mod nftables;
pub mod packet;
pub mod pipeline;
pub mod probe;
pub mod route;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, OnceLock};

use crate::dump::{FdbEntry, Interface, Neighbour, NetnsDump, NodeDump};
use crate::packet::{Packet, Protocol};
pub use ipvs::{IpvsBranch, IpvsMatch};
pub use link::{Carriage, LinkDrop, LinkEnd, LinkStep, NetnsId};
use netfilter::{ConnState, Hook, IpsetStore, NetnsFacts, Outcome, ReverseRoute, Ruleset};
use nftables::{HookRules, IptablesBackend, IptablesInput, NftRuleset};
pub use pipeline::{Conntrack, CtEntry, DropCause, Fate, ForwardQuery, Forwarded};
pub use route::{RouteHit, RouteKind, RouteQuery, RouteSelectors};

/// Why a question about a netns has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetstackError {
    /// The fact was not collected.
    #[error("{0}")]
    Unavailable(String),
    /// The collected fact cannot be read.
    #[error("{0}")]
    Invalid(String),
}

/// One network namespace.
#[derive(Debug)]
pub struct Netstack {
    /// "node n" or "pod ns/name".
    pub label: String,
    pub dump: NetnsDump,
    /// Where the dump was read from, for messages (`nodes/node-1.json`).
    pub file: Option<String>,
    rules: OnceLock<Result<(Ruleset, IpsetStore), NetstackError>>,
    nft: OnceLock<Result<Option<NftRuleset>, NetstackError>>,
}

impl Netstack {
    pub fn new(label: String, dump: NetnsDump) -> Self {
        Netstack {
            label,
            dump,
            file: None,
            rules: OnceLock::new(),
            nft: OnceLock::new(),
        }
    }

    /// `Unavailable` when the collector could not read `fact` (e.g. `interfaces`, `rules`).
    pub fn absent(&self, fact: &str) -> Result<(), NetstackError> {
        let name = match fact {
            "fdb" => "FDB",
            "ipvs" => "IPVS",
            other => other,
        };
        match self.dump.absent.get(fact) {
            Some(why) => Err(NetstackError::Unavailable(
                match why.strip_prefix(dump::UNREADABLE) {
                    Some(why) => format!("{name} of {} could not be read ({why})", self.label),
                    None => format!("{name} of {} was not collected ({why})", self.label),
                },
            )),
            None => Ok(()),
        }
    }

    pub fn interfaces(&self) -> &[Interface] {
        &self.dump.interfaces
    }

    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.dump.interfaces.iter().find(|i| i.name == name)
    }

    pub fn interface_by_index(&self, index: u32) -> Option<&Interface> {
        self.dump.interfaces.iter().find(|i| i.index == index)
    }

    pub fn sysctl(&self, key: &str) -> Option<&str> {
        self.dump.sysctls.get(key).map(String::as_str)
    }

    /// Route lookup through the policy rules.
    pub fn route(&self, q: &RouteQuery) -> Result<Vec<RouteHit>, NetstackError> {
        self.absent("routes")?;
        self.absent("rules")?;
        Ok(route::lookup(&self.dump, q))
    }

    /// The routes of table `t` (254 main, 255 local, ...).
    pub fn table(&self, t: u32) -> Vec<RouteHit> {
        route::table(&self.dump, t)
    }

    /// Route lookup with the TOS and bound output device `ip rule`s may select on.
    pub fn route_with(
        &self,
        q: &RouteQuery,
        sel: &RouteSelectors,
    ) -> Result<Vec<RouteHit>, NetstackError> {
        self.absent("routes")?;
        self.absent("rules")?;
        Ok(route::lookup_with(&self.dump, q, sel))
    }

    /// The IPVS virtual service `packet` (a new connection) hits, with every
    /// real server it may be scheduled to. Unavailable when IPVS was not
    /// collected or the kernel has none.
    pub fn ipvs(&self, packet: &Packet) -> Result<Option<IpvsMatch>, NetstackError> {
        self.absent("ipvs")?;
        match &self.dump.ipvs {
            Some(services) => Ok(ipvs::lookup(services, packet)),
            None => Err(NetstackError::Unavailable(format!(
                "IPVS of {} was not collected",
                self.label
            ))),
        }
    }

    /// True when `ip` has a `local` route (an address of this netns).
    pub fn is_local(&self, ip: Ipv4Addr) -> bool {
        route::is_local(&self.dump, ip)
    }

    pub fn neighbour(&self, dev: &str, ip: Ipv4Addr) -> Result<Option<&Neighbour>, NetstackError> {
        self.absent("neighbours")?;
        Ok(self
            .dump
            .neighbours
            .iter()
            .find(|n| n.dev == dev && n.ip == ip))
    }

    pub fn fdb(&self, dev: &str) -> Result<Vec<&FdbEntry>, NetstackError> {
        self.absent("fdb")?;
        Ok(self.dump.fdb.iter().filter(|e| e.dev == dev).collect())
    }

    /// Every FDB entry of the netns (a bridge's entries name its ports).
    pub fn fdb_all(&self) -> Result<&[FdbEntry], NetstackError> {
        self.absent("fdb")?;
        Ok(&self.dump.fdb)
    }

    /// The source address MASQUERADE gives a packet leaving by `oif` toward
    /// `toward`, as the kernel's `inet_select_addr` picks it: an address of
    /// the device in `toward`'s subnet, else its first; a device without an
    /// address (a Calico veth) borrows the first global address of another
    /// device, in ifindex order.
    pub fn select_address(&self, oif: &str, toward: Ipv4Addr) -> Option<Ipv4Addr> {
        if let Some(dev) = self.interface(oif)
            && !dev.addresses.is_empty()
        {
            return dev
                .addresses
                .iter()
                .find(|a| a.contains(&toward))
                .or_else(|| dev.addresses.first())
                .map(|a| a.addr());
        }
        let mut devices: Vec<&Interface> = self.dump.interfaces.iter().collect();
        devices.sort_by_key(|i| i.index);
        devices
            .into_iter()
            .flat_map(|i| i.addresses.iter())
            .map(|a| a.addr())
            .find(|a| !a.is_loopback() && !a.is_link_local())
    }

    /// A socket listens on `ip` (or any address) at `port`.
    pub fn listening(
        &self,
        protocol: Protocol,
        ip: Ipv4Addr,
        port: u16,
    ) -> Result<bool, NetstackError> {
        self.absent("sockets")?;
        Ok(self.dump.sockets.iter().any(|s| {
            Protocol::parse(&s.protocol) == Some(protocol)
                && s.port == port
                && (s.ip == ip || s.ip.is_unspecified())
        }))
    }

    /// The parsed `iptables-save` of this netns (parsed once, on first use).
    pub fn rules(&self) -> Result<&Ruleset, NetstackError> {
        self.ruleset().map(|(r, _)| r)
    }

    /// Parse the netfilter rules and compile their entry chains now (the
    /// first traversal would): lets a loader thread do it while the
    /// diagnosis does other work. A parse error is kept for the traversal
    /// to report, as it would be anyway.
    pub fn prepare(&self) {
        if let Ok((rules, _)) = self.ruleset() {
            rules.compile_entry_chains();
        }
    }

    fn ruleset(&self) -> Result<&(Ruleset, IpsetStore), NetstackError> {
        self.rules
            .get_or_init(|| {
                self.absent("iptables")?;
                let rules = match &self.dump.iptables {
                    Some(text) => Ruleset::parse_text(text).map_err(|e| {
                        NetstackError::Invalid(format!("iptables-save of {}: {e}", self.label))
                    })?,
                    None => Ruleset::default(),
                };
                let sets = match &self.dump.ipsets {
                    Some(text) => IpsetStore::parse(text).map_err(|e| {
                        NetstackError::Invalid(format!("ipset save of {}: {e}", self.label))
                    })?,
                    None => IpsetStore::default(),
                };
                Ok((rules, sets))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The parsed `nft -j list ruleset` of this netns (parsed once, on first
    /// use); None when the netns has no nftables ruleset in its dump.
    pub fn nft(&self) -> Result<Option<&NftRuleset>, NetstackError> {
        self.nft
            .get_or_init(|| {
                self.absent("nft")?;
                let Some(text) = &self.dump.nft else {
                    return Ok(None);
                };
                let parsed = NftRuleset::parse(text).map(|mut rs| {
                    if let Some(chains) = &self.dump.nft_chains {
                        rs.bind_devices(chains);
                    }
                    rs
                });
                parsed.map(Some).map_err(|e| {
                    let file = self
                        .file
                        .as_ref()
                        .map(|f| format!(" in {f}"))
                        .unwrap_or_default();
                    NetstackError::Invalid(format!(
                        "`nft -j list ruleset` of {}{file}: {e}",
                        self.label
                    ))
                })
            })
            .as_ref()
            .map(Option::as_ref)
            .map_err(Clone::clone)
    }

    /// Which iptables binary wrote the dump's rules (its header says; a dump
    /// without one is taken as iptables-nft's when the nft ruleset holds
    /// its tables, else as legacy).
    fn iptables_backend(&self) -> IptablesBackend {
        let Some(text) = &self.dump.iptables else {
            return IptablesBackend::Legacy;
        };
        if text.contains("(nf_tables)") {
            IptablesBackend::Nft
        } else if text.contains("(legacy)") {
            IptablesBackend::Legacy
        } else if self
            .nft()
            .ok()
            .flatten()
            .is_some_and(|n| n.tables.iter().any(nftables::is_iptables_nft_table))
        {
            IptablesBackend::Nft
        } else {
            IptablesBackend::Legacy
        }
    }

    /// Traverse a netfilter hook.
    pub fn netfilter(
        &self,
        hook: Hook,
        packet: &Packet,
        iif: Option<&str>,
        oif: Option<&str>,
    ) -> Result<Vec<Outcome>, NetstackError> {
        let (rules, sets) = self.ruleset()?;
        Ok(netfilter::traverse(
            rules, sets, self, hook, packet, iif, oif,
        ))
    }

    /// [`Netstack::netfilter`] with the connection state the previous hook
    /// left ([`Outcome::conn`]).
    pub fn netfilter_conn(
        &self,
        hook: Hook,
        packet: &Packet,
        iif: Option<&str>,
        oif: Option<&str>,
        conn: &ConnState,
    ) -> Result<Vec<Outcome>, NetstackError> {
        let (rules, sets) = self.ruleset()?;
        Ok(netfilter::traverse_conn(
            rules, sets, self, hook, packet, iif, oif, conn,
        ))
    }

    /// Traverse a hook across every table on it, as the kernel runs them:
    /// iptables (legacy and iptables-nft, each once) and native nftables
    /// tables, by priority. Returns the outcomes (None when neither could be
    /// read) and what could not be checked.
    #[allow(clippy::too_many_arguments)]
    pub fn netfilter_hook(
        &self,
        hook: Hook,
        packet: &Packet,
        iif: Option<&str>,
        oif: Option<&str>,
        conn: &ConnState,
    ) -> (Option<Vec<Outcome>>, Vec<String>) {
        let mut unchecked = Vec::new();
        // Ingress is nftables' alone (netdev and inet chains bound to iif).
        if hook == Hook::Ingress {
            return match self.nft() {
                Ok(Some(nft)) => {
                    let rules = HookRules {
                        iptables: None,
                        nft: Some(nft),
                    };
                    let out = nftables::traverse_hook(&rules, self, hook, packet, iif, oif, conn);
                    (Some(out), unchecked)
                }
                Ok(None) => (None, unchecked),
                Err(e) => {
                    unchecked.push(format!("nftables ({e})"));
                    (None, unchecked)
                }
            };
        }
        let iptables = match self.ruleset() {
            Ok(r) => Some(r),
            Err(e) => {
                unchecked.push(format!("iptables ({e})"));
                None
            }
        };
        let nft = match self.nft() {
            Ok(n) => n,
            Err(e) => {
                unchecked.push(format!("nftables ({e})"));
                None
            }
        };
        let outcomes = match (iptables, nft) {
            (None, None) => None,
            // Without an nft ruleset the iptables tables are all there is.
            (Some((rules, sets)), None) => Some(netfilter::traverse_conn(
                rules, sets, self, hook, packet, iif, oif, conn,
            )),
            (iptables, Some(nft)) => {
                let rules = HookRules {
                    iptables: iptables.map(|(rules, sets)| IptablesInput {
                        rules,
                        sets,
                        backend: self.iptables_backend(),
                    }),
                    nft: Some(nft),
                };
                Some(nftables::traverse_hook(
                    &rules, self, hook, packet, iif, oif, conn,
                ))
            }
        };
        (outcomes, unchecked)
    }

    /// A bridged frame through `hook` of the bridge layer: the nftables
    /// `bridge` family's base chains (None without an nft ruleset).
    pub fn bridge_hook(
        &self,
        hook: Hook,
        packet: &Packet,
        iif: Option<&str>,
        oif: Option<&str>,
        conn: &ConnState,
    ) -> (Option<Vec<Outcome>>, Vec<String>) {
        match self.nft() {
            Ok(Some(nft)) => (
                Some(nftables::traverse_bridge_hook(
                    nft, self, hook, packet, iif, oif, conn,
                )),
                Vec::new(),
            ),
            Ok(None) => (None, Vec::new()),
            Err(e) => (None, vec![format!("nftables ({e})")]),
        }
    }
}

impl NetnsFacts for Netstack {
    fn is_local(&self, ip: Ipv4Addr) -> bool {
        Netstack::is_local(self, ip)
    }

    fn primary_address(&self, ifname: &str) -> Option<Ipv4Addr> {
        self.interface(ifname)
            .and_then(|i| i.addresses.first())
            .map(|a| a.addr())
    }

    fn masquerade_address(&self, oif: &str, toward: Ipv4Addr) -> Option<Ipv4Addr> {
        self.select_address(oif, toward)
    }

    fn interface_addresses(&self, ifname: &str) -> Option<Vec<Ipv4Addr>> {
        self.interface(ifname)
            .map(|i| i.addresses.iter().map(|a| a.addr()).collect())
    }

    fn socket_listening(
        &self,
        protocol: Protocol,
        ip: Ipv4Addr,
        port: u16,
        exact: bool,
    ) -> Option<bool> {
        self.absent("sockets").ok()?;
        Some(self.dump.sockets.iter().any(|s| {
            Protocol::parse(&s.protocol) == Some(protocol)
                && s.port == port
                && (s.ip == ip || (!exact && s.ip.is_unspecified()))
        }))
    }

    fn reverse_route(&self, to: Ipv4Addr, from: Ipv4Addr, mark: u32) -> Option<ReverseRoute> {
        self.absent("routes").ok()?;
        let q = RouteQuery {
            dst: Some(to),
            src: Some(from),
            iif: None,
            mark,
        };
        let hits = route::lookup(&self.dump, &q);
        let kind = hits.first().map(|h| h.kind);
        Some(ReverseRoute {
            unicast: kind == Some(RouteKind::Unicast),
            local: kind == Some(RouteKind::Local),
            devs: hits.into_iter().filter_map(|h| h.dev).collect(),
        })
    }
}

/// Loads one node's dump on first use (live mode: a collector pod). The error
/// is one line naming the node and why.
pub type NodeLoader = Box<dyn Fn(&str) -> Result<NodeDump, NetstackError> + Send + Sync>;

/// The netns of one node: its host netns and its pods' netns by `ns/name`.
#[derive(Debug)]
struct NodeNetns {
    host: Netstack,
    pods: BTreeMap<String, Netstack>,
}

impl NodeNetns {
    /// `in_bundle`: the dump is a bundle's file, `nodes/<name>.json`
    /// (named in messages); else a collector's answer.
    fn new(name: &str, d: NodeDump, in_bundle: bool) -> NodeNetns {
        let file = |what: String| in_bundle.then_some(what);
        let pods = d
            .pods
            .into_iter()
            .map(|p| {
                let id = format!("{}/{}", p.namespace, p.name);
                let mut stack = Netstack::new(format!("pod {id}"), p.netns);
                stack.file = file(format!("nodes/{name}.json, pod {id}"));
                (id, stack)
            })
            .collect();
        NodeNetns {
            host: Netstack {
                file: file(format!("nodes/{name}.json")),
                ..Netstack::new(format!("node {name}"), d.host)
            },
            pods,
        }
    }
}

/// Node netns loaded on first access, each at most once.
struct Lazy {
    loader: NodeLoader,
    /// The dumps are a bundle's files (`nodes/<node>.json`).
    in_bundle: bool,
    /// Every node that may be loaded, by name.
    nodes: BTreeMap<String, OnceLock<Result<NodeNetns, NetstackError>>>,
    /// The node of each pod (`ns/name`).
    pod_node: BTreeMap<String, String>,
}

enum Source {
    Loaded(BTreeMap<String, NodeNetns>),
    Lazy(Lazy),
}

/// Every netns of the cluster: the host netns of each node and the netns of
/// its pods, from the bundle's dumps or loaded lazily, node by node.
/// Clones share the loaded dumps.
#[derive(Clone)]
pub struct Netstacks {
    source: Arc<Source>,
}

impl Default for Netstacks {
    fn default() -> Self {
        Netstacks::from_dumps(BTreeMap::new())
    }
}

impl std::fmt::Debug for Netstacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netstacks")
            .field("loaded_nodes", &self.loaded_nodes())
            .finish()
    }
}

impl Netstacks {
    pub fn from_dumps(dumps: BTreeMap<String, NodeDump>) -> Netstacks {
        let nodes = dumps
            .into_iter()
            .map(|(name, d)| {
                let netns = NodeNetns::new(&name, d, true);
                (name, netns)
            })
            .collect();
        Netstacks {
            source: Arc::new(Source::Loaded(nodes)),
        }
    }

    /// Netstacks whose node dumps are loaded on first access through
    /// `loader`. `nodes` are the nodes that may be loaded; `pod_node` maps a
    /// pod (`ns/name`) to its node; `in_bundle`: the loader reads a bundle's
    /// `nodes/<node>.json` (messages name the file). A failed load is
    /// remembered, not retried.
    pub fn lazy(
        nodes: impl IntoIterator<Item = String>,
        pod_node: BTreeMap<String, String>,
        loader: NodeLoader,
        in_bundle: bool,
    ) -> Netstacks {
        let nodes = nodes.into_iter().map(|n| (n, OnceLock::new())).collect();
        Netstacks {
            source: Arc::new(Source::Lazy(Lazy {
                loader,
                in_bundle,
                nodes,
                pod_node,
            })),
        }
    }

    fn node_netns(&self, name: &str) -> Result<&NodeNetns, NetstackError> {
        match &*self.source {
            Source::Loaded(nodes) => nodes.get(name).ok_or_else(|| {
                NetstackError::Unavailable(format!("no dump of node {name} in the bundle"))
            }),
            Source::Lazy(lazy) => {
                let cell = lazy.nodes.get(name).ok_or_else(|| {
                    NetstackError::Unavailable(format!("no node {name} in the cluster"))
                })?;
                cell.get_or_init(|| {
                    (lazy.loader)(name).map(|d| NodeNetns::new(name, d, lazy.in_bundle))
                })
                .as_ref()
                .map_err(Clone::clone)
            }
        }
    }

    /// A node's host netns (loaded on first access in lazy mode).
    pub fn node(&self, name: &str) -> Result<&Netstack, NetstackError> {
        self.node_netns(name).map(|n| &n.host)
    }

    /// Any netns of the cluster.
    pub fn netns(&self, id: &NetnsId) -> Result<&Netstack, NetstackError> {
        match id {
            NetnsId::Node(n) => self.node(n),
            NetnsId::Pod { pod, .. } => self.pod(pod),
        }
    }

    /// The pods' netns of node `name`, by `namespace/name`.
    pub fn pods_of(&self, name: &str) -> Result<Vec<(&str, &Netstack)>, NetstackError> {
        Ok(self
            .node_netns(name)?
            .pods
            .iter()
            .map(|(id, s)| (id.as_str(), s))
            .collect())
    }

    /// The node whose dump holds pod `id`'s netns.
    pub fn node_of_pod(&self, id: &str) -> Option<String> {
        match &*self.source {
            Source::Loaded(nodes) => nodes
                .iter()
                .find(|(_, n)| n.pods.contains_key(id))
                .map(|(name, _)| name.clone()),
            Source::Lazy(lazy) => lazy.pod_node.get(id).cloned(),
        }
    }

    /// A pod's netns (`namespace/name`); loads its node in lazy mode.
    pub fn pod(&self, id: &str) -> Result<&Netstack, NetstackError> {
        let missing =
            || NetstackError::Unavailable(format!("no dump of pod {id}'s network namespace"));
        match &*self.source {
            Source::Loaded(nodes) => nodes
                .values()
                .find_map(|n| n.pods.get(id))
                .ok_or_else(missing),
            Source::Lazy(lazy) => {
                let node = lazy.pod_node.get(id).ok_or_else(missing)?;
                self.node_netns(node)?.pods.get(id).ok_or_else(missing)
            }
        }
    }

    /// The host netns of a node if it is loaded already; never loads.
    pub fn loaded_node(&self, name: &str) -> Option<&Netstack> {
        match &*self.source {
            Source::Loaded(nodes) => nodes.get(name).map(|n| &n.host),
            Source::Lazy(lazy) => lazy
                .nodes
                .get(name)
                .and_then(OnceLock::get)
                .and_then(|r| r.as_ref().ok())
                .map(|n| &n.host),
        }
    }

    /// Load these nodes now, in parallel (lazy mode; a no-op otherwise).
    /// The path will reach them; loading them together saves the wait of
    /// one after the other.
    pub fn prefetch(&self, nodes: &[String]) {
        let Source::Lazy(lazy) = &*self.source else {
            return;
        };
        let todo: Vec<&String> = nodes
            .iter()
            .filter(|n| lazy.nodes.get(*n).is_some_and(|c| c.get().is_none()))
            .collect();
        match todo.as_slice() {
            [] => {}
            [one] => {
                self.load_and_prepare(one);
            }
            many => std::thread::scope(|scope| {
                for n in many {
                    scope.spawn(move || self.load_and_prepare(n));
                }
            }),
        }
    }

    /// Load a node and parse its host's netfilter rules: the path walks
    /// them, and on a loader thread the parse overlaps the other nodes'.
    fn load_and_prepare(&self, node: &str) {
        if let Ok(n) = self.node_netns(node) {
            n.host.prepare();
        }
    }

    /// Nodes whose dump failed to load, with why (lazy mode).
    pub fn load_errors(&self) -> Vec<(String, NetstackError)> {
        match &*self.source {
            Source::Loaded(_) => Vec::new(),
            Source::Lazy(lazy) => lazy
                .nodes
                .iter()
                .filter_map(|(n, c)| match c.get() {
                    Some(Err(e)) => Some((n.clone(), e.clone())),
                    _ => None,
                })
                .collect(),
        }
    }

    /// The nodes whose dump is loaded (every node of a bundle).
    pub fn loaded_nodes(&self) -> Vec<String> {
        match &*self.source {
            Source::Loaded(nodes) => nodes.keys().cloned().collect(),
            Source::Lazy(lazy) => lazy
                .nodes
                .iter()
                .filter(|(_, c)| matches!(c.get(), Some(Ok(_))))
                .map(|(n, _)| n.clone())
                .collect(),
        }
    }
}

#[cfg(test)]
mod netstacks_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::dump::PodNetns;

    fn dump(node: &str) -> NodeDump {
        NodeDump {
            version: crate::dump::DUMP_VERSION,
            node: node.to_string(),
            host: NetnsDump::default(),
            pods: vec![PodNetns {
                namespace: "default".into(),
                name: format!("{node}-pod"),
                netns: NetnsDump::default(),
            }],
        }
    }

    #[test]
    fn lazy_nodes_load_once_and_only_when_asked() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let stacks = Netstacks::lazy(
            ["a".to_string(), "b".to_string(), "bad".to_string()],
            BTreeMap::from([("default/b-pod".to_string(), "b".to_string())]),
            Box::new(move |node| {
                c.fetch_add(1, Ordering::SeqCst);
                if node == "bad" {
                    Err(NetstackError::Unavailable(format!(
                        "collector on {node} failed"
                    )))
                } else {
                    Ok(dump(node))
                }
            }),
            false,
        );
        assert!(stacks.loaded_nodes().is_empty());
        assert!(stacks.node("a").is_ok());
        assert!(stacks.node("a").is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            stacks.pod("default/b-pod").map(|s| s.label.clone()),
            Ok("pod default/b-pod".into())
        );
        assert_eq!(
            stacks.loaded_nodes(),
            vec!["a".to_string(), "b".to_string()]
        );
        let err = stacks.node("bad").map(|_| ()).unwrap_err();
        assert_eq!(
            err,
            NetstackError::Unavailable("collector on bad failed".into())
        );
        assert!(stacks.node("bad").is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3, "a failure is not retried");
        assert!(stacks.node("nope").is_err());
        assert!(stacks.pod("default/unknown").is_err());
        assert!(stacks.loaded_node("c").is_none());
        assert_eq!(stacks.load_errors().len(), 1);
    }

    #[test]
    fn prefetch_loads_several_nodes_at_once() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let stacks = Netstacks::lazy(
            ["a".to_string(), "b".to_string(), "c".to_string()],
            BTreeMap::new(),
            Box::new(move |node| {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(dump(node))
            }),
            false,
        );
        stacks.prefetch(&["a".to_string(), "b".to_string(), "x".to_string()]);
        assert_eq!(
            stacks.loaded_nodes(),
            vec!["a".to_string(), "b".to_string()]
        );
        stacks.prefetch(&["a".to_string()]);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn bundle_netstacks_answer_as_before() {
        let dumps = BTreeMap::from([("a".to_string(), dump("a"))]);
        let stacks = Netstacks::from_dumps(dumps);
        assert!(stacks.node("a").is_ok());
        assert!(stacks.pod("default/a-pod").is_ok());
        assert!(stacks.node("b").is_err());
        assert_eq!(stacks.loaded_nodes(), vec!["a".to_string()]);
    }
}
