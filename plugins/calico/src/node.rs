//! One node hop of Calico: the host's kernel pipeline decides what happens
//! to the packet; this module checks what Calico's layout implies about the
//! outcome (cali veths with /32 routes, blackhole block routes, the pool's
//! encapsulation between the two nodes, vxlan.calico neighbour/FDB entries,
//! tunl0, wireguard.cali, felix's chains), on the request and the reply alike.

use std::net::Ipv4Addr;

use skoop_sdk::findings::Expect;
use skoop_sdk::host::{
    Fate, ForwardQuery, Forwarded, Interface, Netns, Route, RouteKind, cluster, infra, policy,
};
use skoop_sdk::{
    Encap, EncapKind, Findings, Hop as NetHop, Level, Link, LinkKind, Node, NodeStep, Packet, Pod,
    Result, Transmission, VethPod,
};

use crate::Calico;
use crate::config::{ANN_VXLAN, Mode, same_subnet};

pub const VXLAN_DEV: &str = "vxlan.calico";
pub const IPIP_DEV: &str = "tunl0";
pub const WIREGUARD_DEV: &str = "wireguard.cali";

/// A packet being handled at one node.
pub struct Hop<'a> {
    plugin: &'a Calico,
    node: &'a Node,
    upstream: Option<&'a Link>,
    packet: Packet,
    ns: Netns,
    f: Findings,
}

/// A packet at the node after the host's kernel pipeline.
struct Ingress {
    packet: Packet,
    out: Forwarded,
}

