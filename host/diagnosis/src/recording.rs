//! `--record-host-calls`: every call the host made into each extension and
//! every import it made, with the answers, for `skoop extension replay`.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::{Context as _, Result};
use skoop_engine::flow::Flow;
use skoop_wasm::hostcalls::{ExtensionCalls, FORMAT, Recording};
use skoop_wasm::sandbox::Secrets;

/// The host calls of the extensions of the last diagnosis pass.
pub(crate) type Recorder = Arc<Mutex<Vec<RecordedExt>>>;

/// One extension instance's recording: its calls, and a provider's HTTP.
pub(crate) struct RecordedExt {
    pub calls: Arc<Mutex<ExtensionCalls>>,
    pub http: Option<Arc<Mutex<skoop_wasm::sandbox::egress::Recording>>>,
}

/// A poisoned lock only means another thread panicked mid-record; what it
/// holds is still the best record there is.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Write what the recorder gathered for `flow` to `path`.
pub(crate) fn write(path: &Path, record: &Recorder, flow: &Flow, secrets: &Secrets) -> Result<()> {
    let extensions = lock(record)
        .iter()
        .map(|r| {
            let mut calls = lock(&r.calls).clone();
            if let Some(http) = &r.http {
                calls.http = lock(http).exchanges.clone();
            }
            calls
        })
        .collect();
    let rec = Recording {
        format: FORMAT.into(),
        contract: format!("{}@{}", skoop_wasm::WIT_PACKAGE, skoop_wasm::WIT_VERSION),
        host_version: skoop_wasm::HOST_VERSION.into(),
        flow: format!(
            "{} -> {}:{}/{}",
            flow.src,
            flow.dst,
            flow.dport,
            flow.protocol.name()
        ),
        extensions,
    };
    std::fs::write(path, rec.to_json(secrets))
        .with_context(|| format!("writing {}", path.display()))
}
