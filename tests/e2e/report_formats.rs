//! The graph outputs (dot, d2, svg) parse, and carry every suspicion of the
//! JSON report of the same flow; the text report's colours and --quiet.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::{Run, root, skoop};

/// Flows with branches (Service backends, ECMP), encapsulation, a drop on
/// one branch, a reply, and suspicions off the path.
const FLOWS: &[&[&str]] = &[
    &["--demo"],
    &[
        "--snapshot",
        "tests/fixtures/bundles/vxlan-ecmp-default",
        "-s",
        "10.244.0.5",
        "-d",
        "1.1.1.1",
        "-p",
        "443",
    ],
    &[
        "--snapshot",
        "tests/fixtures/bundles/vxlan-forward-drop-port",
        "-s",
        "10.244.0.5",
        "-d",
        "10.96.100.10",
        "-p",
        "80",
    ],
    &[
        "--snapshot",
        "tests/fixtures/bundles/host-gw-node-dump-missing",
        "-s",
        "10.244.0.5",
        "-d",
        "10.244.1.7",
        "-p",
        "8080",
    ],
];

fn run(flow: &[&str], format: &str) -> Run {
    let mut args = vec!["diagnose", "--format", format];
    args.extend_from_slice(flow);
    let r = skoop(&args);
    assert!(
        r.code == 0 || r.code == 3,
        "{flow:?} --format {format}: exit {}\n{}",
        r.code,
        r.stderr
    );
    r
}

fn messages(report: &Value) -> Vec<String> {
    report["suspicions"]
        .as_array()
        .expect("suspicions")
        .iter()
        .map(|s| s["message"].as_str().expect("message").to_string())
        .collect()
}

/// Every string value inside `v`.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Graphviz parses the DOT (`dot -Tjson`, the parsed graph with its
/// attributes unescaped); the strings of that graph.
fn graphviz_strings(dot: &str) -> Vec<String> {
    let mut child = Command::new("dot")
        .arg("-Tjson")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("graphviz `dot` runs (tests/setup installs graphviz)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(dot.as_bytes())
        .expect("write dot");
    let out = child.wait_with_output().expect("dot");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "graphviz: {err}\n{dot}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("dot -Tjson is JSON");
    let mut s = Vec::new();
    strings(&v, &mut s);
    s
}

/// A parser for the D2 subset skoop writes: `key: "label" {` blocks,
/// `a -> b: "label" {`, `attr: value` lines and `}`. Returns the unescaped
/// strings; fails on anything else, unbalanced blocks or edges to
/// undeclared shapes.
fn d2_strings(src: &str) -> Vec<String> {
    fn unquote(s: &str, line: &str) -> String {
        let inner = s
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or_else(|| panic!("d2: unquoted value in {line:?}"));
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(c) => out.push(c),
                    None => panic!("d2: dangling escape in {line:?}"),
                },
                '"' => panic!("d2: unescaped quote in {line:?}"),
                '$' => panic!("d2: unescaped substitution in {line:?}"),
                c => out.push(c),
            }
        }
        out
    }
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    };
    let mut depth = 0usize;
    let mut shapes = Vec::new();
    let mut edges = Vec::new();
    let mut out = Vec::new();
    for line in src.lines() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if t == "}" {
            depth = depth.checked_sub(1).expect("d2: unbalanced }");
            continue;
        }
        let (key, value) = t
            .split_once(": ")
            .unwrap_or_else(|| panic!("d2: not `key: value` in {line:?}"));
        let (value, opens) = match value.strip_suffix(" {") {
            Some(v) => (v, true),
            None => (value, false),
        };
        if let Some((a, b)) = key.split_once(" -> ") {
            assert!(ident(a) && ident(b), "d2: bad edge {line:?}");
            edges.push((a.to_string(), b.to_string()));
        } else {
            assert!(ident(key), "d2: bad key {line:?}");
            if depth == 0 {
                shapes.push(key.to_string());
            }
        }
        if value.starts_with('"') {
            out.push(unquote(value, line));
        } else {
            assert!(
                value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "d2: bad bare value {line:?}"
            );
        }
        if opens {
            depth += 1;
        }
    }
    assert_eq!(depth, 0, "d2: unclosed block");
    for (a, b) in edges {
        assert!(
            shapes.contains(&a) && shapes.contains(&b),
            "d2: edge {a} -> {b}"
        );
    }
    out
}

