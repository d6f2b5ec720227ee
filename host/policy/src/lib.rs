//! skoop's policy evaluator, owned by the host (no wasmtime, no API client).
//!
//! Exact Kubernetes semantics for `networking.k8s.io/v1` NetworkPolicy and
//! `policy.networking.k8s.io/v1alpha1` AdminNetworkPolicy / BaselineAdminNetworkPolicy,
//! with the precedence ANP → NetworkPolicy → BANP. Every verdict carries its explanation:
//! the policy and rule that allowed, or for a deny the policies selecting the pod and the
//! nearest misses.
//!
//! The evaluator works on the packet as the pod sees it: callers pass the backend pod and
//! target port after Service DNAT, and the source address the destination sees (a
//! masqueraded flow arrives from a node address).

mod admin;
mod eval;
pub mod matrix;
mod netpol;
mod objects;
pub mod selector;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::Ipv4Addr;

use skoop_netstack::packet::Protocol;

pub use eval::{AdminRuleRef, DecidedBy, Direction, DirectionVerdict, FlowVerdict, Miss};
pub use objects::pods_from_objects;
pub use selector::{Labels, Selector};

/// The label the API server puts on every namespace.
const NS_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A malformed policy object.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The object cannot be read; names its kind and `namespace/name`.
    #[error("{kind} {name} is malformed: {reason}")]
    Malformed {
        kind: String,
        name: String,
        reason: String,
    },
}

/// A container port a named policy port can resolve to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerPort {
    pub name: String,
    pub port: u16,
    pub protocol: Protocol,
}

/// A pod as policies see it.
#[derive(Debug, Clone, Default)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub ip: Option<Ipv4Addr>,
    /// The node the pod runs on (for "traffic from the pod's own node is always allowed").
    pub node: Option<String>,
    /// hostNetwork pods are never selected by a policy (their traffic is the node's).
    pub host_network: bool,
    pub ports: Vec<ContainerPort>,
}

impl PodInfo {
    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// One side of a flow.
#[derive(Debug, Clone, Copy)]
pub enum Peer<'a> {
    /// A pod (not hostNetwork: a hostNetwork pod is passed as its node's address).
    Pod(&'a PodInfo),
    /// Any other address: a node, something outside the cluster, a masqueraded source.
    Ip(Ipv4Addr),
}

impl Peer<'_> {
    /// The address, if known.
    pub fn ip(&self) -> Option<Ipv4Addr> {
        match self {
            Peer::Pod(p) => p.ip,
            Peer::Ip(ip) => Some(*ip),
        }
    }

    /// A short description (`ns/name (ip)` or the address).
    pub fn describe(&self) -> String {
        match self {
            Peer::Pod(p) => match p.ip {
                Some(ip) => format!("pod {} ({ip})", p.id()),
                None => format!("pod {}", p.id()),
            },
            Peer::Ip(ip) => ip.to_string(),
        }
    }

    fn pod(&self) -> Option<&PodInfo> {
        match self {
            Peer::Pod(p) if !p.host_network => Some(p),
            _ => None,
        }
    }
}

/// A node as policies see it (AdminNetworkPolicy `nodes` peers, node-local traffic).
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub name: String,
    pub labels: Labels,
    pub ips: Vec<Ipv4Addr>,
}

/// Every policy of a cluster, compiled; evaluation is read-only.
#[derive(Debug, Default)]
pub struct PolicySet {
    namespaces: HashMap<String, Labels>,
    nodes: Vec<NodeInfo>,
    netpols: Vec<netpol::NetPol>,
    netpols_by_ns: HashMap<String, Vec<usize>>,
    /// Sorted by (priority, name): lowest priority number first.
    anps: Vec<admin::AdminPolicy>,
    banps: Vec<admin::AdminPolicy>,
}

