//! What the objects alone decide, on a bundle without node dumps: a
//! Service address on a port the Service does not have, or without a ready
//! endpoint, is fatal with or without dumps, and said once; so is a node
//! NotReady at either end, and a pod not running is critical. Calico's
//! release (ClusterInformation, else the calico-node image) decides which
//! admin policies felix enforces.

use std::path::{Path, PathBuf};

use skoop_diagnosis::{Context, Input, Request};
use skoop_engine::report::Report;
use skoop_engine::suspicion::Level;
use skoop_netstack::packet::Protocol;
use skoop_wasm::Registry;
use skoop_wasm::runtime::Runtime;

fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .expect("host/diagnosis is in the repository")
}

fn registry() -> Registry {
    let cache = root().join("target/test-cache");
    Registry::load(Runtime::new(Some(cache)).expect("the runtime starts"), &[])
        .expect("the built-ins load")
}

/// The healthy VXLAN fixture's objects without its node dumps.
fn objects_only() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("skoop-objects-only-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    std::fs::copy(
        root().join("tests/fixtures/bundles/vxlan/cluster.json"),
        dir.join("cluster.json"),
    )
    .expect("the fixture's cluster.json");
    dir
}

/// client-1 to the `web` ClusterIP (10.96.100.10, port 80/tcp only).
fn diagnose(registry: &Registry, bundle: PathBuf, port: u16) -> Report {
    let flow =
        skoop_diagnosis::flow("10.244.0.5", "10.96.100.10", port, Protocol::Tcp).expect("a flow");
    let mut context =
        Context::open(registry, Request::new(Input::Bundle(bundle)), flow, None).expect("opens");
    context.diagnose(flow).expect("diagnoses").report
}

fn fatal(r: &Report) -> Vec<(Option<&str>, &str)> {
    r.suspicions
        .iter()
        .filter(|s| s.level == Level::Fatal)
        .map(|s| (s.node.as_deref(), s.message.as_str()))
        .collect()
}

#[test]
fn a_service_port_that_does_not_exist_is_fatal_without_dumps_and_said_once_with_them() {
    let registry = registry();
    let bare = objects_only();
    let wrong = diagnose(&registry, bare.clone(), 81);
    assert_eq!(wrong.verdict, "broken", "{:?}", wrong.suspicions);
    assert_eq!(
        fatal(&wrong),
        [(
            None,
            "service default/web has no port 81/tcp (it has 80/tcp): kube-proxy installs no rule for it"
        )]
    );
    // The port the Service has: no dump, so nothing to decide, nothing fatal.
    let right = diagnose(&registry, bare.clone(), 80);
    assert_eq!(right.verdict, "partial", "{:?}", right.suspicions);
    assert!(fatal(&right).is_empty(), "{:?}", right.suspicions);
    // With the dumps the node's walk says it, at the node, and only there.
    let full = diagnose(&registry, root().join("tests/fixtures/bundles/vxlan"), 81);
    assert_eq!(
        fatal(&full),
        [(
            Some("node-1"),
            "service default/web has no port 81/tcp (it has 80/tcp): kube-proxy installs no rule for it"
        )]
    );
    let _ = std::fs::remove_dir_all(bare);
}

