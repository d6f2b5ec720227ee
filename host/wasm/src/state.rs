//! The store data of one extension instance: its sandbox, what the host
//! lends it, and what a call into it leaves for the host (the pipeline's
//! decisions, the imports it made).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use wasmtime_wasi::{WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::hostcalls::CallLog;
use crate::lending::Lending;
use crate::sandbox::{Confined, Limits, Sandbox, Secrets};
use skoop_engine::facts::Facts;
use skoop_engine::intent::PolicyIntent;
use skoop_engine::path::Decision;
use skoop_engine::plugin::Failure;
use skoop_engine::settings::{ProxyMode, Settings};

/// Store data of one extension instance.
pub(crate) struct HostState {
    sandbox: Sandbox,
    /// The extension's registry name, for logs.
    pub(crate) name: String,
    facts: Option<Arc<Facts>>,
    pub(crate) config: BTreeMap<String, String>,
    pub(crate) reads: Vec<String>,
    pub(crate) verbose: bool,
    pub(crate) calls: Option<CallLog>,
    /// The diagnosis' secret values.
    pub(crate) secrets: Secrets,
    /// The policy verdicts `policy.evaluate` answers.
    pub(crate) policy: PolicyIntent,
    /// What the kernel pipeline decided for the call under way (the
    /// extension walking packets through `netstack.forward`).
    pub(crate) decisions: Vec<Decision>,
    /// Imports answered (the benchmark's per-import figure).
    pub(crate) import_calls: u64,
}

impl HostState {
    /// The state of an instance of extension `name` with what it is lent;
    /// its secret values join the diagnosis' `secrets`.
    pub(crate) fn new(
        name: &str,
        lending: Lending,
        secrets: Secrets,
        memory_bytes: usize,
    ) -> HostState {
        let Lending {
            facts,
            config,
            secrets: values,
            reads,
            verbose,
            mut egress,
            calls,
        } = lending;
        secrets.add(values);
        egress.secrets = secrets.clone();
        HostState {
            sandbox: Sandbox::new(memory_bytes, egress),
            name: name.to_string(),
            facts,
            config,
            reads,
            verbose,
            calls,
            secrets,
            policy: PolicyIntent::default(),
            decisions: Vec::new(),
            import_calls: 0,
        }
    }

    /// The state of a re-created instance: what the host lends it carries
    /// over; the sandbox's contexts and the memory count start afresh.
    pub(crate) fn renew(&mut self) -> HostState {
        HostState {
            sandbox: self.sandbox.renew(),
            name: self.name.clone(),
            facts: self.facts.clone(),
            config: std::mem::take(&mut self.config),
            reads: std::mem::take(&mut self.reads),
            verbose: self.verbose,
            calls: self.calls.take(),
            secrets: self.secrets.clone(),
            policy: std::mem::take(&mut self.policy),
            decisions: Vec::new(),
            import_calls: self.import_calls,
        }
    }

    /// What a call that ended in `e` ran into.
    pub(crate) fn failure(&self, limits: Limits, e: &wasmtime::Error) -> Failure {
        self.sandbox.failure(limits, e, &self.secrets)
    }

    /// The diagnosis' facts; empty ones while only metadata is read (which
    /// calls no import).
    pub(crate) fn facts(&self) -> Arc<Facts> {
        self.facts.clone().unwrap_or_else(|| {
            Arc::new(Facts::new(
                Default::default(),
                Default::default(),
                Settings {
                    network_plugin: String::new(),
                    cloud_provider: String::new(),
                    proxy_mode: ProxyMode::None,
                    cluster_cidr: None,
                    masquerade_mark: None,
                    masquerade_all: false,
                },
            ))
        })
    }

    /// The facts as lent, for the host's side of a call.
    pub(crate) fn lent_facts(&self) -> Option<&Arc<Facts>> {
        self.facts.as_ref()
    }

    /// Whether import arguments are wanted (recording or replaying).
    pub(crate) fn recording(&self) -> bool {
        self.calls.is_some()
    }

    /// Run one import: bounded by the call's deadline (checked before and
    /// after, as host code cannot be interrupted), recorded or answered from
    /// a recording.
    pub(crate) fn hostcall<R: Serialize + DeserializeOwned>(
        &mut self,
        import: &'static str,
        args: Option<Value>,
        body: impl FnOnce(&mut Self) -> R,
    ) -> wasmtime::Result<R> {
        self.sandbox.check_deadline(import)?;
        self.import_calls += 1;
        if let Some(log) = &mut self.calls {
            match log.replayed(import, args.as_ref()) {
                Some(answer) => return answer.map_err(Into::into),
                // A replayed extension's log lines are printed, not matched.
                None if matches!(log, CallLog::Replay { .. }) => return Ok(body(self)),
                None => {}
            }
        }
        let r = body(self);
        if let Some(log) = &mut self.calls {
            log.record(import, args, &r);
        }
        self.sandbox.check_deadline(import)?;
        Ok(r)
    }
}

impl Confined for HostState {
    fn sandbox(&mut self) -> &mut Sandbox {
        &mut self.sandbox
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.sandbox.wasi_view()
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.sandbox.http_view()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostcalls::ImportCall;

    #[test]
    fn replay_answers_imports_without_reaching_the_facts() {
        let lending = Lending {
            calls: Some(CallLog::replay(&[ImportCall {
                import: "cluster.config".into(),
                args: serde_json::json!(["k"]),
                answer: serde_json::json!("one"),
            }])),
            ..Lending::default()
        };
        let mut s = HostState::new("t", lending, Secrets::default(), 1 << 20);
        let mut ask = || {
            s.hostcall::<Option<String>>("cluster.config", Some(serde_json::json!(["k"])), |_| {
                panic!("replay must not reach the facts")
            })
        };
        assert_eq!(ask().unwrap().as_deref(), Some("one"));
        assert!(ask().is_err());
        assert_eq!(s.import_calls, 2);
    }
}