/// Whether the evaluator can read `json`, an object of `api_version`/`kind`
/// (other kinds it does not read are fine): the field at fault by its JSON
/// path when serde says, else the reason naming it.
pub fn check_object(
    api_version: &str,
    kind: &str,
    json: &str,
) -> Result<(), skoop_error::json::Unreadable> {
    use skoop_error::json::{Unreadable, read_value};
    let read = |v: &serde_json::Value| -> Result<(), PolicyError> {
        match (api_version, kind) {
            ("networking.k8s.io/v1", "NetworkPolicy") => netpol::NetPol::from_value(v).map(drop),
            (a, "AdminNetworkPolicy") if a.starts_with("policy.networking.k8s.io/") => {
                admin::AdminPolicy::from_value(v, false).map(drop)
            }
            (a, "BaselineAdminNetworkPolicy") if a.starts_with("policy.networking.k8s.io/") => {
                admin::AdminPolicy::from_value(v, true).map(drop)
            }
            _ => Ok(()),
        }
    };
    if !matches!(
        kind,
        "NetworkPolicy" | "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy"
    ) {
        return Ok(());
    }
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| Unreadable::new("", skoop_error::json::plain(&e)))?;
    if kind == "NetworkPolicy" {
        read_value::<k8s_openapi::api::networking::v1::NetworkPolicy>(&v)?;
    }
    read(&v).map_err(|e| match e {
        PolicyError::Malformed { reason, .. } => Unreadable::new("", reason),
    })
}

impl PolicySet {
    /// Read Namespaces, Nodes, NetworkPolicies, AdminNetworkPolicies and
    /// BaselineAdminNetworkPolicies out of Kubernetes objects (other kinds are ignored).
    pub fn from_objects<'a>(
        objects: impl IntoIterator<Item = &'a serde_json::Value>,
    ) -> Result<PolicySet, PolicyError> {
        let mut set = PolicySet::default();
        for v in objects {
            let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("");
            let api = v.get("apiVersion").and_then(|k| k.as_str()).unwrap_or("");
            match (api, kind) {
                ("v1", "Namespace") => {
                    let (name, mut labels) = objects::namespace(v)?;
                    labels
                        .entry(NS_NAME_LABEL.into())
                        .or_insert_with(|| name.clone());
                    set.namespaces.insert(name, labels);
                }
                ("v1", "Node") => set.nodes.push(objects::node(v)?),
                ("networking.k8s.io/v1", "NetworkPolicy") => {
                    set.netpols.push(netpol::NetPol::from_value(v)?)
                }
                (a, "AdminNetworkPolicy") if a.starts_with("policy.networking.k8s.io/") => {
                    set.anps.push(admin::AdminPolicy::from_value(v, false)?)
                }
                (a, "BaselineAdminNetworkPolicy") if a.starts_with("policy.networking.k8s.io/") => {
                    set.banps.push(admin::AdminPolicy::from_value(v, true)?)
                }
                _ => {}
            }
        }
        set.index();
        Ok(set)
    }

    fn index(&mut self) {
        self.netpols
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        self.netpols_by_ns.clear();
        for (i, p) in self.netpols.iter().enumerate() {
            self.netpols_by_ns
                .entry(p.namespace.clone())
                .or_default()
                .push(i);
        }
        self.anps
            .sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
        self.banps.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// Number of NetworkPolicies, AdminNetworkPolicies and BaselineAdminNetworkPolicies.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.netpols.len(), self.anps.len(), self.banps.len())
    }

    /// Labels of a namespace; the API server always sets `kubernetes.io/metadata.name`.
    pub(crate) fn namespace_labels(&self, ns: &str) -> Cow<'_, Labels> {
        match self.namespaces.get(ns) {
            Some(l) => Cow::Borrowed(l),
            None => Cow::Owned(Labels::from([(NS_NAME_LABEL.to_string(), ns.to_string())])),
        }
    }

    pub(crate) fn node_of_ip(&self, ip: Ipv4Addr) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.ips.contains(&ip))
    }

    pub(crate) fn node_ips(&self, name: &str) -> &[Ipv4Addr] {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.ips.as_slice())
            .unwrap_or(&[])
    }

    /// Every CIDR any policy names (ipBlock, networks), for grouping pods exactly.
    pub(crate) fn cidrs(&self) -> Vec<(ipnet::Ipv4Net, Vec<ipnet::Ipv4Net>)> {
        let mut out = Vec::new();
        for p in &self.netpols {
            p.cidrs(&mut out);
        }
        for p in self.anps.iter().chain(&self.banps) {
            p.cidrs(&mut out);
        }
        out
    }
}
