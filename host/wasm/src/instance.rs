//! Running extension instances: every call has a deadline, and a trap, a
//! timeout, a memory overrun or a malformed answer becomes a [`CallError`]
//! that names the extension and the call.

use serde::Serialize;
use serde_json::{Value, json};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store, Trap};

use super::bindings::{cni, provider as pw, types as wt, walk as ww};
use super::convert::*;
use super::hostcalls::{Call, CallLog};
use super::runtime::Limits;
use super::state::HostState;
use skoop_engine::cluster::NodeFacts;
use skoop_engine::kernel_walk::KernelWalk;
use skoop_engine::packet::Packet;
use skoop_engine::path::Finding;
pub use skoop_engine::plugin::{
    CallError, Failure, HopAnswer, Plugin, RefusedKind, Role, Underlay,
};
use skoop_engine::settings::ProxyMode;

/// A component linked once and ready to instantiate in a fresh store: the
/// linker's work is done at load, and a failed instance is re-created cheaply.
pub trait Pre: Clone {
    type Bindings;
    fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Self::Bindings>;
}

/// A CNI plugin, pre-instantiated.
pub type CniPre = cni::CniPluginPre<HostState>;
/// A cloud provider, pre-instantiated.
pub type ProviderPre = pw::CloudProviderPre<HostState>;

impl Pre for CniPre {
    type Bindings = cni::CniPlugin;
    fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<cni::CniPlugin> {
        cni::CniPluginPre::instantiate(self, store)
    }
}

impl Pre for ProviderPre {
    type Bindings = pw::CloudProvider;
    fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<pw::CloudProvider> {
        pw::CloudProviderPre::instantiate(self, store)
    }
}

type Reinit<B> = fn(
    &B,
    &mut Store<HostState>,
) -> wasmtime::Result<
    Result<cni::exports::skoop::extension::plugin::SetupResult, wt::Error>,
>;

/// Shared plumbing: the store, the deadline, error mapping, re-creation
/// after a failure, and recording.
struct Runner<P: Pre> {
    store: Store<HostState>,
    bindings: P::Bindings,
    pre: P,
    name: String,
    limits: Limits,
    /// The last call trapped, timed out or overran memory: the store is not
    /// to be entered again, and the next call re-creates the instance.
    poisoned: bool,
    /// Calls made on a re-created instance before anything else (a CNI
    /// plugin's setup, which builds its state).
    reinit: Option<Reinit<P::Bindings>>,
    /// The answer of the last call, as JSON, while replaying.
    last_answer: Option<Value>,
}

fn new_store(engine: &Engine, mut state: HostState, limits: Limits) -> Store<HostState> {
    state.limiter.max = limits.memory_bytes;
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.epoch_deadline_trap();
    store
}

impl<P: Pre> Runner<P> {
    /// A store with an instance of `pre` in it; start-up code runs under the
    /// same deadline and limits as any call.
    fn start(
        engine: &Engine,
        pre: P,
        state: HostState,
        limits: Limits,
    ) -> Result<Runner<P>, CallError> {
        let name = state.name.clone();
        let mut store = new_store(engine, state, limits);
        arm(&mut store, limits);
        match pre.instantiate(&mut store) {
            Ok(bindings) => Ok(Runner {
                store,
                bindings,
                pre,
                name,
                limits,
                poisoned: false,
                reinit: None,
                last_answer: None,
            }),
            Err(e) => Err(classify(&store, &name, limits, "instantiate", e)),
        }
    }

    fn err(&self, call: &str, failure: Failure) -> CallError {
        CallError {
            extension: self.name.clone(),
            call: call.to_string(),
            failure,
        }
    }

