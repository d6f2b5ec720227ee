//! # skoop-sdk
//!
//! Write [skoop](https://example.invalid/skoop) extensions — CNI plugins and
//! cloud providers — as WebAssembly components (`wasm32-wasip2`) that the
//! `skoop` host loads with `--extension FILE`.
//!
//! Everything an author needs is in [`prelude`]: plain Rust types for
//! packets, net-nodes and suspicions; read-only access to what the host
//! lends ([`host`]: the cluster view and the facts of every network
//! namespace); the host's walk of each net-node ([`KernelWalk`]);
//! [`Suspicions`], which turns facts into suspicions; and one macro to export
//! a CNI plugin ([`export_cni_plugin!`]) or a cloud provider
//! ([`export_cloud_provider!`]).
//!
//! ## A CNI plugin
//!
//! The host owns the kernel: it walks every packet through each net-node's
//! pipeline (routes, policy rules, iptables, conntrack) and link layer
//! (veths, bridges, VXLAN, tunnels, the underlay) itself. A CNI plugin
//! implements [`CniPlugin`] and adds what only its CNI knows: which devices
//! and entries the CNI should have made and from which objects, the MTUs it
//! configures, what its agent programs. Only [`CniPlugin::setup`] is
//! required; each role (`pod_send`, `pod_receive`, `to_pod`, `to_host`,
//! `to_service`, `to_external`, `serve`) is shown the host's walk and
//! answers with its checks:
//!
//! ```rust,standalone_crate
//! use skoop_sdk::prelude::*;
//!
//! /// The plugin value, built once per diagnosis by `setup`.
//! struct Acme {
//!     bridge: String,
//! }
//!
//! impl CniPlugin for Acme {
//!     // Written into the component's `skoop:metadata` section, so that
//!     // `skoop extension inspect` shows it without running any code.
//!     const METADATA: Option<StaticMetadata> = Some(StaticMetadata {
//!         name: "acme",
//!         version: "0.1.0",
//!         description: "pods on the acme0 bridge",
//!         config: &[StaticConfigKey::new("acme-bridge", "the bridge pods are on (default acme0)")],
//!         detect_daemonsets: &["acme-node"],
//!         ..StaticMetadata::EMPTY
//!     });
//!
//!     fn setup() -> Result<(Self, Vec<Suspicion>)> {
//!         let bridge = host::cluster::config("acme-bridge").unwrap_or_else(|| "acme0".into());
//!         Ok((Acme { bridge }, vec![]))
//!     }
//!
//!     // One role overridden: the bridge acme's CNI config puts pods on.
//!     fn to_pod(&self, node: &Node, walk: &KernelWalk, pod: &Pod) -> Result<HopAnswer> {
//!         let mut f = Suspicions::new();
//!         if pod.node == node.name {
//!             for b in walk.sent() {
//!                 if b.oif().is_some_and(|oif| oif != self.bridge) {
//!                     f.critical(format!(
//!                         "node {} reaches pod {} by {}, not by acme's bridge {}",
//!                         node.name,
//!                         pod.id(),
//!                         b.oif().unwrap_or_default(),
//!                         self.bridge
//!                     ));
//!                 }
//!             }
//!         }
//!         Ok(f.into())
//!     }
//! }
//!
//! export_cni_plugin!(Acme);
//!
//! fn main() {
//!     let m = Acme::metadata();
//!     assert_eq!(m.name, "acme");
//!     assert_eq!(m.config[0].name, "acme-bridge");
//! }
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` (the crate is
//! a `cdylib`) and load it with
//! `skoop --extension target/wasm32-wasip2/release/<name>.wasm diagnose --network-plugin <name> ...`;
//! `skoop extension inspect FILE` shows its metadata. The SDK's own
//! `examples/kernel_cni.rs` is such a plugin.
//!
//! ## A cloud provider
//!
//! A cloud provider implements [`CloudProvider`]: only
//! [`CloudProvider::create_network`] is required; the underlay checks
//! (`node_to_node`, `node_to_external`, `external_to_node`, `prefetch`)
//! default to "nothing to check". See [`CloudProvider`] for an example.
//!
//! The generated WIT bindings behind the macros are an implementation
//! detail: no type of theirs appears in this crate's API.

// A pair of private conversions between an SDK enum and its generated twin.
macro_rules! mirror {
    ($to:ident, $from:ident, $ours:ident, $m:ident :: $theirs:ident, [$($v:ident),* $(,)?]) => {
        #[allow(dead_code)]
        pub(crate) fn $to(x: $ours) -> $m::$theirs {
            match x {
                $($ours::$v => $m::$theirs::$v,)*
            }
        }
        #[allow(dead_code)]
        pub(crate) fn $from(x: $m::$theirs) -> $ours {
            match x {
                $($m::$theirs::$v => $ours::$v,)*
            }
        }
    };
}

#[doc(hidden)]
pub mod glue;
pub mod hop;
pub mod host;
pub mod http;
pub mod meta;
pub mod suspicions;
pub mod types;
pub mod underlay;
pub mod veth_pod;
pub mod vtep;
pub mod walk;

pub use hop::{NodeChecks, NodeHop, NodeRole};
pub use suspicions::Suspicions;
pub use types::*;
pub use veth_pod::VethPod;
pub use vtep::VtepEntries;
pub use walk::{Branch, Carried, HopAnswer, KernelWalk, LinkStep};

/// What an extension author needs, in one import: `use skoop_sdk::prelude::*;`.
///
/// The traits and export macros, the metadata types, the plain types of
/// packets, net-nodes, the host's walk and suspicions, the helpers
/// ([`Suspicions`], [`Expect`](crate::suspicions::Expect)) and the modules
/// reaching the host ([`host`], [`http`], [`underlay`]).
pub mod prelude {
    pub use crate::hop::{NodeChecks, NodeHop, NodeRole};
    pub use crate::host::{self, Netns};
    pub use crate::meta::{StaticConfigKey, StaticCredentialsFile, StaticMetadata};
    pub use crate::suspicions::{Expect, Suspicions};
    pub use crate::types::{
        ActionKind, EPHEMERAL_PORT, Encap, EncapKind, Level, Link, LinkKind, NetNode, NetNodeKind,
        NetworkPlan, Node, NodeStep, Owner, Packet, Pod, Protocol, ProxyMode, Service, ServicePort,
        Settings, Suspicion, Transmission,
    };
    pub use crate::underlay;
    pub use crate::veth_pod::VethPod;
    pub use crate::vtep::VtepEntries;
    pub use crate::walk::{Branch, Carried, HopAnswer, KernelWalk, LinkStep};
    pub use crate::{
        CloudProvider, CniPlugin, ConfigKey, CredentialsFile, Error, Metadata, Result, Underlay,
        UnderlayHop, export_cloud_provider, export_cni_plugin, http,
    };
}

/// The version of the WIT package this SDK speaks; written into every
/// extension's metadata and checked by the host.
pub const WIT_VERSION: &str = "0.5.0";

/// Generated bindings for the `cni-plugin` world.
#[doc(hidden)]
pub use skoop_bindings_cni as cni;
/// Generated bindings for the `cloud-provider` world (shares the types of [`cni`]).
#[doc(hidden)]
pub use skoop_bindings_provider as provider;

/// Why an extension call could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A fact the answer needs was not collected.
    Unavailable(String),
    /// The arguments do not make sense.
    Invalid(String),
    /// Anything else.
    Internal(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unavailable(m) => write!(f, "not collected: {m}"),
            Error::Invalid(m) => write!(f, "invalid: {m}"),
            Error::Internal(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// The SDK's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// A configuration key the extension accepts, offered as `--<name>` on the
/// command line (name it `<extension>-…`); read its value with
/// [`host::cluster::config`]. [`meta::StaticConfigKey`] is the same, known at
/// compile time.
///
/// ```
/// use skoop_sdk::{ConfigKey, CredentialsFile};
///
/// let mtu = ConfigKey::new("acme-pod-mtu", "the MTU acme gives pods", Some("1450"));
/// assert_eq!(mtu.default.as_deref(), Some("1450"));
/// assert!(!mtu.secret);
///
/// // A credential: never logged nor echoed; read from a flag, else the
/// // environment, else a credentials file (the host reads both).
/// let token = ConfigKey::new("acme-token", "API token", None)
///     .secret()
///     .env(&["ACME_TOKEN"])
///     .file(CredentialsFile {
///         path: "~/.acme/credentials".into(),
///         key: "token".into(),
///         ..CredentialsFile::default()
///     });
/// assert!(token.secret);
/// assert_eq!(token.env, ["ACME_TOKEN"]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConfigKey {
    pub name: String,
    pub help: String,
    pub default: Option<String>,
    /// A credential: the host never logs, echoes or records it, and blanks it
    /// out of any text the extension returns.
    pub secret: bool,
    /// Environment variables the host reads the value from when the flag is
    /// not given, first set wins.
    pub env: Vec<String>,
    /// A credentials file the host reads the value from as a last resort.
    pub file: Option<CredentialsFile>,
}

