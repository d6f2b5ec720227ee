//! Input that degrades rather than aborts: an object that cannot be read is
//! left out with a warning naming the file, the JSON path and the object;
//! only a flow that needs it says it cannot be decided. A node dump's
//! unreadable section is "cannot check" for that netns alone.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::{Run, assert_bad_input, root, skoop};

/// The calico demo copied into a temporary bundle, `edit` applied to its
/// cluster.json items and to its node dumps (by node name).
fn calico_bundle(
    edit_items: impl FnOnce(&mut Vec<Value>),
    edit_node: impl Fn(&str, &mut Value),
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = root().join("host/demos/calico");
    let text = std::fs::read_to_string(demo.join("cluster.json")).expect("demo cluster.json");
    let mut cluster: Value = serde_json::from_str(&text).expect("JSON");
    if let Some(items) = cluster["items"].as_array_mut() {
        edit_items(items);
    }
    write(&dir.path().join("cluster.json"), &cluster);
    std::fs::create_dir(dir.path().join("nodes")).expect("nodes/");
    for entry in std::fs::read_dir(demo.join("nodes")).expect("demo nodes") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("dump");
        let mut dump: Value = serde_json::from_str(&text).expect("JSON");
        let node = dump["node"].as_str().unwrap_or_default().to_string();
        edit_node(&node, &mut dump);
        let name = path.file_name().expect("a file name");
        write(&dir.path().join("nodes").join(name), &dump);
    }
    dir
}

fn write(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string(value).expect("JSON")).expect("write");
}

fn diagnose(dir: &Path, flow: &[&str]) -> Run {
    let bundle = dir.to_str().expect("a UTF-8 path");
    let mut args = vec!["diagnose", "--snapshot", bundle, "--format", "json"];
    args.extend(flow);
    skoop(&args)
}

/// The demo's flow: client-1 → kube-dns over UDP, which felix drops.
const DEMO_FLOW: [&str; 8] = [
    "-s",
    "default/client-1",
    "-d",
    "kube-dns.kube-system",
    "-p",
    "dns",
    "--protocol",
    "udp",
];

/// One malformed object of each kind, none on the demo flow's path.
fn off_path_objects() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "broken", "namespace": "other"},
               "spec": {"nodeName": "node-2", "containers": "oops"},
               "status": {"podIP": "10.244.1.99", "phase": "Running"}}),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "broken", "namespace": "other"},
               "spec": {"clusterIP": "10.96.9.9", "ports": [{"port": "eighty"}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
               "metadata": {"name": "broken-x", "namespace": "other",
                            "labels": {"kubernetes.io/service-name": "broken"}},
               "endpoints": [{"addresses": "10.244.1.99"}]}),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-9"},
               "status": {"addresses": {"type": "InternalIP", "address": "192.168.0.19"}}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "broken", "namespace": "other"},
               "spec": {"podSelector": "app=web"}}),
        // A Calico CRD the host cannot read (its metadata) and one the plugin cannot (its spec).
        json!({"apiVersion": "crd.projectcalico.org/v1", "kind": "FelixConfiguration",
               "metadata": {"name": 5}, "spec": {}}),
        json!({"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool",
               "metadata": {"name": "extra"},
               "spec": {"cidr": "10.250.0.0/16", "blockSize": "big"}}),
    ]
}

#[test]
fn malformed_off_path_objects_of_each_kind_are_left_out_with_their_json_path() {
    let clean = calico_bundle(|_| {}, |_, _| {});
    let before = diagnose(clean.path(), &DEMO_FLOW);
    let dir = calico_bundle(|items| items.extend(off_path_objects()), |_, _| {});
    let run = diagnose(dir.path(), &DEMO_FLOW);
    assert_eq!(
        run.code, before.code,
        "the same verdict as without them:\n{}",
        run.stderr
    );
    let (report, clean_report) = (run.json(), before.json());
    assert_eq!(report["verdict"], clean_report["verdict"]);
    assert_eq!(report["path"], clean_report["path"], "the same path");
    let items = clean_report_len(&clean);
    let cluster = dir.path().join("cluster.json");
    let origin = cluster.display();
    for (i, line) in [
        r#"spec.containers: expected a list, found the string "oops" (Pod other/broken skipped)"#,
        r#"spec.ports[0].port: expected a number, found the string "eighty" (Service other/broken skipped)"#,
        r#"endpoints[0].addresses: expected a list, found the string "10.244.1.99" (EndpointSlice other/broken-x skipped)"#,
        "status.addresses: expected a list, found an object (Node node-9 skipped)",
        r#"spec.podSelector: expected a LabelSelector object, found the string "app=web" (NetworkPolicy other/broken skipped)"#,
        "metadata.name: expected a string, found the number 5 (a FelixConfiguration without a readable name skipped)",
    ]
    .iter()
    .enumerate()
    {
        let want = format!("skoop: warning: {origin}: items[{}].{line}", items + i);
        assert!(
            run.stderr.lines().any(|l| l == want),
            "missing: {want}\nstderr:\n{}",
            run.stderr
        );
    }
    let messages: Vec<&str> = report["suspicions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["message"].as_str())
        .collect();
    assert!(
        messages.iter().any(|m| m.starts_with(
            "6 objects could not be read and were left out, none of them on this flow's path"
        )),
        "{messages:#?}"
    );
    assert!(
        messages.iter().any(|m| m
            .starts_with("could not read crd.projectcalico.org/v1 IPPool extra (spec.blockSize:")
            || m.starts_with(
                "could not read crd.projectcalico.org/v1 IPPool extra: spec.blockSize:"
            )),
        "the plugin names the CRD it could not read: {messages:#?}"
    );
}

/// How many items the demo's cluster.json has: the added ones follow.
fn clean_report_len(clean: &tempfile::TempDir) -> usize {
    let text = std::fs::read_to_string(clean.path().join("cluster.json")).expect("cluster.json");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    v["items"].as_array().map(Vec::len).unwrap_or_default()
}

#[test]
fn a_malformed_object_the_flow_needs_makes_it_undecided() {
    // The destination Service's slice and a policy in the source's namespace.
    let dir = calico_bundle(
        |items| {
            items.push(
                json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "addressType": "IPv4",
                "metadata": {"name": "web-extra", "namespace": "default",
                             "labels": {"kubernetes.io/service-name": "web"}},
                "endpoints": [{"addresses": ["10.244.2.30"], "conditions": {"ready": "yes"}}]}),
            );
            items.push(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "deny-egress", "namespace": "default"},
                "spec": {"podSelector": {}, "policyTypes": "Egress"}}),
            );
        },
        |_, _| {},
    );
    let run = diagnose(dir.path(), &["-s", "default/client-1", "-d", "web.default"]);
    let report = run.json();
    let messages: Vec<(&str, &str)> = report["suspicions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["level"].as_str()?, s["message"].as_str()?)))
        .collect();
    let undecided = |needle: &str| {
        messages
            .iter()
            .any(|(l, m)| *l == "WARNING" && m.starts_with("cannot decide:") && m.contains(needle))
    };
    assert!(
        undecided("EndpointSlice default/web-extra could not be read")
            && undecided("endpoints[0].conditions.ready: expected true or false")
            && undecided("a slice of Service default/web, the flow's destination"),
        "{messages:#?}"
    );
    assert!(
        undecided("NetworkPolicy default/deny-egress could not be read")
            && undecided("spec.policyTypes: expected a list")
            && undecided("the policy verdict is unknown"),
        "{messages:#?}"
    );
    assert_ne!(report["verdict"], "healthy", "{report}");
}

