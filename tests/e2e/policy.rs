//! Policy verdicts in the diagnosis (issue 11): applied where the packet arrives (after
//! Service DNAT, with the source the pod sees), CRITICAL where the plugin enforces them,
//! a WARNING naming the policy where it does not (flannel); SCTP; object-only bundles;
//! the connectivity matrix.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::{Run, root, skoop};

/// A copy of the healthy host-gw fixture with `policies` added to its cluster.json.
fn bundle_with(policies: &[Value]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = root().join("tests/fixtures/bundles/host-gw");
    let mut cluster: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("cluster.json")).unwrap()).unwrap();
    let items = cluster["items"].as_array_mut().unwrap();
    items.extend(policies.iter().cloned());
    std::fs::write(
        tmp.path().join("cluster.json"),
        serde_json::to_string(&cluster).unwrap(),
    )
    .unwrap();
    std::fs::create_dir(tmp.path().join("nodes")).unwrap();
    for e in std::fs::read_dir(src.join("nodes")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), tmp.path().join("nodes").join(e.file_name())).unwrap();
    }
    tmp
}

fn netpol(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"namespace": "default", "name": name}, "spec": spec})
}

/// web pods admit only app=frontend (no such pod) on 8080.
fn frontend_only() -> Value {
    netpol(
        "web-from-frontend",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                            "ports": [{"port": 8080}]}]}),
    )
}

fn diagnose(dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["diagnose", "--format", "json", "--snapshot"];
    let d = dir.to_str().unwrap();
    args.push(d);
    args.extend_from_slice(extra);
    skoop(&args)
}

fn policy_suspicions(run: &Run) -> Vec<(String, String)> {
    run.json()["suspicions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["message"].as_str().unwrap().contains("policy"))
        .map(|s| {
            (
                s["level"].as_str().unwrap().to_string(),
                s["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn flannel_does_not_enforce_so_a_deny_is_a_warning_naming_the_policy() {
    let b = bundle_with(&[frontend_only()]);
    let run = diagnose(
        b.path(),
        &["-s", "10.244.0.5", "-d", "10.244.1.7", "-p", "8080"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let sus = policy_suspicions(&run);
    assert!(!sus.is_empty(), "{}", run.stdout);
    for (level, msg) in &sus {
        assert_eq!(level, "WARNING", "{msg}");
        assert!(msg.contains("default/web-from-frontend"), "{msg}");
        assert!(msg.contains("flannel does not enforce"), "{msg}");
    }
    let v = run.json();
    let ingress = v["policy"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["direction"] == "ingress")
        .expect("an ingress verdict");
    assert_eq!(ingress["allowed"], false);
    assert_eq!(ingress["decision"]["kind"], "network-policy-deny");
}

#[test]
fn an_enforcing_plugin_makes_the_same_deny_critical() {
    let b = bundle_with(&[frontend_only()]);
    let run = diagnose(
        b.path(),
        &[
            "-s",
            "10.244.0.5",
            "-d",
            "10.244.1.7",
            "-p",
            "8080",
            "--enforces-network-policy",
            "true",
        ],
    );
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let sus = policy_suspicions(&run);
    assert!(
        sus.iter().any(|(l, m)| l == "CRITICAL"
            && m.contains("default/web-from-frontend")
            && m.contains("nearest misses")),
        "{sus:?}"
    );
}

#[test]
fn a_healthy_flow_under_an_allowing_policy_is_quiet() {
    let allow = netpol(
        "web-from-client",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                            "ports": [{"port": "http"}]}]}),
    );
    let b = bundle_with(&[allow]);
    let run = diagnose(
        b.path(),
        &[
            "-s",
            "10.244.0.5",
            "-d",
            "10.244.1.7",
            "-p",
            "8080",
            "--enforces-network-policy",
            "true",
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(policy_suspicions(&run).is_empty(), "{}", run.stdout);
    let v = run.json();
    assert!(
        v["policy"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["decision"]["kind"] == "network-policy-allow"
                && d["decision"]["policy"] == "default/web-from-client"),
        "{}",
        run.stdout
    );
}

/// Through the web Service (80 → targetPort 8080): policies see the backend and the target port.
#[test]
fn through_a_service_the_target_port_is_what_policy_sees() {
    let only_80 = netpol(
        "web-port-80",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"ports": [{"port": 80}]}]}),
    );
    let only_8080 = netpol(
        "web-port-8080",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"ports": [{"port": 8080}]}]}),
    );
    let args = [
        "-s",
        "10.244.0.5",
        "-d",
        "10.96.100.10",
        "-p",
        "80",
        "--enforces-network-policy",
        "true",
    ];
    let b = bundle_with(&[only_80]);
    let run = diagnose(b.path(), &args);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        policy_suspicions(&run).iter().any(|(l, m)| l == "CRITICAL"
            && m.contains("default/web-port-80")
            && m.contains("on 8080/TCP")),
        "{}",
        run.stdout
    );
    let b = bundle_with(&[only_8080]);
    let run = diagnose(b.path(), &args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(policy_suspicions(&run).is_empty(), "{}", run.stdout);
}

