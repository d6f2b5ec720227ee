//! Paths across the link layer, on every backend they apply to (issue 23):
//! the flows where what happens between the devices — bridge, veth, VXLAN,
//! ECMP, MTU, the address MASQUERADE picks — decides, judged by the kernel
//! on real packets.
//!
//! - NodePorts on Calico, from outside the cluster and from a pod on
//!   another node: kube-proxy masquerades the forwarded request out of
//!   `vxlan.calico` (its tunnel address) or out of a cali veth (no IPv4
//!   address: the kernel takes another of the netns, inet_select_addr).
//! - A node's own process to a ClusterIP.
//! - Pod MTU above the path's, judged by a bulk transfer each way: PMTU
//!   discovery rescues it, unless the ICMP error is dropped.
//! - ECMP: node-1 reaches node-2's pods over two paths (direct, and via
//!   node-3, which forwards), hashing on ports; every path counts.
//! - Hairpin: a pod to a Service whose only endpoint is itself, through
//!   flannel's cni0 with and without the port's hairpin flag, and through
//!   Calico's routed veth, masqueraded out of the address-less veth.

use super::cause::{self, At, Cause, Entity};
use super::dataplane::{mark_masq_bit, mark_masq_causes};
use super::probe::Outcome;
use super::scenarios::{
    BOTH, BULK, CROSS, Causes, Check, DEFAULT_TABLES, Expect, Flow, Inject, NODE_PORT,
    NODE_TO_CLUSTER_IP, OUTSIDE_TO_NODE_PORT, Probe, Scenario, Src, detour_route,
    node1_detour_via_node3, node2_forward_drop_from_outside, pod_cidr, veth,
};
use super::sh;
use super::topo::{Backend, Cluster, sysctl};

const ALL: &[Backend] = &[
    Backend::Vxlan,
    Backend::HostGw,
    Backend::CalicoBgp,
    Backend::CalicoVxlan,
];
const TUNNELS: &[Backend] = &[Backend::Vxlan, Backend::CalicoVxlan];
const CALICO: &[Backend] = super::calico::MODES;

const NODE1: At = At::Node("node-1");
const NODE2: At = At::Node("node-2");
const NODE3: At = At::Node("node-3");
const CLIENT1: At = At::Pod("default/client-1");

/// client-1 to web-2 from 16 source ports: two ECMP paths all take one with
/// probability 2^-15.
const SPREAD: Flow = Flow {
    probe: Probe::TcpSpread(16),
    ..CROSS
};
/// coredns-1 to the kube-dns Service over TCP: its only endpoint is
/// coredns-1 itself, so every connection hairpins.
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
        tables: DEFAULT_TABLES,
        flow,
        variant: "healthy",
        silent_pod: None,
        fault,
        expect,
        check: None,
        what,
    }
}

fn healthy(name: &'static str, backends: &'static [Backend], flow: Flow) -> Scenario {
    scenario(name, backends, flow, "-", None, Expect::Reach)
}

fn ipt(c: &Cluster, node: &str, args: &str) -> Result<(), String> {
    let args: Vec<&str> = args.split_whitespace().collect();
    c.iptables(c.node(node)?, &args).map(drop)
}

// ------------------------------------------------------------- NodePorts

fn node2_mark_masq_bit(c: &Cluster) -> Result<(), String> {
    mark_masq_bit(c, "node-2")
}

fn node2_forward_drop_backend_port(c: &Cluster) -> Result<(), String> {
    ipt(c, "node-2", "-I FORWARD -p tcp --dport 8080 -j DROP")
}

fn node1_output_drop_backend_port(c: &Cluster) -> Result<(), String> {
    ipt(c, "node-1", "-I OUTPUT -p tcp --dport 8080 -j DROP")
}

// ------------------------------------------------------------------- MTU

/// The pods' MTU in the MTU faults: the plain Ethernet MTU over a VXLAN
/// device of 1450; jumbo frames where the path (node eth0) carries 1500.
fn raised_pod_mtu(backend: Backend) -> u32 {
    match backend {
        Backend::Vxlan | Backend::CalicoVxlan => 1500,
        Backend::HostGw | Backend::CalicoBgp => 9000,
    }
}

/// The device node-1 sends client-1's packets for web-2 out of.
fn path_device(backend: Backend) -> &'static str {
    match backend {
        Backend::Vxlan => "flannel.1",
        Backend::CalicoVxlan => "vxlan.calico",
        Backend::HostGw | Backend::CalicoBgp => "eth0",
    }
}

