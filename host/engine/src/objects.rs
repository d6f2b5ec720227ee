//! What the objects alone say of the ends of a flow — a pod not running or
//! not ready, a node NotReady, a Service without the port or without a
//! ready endpoint — in the same words whether or not the node dumps are
//! there: the walk says them where it reaches a net-node, the diagnosis
//! from the objects where it reached nothing.

use crate::cluster::{NodeFacts, Owner, PodFacts};
use crate::facts::Facts;
use crate::path::{NetNode, NetNodeKind};
use crate::service::{self, ProxyConfig};
use crate::suspicion::Level;
use skoop_netstack::packet::Packet;

/// A node that is not Ready.
pub(crate) fn node_state(node: &NodeFacts) -> Option<(Level, String)> {
    (!node.ready).then(|| (Level::Fatal, format!("node {} is NotReady", node.name)))
}

/// A pod whose containers are not running (nothing in it answers or
/// sends), or running but not ready (Services leave it out; traffic sent to
/// it straight may still be answered).
pub(crate) fn pod_state(pod: &PodFacts) -> Option<(Level, String)> {
    match pod.phase.as_str() {
        "Pending" | "Failed" | "Succeeded" => Some((
            Level::Critical,
            format!(
                "pod {} is not running (phase {}): nothing in it sends or answers",
                pod.id(),
                pod.phase
            ),
        )),
        _ if !pod.ready => Some((
            Level::Warning,
            format!("pod {} is not ready (phase {})", pod.id(), pod.phase),
        )),
        _ => None,
    }
}

/// What the objects say of `request`'s ends, each with the net-node it is
/// about (`None`: the cluster).
pub(crate) fn flow_states(
    facts: &Facts,
    request: &Packet,
) -> Vec<(Option<NetNode>, Level, String)> {
    let view = &facts.view;
    let mut out = Vec::new();
    let pod = |p: &PodFacts, out: &mut Vec<(Option<NetNode>, Level, String)>| {
        if let Some((level, message)) = pod_state(p) {
            out.push((Some(pod_node(p)), level, message));
        }
        if let Some(n) = view.nodes.get(&p.node) {
            node(n, out);
        }
    };
    if let Some(p) = view.pod_by_ip(request.src) {
        pod(p, &mut out);
    } else if let Some(n) = view.node_by_ip(request.src) {
        node(n, &mut out);
    }
    if let Some((svc, port, _)) = service::find(view, request) {
        match port {
            None => out.push((None, Level::Fatal, service::no_such_port(svc, request))),
            Some(_) => {
                let on = view
                    .node_by_ip(request.dst)
                    .map(|n| n.name.as_str())
                    .unwrap_or_default();
                let proxy = ProxyConfig::from_settings(&facts.settings);
                let r = service::resolve(view, on, request, &proxy);
                if r.backends.is_empty() {
                    out.extend(r.suspicions.into_iter().map(|(l, m)| (None, l, m)));
                }
            }
        }
        return out;
    }
    match view.classify(request.dst, request.dport, request.protocol) {
        Owner::Pod(p) => pod(p, &mut out),
        Owner::Node(n) => node(n, &mut out),
        Owner::Service(_) | Owner::External(_) => {}
    }
    out
}

fn node(n: &NodeFacts, out: &mut Vec<(Option<NetNode>, Level, String)>) {
    if let Some((level, message)) = node_state(n) {
        let at = NetNode {
            kind: NetNodeKind::Node,
            id: n.name.clone(),
        };
        if !out.iter().any(|(_, _, m)| *m == message) {
            out.push((Some(at), level, message));
        }
    }
}

fn pod_node(p: &PodFacts) -> NetNode {
    NetNode {
        kind: NetNodeKind::Pod,
        id: p.id(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: &str, ready: bool) -> PodFacts {
        PodFacts {
            namespace: "default".into(),
            name: "web-1".into(),
            ip: None,
            node: "n1".into(),
            host_network: false,
            ready,
            phase: phase.into(),
            ports: Vec::new(),
            dns_name: None,
            labels: Default::default(),
            annotations: Vec::new(),
            daemonset: None,
        }
    }

    #[test]
    fn a_pod_not_running_is_critical_and_one_not_ready_a_warning() {
        let (level, message) = pod_state(&pod("Pending", false)).expect("said");
        assert_eq!(level, Level::Critical);
        assert_eq!(
            message,
            "pod default/web-1 is not running (phase Pending): nothing in it sends or answers"
        );
        let (level, message) = pod_state(&pod("Running", false)).expect("said");
        assert_eq!(
            (level, message.as_str()),
            (
                Level::Warning,
                "pod default/web-1 is not ready (phase Running)"
            )
        );
        assert_eq!(pod_state(&pod("Running", true)), None);
    }
}
