//! kube-proxy in nftables mode, on every backend (flannel host-gw and VXLAN,
//! Calico BGP and VXLAN): the cluster data's `nftables` variant
//! (cluster.py) drops kube-proxy's iptables rules, says `mode: "nftables"` in
//! its ConfigMap, and loads `table ip kube-proxy` as the nftables proxier
//! writes it (v1.34/v1.35 layout) with `nft -f` in each node's netns; the
//! nodes' other rules (flannel's, felix's) stay in iptables-nft.
//!
//! Faults are written as kube-proxy writes its syncs: `nft -f` transactions
//! that add, flush and delete chains and elements. Judged by the kernel:
//! healthy flows (every ClusterIP backend, a NodePort from outside, hairpin),
//! faults in kube-proxy's table while the objects are unchanged (a
//! `service-ips` element missing, a stale endpoint chain, a wrong target
//! port, a `numgen` branch missing, the masquerade jump or mark lost), and an
//! `inet` table beside iptables-nft: firewalld's forward chain rejecting pod
//! traffic, an earlier `inet` accept that cannot save a packet a later
//! iptables-nft rule drops, and that accept alone; a `netdev` ingress chain
//! on client-1's veth, and a `bridge` family forward chain (flannel bridges
//! same-node pods on cni0; Calico routes them, and the kernel delivers).

use super::cause::{self, At, Cause};
use super::scenarios::{
    CLUSTER_IP, CROSS, Causes, Expect, Flow, Inject, OUTSIDE_TO_NODE_PORT, Probe, SAME, Scenario,
    Src, veth,
};
use super::sh;
use super::topo::{Backend, Cluster, Tables};

const ALL: &[Backend] = &[
    Backend::HostGw,
    Backend::Vxlan,
    Backend::CalicoBgp,
    Backend::CalicoVxlan,
];
const FLANNEL: &[Backend] = &[Backend::HostGw, Backend::Vxlan];
const CALICO: &[Backend] = super::calico::MODES;
/// The nodes' iptables rules (flannel's, felix's) in iptables-nft, beside
/// kube-proxy's table: the pipeline skoop must order by priority.
const TABLES: &[Tables] = &[Tables::Nft];

const NODE1: At = At::Node("node-1");
const NODE2: At = At::Node("node-2");

const KP: &str = "kube-proxy";
/// kube-proxy's chain name bases (servicePortChainNameBase and
/// servicePortEndpointChainNameBase in pkg/proxy/nftables/proxier.go).
const WEB: &str = "default/web/tcp/http";
const WEB_NODEPORT: &str = "default/web-nodeport/tcp/http";
const WEB_IP: &str = "10.96.100.10";
const WEB1_EP: &str = "10.244.0.6:8080";
const WEB2_EP: &str = "10.244.1.7:8080";
/// A deleted pod's address in node-2's pod CIDR (flannel's /24, Calico's /26).
const STALE_EP: &str = "10.244.1.50:8080";
const CLUSTER_CIDR: &str = "10.244.0.0/16";

/// coredns-1 to the kube-dns Service over TCP: its only endpoint is
/// coredns-1 itself, so every connection hairpins on node-2.
const OWN_SERVICE: Flow = Flow {
    src: Src::Pod("kube-system/coredns-1"),
    src_ip: "10.244.1.9",
    dst: "10.96.0.10",
    port: 53,
    probe: Probe::Tcp,
};
const COREDNS: &str = "kube-system/coredns-1";

fn scenario(
    name: &'static str,
    backends: &'static [Backend],
    flow: Flow,
    what: &'static str,
    fault: Option<Inject>,
    expect: Expect,
) -> Scenario {
    Scenario {
        name,
        backends,
        tables: TABLES,
        flow,
        variant: "nftables",
        silent_pod: None,
        fault,
        expect,
        check: None,
        what,
    }
}

fn healthy(name: &'static str, flow: Flow, setup: Option<Inject>) -> Scenario {
    scenario(name, ALL, flow, "-", setup, Expect::Reach)
}

fn broken(
    name: &'static str,
    backends: &'static [Backend],
    flow: Flow,
    what: &'static str,
    inject: Inject,
    causes: Causes,
) -> Scenario {
    scenario(
        name,
        backends,
        flow,
        what,
        Some(inject),
        Expect::Broken(causes),
    )
}

