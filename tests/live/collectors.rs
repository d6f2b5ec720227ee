//! Collector pods: only for touched nodes, waited for, read, and always
//! deleted — at the end, on failure, and on SIGINT/SIGTERM.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::server::{FakeApi, Kubelet};

const PODS: &str = "/api/v1/namespaces/skoop/pods";

fn assert_all_deleted(api: &FakeApi) {
    assert!(
        api.state.lock().unwrap().pods.is_empty(),
        "pods left: {:?}",
        api.seen()
    );
    assert_eq!(
        api.count("POST", PODS),
        api.count("DELETE", PODS),
        "{:?}",
        api.seen()
    );
}

#[test]
fn only_touched_nodes_are_collected() {
    let api = server();
    let dir = tempfile::tempdir().unwrap();
    let r = diagnose_flow(&api, dir.path(), SAME_NODE, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(api.count("POST", PODS), 1, "{:?}", api.seen());
    assert_eq!(
        api.count("POST", "/api/v1/namespaces"),
        2,
        "namespace and one pod"
    );
    let created: Vec<String> = api
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.path.ends_with("/log"))
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(created[0].contains("skoop-node-1-"), "{created:?}");
    assert!(r.stderr.contains("node node-1: collected"), "{}", r.stderr);
    assert_all_deleted(&api);
}

#[test]
fn every_node_of_the_path_is_collected_once_then_deleted() {
    // client-1 (node-1) to the `web` ClusterIP: kube-proxy sends it to web-1
    // (node-1) or web-2 (node-2); node-3 is never reached.
    let api = server();
    let dir = tempfile::tempdir().unwrap();
    let r = diagnose(&api, dir.path(), &[]);
    assert!(r.code == 0 || r.code == 3, "{}{}", r.stdout, r.stderr);
    assert_eq!(api.count("POST", PODS), 2, "{:?}", api.seen());
    for n in ["node-1", "node-2"] {
        assert!(
            r.stderr.contains(&format!("node {n}: collected")),
            "{}",
            r.stderr
        );
    }
    assert!(!r.stderr.contains("node node-3"), "{}", r.stderr);
    let logs = api
        .seen()
        .iter()
        .filter(|s| s.method == "GET" && s.path.ends_with("/log"))
        .count();
    assert_eq!(logs, 2, "one log read per node");
    assert_all_deleted(&api);
}

#[test]
fn collector_pod_spec_is_privileged_pinned_and_tolerant() {
    let api = server();
    let dir = tempfile::tempdir().unwrap();
    let r = diagnose_flow(
        &api,
        dir.path(),
        SAME_NODE,
        &[
            "--preserve-collector-pod",
            "--collector-image",
            "example/skoop:1",
            "--collector-namespace",
            "netdiag",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("kubectl -n netdiag delete pod -l skoop.io/run="),
        "{}",
        r.stderr
    );
    let s = api.state.lock().unwrap();
    assert!(s.namespaces.contains("netdiag"));
    let pod = s.pods.values().next().expect("pod preserved");
    assert_eq!(pod["spec"]["nodeName"], "node-1");
    assert_eq!(pod["spec"]["hostNetwork"], true);
    assert_eq!(pod["spec"]["hostPID"], true);
    assert_eq!(pod["spec"]["tolerations"][0]["operator"], "Exists");
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["image"], "example/skoop:1");
    assert_eq!(c["securityContext"]["privileged"], true);
    assert_eq!(
        c["command"],
        serde_json::json!(["skoop", "collect", "--node", "node-1"])
    );
    drop(s);
    assert_eq!(api.count("DELETE", "/api/v1/namespaces/netdiag/pods"), 0);
}

#[test]
fn unschedulable_collector_names_node_and_reason_and_cleans_up() {
    let api = server_with(|s| {
        s.kubelet.insert("node-2".into(), Kubelet::Unschedulable);
    });
    let dir = tempfile::tempdir().unwrap();
    let r = diagnose(&api, dir.path(), &[]);
    assert_bad_input(
        &r,
        &[
            "on node node-2 failed",
            "Unschedulable",
            "untolerated taint",
        ],
    );
    assert!(api.count("POST", PODS) >= 2, "node-1 first, then node-2");
    assert_all_deleted(&api);
}

#[test]
fn crashed_collector_names_exit_and_message() {
    let api = server_with(|s| {
        s.kubelet.insert("node-1".into(), Kubelet::Crash);
    });
    let dir = tempfile::tempdir().unwrap();
    let r = diagnose(&api, dir.path(), &[]);
    assert_bad_input(
        &r,
        &[
            "node node-1",
            "Failed: Error (exit code 1): netlink: permission denied",
        ],
    );
    assert_all_deleted(&api);
}

#[test]
fn pending_collector_times_out_with_the_flag_named() {
    let api = server_with(|s| {
        s.kubelet.insert("node-1".into(), Kubelet::Pending);
    });
    let dir = tempfile::tempdir().unwrap();
    let r = diagnose(&api, dir.path(), &["--collector-pod-wait-timeout", "1"]);
    assert_bad_input(
        &r,
        &[
            "node node-1",
            "still Pending, ContainerCreating after 1s",
            "--collector-pod-wait-timeout",
        ],
    );
    assert!(
        r.stderr
            .contains("node node-1: collector pod skoop/skoop-node-1-"),
        "{}",
        r.stderr
    );
    assert_all_deleted(&api);
}

fn interrupted(signal: &str, code: i32) {
    let api = server_with(|s| {
        s.kubelet.insert("node-1".into(), Kubelet::Pending);
    });
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &api.url, "fake", "t0ken");
    let child = command(dir.path())
        .args([
            "diagnose",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "-s",
            FLOW.0,
            "-d",
            FLOW.1,
            "-p",
            FLOW.2,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while api.state.lock().unwrap().pods.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no collector pod created"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let it poll the pending pod once or twice.
    std::thread::sleep(Duration::from_millis(300));
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let r = finish(out);
    assert_eq!(r.code, code, "{}", r.stderr);
    assert!(r.stderr.contains("interrupted"), "{}", r.stderr);
    // Collectors of the nodes the flow reaches start together; each is deleted.
    assert!(api.count("POST", PODS) >= 1, "{:?}", api.seen());
    assert_eq!(
        api.count("DELETE", PODS),
        api.count("POST", PODS),
        "{:?}",
        api.seen()
    );
    assert_all_deleted(&api);
}

#[test]
fn sigint_while_a_collector_is_pending_deletes_it() {
    interrupted("-INT", 130);
}

#[test]
fn sigterm_while_a_collector_is_pending_deletes_it() {
    interrupted("-TERM", 143);
}
