//! # skoop-sdk
//!
//! Everything a skoop extension author needs: plain Rust types for packets,
//! hops and suspicions; read-only access to what the host lends (cluster view,
//! netstack simulation, kube-proxy service resolution, the underlay); helpers
//! that turn netstack facts into suspicions; a ready-made veth pod; and one
//! macro to export a CNI plugin ([`export_cni_plugin!`]) or a cloud provider
//! ([`export_cloud_provider!`]).
//!
//! A CNI plugin implements [`CniPlugin`]: pods (`pod_send`, `pod_receive`) and
//! the five node hops the host has already dispatched by destination kind
//! (`to_pod`, `to_host`, `to_service`, `to_external`, `serve`). Build it with
//! `cargo build --target wasm32-wasip2 --release` and load it with
//! `skoop --extension target/wasm32-wasip2/release/<name>.wasm diagnose ...`.

pub mod findings;
#[doc(hidden)]
pub mod glue;
pub mod host;
pub mod http;
pub mod meta;
pub mod types;
pub mod underlay;
pub mod veth_pod;

pub use findings::Findings;
pub use types::*;
pub use veth_pod::VethPod;

/// The version of the WIT package this SDK speaks; written into every
/// extension's metadata and checked by the host.
pub const WIT_VERSION: &str = "0.4.0";

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

/// A configuration key the extension accepts, offered as `--<name>` on the command line.
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

/// An extension's self-description. The WIT version is filled in by the SDK.
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
}

/// A CNI plugin. One value is built by [`CniPlugin::setup`] and serves every call.
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
    /// and return cluster-wide findings.
    fn setup() -> Result<(Self, Vec<Suspicion>)>;

    /// A pod originates `packet`.
    fn pod_send(&self, pod: &Pod, packet: Packet) -> Result<NodeStep>;

    /// A pod receives a packet.
    fn pod_receive(&self, pod: &Pod, upstream: &Link) -> Result<NodeStep>;

    /// The node owning `ip` when it is no pod's and no node's address in the
    /// cluster objects (a tunnel device's address). The default knows none.
    fn address_owner(&self, ip: std::net::Ipv4Addr) -> Option<String> {
        let _ = ip;
        None
    }

    /// At `node`, the packet is for `pod`.
    fn to_pod(
        &self,
        node: &Node,
        upstream: Option<&Link>,
        packet: Packet,
        pod: &Pod,
    ) -> Result<NodeStep>;

    /// At `node`, the packet is for another node's host network.
    fn to_host(
        &self,
        node: &Node,
        upstream: Option<&Link>,
        packet: Packet,
        target: &Node,
    ) -> Result<NodeStep>;

    /// At `node`, the packet is for a Service. The default asks the host's
    /// service processor for the backends and handles each translated packet
    /// as a branch through [`CniPlugin::redispatch`].
    fn to_service(
        &self,
        node: &Node,
        upstream: Option<&Link>,
        packet: Packet,
        _service: &Service,
    ) -> Result<NodeStep> {
        let resolution = host::service::resolve(&node.name, packet)?;
        let mut step = NodeStep::forward(vec![]);
        step.suspicions.extend(resolution.suspicions);
        for backend in resolution.backends {
            let sub = self.redispatch(node, upstream, backend.packet, &backend.target)?;
            step.merge(backend.packet, sub);
        }
        if step.transmissions.is_empty() && step.action != ActionKind::Serve {
            step.action = ActionKind::Drop;
        }
        Ok(step)
    }

    /// At `node`, the packet is for an address outside the cluster.
    fn to_external(&self, node: &Node, upstream: Option<&Link>, packet: Packet)
    -> Result<NodeStep>;

    /// The packet is for `node` itself.
    fn serve(&self, node: &Node, upstream: Option<&Link>, packet: Packet) -> Result<NodeStep>;

    /// Dispatch an already classified destination to the matching node hop;
    /// used after a translation (service backends).
    fn redispatch(
        &self,
        node: &Node,
        upstream: Option<&Link>,
        packet: Packet,
        target: &Endpoint,
    ) -> Result<NodeStep> {
        match target {
            Endpoint::Pod(pod) if !pod.host_network => self.to_pod(node, upstream, packet, pod),
            Endpoint::Pod(pod) => match host::cluster::node(&pod.node) {
                Some(n) if n.name == node.name => self.serve(node, upstream, packet),
                Some(n) => self.to_host(node, upstream, packet, &n),
                None => Err(Error::Invalid(format!(
                    "node {} of pod {} unknown",
                    pod.node,
                    pod.id()
                ))),
            },
            Endpoint::Node(n) if n.name == node.name => self.serve(node, upstream, packet),
            Endpoint::Node(n) => self.to_host(node, upstream, packet, n),
            Endpoint::Service(s) => self.to_service(node, upstream, packet, s),
            Endpoint::External(_) => self.to_external(node, upstream, packet),
        }
    }
}

