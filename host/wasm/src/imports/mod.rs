//! What the host lends extensions: one module per imported WIT interface,
//! each converting between the WIT types and the engine's, which answers.
//! Everything is read-only.

use crate::bindings::{types as wt, walk as ww};
use crate::state::HostState;

// The imports proper: each is bounded by the call's deadline, and recorded
// or answered from a recording when asked (see hostcalls.rs).
macro_rules! lend {
    ($iface:ident { $($name:literal fn $f:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $inner:ident;)* }) => {
        impl $iface::Host for HostState {
            $(
                fn $f(&mut self $(, $arg: $ty)*) -> wasmtime::Result<$ret> {
                    let args = self.recording().then(|| serde_json::json!([$(&$arg),*]));
                    self.hostcall($name, args, move |h| h.$inner($($arg),*))
                }
            )*
        }
    };
}

mod cluster;
mod log;
mod netstack;
mod policy;
mod service;

/// `types` and `walk` declare types only.
impl wt::Host for HostState {}
impl ww::Host for HostState {}

/// A malformed argument.
fn bad(what: String) -> wt::Error {
    wt::Error::Invalid(what)
}
