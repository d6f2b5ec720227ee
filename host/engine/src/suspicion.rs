//! Suspicions: their levels and the net-nodes they are about.

use serde::Serialize;

/// Severity, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Info,
    Warning,
    Critical,
    Fatal,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
            Level::Fatal => "FATAL",
        }
    }

    /// Critical and fatal suspicions mean the traffic fails.
    pub fn blocking(self) -> bool {
        self >= Level::Critical
    }
}

/// One suspicion that may explain why traffic fails.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Suspicion {
    pub level: Level,
    /// The net-node it is about. In a report, `None` is the cluster; in a
    /// hop's answer, the net-node answering (WIT `suspicion.about`).
    pub node: Option<String>,
    pub message: String,
}
