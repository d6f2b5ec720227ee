//! skoop as a library. A [`Request`] names the input (a built-in demo, a
//! bundle directory or a live cluster), the options and the limits; with
//! the loaded extensions it opens a [`Context`], which holds the facts,
//! the detected settings, the wiring of cloud provider and network plugin,
//! and the recording, and diagnoses flows into reports:
//!
//! ```no_run
//! use skoop_diagnosis::{Context, Input, Request};
//! use skoop_wasm::{Registry, runtime::Runtime};
//!
//! let registry = Registry::load(Runtime::new(None)?, &[])?;
//! let request = Request::new(Input::Demo("flannel".into()));
//! let flow = skoop_diagnosis::demo_flow("flannel")?;
//! let mut context = Context::open(&registry, request, flow, None)?;
//! let outcome = context.diagnose(flow)?;
//! println!("{}", outcome.report.verdict);
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! The `skoop` binary, its `--http` form and the extension harness
//! (`skoop extension test|diff|replay`) all diagnose through this crate.

pub mod cloud;
mod context;
mod flow;
mod input;
mod lending;
mod names;
mod probe;
mod recording;
mod request;
mod skipped;
mod wiring;

pub use context::{Context, Outcome};
pub use flow::{demo_flow, flow, ip};
pub use input::{Preload, retain};
pub use names::{FlowSpec, Resolved, cluster_domain, resolve};
pub use probe::{ProbeOptions, needs_live};
pub use request::{Input, Log, Request};
