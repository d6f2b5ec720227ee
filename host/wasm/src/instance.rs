//! Running extension instances: every call has a deadline, and a trap, a
//! timeout, a memory overrun or a malformed answer becomes a [`CallError`]
//! that names the extension and the call.

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, Trap};

use super::bindings::{cni, provider as pw, types as wt};
use super::convert::*;
use super::runtime::Limits;
use super::state::HostState;
use skoop_engine::cluster::{NodeFacts, PodFacts};
use skoop_engine::detect::ProxyMode;
use skoop_engine::packet::Packet;
use skoop_engine::path::{Finding, HopId, Step, Tx};
pub use skoop_engine::plugin::{CallError, Failure, NodeTarget, Plugin, RefusedKind};

/// Shared plumbing: the store, the deadline and error mapping.
struct Runner {
    store: Store<HostState>,
    name: String,
    limits: Limits,
}

impl Runner {
    fn new(engine: &Engine, mut state: HostState, limits: Limits) -> Runner {
        state.limiter.max = limits.memory_bytes;
        let name = state.name.clone();
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        Runner {
            store,
            name,
            limits,
        }
    }

    /// A store with the instance `instantiate` builds in it; start-up code
    /// runs under the same deadline and limits as any call.
    fn start<B>(
        engine: &Engine,
        state: HostState,
        limits: Limits,
        instantiate: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<B>,
    ) -> Result<(Runner, B), CallError> {
        let mut run = Runner::new(engine, state, limits);
        run.store.set_epoch_deadline(limits.ticks());
        match instantiate(&mut run.store) {
            Ok(b) => Ok((run, b)),
            Err(e) => Err(run.classify("instantiate", e)),
        }
    }

    fn err(&self, call: &str, failure: Failure) -> CallError {
        CallError {
            extension: self.name.clone(),
            call: call.to_string(),
            failure,
        }
    }

    /// Map a wasmtime error to the failure it stands for.
    fn classify(&self, call: &str, e: wasmtime::Error) -> CallError {
        let failure = if self.store.data().limiter.exceeded {
            Failure::Memory(self.limits.memory_bytes)
        } else if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            Failure::Timeout(self.limits.call_timeout)
        } else {
            let mut msg = match e.downcast_ref::<Trap>() {
                Some(t) => t.to_string(),
                None => format!("{e:#}"),
            };
            if let Some(line) = self.store.data().last_stderr_line() {
                msg = format!("{msg} ({line})");
            }
            Failure::Trap(clean(&msg))
        };
        self.err(call, failure)
    }

    fn call<R>(
        &mut self,
        call: &str,
        f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<Result<R, wt::Error>>,
    ) -> Result<R, CallError> {
        self.store.set_epoch_deadline(self.limits.ticks());
        // Outbound HTTP waits count against the same deadline.
        self.store.data_mut().egress.deadline =
            Some(std::time::Instant::now() + self.limits.call_timeout);
        match f(&mut self.store) {
            Err(e) => Err(self.classify(call, e)),
            Ok(Err(e)) => {
                let kind = match e {
                    wt::Error::Unavailable(_) => RefusedKind::Unavailable,
                    wt::Error::Invalid(_) => RefusedKind::Invalid,
                    wt::Error::Internal(_) => RefusedKind::Internal,
                };
                Err(self.err(call, Failure::Refused(kind, error_text(&e))))
            }
            Ok(Ok(v)) => Ok(v),
        }
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
    run: Runner,
    bindings: cni::CniPlugin,
}

fn malformed(e: String) -> Failure {
    Failure::Malformed(e)
}

impl PluginInstance {
    pub fn new(
        engine: &Engine,
        linker: &Linker<HostState>,
        component: &Component,
        state: HostState,
        limits: Limits,
    ) -> anyhow::Result<PluginInstance> {
        let (run, bindings) = Runner::start(engine, state, limits, |s| {
            cni::CniPlugin::instantiate(s, component, linker)
        })?;
        Ok(PluginInstance { run, bindings })
    }

    pub fn describe(
        &mut self,
    ) -> Result<super::bindings::cni::exports::skoop::extension::metadata::ExtensionInfo, CallError>
    {
        let b = &self.bindings;
        self.run.call("metadata.describe", |s| {
            b.skoop_extension_metadata().call_describe(s).map(Ok)
        })
    }

    pub fn setup(&mut self) -> Result<Vec<Finding>, CallError> {
        let b = &self.bindings;
        self.run
            .call("plugin.setup", |s| b.skoop_extension_plugin().call_setup(s))
            .map(|v| suspicions_from(&v))
    }