/// The Calico VXLAN fixture, its objects joined by `extra` (nodes copied).
fn calico_with(extra: &[serde_json::Value], name: &str) -> PathBuf {
    let from = root().join("tests/fixtures/bundles/calico-vxlan");
    let dir = std::env::temp_dir().join(format!("skoop-{name}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("nodes")).expect("a temporary directory");
    for e in std::fs::read_dir(from.join("nodes")).expect("the fixture's nodes") {
        let e = e.expect("a node dump");
        std::fs::copy(e.path(), dir.join("nodes").join(e.file_name())).expect("copied");
    }
    let text = std::fs::read_to_string(from.join("cluster.json")).expect("cluster.json");
    let mut list: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let items = list["items"].as_array_mut().expect("a List");
    items.extend(extra.iter().cloned());
    std::fs::write(dir.join("cluster.json"), list.to_string()).expect("written");
    dir
}

/// An AdminNetworkPolicy denying every ingress to `default`, and the
/// ClusterInformation calico-node writes for `version`.
fn anp_deny_and_calico(version: Option<&str>) -> Vec<serde_json::Value> {
    let mut objects = vec![serde_json::json!({
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": "deny-default"},
        "spec": {
            "priority": 10,
            "subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "default"}}},
            "ingress": [{"name": "deny-all", "action": "Deny", "from": [{"namespaces": {}}]}]
        }
    })];
    if let Some(v) = version {
        objects.push(serde_json::json!({
            "apiVersion": "crd.projectcalico.org/v1",
            "kind": "ClusterInformation",
            "metadata": {"name": "default"},
            "spec": {"calicoVersion": v, "clusterType": "k8s,bgp,kubeadm,kdd"}
        }));
    }
    objects
}

/// The level of the AdminNetworkPolicy deny on client-1 -> web-2:8080.
fn anp_level(registry: &Registry, version: Option<&str>, name: &str) -> Vec<Level> {
    let dir = calico_with(&anp_deny_and_calico(version), name);
    let flow =
        skoop_diagnosis::flow("10.244.0.5", "10.244.1.7", 8080, Protocol::Tcp).expect("a flow");
    let mut context = Context::open(
        registry,
        Request::new(Input::Bundle(dir.clone())),
        flow,
        None,
    )
    .expect("opens");
    let report = context.diagnose(flow).expect("diagnoses").report;
    let _ = std::fs::remove_dir_all(dir);
    report
        .suspicions
        .iter()
        .filter(|s| s.message.contains("deny-default") && s.message.starts_with("policy"))
        .map(|s| s.level)
        .collect()
}

#[test]
fn calico_enforces_admin_network_policy_from_3_29_by_its_cluster_information() {
    let registry = registry();
    // Calico 3.29 and later program AdminNetworkPolicy: the deny drops packets.
    assert_eq!(
        anp_level(&registry, Some("v3.29.1"), "calico-329"),
        [Level::Critical]
    );
    // 3.28 does not, and an unknown release is taken at the plugin's word (NetworkPolicy only).
    assert_eq!(
        anp_level(&registry, Some("v3.28.2"), "calico-328"),
        [Level::Warning]
    );
    assert_eq!(
        anp_level(&registry, None, "calico-unknown"),
        [Level::Warning]
    );
}

/// The vxlan fixture's objects, without node dumps, `edit`ed.
fn objects_edited(name: &str, edit: impl FnOnce(&mut Vec<serde_json::Value>)) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("skoop-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let text = std::fs::read_to_string(root().join("tests/fixtures/bundles/vxlan/cluster.json"))
        .expect("the fixture's cluster.json");
    let mut list: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    edit(list["items"].as_array_mut().expect("a List"));
    std::fs::write(dir.join("cluster.json"), list.to_string()).expect("written");
    dir
}

fn named(registry: &Registry, bundle: &Path, dst: &str, port: Option<&str>) -> Report {
    let spec = skoop_diagnosis::FlowSpec {
        src: "default/client-1".into(),
        dst: dst.into(),
        port: port.map(str::to_string),
        protocol: None,
    };
    let mut context = Context::open(
        registry,
        Request::new(Input::Bundle(bundle.to_path_buf())),
        spec.clone(),
        None,
    )
    .expect("opens");
    context.diagnose_named(&spec).expect("diagnoses").1.report
}

fn said(r: &Report) -> Vec<(Level, Option<&str>, &str)> {
    r.suspicions
        .iter()
        .filter(|s| s.level >= Level::Critical)
        .map(|s| (s.level, s.node.as_deref(), s.message.as_str()))
        .collect()
}

fn named_item<'a>(
    items: &'a mut [serde_json::Value],
    kind: &str,
    name: &str,
) -> &'a mut serde_json::Value {
    items
        .iter_mut()
        .find(|i| i["kind"] == kind && i["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("the fixture has {kind} {name}"))
}

#[test]
fn the_objects_alone_say_what_is_wrong_with_either_end() {
    let registry = registry();
    // Healthy objects: nothing critical or fatal, with no dump to walk.
    let quiet = objects_edited("objects-quiet", |_| {});
    for (dst, port) in [("web.default", None), ("default/web-2", Some("8080"))] {
        let r = named(&registry, &quiet, dst, port);
        assert!(said(&r).is_empty(), "{dst}: {:?}", r.suspicions);
        assert_eq!(r.verdict, "partial");
    }
    let _ = std::fs::remove_dir_all(quiet);
    // Every endpoint of Service web not ready.
    let dir = objects_edited("objects-no-ready", |items| {
        for i in items.iter_mut().filter(|i| {
            i["kind"] == "EndpointSlice"
                && i["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
        }) {
            for e in i["endpoints"].as_array_mut().into_iter().flatten() {
                e["conditions"] = serde_json::json!({"ready": false});
            }
        }
    });
    let r = named(&registry, &dir, "web.default", None);
    assert_eq!(
        said(&r),
        [(
            Level::Fatal,
            None,
            "service default/web has no ready endpoint for port http (80/tcp): 2 not ready; kube-proxy rejects the traffic"
        )]
    );
    let _ = std::fs::remove_dir_all(dir);
    // The destination pod Pending, and another's node NotReady.
    let dir = objects_edited("objects-pod-node", |items| {
        let pod = named_item(items, "Pod", "web-2");
        pod["status"]["phase"] = "Pending".into();
        pod["status"]["conditions"] = serde_json::json!([{"type": "Ready", "status": "False"}]);
        let node = named_item(items, "Node", "node-3");
        for c in node["status"]["conditions"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            if c["type"] == "Ready" {
                c["status"] = "False".into();
            }
        }
    });
    let r = named(&registry, &dir, "default/web-2", Some("8080"));
    assert_eq!(
        said(&r),
        [(
            Level::Critical,
            Some("default/web-2"),
            "pod default/web-2 is not running (phase Pending): nothing in it sends or answers"
        )]
    );
    let r = named(&registry, &dir, "default/web-3", Some("8080"));
    assert_eq!(
        said(&r),
        [(Level::Fatal, Some("node-3"), "node node-3 is NotReady")]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn calico_reads_its_release_from_the_calico_node_image_and_says_when_it_assumed() {
    let registry = registry();
    let level = |image: &str, name: &str| -> (Vec<Level>, bool) {
        let dir = calico_with(&anp_deny_and_calico(None), name);
        let path = dir.join("cluster.json");
        let text = std::fs::read_to_string(&path).expect("cluster.json");
        std::fs::write(&path, text.replace("docker.io/calico/node:v3.28.0", image))
            .expect("written");
        let flow =
            skoop_diagnosis::flow("10.244.0.5", "10.244.1.7", 8080, Protocol::Tcp).expect("a flow");
        let mut context = Context::open(
            &registry,
            Request::new(Input::Bundle(dir.clone())),
            flow,
            None,
        )
        .expect("opens");
        let report = context.diagnose(flow).expect("diagnoses").report;
        let _ = std::fs::remove_dir_all(dir);
        let levels = report
            .suspicions
            .iter()
            .filter(|s| s.message.contains("deny-default") && s.message.starts_with("policy"))
            .map(|s| s.level)
            .collect();
        let assumed = report
            .suspicions
            .iter()
            .any(|s| s.message.starts_with("Calico's release is unknown"));
        (levels, assumed)
    };
    assert_eq!(
        level("docker.io/calico/node:v3.29.2", "calico-image-329"),
        (vec![Level::Critical], false)
    );
    assert_eq!(
        level("docker.io/calico/node:latest", "calico-image-latest"),
        (vec![Level::Warning], true),
        "no version anywhere: NetworkPolicy only, and said so"
    );
}