    /// A fresh store and instance in place of a failed one. What the host
    /// lends carries over; the extension's own memory does not.
    fn restart(&mut self, label: &str) -> Result<(), CallError> {
        let state = self.store.data_mut().renew();
        let engine = self.store.engine().clone();
        let mut store = new_store(&engine, state, self.limits);
        arm(&mut store, self.limits);
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify(&store, &self.name, self.limits, "instantiate (again)", e))?;
        let replaying = matches!(store.data().calls, Some(CallLog::Replay { .. }));
        if store.data().verbose {
            eprintln!(
                "skoop: extension {} re-created in a fresh store after its failure, for {label}",
                self.name
            );
        }
        self.store = store;
        self.bindings = bindings;
        self.poisoned = false;
        // A replay re-runs the recorded setup itself, in order.
        if let (Some(reinit), false) = (self.reinit, replaying) {
            self.call(
                "plugin.setup",
                "plugin.setup (instance re-created after a failure)",
                || json!([]),
                reinit,
            )?;
        }
        Ok(())
    }

    /// Call into the extension: under the call deadline, on a sound
    /// instance, recorded when asked.
    fn call<R: Serialize>(
        &mut self,
        export: &'static str,
        label: &str,
        args: impl FnOnce() -> Value,
        f: impl FnOnce(&P::Bindings, &mut Store<HostState>) -> wasmtime::Result<Result<R, wt::Error>>,
    ) -> Result<R, CallError> {
        if self.poisoned {
            self.restart(label)?;
        }
        arm(&mut self.store, self.limits);
        let logging = self.store.data().calls.is_some();
        let args = if logging { args() } else { Value::Null };
        if let Some(CallLog::Record { current, .. }) = &mut self.store.data_mut().calls {
            current.clear();
        }
        let raw = f(&self.bindings, &mut self.store);
        self.store.data_mut().deadline = None;
        let (result, answer) = match raw {
            Err(e) => {
                let e = classify(&self.store, &self.name, self.limits, label, e);
                self.poisoned = true;
                let answer = logging.then(|| json!({ "failed": e.to_string() }));
                (Err(e), answer)
            }
            Ok(Err(e)) => {
                let answer = logging.then(|| json!({ "refused": e }));
                let kind = match e {
                    wt::Error::Unavailable(_) => RefusedKind::Unavailable,
                    wt::Error::Invalid(_) => RefusedKind::Invalid,
                    wt::Error::Internal(_) => RefusedKind::Internal,
                };
                (
                    Err(self.err(label, Failure::Refused(kind, error_text(&e)))),
                    answer,
                )
            }
            Ok(Ok(v)) => {
                let answer = logging.then(|| json!({ "ok": v }));
                (Ok(v), answer)
            }
        };
        if let Some(answer) = answer {
            match &mut self.store.data_mut().calls {
                Some(CallLog::Record { current, log }) => {
                    let imports = std::mem::take(current);
                    log.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .calls
                        .push(Call {
                            export: export.to_string(),
                            label: clean(label),
                            args,
                            answer,
                            imports,
                        });
                }
                Some(CallLog::Replay { .. }) => self.last_answer = Some(answer),
                None => {}
            }
        }
        result
    }
}

/// Set the deadline of the next call: epoch ticks for guest code, an
/// instant for host imports and outbound HTTP.
fn arm(store: &mut Store<HostState>, limits: Limits) {
    store.set_epoch_deadline(limits.ticks());
    let until = std::time::Instant::now() + limits.call_timeout;
    let data = store.data_mut();
    data.deadline = Some(until);
    data.deadline_hit = false;
    data.egress.deadline = Some(until);
}

/// Map a wasmtime error to the failure it stands for.
fn classify(
    store: &Store<HostState>,
    name: &str,
    limits: Limits,
    call: &str,
    e: wasmtime::Error,
) -> CallError {
    let data = store.data();
    let failure = if data.limiter.exceeded {
        Failure::Memory(limits.memory_bytes)
    } else if data.deadline_hit || matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        Failure::Timeout(limits.call_timeout)
    } else {
        let mut msg = match e.downcast_ref::<Trap>() {
            Some(t) => t.to_string(),
            None => format!("{e:#}"),
        };
        if let Some(line) = data.last_stderr_line() {
            msg = format!("{msg} ({line})");
        }
        Failure::Trap(clean(&msg))
    };
    CallError {
        extension: name.to_string(),
        call: call.to_string(),
        failure,
    }
}

