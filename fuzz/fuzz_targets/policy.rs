//! The policy objects of `cluster.json` (NetworkPolicy, AdminNetworkPolicy,
//! BaselineAdminNetworkPolicy, with the Namespaces, Nodes and Pods they
//! select): read as `skoop connectivity` reads them, into the policy set
//! and its matrix; and as a diagnosis reads them, through the cluster view
//! into the policy check, with verdicts for flows between the pods.
#![no_main]

use libfuzzer_sys::{fuzz_mutator, fuzz_target};
use serde_json::Value;
use skoop_engine::cluster::{ClusterView, Retain};
use skoop_engine::policy::{PolicyCheck, arrivals_from_objects};
use skoop_netstack::packet::{Packet, Protocol};
use skoop_policy::{PolicySet, matrix, pods_from_objects};

/// The kinds felix enforces, as a plugin declares them.
const ENFORCES: [&str; 2] = [
    "networking.k8s.io/v1/NetworkPolicy",
    "policy.networking.k8s.io/v1alpha1/AdminNetworkPolicy",
];

fn connectivity(objects: &[Value]) {
    let Ok(set) = PolicySet::from_objects(objects) else {
        return;
    };
    let _ = set.counts();
    let Ok(mut pods) = pods_from_objects(objects) else {
        return;
    };
    // The matrix is quadratic in the pods by design: a few are enough.
    pods.truncate(12);
    let mut ports: Vec<(u16, Protocol)> = pods
        .iter()
        .flat_map(|p| p.ports.iter().map(|c| (c.port, c.protocol)))
        .take(2)
        .collect();
    ports.push((80, Protocol::Tcp));
    for (port, protocol) in ports {
        let m = matrix::matrix(&set, &pods, None, port, protocol);
        let _ = (m.to_text(), m.to_csv(), serde_json::to_string(&m));
        for g in &m.groups {
            let _ = g.display();
        }
        if let Some(p) = pods.first() {
            let _ = matrix::matrix(&set, &pods, Some(&p.namespace), port, protocol).to_text();
        }
    }
}

fn diagnosis(text: &str) {
    let Ok(view) = ClusterView::parse(text, "cluster.json", Retain::host()) else {
        return;
    };
    let enforces: Vec<String> = ENFORCES.iter().map(|s| s.to_string()).collect();
    let Ok(check) = PolicyCheck::new(&view, "calico", &enforces, None) else {
        return;
    };
    let pods: Vec<_> = view.pods.values().take(5).collect();
    let mut addrs: Vec<_> = pods.iter().filter_map(|p| p.ip).collect();
    addrs.extend(
        view.services
            .values()
            .take(2)
            .flat_map(|s| s.cluster_ips.first()),
    );
    addrs.push([8, 8, 8, 8].into());
    for (i, src) in addrs.iter().enumerate() {
        for dst in addrs.iter().skip(i.saturating_sub(1)).take(3) {
            for (port, protocol) in [(80, Protocol::Tcp), (53, Protocol::Udp)] {
                for v in check.evaluate(&view, *src, *dst, port, protocol) {
                    let _ = (check.enforced(&v), check.suspicion(&v));
                    let _ = check.disagreement(&v, true);
                }
                let request = Packet {
                    src: *src,
                    sport: 40000,
                    dst: *dst,
                    dport: port,
                    protocol,
                    mark: 0,
                    encap: None,
                    reply: false,
                    tos: 0,
                    size: 0,
                    icmp: None,
                };
                let _ = arrivals_from_objects(&view, &request);
                if let Some(p) = pods.first() {
                    let _ = check.to_outside(&p.id(), &request);
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mut list) = serde_json::from_str::<Value>(text)
        && let Some(Value::Array(objects)) = list.get_mut("items").map(Value::take)
    {
        connectivity(&objects);
    }
    diagnosis(text);
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    skoop_fuzz::mutate_json(data, size, max_size, seed)
});
