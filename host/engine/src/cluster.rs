//! The cluster view: Kubernetes objects read into typed facts (borrowing from
//! the JSON, skipping what is not needed), indexed so "what is this IP" is
//! one lookup; the kinds detection and extensions read stay as JSON.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use ipnet::Ipv4Net;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::bad_input;
use crate::packet::Protocol;

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
pub enum Classified<'a> {
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
    json: RawJson,
}

/// An object's JSON: its own copy, or its place in the text it was read
/// from — a large `cluster.json` whose objects are mostly kept (a cloud
/// provider reads every Service and EndpointSlice) is not copied piece by
/// piece.
#[derive(Debug)]
enum RawJson {
    Owned(Box<RawValue>),
    Shared {
        text: Arc<String>,
        start: usize,
        end: usize,
    },
}

impl RawJson {
    fn get(&self) -> &str {
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

/// Kinds (`apiVersion`, `kind`) whose objects are kept as JSON: what the host
/// itself reads from objects (DaemonSets and ConfigMaps for detection,
/// policy objects) plus what loaded extensions declare they read. The rest
/// is interpreted into the view and dropped, so a large cluster costs what
/// its Pods, Services and EndpointSlices need, not their whole JSON.
#[derive(Debug, Clone)]
pub struct Retain {
    kinds: HashSet<(String, String)>,
    /// Every kind (but Secrets): for reading a bundle before the loaded
    /// extensions are known; [`ClusterView::retain_only`] drops the rest.
    all: bool,
}

/// Kinds the host reads as objects.
pub const HOST_READS: &[(&str, &str)] = &[
    ("v1", "ConfigMap"),
    ("apps/v1", "DaemonSet"),
    ("v1", "Namespace"),
    // Node labels, for AdminNetworkPolicy `nodes` peers.
    ("v1", "Node"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy"),
    (
        "policy.networking.k8s.io/v1alpha1",
        "BaselineAdminNetworkPolicy",
    ),
];

impl Default for Retain {
    fn default() -> Retain {
        Retain::host()
    }
}

impl Retain {
    /// The host's own kinds.
    pub fn host() -> Retain {
        Retain {
            kinds: HOST_READS
                .iter()
                .map(|(a, k)| (a.to_string(), k.to_string()))
                .collect(),
            all: false,
        }
    }

    /// Every kind but Secrets, to be narrowed later with
    /// [`ClusterView::retain_only`].
    pub fn all() -> Retain {
        Retain {
            all: true,
            ..Retain::host()
        }
    }

    /// The host's kinds and `reads`, each `apiVersion/Kind` (e.g. `v1/ConfigMap`,
    /// `crd.projectcalico.org/v1/IPPool`) as extensions declare them.
    pub fn with_reads<'a>(reads: impl IntoIterator<Item = &'a str>) -> Retain {
        let mut r = Retain::host();
        for read in reads {
            if let Some((api, kind)) = read.rsplit_once('/') {
                r.kinds.insert((api.to_string(), kind.to_string()));
            }
        }
        r
    }

    /// Whether objects of this kind are kept (never Secrets).
    pub fn keeps(&self, api_version: &str, kind: &str) -> bool {
        kind != "Secret"
            && (self.all
                || self
                    .kinds
                    .iter()
                    .any(|(a, k)| a == api_version && k == kind))
    }

    /// Every kind kept, as `apiVersion/Kind`.
    pub fn kinds(&self) -> impl Iterator<Item = String> + '_ {
        self.kinds.iter().map(|(a, k)| format!("{a}/{k}"))
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
    /// Objects kept as JSON by (apiVersion, kind), see [`Retain`].
    objects: HashMap<(String, String), Vec<RawObject>>,
    /// Objects seen per kind, kept or not.
    counts: BTreeMap<(String, String), usize>,
    pod_by_ip: HashMap<Ipv4Addr, Vec<String>>,
    node_by_ip: HashMap<Ipv4Addr, String>,
    service_by_ip: HashMap<Ipv4Addr, String>,
}

// What the view reads of each object: typed, borrowing from the JSON text
// where it can, everything else skipped unread.

#[derive(Deserialize)]
struct List<'a> {
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    metadata: Option<ListMeta>,
}

#[derive(Deserialize)]
struct ListMeta {
    #[serde(default, rename = "continue")]
    continue_: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head<'a> {
    #[serde(borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    metadata: NameMeta<'a>,
}

/// One list item as read: its head, and its typed form for the kinds the
/// view interprets. Borrows from the JSON text; reading needs nothing from
/// the view, so items can be read on another thread.
struct Parsed<'a> {
    head: Head<'a>,
    api: Cow<'a, str>,
    kind: Cow<'a, str>,
    typed: Typed<'a>,
}

