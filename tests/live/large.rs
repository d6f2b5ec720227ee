//! A large cluster (1,000 nodes, 20,000 pods, 5,000 Services, see
//! `generate.rs`): the objects are listed page by page, collectors start only
//! on the nodes the flow reaches, and the verdict is the small cluster's.
//! Time and memory at this size are the `scale` benchmark's business
//! (`cargo bench -p skoop --bench scale`).

use serde_json::Value;

use crate::common::*;
use crate::server::{FakeApi, State};

#[test]
fn a_large_cluster_is_listed_in_pages_and_collected_on_the_path_only() {
    let (mut objects, dumps) = crate::generate::fixture(&vxlan());
    crate::generate::generate(&mut objects);
    let api = FakeApi::start(State {
        objects,
        dumps,
        ..State::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let large = diagnose(&api, dir.path(), &[]);
    assert_eq!(large.code, 0, "{}", large.stderr);
    // 20,000 pods in pages of 500, each page a request.
    assert!(
        api.count("GET", "/api/v1/pods") >= 40,
        "{:?}",
        api.seen().len()
    );
    // client-1 on node-1 to the web Service, whose endpoints are on node-1 and node-2.
    let mut collected: Vec<String> = api
        .seen()
        .iter()
        .filter_map(|s| s.path.strip_prefix("/api/v1/namespaces/skoop/pods/skoop-"))
        .filter_map(|rest| rest.split('/').next())
        .filter_map(|pod| pod.rsplit_once('-').map(|(node, _)| node.to_string()))
        .collect();
    collected.sort();
    collected.dedup();
    assert_eq!(collected, vec!["node-1".to_string(), "node-2".to_string()]);
    let small_api = server();
    let small = diagnose(&small_api, dir.path(), &[]);
    let verdict = |r: &Run| r.json()["verdict"].clone();
    assert_eq!(verdict(&large), verdict(&small));
    // The generated nodes' pod CIDRs lie outside flannel's network (a
    // WARNING each); the rest must be the small cluster's suspicions.
    let messages = |r: &Run| -> Vec<Value> {
        r.json()["suspicions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| !s["message"].as_str().unwrap_or("").contains("gen-node-"))
            .collect()
    };
    assert_eq!(messages(&large), messages(&small));
}
