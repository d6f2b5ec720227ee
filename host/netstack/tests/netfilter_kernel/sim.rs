//! The simulator's fate for a probe: the router's kernel pipeline — the same
//! `Netstack::forward` the diagnosis walks (PREROUTING → routing → FORWARD →
//! POSTROUTING, or INPUT for a local destination) — on the router's own
//! `iptables-save`/`ipset save`, and for TCP the SYN-ACK's way back through the
//! same conntrack (a dropped reply means the connect times out).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};

use ipnet::Ipv4Net;
use skoop_netstack::dump::{Interface, NetnsDump, Route, Rule};
use skoop_netstack::netfilter::Verdict;
use skoop_netstack::packet::{Packet, Protocol};
use skoop_netstack::{
    Conntrack, DropCause, Fate as PipelineFate, ForwardQuery, Forwarded, Netstack, RouteKind,
};

use crate::fate::{Fate, Host};
use crate::lab::{
    CLIENT_A, CLIENT_B, DEAD_GATEWAY, ROUTER_SERVER_ADDR, SERVER_ADDRS, SERVER_IF, TCP_PORTS,
    UDP_PORTS,
};

/// The simulator's answer for one probe.
#[derive(Debug, Default)]
pub struct SimFates {
    pub fates: BTreeSet<Fate>,
    pub uncertain: bool,
    pub notes: Vec<String>,
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap_or_default()
}

fn iface(index: u32, name: &str, addrs: &[Ipv4Addr]) -> Interface {
    Interface {
        index,
        name: name.into(),
        kind: if name == "lo" { "loopback" } else { "veth" }.into(),
        mtu: 1500,
        admin_up: true,
        oper_state: "UP".into(),
        master: None,
        peer_index: None,
        addresses: addrs
            .iter()
            .map(|a| Ipv4Net::new(*a, if name == "lo" { 8 } else { 24 }).unwrap_or_default())
            .collect(),
        mac: None,
        vxlan: None,
        ..Interface::default()
    }
}

fn route(table: u32, kind: &str, dst: &str, gw: Option<Ipv4Addr>, dev: &str) -> Route {
    Route {
        table,
        kind: kind.into(),
        dst: net(dst),
        gateway: gw,
        dev: Some(dev.into()),
        scope: None,
        proto: None,
        metric: 0,
        prefsrc: None,
        onlink: false,
        nexthops: vec![],
    }
}

/// The router netns as a collector would dump it.
pub fn router(iptables: String, ipsets: String, rules: Vec<Rule>, extra: Vec<Route>) -> Netstack {
    let mut routes = vec![
        route(254, "unicast", "0.0.0.0/0", Some(DEAD_GATEWAY), SERVER_IF),
        route(254, "unicast", "10.99.2.0/24", None, SERVER_IF),
        route(255, "local", "127.0.0.0/8", None, "lo"),
    ];
    for c in [CLIENT_A, CLIENT_B] {
        routes.push(route(
            254,
            "unicast",
            &format!(
                "{}/24",
                Ipv4Net::new(c.addr, 24)
                    .map(|n| n.network())
                    .unwrap_or(c.addr)
            ),
            None,
            c.router_if,
        ));
        routes.push(route(
            255,
            "local",
            &format!("{}/32", c.router_addr),
            None,
            c.router_if,
        ));
    }
    routes.push(route(
        255,
        "local",
        &format!("{ROUTER_SERVER_ADDR}/32"),
        None,
        SERVER_IF,
    ));
    routes.extend(extra);
    let dump = NetnsDump {
        interfaces: vec![
            iface(1, "lo", &[Ipv4Addr::LOCALHOST]),
            iface(2, CLIENT_A.router_if, &[CLIENT_A.router_addr]),
            iface(3, CLIENT_B.router_if, &[CLIENT_B.router_addr]),
            iface(4, SERVER_IF, &[ROUTER_SERVER_ADDR]),
        ],
        routes,
        rules,
        iptables: Some(iptables.into()),
        ipsets: Some(ipsets),
        // As the lab sets the router up (lab.rs): forwarding on, no rp_filter.
        sysctls: ["all", CLIENT_A.router_if, CLIENT_B.router_if, SERVER_IF]
            .iter()
            .flat_map(|i| {
                [
                    (format!("net.ipv4.conf.{i}.forwarding"), "1".to_string()),
                    (format!("net.ipv4.conf.{i}.rp_filter"), "0".to_string()),
                ]
            })
            .chain([("net.ipv4.ip_forward".to_string(), "1".to_string())])
            .collect(),
        ..Default::default()
    };
    Netstack::new("node router".into(), dump)
}

