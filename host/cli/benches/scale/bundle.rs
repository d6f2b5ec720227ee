//! A bundle at kube-proxy scale: the `vxlan` fixture (client-1 on node-1, web-1
//! on node-1, web-2 on node-2) with `n` more ClusterIP Services, each with
//! web-1 and web-2 as endpoints, and the iptables rules kube-proxy programs
//! for them on every node (KUBE-SERVICES, KUBE-SVC, KUBE-SEP, KUBE-EXT and
//! KUBE-NODEPORTS for every 20th, a filter REJECT for every 100th which has
//! no endpoints). node-3's dump is left out: the path does not touch it, as in
//! a snapshot taken of the nodes that matter. Deterministic for a given `n`.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;

use serde_json::{Value, json};

/// Service `i`'s ClusterIP, inside 10.96.0.0/12 and clear of the fixture's.
pub fn vip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 100, 0, 0)) + i + 1)
}

/// The Service the benchmark diagnoses: the last one that has endpoints.
pub fn diagnosed(n: u32) -> u32 {
    (0..n).rev().find(|&i| has_endpoints(i)).unwrap_or(0)
}

pub fn has_endpoints(i: u32) -> bool {
    i % 100 != 50
}

pub fn node_port(i: u32) -> Option<u32> {
    (i % 20 == 3).then_some(30100 + i / 20)
}

/// kube-proxy names chains by a base32 hash; any stable 16 characters do.
pub fn chain(prefix: &str, salt: u32, i: u32) -> String {
    const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut x = (u64::from(salt) << 32 | u64::from(i)) ^ 0x5bd1_e995_1234_5678;
    let mut s = String::from(prefix);
    for _ in 0..16 {
        x = x.wrapping_mul(0x2545_f491_4f6c_dd1d).rotate_left(17);
        s.push(char::from(B32[(x >> 59) as usize]));
    }
    s
}

pub const ENDPOINTS: [(&str, &str, &str); 2] = [
    ("web-1", "node-1", "10.244.0.6"),
    ("web-2", "node-2", "10.244.1.7"),
];

pub fn read_json(p: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}

/// The fixture's objects with the `n` Services and their EndpointSlices.
pub fn cluster(fixture: &Path, n: u32) -> Result<Value, String> {
    let mut cluster = read_json(&fixture.join("cluster.json"))?;
    let items = cluster["items"]
        .as_array_mut()
        .ok_or("fixture cluster.json has no items")?;
    for i in 0..n {
        items.push(service(i));
        items.push(slice(i));
    }
    Ok(cluster)
}

/// Write the bundle into `dir`; returns the number of iptables rules on one node.
pub fn write(fixture: &Path, dir: &Path, n: u32) -> Result<usize, String> {
    let read = read_json;
    let cluster = cluster(fixture, n)?;
    let (nat, filter, rules) = rules(n);
    std::fs::create_dir_all(dir.join("nodes")).map_err(|e| e.to_string())?;
    let write_json = |p: &Path, v: &Value| {
        std::fs::write(p, serde_json::to_vec(v).map_err(|e| e.to_string())?)
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    write_json(&dir.join("cluster.json"), &cluster)?;
    let mut base = 0;
    for node in ["node-1", "node-2"] {
        let file = format!("nodes/{node}.json");
        let mut dump = read(&fixture.join(&file))?;
        let text = dump["host"]["iptables"]
            .as_str()
            .ok_or_else(|| format!("{file}: no iptables"))?;
        base = text.lines().filter(|l| l.starts_with("-A ")).count();
        dump["host"]["iptables"] = json!(splice(text, &nat, &filter));
        write_json(&dir.join(&file), &dump)?;
    }
    Ok(base + rules)
}

fn service(i: u32) -> Value {
    let mut port = json!({"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080});
    if let Some(np) = node_port(i) {
        port["nodePort"] = json!(np);
    }
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc-{i}"), "namespace": "default",
                     "uid": format!("00000000-0000-4000-8000-{i:012}")},
        "spec": {"clusterIP": vip(i).to_string(), "clusterIPs": [vip(i).to_string()],
                 "ports": [port], "selector": {"skoop.test/web": "true"},
                 "type": if node_port(i).is_some() { "NodePort" } else { "ClusterIP" },
                 "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"},
        "status": {"loadBalancer": {}}
    })
}