#[test]
fn graph_outputs_parse_and_carry_every_suspicion() {
    let which = Command::new("dot").arg("-V").output();
    assert!(
        which.is_ok_and(|o| o.status.success()),
        "graphviz `dot` is missing: run tests/setup as root (apt-get install graphviz)"
    );
    for flow in FLOWS {
        let report = run(flow, "json").json();
        let msgs = messages(&report);
        assert!(!msgs.is_empty(), "{flow:?} has no suspicion to look for");
        let in_any = |list: &[String], m: &str| list.iter().any(|s| s.contains(m));

        let dot = run(flow, "dot").stdout;
        let parsed = graphviz_strings(&dot);
        let d2 = d2_strings(&run(flow, "d2").stdout);
        let svg_text = run(flow, "svg").stdout;
        let svg = roxmltree::Document::parse(&svg_text)
            .unwrap_or_else(|e| panic!("{flow:?}: svg is not well-formed XML: {e}"));
        let titles: Vec<String> = svg
            .descendants()
            .filter(|n| n.has_tag_name("title"))
            .filter_map(|n| n.text().map(str::to_string))
            .collect();
        for m in &msgs {
            assert!(in_any(&parsed, m), "{flow:?}: dot lacks {m:?}");
            assert!(in_any(&d2, m), "{flow:?}: d2 lacks {m:?}");
            assert!(in_any(&titles, m), "{flow:?}: svg lacks {m:?}");
        }
        // Every net-node and link of the JSON path is drawn.
        let nodes = svg
            .descendants()
            .filter(|n| n.attribute("class").is_some_and(|c| c.starts_with("node ")))
            .count();
        assert_eq!(
            nodes,
            report["path"]["nodes"].as_array().map_or(0, Vec::len),
            "{flow:?}"
        );
        // Branches are told apart: each edge's title starts with the
        // branches that cross it (`request #1, #2`).
        let edge_branches: Vec<String> = svg
            .descendants()
            .filter(|n| n.attribute("class").is_some_and(|c| c.starts_with("edge ")))
            .filter_map(|g| g.children().find(|c| c.has_tag_name("title")))
            .filter_map(|t| t.text().and_then(|t| t.lines().next()).map(str::to_string))
            .collect();
        for dir in ["request", "reply"] {
            let branches: Vec<&Value> = report["path"]["branches"]
                .as_array()
                .map(|b| b.iter().filter(|b| b["direction"] == dir).collect())
                .unwrap_or_default();
            for (i, b) in branches.iter().enumerate() {
                if b["links"].as_array().is_none_or(Vec::is_empty) {
                    continue;
                }
                let tag = format!("#{}", i + 1);
                assert!(
                    edge_branches.iter().any(|l| l
                        .strip_prefix(&format!("{dir} "))
                        .is_some_and(|rest| rest.split(", ").any(|t| t == tag))),
                    "{flow:?}: no link is labelled {dir} {tag}: {edge_branches:?}"
                );
            }
        }
    }
}

#[test]
fn svg_marks_the_drop_and_colours_by_level() {
    let report = run(&["--demo"], "json").json();
    let dropped: Vec<String> = report["path"]["branches"]
        .as_array()
        .expect("branches")
        .iter()
        .filter(|b| b["end"]["kind"] == "dropped")
        .map(|b| b["end"]["at"]["id"].as_str().expect("id").to_string())
        .collect();
    assert!(!dropped.is_empty(), "the demo drops a branch");
    let svg_text = run(&["--demo"], "svg").stdout;
    let svg = roxmltree::Document::parse(&svg_text).expect("svg parses");
    for g in svg
        .descendants()
        .filter(|n| n.attribute("class").is_some_and(|c| c.starts_with("node ")))
    {
        let title = g
            .children()
            .find(|c| c.has_tag_name("title"))
            .and_then(|t| t.text())
            .unwrap_or_default();
        let id = title
            .lines()
            .next()
            .and_then(|l| l.split_once(' '))
            .map(|x| x.1);
        let marked = g
            .descendants()
            .any(|n| n.text().is_some_and(|t| t.contains("DROPPED")));
        let is_dropped = id.is_some_and(|id| dropped.iter().any(|d| d == id));
        assert_eq!(marked, is_dropped, "{title}");
        // The worst level of its suspicions, in the documented colour
        // (docs/report-formats.md).
        let worst = report["suspicions"]
            .as_array()
            .expect("suspicions")
            .iter()
            .filter(|s| s["node"].as_str() == id)
            .filter_map(|s| s["level"].as_str())
            .max_by_key(|l| {
                ["INFO", "WARNING", "CRITICAL", "FATAL"]
                    .iter()
                    .position(|x| x == l)
            });
        let colour = match worst {
            None => "#e6edf5",
            Some("INFO") => "#8fd19e",
            Some("WARNING") => "#ffc45c",
            Some("CRITICAL") => "#f2646e",
            Some(_) => "#b0124a",
        };
        let fill = g
            .descendants()
            .find(|n| n.attribute("class") == Some("shape"))
            .and_then(|n| n.attribute("fill"));
        assert_eq!(fill, Some(colour), "{title}");
    }
}

