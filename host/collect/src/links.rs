//! Links and their IPv4 addresses, from rtnetlink.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use anyhow::Result;
use ipnet::Ipv4Net;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoVxlan, LinkAttribute, LinkFlags,
    LinkInfo, LinkLayerType, LinkMessage, State,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::netlink::Rtnl;
use skoop_netstack::dump::{Interface, Vxlan};

/// Every link of the netns, with its IPv4 addresses.
pub fn collect(rtnl: &mut Rtnl) -> Result<Vec<Interface>> {
    let links: Vec<LinkMessage> = rtnl
        .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(l),
            _ => None,
        })
        .collect();
    let mut request = AddressMessage::default();
    request.header.family = AddressFamily::Inet;
    let mut addresses: BTreeMap<u32, Vec<Ipv4Net>> = BTreeMap::new();
    for m in rtnl.dump(RouteNetlinkMessage::GetAddress(request))? {
        if let RouteNetlinkMessage::NewAddress(a) = m
            && let Some(net) = ipv4_address(&a)
        {
            addresses.entry(a.header.index).or_default().push(net);
        }
    }
    let names: BTreeMap<u32, String> = links
        .iter()
        .filter_map(|l| link_name(l).map(|n| (l.header.index, n.to_string())))
        .collect();
    let mut out: Vec<Interface> = links
        .iter()
        .map(|l| {
            interface(
                l,
                &names,
                addresses.remove(&l.header.index).unwrap_or_default(),
            )
        })
        .collect();
    out.sort_by_key(|i| i.index);
    Ok(out)
}

/// An address message's IPv4 address and prefix (IFA_LOCAL, else IFA_ADDRESS).
fn ipv4_address(a: &AddressMessage) -> Option<Ipv4Net> {
    let pick = |want_local: bool| {
        a.attributes
            .iter()
            .find_map(|attr| match (attr, want_local) {
                (AddressAttribute::Local(IpAddr::V4(ip)), true)
                | (AddressAttribute::Address(IpAddr::V4(ip)), false) => Some(*ip),
                _ => None,
            })
    };
    let ip = pick(true).or_else(|| pick(false))?;
    Ipv4Net::new(ip, a.header.prefix_len).ok()
}

fn link_name(l: &LinkMessage) -> Option<&str> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

fn interface(l: &LinkMessage, names: &BTreeMap<u32, String>, addresses: Vec<Ipv4Net>) -> Interface {
    let mut iface = Interface {
        index: l.header.index,
        name: link_name(l).unwrap_or_default().to_string(),
        kind: String::new(),
        mtu: 0,
        admin_up: l.header.flags.contains(LinkFlags::Up),
        oper_state: "UNKNOWN".into(),
        master: None,
        peer_index: None,
        addresses,
        mac: None,
        vxlan: None,
        ..Interface::default()
    };
    let mut kind: Option<InfoKind> = None;
    let mut link_attr: Option<u32> = None;
    let mut link_netnsid: Option<i32> = None;
    for a in &l.attributes {
        match a {
            LinkAttribute::Mtu(m) => iface.mtu = *m,
            LinkAttribute::OperState(s) => iface.oper_state = oper_state(s),
            LinkAttribute::Controller(i) => iface.master = names.get(i).cloned(),
            LinkAttribute::Address(mac) => iface.mac = Some(format_mac(mac)),
            LinkAttribute::Link(i) => link_attr = Some(*i),
            LinkAttribute::LinkNetNsId(id) => link_netnsid = Some(*id),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(k) => kind = Some(k.clone()),
                        LinkInfo::Data(InfoData::Vxlan(v)) => iface.vxlan = Some(vxlan(v, names)),
                        // A bridge port's own attributes: the hairpin flag
                        // decides whether the bridge sends a frame back out
                        // of the port it came in by.
                        LinkInfo::PortData(InfoPortData::BridgePort(attrs)) => {
                            iface.hairpin = attrs.iter().find_map(|a| match a {
                                InfoBridgePort::HairpinMode(on) => Some(*on),
                                _ => None,
                            });
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    iface.kind = match &kind {
        Some(k) => k.to_string(),
        None if l.header.link_layer_type == LinkLayerType::Loopback => "loopback".into(),
        None => "device".into(),
    };
    match kind {
        Some(InfoKind::Veth) => {
            iface.peer_index = link_attr;
            iface.peer_netnsid = link_netnsid;
        }
        // A stacked device's parent, by name when it is in this netns.
        Some(InfoKind::Vlan | InfoKind::MacVlan | InfoKind::IpVlan | InfoKind::MacVtap) => {
            iface.link = link_attr.and_then(|i| names.get(&i).cloned());
        }
        _ => {}
    }
    iface
}

fn oper_state(s: &State) -> String {
    match s {
        State::Up => "UP",
        State::Down => "DOWN",
        State::LowerLayerDown => "LOWERLAYERDOWN",
        State::NotPresent => "NOTPRESENT",
        State::Testing => "TESTING",
        State::Dormant => "DORMANT",
        _ => "UNKNOWN",
    }
    .to_string()
}

fn vxlan(attrs: &[InfoVxlan], names: &BTreeMap<u32, String>) -> Vxlan {
    let mut v = Vxlan {
        id: 0,
        port: 8472,
        local: None,
        dev: None,
    };
    for a in attrs {
        match a {
            InfoVxlan::Id(id) => v.id = *id,
            InfoVxlan::Port(p) => v.port = *p,
            InfoVxlan::Local(ip) if *ip != Ipv4Addr::UNSPECIFIED => v.local = Some(*ip),
            InfoVxlan::Link(i) => v.dev = names.get(i).cloned(),
            _ => {}
        }
    }
    v
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_lower_hex_with_colons() {
        assert_eq!(
            format_mac(&[0x52, 0x54, 0, 0x5a, 0xc0, 1]),
            "52:54:00:5a:c0:01"
        );
    }
}
