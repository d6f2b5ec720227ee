//! Calico clusters in network namespaces, built the way Calico's CNI, felix
//! and BIRD build them: pods with eth0 /32 and `default via 169.254.1.1`
//! on-link; host cali veths (ee:ee:ee:ee:ee:ee, proxy ARP on) with a /32
//! route each; one blackhole route per node's /26 IPAM block; remote blocks
//! via the node (BGP) or via the remote VTEP on `vxlan.calico` (VNI 4096,
//! port 4789) with permanent neighbour and FDB entries; felix's filter chains
//! and cali-nat-outgoing from tests/fixtures/calico.py. The kernel has no
//! ipip module here, so IPIP and WireGuard are covered by fixture bundles.

use std::collections::BTreeMap;

use super::cause::{self, At, Cause, Entity};
use super::probe::Server;
use super::scenarios::{Expect, Flow, Inject, Probe, Scenario, Src, veth};
use super::sh;
use super::topo::{
    Backend, BuildOptions, Cluster, ClusterData, NetnsGuard, ports, s, sysctl, unique_prefix,
};

pub const MODES: &[Backend] = &[Backend::CalicoBgp, Backend::CalicoVxlan];
const VXLAN: &[Backend] = &[Backend::CalicoVxlan];
const GATEWAY_MAC: &str = "ee:ee:ee:ee:ee:ee";
/// A server in the "VPC" netns, outside the cluster (natOutgoing flows).
pub const OUTSIDE_PORT: u16 = 8081;

