//! IPVS (kube-proxy ipvs mode): which virtual service a packet hits and
//! which real servers it may go to, as the kernel's `ip_vs_service_find`
//! and schedulers decide.
//!
//! Lookup order: a firewall-mark service for the packet's mark (the whole
//! mark, no mask), then protocol + VIP + port, then a port-0 (all ports)
//! service on the VIP. Every real server with weight > 0 can be scheduled for
//! a new connection, so each is a branch; weight-0 servers are quiesced and
//! listed apart. A service without a schedulable server rejects (ICMP port
//! unreachable).

use std::fmt::Write as _;

use crate::dump::{IpvsRealServer, IpvsService};
use crate::packet::{Packet, Protocol};

/// One real server a new connection may be scheduled to.
#[derive(Debug, Clone)]
pub struct IpvsBranch {
    pub real_server: IpvsRealServer,
    /// The packet as it leaves IPVS: destination rewritten for Masq (NAT);
    /// unchanged for Route (DR) and Tunnel.
    pub packet: Packet,
}

/// The virtual service a packet hit.
#[derive(Debug, Clone)]
pub struct IpvsMatch {
    pub service: IpvsService,
    /// The service as `ipvsadm -Ln` prints it, e.g. `TCP  10.96.0.10:80 rr`.
    pub text: String,
    /// Every schedulable real server (weight > 0).
    pub branches: Vec<IpvsBranch>,
    /// Real servers with weight 0 (never chosen for new connections).
    pub quiesced: Vec<IpvsRealServer>,
}

impl IpvsMatch {
    /// No real server can take a new connection: the kernel rejects it.
    pub fn rejects(&self) -> bool {
        self.branches.is_empty()
    }
}

fn proto_of(s: &IpvsService) -> Option<Protocol> {
    s.protocol.as_deref().and_then(Protocol::parse)
}

/// A service as `ipvsadm -Ln` prints its header line.
pub fn render_service(s: &IpvsService) -> String {
    let mut out = String::new();
    match (s.fwmark, s.address) {
        (Some(m), _) => {
            let _ = write!(out, "FWM  {m}");
        }
        (None, addr) => {
            let proto = s.protocol.as_deref().unwrap_or("?").to_ascii_uppercase();
            let addr = addr.map_or_else(|| "?".to_string(), |a| a.to_string());
            let _ = write!(out, "{proto}  {addr}:{}", s.port.unwrap_or(0));
        }
    }
    let _ = write!(out, " {}", s.scheduler);
    out
}

/// A real server as `ipvsadm -Ln` prints it.
pub fn render_real_server(r: &IpvsRealServer) -> String {
    format!("-> {}:{} {} {}", r.address, r.port, r.forward, r.weight)
}

fn by_vip(services: &[IpvsService], p: &Packet, port: u16) -> Option<usize> {
    services.iter().position(|s| {
        s.fwmark.is_none()
            && proto_of(s) == Some(p.protocol)
            && s.address == Some(p.dst)
            && s.port.unwrap_or(0) == port
    })
}

fn find(services: &[IpvsService], p: &Packet) -> Option<usize> {
    if p.mark != 0
        && let Some(i) = services.iter().position(|s| s.fwmark == Some(p.mark))
    {
        return Some(i);
    }
    if p.protocol == Protocol::Icmp {
        return None;
    }
    by_vip(services, p, p.dport).or_else(|| by_vip(services, p, 0))
}

