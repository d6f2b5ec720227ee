//! Dataplane-shaped scenarios (issue 8): the fault lives in the node's own
//! state — kube-proxy's rules, policy routing, conntrack matches, rp_filter,
//! marks — while the Kubernetes objects still say all is well. The kernel
//! decides on real packets; skoop has to read the node's rules to agree.
//!
//! Every scenario runs with the nodes' rules in the nf_tables and in the
//! legacy iptables backend (faults are injected with the same backend).

use super::cause::{self, At};
use super::scenarios::{
    BOTH, CLUSTER_IP, CROSS, Causes, Expect, Flow, Inject, NODE_PORT, NODE_TO_CLUSTER_IP,
    NODE_TO_POD, Scenario, Src, pod_cidr,
};
use super::sh;
use super::topo::{Backend, Cluster, Tables, sysctl};

const TABLES: &[Tables] = &[Tables::Nft, Tables::Legacy];

/// The `web` Service (10.96.100.10:80 → web-1 10.244.0.6, web-2 10.244.1.7 on
/// :8080) as kube-proxy programs it on node-1.
const WEB_IP: &str = "10.96.100.10";
/// What kube-proxy's chain hash makes of "default/web:http" + "tcp".
const WEB_SVC_CHAIN: &str = "KUBE-SVC-CDGGSHYLG3RE2FKL";
/// web-2's endpoint, and a deleted pod's address in node-2's pod CIDR.
const WEB2_EP: &str = "10.244.1.7:8080";
const STALE_IP: &str = "10.244.1.50";
/// The custom routing table of the policy-routing faults.
const TABLE: &str = "100";

/// web-1 to its own Service: kube-proxy picks web-1 itself half the time
/// (hairpin), which only works masqueraded.
const HAIRPIN: Flow = Flow {
    src: Src::Pod("default/web-1"),
    src_ip: "10.244.0.6",
    ..CLUSTER_IP
};
const NODE1: At = At::Node("node-1");
const NODE2: At = At::Node("node-2");

const fn scenario(
    name: &'static str,
    flow: Flow,
    what: &'static str,
    inject: Inject,
    expect: Expect,
) -> Scenario {
    Scenario {
        name,
        backends: BOTH,
        tables: TABLES,
        flow,
        variant: "healthy",
        silent_pod: None,
        fault: Some(inject),
        expect,
        check: None,
        what,
    }
}

const fn case(
    name: &'static str,
    flow: Flow,
    what: &'static str,
    inject: Inject,
    causes: Causes,
) -> Scenario {
    scenario(name, flow, what, inject, Expect::Broken(causes))
}

/// A fault the kernel survives: skoop must say reachable (it may warn).
const fn survives(name: &'static str, flow: Flow, what: &'static str, inject: Inject) -> Scenario {
    scenario(name, flow, what, inject, Expect::Reach)
}

/// The policy-routing faults' blackhole: the default route of table 100.
fn table_blackhole(_: &Cluster) -> Result<Vec<cause::Cause>, String> {
    Ok(vec![cause::route_in(NODE1, 100, "blackhole default")])
}

/// table 100's route of node-2's pod CIDR, of the given kind.
fn table_route(c: &Cluster, kind: &str) -> Result<Vec<cause::Cause>, String> {
    let dst = pod_cidr(c, "node-2")?;
    Ok(vec![cause::route_in(NODE1, 100, &format!("{kind} {dst}"))])
}

/// The masquerade mark mismatch: KUBE-MARK-MASQ sets 0x8000, and
/// KUBE-POSTROUTING's first rule returns what lacks 0x4000.
pub fn mark_masq_causes(c: &Cluster, at: At) -> Result<Vec<cause::Cause>, String> {
    Ok(vec![
        cause::saved_rule(c, at, Some("KUBE-MARK-MASQ"), &["0x8000"])?.keyed("0x8000"),
        cause::saved_rule(c, at, Some("KUBE-POSTROUTING"), &["! --mark 0x4000/0x4000"])?,
    ])
}

