//! Output: the path and the suspicions, as text for people and JSON for tools
//! (the JSON fields are DESIGN §4's contract).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::diagnose::{Branch, Direction, End, Flow, HopDecision, LinkRecord, Trace};
use crate::path::{Action, HopId, LinkKind};
use crate::settings::Settings;
use crate::suspicion::{Level, Suspicion};

/// Everything a diagnosis reports.
#[derive(Debug, Serialize)]
pub struct Report {
    pub src: String,
    pub dst: String,
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
    #[serde(skip)]
    pub source: String,
}

/// The path as DESIGN §4 fixes it, plus the branches.
#[derive(Debug, Serialize)]
pub struct PathOut {
    pub nodes: Vec<HopId>,
    pub links: Vec<LinkRecord>,
    pub branches: Vec<Branch>,
    /// The routes and rules that decided, per hop (DESIGN §4 plus).
    pub decisions: Vec<HopDecision>,
}

impl Report {
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
            source,
        }
    }

    /// True when a critical or fatal suspicion was raised.
    pub fn broken(&self) -> bool {
        self.suspicions.iter().any(|s| s.level.blocking())
    }

    pub fn json(&self) -> String {
        // Serializing plain data cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let _ = writeln!(
            out,
            "skoop diagnose {} -> {}:{}/{}  ({}, {}, kube-proxy {}; facts: {})",
            self.src,
            self.dst,
            self.port,
            self.protocol,
            s.network_plugin,
            s.cloud_provider,
            s.proxy_mode.name(),
            self.source
        );
        for dir in [Direction::Request, Direction::Reply] {
            let branches: Vec<&Branch> = self
                .path
                .branches
                .iter()
                .filter(|b| b.direction == dir)
                .collect();
            if branches.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "\n{}:",
                if dir == Direction::Request {
                    "Request"
                } else {
                    "Reply"
                }
            );
            for (i, b) in branches.iter().enumerate() {
                self.branch(&mut out, i + 1, b);
            }
        }
        if !self.policy.is_empty() {
            let _ = writeln!(out, "\nPolicy:");
            for v in &self.policy {
                let _ = writeln!(
                    out,
                    "  {:<7} {:<7} {}",
                    v.direction.to_string(),
                    if v.allowed { "allowed" } else { "denied" },
                    v.explanation
                );
            }
        }
        let _ = writeln!(out, "\nSuspicions:");
        if self.suspicions.is_empty() {
            let _ = writeln!(out, "  none");
        }
        let mut by_node: BTreeMap<String, Vec<&Suspicion>> = BTreeMap::new();
        for sp in &self.suspicions {
            let key = sp.node.clone().unwrap_or_else(|| "(cluster)".to_string());
            by_node.entry(key).or_default().push(sp);
        }
        let mut groups: Vec<(String, Vec<&Suspicion>)> = by_node.into_iter().collect();
        groups.sort_by_key(|(_, v)| std::cmp::Reverse(v.iter().map(|s| s.level).max()));
        for (node, list) in groups {
            let _ = writeln!(out, "  {node}");
            for sp in list {
                let _ = writeln!(out, "    {:<9} {}", sp.level.name(), sp.message);
            }
        }
        if let Some(e) = &self.error {
            let _ = writeln!(
                out,
                "\nExtension failure: {e}\nThe branches it ended are unfinished; the path above is partial."
            );
        }
        let _ = writeln!(out, "\n{}", self.verdict_line());
        out
    }

    /// `Verdict: BROKEN (0 fatal, 1 critical, 2 warning, 0 info)`: the last
    /// line of the text report, and all `--quiet` prints.
    pub fn verdict_line(&self) -> String {
        let count = |l: Level| self.suspicions.iter().filter(|s| s.level == l).count();
        format!(
            "Verdict: {} ({} fatal, {} critical, {} warning, {} info)",
            self.verdict.to_uppercase(),
            count(Level::Fatal),
            count(Level::Critical),
            count(Level::Warning),
            count(Level::Info)
        )
    }

    fn branch(&self, out: &mut String, n: usize, b: &Branch) {
        let end = match &b.end {
            End::Delivered { at } => format!("delivered at {at}"),
            End::Dropped { at, packet: None } => format!("DROPPED at {at}"),
            End::Dropped {
                at,
                packet: Some(p),
            } => format!("DROPPED at {at}: {}", p.tuple()),
            End::Loop { at } => format!("LOOP at {at}"),
            End::HopLimit { at } => format!("HOP LIMIT at {at}"),
            End::Unfinished { at, .. } => format!("not followed past {at}"),
        };
        let _ = writeln!(out, "  #{n} {end}");
        let _ = writeln!(out, "    {}", b.start);
        let mut last = None;
        for &i in &b.links {
            let Some(l) = self.path.links.get(i) else {
                continue;
            };
            let mut hop = format!("      -> {}", kind_name(l.kind));
            let ifs = match (&l.oif, &l.iif) {
                (Some(o), Some(i)) => format!(" {o} > {i}"),
                (Some(o), None) => format!(" {o}"),
                (None, Some(i)) => format!(" > {i}"),
                (None, None) => String::new(),
            };
            hop.push_str(&ifs);
            if last != Some(l.packet) {
                let _ = write!(hop, "   {}", l.packet);
            }
            last = Some(l.packet);
            let _ = writeln!(out, "{hop}");
            let _ = writeln!(out, "    {}  [{}]", l.to, action_name(l.action));
        }
    }
}

fn kind_name(k: LinkKind) -> &'static str {
    k.name()
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Send => "send",
        Action::Forward => "forward",
        Action::Serve => "serve",
        Action::Drop => "DROP",
        Action::Unknown => "unknown: facts missing",
    }
}
