//! A real connection attempt beside the simulation (`skoop diagnose --probe`):
//! whether the two agree, and what the report says of it. The simulation
//! says healthy or broken; the probe got through or it did not; they agree
//! when those match. A disagreement is itself a finding: the model missed
//! something, and the bundle of the cluster is what shows what.

use serde::Serialize;
use skoop_netstack::probe::{ProbeOutcome, ProbeResult};

use crate::diagnose::{Branch, End, Leg};
use crate::path::NetNodeKind;
use crate::report::Report;
use crate::suspicion::{Level, Suspicion};

/// The probe's part of a report (JSON `probe`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeReport {
    /// `connected`, `answered`, `retransmitted`, `refused`, `reset`,
    /// `timed-out`, `unreachable`, `no-reply`, or `unavailable` (not made).
    pub outcome: ProbeOutcome,
    /// The outcome for people: `timed out after 3 s`.
    pub detail: String,
    /// Where it ran: `pod default/client-1 on node node-1`.
    pub from: String,
    /// Attempts made.
    pub attempts: usize,
    /// The whole probe, in the collector.
    pub elapsed_ms: f64,
    /// False only when the simulation and the probe contradict each other.
    pub agrees: bool,
    /// False when the probe cannot confirm or refute the simulation (UDP
    /// silence, a Service backend the attempts may have missed, a probe not
    /// made); `agrees` is then true.
    pub conclusive: bool,
    /// Why they agree, disagree, or prove nothing.
    pub why: String,
}

impl ProbeReport {
    /// A probe that could not be made, and why.
    pub fn not_run(from: &str, why: String) -> ProbeReport {
        ProbeReport {
            outcome: ProbeOutcome::Unavailable,
            detail: format!("not run: {why}"),
            from: from.to_string(),
            attempts: 0,
            elapsed_ms: 0.0,
            agrees: true,
            conclusive: false,
            why: "no probe was made".into(),
        }
    }
}

/// What the simulation said, as far as a probe can check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simulated {
    Healthy,
    /// Broken on every way the packet may take: every attempt must fail.
    Broken,
    /// Broken on `failed` of the `ways` a packet may take (Service backends,
    /// ECMP next hops) while others get through: attempts may all take
    /// working ones.
    BrokenSome {
        failed: usize,
        ways: usize,
    },
    /// Partial or incomplete: the simulation could not follow the whole path.
    Unsure,
}

/// How a branch ended, as far as the comparison cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Delivered,
    /// Dropped, looped, out of hops.
    Failed,
    /// Not followed to its end.
    Unfinished,
}

impl Ending {
    pub fn of(end: &End) -> Ending {
        match end {
            End::Delivered { .. } => Ending::Delivered,
            End::Dropped { .. } | End::Loop { .. } | End::HopLimit { .. } => Ending::Failed,
            End::Unfinished { .. } => Ending::Unfinished,
        }
    }

    /// From the JSON report's `end.kind`.
    pub fn named(kind: &str) -> Ending {
        match kind {
            "delivered" => Ending::Delivered,
            "dropped" | "loop" | "hop-limit" => Ending::Failed,
            _ => Ending::Unfinished,
        }
    }
}

/// The simulation's verdict on `report`, as a probe can check it.
pub fn simulated(report: &Report) -> Simulated {
    let ends: Vec<(Leg, Ending)> = report
        .path
        .branches
        .iter()
        .map(|b: &Branch| (b.leg, Ending::of(&b.end)))
        .collect();
    simulated_from(report.verdict, report.broken(), &ends)
}

/// [`simulated`] from a report's parts: its `verdict`, whether it has a
/// CRITICAL or FATAL suspicion, and how each branch ended (a JSON report
/// gives them all).
pub fn simulated_from(verdict: &str, broken: bool, ends: &[(Leg, Ending)]) -> Simulated {
    if !broken {
        return if verdict == "healthy" {
            Simulated::Healthy
        } else {
            Simulated::Unsure
        };
    }
    let count = |leg: Leg, e: Option<Ending>| {
        ends.iter()
            .filter(|(l, end)| *l == leg && e.is_none_or(|e| e == *end))
            .count()
    };
    let requests = count(Leg::Request, None);
    let replies = count(Leg::Reply, None);
    let delivered = count(Leg::Request, Some(Ending::Delivered));
    let failed = ends.iter().filter(|(_, e)| *e == Ending::Failed).count();
    // Several ways, some failing, some getting through: a connection takes
    // one of them (kube-proxy and ECMP pick per connection).
    if failed > 0 && delivered > 0 && (requests > 1 || replies > 1) {
        Simulated::BrokenSome {
            failed,
            ways: requests.max(replies),
        }
    } else {
        Simulated::Broken
    }
}

