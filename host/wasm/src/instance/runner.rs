//! The plumbing every instance shares: the store and its sandbox, the call
//! deadline, error mapping, re-creation after a failure, and recording.

use serde::Serialize;
use serde_json::{Value, json};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store};

use crate::bindings::{cni, provider as pw, types as wt};
use crate::convert::error_text;
use crate::hostcalls::{Call, CallLog};
use crate::sandbox::{self, Limits, clean};
use crate::state::HostState;
use skoop_engine::plugin::{CallError, Failure, RefusedKind};

/// A component linked once and ready to instantiate in a fresh store: the
/// linker's work is done at load, and a failed instance is re-created cheaply.
pub(crate) trait Pre: Clone {
    type Bindings;
    fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Self::Bindings>;
}

/// A CNI plugin, pre-instantiated.
pub(crate) type CniPre = cni::CniPluginPre<HostState>;
/// A cloud provider, pre-instantiated.
pub(crate) type ProviderPre = pw::CloudProviderPre<HostState>;

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

pub(super) type Reinit<B> = fn(
    &B,
    &mut Store<HostState>,
) -> wasmtime::Result<
    Result<cni::exports::skoop::extension::plugin::SetupResult, wt::Error>,
>;

/// Shared plumbing: the store, the deadline, error mapping, re-creation
/// after a failure, and recording.
pub(super) struct Runner<P: Pre> {
    pub(super) store: Store<HostState>,
    bindings: P::Bindings,
    pre: P,
    name: String,
    limits: Limits,
    /// The last call trapped, timed out or overran memory: the store is not
    /// to be entered again, and the next call re-creates the instance.
    poisoned: bool,
    /// Calls made on a re-created instance before anything else (a CNI
    /// plugin's setup, which builds its state).
    pub(super) reinit: Option<Reinit<P::Bindings>>,
    /// The answer of the last call, as JSON, while replaying.
    pub(super) last_answer: Option<Value>,
}

impl<P: Pre> Runner<P> {
    /// A store with an instance of `pre` in it; start-up code runs under the
    /// same deadline and limits as any call.
    pub(super) fn start(
        engine: &Engine,
        pre: P,
        state: HostState,
        limits: Limits,
    ) -> Result<Runner<P>, CallError> {
        let name = state.name.clone();
        let mut store = sandbox::store(engine, state, limits);
        sandbox::arm(&mut store, limits);
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

    pub(super) fn err(&self, call: &str, failure: Failure) -> CallError {
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
        let mut store = sandbox::store(&engine, state, self.limits);
        sandbox::arm(&mut store, self.limits);
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
    pub(super) fn call<R: Serialize>(
        &mut self,
        export: &'static str,
        label: &str,
        args: impl FnOnce() -> Value,
        f: impl FnOnce(&P::Bindings, &mut Store<HostState>) -> wasmtime::Result<Result<R, wt::Error>>,
    ) -> Result<R, CallError> {
        if self.poisoned {
            self.restart(label)?;
        }
        sandbox::arm(&mut self.store, self.limits);
        let logging = self.store.data().calls.is_some();
        let args = if logging { args() } else { Value::Null };
        let state = self.store.data_mut();
        state.decisions.clear();
        if let Some(CallLog::Record { current, .. }) = &mut state.calls {
            current.clear();
        }
        let raw = f(&self.bindings, &mut self.store);
        sandbox::disarm(&mut self.store);
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
                let text = error_text(&e, &self.store.data().secrets);
                (Err(self.err(label, Failure::Refused(kind, text))), answer)
            }
            Ok(Ok(v)) => {
                let answer = logging.then(|| json!({ "ok": v }));
                (Ok(v), answer)
            }
        };
        if let Some(answer) = answer {
            let state = self.store.data_mut();
            match &mut state.calls {
                Some(CallLog::Record { current, log }) => {
                    let imports = std::mem::take(current);
                    log.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .calls
                        .push(Call {
                            export: export.to_string(),
                            label: clean(&state.secrets, label),
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

/// Map a wasmtime error to the failure it stands for.
fn classify(
    store: &Store<HostState>,
    name: &str,
    limits: Limits,
    call: &str,
    e: wasmtime::Error,
) -> CallError {
    CallError {
        extension: name.to_string(),
        call: call.to_string(),
        failure: store.data().failure(limits, &e),
    }
}

/// A linker for the CNI world: sandboxed WASI plus skoop's imports.
pub(crate) fn cni_linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    cni::CniPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// A linker for the provider world.
pub(crate) fn provider_linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    // Requests are refused unless the provider declares hosts (see egress.rs).
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    pw::CloudProvider::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// Decode a recorded call's arguments (a JSON array) for `export`.
pub(super) fn args_of<T: serde::de::DeserializeOwned>(
    export: &str,
    args: &Value,
) -> Result<T, String> {
    serde_json::from_value(args.clone())
        .map_err(|e| format!("the recorded arguments of {export} do not fit this contract: {e}"))
}
