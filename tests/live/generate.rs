//! A fake cluster at scale for live mode: the vxlan fixture plus generated
//! nodes, pods, services and slices the diagnosed flow does not touch. Shared
//! by the live tests and the `scale` benchmark (`host/cli/benches/scale`).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

/// The objects and node dumps (as JSON text) of a bundle directory.
pub fn fixture(dir: &Path) -> (Vec<Value>, BTreeMap<String, String>) {
    let text = std::fs::read_to_string(dir.join("cluster.json")).expect("cluster.json");
    let list: Value = serde_json::from_str(&text).expect("cluster.json is JSON");
    let objects = list["items"].as_array().expect("items").clone();
    let mut dumps = BTreeMap::new();
    for entry in std::fs::read_dir(dir.join("nodes")).expect("nodes/") {
        let path = entry.expect("entry").path();
        let node = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_string();
        dumps.insert(node, std::fs::read_to_string(&path).expect("dump"));
    }
    (objects, dumps)
}

pub const NODES: usize = 1_000;
pub const PODS: usize = 20_000;
pub const SERVICES: usize = 5_000;

fn ip(base: [u8; 2], i: usize) -> String {
    format!(
        "{}.{}.{}.{}",
        base[0],
        base[1],
        (i / 250) % 250,
        i % 250 + 1
    )
}

/// The vxlan fixture plus generated nodes, pods, services and slices that
/// the diagnosed flow does not touch.
pub fn generate(objects: &mut Vec<Value>) {
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .cloned()
            .expect("fixture object")
    };
    let (node, pod, svc) = (
        find("Node", "node-2"),
        find("Pod", "web-2"),
        find("Service", "web"),
    );
    let slice = objects
        .iter()
        .find(|o| o["kind"] == "EndpointSlice")
        .cloned()
        .expect("slice");
    let extra_nodes = NODES - 3;
    for i in 0..extra_nodes {
        let mut n = node.clone();
        n["metadata"]["name"] = json!(format!("gen-node-{i}"));
        n["metadata"]["uid"] = json!(format!("uid-node-{i}"));
        n["spec"]["podCIDR"] = json!(format!("10.{}.{}.0/24", 100 + i / 250, i % 250));
        n["spec"]["podCIDRs"] = json!([n["spec"]["podCIDR"].clone()]);
        n["status"]["addresses"] = json!([
            {"type": "InternalIP", "address": ip([172, 16], i)},
            {"type": "Hostname", "address": format!("gen-node-{i}")}
        ]);
        objects.push(n);
    }
    for i in 0..PODS - 11 {
        let mut p = pod.clone();
        let node = i % extra_nodes;
        p["metadata"]["name"] = json!(format!("gen-pod-{i}"));
        p["metadata"]["namespace"] = json!(format!("ns-{}", i % 50));
        p["metadata"]["uid"] = json!(format!("uid-pod-{i}"));
        p["metadata"]["labels"] = json!({"app": format!("gen-{}", i % SERVICES)});
        p["spec"]["nodeName"] = json!(format!("gen-node-{node}"));
        let addr = format!(
            "10.{}.{}.{}",
            100 + node / 250,
            node % 250,
            i / extra_nodes + 2
        );
        p["status"]["podIP"] = json!(addr.clone());
        p["status"]["podIPs"] = json!([{"ip": addr}]);
        objects.push(p);
    }
    for i in 0..SERVICES - 4 {
        let mut s = svc.clone();
        let name = format!("gen-svc-{i}");
        s["metadata"]["name"] = json!(name.clone());
        s["metadata"]["namespace"] = json!(format!("ns-{}", i % 50));
        s["spec"]["clusterIP"] = json!(ip([10, 97], i));
        s["spec"]["clusterIPs"] = json!([ip([10, 97], i)]);
        s["spec"]["selector"] = json!({"app": format!("gen-{i}")});
        objects.push(s);
        let mut e = slice.clone();
        e["metadata"]["name"] = json!(format!("{name}-abcde"));
        e["metadata"]["namespace"] = json!(format!("ns-{}", i % 50));
        e["metadata"]["labels"] = json!({"kubernetes.io/service-name": name});
        e["endpoints"] = json!([]);
        objects.push(e);
    }
}
