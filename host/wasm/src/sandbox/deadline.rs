//! How long one call into an extension may run: guest code is stopped by
//! the engine's epoch (it ticks on a thread of its own), host imports and
//! outbound HTTP check the same deadline as an instant, for host code
//! cannot be interrupted.

use std::time::{Duration, Instant};

use wasmtime::Engine;

use super::limits::Limits;

/// How often the engine's epoch advances; deadlines are counted in ticks.
pub const TICK: Duration = Duration::from_millis(10);

/// Advance `engine`'s epoch every [`TICK`], for as long as the process runs.
pub(crate) fn start_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let ticker = engine.clone();
    std::thread::Builder::new()
        .name("skoop-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(TICK);
                ticker.increment_epoch();
            }
        })
        .map(drop)
}

/// The deadline of one call, in epoch ticks.
pub(crate) fn ticks(limits: Limits) -> u64 {
    (limits.call_timeout.as_millis() / TICK.as_millis()).max(1) as u64
}

/// The deadline of the call under way, as host imports see it.
#[derive(Debug, Default)]
pub(crate) struct Deadline {
    until: Option<Instant>,
    /// An import found the deadline passed (the call timed out in the host).
    hit: bool,
}

impl Deadline {
    /// Start a call's clock; returns when it must end.
    pub(crate) fn arm(&mut self, limits: Limits) -> Instant {
        let until = Instant::now() + limits.call_timeout;
        self.until = Some(until);
        self.hit = false;
        until
    }

    /// The call is over.
    pub(crate) fn disarm(&mut self) {
        self.until = None;
    }

    pub(crate) fn hit(&self) -> bool {
        self.hit
    }

    /// The call's deadline has passed: the import ends the call.
    pub(crate) fn check(&mut self, import: &str) -> wasmtime::Result<()> {
        if let Some(d) = self.until
            && Instant::now() >= d
        {
            self.hit = true;
            wasmtime::bail!("the call's deadline passed in host import {import}");
        }
        Ok(())
    }
}