/// A linker for the CNI world: sandboxed WASI plus skoop's imports.
pub fn cni_linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    cni::CniPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// A linker for the provider world.
pub fn provider_linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    // Requests are refused unless the provider declares hosts (see egress.rs).
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    pw::CloudProvider::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// An instantiated CNI plugin.
pub struct PluginInstance {
    run: Runner<CniPre>,
}

fn malformed(e: String) -> Failure {
    Failure::Malformed(e)
}

/// Decode a recorded call's arguments (a JSON array) for `export`.
fn args_of<T: serde::de::DeserializeOwned>(export: &str, args: &Value) -> Result<T, String> {
    serde_json::from_value(args.clone())
        .map_err(|e| format!("the recorded arguments of {export} do not fit this contract: {e}"))
}

fn setup_call(
    b: &cni::CniPlugin,
    s: &mut Store<HostState>,
) -> wasmtime::Result<Result<cni::exports::skoop::extension::plugin::SetupResult, wt::Error>> {
    b.skoop_extension_plugin().call_setup(s)
}

/// What a plugin's `setup` found.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    pub findings: Vec<Finding>,
    /// The policy kinds it enforces in this cluster, when they depend on
    /// what it found (else its metadata says).
    pub enforces: Option<Vec<String>>,
}

impl PluginInstance {
    pub fn new(
        engine: &Engine,
        pre: &CniPre,
        state: HostState,
        limits: Limits,
    ) -> anyhow::Result<PluginInstance> {
        let mut run = Runner::start(engine, pre.clone(), state, limits)?;
        run.reinit = Some(setup_call);
        Ok(PluginInstance { run })
    }

    pub fn describe(
        &mut self,
    ) -> Result<super::bindings::cni::exports::skoop::extension::metadata::ExtensionInfo, CallError>
    {
        self.run.call(
            "metadata.describe",
            "metadata.describe",
            || json!([]),
            |b, s| b.skoop_extension_metadata().call_describe(s).map(Ok),
        )
    }

    pub fn setup(&mut self) -> Result<Setup, CallError> {
        self.run
            .call("plugin.setup", "plugin.setup", || json!([]), setup_call)
            .map(|v| Setup {
                findings: suspicions_from(&v.suspicions),
                enforces: v
                    .enforces
                    .map(|list| list.iter().map(|k| clean(k)).collect()),
            })
    }

    fn address_owner_raw(
        &mut self,
        label: &str,
        ip: wt::IpAddress,
    ) -> Result<Option<String>, CallError> {
        self.run.call(
            "plugin.address-owner",
            label,
            || json!([&ip]),
            |b, s| b.skoop_extension_plugin().call_address_owner(s, ip).map(Ok),
        )
    }

    /// One net-node's walk shown to the plugin in one of its roles.
    fn hop_raw(
        &mut self,
        label: &str,
        role: &RoleCall,
        walk: &ww::KernelWalk,
    ) -> Result<ww::HopAnswer, CallError> {
        let args = || match role {
            RoleCall::PodSend(p) | RoleCall::PodReceive(p) => json!([p, walk]),
            RoleCall::ToPod(n, p) => json!([n, walk, p]),
            RoleCall::ToHost(n, t) => json!([n, walk, t]),
            RoleCall::ToService(n, v) => json!([n, walk, v]),
            RoleCall::ToExternal(n) | RoleCall::Serve(n) => json!([n, walk]),
        };
        self.run.call(role.export(), label, args, |b, s| {
            let pl = b.skoop_extension_plugin();
            let sp = b.skoop_extension_simple_plugin_node();
            match role {
                RoleCall::PodSend(p) => pl.call_pod_send(s, p, walk),
                RoleCall::PodReceive(p) => pl.call_pod_receive(s, p, walk),
                RoleCall::ToPod(n, p) => sp.call_to_pod(s, n, walk, p),
                RoleCall::ToHost(n, t) => sp.call_to_host(s, n, walk, t),
                RoleCall::ToService(n, v) => sp.call_to_service(s, n, walk, v),
                RoleCall::ToExternal(n) => sp.call_to_external(s, n, walk),
                RoleCall::Serve(n) => sp.call_serve(s, n, walk),
            }
        })
    }

