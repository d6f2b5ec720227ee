//! kube-proxy Service resolution. iptables mode: the node's own nat rules
//! decide (every statistic branch and the fall-through), cross-checked against
//! the Service and its EndpointSlices — the intent — with each difference a
//! suspicion; only when the node's rules were not collected does the
//! EndpointSlice model stand in, and the report says so. IPVS mode: the
//! node's IPVS table decides, checked against the EndpointSlices. nftables
//! mode: table `ip kube-proxy` decides in the node's nftables walk, and
//! `kube_proxy_nftables` checks it against the Services.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::cluster::{ClusterView, EndpointFacts, ServiceFacts, ServicePortFacts};
use crate::kernel_walk::{BranchEnd, WalkBranch};
use crate::kube_proxy_nftables::{self as kpn, KubeProxyTable};
use crate::settings::{DEFAULT_MASQ_MARK, ProxyMode, Settings};
use crate::suspicion::Level;
use skoop_netstack::ipvs::IpvsMatch;
use skoop_netstack::netfilter::{Hook, RuleHit};
use skoop_netstack::packet::Packet;
use skoop_netstack::{Netstack, NetstackError};

/// kube-proxy's nftables proxier keeps its rules in table `ip kube-proxy`.
pub fn has_kube_proxy_table(nft: &skoop_netstack::nftables::NftRuleset) -> bool {
    nft.table(skoop_netstack::nftables::Family::Ip, "kube-proxy")
        .is_some()
}

/// What kube-proxy's configuration says about Service traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyConfig {
    pub cluster_cidr: Option<Ipv4Net>,
    /// The mark KUBE-MARK-MASQ sets.
    pub masquerade_mark: u32,
    /// Every ClusterIP packet is marked (`masqueradeAll`).
    pub masquerade_all: bool,
    /// The mark kube-proxy's config gives, when it was read (not the default).
    pub configured_mark: Option<u32>,
}

impl ProxyConfig {
    pub fn from_settings(s: &Settings) -> ProxyConfig {
        ProxyConfig {
            cluster_cidr: s.cluster_cidr,
            masquerade_mark: s.masquerade_mark.unwrap_or(DEFAULT_MASQ_MARK),
            masquerade_all: s.masquerade_all,
            configured_mark: s.masquerade_mark,
        }
    }
}

/// One backend of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The packet after DNAT.
    pub packet: Packet,
    pub endpoint: Ipv4Addr,
    /// `namespace/name` of the backend pod, when it is one.
    pub pod: Option<String>,
}

/// Backends and suspicions.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub backends: Vec<Backend>,
    pub suspicions: Vec<(Level, String)>,
    /// The masquerade mark kube-proxy's config gives, when it was read.
    pub configured_mark: Option<u32>,
}

/// The Service and port a packet is addressed to: by cluster IP and port, or
/// by a node IP and NodePort.
pub fn find<'a>(
    view: &'a ClusterView,
    packet: &Packet,
) -> Option<(&'a ServiceFacts, Option<&'a ServicePortFacts>, bool)> {
    if let Some(svc) = view.service_by_ip(packet.dst) {
        let port = svc
            .ports
            .iter()
            .find(|p| p.port == packet.dport && p.protocol == packet.protocol);
        return Some((svc, port, false));
    }
    if view.node_by_ip(packet.dst).is_some() {
        let svc = view.service_by_node_port(packet.dport, packet.protocol)?;
        let port = svc
            .ports
            .iter()
            .find(|p| p.node_port == Some(packet.dport) && p.protocol == packet.protocol);
        return Some((svc, port, true));
    }
    None
}

/// A Service address on a port the Service does not have: kube-proxy
/// installs no rule for it, so the packet is not translated.
pub(crate) fn no_such_port(svc: &ServiceFacts, packet: &Packet) -> String {
    let have: Vec<String> = svc
        .ports
        .iter()
        .map(|p| format!("{}/{}", p.port, p.protocol))
        .collect();
    format!(
        "service {} has no port {}/{} (it has {}): kube-proxy installs no rule for it",
        svc.id(),
        packet.dport,
        packet.protocol,
        if have.is_empty() {
            "none".to_string()
        } else {
            have.join(", ")
        }
    )
}

/// The endpoint port for a service port: kube-proxy pairs them by name only.
pub(crate) fn endpoint_port(ep: &EndpointFacts, sp: &ServicePortFacts) -> Option<u16> {
    ep.ports
        .iter()
        .find(|(name, _, proto)| name == &sp.name && *proto == sp.protocol)
        .map(|(_, port, _)| *port)
}

