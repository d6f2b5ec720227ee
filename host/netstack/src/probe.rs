//! The answer of a real connection attempt: what `skoop collect probe` prints
//! (one JSON line) and `skoop diagnose --probe` reads from the collector pod's
//! log. Plain data, versioned, like the node dump: the collector and the host
//! may be different builds.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// The probe format this build reads and writes.
pub const PROBE_VERSION: u32 = 1;

/// Hard caps of a probe (a look, not a load test): the collector enforces
/// them, `skoop diagnose --probe` checks them before it starts a pod.
pub const MAX_COUNT: u32 = 20;
pub const MIN_TIMEOUT_MS: u64 = 10;
pub const MAX_TIMEOUT_MS: u64 = 10_000;
/// Defaults: three attempts, three seconds each.
pub const DEFAULT_COUNT: u32 = 3;
pub const DEFAULT_TIMEOUT_MS: u64 = 3_000;

/// What one attempt, or the whole probe, came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeOutcome {
    /// TCP: the handshake completed at once; SCTP: the association was set up.
    Connected,
    /// UDP: a reply came back.
    Answered,
    /// TCP: connected, but only after the SYN was sent again: the first one
    /// (or its answer) was lost on the way.
    Retransmitted,
    /// The destination said no: a TCP RST, an ICMP port unreachable, an SCTP
    /// ABORT.
    Refused,
    /// The connection was reset while it was being set up.
    Reset,
    /// No answer within the timeout.
    TimedOut,
    /// The kernel said the destination cannot be reached: an ICMP error
    /// (host or network unreachable, administratively prohibited), no route,
    /// or a rule in the source netns refusing to send.
    Unreachable,
    /// UDP: nothing came back and no error either.
    NoReply,
    /// The probe could not be made here (no SCTP in this kernel, the source
    /// address is not in this netns, …): no evidence either way.
    Unavailable,
}

impl ProbeOutcome {
    /// The name the JSON uses.
    pub fn name(self) -> &'static str {
        match self {
            ProbeOutcome::Connected => "connected",
            ProbeOutcome::Answered => "answered",
            ProbeOutcome::Retransmitted => "retransmitted",
            ProbeOutcome::Refused => "refused",
            ProbeOutcome::Reset => "reset",
            ProbeOutcome::TimedOut => "timed-out",
            ProbeOutcome::Unreachable => "unreachable",
            ProbeOutcome::NoReply => "no-reply",
            ProbeOutcome::Unavailable => "unavailable",
        }
    }

    /// The packet got there and the answer came back.
    pub fn reached(self) -> bool {
        matches!(self, ProbeOutcome::Connected | ProbeOutcome::Answered)
    }
}

/// An ICMP error the kernel queued for the probe's socket (IP_RECVERR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcmpError {
    #[serde(rename = "type")]
    pub kind: u8,
    pub code: u8,
    /// Who sent it (the source netns itself for a neighbour that never
    /// answered), when the kernel says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Ipv4Addr>,
    /// `host unreachable`, `administratively prohibited`, …
    pub name: String,
}

/// One connection attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeAttempt {
    pub outcome: ProbeOutcome,
    /// What happened, for people: `connected from 10.244.0.5:41234`,
    /// `ICMP host unreachable from 10.244.0.1`, …
    pub detail: String,
    pub elapsed_ms: f64,
    /// The error the kernel returned (`EHOSTUNREACH`, …), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpError>,
}

/// A probe: one flow, a few attempts, the first failure ends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Must equal [`PROBE_VERSION`].
    pub version: u32,
    /// The netns the attempts were made from: `host` or `pod NS/NAME`, with
    /// its path.
    pub from: String,
    /// The source address bound, when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<Ipv4Addr>,
    pub dst: Ipv4Addr,
    pub port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// UDP: the destination is known to answer (a DNS query to port 53, or
    /// the caller said so); without it no reply proves nothing.
    #[serde(default)]
    pub reply_expected: bool,
    /// The probe's outcome: the first attempt that did not reach, else
    /// that of the last attempt.
    pub outcome: ProbeOutcome,
    /// The outcome for people, read after `probe: ` (`timed out after 3 s`).
    pub detail: String,
    pub attempts: Vec<ProbeAttempt>,
    /// The whole probe, socket set-up included.
    pub elapsed_ms: f64,
    /// The per-attempt timeout, in milliseconds.
    pub timeout_ms: u64,
}

impl ProbeResult {
    /// Whether the result says nothing either way: UDP silence where no
    /// reply was expected, or a probe that could not be made.
    pub fn inconclusive(&self) -> bool {
        match self.outcome {
            ProbeOutcome::Unavailable => true,
            ProbeOutcome::NoReply => !self.reply_expected,
            _ => false,
        }
    }

    /// The probe got through every time.
    pub fn reached(&self) -> bool {
        self.outcome.reached()
    }

    /// Read a collector's output: the last line that is a probe result (a
    /// pod's log may carry the collector's stderr notes before it). The
    /// error says what the text was instead.
    pub fn parse(text: &str) -> Result<ProbeResult, String> {
        #[derive(Deserialize)]
        struct Version {
            version: Option<u64>,
        }
        let line = text
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('{'))
            .ok_or_else(|| {
                let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                format!("no probe result (JSON) in it; it says: {first:?}")
            })?;
        match serde_json::from_str::<Version>(line) {
            Ok(Version { version: Some(v) }) if v == u64::from(PROBE_VERSION) => {}
            Ok(Version { version: Some(v) }) => {
                return Err(format!(
                    "probe result version {v}, but this skoop reads version {PROBE_VERSION}: use a collector image of this skoop's version"
                ));
            }
            Ok(Version { version: None }) => {
                return Err("not a skoop probe result (no `version` field)".into());
            }
            Err(e) => return Err(format!("invalid probe result: {e}")),
        }
        serde_json::from_str(line).map_err(|e| format!("invalid probe result: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(outcome: ProbeOutcome, reply_expected: bool) -> ProbeResult {
        ProbeResult {
            version: PROBE_VERSION,
            from: "host".into(),
            src: None,
            dst: Ipv4Addr::new(10, 96, 0, 10),
            port: 53,
            protocol: "udp".into(),
            reply_expected,
            outcome,
            detail: String::new(),
            attempts: Vec::new(),
            elapsed_ms: 1.0,
            timeout_ms: 3000,
        }
    }

    #[test]
    fn udp_silence_proves_nothing_unless_a_reply_was_expected() {
        assert!(result(ProbeOutcome::NoReply, false).inconclusive());
        assert!(!result(ProbeOutcome::NoReply, true).inconclusive());
        assert!(result(ProbeOutcome::Unavailable, true).inconclusive());
        assert!(!result(ProbeOutcome::Refused, false).inconclusive());
        assert!(result(ProbeOutcome::Answered, false).reached());
        assert!(!result(ProbeOutcome::Retransmitted, false).reached());
    }

    #[test]
    fn the_last_json_line_of_a_log_is_read() {
        let r = result(ProbeOutcome::TimedOut, false);
        let log = format!(
            "skoop collect: 3 pod sandbox(es) from CRI socket /run/x.sock\n{}\n",
            serde_json::to_string(&r).expect("json")
        );
        assert_eq!(ProbeResult::parse(&log), Ok(r.clone()));
        let mut v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["outcome"], "timed-out");
        v["version"] = 9.into();
        let err = ProbeResult::parse(&v.to_string()).expect_err("version 9");
        assert!(err.contains("version 9"), "{err}");
        let err = ProbeResult::parse("Error: no such pod\n").expect_err("no JSON");
        assert!(err.contains("no such pod"), "{err}");
    }
}