/// A value in an INI-style credentials file, read by the host (the extension
/// sees no filesystem).
#[derive(Debug, Clone, Default)]
pub struct CredentialsFile {
    /// The file; a leading `~/` is the user's home.
    pub path: String,
    /// An environment variable naming the file instead, when set.
    pub path_env: Option<String>,
    /// The config key whose value names the section (else `default`).
    pub section_key: Option<String>,
    /// The key inside the section.
    pub key: String,
}

impl ConfigKey {
    /// A key with a default value.
    pub fn new(name: &str, help: &str, default: Option<&str>) -> Self {
        ConfigKey {
            name: name.to_string(),
            help: help.to_string(),
            default: default.map(str::to_string),
            ..ConfigKey::default()
        }
    }

    /// Mark the key a credential.
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Read the value from these environment variables when the flag is absent.
    pub fn env(mut self, vars: &[&str]) -> Self {
        self.env = vars.iter().map(|v| v.to_string()).collect();
        self
    }

    /// Read the value from a credentials file as a last resort.
    pub fn file(mut self, file: CredentialsFile) -> Self {
        self.file = Some(file);
        self
    }
}

/// An extension's self-description, returned by [`CniPlugin::metadata`] and
/// [`CloudProvider::metadata`]. The WIT version is filled in by the SDK.
///
/// Prefer declaring a [`meta::StaticMetadata`] as the trait's `METADATA`
/// constant: it is also written into the component, where
/// `skoop extension inspect` reads it without running any code, and this
/// run-time value is derived from it.
///
/// ```
/// use skoop_sdk::Metadata;
/// use skoop_sdk::meta::{StaticConfigKey, StaticMetadata};
///
/// // Built at run time…
/// let m = Metadata {
///     name: "acme".into(),
///     version: "0.1.0".into(),
///     description: "pods on veths".into(),
///     detect_daemonsets: vec!["acme-node".into()],
///     ..Metadata::default()
/// };
/// assert!(m.enforces.is_empty());
///
/// // …or, better, known at compile time.
/// const META: StaticMetadata = StaticMetadata {
///     name: "acme",
///     version: "0.1.0",
///     description: "pods on veths",
///     config: &[StaticConfigKey::new("acme-pod-mtu", "the MTU acme gives pods")],
///     detect_daemonsets: &["acme-node"],
///     ..StaticMetadata::EMPTY
/// };
/// let m2 = META.to_metadata();
/// assert_eq!((m2.name.as_str(), m2.detect_daemonsets.clone()), ("acme", m.detect_daemonsets));
/// assert_eq!(m2.config[0].name, "acme-pod-mtu");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub name: String,
    pub version: String,
    pub description: String,
    pub config: Vec<ConfigKey>,
    /// Kubernetes kinds read with [`host::cluster::get_object`], as `apiVersion/Kind`.
    pub reads: Vec<String>,
    /// DaemonSet names whose presence means this CNI plugin is in use.
    pub detect_daemonsets: Vec<String>,
    /// Kinds (`apiVersion/Kind`, also listed in `reads`) whose presence means
    /// this CNI plugin is in use, e.g. an operator's install object.
    pub detect_objects: Vec<String>,
    /// Policy kinds the plugin enforces, as `apiVersion/Kind`
    /// (e.g. `networking.k8s.io/v1/NetworkPolicy`); empty: none.
    pub enforces: Vec<String>,
    /// Hosts a cloud provider sends HTTP requests to, as globs
    /// (`ec2.*.amazonaws.com`); see [`http::send`].
    pub http_hosts: Vec<String>,
    /// The oldest skoop host (`x.y.z`) the extension works with.
    pub min_host_version: Option<String>,
}