/// Resolve `packet` on `node` the way kube-proxy's rules would.
pub fn resolve(view: &ClusterView, node: &str, packet: &Packet, proxy: &ProxyConfig) -> Resolution {
    let mut out = Resolution {
        configured_mark: proxy.configured_mark,
        ..Resolution::default()
    };
    let Some((svc, port, via_node_port)) = find(view, packet) else {
        out.suspicions.push((
            Level::Fatal,
            format!("{}:{} is not a Service address", packet.dst, packet.dport),
        ));
        return out;
    };
    let Some(sp) = port else {
        out.suspicions
            .push((Level::Fatal, no_such_port(svc, packet)));
        return out;
    };
    let all = view
        .endpoints
        .get(&svc.id())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let local_only = via_node_port && svc.external_traffic_local;
    let ready: Vec<&EndpointFacts> = all
        .iter()
        .filter(|e| e.ready)
        .filter(|e| !local_only || e.node.as_deref() == Some(node))
        .collect();
    if ready.is_empty() {
        let not_ready = all.iter().filter(|e| !e.ready).count();
        let scope = if local_only {
            format!(" on node {node} (externalTrafficPolicy: Local)")
        } else {
            String::new()
        };
        out.suspicions.push((
            Level::Fatal,
            format!(
                "service {} has no ready endpoint for port {} ({}/{}){scope}: {} not ready; kube-proxy rejects the traffic",
                svc.id(),
                if sp.name.is_empty() { "-" } else { sp.name.as_str() },
                sp.port,
                sp.protocol,
                not_ready
            ),
        ));
        return out;
    }
    let outside = proxy
        .cluster_cidr
        .map(|c| !c.contains(&packet.src))
        .unwrap_or(false);
    let with_port: Vec<(&EndpointFacts, u16)> = ready
        .iter()
        .filter_map(|ep| endpoint_port(ep, sp).map(|p| (*ep, p)))
        .collect();
    if with_port.is_empty() {
        let names: Vec<String> = ready
            .iter()
            .flat_map(|e| e.ports.iter().map(|(n, p, _)| format!("{n:?} ({p})")))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        out.suspicions.push((
            Level::Fatal,
            format!(
                "service {} port {:?} ({}/{}): its EndpointSlices have no port of that name (they have {}), so kube-proxy has no backend and rejects the traffic",
                svc.id(),
                sp.name,
                sp.port,
                sp.protocol,
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            ),
        ));
        return out;
    }
    for (ep, dport) in with_port {
        // kube-proxy marks for masquerade: NodePort traffic (externalTrafficPolicy
        // Cluster), ClusterIP traffic from outside the cluster CIDR (all of it
        // with masqueradeAll), and hairpin.
        let masq = (via_node_port && !svc.external_traffic_local)
            || (!via_node_port && proxy.masquerade_all)
            || outside
            || packet.src == ep.ip;
        let mut translated = *packet;
        translated.dst = ep.ip;
        translated.dport = dport;
        if masq {
            translated.mark |= proxy.masquerade_mark;
        }
        out.backends.push(Backend {
            packet: translated,
            endpoint: ep.ip,
            pod: ep.pod.clone(),
        });
    }
    out
}

/// The DNAT rule a traversal used (its KUBE-SEP rule), for messages.
fn dnat_rule(trace: &[skoop_netstack::netfilter::RuleHit]) -> String {
    trace
        .iter()
        .rev()
        .find(|h| h.rule.contains("DNAT") || h.family.is_some() && h.rule.contains("dnat "))
        .map(|h| match h.family {
            None => format!("{} rule {} `{}`", h.chain, h.index, h.rule),
            Some(_) => h.describe(),
        })
        .unwrap_or_else(|| "a DNAT rule".to_string())
}

/// The mark `--set-xmark V/M` (or `--mark V/M`) in the rules of a nat chain.
fn chain_mark(rules: &skoop_netstack::netfilter::Ruleset, chain: &str, flag: &str) -> Option<u32> {
    rules.chain("nat", chain)?.rules().iter().find_map(|r| {
        let text = r.text();
        let mut words = text.split_whitespace();
        words.find(|w| *w == flag)?;
        let value = words.next()?.split('/').next()?;
        u32::from_str_radix(value.trim_start_matches("0x"), 16).ok()
    })
}

/// Resolve on a node in iptables mode: what the node's nat rules do to the
/// packet (PREROUTING, or OUTPUT for the node's own packets), compared with
/// what kube-proxy should have programmed from the EndpointSlices.
pub fn resolve_iptables(
    view: &ClusterView,
    node: &str,
    packet: &Packet,
    proxy: &ProxyConfig,
    stack: Result<&Netstack, NetstackError>,
) -> Resolution {
    let model = resolve(view, node, packet, proxy);
    let stack = match stack {
        Ok(s) => s,
        Err(e) => return model_stands_in(model, node, &e.to_string()),
    };
    let hook = if stack.is_local(packet.src) {
        Hook::Output
    } else {
        Hook::Prerouting
    };
    let outcomes = match stack.netfilter(hook, packet, None, None) {
        Ok(o) => o,
        Err(e) => return model_stands_in(model, node, &e.to_string()),
    };
    let seen: Vec<(Packet, Vec<RuleHit>)> = outcomes
        .iter()
        .map(|o| (o.packet, o.trace.clone()))
        .collect();
    let rules = stack.rules().map_or(Rules::Unknown, Rules::Iptables);
    let suspicions = check_translations(view, node, packet, &model, &seen, rules);
    let backends = seen
        .iter()
        .filter(|(p, _)| (p.dst, p.dport) != (packet.dst, packet.dport))
        .filter_map(|(p, _)| {
            let b = model.backends.iter().find(|b| b.endpoint == p.dst)?;
            Some(Backend {
                packet: *p,
                endpoint: p.dst,
                pod: b.pod.clone(),
            })
        })
        .collect();
    Resolution {
        backends,
        suspicions,
        configured_mark: model.configured_mark,
    }
}

