//! Policy verdicts applied where the packet really is: when the request reaches a pod
//! (after Service DNAT, with the source address the pod sees) and when it leaves the
//! cluster. Enforcement decides the level: an enforcing plugin makes a deny CRITICAL, a
//! plugin that does not enforce NetworkPolicy (flannel) makes it a WARNING naming the policy.

use std::collections::BTreeMap;

use skoop_policy::{DecidedBy, DirectionVerdict, Peer, PodInfo, PolicySet};

use crate::cluster::{ClusterView, PodFacts};
use crate::facts::Facts;
use crate::path::{NetNode, NetNodeKind};
use crate::suspicion::Level;
use skoop_error::bad_input;
use skoop_netstack::packet::{Packet, Protocol};

/// Kinds the evaluator reads.
const KINDS: [(&str, &str); 5] = [
    ("v1", "Namespace"),
    ("v1", "Node"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy"),
    (
        "policy.networking.k8s.io/v1alpha1",
        "BaselineAdminNetworkPolicy",
    ),
];

/// The policies of a cluster and whether the network plugin enforces them.
#[derive(Debug)]
pub struct PolicyCheck {
    set: PolicySet,
    pods: BTreeMap<String, PodInfo>,
    /// Policy kinds the network plugin enforces (`apiVersion/Kind`), as it declares them.
    pub enforces: Vec<String>,
    /// The user's override: the plugin enforces every kind, or none.
    pub enforced_override: Option<bool>,
    /// The network plugin's name, for messages.
    pub plugin: String,
}

fn pod_info(p: &PodFacts) -> PodInfo {
    PodInfo {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        labels: p.labels.clone(),
        ip: p.ip,
        node: Some(p.node.clone()),
        host_network: p.host_network,
        ports: p
            .ports
            .iter()
            .filter_map(|(name, port, proto)| {
                Some(skoop_policy::ContainerPort {
                    name: name.clone(),
                    port: *port,
                    protocol: policy_protocol(*proto)?,
                })
            })
            .collect(),
    }
}

/// The protocol when policies can name it (TCP, UDP, SCTP; ICMP has no
/// ports for a policy to select).
pub fn policy_protocol(p: Protocol) -> Option<Protocol> {
    Protocol::parse_kubernetes(p.name())
}

impl PolicyCheck {
    /// Read the policies of `view`; `plugin` declares the kinds it `enforces`, and
    /// `enforced_override` (the user's word) replaces that declaration.
    pub fn new(
        view: &ClusterView,
        plugin: &str,
        enforces: &[String],
        enforced_override: Option<bool>,
    ) -> anyhow::Result<PolicyCheck> {
        let mut objects = Vec::new();
        for o in KINDS
            .iter()
            .flat_map(|(api, kind)| view.objects(api, kind, ""))
        {
            objects.push(
                o.typed::<serde_json::Value>()
                    .map_err(|e| bad_input(format!("{}: {e}", o.id())))?,
            );
        }
        let set = PolicySet::from_objects(objects.iter()).map_err(|e| bad_input(e.to_string()))?;
        Ok(PolicyCheck {
            set,
            pods: view
                .pods
                .iter()
                .map(|(id, p)| (id.clone(), pod_info(p)))
                .collect(),
            enforces: enforces.to_vec(),
            enforced_override,
            plugin: plugin.to_string(),
        })
    }

    fn peer<'a>(&'a self, view: &ClusterView, ip: std::net::Ipv4Addr) -> Peer<'a> {
        match view.pod_by_ip(ip).and_then(|p| self.pods.get(&p.id())) {
            Some(p) if !p.host_network => Peer::Pod(p),
            _ => Peer::Ip(ip),
        }
    }

    /// Verdicts for a request that reached `dst_pod` as `arrived` (after DNAT and SNAT),
    /// sent by `src_pod` (when the flow starts at a pod). A source address local to the
    /// destination pod's node (e.g. its bridge address after masquerade) is that node.
    pub fn at_pod(
        &self,
        facts: &Facts,
        src_pod: Option<&str>,
        arrived: &Packet,
        dst_pod: &str,
    ) -> Vec<DirectionVerdict> {
        let Some(proto) = policy_protocol(arrived.protocol) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let Some(dst) = self.pods.get(dst_pod) else {
            return out;
        };
        if let Some(src) = src_pod.and_then(|s| self.pods.get(s)) {
            out.push(self.set.egress(src, &Peer::Pod(dst), arrived.dport, proto));
        }
        let view = &facts.view;
        let mut seen = self.peer(view, arrived.src);
        if let (Peer::Ip(ip), Some(node)) = (seen, view.pods.get(dst_pod).map(|p| &p.node))
            && let Some(n) = view.nodes.get(node)
            && ip != n.ip
            && facts.netstacks.node(node).is_ok_and(|ns| ns.is_local(ip))
        {
            seen = Peer::Ip(n.ip);
        }
        out.push(self.set.ingress(&seen, dst, arrived.dport, proto));
        out
    }

    /// Verdicts for a packet from `src` to `dst` as the destination sees it: egress at `src`
    /// when it is a pod, ingress at `dst` when it is a pod.
    pub fn evaluate(
        &self,
        view: &ClusterView,
        src: std::net::Ipv4Addr,
        dst: std::net::Ipv4Addr,
        dport: u16,
        protocol: Protocol,
    ) -> Vec<DirectionVerdict> {
        let Some(proto) = policy_protocol(protocol) else {
            return Vec::new();
        };
        let (s, d) = (self.peer(view, src), self.peer(view, dst));
        let v = self.set.flow(&s, &d, dport, proto);
        v.egress.into_iter().chain(v.ingress).collect()
    }

    /// The egress verdict for a request leaving the cluster to `arrived.dst`.
    pub fn to_outside(&self, src_pod: &str, arrived: &Packet) -> Option<DirectionVerdict> {
        let proto = policy_protocol(arrived.protocol)?;
        let src = self.pods.get(src_pod)?;
        Some(
            self.set
                .egress(src, &Peer::Ip(arrived.dst), arrived.dport, proto),
        )
    }

    /// Does the plugin enforce the kind that decided `v`?
    pub fn enforced(&self, v: &DirectionVerdict) -> bool {
        let kind = decided_kind(v);
        self.enforced_override
            .unwrap_or_else(|| self.enforces.iter().any(|k| k == kind))
    }

    /// The suspicion for a deny: CRITICAL when enforced (the object verdict
    /// decides), else a WARNING.
    pub fn suspicion(&self, v: &DirectionVerdict) -> Option<(Level, String)> {
        if v.allowed {
            return None;
        }
        let short = short_kind(v);
        Some(if self.enforced(v) {
            (Level::Critical, format!("policy: {}", v.explanation))
        } else {
            (
                Level::Warning,
                format!(
                    "policy (not enforced: {} does not enforce {short}, so the packet passes): {}",
                    self.plugin, v.explanation
                ),
            )
        })
    }

    /// The cross-check of a deny with the dataplane: the plugin declares it
    /// enforces the kind, yet its rules on the node delivered the request
    /// (`delivered`). Not when the user overrode the declaration: then the
    /// enforcement may live where the dumps do not show it.
    pub fn disagreement(&self, v: &DirectionVerdict, delivered: bool) -> Option<String> {
        if v.allowed || !delivered || self.enforced_override.is_some() || !self.enforced(v) {
            return None;
        }
        let short = short_kind(v);
        Some(format!(
            "intent and dataplane differ: {} enforces {short} and the objects deny this request to {}, yet the node's rules let it through; its agent has not programmed them (out of sync), or one of its own policies admits the flow first",
            self.plugin, v.pod
        ))
    }
}