fn slice(i: u32) -> Value {
    let endpoints: Vec<Value> = if has_endpoints(i) {
        ENDPOINTS
            .iter()
            .map(|(pod, node, ip)| {
                json!({"addresses": [ip], "nodeName": node,
                       "conditions": {"ready": true, "serving": true, "terminating": false},
                       "targetRef": {"kind": "Pod", "name": pod, "namespace": "default"}})
            })
            .collect()
    } else {
        Vec::new()
    };
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": format!("svc-{i}-abcde"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    })
}

/// Chain declarations and rules for the nat and filter tables; the number of rules.
struct Table {
    chains: String,
    services: String,
    rest: String,
}

fn rules(n: u32) -> (Table, String, usize) {
    let mut nat = Table {
        chains: String::new(),
        services: String::new(),
        rest: String::new(),
    };
    let mut filter = String::new();
    let mut count = 0;
    let mut rule = |out: &mut String, text: std::fmt::Arguments<'_>| {
        count += 1;
        let _ = out.write_fmt(text);
        out.push('\n');
    };
    for i in 0..n {
        let (vip, name) = (vip(i), format!("default/svc-{i}:http"));
        if !has_endpoints(i) {
            rule(
                &mut filter,
                format_args!(
                    "-A KUBE-SERVICES -d {vip}/32 -p tcp -m comment --comment \"{name} has no endpoints\" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable"
                ),
            );
            continue;
        }
        let svc = chain("KUBE-SVC-", 1, i);
        let _ = writeln!(nat.chains, ":{svc} - [0:0]");
        rule(
            &mut nat.services,
            format_args!(
                "-A KUBE-SERVICES -d {vip}/32 -p tcp -m comment --comment \"{name} cluster IP\" -m tcp --dport 80 -j {svc}"
            ),
        );
        rule(
            &mut nat.rest,
            format_args!(
                "-A {svc} ! -s 10.244.0.0/16 -d {vip}/32 -p tcp -m comment --comment \"{name} cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ"
            ),
        );
        if let Some(np) = node_port(i) {
            let ext = chain("KUBE-EXT-", 1, i);
            let _ = writeln!(nat.chains, ":{ext} - [0:0]");
            rule(
                &mut nat.rest,
                format_args!(
                    "-A KUBE-NODEPORTS -p tcp -m comment --comment \"{name}\" -m tcp --dport {np} -j {ext}"
                ),
            );
            rule(
                &mut nat.rest,
                format_args!(
                    "-A {ext} -m comment --comment \"masquerade traffic for {name} external destinations\" -j KUBE-MARK-MASQ"
                ),
            );
            rule(&mut nat.rest, format_args!("-A {ext} -j {svc}"));
        }
        for (k, (_, _, ip)) in ENDPOINTS.iter().enumerate() {
            let sep = chain("KUBE-SEP-", 2 + k as u32, i);
            let _ = writeln!(nat.chains, ":{sep} - [0:0]");
            let statistic = if k + 1 < ENDPOINTS.len() {
                format!(
                    " -m statistic --mode random --probability {:.11}",
                    1.0 / (ENDPOINTS.len() - k) as f64
                )
            } else {
                String::new()
            };
            rule(
                &mut nat.rest,
                format_args!(
                    "-A {svc} -m comment --comment \"{name} -> {ip}:8080\"{statistic} -j {sep}"
                ),
            );
            rule(
                &mut nat.rest,
                format_args!(
                    "-A {sep} -s {ip}/32 -m comment --comment \"{name}\" -j KUBE-MARK-MASQ"
                ),
            );
            rule(
                &mut nat.rest,
                format_args!(
                    "-A {sep} -p tcp -m comment --comment \"{name}\" -m tcp -j DNAT --to-destination {ip}:8080"
                ),
            );
        }
    }
    (nat, filter, count)
}

/// The fixture's `iptables-save` text with the generated chains and rules in
/// the places kube-proxy puts them.
fn splice(text: &str, nat: &Table, filter: &str) -> String {
    let mut out = String::with_capacity(text.len() + nat.rest.len() * 2);
    let mut table = "";
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = if t == "nat" {
                "nat"
            } else if t == "filter" {
                "filter"
            } else {
                ""
            };
        }
        let last_service_rule =
            line.starts_with("-A KUBE-SERVICES") && line.contains("must be the last rule");
        match table {
            "nat" if last_service_rule => out.push_str(&nat.services),
            "nat" if line == "COMMIT" => out.push_str(&nat.rest),
            "filter" if line == "COMMIT" => out.push_str(filter),
            _ => {}
        }
        out.push_str(line);
        out.push('\n');
        if table == "nat" && line == ":KUBE-SERVICES - [0:0]" {
            out.push_str(&nat.chains);
        }
    }
    out
}
