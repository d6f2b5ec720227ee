//! Helpers shared by the netfilter tests.

use std::net::Ipv4Addr;

use super::{Hook, IpsetStore, NetnsFacts, Outcome, ReverseRoute, Ruleset, traverse};
use crate::packet::{Packet, Protocol};

/// A netns with some local addresses and interface addresses.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    pub local: Vec<Ipv4Addr>,
    pub ifaces: Vec<(&'static str, Ipv4Addr)>,
    /// Listening sockets; None: not known.
    pub sockets: Option<Vec<(Protocol, Ipv4Addr, u16)>>,
    /// Routes back to a source: (prefix address, prefix length, route); None: not known.
    pub routes_back: Option<Vec<(Ipv4Addr, u8, ReverseRoute)>>,
}

impl NetnsFacts for Facts {
    fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.local.contains(&ip)
    }

    fn primary_address(&self, ifname: &str) -> Option<Ipv4Addr> {
        self.ifaces
            .iter()
            .find(|(n, _)| *n == ifname)
            .map(|(_, a)| *a)
    }

    fn interface_addresses(&self, ifname: &str) -> Option<Vec<Ipv4Addr>> {
        Some(
            self.ifaces
                .iter()
                .filter(|(n, _)| *n == ifname)
                .map(|(_, a)| *a)
                .collect(),
        )
    }

    fn socket_listening(
        &self,
        protocol: Protocol,
        ip: Ipv4Addr,
        port: u16,
        exact: bool,
    ) -> Option<bool> {
        let socks = self.sockets.as_ref()?;
        Some(socks.iter().any(|(p, a, n)| {
            *p == protocol && *n == port && (*a == ip || (!exact && a.is_unspecified()))
        }))
    }

    fn reverse_route(&self, to: Ipv4Addr, _from: Ipv4Addr, _mark: u32) -> Option<ReverseRoute> {
        let routes = self.routes_back.as_ref()?;
        let best = routes
            .iter()
            .filter(|(net, len, _)| {
                let mask = if *len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(*len))
                };
                u32::from(to) & mask == u32::from(*net) & mask
            })
            .max_by_key(|(_, len, _)| *len);
        Some(best.map(|(_, _, r)| r.clone()).unwrap_or_default())
    }
}

/// A node with eth0 192.168.1.10 and cni0 10.244.1.1.
pub(crate) fn node_facts() -> Facts {
    let eth0 = Ipv4Addr::new(192, 168, 1, 10);
    let cni0 = Ipv4Addr::new(10, 244, 1, 1);
    Facts {
        local: vec![eth0, cni0],
        ifaces: vec![("eth0", eth0), ("cni0", cni0)],
        sockets: None,
        routes_back: None,
    }
}

pub(crate) fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

pub(crate) fn packet(proto: Protocol, src: &str, sport: u16, dst: &str, dport: u16) -> Packet {
    Packet {
        src: ip(src),
        sport,
        dst: ip(dst),
        dport,
        protocol: proto,
        mark: 0,
        encap: None,
        reply: false,
        tos: 0,
        size: 0,
        icmp: None,
    }
}

pub(crate) fn tcp(src: &str, dst: &str, dport: u16) -> Packet {
    packet(Protocol::Tcp, src, 40000, dst, dport)
}

pub(crate) fn udp(src: &str, dst: &str, dport: u16) -> Packet {
    packet(Protocol::Udp, src, 40000, dst, dport)
}

pub(crate) fn parse(dump: &str) -> Ruleset {
    match Ruleset::parse(dump) {
        Ok(r) => r,
        Err(e) => panic!("dump does not parse: {e}"),
    }
}

/// Traverses with no ipsets and `node_facts()`.
pub(crate) fn run(
    dump: &str,
    hook: Hook,
    p: &Packet,
    iif: Option<&str>,
    oif: Option<&str>,
) -> Vec<Outcome> {
    traverse(
        &parse(dump),
        &IpsetStore::default(),
        &node_facts(),
        hook,
        p,
        iif,
        oif,
    )
}

/// Exactly one certain outcome.
pub(crate) fn single(outs: Vec<Outcome>) -> Outcome {
    assert_eq!(outs.len(), 1, "expected one outcome, got {outs:#?}");
    let o = outs.into_iter().next().expect("one outcome");
    assert!(!o.uncertain, "outcome is uncertain: {o:#?}");
    o
}
