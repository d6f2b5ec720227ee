//! Findings: their levels and where they were raised.

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

    /// Critical and fatal findings mean the traffic fails.
    pub fn blocking(self) -> bool {
        self >= Level::Critical
    }
}

/// One finding, on a net-node (`None`: cluster-wide).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Suspicion {
    pub level: Level,
    pub node: Option<String>,
    pub message: String,
}
