//! kube-proxy Service resolution (iptables mode), from the Service and its
//! EndpointSlices: every ready endpoint is a branch, translated as kube-proxy
//! would DNAT it, with the masquerade mark kube-proxy would set.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::cluster::{ClusterView, EndpointFacts, ServiceFacts, ServicePortFacts};
use crate::packet::Packet;
use crate::suspicion::Level;

/// kube-proxy's default masquerade bit (`--iptables-masquerade-bit 14`).
pub const MASQ_MARK: u32 = 0x4000;

/// One backend of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The packet after DNAT.
    pub packet: Packet,
    pub endpoint: Ipv4Addr,
    /// `namespace/name` of the backend pod, when it is one.
    pub pod: Option<String>,
}

/// Backends and findings.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub backends: Vec<Backend>,
    pub findings: Vec<(Level, String)>,
}

/// The Service and port a packet is addressed to: by cluster IP and port, or
/// by a node IP and NodePort.
pub fn find<'a>(
    view: &'a ClusterView,
    packet: &Packet,
) -> Option<(&'a ServiceFacts, Option<&'a ServicePortFacts>, bool)> {
    if let Some(svc) = view.service_by_ip(packet.dst) {
        let port = svc
            .ports
            .iter()
            .find(|p| p.port == packet.dport && p.protocol == packet.protocol);
        return Some((svc, port, false));
    }
    if view.node_by_ip(packet.dst).is_some() {
        let svc = view.service_by_node_port(packet.dport, packet.protocol)?;
        let port = svc
            .ports
            .iter()
            .find(|p| p.node_port == Some(packet.dport) && p.protocol == packet.protocol);
        return Some((svc, port, true));
    }
    None
}

/// The endpoint port for a service port: kube-proxy pairs them by name only.
fn endpoint_port(ep: &EndpointFacts, sp: &ServicePortFacts) -> Option<u16> {
    ep.ports
        .iter()
        .find(|(name, _, proto)| name == &sp.name && *proto == sp.protocol)
        .map(|(_, port, _)| *port)
}

/// Resolve `packet` on `node` the way kube-proxy's rules would.
pub fn resolve(
    view: &ClusterView,
    node: &str,
    packet: &Packet,
    cluster_cidr: Option<Ipv4Net>,
) -> Resolution {
    let mut out = Resolution::default();
    let Some((svc, port, via_node_port)) = find(view, packet) else {
        out.findings.push((
            Level::Fatal,
            format!("{}:{} is not a Service address", packet.dst, packet.dport),
        ));
        return out;
    };
    let Some(sp) = port else {
        let have: Vec<String> = svc
            .ports
            .iter()
            .map(|p| format!("{}/{}", p.port, p.protocol))
            .collect();
        out.findings.push((
            Level::Fatal,
            format!(
                "service {} has no port {}/{} (it has {}): kube-proxy installs no rule for it",
                svc.id(),
                packet.dport,
                packet.protocol,
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            ),
        ));
        return out;
    };
    let all = view
        .endpoints
        .get(&svc.id())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let local_only = via_node_port && svc.external_traffic_local;
    let ready: Vec<&EndpointFacts> = all
        .iter()
        .filter(|e| e.ready)
        .filter(|e| !local_only || e.node.as_deref() == Some(node))
        .collect();
    if ready.is_empty() {
        let not_ready = all.iter().filter(|e| !e.ready).count();
        let scope = if local_only {
            format!(" on node {node} (externalTrafficPolicy: Local)")
        } else {
            String::new()
        };
        out.findings.push((
            Level::Fatal,
            format!(
                "service {} has no ready endpoint for port {} ({}/{}){scope}: {} not ready; kube-proxy rejects the traffic",
                svc.id(),
                if sp.name.is_empty() { "-" } else { sp.name.as_str() },
                sp.port,
                sp.protocol,
                not_ready
            ),
        ));
        return out;
    }
    let outside = cluster_cidr.map(|c| !c.contains(&packet.src)).unwrap_or(false);
    let with_port: Vec<(&EndpointFacts, u16)> = ready
        .iter()
        .filter_map(|ep| endpoint_port(ep, sp).map(|p| (*ep, p)))
        .collect();
    if with_port.is_empty() {
        let names: Vec<String> = ready
            .iter()
            .flat_map(|e| e.ports.iter().map(|(n, p, _)| format!("{n:?} ({p})")))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        out.findings.push((
            Level::Fatal,
            format!(
                "service {} port {:?} ({}/{}): its EndpointSlices have no port of that name (they have {}), so kube-proxy has no backend and rejects the traffic",
                svc.id(),
                sp.name,
                sp.port,
                sp.protocol,
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            ),
        ));
        return out;
    }
    for (ep, dport) in with_port {
        // kube-proxy marks for masquerade: NodePort traffic (externalTrafficPolicy
        // Cluster), ClusterIP traffic from outside the cluster CIDR, and hairpin.
        let masq = (via_node_port && !svc.external_traffic_local) || outside || packet.src == ep.ip;
        let mut translated = *packet;
        translated.dst = ep.ip;
        translated.dport = dport;
        if masq {
            translated.mark |= MASQ_MARK;
        }
        out.backends.push(Backend {
            packet: translated,
            endpoint: ep.ip,
            pod: ep.pod.clone(),
        });
    }
    out
}