/// A device of the cloud a packet passes, shown on the path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnderlayHop {
    /// e.g. "security-group", "network-acl", "route-table", "nat-gateway".
    pub kind: String,
    /// The cloud's id of the resource.
    pub id: String,
    /// What it did to the packet: the rule or route that decided.
    pub detail: String,
}

/// What the underlay does to a packet: the devices passed and the suspicions.
#[derive(Debug, Clone, Default)]
pub struct Underlay {
    pub hops: Vec<UnderlayHop>,
    pub suspicions: Vec<Suspicion>,
    /// For [`CloudProvider::external_to_node`]: the packet as the cloud hands
    /// it to the node when it translates it on the way in (a load balancer's
    /// `node-ip:node-port`, an elastic IP's private address); None: unchanged.
    pub entry: Option<Packet>,
    /// The MAC of the receiving node's interface the cloud delivers to, when
    /// it is not the node's primary one (an ENI holding the destination).
    pub delivered_to: Option<String>,
}

/// A CNI plugin. One value is built by [`CniPlugin::setup`] and serves every call.
///
/// The host walks every packet through each net-node's kernel itself and
/// shows the plugin that walk ([`KernelWalk`]); each method answers for one
/// role of a net-node with what only the CNI knows: the devices and entries
/// it should have made, the MTUs it configures, what its agent programs.
/// Every role defaults to "nothing to add"; only `setup` is required.
///
/// - [`pod_send`](CniPlugin::pod_send) / [`pod_receive`](CniPlugin::pod_receive):
///   a pod originates or receives the packet;
/// - [`to_pod`](CniPlugin::to_pod), [`to_host`](CniPlugin::to_host),
///   [`to_service`](CniPlugin::to_service), [`to_external`](CniPlugin::to_external),
///   [`serve`](CniPlugin::serve): a node, by what the packet is for as it
///   arrives (before the node's NAT); each defaults to
///   [`at_node`](CniPlugin::at_node), which answers them all (see [`hop`]);
/// - [`metadata`](CniPlugin::metadata): [`CniPlugin::METADATA`].
///
/// A critical or fatal suspicion ends the net-node's branches (the CNI knows
/// the packet goes no further). A plugin whose datapath the kernel walk
/// cannot see (eBPF) answers [`HopAnswer::Walked`] with its own step.
///
/// ```rust,standalone_crate
/// use skoop_sdk::prelude::*;
///
/// /// Pods on veths, nodes forwarding as their kernel does: nothing to add.
/// struct Plain;
///
/// impl CniPlugin for Plain {
///     const METADATA: Option<StaticMetadata> = Some(StaticMetadata {
///         name: "plain",
///         version: "0.1.0",
///         description: "the kernel walk alone",
///         ..StaticMetadata::EMPTY
///     });
///
///     fn setup() -> Result<(Self, Vec<Suspicion>)> {
///         Ok((Plain, vec![]))
///     }
/// }
///
/// export_cni_plugin!(Plain);
///
/// fn main() {
///     assert_eq!(Plain::metadata().version, "0.1.0");
/// }
/// ```
pub trait CniPlugin: Sized + 'static {
    /// Who the plugin is, known at compile time: written into the
    /// component's metadata section (read without running it) and the
    /// default of [`CniPlugin::metadata`].
    const METADATA: Option<meta::StaticMetadata> = None;

    /// Who the plugin is (the default: [`CniPlugin::METADATA`]).
    fn metadata() -> Metadata {
        Self::METADATA.map(|m| m.to_metadata()).unwrap_or_default()
    }

    /// Build the plugin from its config (read with [`host::cluster::config`])
    /// and return cluster-wide suspicions.
    fn setup() -> Result<(Self, Vec<Suspicion>)>;

    /// The policy kinds (`apiVersion/Kind`) the CNI enforces in this
    /// cluster, when they depend on what `setup` found (its version, its
    /// config); None: the metadata's `enforces`.
    fn enforces(&self) -> Option<Vec<String>> {
        None
    }

    /// A pod originates the packet.
    fn pod_send(&self, pod: &Pod, walk: &KernelWalk) -> Result<HopAnswer> {
        let _ = (pod, walk);
        Ok(HopAnswer::fine())
    }

    /// A pod receives the packet.
    fn pod_receive(&self, pod: &Pod, walk: &KernelWalk) -> Result<HopAnswer> {
        let _ = (pod, walk);
        Ok(HopAnswer::fine())
    }

    /// The node owning `ip` when it is no pod's and no node's address in the
    /// cluster objects (a tunnel device's address). The default knows none.
    fn address_owner(&self, ip: std::net::Ipv4Addr) -> Option<String> {
        let _ = ip;
        None
    }

    /// At `node`, every node role: what the packet is for is `role`. The
    /// default of each role's own method below, so that a plugin answering
    /// them alike overrides this one alone (with [`NodeChecks::answer`]);
    /// its own default: nothing to add.
    fn at_node(&self, node: &Node, walk: &KernelWalk, role: NodeRole<'_>) -> Result<HopAnswer> {
        let _ = (node, walk, role);
        Ok(HopAnswer::fine())
    }

    /// At `node`, the packet is for `pod` (here or on another node).
    fn to_pod(&self, node: &Node, walk: &KernelWalk, pod: &Pod) -> Result<HopAnswer> {
        self.at_node(node, walk, NodeRole::Pod(pod))
    }

    /// At `node`, the packet is for another node's host network.
    fn to_host(&self, node: &Node, walk: &KernelWalk, target: &Node) -> Result<HopAnswer> {
        self.at_node(node, walk, NodeRole::Host(target))
    }

    /// At `node`, the packet is for a Service (the node's own rules
    /// translated it in the walk).
    fn to_service(&self, node: &Node, walk: &KernelWalk, service: &Service) -> Result<HopAnswer> {
        self.at_node(node, walk, NodeRole::Service(service))
    }

    /// At `node`, the packet is for an address outside the cluster.
    fn to_external(&self, node: &Node, walk: &KernelWalk) -> Result<HopAnswer> {
        self.at_node(node, walk, NodeRole::External)
    }

    /// The packet is for `node` itself.
    fn serve(&self, node: &Node, walk: &KernelWalk) -> Result<HopAnswer> {
        self.at_node(node, walk, NodeRole::Serve)
    }
}