    fn step(&mut self, call: &str, r: Result<wt::NodeStep, CallError>) -> Result<Step, CallError> {
        let raw = r?;
        step_from(&raw).map_err(|e| self.run.err(call, malformed(e)))
    }
}

impl Plugin for PluginInstance {
    fn pod_send(
        &mut self,
        pod: &PodFacts,
        node_ip: Option<std::net::Ipv4Addr>,
        packet: &Packet,
    ) -> Result<Step, CallError> {
        let call = format!("plugin.pod-send at pod {}", pod.id());
        let (b, p, pk) = (&self.bindings, pod_to(pod, node_ip), packet_to(packet));
        let r = self.run.call(&call, |s| {
            b.skoop_extension_plugin().call_pod_send(s, &p, pk)
        });
        self.step(&call, r)
    }

    fn pod_receive(
        &mut self,
        pod: &PodFacts,
        node_ip: Option<std::net::Ipv4Addr>,
        from: &HopId,
        tx: &Tx,
    ) -> Result<Step, CallError> {
        let call = format!("plugin.pod-receive at pod {}", pod.id());
        let (b, p, l) = (&self.bindings, pod_to(pod, node_ip), link_to(from, tx));
        let r = self.run.call(&call, |s| {
            b.skoop_extension_plugin().call_pod_receive(s, &p, &l)
        });
        self.step(&call, r)
    }

    fn address_owner(&mut self, ip: std::net::Ipv4Addr) -> Result<Option<String>, CallError> {
        let b = &self.bindings;
        let call = format!("plugin.address-owner {ip}");
        self.run.call(&call, |s| {
            b.skoop_extension_plugin()
                .call_address_owner(s, ip_to(ip))
                .map(Ok)
        })
    }

    /// The provider's infra-shim, asked by the host for a packet entering
    /// from outside (no plugin hop hands it over).
    fn underlay_from_outside(
        &mut self,
        node: &NodeFacts,
        packet: &Packet,
    ) -> Result<skoop_engine::plugin::Entry, CallError> {
        let state = self.run.store.data();
        let (Some(provider), Some(facts)) = (state.infra.clone(), state.facts.clone()) else {
            return Ok(skoop_engine::plugin::Entry::default());
        };
        let mut p = provider.lock().map_err(|_| CallError {
            extension: self.run.name.clone(),
            call: "infra-shim.external-to-node".into(),
            failure: Failure::Trap("the provider failed earlier".into()),
        })?;
        let u = p.external_to_node(node, packet)?;
        super::imports::log_underlay(
            &facts,
            "the outside",
            "",
            &format!("node {}", node.name),
            packet,
            &u,
        );
        Ok(skoop_engine::plugin::Entry {
            findings: u.findings,
            packet: u.entry,
        })
    }

    /// One of the five node hops, already dispatched.
    fn node_hop(
        &mut self,
        node: &NodeFacts,
        upstream: Option<(&HopId, &Tx)>,
        packet: &Packet,
        target: NodeTarget<'_>,
    ) -> Result<Step, CallError> {
        let n = node_to(node);
        let up = upstream.map(|(h, t)| link_to(h, t));
        let pk = packet_to(packet);
        let b = &self.bindings;
        let sp = b.skoop_extension_simple_plugin_node();
        let (name, r) = match target {
            NodeTarget::Pod(pod, ip) => {
                let call = format!("simple-plugin-node.to-pod at node {}", node.name);
                let p = pod_to(pod, ip);
                let r = self
                    .run
                    .call(&call, |s| sp.call_to_pod(s, &n, up.as_ref(), pk, &p));
                (call, r)
            }
            NodeTarget::Host(t) => {
                let call = format!("simple-plugin-node.to-host at node {}", node.name);
                let t = node_to(t);
                let r = self
                    .run
                    .call(&call, |s| sp.call_to_host(s, &n, up.as_ref(), pk, &t));
                (call, r)
            }
            NodeTarget::Service(svc) => {
                let call = format!("simple-plugin-node.to-service at node {}", node.name);
                let v = service_to(svc);
                let r = self
                    .run
                    .call(&call, |s| sp.call_to_service(s, &n, up.as_ref(), pk, &v));
                (call, r)
            }
            NodeTarget::External => {
                let call = format!("simple-plugin-node.to-external at node {}", node.name);
                let r = self
                    .run
                    .call(&call, |s| sp.call_to_external(s, &n, up.as_ref(), pk));
                (call, r)
            }
            NodeTarget::Serve => {
                let call = format!("simple-plugin-node.serve at node {}", node.name);
                let r = self
                    .run
                    .call(&call, |s| sp.call_serve(s, &n, up.as_ref(), pk));
                (call, r)
            }
        };
        self.step(&name, r)
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
    run: Runner,
    bindings: pw::CloudProvider,
}

impl ProviderInstance {
    pub fn new(
        engine: &Engine,
        linker: &Linker<HostState>,
        component: &Component,
        state: HostState,
        limits: Limits,
    ) -> anyhow::Result<ProviderInstance> {
        let (run, bindings) = Runner::start(engine, state, limits, |s| {
            pw::CloudProvider::instantiate(s, component, linker)
        })?;
        Ok(ProviderInstance { run, bindings })
    }