/// kube-proxy's translation on `node`, as the walk's nat hooks (or IPVS)
/// did it to each branch, against the Service and its EndpointSlices: each
/// difference a suspicion.
pub fn cross_check(
    view: &ClusterView,
    node: &str,
    packet: &Packet,
    proxy: &ProxyConfig,
    mode: ProxyMode,
    stack: Result<&Netstack, NetstackError>,
    branches: &[WalkBranch],
) -> Vec<(Level, String)> {
    let model = resolve(view, node, packet, proxy);
    let stack = match stack {
        Ok(s) => s,
        Err(_) => return model.suspicions,
    };
    // kube-proxy's rules, read for what the walk did not meet: the
    // masquerade marks, a missing branch, a missing jump.
    let rules = match mode {
        ProxyMode::Ipvs => {
            return resolve_ipvs(view, node, packet, proxy, stack.ipvs(packet)).suspicions;
        }
        ProxyMode::Iptables => match stack.rules() {
            Ok(r) => Rules::Iptables(r),
            Err(e) => {
                let mut f = model.suspicions;
                f.push(stand_in_warning(node, &e.to_string()));
                return f;
            }
        },
        ProxyMode::Nftables => match stack.nft() {
            Ok(Some(nft)) => KubeProxyTable::of(nft).map_or(Rules::Unknown, Rules::Nftables),
            _ => Rules::Unknown,
        },
        ProxyMode::None => return model.suspicions,
    };
    // The pass that took the flow's own packet (the first; a tunnel's
    // outer packet's follows it).
    let seen: Vec<(Packet, Vec<RuleHit>)> = branches
        .iter()
        .filter(|b| !matches!(b.end, BranchEnd::Unknown { .. }))
        .filter_map(|b| b.passes.first().map(|f| (f.packet, f.rules.clone())))
        .collect();
    if seen.is_empty() {
        return model.suspicions;
    }
    let suspicions = check_translations(view, node, packet, &model, &seen, rules);
    if mode == ProxyMode::Nftables {
        return in_nftables_terms(suspicions, packet);
    }
    suspicions
}

/// kube-proxy's nftables proxier keeps a Service in its maps, not in
/// chains of its own: say which map lacks it.
fn in_nftables_terms(suspicions: Vec<(Level, String)>, packet: &Packet) -> Vec<(Level, String)> {
    suspicions
        .into_iter()
        .map(|(level, message)| {
            if message.contains("has no rule for Service") {
                let element = format!(
                    "{} . {} . {}",
                    packet.dst, packet.protocol, packet.dport
                );
                (
                    level,
                    message.replacen(
                        "has no rule for Service",
                        &format!(
                            "has no element `{element}` in map service-ips of table ip kube-proxy for Service"
                        ),
                        1,
                    ),
                )
            } else {
                (level, message)
            }
        })
        .collect()
}