fn listens(p: &Packet) -> bool {
    match p.protocol {
        Protocol::Tcp => TCP_PORTS.contains(&p.dport),
        Protocol::Udp => UDP_PORTS.contains(&p.dport),
        // The kernel scenarios serve no SCTP.
        Protocol::Icmp | Protocol::Sctp | Protocol::Ipip => false,
    }
}

/// What the client sees of a dropped branch: an ICMP error (rejected) or nothing.
fn dropped_fate(cause: &DropCause, reply: bool) -> Fate {
    let rejected = match cause {
        DropCause::Netfilter { verdict, .. } => *verdict == Verdict::Reject,
        DropCause::NoRoute => true,
        DropCause::Route(r) => r.kind != RouteKind::Blackhole,
        _ => false,
    };
    // A rejected SYN-ACK leaves the client waiting.
    if rejected && !reply {
        Fate::Rejected
    } else {
        Fate::Dropped
    }
}

/// The router's kernel pipeline (the one the diagnosis walks), one probe
/// and, for TCP, its SYN-ACK through the same conntrack.
struct Sim<'a> {
    router: &'a Netstack,
    ct: Conntrack,
    out: SimFates,
}

impl Sim<'_> {
    fn walk(&mut self, q: &ForwardQuery) -> Vec<Forwarded> {
        let outs = self.router.forward(&mut self.ct, q);
        for o in &outs {
            self.out.uncertain |= o.uncertain;
            for n in &o.notes {
                if !self.out.notes.contains(n) {
                    self.out.notes.push(n.clone());
                }
            }
        }
        outs
    }

    /// The SYN-ACK of a delivered TCP probe, back toward the client; true
    /// when it leaves on the client's interface.
    fn reply_passes(&mut self, delivered: &Packet, from_if: Option<&str>, to_if: &str) -> bool {
        if delivered.protocol != Protocol::Tcp {
            return true;
        }
        let r = Packet {
            src: delivered.dst,
            sport: delivered.dport,
            dst: delivered.src,
            dport: delivered.sport,
            mark: 0,
            reply: true,
            ..*delivered
        };
        let q = ForwardQuery {
            packet: r,
            iif: from_if.map(str::to_string),
            l2_next_hop: None,
            tos: 0,
            stand_in: Vec::new(),
            ct_invalid: false,
        };
        self.walk(&q)
            .iter()
            .any(|o| matches!(&o.fate, PipelineFate::Transmit { oif, .. } if oif.as_str() == to_if))
    }

    fn probe(&mut self, client_if: &str, p: &Packet) {
        let q = ForwardQuery {
            packet: *p,
            iif: Some(client_if.to_string()),
            l2_next_hop: None,
            tos: 0,
            stand_in: Vec::new(),
            ct_invalid: false,
        };
        for o in self.walk(&q) {
            let p4 = o.packet;
            match &o.fate {
                PipelineFate::Drop(cause) => {
                    self.out.fates.insert(dropped_fate(cause, p.reply));
                }
                PipelineFate::Deliver { .. } => {
                    let fate = if !listens(&p4) {
                        Fate::Rejected
                    } else if self.reply_passes(&p4, None, client_if) {
                        Fate::Delivered {
                            host: Host::Router,
                            dst: SocketAddrV4::new(p4.dst, p4.dport),
                            src: p4.src,
                        }
                    } else {
                        Fate::Dropped
                    };
                    self.out.fates.insert(fate);
                }
                PipelineFate::Transmit { oif, next_hop } => {
                    let on_server = oif == SERVER_IF
                        && SERVER_ADDRS.contains(next_hop)
                        && SERVER_ADDRS.contains(&p4.dst);
                    let fate = if !on_server {
                        Fate::Dropped
                    } else if !listens(&p4) {
                        Fate::Rejected
                    } else if self.reply_passes(&p4, Some(SERVER_IF), client_if) {
                        Fate::Delivered {
                            host: Host::Server,
                            dst: SocketAddrV4::new(p4.dst, p4.dport),
                            src: p4.src,
                        }
                    } else {
                        Fate::Dropped
                    };
                    self.out.fates.insert(fate);
                }
            }
        }
    }
}

/// Simulates one probe arriving at the router on `client_if`.
pub fn simulate(router: &Netstack, client_if: &str, p: &Packet) -> Result<SimFates, String> {
    let mut sim = Sim {
        router,
        ct: Conntrack::default(),
        out: SimFates::default(),
    };
    sim.probe(client_if, p);
    Ok(sim.out)
}
