//! Bad input: a one-line error naming the culprit, exit 2, never a panic.

use crate::common::{assert_bad_input, skoop, test_extension};

const FLOW: [&str; 6] = ["-s", "10.244.0.5", "-d", "10.244.1.7", "-p", "8080"];

fn diagnose(extra: &[&str]) -> crate::common::Run {
    let mut args = vec!["diagnose"];
    args.extend(FLOW);
    args.extend(extra);
    skoop(&args)
}

#[test]
fn missing_bundle_directory() {
    assert_bad_input(
        &diagnose(&["--snapshot", "tests/fixtures/no-such-bundle"]),
        "tests/fixtures/no-such-bundle",
    );
}

#[test]
fn malformed_cluster_json_names_line_and_column() {
    let run = diagnose(&["--snapshot", "tests/fixtures/bad/malformed-cluster-json"]);
    assert_bad_input(&run, "malformed-cluster-json/cluster.json:1762:9");
}

#[test]
fn wrong_dump_version() {
    let run = diagnose(&["--snapshot", "tests/fixtures/bad/wrong-dump-version"]);
    assert_bad_input(&run, "nodes/node-1.json");
    assert!(run.stderr.contains("version 99"), "{}", run.stderr);
}

#[test]
fn source_not_in_cluster() {
    let run = skoop(&[
        "diagnose",
        "--demo",
        "-s",
        "10.9.9.9",
        "-d",
        "10.244.1.7",
        "-p",
        "80",
    ]);
    assert_bad_input(&run, "10.9.9.9");
    assert!(
        run.stderr.contains("from outside, only a node's address or a Service's LoadBalancer or external IP can be reached")
            && run.stderr.contains("pod default/web-2"),
        "{}",
        run.stderr
    );
}

#[test]
fn non_ipv4_addresses() {
    assert_bad_input(
        &skoop(&[
            "diagnose",
            "--demo",
            "-s",
            "fe80::1",
            "-d",
            "10.244.1.7",
            "-p",
            "80",
        ]),
        "fe80::1",
    );
    assert_bad_input(
        &skoop(&[
            "diagnose",
            "--demo",
            "-s",
            "10.244.0.5",
            "-d",
            "no-such-thing",
            "-p",
            "80",
        ]),
        "-d \"no-such-thing\": no pod, Service or node has that name",
    );
}

#[test]
fn missing_port() {
    assert_bad_input(
        &skoop(&["diagnose", "--demo", "-s", "10.244.0.5", "-d", "10.244.1.7"]),
        "-p",
    );
}

#[test]
fn nothing_to_diagnose() {
    assert_bad_input(&diagnose(&[]), "--snapshot");
}

#[test]
fn extension_missing_file() {
    assert_bad_input(
        &skoop(&["--extension", "no/such.wasm", "extension", "list"]),
        "no/such.wasm",
    );
}

#[test]
fn extension_not_wasm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("plugin.wasm");
    std::fs::write(&f, "not wasm at all").expect("write");
    let path = f.to_string_lossy().into_owned();
    let run = skoop(&["--extension", &path, "extension", "list"]);
    assert_bad_input(&run, &path);
    assert!(
        run.stderr.contains("not a WebAssembly file"),
        "{}",
        run.stderr
    );
}

#[test]
fn extension_core_module() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("core.wasm");
    std::fs::write(&f, b"\0asm\x01\0\0\0").expect("write");
    let path = f.to_string_lossy().into_owned();
    let run = skoop(&["--extension", &path, "extension", "list"]);
    assert_bad_input(&run, &path);
    assert!(
        run.stderr.contains("core WebAssembly module"),
        "{}",
        run.stderr
    );
}

#[test]
fn extension_for_another_wit_major() {
    let file = test_extension("future-wit");
    let path = file.to_string_lossy().into_owned();
    let run = skoop(&["--extension", &path, "extension", "list"]);
    assert_bad_input(&run, &path);
    assert!(
        run.stderr.contains("skoop:extension@1.0.0"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_network_plugin() {
    let run = skoop(&["diagnose", "--demo", "--network-plugin", "cilium"]);
    assert_bad_input(&run, "\"cilium\"");
}

#[test]
fn flannel_backend_not_supported() {
    let run = diagnose(&["--snapshot", "tests/fixtures/bad/flannel-udp-backend"]);
    assert_bad_input(&run, "extension flannel");
    assert!(
        run.stderr.contains("--flannel-backend-type"),
        "{}",
        run.stderr
    );
}

#[test]
fn flannel_backend_undetectable() {
    let run = diagnose(&["--snapshot", "tests/fixtures/bad/flannel-no-backend-type"]);
    assert_bad_input(&run, "--flannel-backend-type");
}
