//! `networking.k8s.io/v1` NetworkPolicy, compiled.

use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::objects::{malformed, typed};
use crate::{Peer, PodInfo, PolicyError, PolicySet, Selector};
use skoop_netstack::packet::Protocol;

/// A port entry of a rule.
#[derive(Debug, Clone)]
pub(crate) struct PortSpec {
    pub protocol: Protocol,
    pub port: Option<PortRef>,
}

#[derive(Debug, Clone)]
pub(crate) enum PortRef {
    /// A number and an optional `endPort`.
    Number(u16, Option<u16>),
    /// A named container port.
    Name(String),
}

impl PortSpec {
    /// Does `port/protocol` match? A named port is resolved against `target`'s container ports.
    pub fn matches(&self, port: u16, protocol: Protocol, target: Option<&PodInfo>) -> bool {
        if self.protocol != protocol {
            return false;
        }
        match &self.port {
            None => true,
            Some(PortRef::Number(p, end)) => port >= *p && port <= end.unwrap_or(*p),
            Some(PortRef::Name(n)) => target.is_some_and(|t| {
                t.ports
                    .iter()
                    .any(|c| &c.name == n && c.protocol == protocol && c.port == port)
            }),
        }
    }

    pub fn describe(&self) -> String {
        match &self.port {
            None => format!("any {} port", self.protocol.kubernetes_name()),
            Some(PortRef::Number(p, None)) => format!("{p}/{}", self.protocol.kubernetes_name()),
            Some(PortRef::Number(p, Some(e))) => {
                format!("{p}-{e}/{}", self.protocol.kubernetes_name())
            }
            Some(PortRef::Name(n)) => format!("named port {n}/{}", self.protocol.kubernetes_name()),
        }
    }
}

/// Which namespaces a pod peer covers.
#[derive(Debug, Clone)]
pub(crate) enum NsMatch {
    /// Only the policy's own namespace (no namespaceSelector).
    Same(String),
    Selector(Selector),
}

#[derive(Debug, Clone)]
pub(crate) enum PeerRule {
    Pods {
        ns: NsMatch,
        /// None: every pod of the selected namespaces.
        pods: Option<Selector>,
    },
    IpBlock {
        cidr: Ipv4Net,
        except: Vec<Ipv4Net>,
        /// An IPv6 block never matches an IPv4 flow.
        v6: bool,
    },
}

pub(crate) fn in_block(ip: Ipv4Addr, cidr: &Ipv4Net, except: &[Ipv4Net]) -> bool {
    cidr.contains(&ip) && !except.iter().any(|e| e.contains(&ip))
}

impl PeerRule {
    /// Does the peer match `ep`? (The fast form of [`PeerRule::miss`].)
    pub fn matches(&self, ep: &Peer, set: &PolicySet) -> bool {
        match self {
            PeerRule::IpBlock { cidr, except, v6 } => {
                !*v6 && ep.ip().is_some_and(|ip| in_block(ip, cidr, except))
            }
            PeerRule::Pods { ns, pods } => ep.pod().is_some_and(|p| {
                (match ns {
                    NsMatch::Same(n) => *n == p.namespace,
                    NsMatch::Selector(s) => s.matches(&set.namespace_labels(&p.namespace)),
                }) && pods.as_ref().is_none_or(|s| s.matches(&p.labels))
            }),
        }
    }

    /// Does the peer match `ep`? `None` when it does; otherwise why not.
    pub fn miss(&self, ep: &Peer, set: &PolicySet) -> Option<String> {
        match self {
            PeerRule::IpBlock { cidr, except, v6 } => {
                if *v6 {
                    return Some(format!("ipBlock {cidr} is IPv6"));
                }
                match ep.ip() {
                    Some(ip) if in_block(ip, cidr, except) => None,
                    Some(ip) if cidr.contains(&ip) => {
                        Some(format!("{ip} is in an except of ipBlock {cidr}"))
                    }
                    Some(ip) => Some(format!("{ip} is not in ipBlock {cidr}")),
                    None => Some(format!("the pod has no address for ipBlock {cidr}")),
                }
            }
            PeerRule::Pods { ns, pods } => {
                let Some(p) = ep.pod() else {
                    return Some(format!(
                        "{} is not a pod, only an ipBlock can match it",
                        ep.describe()
                    ));
                };
                match ns {
                    NsMatch::Same(n) if *n != p.namespace => {
                        return Some(format!(
                            "podSelector without namespaceSelector covers namespace {n} only, not {}",
                            p.namespace
                        ));
                    }
                    NsMatch::Selector(s) if !s.matches(&set.namespace_labels(&p.namespace)) => {
                        return Some(format!(
                            "namespaceSelector {s} does not match namespace {}",
                            p.namespace
                        ));
                    }
                    _ => {}
                }
                match pods {
                    Some(s) if !s.matches(&p.labels) => Some(format!(
                        "podSelector {s} does not match the labels of {}",
                        p.id()
                    )),
                    _ => None,
                }
            }
        }
    }
}