// ------------------------------------------------------------------ helpers

fn ipt(c: &Cluster, node: &str, args: &str) -> Result<(), String> {
    let args: Vec<&str> = args.split_whitespace().collect();
    c.iptables(c.node(node)?, &args).map(drop)
}

fn ip(c: &Cluster, node: &str, cmds: &[String]) -> Result<(), String> {
    sh::ip_batch(c.node(node)?, cmds)
}

/// Rewrites one table of a node's ruleset the way a half-synced or
/// hand-edited node would look: save, edit the lines, restore (which
/// replaces that table as a whole).
fn edit_table(
    c: &Cluster,
    node: &str,
    table: &str,
    edit: impl FnOnce(Vec<String>) -> Result<Vec<String>, String>,
) -> Result<(), String> {
    let ns = c.node(node)?;
    let saved = sh::exec(ns, c.tables.save(), &["-t", table])?;
    let lines = edit(saved.lines().map(str::to_string).collect())?;
    sh::exec_stdin(ns, c.tables.restore(), &[], &(lines.join("\n") + "\n"))
}

fn target(line: &str) -> Option<&str> {
    let mut tokens = line.split_whitespace();
    tokens.find(|t| *t == "-j")?;
    tokens.next()
}

/// Is `line` the header, a rule, or a jump of `chain`?
fn mentions(line: &str, chain: &str) -> bool {
    line.split_whitespace()
        .any(|t| t == chain || t.strip_prefix(':') == Some(chain))
}

fn in_chain(line: &str, chain: &str) -> bool {
    line.strip_prefix("-A ")
        .and_then(|rest| rest.split_whitespace().next())
        == Some(chain)
}

/// The web Service's KUBE-SVC chain (from its KUBE-SERVICES jump) and the
/// KUBE-SEP chains it jumps to, in rule order.
fn web_chains(lines: &[String]) -> Result<(String, Vec<String>), String> {
    let dst = format!("-d {WEB_IP}/32");
    let svc = lines
        .iter()
        .filter(|l| in_chain(l, "KUBE-SERVICES") && l.contains(&dst))
        .find_map(|l| target(l))
        .ok_or("no KUBE-SERVICES rule for the web ClusterIP")?
        .to_string();
    let seps = lines
        .iter()
        .filter(|l| in_chain(l, &svc))
        .filter_map(|l| target(l))
        .filter(|t| t.starts_with("KUBE-SEP-"))
        .map(str::to_string)
        .collect();
    Ok((svc, seps))
}

/// web-2's KUBE-SEP of the web Service on node-1 DNATs to `to` instead.
fn redirect_web2(c: &Cluster, to: &str) -> Result<(), String> {
    edit_table(c, "node-1", "nat", |mut lines| {
        let (_, seps) = web_chains(&lines)?;
        let from = format!("--to-destination {WEB2_EP}");
        let line = lines
            .iter_mut()
            .find(|l| seps.iter().any(|s| in_chain(l, s)) && l.contains(&from))
            .ok_or("no DNAT to web-2 in the web Service's KUBE-SEP chains")?;
        *line = line.replace(&from, &format!("--to-destination {to}"));
        Ok(lines)
    })
}

/// Deletes the rules of the web Service's KUBE-SVC chain picked by `pick`
/// (given the chain's rules, in order).
fn drop_svc_rules(c: &Cluster, pick: fn(&[&String]) -> Vec<String>) -> Result<(), String> {
    edit_table(c, "node-1", "nat", |lines| {
        let (svc, _) = web_chains(&lines)?;
        let rules: Vec<&String> = lines
            .iter()
            .filter(|l| in_chain(l, &svc) && target(l).is_some_and(|t| t.starts_with("KUBE-SEP-")))
            .collect();
        let gone = pick(&rules);
        if gone.is_empty() {
            return Err(format!("nothing to delete in {svc}"));
        }
        Ok(lines.into_iter().filter(|l| !gone.contains(l)).collect())
    })
}

