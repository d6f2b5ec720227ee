//! The text report for people, and the JSON report for tools. On a
//! terminal the text is coloured as it is written: the level of each
//! suspicion, the end of a failed branch and the verdict; the words stay as
//! they are, so the coloured text reads the same without colour.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use skoop_engine::diagnose::{Branch, End, Leg};
use skoop_engine::path::Action;
use skoop_engine::report::Report;
use skoop_engine::suspicion::{Level, Suspicion};

const RESET: &str = "\x1b[0m";

/// Whether to write ANSI colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    Off,
    On,
}

impl Colour {
    /// `text` in the colour `sgr` selects, or as it is.
    fn paint(self, sgr: &str, text: &str) -> String {
        match self {
            Colour::On => format!("{sgr}{text}{RESET}"),
            Colour::Off => text.to_string(),
        }
    }
}

fn level_sgr(level: Level) -> &'static str {
    match level {
        Level::Fatal => "\x1b[1;35m",
        Level::Critical => "\x1b[1;31m",
        Level::Warning => "\x1b[33m",
        Level::Info => "\x1b[32m",
    }
}

/// The JSON report: the report's serialized fields.
pub fn json(report: &Report) -> String {
    // Serializing plain data cannot fail.
    serde_json::to_string_pretty(report).unwrap_or_default() + "\n"
}

