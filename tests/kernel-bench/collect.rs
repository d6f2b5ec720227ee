//! `skoop collect` against netns with known contents: the dump must carry
//! what was configured, in the form the diagnosis reads; and its cost for a
//! node with 50 pod netns.

use std::net::Ipv4Addr;
use std::time::Instant;

use skoop_netstack::dump::NodeDump;
use skoop_netstack::packet::Protocol;
use skoop_netstack::{Netstack, RouteQuery};

use super::probe::Server;
use super::sh;
use super::skoop as bin;
use super::topo::{NetnsGuard, sysctl, unique_prefix};

fn ensure(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("collected dump: {what}"))
    }
}

pub fn round_trip() -> Result<(), String> {
    let prefix = unique_prefix();
    let (host, pod) = (format!("{prefix}-host"), format!("{prefix}-pod"));
    let mut guard = NetnsGuard::default();
    guard.add(&host)?;
    guard.add(&pod)?;
    sh::ip_batch(
        &host,
        &[
            "link add br-t mtu 1400 type bridge".into(),
            "addr add 10.9.0.1/24 dev br-t".into(),
            "link set br-t up".into(),
            format!("link add vh mtu 1400 type veth peer name eth0 netns {pod}"),
            "link set vh master br-t up".into(),
            "link add vx-t address 02:00:00:00:00:07 type vxlan id 42 local 10.9.0.1 dev br-t dstport 4789 nolearning".into(),
            "addr add 10.20.0.0/32 dev vx-t".into(),
            "link set vx-t up".into(),
            "route add 10.10.0.0/16 via 10.9.0.2 dev br-t metric 50".into(),
            "route add 10.11.0.0/16 dev br-t table 100".into(),
            "route add blackhole 10.12.0.0/16".into(),
            "route add 10.13.0.0/16 nexthop via 10.9.0.2 weight 1 nexthop via 10.9.0.3 weight 2".into(),
            "route add 10.14.0.0/16 via 10.20.1.0 dev vx-t onlink".into(),
            "rule add from 10.9.0.0/24 lookup 100 pref 100".into(),
            "rule add fwmark 0x10/0xff lookup 100 pref 101".into(),
            "neigh add 10.9.0.2 lladdr 02:00:00:00:00:02 dev br-t nud permanent".into(),
            "neigh add 10.20.1.0 lladdr 02:00:00:00:00:08 dev vx-t nud permanent".into(),
        ],
    )?;
    sh::run(
        "bridge",
        &[
            "-n",
            &host,
            "fdb",
            "append",
            "02:00:00:00:00:08",
            "dev",
            "vx-t",
            "dst",
            "10.9.0.9",
            "self",
            "permanent",
        ],
    )?;
    sh::ip_batch(
        &pod,
        &[
            "link set eth0 mtu 1400".into(),
            "addr add 10.9.0.5/24 dev eth0".into(),
            "link set eth0 up".into(),
            "route add default via 10.9.0.1 dev eth0".into(),
        ],
    )?;
    sysctl(&host, "net.ipv4.ip_forward", "1")?;
    sysctl(&host, "net.ipv4.conf.vx-t.rp_filter", "2")?;
    sh::exec(
        &host,
        "iptables",
        &["-A", "FORWARD", "-p", "tcp", "--dport", "9", "-j", "DROP"],
    )?;
    sh::exec(&host, "ipset", &["create", "blocked", "hash:ip"])?;
    sh::exec(&host, "ipset", &["add", "blocked", "10.9.0.77"])?;
    guard.servers.push(Server::start(&pod, &[7070], &[7071])?);

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("node.json");
    let pod_path = format!("/run/netns/{pod}");
    bin::collect(&host, "test-node", &[("default/p".into(), pod_path)], &out)?;
    let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
    let dump: NodeDump =
        skoop_engine::bundle::parse_node(&text, "node.json").map_err(|e| format!("{e:#}"))?;
    ensure(
        dump.version == 1 && dump.node == "test-node",
        "version/node",
    )?;

    let h = Netstack::new("node test-node".into(), dump.host.clone());
    let br = h.interface("br-t").ok_or("no br-t")?;
    ensure(
        br.kind == "bridge" && br.mtu == 1400 && br.admin_up,
        "br-t kind/MTU/up",
    )?;
    ensure(
        br.addresses.iter().any(|a| a.to_string() == "10.9.0.1/24"),
        "br-t address",
    )?;
    let vh = h.interface("vh").ok_or("no vh")?;
    ensure(
        vh.kind == "veth" && vh.master.as_deref() == Some("br-t") && vh.peer_index == Some(2),
        "vh veth/master/peer",
    )?;
    let vx = h.interface("vx-t").ok_or("no vx-t")?;
    let v = vx.vxlan.as_ref().ok_or("vx-t has no vxlan attributes")?;
    ensure(
        vx.kind == "vxlan" && v.id == 42 && v.port == 4789,
        "vxlan id/port",
    )?;
    ensure(
        v.local == Some(Ipv4Addr::new(10, 9, 0, 1)) && v.dev.as_deref() == Some("br-t"),
        "vxlan local/dev",
    )?;
    ensure(vx.mac.as_deref() == Some("02:00:00:00:00:07"), "vxlan MAC")?;
    ensure(
        h.interface("lo").is_some_and(|l| l.kind == "loopback"),
        "lo is loopback",
    )?;

    let lookup = |dst: [u8; 4], src: Option<[u8; 4]>, mark: u32| {
        h.route(&RouteQuery {
            dst: Some(Ipv4Addr::from(dst)),
            src: src.map(Ipv4Addr::from),
            iif: None,
            mark,
        })
        .map_err(|e| e.to_string())
    };
    let hit = lookup([10, 10, 1, 1], None, 0)?;
    ensure(
        hit.first()
            .is_some_and(|r| r.gateway == Some(Ipv4Addr::new(10, 9, 0, 2))),
        "route 10.10/16 via 10.9.0.2",
    )?;
    let hit = lookup([10, 11, 1, 1], Some([10, 9, 0, 5]), 0)?;
    ensure(
        hit.first()
            .is_some_and(|r| r.table == 100 && r.rule_priority == 100),
        "rule from 10.9.0.0/24 → table 100",
    )?;
    let hit = lookup([10, 11, 1, 1], None, 0x10)?;
    ensure(
        hit.first()
            .is_some_and(|r| r.table == 100 && r.rule_priority == 101),
        "fwmark rule → table 100",
    )?;
    let hit = lookup([10, 13, 1, 1], None, 0)?;
    ensure(hit.len() == 2, "multipath route has two next hops")?;
    let r = dump
        .host
        .routes
        .iter()
        .find(|r| r.dst.to_string() == "10.10.0.0/16")
        .ok_or("no 10.10/16 route")?;
    ensure(
        r.metric == 50 && r.proto.as_deref() == Some("boot"),
        "metric/proto",
    )?;
    let r = dump
        .host
        .routes
        .iter()
        .find(|r| r.dst.to_string() == "10.12.0.0/16")
        .ok_or("no blackhole")?;
    ensure(r.kind == "blackhole", "blackhole type")?;
    let r = dump
        .host
        .routes
        .iter()
        .find(|r| r.dst.to_string() == "10.14.0.0/16")
        .ok_or("no onlink route")?;
    ensure(r.onlink && r.dev.as_deref() == Some("vx-t"), "onlink route")?;
    let r = dump
        .host
        .routes
        .iter()
        .find(|r| r.dst.to_string() == "10.13.0.0/16")
        .ok_or("no ECMP route")?;
    ensure(
        r.nexthops.iter().map(|n| n.weight).collect::<Vec<_>>() == [1, 2],
        "ECMP weights",
    )?;
    ensure(
        dump.host
            .routes
            .iter()
            .any(|r| r.table == 255 && r.kind == "local" && r.dst.to_string() == "10.9.0.1/32"),
        "local table route",
    )?;
    let fw = dump
        .host
        .rules
        .iter()
        .find(|r| r.priority == 101)
        .ok_or("no rule 101")?;
    ensure(
        fw.fwmark == Some(0x10) && fw.fwmask == Some(0xff) && fw.table == Some(100),
        "fwmark rule fields",
    )?;

    let n = h
        .neighbour("br-t", Ipv4Addr::new(10, 9, 0, 2))
        .map_err(|e| e.to_string())?;
    ensure(
        n.is_some_and(|n| {
            n.state == "PERMANENT" && n.lladdr.as_deref() == Some("02:00:00:00:00:02")
        }),
        "neighbour",
    )?;
    let fdb = h.fdb("vx-t").map_err(|e| e.to_string())?;
    ensure(
        fdb.iter()
            .any(|e| e.mac == "02:00:00:00:00:08" && e.dst == Some(Ipv4Addr::new(10, 9, 0, 9))),
        "vxlan FDB dst",
    )?;
    ensure(h.sysctl("net.ipv4.ip_forward") == Some("1"), "ip_forward")?;
    ensure(
        h.sysctl("net.ipv4.conf.vx-t.rp_filter") == Some("2"),
        "per-interface rp_filter",
    )?;
    ensure(
        h.sysctl("net.ipv4.conf.br-t.forwarding") == Some("1"),
        "per-interface forwarding",
    )?;
    let rules = dump
        .host
        .iptables
        .as_ref()
        .map(|t| t.text())
        .unwrap_or_default();
    ensure(
        rules.contains("-A FORWARD -p tcp -m tcp --dport 9 -j DROP"),
        "iptables-save text",
    )?;
    ensure(
        dump.host
            .ipsets
            .as_deref()
            .unwrap_or_default()
            .contains("add blocked 10.9.0.77"),
        "ipset save text",
    )?;
    ensure(
        dump.host.ipvs.is_some() || dump.host.absent.contains_key("ipvs"),
        "IPVS or its absence",
    )?;

    let p = dump.pods.first().ok_or("no pod netns in the dump")?;
    ensure(p.namespace == "default" && p.name == "p", "pod key")?;
    let ps = Netstack::new("pod default/p".into(), p.netns.clone());
    let eth0 = ps.interface("eth0").ok_or("pod has no eth0")?;
    ensure(
        eth0.kind == "veth" && eth0.mtu == 1400 && eth0.peer_index == Some(vh.index),
        "pod eth0 veth, peer = vh",
    )?;
    ensure(
        ps.listening(Protocol::Tcp, Ipv4Addr::new(10, 9, 0, 5), 7070) == Ok(true),
        "TCP 7070 listening",
    )?;
    ensure(
        ps.listening(Protocol::Udp, Ipv4Addr::new(10, 9, 0, 5), 7071) == Ok(true),
        "UDP 7071 bound",
    )?;
    ensure(
        ps.listening(Protocol::Tcp, Ipv4Addr::new(10, 9, 0, 5), 7071) == Ok(false),
        "TCP 7071 not listening",
    )?;
    ensure(ps.iptables_text_is_empty(), "pod has no iptables rules")?;
    Ok(())
}