/// One ingress or egress rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// None (or empty in the object): every peer.
    pub peers: Option<Vec<PeerRule>>,
    /// Empty: every port.
    pub ports: Vec<PortSpec>,
}

/// The result of checking one rule.
pub(crate) struct RuleCheck {
    pub peer_ok: bool,
    pub port_ok: bool,
    pub reason: String,
}

impl Rule {
    /// Does the rule allow the flow? (The fast form of [`Rule::check`].)
    pub fn allows(
        &self,
        peer: &Peer,
        port: u16,
        protocol: Protocol,
        named_target: Option<&PodInfo>,
        set: &PolicySet,
    ) -> bool {
        (self.ports.is_empty()
            || self
                .ports
                .iter()
                .any(|p| p.matches(port, protocol, named_target)))
            && self
                .peers
                .as_ref()
                .is_none_or(|ps| ps.iter().any(|p| p.matches(peer, set)))
    }

    pub fn check(
        &self,
        peer: &Peer,
        port: u16,
        protocol: Protocol,
        named_target: Option<&PodInfo>,
        set: &PolicySet,
    ) -> RuleCheck {
        let mut reasons = Vec::new();
        let peer_ok = match &self.peers {
            None => true,
            Some(peers) => {
                let mut ok = false;
                for (i, p) in peers.iter().enumerate() {
                    match p.miss(peer, set) {
                        None => {
                            ok = true;
                            break;
                        }
                        Some(r) => reasons.push(format!("peer {i}: {r}")),
                    }
                }
                ok
            }
        };
        let port_ok = self.ports.is_empty()
            || self
                .ports
                .iter()
                .any(|p| p.matches(port, protocol, named_target));
        if !port_ok {
            let listed: Vec<String> = self.ports.iter().map(PortSpec::describe).collect();
            reasons.push(format!(
                "port {port}/{} is not among {}",
                protocol.kubernetes_name(),
                listed.join(", ")
            ));
        }
        if peer_ok {
            reasons.retain(|r| !r.starts_with("peer "));
        }
        RuleCheck {
            peer_ok,
            port_ok,
            reason: reasons.join("; "),
        }
    }
}

/// A compiled NetworkPolicy.
#[derive(Debug, Clone)]
pub(crate) struct NetPol {
    pub namespace: String,
    pub name: String,
    pub selector: Selector,
    /// None: the policy does not apply to ingress (policyTypes).
    pub ingress: Option<Vec<Rule>>,
    pub egress: Option<Vec<Rule>>,
}

fn compile_port(p: &NetworkPolicyPort) -> Result<PortSpec, String> {
    let protocol = match p.protocol.as_deref() {
        None => Protocol::Tcp,
        Some(s) => {
            Protocol::parse_kubernetes(s).ok_or_else(|| format!("unknown protocol {s:?}"))?
        }
    };
    let port = match &p.port {
        None => None,
        Some(IntOrString::Int(n)) => {
            let n = u16::try_from(*n).map_err(|_| format!("port {n} out of range"))?;
            let end = match p.end_port {
                None => None,
                Some(e) => Some(u16::try_from(e).map_err(|_| format!("endPort {e} out of range"))?),
            };
            Some(PortRef::Number(n, end))
        }
        Some(IntOrString::String(s)) => match s.parse::<u16>() {
            // The API stores a number given as a string as a number.
            Ok(n) => Some(PortRef::Number(n, None)),
            Err(_) => Some(PortRef::Name(s.clone())),
        },
    };
    Ok(PortSpec { protocol, port })
}

