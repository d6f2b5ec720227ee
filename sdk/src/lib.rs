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
pub mod types;
pub mod veth_pod;

pub use findings::Findings;
pub use types::*;
pub use veth_pod::VethPod;

/// The version of the WIT package this SDK speaks; written into every
/// extension's metadata and checked by the host.
pub const WIT_VERSION: &str = "0.3.0";

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
#[derive(Debug, Clone)]
pub struct ConfigKey {
    pub name: String,
    pub help: String,
    pub default: Option<String>,
}

impl ConfigKey {
    /// A key with a default value.
    pub fn new(name: &str, help: &str, default: Option<&str>) -> Self {
        ConfigKey {
            name: name.to_string(),
            help: help.to_string(),
            default: default.map(str::to_string),
        }
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
}

/// A CNI plugin. One value is built by [`CniPlugin::setup`] and serves every call.
pub trait CniPlugin: Sized + 'static {
    /// Who the plugin is.
    fn metadata() -> Metadata;

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
    /// Who the provider is.
    fn metadata() -> Metadata;

    /// Decide the wiring of a diagnosis.
    fn create_network(settings: &Settings) -> Result<NetworkPlan>;

    /// Check the underlay from node `src` (leaving by `oif`) to node `dst`.
    fn node_to_node(src: &Node, oif: &str, dst: &Node, packet: Packet) -> Result<Vec<Suspicion>>;

    /// Check the underlay from node `src` (leaving by `oif`) to the outside.
    fn node_to_external(src: &Node, oif: &str, packet: Packet) -> Result<Vec<Suspicion>>;
}

/// Export a type implementing [`CniPlugin`] as the component's `cni-plugin` world.
#[macro_export]
macro_rules! export_cni_plugin {
    ($ty:ty) => {
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
                ) -> $crate::glue::SuspicionsResult {
                    $crate::glue::node_to_node::<$ty>(src, oif, dst, packet)
                }
                fn node_to_external(
                    src: $crate::cni::skoop::extension::types::NodeInfo,
                    oif: ::std::string::String,
                    packet: $crate::cni::skoop::extension::types::Packet,
                ) -> $crate::glue::SuspicionsResult {
                    $crate::glue::node_to_external::<$ty>(src, oif, packet)
                }
            }
            $crate::provider::export_provider_world!(__SkoopProvider with_types_in $crate::provider);
        };
    };
}
