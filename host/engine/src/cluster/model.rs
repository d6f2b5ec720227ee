//! The cluster as the diagnosis sees it: nodes, pods, Services and their
//! endpoints as typed facts, indexed so "what is this IP" is one lookup, and
//! the objects kept as JSON for detection and extensions.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::Ipv4Net;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::value::RawValue;

use skoop_netstack::packet::Protocol;

/// A node as the diagnosis needs it.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub name: String,
    pub ip: Ipv4Addr,
    pub pod_cidrs: Vec<Ipv4Net>,
    pub ready: bool,
    pub annotations: Vec<(String, String)>,
    /// Node labels (a plugin's node selectors, e.g. Calico's IPPool `nodeSelector`).
    pub labels: Vec<(String, String)>,
    /// The interface holding `ip` in the node's dump (filled by detection).
    pub host_interface: Option<String>,
    /// `spec.providerID` (`aws:///us-east-1a/i-0abc`): how a cloud provider finds the machine.
    pub provider_id: Option<String>,
}

/// A pod as the diagnosis needs it.
#[derive(Debug, Clone)]
pub struct PodFacts {
    pub namespace: String,
    pub name: String,
    pub ip: Option<Ipv4Addr>,
    pub node: String,
    pub host_network: bool,
    pub ready: bool,
    pub phase: String,
    /// (name, port, protocol) of container ports.
    pub ports: Vec<(String, u16, Protocol)>,
    /// `spec.hostname` and `spec.subdomain`, when both are set: the pod's
    /// DNS name is then `HOSTNAME.SUBDOMAIN.NAMESPACE.svc.DOMAIN`.
    pub dns_name: Option<(String, String)>,
    pub labels: BTreeMap<String, String>,
    /// Annotations (a CNI's address annotations, e.g. Terway's
    /// `k8s.aliyun.com/pod-ips`), less kubectl's last-applied copy.
    pub annotations: Vec<(String, String)>,
    /// The DaemonSet owning the pod, if one does.
    pub daemonset: Option<String>,
}

