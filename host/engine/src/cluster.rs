//! The cluster view: Kubernetes objects interpreted with `k8s-openapi` types,
//! indexed so "what is this IP" is one lookup.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use anyhow::Result;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::bundle::Bundle;
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
    /// The interface holding `ip` in the node's dump (filled by detection).
    pub host_interface: Option<String>,
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
    pub ports: Vec<ServicePortFacts>,
    pub external_traffic_local: bool,
}

impl ServiceFacts {
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

/// Every object of the cluster, indexed.
#[derive(Debug, Default)]
pub struct ClusterView {
    pub nodes: BTreeMap<String, NodeFacts>,
    pub pods: BTreeMap<String, PodFacts>,
    pub services: BTreeMap<String, ServiceFacts>,
    /// Endpoints by service id.
    pub endpoints: BTreeMap<String, Vec<EndpointFacts>>,
    /// Raw objects by (apiVersion, kind), for extensions' get/list.
    objects: HashMap<(String, String), Vec<Value>>,
    pod_by_ip: HashMap<Ipv4Addr, Vec<String>>,
    node_by_ip: HashMap<Ipv4Addr, String>,
    service_by_ip: HashMap<Ipv4Addr, String>,
}

fn object_name(v: &Value) -> String {
    let meta = v.get("metadata");
    let ns = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    }
}

fn typed<T: serde::de::DeserializeOwned>(v: &Value, origin: &str, kind: &str) -> Result<T> {
    serde_json::from_value(v.clone()).map_err(|e| {
        bad_input(format!(
            "{origin}: {kind} {} is malformed: {e}",
            object_name(v)
        ))
    })
}

fn protocol_of(p: Option<&str>) -> Protocol {
    p.and_then(Protocol::parse).unwrap_or(Protocol::Tcp)
}

fn port16(p: i32, what: &str, origin: &str) -> Result<u16> {
    u16::try_from(p).map_err(|_| bad_input(format!("{origin}: {what}: port {p} out of range")))
}

impl ClusterView {
    /// Interpret a bundle's objects. Unknown kinds are kept for extensions.
    pub fn from_bundle(bundle: &Bundle) -> Result<ClusterView> {
        let origin = format!("{}/cluster.json", bundle.source);
        let mut view = ClusterView::default();
        for item in &bundle.objects {
            let api = item.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            let kind = item.get("kind").and_then(Value::as_str).unwrap_or("");
            // Matched by apiVersion too: a Calico `Node` (crd.projectcalico.org/v1)
            // is not a Kubernetes Node.
            match (api, kind) {
                ("v1", "Node") => view.add_node(typed(item, &origin, kind)?, &origin)?,
                ("v1", "Pod") => view.add_pod(typed(item, &origin, kind)?, &origin)?,
                ("v1", "Service") => view.add_service(typed(item, &origin, kind)?, &origin)?,
                ("discovery.k8s.io/v1", "EndpointSlice") => {
                    view.add_slice(typed(item, &origin, kind)?, &origin)?
                }
                _ => {}
            }
            if kind == "Secret" {
                continue; // never lent to anyone
            }
            view.objects
                .entry((api.to_string(), kind.to_string()))
                .or_default()
                .push(item.clone());
        }
        Ok(view)
    }