enum Typed<'a> {
    Node(NodeObj<'a>),
    Pod(PodObj<'a>),
    Service(ServiceFacts),
    /// A Service's id and endpoints; `None` when the slice adds none.
    Slice(Option<(String, Vec<EndpointFacts>)>),
    Other,
}

impl<'a> Parsed<'a> {
    /// `of` gives the apiVersion and kind when the JSON lacks them.
    fn read(item: &'a RawValue, of: Option<(&'a str, &'a str)>, origin: &str) -> Result<Self> {
        let json = item.get();
        if let Some(parsed) = Parsed::read_once(json, of, origin) {
            return parsed;
        }
        let head: Head<'a> = serde_json::from_str(json).map_err(|e| json_error(origin, &e))?;
        let (api, kind) = match of {
            Some((a, k)) => (Cow::Borrowed(a), Cow::Borrowed(k)),
            None => (
                head.api_version.clone().unwrap_or_default(),
                head.kind.clone().unwrap_or_default(),
            ),
        };
        let what = |kind: &'static str| {
            let meta = &head.metadata;
            move |e: serde_json::Error| {
                let (name, namespace) = (text(&meta.name), text(&meta.namespace));
                let id = if namespace.is_empty() {
                    name
                } else {
                    format!("{namespace}/{name}")
                };
                bad_input(format!("{origin}: {kind} {id} is malformed: {e}"))
            }
        };
        let typed = match (api.as_ref(), kind.as_ref()) {
            ("v1", "Node") => Typed::Node(serde_json::from_str(json).map_err(what("Node"))?),
            ("v1", "Pod") => Typed::Pod(serde_json::from_str(json).map_err(what("Pod"))?),
            ("v1", "Service") => Typed::Service(service_facts(
                serde_json::from_str(json).map_err(what("Service"))?,
                origin,
            )?),
            ("discovery.k8s.io/v1", "EndpointSlice") => Typed::Slice(slice_endpoints(
                serde_json::from_str(json).map_err(what("EndpointSlice"))?,
                origin,
            )?),
            _ => Typed::Other,
        };
        Ok(Parsed {
            head,
            api,
            kind,
            typed,
        })
    }

    /// An object of a kind the view interprets, read in one pass rather
    /// than two (its head, then the object): the kind is given (`of`) or
    /// guessed from the text, and a guess must be confirmed by the
    /// object's own apiVersion and kind. None: read it the long way — not
    /// such a kind, a wrong guess, or an error the long way words.
    fn read_once(
        json: &'a str,
        of: Option<(&'a str, &'a str)>,
        origin: &str,
    ) -> Option<Result<Self>> {
        let (api, kind) = match of {
            Some(k) => k,
            None => guess_kind(json)?,
        };
        // The object's own apiVersion and kind must confirm a guess.
        let confirm = |h: &Head<'_>| {
            of.is_some()
                || (h.api_version.as_deref() == Some(api) && h.kind.as_deref() == Some(kind))
        };
        let (head, typed) = match (api, kind) {
            ("v1", "Node") => read_as(json, confirm).map(|(h, o)| (h, Typed::Node(o)))?,
            ("v1", "Pod") => read_as(json, confirm).map(|(h, o)| (h, Typed::Pod(o)))?,
            ("v1", "Service") => {
                let (h, o) = read_as(json, confirm)?;
                match service_facts(o, origin) {
                    Ok(f) => (h, Typed::Service(f)),
                    Err(e) => return Some(Err(e)),
                }
            }
            ("discovery.k8s.io/v1", "EndpointSlice") => {
                let (h, o) = read_as(json, confirm)?;
                match slice_endpoints(o, origin) {
                    Ok(s) => (h, Typed::Slice(s)),
                    Err(e) => return Some(Err(e)),
                }
            }
            _ => return None,
        };
        Some(Ok(Parsed {
            head,
            api: Cow::Borrowed(api),
            kind: Cow::Borrowed(kind),
            typed,
        }))
    }
}

/// An interpreted object's head, read from its own fields.
trait Headed<'a> {
    fn head(&self) -> Head<'a>;
}

macro_rules! headed {
    ($($t:ident),*) => {$(
        impl<'a> Headed<'a> for $t<'a> {
            fn head(&self) -> Head<'a> {
                Head {
                    api_version: self.api_version.clone(),
                    kind: self.kind.clone(),
                    metadata: NameMeta {
                        name: self.metadata.name.clone(),
                        namespace: self.metadata.namespace.clone(),
                    },
                }
            }
        }
    )*};
}

headed!(NodeObj, PodObj, ServiceObj, SliceObj);

/// `json` as a `T`, with its head, if it reads as one and `confirm` accepts
/// the head.
fn read_as<'a, T: Deserialize<'a> + Headed<'a>>(
    json: &'a str,
    confirm: impl Fn(&Head<'a>) -> bool,
) -> Option<(Head<'a>, T)> {
    let object: T = serde_json::from_str(json).ok()?;
    let head = object.head();
    confirm(&head).then_some((head, object))
}

