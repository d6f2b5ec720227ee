//! What Calico knows about a hop the host walked: cali veths with /32
//! routes, blackhole routes per IPAM block, the pool's encapsulation between
//! two nodes (BGP, IPIP on tunl0, VXLAN on vxlan.calico with felix's
//! neighbour and FDB entries, WireGuard on wireguard.cali), felix's policy
//! chains and natOutgoing, checked against what the node's kernel did.

use std::net::Ipv4Addr;

use skoop_sdk::host::{Netns, RouteKind, cluster, policy};
use skoop_sdk::suspicions::Expect;
use skoop_sdk::{
    Branch, HopAnswer, KernelWalk, Level, Node, NodeChecks, NodeHop, Owner, Packet, Pod, Protocol,
    Result, Suspicions, VtepEntries,
};

use crate::Calico;
use crate::config::{ANN_VXLAN, Mode, same_subnet};

pub const VXLAN_DEV: &str = "vxlan.calico";
pub const IPIP_DEV: &str = "tunl0";
pub const WIREGUARD_DEV: &str = "wireguard.cali";

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

/// The checks of one node hop.
pub struct Checks<'a> {
    pub plugin: &'a Calico,
    pub hop: NodeHop<'a>,
}

impl<'a> NodeChecks<'a> for Checks<'a> {
    /// Checks every node hop gets: each drop explained in Calico's terms.
    fn common(&mut self) -> Result<()> {
        self.hop.f.ip_rules(&self.hop.ns)?;
        let walk = self.hop.walk;
        for b in &walk.branches {
            self.explain_drop(b);
        }
        Ok(())
    }

    /// The packet is for another node's host network.
    fn toward_host(&mut self, target: &Node) -> Result<()> {
        self.host_if_up()?;
        let walk = self.hop.walk;
        for (i, b) in walk.past_pipeline() {
            self.remote(i, b, target, None)?;
        }
        Ok(())
    }

    /// One branch whose packet is for `dst`.
    fn toward(&mut self, i: usize, b: &Branch, dst: Ipv4Addr) -> Result<()> {
        if b.pipeline_dropped() {
            // A device that is down takes its routes with it: the host
            // reports where the packet went instead, Calico names the device.
            if b.dropped()
                .is_some_and(|d| matches!(d.kind.as_str(), "no-route" | "route"))
            {
                self.devices_behind(dst)?;
            }
            return Ok(());
        }
        match cluster::owner_of(dst, 0, Protocol::Tcp).ok() {
            Some(Owner::Pod(p)) if !p.host_network && p.node == self.hop.node.name => {
                self.local_pod(i, b, &p)
            }
            Some(Owner::Pod(p)) if !p.host_network => {
                let Some(target) = self.owner(dst, &p.node) else {
                    return Ok(());
                };
                self.host_if_up()?;
                self.remote(i, b, &target, Some(dst))
            }
            Some(Owner::Node(n)) if n.name != self.hop.node.name => self.remote(i, b, &n, None),
            _ => self.toward_calico_address(i, b, dst),
        }
    }

    /// The packet leaves the cluster: a pool with natOutgoing needs felix's
    /// MASQUERADE for it.
    fn toward_outside(&mut self) -> Result<()> {
        let walk = self.hop.walk;
        let dst = walk.packet.dst;
        if self.plugin.config.owner_of(dst).is_some() {
            for (i, b) in walk.branches.iter().enumerate() {
                self.toward_calico_address(i, b, dst)?;
            }
            return Ok(());
        }
        let src_pool = self.plugin.config.pool_of(walk.packet.src).cloned();
        let dst_in_pool = self.plugin.config.pool_of(dst).is_some();
        for (i, b) in walk.branches.iter().enumerate() {
            let Some(out) = b.sent().map(|t| t.packet) else {
                continue;
            };
            if walk.packet.reply || dst_in_pool {
                continue;
            }
            let Some(pool) = &src_pool else { continue };
            if pool.nat_outgoing && out.src == walk.packet.src {
                self.hop.f.critical(format!(
                    "IPPool {} has natOutgoing, but node {} sends the request from pod address {} to {dst} unmasqueraded: felix's cali-nat-outgoing rule (MASQUERADE) is missing, so the reply cannot find its way back",
                    pool.name, self.hop.node.name, out.src
                ));
                self.hop.f.end(i);
            } else if !pool.nat_outgoing && out.src == walk.packet.src {
                self.hop.f.info(format!(
                    "IPPool {} has natOutgoing off: {dst} sees the pod address {} and must route it back",
                    pool.name, out.src
                ));
            }
        }
        Ok(())
    }

    fn hop(&mut self) -> &mut NodeHop<'a> {
        &mut self.hop
    }
}

