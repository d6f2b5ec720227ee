//! `--probe`: after the simulated verdict, a real connection attempt of the
//! same flow from the source's netns, through a collector pod on the
//! source's node, set beside the simulation in the report
//! (`skoop_engine::probe` judges whether they agree).

use std::time::Duration;

use anyhow::Result;
use skoop_engine::flow::Flow;
use skoop_engine::path::NetNodeKind;
use skoop_engine::probe::{ProbeReport, attach};
use skoop_engine::report::Report;
use skoop_error::bad_input;
use skoop_netstack::probe::{
    DEFAULT_COUNT, DEFAULT_TIMEOUT_MS, MAX_COUNT, MAX_TIMEOUT_MS, MIN_TIMEOUT_MS, ProbeResult,
};

use crate::context::Context;

/// How hard to probe: attempts at most, and how long each waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeOptions {
    count: u32,
    timeout: Duration,
}

impl Default for ProbeOptions {
    fn default() -> ProbeOptions {
        ProbeOptions {
            count: DEFAULT_COUNT,
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
        }
    }
}

impl ProbeOptions {
    /// `count` attempts at most, each waiting `timeout`, within the caps the
    /// collector enforces (checked here, before a pod is started).
    pub fn new(count: u32, timeout: Duration) -> Result<ProbeOptions> {
        if count == 0 || count > MAX_COUNT {
            return Err(bad_input(format!(
                "--probe-count {count}: a probe makes 1 to {MAX_COUNT} attempts"
            )));
        }
        let (lo, hi) = (
            Duration::from_millis(MIN_TIMEOUT_MS),
            Duration::from_millis(MAX_TIMEOUT_MS),
        );
        if !(lo..=hi).contains(&timeout) {
            return Err(bad_input(format!(
                "--probe-timeout {}: each attempt waits {} to {} seconds",
                timeout.as_secs_f64(),
                lo.as_secs_f64(),
                hi.as_secs_f64()
            )));
        }
        Ok(ProbeOptions { count, timeout })
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// The error of `--probe` without a live cluster.
pub fn needs_live() -> anyhow::Error {
    bad_input(
        "--probe sends a real packet from the source, which needs a live cluster: a bundle or a demo has no network to send it on; drop --snapshot/--demo to diagnose the cluster of your kubeconfig",
    )
}

impl Context<'_> {
    /// Probe `flow` for real from its source and set the outcome beside the
    /// simulation in `report` (its `probe` section, and a WARNING when the
    /// two disagree). Live contexts only. A probe that cannot be made (the
    /// source is outside the cluster, the probe pod fails) is said in the
    /// report rather than failing the diagnosis it comes after.
    pub fn probe(&self, flow: &Flow, report: &mut Report, options: ProbeOptions) -> Result<()> {
        let Some(session) = self.session() else {
            return Err(needs_live());
        };
        let start = report
            .path
            .branches
            .iter()
            .find(|b| b.leg == skoop_engine::diagnose::Leg::Request)
            .map(|b| b.start.clone());
        let view = &self.facts().view;
        let (node, pod) = match &start {
            Some(s) if s.kind == NetNodeKind::Node => (s.id.clone(), None),
            Some(s) if s.kind == NetNodeKind::Pod => {
                let Some(p) = view
                    .pods
                    .get(&s.id)
                    .or_else(|| view.pods.values().find(|p| p.id() == s.id))
                else {
                    report.probe = Some(ProbeReport::not_run(
                        &format!("pod {}", s.id),
                        format!("pod {} is not in the cluster's objects", s.id),
                    ));
                    return Ok(());
                };
                (p.node.clone(), Some(s.id.clone()))
            }
            _ => {
                report.probe = Some(ProbeReport::not_run(
                    &format!("{} (outside the cluster)", flow.src),
                    format!(
                        "the source {} is neither a pod nor a node of the cluster; a probe runs only from inside it",
                        flow.src
                    ),
                ));
                return Ok(());
            }
        };
        let from = match &pod {
            Some(p) => format!("pod {p} on node {node}"),
            None => format!("node {node} (host netns)"),
        };
        let mut args: Vec<String> = vec![
            "--src".into(),
            flow.src.to_string(),
            "--dst".into(),
            flow.dst.to_string(),
            "--port".into(),
            flow.dport.to_string(),
            "--protocol".into(),
            flow.protocol.name().into(),
            "--count".into(),
            options.count.to_string(),
            "--timeout".into(),
            format!("{}ms", options.timeout.as_millis()),
        ];
        if let Some(p) = &pod {
            args.extend(["--pod".into(), p.clone()]);
        }
        eprintln!(
            "skoop: probing {}:{}/{} from {from}: {} attempt(s) at most, {:.1} s each",
            flow.dst,
            flow.dport,
            flow.protocol.name(),
            options.count,
            options.timeout.as_secs_f64()
        );
        let answer = session.probe(&node, &args).and_then(|text| {
            ProbeResult::parse(&text).map_err(|e| {
                bad_input(format!(
                    "the log of the probe pod on node {node} holds no probe result: {e}"
                ))
            })
        });
        match answer {
            Ok(result) => attach(report, &result, &from),
            Err(e) => {
                eprintln!("skoop: the probe was not made: {e:#}");
                report.probe = Some(ProbeReport::not_run(&from, format!("{e:#}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_against_the_collectors_caps() {
        let d = ProbeOptions::default();
        assert_eq!((d.count(), d.timeout()), (3, Duration::from_secs(3)));
        assert!(ProbeOptions::new(20, Duration::from_secs(10)).is_ok());
        for (count, timeout, says) in [
            (0, Duration::from_secs(3), "--probe-count 0"),
            (21, Duration::from_secs(3), "--probe-count 21"),
            (3, Duration::from_secs(11), "--probe-timeout 11"),
            (3, Duration::from_millis(1), "--probe-timeout 0.001"),
        ] {
            let e = ProbeOptions::new(count, timeout).expect_err(says);
            assert!(skoop_error::is_bad_input(&e));
            assert!(e.to_string().contains(says), "{e}");
        }
        assert!(needs_live().to_string().contains("needs a live cluster"));
    }
}