#[test]
fn sctp_is_diagnosed_and_not_mistaken_for_tcp() {
    let tcp_only = netpol(
        "web-tcp-8080",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}]}]}),
    );
    let b = bundle_with(&[tcp_only]);
    let args = [
        "-s",
        "10.244.0.5",
        "-d",
        "10.244.1.7",
        "-p",
        "8080",
        "--protocol",
        "sctp",
        "--enforces-network-policy",
        "true",
    ];
    let run = diagnose(b.path(), &args);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.json()["protocol"], "sctp");
    assert!(
        policy_suspicions(&run)
            .iter()
            .any(|(l, m)| l == "CRITICAL" && m.contains("8080/SCTP")),
        "{}",
        run.stdout
    );
    let sctp = netpol(
        "web-sctp-8080",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"ports": [{"port": 8080, "protocol": "SCTP"}]}]}),
    );
    let b = bundle_with(&[sctp]);
    let run = diagnose(b.path(), &args);
    assert!(policy_suspicions(&run).is_empty(), "{}", run.stdout);
    // The request crossed the nodes as SCTP and reached the pod, where the fixture's
    // sockets show no SCTP listener (the dataplane's own suspicion).
    assert!(
        run.stdout.contains("nothing listens on sctp port 8080"),
        "{}",
        run.stdout
    );
}