impl Checks<'_> {
    /// A drop felix's chains or Calico's blackhole block routes decided,
    /// in Calico's terms (the host already named the rule or route).
    fn explain_drop(&mut self, b: &Branch) {
        let (Some(cause), Some(pass)) = (b.dropped(), b.inner()) else {
            return;
        };
        let level = if pass.uncertain {
            Level::Warning
        } else {
            Level::Fatal
        };
        let packet = pass.packet;
        if cause.kind == "netfilter"
            && let Some(hit) = &cause.rule
        {
            // The policy is named by the innermost felix chain the packet crossed.
            let policy = std::iter::once(hit)
                .chain(pass.rules.iter().rev())
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
                    objects_allow(&packet)
                } else {
                    None
                };
                let policy = policy.map(|p| format!(": {p}")).unwrap_or_default();
                self.hop.f.add(
                    level,
                    format!(
                        "felix's iptables {rule} drops the {} {} on node {}{policy}",
                        packet.direction(),
                        packet.tuple(),
                        self.hop.node.name
                    ),
                );
                if let Some(allowed) = disagreement {
                    self.hop.f.warning(format!(
                        "intent and dataplane differ: the Kubernetes policy objects allow {} ({allowed}), yet felix's policy chains on node {} drop it; a Calico policy (projectcalico.org NetworkPolicy, GlobalNetworkPolicy, a tier) is in play, or felix's rules are out of sync with the objects",
                        packet.tuple(),
                        self.hop.node.name
                    ));
                }
            }
            return;
        }
        if cause.kind == "route"
            && let Some(r) = &cause.route
            && r.kind == RouteKind::Blackhole
            && let Some(block) = self.plugin.config.block_of(packet.dst)
            && block.cidr == r.prefix
        {
            let whose = if block.node == self.hop.node.name {
                format!(
                    "its own IPAM block {}: the /32 route Calico's CNI adds for {} (`{} dev {}<hash> scope link`) is missing, so it falls into the block's blackhole route",
                    block.cidr, packet.dst, packet.dst, self.plugin.config.interface_prefix
                )
            } else {
                format!(
                    "the blackhole route of IPAM block {} of node {}, which this node does not own",
                    block.cidr, block.node
                )
            };
            self.hop.f.add(
                level,
                format!(
                    "node {} discards the {} for {} by {whose} (`{}`)",
                    self.hop.node.name,
                    packet.direction(),
                    packet.dst,
                    r.text
                ),
            );
        }
    }

    /// The node whose IPAM block holds `ip`, warning when the pod runs on
    /// another node than its block's.
    fn owner(&mut self, ip: Ipv4Addr, runs_on: &str) -> Option<Node> {
        if let Some(owner) = self.plugin.config.owner_of(ip)
            && owner != runs_on
        {
            self.hop.f.warning(format!(
                "{ip} runs on node {runs_on}, but its IPAM block is affine to node {owner}: Calico routes it to {owner}"
            ));
        }
        cluster::node(runs_on)
    }

    /// A Calico address no pod holds (a tunnel address, a pool address):
    /// the node that owns it by block or annotation.
    fn toward_calico_address(&mut self, i: usize, b: &Branch, dst: Ipv4Addr) -> Result<()> {
        if let Some(owner) = self.plugin.config.owner_of(dst)
            && owner != self.hop.node.name
            && let Some(owner) = cluster::node(&owner)
        {
            return self.remote(i, b, &owner, None);
        }
        Ok(())
    }

    /// A pod of this node: reached by its /32 route over its cali veth.
    fn local_pod(&mut self, i: usize, b: &Branch, pod: &Pod) -> Result<()> {
        let expected = self.plugin.config.veth_name(&pod.namespace, &pod.name);
        let veth = skoop_sdk::VethPod::new(None, None);
        let Some(peer) = veth.check(pod, &mut self.hop.f)? else {
            return Ok(());
        };
        let expect = Expect {
            kind: Some("veth"),
            ..Expect::default()
        };
        self.hop.f.interface(&self.hop.ns, &peer, expect)?;
        if peer != expected {
            self.hop.f.warning(format!(
                "the host veth of pod {} on node {} is {peer}; Calico names it {expected} (interfacePrefix {:?})",
                pod.id(),
                self.hop.node.name,
                self.plugin.config.interface_prefix
            ));
        }
        if b.sent().is_some()
            && let (Some(oif), Some(route)) = (b.oif(), b.route())
            && oif != peer
        {
            self.hop.f.stop(self.hop.walk, i, format!(
                "node {} routes pod {} ({}) via `{}`, not via its veth {peer}: the route Calico's CNI adds, `{} dev {peer} scope link`, is missing or overridden",
                self.hop.node.name,
                pod.id(),
                pod.ip,
                route.text,
                pod.ip
            ));
        }
        self.hop.f.sysctl(
            &self.hop.ns,
            &format!("net.ipv4.conf.{peer}.forwarding"),
            "1",
            Level::Warning,
            "Calico's CNI enables forwarding on the host veth",
        )?;
        Ok(())
    }

    /// The devices whose routes lead to `dst`: a local pod's veth, else
    /// the host interface. A down one names why its route is gone.
    fn devices_behind(&mut self, dst: Ipv4Addr) -> Result<()> {
        match cluster::owner_of(dst, 0, Protocol::Tcp).ok() {
            Some(Owner::Pod(p)) if !p.host_network && p.node == self.hop.node.name => {
                let veth = skoop_sdk::VethPod::new(None, None);
                if let Some(peer) = veth.check(&p, &mut self.hop.f)? {
                    let expect = Expect {
                        kind: Some("veth"),
                        ..Expect::default()
                    };
                    self.hop.f.interface(&self.hop.ns, &peer, expect)?;
                }
                Ok(())
            }
            _ => self.host_if_up(),
        }
    }

    /// A down host interface has lost its routes: name the device.
    fn host_if_up(&mut self) -> Result<()> {
        match self.hop.node.host_interface.clone() {
            Some(host_if) => {
                self.hop.f.interface(&self.hop.ns, &host_if, Expect::default())?;
            }
            None => self.hop.f.warning(format!(
                "cannot check which interface of node {} holds its address {} (not in its dump): host interface checks skipped",
                self.hop.node.name, self.hop.node.ip
            )),
        }
        Ok(())
    }

    /// The mode the pool of `dst` asks for between this node and `target`.
    fn expected_mode(&self, dst: Ipv4Addr, target: &Node) -> Option<(Mode, String)> {
        let pool = self.plugin.config.pool_of(dst)?;
        Some((
            pool.mode(same_subnet(self.hop.node, target)),
            pool.name.clone(),
        ))
    }

    /// Toward another node: the route the pool's encapsulation calls for.
    fn remote(
        &mut self,
        i: usize,
        b: &Branch,
        target: &Node,
        pod_ip: Option<Ipv4Addr>,
    ) -> Result<()> {
        let expected = pod_ip.and_then(|ip| self.expected_mode(ip, target));
        // A down tunnel device has lost its routes: name it, not the route.
        match &expected {
            Some((Mode::Vxlan, _)) => self.tunnel_device(VXLAN_DEV, "vxlan")?,
            Some((Mode::Ipip, _)) => self.tunnel_device(IPIP_DEV, "ipip")?,
            _ => {}
        }
        let Some(route) = b.route().cloned() else {
            return Ok(());
        };
        let dev = route.dev.clone().unwrap_or_default();
        let taken = match dev.as_str() {
            VXLAN_DEV => Some(Mode::Vxlan),
            IPIP_DEV => Some(Mode::Ipip),
            _ => None,
        };
        if let (Some((want, pool)), Some(have)) = (&expected, taken)
            && *want != have
        {
            self.hop.f.warning(format!(
                "node {} routes {} over {dev} (`{}`), but IPPool {pool} uses {} between node {} and node {}",
                self.hop.node.name,
                self.hop.walk.packet.dst,
                route.text,
                want.name(),
                self.hop.node.name,
                target.name
            ));
        }
        match dev.as_str() {
            VXLAN_DEV => return self.over_vxlan(i, b, &route, target),
            IPIP_DEV => return self.over_ipip(&route, target),
            WIREGUARD_DEV => return self.over_wireguard(),
            _ => {}
        }
        let gateway = b.next_hop().unwrap_or(self.hop.walk.packet.dst);
        let Some(next) = cluster::node_by_ip(gateway) else {
            let block = pod_ip.and_then(|ip| self.plugin.config.block_of(ip).cloned());
            let what = match (&block, pod_ip) {
                (Some(bk), _) => format!("IPAM block {} of node {}", bk.cidr, bk.node),
                (None, Some(ip)) => format!("pod address {ip}"),
                (None, None) => format!("node {} ({})", target.name, target.ip),
            };
            let cidr = block.map(|bk| bk.cidr.to_string()).unwrap_or_default();
            let program = match &expected {
                Some((Mode::Vxlan, _)) => format!(
                    "`{cidr} via {} dev {VXLAN_DEV} onlink` (felix)",
                    target.annotation(ANN_VXLAN).unwrap_or("<VTEP>")
                ),
                Some((Mode::Ipip, _)) => {
                    format!(
                        "`{cidr} via {} dev {IPIP_DEV} proto bird onlink`",
                        target.ip
                    )
                }
                _ => format!("`{cidr} via {} proto bird`", target.ip),
            };
            if pod_ip.is_none() {
                if b.dropped().is_none() {
                    return Ok(());
                }
                self.hop.f.stop(
                    self.hop.walk,
                    i,
                    format!(
                        "node {} routes the {} for {what} via `{}`, which reaches no node",
                        self.hop.node.name,
                        self.hop.walk.packet.direction(),
                        route.text
                    ),
                );
            } else if route.prefix.prefix_len() == 0 {
                self.hop.f.stop(self.hop.walk, i, format!(
                    "node {} has no route for {what}: it falls to the default route `{}` and leaves the cluster; Calico programs {program}",
                    self.hop.node.name, route.text
                ));
            } else {
                self.hop.f.stop(self.hop.walk, i, format!(
                    "node {} routes {what} via `{}`, which reaches no node; Calico programs {program}",
                    self.hop.node.name, route.text
                ));
            }
            return Ok(());
        };
        if let Some((want, pool)) = &expected
            && *want != Mode::Bgp
        {
            self.hop.f.warning(format!(
                "node {} routes {} straight to node {} (`{}`), but IPPool {pool} uses {} between these nodes: the route is not felix's or BIRD's",
                self.hop.node.name,
                self.hop.walk.packet.dst,
                next.name,
                route.text,
                want.name()
            ));
        }
        Ok(())
    }

    /// A tunnel device Calico's pool calls for: present, of its kind, up.
    fn tunnel_device(&mut self, name: &str, kind: &str) -> Result<()> {
        let expect = Expect {
            kind: Some(kind),
            ..Expect::default()
        };
        if let Some(dev) = self.hop.f.interface(&self.hop.ns, name, expect)? {
            self.check_tunnel_mtu(&dev);
        }
        Ok(())
    }

    /// Over vxlan.calico: felix's VNI, the VTEP of the route's gateway (a
    /// node's VXLAN tunnel address), its MAC in the neighbour entry and its
    /// node's address in the FDB entry.
    fn over_vxlan(
        &mut self,
        i: usize,
        b: &Branch,
        route: &skoop_sdk::host::Route,
        target: &Node,
    ) -> Result<()> {
        let vni = self.plugin.config.vxlan_vni;
        let name = self.hop.node.name.clone();
        if let Some(dev) = b.devices().find(|d| d.name == VXLAN_DEV)
            && let Some(id) = dev.vxlan_id
            && id != vni
        {
            self.hop.f.critical(format!(
                "{VXLAN_DEV} of node {name} has VNI {id}, but felix's vxlanVNI is {vni}: other nodes drop its packets"
            ));
            if b.sent().is_some() {
                self.hop.f.end(i);
            }
        }
        let Some(gateway) = route.gateway else {
            self.hop.f.fatal(format!(
                "node {name} routes {} via `{}` without a VTEP gateway",
                self.hop.walk.packet.dst, route.text
            ));
            return Ok(());
        };
        let owner = cluster::nodes().into_iter().find(|n| {
            n.annotation(ANN_VXLAN)
                .and_then(|a| a.split('/').next())
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
                == Some(gateway)
        });
        let Some(owner) = owner else {
            self.hop.f.fatal(format!(
                "node {name} routes {} via VTEP {gateway} (`{}`), which is the VXLAN tunnel address ({ANN_VXLAN}) of no node",
                self.hop.walk.packet.dst, route.text
            ));
            return Ok(());
        };
        if owner.name != target.name {
            self.hop.f.warning(format!(
                "node {name} sends traffic for node {} through the VTEP of node {} (`{}`): a detour",
                target.name, owner.name, route.text
            ));
        }
        // The remote VTEP's MAC, from its own dump.
        let want_mac = Netns::node(&owner.name)
            .interface(VXLAN_DEV)
            .ok()
            .flatten()
            .and_then(|i| i.mac);
        let whose = format!("the MAC of {VXLAN_DEV} on node {}", owner.name);
        VtepEntries {
            cni: "Calico",
            node: &name,
            dev: VXLAN_DEV,
            vtep: gateway,
            owner: &owner.name,
            mac: want_mac.as_deref().map(|m| (m, whose.as_str())),
            remote: owner.ip,
            programmed_by: "felix programs it permanent, and without it the packet is dropped",
        }
        .check(self.hop.walk, i, b, &mut self.hop.f);
        Ok(())
    }

    /// Over tunl0: BIRD's `via NODE dev tunl0 onlink`.
    fn over_ipip(&mut self, route: &skoop_sdk::host::Route, target: &Node) -> Result<()> {
        let name = &self.hop.node.name;
        let Some(gateway) = route.gateway else {
            self.hop.f.fatal(format!(
                "node {name} routes {} via `{}` without a gateway: BIRD programs `via <node address> dev {IPIP_DEV} onlink`",
                self.hop.walk.packet.dst, route.text
            ));
            return Ok(());
        };
        match cluster::node_by_ip(gateway) {
            None => self.hop.f.fatal(format!(
                "node {name} routes {} via `{}`, but {gateway} is no node's address",
                self.hop.walk.packet.dst, route.text
            )),
            Some(owner) if owner.name != target.name => self.hop.f.warning(format!(
                "node {name} sends traffic for node {} through node {} over {IPIP_DEV}",
                target.name, owner.name
            )),
            Some(_) => {}
        }
        Ok(())
    }

    /// Over wireguard.cali: WireGuard must be what felix enabled.
    fn over_wireguard(&mut self) -> Result<()> {
        let expect = Expect {
            kind: Some("wireguard"),
            ..Expect::default()
        };
        self.hop.f.interface(&self.hop.ns, WIREGUARD_DEV, expect)?;
        if !self.plugin.config.wireguard {
            self.hop.f.warning(format!(
                "node {} routes over {WIREGUARD_DEV}, but FelixConfiguration default does not enable WireGuard",
                self.hop.node.name
            ));
        }
        Ok(())
    }

    /// A tunnel device below the pod MTU: full-size packets need path-MTU
    /// discovery (the host's walk judges whether its ICMP error returns).
    fn check_tunnel_mtu(&mut self, dev: &skoop_sdk::host::Interface) {
        let Some((pod_mtu, from)) = self.plugin.config.pod_mtu(self.hop.node) else {
            return;
        };
        if dev.mtu < pod_mtu {
            self.hop.f.warning(format!(
                "{} of node {} has MTU {}, below the pod MTU {pod_mtu} ({from}): packets larger than {} bytes do not fit it",
                dev.name, self.hop.node.name, dev.mtu, dev.mtu
            ));
        }
    }
}