/// Whether the simulation and a probe agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub agrees: bool,
    pub conclusive: bool,
    pub why: String,
}

impl Comparison {
    fn agree(why: impl Into<String>) -> Comparison {
        Comparison {
            agrees: true,
            conclusive: true,
            why: why.into(),
        }
    }
    fn disagree(why: impl Into<String>) -> Comparison {
        Comparison {
            agrees: false,
            conclusive: true,
            why: why.into(),
        }
    }
    fn neither(why: impl Into<String>) -> Comparison {
        Comparison {
            agrees: true,
            conclusive: false,
            why: why.into(),
        }
    }
}

/// Simulated healthy ⇔ the probe got through; simulated broken ⇔ it did
/// not. What cannot tell (UDP silence where no reply was expected, a probe
/// not made, attempts that may all have taken a working Service backend, a
/// simulation that could not see the whole path) is no disagreement.
pub fn compare(sim: Simulated, probe: &ProbeResult) -> Comparison {
    if probe.inconclusive() {
        return Comparison::neither(match probe.outcome {
            // The detail already says a UDP service need not answer.
            ProbeOutcome::NoReply => "no reply proves nothing",
            _ => "the probe could not be made",
        });
    }
    let reached = probe.reached();
    let n = probe.attempts.len();
    match (sim, reached) {
        (Simulated::Healthy, true) => Comparison::agree("both say the flow works"),
        (Simulated::Healthy, false) => Comparison::disagree(
            "the simulation found the path healthy, but the real packet did not get through",
        ),
        (Simulated::Broken | Simulated::BrokenSome { .. }, false) => {
            Comparison::agree("both say the flow fails")
        }
        (Simulated::Broken, true) => Comparison::disagree(
            "the simulation found the flow broken, but the real packet got through",
        ),
        (Simulated::BrokenSome { failed, ways }, true) => Comparison::neither(format!(
            "the simulation breaks {failed} of the {ways} ways the packet may take; the probe's {n} attempt(s) may all have taken working ones"
        )),
        (Simulated::Unsure, true) => Comparison::agree(
            "the packet got through, and the simulation found nothing wrong where it could look",
        ),
        (Simulated::Unsure, false) => Comparison::neither(
            "the simulation could not follow the whole path (facts missing): the failure may be where it could not look",
        ),
    }
}

/// The source net-node of the report's request (where a probe runs).
pub fn source_id(report: &Report) -> Option<&str> {
    report
        .path
        .branches
        .iter()
        .find(|b| b.leg == Leg::Request)
        .map(|b| b.start.id.as_str())
}

