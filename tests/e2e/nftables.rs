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

/// What a report decides, without the text that names rules: the verdict,
/// the suspicions' levels and nodes (all of them, or only the CRITICAL and
/// FATAL ones), and the path's hops, links and branch ends.
fn decided(report: &Value, all_levels: bool) -> Value {
    let mut levels: Vec<(String, String)> = report["suspicions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|s| all_levels || s["level"] == "CRITICAL" || s["level"] == "FATAL")
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
/// demo-nftables (nftables mode, its rules in each dump's `nft`): the same
/// exit code, verdict and path, the same suspicions' levels (`all_levels`;
/// else the CRITICAL and FATAL ones), and no node whose kube-proxy rules
/// or nftables could not be checked.
fn same_as_the_demo(flow: &[&str], expect: i32, all_levels: bool) {
    let ipt = diagnose(None, flow);
    let nft = diagnose(Some(DEMO_NFTABLES), flow);
    assert_eq!(
        ipt.code, expect,
        "demo {flow:?}:\n{}{}",
        ipt.stdout, ipt.stderr
    );
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
    let (a, b) = (decided(&ipt, all_levels), decided(&nft, all_levels));
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

const DEFAULT_FLOW: [&str; 6] = ["-s", "10.244.0.5", "-d", "10.96.100.10", "-p", "80"];
const DNS_UDP: [&str; 8] = [
    "-s",
    "10.244.0.5",
    "-d",
    "10.96.0.10",
    "-p",
    "53",
    "--protocol",
    "udp",
];
const DNS_TCP: [&str; 8] = [
    "-s",
    "10.244.0.5",
    "-d",
    "10.96.0.10",
    "-p",
    "53",
    "--protocol",
    "tcp",
];
const NODE_PORT: [&str; 6] = ["-s", "10.244.0.5", "-d", "192.168.0.12", "-p", "30080"];
const POD_TO_POD: [&str; 6] = ["-s", "10.244.0.5", "-d", "10.244.1.7", "-p", "8080"];
const NODE_TO_DNS: [&str; 8] = [
    "-s",
    "192.168.0.11",
    "-d",
    "10.96.0.10",
    "-p",
    "53",
    "--protocol",
    "tcp",
];

#[test]
fn demo_nftables_default_flow_is_the_demo_fault() {
    // client-1 -> web's ClusterIP: web-2 on node-2 answers, web-3 on node-3
    // is lost to node-1's stale FDB entry.
    same_as_the_demo(&DEFAULT_FLOW, 3, false);
}

#[test]
fn demo_nftables_pod_to_cluster_ip_on_node_2_is_healthy() {
    // kube-dns's one endpoint, coredns-1, is on node-2; UDP and TCP.
    same_as_the_demo(&DNS_UDP, 0, false);
    same_as_the_demo(&DNS_TCP, 0, false);
}

#[test]
fn demo_nftables_node_port_is_healthy() {
    // node-2's NodePort 30080: web-2 on node-2 or web-3 on node-3 (node-2's
    // FDB is right), masqueraded by the external chain.
    same_as_the_demo(&NODE_PORT, 0, false);
}

#[test]
fn demo_nftables_pod_to_pod_is_healthy() {
    same_as_the_demo(&POD_TO_POD, 0, false);
}

#[test]
fn demo_nftables_node_to_cluster_ip_is_healthy() {
    // From node-1's own address: nat-output DNATs, the masquerade mark is set
    // (not from the cluster CIDR) and nat-postrouting masquerades.
    same_as_the_demo(&NODE_TO_DNS, 0, false);
}

#[test]
fn demo_nftables_warns_as_the_demo_does() {
    for (flow, expect) in [
        (&DEFAULT_FLOW[..], 3),
        (&DNS_UDP[..], 0),
        (&DNS_TCP[..], 0),
        (&NODE_PORT[..], 0),
        (&POD_TO_POD[..], 0),
        (&NODE_TO_DNS[..], 0),
    ] {
        same_as_the_demo(flow, expect, true);
    }
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

/// The default flow on demo-nftables with node `node`'s `nft` cut short
/// in the middle of a rule (the collector's `nft -j list ruleset` was cut:
/// a full disk, a killed process). Returns the run's output and the
/// position serde_json stops at (the JSON is one line).
fn truncated(node: &str) -> (String, String) {
    let mut cut = 0;
    let dir = demo_nftables_with_nft(node, |nft| {
        assert_eq!(nft.trim_end().lines().count(), 1, "nft -j prints one line");
        cut = nft.find("{\"rule\"").expect("a rule") + 25;
        nft[..cut].to_string()
    });
    let bundle = dir.path().to_string_lossy().into_owned();
    let run = diagnose(Some(&bundle), &DEFAULT_FLOW);
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(!out.contains("panicked"), "{out}");
    // Still the demo's fault; the unreadable ruleset is a warning.
    assert_eq!(run.code, 3, "{out}");
    (out, format!("line 1 column {cut}"))
}

#[test]
fn truncated_nft_json_is_a_warning_with_its_position() {
    // node-1 translates the Service: its kube-proxy rules cannot be checked,
    // the EndpointSlices stand in. node-2 only forwards.
    for node in ["node-1", "node-2"] {
        let (out, at) = truncated(node);
        let warning = out
            .lines()
            .find(|l| {
                l.contains(&format!(
                    "cannot check nftables (`nft -j list ruleset` of node {node}"
                ))
            })
            .unwrap_or_else(|| panic!("no warning on {node}'s nft:\n{out}"));
        assert!(warning.contains(&at), "no {at:?} in {warning:?}");
    }
    let (out, _) = truncated("node-1");
    assert!(
        out.contains(
            "cannot check kube-proxy's rules on node node-1 (`nft -j list ruleset` of node node-1"
        ),
        "{out}"
    );
}

#[test]
fn truncated_nft_json_names_the_node_file() {
    for node in ["node-1", "node-2"] {
        let (out, at) = truncated(node);
        let file = format!("nodes/{node}.json");
        assert!(
            out.lines().any(|l| l.contains(&file) && l.contains(&at)),
            "no line names {file} and {at:?}:\n{out}"
        );
    }
}
