//! A cloud provider instance: the network it wires and its underlay.

use serde_json::{Value, json};
use wasmtime::Engine;

use super::runner::{ProviderPre, Runner, args_of};
use crate::bindings::{provider as pw, types as wt};
use crate::convert::*;
use crate::hostcalls::CallLog;
use crate::sandbox::egress::Egress;
use crate::sandbox::{Confined, Limits, Secrets, clean};
use crate::state::HostState;
use skoop_engine::cluster::NodeFacts;
use skoop_engine::plugin::{CallError, Underlay};
use skoop_engine::settings::ProxyMode;
use skoop_engine::suspicion::Suspicion;
use skoop_netstack::packet::Packet;

/// The wiring a provider chose.
#[derive(Debug, Clone)]
pub struct NetworkPlan {
    pub plugin: String,
    pub proxy_mode: ProxyMode,
    pub checks_underlay: bool,
}

/// An instantiated cloud provider.
pub struct ProviderInstance {
    run: Runner<ProviderPre>,
}

impl ProviderInstance {
    pub(crate) fn new(
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
        settings: &crate::bindings::cluster::Settings,
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
        settings: crate::bindings::cluster::Settings,
    ) -> Result<NetworkPlan, CallError> {
        let plan = self.create_network_raw(&settings)?;
        Ok(NetworkPlan {
            plugin: plan.plugin,
            proxy_mode: match plan.proxy_mode {
                crate::bindings::cluster::ProxyMode::Iptables => ProxyMode::Iptables,
                crate::bindings::cluster::ProxyMode::Ipvs => ProxyMode::Ipvs,
                crate::bindings::cluster::ProxyMode::Nftables => ProxyMode::Nftables,
                crate::bindings::cluster::ProxyMode::None => ProxyMode::None,
            },
            checks_underlay: plan.infra_shim,
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
            .map(|u| underlay_from(u, &self.run.store.data().secrets))
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
            .map(|u| underlay_from(u, &self.run.store.data().secrets))
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
            .map(|u| underlay_from(u, &self.run.store.data().secrets))
    }

    pub fn prefetch(&mut self) -> Result<Vec<Suspicion>, CallError> {
        self.run
            .call(
                "infra-shim.prefetch",
                "infra-shim.prefetch",
                || json!([]),
                |b, st| b.skoop_extension_infra_shim().call_prefetch(st),
            )
            .map(|v| suspicions_from(&v, &self.run.store.data().secrets))
    }

    /// Make a recorded call again (see [`PluginInstance::invoke`]).
    pub fn invoke(&mut self, export: &str, args: &Value) -> Result<(), String> {
        match export {
            "metadata.describe" => {
                let _ = self.describe();
            }
            "provider.create-network" => {
                let (settings,): (crate::bindings::cluster::Settings,) = args_of(export, args)?;
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

    /// Its host calls, recorded or replayed (replay sets one per call).
    pub fn calls(&mut self) -> &mut Option<CallLog> {
        &mut self.run.store.data_mut().calls
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
    pub fn egress(&mut self) -> &mut Egress {
        self.run.store.data_mut().sandbox().egress()
    }
}

fn underlay_from(
    u: pw::exports::skoop::extension::infra_shim::Underlay,
    secrets: &Secrets,
) -> Underlay {
    Underlay {
        packet: u.entry.as_ref().and_then(|p| packet_from(p).ok()),
        delivered_to: u.delivered_to.as_deref().map(|m| clean(secrets, m)),
        hops: u
            .hops
            .iter()
            .map(|h| clean(secrets, &format!("{} {}: {}", h.kind, h.id, h.detail)))
            .collect(),
        suspicions: suspicions_from(&u.suspicions, secrets),
    }
}