/// Put `probe` (made from `from`) beside the simulation in `report`: its
/// section, and a WARNING on the source net-node when the two disagree.
pub fn attach(report: &mut Report, probe: &ProbeResult, from: &str) {
    let cmp = compare(simulated(report), probe);
    if !cmp.agrees {
        let nodes: Vec<&str> = report
            .path
            .nodes
            .iter()
            .filter(|n| n.kind == NetNodeKind::Node)
            .map(|n| n.id.as_str())
            .collect();
        let snapshot = if nodes.is_empty() {
            "skoop snapshot -o DIR".to_string()
        } else {
            format!("skoop snapshot -o DIR --node {}", nodes.join(" --node "))
        };
        let message = format!(
            "the simulation and a real packet disagree: skoop says {}, but a {} probe from {from} to {}:{} {} — {}; the model missed something: please send the bundle ({snapshot}; `skoop diagnose --snapshot DIR` reproduces this diagnosis) with this report to skoop's maintainers",
            report.verdict.to_uppercase(),
            probe.protocol,
            probe.dst,
            probe.port,
            probe.detail,
            cmp.why,
        );
        report.suspicions.push(Suspicion {
            level: Level::Warning,
            node: source_id(report).map(str::to_string),
            message,
        });
        report
            .suspicions
            .sort_by_key(|s| std::cmp::Reverse(s.level));
    }
    report.probe = Some(ProbeReport {
        outcome: probe.outcome,
        detail: probe.detail.clone(),
        from: from.to_string(),
        attempts: probe.attempts.len(),
        elapsed_ms: probe.elapsed_ms,
        agrees: cmp.agrees,
        conclusive: cmp.conclusive,
        why: cmp.why,
    });
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use skoop_netstack::probe::{PROBE_VERSION, ProbeAttempt};

    use super::*;
    use crate::path::NetNode;
    use crate::report::PathOut;
    use crate::settings::{ProxyMode, Settings};

    fn probe(outcome: ProbeOutcome, protocol: &str, reply_expected: bool) -> ProbeResult {
        ProbeResult {
            version: PROBE_VERSION,
            from: "host netns".into(),
            src: None,
            dst: Ipv4Addr::new(10, 244, 1, 7),
            port: 8080,
            protocol: protocol.into(),
            reply_expected,
            outcome,
            detail: format!("{} after 3 s", outcome.name()),
            attempts: vec![ProbeAttempt {
                outcome,
                detail: String::new(),
                elapsed_ms: 3000.0,
                errno: None,
                icmp: None,
            }],
            elapsed_ms: 3000.5,
            timeout_ms: 3000,
        }
    }

    fn pod(id: &str) -> NetNode {
        NetNode {
            kind: NetNodeKind::Pod,
            id: id.into(),
        }
    }

    fn branch(leg: Leg, end: End) -> Branch {
        Branch {
            leg,
            links: Vec::new(),
            start: pod("default/client-1"),
            end,
        }
    }

    fn report(verdict: &'static str, suspicions: Vec<Suspicion>, branches: Vec<Branch>) -> Report {
        Report {
            src: "10.244.0.5".into(),
            dst: "10.244.1.7".into(),
            src_name: None,
            dst_name: None,
            port: 8080,
            protocol: "tcp".into(),
            settings: Settings {
                network_plugin: "flannel".into(),
                cloud_provider: "generic".into(),
                proxy_mode: ProxyMode::Iptables,
                cluster_cidr: None,
                masquerade_mark: None,
                masquerade_all: false,
            },
            verdict,
            suspicions,
            policy: Vec::new(),
            path: PathOut {
                nodes: vec![
                    pod("default/client-1"),
                    NetNode {
                        kind: NetNodeKind::Node,
                        id: "node-1".into(),
                    },
                ],
                links: Vec::new(),
                branches,
                decisions: Vec::new(),
            },
            error: None,
            probe: None,
            source: "a test".into(),
        }
    }

    fn critical() -> Vec<Suspicion> {
        vec![Suspicion {
            level: Level::Critical,
            node: Some("node-1".into()),
            message: "FDB entry for node-2 is stale".into(),
        }]
    }

    fn delivered() -> End {
        End::Delivered {
            at: pod("default/web-2"),
        }
    }

    fn dropped() -> End {
        End::Dropped {
            at: pod("node-1"),
            packet: None,
        }
    }

    fn healthy() -> Report {
        report(
            "healthy",
            Vec::new(),
            vec![
                branch(Leg::Request, delivered()),
                branch(Leg::Reply, delivered()),
            ],
        )
    }

    fn broken() -> Report {
        report("broken", critical(), vec![branch(Leg::Request, dropped())])
    }

    #[test]
    fn agreement_in_both_directions() {
        let ok = probe(ProbeOutcome::Connected, "tcp", false);
        let timeout = probe(ProbeOutcome::TimedOut, "tcp", false);
        assert_eq!(simulated(&healthy()), Simulated::Healthy);
        assert_eq!(simulated(&broken()), Simulated::Broken);
        let c = compare(Simulated::Healthy, &ok);
        assert!(c.agrees && c.conclusive, "{c:?}");
        let c = compare(Simulated::Broken, &timeout);
        assert!(c.agrees && c.conclusive, "{c:?}");
        // A retransmitted SYN is a packet lost: a failure.
        let late = probe(ProbeOutcome::Retransmitted, "tcp", false);
        assert!(compare(Simulated::Broken, &late).agrees);
    }

    #[test]
    fn disagreement_in_both_directions() {
        let ok = probe(ProbeOutcome::Connected, "tcp", false);
        let refused = probe(ProbeOutcome::Refused, "tcp", false);
        let c = compare(Simulated::Healthy, &refused);
        assert!(!c.agrees && c.conclusive, "{c:?}");
        let c = compare(Simulated::Broken, &ok);
        assert!(!c.agrees && c.conclusive, "{c:?}");
        let answered = probe(ProbeOutcome::Answered, "udp", false);
        assert!(!compare(Simulated::Broken, &answered).agrees);
        let silent_dns = probe(ProbeOutcome::NoReply, "udp", true);
        assert!(!compare(Simulated::Healthy, &silent_dns).agrees);
    }

    #[test]
    fn udp_silence_is_no_disagreement() {
        let silent = probe(ProbeOutcome::NoReply, "udp", false);
        for sim in [Simulated::Healthy, Simulated::Broken, Simulated::Unsure] {
            let c = compare(sim, &silent);
            assert!(c.agrees && !c.conclusive, "{sim:?}: {c:?}");
            assert!(c.why.contains("proves nothing"), "{}", c.why);
        }
        let not_made = probe(ProbeOutcome::Unavailable, "sctp", false);
        let c = compare(Simulated::Healthy, &not_made);
        assert!(c.agrees && !c.conclusive, "{c:?}");
    }

    #[test]
    fn a_backend_the_attempts_missed_is_no_disagreement() {
        let some = report(
            "broken",
            critical(),
            vec![
                branch(Leg::Request, delivered()),
                branch(Leg::Request, dropped()),
                branch(Leg::Reply, delivered()),
            ],
        );
        let sim = simulated(&some);
        assert_eq!(sim, Simulated::BrokenSome { failed: 1, ways: 2 });
        let c = compare(sim, &probe(ProbeOutcome::Connected, "tcp", false));
        assert!(c.agrees && !c.conclusive, "{c:?}");
        assert!(compare(sim, &probe(ProbeOutcome::TimedOut, "tcp", false)).conclusive);
        // One way there and one back, the reply dropped: every attempt fails.
        let reply_lost = report(
            "broken",
            critical(),
            vec![
                branch(Leg::Request, delivered()),
                branch(Leg::Reply, dropped()),
            ],
        );
        assert_eq!(simulated(&reply_lost), Simulated::Broken);
        let partial = report("partial", Vec::new(), Vec::new());
        assert_eq!(simulated(&partial), Simulated::Unsure);
        let c = compare(
            Simulated::Unsure,
            &probe(ProbeOutcome::TimedOut, "tcp", false),
        );
        assert!(c.agrees && !c.conclusive, "{c:?}");
    }

    #[test]
    fn a_disagreement_is_a_warning_on_the_source_asking_for_the_bundle() {
        let mut r = healthy();
        attach(
            &mut r,
            &probe(ProbeOutcome::TimedOut, "tcp", false),
            "pod default/client-1 on node node-1",
        );
        let p = r.probe.as_ref().expect("probe section");
        assert!(!p.agrees && p.conclusive);
        assert_eq!(p.attempts, 1);
        let w = r.suspicions.first().expect("a suspicion");
        assert_eq!(w.level, Level::Warning);
        assert_eq!(w.node.as_deref(), Some("default/client-1"));
        for words in [
            "disagree",
            "model missed something",
            "skoop snapshot -o DIR --node node-1",
            "--snapshot DIR",
        ] {
            assert!(w.message.contains(words), "{words}: {}", w.message);
        }
        // Agreement adds no suspicion.
        let mut r = broken();
        attach(&mut r, &probe(ProbeOutcome::TimedOut, "tcp", false), "x");
        assert_eq!(r.suspicions.len(), 1);
        assert!(r.probe.as_ref().is_some_and(|p| p.agrees));
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["probe"]["outcome"], "timed-out");
        assert_eq!(v["probe"]["agrees"], true);
        assert_eq!(v["probe"]["elapsed_ms"], 3000.5);
    }
}