/// The cross-check of a flow felix's policy chains dropped against the
/// Kubernetes policy objects (the host evaluates them where the packet is):
/// when every verdict allows it, why they do; None when one denies (the host
/// reports that deny itself) or none applies.
fn objects_allow(p: &Packet) -> Option<String> {
    let verdicts = policy::evaluate(p.src, p.dst, p.dport, p.protocol);
    if verdicts.is_empty() || verdicts.iter().any(|v| !v.allowed) {
        return None;
    }
    Some(
        verdicts
            .iter()
            .map(|v| format!("{}: {}", v.direction, v.explanation))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// The policy a felix chain enforces, recovered from its name where felix
/// writes it readably (`cali-pi-<tier>/<policy>`, `cali-po-...`) or from a
/// `Policy ...` rule comment; the chain kind otherwise.
pub fn felix_policy(chain: &str, rule: &str) -> Option<String> {
    if let Some(i) = rule.find("--comment \"Policy ") {
        let rest = &rule[i + "--comment \"Policy ".len()..];
        let name: String = rest.chars().take_while(|c| *c != '"').collect();
        return Some(format!("policy {name}"));
    }
    let (dir, rest) = if let Some(r) = chain.strip_prefix("cali-pi-") {
        ("ingress", r)
    } else if let Some(r) = chain.strip_prefix("cali-po-") {
        ("egress", r)
    } else if let Some(r) = chain.strip_prefix("cali-tw-") {
        return Some(format!("the ingress policy of workload interface {r}"));
    } else if let Some(r) = chain.strip_prefix("cali-fw-") {
        return Some(format!("the egress policy of workload interface {r}"));
    } else {
        return None;
    };
    if rest.starts_with('_') {
        // A hashed name: felix does not keep the policy's name in it.
        return Some(format!(
            "the {dir} rules of a policy felix hashed to {rest}"
        ));
    }
    let name = rest
        .trim_start_matches("default/")
        .replace("knp.default.", "");
    let kind = if rest.contains("knp.default.") {
        "Kubernetes NetworkPolicy"
    } else {
        "Calico policy"
    };
    Some(format!("{kind} {name} ({dir})"))
}

/// The chain a rule jumps or goes to.
fn jump_target(rule: &str) -> Option<&str> {
    let mut words = rule.split_whitespace();
    while let Some(w) = words.next() {
        if w == "-j" || w == "-g" || w == "--jump" || w == "--goto" {
            return words.next();
        }
    }
    None
}

impl<'a> Hop<'a> {
    pub fn new(
        plugin: &'a Calico,
        node: &'a Node,
        upstream: Option<&'a Link>,
        packet: Packet,
    ) -> Self {
        Hop {
            plugin,
            node,
            upstream,
            packet,
            ns: Netns::node(&node.name),
            f: Findings::new(),
        }
    }

    /// The interface holding the node's address; none: its checks are skipped, said once.
    fn host_if(&mut self) -> Option<String> {
        if self.node.host_interface.is_none() {
            self.f.warning(format!(
                "cannot check which interface of node {} holds its address {} (not in its dump): host interface checks skipped",
                self.node.name, self.node.ip
            ));
        }
        self.node.host_interface.clone()
    }

    /// Node readiness, decapsulation and the kernel pipeline. `None`: dropped.
    fn ingress(&mut self) -> Result<Option<Ingress>> {
        if !self.node.ready {
            self.f.fatal(format!("node {} is NotReady", self.node.name));
        }
        self.f.ip_rules(&self.ns)?;
        let Some(up) = self.upstream else {
            let q = ForwardQuery::originated(self.packet);
            let Some(out) = self.pipeline(&q)? else {
                return Ok(None);
            };
            return Ok(Some(Ingress {
                packet: self.packet,
                out,
            }));
        };
        let mut packet = self.packet;
        let mut iif = up.iif.clone();
        if let Some(encap) = packet.encap {
            let (dev, kind) = match encap.kind {
                EncapKind::Vxlan => (VXLAN_DEV, "vxlan"),
                EncapKind::Ipip => (IPIP_DEV, "ipip"),
            };
            let expect = Expect {
                kind: Some(kind),
                ..Expect::default()
            };
            match self.f.interface(&self.ns, dev, expect)? {
                Some(d) if d.up() => {}
                Some(_) | None if self.f.blocking() => return Ok(None),
                _ => {}
            }
            packet = packet.decapsulated();
            iif = Some(dev.to_string());
        }
        let q = ForwardQuery {
            packet,
            iif,
            l2_next_hop: up.next_hop_address,
            tos: 0,
        };
        let Some(out) = self.pipeline(&q)? else {
            return Ok(None);
        };
        Ok(Some(Ingress { packet, out }))
    }

    /// The host's kernel pipeline; drops are reported with what decided them
    /// (felix's chain and policy, Calico's blackhole block route).
    fn pipeline(&mut self, q: &ForwardQuery) -> Result<Option<Forwarded>> {
        let Some(outs) = self.f.forward(&self.ns, q)? else {
            return Ok(None);
        };
        let mut live = Vec::new();
        for o in outs {
            if matches!(o.fate, Fate::Drop(_)) {
                self.report_drop(&q.packet, &o);
            } else {
                live.push(o);
            }
        }
        Ok(live.into_iter().next())
    }

    fn report_drop(&mut self, packet: &Packet, o: &Forwarded) {
        let Fate::Drop(cause) = &o.fate else {
            return;
        };
        let level = if o.uncertain {
            Level::Warning
        } else {
            Level::Fatal
        };
        if cause.kind == "netfilter"
            && let Some(hit) = &cause.rule
        {
            // The policy is named by the innermost felix chain the packet crossed.
            let policy = std::iter::once(hit)
                .chain(o.rules.iter().rev())
                .find_map(|r| {
                    felix_policy(&r.chain, &r.rule)
                        .filter(|_| r.chain.starts_with("cali-p"))
                        .or_else(|| {
                            jump_target(&r.rule)
                                .filter(|t| t.starts_with("cali-pi-") || t.starts_with("cali-po-"))
                                .and_then(|t| felix_policy(t, ""))
                        })
                })
                .or_else(|| felix_policy(&hit.chain, &hit.rule));
            if hit.chain.starts_with("cali-") || policy.is_some() {
                let rule = if hit.index == 0 {
                    format!("{}/{} {}", hit.table, hit.chain, hit.rule)
                } else {
                    format!(
                        "{}/{} rule {} `{}`",
                        hit.table, hit.chain, hit.index, hit.rule
                    )
                };
                let disagreement = if policy.is_some() && !packet.reply {
                    objects_allow(&o.packet)
                } else {
                    None
                };
                let policy = policy.map(|p| format!(": {p}")).unwrap_or_default();
                self.f.add(
                    level,
                    format!(
                        "felix's iptables {rule} drops the {} {} on node {}{policy}",
                        packet.direction(),
                        o.packet.tuple(),
                        self.node.name
                    ),
                );
                if let Some(allowed) = disagreement {
                    self.f.add(
                        Level::Warning,
                        format!(
                            "intent and dataplane differ: the Kubernetes policy objects allow {} ({allowed}), yet felix's policy chains on node {} drop it; a Calico policy (projectcalico.org NetworkPolicy, GlobalNetworkPolicy, a tier) is in play, or felix's rules are out of sync with the objects",
                            o.packet.tuple(),
                            self.node.name
                        ),
                    );
                }
                return;
            }
        }
        if cause.kind == "route"
            && let Some(r) = &cause.route
            && r.kind == RouteKind::Blackhole
            && let Some(block) = self.plugin.config.block_of(o.packet.dst)
            && block.cidr == r.prefix
        {
            let whose = if block.node == self.node.name {
                format!(
                    "its own IPAM block {}: the /32 route Calico's CNI adds for {} (`{} dev {}<hash> scope link`) is missing, so it falls into the block's blackhole route",
                    block.cidr, o.packet.dst, o.packet.dst, self.plugin.config.interface_prefix
                )
            } else {
                format!(
                    "the blackhole route of IPAM block {} of node {}, which this node does not own",
                    block.cidr, block.node
                )
            };
            self.f.add(
                level,
                format!(
                    "node {} discards the {} for {} by {whose} (`{}`)",
                    self.node.name,
                    packet.direction(),
                    o.packet.dst,
                    r.text
                ),
            );
            return;
        }
        self.f.report_drop(&self.ns, packet, o);
    }

    fn finish(self, step: NodeStep) -> Result<NodeStep> {
        Ok(self.f.into_step(step))
    }

    fn dropped(self) -> Result<NodeStep> {
        self.f.dropped()
    }

    /// The node that owns `ip` by IPAM block (or tunnel address), else `fallback`.
    fn owner(&mut self, ip: Ipv4Addr, fallback: &str) -> Option<Node> {
        let by_block = self.plugin.config.owner_of(ip);
        if let Some(owner) = &by_block
            && owner != fallback
        {
            self.f.warning(format!(
                "{ip} runs on node {fallback}, but its IPAM block is affine to node {owner}: Calico routes it to {owner}"
            ));
        }
        cluster::node(fallback)
    }

    /// The packet is for a pod, here or on another node.
    pub fn toward_pod(mut self, pod: &Pod) -> Result<NodeStep> {
        if pod.node == self.node.name {
            // A down cali veth has lost its /32 route: name the device, not
            // the blackhole route the packet then falls into.
            let veth = VethPod::new(None, None);
            let Some(peer) = veth.node_side(pod, &mut self.f)? else {
                return self.dropped();
            };
            let Some(ing) = self.ingress()? else {
                return self.dropped();
            };
            return self.toward_local_pod(ing, pod, peer);
        }
        let Some(target) = self.owner(pod.ip, &pod.node) else {
            self.f.fatal(format!(
                "pod {} runs on node {}, which is not in the cluster",
                pod.id(),
                pod.node
            ));
            return self.dropped();
        };
        if !self.host_if_up()? {
            return self.dropped();
        }
        // A down tunnel device has lost its routes: name it, not the route.
        let tunnel = match self.expected_mode(pod.ip, &target) {
            Some((Mode::Vxlan, _)) => Some((VXLAN_DEV, "vxlan")),
            Some((Mode::Ipip, _)) => Some((IPIP_DEV, "ipip")),
            _ => None,
        };
        if let Some((dev, kind)) = tunnel {
            let expect = Expect {
                kind: Some(kind),
                ..Expect::default()
            };
            match self.f.interface(&self.ns, dev, expect)? {
                Some(d) if !d.up() => return self.dropped(),
                None if self.f.blocking() => return self.dropped(),
                _ => {}
            }
        }
        let Some(ing) = self.ingress()? else {
            return self.dropped();
        };
        let Some(route) = ing.out.route.clone() else {
            return self.dropped();
        };
        self.toward_remote(ing, &route, &target, Some(pod.ip))
    }

    /// Deliver to a pod on this node over its cali veth.
    fn toward_local_pod(mut self, ing: Ingress, pod: &Pod, peer: String) -> Result<NodeStep> {
        let expected = self.plugin.config.veth_name(&pod.namespace, &pod.name);
        let Some(route) = ing.out.route.clone() else {
            return self.dropped();
        };
        if route.dev.as_deref() != Some(peer.as_str()) {
            self.f.fatal(format!(
                "node {} routes pod {} ({}) via `{}`, not via its veth {peer}: the route Calico's CNI adds, `{} dev {peer} scope link`, is missing or overridden",
                self.node.name,
                pod.id(),
                pod.ip,
                route.text,
                pod.ip
            ));
            return self.dropped();
        }
        if peer != expected {
            self.f.warning(format!(
                "the host veth of pod {} on node {} is {peer}; Calico names it {expected} (interfacePrefix {:?})",
                pod.id(),
                self.node.name,
                self.plugin.config.interface_prefix
            ));
        }
        self.f.sysctl(
            &self.ns,
            &format!("net.ipv4.conf.{peer}.forwarding"),
            "1",
            Level::Warning,
            "Calico's CNI enables forwarding on the host veth",
        )?;
        let step = NodeStep::forward(vec![Transmission {
            next_hop: pod.hop(),
            kind: LinkKind::Veth,
            packet: Packet {
                mark: 0,
                ..ing.out.packet
            },
            oif: Some(peer),
            iif: Some("eth0".into()),
            next_hop_address: None,
        }]);
        self.finish(step)
    }

    /// The packet is for another node's host network.
    pub fn toward_host(mut self, target: &Node) -> Result<NodeStep> {
        if !self.host_if_up()? {
            return self.dropped();
        }
        let Some(ing) = self.ingress()? else {
            return self.dropped();
        };
        let Some(route) = ing.out.route.clone() else {
            return self.dropped();
        };
        self.toward_remote(ing, &route, target, None)
    }

    /// A down host interface has lost its routes: name the device first.
    fn host_if_up(&mut self) -> Result<bool> {
        if let Some(host_if) = self.host_if()
            && let Some(dev) = self.check_host_if(&host_if)?
            && !dev.up()
        {
            return Ok(false);
        }
        Ok(!self.f.blocking())
    }

    fn check_host_if(&mut self, host_if: &str) -> Result<Option<Interface>> {
        self.f.interface(&self.ns, host_if, Expect::default())
    }

    /// The mode the pool of `dst` asks for between this node and `target`.
    fn expected_mode(&self, dst: Ipv4Addr, target: &Node) -> Option<(Mode, String)> {
        let pool = self.plugin.config.pool_of(dst)?;
        let same = same_subnet(self.node, target);
        let mode = pool.mode(same);
        Some((mode, pool.name.clone()))
    }

    /// Follow the route toward another node.
    fn toward_remote(
        mut self,
        ing: Ingress,
        route: &Route,
        target: &Node,
        pod_ip: Option<Ipv4Addr>,
    ) -> Result<NodeStep> {
        let dev = route.dev.clone().unwrap_or_default();
        let expected = pod_ip.and_then(|ip| self.expected_mode(ip, target));
        let taken = match dev.as_str() {
            VXLAN_DEV => Some(Mode::Vxlan),
            IPIP_DEV => Some(Mode::Ipip),
            _ => None,
        };
        if let (Some((want, pool)), Some(have)) = (&expected, taken)
            && *want != have
        {
            self.f.warning(format!(
                "node {} routes {} over {dev} (`{}`), but IPPool {pool} uses {} between node {} and node {}",
                self.node.name,
                ing.out.packet.dst,
                route.text,
                want.name(),
                self.node.name,
                target.name
            ));
        }
        match dev.as_str() {
            VXLAN_DEV => return self.over_vxlan(ing, route, target),
            IPIP_DEV => return self.over_ipip(ing, route, target),
            WIREGUARD_DEV => return self.over_wireguard(ing, target),
            _ => {}
        }
        let gateway = match &ing.out.fate {
            Fate::Transmit { next_hop, .. } => *next_hop,
            _ => route.gateway.unwrap_or(ing.out.packet.dst),
        };
        let next = cluster::node_by_ip(gateway);
        let Some(next) = next else {
            self.f.neighbour(&self.ns, &dev, gateway, Level::Fatal)?;
            let what = match pod_ip {
                Some(ip) => {
                    let block = self
                        .plugin
                        .config
                        .block_of(ip)
                        .map(|b| format!("IPAM block {} of node {}", b.cidr, b.node))
                        .unwrap_or_else(|| format!("pod address {ip}"));
                    let program = match &expected {
                        Some((Mode::Vxlan, _)) => format!(
                            "`{} via {} dev {VXLAN_DEV} onlink` (felix)",
                            self.plugin
                                .config
                                .block_of(ip)
                                .map(|b| b.cidr.to_string())
                                .unwrap_or_default(),
                            target.annotation(ANN_VXLAN).unwrap_or("<VTEP>")
                        ),
                        Some((Mode::Ipip, _)) => format!(
                            "`{} via {} dev {IPIP_DEV} proto bird onlink`",
                            self.plugin
                                .config
                                .block_of(ip)
                                .map(|b| b.cidr.to_string())
                                .unwrap_or_default(),
                            target.ip
                        ),
                        _ => format!(
                            "`{} via {} proto bird`",
                            self.plugin
                                .config
                                .block_of(ip)
                                .map(|b| b.cidr.to_string())
                                .unwrap_or_default(),
                            target.ip
                        ),
                    };
                    if route.prefix.prefix_len() == 0 {
                        format!(
                            "node {} has no route for {block}: it falls to the default route `{}` and leaves the cluster; Calico programs {program}",
                            self.node.name, route.text
                        )
                    } else {
                        format!(
                            "node {} routes {block} via `{}`, which reaches no node; Calico programs {program}",
                            self.node.name, route.text
                        )
                    }
                }
                None => format!(
                    "node {} routes the {} for node {} ({}) via `{}`, which reaches no node",
                    self.node.name,
                    ing.packet.direction(),
                    target.name,
                    target.ip,
                    route.text
                ),
            };
            self.f.fatal(what);
            return self.dropped();
        };
        if next.name != target.name {
            self.f.warning(format!(
                "node {} sends traffic for node {} through node {} (`{}`)",
                self.node.name, target.name, next.name, route.text
            ));
        }
        if let Some((want, pool)) = &expected
            && *want != Mode::Bgp
        {
            self.f.warning(format!(
                "node {} routes {} straight to node {} (`{}`), but IPPool {pool} uses {} between these nodes: the route is not felix's or BIRD's",
                self.node.name,
                ing.out.packet.dst,
                next.name,
                route.text,
                want.name()
            ));
        }
        self.f.neighbour(&self.ns, &dev, gateway, Level::Fatal)?;
        self.check_host_if(&dev)?;
        // skb marks do not cross the wire.
        let packet = Packet {
            mark: 0,
            ..ing.out.packet
        };
        let suspicions = infra::node_to_node(&self.node.name, &dev, &next.name, &packet)?;
        self.f.extend(suspicions);
        let step = NodeStep::forward(vec![Transmission {
            next_hop: next.hop(),
            kind: LinkKind::Infra,
            packet,
            oif: Some(dev),
            iif: next.host_interface.clone(),
            next_hop_address: Some(gateway),
        }]);
        self.finish(step)
    }

    /// Encapsulate on vxlan.calico toward the VTEP of the route's gateway.
    fn over_vxlan(mut self, ing: Ingress, route: &Route, target: &Node) -> Result<NodeStep> {
        let vni = self.plugin.config.vxlan_vni;
        let expect = Expect {
            kind: Some("vxlan"),
            ..Expect::default()
        };
        match self.f.interface(&self.ns, VXLAN_DEV, expect)? {
            Some(dev) if !dev.up() => return self.dropped(),
            Some(dev) => {
                self.check_tunnel_mtu(&dev);
                if let Some(id) = dev.vxlan_id
                    && id != vni
                {
                    self.f.critical(format!(
                        "{VXLAN_DEV} of node {} has VNI {id}, but felix's vxlanVNI is {vni}: other nodes drop its packets",
                        self.node.name
                    ));
                }
            }
            None if self.f.blocking() => return self.dropped(),
            None => {}
        }
        let Some(gateway) = route.gateway else {
            self.f.fatal(format!(
                "node {} routes {} via `{}` without a VTEP gateway",
                self.node.name, ing.out.packet.dst, route.text
            ));
            return self.dropped();
        };
        let owner = cluster::nodes().into_iter().find(|n| {
            n.annotation(ANN_VXLAN)
                .and_then(|a| a.split('/').next())
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
                == Some(gateway)
        });
        let Some(owner) = owner else {
            self.f.fatal(format!(
                "node {} routes {} via VTEP {gateway} (`{}`), which is the VXLAN tunnel address ({ANN_VXLAN}) of no node",
                self.node.name, ing.out.packet.dst, route.text
            ));
            return self.dropped();
        };
        if owner.name != target.name {
            self.f.warning(format!(
                "node {} sends traffic for node {} through the VTEP of node {}",
                self.node.name, target.name, owner.name
            ));
        }
        // The remote VTEP's MAC, from its own dump.
        let want_mac = Netns::node(&owner.name)
            .interface(VXLAN_DEV)
            .ok()
            .flatten()
            .and_then(|i| i.mac);
        let neigh = self.f.tolerate(
            &format!("neighbours of node {}", self.node.name),
            self.ns.neighbour(VXLAN_DEV, gateway),
        )?;
        let mac = match neigh {
            None => want_mac.clone(),
            Some(None) => {
                self.f.critical(format!(
                    "node {} has no neighbour entry for VTEP {gateway} of node {} on {VXLAN_DEV}: felix programs it permanent, and without it the packet is dropped",
                    self.node.name, owner.name
                ));
                return self.dropped();
            }
            Some(Some(n)) if n.failed() || n.lladdr.is_none() => {
                self.f.critical(format!(
                    "node {}'s neighbour entry for VTEP {gateway} of node {} on {VXLAN_DEV} is {} with no MAC: felix programs it permanent",
                    self.node.name, owner.name, n.state
                ));
                return self.dropped();
            }
            Some(Some(n)) => {
                if let (Some(have), Some(want)) = (&n.lladdr, &want_mac)
                    && !have.eq_ignore_ascii_case(want)
                {
                    self.f.critical(format!(
                        "node {}'s neighbour entry for VTEP {gateway} on {VXLAN_DEV} is {have}, but {VXLAN_DEV} of node {} has MAC {want}",
                        self.node.name, owner.name
                    ));
                    return self.dropped();
                }
                n.lladdr.or(want_mac)
            }
        };
        if let Some(mac) = mac {
            let Some(fdb) = self.f.tolerate(
                &format!("FDB of node {}", self.node.name),
                self.ns.fdb(VXLAN_DEV),
            )?
            else {
                return self.dropped();
            };
            let entry = fdb.iter().find(|e| e.mac.eq_ignore_ascii_case(&mac));
            match entry.and_then(|e| e.dst) {
                None => {
                    self.f.critical(format!(
                        "node {} has no FDB entry on {VXLAN_DEV} for VTEP MAC {mac} of node {}: felix programs `{mac} dst {}`, and without it VXLAN packets have no destination",
                        self.node.name, owner.name, owner.ip
                    ));
                    return self.dropped();
                }
                Some(remote) if remote != owner.ip => {
                    self.f.critical(format!(
                        "node {}'s FDB entry on {VXLAN_DEV} for VTEP MAC {mac} of node {} points at {remote}, but node {} is {}",
                        self.node.name, owner.name, owner.name, owner.ip
                    ));
                    return self.dropped();
                }
                Some(_) => {}
            }
        } else {
            self.f.warning(format!(
                "the MAC of {VXLAN_DEV} on node {} is unknown (not in its dump); FDB not checked",
                owner.name
            ));
        }
        if !self.underlay_reaches(owner.ip, &owner.name)? {
            return self.dropped();
        }
        let inner = ing.out.packet;
        let packet = Packet {
            encap: Some(Encap {
                kind: EncapKind::Vxlan,
                src: self.node.ip,
                dst: owner.ip,
                vni: Some(vni),
                port: Some(self.plugin.config.vxlan_port),
            }),
            mark: 0,
            ..inner
        };
        let oif = self.node.host_interface.clone().unwrap_or_default();
        let suspicions = infra::node_to_node(&self.node.name, &oif, &owner.name, &packet)?;
        self.f.extend(suspicions);
        let step = NodeStep::forward(vec![Transmission {
            next_hop: owner.hop(),
            kind: LinkKind::Vxlan,
            packet,
            oif: Some(VXLAN_DEV.into()),
            iif: Some(VXLAN_DEV.into()),
            next_hop_address: None,
        }]);
        self.finish(step)
    }

    /// Encapsulate on tunl0 toward the node the route names (IP protocol 4
    /// between the node addresses).
    fn over_ipip(mut self, ing: Ingress, route: &Route, target: &Node) -> Result<NodeStep> {
        let expect = Expect {
            kind: Some("ipip"),
            ..Expect::default()
        };
        match self.f.interface(&self.ns, IPIP_DEV, expect)? {
            Some(dev) if !dev.up() => return self.dropped(),
            Some(dev) => self.check_tunnel_mtu(&dev),
            None if self.f.blocking() => return self.dropped(),
            None => {}
        }
        let Some(gateway) = route.gateway else {
            self.f.fatal(format!(
                "node {} routes {} via `{}` without a gateway: BIRD programs `via <node address> dev {IPIP_DEV} onlink`",
                self.node.name, ing.out.packet.dst, route.text
            ));
            return self.dropped();
        };
        let Some(owner) = cluster::node_by_ip(gateway) else {
            self.f.fatal(format!(
                "node {} routes {} via `{}`, but {gateway} is no node's address",
                self.node.name, ing.out.packet.dst, route.text
            ));
            return self.dropped();
        };
        if owner.name != target.name {
            self.f.warning(format!(
                "node {} sends traffic for node {} through node {} over {IPIP_DEV}",
                self.node.name, target.name, owner.name
            ));
        }
        if !self.underlay_reaches(owner.ip, &owner.name)? {
            return self.dropped();
        }
        let packet = Packet {
            encap: Some(Encap {
                kind: EncapKind::Ipip,
                src: self.node.ip,
                dst: owner.ip,
                vni: None,
                port: None,
            }),
            mark: 0,
            ..ing.out.packet
        };
        let oif = self.node.host_interface.clone().unwrap_or_default();
        let suspicions = infra::node_to_node(&self.node.name, &oif, &owner.name, &packet)?;
        self.f.extend(suspicions);
        let step = NodeStep::forward(vec![Transmission {
            next_hop: owner.hop(),
            kind: LinkKind::Ipip,
            packet,
            oif: Some(IPIP_DEV.into()),
            iif: Some(IPIP_DEV.into()),
            next_hop_address: None,
        }]);
        self.finish(step)
    }

    /// WireGuard: the packet leaves encrypted on wireguard.cali toward the
    /// node that owns the destination.
    fn over_wireguard(mut self, ing: Ingress, target: &Node) -> Result<NodeStep> {
        let expect = Expect {
            kind: Some("wireguard"),
            ..Expect::default()
        };
        match self.f.interface(&self.ns, WIREGUARD_DEV, expect)? {
            Some(dev) if !dev.up() => return self.dropped(),
            None if self.f.blocking() => return self.dropped(),
            _ => {}
        }
        if !self.plugin.config.wireguard {
            self.f.warning(format!(
                "node {} routes over {WIREGUARD_DEV}, but FelixConfiguration default does not enable WireGuard",
                self.node.name
            ));
        }
        if !self.underlay_reaches(target.ip, &target.name)? {
            return self.dropped();
        }
        let packet = Packet {
            mark: 0,
            ..ing.out.packet
        };
        let oif = self.node.host_interface.clone().unwrap_or_default();
        let suspicions = infra::node_to_node(&self.node.name, &oif, &target.name, &packet)?;
        self.f.extend(suspicions);
        let step = NodeStep::forward(vec![Transmission {
            next_hop: target.hop(),
            kind: LinkKind::Infra,
            packet,
            oif: Some(WIREGUARD_DEV.into()),
            iif: Some(WIREGUARD_DEV.into()),
            next_hop_address: None,
        }]);
        self.finish(step)
    }

    /// A tunnel device below the pod MTU drops every full-size packet.
    fn check_tunnel_mtu(&mut self, dev: &Interface) {
        let Some((pod_mtu, from)) = self.plugin.config.pod_mtu(self.node) else {
            return;
        };
        if dev.mtu < pod_mtu {
            self.f.critical(format!(
                "{} of node {} has MTU {}, below the pod MTU {pod_mtu} ({from}): packets larger than {} bytes are dropped (fragmentation needed)",
                dev.name, self.node.name, dev.mtu, dev.mtu
            ));
        }
    }

    /// The tunnel's outer packet must reach `remote` over the underlay.
    fn underlay_reaches(&mut self, remote: Ipv4Addr, owner: &str) -> Result<bool> {
        let what = format!("underlay route to {remote} on node {}", self.node.name);
        let Some(routes) = self
            .f
            .tolerate(&what, self.ns.route(remote, None, None, 0))?
        else {
            return Ok(true);
        };
        let Some(route) = routes.first() else {
            self.f.fatal(format!(
                "node {} has no route to {remote} (node {owner}) for tunnelled traffic",
                self.node.name
            ));
            return Ok(false);
        };
        let dev = route.dev.clone().unwrap_or_default();
        let gateway = route.gateway.unwrap_or(remote);
        self.f.neighbour(&self.ns, &dev, gateway, Level::Fatal)?;
        Ok(!self.f.blocking())
    }

    /// The packet is for an address outside the cluster view: a Calico
    /// address (a tunnel address, or a pool address no pod holds) goes to the
    /// node that owns it; anything else leaves, masqueraded if its pool says so.
    pub fn toward_external(mut self) -> Result<NodeStep> {
        let dst = self.packet.dst;
        if let Some(owner) = self.plugin.config.owner_of(dst)
            && let Some(owner) = cluster::node(&owner)
        {
            if owner.name == self.node.name {
                return self.serve();
            }
            if !self.host_if_up()? {
                return self.dropped();
            }
            let Some(ing) = self.ingress()? else {
                return self.dropped();
            };
            let Some(route) = ing.out.route.clone() else {
                return self.dropped();
            };
            return self.toward_remote(ing, &route, &owner, None);
        }
        let Some(ing) = self.ingress()? else {
            return self.dropped();
        };
        let Some(route) = ing.out.route.clone() else {
            return self.dropped();
        };
        let dev = route.dev.clone().unwrap_or_default();
        if let Some(gw) = route.gateway {
            self.f.neighbour(&self.ns, &dev, gw, Level::Fatal)?;
        }
        let src_pool = self.plugin.config.pool_of(ing.packet.src).cloned();
        let dst_in_pool = self.plugin.config.pool_of(dst).is_some();
        let packet = ing.out.packet;
        if !ing.packet.reply
            && let Some(pool) = src_pool
            && !dst_in_pool
        {
            if pool.nat_outgoing && packet.src == ing.packet.src {
                self.f.critical(format!(
                    "IPPool {} has natOutgoing, but node {} sends the request from pod address {} to {dst} unmasqueraded: felix's cali-nat-outgoing rule (MASQUERADE) is missing, so the reply cannot find its way back",
                    pool.name, self.node.name, packet.src
                ));
            } else if !pool.nat_outgoing && packet.src == ing.packet.src {
                self.f.info(format!(
                    "IPPool {} has natOutgoing off: {dst} sees the pod address {} and must route it back",
                    pool.name, packet.src
                ));
            }
        }
        let suspicions = infra::node_to_external(&self.node.name, &dev, &packet)?;
        self.f.extend(suspicions);
        let step = NodeStep::forward(vec![Transmission {
            next_hop: NetHop::external(packet.dst),
            kind: LinkKind::External,
            packet,
            oif: Some(dev),
            iif: None,
            next_hop_address: None,
        }]);
        self.finish(step)
    }

    /// The packet is for this node.
    pub fn serve(mut self) -> Result<NodeStep> {
        let Some(ing) = self.ingress()? else {
            return self.dropped();
        };
        if !matches!(ing.out.fate, Fate::Deliver(_)) {
            let route = ing
                .out
                .route
                .as_ref()
                .map(|r| format!(" (`{}`)", r.text))
                .unwrap_or_default();
            self.f.fatal(format!(
                "node {} does not deliver the {} for {} locally: its kernel routes it on{route}",
                self.node.name,
                ing.packet.direction(),
                ing.packet.dst
            ));
            return self.dropped();
        }
        let packet = ing.out.packet;
        if !packet.reply {
            self.f.listening(&self.ns, &packet, Level::Fatal)?;
        }
        self.finish(NodeStep::serve())
    }
}

#[cfg(test)]
mod tests {
    use super::felix_policy;

    #[test]
    fn policy_names_come_from_felix_chain_names() {
        // Felix (iptables dataplane) names policy chains cali-pi-<tier>/<name>
        // and cali-po-<tier>/<name>; Kubernetes policies get the knp.default. prefix.
        assert_eq!(
            felix_policy("cali-pi-default/knp.default.deny-web", "-j DROP").as_deref(),
            Some("Kubernetes NetworkPolicy deny-web (ingress)")
        );
        assert_eq!(
            felix_policy("cali-po-default/default.allow-dns", "-j RETURN").as_deref(),
            Some("Calico policy default.allow-dns (egress)")
        );
        assert!(
            felix_policy("cali-tw-calib731b83791f", "-j DROP")
                .is_some_and(|p| p.contains("calib731b83791f"))
        );
        assert_eq!(felix_policy("KUBE-FORWARD", "-j DROP"), None);
    }
}