/// A cloud provider: how a diagnosis is wired on this cloud
/// ([`create_network`](CloudProvider::create_network), required) and what the
/// underlay does to packets between nodes and to and from the outside (the
/// underlay methods; each defaults to "nothing to check").
///
/// ```rust,standalone_crate
/// use skoop_sdk::prelude::*;
///
/// struct OnPrem;
///
/// impl CloudProvider for OnPrem {
///     const METADATA: Option<StaticMetadata> = Some(StaticMetadata {
///         name: "onprem",
///         version: "0.1.0",
///         description: "a flat L2 underlay: nothing to check",
///         ..StaticMetadata::EMPTY
///     });
///
///     fn create_network(settings: &Settings) -> Result<NetworkPlan> {
///         Ok(NetworkPlan {
///             plugin: settings.network_plugin.clone(),
///             proxy_mode: settings.proxy_mode,
///             // Whether the host should ask this provider's underlay checks.
///             infra_shim: false,
///         })
///     }
/// }
///
/// export_cloud_provider!(OnPrem);
///
/// fn main() {
///     let settings = Settings {
///         network_plugin: "flannel".into(),
///         cloud_provider: "onprem".into(),
///         proxy_mode: ProxyMode::Iptables,
///         cluster_cidr: Some("10.244.0.0/16".parse().unwrap()),
///     };
///     let plan = OnPrem::create_network(&settings).unwrap();
///     assert_eq!(plan.plugin, "flannel");
/// }
/// ```
pub trait CloudProvider: Sized + 'static {
    /// Who the provider is, known at compile time (see [`CniPlugin::METADATA`]).
    const METADATA: Option<meta::StaticMetadata> = None;

    /// Who the provider is (the default: [`CloudProvider::METADATA`]).
    fn metadata() -> Metadata {
        Self::METADATA.map(|m| m.to_metadata()).unwrap_or_default()
    }

    /// Decide the wiring of a diagnosis.
    fn create_network(settings: &Settings) -> Result<NetworkPlan>;

    /// Check the underlay from node `src` (leaving by `oif`) to node `dst`;
    /// `packet` is what the underlay carries (the outer packet of a tunnel).
    /// The default sees nothing to check.
    fn node_to_node(src: &Node, oif: &str, dst: &Node, packet: Packet) -> Result<Underlay> {
        let _ = (src, oif, dst, packet);
        Ok(Underlay::default())
    }

    /// Check the underlay from node `src` (leaving by `oif`) to the outside.
    fn node_to_external(src: &Node, oif: &str, packet: Packet) -> Result<Underlay> {
        let _ = (src, oif, packet);
        Ok(Underlay::default())
    }

    /// Check the underlay from outside the cluster to node `dst` (its address,
    /// a LoadBalancer ingress address or an external IP).
    fn external_to_node(dst: &Node, packet: Packet) -> Result<Underlay> {
        let _ = (dst, packet);
        Ok(Underlay::default())
    }

    /// Ask the cloud everything the checks of this cluster may need, with
    /// the very requests the checks make: `skoop snapshot` records the
    /// answers so the checks run offline. The default asks nothing.
    fn prefetch() -> Result<Vec<Suspicion>> {
        Ok(vec![])
    }
}