// ------------------------------------------------------------------ helpers

/// kube-proxy's chain name: `prefix` + hashAndTruncate(base), the first 8
/// characters of base32(sha256(base)), a dash, and the base.
fn kp_chain(prefix: &str, base: &str) -> Result<String, String> {
    let hash = sh::run(
        "python3",
        &[
            "-c",
            "import base64, hashlib, sys; \
             print(base64.b32encode(hashlib.sha256(sys.argv[1].encode()).digest()).decode()[:8])",
            base,
        ],
    )?;
    Ok(format!("{prefix}{}-{base}", hash.trim()))
}

fn service_chain(base: &str) -> Result<String, String> {
    kp_chain("service-", base)
}

/// An endpoint chain of the Service port `base`, for `ip:port`.
fn endpoint_chain(base: &str, ep: &str) -> Result<String, String> {
    let (ip, port) = ep.rsplit_once(':').ok_or("no port")?;
    kp_chain("endpoint-", &format!("{base}__{ip}/{port}"))
}

/// Runs an nftables transaction (`nft -f -`) in a node's netns.
fn nft(c: &Cluster, node: &str, script: &str) -> Result<(), String> {
    sh::exec_stdin(c.node(node)?, "nft", &["-f", "-"], script)
}

/// The web Service's chain on node-1, rewritten as a sync would write it:
/// its masquerade rule, then `numgen` over `endpoints` (chain names).
fn web_service_rules(svc: &str, endpoints: &[String]) -> String {
    let vmap: Vec<String> = endpoints
        .iter()
        .enumerate()
        .map(|(i, ep)| format!("{i} : goto {ep}"))
        .collect();
    format!(
        "flush chain ip {KP} {svc}\n\
         add rule ip {KP} {svc} ip daddr {WEB_IP} ip saddr != {CLUSTER_CIDR} jump mark-for-masquerade\n\
         add rule ip {KP} {svc} numgen random mod {} vmap {{ {} }}\n",
        endpoints.len(),
        vmap.join(", ")
    )
}

/// node-1's kube-proxy still has web-2's endpoint as `ep` (an old sync):
/// the endpoint chain for it, the Service's vmap pointing there, web-2's
/// chain gone.
fn web2_endpoint_is(c: &Cluster, ep: &str) -> Result<(), String> {
    let svc = service_chain(WEB)?;
    let web1 = endpoint_chain(WEB, WEB1_EP)?;
    let web2 = endpoint_chain(WEB, WEB2_EP)?;
    let old = endpoint_chain(WEB, ep)?;
    let ip = ep.rsplit_once(':').ok_or("no port")?.0;
    let mut script = format!(
        "add chain ip {KP} {old}\n\
         add rule ip {KP} {old} ip saddr {ip} jump mark-for-masquerade\n\
         add rule ip {KP} {old} meta l4proto tcp dnat to {ep}\n"
    );
    script += &web_service_rules(&svc, &[web1, old]);
    script += &format!("flush chain ip {KP} {web2}\ndelete chain ip {KP} {web2}\n");
    nft(c, "node-1", &script)
}

/// The DNAT rule of the web Service's endpoint chain for `ep` on node-1.
fn web_dnat(ep: &str) -> Result<Cause, String> {
    Ok(cause::nft_rule(
        NODE1,
        "ip",
        KP,
        &endpoint_chain(WEB, ep)?,
        &format!("meta l4proto tcp dnat to {ep}"),
    ))
}

// ------------------------------------------------------ kube-proxy's table

fn web_element_deleted(c: &Cluster) -> Result<(), String> {
    nft(
        c,
        "node-1",
        &format!("delete element ip {KP} service-ips {{ {WEB_IP} . tcp . 80 }}\n"),
    )
}

fn web2_stale_endpoint(c: &Cluster) -> Result<(), String> {
    web2_endpoint_is(c, STALE_EP)
}

fn web2_wrong_port(c: &Cluster) -> Result<(), String> {
    web2_endpoint_is(c, "10.244.1.7:8081")
}