    pub fn describe(
        &mut self,
    ) -> Result<pw::exports::skoop::extension::metadata::ExtensionInfo, CallError> {
        let b = &self.bindings;
        self.run.call("metadata.describe", |s| {
            b.skoop_extension_metadata().call_describe(s).map(Ok)
        })
    }

    pub fn create_network(
        &mut self,
        settings: super::bindings::cluster::Settings,
    ) -> Result<NetworkPlan, CallError> {
        let b = &self.bindings;
        let plan = self.run.call("provider.create-network", |s| {
            b.skoop_extension_provider()
                .call_create_network(s, &settings)
        })?;
        Ok(NetworkPlan {
            plugin: plan.plugin,
            proxy_mode: match plan.service_processor {
                super::bindings::cluster::ProxyMode::Iptables => ProxyMode::Iptables,
                super::bindings::cluster::ProxyMode::Ipvs => ProxyMode::Ipvs,
                super::bindings::cluster::ProxyMode::None => ProxyMode::None,
            },
            infra_shim: plan.infra_shim,
        })
    }

    pub fn node_to_node(
        &mut self,
        src: &NodeFacts,
        oif: &str,
        dst: &NodeFacts,
        packet: &Packet,
    ) -> Result<Underlay, CallError> {
        let b = &self.bindings;
        let (s, d, p) = (node_to(src), node_to(dst), packet_to(packet));
        self.run
            .call("infra-shim.node-to-node", |st| {
                b.skoop_extension_infra_shim()
                    .call_node_to_node(st, &s, oif, &d, p)
            })
            .map(underlay_from)
    }

    pub fn node_to_external(
        &mut self,
        src: &NodeFacts,
        oif: &str,
        packet: &Packet,
    ) -> Result<Underlay, CallError> {
        let b = &self.bindings;
        let (s, p) = (node_to(src), packet_to(packet));
        self.run
            .call("infra-shim.node-to-external", |st| {
                b.skoop_extension_infra_shim()
                    .call_node_to_external(st, &s, oif, p)
            })
            .map(underlay_from)
    }

    pub fn external_to_node(
        &mut self,
        dst: &NodeFacts,
        packet: &Packet,
    ) -> Result<Underlay, CallError> {
        let b = &self.bindings;
        let (d, p) = (node_to(dst), packet_to(packet));
        self.run
            .call("infra-shim.external-to-node", |st| {
                b.skoop_extension_infra_shim()
                    .call_external_to_node(st, &d, p)
            })
            .map(underlay_from)
    }

    pub fn prefetch(&mut self) -> Result<Vec<Finding>, CallError> {
        let b = &self.bindings;
        self.run
            .call("infra-shim.prefetch", |st| {
                b.skoop_extension_infra_shim().call_prefetch(st)
            })
            .map(|v| suspicions_from(&v))
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

/// What a provider says the underlay does: the cloud devices passed (as
/// `kind id: detail`) and the findings.
#[derive(Debug, Clone, Default)]
pub struct Underlay {
    pub hops: Vec<String>,
    pub findings: Vec<Finding>,
    /// The packet as the cloud hands it to the node (external-to-node).
    pub entry: Option<Packet>,
}

fn underlay_from(u: pw::exports::skoop::extension::infra_shim::Underlay) -> Underlay {
    Underlay {
        entry: u.entry.as_ref().and_then(|p| packet_from(p).ok()),
        hops: u
            .hops
            .iter()
            .map(|h| clean(&format!("{} {}: {}", h.kind, h.id, h.detail)))
            .collect(),
        findings: suspicions_from(&u.suspicions),
    }
}