    /// Make a recorded call again, with its recorded arguments; its answer
    /// is in [`PluginInstance::last_answer`].
    pub fn invoke(&mut self, export: &str, args: &Value) -> Result<(), String> {
        match export {
            "metadata.describe" => {
                let _ = self.describe();
            }
            "plugin.setup" => {
                let _ = self.setup();
            }
            "plugin.address-owner" => {
                let (ip,): (wt::IpAddress,) = args_of(export, args)?;
                let _ = self.address_owner_raw(export, ip);
            }
            _ => {
                let (role, walk) = RoleCall::decode(export, args)?;
                let _ = self.hop_raw(export, &role, &walk);
            }
        }
        Ok(())
    }

    /// The state of this instance (replay sets its call log).
    pub fn state(&mut self) -> &mut HostState {
        self.run.store.data_mut()
    }

    /// The answer of the last call, while replaying.
    pub fn last_answer(&mut self) -> Option<Value> {
        self.run.last_answer.take()
    }

    /// The cloud provider lent to this plugin's diagnosis, if any.
    fn provider(&self) -> Option<std::sync::Arc<std::sync::Mutex<ProviderInstance>>> {
        self.run.store.data().infra.clone()
    }

    fn provider_failed(&self, call: &str) -> CallError {
        CallError {
            extension: self.run.name.clone(),
            call: call.into(),
            failure: Failure::Trap("the provider failed earlier".into()),
        }
    }
}

/// A role's call, with its WIT arguments but the walk.
enum RoleCall {
    PodSend(wt::PodInfo),
    PodReceive(wt::PodInfo),
    ToPod(wt::NodeInfo, wt::PodInfo),
    ToHost(wt::NodeInfo, wt::NodeInfo),
    ToService(wt::NodeInfo, wt::ServiceInfo),
    ToExternal(wt::NodeInfo),
    Serve(wt::NodeInfo),
}

impl RoleCall {
    fn of(role: &Role<'_>, node_ip: impl Fn(&str) -> Option<std::net::Ipv4Addr>) -> RoleCall {
        match role {
            Role::PodSend(p) => RoleCall::PodSend(pod_to(p, node_ip(&p.node))),
            Role::PodReceive(p) => RoleCall::PodReceive(pod_to(p, node_ip(&p.node))),
            Role::ToPod(n, p) => RoleCall::ToPod(node_to(n), pod_to(p, node_ip(&p.node))),
            Role::ToHost(n, t) => RoleCall::ToHost(node_to(n), node_to(t)),
            Role::ToService(n, v) => RoleCall::ToService(node_to(n), service_to(v)),
            Role::ToExternal(n) => RoleCall::ToExternal(node_to(n)),
            Role::Serve(n) => RoleCall::Serve(node_to(n)),
        }
    }