/// As a CNI configured with a pod MTU above the path's leaves it: every
/// pod's eth0 and host veth, and flannel's bridge, at the raised MTU.
fn pods_mtu_above_path(c: &Cluster) -> Result<(), String> {
    let mtu = raised_pod_mtu(c.backend);
    for (key, (node, pod_ns)) in &c.pod_ns {
        sh::ip(
            c.node(node)?,
            &format!("link set {} mtu {mtu}", veth(c, key)?),
        )?;
        sh::ip(pod_ns, &format!("link set eth0 mtu {mtu}"))?;
    }
    if matches!(c.backend, Backend::Vxlan | Backend::HostGw) {
        for ns in c.node_ns.values() {
            sh::ip(ns, &format!("link set cni0 mtu {mtu}"))?;
        }
    }
    Ok(())
}

/// node-1 drops the ICMP fragmentation-needed errors it sends (a host
/// firewall dropping ICMP): PMTU discovery never hears of the smaller MTU.
fn node1_drops_frag_needed(c: &Cluster) -> Result<(), String> {
    ipt(
        c,
        "node-1",
        "-I OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP",
    )
}

fn pods_mtu_above_path_icmp_dropped(c: &Cluster) -> Result<(), String> {
    pods_mtu_above_path(c)?;
    node1_drops_frag_needed(c)
}

const TUNNEL_MTU_LOW: u32 = 1400;

fn node1_tunnel_mtu_below_pods(c: &Cluster) -> Result<(), String> {
    let dev = path_device(c.backend);
    sh::ip(
        c.node("node-1")?,
        &format!("link set {dev} mtu {TUNNEL_MTU_LOW}"),
    )
    .map(drop)
}

fn node1_tunnel_mtu_below_pods_icmp_dropped(c: &Cluster) -> Result<(), String> {
    node1_tunnel_mtu_below_pods(c)?;
    node1_drops_frag_needed(c)
}

fn frag_needed_drop(_: &Cluster) -> Result<Vec<Cause>, String> {
    Ok(vec![cause::rule(
        NODE1,
        "OUTPUT",
        "-p icmp -m icmp --icmp-type 3/4 -j DROP",
    )])
}

/// The pod MTU above the path's: the device whose MTU is exceeded on node-1,
/// or client-1's eth0 set above it.
fn pod_mtu_causes(c: &Cluster) -> Result<Vec<Cause>, String> {
    let path_mtu = match c.backend {
        Backend::Vxlan | Backend::CalicoVxlan => 1450,
        Backend::HostGw | Backend::CalicoBgp => 1500,
    };
    Ok(vec![
        cause::mtu(NODE1, path_device(c.backend), path_mtu),
        cause::mtu(CLIENT1, "eth0", raised_pod_mtu(c.backend)),
    ])
}

// ------------------------------------------------------------------- ECMP

/// node-2's and node-3's next hops from node-1 on this backend, as `ip route`
/// prints them after `via`.
fn ecmp_hops(c: &Cluster) -> Result<(String, String), String> {
    let hop = |node: &str| -> Result<String, String> {
        let (ip, _, vtep, _) = c
            .node_info
            .get(node)
            .cloned()
            .ok_or_else(|| format!("no {node}"))?;
        Ok(match c.backend {
            Backend::Vxlan | Backend::CalicoVxlan => vtep,
            Backend::HostGw | Backend::CalicoBgp => ip,
        })
    };
    Ok((hop("node-2")?, hop("node-3")?))
}

/// node-1 routes node-2's pod CIDR over two next hops, node-2 and node-3
/// (which forwards to node-2), hashing on layer 4 (policy 1; with the
/// default, layer 3, every connection of one pod pair takes one path). For
/// a pod's TCP the L4 hash is its socket's own random one, carried on the
/// packets: the connections spread at random, whatever their ports.
fn node1_ecmp_via_node3(c: &Cluster) -> Result<(), String> {
    let (n2, n3) = ecmp_hops(c)?;
    let dev = path_device(c.backend);
    let onlink = if dev == "eth0" { "" } else { " onlink" };
    let cidr = pod_cidr(c, "node-2")?;
    let node1 = c.node("node-1")?;
    sysctl(node1, "net.ipv4.fib_multipath_hash_policy", "1")?;
    sh::ip(
        node1,
        &format!(
            "route replace {cidr} nexthop via {n2} dev {dev}{onlink} nexthop via {n3} dev {dev}{onlink}"
        ),
    )
    .map(drop)
}

