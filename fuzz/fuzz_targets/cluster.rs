//! The bundle reader: `cluster.json` (a `kubectl get -o json` List) read
//! into the cluster view with every kind kept, as a bundle directory reads
//! it (objects kept as shares of the text) or as an embedded demo does;
//! then the same text as a LIST page of one kind (the live reader), into a
//! builder that already holds the List's objects; then the view's lookups.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::{fuzz_mutator, fuzz_target};
use skoop_engine::cluster::{ClusterBuilder, ClusterView, Retain};
use skoop_fuzz::Harvest;
use skoop_netstack::packet::Protocol;

/// The kinds a page may be of: those the view interprets, and one it keeps.
const KINDS: [(&str, &str); 5] = [
    ("v1", "Pod"),
    ("v1", "Node"),
    ("v1", "Service"),
    ("discovery.k8s.io/v1", "EndpointSlice"),
    ("v1", "ConfigMap"),
];

/// The kind of page the text most looks like, or one picked by its length.
fn page_kind(text: &str) -> (&'static str, &'static str) {
    let marks = ["nodeName", "podCIDR", "clusterIP", "addressType"];
    match marks.iter().position(|m| text.contains(m)) {
        Some(i) => KINDS[i],
        None => KINDS[text.len() % KINDS.len()],
    }
}

fn lookups(view: &ClusterView, h: &Harvest) {
    for (i, ip) in h.addrs.iter().enumerate() {
        let port = h.ports.first().copied().unwrap_or(80);
        for protocol in [Protocol::Tcp, Protocol::Udp] {
            let _ = view.classify(*ip, port, protocol);
            let _ = view.service_by_node_port(port, protocol);
            if let Some(dst) = h.addrs.get(i + 1) {
                let _ = view.nodes_for(*ip, *dst, port, protocol);
            }
        }
    }
    for ((api, kind), _) in view.counts().iter().take(8) {
        for o in view.objects(api, kind, "") {
            let _ = o.id();
            // As detection and extensions read them (a number out of f64's
            // range is valid JSON to the reader, an error here).
            let _ = o.typed::<serde_json::Value>();
        }
    }
}

fn harvest(view: &ClusterView) -> Harvest {
    let mut h = Harvest::default();
    h.addrs
        .extend(view.pods.values().filter_map(|p| p.ip).take(2));
    h.addrs.extend(view.nodes.values().map(|n| n.ip).take(2));
    for s in view.services.values().take(2) {
        h.addrs.extend(s.cluster_ips.iter().take(1));
        h.ports.extend(s.ports.iter().map(|p| p.port).take(1));
    }
    h
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let view = if data.len().is_multiple_of(2) {
        ClusterView::parse_shared(&Arc::new(text.to_string()), "cluster.json", Retain::all())
    } else {
        ClusterView::parse(text, "cluster.json", Retain::all())
    };
    let (api, kind) = page_kind(text);
    let mut builder = ClusterBuilder::new(Retain::all());
    let list = builder.add_list(text, "cluster.json");
    assert_eq!(list.is_ok(), view.is_ok());
    let page = builder.add_page(text, api, kind, "page");
    if let Ok(Some(token)) = &page {
        assert!(!token.is_empty());
    }
    if let Ok(view) = &view {
        lookups(view, &harvest(view));
    }
    let paged = builder.finish();
    lookups(&paged, &harvest(&paged));
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    skoop_fuzz::mutate_json(data, size, max_size, seed)
});
