//! The verdict of one direction of one flow, with its explanation.

use std::fmt;

use serde::Serialize;

use crate::admin::{AdminPolicy, RuleAction};
use crate::{Peer, PodInfo, PolicySet};
use skoop_netstack::packet::Protocol;

/// Ingress (at the destination pod) or egress (at the source pod).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        })
    }
}

/// An AdminNetworkPolicy rule that passed the flow on to the NetworkPolicy tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminRuleRef {
    pub name: String,
    pub priority: i64,
    pub rule: usize,
    pub rule_name: String,
}

/// A rule that did not allow the flow, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Miss {
    /// `namespace/name`.
    pub policy: String,
    pub rule: usize,
    pub reason: String,
}

/// What decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DecidedBy {
    /// A pod may always reach itself.
    SelfTraffic,
    /// The pod uses the host network: no policy selects it.
    HostNetwork,
    /// Traffic between a pod and its own node is always allowed.
    NodeLocal,
    /// No policy isolates the pod in this direction.
    NotIsolated { passed: Vec<AdminRuleRef> },
    /// An AdminNetworkPolicy rule allowed or denied.
    AdminNetworkPolicy {
        name: String,
        priority: i64,
        rule: usize,
        rule_name: String,
        action: String,
    },
    /// A NetworkPolicy rule allowed.
    NetworkPolicyAllow {
        policy: String,
        rule: usize,
        passed: Vec<AdminRuleRef>,
    },
    /// Policies select the pod and none of their rules allows the flow.
    NetworkPolicyDeny {
        policies: Vec<String>,
        nearest_misses: Vec<Miss>,
        passed: Vec<AdminRuleRef>,
    },
    /// A BaselineAdminNetworkPolicy rule allowed or denied.
    BaselineAdminNetworkPolicy {
        name: String,
        rule: usize,
        rule_name: String,
        action: String,
        passed: Vec<AdminRuleRef>,
    },
}

impl DecidedBy {
    /// The decision's kind, as serialised (`network-policy-deny`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            DecidedBy::SelfTraffic => "self-traffic",
            DecidedBy::HostNetwork => "host-network",
            DecidedBy::NodeLocal => "node-local",
            DecidedBy::NotIsolated { .. } => "not-isolated",
            DecidedBy::AdminNetworkPolicy { .. } => "admin-network-policy",
            DecidedBy::NetworkPolicyAllow { .. } => "network-policy-allow",
            DecidedBy::NetworkPolicyDeny { .. } => "network-policy-deny",
            DecidedBy::BaselineAdminNetworkPolicy { .. } => "baseline-admin-network-policy",
        }
    }
}

/// The verdict of one direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectionVerdict {
    pub direction: Direction,
    /// The pod the direction is evaluated at (`namespace/name`).
    pub pod: String,
    pub allowed: bool,
    pub decision: DecidedBy,
    /// One sentence for people.
    pub explanation: String,
}

impl DirectionVerdict {
    /// The policies the decision names (`namespace/name`, or the admin policy's name).
    pub fn named_policies(&self) -> Vec<String> {
        match &self.decision {
            DecidedBy::NetworkPolicyDeny { policies, .. } => policies.clone(),
            DecidedBy::NetworkPolicyAllow { policy, .. } => vec![policy.clone()],
            DecidedBy::AdminNetworkPolicy { name, .. }
            | DecidedBy::BaselineAdminNetworkPolicy { name, .. } => vec![name.clone()],
            _ => Vec::new(),
        }
    }
}

/// Both directions of a flow; egress is absent when the source is not a pod, ingress when
/// the destination is not a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowVerdict {
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress: Option<DirectionVerdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<DirectionVerdict>,
}

fn passed_text(passed: &[AdminRuleRef]) -> String {
    if passed.is_empty() {
        return String::new();
    }
    let p: Vec<String> = passed
        .iter()
        .map(|r| {
            format!(
                "AdminNetworkPolicy {} (priority {}) rule {} {:?} passed it on; ",
                r.name, r.priority, r.rule, r.rule_name
            )
        })
        .collect();
    p.concat()
}

