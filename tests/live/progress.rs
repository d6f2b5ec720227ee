//! The progress line on a terminal: run under `script`, which gives the
//! binary a pseudo-terminal, live mode says what it is listing and which
//! collector pods it waits for, rewriting one line; through a pipe it says
//! nothing of the kind. Names resolve against what the API server lists.

use std::process::Command;

use crate::common::{FLOW, kubeconfig, root, server};

#[test]
fn live_mode_draws_a_progress_line_on_a_terminal_only() {
    let api = server();
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = kubeconfig(dir.path(), &api.url, "fake", "t0ken");
    let skoop = env!("CARGO_BIN_EXE_skoop");
    let args = format!(
        "{skoop} diagnose --kubeconfig {} -s {} -d {} -p {} -q",
        kc.display(),
        FLOW.0,
        FLOW.1,
        FLOW.2
    );
    let out = Command::new("script")
        .args(["-qec", &args, "/dev/null"])
        .current_dir(root())
        .env("SKOOP_CACHE_DIR", root().join("target").join("test-cache"))
        .env("HOME", dir.path())
        .env("TERM", "xterm")
        .env_remove("KUBECONFIG")
        .output()
        .expect("script (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\r\x1b[2Kskoop: listing the cluster's objects: "),
        "no listing line on the terminal:\n{text:?}"
    );
    assert!(
        text.contains("\r\x1b[2Kskoop: collecting node dumps: 0/1 done (node node-"),
        "no collector line on the terminal:\n{text:?}"
    );
    assert!(text.contains("Verdict: "), "{text:?}");
    // Erased before the verdict: the report starts on a clean line.
    let verdict = text.find("Verdict: ").unwrap_or_default();
    let before = &text[..verdict];
    let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
    assert!(
        !line.contains("skoop:"),
        "the verdict shares a line: {text:?}"
    );
    // Through a pipe: no progress line.
    let run = crate::common::diagnose(&api, dir.path(), &[]);
    assert!(!run.stderr.contains("\x1b[2K"), "{}", run.stderr);
}

#[test]
fn names_resolve_against_the_live_cluster() {
    let api = server();
    let dir = tempfile::tempdir().expect("tempdir");
    let run = crate::common::diagnose_flow(
        &api,
        dir.path(),
        ("default/client-1", "web.default.svc.cluster.local", "http"),
        &[],
    );
    assert!(run.code == 0 || run.code == 3, "{}", run.stderr);
    let r = run.json();
    assert_eq!(
        (r["src"].as_str(), r["dst"].as_str(), r["port"].as_u64()),
        (Some(FLOW.0), Some(FLOW.1), Some(80)),
        "{r}"
    );
    assert_eq!(r["dst_name"], "svc/default/web");
}
