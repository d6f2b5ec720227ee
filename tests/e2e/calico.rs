//! The Calico plugin: its built-in demo, the standalone calico.wasm that
//! replaces the built-in, and a bundle holding Calico's own `Node` objects.

use crate::common::{skoop, test_extension};

#[test]
fn demo_list_names_both_demos() {
    let run = skoop(&["diagnose", "--demo", "list"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("flannel"), "{}", run.stdout);
    assert!(run.stdout.contains("calico"), "{}", run.stdout);
}

#[test]
fn calico_demo_names_the_felix_policy_drop() {
    let run = skoop(&["diagnose", "--demo", "calico", "--format", "json"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["settings"]["network_plugin"], "calico");
    let found = report["suspicions"].as_array().is_some_and(|a| {
        a.iter().any(|s| {
            s["level"] == "FATAL"
                && s["node"] == "node-2"
                && s["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("felix") && m.contains("cali-tw-"))
        })
    });
    assert!(found, "{}", report["suspicions"]);
}

#[test]
fn unknown_demo_is_bad_input() {
    let run = skoop(&["diagnose", "--demo", "weave"]);
    crate::common::assert_bad_input(&run, "weave");
}

#[test]
fn standalone_calico_wasm_replaces_the_builtin() {
    let file = test_extension("calico");
    let path = file.to_string_lossy().into_owned();
    let run = skoop(&["--extension", &path, "diagnose", "--demo", "calico"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("extension calico")
            && run.stderr.contains("overrides the built-in one"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("felix"), "{}", run.stdout);
}

/// A NetworkPolicy felix has programmed: the drop is felix's (FATAL at the
/// node, naming its chain) and the policy's verdict the host's (CRITICAL at
/// the pod, naming the policy); the two agree, so nothing says they differ.
#[test]
fn a_programmed_network_policy_is_named_by_felix_and_by_the_objects() {
    let run = cross_node("calico-vxlan-knp-drop");
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    let list = report["suspicions"].as_array().expect("suspicions");
    let has = |level: &str, node: &str, words: &[&str]| {
        list.iter().any(|s| {
            s["level"] == level
                && s["node"] == node
                && s["message"]
                    .as_str()
                    .is_some_and(|m| words.iter().all(|w| m.contains(w)))
        })
    };
    assert!(has("FATAL", "node-2", &["felix", "DROP"]), "{list:#?}");
    assert!(
        has(
            "CRITICAL",
            "default/web-2",
            &["policy", "default/web-9090-only"]
        ),
        "{list:#?}"
    );
    assert!(
        !list.iter().any(|s| s["message"]
            .as_str()
            .is_some_and(|m| m.contains("intent and dataplane differ"))),
        "{list:#?}"
    );
}

/// Pools whose nodeSelectors serve every node and block, with blocks of
/// their blockSize, say nothing about them (the faults are fixture cases:
/// calico-*-node-selector-*, no-pool-*, block-size-*).
#[test]
fn node_selectors_that_fit_raise_nothing() {
    let run = cross_node("calico-multi-pool");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report = run.json();
    let noisy: Vec<_> = report["suspicions"]
        .as_array()
        .expect("suspicions")
        .iter()
        .filter(|s| {
            s["message"].as_str().is_some_and(|m| {
                m.contains("nodeSelector")
                    || m.contains("no enabled IPPool selects")
                    || m.contains("blockSize")
            })
        })
        .collect();
    assert!(noisy.is_empty(), "{noisy:#?}");
}

/// client-1 -> web-2:8080 (across nodes) on a fixture bundle, as JSON.
fn cross_node(bundle: &str) -> crate::common::Run {
    let dir = format!("tests/fixtures/bundles/{bundle}");
    skoop(&[
        "diagnose",
        "--snapshot",
        &dir,
        "-s",
        "10.244.0.5",
        "-d",
        "10.244.1.7",
        "-p",
        "8080",
        "--format",
        "json",
    ])
}
