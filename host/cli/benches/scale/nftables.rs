//! The bundle of `bundle.rs` with kube-proxy in nftables mode: the same
//! Services and EndpointSlices, kube-proxy's ConfigMap saying
//! `mode: "nftables"`, and on each node `table ip kube-proxy` as the
//! nftables proxier (v1.34/v1.35) writes it: the `service-ips` and
//! `service-nodeports` verdict maps, a `service-…` chain per Service port
//! with its `numgen random mod 2` vmap, an `endpoint-…` chain per endpoint,
//! `external-…` chains for the NodePorts and `no-endpoint-services` for the
//! Services without endpoints. The nodes' other iptables rules (flannel's)
//! stay in iptables-nft.
//!
//! A node dump's `nft` is not written here: the rules are loaded into a
//! fresh network namespace (`iptables-nft-restore`, then `nft -f`) and
//! `nft -j list ruleset` prints it, as the collector's would on a node.
//! That needs root; without it the nftables rows are left out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::bundle::{self, ENDPOINTS};

/// What the nftables-mode bundle holds, for the report.
pub struct Written {
    /// Rules in `table ip kube-proxy` on one node (map elements not counted).
    pub rules: usize,
    /// Elements of its maps and sets.
    pub elements: usize,
    /// node-1's `table ip kube-proxy` in `nft -f` syntax, for `nft -c -f`.
    pub script: PathBuf,
}

/// The nftables proxier's chains that do not depend on the Services
/// (kubernetes pkg/proxy/nftables/proxier.go, v1.34).
const BASE_CHAINS: &str = "\
\tchain filter-prerouting-pre-dnat {
\t\ttype filter hook prerouting priority dstnat - 10; policy accept;
\t\tct state new jump firewall-check
\t}
\tchain filter-output-pre-dnat {
\t\ttype filter hook output priority -110; policy accept;
\t\tct state new jump firewall-check
\t}
\tchain filter-forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tct state new jump service-endpoints-check
\t\tct state new jump cluster-ips-check
\t}
\tchain filter-input {
\t\ttype filter hook input priority filter; policy accept;
\t\tct state new jump nodeport-endpoints-check
\t\tct state new jump service-endpoints-check
\t}
\tchain filter-output {
\t\ttype filter hook output priority filter; policy accept;
\t\tct state new jump service-endpoints-check
\t\tct state new jump cluster-ips-check
\t}
\tchain nat-output {
\t\ttype nat hook output priority -100; policy accept;
\t\tjump services
\t}
\tchain nat-postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tjump masquerading
\t}
\tchain nat-prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tjump services
\t}
\tchain services {
\t\tip daddr . meta l4proto . th dport vmap @service-ips
\t\tip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
\t}
\tchain firewall-check {
\t\tip daddr . meta l4proto . th dport vmap @firewall-ips
\t}
\tchain service-endpoints-check {
\t\tip daddr . meta l4proto . th dport vmap @no-endpoint-services
\t}
\tchain nodeport-endpoints-check {
\t\tip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
\t}
\tchain cluster-ips-check {
\t\tip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"
\t\tip daddr 10.96.0.0/12 drop comment \"Drop traffic to unallocated ClusterIPs\"
\t}
\tchain reject-chain {
\t\tcomment \"helper for @no-endpoint-services / @no-endpoint-nodeports\"
\t\treject
\t}
\tchain mark-for-masquerade {
\t\tmeta mark set meta mark | 0x00004000
\t}
\tchain masquerading {
\t\tmeta mark & 0x00004000 == 0x00000000 return
\t\tmeta mark set meta mark ^ 0x00004000
\t\tmasquerade fully-random
\t}
";
const BASE_RULES: usize = 20;

/// kube-proxy's chains in iptables mode, which the nftables proxier removes
/// when it starts; the kubelet's stay.
fn kube_proxys(chain: &str) -> bool {
    chain.starts_with("KUBE-") && !matches!(chain, "KUBE-KUBELET-CANARY" | "KUBE-IPTABLES-HINT")
}

