//! skoop's engine: cluster facts and netstack dumps in, simulated path and
//! suspicions out. It talks to CNI plugins and cloud providers through the
//! [`plugin::Plugin`] trait, so the diagnosis loop runs with native test
//! plugins as well as with wasm components (`skoop-wasm`).

pub mod bundle;
pub mod cluster;
pub mod detect;
pub mod diagnose;
mod dump_sections;
pub mod entry;
pub mod facts;
pub mod flow;
pub mod intent;
pub mod kernel_walk;
pub mod kube_proxy_nftables;
mod objects;
pub mod path;
pub mod plugin;
pub mod policy;
pub mod probe;
pub mod report;
pub mod service;
pub mod settings;
pub mod suspicion;
pub mod walk;
