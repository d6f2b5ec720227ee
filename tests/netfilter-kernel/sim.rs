//! The simulator's fate for a probe: the router's hooks in kernel order
//! (PREROUTING → routing → FORWARD → POSTROUTING, or INPUT for a local
//! destination) on the router's own `iptables-save`/`ipset save`, and for TCP
//! the SYN-ACK's way back (a dropped reply means the connect times out).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};

use ipnet::Ipv4Net;
use skoop_netstack::dump::{Interface, NetnsDump, Route, Rule};
use skoop_netstack::netfilter::{ConnState, Hook, Verdict};
use skoop_netstack::packet::{Packet, Protocol};
use skoop_netstack::{Netstack, RouteKind, RouteQuery};

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
        iptables: Some(iptables),
        ipsets: Some(ipsets),
        ..Default::default()
    };
    Netstack::new("node router".into(), dump)
}

fn listens(p: &Packet) -> bool {
    match p.protocol {
        Protocol::Tcp => TCP_PORTS.contains(&p.dport),
        Protocol::Udp => UDP_PORTS.contains(&p.dport),
        Protocol::Icmp => false,
    }
}

struct Sim<'a> {
    router: &'a Netstack,
    out: SimFates,
}

impl Sim<'_> {
    fn hook(
        &mut self,
        hook: Hook,
        p: &Packet,
        iif: Option<&str>,
        oif: Option<&str>,
        conn: Option<&ConnState>,
    ) -> Result<Vec<(Packet, ConnState)>, String> {
        let fresh = ConnState::at(hook, p);
        let outs = self
            .router
            .netfilter_conn(hook, p, iif, oif, conn.unwrap_or(&fresh))
            .map_err(|e| e.to_string())?;
        let mut pass = Vec::new();
        for o in outs {
            if o.uncertain {
                self.out.uncertain = true;
            }
            for n in o.notes {
                if !self.out.notes.contains(&n) {
                    self.out.notes.push(n);
                }
            }
            match o.verdict {
                Verdict::Accept => pass.push((o.packet, o.conn)),
                Verdict::Drop => {
                    self.out.fates.insert(Fate::Dropped);
                }
                // A rejected SYN-ACK leaves the client waiting.
                Verdict::Reject => {
                    self.out.fates.insert(if p.reply {
                        Fate::Dropped
                    } else {
                        Fate::Rejected
                    });
                }
            }
        }
        Ok(pass)
    }

    /// The SYN-ACK of a delivered TCP probe, back to the client; true when it arrives.
    fn reply_passes(
        &mut self,
        delivered: &Packet,
        client: Ipv4Addr,
        sport: u16,
        from_if: Option<&str>,
        to_if: &str,
        local: bool,
    ) -> Result<bool, String> {
        if delivered.protocol != Protocol::Tcp {
            return Ok(true);
        }
        let r = Packet {
            src: delivered.dst,
            sport: delivered.dport,
            dst: client,
            dport: sport,
            protocol: Protocol::Tcp,
            mark: 0,
            encap: None,
            reply: true,
            tos: 0,
        };
        let first = if local {
            self.hook(Hook::Output, &r, None, Some(to_if), None)?
        } else {
            let mut fwd = Vec::new();
            for (p, c) in self.hook(Hook::Prerouting, &r, from_if, None, None)? {
                fwd.extend(self.hook(Hook::Forward, &p, from_if, Some(to_if), Some(&c))?);
            }
            fwd
        };
        let mut ok = false;
        for (p, c) in first {
            let post = if local { None } else { from_if };
            ok |= !self
                .hook(Hook::Postrouting, &p, post, Some(to_if), Some(&c))?
                .is_empty();
        }
        Ok(ok)
    }

    fn probe(&mut self, client_if: &str, p: &Packet) -> Result<(), String> {
        let iif = Some(client_if);
        for (p1, c1) in self.hook(Hook::Prerouting, p, iif, None, None)? {
            if self.router.is_local(p1.dst) {
                for (p2, _) in self.hook(Hook::Input, &p1, iif, None, Some(&c1))? {
                    if !listens(&p2) {
                        self.out.fates.insert(Fate::Rejected);
                    } else if self.reply_passes(&p2, p.src, p.sport, None, client_if, true)? {
                        self.out.fates.insert(Fate::Delivered {
                            host: Host::Router,
                            dst: SocketAddrV4::new(p2.dst, p2.dport),
                            src: p2.src,
                        });
                    } else {
                        self.out.fates.insert(Fate::Dropped);
                    }
                }
                continue;
            }
            let q = RouteQuery {
                dst: Some(p1.dst),
                src: Some(p1.src),
                iif: Some(client_if.to_string()),
                mark: p1.mark,
            };
            let hits = self.router.route(&q).map_err(|e| e.to_string())?;
            if hits.is_empty() {
                self.out.fates.insert(Fate::Rejected);
            }
            for h in hits {
                match h.kind {
                    RouteKind::Blackhole => {
                        self.out.fates.insert(Fate::Dropped);
                        continue;
                    }
                    RouteKind::Unreachable | RouteKind::Prohibit | RouteKind::Throw => {
                        self.out.fates.insert(Fate::Rejected);
                        continue;
                    }
                    _ => {}
                }
                let oif = h.dev.clone().unwrap_or_default();
                for (p3, c3) in self.hook(Hook::Forward, &p1, iif, Some(&oif), Some(&c1))? {
                    for (p4, _) in self.hook(Hook::Postrouting, &p3, iif, Some(&oif), Some(&c3))? {
                        let next = h.gateway.unwrap_or(p4.dst);
                        let on_server = oif == SERVER_IF
                            && SERVER_ADDRS.contains(&next)
                            && SERVER_ADDRS.contains(&p4.dst);
                        if !on_server {
                            self.out.fates.insert(Fate::Dropped);
                        } else if !listens(&p4) {
                            self.out.fates.insert(Fate::Rejected);
                        } else if self.reply_passes(
                            &p4,
                            p.src,
                            p.sport,
                            Some(&oif),
                            client_if,
                            false,
                        )? {
                            self.out.fates.insert(Fate::Delivered {
                                host: Host::Server,
                                dst: SocketAddrV4::new(p4.dst, p4.dport),
                                src: p4.src,
                            });
                        } else {
                            self.out.fates.insert(Fate::Dropped);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Simulates one probe arriving at the router on `client_if`.
pub fn simulate(router: &Netstack, client_if: &str, p: &Packet) -> Result<SimFates, String> {
    let mut sim = Sim {
        router,
        out: SimFates::default(),
    };
    sim.probe(client_if, p)?;
    Ok(sim.out)
}
