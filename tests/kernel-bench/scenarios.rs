//! The bench's scenarios: a flow, at most one injected fault, and what skoop
//! must say about it.

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
            Probe::Tcp | Probe::TcpEveryBackend | Probe::TcpBound => "tcp",
            Probe::UdpFullMtu => "udp",
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

const SAME: Flow = pod_flow("10.244.0.6", 8080);
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
const OUTSIDE_TO_NODE_PORT: Flow = Flow {
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
const DNS_FULL_MTU: Flow = Flow {
    probe: Probe::UdpFullMtu,
    ..pod_flow("10.244.1.9", 53)
};

/// What skoop must say.
#[derive(Clone, Copy)]
pub enum Expect {
    /// skoop's verdict must equal the kernel's; when both say broken, a
    /// CRITICAL/FATAL suspicion must contain all words of one alternative.
    /// The scenario is designed so that the kernel breaks the flow exactly
    /// when alternatives are given (none: the kernel must reach it).
    Agree(&'static [&'static [&'static str]]),
    /// The kernel survives but skoop rightly warns: exit 0 and a WARNING with
    /// all words of one alternative.
    Warn(&'static [&'static [&'static str]]),
}

impl Expect {
    /// The kernel verdict the scenario was designed for.
    pub fn kernel_reaches(&self) -> bool {
        match self {
            Expect::Agree(cause) => cause.is_empty(),
            Expect::Warn(_) => true,
        }
    }
}

pub type Inject = fn(&Cluster) -> Result<(), String>;

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
    /// What was injected, for the table.
    pub what: &'static str,
}

const HEALTHY: Expect = Expect::Agree(&[]);

const fn healthy(name: &'static str, flow: Flow) -> Scenario {
    Scenario {
        name,
        backends: BOTH,
        tables: DEFAULT_TABLES,
        flow,
        variant: "healthy",
        silent_pod: None,
        fault: None,
        expect: HEALTHY,
        what: "-",
    }
}

const fn fault(
    name: &'static str,
    backends: &'static [Backend],
    flow: Flow,
    what: &'static str,
    inject: Inject,
    cause: &'static [&'static [&'static str]],
) -> Scenario {
    Scenario {
        name,
        backends,
        tables: DEFAULT_TABLES,
        flow,
        variant: "healthy",
        silent_pod: None,
        fault: Some(inject),
        expect: Expect::Agree(cause),
        what,
    }
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

fn node2_forward_drop_from_outside(c: &Cluster) -> Result<(), String> {
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

fn client_mtu_above_path(c: &Cluster) -> Result<(), String> {
    // vxlan: the plain Ethernet MTU, 50 bytes more than flannel.1 carries;
    // host-gw: jumbo frames the node's veth and eth0 (1500) cannot carry.
    let mtu = match c.backend {
        Backend::Vxlan => 1500,
        Backend::HostGw | Backend::CalicoBgp | Backend::CalicoVxlan => 9000,
    };
    sh::ip(
        c.pod("default/client-1")?,
        &format!("link set eth0 mtu {mtu}"),
    )
    .map(drop)
}

fn node1_bridge_nf_off(c: &Cluster) -> Result<(), String> {
    sysctl(c.node("node-1")?, "net.bridge.bridge-nf-call-iptables", "0")
}

fn node2_cni0_mtu(c: &Cluster) -> Result<(), String> {
    let mtu = match c.backend {
        Backend::Vxlan => 1500,
        Backend::HostGw | Backend::CalicoBgp | Backend::CalicoVxlan => 1400,
    };
    sh::ip(c.node("node-2")?, &format!("link set cni0 mtu {mtu}")).map(drop)
}

fn node1_flannel1_mtu_below_pods(c: &Cluster) -> Result<(), String> {
    // (flannel.1 above 1450 is refused by the kernel: a VXLAN device over
    // eth0 1500 cannot carry more.)
    sh::ip(c.node("node-1")?, "link set flannel.1 mtu 1400").map(drop)
}

fn node1_detour_via_node3(c: &Cluster) -> Result<(), String> {
    let cidr = pod_cidr(c, "node-2")?;
    let (n3_ip, _, n3_vtep, _) = c.node_info.get("node-3").cloned().ok_or("no node-3")?;
    let route = match c.backend {
        Backend::Vxlan => format!("route replace {cidr} via {n3_vtep} dev flannel.1 onlink"),
        Backend::HostGw | Backend::CalicoBgp | Backend::CalicoVxlan => {
            format!("route replace {cidr} via {n3_ip} dev eth0")
        }
    };
    sh::ip(c.node("node-1")?, &route).map(drop)
}

const fn warn(
    name: &'static str,
    backends: &'static [Backend],
    flow: Flow,
    what: &'static str,
    inject: Inject,
    words: &'static [&'static [&'static str]],
) -> Scenario {
    Scenario {
        name,
        backends,
        tables: DEFAULT_TABLES,
        flow,
        variant: "healthy",
        silent_pod: None,
        fault: Some(inject),
        expect: Expect::Warn(words),
        what,
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
            &[&["node-2", "drop"]],
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
            &[&["web-2", "eth0"]],
        ),
        Scenario {
            name: "not-listening",
            backends: BOTH,
            tables: DEFAULT_TABLES,
            flow: CROSS,
            variant: "healthy",
            silent_pod: Some("default/web-2"),
            fault: None,
            expect: Expect::Agree(&[&["web-2", "8080"], &["web-2", "listen"]]),
            what: "web-2 runs no server on 8080",
        },
        fault(
            "pod-default-route-deleted",
            BOTH,
            CROSS,
            "client-1: ip route del default",
            client_default_route_deleted,
            &[&["client-1", "route"]],
        ),
        fault(
            "pod-input-drop",
            BOTH,
            CROSS,
            "web-2: iptables -I INPUT -j DROP",
            web2_input_drop,
            &[&["web-2", "drop"]],
        ),
        fault(
            "cni0-down",
            BOTH,
            CROSS,
            "node-2: ip link set cni0 down",
            node2_cni0_down,
            &[&["cni0"]],
        ),
        fault(
            "remote-podcidr-route-deleted",
            BOTH,
            CROSS,
            "node-1: ip route del 10.244.1.0/24",
            node1_route_to_node2_deleted,
            &[&["node-1", "route"], &["node-1", "10.244.1.0/24"]],
        ),
        fault(
            "route-via-wrong-gateway",
            BOTH,
            CROSS,
            "node-1: 10.244.1.0/24 via 192.168.0.99",
            node1_route_wrong_gateway,
            &[&["192.168.0.99"]],
        ),
        fault(
            "ip-forward-off-source-node",
            BOTH,
            CROSS,
            "node-1: net.ipv4.ip_forward=0",
            node1_ip_forward_off,
            &[&["node-1", "ip_forward"], &["node-1", "forwarding"]],
        ),
        fault(
            "forward-drop",
            BOTH,
            CROSS,
            "node-1: iptables -I FORWARD -j DROP",
            node1_forward_drop,
            &[&["node-1", "drop"]],
        ),
        fault(
            "fdb-entry-missing",
            VXLAN,
            CROSS,
            "node-1: bridge fdb del <node-2 VTEP MAC> dev flannel.1",
            node1_fdb_node2_deleted,
            &[&["node-1", "fdb"]],
        ),
        fault(
            "flannel1-down",
            VXLAN,
            CROSS,
            "node-1: ip link set flannel.1 down",
            node1_flannel1_down,
            &[&["flannel.1"], &["node-1", "route"]],
        ),
        fault(
            "veth-peer-down",
            BOTH,
            CROSS,
            "node-2: web-2's host veth down",
            node2_web2_veth_down,
            &[&["web-2", "veth"], &["node-2", "veth"], &["web-2", "peer"]],
        ),
        fault(
            "pod-mtu-above-path-mtu",
            BOTH,
            DNS_FULL_MTU,
            "client-1: eth0 MTU above the path MTU (vxlan 1500, host-gw 9000)",
            client_mtu_above_path,
            &[&["mtu"]],
        ),
        Scenario {
            name: "service-no-endpoints",
            backends: BOTH,
            tables: DEFAULT_TABLES,
            flow: CLUSTER_IP,
            variant: "no-endpoints",
            silent_pod: None,
            fault: None,
            expect: Expect::Agree(&[&["endpoint"]]),
            what: "web-1, web-2 not ready: default/web has no endpoints",
        },
        fault(
            "drop-service-port",
            BOTH,
            CLUSTER_IP,
            "node-1: iptables -I FORWARD -p tcp --dport 8080 -j DROP",
            node1_forward_drop_target_port,
            &[&["node-1", "8080", "drop"]],
        ),
        fault(
            "flannel1-mtu-below-pod-mtu",
            VXLAN,
            DNS_FULL_MTU,
            "node-1: flannel.1 MTU 1400 < pod MTU 1450",
            node1_flannel1_mtu_below_pods,
            &[&["flannel.1", "mtu"]],
        ),
        fault(
            "bridge-nf-off-service",
            BOTH,
            CLUSTER_IP,
            "node-1: bridge-nf-call-iptables=0 (web-1's replies bypass conntrack)",
            node1_bridge_nf_off,
            &[&["node-1", "bridge-nf-call-iptables"]],
        ),
        // Faults the kernel survives (the probes pass) but skoop rightly warns about.
        warn(
            "bridge-nf-off-pod-to-pod",
            BOTH,
            SAME,
            "node-1: bridge-nf-call-iptables=0 (kernel: bridged pod traffic still flows)",
            node1_bridge_nf_off,
            &[&["net.bridge.bridge-nf-call-iptables"]],
        ),
        warn(
            "cni0-mtu-mismatch",
            BOTH,
            CROSS,
            "node-2: cni0 MTU off the pod MTU (kernel: TCP handshake unaffected)",
            node2_cni0_mtu,
            &[&["cni0", "mtu"]],
        ),
        warn(
            "detour-via-node-3",
            BOTH,
            CROSS,
            "node-1: node-2's podCIDR via node-3 (kernel: node-3 forwards it on)",
            node1_detour_via_node3,
            &[&["node-3"]],
        ),
    ]
}