// --------------------------------------------------------- kube-proxy rules

fn web_not_programmed(c: &Cluster) -> Result<(), String> {
    edit_table(c, "node-1", "nat", |lines| {
        let (svc, seps) = web_chains(&lines)?;
        let chains: Vec<&String> = std::iter::once(&svc).chain(&seps).collect();
        Ok(lines
            .into_iter()
            .filter(|l| !chains.iter().any(|ch| mentions(l, ch)))
            .collect())
    })
}

fn web_stale_endpoint(c: &Cluster) -> Result<(), String> {
    redirect_web2(c, &format!("{STALE_IP}:8080"))
}

fn web_wrong_target_port(c: &Cluster) -> Result<(), String> {
    redirect_web2(c, "10.244.1.7:8081")
}

fn web_statistic_branch_missing(c: &Cluster) -> Result<(), String> {
    drop_svc_rules(c, |rules| {
        rules
            .iter()
            .filter(|l| l.contains("-m statistic"))
            .map(|l| l.to_string())
            .collect()
    })
}

fn web_no_fall_through(c: &Cluster) -> Result<(), String> {
    drop_svc_rules(c, |rules| {
        rules
            .last()
            .filter(|l| !l.contains("-m statistic"))
            .map(|l| vec![l.to_string()])
            .unwrap_or_default()
    })
}

/// KUBE-MARK-MASQ sets 0x8000 while KUBE-POSTROUTING (and flannel) still test
/// 0x4000: what kube-proxy marks for masquerade is never masqueraded.
pub fn mark_masq_bit(c: &Cluster, node: &str) -> Result<(), String> {
    edit_table(c, node, "nat", |lines| {
        let mut found = false;
        let lines = lines
            .into_iter()
            .map(|l| {
                if in_chain(&l, "KUBE-MARK-MASQ") {
                    found = true;
                    "-A KUBE-MARK-MASQ -j MARK --or-mark 0x8000".to_string()
                } else {
                    l
                }
            })
            .collect();
        if found {
            Ok(lines)
        } else {
            Err("no KUBE-MARK-MASQ rule".into())
        }
    })
}

/// flannel's CNI config asks for hairpinMode on every pod's port; the bench
/// leaves it off unless a scenario needs it.
fn web1_hairpin_on(c: &Cluster) -> Result<(), String> {
    let veth = c.veth.get("default/web-1").ok_or("no veth for web-1")?;
    sh::run(
        "bridge",
        &[
            "-n",
            c.node("node-1")?,
            "link",
            "set",
            "dev",
            veth,
            "hairpin",
            "on",
        ],
    )
    .map(drop)
}

fn hairpin_mark_masq_bit(c: &Cluster) -> Result<(), String> {
    web1_hairpin_on(c)?;
    mark_masq_bit(c, "node-1")
}

fn node1_mark_masq_bit(c: &Cluster) -> Result<(), String> {
    mark_masq_bit(c, "node-1")
}

fn node2_mark_masq_bit(c: &Cluster) -> Result<(), String> {
    mark_masq_bit(c, "node-2")
}

// ------------------------------------------------------------ policy routing

/// node-1: `ip rule add SELECTOR lookup 100` and `routes` in table 100.
fn policy(c: &Cluster, node: &str, selector: &str, routes: &[&str]) -> Result<(), String> {
    let mut cmds = vec![format!("rule add {selector} lookup {TABLE} pref 100")];
    cmds.extend(
        routes
            .iter()
            .map(|r| format!("route add {r} table {TABLE}")),
    );
    ip(c, node, &cmds)
}

fn from_pods(c: &Cluster) -> Result<String, String> {
    Ok(format!("from {}", pod_cidr(c, "node-1")?))
}

fn pr_from_pods_blackhole_default(c: &Cluster) -> Result<(), String> {
    policy(c, "node-1", &from_pods(c)?, &["blackhole default"])
}