/// The text report.
pub fn render(report: &Report, colour: Colour) -> String {
    let mut out = String::new();
    let s = &report.settings;
    let _ = writeln!(
        out,
        "skoop diagnose {} -> {}:{}/{}  ({}, {}, kube-proxy {}; facts: {})",
        report.src_label(),
        report.dst_label(),
        report.port,
        report.protocol,
        s.network_plugin,
        s.cloud_provider,
        s.proxy_mode.name(),
        report.source
    );
    for dir in [Leg::Request, Leg::Reply] {
        let branches: Vec<&Branch> = report
            .path
            .branches
            .iter()
            .filter(|b| b.leg == dir)
            .collect();
        if branches.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{}:",
            if dir == Leg::Request {
                "Request"
            } else {
                "Reply"
            }
        );
        for (i, b) in branches.iter().enumerate() {
            branch(report, &mut out, i + 1, b, colour);
        }
    }
    if !report.policy.is_empty() {
        let _ = writeln!(out, "\nPolicy:");
        for v in &report.policy {
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
    if report.suspicions.is_empty() {
        let _ = writeln!(out, "  none");
    }
    let mut by_node: BTreeMap<String, Vec<&Suspicion>> = BTreeMap::new();
    for sp in &report.suspicions {
        let key = sp.node.clone().unwrap_or_else(|| "(cluster)".to_string());
        by_node.entry(key).or_default().push(sp);
    }
    let mut groups: Vec<(String, Vec<&Suspicion>)> = by_node.into_iter().collect();
    groups.sort_by_key(|(_, v)| std::cmp::Reverse(v.iter().map(|s| s.level).max()));
    for (node, list) in groups {
        let _ = writeln!(out, "  {node}");
        for sp in list {
            // The padding stays outside the colour, so columns line up.
            let name = sp.level.name();
            let pad = " ".repeat(9usize.saturating_sub(name.len()));
            let _ = writeln!(
                out,
                "    {}{pad} {}",
                colour.paint(level_sgr(sp.level), name),
                sp.message
            );
        }
    }
    if let Some(e) = &report.error {
        let _ = writeln!(
            out,
            "\nExtension failure: {e}\nThe branches it ended are unfinished; the path above is partial."
        );
    }
    if let (Some(p), Some(line)) = (&report.probe, probe_line(report, colour)) {
        let _ = writeln!(
            out,
            "\nProbe (a real connection from {}):\n  {line}",
            p.from
        );
    }
    let _ = writeln!(out, "\n{}", verdict_line(report, colour));
    out
}

/// How long the simulated part of the probe line quotes a suspicion.
const QUOTED: usize = 80;

/// `simulated: BROKEN at node-1 (FDB entry stale); probe: timed out after 3 s
/// — agrees`: the simulation and the real packet side by side (`--probe`),
/// in every format; None without a probe.
pub fn probe_line(report: &Report, colour: Colour) -> Option<String> {
    let p = report.probe.as_ref()?;
    let cause = report
        .suspicions
        .iter()
        .find(|s| s.level.blocking())
        .filter(|_| report.broken());
    let simulated = match cause {
        Some(s) => {
            let mut quoted: String = s.message.chars().take(QUOTED).collect();
            if s.message.chars().count() > QUOTED {
                quoted.push('…');
            }
            format!(
                "{} at {} ({quoted})",
                report.verdict.to_uppercase(),
                s.node.as_deref().unwrap_or("the cluster")
            )
        }
        None => report.verdict.to_uppercase(),
    };
    let judged = if p.attempts == 0 {
        String::new()
    } else if !p.agrees {
        format!(" — {}: {}", colour.paint("\x1b[1;33m", "DISAGREES"), p.why)
    } else if !p.conclusive {
        format!(" — inconclusive: {}", p.why)
    } else {
        " — agrees".to_string()
    };
    Some(format!(
        "simulated: {simulated}; probe: {}{judged}",
        p.detail
    ))
}

/// `Verdict: BROKEN (0 fatal, 1 critical, 2 warning, 0 info)`: the last
/// line of the text report, and all `--quiet` prints.
pub fn verdict_line(report: &Report, colour: Colour) -> String {
    let count = |l: Level| report.suspicions.iter().filter(|s| s.level == l).count();
    let line = format!(
        "Verdict: {} ({} fatal, {} critical, {} warning, {} info)",
        report.verdict.to_uppercase(),
        count(Level::Fatal),
        count(Level::Critical),
        count(Level::Warning),
        count(Level::Info)
    );
    let sgr = match report.verdict {
        "healthy" => "\x1b[1;32m",
        "broken" => "\x1b[1;31m",
        _ => "\x1b[1;33m",
    };
    colour.paint(sgr, &line)
}

fn branch(report: &Report, out: &mut String, n: usize, b: &Branch, colour: Colour) {
    let (end, failed) = match &b.end {
        End::Delivered { at } => (format!("delivered at {at}"), false),
        End::Dropped { at, packet: None } => (format!("DROPPED at {at}"), true),
        End::Dropped {
            at,
            packet: Some(p),
        } => (format!("DROPPED at {at}: {}", p.tuple()), true),
        End::Loop { at } => (format!("LOOP at {at}"), true),
        End::HopLimit { at } => (format!("HOP LIMIT at {at}"), true),
        End::Unfinished { at, .. } => (format!("not followed past {at}"), false),
    };
    let head = format!("  #{n} {end}");
    let _ = writeln!(
        out,
        "{}",
        if failed {
            colour.paint("\x1b[31m", &head)
        } else {
            head
        }
    );
    let _ = writeln!(out, "    {}", b.start);
    let mut last = None;
    for &i in &b.links {
        let Some(l) = report.path.links.get(i) else {
            continue;
        };
        let mut hop = format!("      -> {}", l.kind.name());
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

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Send => "send",
        Action::Forward => "forward",
        Action::Serve => "serve",
        Action::Drop => "DROP",
        Action::Unknown => "unknown: facts missing",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skoop_engine::report::PathOut;
    use skoop_engine::settings::{ProxyMode, Settings};

    fn report(suspicions: Vec<Suspicion>, verdict: &'static str) -> Report {
        Report {
            src: "10.244.0.5".into(),
            dst: "10.96.0.10".into(),
            src_name: None,
            dst_name: None,
            port: 53,
            protocol: "udp".into(),
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
                nodes: Vec::new(),
                links: Vec::new(),
                branches: Vec::new(),
                decisions: Vec::new(),
            },
            error: None,
            probe: None,
            source: "a test".into(),
        }
    }

    #[test]
    fn colour_marks_levels_and_the_verdict_and_nothing_else() {
        let r = report(
            vec![Suspicion {
                level: Level::Critical,
                node: Some("node-1".into()),
                // A level word inside a message is not a level.
                message: "rule says FATAL here".into(),
            }],
            "broken",
        );
        let plain = render(&r, Colour::Off);
        let coloured = render(&r, Colour::On);
        assert!(plain.contains("\n    CRITICAL  rule says FATAL here\n"));
        assert!(coloured.contains("\n    \x1b[1;31mCRITICAL\x1b[0m  rule says FATAL here\n"));
        assert!(coloured.ends_with(
            "\x1b[1;31mVerdict: BROKEN (0 fatal, 1 critical, 0 warning, 0 info)\x1b[0m\n"
        ));
        // Removing the escapes gives the plain text back.
        assert_eq!(coloured.replace("\x1b[1;31m", "").replace(RESET, ""), plain);
    }

    #[test]
    fn the_probe_line_sets_simulation_and_packet_side_by_side() {
        use skoop_engine::probe::ProbeReport;
        use skoop_netstack::probe::ProbeOutcome;
        let mut r = report(
            vec![Suspicion {
                level: Level::Critical,
                node: Some("node-1".into()),
                message: "FDB entry stale".into(),
            }],
            "broken",
        );
        assert_eq!(probe_line(&r, Colour::Off), None);
        let p = ProbeReport {
            outcome: ProbeOutcome::TimedOut,
            detail: "timed out after 3 s".into(),
            from: "pod default/client-1 on node node-1".into(),
            attempts: 1,
            elapsed_ms: 3000.2,
            agrees: true,
            conclusive: true,
            why: "both say the flow fails".into(),
        };
        r.probe = Some(p.clone());
        assert_eq!(
            probe_line(&r, Colour::Off).as_deref(),
            Some(
                "simulated: BROKEN at node-1 (FDB entry stale); probe: timed out after 3 s — agrees"
            )
        );
        let text = render(&r, Colour::Off);
        assert!(
            text.contains("\nProbe (a real connection from pod default/client-1 on node node-1):\n  simulated: BROKEN"),
            "{text}"
        );
        assert!(text.ends_with("info)\n"), "the verdict stays last:\n{text}");
        // Every format says it.
        for (format, name, _) in crate::Format::ALL {
            let out = crate::render(&r, format, Colour::Off);
            let said = if format == crate::Format::Json {
                "\"detail\": \"timed out after 3 s\""
            } else {
                "probe: timed out after 3 s — agrees"
            };
            assert!(out.contains(said), "{name}:\n{out}");
        }
        r.probe = Some(ProbeReport {
            agrees: false,
            why: "the simulation found the flow broken, but the real packet got through".into(),
            detail: "connected 3 of 3 times (0.4 ms)".into(),
            ..p.clone()
        });
        let line = probe_line(&r, Colour::Off).unwrap_or_default();
        assert!(
            line.ends_with(
                "— DISAGREES: the simulation found the flow broken, but the real packet got through"
            ),
            "{line}"
        );
        r.probe = Some(ProbeReport::not_run(
            "x",
            "the source is outside the cluster".into(),
        ));
        assert_eq!(
            probe_line(&r, Colour::Off).as_deref(),
            Some(
                "simulated: BROKEN at node-1 (FDB entry stale); probe: not run: the source is outside the cluster"
            )
        );
    }

    #[test]
    fn a_healthy_verdict_is_green_and_json_is_the_report() {
        let r = report(Vec::new(), "healthy");
        assert_eq!(
            verdict_line(&r, Colour::On),
            "\x1b[1;32mVerdict: HEALTHY (0 fatal, 0 critical, 0 warning, 0 info)\x1b[0m"
        );
        let v: serde_json::Value = serde_json::from_str(&json(&r)).expect("JSON");
        assert_eq!(v["verdict"], "healthy");
        assert!(
            v.get("source").is_none(),
            "the source is not in the contract"
        );
    }
}