/// A cloud provider.
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

/// Export a type implementing [`CniPlugin`] as the component's `cni-plugin` world.
#[macro_export]
macro_rules! export_cni_plugin {
    ($ty:ty) => {
        // The metadata section: read by `skoop extension inspect` without running anything.
        #[cfg(target_arch = "wasm32")]
        #[used]
        #[unsafe(link_section = "skoop:metadata")]
        static __SKOOP_METADATA: [u8; $crate::meta::section_len(
            <$ty as $crate::CniPlugin>::METADATA,
        )] = $crate::meta::section(<$ty as $crate::CniPlugin>::METADATA);
        const _: () = {
            struct __SkoopCni;
            impl $crate::cni::exports::skoop::extension::metadata::Guest for __SkoopCni {
                fn describe() -> $crate::cni::exports::skoop::extension::metadata::ExtensionInfo {
                    $crate::glue::describe_cni(<$ty as $crate::CniPlugin>::metadata())
                }
            }
            impl $crate::cni::exports::skoop::extension::plugin::Guest for __SkoopCni {
                fn setup() -> ::core::result::Result<
                    ::std::vec::Vec<$crate::cni::skoop::extension::types::Suspicion>,
                    $crate::cni::skoop::extension::types::Error,
                > {
                    $crate::glue::setup::<$ty>()
                }
                fn pod_send(
                    pod: $crate::cni::skoop::extension::types::PodInfo,
                    packet: $crate::cni::skoop::extension::types::Packet,
                ) -> $crate::glue::StepResult {
                    $crate::glue::pod_send::<$ty>(pod, packet)
                }
                fn pod_receive(
                    pod: $crate::cni::skoop::extension::types::PodInfo,
                    upstream: $crate::cni::skoop::extension::types::Link,
                ) -> $crate::glue::StepResult {
                    $crate::glue::pod_receive::<$ty>(pod, upstream)
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
                    upstream: ::core::option::Option<$crate::cni::skoop::extension::types::Link>,
                    packet: $crate::cni::skoop::extension::types::Packet,
                    pod: $crate::cni::skoop::extension::types::PodInfo,
                ) -> $crate::glue::StepResult {
                    $crate::glue::to_pod::<$ty>(node, upstream, packet, pod)
                }
                fn to_host(
                    node: $crate::cni::skoop::extension::types::NodeInfo,
                    upstream: ::core::option::Option<$crate::cni::skoop::extension::types::Link>,
                    packet: $crate::cni::skoop::extension::types::Packet,
                    target: $crate::cni::skoop::extension::types::NodeInfo,
                ) -> $crate::glue::StepResult {
                    $crate::glue::to_host::<$ty>(node, upstream, packet, target)
                }
                fn to_service(
                    node: $crate::cni::skoop::extension::types::NodeInfo,
                    upstream: ::core::option::Option<$crate::cni::skoop::extension::types::Link>,
                    packet: $crate::cni::skoop::extension::types::Packet,
                    service: $crate::cni::skoop::extension::types::ServiceInfo,
                ) -> $crate::glue::StepResult {
                    $crate::glue::to_service::<$ty>(node, upstream, packet, service)
                }
                fn to_external(
                    node: $crate::cni::skoop::extension::types::NodeInfo,
                    upstream: ::core::option::Option<$crate::cni::skoop::extension::types::Link>,
                    packet: $crate::cni::skoop::extension::types::Packet,
                ) -> $crate::glue::StepResult {
                    $crate::glue::to_external::<$ty>(node, upstream, packet)
                }
                fn serve(
                    node: $crate::cni::skoop::extension::types::NodeInfo,
                    upstream: ::core::option::Option<$crate::cni::skoop::extension::types::Link>,
                    packet: $crate::cni::skoop::extension::types::Packet,
                ) -> $crate::glue::StepResult {
                    $crate::glue::serve::<$ty>(node, upstream, packet)
                }
            }
    $crate::cni::export_cni_world!(__SkoopCni with_types_in $crate::cni);
        };
    };
}

/// Export a type implementing [`CloudProvider`] as the component's `cloud-provider` world.
#[macro_export]
macro_rules! export_cloud_provider {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[used]
        #[unsafe(link_section = "skoop:metadata")]
        static __SKOOP_METADATA: [u8; $crate::meta::section_len(<$ty as $crate::CloudProvider>::METADATA)] =
            $crate::meta::section(<$ty as $crate::CloudProvider>::METADATA);
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