impl PolicySet {
    /// The egress verdict at `src` for a packet to `dst` (the backend after DNAT).
    pub fn egress(
        &self,
        src: &PodInfo,
        dst: &Peer,
        port: u16,
        protocol: Protocol,
    ) -> DirectionVerdict {
        let named_target = match dst {
            Peer::Pod(p) => Some(*p),
            Peer::Ip(_) => None,
        };
        self.direction(Direction::Egress, src, dst, port, protocol, named_target)
    }

    /// The ingress verdict at `dst` for a packet from `src` (as `dst` sees it: masqueraded
    /// flows come from a node address).
    pub fn ingress(
        &self,
        src: &Peer,
        dst: &PodInfo,
        port: u16,
        protocol: Protocol,
    ) -> DirectionVerdict {
        self.direction(Direction::Ingress, dst, src, port, protocol, Some(dst))
    }

    /// Both directions for a flow between two endpoints (no address translation in between).
    pub fn flow(&self, src: &Peer, dst: &Peer, port: u16, protocol: Protocol) -> FlowVerdict {
        let egress = match src {
            Peer::Pod(p) => Some(self.egress(p, dst, port, protocol)),
            Peer::Ip(_) => None,
        };
        let ingress = match dst {
            Peer::Pod(p) => Some(self.ingress(src, p, port, protocol)),
            Peer::Ip(_) => None,
        };
        FlowVerdict {
            allowed: egress.iter().chain(ingress.iter()).all(|v| v.allowed),
            egress,
            ingress,
        }
    }

    /// The fast form of the verdict (no explanation), for matrices: same decision as
    /// [`PolicySet::egress`] / [`PolicySet::ingress`].
    pub fn allowed(
        &self,
        dir: Direction,
        pod: &PodInfo,
        peer: &Peer,
        port: u16,
        protocol: Protocol,
    ) -> bool {
        self.allowed_with(dir, pod, peer, port, protocol, None)
    }

    /// The NetworkPolicies selecting `pod` in `dir` (indices), for callers that evaluate
    /// many flows of one pod.
    pub(crate) fn selecting(&self, dir: Direction, pod: &PodInfo) -> Vec<usize> {
        self.netpols_by_ns
            .get(&pod.namespace)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .copied()
            .filter(|&i| {
                let np = &self.netpols[i];
                let has = match dir {
                    Direction::Ingress => np.ingress.is_some(),
                    Direction::Egress => np.egress.is_some(),
                };
                has && np.selects(pod)
            })
            .collect()
    }