/// Export a type implementing [`CniPlugin`] as the component's `cni-plugin`
/// world; use it once, at the crate root of a `cdylib` built for
/// `wasm32-wasip2`. For other targets (native unit tests, doc tests) it only
/// checks that the type is a [`CniPlugin`]: the component's export names are
/// no native symbols.
#[macro_export]
macro_rules! export_cni_plugin {
    ($ty:ty) => {
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || {
            fn exported<T: $crate::CniPlugin>() {}
            exported::<$ty>();
        };
        // The metadata section: read by `skoop extension inspect` without running anything.
        #[cfg(target_arch = "wasm32")]
        #[used]
        #[unsafe(link_section = "skoop:metadata")]
        static __SKOOP_METADATA: [u8; $crate::meta::section_len(
            <$ty as $crate::CniPlugin>::METADATA,
        )] = $crate::meta::section(<$ty as $crate::CniPlugin>::METADATA);
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __SkoopCni;
            impl $crate::cni::exports::skoop::extension::metadata::Guest for __SkoopCni {
                fn describe() -> $crate::cni::exports::skoop::extension::metadata::ExtensionInfo {
                    $crate::glue::describe_cni(<$ty as $crate::CniPlugin>::metadata())
                }
            }
            impl $crate::cni::exports::skoop::extension::plugin::Guest for __SkoopCni {
                fn setup() -> $crate::glue::SetupResult {
                    $crate::glue::setup::<$ty>()
                }
                fn pod_send(
                    pod: $crate::cni::skoop::extension::types::PodInfo,
                    walk: $crate::glue::Walk,
                ) -> $crate::glue::AnswerResult {
                    $crate::glue::pod_send::<$ty>(pod, walk)
                }
                fn pod_receive(
                    pod: $crate::cni::skoop::extension::types::PodInfo,
                    walk: $crate::glue::Walk,
                ) -> $crate::glue::AnswerResult {
                    $crate::glue::pod_receive::<$ty>(pod, walk)
                }
                fn address_owner(
                    ip: $crate::cni::skoop::extension::types::IpAddress,
                ) -> ::core::option::Option<::std::string::String> {
                    $crate::glue::address_owner::<$ty>(ip)
                }
            }
            impl $crate::cni::exports::skoop::extension::simple_plugin_node::Guest for __SkoopCni {
                fn to_pod(
                    node: $crate::cni::skoop::extension::types::NodeInfo,
                    walk: $crate::glue::Walk,
                    pod: $crate::cni::skoop::extension::types::PodInfo,
                ) -> $crate::glue::AnswerResult {
                    $crate::glue::to_pod::<$ty>(node, walk, pod)
                }
                fn to_host(
                    node: $crate::cni::skoop::extension::types::NodeInfo,
                    walk: $crate::glue::Walk,
                    target: $crate::cni::skoop::extension::types::NodeInfo,
                ) -> $crate::glue::AnswerResult {
                    $crate::glue::to_host::<$ty>(node, walk, target)
                }
                fn to_service(
                    node: $crate::cni::skoop::extension::types::NodeInfo,
                    walk: $crate::glue::Walk,
                    service: $crate::cni::skoop::extension::types::ServiceInfo,
                ) -> $crate::glue::AnswerResult {
                    $crate::glue::to_service::<$ty>(node, walk, service)
                }
                fn to_external(
                    node: $crate::cni::skoop::extension::types::NodeInfo,
                    walk: $crate::glue::Walk,
                ) -> $crate::glue::AnswerResult {
                    $crate::glue::to_external::<$ty>(node, walk)
                }
                fn serve(
                    node: $crate::cni::skoop::extension::types::NodeInfo,
                    walk: $crate::glue::Walk,
                ) -> $crate::glue::AnswerResult {
                    $crate::glue::serve::<$ty>(node, walk)
                }
            }
    $crate::cni::export_cni_world!(__SkoopCni with_types_in $crate::cni);
        };
    };
}