fn pr_from_pods_route_kind(c: &Cluster, kind: &str) -> Result<(), String> {
    let dst = pod_cidr(c, "node-2")?;
    policy(c, "node-1", &from_pods(c)?, &[&format!("{kind} {dst}")])
}

fn pr_blackhole_dst(c: &Cluster) -> Result<(), String> {
    pr_from_pods_route_kind(c, "blackhole")
}

fn pr_unreachable_dst(c: &Cluster) -> Result<(), String> {
    pr_from_pods_route_kind(c, "unreachable")
}

fn pr_prohibit_dst(c: &Cluster) -> Result<(), String> {
    pr_from_pods_route_kind(c, "prohibit")
}

fn pr_throw_to_main(c: &Cluster) -> Result<(), String> {
    let dst = pod_cidr(c, "node-2")?;
    policy(
        c,
        "node-1",
        &from_pods(c)?,
        &[&format!("throw {dst}"), "blackhole default"],
    )
}

fn pr_iif_cni0(c: &Cluster) -> Result<(), String> {
    policy(c, "node-1", "iif cni0", &["blackhole default"])
}

/// client-1's bridge port: routed packets enter the IP layer from cni0, so a
/// rule on the port never matches.
fn pr_iif_bridge_port(c: &Cluster) -> Result<(), String> {
    let veth = c
        .veth
        .get("default/client-1")
        .ok_or("no veth for client-1")?;
    policy(c, "node-1", &format!("iif {veth}"), &["blackhole default"])
}

/// mangle PREROUTING marks client-1's packets; `fwmark` sends them to table 100.
fn mark_client(c: &Cluster, routes: &[&str]) -> Result<(), String> {
    ipt(
        c,
        "node-1",
        "-t mangle -A PREROUTING -s 10.244.0.5/32 -j MARK --set-xmark 0x10/0x10",
    )?;
    policy(c, "node-1", "fwmark 0x10/0x10", routes)
}

fn pr_fwmark_blackhole(c: &Cluster) -> Result<(), String> {
    mark_client(c, &["blackhole default"])
}

fn pr_fwmark_wrong_gateway(c: &Cluster) -> Result<(), String> {
    let dst = pod_cidr(c, "node-2")?;
    mark_client(c, &[&format!("{dst} via 192.168.0.99 dev eth0")])
}

/// Table 100 routes node-2's pod CIDR exactly as the main table does.
fn pr_fwmark_correct_route(c: &Cluster) -> Result<(), String> {
    let (ip, cidr, vtep, _) = c.node_info.get("node-2").cloned().ok_or("no node-2")?;
    let route = match c.backend {
        Backend::Vxlan => format!("{cidr} via {vtep} dev flannel.1 onlink"),
        Backend::HostGw | Backend::CalicoBgp | Backend::CalicoVxlan => {
            format!("{cidr} via {ip} dev eth0")
        }
    };
    mark_client(c, &[&route])
}

fn pr_tos_blackhole(c: &Cluster) -> Result<(), String> {
    ipt(
        c,
        "node-1",
        "-t mangle -A PREROUTING -s 10.244.0.5/32 -j TOS --set-tos 0x10/0xff",
    )?;
    policy(c, "node-1", "tos 0x10", &["blackhole default"])
}

/// node-1's own connections: the route lookup is redone with the chosen
/// source (192.168.0.11), which the rule sends to a blackhole; on vxlan the
/// encapsulated packet's lookup (from the node IP) hits it too.
fn pr_local_from_node_ip(c: &Cluster) -> Result<(), String> {
    let (ip, ..) = c.node_info.get("node-1").cloned().ok_or("no node-1")?;
    policy(c, "node-1", &format!("from {ip}"), &["blackhole default"])
}

// ----------------------------------------------------------- conntrack state

fn ct_dnat_drop(c: &Cluster) -> Result<(), String> {
    ipt(
        c,
        "node-1",
        "-I FORWARD -m conntrack --ctstate DNAT -j DROP",
    )
}