/// The interpreted kind an object's text names, to try first. Nested
/// objects have `"kind"` keys too (a slice's endpoints name their Pods, a
/// static Pod's owner is its Node), so the kinds that are rarely nested
/// win; the object's own fields confirm the guess.
fn guess_kind(json: &str) -> Option<(&'static str, &'static str)> {
    const KINDS: [(&str, &str); 4] = [
        ("discovery.k8s.io/v1", "EndpointSlice"),
        ("v1", "Service"),
        ("v1", "Node"),
        ("v1", "Pod"),
    ];
    let mut best: Option<usize> = None;
    for (at, key) in json.match_indices("\"kind\"") {
        let Some(rest) = json.get(at + key.len()..) else {
            continue;
        };
        let Some(value) = rest
            .trim_start()
            .strip_prefix(':')
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix('"'))
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        if let Some(i) = KINDS.iter().position(|(_, k)| *k == value) {
            best = Some(best.map_or(i, |b| b.min(i)));
        }
    }
    best.map(|i| KINDS[i])
}

#[derive(Deserialize, Default)]
struct NameMeta<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Meta<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(borrow, default)]
    owner_references: Option<Vec<OwnerRef<'a>>>,
}

#[derive(Deserialize)]
struct OwnerRef<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Condition<'a> {
    #[serde(borrow, rename = "type")]
    type_: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeObj<'a> {
    #[serde(borrow, default, rename = "apiVersion")]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    metadata: Meta<'a>,
    #[serde(borrow, default)]
    spec: Option<NodeSpec<'a>>,
    #[serde(borrow, default)]
    status: Option<NodeStatus<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeSpec<'a> {
    #[serde(borrow, default, rename = "podCIDR")]
    pod_cidr: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "podCIDRs")]
    pod_cidrs: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default, rename = "providerID")]
    provider_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct NodeAddress<'a> {
    #[serde(borrow, rename = "type")]
    type_: Cow<'a, str>,
    #[serde(borrow)]
    address: Cow<'a, str>,
}

#[derive(Deserialize)]
struct NodeStatus<'a> {
    #[serde(borrow, default)]
    addresses: Option<Vec<NodeAddress<'a>>>,
    #[serde(borrow, default)]
    conditions: Option<Vec<Condition<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodObj<'a> {
    #[serde(borrow, default, rename = "apiVersion")]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    metadata: Meta<'a>,
    #[serde(borrow, default)]
    spec: Option<PodSpec<'a>>,
    #[serde(borrow, default)]
    status: Option<PodStatus<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec<'a> {
    #[serde(borrow, default)]
    node_name: Option<Cow<'a, str>>,
    #[serde(default)]
    host_network: Option<bool>,
    #[serde(borrow, default)]
    containers: Vec<Container<'a>>,
}

#[derive(Deserialize)]
struct Container<'a> {
    #[serde(borrow, default)]
    ports: Option<Vec<ContainerPort<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerPort<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    container_port: i32,
    #[serde(borrow, default)]
    protocol: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodStatus<'a> {
    #[serde(borrow, default, rename = "podIP")]
    pod_ip: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    phase: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    conditions: Option<Vec<Condition<'a>>>,
}

#[derive(Deserialize)]
struct ServiceObj<'a> {
    #[serde(borrow, default, rename = "apiVersion")]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    metadata: NameMeta<'a>,
    #[serde(borrow, default)]
    spec: Option<ServiceSpec<'a>>,
    #[serde(borrow, default)]
    status: Option<ServiceStatus<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceStatus<'a> {
    #[serde(borrow, default)]
    load_balancer: Option<LoadBalancerStatus<'a>>,
}

#[derive(Deserialize)]
struct LoadBalancerStatus<'a> {
    #[serde(borrow, default)]
    ingress: Option<Vec<LoadBalancerIngress<'a>>>,
}

#[derive(Deserialize)]
struct LoadBalancerIngress<'a> {
    #[serde(borrow, default)]
    ip: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceSpec<'a> {
    #[serde(borrow, default, rename = "clusterIP")]
    cluster_ip: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "clusterIPs")]
    cluster_ips: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default)]
    ports: Option<Vec<ServicePort<'a>>>,
    #[serde(borrow, default, rename = "type")]
    type_: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    external_traffic_policy: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "externalIPs")]
    external_ips: Option<Vec<Cow<'a, str>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServicePort<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    protocol: Option<Cow<'a, str>>,
    port: i32,
    #[serde(default)]
    node_port: Option<i32>,
    #[serde(default)]
    target_port: Option<IntOrString>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SliceObj<'a> {
    #[serde(borrow, default, rename = "apiVersion")]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    metadata: SliceMeta<'a>,
    #[serde(borrow)]
    address_type: Cow<'a, str>,
    #[serde(borrow, default)]
    endpoints: Option<Vec<SliceEndpoint<'a>>>,
    #[serde(borrow, default)]
    ports: Option<Vec<SlicePort<'a>>>,
}

/// A slice's metadata: its name, namespace and the one label that names
/// its Service.
#[derive(Deserialize, Default)]
struct SliceMeta<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    labels: Option<SliceLabels<'a>>,
}

#[derive(Deserialize, Default)]
struct SliceLabels<'a> {
    #[serde(borrow, default, rename = "kubernetes.io/service-name")]
    service: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SliceEndpoint<'a> {
    #[serde(borrow, default)]
    addresses: Vec<Cow<'a, str>>,
    #[serde(default)]
    conditions: Option<SliceConditions>,
    #[serde(borrow, default)]
    node_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    target_ref: Option<TargetRef<'a>>,
}

