//! Objects the reader could not read and left out: a WARNING in the report
//! where the flow needs one (its source or destination, the destination
//! Service's endpoints, the node of a pod on the path, a policy that may
//! select either end) and then the verdict cannot be "healthy"; one INFO
//! for those the flow does not need.

use std::collections::BTreeSet;

use skoop_engine::cluster::{ClusterView, Owner, Skipped};
use skoop_engine::flow::Flow;
use skoop_engine::report::Report;
use skoop_engine::suspicion::{Level, Suspicion};

/// How many off-path objects the INFO names.
const NAMED: usize = 3;

/// Add what the skipped objects of `view` mean for `flow` to `report`.
pub(crate) fn judge(report: &mut Report, view: &ClusterView, flow: &Flow) {
    let skipped = view.skipped();
    if skipped.is_empty() {
        return;
    }
    let on_path = OnPath::of(view, flow);
    let mut off = Vec::new();
    let mut added = false;
    for s in skipped {
        match on_path.why(s, flow) {
            Some(why) => {
                report.suspicions.push(Suspicion {
                    level: Level::Warning,
                    node: None,
                    message: format!(
                        "cannot decide: {} could not be read and was left out ({}: {}); {why}",
                        s.what(),
                        s.fault.at(&format!("{} {}", s.origin, s.item)),
                        s.fault.reason
                    ),
                });
                added = true;
            }
            None => off.push(s),
        }
    }
    if !off.is_empty() {
        let named: Vec<String> = off.iter().take(NAMED).map(|s| s.message()).collect();
        let more = off.len().saturating_sub(NAMED);
        report.suspicions.push(Suspicion {
            level: Level::Info,
            node: None,
            message: format!(
                "{} object{} could not be read and {} left out, none of them on this flow's path: {}{}",
                off.len(),
                if off.len() == 1 { "" } else { "s" },
                if off.len() == 1 { "was" } else { "were" },
                named.join("; "),
                if more > 0 {
                    format!("; and {more} more")
                } else {
                    String::new()
                }
            ),
        });
    }
    report
        .suspicions
        .sort_by_key(|s| std::cmp::Reverse(s.level));
    if added && report.verdict == "healthy" {
        report.verdict = "partial";
    }
}

/// What a flow needs of the cluster's objects.
struct OnPath {
    /// The destination Service (`namespace/name`), if the flow goes to one.
    service: Option<String>,
    /// Namespaces of the pods at either end (a Service's: its endpoints').
    namespaces: BTreeSet<String>,
    /// Nodes of the pods at either end.
    nodes: BTreeSet<String>,
}

impl OnPath {
    fn of(view: &ClusterView, flow: &Flow) -> OnPath {
        let mut on = OnPath {
            service: None,
            namespaces: BTreeSet::new(),
            nodes: BTreeSet::new(),
        };
        let pod = |id: &str, on: &mut OnPath| {
            if let Some(p) = view.pods.get(id) {
                on.namespaces.insert(p.namespace.clone());
                on.nodes.insert(p.node.clone());
            }
        };
        if let Some(p) = view.pod_by_ip(flow.src) {
            pod(&p.id(), &mut on);
        }
        match view.classify(flow.dst, flow.dport, flow.protocol) {
            Owner::Pod(p) => pod(&p.id(), &mut on),
            Owner::Service(s) => {
                on.service = Some(s.id());
                on.namespaces.insert(s.namespace.clone());
                for e in view.endpoints.get(&s.id()).into_iter().flatten() {
                    if let Some(id) = &e.pod {
                        pod(id, &mut on);
                    }
                    if let Some(n) = &e.node {
                        on.nodes.insert(n.clone());
                    }
                }
            }
            Owner::Node(_) | Owner::External(_) => {}
        }
        on
    }

    /// Why the flow needs `s`, if it does.
    fn why(&self, s: &Skipped, flow: &Flow) -> Option<String> {
        if s.addresses.contains(&flow.src) {
            return Some(format!(
                "it holds this flow's source address {}, so what sends the flow (its pod or node, its labels for the policies) is unknown",
                flow.src
            ));
        }
        if s.addresses.contains(&flow.dst) {
            return Some(format!(
                "it holds this flow's destination address {}, so what receives the flow (its pod, Service or node, its ports and labels) is unknown",
                flow.dst
            ));
        }
        if s.service.is_some() && s.service == self.service {
            return Some(format!(
                "it is a slice of Service {}, the flow's destination, whose endpoints may be more than those read",
                s.service.as_deref().unwrap_or_default()
            ));
        }
        if s.kind == "Node" && !s.name.is_empty() && self.nodes.contains(&s.name) {
            return Some(
                "a pod at one end of the flow runs on it, and its address and settings are unknown"
                    .into(),
            );
        }
        match s.kind.as_str() {
            "NetworkPolicy" if self.namespaces.contains(&s.namespace) => Some(format!(
                "it may select a pod at one end of the flow (namespace {}), so the policy verdict is unknown",
                s.namespace
            )),
            "NetworkPolicy" if s.namespace.is_empty() => Some(
                "its namespace is unreadable, so it may select a pod at either end and the policy verdict is unknown".into(),
            ),
            "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy" => Some(
                "it is cluster-wide and may select either end, so the policy verdict is unknown"
                    .into(),
            ),
            _ => None,
        }
    }
}