/// `numgen random mod 2` keeps its modulus, the vmap only web-1's branch:
/// numgen's 1 matches no element, and the packet leaves the Service chain
/// un-DNATed.
fn web_numgen_branch_missing(c: &Cluster) -> Result<(), String> {
    let svc = service_chain(WEB)?;
    let web1 = endpoint_chain(WEB, WEB1_EP)?;
    nft(
        c,
        "node-1",
        &format!(
            "flush chain ip {KP} {svc}\n\
             add rule ip {KP} {svc} ip daddr {WEB_IP} ip saddr != {CLUSTER_CIDR} jump mark-for-masquerade\n\
             add rule ip {KP} {svc} numgen random mod 2 vmap {{ 0 : goto {web1} }}\n"
        ),
    )
}

/// flannel's cni0 sends a frame back out of its arrival port only with the
/// port's hairpin flag (flannel's CNI config asks for it); Calico routes.
fn coredns_hairpin_on(c: &Cluster) -> Result<(), String> {
    if matches!(c.backend, Backend::CalicoBgp | Backend::CalicoVxlan) {
        return Ok(());
    }
    sh::run(
        "bridge",
        &[
            "-n",
            c.node("node-2")?,
            "link",
            "set",
            "dev",
            &veth(c, COREDNS)?,
            "hairpin",
            "on",
        ],
    )
    .map(drop)
}

/// node-2's `mark-for-masquerade` sets 0x8000 while `masquerading` tests
/// 0x4000: what kube-proxy marks is never masqueraded.
fn mark_lost(c: &Cluster, node: &str) -> Result<(), String> {
    nft(
        c,
        node,
        &format!(
            "flush chain ip {KP} mark-for-masquerade\n\
             add rule ip {KP} mark-for-masquerade meta mark set meta mark | 0x8000\n"
        ),
    )
}

fn hairpin_mark_lost(c: &Cluster) -> Result<(), String> {
    coredns_hairpin_on(c)?;
    mark_lost(c, "node-2")
}

fn mark_lost_causes(at: At) -> Vec<Cause> {
    vec![
        cause::nft_rule(
            at,
            "ip",
            KP,
            "mark-for-masquerade",
            "meta mark set meta mark | 0x00008000",
        )
        .keyed("0x8000"),
        cause::nft_rule(
            at,
            "ip",
            KP,
            "masquerading",
            "meta mark & 0x00004000 == 0x00000000 return",
        ),
    ]
}

/// node-2's external chain of web-nodeport without its `jump
/// mark-for-masquerade`: NodePort traffic goes to the Service unmarked.
fn nodeport_masq_jump_deleted(c: &Cluster) -> Result<(), String> {
    let ext = kp_chain("external-", WEB_NODEPORT)?;
    let svc = service_chain(WEB_NODEPORT)?;
    nft(
        c,
        "node-2",
        &format!("flush chain ip {KP} {ext}\nadd rule ip {KP} {ext} goto {svc}\n"),
    )
}

// ------------------------------------------------------------ inet tables

/// firewalld 2.x's forward chains (src/firewall/core/nftables.py) with eth0
/// in the public zone, whose forwarding is off, and nothing for the pod
/// interfaces: pod traffic that is not DNATed falls to the zone dispatch's
/// reject.
const FIREWALLD: &str = r#"table inet firewalld {
	chain filter_FORWARD {
		type filter hook forward priority filter + 10; policy accept;
		ct state { established, related } accept
		ct status dnat accept
		iifname "lo" accept
		ct state invalid drop
		jump filter_FORWARD_POLICIES
		reject with icmpx admin-prohibited
	}
	chain filter_FORWARD_POLICIES {
		iifname "eth0" oifname "eth0" jump filter_FWD_public
		iifname "eth0" oifname "eth0" reject with icmpx admin-prohibited
		iifname "eth0" jump filter_FWD_public
		iifname "eth0" reject with icmpx admin-prohibited
		oifname "eth0" jump filter_FWD_public
		oifname "eth0" reject with icmpx admin-prohibited
		jump filter_FWD_public
		reject with icmpx admin-prohibited
	}
	chain filter_FWD_public {
		jump filter_FWD_public_pre
		jump filter_FWD_public_log
		jump filter_FWD_public_deny
		jump filter_FWD_public_allow
		jump filter_FWD_public_post
	}
	chain filter_FWD_public_pre {
	}
	chain filter_FWD_public_log {
	}
	chain filter_FWD_public_deny {
	}
	chain filter_FWD_public_allow {
	}
	chain filter_FWD_public_post {
	}
}
"#;