#[derive(Deserialize)]
struct SliceConditions {
    #[serde(default)]
    ready: Option<bool>,
}

#[derive(Deserialize)]
struct TargetRef<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    namespace: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct SlicePort<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    port: Option<i32>,
    #[serde(borrow, default)]
    protocol: Option<Cow<'a, str>>,
}

fn text(c: &Option<Cow<'_, str>>) -> String {
    c.as_deref().unwrap_or_default().to_string()
}

fn ready(conditions: &Option<Vec<Condition<'_>>>) -> bool {
    conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn protocol_of(p: Option<&str>) -> Protocol {
    p.and_then(Protocol::parse).unwrap_or(Protocol::Tcp)
}

/// `what` names the object, for the error only.
fn port16(p: i32, what: impl Fn() -> String, origin: &str) -> Result<u16> {
    u16::try_from(p).map_err(|_| bad_input(format!("{origin}: {}: port {p} out of range", what())))
}

/// `origin:line:column: malformed JSON: …` for a parse error of `text`.
pub fn json_error(origin: &str, e: &serde_json::Error) -> anyhow::Error {
    bad_input(format!(
        "{origin}:{}:{}: malformed JSON: {e}",
        e.line(),
        e.column()
    ))
}

/// Builds a [`ClusterView`] from JSON: a whole `kubectl get -o json` List,
/// or the pages of a LIST one kind at a time.
pub struct ClusterBuilder {
    view: ClusterView,
    retain: Retain,
    /// The text being read, when kept objects may share it.
    shared: Option<Arc<String>>,
}

impl ClusterBuilder {
    pub fn new(retain: Retain) -> ClusterBuilder {
        ClusterBuilder {
            view: ClusterView::default(),
            retain,
            shared: None,
        }
    }

    /// A List (or a single object) as `kubectl get … -o json` prints it.
    pub fn add_list(&mut self, json: &str, origin: &str) -> Result<()> {
        let list: List<'_> = serde_json::from_str(json).map_err(|e| json_error(origin, &e))?;
        match list.items {
            Some(items) => self.add_items(&items, None, origin),
            None if list.kind.is_some() => {
                let item: &RawValue =
                    serde_json::from_str(json).map_err(|e| json_error(origin, &e))?;
                self.add_object(item, None, origin)
            }
            None => Err(bad_input(format!(
                "{origin}: expected a Kubernetes List (`kubectl get ... -o json`)"
            ))),
        }
    }

    /// [`ClusterBuilder::add_list`] of a text the kept objects may share
    /// rather than copy (see `ClusterView::settle_shared`).
    fn add_shared_list(&mut self, text: &Arc<String>, origin: &str) -> Result<()> {
        self.shared = Some(text.clone());
        let added = self.add_list(text, origin);
        self.shared = None;
        added
    }

    /// The items of one LIST page of `api_version`/`kind` (the API server
    /// leaves kind and apiVersion out of list items); returns the token of
    /// the next page, if there is one.
    pub fn add_page(
        &mut self,
        json: &str,
        api_version: &str,
        kind: &str,
        origin: &str,
    ) -> Result<Option<String>> {
        let list: List<'_> = serde_json::from_str(json).map_err(|e| json_error(origin, &e))?;
        self.add_items(
            list.items.as_deref().unwrap_or_default(),
            Some((api_version, kind)),
            origin,
        )?;
        Ok(list
            .metadata
            .and_then(|m| m.continue_)
            .filter(|t| !t.is_empty()))
    }

    /// Items in order. Reading an item's JSON is most of the work and needs
    /// nothing from the others, so a long list is read in chunks by two
    /// threads: a helper reads chunk after chunk, and this thread takes the
    /// chunks into the view in list order, reading the next unread chunk
    /// itself whenever the one it needs is not ready. The first error in
    /// list order is the one reported, as one by one.
    fn add_items<'j>(
        &mut self,
        items: &[&'j RawValue],
        of: Option<(&'j str, &'j str)>,
        origin: &str,
    ) -> Result<()> {
        /// Items per chunk: large enough that handing one over is noise.
        const CHUNK: usize = 256;
        if items.len() < 8 * CHUNK {
            for item in items {
                self.add_object(item, of, origin)?;
            }
            return Ok(());
        }
        let chunks: Vec<&[&'j RawValue]> = items.chunks(CHUNK).collect();
        type Slot<'j> = Mutex<Option<Vec<Result<Parsed<'j>>>>>;
        let slots: Vec<Slot<'j>> = chunks.iter().map(|_| Mutex::new(None)).collect();
        let take = |i: usize| {
            slots[i]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        };
        // The next chunk nobody has started; past the end stops the helper.
        let next = AtomicUsize::new(0);
        let read = |i: usize| {
            let parsed = chunks[i]
                .iter()
                .map(|item| Parsed::read(item, of, origin))
                .collect();
            *slots[i]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(parsed);
        };
        let me = std::thread::current();
        let count = chunks.len();
        std::thread::scope(|scope| {
            let (read, next, me) = (&read, &next, &me);
            let helper = scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    read(i);
                    me.unpark();
                }
            });
            let result = (|| {
                for (i, chunk) in chunks.iter().enumerate() {
                    let parsed = loop {
                        if let Some(p) = take(i) {
                            break p;
                        }
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        if j < count {
                            read(j);
                        } else if helper.is_finished() {
                            // The helper is done: chunk i is there, or never will be.
                            match take(i) {
                                Some(p) => break p,
                                None => {
                                    return Err(anyhow::anyhow!(
                                        "{origin}: the thread reading objects stopped unexpectedly"
                                    ));
                                }
                            }
                        } else {
                            std::thread::park_timeout(std::time::Duration::from_millis(1));
                        }
                    };
                    for (item, parsed) in chunk.iter().zip(parsed) {
                        self.apply(item, parsed?, of, origin)?;
                    }
                }
                Ok(())
            })();
            // On an error the helper has nothing left to do.
            next.store(count, Ordering::Relaxed);
            result
        })
    }

    /// One object; `of` gives its apiVersion and kind when the JSON lacks them.
    pub fn add_object<'j>(
        &mut self,
        item: &'j RawValue,
        of: Option<(&'j str, &'j str)>,
        origin: &str,
    ) -> Result<()> {
        let parsed = Parsed::read(item, of, origin)?;
        self.apply(item, parsed, of, origin)
    }

    /// Add an object read by [`Parsed::read`] to the view.
    fn apply(
        &mut self,
        item: &RawValue,
        parsed: Parsed<'_>,
        of: Option<(&str, &str)>,
        origin: &str,
    ) -> Result<()> {
        match parsed.typed {
            Typed::Node(node) => self.view.add_node(node, origin)?,
            Typed::Pod(pod) => self.view.add_pod(pod, origin)?,
            Typed::Service(facts) => self.view.add_service(facts),
            Typed::Slice(Some((service, endpoints))) => self.view.add_endpoints(service, endpoints),
            Typed::Slice(None) | Typed::Other => {}
        }
        // A few kinds, many objects: find the count before making a key.
        match self
            .view
            .counts
            .iter_mut()
            .find(|((a, k), _)| *a == parsed.api && *k == parsed.kind)
        {
            Some((_, n)) => *n += 1,
            None => {
                self.view
                    .counts
                    .insert((parsed.api.to_string(), parsed.kind.to_string()), 1);
            }
        }
        if self.retain.keeps(&parsed.api, &parsed.kind) {
            let json = if of.is_some() && parsed.head.kind.is_none() {
                RawJson::Owned(with_kind(item.get(), &parsed.api, &parsed.kind)?)
            } else {
                self.share(item.get())
                    .unwrap_or_else(|| RawJson::Owned(item.to_owned()))
            };
            self.view
                .objects
                .entry((parsed.api.into_owned(), parsed.kind.into_owned()))
                .or_default()
                .push(RawObject {
                    namespace: text(&parsed.head.metadata.namespace),
                    name: text(&parsed.head.metadata.name),
                    json,
                });
        }
        Ok(())
    }

    /// `json`'s place in the shared text, if it is in it.
    fn share(&self, json: &str) -> Option<RawJson> {
        let text = self.shared.as_ref()?;
        let start = (json.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
        let end = start + json.len();
        (text.get(start..end)?.as_ptr() == json.as_ptr()).then(|| RawJson::Shared {
            text: text.clone(),
            start,
            end,
        })
    }

    pub fn finish(self) -> ClusterView {
        self.view
    }
}

