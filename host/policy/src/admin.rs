//! `policy.networking.k8s.io/v1alpha1` AdminNetworkPolicy and BaselineAdminNetworkPolicy
//! (k8s-openapi has no types for them: read from JSON).

use ipnet::{IpNet, Ipv4Net};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Serialize;
use serde_json::Value;

use crate::netpol::in_block;
use crate::objects::malformed;
use crate::{Peer, PodInfo, PolicyError, PolicySet, Selector};
use skoop_netstack::packet::Protocol;

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RuleAction {
    Allow,
    Deny,
    Pass,
}

#[derive(Debug, Clone)]
pub(crate) enum Subject {
    Namespaces(Selector),
    Pods { ns: Selector, pods: Selector },
}

#[derive(Debug, Clone)]
pub(crate) enum AdminPeer {
    Namespaces(Selector),
    Pods { ns: Selector, pods: Selector },
    Nodes(Selector),
    Networks(Vec<Ipv4Net>),
}

#[derive(Debug, Clone)]
pub(crate) enum AdminPort {
    Number(Protocol, u16),
    Named(String),
    Range(Protocol, u16, u16),
}

#[derive(Debug, Clone)]
pub(crate) struct AdminRule {
    pub name: String,
    pub action: RuleAction,
    pub peers: Vec<AdminPeer>,
    /// None: every port.
    pub ports: Option<Vec<AdminPort>>,
}

#[derive(Debug, Clone)]
pub(crate) struct AdminPolicy {
    pub name: String,
    /// 0 for a baseline policy.
    pub priority: i64,
    pub subject: Subject,
    pub ingress: Vec<AdminRule>,
    pub egress: Vec<AdminRule>,
}

fn selector(v: Option<&Value>) -> Result<Selector, String> {
    match v {
        None | Some(Value::Null) => Ok(Selector::everything()),
        Some(v) => {
            let ls: LabelSelector =
                serde_json::from_value(v.clone()).map_err(|e| format!("label selector: {e}"))?;
            Selector::compile(&ls)
        }
    }
}

/// `namespaces` is a label selector; early v1alpha1 wrapped it as `{namespaceSelector: …}`.
fn namespaces_selector(v: &Value) -> Result<Selector, String> {
    match v.get("namespaceSelector") {
        Some(inner) => selector(Some(inner)),
        None => selector(Some(v)),
    }
}

/// `pods: {namespaceSelector, podSelector}`; early v1alpha1: `{namespaces: {namespaceSelector}, podSelector}`.
fn pods_selectors(v: &Value) -> Result<(Selector, Selector), String> {
    let ns = match (v.get("namespaceSelector"), v.get("namespaces")) {
        (Some(s), _) => selector(Some(s))?,
        (None, Some(n)) => namespaces_selector(n)?,
        (None, None) => Selector::everything(),
    };
    Ok((ns, selector(v.get("podSelector"))?))
}

fn subject(v: Option<&Value>) -> Result<Subject, String> {
    let v = v.ok_or("no spec.subject")?;
    if let Some(n) = v.get("namespaces") {
        return Ok(Subject::Namespaces(namespaces_selector(n)?));
    }
    if let Some(p) = v.get("pods") {
        let (ns, pods) = pods_selectors(p)?;
        return Ok(Subject::Pods { ns, pods });
    }
    Err("spec.subject needs namespaces or pods".into())
}

fn protocol(v: &Value) -> Result<Protocol, String> {
    match v.get("protocol").and_then(Value::as_str) {
        None => Ok(Protocol::Tcp),
        Some(s) => Protocol::parse_kubernetes(s).ok_or_else(|| format!("unknown protocol {s:?}")),
    }
}

fn port_num(v: Option<&Value>, what: &str) -> Result<u16, String> {
    v.and_then(Value::as_u64)
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| format!("{what} missing or out of range"))
}

fn ports(v: &Value) -> Result<Vec<AdminPort>, String> {
    let arr = v.as_array().ok_or("ports must be a list")?;
    arr.iter()
        .map(|p| {
            if let Some(n) = p.get("portNumber") {
                Ok(AdminPort::Number(
                    protocol(n)?,
                    port_num(n.get("port"), "port")?,
                ))
            } else if let Some(n) = p.get("namedPort").and_then(Value::as_str) {
                Ok(AdminPort::Named(n.to_string()))
            } else if let Some(r) = p.get("portRange") {
                Ok(AdminPort::Range(
                    protocol(r)?,
                    port_num(r.get("start"), "start")?,
                    port_num(r.get("end"), "end")?,
                ))
            } else {
                Err("a port needs portNumber, namedPort or portRange".into())
            }
        })
        .collect()
}