/// `iptables-save` text without kube-proxy's chains and the jumps to them.
fn without_kube_proxy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if let Some(decl) = line.strip_prefix(':')
            && kube_proxys(decl.split_whitespace().next().unwrap_or(""))
        {
            continue;
        }
        if line.starts_with("-A ") {
            let words: Vec<&str> = line.split_whitespace().collect();
            let jumps = words
                .windows(2)
                .any(|w| matches!(w[0], "-j" | "-g") && kube_proxys(w[1]));
            if kube_proxys(words.get(1).copied().unwrap_or("")) || jumps {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `table ip kube-proxy` for the bench's `n` Services on a node whose
/// NodePort address is `node_ip`; the number of rules and of elements.
fn kube_proxy_table(n: u32, node_ip: &str) -> (String, usize, usize) {
    let mut chains = String::new();
    let (mut service_ips, mut nodeports, mut no_endpoints) = (vec![], vec![], vec![]);
    let mut cluster_ips = Vec::with_capacity(n as usize);
    let mut rules = BASE_RULES;
    for i in 0..n {
        let vip = bundle::vip(i);
        let name = format!("default/svc-{i}:http");
        cluster_ips.push(vip.to_string());
        if !bundle::has_endpoints(i) {
            no_endpoints.push(format!(
                "{vip} . tcp . 80 comment \"{name}\" : goto reject-chain"
            ));
            continue;
        }
        let base = format!("default/svc-{i}/tcp/http");
        let svc = bundle::chain("service-", 1, i) + "-" + &base;
        service_ips.push(format!("{vip} . tcp . 80 : goto {svc}"));
        let eps: Vec<String> = (0..ENDPOINTS.len())
            .map(|k| {
                let ip = ENDPOINTS[k].2;
                bundle::chain("endpoint-", 2 + k as u32, i) + "-" + &base + "__" + ip + "/8080"
            })
            .collect();
        let vmap: Vec<String> = eps
            .iter()
            .enumerate()
            .map(|(k, c)| format!("{k} : goto {c}"))
            .collect();
        let _ = write!(
            chains,
            "\tchain {svc} {{\n\t\tip daddr {vip} ip saddr != 10.244.0.0/16 jump mark-for-masquerade\n\t\tnumgen random mod {} vmap {{ {} }}\n\t}}\n",
            eps.len(),
            vmap.join(", ")
        );
        rules += 2;
        for (k, chain) in eps.iter().enumerate() {
            let ip = ENDPOINTS[k].2;
            let _ = write!(
                chains,
                "\tchain {chain} {{\n\t\tip saddr {ip} jump mark-for-masquerade\n\t\tmeta l4proto tcp dnat to {ip}:8080\n\t}}\n"
            );
            rules += 2;
        }
        if let Some(np) = bundle::node_port(i) {
            let ext = bundle::chain("external-", 1, i) + "-" + &base;
            nodeports.push(format!("tcp . {np} : goto {ext}"));
            let _ = write!(
                chains,
                "\tchain {ext} {{\n\t\tjump mark-for-masquerade\n\t\tgoto {svc}\n\t}}\n"
            );
            rules += 2;
        }
    }
    let elements = cluster_ips.len() + service_ips.len() + nodeports.len() + no_endpoints.len() + 1;
    let set = |kind: &str, name: &str, typ: &str, comment: &str, elements: &[String]| {
        let mut s = format!("\t{kind} {name} {{\n\t\ttype {typ}\n\t\tcomment \"{comment}\"\n");
        if !elements.is_empty() {
            let _ = writeln!(s, "\t\telements = {{ {} }}", elements.join(", "));
        }
        s + "\t}\n"
    };
    const ADDR_PORT: &str = "ipv4_addr . inet_proto . inet_service : verdict";
    const PROTO_PORT: &str = "inet_proto . inet_service : verdict";
    let mut text = String::from("table ip kube-proxy {\n\tcomment \"rules for kube-proxy\"\n");
    text += &set(
        "set",
        "cluster-ips",
        "ipv4_addr",
        "Active ClusterIPs",
        &cluster_ips,
    );
    text += &set(
        "set",
        "nodeport-ips",
        "ipv4_addr",
        "IPs that accept NodePort traffic",
        &[node_ip.to_string()],
    );
    text += &set(
        "map",
        "firewall-ips",
        ADDR_PORT,
        "destinations that are subject to LoadBalancerSourceRanges",
        &[],
    );
    text += &set(
        "map",
        "no-endpoint-nodeports",
        PROTO_PORT,
        "vmap to drop or reject packets to service nodeports with no endpoints",
        &[],
    );
    text += &set(
        "map",
        "no-endpoint-services",
        ADDR_PORT,
        "vmap to drop or reject packets to services with no endpoints",
        &no_endpoints,
    );
    text += &set(
        "map",
        "service-ips",
        ADDR_PORT,
        "ClusterIP, ExternalIP and LoadBalancer IP traffic",
        &service_ips,
    );
    text += &set(
        "map",
        "service-nodeports",
        PROTO_PORT,
        "NodePort traffic",
        &nodeports,
    );
    text += BASE_CHAINS;
    text += &chains;
    text += "}\n";
    (text, rules, elements)
}

/// What `nft -j list ruleset` prints in a fresh network namespace after
/// `iptables-nft-restore` of `iptables` and `nft -f` of `script`.
fn rendered(iptables: &Path, script: &Path) -> Result<String, String> {
    let out = Command::new("unshare")
        .args(["--net", "sh", "-ec"])
        .arg(r#"iptables-nft-restore < "$1"; nft -f "$2"; nft -j list ruleset"#)
        .args(["sh"])
        .arg(iptables)
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("unshare --net: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "rendering {} in a fresh netns (root, nft and iptables-nft needed): {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("nft -j list ruleset: {e}"))
}

/// Write the nftables-mode bundle of `n` Services into `dir` (scratch files
/// beside it in `scratch`).
pub fn write(fixture: &Path, dir: &Path, scratch: &Path, n: u32) -> Result<Written, String> {
    let mut cluster = bundle::cluster(fixture, n)?;
    let items = cluster["items"]
        .as_array_mut()
        .ok_or("fixture cluster.json has no items")?;
    let mut node_ips = Vec::new();
    for item in items.iter_mut() {
        match item["kind"].as_str() {
            Some("ConfigMap") if item["metadata"]["name"] == "kube-proxy" => {
                let conf = item["data"]["config.conf"]
                    .as_str()
                    .ok_or("fixture kube-proxy ConfigMap: no config.conf")?;
                if !conf.contains("mode: \"iptables\"\n") {
                    return Err("fixture kube-proxy ConfigMap: no mode: \"iptables\"".into());
                }
                item["data"]["config.conf"] =
                    json!(conf.replace("mode: \"iptables\"\n", "mode: \"nftables\"\n"));
            }
            Some("Node") => {
                let name = item["metadata"]["name"].as_str().unwrap_or("").to_string();
                let ip = item["status"]["addresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["type"] == "InternalIP")
                    .and_then(|a| a["address"].as_str())
                    .ok_or_else(|| format!("fixture Node {name}: no InternalIP"))?;
                node_ips.push((name, ip.to_string()));
            }
            _ => {}
        }
    }
    // The nftables proxier is GA from v1.33; the cluster runs v1.34.
    let text = serde_json::to_string(&cluster)
        .map_err(|e| e.to_string())?
        .replace("v1.30.2", "v1.34.2");
    std::fs::create_dir_all(dir.join("nodes")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("cluster.json"), text).map_err(|e| e.to_string())?;
    let mut written = None;
    for node in ["node-1", "node-2"] {
        let ip = node_ips
            .iter()
            .find(|(name, _)| name == node)
            .map(|(_, ip)| ip.as_str())
            .ok_or_else(|| format!("fixture: no Node {node}"))?;
        let file = format!("nodes/{node}.json");
        let mut dump = bundle::read_json(&fixture.join(&file))?;
        let iptables = without_kube_proxy(
            dump["host"]["iptables"]
                .as_str()
                .ok_or_else(|| format!("{file}: no iptables"))?,
        );
        let (table, rules, elements) = kube_proxy_table(n, ip);
        let ipt_file = scratch.join(format!("iptables-{n}-{node}.txt"));
        let script = scratch.join(format!("kube-proxy-{n}-{node}.nft"));
        std::fs::write(&ipt_file, &iptables).map_err(|e| e.to_string())?;
        std::fs::write(&script, table).map_err(|e| e.to_string())?;
        dump["host"]["nft"] = Value::String(rendered(&ipt_file, &script)?);
        dump["host"]["iptables"] = Value::String(iptables);
        if let Some(absent) = dump["host"]["absent"].as_object_mut() {
            absent.remove("nft");
        }
        std::fs::write(
            dir.join(&file),
            serde_json::to_vec(&dump).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        written.get_or_insert(Written {
            rules,
            elements,
            script,
        });
    }
    written.ok_or_else(|| "no nodes".to_string())
}