/// A Service as the diagnosis needs it.
fn service_facts(svc: ServiceObj<'_>, origin: &str) -> Result<ServiceFacts> {
    let namespace = text(&svc.metadata.namespace);
    let name = text(&svc.metadata.name);
    let what = || format!("service {namespace}/{name}");
    let mut cluster_ips = Vec::new();
    let mut external_ips = Vec::new();
    let mut ports = Vec::new();
    let (mut service_type, mut external_traffic_local) = ("ClusterIP".to_string(), false);
    if let Some(spec) = svc.spec {
        let mut ips = spec.cluster_ips.unwrap_or_default();
        if ips.is_empty()
            && let Some(ip) = spec.cluster_ip
        {
            ips.push(ip);
        }
        cluster_ips = ips.iter().filter_map(|s| s.parse().ok()).collect();
        external_ips = spec
            .external_ips
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        for p in spec.ports.unwrap_or_default() {
            ports.push(ServicePortFacts {
                name: text(&p.name),
                protocol: protocol_of(p.protocol.as_deref()),
                port: port16(p.port, what, origin)?,
                node_port: p.node_port.map(|n| port16(n, what, origin)).transpose()?,
                target_port: p.target_port,
            });
        }
        if let Some(t) = spec.type_ {
            service_type = t.into_owned();
        }
        external_traffic_local = spec.external_traffic_policy.as_deref() == Some("Local");
    }
    let load_balancer_ips = svc
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|l| l.ingress)
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i.ip.as_deref().and_then(|ip| ip.parse().ok()))
        .collect();
    Ok(ServiceFacts {
        namespace,
        name,
        service_type,
        cluster_ips,
        external_ips,
        load_balancer_ips,
        ports,
        external_traffic_local,
    })
}