pub fn build(backend: Backend, data: &ClusterData, opts: BuildOptions) -> Result<Cluster, String> {
    let prefix = unique_prefix();
    let vpc = format!("{prefix}-vpc");
    let mut c = Cluster {
        backend,
        tables: opts.tables,
        vpc: vpc.clone(),
        data_dir: data.dir.clone(),
        node_ns: BTreeMap::new(),
        pod_ns: BTreeMap::new(),
        veth: BTreeMap::new(),
        node_info: BTreeMap::new(),
        guard: NetnsGuard::default(),
    };
    let gateway = s(&data.topo, "gateway");
    let mtu = data.topo["pod_mtu"].as_u64().unwrap_or(1500);
    let vni = data.topo["vni"].as_u64().unwrap_or(4096);
    let vport = data.topo["vxlan_port"].as_u64().unwrap_or(4789);
    let vxlan = backend == Backend::CalicoVxlan;
    c.guard.add(&vpc)?;
    sh::ip_batch(
        &vpc,
        &[
            "link add br0 type bridge".into(),
            format!("addr add {gateway}/24 dev br0"),
            "link set br0 up".into(),
        ],
    )?;
    c.guard
        .servers
        .push(Server::start(&vpc, &[OUTSIDE_PORT], &[])?);
    for (i, n) in data.nodes().iter().enumerate() {
        let (name, ip, block) = (s(n, "name"), s(n, "ip"), s(n, "pod_cidr"));
        let (tunnel, mac) = (s(n, "vtep_ip"), s(n, "vtep_mac"));
        let ns = format!("{prefix}-{name}");
        c.guard.add(&ns)?;
        for key in [
            "net.ipv4.conf.all.rp_filter",
            "net.ipv4.conf.default.rp_filter",
        ] {
            sysctl(&ns, key, "0")?;
        }
        sh::ip_batch(
            &vpc,
            &[
                format!("link add u{i} type veth peer name eth0 netns {ns}"),
                format!("link set u{i} master br0 up"),
            ],
        )?;
        let mut cmds = vec![
            format!("addr add {ip}/24 dev eth0"),
            "link set eth0 up".into(),
            format!("route add default via {gateway} dev eth0"),
            format!("route add blackhole {block} proto bird"),
        ];
        if vxlan {
            cmds.extend([
                format!(
                    "link add vxlan.calico address {mac} mtu {mtu} type vxlan id {vni} local {ip} dev eth0 dstport {vport} nolearning"
                ),
                format!("addr add {tunnel}/32 dev vxlan.calico"),
                "link set vxlan.calico up".into(),
            ]);
        }
        sh::ip_batch(&ns, &cmds)?;
        sysctl(&ns, "net.ipv4.ip_forward", "1")?;
        let rules = std::fs::read_to_string(data.dir.join(format!("iptables-{name}.txt")))
            .map_err(|e| e.to_string())?;
        sh::exec_stdin(&ns, opts.tables.restore(), &[], &rules)?;
        super::topo::load_nft(&ns, &data.dir, &name)?;
        c.node_info.insert(name.clone(), (ip, block, tunnel, mac));
        c.node_ns.insert(name, ns);
    }
    for (name, ns) in &c.node_ns {
        let mut cmds = Vec::new();
        for (other, (oip, oblock, otunnel, omac)) in &c.node_info {
            if other == name {
                continue;
            }
            if vxlan {
                cmds.push(format!(
                    "route add {oblock} via {otunnel} dev vxlan.calico onlink proto 80"
                ));
                cmds.push(format!(
                    "neigh add {otunnel} lladdr {omac} dev vxlan.calico nud permanent"
                ));
                sh::run(
                    "bridge",
                    &[
                        "-n",
                        ns,
                        "fdb",
                        "append",
                        omac,
                        "dev",
                        "vxlan.calico",
                        "dst",
                        oip,
                        "self",
                        "permanent",
                    ],
                )?;
            } else {
                cmds.push(format!("route add {oblock} via {oip} dev eth0 proto bird"));
            }
        }
        sh::ip_batch(ns, &cmds)?;
    }
    for p in data.pods() {
        let key = format!("{}/{}", s(p, "namespace"), s(p, "name"));
        let node = s(p, "node");
        let Some(node_ns) = c.node_ns.get(&node).cloned() else {
            return Err(format!("pod {key} is on unknown node {node}"));
        };
        let pns = format!("{prefix}-{}", s(p, "name"));
        c.guard.add(&pns)?;
        let (veth, ip) = (s(p, "veth"), s(p, "ip"));
        sh::ip_batch(
            &node_ns,
            &[
                format!(
                    "link add {veth} address {GATEWAY_MAC} mtu {mtu} type veth peer name eth0 netns {pns}"
                ),
                format!("link set {veth} up"),
                format!("route add {ip}/32 dev {veth} scope link"),
            ],
        )?;
        sysctl(&node_ns, &format!("net/ipv4/conf/{veth}/proxy_arp"), "1")?;
        // As Calico's CNI: answer proxy ARP at once (the kernel default
        // delays each answer by up to 0.8 s).
        sysctl(&node_ns, &format!("net/ipv4/neigh/{veth}/proxy_delay"), "0")?;
        sh::ip_batch(
            &pns,
            &[
                format!("link set eth0 mtu {mtu}"),
                format!("addr add {ip}/32 dev eth0"),
                "link set eth0 up".into(),
                "route add 169.254.1.1 dev eth0 scope link".into(),
                "route add default via 169.254.1.1 dev eth0".into(),
            ],
        )?;
        let (tcp, udp) = (ports(p, "tcp"), ports(p, "udp"));
        if opts.silent_pod != Some(key.as_str()) && (!tcp.is_empty() || !udp.is_empty()) {
            c.guard.servers.push(Server::start(&pns, &tcp, &udp)?);
        }
        c.veth.insert(key.clone(), veth);
        c.pod_ns.insert(key, (node, pns));
    }
    for ns in c.node_ns.values() {
        c.guard.servers.push(Server::start(ns, &[10250], &[])?);
    }
    Ok(c)
}

const fn pod_flow(dst: &'static str, port: u16) -> Flow {
    Flow {
        src: Src::Pod("default/client-1"),
        src_ip: "10.244.0.5",
        dst,
        port,
        probe: Probe::Tcp,
    }
}

const SAME: Flow = pod_flow("10.244.0.6", 8080);
const CROSS: Flow = pod_flow("10.244.1.7", 8080);
const CLUSTER_IP: Flow = Flow {
    probe: Probe::TcpEveryBackend,
    ..pod_flow("10.96.100.10", 80)
};
const POD_TO_NODE: Flow = pod_flow("192.168.0.12", 10250);
const NODE_TO_POD: Flow = Flow {
    src: Src::Node("node-1"),
    src_ip: "192.168.0.11",
    dst: "10.244.1.7",
    port: 8080,
    probe: Probe::Tcp,
};
/// From node-1's `vxlan.calico` address (its tunnel address, from its block).
const TUNNEL_TO_POD: Flow = Flow {
    src_ip: "10.244.0.0",
    probe: Probe::TcpBound,
    ..NODE_TO_POD
};
const REPLY_DIRECTION: Flow = Flow {
    src: Src::Pod("default/web-2"),
    src_ip: "10.244.1.7",
    dst: "10.244.0.6",
    port: 8080,
    probe: Probe::Tcp,
};
const OUTSIDE: Flow = pod_flow("192.168.0.1", OUTSIDE_PORT);

