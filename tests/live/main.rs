//! Live cluster mode against a fake API server: cluster access and its
//! errors, detection, collector pod lifecycle, and equivalence with the
//! bundle the fake cluster mirrors.

mod collectors;
mod common;
mod config;
mod connectivity;
mod detection;
mod equivalence;
mod errors;
mod generate;
mod large;
mod probe;
mod progress;
mod server;
