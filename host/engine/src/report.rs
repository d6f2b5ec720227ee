//! The report of one diagnosis: the path and the suspicions, as data.
//! `skoop-render` draws it (text, JSON, graphs); its serialized fields are
//! the JSON contract of docs/architecture.md.

use serde::Serialize;

use crate::diagnose::{Branch, End, HopDecision, LinkRecord, Trace};
use crate::flow::Flow;
use crate::path::NetNode;
use crate::settings::Settings;
use crate::suspicion::Suspicion;

/// Everything a diagnosis reports.
#[derive(Debug, Serialize)]
pub struct Report {
    pub src: String,
    pub dst: String,
    /// The source's name when it was given by name: `pod/NS/NAME`,
    /// `node/NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_name: Option<String>,
    /// The destination's name when it was given by name: `pod/NS/NAME`,
    /// `svc/NS/NAME`, `node/NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_name: Option<String>,
    pub port: u16,
    pub protocol: String,
    pub settings: Settings,
    /// "healthy", "broken", "partial" (nothing wrong found, but facts were
    /// missing for part of the path) or "incomplete" (an extension failed).
    pub verdict: &'static str,
    pub suspicions: Vec<Suspicion>,
    /// Policy verdicts per direction where the request arrived.
    pub policy: Vec<skoop_policy::DirectionVerdict>,
    pub path: PathOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A real connection attempt beside the simulation (`--probe`, live
    /// mode), and whether the two agree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<crate::probe::ProbeReport>,
    #[serde(skip)]
    pub source: String,
}

fn label(name: Option<&str>, address: &str) -> String {
    match name {
        Some(name) => format!("{name} ({address})"),
        None => address.to_string(),
    }
}

/// The path: the net nodes, the links between them, the branches and the
/// decisions.
#[derive(Debug, Serialize)]
pub struct PathOut {
    pub nodes: Vec<NetNode>,
    pub links: Vec<LinkRecord>,
    pub branches: Vec<Branch>,
    /// The routes and rules that decided, per hop.
    pub decisions: Vec<HopDecision>,
}

impl Report {
    /// The source as the report names it: `pod/default/client-1
    /// (10.244.1.5)` when it was named, its address otherwise.
    pub fn src_label(&self) -> String {
        label(self.src_name.as_deref(), &self.src)
    }

    /// The destination as the report names it (see [`Report::src_label`]).
    pub fn dst_label(&self) -> String {
        label(self.dst_name.as_deref(), &self.dst)
    }

    pub fn new(flow: &Flow, settings: Settings, source: String, trace: Trace) -> Report {
        let unfinished = trace
            .branches
            .iter()
            .any(|b| matches!(b.end, End::Unfinished { .. }));
        let verdict = if trace.error.is_some() {
            "incomplete"
        } else if trace.broken() {
            "broken"
        } else if unfinished {
            // Nothing wrong where skoop could look, but facts were missing.
            "partial"
        } else {
            "healthy"
        };
        let mut suspicions = trace.suspicions;
        suspicions.sort_by_key(|s| std::cmp::Reverse(s.level));
        Report {
            src: flow.src.to_string(),
            dst: flow.dst.to_string(),
            src_name: None,
            dst_name: None,
            port: flow.dport,
            protocol: flow.protocol.to_string(),
            settings,
            verdict,
            suspicions,
            policy: trace.policy,
            path: PathOut {
                nodes: trace.nodes,
                links: trace.links,
                branches: trace.branches,
                decisions: trace.decisions,
            },
            error: trace.error.map(|e| e.to_string()),
            probe: None,
            source,
        }
    }

    /// True when a critical or fatal suspicion was raised.
    pub fn broken(&self) -> bool {
        self.suspicions.iter().any(|s| s.level.blocking())
    }
}