    fn add_node(&mut self, node: Node, origin: &str) -> Result<()> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let status = node.status.unwrap_or_default();
        let ip = status
            .addresses
            .unwrap_or_default()
            .into_iter()
            .find(|a| a.type_ == "InternalIP")
            .and_then(|a| a.address.parse::<Ipv4Addr>().ok())
            .ok_or_else(|| bad_input(format!("{origin}: node {name} has no IPv4 InternalIP")))?;
        let spec = node.spec.unwrap_or_default();
        let mut cidrs: Vec<String> = spec.pod_cidrs.unwrap_or_default();
        if cidrs.is_empty()
            && let Some(c) = spec.pod_cidr
        {
            cidrs.push(c);
        }
        let pod_cidrs = cidrs
            .iter()
            .filter_map(|c| c.parse::<Ipv4Net>().ok())
            .collect();
        let ready = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let annotations = node
            .metadata
            .annotations
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
                host_interface: None,
            },
        );
        Ok(())
    }

    fn add_pod(&mut self, pod: Pod, origin: &str) -> Result<()> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        let ip = status.pod_ip.as_deref().and_then(|s| s.parse().ok());
        let ready = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let mut ports = Vec::new();
        for c in &spec.containers {
            for p in c.ports.iter().flatten() {
                ports.push((
                    p.name.clone().unwrap_or_default(),
                    port16(p.container_port, &format!("pod {namespace}/{name}"), origin)?,
                    protocol_of(p.protocol.as_deref()),
                ));
            }
        }
        let facts = PodFacts {
            namespace,
            name,
            ip,
            node: spec.node_name.unwrap_or_default(),
            host_network: spec.host_network.unwrap_or(false),
            ready,
            phase: status.phase.unwrap_or_else(|| "Unknown".into()),
            ports,
            labels: pod.metadata.labels.unwrap_or_default(),
        };
        if let (Some(ip), false) = (facts.ip, facts.host_network) {
            self.pod_by_ip.entry(ip).or_default().push(facts.id());
        }
        self.pods.insert(facts.id(), facts);
        Ok(())
    }

    fn add_service(&mut self, svc: Service, origin: &str) -> Result<()> {
        let namespace = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        let spec = svc.spec.unwrap_or_default();
        let mut ips: Vec<String> = spec.cluster_ips.clone().unwrap_or_default();
        if ips.is_empty()
            && let Some(ip) = spec.cluster_ip.clone()
        {
            ips.push(ip);
        }
        let cluster_ips: Vec<Ipv4Addr> = ips.iter().filter_map(|s| s.parse().ok()).collect();
        let what = format!("service {namespace}/{name}");
        let mut ports = Vec::new();
        for p in spec.ports.unwrap_or_default() {
            ports.push(ServicePortFacts {
                name: p.name.unwrap_or_default(),
                protocol: protocol_of(p.protocol.as_deref()),
                port: port16(p.port, &what, origin)?,
                node_port: p.node_port.map(|n| port16(n, &what, origin)).transpose()?,
                target_port: p.target_port,
            });
        }
        let facts = ServiceFacts {
            namespace,
            name,
            service_type: spec.type_.unwrap_or_else(|| "ClusterIP".into()),
            cluster_ips,
            ports,
            external_traffic_local: spec.external_traffic_policy.as_deref() == Some("Local"),
        };
        for ip in &facts.cluster_ips {
            self.service_by_ip.insert(*ip, facts.id());
        }
        self.services.insert(facts.id(), facts);
        Ok(())
    }

    fn add_slice(&mut self, slice: EndpointSlice, origin: &str) -> Result<()> {
        if slice.address_type != "IPv4" {
            return Ok(());
        }
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
            .cloned()
        else {
            return Ok(());
        };
        let what = format!("endpointslice of {namespace}/{service}");
        let mut ports = Vec::new();
        for p in slice.ports.unwrap_or_default() {
            if let Some(port) = p.port {
                ports.push((
                    p.name.unwrap_or_default(),
                    port16(port, &what, origin)?,
                    protocol_of(p.protocol.as_deref()),
                ));
            }
        }
        let list = self
            .endpoints
            .entry(format!("{namespace}/{service}"))
            .or_default();
        for ep in slice.endpoints {
            let conditions = ep.conditions.unwrap_or_default();
            // A nil ready condition means ready (EndpointSlice API semantics).
            let ready = conditions.ready.unwrap_or(true);
            let pod = ep
                .target_ref
                .as_ref()
                .filter(|t| t.kind.as_deref() == Some("Pod"))
                .map(|t| {
                    format!(
                        "{}/{}",
                        t.namespace.clone().unwrap_or_else(|| namespace.clone()),
                        t.name.clone().unwrap_or_default()
                    )
                });
            for addr in &ep.addresses {
                let Ok(ip) = addr.parse::<Ipv4Addr>() else {
                    continue;
                };
                list.push(EndpointFacts {
                    ip,
                    ready,
                    node: ep.node_name.clone(),
                    pod: pod.clone(),
                    ports: ports.clone(),
                });
            }
        }
        Ok(())
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

    /// Raw objects of a kind, optionally in one namespace.
    pub fn objects(&self, api_version: &str, kind: &str, namespace: &str) -> Vec<&Value> {
        self.objects
            .get(&(api_version.to_string(), kind.to_string()))
            .map(|list| {
                list.iter()
                    .filter(|v| {
                        namespace.is_empty()
                            || v.pointer("/metadata/namespace").and_then(Value::as_str)
                                == Some(namespace)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One raw object by name.
    pub fn object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<&Value> {
        self.objects(api_version, kind, namespace)
            .into_iter()
            .find(|v| v.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
    }
}