fn node1_ecmp_node3_forward_drop(c: &Cluster) -> Result<(), String> {
    node1_ecmp_via_node3(c)?;
    ipt(c, "node-3", "-I FORWARD -j DROP")
}

/// The source ports of client-1's connections to web-2 that node-3's
/// conntrack saw: those ECMP sent through node-3 and node-3 let in (a SYN it
/// drops in FORWARD leaves no entry, conntrack confirms only what passes).
fn node3_tracked(c: &Cluster) -> Result<Vec<u16>, String> {
    let f = CROSS;
    let table = sh::exec(c.node("node-3")?, "cat", &["/proc/net/nf_conntrack"])?;
    let want = [
        format!("src={}", f.src_ip),
        format!("dst={}", f.dst),
        format!("dport={}", f.port),
    ];
    Ok(table
        .lines()
        .filter_map(|l| {
            // The original direction: the first of each key.
            let first = |key: &str| l.split_whitespace().find(|w| w.starts_with(key));
            let orig = [first("src="), first("dst="), first("dport=")];
            (orig.iter().zip(&want).all(|(o, w)| *o == Some(w.as_str())))
                .then(|| first("sport=")?.strip_prefix("sport=")?.parse().ok())
                .flatten()
        })
        .collect())
}

fn failed(o: &Outcome) -> Vec<u16> {
    let mut f: Vec<u16> = o.tries.iter().filter(|t| !t.1).map(|t| t.0).collect();
    f.sort_unstable();
    f
}

/// Some connections, not all, went through node-3.
fn spread_tracked(c: &Cluster, o: &Outcome) -> Result<Vec<u16>, String> {
    let mut via = node3_tracked(c)?;
    via.sort_unstable();
    if via.is_empty() || via.len() >= o.tries.len() {
        return Err(format!(
            "ECMP did not spread: node-3 tracked {} of {} connections",
            via.len(),
            o.tries.len()
        ));
    }
    Ok(via)
}

/// Spread over both paths (node-3 tracked some connections, not all).
fn spread(c: &Cluster, o: &Outcome) -> Result<(), String> {
    spread_tracked(c, o).map(drop)
}

/// Spread over both paths, and exactly the connections through node-3
/// failed.
fn spread_node3_fails(c: &Cluster, o: &Outcome) -> Result<(), String> {
    let via = spread_tracked(c, o)?;
    let failed = failed(o);
    if via == failed {
        Ok(())
    } else {
        Err(format!(
            "failed {failed:?}, through node-3 {via:?}: not the same connections"
        ))
    }
}

/// Some connections failed, not all: node-3 drops what reaches it, so the
/// failures went through node-3 and the others did not.
fn spread_some_fail(_: &Cluster, o: &Outcome) -> Result<(), String> {
    let n = failed(o).len();
    if n == 0 || n == o.tries.len() {
        return Err(format!(
            "ECMP did not spread: {n} of {} connections failed",
            o.tries.len()
        ));
    }
    Ok(())
}

/// A transit node seeing one direction of a connection: node-3 tracked the
/// SYN, never sees the SYN-ACK (node-2 answers node-1 directly), and drops
/// the client's ACK and data as conntrack-INVALID.
fn node3_invalid_drop() -> Cause {
    cause::rule(
        NODE3,
        "KUBE-FORWARD",
        "-m conntrack --ctstate INVALID -j DROP",
    )
}

// ---------------------------------------------------------------- hairpin

fn coredns_hairpin(c: &Cluster, on: &str) -> Result<(), String> {
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
            on,
        ],
    )
    .map(drop)
}

fn coredns_hairpin_on(c: &Cluster) -> Result<(), String> {
    coredns_hairpin(c, "on")
}

fn coredns_hairpin_off(c: &Cluster) -> Result<(), String> {
    coredns_hairpin(c, "off")
}

/// Without br_netfilter the DNATed frame is not bridged back: it goes up to
/// the IP layer, is routed out of cni0, and the bridge device sends it to
/// the port (no hairpin needed).
fn coredns_hairpin_off_bridge_nf_off(c: &Cluster) -> Result<(), String> {
    coredns_hairpin_off(c)?;
    sysctl(c.node("node-2")?, "net.bridge.bridge-nf-call-iptables", "0")
}

/// A MASQUERADE of everything leaving for a pod: out of a cali veth, which
/// has no IPv4 address.
fn node2_masquerade_into_pods(c: &Cluster) -> Result<(), String> {
    ipt(c, "node-2", "-t nat -I POSTROUTING -o cali+ -j MASQUERADE")
}