impl PodFacts {
    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A service port.
#[derive(Debug, Clone)]
pub struct ServicePortFacts {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    pub node_port: Option<u16>,
    pub target_port: Option<IntOrString>,
}

/// A service as the diagnosis needs it.
#[derive(Debug, Clone)]
pub struct ServiceFacts {
    pub namespace: String,
    pub name: String,
    pub service_type: String,
    pub cluster_ips: Vec<Ipv4Addr>,
    /// `spec.externalIPs`.
    pub external_ips: Vec<Ipv4Addr>,
    /// `status.loadBalancer.ingress[].ip`.
    pub load_balancer_ips: Vec<Ipv4Addr>,
    pub ports: Vec<ServicePortFacts>,
    pub external_traffic_local: bool,
}

impl ServiceFacts {
    /// An address the Service is reached by from outside the cluster.
    pub fn outside_address(&self, ip: Ipv4Addr) -> bool {
        self.external_ips.contains(&ip) || self.load_balancer_ips.contains(&ip)
    }

    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// One address of an EndpointSlice.
#[derive(Debug, Clone)]
pub struct EndpointFacts {
    pub ip: Ipv4Addr,
    pub ready: bool,
    pub node: Option<String>,
    /// `namespace/name` of the target pod.
    pub pod: Option<String>,
    /// (port name, port, protocol) of the slice.
    pub ports: Vec<(String, u16, Protocol)>,
}

/// What an address is.
#[derive(Debug, Clone)]
pub enum Owner<'a> {
    Pod(&'a PodFacts),
    Node(&'a NodeFacts),
    Service(&'a ServiceFacts),
    External(Ipv4Addr),
}

/// A Kubernetes object kept as JSON for readers outside the view (detection,
/// extensions): kubectl-shaped, with `apiVersion` and `kind`.
#[derive(Debug)]
pub struct RawObject {
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
    pub(super) json: RawJson,
}

/// An object's JSON: its own copy, or its place in the text it was read
/// from — a large `cluster.json` whose objects are mostly kept (a cloud
/// provider reads every Service and EndpointSlice) is not copied piece by
/// piece.
#[derive(Debug)]
pub(super) enum RawJson {
    Owned(Box<RawValue>),
    Shared {
        text: Arc<String>,
        start: usize,
        end: usize,
    },
}

impl RawJson {
    pub(super) fn get(&self) -> &str {
        match self {
            RawJson::Owned(v) => v.get(),
            RawJson::Shared { text, start, end } => text.get(*start..*end).unwrap_or_default(),
        }
    }
}

impl RawObject {
    /// The object as JSON text.
    pub fn json(&self) -> &str {
        self.json.get()
    }

    /// The object as a typed value (e.g. `ConfigMap`).
    pub fn typed<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.json.get())
    }

    /// `namespace/name`, or `name` when cluster-scoped.
    pub fn id(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

/// An object that could not be read, and was left out of the view. What
/// could be read of it (its kind, name, addresses, the Service a slice
/// serves) says which flows it would have concerned.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// Where it was read from (`DIR/cluster.json`, a LIST page).
    pub origin: String,
    /// Its place there (`items[412]`).
    pub item: String,
    pub api_version: String,
    pub kind: String,
    /// Empty when unreadable, or for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
    /// The field at fault and why.
    pub fault: skoop_error::json::Unreadable,
    /// The IPv4 addresses it names (pod, Service, node, endpoint addresses).
    pub addresses: Vec<Ipv4Addr>,
    /// For an EndpointSlice, its Service (`namespace/name`).
    pub service: Option<String>,
}

impl Skipped {
    /// `Pod other/broken`, `EndpointSlice default/web-x`, `an object`.
    pub fn what(&self) -> String {
        let kind = if self.kind.is_empty() {
            "object"
        } else {
            self.kind.as_str()
        };
        match (self.namespace.is_empty(), self.name.is_empty()) {
            (_, true) => {
                let article = match kind.chars().next() {
                    Some('A' | 'E' | 'I' | 'O' | 'U' | 'a' | 'e' | 'i' | 'o' | 'u') => "an",
                    _ => "a",
                };
                format!("{article} {kind} without a readable name")
            }
            (true, false) => format!("{kind} {}", self.name),
            (false, false) => format!("{kind} {}/{}", self.namespace, self.name),
        }
    }

    /// `DIR/cluster.json: items[412].spec.containers: expected a list,
    /// found the string "oops" (Pod other/broken skipped)`.
    pub fn message(&self) -> String {
        format!(
            "{}: {}: {} ({} skipped)",
            self.origin,
            self.fault.at(&self.item),
            self.fault.reason,
            self.what()
        )
    }
}

/// Every object of the cluster, indexed.
#[derive(Debug, Default)]
pub struct ClusterView {
    pub nodes: BTreeMap<String, NodeFacts>,
    pub pods: BTreeMap<String, PodFacts>,
    pub services: BTreeMap<String, ServiceFacts>,
    /// Endpoints by service id.
    pub endpoints: BTreeMap<String, Vec<EndpointFacts>>,
    /// Objects kept as JSON by (apiVersion, kind), see [`Retain`](super::Retain).
    pub(super) objects: HashMap<(String, String), Vec<RawObject>>,
    /// Objects seen per kind, kept or not.
    counts: BTreeMap<(String, String), usize>,
    /// Objects that could not be read.
    skipped: Vec<Skipped>,
    pod_by_ip: HashMap<Ipv4Addr, Vec<String>>,
    node_by_ip: HashMap<Ipv4Addr, String>,
    service_by_ip: HashMap<Ipv4Addr, String>,
}

impl ClusterView {
    /// How many objects of each kind were read, kept or not.
    pub fn counts(&self) -> &BTreeMap<(String, String), usize> {
        &self.counts
    }

    /// The objects that could not be read and were left out.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    pub(super) fn skip(&mut self, skipped: Skipped) {
        self.skipped.push(skipped);
    }

    /// Whether any object of this kind was read.
    pub fn has_kind(&self, api_version: &str, kind: &str) -> bool {
        self.counts
            .contains_key(&(api_version.to_string(), kind.to_string()))
    }

    /// Add a node, indexed by its InternalIP.
    pub(super) fn add_node(&mut self, node: NodeFacts) {
        self.node_by_ip.insert(node.ip, node.name.clone());
        self.nodes.insert(node.name.clone(), node);
    }

    /// Add a pod, indexed by its IP unless it is on the host network.
    pub(super) fn add_pod(&mut self, facts: PodFacts) {
        if let (Some(ip), false) = (facts.ip, facts.host_network) {
            self.pod_by_ip.entry(ip).or_default().push(facts.id());
        }
        self.pods.insert(facts.id(), facts);
    }

    /// Add a Service, indexed by every address kube-proxy matches it by.
    pub(super) fn add_service(&mut self, facts: ServiceFacts) {
        // kube-proxy matches all three kinds of address in KUBE-SERVICES.
        let id = facts.id();
        for ip in facts
            .cluster_ips
            .iter()
            .chain(&facts.external_ips)
            .chain(&facts.load_balancer_ips)
        {
            self.service_by_ip.insert(*ip, id.clone());
        }
        self.services.insert(id, facts);
    }

    /// Add the endpoints of one EndpointSlice of Service `service` (its id).
    pub(super) fn add_endpoints(&mut self, service: String, endpoints: Vec<EndpointFacts>) {
        let list = self.endpoints.entry(service).or_default();
        if list.is_empty() {
            *list = endpoints;
        } else {
            list.extend(endpoints);
        }
    }

    /// Count an object of kind `api`/`kind`, kept or not.
    pub(super) fn count(&mut self, api: &str, kind: &str) {
        // A few kinds, many objects: find the count before making a key.
        match self
            .counts
            .iter_mut()
            .find(|((a, k), _)| *a == api && *k == kind)
        {
            Some((_, n)) => *n += 1,
            None => {
                self.counts.insert((api.to_string(), kind.to_string()), 1);
            }
        }
    }

    /// Keep an object of kind `api`/`kind` as JSON.
    pub(super) fn keep(&mut self, api: String, kind: String, object: RawObject) {
        self.objects.entry((api, kind)).or_default().push(object);
    }

    /// The running pod that holds `ip` (host-network pods are not indexed).
    pub fn pod_by_ip(&self, ip: Ipv4Addr) -> Option<&PodFacts> {
        let ids = self.pod_by_ip.get(&ip)?;
        let pods = ids.iter().filter_map(|id| self.pods.get(id));
        let mut best = None;
        for p in pods {
            if p.phase == "Running" {
                return Some(p);
            }
            best.get_or_insert(p);
        }
        best
    }

    /// The node whose InternalIP is `ip`.
    pub fn node_by_ip(&self, ip: Ipv4Addr) -> Option<&NodeFacts> {
        self.node_by_ip.get(&ip).and_then(|n| self.nodes.get(n))
    }

    /// The service whose cluster IP is `ip`.
    pub fn service_by_ip(&self, ip: Ipv4Addr) -> Option<&ServiceFacts> {
        self.service_by_ip
            .get(&ip)
            .and_then(|s| self.services.get(s))
    }

    /// A service exposing `port` as a NodePort.
    pub fn service_by_node_port(&self, port: u16, protocol: Protocol) -> Option<&ServiceFacts> {
        self.services.values().find(|s| {
            s.ports
                .iter()
                .any(|p| p.node_port == Some(port) && p.protocol == protocol)
        })
    }

    /// What `ip` is, given the destination port.
    pub fn classify(&self, ip: Ipv4Addr, port: u16, protocol: Protocol) -> Owner<'_> {
        if let Some(s) = self.service_by_ip(ip) {
            return Owner::Service(s);
        }
        if let Some(n) = self.node_by_ip(ip) {
            if let Some(s) = self.service_by_node_port(port, protocol) {
                return Owner::Service(s);
            }
            return Owner::Node(n);
        }
        if let Some(p) = self.pod_by_ip(ip) {
            return Owner::Pod(p);
        }
        Owner::External(ip)
    }