/// The endpoints of an EndpointSlice, with the id (`namespace/name`) of
/// their Service; `None` for a slice that is not IPv4 or names no Service.
fn slice_endpoints(
    slice: SliceObj<'_>,
    origin: &str,
) -> Result<Option<(String, Vec<EndpointFacts>)>> {
    if slice.address_type != "IPv4" {
        return Ok(None);
    }
    let namespace = slice.metadata.namespace.as_deref().unwrap_or_default();
    let Some(service) = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.service.as_deref())
    else {
        return Ok(None);
    };
    let mut ports = Vec::new();
    for p in slice.ports.iter().flatten() {
        if let Some(port) = p.port {
            ports.push((
                text(&p.name),
                port16(
                    port,
                    || format!("endpointslice of {namespace}/{service}"),
                    origin,
                )?,
                protocol_of(p.protocol.as_deref()),
            ));
        }
    }
    let mut list = Vec::new();
    for ep in slice.endpoints.iter().flatten() {
        // A nil ready condition means ready (EndpointSlice API semantics).
        let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
        let pod = ep
            .target_ref
            .as_ref()
            .filter(|t| t.kind.as_deref() == Some("Pod"))
            .map(|t| {
                format!(
                    "{}/{}",
                    t.namespace.as_deref().unwrap_or(namespace),
                    t.name.as_deref().unwrap_or_default()
                )
            });
        for addr in &ep.addresses {
            let Ok(ip) = addr.parse::<Ipv4Addr>() else {
                continue;
            };
            list.push(EndpointFacts {
                ip,
                ready,
                node: ep.node_name.as_deref().map(str::to_string),
                pod: pod.clone(),
                ports: ports.clone(),
            });
        }
    }
    Ok(Some((format!("{namespace}/{service}"), list)))
}