fn peers(v: Option<&Value>) -> Result<Vec<AdminPeer>, String> {
    let arr = v.and_then(Value::as_array).ok_or("a rule needs peers")?;
    arr.iter()
        .map(|p| {
            if let Some(n) = p.get("namespaces") {
                Ok(AdminPeer::Namespaces(namespaces_selector(n)?))
            } else if let Some(n) = p.get("pods") {
                let (ns, pods) = pods_selectors(n)?;
                Ok(AdminPeer::Pods { ns, pods })
            } else if let Some(n) = p.get("nodes") {
                Ok(AdminPeer::Nodes(selector(Some(n))?))
            } else if let Some(n) = p.get("networks") {
                let list = n.as_array().ok_or("networks must be a list")?;
                let mut out = Vec::new();
                for c in list {
                    let s = c.as_str().ok_or("a network must be a string")?;
                    match s
                        .parse::<IpNet>()
                        .map_err(|e| format!("network {s:?}: {e}"))?
                    {
                        IpNet::V4(n) => out.push(n),
                        IpNet::V6(_) => {}
                    }
                }
                Ok(AdminPeer::Networks(out))
            } else {
                Err("a peer needs namespaces, pods, nodes or networks".into())
            }
        })
        .collect()
}

fn rules(v: Option<&Value>, peer_key: &str, baseline: bool) -> Result<Vec<AdminRule>, String> {
    let Some(arr) = v.and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    arr.iter()
        .enumerate()
        .map(|(i, r)| {
            let action = match r.get("action").and_then(Value::as_str) {
                Some("Allow") => RuleAction::Allow,
                Some("Deny") => RuleAction::Deny,
                Some("Pass") if !baseline => RuleAction::Pass,
                other => return Err(format!("rule {i}: unknown action {other:?}")),
            };
            Ok(AdminRule {
                name: r
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                action,
                peers: peers(r.get(peer_key)).map_err(|e| format!("rule {i}: {e}"))?,
                ports: r
                    .get("ports")
                    .map(ports)
                    .transpose()
                    .map_err(|e| format!("rule {i}: {e}"))?,
            })
        })
        .collect()
}

impl AdminPolicy {
    pub fn from_value(v: &Value, baseline: bool) -> Result<AdminPolicy, PolicyError> {
        let kind = if baseline {
            "BaselineAdminNetworkPolicy"
        } else {
            "AdminNetworkPolicy"
        };
        let bad = |r: String| malformed(kind, v, r);
        let name = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no metadata.name".into()))?
            .to_string();
        let spec = v.get("spec").ok_or_else(|| bad("no spec".into()))?;
        let priority = if baseline {
            0
        } else {
            spec.get("priority")
                .and_then(Value::as_i64)
                .ok_or_else(|| bad("no spec.priority".into()))?
        };
        Ok(AdminPolicy {
            name,
            priority,
            subject: subject(spec.get("subject")).map_err(bad)?,
            ingress: rules(spec.get("ingress"), "from", baseline).map_err(bad)?,
            egress: rules(spec.get("egress"), "to", baseline).map_err(bad)?,
        })
    }

    pub fn selects(&self, pod: &PodInfo, set: &PolicySet) -> bool {
        if pod.host_network {
            return false;
        }
        match &self.subject {
            Subject::Namespaces(s) => s.matches(&set.namespace_labels(&pod.namespace)),
            Subject::Pods { ns, pods } => {
                ns.matches(&set.namespace_labels(&pod.namespace)) && pods.matches(&pod.labels)
            }
        }
    }

    pub fn cidrs(&self, out: &mut Vec<(Ipv4Net, Vec<Ipv4Net>)>) {
        for r in self.ingress.iter().chain(&self.egress) {
            for p in &r.peers {
                if let AdminPeer::Networks(n) = p {
                    out.extend(n.iter().map(|c| (*c, Vec::new())));
                }
            }
        }
    }
}

impl AdminPeer {
    fn matches(&self, ep: &Peer, set: &PolicySet) -> bool {
        match self {
            AdminPeer::Namespaces(s) => ep
                .pod()
                .is_some_and(|p| s.matches(&set.namespace_labels(&p.namespace))),
            AdminPeer::Pods { ns, pods } => ep.pod().is_some_and(|p| {
                ns.matches(&set.namespace_labels(&p.namespace)) && pods.matches(&p.labels)
            }),
            AdminPeer::Nodes(s) => match ep {
                Peer::Ip(ip) => set.node_of_ip(*ip).is_some_and(|n| s.matches(&n.labels)),
                Peer::Pod(_) => false,
            },
            AdminPeer::Networks(n) => ep
                .ip()
                .is_some_and(|ip| n.iter().any(|c| in_block(ip, c, &[]))),
        }
    }
}

impl AdminRule {
    /// Does the rule match the peer and port? Named ports resolve against `named_target`.
    pub fn matches(
        &self,
        peer: &Peer,
        port: u16,
        protocol: Protocol,
        named_target: Option<&PodInfo>,
        set: &PolicySet,
    ) -> bool {
        let port_ok = match &self.ports {
            None => true,
            Some(ps) => ps.iter().any(|p| match p {
                AdminPort::Number(pr, n) => *pr == protocol && *n == port,
                AdminPort::Range(pr, s, e) => *pr == protocol && port >= *s && port <= *e,
                AdminPort::Named(n) => named_target.is_some_and(|t| {
                    t.ports
                        .iter()
                        .any(|c| &c.name == n && c.protocol == protocol && c.port == port)
                }),
            }),
        };
        port_ok && self.peers.iter().any(|p| p.matches(peer, set))
    }
}