    fn export(&self) -> &'static str {
        match self {
            RoleCall::PodSend(_) => "plugin.pod-send",
            RoleCall::PodReceive(_) => "plugin.pod-receive",
            RoleCall::ToPod(..) => "simple-plugin-node.to-pod",
            RoleCall::ToHost(..) => "simple-plugin-node.to-host",
            RoleCall::ToService(..) => "simple-plugin-node.to-service",
            RoleCall::ToExternal(_) => "simple-plugin-node.to-external",
            RoleCall::Serve(_) => "simple-plugin-node.serve",
        }
    }

    /// A recorded role call's arguments.
    fn decode(export: &str, args: &Value) -> Result<(RoleCall, ww::KernelWalk), String> {
        let list: Vec<Value> = args_of(export, args)?;
        let at = |i: usize| list.get(i).cloned().unwrap_or(Value::Null);
        let walk: ww::KernelWalk = args_of(export, &at(1))?;
        let role = match export {
            "plugin.pod-send" => RoleCall::PodSend(args_of(export, &at(0))?),
            "plugin.pod-receive" => RoleCall::PodReceive(args_of(export, &at(0))?),
            "simple-plugin-node.to-pod" => {
                RoleCall::ToPod(args_of(export, &at(0))?, args_of(export, &at(2))?)
            }
            "simple-plugin-node.to-host" => {
                RoleCall::ToHost(args_of(export, &at(0))?, args_of(export, &at(2))?)
            }
            "simple-plugin-node.to-service" => {
                RoleCall::ToService(args_of(export, &at(0))?, args_of(export, &at(2))?)
            }
            "simple-plugin-node.to-external" => RoleCall::ToExternal(args_of(export, &at(0))?),
            "simple-plugin-node.serve" => RoleCall::Serve(args_of(export, &at(0))?),
            other => return Err(format!("a CNI plugin has no export {other}")),
        };
        Ok((role, walk))
    }
}

impl Plugin for PluginInstance {
    fn hop(&mut self, role: Role<'_>, walk: &KernelWalk) -> Result<HopAnswer, CallError> {
        let facts = self.run.store.data().facts.clone();
        let view_ip = |n: &str| {
            facts
                .as_ref()
                .and_then(|f| f.view.nodes.get(n).map(|n| n.ip))
        };
        let call = RoleCall::of(&role, view_ip);
        let label = format!("{} at {}", call.export(), walk.at);
        let wit = walk_to(walk, |dev| {
            let f = facts.as_ref()?;
            let ns = skoop_engine::walk::netns_of(f, &walk.at)?;
            let own = f.netstacks.netns(&ns).ok()?.interface(dev).cloned();
            own.or_else(|| f.netstacks.node(ns.node()).ok()?.interface(dev).cloned())
                .map(|i| interface_to(&i))
        });
        let answer = self.hop_raw(&label, &call, &wit)?;
        match answer {
            ww::HopAnswer::Checks(c) => {
                let n = walk.branches.len();
                if let Some(bad) = c.ends.iter().find(|i| **i as usize >= n) {
                    return Err(self.run.err(
                        &label,
                        malformed(format!("it ends branch {bad}, but the walk has {n}")),
                    ));
                }
                Ok(HopAnswer::Checks(
                    suspicions_from(&c.suspicions),
                    c.ends.iter().map(|i| *i as usize).collect(),
                ))
            }
            ww::HopAnswer::Walked(step) => step_from(&step)
                .map(HopAnswer::Walked)
                .map_err(|e| self.run.err(&label, malformed(e))),
        }
    }

    fn address_owner(&mut self, ip: std::net::Ipv4Addr) -> Result<Option<String>, CallError> {
        self.address_owner_raw(&format!("plugin.address-owner {ip}"), ip_to(ip))
    }

    /// The provider's infra-shim, for the underlay between two nodes or to
    /// the outside.
    fn underlay(
        &mut self,
        src: &NodeFacts,
        oif: &str,
        dst: Option<&NodeFacts>,
        packet: &Packet,
    ) -> Result<Underlay, CallError> {
        let Some(provider) = self.provider() else {
            return Ok(Underlay::default());
        };
        let call = match dst {
            Some(_) => "infra-shim.node-to-node",
            None => "infra-shim.node-to-external",
        };
        let mut p = provider.lock().map_err(|_| self.provider_failed(call))?;
        match dst {
            Some(d) => p.node_to_node(src, oif, d, packet),
            None => p.node_to_external(src, oif, packet),
        }
    }