fn firewalld_on_node1(c: &Cluster) -> Result<(), String> {
    nft(c, "node-1", FIREWALLD)
}

/// The reject client-1's packet to web-2 meets on node-1: by its egress
/// device, eth0 (host-gw, BGP) or the tunnel (VXLAN).
fn firewalld_reject(c: &Cluster) -> Result<Vec<Cause>, String> {
    let rule = match c.backend {
        Backend::HostGw | Backend::CalicoBgp => {
            r#"oifname "eth0" reject with icmpx admin-prohibited"#
        }
        Backend::Vxlan | Backend::CalicoVxlan => "reject with icmpx admin-prohibited",
    };
    Ok(vec![cause::nft_rule(
        NODE1,
        "inet",
        "firewalld",
        "filter_FORWARD_POLICIES",
        rule,
    )])
}

/// A plain `inet filter` table accepting the pod CIDR's forwarded traffic,
/// before iptables' filter FORWARD (priority filter - 10).
const INET_ACCEPT: &str = "table inet filter {
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		ip saddr 10.244.0.0/16 accept
	}
}
";

fn inet_accept(c: &Cluster) -> Result<(), String> {
    nft(c, "node-1", INET_ACCEPT)
}

/// The inet accept ends only its own base chain: iptables-nft's FORWARD (at
/// priority filter, later) still drops.
fn inet_accept_iptables_drop(c: &Cluster) -> Result<(), String> {
    inet_accept(c)?;
    let args = [
        "-I", "FORWARD", "-p", "tcp", "-m", "tcp", "--dport", "8080", "-j", "DROP",
    ];
    c.iptables(c.node("node-1")?, &args).map(drop)
}

/// A `netdev` table on client-1's host-side veth on node-1: its ingress
/// chain sees every frame client-1 sends, before PREROUTING and conntrack.
fn ingress_drop_on_client_veth(c: &Cluster) -> Result<(), String> {
    let dev = veth(c, "default/client-1")?;
    nft(
        c,
        "node-1",
        &format!(
            "table netdev edge {{
	chain client_in {{
		type filter hook ingress device \"{dev}\" priority 0; policy accept;
		ip daddr 10.244.1.7 tcp dport 8080 drop
	}}
}}
"
        ),
    )
}

/// A `bridge` table on node-1: its forward chain sees frames bridged
/// between two ports of cni0 (flannel's same-node pod traffic), with or
/// without br_netfilter.
const BRIDGE_FORWARD_DROP: &str = "table bridge pods {
	chain forward {
		type filter hook forward priority filter; policy accept;
		ip daddr 10.244.0.6 tcp dport 8080 drop
	}
}
";

fn bridge_forward_drop(c: &Cluster) -> Result<(), String> {
    nft(c, "node-1", BRIDGE_FORWARD_DROP)
}

