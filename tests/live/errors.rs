//! 403s and timeouts: one line naming the verb, the resource and the fix.

use crate::common::*;

#[test]
fn forbidden_list_names_verb_resource_and_rule() {
    let api = server_with(|s| {
        s.forbid
            .push(("GET".into(), "/apis/apps/v1/daemonsets".into()))
    });
    let dir = tempfile::tempdir().unwrap();
    let r = diagnose(&api, dir.path(), &[]);
    assert_bad_input(
        &r,
        &[
            "forbidden to list daemonsets.apps",
            "403",
            "apiGroups: [\"apps\"], resources: [\"daemonsets\"], verbs: [\"list\"]",
            "deploy/rbac.yaml",
        ],
    );
}

#[test]
fn forbidden_pod_create_names_the_namespace() {
    let api = server_with(|s| {
        s.forbid
            .push(("POST".into(), "/api/v1/namespaces/skoop/pods".into()))
    });
    let dir = tempfile::tempdir().unwrap();
    let r = diagnose(&api, dir.path(), &[]);
    assert_bad_input(
        &r,
        &[
            "forbidden to create pods in namespace skoop",
            "resources: [\"pods\"], verbs: [\"create\"]",
        ],
    );
}

#[test]
fn api_timeout_names_the_request_and_the_flag() {
    let api = server_with(|s| s.hang.push("/apis/discovery.k8s.io".into()));
    let dir = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let r = diagnose(&api, dir.path(), &["--api-timeout", "1"]);
    assert_bad_input(
        &r,
        &[
            "did not answer list endpointslices.discovery.k8s.io",
            "within 1s",
            "--api-timeout",
            &api.url,
        ],
    );
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
}
