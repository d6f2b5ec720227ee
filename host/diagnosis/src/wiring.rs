//! One pass of a diagnosis: the cloud provider instantiated and connected
//! to its cloud, the network plugin it wires, each given what the host
//! lends it (facts, config, secrets, recording), the source located, and
//! the engine's walk.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use skoop_engine::diagnose::{self, Diagnosis};
use skoop_engine::facts::Facts;
use skoop_engine::flow::Flow;
use skoop_engine::plugin::{CallError, Failure, RefusedKind};
use skoop_engine::policy::PolicyCheck;
use skoop_engine::report::Report;
use skoop_error::bad_input;
use skoop_wasm::sandbox::Limits;
use skoop_wasm::settings_to;
use skoop_wasm::{Extension, Registry};

use crate::cloud;
use crate::lending::{ExtInputs, state_for};
use crate::recording::lock;

/// An extension's refusal at set-up is about the user's input (a missing
/// flag, an unsupported mode); anything else is an internal failure.
fn setup_error(e: CallError) -> anyhow::Error {
    match e.failure {
        Failure::Refused(RefusedKind::Invalid | RefusedKind::Unavailable, _) => {
            bad_input(e.to_string())
        }
        _ => anyhow::Error::new(e),
    }
}

fn names(map: &BTreeMap<String, Extension>) -> String {
    map.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// One pass of the diagnosis over `facts`: the report, and the engine's
/// error if it stopped early.
pub(crate) fn diagnose_once(
    registry: &Registry,
    facts: &Arc<Facts>,
    flow: Flow,
    inputs: &ExtInputs,
    limits: Limits,
    enforces_network_policy: Option<bool>,
    source_name: &str,
) -> Result<(Report, Option<CallError>)> {
    // A recording holds the last pass only (earlier ones ran on fewer nodes).
    if let Some(record) = &inputs.record {
        lock(record).clear();
    }
    let provider_ext = registry
        .providers
        .get(&facts.settings.cloud_provider)
        .ok_or_else(|| {
            bad_input(format!(
                "no cloud provider named {:?} is loaded (loaded: {}); load it with --extension",
                facts.settings.cloud_provider,
                names(&registry.providers)
            ))
        })?;
    let mut provider =
        registry.provider(provider_ext, state_for(provider_ext, facts, inputs), limits)?;
    cloud::connect(&mut provider, provider_ext, inputs)?;
    if let Some(record) = &inputs.record {
        // The provider's HTTP exchanges go into the recording too.
        use skoop_wasm::sandbox::egress::{Mode, Recording};
        let http = match &provider.egress().mode {
            Mode::Live(None) => {
                let rec = Arc::new(Mutex::new(Recording {
                    provider: provider_ext.info.name.clone(),
                    exchanges: Vec::new(),
                }));
                provider.egress().mode = Mode::Live(Some(rec.clone()));
                Some(rec)
            }
            Mode::Live(Some(rec)) => Some(rec.clone()),
            Mode::Replay(rec) => Some(Arc::new(Mutex::new((**rec).clone()))),
            Mode::Off => None,
        };
        if let Some(last) = lock(record)
            .iter_mut()
            .rev()
            .find(|r| lock(&r.calls).name == provider_ext.info.name)
        {
            last.http = http;
        }
    }
    let plan = provider
        .create_network(settings_to(&facts.settings))
        .map_err(setup_error)?;
    let plugin_ext = registry.plugins.get(&plan.plugin).ok_or_else(|| {
        bad_input(format!(
            "cloud provider {} wires network plugin {:?}, which is not loaded (loaded: {}); pass --network-plugin or load it with --extension",
            provider_ext.info.name,
            plan.plugin,
            names(&registry.plugins)
        ))
    })?;
    let lending = state_for(plugin_ext, facts, inputs);
    let underlay = plan.checks_underlay.then_some(provider);
    let mut plugin = registry.plugin(plugin_ext, lending, underlay, limits)?;
    let setup = plugin.setup().map_err(setup_error)?;
    let source = match diagnose::source_net_node(facts, &mut plugin, flow.src)? {
        Some(hop) => hop,
        None => skoop_engine::entry::outside_source(facts, &flow).map_err(|why| {
            bad_input(format!(
                "source {} is neither a pod nor a node of the cluster in {source_name}; {why}",
                flow.src
            ))
        })?,
    };
    // A plugin may say in setup what it enforces in this cluster (its
    // version decides); else its metadata says.
    let enforces = setup
        .enforces
        .clone()
        .unwrap_or_else(|| plugin_ext.info.enforces.clone());
    let policy = PolicyCheck::new(
        &facts.view,
        &plugin_ext.info.name,
        &enforces,
        enforces_network_policy,
    )?;
    let mut diagnosis = Diagnosis::new(facts, &mut plugin).with_policy(Some(&policy));
    diagnosis.global(setup.suspicions);
    let trace = diagnosis.run(source, flow);
    let failed = trace.error.clone();
    let mut report = Report::new(
        &flow,
        facts.settings.clone(),
        source_name.to_string(),
        trace,
    );
    crate::skipped::judge(&mut report, &facts.view, &flow);
    Ok((report, failed))
}
