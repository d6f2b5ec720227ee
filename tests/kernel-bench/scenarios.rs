//! The bench's scenarios: a flow, at most one injected fault, and what skoop
//! must say about it.

use super::cause::{self, At, Cause, Entity};
use super::probe::Outcome;
use super::sh;
use super::topo::{Backend, Cluster, Tables, sysctl};

pub const BOTH: &[Backend] = &[Backend::Vxlan, Backend::HostGw];
const VXLAN: &[Backend] = &[Backend::Vxlan];
/// One run with the system's default iptables.
pub const DEFAULT_TABLES: &[Tables] = &[Tables::Default];

/// Where the kernel probe starts.
#[derive(Clone, Copy)]
pub enum Src {
    Pod(&'static str),
    Node(&'static str),
    /// A host outside the cluster, beyond the nodes' gateway (the VPC netns).
    Outside,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connect.
    Tcp,
    /// Repeated TCP connects to a service (kube-proxy picks a backend at
    /// random each time): broken when any attempt fails.
    TcpEveryBackend,
    /// This many TCP connections, each from a source port of its own and
    /// exchanging `probe::SPREAD_BYTES` (ECMP spreads connections over its
    /// paths): broken when any fails.
    TcpSpread(usize),
    /// A bulk transfer (`probe::BULK_BYTES` each way) at the MTUs as
    /// configured: broken when it does not complete in `probe::BULK_TIMEOUT`.
    Bulk,
    /// A UDP datagram with DF filling the source eth0's MTU, echoed back.
    UdpFullMtu,
    /// A TCP connect from the flow's source address, bound (a node's tunnel
    /// address rather than the one the kernel would pick).
    TcpBound,
}

#[derive(Clone, Copy)]
pub struct Flow {
    pub src: Src,
    pub src_ip: &'static str,
    pub dst: &'static str,
    pub port: u16,
    pub probe: Probe,
}

impl Flow {
    pub fn protocol(&self) -> &'static str {
        match self.probe {
            Probe::UdpFullMtu => "udp",
            _ => "tcp",
        }
    }
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

pub const SAME: Flow = pod_flow("10.244.0.6", 8080);
pub const CROSS: Flow = pod_flow("10.244.1.7", 8080);
pub const CLUSTER_IP: Flow = Flow {
    probe: Probe::TcpEveryBackend,
    ..pod_flow("10.96.100.10", 80)
};
pub const NODE_PORT: Flow = Flow {
    probe: Probe::TcpEveryBackend,
    ..pod_flow("192.168.0.12", 30080)
};
const POD_TO_NODE: Flow = pod_flow("192.168.0.12", 10250);
/// A client on the internet calls node-2's NodePort.
pub const OUTSIDE_TO_NODE_PORT: Flow = Flow {
    src: Src::Outside,
    src_ip: "203.0.113.9",
    dst: "192.168.0.12",
    port: 30080,
    probe: Probe::TcpEveryBackend,
};
pub const NODE_TO_POD: Flow = Flow {
    src: Src::Node("node-1"),
    src_ip: "192.168.0.11",
    dst: "10.244.1.7",
    port: 8080,
    probe: Probe::Tcp,
};
/// node-1's own process to the web ClusterIP.
pub const NODE_TO_CLUSTER_IP: Flow = Flow {
    src: Src::Node("node-1"),
    src_ip: "192.168.0.11",
    ..CLUSTER_IP
};
/// client-1 to web-2, a bulk transfer each way.
pub const BULK: Flow = Flow {
    probe: Probe::Bulk,
    ..CROSS
};
const DNS_FULL_MTU: Flow = Flow {
    probe: Probe::UdpFullMtu,
    ..pod_flow("10.244.1.9", 53)
};

/// What skoop must say. The scenario is designed for the kernel verdict
/// `kernel_reaches` gives; the run checks the kernel did that.
#[derive(Clone, Copy)]
pub enum Expect {
    /// The kernel delivers: skoop must say reachable (it may warn).
    Reach,
    /// The kernel delivers but skoop rightly warns: exit 0 and a WARNING
    /// naming one of the causes.
    Warn(Causes),
    /// The kernel breaks the flow: skoop must say broken, with a
    /// CRITICAL/FATAL naming one of the causes.
    Broken(Causes),
}

/// The entities at fault, computed from the built and faulted cluster (a
/// veth's name, a VTEP's MAC, a kube-proxy chain are only known then).
pub type Causes = fn(&Cluster) -> Result<Vec<Cause>, String>;

impl Expect {
    /// The kernel verdict the scenario was designed for.
    pub fn kernel_reaches(&self) -> bool {
        !matches!(self, Expect::Broken(_))
    }
}

pub type Inject = fn(&Cluster) -> Result<(), String>;

/// A check that the kernel did what the scenario's design assumes beyond
/// the verdict (e.g. that ECMP spread the connects over every path).
pub type Check = fn(&Cluster, &Outcome) -> Result<(), String>;

pub struct Scenario {
    pub name: &'static str,
    pub backends: &'static [Backend],
    /// The iptables backends the nodes' rules are loaded with, one run each.
    pub tables: &'static [Tables],
    pub flow: Flow,
    /// cluster.py variant: "healthy" or "no-endpoints".
    pub variant: &'static str,
    /// A pod whose servers are never started.
    pub silent_pod: Option<&'static str>,
    pub fault: Option<Inject>,
    pub expect: Expect,
    pub check: Option<Check>,
    /// What was injected, for the table.
    pub what: &'static str,
}

const fn healthy(name: &'static str, flow: Flow) -> Scenario {
    Scenario {
        name,
        backends: BOTH,
        tables: DEFAULT_TABLES,
        flow,
        variant: "healthy",
        silent_pod: None,
        fault: None,
        expect: Expect::Reach,
        check: None,
        what: "-",
    }
}

const fn fault(
    name: &'static str,
    backends: &'static [Backend],
    flow: Flow,
    what: &'static str,
    inject: Inject,
    causes: Causes,
) -> Scenario {
    Scenario {
        name,
        backends,
        tables: DEFAULT_TABLES,
        flow,
        variant: "healthy",
        silent_pod: None,
        fault: Some(inject),
        expect: Expect::Broken(causes),
        check: None,
        what,
    }
}

const NODE1: At = At::Node("node-1");
const NODE2: At = At::Node("node-2");
const WEB2: At = At::Pod("default/web-2");
const CLIENT1: At = At::Pod("default/client-1");

/// The host-side veth of a pod.
pub fn veth(c: &Cluster, pod: &str) -> Result<String, String> {
    c.veth
        .get(pod)
        .cloned()
        .ok_or_else(|| format!("no veth for {pod}"))
}

pub fn pod_cidr(c: &Cluster, node: &str) -> Result<String, String> {
    c.node_info
        .get(node)
        .map(|i| i.1.clone())
        .ok_or_else(|| format!("no node {node}"))
}

fn web2_eth0_down(c: &Cluster) -> Result<(), String> {
    sh::ip(c.pod("default/web-2")?, "link set eth0 down").map(drop)
}

fn client_default_route_deleted(c: &Cluster) -> Result<(), String> {
    sh::ip(c.pod("default/client-1")?, "route del default").map(drop)
}

fn web2_input_drop(c: &Cluster) -> Result<(), String> {
    sh::exec(
        c.pod("default/web-2")?,
        "iptables",
        &["-I", "INPUT", "-j", "DROP"],
    )
    .map(drop)
}

fn node2_cni0_down(c: &Cluster) -> Result<(), String> {
    sh::ip(c.node("node-2")?, "link set cni0 down").map(drop)
}

fn node1_route_to_node2_deleted(c: &Cluster) -> Result<(), String> {
    sh::ip(
        c.node("node-1")?,
        &format!("route del {}", pod_cidr(c, "node-2")?),
    )
    .map(drop)
}

fn node1_route_wrong_gateway(c: &Cluster) -> Result<(), String> {
    let cidr = pod_cidr(c, "node-2")?;
    sh::ip(
        c.node("node-1")?,
        &format!("route replace {cidr} via 192.168.0.99 dev eth0"),
    )
    .map(drop)
}

fn node1_ip_forward_off(c: &Cluster) -> Result<(), String> {
    sysctl(c.node("node-1")?, "net.ipv4.ip_forward", "0")
}

fn node1_forward_drop(c: &Cluster) -> Result<(), String> {
    sh::exec(
        c.node("node-1")?,
        "iptables",
        &["-I", "FORWARD", "-j", "DROP"],
    )
    .map(drop)
}

pub fn node2_forward_drop_from_outside(c: &Cluster) -> Result<(), String> {
    sh::exec(
        c.node("node-2")?,
        "iptables",
        &["-I", "FORWARD", "-s", "203.0.113.9", "-j", "DROP"],
    )
    .map(drop)
}

fn node1_forward_drop_target_port(c: &Cluster) -> Result<(), String> {
    sh::exec(
        c.node("node-1")?,
        "iptables",
        &[
            "-I", "FORWARD", "-p", "tcp", "-m", "tcp", "--dport", "8080", "-j", "DROP",
        ],
    )
    .map(drop)
}

fn node1_fdb_node2_deleted(c: &Cluster) -> Result<(), String> {
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
            "flannel.1",
            "dst",
            &ip,
            "self",
        ],
    )
    .map(drop)
}

