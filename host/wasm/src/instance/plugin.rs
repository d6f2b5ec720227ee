//! A CNI plugin instance: the engine's [`Plugin`] over a component.

use serde_json::{Value, json};
use wasmtime::{Engine, Store};

use super::provider::ProviderInstance;
use super::runner::{CniPre, Runner, args_of};
use crate::bindings::{cni, types as wt, walk as ww};
use crate::convert::*;
use crate::hostcalls::CallLog;
use crate::sandbox::{Limits, clean};
use crate::state::HostState;
use skoop_engine::cluster::NodeFacts;
use skoop_engine::kernel_walk::KernelWalk;
use skoop_engine::plugin::{Answer, CallError, Failure, HopAnswer, Plugin, Role, Underlay};
use skoop_engine::suspicion::Suspicion;
use skoop_netstack::packet::Packet;

/// An instantiated CNI plugin.
pub struct PluginInstance {
    run: Runner<CniPre>,
    /// The cloud provider whose underlay export answers the engine's underlay
    /// questions (boxed: a plugin instance is moved around whole).
    underlay: Option<Box<ProviderInstance>>,
}

fn malformed(e: String) -> Failure {
    Failure::Malformed(e)
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
    pub suspicions: Vec<Suspicion>,
    /// The policy kinds it enforces in this cluster, when they depend on
    /// what it found (else its metadata says).
    pub enforces: Option<Vec<String>>,
}

impl PluginInstance {
    pub(crate) fn new(
        engine: &Engine,
        pre: &CniPre,
        state: HostState,
        underlay: Option<ProviderInstance>,
        limits: Limits,
    ) -> anyhow::Result<PluginInstance> {
        let mut run = Runner::start(engine, pre.clone(), state, limits)?;
        run.reinit = Some(setup_call);
        Ok(PluginInstance {
            run,
            underlay: underlay.map(Box::new),
        })
    }

    pub fn describe(
        &mut self,
    ) -> Result<crate::bindings::cni::exports::skoop::extension::metadata::ExtensionInfo, CallError>
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
            .map(|v| {
                let secrets = &self.run.store.data().secrets;
                Setup {
                    suspicions: suspicions_from(&v.suspicions, secrets),
                    enforces: v
                        .enforces
                        .map(|list| list.iter().map(|k| clean(secrets, k)).collect()),
                }
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

    /// Its host calls, recorded or replayed (replay sets one per call).
    pub fn calls(&mut self) -> &mut Option<CallLog> {
        &mut self.run.store.data_mut().calls
    }

    /// Imports answered so far.
    pub fn import_calls(&self) -> u64 {
        self.run.store.data().import_calls
    }

    /// The answer of the last call, while replaying.
    pub fn last_answer(&mut self) -> Option<Value> {
        self.run.last_answer.take()
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
    fn hop(&mut self, role: Role<'_>, walk: &KernelWalk) -> Result<Answer, CallError> {
        let facts = self.run.store.data().lent_facts().cloned();
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
        let state = self.run.store.data_mut();
        let decisions = std::mem::take(&mut state.decisions);
        let secrets = &state.secrets;
        let hop = match answer {
            ww::HopAnswer::Checks(c) => {
                let n = walk.branches.len();
                if let Some(bad) = c.ends.iter().find(|i| **i as usize >= n) {
                    return Err(self.run.err(
                        &label,
                        malformed(format!("it ends branch {bad}, but the walk has {n}")),
                    ));
                }
                HopAnswer::Checks(
                    suspicions_from(&c.suspicions, secrets),
                    c.ends.iter().map(|i| *i as usize).collect(),
                )
            }
            ww::HopAnswer::Walked(step) => match step_from(&step, secrets) {
                Ok(step) => HopAnswer::Walked(step),
                // The reason may quote the extension's own words.
                Err(e) => {
                    let e = clean(secrets, &e);
                    return Err(self.run.err(&label, malformed(e)));
                }
            },
        };
        Ok(Answer { hop, decisions })
    }

    fn address_owner(&mut self, ip: std::net::Ipv4Addr) -> Result<Option<String>, CallError> {
        self.address_owner_raw(&format!("plugin.address-owner {ip}"), ip_to(ip))
    }

    /// The provider's underlay export, for the underlay between two nodes or to
    /// the outside.
    fn underlay(
        &mut self,
        src: &NodeFacts,
        oif: &str,
        dst: Option<&NodeFacts>,
        packet: &Packet,
    ) -> Result<Underlay, CallError> {
        let Some(p) = &mut self.underlay else {
            return Ok(Underlay::default());
        };
        match dst {
            Some(d) => p.node_to_node(src, oif, d, packet),
            None => p.node_to_external(src, oif, packet),
        }
    }

    /// The provider's underlay export, for a packet entering from outside.
    fn underlay_from_outside(
        &mut self,
        node: &NodeFacts,
        packet: &Packet,
    ) -> Result<Underlay, CallError> {
        let Some(p) = &mut self.underlay else {
            return Ok(Underlay::default());
        };
        p.external_to_node(node, packet)
    }
}