    /// The nodes a flow from `src` to `dst` will reach: the source's node
    /// and the destination's (for a Service, the nodes of its ready
    /// endpoints, else of all its endpoints). Loading them up front, in
    /// parallel, is what makes a diagnosis fast; a node missed here is still
    /// loaded when the path reaches it.
    pub fn nodes_for(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        port: u16,
        protocol: Protocol,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |n: &str| {
            if !n.is_empty() && self.nodes.contains_key(n) && !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        };
        let of_ip = |ip: Ipv4Addr, add: &mut dyn FnMut(&str)| {
            if let Some(p) = self.pod_by_ip(ip) {
                add(&p.node);
            } else if let Some(n) = self.node_by_ip(ip) {
                add(&n.name);
            }
        };
        of_ip(src, &mut add);
        match self.classify(dst, port, protocol) {
            Owner::Service(s) => {
                if let Some(n) = self.node_by_ip(dst) {
                    add(&n.name);
                }
                let eps = self
                    .endpoints
                    .get(&s.id())
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let any_ready = eps.iter().any(|e| e.ready);
                for ep in eps.iter().filter(|e| e.ready || !any_ready) {
                    match (&ep.node, ep.pod.as_ref().and_then(|p| self.pods.get(p))) {
                        (Some(n), _) => add(n),
                        (None, Some(p)) => add(&p.node),
                        (None, None) => of_ip(ep.ip, &mut add),
                    }
                }
            }
            Owner::Pod(p) => add(&p.node),
            Owner::Node(n) => add(&n.name),
            Owner::External(_) => {}
        }
        out
    }

    /// Objects kept of a kind (see [`Retain`]), optionally in one namespace.
    pub fn objects(&self, api_version: &str, kind: &str, namespace: &str) -> Vec<&RawObject> {
        self.objects
            .get(&(api_version.to_string(), kind.to_string()))
            .map(|list| {
                list.iter()
                    .filter(|o| namespace.is_empty() || o.namespace == namespace)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One kept object by name.
    pub fn object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<&RawObject> {
        self.objects(api_version, kind, namespace)
            .into_iter()
            .find(|o| o.name == name)
    }
}