fn node1_flannel1_down(c: &Cluster) -> Result<(), String> {
    sh::ip(c.node("node-1")?, "link set flannel.1 down").map(drop)
}

fn node2_web2_veth_down(c: &Cluster) -> Result<(), String> {
    let veth = c.veth.get("default/web-2").ok_or("no veth for web-2")?;
    sh::ip(c.node("node-2")?, &format!("link set {veth} down")).map(drop)
}

fn node1_bridge_nf_off(c: &Cluster) -> Result<(), String> {
    sysctl(c.node("node-1")?, "net.bridge.bridge-nf-call-iptables", "0")
}

/// cni0's MTU off the pod MTU: above it on vxlan (1450), below on host-gw.
fn cni0_mtu(backend: Backend) -> u32 {
    match backend {
        Backend::Vxlan => 1500,
        Backend::HostGw | Backend::CalicoBgp | Backend::CalicoVxlan => 1400,
    }
}

fn node2_cni0_mtu(c: &Cluster) -> Result<(), String> {
    let mtu = cni0_mtu(c.backend);
    sh::ip(c.node("node-2")?, &format!("link set cni0 mtu {mtu}")).map(drop)
}

/// node-1's route to node-2's pod CIDR through node-3, up to the device.
pub fn detour_route(c: &Cluster) -> Result<String, String> {
    let cidr = pod_cidr(c, "node-2")?;
    let (n3_ip, _, n3_vtep, _) = c.node_info.get("node-3").cloned().ok_or("no node-3")?;
    Ok(match c.backend {
        Backend::Vxlan => format!("{cidr} via {n3_vtep} dev flannel.1"),
        Backend::CalicoVxlan => format!("{cidr} via {n3_vtep} dev vxlan.calico"),
        Backend::HostGw | Backend::CalicoBgp => format!("{cidr} via {n3_ip} dev eth0"),
    })
}

