//! A node dump (`nodes/<node>.json`): the reader a bundle directory uses
//! (the iptables text kept as a share of the file) or the one embedded
//! demos use, then what a diagnosis does with the dump without a cluster:
//! for the host netns and its pods, the parsed iptables, ipset and nft
//! rules, routes, IPVS, sockets, every netfilter hook, the whole forwarding
//! pipeline for a request and its reply, and the link layer beyond.
#![no_main]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use libfuzzer_sys::{fuzz_mutator, fuzz_target};
use skoop_engine::bundle::{parse_node, parse_node_shared};
use skoop_fuzz::Harvest;
use skoop_netstack::link::{self, Frame};
use skoop_netstack::netfilter::{ConnState, Hook};
use skoop_netstack::packet::{Encap, EncapKind, Packet};
use skoop_netstack::{
    Conntrack, Fate, ForwardQuery, NetnsId, Netstack, Netstacks, RouteQuery, RouteSelectors,
};

const HOOKS: [Hook; 6] = [
    Hook::Ingress,
    Hook::Prerouting,
    Hook::Input,
    Hook::Forward,
    Hook::Output,
    Hook::Postrouting,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Both readers, one input in two; they must agree.
    let shared = Arc::new(text.to_string());
    let dump = if data.len().is_multiple_of(2) {
        let a = parse_node_shared(&shared, "nodes/n.json");
        let b = parse_node(text, "nodes/n.json");
        assert_eq!(a.is_ok(), b.is_ok(), "{:?} / {:?}", a.err(), b.err());
        a
    } else {
        parse_node(text, "nodes/n.json")
    };
    let Ok(dump) = dump else {
        return;
    };
    let node = dump.node.clone();
    let pods: Vec<String> = dump
        .pods
        .iter()
        .take(3)
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    let stacks = Netstacks::from_dumps(BTreeMap::from([(node.clone(), dump)]));
    let mut ids = vec![NetnsId::Node(node.clone())];
    ids.extend(pods.into_iter().map(|pod| NetnsId::Pod {
        node: node.clone(),
        pod,
    }));
    for id in &ids {
        if let Ok(stack) = stacks.netns(id) {
            exercise(&stacks, id, stack);
        }
    }
});

/// Addresses, devices and ports of one netns, for its packets.
fn harvest(stack: &Netstack) -> Harvest {
    let mut h = Harvest::default();
    for i in stack.interfaces().iter().take(4) {
        h.devices.push(i.name.clone());
        h.addrs.extend(i.addresses.iter().take(2).map(|a| a.addr()));
    }
    for r in stack.dump.routes.iter().take(4) {
        h.addrs.push(r.dst.addr());
        h.addrs.extend(r.gateway);
    }
    h.addrs
        .extend(stack.dump.neighbours.iter().take(2).map(|n| n.ip));
    h.ports
        .extend(stack.dump.sockets.iter().take(2).map(|s| s.port));
    h.addrs.truncate(8);
    h
}

fn exercise(stacks: &Netstacks, id: &NetnsId, stack: &Netstack) {
    stack.prepare();
    let _ = stack.rules();
    let _ = stack.nft();
    let h = harvest(stack);
    for dev in &h.devices {
        let _ = stack.fdb(dev);
        let _ = link::carrier_lost_to(stacks, id, dev);
        for a in h.addrs.iter().take(3) {
            let _ = stack.select_address(dev, *a);
            let _ = stack.neighbour(dev, *a);
        }
    }
    let mut ct = Conntrack::default();
    for (n, packet) in h.packets().into_iter().take(3).enumerate() {
        let q = RouteQuery {
            dst: Some(packet.dst),
            src: Some(packet.src),
            iif: h.device(n).map(str::to_string),
            mark: packet.mark,
        };
        let _ = stack.route(&q);
        let sel = RouteSelectors {
            tos: 0x10,
            oif: h.device(1).map(str::to_string),
        };
        let _ = stack.route_with(&q, &sel);
        let _ = stack.ipvs(&packet);
        let _ = stack.listening(packet.protocol, packet.dst, packet.dport);
        for hook in HOOKS {
            let conn = ConnState::at(hook, &packet);
            let (iif, oif) = match hook {
                Hook::Ingress | Hook::Prerouting | Hook::Input => (h.device(0), None),
                Hook::Output => (None, h.device(1)),
                _ => (h.device(0), h.device(1)),
            };
            let _ = stack.netfilter_hook(hook, &packet, iif, oif, &conn);
            if hook == Hook::Forward {
                let _ = stack.bridge_hook(hook, &packet, iif, oif, &conn);
            }
        }
        // A request originated here and one received on a device, then the
        // replies to what got through; the link layer beyond each
        // transmission.
        let mut queries = vec![ForwardQuery::originated(packet)];
        if let Some(dev) = h.device(n) {
            let mut q = ForwardQuery::received(packet, dev, Some(packet.dst));
            q.ct_invalid = n == 2;
            q.stand_in = vec![Packet {
                dst: Ipv4Addr::new(10, 244, 2, 9),
                ..packet
            }];
            queries.push(q);
        }
        for q in queries {
            let out = stack.forward(&mut ct, &q);
            for f in out.iter().take(4) {
                if let Fate::Transmit { oif, next_hop } = &f.fate {
                    let frame = Frame {
                        from: id,
                        oif,
                        next_hop: *next_hop,
                        packet: f.packet,
                        ingress_port: f.ingress_port.as_deref(),
                    };
                    let _ = link::carry(stacks, &frame);
                }
                let reply = Packet {
                    src: f.packet.dst,
                    dst: f.packet.src,
                    sport: f.packet.dport,
                    dport: f.packet.sport,
                    reply: true,
                    ..f.packet
                };
                let iif = match &f.fate {
                    Fate::Transmit { oif, .. } => oif.clone(),
                    Fate::Deliver { iif } => iif.clone(),
                    Fate::Drop(_) => continue,
                };
                let _ = stack.forward(&mut ct, &ForwardQuery::received(reply, &iif, None));
            }
        }
        for kind in [EncapKind::Vxlan, EncapKind::Ipip, EncapKind::Wireguard] {
            let encap = Encap {
                kind,
                src: packet.src,
                dst: packet.dst,
                vni: Some(1),
                port: Some(8472),
            };
            let _ = link::decapsulate(stack, &encap, Some("00:00:00:00:00:00"));
        }
    }
}

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    skoop_fuzz::mutate_json(data, size, max_size, seed)
});
