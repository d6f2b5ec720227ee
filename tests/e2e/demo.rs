//! The built-in demo, the output formats and the JSON contract (docs/architecture.md, "The command line").

use crate::common::skoop;

#[test]
fn demo_without_flags_shows_the_fault() {
    let run = skoop(&["diagnose", "--demo"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("192.168.0.23"), "{}", run.stdout);
    assert!(
        run.stdout.contains("DROPPED at node node-1"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("delivered at pod default/web-2"),
        "{}",
        run.stdout
    );
}

#[test]
fn demo_other_flow_is_healthy() {
    let run = skoop(&[
        "diagnose",
        "--demo",
        "-s",
        "10.244.0.5",
        "-d",
        "10.244.1.7",
        "-p",
        "8080",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("Verdict: HEALTHY"), "{}", run.stdout);
}

#[test]
fn json_has_the_contract_fields() {
    let run = skoop(&["diagnose", "--demo", "--format", "json"]);
    assert_eq!(run.code, 3);
    let j = run.json();
    assert_eq!(j["src"], "10.244.0.5");
    assert_eq!(j["dst"], "10.96.100.10");
    assert_eq!(j["protocol"], "tcp");
    let s = &j["suspicions"][0];
    assert_eq!(s["level"], "CRITICAL");
    assert_eq!(s["node"], "node-1");
    assert!(s["message"].is_string());
    let node = &j["path"]["nodes"][0];
    assert_eq!(node["id"], "default/client-1");
    assert_eq!(node["type"], "pod");
    let link = &j["path"]["links"][0];
    for field in ["from", "to", "type", "action", "packet", "iif", "oif"] {
        assert!(link.get(field).is_some(), "link lacks {field}: {link}");
    }
    assert_eq!(link["packet"]["dport"], 80);
    assert!(
        j["path"]["links"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l["direction"] == "reply"))
    );
}

#[test]
fn output_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("report.json");
    let path = file.to_string_lossy().into_owned();
    let run = skoop(&["diagnose", "--demo", "--format", "json", "-o", &path]);
    assert_eq!(run.code, 3);
    assert!(run.stdout.is_empty());
    let text = std::fs::read_to_string(&file).expect("report written");
    assert!(text.contains("\"suspicions\""));
}

#[test]
fn extension_list_shows_builtins() {
    let run = skoop(&["extension", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("flannel") && run.stdout.contains("cni-plugin"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("generic") && run.stdout.contains("built-in"),
        "{}",
        run.stdout
    );
}

#[test]
fn help_lists_extension_flags() {
    let run = skoop(&["diagnose", "--help"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("--flannel-backend-type"),
        "{}",
        run.stdout
    );
}

#[test]
fn flag_overrides_detection() {
    // The demo is vxlan; forcing host-gw makes flannel expect routes via node IPs.
    let run = skoop(&[
        "diagnose",
        "--demo",
        "-s",
        "10.244.0.5",
        "-d",
        "10.244.1.7",
        "-p",
        "8080",
        "--flannel-backend-type",
        "host-gw",
    ]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("overrides the cluster's flannel backend vxlan"),
        "{}",
        run.stdout
    );
}

#[test]
fn nftables_mode_warns_and_resolves_services_from_endpointslices() {
    // The demo's dumps hold no nftables ruleset: forced into nftables mode,
    // skoop cannot check kube-proxy's rules on the node that translates the
    // Service, says so of that node, and takes the translation from the
    // EndpointSlices.
    let run_with = |mode: &str| {
        let run = skoop(&[
            "diagnose",
            "--demo",
            "--format",
            "json",
            "--proxy-mode",
            mode,
        ]);
        assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
        run.json()
    };
    let (nft, ipt) = (run_with("nftables"), run_with("iptables"));
    let warning = serde_json::json!({"level": "WARNING", "node": "node-1",
        "message": "cannot check kube-proxy's rules on node node-1 (its dump holds no `ip kube-proxy` nftables table): Service translation is taken from the EndpointSlices"});
    let suspicions = nft["suspicions"].as_array().expect("suspicions");
    assert_eq!(
        suspicions.iter().filter(|s| **s == warning).count(),
        1,
        "{suspicions:#?}"
    );
    // Said of the node, once: no cluster-wide warning any more, and no
    // other node translates the Service.
    let about_kube_proxy: Vec<&serde_json::Value> = suspicions
        .iter()
        .filter(|s| {
            let m = s["message"].as_str().unwrap_or_default();
            m.contains("kube-proxy") || m.contains("nftables")
        })
        .collect();
    assert_eq!(about_kube_proxy, [&warning], "{suspicions:#?}");
    assert!(!ipt["suspicions"].to_string().contains("nftables"));
    // Apart from the warning, the Service resolves as in iptables mode: the
    // same verdict, the same blocking suspicions, the same path.
    assert_eq!(nft["verdict"], ipt["verdict"]);
    let blocking = |r: &serde_json::Value| -> Vec<serde_json::Value> {
        r["suspicions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|s| s["level"] == "CRITICAL" || s["level"] == "FATAL")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(blocking(&nft), blocking(&ipt));
    assert_eq!(nft["path"]["links"], ipt["path"]["links"]);
    assert_eq!(nft["path"]["branches"], ipt["path"]["branches"]);
    assert_eq!(nft["settings"]["proxy_mode"], "nftables");
    // A pod-to-pod flow crosses no Service: nothing to warn about.
    let direct = skoop(&[
        "diagnose",
        "--demo",
        "-s",
        "10.244.0.5",
        "-d",
        "10.244.1.7",
        "-p",
        "8080",
        "--proxy-mode",
        "nftables",
    ]);
    assert_eq!(direct.code, 0, "{}{}", direct.stdout, direct.stderr);
    assert!(
        !direct.stdout.contains("nftables mode") && !direct.stdout.contains("kube-proxy's rules"),
        "{}",
        direct.stdout
    );
}