    /// The provider's infra-shim, for a packet entering from outside.
    fn underlay_from_outside(
        &mut self,
        node: &NodeFacts,
        packet: &Packet,
    ) -> Result<Underlay, CallError> {
        let Some(provider) = self.provider() else {
            return Ok(Underlay::default());
        };
        let mut p = provider
            .lock()
            .map_err(|_| self.provider_failed("infra-shim.external-to-node"))?;
        p.external_to_node(node, packet)
    }
}

/// The wiring a provider chose.
#[derive(Debug, Clone)]
pub struct NetworkPlan {
    pub plugin: String,
    pub proxy_mode: ProxyMode,
    pub infra_shim: bool,
}

/// An instantiated cloud provider.
pub struct ProviderInstance {
    run: Runner<ProviderPre>,
}

impl ProviderInstance {
    pub fn new(
        engine: &Engine,
        pre: &ProviderPre,
        state: HostState,
        limits: Limits,
    ) -> anyhow::Result<ProviderInstance> {
        let run = Runner::start(engine, pre.clone(), state, limits)?;
        Ok(ProviderInstance { run })
    }

    pub fn describe(
        &mut self,
    ) -> Result<pw::exports::skoop::extension::metadata::ExtensionInfo, CallError> {
        self.run.call(
            "metadata.describe",
            "metadata.describe",
            || json!([]),
            |b, s| b.skoop_extension_metadata().call_describe(s).map(Ok),
        )
    }

    fn create_network_raw(
        &mut self,
        settings: &super::bindings::cluster::Settings,
    ) -> Result<pw::exports::skoop::extension::provider::NetworkPlan, CallError> {
        self.run.call(
            "provider.create-network",
            "provider.create-network",
            || json!([settings]),
            |b, s| {
                b.skoop_extension_provider()
                    .call_create_network(s, settings)
            },
        )
    }

    pub fn create_network(
        &mut self,
        settings: super::bindings::cluster::Settings,
    ) -> Result<NetworkPlan, CallError> {
        let plan = self.create_network_raw(&settings)?;
        Ok(NetworkPlan {
            plugin: plan.plugin,
            proxy_mode: match plan.proxy_mode {
                super::bindings::cluster::ProxyMode::Iptables => ProxyMode::Iptables,
                super::bindings::cluster::ProxyMode::Ipvs => ProxyMode::Ipvs,
                super::bindings::cluster::ProxyMode::Nftables => ProxyMode::Nftables,
                super::bindings::cluster::ProxyMode::None => ProxyMode::None,
            },
            infra_shim: plan.infra_shim,
        })
    }

    fn node_to_node_raw(
        &mut self,
        s: &wt::NodeInfo,
        oif: &str,
        d: &wt::NodeInfo,
        p: wt::Packet,
    ) -> Result<pw::exports::skoop::extension::infra_shim::Underlay, CallError> {
        self.run.call(
            "infra-shim.node-to-node",
            "infra-shim.node-to-node",
            || json!([s, oif, d, &p]),
            |b, st| {
                b.skoop_extension_infra_shim()
                    .call_node_to_node(st, s, oif, d, &p)
            },
        )
    }

    pub fn node_to_node(
        &mut self,
        src: &NodeFacts,
        oif: &str,
        dst: &NodeFacts,
        packet: &Packet,
    ) -> Result<Underlay, CallError> {
        self.node_to_node_raw(&node_to(src), oif, &node_to(dst), packet_to(packet))
            .map(underlay_from)
    }

    fn node_to_external_raw(
        &mut self,
        s: &wt::NodeInfo,
        oif: &str,
        p: wt::Packet,
    ) -> Result<pw::exports::skoop::extension::infra_shim::Underlay, CallError> {
        self.run.call(
            "infra-shim.node-to-external",
            "infra-shim.node-to-external",
            || json!([s, oif, &p]),
            |b, st| {
                b.skoop_extension_infra_shim()
                    .call_node_to_external(st, s, oif, &p)
            },
        )
    }

