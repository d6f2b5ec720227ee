//! IPv4 neighbours (ARP) and the bridge/VXLAN forwarding database, from rtnetlink.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use anyhow::Result;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::links::format_mac;
use super::netlink::Rtnl;
use skoop_netstack::dump::{FdbEntry, Neighbour};

/// Every IPv4 neighbour entry.
pub fn collect_neighbours(
    rtnl: &mut Rtnl,
    names: &BTreeMap<u32, String>,
) -> Result<Vec<Neighbour>> {
    let mut request = NeighbourMessage::default();
    request.header.family = AddressFamily::Inet;
    let mut out = Vec::new();
    for m in rtnl.dump(RouteNetlinkMessage::GetNeighbour(request))? {
        let RouteNetlinkMessage::NewNeighbour(n) = m else {
            continue;
        };
        if n.header.family != AddressFamily::Inet {
            continue;
        }
        let ip = n.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
            _ => None,
        });
        let Some(ip) = ip else { continue };
        out.push(Neighbour {
            ip,
            dev: ifname(names, n.header.ifindex),
            lladdr: lladdr(&n),
            state: state_name(n.header.state),
        });
    }
    Ok(out)
}

/// The bridge FDB (AF_BRIDGE neighbours): bridge-port entries with their
/// master, VXLAN entries with their remote `dst`. Multicast group entries
/// are left out.
pub fn collect_fdb(rtnl: &mut Rtnl, names: &BTreeMap<u32, String>) -> Result<Vec<FdbEntry>> {
    let mut request = NeighbourMessage::default();
    request.header.family = AddressFamily::Bridge;
    let mut out = Vec::new();
    for m in rtnl.dump(RouteNetlinkMessage::GetNeighbour(request))? {
        let RouteNetlinkMessage::NewNeighbour(n) = m else {
            continue;
        };
        if n.header.family != AddressFamily::Bridge {
            continue;
        }
        let Some(mac) = lladdr(&n) else { continue };
        if is_multicast(&mac) {
            continue;
        }
        let mut entry = FdbEntry {
            mac,
            dev: ifname(names, n.header.ifindex),
            dst: None,
            master: None,
            vni: None,
            port: None,
            flags: fdb_flags(&n),
        };
        for a in &n.attributes {
            match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                    entry.dst = Some(*ip)
                }
                // In an AF_BRIDGE message the remote VTEP is not decoded as
                // IPv4; four raw bytes are one.
                NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
                    entry.dst = <[u8; 4]>::try_from(b.as_slice()).ok().map(Ipv4Addr::from);
                }
                NeighbourAttribute::Controller(i) => entry.master = Some(ifname(names, *i)),
                NeighbourAttribute::Vni(v) => entry.vni = Some(*v),
                NeighbourAttribute::Port(p) => entry.port = Some(*p),
                _ => {}
            }
        }
        out.push(entry);
    }
    Ok(out)
}

/// The entry's flags as `bridge fdb` prints them.
fn fdb_flags(n: &NeighbourMessage) -> Vec<String> {
    let mut out = Vec::new();
    let f = n.header.flags;
    if f.contains(NeighbourFlags::Own) {
        out.push("self".to_string());
    }
    if f.contains(NeighbourFlags::Controller) {
        out.push("master".to_string());
    }
    if f.contains(NeighbourFlags::ExtLearned) {
        out.push("extern_learn".to_string());
    }
    match n.header.state {
        NeighbourState::Permanent => out.push("permanent".to_string()),
        NeighbourState::Noarp => out.push("static".to_string()),
        _ => {}
    }
    out
}

fn lladdr(n: &NeighbourMessage) -> Option<String> {
    n.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(b) if !b.is_empty() => Some(format_mac(b)),
        _ => None,
    })
}

/// A MAC whose group bit is set (01:00:5e:…, 33:33:…, ff:ff:…).
fn is_multicast(mac: &str) -> bool {
    u8::from_str_radix(mac.get(..2).unwrap_or("00"), 16).is_ok_and(|b| b & 1 == 1)
}

fn ifname(names: &BTreeMap<u32, String>, index: u32) -> String {
    names
        .get(&index)
        .cloned()
        .unwrap_or_else(|| format!("if{index}"))
}

/// The kernel's NUD state names, as `ip neigh` prints them.
pub fn state_name(s: NeighbourState) -> String {
    match s {
        NeighbourState::Incomplete => "INCOMPLETE".into(),
        NeighbourState::Reachable => "REACHABLE".into(),
        NeighbourState::Stale => "STALE".into(),
        NeighbourState::Delay => "DELAY".into(),
        NeighbourState::Probe => "PROBE".into(),
        NeighbourState::Failed => "FAILED".into(),
        NeighbourState::Noarp => "NOARP".into(),
        NeighbourState::Permanent => "PERMANENT".into(),
        NeighbourState::None => "NONE".into(),
        NeighbourState::Other(n) => format!("0x{n:x}"),
        _ => "UNKNOWN".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multicast_macs_are_recognised() {
        assert!(is_multicast("01:00:5e:00:00:01"));
        assert!(is_multicast("33:33:00:00:00:01"));
        assert!(!is_multicast("52:54:00:5a:c0:01"));
        assert!(!is_multicast("00:00:00:00:00:00"));
    }

    #[test]
    fn states_use_ip_neigh_names() {
        assert_eq!(state_name(NeighbourState::Permanent), "PERMANENT");
        assert_eq!(state_name(NeighbourState::Failed), "FAILED");
    }
}
