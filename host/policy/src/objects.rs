//! Reading Namespaces, Nodes and Pods out of Kubernetes JSON objects.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use serde_json::Value;

use crate::{ContainerPort, Labels, NodeInfo, PodInfo, PolicyError};
use skoop_netstack::packet::Protocol;

pub(crate) fn object_name(v: &Value) -> String {
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

pub(crate) fn malformed(kind: &str, v: &Value, reason: impl ToString) -> PolicyError {
    PolicyError::Malformed {
        kind: kind.to_string(),
        name: object_name(v),
        reason: reason.to_string(),
    }
}

/// `v` as a `T`; the error names the field at fault by its JSON path.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(
    v: &Value,
    kind: &str,
) -> Result<T, PolicyError> {
    skoop_error::json::read_value(v).map_err(|u| malformed(kind, v, u))
}

pub(crate) fn namespace(v: &Value) -> Result<(String, Labels), PolicyError> {
    let ns: Namespace = typed(v, "Namespace")?;
    let name = ns
        .metadata
        .name
        .ok_or_else(|| malformed("Namespace", v, "no metadata.name"))?;
    Ok((name, ns.metadata.labels.unwrap_or_default()))
}

pub(crate) fn node(v: &Value) -> Result<NodeInfo, PolicyError> {
    let node: Node = typed(v, "Node")?;
    let name = node
        .metadata
        .name
        .ok_or_else(|| malformed("Node", v, "no metadata.name"))?;
    let ips = node
        .status
        .and_then(|s| s.addresses)
        .unwrap_or_default()
        .iter()
        .filter(|a| a.type_ == "InternalIP" || a.type_ == "ExternalIP")
        .filter_map(|a| a.address.parse::<Ipv4Addr>().ok())
        .collect();
    Ok(NodeInfo {
        name,
        labels: node.metadata.labels.unwrap_or_default(),
        ips,
    })
}

/// Read every `v1/Pod` among `objects` (other kinds are skipped).
pub fn pods_from_objects<'a>(
    objects: impl IntoIterator<Item = &'a Value>,
) -> Result<Vec<PodInfo>, PolicyError> {
    let mut out = Vec::new();
    for v in objects {
        if v.get("kind").and_then(Value::as_str) != Some("Pod")
            || v.get("apiVersion").and_then(Value::as_str) != Some("v1")
        {
            continue;
        }
        let pod: Pod = typed(v, "Pod")?;
        let spec = pod.spec.unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        let mut ports = Vec::new();
        for c in &spec.containers {
            for p in c.ports.iter().flatten() {
                let Some(name) = &p.name else { continue };
                let protocol = match p.protocol.as_deref() {
                    None => Protocol::Tcp,
                    Some(s) => Protocol::parse_kubernetes(s)
                        .ok_or_else(|| malformed("Pod", v, format!("unknown protocol {s:?}")))?,
                };
                let port = u16::try_from(p.container_port)
                    .map_err(|_| malformed("Pod", v, "containerPort out of range"))?;
                ports.push(ContainerPort {
                    name: name.clone(),
                    port,
                    protocol,
                });
            }
        }
        out.push(PodInfo {
            namespace: pod.metadata.namespace.unwrap_or_else(|| "default".into()),
            name: pod
                .metadata
                .name
                .ok_or_else(|| malformed("Pod", v, "no metadata.name"))?,
            labels: pod.metadata.labels.unwrap_or_default(),
            ip: status.pod_ip.and_then(|s| s.parse().ok()),
            node: spec.node_name,
            host_network: spec.host_network.unwrap_or(false),
            ports,
        });
    }
    Ok(out)
}
