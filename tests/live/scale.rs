//! Figures at scale (ignored; run with `cargo test --test live -- --ignored
//! --nocapture scale`): a live diagnosis against a fake cluster of 1,000
//! nodes, 20,000 pods and 5,000 services, and the cluster view's memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use crate::common::*;
use crate::server::State;

/// Counts live heap bytes and their peak, to measure the cluster view.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const NODES: usize = 1_000;
const PODS: usize = 20_000;
const SERVICES: usize = 5_000;

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

#[test]
#[ignore = "figures: 1,000 nodes, 20,000 pods, 5,000 services"]
fn scale_figures() {
    let (mut objects, dumps) = fixture();
    generate(&mut objects);
    let counts = |kind: &str| objects.iter().filter(|o| o["kind"] == kind).count();
    println!(
        "fake cluster: {} nodes, {} pods, {} services, {} endpointslices",
        counts("Node"),
        counts("Pod"),
        counts("Service"),
        counts("EndpointSlice")
    );

    // The cluster view in this process: heap growth while it is built and
    // what it keeps.
    let bundle = skoop_engine::bundle::Bundle {
        source: "generated".into(),
        objects: objects.clone(),
        nodes: Default::default(),
    };
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let view = skoop_engine::cluster::ClusterView::from_bundle(&bundle).expect("view");
    let kept = LIVE.load(Ordering::Relaxed) - before;
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let objects_bytes = {
        let b = LIVE.load(Ordering::Relaxed);
        let copy = objects.clone();
        let n = LIVE.load(Ordering::Relaxed) - b;
        drop(copy);
        n
    };
    println!(
        "cluster view: {:.1} MiB kept, {:.1} MiB peak while building (the raw objects alone: {:.1} MiB)",
        kept as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        objects_bytes as f64 / 1048576.0
    );
    drop(view);
    drop(bundle);

    let api = crate::server::FakeApi::start(State {
        objects,
        dumps,
        ..State::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let kc = kubeconfig(dir.path(), &api.url, "fake", "t0ken");
    let start = Instant::now();
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "max RSS %M KiB"])
        .arg(std::env::var("SKOOP_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_skoop").to_string()))
        .args([
            "diagnose",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "-s",
            FLOW.0,
            "-d",
            FLOW.1,
            "-p",
            FLOW.2,
            "--format",
            "json",
            "-v",
        ])
        .current_dir(root())
        .env("SKOOP_CACHE_DIR", root().join("target").join("test-cache"))
        .env("HOME", dir.path())
        .env_remove("KUBECONFIG")
        .output()
        .expect("run");
    let wall = start.elapsed();
    let r = finish(out);
    assert!(r.code == 0 || r.code == 3, "{}", r.stderr);
    let seen = api.seen();
    let mut by_kind = std::collections::BTreeMap::<String, usize>::new();
    for s in &seen {
        let what = if s.path.contains("/pods/") || s.path.ends_with("/pods") && s.method != "GET" {
            format!("{} collector pods", s.method)
        } else {
            format!("{} {}", s.method, s.path)
        };
        *by_kind.entry(what).or_default() += 1;
    }
    println!(
        "live diagnosis: {} API requests, {:.2}s wall",
        seen.len(),
        wall.as_secs_f64()
    );
    for (k, n) in by_kind {
        println!("  {n:5}  {k}");
    }
    println!(
        "{}",
        r.stderr
            .lines()
            .filter(|l| l.contains("max RSS")
                || l.contains("collected")
                || l.contains("objects from"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