/// The rules kube-proxy wrote on the node, as far as they were read.
enum Rules<'a> {
    Iptables(&'a skoop_netstack::netfilter::Ruleset),
    Nftables(KubeProxyTable<'a>),
    Unknown,
}

/// kube-proxy's per-Service chains (cluster, local and external traffic).
fn is_service_chain(chain: &str) -> bool {
    ["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-"]
        .iter()
        .any(|p| chain.starts_with(p))
}

/// The translations the rules did (`seen`: each branch's packet after the
/// nat hook, with the rules it met) against the model.
fn check_translations(
    view: &ClusterView,
    node: &str,
    packet: &Packet,
    model: &Resolution,
    seen: &[(Packet, Vec<RuleHit>)],
    rules: Rules<'_>,
) -> Vec<(Level, String)> {
    let found = find(view, packet);
    let svc_name = found
        .map(|(s, _, _)| s.id())
        .unwrap_or_else(|| format!("{}:{}", packet.dst, packet.dport));
    let via_node_port = found.is_some_and(|(_, _, np)| np);
    // The Service port's chain base in kube-proxy's nftables table.
    let base = found.and_then(|(s, p, _)| {
        p.map(|p| kpn::service_base(&s.namespace, &s.name, p.protocol.name(), &p.name))
    });
    // Without a ready endpoint kube-proxy programs a REJECT, not a DNAT: the
    // model's suspicion says it, and the filter rules do it in the pipeline.
    let mut suspicions = model.suspicions.clone();
    if model.backends.is_empty() {
        return suspicions;
    }
    let mut translated: Vec<(Packet, &Vec<RuleHit>)> = Vec::new();
    let mut untranslated = 0;
    // The Service chain an untranslated branch went through and left.
    let mut fell_through: Option<&str> = None;
    for (p, trace) in seen {
        if (p.dst, p.dport) == (packet.dst, packet.dport) {
            untranslated += 1;
            fell_through = fell_through.or_else(|| {
                // The last nat rule in a Service chain, or the jump into one
                // (no rule inside matched).
                trace
                    .iter()
                    .rev()
                    .filter(|h| h.table == "nat")
                    .find_map(|h| {
                        if is_service_chain(&h.chain) {
                            return Some(h.chain.as_str());
                        }
                        let mut words = h.rule.split_whitespace();
                        words.find(|w| *w == "-j")?;
                        words.next().filter(|t| is_service_chain(t))
                    })
            });
        } else if !translated
            .iter()
            .any(|(q, _)| (q.dst, q.dport) == (p.dst, p.dport))
        {
            translated.push((*p, trace));
        }
    }
    if translated.is_empty() {
        suspicions.push((
            Level::Fatal,
            format!(
                "kube-proxy on node {node} has no rule for Service {svc_name} ({}:{}/{}), though its EndpointSlices list {} ready endpoint(s): the Service is not programmed on this node (kube-proxy not running or not synced); the packet leaves un-DNATed",
                packet.dst,
                packet.dport,
                packet.protocol,
                model.backends.len()
            ),
        ));
        return suspicions;
    }
    if untranslated > 0 {
        let chain = fell_through
            .map(|c| format!("its chain {c}"))
            .unwrap_or_else(|| "its chain".into());
        // The endpoints no rule of the chain sends to are what its missing
        // rule was for.
        let missed: Vec<String> = model
            .backends
            .iter()
            .filter(|b| !translated.iter().any(|(p, _)| p.dst == b.endpoint))
            .map(|b| format!("{}:{}", b.endpoint, b.packet.dport))
            .collect();
        let missed = if missed.is_empty() {
            String::new()
        } else {
            format!("; no rule sends to ready endpoint {}", missed.join(", "))
        };
        let numgen = match (&rules, &base) {
            (Rules::Nftables(kp), Some(base)) => kp.numgen_gaps(base),
            _ => None,
        };
        let message = match numgen {
            Some((rule, gaps)) => {
                let gaps: Vec<String> = gaps.iter().map(u32::to_string).collect();
                format!(
                    "node {node}'s rules for Service {svc_name} let some new connections fall through without DNAT: {rule} has no branch for numgen value {}{missed}, so those reach no backend",
                    gaps.join(", ")
                )
            }
            None => format!(
                "node {node}'s rules for Service {svc_name} let some new connections fall through {chain} without DNAT: no rule catches its last statistic branch{missed}, so those reach no backend",
            ),
        };
        suspicions.push((Level::Fatal, message));
    }
    // The mark set for masquerade and the one masqueraded, each with the
    // rule (or chain) that says it.
    let (set, tested) = match &rules {
        Rules::Iptables(rules) => (
            chain_mark(rules, "KUBE-MARK-MASQ", "--set-xmark")
                .or_else(|| chain_mark(rules, "KUBE-MARK-MASQ", "--set-mark"))
                .map(|m| (m, "KUBE-MARK-MASQ".to_string())),
            chain_mark(rules, "KUBE-POSTROUTING", "--mark")
                .map(|m| (m, "KUBE-POSTROUTING".to_string())),
        ),
        Rules::Nftables(kp) => kp.masquerade_marks(),
        Rules::Unknown => (None, None),
    };
    let mismatch = match (&set, &tested) {
        (Some((a, by_a)), Some((b, by_b))) if a != b => {
            Some((*a, by_a.as_str(), *b, by_b.as_str()))
        }
        _ => None,
    };
    let (set, set_by) = match &set {
        Some((m, by)) => (Some(*m), by.as_str()),
        None => (None, "KUBE-MARK-MASQ"),
    };
    // The rules against kube-proxy's own config (masqueradeBit).
    if let (Some(a), Some(want)) = (set, model_configured_mark(model))
        && a != want
    {
        suspicions.push((
            Level::Warning,
            format!(
                "node {node}: {} sets mark {a:#x}, but kube-proxy's config (masqueradeBit) says {want:#x}: the rules were written by another kube-proxy configuration",
                set_by
            ),
        ));
    }
    let mut hit = Vec::new();
    for (p, trace) in &translated {
        let rule = dnat_rule(trace);
        match model.backends.iter().find(|b| b.endpoint == p.dst) {
            None => {
                suspicions.push((
                    Level::Fatal,
                    format!(
                        "node {node}: {rule} DNATs Service {svc_name} to {}:{}, which is no ready endpoint of it (stale rule: kube-proxy not synced)",
                        p.dst, p.dport
                    ),
                ));
            }
            Some(b) => {
                if b.packet.dport != p.dport {
                    suspicions.push((
                        Level::Fatal,
                        format!(
                            "node {node}: {rule} DNATs Service {svc_name} to {}:{}, but the endpoint's target port is {}",
                            p.dst, p.dport, b.packet.dport
                        ),
                    ));
                }
                hit.push(b.endpoint);
                let hairpin = packet.src == p.dst;
                let marked = trace.iter().any(|h| {
                    h.rule.contains("-j KUBE-MARK-MASQ")
                        || h.family.is_some() && h.rule.contains("jump mark-for-masquerade")
                });
                let remote = view
                    .pod_by_ip(p.dst)
                    .is_some_and(|pod| pod.node != node && !pod.host_network);
                // A client on this node (its host network or its pods)
                // gets the reply through this node anyway.
                let client_here = view.node_by_ip(packet.src).is_some_and(|n| n.name == node)
                    || view
                        .pod_by_ip(packet.src)
                        .is_some_and(|pod| pod.node == node);
                // Nothing else masqueraded it and the backend answers from
                // another node: the reply bypasses this node's un-DNAT.
                let unmasqueraded = p.src == packet.src && remote && !client_here;
                // The model marks only for masquerade.
                let wanted = b.packet.mark & !packet.mark != 0;
                if let (Rules::Nftables(kp), Some(base), true, false) =
                    (&rules, &base, wanted, marked)
                {
                    // kube-proxy should have marked it, in the chain the
                    // reason belongs to.
                    let (prefix, chain_base, why) = if hairpin {
                        (
                            "endpoint-",
                            kpn::endpoint_base(base, p.dst, p.dport),
                            "this hairpin flow's reply bypasses the Service and the client drops it",
                        )
                    } else if via_node_port {
                        ("external-", base.clone(), "NodePort traffic")
                    } else {
                        (
                            "service-",
                            base.clone(),
                            "traffic from outside the cluster CIDR",
                        )
                    };
                    if let Some(chain) = kp.lacking_masquerade_jump(prefix, &chain_base) {
                        let level = if hairpin {
                            Level::Fatal
                        } else if unmasqueraded {
                            Level::Critical
                        } else {
                            Level::Warning
                        };
                        let effect = if hairpin {
                            why.to_string()
                        } else if unmasqueraded {
                            format!(
                                "{why} to {}:{} leaves unmasqueraded, so the backend's node answers {} directly, bypassing this node's un-DNAT, and the client drops the reply",
                                p.dst, p.dport, packet.src
                            )
                        } else {
                            format!(
                                "{why} is not marked for masquerade (another rule masquerades this flow)"
                            )
                        };
                        suspicions.push((
                            level,
                            format!(
                                "node {node}: {chain} has no `jump {}` for Service {svc_name}: {effect}",
                                kpn::MARK_FOR_MASQUERADE
                            ),
                        ));
                    }
                }
                if let Some((a, by_a, t, by_t)) = mismatch {
                    let bypassed = marked && unmasqueraded;
                    let (level, why) = if hairpin {
                        (
                            Level::Fatal,
                            " (this hairpin flow's reply bypasses the Service and the client drops it)".to_string(),
                        )
                    } else if bypassed {
                        (
                            Level::Critical,
                            format!(
                                " (this flow to {}:{} leaves unmasqueraded, so the backend's node answers {} directly, bypassing this node's un-DNAT, and the client drops the reply)",
                                p.dst, p.dport, packet.src
                            ),
                        )
                    } else {
                        (Level::Warning, String::new())
                    };
                    suspicions.push((
                        level,
                        format!(
                            "node {node}: {by_a} sets mark {a:#x} but {by_t} masquerades packets marked {t:#x}, so traffic kube-proxy marks for masquerade is not masqueraded{why}"
                        ),
                    ));
                }
            }
        }
    }
    for b in &model.backends {
        if !hit.contains(&b.endpoint) {
            suspicions.push((
                Level::Warning,
                format!(
                    "ready endpoint {}:{} of Service {svc_name} has no rule on node {node}: it gets no traffic from this node (kube-proxy not synced)",
                    b.endpoint, b.packet.dport
                ),
            ));
        }
    }
    suspicions.dedup();
    suspicions
}

/// The mark kube-proxy's config gives, carried in the model's backends.
fn model_configured_mark(model: &Resolution) -> Option<u32> {
    model.configured_mark
}

fn stand_in_warning(node: &str, why: &str) -> (Level, String) {
    (
        Level::Warning,
        format!(
            "cannot check kube-proxy's rules on node {node} ({why}): Service translation is taken from the EndpointSlices"
        ),
    )
}

fn model_stands_in(mut model: Resolution, node: &str, why: &str) -> Resolution {
    model.suspicions.push(stand_in_warning(node, why));
    model
}

/// Resolve on a node where kube-proxy runs in IPVS mode: the kernel's IPVS
/// table decides the backends, and it is checked against the EndpointSlices.
pub fn resolve_ipvs(
    view: &ClusterView,
    node: &str,
    packet: &Packet,
    proxy: &ProxyConfig,
    ipvs: Result<Option<IpvsMatch>, NetstackError>,
) -> Resolution {
    let mut model = resolve(view, node, packet, proxy);
    let svc = find(view, packet)
        .map(|(s, _, _)| format!("service {}", s.id()))
        .unwrap_or_else(|| "the service".to_string());
    let m = match ipvs {
        Err(e) => {
            model.suspicions.push((
                Level::Warning,
                format!("cannot check IPVS of node {node}: {e}; following the EndpointSlices"),
            ));
            return model;
        }
        Ok(None) => {
            model.suspicions.push((
                Level::Fatal,
                format!(
                    "node {node} has no IPVS virtual service for {}:{}/{}: kube-proxy (ipvs mode) did not program {svc}",
                    packet.dst, packet.dport, packet.protocol
                ),
            ));
            model.backends.clear();
            return model;
        }
        Ok(Some(m)) => m,
    };
    let expected: Vec<(Ipv4Addr, u16)> = model
        .backends
        .iter()
        .map(|b| (b.packet.dst, b.packet.dport))
        .collect();
    let scheduled: Vec<(Ipv4Addr, u16)> = m
        .branches
        .iter()
        .map(|b| (b.real_server.address, b.real_server.port))
        .collect();
    let quiesced: Vec<(Ipv4Addr, u16)> = m.quiesced.iter().map(|r| (r.address, r.port)).collect();
    for (ip, port) in scheduled.iter().chain(&quiesced) {
        if !expected.contains(&(*ip, *port)) {
            model.suspicions.push((
                Level::Fatal,
                format!(
                    "IPVS `{}` on node {node} has real server {ip}:{port}, which is not a ready endpoint of {svc}: stale kube-proxy state",
                    m.text
                ),
            ));
        }
    }
    for (ip, port) in &expected {
        if !scheduled.contains(&(*ip, *port)) && !quiesced.contains(&(*ip, *port)) {
            model.suspicions.push((
                Level::Fatal,
                format!(
                    "endpoint {ip}:{port} of {svc} is not a real server of IPVS `{}` on node {node}",
                    m.text
                ),
            ));
        }
    }
    for (ip, port) in &quiesced {
        let (level, why) = if scheduled.is_empty() {
            (
                Level::Fatal,
                "every real server has weight 0, so new connections are refused",
            )
        } else {
            (Level::Warning, "it takes no new connections")
        };
        model.suspicions.push((
            level,
            format!(
                "real server {ip}:{port} of IPVS `{}` on node {node} has weight 0: {why}",
                m.text
            ),
        ));
    }
    // The kernel's table is what happens; the model only lends the masquerade mark.
    let marks: Vec<(Ipv4Addr, u32)> = model
        .backends
        .iter()
        .map(|b| (b.endpoint, b.packet.mark))
        .collect();
    model.backends = m
        .branches
        .iter()
        .map(|b| {
            let mut out = b.packet;
            if let Some((_, mark)) = marks.iter().find(|(ip, _)| *ip == b.real_server.address) {
                out.mark = *mark;
            }
            Backend {
                packet: out,
                endpoint: b.real_server.address,
                pod: view.pod_by_ip(b.real_server.address).map(|p| p.id()),
            }
        })
        .collect();
    model
}

#[cfg(test)]
mod tests {
    use super::*;
    use skoop_netstack::packet::Protocol;

    const CLUSTER: &str = r#"{"kind": "List", "apiVersion": "v1", "items": [
      {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
       "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.11"}]}},
      {"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "d", "name": "web"},
       "spec": {"type": "NodePort", "clusterIP": "10.96.0.5", "externalTrafficPolicy": "Cluster",
                "ports": [{"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP", "targetPort": 8080}]}},
      {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
       "metadata": {"namespace": "d", "name": "web-x", "labels": {"kubernetes.io/service-name": "web"}},
       "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
       "endpoints": [{"addresses": ["10.244.0.6"], "conditions": {"ready": true}, "nodeName": "n1"},
                     {"addresses": ["10.244.1.7"], "conditions": {"ready": false}, "nodeName": "n2"}]}
    ]}"#;

    fn view(text: &str) -> ClusterView {
        ClusterView::parse(text, "test", Default::default()).unwrap()
    }

    fn packet(src: &str, dst: &str, dport: u16) -> Packet {
        Packet {
            src: src.parse().unwrap(),
            sport: 40000,
            dst: dst.parse().unwrap(),
            dport,
            protocol: Protocol::Tcp,
            mark: 0,
            encap: None,
            reply: false,
            tos: 0,
            size: 0,
            icmp: None,
        }
    }

    const MASQ_MARK: u32 = DEFAULT_MASQ_MARK;
    const PROXY: &ProxyConfig = &ProxyConfig {
        cluster_cidr: Some(Ipv4Net::new_assert(
            std::net::Ipv4Addr::new(10, 244, 0, 0),
            16,
        )),
        masquerade_mark: MASQ_MARK,
        masquerade_all: false,
        configured_mark: None,
    };

    /// node n1's nat table for Service d/web (10.96.0.5:80): one KUBE-SEP per
    /// `(address, port)`, the last one the fall-through unless `no_fall`.
    fn kube_rules(seps: &[(&str, u16)], no_fall: bool, mark: &str) -> String {
        let mut t = String::from(
            "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-WEB - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n:KUBE-POSTROUTING - [0:0]\n",
        );
        for i in 0..seps.len() {
            t.push_str(&format!(":KUBE-SEP-{i} - [0:0]\n"));
        }
        t.push_str("-A PREROUTING -j KUBE-SERVICES\n-A OUTPUT -j KUBE-SERVICES\n-A POSTROUTING -j KUBE-POSTROUTING\n");
        if !seps.is_empty() {
            t.push_str(
                "-A KUBE-SERVICES -d 10.96.0.5/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-WEB\n",
            );
        }
        let n = seps.len();
        for (i, (ip, port)) in seps.iter().enumerate() {
            let last = i + 1 == n;
            if last && no_fall {
                break;
            }
            if last {
                t.push_str(&format!("-A KUBE-SVC-WEB -j KUBE-SEP-{i}\n"));
            } else {
                let p = 1.0 / (n - i) as f64;
                t.push_str(&format!(
                    "-A KUBE-SVC-WEB -m statistic --mode random --probability {p:.5} -j KUBE-SEP-{i}\n"
                ));
            }
            t.push_str(&format!(
                "-A KUBE-SEP-{i} -p tcp -m tcp -j DNAT --to-destination {ip}:{port}\n"
            ));
        }
        t.push_str(&format!(
            "-A KUBE-MARK-MASQ -j MARK --set-xmark {mark}/{mark}\n"
        ));
        t.push_str("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n-A KUBE-POSTROUTING -j MASQUERADE\nCOMMIT\n");
        t
    }

    fn node_stack(rules: Option<String>) -> skoop_netstack::Netstack {
        let mut dump: skoop_netstack::dump::NetnsDump = serde_json::from_value(serde_json::json!({
            "interfaces": [{"index": 2, "name": "eth0", "kind": "device", "mtu": 1500,
                            "admin_up": true, "oper_state": "UP", "addresses": ["192.168.0.11/24"]}],
            "routes": [{"table": 255, "type": "local", "dst": "192.168.0.11/32", "dev": "eth0"}]
        }))
        .unwrap();
        match rules {
            Some(r) => dump.iptables = Some(r.into()),
            None => {
                dump.absent
                    .insert("iptables".into(), "iptables-save not found".into());
            }
        }
        skoop_netstack::Netstack::new("node n1".into(), dump)
    }

    fn both_ready() -> ClusterView {
        view(&CLUSTER.replace(r#""ready": false"#, r#""ready": true"#))
    }

    fn from_rules(rules: Option<String>, src: &str) -> Resolution {
        let stack = node_stack(rules);
        resolve_iptables(
            &both_ready(),
            "n1",
            &packet(src, "10.96.0.5", 80),
            PROXY,
            Ok(&stack),
        )
    }

    fn blocking(r: &Resolution) -> Vec<&str> {
        r.suspicions
            .iter()
            .filter(|(l, _)| l.blocking())
            .map(|(_, m)| m.as_str())
            .collect()
    }

    #[test]
    fn rules_in_step_with_the_endpoints_are_quiet() {
        let r = from_rules(
            Some(kube_rules(
                &[("10.244.0.6", 8080), ("10.244.1.7", 8080)],
                false,
                "0x4000",
            )),
            "10.244.0.5",
        );
        assert!(r.suspicions.is_empty(), "{:?}", r.suspicions);
        let got: Vec<_> = r
            .backends
            .iter()
            .map(|b| b.packet.dst.to_string())
            .collect();
        assert_eq!(got, vec!["10.244.0.6", "10.244.1.7"]);
    }

    #[test]
    fn a_service_without_rules_is_not_programmed() {
        let r = from_rules(Some(kube_rules(&[], false, "0x4000")), "10.244.0.5");
        assert!(r.backends.is_empty());
        assert!(
            blocking(&r)[0].contains("not programmed"),
            "{:?}",
            r.suspicions
        );
    }

    #[test]
    fn a_stale_rule_and_a_wrong_port_are_fatal() {
        let r = from_rules(
            Some(kube_rules(
                &[("10.244.0.6", 8080), ("10.244.1.50", 8080)],
                false,
                "0x4000",
            )),
            "10.244.0.5",
        );
        let b = blocking(&r);
        assert!(
            b.iter()
                .any(|m| m.contains("10.244.1.50:8080") && m.contains("stale")),
            "{b:?}"
        );
        assert!(
            r.suspicions
                .iter()
                .any(|(l, m)| *l == Level::Warning && m.contains("10.244.1.7"))
        );
        let r = from_rules(
            Some(kube_rules(
                &[("10.244.0.6", 8080), ("10.244.1.7", 8081)],
                false,
                "0x4000",
            )),
            "10.244.0.5",
        );
        assert!(
            blocking(&r)
                .iter()
                .any(|m| m.contains("8081") && m.contains("target port is 8080"))
        );
    }

    #[test]
    fn a_chain_without_fall_through_is_fatal() {
        let r = from_rules(
            Some(kube_rules(
                &[("10.244.0.6", 8080), ("10.244.1.7", 8080)],
                true,
                "0x4000",
            )),
            "10.244.0.5",
        );
        assert!(
            blocking(&r).iter().any(|m| m.contains("fall through")),
            "{:?}",
            r.suspicions
        );
    }

    #[test]
    fn a_changed_masquerade_mark_is_fatal_only_for_hairpin() {
        let rules = kube_rules(
            &[("10.244.0.6", 8080), ("10.244.1.7", 8080)],
            false,
            "0x8000",
        );
        let r = from_rules(Some(rules.clone()), "10.244.0.5");
        assert!(blocking(&r).is_empty());
        assert!(r.suspicions.iter().any(|(_, m)| m.contains("0x8000")));
        let r = from_rules(Some(rules), "10.244.0.6");
        assert!(
            blocking(&r)
                .iter()
                .any(|m| m.contains("0x8000") && m.contains("hairpin"))
        );
    }

    #[test]
    fn without_the_nodes_rules_the_model_stands_in_with_a_warning() {
        let r = from_rules(None, "10.244.0.5");
        assert_eq!(r.backends.len(), 2);
        assert!(
            r.suspicions
                .iter()
                .any(|(l, m)| *l == Level::Warning
                    && m.starts_with("cannot check kube-proxy's rules"))
        );
    }

    #[test]
    fn cluster_ip_goes_to_ready_endpoints_only_without_masquerade() {
        let r = resolve(
            &view(CLUSTER),
            "n1",
            &packet("10.244.1.9", "10.96.0.5", 80),
            PROXY,
        );
        assert!(r.suspicions.is_empty(), "{:?}", r.suspicions);
        assert_eq!(r.backends.len(), 1);
        let b = &r.backends[0];
        assert_eq!(
            (b.packet.dst.to_string(), b.packet.dport),
            ("10.244.0.6".into(), 8080)
        );
        assert_eq!(b.packet.mark & MASQ_MARK, 0);
    }

    #[test]
    fn masquerade_for_node_port_outside_source_and_hairpin() {
        let v = view(CLUSTER);
        let np = resolve(
            &v,
            "n1",
            &packet("10.244.1.9", "192.168.0.11", 30080),
            PROXY,
        );
        assert_eq!(np.backends[0].packet.mark & MASQ_MARK, MASQ_MARK);
        let outside = resolve(&v, "n1", &packet("172.16.0.9", "10.96.0.5", 80), PROXY);
        assert_eq!(outside.backends[0].packet.mark & MASQ_MARK, MASQ_MARK);
        let hairpin = resolve(&v, "n1", &packet("10.244.0.6", "10.96.0.5", 80), PROXY);
        assert_eq!(hairpin.backends[0].packet.mark & MASQ_MARK, MASQ_MARK);
    }

    #[test]
    fn configured_masquerade_mark_and_masquerade_all() {
        let v = view(CLUSTER);
        let bit15 = &ProxyConfig {
            masquerade_mark: 0x8000,
            ..*PROXY
        };
        let np = resolve(
            &v,
            "n1",
            &packet("10.244.1.9", "192.168.0.11", 30080),
            bit15,
        );
        assert_eq!(np.backends[0].packet.mark, 0x8000);
        let inside = resolve(&v, "n1", &packet("10.244.1.9", "10.96.0.5", 80), bit15);
        assert_eq!(inside.backends[0].packet.mark, 0);
        let all = &ProxyConfig {
            masquerade_all: true,
            ..*bit15
        };
        let inside = resolve(&v, "n1", &packet("10.244.1.9", "10.96.0.5", 80), all);
        assert_eq!(inside.backends[0].packet.mark, 0x8000);
    }

    #[test]
    fn wrong_port_and_no_ready_endpoint_are_fatal() {
        let v = view(CLUSTER);
        let r = resolve(&v, "n1", &packet("10.244.1.9", "10.96.0.5", 81), PROXY);
        assert!(r.backends.is_empty());
        assert!(
            r.suspicions[0].1.contains("has no port 81/tcp"),
            "{:?}",
            r.suspicions
        );
        let none = CLUSTER.replace(r#""ready": true"#, r#""ready": false"#);
        let r = resolve(
            &view(&none),
            "n1",
            &packet("10.244.1.9", "10.96.0.5", 80),
            PROXY,
        );
        assert_eq!(r.suspicions[0].0, Level::Fatal);
        assert!(
            r.suspicions[0].1.contains("no ready endpoint"),
            "{:?}",
            r.suspicions
        );
    }

    #[test]
    fn endpoint_ports_pair_by_name_only() {
        let renamed = CLUSTER.replace(
            r#""ports": [{"name": "http", "port": 8080"#,
            r#""ports": [{"name": "web", "port": 8080"#,
        );
        let r = resolve(
            &view(&renamed),
            "n1",
            &packet("10.244.1.9", "10.96.0.5", 80),
            PROXY,
        );
        assert!(r.backends.is_empty());
        assert!(
            r.suspicions[0].1.contains("no port of that name"),
            "{:?}",
            r.suspicions
        );
    }

    #[test]
    fn local_traffic_policy_limits_node_ports_to_local_endpoints() {
        let local = CLUSTER.replace(
            r#""externalTrafficPolicy": "Cluster""#,
            r#""externalTrafficPolicy": "Local""#,
        );
        let v = view(&local);
        let here = resolve(
            &v,
            "n1",
            &packet("10.244.1.9", "192.168.0.11", 30080),
            PROXY,
        );
        assert_eq!(here.backends.len(), 1);
        assert_eq!(here.backends[0].packet.mark & MASQ_MARK, 0);
        let there = resolve(
            &v,
            "n2",
            &packet("10.244.1.9", "192.168.0.11", 30080),
            PROXY,
        );
        assert!(there.backends.is_empty());
        assert!(
            there.suspicions[0]
                .1
                .contains("externalTrafficPolicy: Local")
        );
    }

    fn ipvs_table(real_servers: &[(&str, u16, u32)]) -> Vec<skoop_netstack::dump::IpvsService> {
        vec![skoop_netstack::dump::IpvsService {
            protocol: Some("tcp".into()),
            address: Some("10.96.0.5".parse().unwrap()),
            port: Some(80),
            fwmark: None,
            scheduler: "rr".into(),
            real_servers: real_servers
                .iter()
                .map(|(a, p, w)| skoop_netstack::dump::IpvsRealServer {
                    address: a.parse().unwrap(),
                    port: *p,
                    weight: *w,
                    forward: "Masq".into(),
                })
                .collect(),
        }]
    }

    fn ipvs(real_servers: &[(&str, u16, u32)], p: &Packet) -> Resolution {
        let table = ipvs_table(real_servers);
        let m = skoop_netstack::ipvs::lookup(&table, p);
        resolve_ipvs(&view(CLUSTER), "n1", p, PROXY, Ok(m))
    }

    #[test]
    fn ipvs_in_step_with_endpoints_is_quiet() {
        let p = packet("10.244.1.9", "10.96.0.5", 80);
        let r = ipvs(&[("10.244.0.6", 8080, 1)], &p);
        assert!(r.suspicions.is_empty(), "{:?}", r.suspicions);
        assert_eq!(r.backends.len(), 1);
        assert_eq!(r.backends[0].packet.dst.to_string(), "10.244.0.6");
    }

    #[test]
    fn ipvs_missing_vip_stale_and_missing_real_servers() {
        let p = packet("10.244.1.9", "10.96.0.5", 80);
        let none = resolve_ipvs(&view(CLUSTER), "n1", &p, PROXY, Ok(None));
        assert!(none.backends.is_empty());
        assert!(
            none.suspicions[0]
                .1
                .contains("no IPVS virtual service for 10.96.0.5:80/tcp")
        );
        let stale = ipvs(&[("10.244.9.9", 8080, 1)], &p);
        let msgs: Vec<&str> = stale.suspicions.iter().map(|f| f.1.as_str()).collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains("10.244.9.9:8080, which is not a ready endpoint")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m
                    .contains("endpoint 10.244.0.6:8080 of service d/web is not a real server")),
            "{msgs:?}"
        );
        assert_eq!(stale.backends[0].packet.dst.to_string(), "10.244.9.9");
    }

    #[test]
    fn ipvs_weight_zero_is_fatal_only_when_it_is_the_only_way() {
        let p = packet("10.244.1.9", "10.96.0.5", 80);
        let only = ipvs(&[("10.244.0.6", 8080, 0)], &p);
        assert!(only.backends.is_empty());
        assert_eq!(only.suspicions[0].0, Level::Fatal, "{:?}", only.suspicions);
        assert!(only.suspicions[0].1.contains("weight 0"));
        let unavailable = resolve_ipvs(
            &view(CLUSTER),
            "n1",
            &p,
            PROXY,
            Err(NetstackError::Unavailable("no IPVS in this kernel".into())),
        );
        assert_eq!(unavailable.suspicions[0].0, Level::Warning);
        assert_eq!(unavailable.backends.len(), 1);
    }
}
