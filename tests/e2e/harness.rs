//! The vendor's harness: host calls recorded and replayed without a bundle,
//! test cases with expected verdicts, and the diff between two builds.

use crate::common::{root, skoop, test_extension};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("skoop-harness-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn recorded_host_calls_replay_as_recorded_and_another_build_differs() {
    let dir = scratch("replay");
    let rec = dir.join("calls.json");
    let rec_s = rec.to_string_lossy().into_owned();
    let run = skoop(&["diagnose", "--demo", "-q", "--record-host-calls", &rec_s]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let text = std::fs::read_to_string(&rec).expect("the recording is written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(v["format"], "skoop-host-calls/1");
    let flannel = v["extensions"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == "flannel"))
        .expect("flannel is recorded");
    let calls = flannel["calls"].as_array().expect("calls");
    assert!(
        calls.iter().any(|c| c["export"] == "plugin.setup"),
        "{calls:?}"
    );
    let imports: usize = calls
        .iter()
        .map(|c| c["imports"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(imports > 10, "{imports} imports recorded");
    // The host's kernel walk is what a plugin is handed at each hop.
    let walk = calls
        .iter()
        .find(|c| c["export"] == "simple-plugin-node.to-pod")
        .expect("a to-pod call is recorded");
    assert!(
        walk["args"][1]["branches"].is_array(),
        "the kernel walk handed to the plugin is recorded: {walk}"
    );

    // The same build, with no bundle: every answer as recorded.
    let replay = skoop(&["extension", "replay", &rec_s]);
    assert_eq!(replay.code, 0, "{}{}", replay.stdout, replay.stderr);
    let n = calls.len();
    assert!(
        replay
            .stdout
            .contains(&format!("{n} of {n} calls answered as recorded")),
        "{}",
        replay.stdout
    );

    // Another build named flannel answers differently, and says where.
    let other = test_extension("third-party");
    let replay = skoop(&[
        "--extension",
        &other.to_string_lossy(),
        "extension",
        "replay",
        &rec_s,
    ]);
    assert_eq!(replay.code, 3, "{}{}", replay.stdout, replay.stderr);
    assert!(
        replay.stdout.contains("the answer differs"),
        "{}",
        replay.stdout
    );
    assert!(replay.stdout.contains("recorded: "), "{}", replay.stdout);

    // A file that is not a recording is bad input, named.
    std::fs::write(&rec, "{\"format\": \"x\"}").expect("write");
    let bad = skoop(&["extension", "replay", &rec_s]);
    assert_eq!(bad.code, 2, "{}{}", bad.stdout, bad.stderr);
    assert!(
        bad.stderr.contains("not a host-call recording"),
        "{}",
        bad.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn extension_test_prints_a_line_per_case_and_fails_on_any_failure() {
    let dir = scratch("test");
    let vxlan = root().join("tests/fixtures/bundles/vxlan");
    let cases = serde_json::json!([
        {"name": "demo-stale-fdb", "bundle": "demo", "src": "10.244.0.5", "dst": "10.96.100.10",
         "port": 80, "verdict": "broken",
         "suspicions": [{"level": "CRITICAL", "words": ["FDB", "node-3", "192.168.0.23"]}]},
        {"name": "vxlan-cross-node", "bundle": vxlan.to_string_lossy(), "src": "10.244.0.5",
         "dst": "10.244.1.7", "port": 8080, "verdict": "healthy"},
    ]);
    std::fs::write(dir.join("cases.json"), cases.to_string()).expect("write");
    let d = dir.to_string_lossy().into_owned();
    let run = skoop(&["extension", "test", &d]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("ok    demo-stale-fdb"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("2 passed, 0 failed"), "{}", run.stdout);

    // A wrong expectation fails, saying what was found instead.
    let mut wrong = cases.clone();
    wrong[1]["verdict"] = "broken".into();
    wrong[0]["suspicions"][0]["words"] = serde_json::json!(["no-such-word"]);
    std::fs::write(dir.join("cases.json"), wrong.to_string()).expect("write");
    let run = skoop(&["extension", "test", &d]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("FAIL  vxlan-cross-node  expected broken, got healthy"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("no CRITICAL suspicion names [\"no-such-word\"]"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("0 passed, 2 failed"), "{}", run.stdout);

    // The plugin loaded with --extension is the one under test.
    std::fs::write(dir.join("cases.json"), cases.to_string()).expect("write");
    let trap = test_extension("trap");
    let run = skoop(&[
        "--extension",
        &trap.to_string_lossy(),
        "extension",
        "test",
        &d,
    ]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("the diagnosis stopped: extension trap failed"),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn extension_diff_shows_which_verdicts_and_suspicions_change() {
    let vxlan = root().join("tests/fixtures/bundles/vxlan");
    let v = vxlan.to_string_lossy().into_owned();
    let same = skoop(&[
        "extension",
        "diff",
        "builtin:flannel",
        "builtin:flannel",
        "--snapshot",
        &v,
    ]);
    assert_eq!(same.code, 0, "{}{}", same.stdout, same.stderr);
    assert!(same.stdout.contains(" 0 changed"), "{}", same.stdout);

    // The trap build panics at node-2: flows reaching it change.
    let dir = scratch("diff");
    let flows = dir.join("flows");
    std::fs::write(
        &flows,
        "# pod to pod on node-1, then across to node-2\n10.244.0.5 10.244.0.6 8080\n10.244.0.5 10.244.1.7 8080/tcp\n",
    )
    .expect("write");
    let trap = test_extension("trap");
    let run = skoop(&[
        "extension",
        "diff",
        "builtin:flannel",
        &trap.to_string_lossy(),
        "--snapshot",
        &v,
        "--flows",
        &flows.to_string_lossy(),
    ]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("same    10.244.0.5 -> 10.244.0.6:8080/tcp  healthy"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("change  10.244.0.5 -> 10.244.1.7:8080/tcp  healthy -> incomplete"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("+ ERROR extension trap failed"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("2 flows, 1 changed"), "{}", run.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Build a scaffolded crate for wasm32-wasip2 in the test extensions' target
/// dir, with their profile, so the SDK's compiled dependencies are reused.
fn build_component(dir: &std::path::Path) -> std::path::PathBuf {
    let target = root().join("target").join("wasm-extensions");
    let status = std::process::Command::new(env!("CARGO"))
        .current_dir(dir)
        .args(["build", "--offline", "--target", "wasm32-wasip2"])
        .args(["--profile", "wasm-ext-dev"])
        .args([
            "--config",
            "profile.wasm-ext-dev.inherits='release'",
            "--config",
            "profile.wasm-ext-dev.opt-level=1",
            "--config",
            "profile.wasm-ext-dev.lto=false",
            "--config",
            "profile.wasm-ext-dev.codegen-units=16",
            "--config",
            "profile.wasm-ext-dev.strip=true",
            "--config",
            "profile.wasm-ext-dev.panic='unwind'",
            "--config",
            "profile.wasm-ext-dev.debug=false",
            "--config",
            "profile.wasm-ext-dev.incremental=false",
        ])
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("run cargo");
    assert!(status.success(), "building {} failed", dir.display());
    target.join("wasm32-wasip2").join("wasm-ext-dev")
}

#[test]
fn a_vendor_workflow_from_a_scratch_directory() {
    let dir = scratch("vendor");
    let crate_dir = dir.join("acme");
    let c = crate_dir.to_string_lossy().into_owned();
    let sdk = root().join("sdk");
    let run = skoop(&[
        "extension",
        "new",
        "cni",
        "acme",
        "--dir",
        &c,
        "--sdk",
        &sdk.to_string_lossy(),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).expect("Cargo.toml");
    assert!(
        manifest.contains("skoop-sdk = { version = "),
        "the SDK is version-pinned: {manifest}"
    );
    // A second `new` into the same place is refused, not merged.
    let again = skoop(&["extension", "new", "cni", "acme", "--dir", &c]);
    assert_eq!(again.code, 2, "{}{}", again.stdout, again.stderr);
    // Same dependency versions as this checkout, and nothing downloaded.
    std::fs::copy(root().join("Cargo.lock"), crate_dir.join("Cargo.lock")).expect("lock");
    let wasm = build_component(&crate_dir).join("acme.wasm");
    assert!(wasm.is_file(), "{} was built", wasm.display());
    let w = wasm.to_string_lossy().into_owned();

    // Its own tests pass as created.
    let test = skoop(&["--extension", &w, "extension", "test", &c]);
    assert_eq!(test.code, 0, "{}{}", test.stdout, test.stderr);
    assert!(test.stdout.contains(" 0 failed"), "{}", test.stdout);

    // Inspect shows its metadata without running it.
    let inspect = skoop(&["extension", "inspect", &w, "-o", "json"]);
    assert_eq!(inspect.code, 0, "{}{}", inspect.stdout, inspect.stderr);
    let meta = inspect.json_any();
    assert_eq!(meta["metadata"]["name"], "acme", "{meta}");

    // It loads and diagnoses, pinned to its digest.
    let sha = meta["sha256"].as_str().expect("sha256").to_string();
    let pinned = format!("{w}@sha256:{sha}");
    let run = skoop(&[
        "--extension",
        &pinned,
        "diagnose",
        "--demo",
        "--network-plugin",
        "acme",
        "-s",
        "10.244.0.5",
        "-d",
        "10.244.0.6",
        "-p",
        "8080",
        "-q",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);

    // And is compared with the built-in flannel on a bundle.
    let vxlan = root().join("tests/fixtures/bundles/vxlan");
    let diff = skoop(&[
        "extension",
        "diff",
        "builtin:flannel",
        &w,
        "--snapshot",
        &vxlan.to_string_lossy(),
    ]);
    assert!(
        diff.code == 0 || diff.code == 3,
        "{}{}",
        diff.stdout,
        diff.stderr
    );
    assert!(diff.stdout.contains(" flows, "), "{}", diff.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}