fn ct_origdst_reject(c: &Cluster) -> Result<(), String> {
    ipt(
        c,
        "node-1",
        &format!("-I FORWARD -m conntrack --ctorigdst {WEB_IP} -j REJECT"),
    )
}

/// An ACCEPT for the translated connections in front of a DROP of the
/// backends' port: Service traffic is let through before the DROP.
fn accept_before_port_drop(c: &Cluster, accept: &str) -> Result<(), String> {
    ipt(c, "node-1", "-I FORWARD -p tcp -m tcp --dport 8080 -j DROP")?;
    ipt(c, "node-1", &format!("-I FORWARD {accept} -j ACCEPT"))
}

fn ct_dnat_accept(c: &Cluster) -> Result<(), String> {
    accept_before_port_drop(c, "-m conntrack --ctstate DNAT")
}

fn ct_origdst_accept(c: &Cluster) -> Result<(), String> {
    accept_before_port_drop(c, &format!("-m conntrack --ctorigdst {WEB_IP}"))
}

// ------------------------------------------------------------------ rp_filter

/// node-2 returns traffic for client-1 over another device than the one
/// client-1's packets arrive on: vxlan — they arrive on flannel.1, the host
/// route sends replies plainly over eth0; host-gw — they arrive on eth0, the
/// host route uses a second underlay port eth1. Either reply path reaches
/// node-1 and works; `rp_filter` is set on the arrival device.
/// The device client-1's packets arrive on at node-2.
fn arrival_device(c: &Cluster) -> &'static str {
    match c.backend {
        Backend::Vxlan => "flannel.1",
        Backend::CalicoVxlan => "vxlan.calico",
        Backend::HostGw | Backend::CalicoBgp => "eth0",
    }
}

fn asymmetric_return(c: &Cluster, rp_filter: &str) -> Result<(), String> {
    let node2 = c.node("node-2")?;
    let (node1_ip, ..) = c.node_info.get("node-1").cloned().ok_or("no node-1")?;
    let arrival = arrival_device(c);
    let (arrival, out) = match c.backend {
        Backend::Vxlan => (arrival, "eth0"),
        Backend::HostGw | Backend::CalicoBgp | Backend::CalicoVxlan => {
            sh::ip_batch(
                &c.vpc,
                &[
                    format!("link add u-eth1 type veth peer name eth1 netns {node2}"),
                    "link set u-eth1 master br0 up".into(),
                ],
            )?;
            // eth1 has no address; without arp_ignore it would still answer
            // node-1's ARP for 192.168.0.12 (ARP flux) and client-1's
            // packets would arrive on eth1, the reverse path's device.
            sysctl(node2, "net.ipv4.conf.eth1.arp_ignore", "1")?;
            sh::ip(node2, "link set eth1 up")?;
            (arrival, "eth1")
        }
    };
    sh::ip(
        node2,
        &format!("route add 10.244.0.5/32 via {node1_ip} dev {out} onlink"),
    )?;
    sysctl(
        node2,
        &format!("net/ipv4/conf/{arrival}/rp_filter"),
        rp_filter,
    )
}

fn rp_strict(c: &Cluster) -> Result<(), String> {
    asymmetric_return(c, "1")
}

fn rp_loose(c: &Cluster) -> Result<(), String> {
    asymmetric_return(c, "2")
}

