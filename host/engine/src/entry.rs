//! How traffic from outside the cluster enters it, as Kubernetes defines
//! it: the outside reaches a node's address, or a Service's LoadBalancer or
//! external IP; a Service's traffic enters at every node, or, with
//! externalTrafficPolicy Local, only at the nodes of its ready endpoints.

use crate::cluster::{ClusterView, NodeFacts, Owner};
use crate::facts::Facts;
use crate::flow::Flow;
use crate::path::{NetNode, NetNodeKind};
use crate::suspicion::{Level, Suspicion};
use skoop_netstack::packet::Packet;

/// A source outside the cluster, for a flow to what the outside can reach:
/// a node's address, or a Service's LoadBalancer or external IP. Err: the
/// destination is not reachable from outside (a pod, a ClusterIP, or
/// another outside address), said plainly.
pub fn outside_source(facts: &Facts, flow: &Flow) -> Result<NetNode, String> {
    let view = &facts.view;
    let reachable = view.node_by_ip(flow.dst).is_some()
        || view
            .service_by_ip(flow.dst)
            .is_some_and(|s| s.outside_address(flow.dst));
    if reachable {
        return Ok(NetNode {
            kind: NetNodeKind::External,
            id: flow.src.to_string(),
        });
    }
    let what = match view.classify(flow.dst, flow.dport, flow.protocol) {
        Owner::Pod(p) => format!("pod {}", p.id()),
        Owner::Service(s) => format!("ClusterIP of Service {}", s.id()),
        Owner::Node(n) => format!("node {}", n.name),
        Owner::External(_) => "an address outside the cluster too".to_string(),
    };
    Err(format!(
        "{} is outside the cluster, and {} is the {what}: from outside, only a node's address or a Service's LoadBalancer or external IP can be reached",
        flow.src, flow.dst
    ))
}

/// A load balancer may spread a flow over many nodes: the diagnosis follows this many.
const MAX_ENTRY_NODES: usize = 8;

/// The nodes a packet from outside enters at (the first
/// [`MAX_ENTRY_NODES`]), and what is wrong with that entry.
pub fn entry_nodes<'v>(
    view: &'v ClusterView,
    packet: &Packet,
) -> (Vec<&'v NodeFacts>, Vec<Suspicion>) {
    let mut suspicions = Vec::new();
    let mut nodes: Vec<&NodeFacts> = match view.node_by_ip(packet.dst) {
        Some(n) => vec![n],
        None => match view.service_by_ip(packet.dst) {
            Some(s) if s.external_traffic_local => {
                let mut names: Vec<&str> = view
                    .endpoints
                    .get(&s.id())
                    .into_iter()
                    .flatten()
                    .filter(|e| e.ready)
                    .filter_map(|e| e.node.as_deref())
                    .collect();
                names.sort_unstable();
                names.dedup();
                if names.is_empty() {
                    suspicions.push(Suspicion {
                        level: Level::Fatal,
                        message: format!(
                            "Service {} has externalTrafficPolicy Local and no ready endpoint on any node: traffic from outside to {} has nowhere to go",
                            s.id(),
                            packet.dst
                        ),
                        node: None,
                    });
                }
                names.iter().filter_map(|n| view.nodes.get(*n)).collect()
            }
            Some(_) => view.nodes.values().collect(),
            None => vec![],
        },
    };
    if nodes.len() > MAX_ENTRY_NODES {
        suspicions.push(Suspicion {
            level: Level::Info,
            message: format!(
                "traffic to {} may enter at any of {} nodes; the diagnosis follows the first {MAX_ENTRY_NODES}",
                packet.dst,
                nodes.len()
            ),
            node: None,
        });
        nodes.truncate(MAX_ENTRY_NODES);
    }
    (nodes, suspicions)
}