pub fn all() -> Vec<Scenario> {
    vec![
        // 1. Healthy: kube-proxy's table alone translates.
        healthy("nftables-pod-to-clusterip", CLUSTER_IP, None),
        healthy("nftables-outside-to-nodeport", OUTSIDE_TO_NODE_PORT, None),
        healthy(
            "nftables-pod-to-own-service",
            OWN_SERVICE,
            Some(coredns_hairpin_on),
        ),
        // 2. Faults in kube-proxy's table; the objects are unchanged.
        broken(
            "nftables-service-ips-element-missing",
            ALL,
            CLUSTER_IP,
            "node-1: service-ips element 10.96.100.10 . tcp . 80 deleted",
            web_element_deleted,
            |_| {
                Ok(vec![cause::nft_element_missing(
                    NODE1,
                    "ip",
                    KP,
                    "service-ips",
                    &format!("{WEB_IP} . tcp . 80"),
                )])
            },
        ),
        broken(
            "nftables-stale-endpoint-chain",
            ALL,
            CLUSTER_IP,
            "node-1: web's vmap to an endpoint chain DNATing 10.244.1.50",
            web2_stale_endpoint,
            |_| Ok(vec![web_dnat(STALE_EP)?]),
        ),
        broken(
            "nftables-endpoint-wrong-port",
            ALL,
            CLUSTER_IP,
            "node-1: web-2's endpoint chain DNATs to 10.244.1.7:8081",
            web2_wrong_port,
            |_| Ok(vec![web_dnat("10.244.1.7:8081")?]),
        ),
        broken(
            "nftables-numgen-branch-missing",
            ALL,
            CLUSTER_IP,
            "node-1: numgen random mod 2 vmap { 0 : web-1 } (1: none)",
            web_numgen_branch_missing,
            |c| {
                Ok(vec![cause::listed_nft_rule(
                    c,
                    NODE1,
                    "ip",
                    KP,
                    &service_chain(WEB)?,
                    &["numgen random mod 2"],
                )?])
            },
        ),
        broken(
            "nftables-masq-mark-lost-hairpin",
            ALL,
            OWN_SERVICE,
            "node-2: mark-for-masquerade sets 0x8000, not 0x4000",
            hairpin_mark_lost,
            |_| Ok(mark_lost_causes(NODE2)),
        ),
        broken(
            "nftables-nodeport-masq-jump-missing",
            CALICO,
            OUTSIDE_TO_NODE_PORT,
            "node-2: web-nodeport external chain: no mark-for-masquerade",
            nodeport_masq_jump_deleted,
            |_| {
                Ok(vec![cause::nft_chain_lacking(
                    NODE2,
                    "ip",
                    KP,
                    &kp_chain("external-", WEB_NODEPORT)?,
                    "mark-for-masquerade",
                )])
            },
        ),
        // flannel masquerades traffic from outside the cluster to remote pods
        // itself (FLANNEL-POSTRTG): the kernel survives.
        scenario(
            "nftables-nodeport-masq-jump-missing",
            FLANNEL,
            OUTSIDE_TO_NODE_PORT,
            "node-2: external chain: no masq jump (kernel: flannel masqs)",
            Some(nodeport_masq_jump_deleted),
            Expect::Reach,
        ),
        // 3. inet tables beside iptables-nft: priority order decides.
        broken(
            "nftables-firewalld-forward-reject",
            ALL,
            CROSS,
            "node-1: inet firewalld: zone dispatch rejects pod traffic",
            firewalld_on_node1,
            firewalld_reject,
        ),
        broken(
            "nftables-inet-accept-iptables-drop",
            ALL,
            CROSS,
            "node-1: inet accept (filter - 10); FORWARD --dport 8080 DROP",
            inet_accept_iptables_drop,
            |_| {
                Ok(vec![cause::rule(
                    NODE1,
                    "FORWARD",
                    "-p tcp -m tcp --dport 8080 -j DROP",
                )])
            },
        ),
        scenario(
            "nftables-inet-accept",
            ALL,
            CROSS,
            "node-1: inet accept of pods (filter - 10), nothing drops",
            Some(inet_accept),
            Expect::Reach,
        ),
        // 4. netdev ingress and the bridge family.
        broken(
            "nftables-netdev-ingress-drop",
            ALL,
            CROSS,
            "node-1: netdev ingress on client-1's veth drops its traffic to web-2",
            ingress_drop_on_client_veth,
            |c| {
                Ok(vec![cause::listed_nft_rule(
                    c,
                    NODE1,
                    "netdev",
                    "edge",
                    "client_in",
                    &["tcp dport 8080 drop"],
                )?])
            },
        ),
        broken(
            "nftables-bridge-forward-drop",
            FLANNEL,
            SAME,
            "node-1: bridge family forward chain drops pod traffic on cni0",
            bridge_forward_drop,
            |c| {
                Ok(vec![cause::listed_nft_rule(
                    c,
                    NODE1,
                    "bridge",
                    "pods",
                    "forward",
                    &["tcp dport 8080 drop"],
                )?])
            },
        ),
        // Calico routes same-node pod traffic: a bridge table never sees it.
        scenario(
            "nftables-bridge-forward-drop",
            CALICO,
            SAME,
            "node-1: bridge family forward drop (Calico routes, no bridge)",
            Some(bridge_forward_drop),
            Expect::Reach,
        ),
    ]
}