pub fn all() -> Vec<Scenario> {
    const BLACKHOLE: Causes = table_blackhole;
    vec![
        // 1. kube-proxy's rules on node-1 against what the EndpointSlices say.
        case(
            "kp-service-not-programmed",
            CLUSTER_IP,
            "node-1: web's KUBE-SERVICES jump, KUBE-SVC, KUBE-SEPs deleted (slice: 2 ready)",
            web_not_programmed,
            |_| {
                Ok(vec![
                    cause::chain(NODE1, "KUBE-SERVICES", Some(WEB_IP)),
                    cause::service_rules(NODE1, "default/web", &format!("{WEB_IP}:80")),
                ])
            },
        ),
        case(
            "kp-stale-sep",
            CLUSTER_IP,
            "node-1: web-2's KUBE-SEP DNATs to 10.244.1.50:8080 (no pod)",
            web_stale_endpoint,
            |c| {
                let to = format!("-j DNAT --to-destination {STALE_IP}:8080");
                Ok(vec![cause::saved_rule(c, NODE1, None, &[&to])?])
            },
        ),
        case(
            "kp-sep-wrong-port",
            CLUSTER_IP,
            "node-1: web-2's KUBE-SEP DNATs to 10.244.1.7:8081",
            web_wrong_target_port,
            |c| {
                let to = "-j DNAT --to-destination 10.244.1.7:8081";
                Ok(vec![cause::saved_rule(c, NODE1, None, &[to])?])
            },
        ),
        survives(
            "kp-statistic-branch-missing",
            CLUSTER_IP,
            "node-1: web-1's statistic rule deleted from KUBE-SVC (all to web-2)",
            web_statistic_branch_missing,
        ),
        case(
            "kp-svc-no-fall-through",
            CLUSTER_IP,
            "node-1: KUBE-SVC's last (unconditional) rule deleted",
            web_no_fall_through,
            // The chain, or the Service and the endpoint left without a rule.
            |_| {
                Ok(vec![
                    cause::chain(NODE1, WEB_SVC_CHAIN, None),
                    cause::service_rules(NODE1, "default/web", WEB2_EP),
                ])
            },
        ),
        survives(
            "kp-hairpin-control",
            HAIRPIN,
            "node-1: hairpin on web-1's port (no fault: web-1 to its own Service)",
            web1_hairpin_on,
        ),
        case(
            "kp-mark-masq-bit-hairpin",
            HAIRPIN,
            "node-1: KUBE-MARK-MASQ --or-mark 0x8000 (POSTROUTING tests 0x4000); hairpin on",
            hairpin_mark_masq_bit,
            |c| mark_masq_causes(c, NODE1),
        ),
        survives(
            "kp-mark-masq-bit-node-to-clusterip",
            NODE_TO_CLUSTER_IP,
            "node-1: KUBE-MARK-MASQ 0x8000 (kernel: flannel's masq covers it)",
            node1_mark_masq_bit,
        ),
        survives(
            "kp-mark-masq-bit-remote-nodeport",
            NODE_PORT,
            "node-2: KUBE-MARK-MASQ 0x8000 (kernel: flannel's masq covers it)",
            node2_mark_masq_bit,
        ),
        // 2. Policy routing on node-1, forwarding client-1's traffic or its own.
        case(
            "pr-from-pods-blackhole-default",
            CROSS,
            "node-1: rule from 10.244.0.0/24 lookup 100; blackhole default table 100",
            pr_from_pods_blackhole_default,
            BLACKHOLE,
        ),
        case(
            "pr-from-pods-blackhole-dst-clusterip",
            CLUSTER_IP,
            "node-1: rule from 10.244.0.0/24 lookup 100; blackhole 10.244.1.0/24 table 100",
            pr_blackhole_dst,
            |c| table_route(c, "blackhole"),
        ),
        case(
            "pr-from-pods-unreachable-dst",
            CROSS,
            "node-1: rule from 10.244.0.0/24 lookup 100; unreachable 10.244.1.0/24 table 100",
            pr_unreachable_dst,
            |c| table_route(c, "unreachable"),
        ),
        case(
            "pr-from-pods-prohibit-dst",
            CROSS,
            "node-1: rule from 10.244.0.0/24 lookup 100; prohibit 10.244.1.0/24 table 100",
            pr_prohibit_dst,
            |c| table_route(c, "prohibit"),
        ),
        survives(
            "pr-throw-to-main",
            CROSS,
            "node-1: rule from pods lookup 100; throw 10.244.1.0/24 + blackhole default",
            pr_throw_to_main,
        ),
        case(
            "pr-iif-cni0-blackhole",
            CROSS,
            "node-1: rule iif cni0 lookup 100; blackhole default table 100",
            pr_iif_cni0,
            BLACKHOLE,
        ),
        survives(
            "pr-iif-bridge-port",
            CROSS,
            "node-1: rule iif <client-1's veth> lookup 100 (routing sees iif cni0)",
            pr_iif_bridge_port,
        ),
        case(
            "pr-fwmark-blackhole",
            CROSS,
            "node-1: mangle MARK 0x10 for client-1; rule fwmark 0x10 lookup 100; blackhole",
            pr_fwmark_blackhole,
            BLACKHOLE,
        ),
        case(
            "pr-tos-blackhole",
            CROSS,
            "node-1: mangle TOS 0x10 for client-1; rule tos 0x10 lookup 100; blackhole",
            pr_tos_blackhole,
            BLACKHOLE,
        ),
        case(
            "pr-local-from-node-ip-blackhole",
            NODE_TO_POD,
            "node-1: rule from 192.168.0.11 lookup 100; blackhole default table 100",
            pr_local_from_node_ip,
            BLACKHOLE,
        ),
        // 3. conntrack matches in filter FORWARD on node-1.
        case(
            "ct-dnat-drop",
            CLUSTER_IP,
            "node-1: -I FORWARD -m conntrack --ctstate DNAT -j DROP",
            ct_dnat_drop,
            |_| {
                Ok(vec![cause::rule(
                    NODE1,
                    "FORWARD",
                    "-m conntrack --ctstate DNAT -j DROP",
                )])
            },
        ),
        case(
            "ct-origdst-reject",
            CLUSTER_IP,
            "node-1: -I FORWARD -m conntrack --ctorigdst 10.96.100.10 -j REJECT",
            ct_origdst_reject,
            |_| {
                Ok(vec![cause::rule(
                    NODE1,
                    "FORWARD",
                    "-m conntrack --ctorigdst 10.96.100.10 -j REJECT --reject-with icmp-port-unreachable",
                )])
            },
        ),
        survives(
            "ct-dnat-accept-before-drop",
            CLUSTER_IP,
            "node-1: FORWARD 1 --ctstate DNAT -j ACCEPT, 2 --dport 8080 -j DROP",
            ct_dnat_accept,
        ),
        survives(
            "ct-origdst-accept-before-drop",
            CLUSTER_IP,
            "node-1: FORWARD 1 --ctorigdst 10.96.100.10 -j ACCEPT, 2 --dport 8080 DROP",
            ct_origdst_accept,
        ),
        // 4. rp_filter on node-2 with an asymmetric return path.
        case(
            "rp-filter-strict-asymmetric",
            CROSS,
            "node-2: rp_filter=1 on the arrival device, 10.244.0.5/32 via another",
            rp_strict,
            |c| {
                let key = format!("net.ipv4.conf.{}.rp_filter", arrival_device(c));
                Ok(vec![cause::sysctl(NODE2, &key)])
            },
        ),
        survives(
            "rp-filter-loose-asymmetric",
            CROSS,
            "node-2: rp_filter=2 on the arrival device, 10.244.0.5/32 via another",
            rp_loose,
        ),
        // 5. A mangle MARK feeding `ip rule fwmark` (blackhole: above).
        case(
            "mark-fwmark-wrong-gateway",
            CROSS,
            "node-1: MARK 0x10 → rule fwmark lookup 100: 10.244.1.0/24 via 192.168.0.99",
            pr_fwmark_wrong_gateway,
            |c| {
                let dst = pod_cidr(c, "node-2")?;
                let route = format!("{dst} via 192.168.0.99 dev eth0");
                Ok(vec![cause::route_in(NODE1, 100, &route)])
            },
        ),
        survives(
            "mark-fwmark-correct-route",
            CROSS,
            "node-1: MARK 0x10 → rule fwmark lookup 100: main's route to 10.244.1.0/24",
            pr_fwmark_correct_route,
        ),
    ]
}