fn compile_peer(p: &NetworkPolicyPeer, ns: &str) -> Result<PeerRule, String> {
    if let Some(b) = &p.ip_block {
        let cidr: IpNet = b
            .cidr
            .parse()
            .map_err(|e| format!("ipBlock cidr {:?}: {e}", b.cidr))?;
        let mut except = Vec::new();
        for e in b.except.iter().flatten() {
            let n: IpNet = e
                .parse()
                .map_err(|err| format!("ipBlock except {e:?}: {err}"))?;
            if let IpNet::V4(n) = n {
                except.push(n);
            }
        }
        return Ok(match cidr {
            IpNet::V4(c) => PeerRule::IpBlock {
                cidr: c,
                except,
                v6: false,
            },
            IpNet::V6(_) => PeerRule::IpBlock {
                cidr: Ipv4Net::default(),
                except,
                v6: true,
            },
        });
    }
    let nsm = match &p.namespace_selector {
        Some(s) => NsMatch::Selector(Selector::compile(s)?),
        None => NsMatch::Same(ns.to_string()),
    };
    let pods = match &p.pod_selector {
        Some(s) => Some(Selector::compile(s)?),
        None => None,
    };
    if p.namespace_selector.is_none() && p.pod_selector.is_none() {
        return Err("a peer needs podSelector, namespaceSelector or ipBlock".into());
    }
    Ok(PeerRule::Pods { ns: nsm, pods })
}

fn compile_rule(
    peers: Option<&Vec<NetworkPolicyPeer>>,
    ports: Option<&Vec<NetworkPolicyPort>>,
    ns: &str,
) -> Result<Rule, String> {
    let peers = match peers {
        None => None,
        Some(v) if v.is_empty() => None,
        Some(v) => Some(
            v.iter()
                .map(|p| compile_peer(p, ns))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let ports = ports
        .map(|v| v.iter().map(compile_port).collect::<Result<Vec<_>, _>>())
        .transpose()?
        .unwrap_or_default();
    Ok(Rule { peers, ports })
}

impl NetPol {
    pub fn from_value(v: &Value) -> Result<NetPol, PolicyError> {
        let np: NetworkPolicy = typed(v, "NetworkPolicy")?;
        let bad = |r: String| malformed("NetworkPolicy", v, r);
        let namespace = np
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = np
            .metadata
            .name
            .clone()
            .ok_or_else(|| bad("no metadata.name".into()))?;
        let spec = np.spec.unwrap_or_default();
        let selector = match &spec.pod_selector {
            Some(s) => Selector::compile(s).map_err(bad)?,
            None => Selector::everything(),
        };
        let egress_rules = spec.egress.clone().unwrap_or_default();
        // policyTypes defaulting: Ingress always, Egress when the policy has egress rules.
        let (has_ingress, has_egress) = match &spec.policy_types {
            Some(t) if !t.is_empty() => {
                for x in t {
                    if x != "Ingress" && x != "Egress" {
                        return Err(bad(format!("unknown policyType {x:?}")));
                    }
                }
                (
                    t.iter().any(|x| x == "Ingress"),
                    t.iter().any(|x| x == "Egress"),
                )
            }
            _ => (true, !egress_rules.is_empty()),
        };
        let ingress = if has_ingress {
            Some(
                spec.ingress
                    .iter()
                    .flatten()
                    .map(|r| compile_rule(r.from.as_ref(), r.ports.as_ref(), &namespace))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(bad)?,
            )
        } else {
            None
        };
        let egress = if has_egress {
            Some(
                egress_rules
                    .iter()
                    .map(|r| compile_rule(r.to.as_ref(), r.ports.as_ref(), &namespace))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(bad)?,
            )
        } else {
            None
        };
        Ok(NetPol {
            namespace,
            name,
            selector,
            ingress,
            egress,
        })
    }

    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Does the policy select `pod`? hostNetwork pods are never selected.
    pub fn selects(&self, pod: &PodInfo) -> bool {
        !pod.host_network && pod.namespace == self.namespace && self.selector.matches(&pod.labels)
    }

    pub fn cidrs(&self, out: &mut Vec<(Ipv4Net, Vec<Ipv4Net>)>) {
        for r in self.ingress.iter().chain(self.egress.iter()).flatten() {
            for p in r.peers.iter().flatten() {
                if let PeerRule::IpBlock {
                    cidr,
                    except,
                    v6: false,
                } = p
                {
                    out.push((*cidr, except.clone()));
                }
            }
        }
    }
}