fn scenario(
    name: &'static str,
    backends: &'static [Backend],
    flow: Flow,
    variant: &'static str,
    fault: Option<(&'static str, Inject)>,
    expect: Expect,
) -> Scenario {
    Scenario {
        name,
        backends,
        tables: super::scenarios::DEFAULT_TABLES,
        flow,
        variant,
        silent_pod: None,
        fault: fault.map(|f| f.1),
        expect,
        check: None,
        what: fault
            .map(|f| f.0)
            .unwrap_or(if variant == "healthy" { "-" } else { variant }),
    }
}

const NODE1: At = At::Node("node-1");
const NODE2: At = At::Node("node-2");

/// node-2's VTEP MAC, which node-1's FDB entry for node-2 holds.
fn node2_vtep_mac(c: &Cluster) -> Result<String, String> {
    let (.., mac) = c.node_info.get("node-2").cloned().ok_or("no node-2")?;
    Ok(mac)
}

fn web2_veth_down(c: &Cluster) -> Result<(), String> {
    sh::ip(
        c.node("node-2")?,
        &format!("link set {} down", veth(c, "default/web-2")?),
    )
    .map(drop)
}

fn client_proxy_arp_off(c: &Cluster) -> Result<(), String> {
    let v = veth(c, "default/client-1")?;
    sysctl(
        c.node("node-1")?,
        &format!("net/ipv4/conf/{v}/proxy_arp"),
        "0",
    )
}

fn web2_pod_route_deleted(c: &Cluster) -> Result<(), String> {
    sh::ip(c.node("node-2")?, "route del 10.244.1.7/32").map(drop)
}

fn node1_block_route_deleted(c: &Cluster) -> Result<(), String> {
    sh::ip(c.node("node-1")?, "route del 10.244.1.0/26").map(drop)
}

fn node1_ip_forward_off(c: &Cluster) -> Result<(), String> {
    sysctl(c.node("node-1")?, "net.ipv4.ip_forward", "0")
}

fn node1_fdb_missing(c: &Cluster) -> Result<(), String> {
    let (ip, _, _, mac) = c.node_info.get("node-2").cloned().ok_or("no node-2")?;
    sh::run(
        "bridge",
        &[
            "-n",
            c.node("node-1")?,
            "fdb",
            "del",
            &mac,
            "dev",
            "vxlan.calico",
            "dst",
            &ip,
            "self",
        ],
    )
    .map(drop)
}

fn node1_neigh_missing(c: &Cluster) -> Result<(), String> {
    sh::ip(c.node("node-1")?, "neigh del 10.244.1.0 dev vxlan.calico").map(drop)
}

fn node1_vxlan_down(c: &Cluster) -> Result<(), String> {
    sh::ip(c.node("node-1")?, "link set vxlan.calico down").map(drop)
}

fn node2_veth_route_replaced(c: &Cluster) -> Result<(), String> {
    // KubeSkoop's "wrong route" e2e case, adapted: the pod's /32 sent out of eth0.
    sh::ip(c.node("node-2")?, "route replace 10.244.1.7/32 dev eth0").map(drop)
}

fn healthy(name: &'static str, backends: &'static [Backend], flow: Flow) -> Scenario {
    scenario(name, backends, flow, "healthy", None, Expect::Reach)
}

pub fn all() -> Vec<Scenario> {
    vec![
        healthy("pod-to-pod-same-node", MODES, SAME),
        healthy("pod-to-pod-cross-node", MODES, CROSS),
        healthy("pod-to-pod-other-direction", MODES, REPLY_DIRECTION),
        healthy("pod-to-clusterip", MODES, CLUSTER_IP),
        healthy("pod-to-node", MODES, POD_TO_NODE),
        healthy("node-to-pod", MODES, NODE_TO_POD),
        healthy("node-tunnel-address-to-pod", VXLAN, TUNNEL_TO_POD),
        healthy("pod-to-outside-nat-outgoing", MODES, OUTSIDE),
        scenario(
            "nat-outgoing-rule-missing",
            MODES,
            OUTSIDE,
            "no-nat-rule",
            None,
            Expect::Broken(|_| Ok(vec![cause::chain(NODE1, "cali-nat-outgoing", None)])),
        ),
        scenario(
            "policy-allows-port",
            MODES,
            CROSS,
            "policy-8080",
            None,
            Expect::Reach,
        ),
        scenario(
            "policy-drops-port",
            MODES,
            CROSS,
            "policy-9090",
            None,
            Expect::Broken(|c| {
                let chain = format!("cali-tw-{}", veth(c, "default/web-2")?);
                let drop = ["Drop if no policies passed packet", "-j DROP"];
                Ok(vec![cause::saved_rule(c, NODE2, Some(&chain), &drop)?])
            }),
        ),
        scenario(
            "dst-cali-veth-down",
            MODES,
            CROSS,
            "healthy",
            Some(("web-2's cali veth down on node-2", web2_veth_down)),
            Expect::Broken(|c| Ok(vec![cause::device(NODE2, &veth(c, "default/web-2")?)])),
        ),
        scenario(
            "src-proxy-arp-off",
            MODES,
            CROSS,
            "healthy",
            Some(("proxy_arp=0 on client-1's cali veth", client_proxy_arp_off)),
            Expect::Broken(|c| {
                let v = veth(c, "default/client-1")?;
                Ok(vec![
                    cause::sysctl(NODE1, &format!("net.ipv4.conf.{v}.proxy_arp")),
                    // Where the kernel stops: client-1 cannot resolve its gateway.
                    Cause {
                        at: At::Pod("default/client-1"),
                        what: Entity::Neigh {
                            ip: "169.254.1.1".into(),
                            dev: "eth0".into(),
                        },
                    },
                ])
            }),
        ),
        scenario(
            "pod-route-deleted",
            MODES,
            CROSS,
            "healthy",
            Some((
                "ip route del 10.244.1.7/32 on node-2",
                web2_pod_route_deleted,
            )),
            // The packet falls through to the block's blackhole route.
            Expect::Broken(|_| Ok(vec![cause::route(NODE2, "blackhole 10.244.1.0/26")])),
        ),
        scenario(
            "pod-route-via-eth0",
            MODES,
            CROSS,
            "healthy",
            Some((
                "10.244.1.7/32 dev eth0 on node-2",
                node2_veth_route_replaced,
            )),
            Expect::Broken(|_| Ok(vec![cause::route(NODE2, "10.244.1.7 dev eth0")])),
        ),
        scenario(
            "block-route-deleted",
            MODES,
            CROSS,
            "healthy",
            Some((
                "ip route del 10.244.1.0/26 on node-1",
                node1_block_route_deleted,
            )),
            Expect::Broken(|_| Ok(vec![cause::no_route(NODE1, "10.244.1.0/26")])),
        ),
        scenario(
            "ip-forward-off",
            MODES,
            CROSS,
            "healthy",
            Some(("net.ipv4.ip_forward=0 on node-1", node1_ip_forward_off)),
            Expect::Broken(|c| {
                let v = veth(c, "default/client-1")?;
                Ok(cause::forwarding_off(NODE1, &v))
            }),
        ),
        scenario(
            "vxlan-fdb-missing",
            VXLAN,
            CROSS,
            "healthy",
            Some((
                "node-2's VTEP FDB entry deleted on node-1",
                node1_fdb_missing,
            )),
            Expect::Broken(|c| {
                Ok(vec![Cause {
                    at: NODE1,
                    what: Entity::Fdb {
                        mac: node2_vtep_mac(c)?,
                        dev: "vxlan.calico".into(),
                    },
                }])
            }),
        ),
        scenario(
            "vxlan-neighbour-missing",
            VXLAN,
            CROSS,
            "healthy",
            Some((
                "node-2's VTEP neighbour deleted on node-1",
                node1_neigh_missing,
            )),
            Expect::Broken(|_| {
                Ok(vec![Cause {
                    at: NODE1,
                    what: Entity::Neigh {
                        ip: "10.244.1.0".into(),
                        dev: "vxlan.calico".into(),
                    },
                }])
            }),
        ),
        scenario(
            "vxlan-device-down",
            VXLAN,
            CROSS,
            "healthy",
            Some(("vxlan.calico down on node-1", node1_vxlan_down)),
            Expect::Broken(|_| Ok(vec![cause::device(NODE1, "vxlan.calico")])),
        ),
    ]
}
