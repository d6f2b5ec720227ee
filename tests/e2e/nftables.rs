//! kube-proxy in nftables mode: the demo cluster whose nodes' dumps hold
//! kube-proxy's `ip kube-proxy` table (tests/fixtures/bundles/demo-nftables,
//! written by tests/fixtures/generate.py) diagnoses as the iptables-mode demo
//! does; a dump whose `nft` is not JSON is named, never a panic.

use serde_json::Value;

use crate::common::{Run, root, skoop};

const DEMO_NFTABLES: &str = "tests/fixtures/bundles/demo-nftables";

/// `diagnose --format json` of one flow (`-s SRC -d DST -p PORT --protocol P`) on `bundle`
/// (None: the built-in demo).
fn diagnose(bundle: Option<&str>, flow: &[&str]) -> Run {
    let mut args = vec!["diagnose", "--format", "json"];
    args.extend(flow);
    match bundle {
        Some(b) => args.extend(["--snapshot", b]),
        None => args.push("--demo"),
    }
    skoop(&args)
}

/// What a report decides, without the text that names rules: the
/// suspicions' levels and nodes, and the path's links and branch ends.
fn decided(report: &Value) -> Value {
    let mut levels: Vec<(String, String)> = report["suspicions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| (s["level"].to_string(), s["node"].to_string()))
                .collect()
        })
        .unwrap_or_default();
    levels.sort();
    let branches: Vec<Value> = report["path"]["branches"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|b| {
                    serde_json::json!({
                        "direction": b["direction"],
                        "links": b["links"],
                        "start": b["start"],
                        "end": {
                            "kind": b["end"]["kind"],
                            "at": b["end"]["at"],
                            "packet": b["end"]["packet"],
                        },
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "verdict": report["verdict"],
        "suspicions": levels,
        "nodes": report["path"]["nodes"],
        "links": report["path"]["links"],
        "branches": branches,
    })
}

fn messages(report: &Value) -> Vec<String> {
    report["suspicions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| format!("{} [{}] {}", s["level"], s["node"], s["message"]))
                .collect()
        })
        .unwrap_or_default()
}

/// The same flow on the demo (kube-proxy in iptables mode) and on
/// demo-nftables (nftables mode, its rules in each dump's `nft`).
fn same_as_the_demo(flow: &[&str], expect: i32) {
    let ipt = diagnose(None, flow);
    let nft = diagnose(Some(DEMO_NFTABLES), flow);
    assert_eq!(ipt.code, expect, "demo {flow:?}:\n{}{}", ipt.stdout, ipt.stderr);
    assert_eq!(
        nft.code, expect,
        "demo-nftables {flow:?}:\n{}{}",
        nft.stdout, nft.stderr
    );
    let (ipt, nft) = (ipt.json(), nft.json());
    assert_eq!(ipt["settings"]["proxy_mode"], "iptables");
    assert_eq!(nft["settings"]["proxy_mode"], "nftables");
    let unchecked: Vec<String> = messages(&nft)
        .into_iter()
        .filter(|m| {
            m.contains("cannot check kube-proxy's rules") || m.contains("cannot check nftables")
        })
        .collect();
    assert!(
        unchecked.is_empty(),
        "demo-nftables {flow:?}: every node's dump holds its kube-proxy table: {unchecked:#?}"
    );
    let (a, b) = (decided(&ipt), decided(&nft));
    if a != b {
        panic!(
            "{flow:?}: demo-nftables decides otherwise than the demo\n\
             demo suspicions: {:#?}\ndemo-nftables suspicions: {:#?}\n\
             demo: {a:#}\ndemo-nftables: {b:#}",
            messages(&ipt),
            messages(&nft)
        );
    }
}

#[test]
fn demo_nftables_default_flow_is_the_demo_fault() {
    // client-1 -> web's ClusterIP: web-2 on node-2 answers, web-3 on node-3
    // is lost to node-1's stale FDB entry.
    same_as_the_demo(&["-s", "10.244.0.5", "-d", "10.96.100.10", "-p", "80"], 3);
}