/// The service `packet` (the first packet of a connection) hits, if any.
pub fn lookup(services: &[IpvsService], packet: &Packet) -> Option<IpvsMatch> {
    let svc = &services[find(services, packet)?];
    let mut branches = Vec::new();
    let mut quiesced = Vec::new();
    for rs in &svc.real_servers {
        if rs.weight == 0 {
            quiesced.push(rs.clone());
            continue;
        }
        let mut out = *packet;
        if rs.forward.eq_ignore_ascii_case("masq") {
            out.dst = rs.address;
            // A port-0 service keeps the packet's port when the server's is 0.
            if rs.port != 0 {
                out.dport = rs.port;
            }
        }
        branches.push(IpvsBranch {
            real_server: rs.clone(),
            packet: out,
        });
    }
    Some(IpvsMatch {
        service: svc.clone(),
        text: render_service(svc),
        branches,
        quiesced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netfilter::test_util::{ip, tcp, udp};

    fn rs(addr: &str, port: u16, weight: u32) -> IpvsRealServer {
        IpvsRealServer {
            address: ip(addr),
            port,
            weight,
            forward: "Masq".into(),
        }
    }

    fn svc(proto: &str, vip: &str, port: u16, servers: Vec<IpvsRealServer>) -> IpvsService {
        IpvsService {
            protocol: Some(proto.into()),
            address: Some(ip(vip)),
            port: Some(port),
            fwmark: None,
            scheduler: "rr".into(),
            real_servers: servers,
        }
    }

    fn services() -> Vec<IpvsService> {
        vec![
            svc(
                "TCP",
                "10.96.0.10",
                80,
                vec![
                    rs("10.244.1.5", 8080, 1),
                    rs("10.244.2.7", 8080, 1),
                    rs("10.244.3.9", 8080, 0),
                ],
            ),
            svc("udp", "10.96.0.53", 53, vec![rs("10.244.1.6", 53, 1)]),
            svc("tcp", "10.96.0.20", 443, vec![rs("10.244.1.8", 8443, 0)]),
            svc("tcp", "10.96.0.30", 0, vec![rs("10.244.1.9", 0, 1)]),
            IpvsService {
                protocol: None,
                address: None,
                port: None,
                fwmark: Some(0x5),
                scheduler: "wrr".into(),
                real_servers: vec![rs("10.244.4.4", 80, 3)],
            },
        ]
    }

    #[test]
    fn tcp_service_branches_per_weighted_real_server() {
        let m = lookup(&services(), &tcp("10.244.1.2", "10.96.0.10", 80)).expect("hit");
        assert_eq!(m.text, "TCP  10.96.0.10:80 rr");
        let dsts: Vec<_> = m
            .branches
            .iter()
            .map(|b| (b.packet.dst.to_string(), b.packet.dport))
            .collect();
        assert_eq!(
            dsts,
            [
                ("10.244.1.5".to_string(), 8080),
                ("10.244.2.7".to_string(), 8080)
            ]
        );
        assert_eq!(m.quiesced.len(), 1);
        assert_eq!(m.quiesced[0].address, ip("10.244.3.9"));
        assert!(!m.rejects());
        assert_eq!(
            render_real_server(&m.quiesced[0]),
            "-> 10.244.3.9:8080 Masq 0"
        );
    }

    #[test]
    fn protocol_and_port_must_match() {
        let s = services();
        assert!(lookup(&s, &udp("10.244.1.2", "10.96.0.10", 80)).is_none());
        assert!(lookup(&s, &tcp("10.244.1.2", "10.96.0.10", 81)).is_none());
        assert!(lookup(&s, &tcp("10.244.1.2", "10.96.0.11", 80)).is_none());
        let m = lookup(&s, &udp("10.244.1.2", "10.96.0.53", 53)).expect("udp");
        assert_eq!(m.branches[0].packet.dst, ip("10.244.1.6"));
    }

    #[test]
    fn only_zero_weight_servers_reject() {
        let m = lookup(&services(), &tcp("10.244.1.2", "10.96.0.20", 443)).expect("hit");
        assert!(m.rejects());
        assert_eq!(m.quiesced.len(), 1);
    }

    #[test]
    fn port_zero_service_keeps_the_port() {
        let m = lookup(&services(), &tcp("10.244.1.2", "10.96.0.30", 5000)).expect("hit");
        assert_eq!(
            (m.branches[0].packet.dst, m.branches[0].packet.dport),
            (ip("10.244.1.9"), 5000)
        );
    }

    #[test]
    fn fwmark_services_come_first_and_use_the_whole_mark() {
        let mut p = tcp("10.244.1.2", "10.96.0.10", 80);
        p.mark = 0x5;
        let m = lookup(&services(), &p).expect("fwmark");
        assert_eq!(m.text, "FWM  5 wrr");
        assert_eq!(m.branches[0].packet.dst, ip("10.244.4.4"));
        p.mark = 0x4005;
        let m = lookup(&services(), &p).expect("falls back to the VIP");
        assert_eq!(m.text, "TCP  10.96.0.10:80 rr");
    }

    #[test]
    fn direct_routing_keeps_the_destination() {
        let mut s = services();
        s[1].real_servers[0].forward = "Route".into();
        let p = udp("10.244.1.2", "10.96.0.53", 53);
        let m = lookup(&s, &p).expect("hit");
        assert_eq!(m.branches[0].packet, p);
    }

    #[test]
    fn icmp_never_hits_a_port_service() {
        let mut p = tcp("10.244.1.2", "10.96.0.30", 0);
        p.protocol = Protocol::Icmp;
        assert!(lookup(&services(), &p).is_none());
    }
}