/// A pod's own side: the MTU the pool's encapsulation implies, Calico's
/// 169.254.1.1 gateway, proxy ARP on its host veth.
pub fn pod(plugin: &Calico, pod: &Pod, walk: &KernelWalk, sending: bool) -> Result<HopAnswer> {
    let mut f = Suspicions::new();
    let ns = Netns::pod(&pod.id());
    let node = cluster::node(&pod.node);
    if let Some((mtu, from)) = node.as_ref().and_then(|n| plugin.config.pod_mtu(n))
        && let Ok(Some(eth0)) = ns.interface("eth0")
        && eth0.mtu != mtu
    {
        let side = if eth0.mtu > mtu { "above" } else { "below" };
        f.warning(format!(
            "eth0 of pod {} has MTU {}, {side} the {mtu} Calico expects ({from})",
            pod.id(),
            eth0.mtu
        ));
    }
    if !sending {
        return Ok(f.into());
    }
    for b in walk.sent() {
        let via = b.next_hop();
        if via != Some(crate::POD_GATEWAY) {
            f.warning(format!(
                "pod {} sends via {} instead of Calico's gateway {} (`default via {} dev eth0`)",
                pod.id(),
                via.map(|v| v.to_string())
                    .unwrap_or_else(|| "an on-link route".into()),
                crate::POD_GATEWAY,
                crate::POD_GATEWAY
            ));
        }
        // An ARP entry the pod holds works until it expires; Calico's CNI
        // keeps proxy ARP on so the next resolution works too.
        let Some(peer) = b.sent().and_then(|t| t.iif.clone()) else {
            continue;
        };
        let key = format!("net.ipv4.conf.{peer}.proxy_arp");
        let pinned = b.neighbour().is_some_and(|n| n.state == "PERMANENT");
        if let Ok(Some(v)) = Netns::node(&pod.node).sysctl(&key)
            && v.trim() != "1"
            && !pinned
        {
            f.add_about(
                &pod.node,
                Level::Warning,
                format!(
                    "proxy_arp is {} on {peer}, the host veth of pod {} on node {}: once the pod's ARP entry for its gateway {} expires, nothing answers it (Calico's CNI sets {key}=1)",
                    v.trim(),
                    pod.id(),
                    pod.node,
                    crate::POD_GATEWAY
                ),
            );
        }
    }
    Ok(f.into())
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