    /// [`PolicySet::allowed`] with the selecting NetworkPolicies already known.
    pub(crate) fn allowed_with(
        &self,
        dir: Direction,
        pod: &PodInfo,
        peer: &Peer,
        port: u16,
        protocol: Protocol,
        selecting: Option<&[usize]>,
    ) -> bool {
        let named_target = match (dir, peer) {
            (Direction::Ingress, _) => Some(pod),
            (Direction::Egress, Peer::Pod(p)) => Some(*p),
            (Direction::Egress, Peer::Ip(_)) => None,
        };
        if pod.host_network {
            return true;
        }
        match peer {
            Peer::Pod(p) if p.namespace == pod.namespace && p.name == pod.name => return true,
            Peer::Ip(ip) if pod.ip == Some(*ip) => return true,
            Peer::Ip(ip)
                if pod
                    .node
                    .as_deref()
                    .is_some_and(|n| self.node_ips(n).contains(ip)) =>
            {
                return true;
            }
            _ => {}
        }
        'anp: for anp in &self.anps {
            if !anp.selects(pod, self) {
                continue;
            }
            let rules = match dir {
                Direction::Ingress => &anp.ingress,
                Direction::Egress => &anp.egress,
            };
            for r in rules {
                if r.matches(peer, port, protocol, named_target, self) {
                    match r.action {
                        RuleAction::Pass => break 'anp,
                        RuleAction::Allow => return true,
                        RuleAction::Deny => return false,
                    }
                }
            }
        }
        let mut isolated = false;
        let candidates = match selecting {
            Some(s) => s,
            None => self
                .netpols_by_ns
                .get(&pod.namespace)
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        };
        for &i in candidates {
            let np = &self.netpols[i];
            let rules = match dir {
                Direction::Ingress => &np.ingress,
                Direction::Egress => &np.egress,
            };
            let Some(rules) = rules else { continue };
            if !np.selects(pod) {
                continue;
            }
            isolated = true;
            if rules
                .iter()
                .any(|r| r.allows(peer, port, protocol, named_target, self))
            {
                return true;
            }
        }
        if isolated {
            return false;
        }
        for banp in &self.banps {
            if !banp.selects(pod, self) {
                continue;
            }
            let rules = match dir {
                Direction::Ingress => &banp.ingress,
                Direction::Egress => &banp.egress,
            };
            for r in rules {
                if r.matches(peer, port, protocol, named_target, self) {
                    return r.action == RuleAction::Allow;
                }
            }
        }
        true
    }

    fn direction(
        &self,
        dir: Direction,
        pod: &PodInfo,
        peer: &Peer,
        port: u16,
        protocol: Protocol,
        named_target: Option<&PodInfo>,
    ) -> DirectionVerdict {
        let verdict = |allowed: bool, decision: DecidedBy, explanation: String| DirectionVerdict {
            direction: dir,
            pod: pod.id(),
            allowed,
            decision,
            explanation,
        };
        let what = format!(
            "{dir} at {} {} {} on {port}/{}",
            pod.id(),
            if dir == Direction::Ingress {
                "from"
            } else {
                "to"
            },
            peer.describe(),
            protocol.kubernetes_name()
        );
        if pod.host_network {
            return verdict(
                true,
                DecidedBy::HostNetwork,
                format!(
                    "{what}: allowed, {} uses the host network, which no policy selects",
                    pod.id()
                ),
            );
        }
        let is_self = match peer {
            Peer::Pod(p) => p.namespace == pod.namespace && p.name == pod.name,
            Peer::Ip(ip) => pod.ip == Some(*ip),
        };
        if is_self {
            return verdict(
                true,
                DecidedBy::SelfTraffic,
                format!("{what}: allowed, a pod may always reach itself"),
            );
        }
        if let (Peer::Ip(ip), Some(node)) = (peer, &pod.node)
            && self.node_ips(node).contains(ip)
        {
            return verdict(
                true,
                DecidedBy::NodeLocal,
                format!(
                    "{what}: allowed, traffic between a pod and its own node ({node}) is always allowed"
                ),
            );
        }

        // Tier 1: AdminNetworkPolicy, by priority, first matching rule.
        let mut passed = Vec::new();
        'anp: for anp in &self.anps {
            if !anp.selects(pod, self) {
                continue;
            }
            let rules = match dir {
                Direction::Ingress => &anp.ingress,
                Direction::Egress => &anp.egress,
            };
            for (i, r) in rules.iter().enumerate() {
                if !r.matches(peer, port, protocol, named_target, self) {
                    continue;
                }
                match r.action {
                    RuleAction::Pass => {
                        passed.push(AdminRuleRef {
                            name: anp.name.clone(),
                            priority: anp.priority,
                            rule: i,
                            rule_name: r.name.clone(),
                        });
                        break 'anp;
                    }
                    action => {
                        let allowed = action == RuleAction::Allow;
                        return verdict(
                            allowed,
                            admin_decision(anp, i, &r.name, action),
                            format!(
                                "{what}: {} by AdminNetworkPolicy {} (priority {}) rule {i} {:?} ({action:?})",
                                if allowed { "allowed" } else { "denied" },
                                anp.name,
                                anp.priority,
                                r.name
                            ),
                        );
                    }
                }
            }
        }
        let ptext = passed_text(&passed);

        // Tier 2: NetworkPolicy, OR-ed over every policy selecting the pod in this direction.
        let mut selecting = Vec::new();
        let mut misses: Vec<(u8, Miss)> = Vec::new();
        for &i in self
            .netpols_by_ns
            .get(&pod.namespace)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let np = &self.netpols[i];
            let rules = match dir {
                Direction::Ingress => &np.ingress,
                Direction::Egress => &np.egress,
            };
            let Some(rules) = rules else { continue };
            if !np.selects(pod) {
                continue;
            }
            selecting.push(np.id());
            for (ri, r) in rules.iter().enumerate() {
                let c = r.check(peer, port, protocol, named_target, self);
                if c.peer_ok && c.port_ok {
                    return verdict(
                        true,
                        DecidedBy::NetworkPolicyAllow {
                            policy: np.id(),
                            rule: ri,
                            passed,
                        },
                        format!(
                            "{what}: {ptext}allowed by NetworkPolicy {} {dir} rule {ri}",
                            np.id()
                        ),
                    );
                }
                let closeness = u8::from(c.peer_ok) + u8::from(c.port_ok);
                misses.push((
                    closeness,
                    Miss {
                        policy: np.id(),
                        rule: ri,
                        reason: c.reason,
                    },
                ));
            }
        }
        if !selecting.is_empty() {
            let best = misses.iter().map(|m| m.0).max().unwrap_or(0);
            let nearest: Vec<Miss> = misses
                .into_iter()
                .filter(|m| m.0 == best)
                .map(|m| m.1)
                .take(5)
                .collect();
            let mut text = format!(
                "{what}: {ptext}denied by policy: NetworkPolicy {} select{} {} for {dir} and no rule allows the flow",
                selecting.join(", "),
                if selecting.len() == 1 { "s" } else { "" },
                pod.id()
            );
            if nearest.is_empty() {
                text.push_str(&format!(" (they have no {dir} rules: default deny)"));
            } else {
                let m: Vec<String> = nearest
                    .iter()
                    .map(|m| format!("{} rule {}: {}", m.policy, m.rule, m.reason))
                    .collect();
                text.push_str(&format!("; nearest misses: {}", m.join(" | ")));
            }
            return verdict(
                false,
                DecidedBy::NetworkPolicyDeny {
                    policies: selecting,
                    nearest_misses: nearest,
                    passed,
                },
                text,
            );
        }

        // Tier 3: BaselineAdminNetworkPolicy.
        for banp in &self.banps {
            if !banp.selects(pod, self) {
                continue;
            }
            let rules = match dir {
                Direction::Ingress => &banp.ingress,
                Direction::Egress => &banp.egress,
            };
            for (i, r) in rules.iter().enumerate() {
                if r.matches(peer, port, protocol, named_target, self) {
                    let allowed = r.action == RuleAction::Allow;
                    return verdict(
                        allowed,
                        DecidedBy::BaselineAdminNetworkPolicy {
                            name: banp.name.clone(),
                            rule: i,
                            rule_name: r.name.clone(),
                            action: format!("{:?}", r.action),
                            passed,
                        },
                        format!(
                            "{what}: {ptext}{} by BaselineAdminNetworkPolicy {} rule {i} {:?} ({:?}), no NetworkPolicy selects the pod",
                            if allowed { "allowed" } else { "denied" },
                            banp.name,
                            r.name,
                            r.action
                        ),
                    );
                }
            }
        }
        verdict(
            true,
            DecidedBy::NotIsolated { passed },
            format!(
                "{what}: {ptext}allowed, no policy isolates {} for {dir}",
                pod.id()
            ),
        )
    }
}

fn admin_decision(
    anp: &AdminPolicy,
    rule: usize,
    rule_name: &str,
    action: RuleAction,
) -> DecidedBy {
    DecidedBy::AdminNetworkPolicy {
        name: anp.name.clone(),
        priority: anp.priority,
        rule,
        rule_name: rule_name.to_string(),
        action: format!("{action:?}"),
    }
}
