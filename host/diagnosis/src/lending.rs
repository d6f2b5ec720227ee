//! What the host lends one extension of a diagnosis: the facts, its config
//! values and secrets, the kinds it may read, and the recording of its
//! host calls.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use skoop_engine::facts::Facts;
use skoop_wasm::hostcalls::{CallLog, ExtensionCalls};
use skoop_wasm::{Extension, Lending};

use crate::recording::{RecordedExt, Recorder, lock};
use crate::request::Log;

/// What extensions get besides the facts.
pub(crate) struct ExtInputs {
    /// Config values by option name.
    pub values: BTreeMap<String, String>,
    /// `DIR/cloud` of the bundle, when diagnosing one.
    pub cloud: Option<PathBuf>,
    /// Host calls of each extension instance, when recording.
    pub record: Option<Recorder>,
    pub verbose: bool,
    pub log: Log,
}

/// What one extension of this diagnosis is lent.
pub(crate) fn state_for(ext: &Extension, facts: &Arc<Facts>, inputs: &ExtInputs) -> Lending {
    let (config, secrets) = skoop_wasm::config::resolve(
        &ext.info,
        &inputs.values,
        &skoop_wasm::config::Sources::process(),
    );
    let mut s = Lending {
        facts: Some(facts.clone()),
        reads: ext.info.reads.clone(),
        verbose: inputs.verbose,
        secrets,
        ..Lending::default()
    };
    if let Some(record) = &inputs.record {
        let calls = Arc::new(Mutex::new(ExtensionCalls {
            name: ext.info.name.clone(),
            kind: serde_json::to_value(ext.info.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            version: ext.info.version.clone(),
            sha256: ext.sha256.clone(),
            config: config
                .iter()
                .filter(|(k, _)| !ext.info.config.iter().any(|c| &c.name == *k && c.secret))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..ExtensionCalls::default()
        }));
        lock(record).push(RecordedExt {
            calls: calls.clone(),
            http: None,
        });
        s.calls = Some(CallLog::Record {
            current: Vec::new(),
            log: calls,
        });
    }
    s.config = config;
    s
}
