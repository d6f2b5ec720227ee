//! What the reader takes of each Kubernetes object it interprets: mirrors of
//! the Node, Pod, Service and EndpointSlice fields the view uses, borrowing
//! from the JSON text where they can and skipping every other field unread,
//! and their translation into the view's facts.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;

use super::model::{EndpointFacts, NodeFacts, PodFacts, ServiceFacts, ServicePortFacts};
use skoop_error::json::Unreadable;
use skoop_netstack::packet::Protocol;

// Mirrors rather than k8s-openapi's Node, Pod, Service and EndpointSlice: read the same way, those
// take 114 ms of CPU instead of 85 for the scale bench's 10k-Service cluster.json, 372 instead of
// 234 for the live bench's 1,000 nodes and 20,000 pods, and 4-5 MiB more peak RSS (release build,
// `/usr/bin/time -v` over ten reads of each file).

/// Any object's apiVersion, kind, name and namespace.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Head<'a> {
    #[serde(borrow, default)]
    pub(super) api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) metadata: NameMeta<'a>,
}

/// An interpreted object's head, read from its own fields.
pub(super) trait Headed<'a> {
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

#[derive(Deserialize, Default)]
pub(super) struct NameMeta<'a> {
    #[serde(borrow, default)]
    pub(super) name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) namespace: Option<Cow<'a, str>>,
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
pub(super) struct NodeObj<'a> {
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
pub(super) struct PodObj<'a> {
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
    #[serde(borrow, default)]
    hostname: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    subdomain: Option<Cow<'a, str>>,
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
pub(super) struct ServiceObj<'a> {
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
pub(super) struct SliceObj<'a> {
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

pub(super) fn text(c: &Option<Cow<'_, str>>) -> String {
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
/// A port number at `path` of the object.
fn port16(p: i32, path: impl FnOnce() -> String) -> Result<u16, Unreadable> {
    u16::try_from(p)
        .map_err(|_| Unreadable::new(path(), format!("port {p} out of range (1-65535)")))
}

/// A Service as the diagnosis needs it.
pub(super) fn service_facts(svc: ServiceObj<'_>) -> Result<ServiceFacts, Unreadable> {
    let namespace = text(&svc.metadata.namespace);
    let name = text(&svc.metadata.name);
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
        for (i, p) in spec.ports.unwrap_or_default().into_iter().enumerate() {
            ports.push(ServicePortFacts {
                name: text(&p.name),
                protocol: protocol_of(p.protocol.as_deref()),
                port: port16(p.port, || format!("spec.ports[{i}].port"))?,
                node_port: p
                    .node_port
                    .map(|n| port16(n, || format!("spec.ports[{i}].nodePort")))
                    .transpose()?,
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
pub(super) fn slice_endpoints(
    slice: SliceObj<'_>,
) -> Result<Option<(String, Vec<EndpointFacts>)>, Unreadable> {
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
    for (i, p) in slice.ports.iter().flatten().enumerate() {
        if let Some(port) = p.port {
            ports.push((
                text(&p.name),
                port16(port, || format!("ports[{i}].port"))?,
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

/// A node as the diagnosis needs it: it must have an IPv4 InternalIP.
pub(super) fn node_facts(node: NodeObj<'_>) -> Result<NodeFacts, Unreadable> {
    let name = text(&node.metadata.name);
    let status = node.status;
    let ip = status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .find(|a| a.type_ == "InternalIP")
        .and_then(|a| a.address.parse::<Ipv4Addr>().ok())
        .ok_or_else(|| Unreadable::new("status.addresses", "no IPv4 InternalIP"))?;
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
    // NotReady only when the Ready condition says so: a node object
    // without conditions (a hand-made bundle) is not claimed to be down.
    let ready = status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_none_or(|c| c.status == "True");
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
    Ok(NodeFacts {
        name,
        ip,
        pod_cidrs,
        ready,
        annotations,
        labels,
        host_interface: None,
        provider_id,
    })
}

/// A pod as the diagnosis needs it.
pub(super) fn pod_facts(pod: PodObj<'_>) -> Result<PodFacts, Unreadable> {
    let namespace = text(&pod.metadata.namespace);
    let name = text(&pod.metadata.name);
    let mut ports = Vec::new();
    let (mut node, mut host_network) = (String::new(), false);
    let mut dns_name = None;
    if let Some(spec) = &pod.spec {
        node = text(&spec.node_name);
        if let (Some(h), Some(s)) = (&spec.hostname, &spec.subdomain) {
            dns_name = Some((h.to_string(), s.to_string()));
        }
        host_network = spec.host_network.unwrap_or(false);
        for (i, c) in spec.containers.iter().enumerate() {
            for (j, p) in c.ports.iter().flatten().enumerate() {
                ports.push((
                    text(&p.name),
                    port16(p.container_port, || {
                        format!("spec.containers[{i}].ports[{j}].containerPort")
                    })?,
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
    Ok(PodFacts {
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
        dns_name,
        labels: pod.metadata.labels.unwrap_or_default(),
        annotations: pod
            .metadata
            .annotations
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k != "kubectl.kubernetes.io/last-applied-configuration")
            .collect(),
        daemonset,
    })
}