#[test]
fn quiet_prints_the_verdict_line_alone() {
    let full = skoop(&["diagnose", "--demo"]);
    let quiet = skoop(&["diagnose", "--demo", "--quiet"]);
    assert_eq!(quiet.code, full.code);
    let last = full.stdout.lines().last().expect("text report");
    assert!(last.starts_with("Verdict: BROKEN"), "{last}");
    assert_eq!(quiet.stdout, format!("{last}\n"));
}

/// The text report through a pseudo-terminal (`script`): coloured, unless
/// NO_COLOR is set; never coloured into a pipe.
#[test]
fn text_colours_only_on_a_terminal() {
    let bin = env!("CARGO_BIN_EXE_skoop");
    let pty = |no_color: bool| {
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &format!("{bin} diagnose --demo"), "/dev/null"])
            .current_dir(root())
            .env("SKOOP_CACHE_DIR", root().join("target").join("test-cache"))
            .stdin(Stdio::null());
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let out = cmd.output().expect("script (util-linux) runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = pty(false);
    assert!(
        coloured.contains("\x1b[1;31mVerdict: BROKEN"),
        "{coloured:?}"
    );
    assert!(
        coloured.contains("\x1b[1;31mCRITICAL\x1b[0m"),
        "{coloured:?}"
    );
    let plain = pty(true);
    assert!(
        plain.contains("Verdict: BROKEN") && !plain.contains('\x1b'),
        "{plain:?}"
    );
    let piped = skoop(&["diagnose", "--demo"]);
    assert!(!piped.stdout.contains('\x1b'));
}

/// The JSON names the routes and rules that decided at each hop: at the node
/// whose FORWARD chain drops port 8080, the drop and that very rule (as the
/// fixture's iptables-save text has it); elsewhere the routes taken.
#[test]
fn decisions_name_the_rule_and_route_that_decided() {
    let flow = FLOWS[2];
    let report = run(flow, "json").json();
    let dump = std::fs::read_to_string(
        root().join("tests/fixtures/bundles/vxlan-forward-drop-port/nodes/node-1.json"),
    )
    .expect("node-1 dump");
    let dump: Value = serde_json::from_str(&dump).expect("dump JSON");
    let rule = dump["host"]["iptables"]
        .as_str()
        .expect("iptables text")
        .lines()
        .find(|l| l.starts_with("-A FORWARD") && l.ends_with("-j DROP"))
        .expect("the injected FORWARD drop")
        .trim_start_matches("-A FORWARD ")
        .to_string();
    let decisions = report["path"]["decisions"].as_array().expect("decisions");
    let drop = decisions
        .iter()
        .find(|d| {
            d["at"]["id"] == "node-1" && d["fate"].as_str().is_some_and(|f| f.starts_with("drop: "))
        })
        .unwrap_or_else(|| panic!("no drop decided at node-1: {decisions:#?}"));
    assert!(
        drop["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .filter_map(Value::as_str)
            .any(|r| r.starts_with("filter FORWARD #") && r.ends_with(&rule)),
        "the drop at node-1 does not name `{rule}`: {drop:#}"
    );
    // The request left the client pod by its default route, as decided there.
    assert!(
        decisions.iter().any(|d| d["at"]["type"] == "pod"
            && d["fate"]
                .as_str()
                .is_some_and(|f| f.starts_with("transmit on eth0"))
            && d["route"]
                .as_str()
                .is_some_and(|r| r.starts_with("default via"))),
        "{decisions:#?}"
    );
}