pub fn all() -> Vec<Scenario> {
    let broken = |name, backends, flow, what, inject: Inject, causes: Causes| {
        scenario(
            name,
            backends,
            flow,
            what,
            Some(inject),
            Expect::Broken(causes),
        )
    };
    let survives = |name, backends, flow, what, inject: Inject| {
        scenario(name, backends, flow, what, Some(inject), Expect::Reach)
    };
    let warns = |name, backends, flow, what, inject: Inject, causes: Causes| {
        scenario(
            name,
            backends,
            flow,
            what,
            Some(inject),
            Expect::Warn(causes),
        )
    };
    let with_check = |sc: Scenario, check: Check| Scenario {
        check: Some(check),
        ..sc
    };
    vec![
        // 1. NodePorts on Calico. Outside → node-2:30080 reaches web-2 (local:
        // masqueraded out of its cali veth) or web-3 (node-3: out of
        // vxlan.calico from its tunnel address, or eth0).
        healthy("outside-to-nodeport", CALICO, OUTSIDE_TO_NODE_PORT),
        healthy("pod-to-nodeport", CALICO, NODE_PORT),
        broken(
            "outside-forward-drop",
            CALICO,
            OUTSIDE_TO_NODE_PORT,
            "node-2: iptables -I FORWARD -s 203.0.113.9 -j DROP",
            node2_forward_drop_from_outside,
            |_| {
                Ok(vec![cause::rule(
                    NODE2,
                    "FORWARD",
                    "-s 203.0.113.9/32 -j DROP",
                )])
            },
        ),
        // Unmasqueraded, web-3 answers the client straight from node-3 and
        // the client resets the unknown connection; web-2's answer passes
        // node-2 and is un-DNATed.
        broken(
            "outside-nodeport-masq-mark-bit",
            CALICO,
            OUTSIDE_TO_NODE_PORT,
            "node-2: KUBE-MARK-MASQ --or-mark 0x8000 (POSTROUTING tests 0x4000)",
            node2_mark_masq_bit,
            |c| mark_masq_causes(c, NODE2),
        ),
        // flannel's own masquerade (! -s cluster -d cluster) covers it.
        survives(
            "outside-nodeport-masq-mark-bit",
            BOTH,
            OUTSIDE_TO_NODE_PORT,
            "node-2: KUBE-MARK-MASQ 0x8000 (kernel: flannel's masq covers it)",
            node2_mark_masq_bit,
        ),
        broken(
            "pod-to-nodeport-forward-drop",
            CALICO,
            NODE_PORT,
            "node-2: iptables -I FORWARD -p tcp --dport 8080 -j DROP",
            node2_forward_drop_backend_port,
            |_| {
                Ok(vec![cause::rule(
                    NODE2,
                    "FORWARD",
                    "-p tcp -m tcp --dport 8080 -j DROP",
                )])
            },
        ),
        // Without node-1's natOutgoing the request reaches node-2 from the
        // pod's address; kube-proxy masquerades it there, and the reply
        // returns through node-2.
        Scenario {
            variant: "no-nat-rule",
            what: "node-1: cali-nat-outgoing empty (kernel: node-2 masquerades)",
            ..healthy("pod-to-nodeport-nat-outgoing-missing", CALICO, NODE_PORT)
        },
        // 2. A node's own process to a ClusterIP: DNAT in OUTPUT, masqueraded
        // out of cni0/flannel.1, a cali veth (no address) or vxlan.calico.
        healthy("node-to-clusterip", ALL, NODE_TO_CLUSTER_IP),
        broken(
            "node-to-clusterip-output-drop",
            ALL,
            NODE_TO_CLUSTER_IP,
            "node-1: iptables -I OUTPUT -p tcp --dport 8080 -j DROP",
            node1_output_drop_backend_port,
            |_| {
                Ok(vec![cause::rule(
                    NODE1,
                    "OUTPUT",
                    "-p tcp -m tcp --dport 8080 -j DROP",
                )])
            },
        ),
        // 3. MTU, judged by a bulk transfer each way.
        healthy("pod-to-pod-bulk", ALL, BULK),
        warns(
            "pod-mtu-above-path",
            ALL,
            BULK,
            "all pods' MTU 1500 over VXLAN 1450 / 9000 over eth0 1500 (kernel: PMTUD)",
            pods_mtu_above_path,
            pod_mtu_causes,
        ),
        broken(
            "pod-mtu-above-path-icmp-dropped",
            ALL,
            BULK,
            "pods' MTU above the path's; node-1 drops ICMP frag-needed in OUTPUT",
            pods_mtu_above_path_icmp_dropped,
            frag_needed_drop,
        ),
        warns(
            "tunnel-mtu-below-pods",
            TUNNELS,
            BULK,
            "node-1: VXLAN device MTU 1400 < pod MTU 1450 (kernel: PMTUD)",
            node1_tunnel_mtu_below_pods,
            |c| {
                let dev = path_device(c.backend);
                Ok(vec![cause::mtu(NODE1, dev, TUNNEL_MTU_LOW)])
            },
        ),
        broken(
            "tunnel-mtu-below-pods-icmp-dropped",
            TUNNELS,
            BULK,
            "node-1: VXLAN device MTU 1400 < pods'; node-1 drops ICMP frag-needed",
            node1_tunnel_mtu_below_pods_icmp_dropped,
            frag_needed_drop,
        ),
        // 4. ECMP: node-2's pod CIDR via node-2 and via node-3, and a detour
        // via node-3 only. Replies come straight from node-2, so node-3 sees
        // one direction: flannel's node-3 masquerades the transit traffic
        // (FLANNEL-POSTRTG: -s 10.244.0.0/16 ! -d 224.0.0.0/4), which brings
        // the replies back through it; Calico's does not, and drops all but
        // the handshake as conntrack-INVALID.
        with_check(
            survives(
                "ecmp-via-node-3",
                BOTH,
                SPREAD,
                "node-1: node-2's podCIDR nexthop via node-2 nexthop via node-3 (node-3 masquerades)",
                node1_ecmp_via_node3,
            ),
            spread,
        ),
        with_check(
            broken(
                "ecmp-via-node-3",
                CALICO,
                SPREAD,
                "node-1: ECMP via node-2 and node-3 (node-3 sees one direction: INVALID)",
                node1_ecmp_via_node3,
                |_| Ok(vec![node3_invalid_drop()]),
            ),
            spread_node3_fails,
        ),
        with_check(
            broken(
                "ecmp-node-3-forward-drop",
                ALL,
                SPREAD,
                "node-1: ECMP via node-2 and node-3; node-3: -I FORWARD -j DROP",
                node1_ecmp_node3_forward_drop,
                |_| Ok(vec![cause::rule(NODE3, "FORWARD", "-j DROP")]),
            ),
            spread_some_fail,
        ),
        broken(
            "detour-via-node-3",
            CALICO,
            BULK,
            "node-1: node-2's block via node-3 only (node-3 sees one direction: INVALID)",
            node1_detour_via_node3,
            |c| {
                Ok(vec![
                    node3_invalid_drop(),
                    cause::route(NODE1, &detour_route(c)?),
                ])
            },
        ),
        // 5. Hairpin to the Service's own (only) backend.
        survives(
            "hairpin-flag-on",
            BOTH,
            OWN_SERVICE,
            "node-2: hairpin on for coredns-1's port (coredns-1 to kube-dns)",
            coredns_hairpin_on,
        ),
        broken(
            "hairpin-flag-off",
            BOTH,
            OWN_SERVICE,
            "node-2: hairpin off on coredns-1's port; br_netfilter bridges the DNATed frame",
            coredns_hairpin_off,
            |c| {
                Ok(vec![Cause {
                    at: NODE2,
                    what: Entity::PortFlag(veth(c, COREDNS)?, "hairpin"),
                }])
            },
        ),
        survives(
            "hairpin-flag-off-bridge-nf-off",
            BOTH,
            OWN_SERVICE,
            "node-2: hairpin off, bridge-nf-call-iptables=0 (kernel: routed back)",
            coredns_hairpin_off_bridge_nf_off,
        ),
        // 6. MASQUERADE out of an address-less device (Calico's cali veths).
        healthy("pod-to-own-service", CALICO, OWN_SERVICE),
        broken(
            "pod-to-own-service-masq-mark-bit",
            CALICO,
            OWN_SERVICE,
            "node-2: KUBE-MARK-MASQ 0x8000: coredns-1 gets its own address as source",
            node2_mark_masq_bit,
            |c| mark_masq_causes(c, NODE2),
        ),
        survives(
            "masquerade-into-pod-veth",
            CALICO,
            CROSS,
            "node-2: -t nat -I POSTROUTING -o cali+ -j MASQUERADE (kernel: eth0's address)",
            node2_masquerade_into_pods,
        ),
    ]
}
