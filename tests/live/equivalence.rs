//! A live diagnosis equals the same diagnosis on the bundle the fake
//! cluster serves; `skoop snapshot` writes that bundle back.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::*;

fn bundle_run(flow: (&str, &str, &str)) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let vx = vxlan();
    run(
        dir.path(),
        &[
            "diagnose",
            "--snapshot",
            vx.to_str().unwrap(),
            "-s",
            flow.0,
            "-d",
            flow.1,
            "-p",
            flow.2,
            "--format",
            "json",
        ],
    )
}

#[test]
fn live_diagnosis_equals_bundle_diagnosis() {
    let flows = [
        FLOW,
        SAME_NODE,
        ("10.244.0.5", "10.244.1.7", "8080"),
        ("10.244.0.5", "192.168.0.12", "30080"),
        ("10.244.2.8", "10.96.0.10", "53"),
    ];
    for flow in flows {
        let api = server();
        let dir = tempfile::tempdir().unwrap();
        let live = diagnose_flow(&api, dir.path(), flow, &[]);
        let offline = bundle_run(flow);
        assert_eq!(
            live.code, offline.code,
            "{flow:?}\n{}\n{}",
            live.stderr, offline.stderr
        );
        let (l, o) = (live.json(), offline.json());
        for key in ["suspicions", "path", "verdict", "settings"] {
            assert_eq!(l.get(key), o.get(key), "{flow:?}: {key} differs");
        }
    }
}

#[test]
fn slow_collectors_do_not_change_the_result() {
    // node-2's collector takes longer than an extension call may. The
    // collectors of the nodes the flow reaches run before the diagnosis, in
    // parallel, so no call waits on one; the result is the bundle's.
    let api = crate::common::server_with(|s| {
        s.kubelet
            .insert("node-2".into(), crate::server::Kubelet::SlowMs(2500));
    });
    let dir = tempfile::tempdir().unwrap();
    let live = diagnose(&api, dir.path(), &["--extension-timeout", "1", "-v"]);
    assert!(
        live.stderr.contains("node node-2: collected in"),
        "{}",
        live.stderr
    );
    let offline = bundle_run(FLOW);
    assert_eq!(
        live.code, offline.code,
        "{}\n{}",
        live.stderr, offline.stderr
    );
    let (l, o) = (live.json(), offline.json());
    assert_eq!(l["suspicions"], o["suspicions"]);
    assert_eq!(l["path"], o["path"]);
    assert_eq!(api.count("POST", "/api/v1/namespaces/skoop/pods"), 2);
}

#[test]
fn a_dump_of_several_mib_is_read() {
    let api = crate::common::server_with(|s| {
        let d = s.dumps.get_mut("node-1").unwrap();
        let mut v: Value = serde_json::from_str(d).unwrap();
        let rules = v["host"]["iptables"].as_str().unwrap().to_string();
        let pad = "# padding comment line of a large iptables-save output\n".repeat(120_000);
        v["host"]["iptables"] = json!(format!("{pad}{rules}"));
        *d = serde_json::to_string(&v).unwrap();
        assert!(d.len() > 6 << 20);
    });
    let dir = tempfile::tempdir().unwrap();
    let r = diagnose_flow(&api, dir.path(), SAME_NODE, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("node node-1: collected"), "{}", r.stderr);
}

fn key(o: &Value) -> String {
    format!(
        "{}/{}/{}/{}",
        o["apiVersion"].as_str().unwrap_or(""),
        o["kind"].as_str().unwrap_or(""),
        o.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(""),
        o.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    )
}

fn by_key(items: &[Value]) -> BTreeMap<String, Value> {
    items.iter().map(|o| (key(o), o.clone())).collect()
}

#[test]
fn snapshot_writes_the_bundle_back() {
    let api = server_with(|s| {
        s.objects.push(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "token", "namespace": "default"}, "data": {"token": "c2VjcmV0"}}));
    });
    let dir = tempfile::tempdir().unwrap();
    let out = snapshot(&api, dir.path(), &["--all-nodes"]);
    let (objects, dumps) = fixture();
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("cluster.json")).unwrap()).unwrap();
    assert_eq!(written["kind"], "List");
    assert_eq!(
        by_key(written["items"].as_array().unwrap()),
        by_key(&objects)
    );
    assert!(!written.to_string().contains("c2VjcmV0"));
    assert_eq!(api.count("GET", "/api/v1/secrets"), 0);
    for (node, text) in &dumps {
        let want: Value = serde_json::from_str(text).unwrap();
        let got: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("nodes/{node}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(got, want, "nodes/{node}.json differs");
    }
    assert!(api.state.lock().unwrap().pods.is_empty());
    // And the snapshot diagnoses as the original bundle does.
    let a = run(
        dir.path(),
        &[
            "diagnose",
            "--snapshot",
            out.to_str().unwrap(),
            "-s",
            FLOW.0,
            "-d",
            FLOW.1,
            "-p",
            FLOW.2,
            "--format",
            "json",
        ],
    );
    let b = bundle_run(FLOW);
    assert_eq!(a.json()["suspicions"], b.json()["suspicions"]);
    assert_eq!(a.json()["path"], b.json()["path"]);
}

