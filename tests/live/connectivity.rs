//! `skoop connectivity` against a live cluster: it lists namespaces and the
//! admin policies as well as pods and NetworkPolicies, and its matrix is the
//! one the conformance suite expects and the one the same objects give as a
//! bundle.

use serde_json::Value;

use crate::common::{kubeconfig, root, run};
use crate::server::{FakeApi, State};

#[test]
fn connectivity_of_a_live_cluster_matches_the_conformance_verdicts_and_its_bundle() {
    // network-policy-api conformance: an ANP passes ingress to a NetworkPolicy
    // that selects by namespace labels; a BANP denies the rest.
    let case = root().join("host/policy/tests/corpus/anp-integration-pass-ingress-to-np");
    let read = |f: &str| -> Value {
        let text = std::fs::read_to_string(case.join(f)).expect("corpus file");
        serde_json::from_str(&text).expect("corpus JSON")
    };
    let objects = read("cluster.json")["items"]
        .as_array()
        .expect("items")
        .clone();
    let api = FakeApi::start(State {
        objects,
        ..State::default()
    });
    let home = tempfile::tempdir().expect("temp dir");
    let kc = kubeconfig(home.path(), &api.url, "fake", "t0ken");
    let kc = kc.to_str().expect("path");
    let dir = case.to_str().expect("path");
    let expected = read("expected.json");
    for check in expected["checks"].as_array().expect("checks") {
        let port = format!(
            "{}/{}",
            check["port"],
            check["protocol"].as_str().expect("protocol")
        );
        let args = ["--port", port.as_str(), "--format", "json"];
        let live = run(
            home.path(),
            &[&["connectivity", "--kubeconfig", kc][..], &args].concat(),
        );
        assert_eq!(live.code, 0, "{}", live.stderr);
        let matrix = &live.json()["matrices"][0];
        // Pods are grouped by namespace and labels: a pod's row is its group's.
        let group_of = |pod: &str| -> usize {
            matrix["groups"]
                .as_array()
                .expect("groups")
                .iter()
                .position(|g| {
                    g["pods"]
                        .as_array()
                        .is_some_and(|p| p.iter().any(|x| x == pod))
                })
                .unwrap_or_else(|| panic!("{pod} is in no group: {matrix}"))
        };
        for flow in check["pod_flows"].as_array().expect("pod_flows") {
            let (from, to) = (
                flow["from"].as_str().expect("from"),
                flow["to"].as_str().expect("to"),
            );
            assert_eq!(
                matrix["allowed"][group_of(from)][group_of(to)],
                flow["allowed"],
                "{from} -> {to} on {port}: {matrix}"
            );
        }
        let bundle = run(
            home.path(),
            &[&["connectivity", "--snapshot", dir][..], &args].concat(),
        );
        assert_eq!(bundle.code, 0, "{}", bundle.stderr);
        assert_eq!(
            live.stdout, bundle.stdout,
            "live and bundle matrices differ"
        );
    }
    for list in [
        "/api/v1/namespaces",
        "/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies",
        "/apis/policy.networking.k8s.io/v1alpha1/baselineadminnetworkpolicies",
    ] {
        assert!(api.count("GET", list) >= 1, "{list} was not listed");
    }
    // No collector pod for a matrix.
    assert_eq!(api.count("POST", "/api/v1/namespaces"), 0);
}