#[test]
fn an_unreadable_dump_section_is_cannot_check_for_that_netns_alone() {
    // node-1's dump: client-1's routes unreadable; node-3's: web-3's.
    let break_routes = |pod: &'static str| {
        move |_node: &str, dump: &mut Value| {
            for p in dump["pods"].as_array_mut().into_iter().flatten() {
                if p["name"] == pod
                    && let Some(r) = p["netns"]["routes"].get_mut(0)
                {
                    r["dst"] = json!(5);
                }
            }
        }
    };
    // Off the path (web-3 is not client-1 → web-2's): nothing changes.
    let clean = calico_bundle(|_| {}, |_, _| {});
    let flow = [
        "-s",
        "default/client-1",
        "-d",
        "default/web-2",
        "-p",
        "8080",
    ];
    let before = diagnose(clean.path(), &flow);
    let dir = calico_bundle(|_| {}, break_routes("web-3"));
    let run = diagnose(dir.path(), &flow);
    assert_eq!(run.code, before.code, "{}", run.stderr);
    assert_eq!(run.json()["suspicions"], before.json()["suspicions"]);
    // On it: that netns cannot be checked, and the file and path say why.
    let dir = calico_bundle(|_| {}, break_routes("client-1"));
    let run = diagnose(dir.path(), &flow);
    assert_eq!(run.code, 0, "not broken, and not an error:\n{}", run.stderr);
    let report = run.json();
    assert_eq!(report["verdict"], "partial");
    let file = dir.path().join("nodes/node-1.json");
    let want = format!(
        "cannot check pod default/client-1: routes of pod default/client-1 could not be read ({}: pods[",
        file.display()
    );
    let found = report["suspicions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["message"].as_str())
        .find(|m| m.starts_with(&want));
    assert!(
        found.is_some_and(|m| m.contains("].netns.routes[0].dst: expected")),
        "{:#}",
        report["suspicions"]
    );
}

#[test]
fn a_file_that_is_not_json_names_the_place_with_the_text_around_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("cluster.json"),
        r#"{"apiVersion": "v1", "kind": "List", "items": [{"kind": "Pod"} {"kind": "Node"}]}"#,
    )
    .expect("write");
    std::fs::create_dir(dir.path().join("nodes")).expect("nodes/");
    let run = diagnose(
        dir.path(),
        &["-s", "10.0.0.1", "-d", "10.0.0.2", "-p", "80"],
    );
    assert_bad_input(
        &run,
        "cluster.json:1:64: malformed JSON: expected `,` or `]`",
    );
    assert!(
        run.stderr.contains(r#"(byte 63, here: …"#)
            && run
                .stderr
                .contains(r#""items": [{"kind": "Pod"} »{"kind": "Node"}]})"#),
        "{}",
        run.stderr
    );
}

#[test]
fn connectivity_leaves_out_a_policy_it_cannot_read_and_says_which() {
    let dir = calico_bundle(
        |items| {
            items.push(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "bad", "namespace": "default"},
                "spec": {"podSelector": "app=web"}}),
            );
        },
        |_, _| {},
    );
    let bundle = dir.path().to_str().expect("a UTF-8 path");
    let run = skoop(&["connectivity", "--snapshot", bundle, "--port", "8080/TCP"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "NetworkPolicy default/bad is malformed: spec.podSelector: expected a LabelSelector object, found the string \"app=web\" (left out)"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.starts_with("Connectivity on 8080/TCP"),
        "{}",
        run.stdout
    );
}
