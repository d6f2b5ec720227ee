//! skoop's host engine: cluster facts and netstack dumps in, simulated path
//! and suspicions out. The binary (`main.rs`) is a thin CLI over this library.

pub mod bundle;
pub mod cli;
pub mod cluster;
pub mod collect;
pub mod detect;
pub mod diagnose;
pub mod dump;
pub mod error;
pub mod extension;
pub mod facts;
pub mod live;
pub mod netstack;
pub mod packet;
pub mod path;
pub mod report;
pub mod service;
pub mod suspicion;
