//! Error classes that decide the exit status (docs/architecture.md, "The command line"): bad usage or input
//! exits 2, internal failures 1.

pub mod json;

use std::fmt;

/// Marks an error as the user's input being wrong (exit 2). The message names
/// the file, object or extension at fault.
#[derive(Debug)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// Build a bad-input error.
pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}

/// True when any error in the chain is bad input.
pub fn is_bad_input(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<BadInput>())
}

/// Exit statuses.
pub mod exit {
    /// Diagnosed, nothing critical.
    pub const HEALTHY: u8 = 0;
    /// Internal failure.
    pub const INTERNAL: u8 = 1;
    /// Bad usage or input.
    pub const BAD_INPUT: u8 = 2;
    /// Diagnosed, at least one critical or fatal suspicion.
    pub const BROKEN: u8 = 3;
}
