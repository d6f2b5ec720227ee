//! Running extension instances: every call has a deadline, and a trap, a
//! timeout, a memory overrun or a malformed answer becomes a [`CallError`]
//! that names the extension and the call.

mod plugin;
mod provider;
mod runner;

pub use plugin::{PluginInstance, Setup};
pub use provider::{NetworkPlan, ProviderInstance};
pub(crate) use runner::{CniPre, ProviderPre, cni_linker, provider_linker};
pub use skoop_engine::plugin::{
    Answer, CallError, Failure, HopAnswer, Plugin, RefusedKind, Role, Underlay,
};
