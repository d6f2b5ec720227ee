//! The cluster view: Kubernetes objects read into typed facts (borrowing from
//! the JSON, skipping what is not needed), indexed so "what is this IP" is
//! one lookup; the kinds detection and extensions read stay as JSON.
//!
//! `model` is the view and its queries; `reader` reads JSON into it
//! (`ClusterBuilder`), through the mirrors of Kubernetes objects in
//! `mirrors`; `retain` decides which objects stay as JSON.

mod mirrors;
mod model;
mod reader;
mod retain;

pub use model::{
    ClusterView, EndpointFacts, NodeFacts, Owner, PodFacts, RawObject, ServiceFacts,
    ServicePortFacts, Skipped,
};
pub use reader::{ClusterBuilder, json_error};
pub use retain::{HOST_READS, Retain};
