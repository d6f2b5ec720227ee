//! Every case of tests/fixtures/cases.json: healthy flows stay quiet (exit 0,
//! nothing critical) and each fault bundle fires exactly its suspicion (exit 3).

use std::sync::Mutex;

use serde_json::Value;

use crate::common::{has_word, root, skoop};

fn check(case: &Value) -> Result<(), String> {
    let name = case["name"].as_str().unwrap_or("?");
    let bundle = case["bundle"].as_str().unwrap_or_default();
    let port = case["port"].to_string();
    let mut args = vec![
        "diagnose",
        "--format",
        "json",
        "-s",
        case["src"].as_str().unwrap_or_default(),
        "-d",
        case["dst"].as_str().unwrap_or_default(),
        "-p",
        &port,
        "--protocol",
        case["protocol"].as_str().unwrap_or("tcp"),
    ];
    if bundle == "host/demos/flannel" {
        args.push("--demo");
    } else {
        args.extend(["--snapshot", bundle]);
    }
    let run = skoop(&args);
    let expect = case["expect_exit"].as_i64().unwrap_or(-1);
    if i64::from(run.code) != expect {
        return Err(format!(
            "{name}: exit {} (expected {expect})\n{}{}",
            run.code, run.stdout, run.stderr
        ));
    }
    let report = run.json();
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
    // Lower-level findings a case expects, as lists of whole words.
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
    let queue = Mutex::new(cases.iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                    let Some(case) = next else { break };
                    if let Err(e) = check(case) {
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
