//! Glue between the generated export traits and the author's [`CniPlugin`] /
//! [`CloudProvider`]; called by the export macros, not by authors.

use std::any::Any;
use std::cell::RefCell;

use crate::cni::exports::skoop::extension::{metadata as cm, plugin as cp};
use crate::cni::skoop::extension::{cluster as wc, types as wt, walk as ww};
use crate::provider::exports::skoop::extension::{
    infra_shim as pu, metadata as pm, provider as pp,
};
use crate::types::*;
use crate::{
    CloudProvider, CniPlugin, HopAnswer, KernelWalk, Metadata, Result, Underlay, WIT_VERSION,
};

/// The host's walk, as a role export takes it.
pub type Walk = ww::KernelWalk;
/// What a role export returns.
pub type AnswerResult = std::result::Result<ww::HopAnswer, wt::Error>;
/// What `setup` returns.
pub type SetupResult = std::result::Result<cp::SetupResult, wt::Error>;
/// What `prefetch` returns.
pub type SuspicionsResult = std::result::Result<Vec<wt::Suspicion>, wt::Error>;
/// What an underlay export returns.
pub type UnderlayResult = std::result::Result<pu::Underlay, wt::Error>;

thread_local! {
    // A component instance is single-threaded; the plugin value lives here between calls.
    static PLUGIN: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

fn with_plugin<T: CniPlugin>(
    walk: &Walk,
    f: impl FnOnce(&T, &KernelWalk) -> Result<HopAnswer>,
) -> AnswerResult {
    crate::host::forget_answers();
    let walk = crate::walk::walk_from(walk).map_err(error_to)?;
    PLUGIN.with(|cell| {
        let guard = cell.borrow();
        let plugin = guard
            .as_ref()
            .and_then(|b| b.downcast_ref::<T>())
            .ok_or_else(|| wt::Error::Internal("plugin used before setup".into()))?;
        f(plugin, &walk)
            .map(crate::walk::answer_to)
            .map_err(error_to)
    })
}

/// Each world has its own generated `extension-info`; fill either alike.
macro_rules! describe {
    ($m:expr, $module:ident, $kind:ident) => {{
        let m = $m;
        $module::ExtensionInfo {
            name: m.name,
            kind: $module::ExtensionKind::$kind,
            version: m.version,
            wit_version: WIT_VERSION.to_string(),
            description: m.description,
            config: m
                .config
                .into_iter()
                .map(|c| $module::ConfigKey {
                    name: c.name,
                    help: c.help,
                    default: c.default,
                    secret: c.secret,
                    env: c.env,
                    file: c.file.map(|f| $module::CredentialsFile {
                        path: f.path,
                        path_env: f.path_env,
                        section_key: f.section_key,
                        key: f.key,
                    }),
                })
                .collect(),
            reads: m.reads,
            detect_daemonsets: m.detect_daemonsets,
            detect_objects: m.detect_objects,
            enforces: m.enforces,
            http_hosts: m.http_hosts,
            min_host_version: m.min_host_version,
        }
    }};
}

pub fn describe_cni(m: Metadata) -> cm::ExtensionInfo {
    describe!(m, cm, CniPlugin)
}

pub fn describe_provider(m: Metadata) -> pm::ExtensionInfo {
    describe!(m, pm, CloudProvider)
}

pub fn setup<T: CniPlugin>() -> SetupResult {
    crate::host::forget_answers();
    let (plugin, suspicions) = T::setup().map_err(error_to)?;
    let enforces = plugin.enforces();
    PLUGIN.with(|cell| *cell.borrow_mut() = Some(Box::new(plugin)));
    Ok(cp::SetupResult {
        suspicions: suspicions.iter().map(suspicion_to).collect(),
        enforces,
    })
}

pub fn pod_send<T: CniPlugin>(pod: wt::PodInfo, walk: Walk) -> AnswerResult {
    with_plugin::<T>(&walk, |p, w| p.pod_send(&pod_from(&pod)?, w))
}

pub fn pod_receive<T: CniPlugin>(pod: wt::PodInfo, walk: Walk) -> AnswerResult {
    with_plugin::<T>(&walk, |p, w| p.pod_receive(&pod_from(&pod)?, w))
}

pub fn address_owner<T: CniPlugin>(ip: wt::IpAddress) -> Option<String> {
    crate::host::forget_answers();
    let ip = ip_from(&ip).ok()?;
    PLUGIN.with(|cell| {
        cell.borrow()
            .as_ref()
            .and_then(|b| b.downcast_ref::<T>())
            .and_then(|p| p.address_owner(ip))
    })
}

pub fn to_pod<T: CniPlugin>(node: wt::NodeInfo, walk: Walk, pod: wt::PodInfo) -> AnswerResult {
    with_plugin::<T>(&walk, |p, w| {
        p.to_pod(&node_from(&node)?, w, &pod_from(&pod)?)
    })
}

pub fn to_host<T: CniPlugin>(node: wt::NodeInfo, walk: Walk, target: wt::NodeInfo) -> AnswerResult {
    with_plugin::<T>(&walk, |p, w| {
        p.to_host(&node_from(&node)?, w, &node_from(&target)?)
    })
}

pub fn to_service<T: CniPlugin>(
    node: wt::NodeInfo,
    walk: Walk,
    service: wt::ServiceInfo,
) -> AnswerResult {
    with_plugin::<T>(&walk, |p, w| {
        p.to_service(&node_from(&node)?, w, &service_from(&service)?)
    })
}

pub fn to_external<T: CniPlugin>(node: wt::NodeInfo, walk: Walk) -> AnswerResult {
    with_plugin::<T>(&walk, |p, w| p.to_external(&node_from(&node)?, w))
}

pub fn serve<T: CniPlugin>(node: wt::NodeInfo, walk: Walk) -> AnswerResult {
    with_plugin::<T>(&walk, |p, w| p.serve(&node_from(&node)?, w))
}

pub fn create_network<T: CloudProvider>(
    settings: wc::Settings,
) -> std::result::Result<pp::NetworkPlan, wt::Error> {
    crate::host::forget_answers();
    T::create_network(&settings_from(&settings))
        .map(network_plan_to)
        .map_err(error_to)
}

fn underlay_to(u: Result<Underlay>) -> UnderlayResult {
    u.map(|u| pu::Underlay {
        hops: u
            .hops
            .into_iter()
            .map(|h| pu::UnderlayHop {
                kind: h.kind,
                id: h.id,
                detail: h.detail,
            })
            .collect(),
        suspicions: u.suspicions.iter().map(suspicion_to).collect(),
        entry: u.entry.as_ref().map(packet_to),
        delivered_to: u.delivered_to,
    })
    .map_err(error_to)
}

pub fn node_to_node<T: CloudProvider>(
    src: wt::NodeInfo,
    oif: String,
    dst: wt::NodeInfo,
    packet: wt::Packet,
) -> UnderlayResult {
    crate::host::forget_answers();
    underlay_to((|| {
        T::node_to_node(
            &node_from(&src)?,
            &oif,
            &node_from(&dst)?,
            packet_from(&packet)?,
        )
    })())
}

pub fn node_to_external<T: CloudProvider>(
    src: wt::NodeInfo,
    oif: String,
    packet: wt::Packet,
) -> UnderlayResult {
    crate::host::forget_answers();
    underlay_to((|| {
        T::node_to_external(&node_from(&src)?, &oif, packet_from(&packet)?)
    })())
}

pub fn external_to_node<T: CloudProvider>(dst: wt::NodeInfo, packet: wt::Packet) -> UnderlayResult {
    crate::host::forget_answers();
    underlay_to((|| {
        T::external_to_node(&node_from(&dst)?, packet_from(&packet)?)
    })())
}

pub fn prefetch<T: CloudProvider>() -> SuspicionsResult {
    crate::host::forget_answers();
    T::prefetch()
        .map(|v| v.iter().map(suspicion_to).collect())
        .map_err(error_to)
}