pub fn node1_detour_via_node3(c: &Cluster) -> Result<(), String> {
    let onlink = if matches!(c.backend, Backend::Vxlan | Backend::CalicoVxlan) {
        " onlink"
    } else {
        ""
    };
    sh::ip(
        c.node("node-1")?,
        &format!("route replace {}{onlink}", detour_route(c)?),
    )
    .map(drop)
}

const fn warn(
    name: &'static str,
    backends: &'static [Backend],
    flow: Flow,
    what: &'static str,
    inject: Inject,
    causes: Causes,
) -> Scenario {
    Scenario {
        expect: Expect::Warn(causes),
        ..fault(name, backends, flow, what, inject, causes)
    }
}

pub fn all() -> Vec<Scenario> {
    vec![
        healthy("pod-to-pod-same-node", SAME),
        healthy("pod-to-pod-cross-node", CROSS),
        healthy("pod-to-clusterip", CLUSTER_IP),
        healthy("pod-to-nodeport", NODE_PORT),
        healthy("outside-to-nodeport", OUTSIDE_TO_NODE_PORT),
        fault(
            "outside-forward-drop",
            BOTH,
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
        healthy("node-to-pod", NODE_TO_POD),
        healthy("pod-to-node", POD_TO_NODE),
        healthy("pod-to-pod-udp-full-mtu", DNS_FULL_MTU),
        fault(
            "pod-eth0-down",
            BOTH,
            CROSS,
            "web-2: ip link set eth0 down",
            web2_eth0_down,
            |_| Ok(vec![cause::device(WEB2, "eth0")]),
        ),
        Scenario {
            silent_pod: Some("default/web-2"),
            fault: None,
            what: "web-2 runs no server on 8080",
            ..fault(
                "not-listening",
                BOTH,
                CROSS,
                "",
                |_| Ok(()),
                |_| {
                    Ok(vec![Cause {
                        at: WEB2,
                        what: Entity::NoListener(8080),
                    }])
                },
            )
        },
        fault(
            "pod-default-route-deleted",
            BOTH,
            CROSS,
            "client-1: ip route del default",
            client_default_route_deleted,
            |_| {
                Ok(vec![
                    cause::no_route(CLIENT1, "default"),
                    cause::unroutable(CLIENT1, "10.244.1.7"),
                ])
            },
        ),
        fault(
            "pod-input-drop",
            BOTH,
            CROSS,
            "web-2: iptables -I INPUT -j DROP",
            web2_input_drop,
            |_| Ok(vec![cause::rule(WEB2, "INPUT", "-j DROP")]),
        ),
        fault(
            "cni0-down",
            BOTH,
            CROSS,
            "node-2: ip link set cni0 down",
            node2_cni0_down,
            |_| Ok(vec![cause::device(NODE2, "cni0")]),
        ),
        fault(
            "remote-podcidr-route-deleted",
            BOTH,
            CROSS,
            "node-1: ip route del 10.244.1.0/24",
            node1_route_to_node2_deleted,
            |c| Ok(vec![cause::no_route(NODE1, &pod_cidr(c, "node-2")?)]),
        ),
        fault(
            "route-via-wrong-gateway",
            BOTH,
            CROSS,
            "node-1: 10.244.1.0/24 via 192.168.0.99",
            node1_route_wrong_gateway,
            |_| {
                Ok(vec![cause::route(
                    NODE1,
                    "10.244.1.0/24 via 192.168.0.99 dev eth0",
                )])
            },
        ),
        fault(
            "ip-forward-off-source-node",
            BOTH,
            CROSS,
            "node-1: net.ipv4.ip_forward=0",
            node1_ip_forward_off,
            |_| Ok(cause::forwarding_off(NODE1, "cni0")),
        ),
        fault(
            "forward-drop",
            BOTH,
            CROSS,
            "node-1: iptables -I FORWARD -j DROP",
            node1_forward_drop,
            |_| Ok(vec![cause::rule(NODE1, "FORWARD", "-j DROP")]),
        ),
        fault(
            "fdb-entry-missing",
            VXLAN,
            CROSS,
            "node-1: bridge fdb del <node-2 VTEP MAC> dev flannel.1",
            node1_fdb_node2_deleted,
            |c| {
                let (.., mac) = c.node_info.get("node-2").cloned().ok_or("no node-2")?;
                Ok(vec![Cause {
                    at: NODE1,
                    what: Entity::Fdb {
                        mac,
                        dev: "flannel.1".into(),
                    },
                }])
            },
        ),
        fault(
            "flannel1-down",
            VXLAN,
            CROSS,
            "node-1: ip link set flannel.1 down",
            node1_flannel1_down,
            |_| Ok(vec![cause::device(NODE1, "flannel.1")]),
        ),
        fault(
            "veth-peer-down",
            BOTH,
            CROSS,
            "node-2: web-2's host veth down",
            node2_web2_veth_down,
            |c| Ok(vec![cause::device(NODE2, &veth(c, "default/web-2")?)]),
        ),
        Scenario {
            variant: "no-endpoints",
            fault: None,
            what: "web-1, web-2 not ready: default/web has no endpoints",
            ..fault(
                "service-no-endpoints",
                BOTH,
                CLUSTER_IP,
                "",
                |_| Ok(()),
                |c| {
                    Ok(vec![
                        Cause {
                            at: At::Cluster,
                            what: Entity::NoEndpoints("default/web"),
                        },
                        // Where the kernel answers: kube-proxy's REJECT.
                        cause::saved_rule(
                            c,
                            NODE1,
                            Some("KUBE-SERVICES"),
                            &["-d 10.96.100.10/32", "-j REJECT"],
                        )?,
                    ])
                },
            )
        },
        fault(
            "drop-service-port",
            BOTH,
            CLUSTER_IP,
            "node-1: iptables -I FORWARD -p tcp --dport 8080 -j DROP",
            node1_forward_drop_target_port,
            |_| {
                Ok(vec![cause::rule(
                    NODE1,
                    "FORWARD",
                    "-p tcp -m tcp --dport 8080 -j DROP",
                )])
            },
        ),
        fault(
            "bridge-nf-off-service",
            BOTH,
            CLUSTER_IP,
            "node-1: bridge-nf-call-iptables=0 (web-1's replies bypass conntrack)",
            node1_bridge_nf_off,
            |_| {
                Ok(vec![cause::sysctl(
                    NODE1,
                    "net.bridge.bridge-nf-call-iptables",
                )])
            },
        ),
        // Faults the kernel survives (the probes pass) but skoop rightly warns about.
        warn(
            "bridge-nf-off-pod-to-pod",
            BOTH,
            SAME,
            "node-1: bridge-nf-call-iptables=0 (kernel: bridged pod traffic still flows)",
            node1_bridge_nf_off,
            |_| {
                Ok(vec![cause::sysctl(
                    NODE1,
                    "net.bridge.bridge-nf-call-iptables",
                )])
            },
        ),
        warn(
            "cni0-mtu-mismatch",
            BOTH,
            CROSS,
            "node-2: cni0 MTU off the pod MTU (kernel: TCP handshake unaffected)",
            node2_cni0_mtu,
            |c| Ok(vec![cause::mtu(NODE2, "cni0", cni0_mtu(c.backend))]),
        ),
        // A bulk transfer, not a handshake: node-3 sees one direction of the
        // connection, and passes data only because flannel's masquerade of
        // transit pod traffic brings the replies back through it (Calico's
        // node-3 drops it as INVALID: paths.rs).
        warn(
            "detour-via-node-3",
            BOTH,
            BULK,
            "node-1: node-2's podCIDR via node-3 (kernel: node-3 forwards and masquerades)",
            node1_detour_via_node3,
            |c| Ok(vec![cause::route(NODE1, &detour_route(c)?)]),
        ),
    ]
}