/// The kind alone (`NetworkPolicy`) of the policy that decided a verdict.
fn short_kind(v: &DirectionVerdict) -> &'static str {
    let kind = decided_kind(v);
    kind.rsplit('/').next().unwrap_or(kind)
}

/// The `apiVersion/Kind` of the policy that decided a verdict.
fn decided_kind(v: &DirectionVerdict) -> &'static str {
    match v.decision {
        DecidedBy::AdminNetworkPolicy { .. } => {
            "policy.networking.k8s.io/v1alpha1/AdminNetworkPolicy"
        }
        DecidedBy::BaselineAdminNetworkPolicy { .. } => {
            "policy.networking.k8s.io/v1alpha1/BaselineAdminNetworkPolicy"
        }
        _ => "networking.k8s.io/v1/NetworkPolicy",
    }
}

/// Where the request would arrive if nothing dropped it, for the policy
/// verdicts on the objects alone: the destination pod, each ready backend
/// of the Service (at its target port), the node, or the outside; the
/// source unchanged.
pub fn arrivals_from_objects(view: &ClusterView, request: &Packet) -> Vec<(NetNode, Packet)> {
    let mut arrivals: Vec<(NetNode, Packet)> = Vec::new();
    if let Some(p) = view.pod_by_ip(request.dst) {
        arrivals.push((
            NetNode {
                kind: NetNodeKind::Pod,
                id: p.id(),
            },
            *request,
        ));
    } else if let Some((svc, Some(sp), _)) = crate::service::find(view, request) {
        for ep in view.endpoints.get(&svc.id()).into_iter().flatten() {
            let (Some(pod), true) = (&ep.pod, ep.ready) else {
                continue;
            };
            let Some(port) = crate::service::endpoint_port(ep, sp) else {
                continue;
            };
            let mut p = *request;
            p.dst = ep.ip;
            p.dport = port;
            arrivals.push((
                NetNode {
                    kind: NetNodeKind::Pod,
                    id: pod.clone(),
                },
                p,
            ));
        }
    } else if let Some(n) = view.node_by_ip(request.dst) {
        arrivals.push((
            NetNode {
                kind: NetNodeKind::Node,
                id: n.name.clone(),
            },
            *request,
        ));
    } else {
        arrivals.push((
            NetNode {
                kind: NetNodeKind::External,
                id: request.dst.to_string(),
            },
            *request,
        ));
    }
    arrivals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle;

    /// A corpus bundle: upstream e2e "should support a 'default-deny-ingress' policy".
    fn view() -> ClusterView {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../policy/tests/corpus/e2e-default-deny-ingress");
        bundle::load_dir(&dir, Default::default()).unwrap().view
    }

    fn facts() -> Facts {
        Facts::new(
            view(),
            Default::default(),
            crate::settings::Settings {
                network_plugin: String::new(),
                cloud_provider: String::new(),
                proxy_mode: crate::settings::ProxyMode::None,
                cluster_cidr: None,
                masquerade_mark: None,
                masquerade_all: false,
            },
        )
    }

    fn deny(check: &PolicyCheck, view: &ClusterView) -> DirectionVerdict {
        let facts = facts();
        let ya = view.pods.get("y/a").unwrap().ip.unwrap();
        let xa = view.pods.get("x/a").unwrap().ip.unwrap();
        let p = Packet {
            src: ya,
            sport: 40000,
            dst: xa,
            dport: 80,
            protocol: Protocol::Tcp,
            mark: 0,
            encap: None,
            reply: false,
            tos: 0,
            size: 0,
            icmp: None,
        };
        let v = check.at_pod(&facts, Some("y/a"), &p, "x/a");
        v.into_iter()
            .find(|d| !d.allowed)
            .expect("x/a's default deny denies y/a")
    }

    #[test]
    fn the_declared_kinds_decide_the_level() {
        let view = view();
        let flannel = PolicyCheck::new(&view, "flannel", &[], None).unwrap();
        let v = deny(&flannel, &view);
        let (level, msg) = flannel.suspicion(&v).unwrap();
        assert_eq!(level, Level::Warning);
        assert!(
            msg.contains("flannel does not enforce NetworkPolicy"),
            "{msg}"
        );
        assert!(msg.contains("x/deny-ingress"), "{msg}");

        let enforcing = PolicyCheck::new(
            &view,
            "calico",
            &["networking.k8s.io/v1/NetworkPolicy".to_string()],
            None,
        )
        .unwrap();
        let (level, msg) = enforcing.suspicion(&deny(&enforcing, &view)).unwrap();
        assert_eq!(level, Level::Critical);
        // Delivered by the dataplane although the objects deny: the two differ.
        let v = deny(&enforcing, &view);
        let differ = enforcing.disagreement(&v, true).unwrap();
        assert!(
            differ.contains("intent and dataplane differ") && differ.contains("calico"),
            "{differ}"
        );
        assert_eq!(enforcing.disagreement(&v, false), None);
        assert_eq!(flannel.disagreement(&deny(&flannel, &view), true), None);
        assert!(msg.starts_with("policy: "), "{msg}");

        // The user's word wins both ways.
        let forced = PolicyCheck::new(&view, "flannel", &[], Some(true)).unwrap();
        // The user's word: enforcement may be where the dumps do not show it.
        assert_eq!(forced.disagreement(&deny(&forced, &view), true), None);
        assert_eq!(
            forced.suspicion(&deny(&forced, &view)).unwrap().0,
            Level::Critical
        );
        let waived = PolicyCheck::new(
            &view,
            "calico",
            &["networking.k8s.io/v1/NetworkPolicy".to_string()],
            Some(false),
        )
        .unwrap();
        assert_eq!(
            waived.suspicion(&deny(&waived, &view)).unwrap().0,
            Level::Warning
        );
    }
}