    pub fn node_to_external(
        &mut self,
        src: &NodeFacts,
        oif: &str,
        packet: &Packet,
    ) -> Result<Underlay, CallError> {
        self.node_to_external_raw(&node_to(src), oif, packet_to(packet))
            .map(underlay_from)
    }

    fn external_to_node_raw(
        &mut self,
        d: &wt::NodeInfo,
        p: wt::Packet,
    ) -> Result<pw::exports::skoop::extension::infra_shim::Underlay, CallError> {
        self.run.call(
            "infra-shim.external-to-node",
            "infra-shim.external-to-node",
            || json!([d, &p]),
            |b, st| {
                b.skoop_extension_infra_shim()
                    .call_external_to_node(st, d, &p)
            },
        )
    }

    pub fn external_to_node(
        &mut self,
        dst: &NodeFacts,
        packet: &Packet,
    ) -> Result<Underlay, CallError> {
        self.external_to_node_raw(&node_to(dst), packet_to(packet))
            .map(underlay_from)
    }

    pub fn prefetch(&mut self) -> Result<Vec<Finding>, CallError> {
        self.run
            .call(
                "infra-shim.prefetch",
                "infra-shim.prefetch",
                || json!([]),
                |b, st| b.skoop_extension_infra_shim().call_prefetch(st),
            )
            .map(|v| suspicions_from(&v))
    }

    /// Make a recorded call again (see [`PluginInstance::invoke`]).
    pub fn invoke(&mut self, export: &str, args: &Value) -> Result<(), String> {
        match export {
            "metadata.describe" => {
                let _ = self.describe();
            }
            "provider.create-network" => {
                let (settings,): (super::bindings::cluster::Settings,) = args_of(export, args)?;
                let _ = self.create_network_raw(&settings);
            }
            "infra-shim.node-to-node" => {
                let (s, oif, d, p): (wt::NodeInfo, String, wt::NodeInfo, wt::Packet) =
                    args_of(export, args)?;
                let _ = self.node_to_node_raw(&s, &oif, &d, p);
            }
            "infra-shim.node-to-external" => {
                let (s, oif, p): (wt::NodeInfo, String, wt::Packet) = args_of(export, args)?;
                let _ = self.node_to_external_raw(&s, &oif, p);
            }
            "infra-shim.external-to-node" => {
                let (d, p): (wt::NodeInfo, wt::Packet) = args_of(export, args)?;
                let _ = self.external_to_node_raw(&d, p);
            }
            "infra-shim.prefetch" => {
                let _ = self.prefetch();
            }
            other => return Err(format!("a cloud provider has no export {other}")),
        }
        Ok(())
    }

    /// The state of this instance (replay sets its call log).
    pub fn state(&mut self) -> &mut HostState {
        self.run.store.data_mut()
    }

    /// The answer of the last call, while replaying.
    pub fn last_answer(&mut self) -> Option<Value> {
        self.run.last_answer.take()
    }

    /// The provider's resolved config values.
    pub fn config(&mut self) -> &std::collections::BTreeMap<String, String> {
        &self.run.store.data().config
    }

    /// The provider's outbound HTTP: what it may reach and where answers come from.
    pub fn egress(&mut self) -> &mut super::egress::Egress {
        &mut self.run.store.data_mut().egress
    }
}

fn underlay_from(u: pw::exports::skoop::extension::infra_shim::Underlay) -> Underlay {
    Underlay {
        packet: u.entry.as_ref().and_then(|p| packet_from(p).ok()),
        delivered_to: u.delivered_to.as_deref().map(clean),
        hops: u
            .hops
            .iter()
            .map(|h| clean(&format!("{} {}: {}", h.kind, h.id, h.detail)))
            .collect(),
        findings: suspicions_from(&u.suspicions),
    }
}
