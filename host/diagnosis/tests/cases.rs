//! Every case of tests/fixtures/cases.json, diagnosed through the library:
//! healthy flows stay quiet (nothing critical) and each fault bundle fires
//! exactly its suspicion. The expectations are the fixture generator's.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;
use skoop_diagnosis::{Context, Input, Request};
use skoop_error::is_bad_input;
use skoop_netstack::packet::Protocol;
use skoop_wasm::Registry;
use skoop_wasm::runtime::Runtime;

fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .expect("host/diagnosis is in the repository")
}

/// `word` as a whole word of `text`.
fn has_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// The built-in extensions, compiled once for every case.
fn registry() -> Registry {
    let cache = root().join("target/test-cache");
    Registry::load(Runtime::new(Some(cache)).expect("the runtime starts"), &[])
        .expect("the built-ins load")
}

/// A case's report as JSON and the exit status `skoop diagnose` would give.
fn diagnose(registry: &Registry, case: &Value) -> Result<(i64, Value), String> {
    let name = case["name"].as_str().unwrap_or("?");
    let bundle = case["bundle"].as_str().unwrap_or_default();
    let input = match bundle.strip_prefix("host/demos/") {
        Some(demo) => Input::Demo(demo.to_string()),
        None => Input::Bundle(root().join(bundle)),
    };
    let protocol = case["protocol"]
        .as_str()
        .and_then(Protocol::parse)
        .ok_or_else(|| format!("{name}: protocol"))?;
    let port = case["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("{name}: port"))?;
    let src = case["src"].as_str().unwrap_or_default();
    let dst = case["dst"].as_str().unwrap_or_default();
    let run = skoop_diagnosis::flow(src, dst, port, protocol)
        .and_then(|flow| Context::open(registry, Request::new(input), flow, None)?.diagnose(flow));
    match run {
        Ok(o) => {
            let code = match (&o.failed, o.report.broken()) {
                (Some(_), _) => 1,
                (None, true) => 3,
                (None, false) => 0,
            };
            let json = skoop_render::text::json(&o.report);
            Ok((
                code,
                serde_json::from_str(&json).map_err(|e| e.to_string())?,
            ))
        }
        Err(e) if is_bad_input(&e) => Err(format!("{name}: bad input: {e:#}")),
        Err(e) => Err(format!("{name}: {e:#}")),
    }
}

fn check(registry: &Registry, case: &Value) -> Result<(), String> {
    let name = case["name"].as_str().unwrap_or("?");
    let (code, report) = diagnose(registry, case)?;
    let expect = case["expect_exit"].as_i64().unwrap_or(-1);
    if code != expect {
        return Err(format!(
            "{name}: exit {code} (expected {expect})\n{report:#}"
        ));
    }
    let at_level = |levels: &[&str]| -> Vec<&Value> {
        report["suspicions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|s| s["level"].as_str().is_some_and(|l| levels.contains(&l)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let blocking = at_level(&["CRITICAL", "FATAL"]);
    // Lower-level suspicions a case expects, as lists of whole words.
    for (field, level) in [("expect_warning", "WARNING"), ("expect_info", "INFO")] {
        let Some(words) = case.get(field).and_then(Value::as_array) else {
            continue;
        };
        let words: Vec<&str> = words.iter().filter_map(Value::as_str).collect();
        let found = at_level(&[level]).iter().any(|s| {
            let msg = s["message"].as_str().unwrap_or_default();
            words.iter().all(|w| has_word(msg, w))
        });
        if !found {
            return Err(format!(
                "{name}: no {level} names {words:?}: {}",
                report["suspicions"]
            ));
        }
    }
    match case.get("fault").filter(|f| !f.is_null()) {
        None if blocking.is_empty() => Ok(()),
        None => Err(format!("{name}: healthy flow raised {blocking:?}")),
        Some(fault) => {
            let node = fault["node"].as_str().unwrap_or_default();
            let words: Vec<&str> = fault["keywords"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let names_fault = |s: &&Value| {
                let msg = s["message"].as_str().unwrap_or_default();
                words.iter().all(|w| has_word(msg, w))
            };
            if !blocking.iter().any(names_fault) {
                return Err(format!(
                    "{name}: no critical/fatal suspicion names {words:?}: {blocking:?}"
                ));
            }
            let elsewhere: Vec<&&Value> = blocking
                .iter()
                .filter(|s| s["node"].as_str() != Some(node))
                .collect();
            if !elsewhere.is_empty() {
                return Err(format!(
                    "{name}: blocking suspicions away from {node}: {elsewhere:?}"
                ));
            }
            Ok(())
        }
    }
}

#[test]
fn every_fixture_case() {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/cases.json")).expect("cases.json");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("cases.json is JSON");
    assert!(cases.len() >= 40, "cases.json lost cases");
    let registry = registry();
    let queue = Mutex::new(cases.iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                    let Some(case) = next else { break };
                    if let Err(e) = check(&registry, case) {
                        failures.lock().map(|mut f| f.push(e)).ok();
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_default();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn fault_cases_cover_every_required_fault() {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/cases.json")).expect("cases.json");
    // The faults issue #2 names, and a sample of the generator's others.
    for fault in [
        "pod-eth0-down",
        "pod-lo-down",
        "not-listening",
        "pod-routes-flushed",
        "pod-default-route-via-lo",
        "pod-input-drop",
        "pod-mtu",
        "cni0-down",
        "remote-route-missing",
        "wrong-gateway",
        "route-via-eth0",
        "fdb-missing",
        "ip-forward-off",
        "forward-drop",
        "svc-no-endpoints",
        "forward-drop-port",
        "veth-peer-down",
        "node-not-ready",
        "route-loop",
        "no-masquerade",
        "detour",
        "node-dump-missing",
    ] {
        assert!(text.contains(fault), "no case for {fault}");
    }
}