#[test]
fn connectivity_matrix_text_json_csv() {
    let case = root().join("host/policy/tests/corpus/e2e-ports");
    let dir = case.to_str().unwrap();
    let run = skoop(&["connectivity", "--snapshot", dir, "--port", "81/tcp"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("Connectivity on 81/TCP"),
        "{}",
        run.stdout
    );
    let run = skoop(&[
        "connectivity",
        "--snapshot",
        dir,
        "--port",
        "81/TCP",
        "--format",
        "csv",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Upstream e2e "should enforce policy based on Ports": x/b and z/a may not reach x/a on 81.
    assert!(
        run.stdout.contains("x/b,x/a,81,TCP,false"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("z/a,x/a,81,TCP,false"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("y/a,x/a,81,TCP,true"), "{}", run.stdout);
    let run = skoop(&[
        "connectivity",
        "--snapshot",
        dir,
        "-n",
        "x",
        "--port",
        "81",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = run.json_any();
    assert_eq!(v["matrices"][0]["groups"].as_array().unwrap().len(), 2);
    let run = skoop(&["connectivity", "--snapshot", dir, "--port", "81/icmp"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// An object-only bundle (cluster.json, no nodes/): policy verdicts are exact, the dataplane
/// is reported as not checked (WARNING), never CRITICAL/FATAL for the missing facts.
#[test]
fn object_only_bundle_gives_exact_policy_verdicts() {
    let case = root().join("host/policy/tests/corpus/e2e-ports");
    let dir = case.to_str().unwrap();
    let run_flow = |src: &str| {
        skoop(&[
            "diagnose",
            "--format",
            "json",
            "--snapshot",
            dir,
            "--network-plugin",
            "flannel",
            "--flannel-backend-type",
            "vxlan",
            "--cluster-cidr",
            "10.0.0.0/16",
            "--proxy-mode",
            "iptables",
            "--enforces-network-policy",
            "true",
            "-s",
            src,
            "-d",
            "10.0.1.10",
            "-p",
            "81",
        ])
    };
    // z/a -> x/a:81 is denied by x/allow-client-a-via-ns-selector (upstream e2e "Ports").
    let run = run_flow("10.0.3.10");
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let v = run.json();
    let sus = v["suspicions"].as_array().unwrap();
    for s in sus {
        let (level, msg) = (s["level"].as_str().unwrap(), s["message"].as_str().unwrap());
        if level == "CRITICAL" || level == "FATAL" {
            assert!(msg.starts_with("policy: "), "only the policy blocks: {msg}");
        }
    }
    assert!(
        sus.iter().any(|s| s["message"]
            .as_str()
            .unwrap()
            .contains("x/allow-client-a-via-ns-selector")),
        "{}",
        run.stdout
    );
    assert!(
        sus.iter().any(|s| s["level"] == "WARNING"
            && s["message"].as_str().unwrap().starts_with("cannot check")),
        "the dataplane is reported as not checked: {}",
        run.stdout
    );
    let mut messages: Vec<&str> = sus.iter().map(|s| s["message"].as_str().unwrap()).collect();
    let n = messages.len();
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len(), n, "each suspicion once: {}", run.stdout);
    // y/a -> x/a:81 is allowed: no blocking suspicion.
    let run = run_flow("10.0.2.10");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

/// KubeSkoop NP7: a NodePort flow is masqueraded, so the backend sees a node address and a
/// pod-selector rule no longer admits it; a backend on the node that masqueraded sees its
/// own node (always allowed). The direct pod-to-pod flow is admitted by the same policy.
#[test]
fn a_masqueraded_nodeport_flow_is_judged_by_the_node_address() {
    let allow_client = netpol(
        "web-from-client",
        json!({"podSelector": {"matchLabels": {"app": "web"}},
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]}),
    );
    let b = bundle_with(&[allow_client]);
    let enforce = ["--enforces-network-policy", "true"];
    let mut args = vec!["-s", "10.244.0.5", "-d", "192.168.0.12", "-p", "30080"];
    args.extend_from_slice(&enforce);
    let run = diagnose(b.path(), &args);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let v = run.json();
    let verdicts = v["policy"].as_array().unwrap();
    let at = |pod: &str| {
        verdicts
            .iter()
            .find(|d| d["direction"] == "ingress" && d["pod"] == pod)
            .unwrap_or_else(|| panic!("no ingress verdict at {pod}: {}", run.stdout))
    };
    let remote = at("default/web-3");
    assert_eq!(remote["allowed"], false, "{}", run.stdout);
    assert!(
        remote["explanation"]
            .as_str()
            .unwrap()
            .contains("from 192.168.0.12"),
        "{}",
        run.stdout
    );
    let local = at("default/web-2");
    assert_eq!(local["allowed"], true, "{}", run.stdout);
    assert_eq!(local["decision"]["kind"], "node-local");
    // Pod to pod, no masquerade: admitted.
    let mut args = vec!["-s", "10.244.0.5", "-d", "10.244.2.8", "-p", "8080"];
    args.extend_from_slice(&enforce);
    let run = diagnose(b.path(), &args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

/// Egress to a node's address is policy too (an egress default-deny stops
/// a pod's calls to the kubelet); an egress rule with an ipBlock holding
/// the node admits them.
#[test]
fn egress_to_a_node_address_is_judged() {
    let deny = netpol(
        "client-egress-deny",
        json!({"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"]}),
    );
    let flow = ["-s", "10.244.0.5", "-d", "192.168.0.12", "-p", "10250"];
    let b = bundle_with(std::slice::from_ref(&deny));
    let run = diagnose(b.path(), &flow);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let v = run.json();
    let egress = v["policy"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["direction"] == "egress")
        .unwrap_or_else(|| panic!("no egress verdict: {}", v["policy"]));
    assert_eq!(egress["allowed"], false, "{egress}");
    assert!(
        policy_suspicions(&run)
            .iter()
            .any(|(l, m)| l == "WARNING" && m.contains("default/client-egress-deny")),
        "{}",
        run.stdout
    );
    let allow = netpol(
        "client-to-nodes",
        json!({"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"],
               "egress": [{"to": [{"ipBlock": {"cidr": "192.168.0.0/24"}}],
                           "ports": [{"port": 10250}]}]}),
    );
    let b = bundle_with(&[deny, allow]);
    let run = diagnose(b.path(), &flow);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(policy_suspicions(&run).is_empty(), "{}", run.stdout);
    let v = run.json();
    assert!(
        v["policy"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["direction"] == "egress" && d["allowed"] == true),
        "{}",
        v["policy"]
    );
}