#[test]
fn snapshot_of_chosen_nodes_only() {
    let api = server();
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &api.url, "fake", "t0ken");
    let out = dir.path().join("b");
    let r = run(
        dir.path(),
        &[
            "snapshot",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--node",
            "node-2",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let names: Vec<String> = std::fs::read_dir(out.join("nodes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["node-2.json".to_string()]);
    assert_eq!(api.collected_nodes(), Vec::<String>::new(), "deleted");
    assert_eq!(api.count("POST", "/api/v1/namespaces/skoop/pods"), 1);
    let r = run(
        dir.path(),
        &[
            "snapshot",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--node",
            "node-9",
        ],
    );
    assert_bad_input(
        &r,
        &["--node node-9", "no such node", "node-1, node-2, node-3"],
    );
    let r = run(
        dir.path(),
        &[
            "snapshot",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_bad_input(&r, &["--node NAME", "--all-nodes"]);
}

#[test]
fn snapshot_all_nodes_of_a_large_cluster_needs_yes() {
    let api = server_with(|s| {
        let node = s
            .objects
            .iter()
            .find(|o| o["kind"] == "Node")
            .cloned()
            .unwrap();
        for i in 0..60 {
            let mut n = node.clone();
            n["metadata"]["name"] = json!(format!("extra-{i}"));
            n["status"]["addresses"] =
                json!([{"type": "InternalIP", "address": format!("192.168.1.{i}")}]);
            s.objects.push(n);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &api.url, "fake", "t0ken");
    let out = dir.path().join("b");
    let r = run(
        dir.path(),
        &[
            "snapshot",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--all-nodes",
        ],
    );
    assert_bad_input(&r, &["63 nodes", "--yes", "--node NAME"]);
    assert_eq!(api.count("POST", "/api/v1/namespaces/skoop/pods"), 0);
}

#[test]
fn snapshot_with_a_crashing_collector_fails_and_cleans_up() {
    let api = crate::common::server_with(|s| {
        s.kubelet
            .insert("node-3".into(), crate::server::Kubelet::Crash);
    });
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &api.url, "fake", "t0ken");
    let out = dir.path().join("b");
    let r = run(
        dir.path(),
        &[
            "snapshot",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--all-nodes",
        ],
    );
    assert_bad_input(&r, &["node node-3", "Failed: Error (exit code 1)"]);
    assert!(api.state.lock().unwrap().pods.is_empty());
    assert_eq!(
        api.count("POST", "/api/v1/namespaces/skoop/pods"),
        api.count("DELETE", "/api/v1/namespaces/skoop/pods")
    );
}

/// `skoop snapshot` captures the kinds the loaded extensions declare they
/// read (the built-in Calico plugin reads `crd.projectcalico.org/v1`
/// IPPools; the host names no Calico kind itself), found through API
/// discovery, and no kind nobody declares.
#[test]
fn snapshot_captures_the_kinds_loaded_extensions_read() {
    let pool = json!({"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool",
        "metadata": {"name": "default-ipv4-ippool"},
        "spec": {"cidr": "10.244.0.0/16", "vxlanMode": "Always", "natOutgoing": true}});
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {}});
    let api = server_with(|s| s.objects.extend([pool.clone(), widget]));
    let dir = tempfile::tempdir().unwrap();
    let out = snapshot(&api, dir.path(), &["--node", "node-1"]);
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("cluster.json")).unwrap()).unwrap();
    let items = written["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert!(
        items
            .iter()
            .any(|o| o["kind"] == "IPPool" && o["spec"] == pool["spec"]),
        "the IPPool was not captured: {kinds:?}"
    );
    assert!(!kinds.contains(&"Widget"), "{kinds:?}");
    assert!(api.count("GET", "/apis/crd.projectcalico.org/v1") >= 1);
    assert_eq!(api.count("GET", "/apis/example.com"), 0);
}

/// `skoop snapshot` of `api` into `dir`/bundle with `extra` flags; the bundle's path.
fn snapshot(
    api: &crate::server::FakeApi,
    dir: &std::path::Path,
    extra: &[&str],
) -> std::path::PathBuf {
    let kc = kubeconfig(dir, &api.url, "fake", "t0ken");
    let out = dir.join("bundle");
    let mut args = vec![
        "snapshot",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let r = run(dir, &args);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    out
}