/// Export a type implementing [`CloudProvider`] as the component's
/// `cloud-provider` world (see [`export_cni_plugin!`]: for other targets than
/// wasm32 it only checks that the type is a [`CloudProvider`]).
#[macro_export]
macro_rules! export_cloud_provider {
    ($ty:ty) => {
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || {
            fn exported<T: $crate::CloudProvider>() {}
            exported::<$ty>();
        };
        #[cfg(target_arch = "wasm32")]
        #[used]
        #[unsafe(link_section = "skoop:metadata")]
        static __SKOOP_METADATA: [u8; $crate::meta::section_len(<$ty as $crate::CloudProvider>::METADATA)] =
            $crate::meta::section(<$ty as $crate::CloudProvider>::METADATA);
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __SkoopProvider;
            impl $crate::provider::exports::skoop::extension::metadata::Guest for __SkoopProvider {
                fn describe() -> $crate::provider::exports::skoop::extension::metadata::ExtensionInfo {
                    $crate::glue::describe_provider(<$ty as $crate::CloudProvider>::metadata())
                }
            }
            impl $crate::provider::exports::skoop::extension::provider::Guest for __SkoopProvider {
                fn create_network(
                    settings: $crate::cni::skoop::extension::cluster::Settings,
                ) -> ::core::result::Result<
                    $crate::provider::exports::skoop::extension::provider::NetworkPlan,
                    $crate::cni::skoop::extension::types::Error,
                > {
                    $crate::glue::create_network::<$ty>(settings)
                }
            }
            impl $crate::provider::exports::skoop::extension::infra_shim::Guest for __SkoopProvider {
                fn node_to_node(
                    src: $crate::cni::skoop::extension::types::NodeInfo,
                    oif: ::std::string::String,
                    dst: $crate::cni::skoop::extension::types::NodeInfo,
                    packet: $crate::cni::skoop::extension::types::Packet,
                ) -> $crate::glue::UnderlayResult {
                    $crate::glue::node_to_node::<$ty>(src, oif, dst, packet)
                }
                fn node_to_external(
                    src: $crate::cni::skoop::extension::types::NodeInfo,
                    oif: ::std::string::String,
                    packet: $crate::cni::skoop::extension::types::Packet,
                ) -> $crate::glue::UnderlayResult {
                    $crate::glue::node_to_external::<$ty>(src, oif, packet)
                }
                fn external_to_node(
                    dst: $crate::cni::skoop::extension::types::NodeInfo,
                    packet: $crate::cni::skoop::extension::types::Packet,
                ) -> $crate::glue::UnderlayResult {
                    $crate::glue::external_to_node::<$ty>(dst, packet)
                }
                fn prefetch() -> $crate::glue::SuspicionsResult {
                    $crate::glue::prefetch::<$ty>()
                }
            }
            $crate::provider::export_provider_world!(__SkoopProvider with_types_in $crate::provider);
        };
    };
}