/// A list item with `apiVersion` and `kind` put back, without the copy of
/// the whole object kubectl keeps in an annotation, as kubectl shows it.
fn with_kind(json: &str, api_version: &str, kind: &str) -> Result<Box<RawValue>> {
    let mut v: serde_json::Map<String, Value> = serde_json::from_str(json)?;
    v.insert("apiVersion".into(), Value::String(api_version.into()));
    v.insert("kind".into(), Value::String(kind.into()));
    if let Some(Value::Object(meta)) = v.get_mut("metadata") {
        meta.remove("managedFields");
        if let Some(Value::Object(ann)) = meta.get_mut("annotations") {
            ann.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    Ok(serde_json::value::to_raw_value(&v)?)
}

impl ClusterView {
    /// Interpret `cluster.json` (a List), keeping the objects `retain` names.
    pub fn parse(json: &str, origin: &str, retain: Retain) -> Result<ClusterView> {
        let mut b = ClusterBuilder::new(retain);
        b.add_list(json, origin)?;
        Ok(b.finish())
    }

    /// [`ClusterView::parse`] of a text the kept objects may share.
    pub fn parse_shared(json: &Arc<String>, origin: &str, retain: Retain) -> Result<ClusterView> {
        let mut b = ClusterBuilder::new(retain);
        b.add_shared_list(json, origin)?;
        let mut view = b.finish();
        view.settle_shared();
        Ok(view)
    }

    /// Objects that share the text they were read from keep all of it: worth
    /// it while they are most of it; otherwise each gets its own copy and
    /// the text can go.
    fn settle_shared(&mut self) {
        let (mut text_len, mut kept) = (0, 0);
        for o in self.objects.values().flatten() {
            if let RawJson::Shared { text, start, end } = &o.json {
                text_len = text.len();
                kept += end - start;
            }
        }
        if kept == 0 || kept * 2 >= text_len {
            return;
        }
        for o in self.objects.values_mut().flatten() {
            if matches!(o.json, RawJson::Shared { .. })
                && let Ok(copy) = RawValue::from_string(o.json.get().to_string())
            {
                o.json = RawJson::Owned(copy);
            }
        }
    }

    /// Drops the objects kept as JSON of the kinds `retain` does not keep
    /// (after a read with [`Retain::all`]).
    pub fn retain_only(&mut self, retain: &Retain) {
        self.objects.retain(|(a, k), _| retain.keeps(a, k));
        self.settle_shared();
    }

    /// How many objects of each kind were read, kept or not.
    pub fn counts(&self) -> &BTreeMap<(String, String), usize> {
        &self.counts
    }

    /// Whether any object of this kind was read.
    pub fn has_kind(&self, api_version: &str, kind: &str) -> bool {
        self.counts
            .contains_key(&(api_version.to_string(), kind.to_string()))
    }

    fn add_node(&mut self, node: NodeObj<'_>, origin: &str) -> Result<()> {
        let name = text(&node.metadata.name);
        let status = node.status;
        let ip = status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
            .find(|a| a.type_ == "InternalIP")
            .and_then(|a| a.address.parse::<Ipv4Addr>().ok())
            .ok_or_else(|| bad_input(format!("{origin}: node {name} has no IPv4 InternalIP")))?;
        let mut cidrs: Vec<Cow<'_, str>> = Vec::new();
        let mut provider_id = None;
        if let Some(spec) = node.spec {
            provider_id = spec.provider_id.map(|p| p.into_owned());
            cidrs = spec.pod_cidrs.unwrap_or_default();
            if cidrs.is_empty()
                && let Some(c) = spec.pod_cidr
            {
                cidrs.push(c);
            }
        }
        let pod_cidrs = cidrs
            .iter()
            .filter_map(|c| c.parse::<Ipv4Net>().ok())
            .collect();
        let ready = status.as_ref().is_some_and(|s| ready(&s.conditions));
        let annotations = node
            .metadata
            .annotations
            .unwrap_or_default()
            .into_iter()
            .collect();
        let labels = node
            .metadata
            .labels
            .unwrap_or_default()
            .into_iter()
            .collect();
        self.node_by_ip.insert(ip, name.clone());
        self.nodes.insert(
            name.clone(),
            NodeFacts {
                name,
                ip,
                pod_cidrs,
                ready,
                annotations,
                labels,
                host_interface: None,
                provider_id,
            },
        );
        Ok(())
    }

    fn add_pod(&mut self, pod: PodObj<'_>, origin: &str) -> Result<()> {
        let namespace = text(&pod.metadata.namespace);
        let name = text(&pod.metadata.name);
        let mut ports = Vec::new();
        let (mut node, mut host_network) = (String::new(), false);
        if let Some(spec) = &pod.spec {
            node = text(&spec.node_name);
            host_network = spec.host_network.unwrap_or(false);
            for c in &spec.containers {
                for p in c.ports.iter().flatten() {
                    ports.push((
                        text(&p.name),
                        port16(
                            p.container_port,
                            || format!("pod {namespace}/{name}"),
                            origin,
                        )?,
                        protocol_of(p.protocol.as_deref()),
                    ));
                }
            }
        }
        let status = pod.status.as_ref();
        let daemonset = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.kind == "DaemonSet")
            .map(|r| r.name.to_string());
        let facts = PodFacts {
            namespace,
            name,
            ip: status
                .and_then(|s| s.pod_ip.as_deref())
                .and_then(|s| s.parse().ok()),
            node,
            host_network,
            ready: status.is_some_and(|s| ready(&s.conditions)),
            phase: status
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("Unknown")
                .to_string(),
            ports,
            labels: pod.metadata.labels.unwrap_or_default(),
            annotations: pod
                .metadata
                .annotations
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| k != "kubectl.kubernetes.io/last-applied-configuration")
                .collect(),
            daemonset,
        };
        if let (Some(ip), false) = (facts.ip, facts.host_network) {
            self.pod_by_ip.entry(ip).or_default().push(facts.id());
        }
        self.pods.insert(facts.id(), facts);
        Ok(())
    }

    /// Index a Service read by [`service_facts`].
    fn add_service(&mut self, facts: ServiceFacts) {
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

    /// Add the endpoints of an EndpointSlice read by [`slice_endpoints`].
    fn add_endpoints(&mut self, service: String, endpoints: Vec<EndpointFacts>) {
        let list = self.endpoints.entry(service).or_default();
        if list.is_empty() {
            *list = endpoints;
        } else {
            list.extend(endpoints);
        }
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
    pub fn classify(&self, ip: Ipv4Addr, port: u16, protocol: Protocol) -> Classified<'_> {
        if let Some(s) = self.service_by_ip(ip) {
            return Classified::Service(s);
        }
        if let Some(n) = self.node_by_ip(ip) {
            if let Some(s) = self.service_by_node_port(port, protocol) {
                return Classified::Service(s);
            }
            return Classified::Node(n);
        }
        if let Some(p) = self.pod_by_ip(ip) {
            return Classified::Pod(p);
        }
        Classified::External(ip)
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
            Classified::Service(s) => {
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
            Classified::Pod(p) => add(&p.node),
            Classified::Node(n) => add(&n.name),
            Classified::External(_) => {}
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_guessed_kind_is_confirmed_by_the_object_itself() {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            // A static pod: its owner is a Node.
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "etcd", "namespace": "kube-system",
              "ownerReferences": [{"kind": "Node", "name": "node-1"}]},
             "spec": {"nodeName": "node-1"}, "status": {"podIP": "10.244.0.9", "phase": "Running"}},
            // A ConfigMap with a `kind` key that names a Service.
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"},
             "data": {"kind": "Service"}},
            // A slice: its endpoints name their Pods.
            {"addressType": "IPv4", "apiVersion": "discovery.k8s.io/v1",
             "endpoints": [{"addresses": ["10.244.0.9"], "targetRef": {"kind": "Pod", "name": "etcd", "namespace": "kube-system"}}],
             "kind": "EndpointSlice", "metadata": {"name": "s-1", "namespace": "kube-system",
              "labels": {"kubernetes.io/service-name": "etcd"}}, "ports": [{"port": 2379}]}
        ]})
        .to_string();
        assert_eq!(
            guess_kind(&list),
            Some(("discovery.k8s.io/v1", "EndpointSlice"))
        );
        let view = ClusterView::parse(&list, "list", Retain::host()).expect("view");
        assert!(view.pods.contains_key("kube-system/etcd"));
        assert!(view.nodes.is_empty());
        assert!(view.services.is_empty());
        assert_eq!(view.objects("v1", "ConfigMap", "n").len(), 1);
        let eps = &view.endpoints["kube-system/etcd"];
        assert_eq!(eps[0].pod.as_deref(), Some("kube-system/etcd"));
    }

    #[test]
    fn kept_objects_share_the_text_only_while_they_are_most_of_it() {
        let list = Arc::new(
            json!({"apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "example.com/v1", "kind": "Blob", "metadata": {"name": "b"},
                 "data": {"big": "x".repeat(400)}},
                {"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool", "metadata": {"name": "p"}}
            ]})
            .to_string(),
        );
        let shared = |v: &ClusterView| {
            v.objects
                .values()
                .flatten()
                .filter(|o| matches!(o.json, RawJson::Shared { .. }))
                .count()
        };
        let mut view = ClusterView::parse_shared(&list, "list", Retain::all()).expect("view");
        assert_eq!(shared(&view), 2);
        view.retain_only(&Retain::with_reads(["crd.projectcalico.org/v1/IPPool"]));
        // The small IPPool is left: a copy of its own, not the whole text.
        assert_eq!(shared(&view), 0);
        let pool = &view.objects("crd.projectcalico.org/v1", "IPPool", "")[0];
        let v: Value = pool.typed().expect("json");
        assert_eq!(v["metadata"]["name"], "p");
        assert_eq!(Arc::strong_count(&list), 1);
    }

    #[test]
    fn read_keeping_all_then_narrowed_to_the_extensions_reads() {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}},
            {"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool", "metadata": {"name": "p"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"}}
        ]})
        .to_string();
        let mut view = ClusterView::parse(&list, "list", Retain::all()).expect("view");
        assert_eq!(
            view.objects("crd.projectcalico.org/v1", "IPPool", "").len(),
            1
        );
        assert!(view.objects("v1", "Secret", "n").is_empty());
        view.retain_only(&Retain::with_reads(["v1/ConfigMap"]));
        assert!(
            view.objects("crd.projectcalico.org/v1", "IPPool", "")
                .is_empty()
        );
        assert_eq!(view.objects("v1", "ConfigMap", "n").len(), 1);
        assert!(
            view.has_kind("crd.projectcalico.org/v1", "IPPool"),
            "still counted"
        );
    }

    /// A List of `n` Services and their slices, interleaved; Service `bad`
    /// and Service `bad + 1` have a port out of range, when given.
    fn list(n: usize, bad: Option<usize>) -> String {
        let mut items = Vec::new();
        for i in 0..n {
            let port = if bad.is_some_and(|b| i == b || i == b + 1) {
                70_000
            } else {
                80
            };
            let ip = format!("10.96.{}.{}", i / 250, i % 250 + 1);
            items.push(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("svc-{i}"), "namespace": "default"},
                "spec": {"clusterIP": ip, "ports": [{"port": port, "protocol": "TCP"}]}}));
            items.push(
                json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "addressType": "IPv4",
                "metadata": {"name": format!("svc-{i}-x"), "namespace": "default",
                             "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
                "endpoints": [{"addresses": [format!("10.244.0.{}", i % 250 + 1)]}],
                "ports": [{"port": 8080, "protocol": "TCP"}]}),
            );
        }
        json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
    }

    #[test]
    fn a_long_list_read_on_two_threads_gives_every_object() {
        // 6,000 items: past the size read on two threads, ending in a short chunk.
        let view = ClusterView::parse(&list(3_000, None), "cluster.json", Retain::host()).unwrap();
        assert_eq!(view.services.len(), 3_000);
        assert_eq!(view.endpoints.len(), 3_000);
        assert_eq!(view.counts()[&("v1".into(), "Service".into())], 3_000);
        let svc = view.service_by_ip("10.96.11.250".parse().unwrap());
        assert_eq!(svc.map(|s| s.name.as_str()), Some("svc-2999"));
        let eps = &view.endpoints["default/svc-2999"];
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].ip, "10.244.0.250".parse::<Ipv4Addr>().unwrap());
    }

    #[test]
    fn a_long_list_reports_its_first_bad_object() {
        // svc-1600 is item 3,200: in the chunk the second thread reads
        // (items 3,072 to 4,095), like svc-1601 after it.
        let err = ClusterView::parse(&list(3_000, Some(1_600)), "cluster.json", Retain::host())
            .unwrap_err()
            .to_string();
        assert!(err.contains("service default/svc-1600"), "{err}");
        assert!(err.contains("port 70000 out of range"), "{err}");
    }
}
