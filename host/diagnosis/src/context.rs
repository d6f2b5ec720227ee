//! A diagnosis context: the facts of one cluster read once, detection done,
//! and the loaded extensions, diagnosing one flow after another.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use skoop_engine::detect;
use skoop_engine::facts::Facts;
use skoop_engine::flow::Flow;
use skoop_engine::plugin::CallError;
use skoop_engine::report::Report;
use skoop_engine::settings::Settings;
use skoop_live::Session;
use skoop_wasm::Registry;

use crate::input::{self, Preload, check_loaded};
use crate::lending::ExtInputs;
use crate::names::{self, FlowSpec, Resolved};
use crate::recording::{self, Recorder};
use crate::request::Request;
use crate::wiring;

/// What a diagnosis of one flow gives: the report, and the extension
/// failure that ended it early (the report then says "incomplete").
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub failed: Option<CallError>,
}

/// The facts of one cluster and the extensions that diagnose flows on them.
pub struct Context<'r> {
    registry: &'r Registry,
    request: Request,
    source: String,
    facts: Arc<Facts>,
    warnings: Vec<String>,
    notes: Vec<String>,
    inputs: ExtInputs,
    /// Dropped last: the collector pods of a live cluster go with it.
    live: Option<Session>,
}

impl<'r> Context<'r> {
    /// Read the facts `request` names and detect the cluster's settings.
    /// `first` is the flow diagnosed first (a [`Flow`], or a [`FlowSpec`]
    /// naming its endpoints): the dumps of the nodes it reaches are read in
    /// parallel now, others as diagnoses reach them; a name that resolves
    /// to nothing is an error now. `preload` is the same bundle already
    /// being read.
    pub fn open(
        registry: &'r Registry,
        request: Request,
        first: impl Into<FlowSpec>,
        preload: Option<Preload>,
    ) -> Result<Context<'r>> {
        let loaded = input::load(&request, registry, &first.into(), preload)?;
        let inputs = ExtInputs {
            values: request.extension_values.clone(),
            cloud: request.cloud_recordings(),
            record: request.record_host_calls.then(Recorder::default),
            verbose: request.verbose,
            log: request.log,
        };
        Ok(Context {
            registry,
            source: loaded.source,
            facts: Arc::new(loaded.facts),
            warnings: loaded.warnings,
            notes: loaded.notes,
            inputs,
            live: loaded.live,
            request,
        })
    }

    /// Where the facts came from, for messages.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The detected (or overridden) settings.
    pub fn settings(&self) -> &Settings {
        &self.facts.settings
    }

    /// The facts, as read so far.
    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    /// Whether the facts come from a live cluster.
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// The live cluster's session (its collector pods), if live.
    pub(crate) fn session(&self) -> Option<&Session> {
        self.live.as_ref()
    }

    /// What reading the facts and detection found questionable.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The objects that could not be read and were left out, one line
    /// each (file, JSON path, problem, object): worth saying always.
    pub fn skipped(&self) -> Vec<String> {
        self.facts
            .view
            .skipped()
            .iter()
            .map(|s| s.message())
            .collect()
    }

    /// How detection decided.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The addresses, port and protocol `spec` names, with its endpoints'
    /// names.
    pub fn resolve(&self, spec: &FlowSpec) -> Result<Resolved> {
        names::resolve(&self.facts.view, spec)
    }

    /// Diagnose the flow `spec` names; the report carries the endpoints'
    /// names beside their addresses.
    pub fn diagnose_named(&mut self, spec: &FlowSpec) -> Result<(Resolved, Outcome)> {
        let resolved = self.resolve(spec)?;
        let mut outcome = self.diagnose(resolved.flow)?;
        outcome.report.src_name = resolved.src.clone();
        outcome.report.dst_name = resolved.dst.clone();
        Ok((resolved, outcome))
    }

    /// Diagnose `flow`, and again while the diagnosis reaches nodes whose
    /// dumps were not read (or collected) before it started: the last pass
    /// then runs with every node it touches loaded and its host interface
    /// known. The context keeps the nodes loaded on the way for the next
    /// flow.
    pub fn diagnose(&mut self, flow: Flow) -> Result<Outcome> {
        let log = self.request.log;
        let verbose = self.request.verbose;
        loop {
            let before = self.facts.netstacks.loaded_nodes();
            let (report, failed) = wiring::diagnose_once(
                self.registry,
                &self.facts,
                flow,
                &self.inputs,
                self.request.limits,
                self.request.enforces_network_policy,
                &self.source,
            )?;
            if let Some(e) = self.live.as_ref().and_then(Session::failure) {
                return Err(e);
            }
            check_loaded(&self.facts.netstacks)?;
            let after = self.facts.netstacks.loaded_nodes();
            if after == before {
                if let Some(session) = &self.live
                    && verbose
                {
                    for n in &after {
                        let iface = self
                            .facts
                            .view
                            .nodes
                            .get(n)
                            .and_then(|n| n.host_interface.clone());
                        log(&format!(
                            "node {n} host interface {}",
                            iface.as_deref().unwrap_or("unknown")
                        ));
                    }
                    log(&format!("{} API requests", session.requests()));
                }
                return Ok(Outcome { report, failed });
            }
            if verbose {
                let new: Vec<&str> = after
                    .iter()
                    .filter(|n| !before.contains(n))
                    .map(String::as_str)
                    .collect();
                log(&format!(
                    "the diagnosis reached nodes not loaded before it started ({}); diagnosing again with them",
                    new.join(", ")
                ));
            }
            let Some(owned) = Arc::get_mut(&mut self.facts) else {
                return Err(anyhow::anyhow!(
                    "the facts of the diagnosis are still shared"
                ));
            };
            let netstacks = owned.netstacks.clone();
            let warnings = detect::host_interfaces_with(&mut owned.view, |n| {
                netstacks.loaded_node(n).map(|s| &s.dump)
            });
            for w in warnings.iter().filter(|w| {
                (verbose || self.live.is_some())
                    && before.iter().all(|b| !w.contains(&format!("node {b}:")))
            }) {
                log(&format!("warning: {w}"));
            }
        }
    }

    /// Write the host calls of the last diagnosis to `path` (requests with
    /// `record_host_calls` only; else nothing is written).
    pub fn write_host_calls(&self, path: &Path, flow: &Flow) -> Result<()> {
        match &self.inputs.record {
            Some(record) => recording::write(path, record, flow, self.registry.secrets()),
            None => Ok(()),
        }
    }

    /// End the diagnosis without freeing the facts one by one: a process
    /// that exits next need not spend a tenth of a second on a large
    /// cluster's rules, routes and objects. The live session (and its
    /// collector pods) ends properly.
    pub fn finish_fast(self) {
        drop(self.live);
        std::mem::forget(self.facts);
    }
}