trait EmptyRules {
    fn iptables_text_is_empty(&self) -> bool;
}

impl EmptyRules for Netstack {
    fn iptables_text_is_empty(&self) -> bool {
        self.dump
            .iptables
            .as_ref()
            .is_some_and(|t| !t.contains("-A "))
    }
}

/// A node netns with a bridge and 50 pod netns on veths: how long does
/// `skoop collect` take for it, and for the node alone?
pub fn fifty_pods() -> Result<(), String> {
    let prefix = unique_prefix();
    let node = format!("{prefix}-node");
    let mut guard = NetnsGuard::default();
    guard.add(&node)?;
    sh::ip_batch(
        &node,
        &[
            "link add cni0 type bridge".into(),
            "addr add 10.244.0.1/24 dev cni0".into(),
            "link set cni0 up".into(),
        ],
    )?;
    let mut pods = Vec::new();
    let mut node_cmds = Vec::new();
    for i in 0..50 {
        let pns = format!("{prefix}-p{i}");
        guard.add(&pns)?;
        node_cmds.push(format!(
            "link add veth{i} type veth peer name eth0 netns {pns}"
        ));
        node_cmds.push(format!("link set veth{i} master cni0 up"));
        pods.push((format!("default/pod-{i}"), pns));
    }
    sh::ip_batch(&node, &node_cmds)?;
    for (i, (_, pns)) in pods.iter().enumerate() {
        sh::ip_batch(
            pns,
            &[
                format!("addr add 10.244.0.{}/24 dev eth0", i + 10),
                "link set eth0 up".into(),
                "route add default via 10.244.0.1 dev eth0".into(),
            ],
        )?;
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = dir.path().join("node.json");
    let alone = bin::collect(&node, "node", &[], &out)?;
    let start = Instant::now();
    bin::collect(&node, "node", &pods, &out)?;
    let all = start.elapsed();
    let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
    let dump: NodeDump =
        skoop_engine::bundle::parse_node(&text, "node.json").map_err(|e| format!("{e:#}"))?;
    ensure(dump.pods.len() == 50, "50 pod netns")?;
    ensure(
        dump.host
            .interfaces
            .iter()
            .filter(|i| i.kind == "veth")
            .count()
            == 50,
        "50 host veths",
    )?;
    // Straight to stderr (not println!, which the harness captures).
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "skoop collect: node netns alone {:.0} ms; node + 50 pod netns {:.0} ms ({:.1} ms per pod netns)",
        alone.as_secs_f64() * 1000.0,
        all.as_secs_f64() * 1000.0,
        (all - alone).as_secs_f64() * 1000.0 / 50.0
    );
    Ok(())
}
