//! IPv4 routes of every table and the policy rules, from rtnetlink.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use anyhow::Result;
use ipnet::Ipv4Net;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHop, RouteNextHopFlags,
    RouteScope, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleFlags, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::netlink::Rtnl;
use skoop_netstack::dump::{NextHop, Route, Rule};

/// Every IPv4 route of every table. `names` maps ifindex to name.
pub fn collect_routes(rtnl: &mut Rtnl, names: &BTreeMap<u32, String>) -> Result<Vec<Route>> {
    let mut request = RouteMessage::default();
    request.header.address_family = AddressFamily::Inet;
    let mut out = Vec::new();
    for m in rtnl.dump(RouteNetlinkMessage::GetRoute(request))? {
        if let RouteNetlinkMessage::NewRoute(r) = m
            && r.header.address_family == AddressFamily::Inet
            && let Some(route) = route(&r, names)
        {
            out.push(route);
        }
    }
    Ok(out)
}

fn route(r: &RouteMessage, names: &BTreeMap<u32, String>) -> Option<Route> {
    let kind = route_type(r.header.kind)?;
    let mut dst = Ipv4Addr::UNSPECIFIED;
    let mut out = Route {
        table: u32::from(r.header.table),
        kind: kind.into(),
        dst: Ipv4Net::default(),
        gateway: None,
        dev: None,
        scope: scope(r.header.scope),
        proto: protocol(u8::from(r.header.protocol)),
        metric: 0,
        prefsrc: None,
        onlink: r.header.flags.contains(RouteFlags::Onlink),
        nexthops: Vec::new(),
    };
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = *ip,
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => out.gateway = Some(*ip),
            RouteAttribute::PrefSource(RouteAddress::Inet(ip)) => out.prefsrc = Some(*ip),
            RouteAttribute::Oif(i) => out.dev = Some(ifname(names, *i)),
            RouteAttribute::Priority(m) => out.metric = *m,
            RouteAttribute::Table(t) => out.table = *t,
            RouteAttribute::MultiPath(hops) => {
                out.nexthops = hops.iter().map(|h| next_hop(h, names)).collect();
            }
            _ => {}
        }
    }
    out.dst = Ipv4Net::new(dst, r.header.destination_prefix_length)
        .ok()?
        .trunc();
    Some(out)
}

fn next_hop(h: &RouteNextHop, names: &BTreeMap<u32, String>) -> NextHop {
    NextHop {
        gateway: h.attributes.iter().find_map(|a| match a {
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => Some(*ip),
            _ => None,
        }),
        dev: ifname(names, h.interface_index),
        weight: u32::from(h.hops) + 1,
        onlink: h.flags.contains(RouteNextHopFlags::Onlink),
    }
}

fn ifname(names: &BTreeMap<u32, String>, index: u32) -> String {
    names
        .get(&index)
        .cloned()
        .unwrap_or_else(|| format!("if{index}"))
}

/// The dump's `type` names; `None` for kinds the dump does not carry.
fn route_type(t: RouteType) -> Option<&'static str> {
    Some(match t {
        RouteType::Unicast => "unicast",
        RouteType::Local => "local",
        RouteType::Broadcast => "broadcast",
        RouteType::Anycast => "anycast",
        RouteType::Multicast => "multicast",
        RouteType::BlackHole => "blackhole",
        RouteType::Unreachable => "unreachable",
        RouteType::Prohibit => "prohibit",
        RouteType::Throw => "throw",
        RouteType::Nat => "nat",
        _ => return None,
    })
}

fn scope(s: RouteScope) -> Option<String> {
    match s {
        RouteScope::Universe => None,
        RouteScope::Site => Some("site".into()),
        RouteScope::Link => Some("link".into()),
        RouteScope::Host => Some("host".into()),
        RouteScope::NoWhere => Some("nowhere".into()),
        RouteScope::Other(n) => Some(n.to_string()),
        _ => Some("unknown".into()),
    }
}

/// Route protocol names as iproute2's `rt_protos` spells them.
pub fn protocol(p: u8) -> Option<String> {
    let name = match p {
        0 => return None,
        1 => "redirect",
        2 => "kernel",
        3 => "boot",
        4 => "static",
        8 => "gated",
        9 => "ra",
        10 => "mrt",
        11 => "zebra",
        12 => "bird",
        13 => "dnrouted",
        14 => "xorp",
        15 => "ntk",
        16 => "dhcp",
        17 => "keepalived",
        18 => "babel",
        42 => "openr",
        186 => "bgp",
        187 => "isis",
        188 => "ospf",
        189 => "rip",
        192 => "eigrp",
        n => return Some(n.to_string()),
    };
    Some(name.into())
}

/// The IPv4 policy rules.
pub fn collect_rules(rtnl: &mut Rtnl) -> Result<Vec<Rule>> {
    let mut request = RuleMessage::default();
    request.header.family = AddressFamily::Inet;
    let mut out: Vec<Rule> = rtnl
        .dump(RouteNetlinkMessage::GetRule(request))?
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewRule(r) if r.header.family == AddressFamily::Inet => {
                Some(rule(&r))
            }
            _ => None,
        })
        .collect();
    out.sort_by_key(|r| r.priority);
    Ok(out)
}

fn rule(r: &RuleMessage) -> Rule {
    let h = &r.header;
    let mut out = Rule {
        priority: 0,
        not: h.flags.contains(RuleFlags::Invert),
        from: None,
        to: None,
        fwmark: None,
        fwmask: None,
        iif: None,
        oif: None,
        tos: (h.tos != 0).then_some(h.tos),
        action: match h.action {
            RuleAction::ToTable => "lookup".into(),
            RuleAction::Goto => "goto".into(),
            RuleAction::Nop => "nop".into(),
            RuleAction::Blackhole => "blackhole".into(),
            RuleAction::Unreachable => "unreachable".into(),
            RuleAction::Prohibit => "prohibit".into(),
            RuleAction::Unspec => "unspec".into(),
            RuleAction::Other(n) => n.to_string(),
            _ => "unknown".into(),
        },
        table: (h.table != 0).then_some(u32::from(h.table)),
        goto: None,
    };
    for a in &r.attributes {
        match a {
            RuleAttribute::Priority(p) => out.priority = *p,
            RuleAttribute::Source(IpAddr::V4(ip)) => out.from = Ipv4Net::new(*ip, h.src_len).ok(),
            RuleAttribute::Destination(IpAddr::V4(ip)) => {
                out.to = Ipv4Net::new(*ip, h.dst_len).ok()
            }
            RuleAttribute::FwMark(m) => out.fwmark = Some(*m),
            RuleAttribute::FwMask(m) => out.fwmask = Some(*m),
            RuleAttribute::Iifname(n) => out.iif = Some(n.clone()),
            RuleAttribute::Oifname(n) => out.oif = Some(n.clone()),
            RuleAttribute::Table(t) if *t != 0 => out.table = Some(*t),
            RuleAttribute::Goto(g) => out.goto = Some(*g),
            _ => {}
        }
    }
    if out.action != "lookup" {
        out.table = None;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_use_iproute2_names() {
        assert_eq!(protocol(0), None);
        assert_eq!(protocol(2).as_deref(), Some("kernel"));
        assert_eq!(protocol(16).as_deref(), Some("dhcp"));
        assert_eq!(protocol(12).as_deref(), Some("bird"));
        assert_eq!(protocol(99).as_deref(), Some("99"));
    }
}