#[test]
fn demo_nftables_pod_to_cluster_ip_on_node_2_is_healthy() {
    // kube-dns's one endpoint, coredns-1, is on node-2; UDP and TCP.
    same_as_the_demo(
        &[
            "-s",
            "10.244.0.5",
            "-d",
            "10.96.0.10",
            "-p",
            "53",
            "--protocol",
            "udp",
        ],
        0,
    );
    same_as_the_demo(
        &[
            "-s",
            "10.244.0.5",
            "-d",
            "10.96.0.10",
            "-p",
            "53",
            "--protocol",
            "tcp",
        ],
        0,
    );
}

#[test]
fn demo_nftables_node_port_is_healthy() {
    // node-2's NodePort 30080: web-2 on node-2 or web-3 on node-3 (node-2's
    // FDB is right), masqueraded by the external chain.
    same_as_the_demo(&["-s", "10.244.0.5", "-d", "192.168.0.12", "-p", "30080"], 0);
}

#[test]
fn demo_nftables_pod_to_pod_is_healthy() {
    same_as_the_demo(&["-s", "10.244.0.5", "-d", "10.244.1.7", "-p", "8080"], 0);
}

#[test]
fn demo_nftables_node_to_cluster_ip_is_healthy() {
    // From node-1's own address: nat-output DNATs, the masquerade mark is set
    // (not from the cluster CIDR) and nat-postrouting masquerades.
    same_as_the_demo(
        &[
            "-s",
            "192.168.0.11",
            "-d",
            "10.96.0.10",
            "-p",
            "53",
            "--protocol",
            "tcp",
        ],
        0,
    );
}

/// demo-nftables copied to a scratch directory, with `edit` applied to the
/// text of node `node`'s host `nft`.
fn demo_nftables_with_nft(node: &str, edit: impl FnOnce(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let from = root().join(DEMO_NFTABLES);
    let mut edit = Some(edit);
    std::fs::copy(from.join("cluster.json"), dir.path().join("cluster.json")).expect("copy");
    std::fs::create_dir(dir.path().join("nodes")).expect("mkdir");
    for entry in std::fs::read_dir(from.join("nodes")).expect("nodes/") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("file name").to_owned();
        let mut text = std::fs::read_to_string(&path).expect("read");
        if name.to_string_lossy() == format!("{node}.json") {
            let mut dump: Value = serde_json::from_str(&text).expect("node dump is JSON");
            let nft = dump["host"]["nft"].as_str().expect("host nft").to_owned();
            let edit = edit.take().expect("one node file");
            dump["host"]["nft"] = Value::String(edit(&nft));
            text = serde_json::to_string_pretty(&dump).expect("JSON");
        }
        std::fs::write(dir.path().join("nodes").join(name), text).expect("write");
    }
    dir
}

#[test]
fn truncated_nft_json_names_the_node_file_and_the_position() {
    // The collector's `nft -j list ruleset` was cut short (a full disk, a
    // killed process): node-2's `nft` ends in the middle of a rule.
    let mut cut = 0;
    let dir = demo_nftables_with_nft("node-2", |nft| {
        assert!(!nft.contains('\n') || nft.trim_end().lines().count() == 1);
        cut = nft.find("{\"rule\"").expect("a rule") + 25;
        nft[..cut].to_string()
    });
    let bundle = dir.path().to_string_lossy().into_owned();
    let run = diagnose(
        Some(&bundle),
        &["-s", "10.244.0.5", "-d", "10.96.100.10", "-p", "80"],
    );
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(!out.contains("panicked"), "{out}");
    assert!(
        [0, 2, 3].contains(&run.code),
        "exit {}:\n{out}",
        run.code
    );
    assert!(out.contains("nodes/node-2.json"), "{out}");
    // The JSON is one line; serde_json stops at its end.
    let at = format!("line 1 column {cut}");
    assert!(out.contains(&at), "no {at:?} in:\n{out}");
}
