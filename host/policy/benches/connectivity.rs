//! Connectivity matrix benchmark: 5,000 pods and 500 NetworkPolicies (issue 11: ≤ 5 s).
//! Run: cargo bench -p skoop-policy --bench connectivity

use std::time::Instant;

use serde_json::{Value, json};
use skoop_netstack::packet::Protocol;
use skoop_policy::{PolicySet, matrix, pods_from_objects};

fn main() {
    // 50 namespaces × 20 apps × 5 replicas = 5,000 pods; 10 policies per namespace = 500.
    let mut objects: Vec<Value> = Vec::new();
    for n in 0..50 {
        let ns = format!("ns-{n}");
        objects.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"tier": if n % 2 == 0 { "prod" } else { "dev" }}}}));
        for a in 0..20 {
            for r in 0..5 {
                let i = n * 100 + a * 5 + r;
                objects.push(json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"namespace": ns, "name": format!("app-{a}-{r}"),
                                 "labels": {"app": format!("app-{a}"), "role": if a % 3 == 0 { "db" } else { "web" }}},
                    "spec": {"nodeName": format!("node-{}", i % 50),
                             "containers": [{"name": "c", "image": "x",
                                 "ports": [{"containerPort": 8080, "name": "http"}]}]},
                    "status": {"podIP": format!("10.{}.{}.{}", 1 + i / 65536, (i / 256) % 256, i % 256)}}));
            }
        }
        for p in 0..10 {
            let spec = match p % 4 {
                0 => json!({"podSelector": {"matchLabels": {"app": format!("app-{p}")}},
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "web"}}}],
                                 "ports": [{"port": "http"}]}]}),
                1 => {
                    json!({"podSelector": {"matchExpressions": [{"key": "role", "operator": "In", "values": ["db"]}]},
                    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"tier": "prod"}},
                                           "podSelector": {"matchLabels": {"role": "web"}}}]}]})
                }
                2 => json!({"podSelector": {"matchLabels": {"app": format!("app-{p}")}},
                    "policyTypes": ["Egress"],
                    "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.1.0/24"]}}],
                                "ports": [{"port": 8000, "endPort": 9000}]}]}),
                _ => json!({"podSelector": {"matchLabels": {"app": format!("app-{p}")}},
                    "ingress": [{"from": [{"namespaceSelector": {}}]}]}),
            };
            objects.push(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"namespace": ns, "name": format!("np-{p}")}, "spec": spec}),
            );
        }
    }
    let start = Instant::now();
    let set = PolicySet::from_objects(&objects).expect("bench objects are valid");
    let pods = pods_from_objects(&objects).expect("bench pods are valid");
    let m = matrix::matrix(&set, &pods, None, 8080, Protocol::Tcp);
    let elapsed = start.elapsed();
    let denied = m.allowed.iter().flatten().filter(|a| !**a).count();
    println!(
        "connectivity: {} pods, {} policies, {} groups, {} pairs ({} denied) in {:.3} s",
        pods.len(),
        set.counts().0,
        m.groups.len(),
        m.groups.len() * m.groups.len(),
        denied,
        elapsed.as_secs_f64()
    );
    assert!(
        elapsed.as_secs_f64() <= 5.0,
        "the matrix must take at most 5 s"
    );
}
