//! One node hop of flannel: what the host netns does with a packet, and every
//! check flannel's layout implies (cni0, routes, flannel.1, neighbour/FDB,
//! sysctls, iptables), on the request and the reply alike.

use std::net::Ipv4Addr;

use skoop_sdk::findings::Expect;
use skoop_sdk::host::{Fate, ForwardQuery, Forwarded, Interface, Netns, Route, cluster, infra};
use skoop_sdk::{
    Encap, EncapKind, Findings, Hop as NetHop, Level, Link, LinkKind, Node, NodeStep, Packet, Pod,
    Result, Transmission,
};

use crate::{Backend, Flannel};

/// The bridge flannel's CNI config puts pods on.
pub const BRIDGE: &str = "cni0";

/// A packet being handled at one node.
pub struct Hop<'a> {
    plugin: &'a Flannel,
    node: &'a Node,
    upstream: Option<&'a Link>,
    packet: Packet,
    ns: Netns,
    f: Findings,
}

/// A packet at the node after the host's kernel pipeline.
struct Ingress {
    /// The packet as it arrived (decapsulated).
    packet: Packet,
    /// The branch the pipeline took (the first, when ECMP or backends branch).
    out: Forwarded,
}

impl<'a> Hop<'a> {
    pub fn new(
        plugin: &'a Flannel,
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

    fn backend(&self) -> Backend {
        self.plugin.config.backend
    }

    /// The interface holding the node's InternalIP. When the dump does not
    /// show it, flannel's default `eth0` is assumed and the report says so.
    fn host_if(&mut self) -> String {
        match &self.node.host_interface {
            Some(i) => i.clone(),
            None => {
                self.f.warning(format!(
                    "cannot check which interface of node {} holds its InternalIP {} (not in its dump): flannel's checks assume eth0",
                    self.node.name, self.node.ip
                ));
                "eth0".to_string()
            }
        }
    }

    /// Node readiness, decapsulation and PREROUTING. `None`: dropped.
    fn ingress(&mut self) -> Result<Option<Ingress>> {
        let vxlan_dev = self.plugin.config.vxlan_dev();
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
            if encap.kind != EncapKind::Vxlan || self.backend() != Backend::Vxlan {
                let kind = if encap.kind == EncapKind::Vxlan {
                    "VXLAN"
                } else {
                    "IP-in-IP"
                };
                self.f.fatal(format!(
                    "node {} receives {kind}-encapsulated traffic but flannel runs the {} backend",
                    self.node.name,
                    self.backend().name()
                ));
                return Ok(None);
            }
            let expect = Expect {
                kind: Some("vxlan"),
                ..Expect::default()
            };
            match self.f.interface(&self.ns, &vxlan_dev, expect)? {
                Some(dev) if dev.up() => {}
                Some(_) | None if self.f.blocking() => return Ok(None),
                _ => {}
            }
            packet = packet.decapsulated();
            iif = Some(vxlan_dev.clone());
        }
        // The pipeline takes the device the packet arrived on (a bridge port
        // hands it to its bridge there).
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

    /// The host's kernel pipeline (PREROUTING, routing, INPUT or FORWARD,
    /// POSTROUTING); drops are reported with what decided them. The first
    /// surviving branch is followed.
    fn pipeline(&mut self, q: &ForwardQuery) -> Result<Option<Forwarded>> {
        let Some(outs) = self.f.forward(&self.ns, q)? else {
            return Ok(None);
        };
        let mut live = Vec::new();
        for o in outs {
            if matches!(o.fate, Fate::Drop(_)) {
                self.f.report_drop(&self.ns, &q.packet, &o);
            } else {
                live.push(o);
            }
        }
        if live.len() > 1 && live.iter().all(|o| o.packet == live[0].packet) {
            self.f.info(format!(
                "node {} has {} ECMP next hops to {}; following the first",
                self.node.name,
                live.len(),
                q.packet.dst
            ));
        }
        Ok(live.into_iter().next())
    }

    fn finish(self, step: NodeStep) -> Result<NodeStep> {
        Ok(self.f.into_step(step))
    }

    fn dropped(self) -> Result<NodeStep> {
        self.f.dropped()
    }

    /// The packet is for a pod, here or on another node.
    pub fn toward_pod(mut self, pod: &Pod) -> Result<NodeStep> {
        if pod.node == self.node.name {
            let Some(ing) = self.ingress()? else {
                return self.dropped();
            };
            return self.toward_local_pod(ing, pod);
        }
        let Some(target) = cluster::node(&pod.node) else {
            self.f.fatal(format!(
                "pod {} runs on node {}, which is not in the cluster",
                pod.id(),
                pod.node
            ));
            return self.dropped();
        };
        // A down device has lost its routes: name the device, not the missing route.
        if !self.egress_devices_up(self.backend() == Backend::Vxlan)? {
            return self.dropped();
        }
        let Some(ing) = self.ingress()? else {
            return self.dropped();
        };
        let Some(route) = ing.out.route.clone() else {
            return self.dropped();
        };
        self.toward_remote(ing, &route, &target, true)
    }

    /// Deliver to a pod on this node over cni0 and its veth.
    fn toward_local_pod(mut self, ing: Ingress, pod: &Pod) -> Result<NodeStep> {
        let bridge = Expect {
            kind: Some("bridge"),
            mtu: self.plugin.config.pod_mtu(&self.node.name),
            mtu_level: Level::Warning,
            ..Expect::default()
        };
        match self.f.interface(&self.ns, BRIDGE, bridge)? {
            Some(dev) if !dev.up() => return self.dropped(),
            None if self.f.blocking() => return self.dropped(),
            _ => {}
        }
        // A reply between two pods on cni0 is bridged, not routed: only
        // br_netfilter lets conntrack undo the Service NAT on it. The
        // collector records the sysctl only when br_netfilter is loaded, so
        // its absence means "not loaded", not "unknown".
        if ing.packet.reply && ing.out.bridged && ing.out.natted {
            let key = "net.bridge.bridge-nf-call-iptables";
            let why = "the reply between two pods on cni0 is bridged without iptables, so conntrack never undoes the Service NAT and the client drops it";
            let value = self.f.tolerate(
                &format!("sysctl {key} of {}", self.ns.label()),
                self.ns.sysctl(key),
            )?;
            match value {
                Some(None) => {
                    self.f.fatal(format!(
                        "br_netfilter is not loaded on node {} (no {key}): {why}",
                        self.node.name
                    ));
                    return self.dropped();
                }
                Some(Some(v)) if v.trim() != "1" => {
                    self.f.fatal(format!(
                        "sysctl {key} of {} is {}, must be 1: {why}",
                        self.ns.label(),
                        v.trim()
                    ));
                    return self.dropped();
                }
                _ => {}
            }
        } else if self.plugin.config.require_bridge_nf {
            self.f.sysctl(
                &self.ns,
                "net.bridge.bridge-nf-call-iptables",
                "1",
                Level::Warning,
                "bridged traffic skips iptables, so Service replies between pods on one node are not un-NATed",
            )?;
        }
        // A frame for another port of cni0 is bridged: no route decides it.
        let bridged_here =
            ing.out.bridged && matches!(&ing.out.fate, Fate::Transmit { oif, .. } if oif == BRIDGE);
        let route = match ing.out.route.clone() {
            Some(r) => Some(r),
            None if bridged_here => None,
            None => return self.dropped(),
        };
        if let Some(route) = route.filter(|r| r.dev.as_deref() != Some(BRIDGE)) {
            self.f.fatal(format!(
                "node {} routes pod {} ({}) via `{}`, not via {BRIDGE}: flannel's route `{} dev {BRIDGE}` is missing",
                self.node.name,
                pod.id(),
                pod.ip,
                route.text,
                self.node
                    .pod_cidrs
                    .first()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "<podCIDR>".into())
            ));
            return self.dropped();
        }
        // The pipeline already ran FORWARD (or OUTPUT) and POSTROUTING.
        let packet = ing.out.packet;
        let veth = self.plugin.veth_pod(&self.node.name);
        let Some(peer) = veth.node_side(pod, &mut self.f)? else {
            return self.dropped();
        };
        let step = NodeStep::forward(vec![Transmission {
            next_hop: pod.hop(),
            kind: LinkKind::Veth,
            packet,
            oif: Some(peer),
            iif: Some(veth.iface.clone()),
            next_hop_address: None,
        }]);
        self.finish(step)
    }

    /// The packet is for another node's host network.
    pub fn toward_host(mut self, target: &Node) -> Result<NodeStep> {
        if !self.egress_devices_up(false)? {
            return self.dropped();
        }
        let Some(ing) = self.ingress()? else {
            return self.dropped();
        };
        let Some(route) = ing.out.route.clone() else {
            return self.dropped();
        };
        self.toward_remote(ing, &route, target, false)
    }

    /// A down device loses its routes, so a missing route is reported as the
    /// down device it really is: check the ones traffic to other nodes needs.
    fn egress_devices_up(&mut self, vxlan: bool) -> Result<bool> {
        let vxlan_dev = self.plugin.config.vxlan_dev();
        let host_if = self.host_if();
        if let Some(dev) = self.check_host_if(&host_if)?
            && !dev.up()
        {
            return Ok(false);
        }
        if vxlan {
            let expect = Expect {
                kind: Some("vxlan"),
                ..Expect::default()
            };
            if let Some(dev) = self.f.interface(&self.ns, &vxlan_dev, expect)?
                && !dev.up()
            {
                return Ok(false);
            }
        }
        Ok(!self.f.blocking())
    }

    /// Follow the route toward another node: over flannel.1 or the host interface.
    fn toward_remote(
        mut self,
        ing: Ingress,
        route: &Route,
        target: &Node,
        for_pod: bool,
    ) -> Result<NodeStep> {
        let vxlan_dev = self.plugin.config.vxlan_dev();
        let dev = route.dev.clone().unwrap_or_default();
        if dev == vxlan_dev && self.backend() != Backend::Vxlan {
            self.f.fatal(format!(
                "node {} still routes {} via {vxlan_dev} (`{}`) but the cluster's flannel backend is {}: stale state from the previous backend (restart flanneld on the node, delete {vxlan_dev})",
                self.node.name,
                route.prefix,
                route.text,
                self.backend().name()
            ));
            return self.dropped();
        }
        if dev == vxlan_dev {
            return self.over_vxlan(ing, route, target);
        }
        // Where the kernel sends it: the gateway, or the (translated) destination on-link.
        let gateway = match &ing.out.fate {
            Fate::Transmit { next_hop, .. } => *next_hop,
            _ => route.gateway.unwrap_or(ing.out.packet.dst),
        };
        // Straight to a node over the underlay: DirectRouting does this on
        // purpose; otherwise the kernel still delivers, so it is a warning.
        let direct =
            for_pod && self.backend() == Backend::Vxlan && cluster::node_by_ip(gateway).is_some();
        if direct && !(self.plugin.config.direct_routing && gateway == target.ip) {
            self.f.warning(format!(
                "node {} routes pod CIDR {} of node {} straight to {gateway} (`{}`), not over {vxlan_dev}: flannel's DirectRouting is off, so flanneld did not program this route",
                self.node.name,
                route.prefix,
                target.name,
                route.text
            ));
        }
        if for_pod && self.backend() == Backend::Vxlan && !direct {
            let cidr = target
                .pod_cidrs
                .first()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "<podCIDR>".into());
            let expect = format!(
                "`{cidr} via {} dev {vxlan_dev} onlink`",
                vtep_ip(target).map(|i| i.to_string()).unwrap_or_default()
            );
            let msg = if route.prefix.prefix_len() == 0 {
                format!(
                    "node {} has no route for pod CIDR {cidr} of node {}: it falls to the default route `{}`; flannel vxlan programs {expect}",
                    self.node.name, target.name, route.text
                )
            } else {
                format!(
                    "node {} routes pod CIDR {cidr} of node {} via `{}`; flannel vxlan programs {expect}",
                    self.node.name, target.name, route.text
                )
            };
            self.f.fatal(msg);
            return self.dropped();
        }
        let host_if = self.host_if();
        if dev != host_if {
            let msg = format!(
                "node {} routes the {} for {} via `{}`, not via the host interface {host_if}",
                self.node.name,
                ing.packet.direction(),
                ing.out.packet.dst,
                route.text
            );
            // Another interface that still reaches a node carries the packet:
            // the kernel follows it, so it is worth a warning, not a verdict.
            if cluster::node_by_ip(gateway).is_none() {
                self.f.fatal(msg);
                return self.dropped();
            }
            self.f.warning(msg);
        }
        let host_if = dev.clone();
        let next = cluster::node_by_ip(gateway);
        match &next {
            Some(n) if n.name == target.name => {}
            Some(n) => self.f.warning(format!(
                "node {} sends traffic for node {} through node {} (`{}`): an asymmetric detour",
                self.node.name, target.name, n.name, route.text
            )),
            None if for_pod => {
                self.f.neighbour(&self.ns, &dev, gateway, Level::Fatal)?;
                let why = if route.prefix.prefix_len() == 0 {
                    format!(
                        "node {} has no route for the pod CIDR of node {} ({}): it falls to the default route `{}` and leaves the cluster",
                        self.node.name,
                        target.name,
                        target
                            .pod_cidrs
                            .first()
                            .map(|c| c.to_string())
                            .unwrap_or_default(),
                        route.text
                    )
                } else {
                    format!(
                        "node {} routes pod CIDR {} of node {} via {gateway} (`{}`), but node {} is {}",
                        self.node.name,
                        route.prefix,
                        target.name,
                        route.text,
                        target.name,
                        target.ip
                    )
                };
                self.f.fatal(why);
                return self.dropped();
            }
            None => {}
        }
        self.f.neighbour(&self.ns, &dev, gateway, Level::Fatal)?;
        self.check_host_if(&host_if)?;
        // The pipeline already ran FORWARD (or OUTPUT) and POSTROUTING.
        let packet = ing.out.packet;
        let next = next.unwrap_or_else(|| target.clone());
        let suspicions = infra::node_to_node(&self.node.name, &host_if, &next.name, &packet)?;
        self.f.extend(suspicions);
        let step = NodeStep::forward(vec![Transmission {
            next_hop: next.hop(),
            kind: LinkKind::Infra,
            packet,
            oif: Some(host_if),
            iif: next.host_interface.clone(),
            next_hop_address: Some(gateway),
        }]);
        self.finish(step)
    }

    fn check_host_if(&mut self, host_if: &str) -> Result<Option<Interface>> {
        self.f.interface(&self.ns, host_if, Expect::default())
    }

    /// Encapsulate on flannel.1 toward the VTEP of `target`.
    fn over_vxlan(mut self, ing: Ingress, route: &Route, target: &Node) -> Result<NodeStep> {
        let vxlan_dev = self.plugin.config.vxlan_dev();
        let host_if = self.host_if();
        let host_mtu = self.check_host_if(&host_if)?.map(|i| i.mtu);
        let expect = Expect {
            kind: Some("vxlan"),
            ..Expect::default()
        };
        match self.f.interface(&self.ns, &vxlan_dev, expect)? {
            Some(dev) if !dev.up() => return self.dropped(),
            Some(dev) => {
                if let Some(host_mtu) = host_mtu {
                    self.check_vxlan_mtu(dev.mtu, host_mtu)
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
        // The gateway is a VTEP address: the network address of its node's pod CIDR.
        let owner = cluster::nodes()
            .into_iter()
            .find(|n| vtep_ip(n) == Some(gateway));
        let Some(owner) = owner else {
            self.f.fatal(format!(
                "node {} routes {} via VTEP {gateway} (`{}`), which belongs to no node",
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
        let want_mac = vtep_mac(&owner);
        let neigh = self.f.tolerate(
            &format!("neighbours of node {}", self.node.name),
            self.ns.neighbour(&vxlan_dev, gateway),
        )?;
        let mac = match neigh {
            None => want_mac.clone(),
            Some(None) => {
                self.f.critical(format!(
                    "node {} has no neighbour entry for VTEP {gateway} of node {} on {vxlan_dev}: flanneld did not program it",
                    self.node.name, owner.name
                ));
                return self.dropped();
            }
            Some(Some(n)) if n.failed() || n.lladdr.is_none() => {
                self.f.critical(format!(
                    "node {}'s neighbour entry for VTEP {gateway} of node {} on {vxlan_dev} is {} with no MAC: flanneld programs it PERMANENT",
                    self.node.name, owner.name, n.state
                ));
                return self.dropped();
            }
            Some(Some(n)) => {
                if let (Some(have), Some(want)) = (&n.lladdr, &want_mac)
                    && !have.eq_ignore_ascii_case(want)
                {
                    self.f.critical(format!(
                        "node {}'s neighbour entry for VTEP {gateway} on {vxlan_dev} is {have}, but node {}'s VtepMAC is {want}",
                        self.node.name, owner.name
                    ));
                    return self.dropped();
                }
                n.lladdr.or(want_mac)
            }
        };
        let Some(mac) = mac else {
            self.f.warning(format!(
                "VtepMAC of node {} is unknown (no flannel backend-data annotation); FDB not checked",
                owner.name
            ));
            return self.dropped();
        };
        let Some(fdb) = self.f.tolerate(
            &format!("FDB of node {}", self.node.name),
            self.ns.fdb(&vxlan_dev),
        )?
        else {
            return self.dropped();
        };
        let entry = fdb.iter().find(|e| e.mac.eq_ignore_ascii_case(&mac));
        let remote = match entry.and_then(|e| e.dst) {
            None => {
                self.f.critical(format!(
                    "node {} has no FDB entry on {vxlan_dev} for VTEP MAC {mac} of node {}: VXLAN packets to it have no destination",
                    self.node.name, owner.name
                ));
                return self.dropped();
            }
            Some(ip) => ip,
        };
        if remote != owner.ip {
            let holder = cluster::node_by_ip(remote)
                .map(|n| format!("node {}", n.name))
                .unwrap_or_else(|| "no node".to_string());
            self.f.critical(format!(
                "node {}'s FDB entry on {vxlan_dev} for VTEP MAC {mac} of node {} points at {remote} ({holder}), but node {} is {}: stale flannel state",
                self.node.name, owner.name, owner.name, owner.ip
            ));
            return self.dropped();
        }
        if !self.underlay_reaches(remote, &owner.name)? {
            return self.dropped();
        }
        // The pipeline already ran FORWARD (or OUTPUT) and POSTROUTING.
        let inner = ing.out.packet;
        let outer = Encap {
            kind: EncapKind::Vxlan,
            src: self.node.ip,
            dst: remote,
            vni: Some(self.plugin.config.vni),
            port: Some(self.plugin.config.port),
        };
        let packet = Packet {
            encap: Some(outer),
            ..inner
        };
        let suspicions = infra::node_to_node(&self.node.name, &host_if, &owner.name, &packet)?;
        self.f.extend(suspicions);
        let step = NodeStep::forward(vec![Transmission {
            next_hop: owner.hop(),
            kind: LinkKind::Vxlan,
            packet,
            oif: Some(vxlan_dev.clone()),
            iif: Some(vxlan_dev.clone()),
            next_hop_address: None,
        }]);
        self.finish(step)
    }

    /// flannel sets flannel.1's MTU to the host MTU less the VXLAN header; below
    /// the pod MTU it drops every full-size packet (fragmentation needed).
    fn check_vxlan_mtu(&mut self, mtu: u32, host_mtu: u32) {
        let vxlan_dev = self.plugin.config.vxlan_dev();
        let expected = host_mtu.saturating_sub(Backend::Vxlan.overhead());
        let Some(pod_mtu) = self.plugin.config.pod_mtu(&self.node.name) else {
            return;
        };
        let what = format!("interface {vxlan_dev} of node {}", self.node.name);
        if mtu < pod_mtu {
            self.f.critical(format!(
                "{what} has MTU {mtu}, below the pod MTU {pod_mtu}: packets larger than {mtu} bytes are dropped (fragmentation needed)"
            ));
        } else if mtu != expected {
            self.f
                .warning(format!("{what} has MTU {mtu}, expected {expected}"));
        }
    }

    /// The encapsulated packet must reach `remote` over the underlay: a route
    /// through the host interface and a neighbour that answers.
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
                "node {} has no route to {remote} (node {owner}) for VXLAN traffic",
                self.node.name
            ));
            return Ok(false);
        };
        let dev = route.dev.clone().unwrap_or_default();
        let gateway = route.gateway.unwrap_or(remote);
        self.f.neighbour(&self.ns, &dev, gateway, Level::Fatal)?;
        Ok(!self.f.blocking())
    }

    /// The packet leaves the cluster.
    pub fn toward_external(mut self) -> Result<NodeStep> {
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
        let host_if = self.host_if();
        if dev != host_if {
            self.f.warning(format!(
                "node {} sends traffic for {} out of {dev} (`{}`), not the host interface {host_if}",
                self.node.name, ing.out.packet.dst, route.text,
            ));
        }
        // The pipeline already ran FORWARD (or OUTPUT) and POSTROUTING.
        let packet = ing.out.packet;
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

/// flannel's VTEP address of a node: the network address of its pod CIDR.
fn vtep_ip(node: &Node) -> Option<Ipv4Addr> {
    node.pod_cidrs.first().map(|c| c.network())
}

/// flannel's VtepMAC of a node, from its backend-data annotation.
fn vtep_mac(node: &Node) -> Option<String> {
    let data = node.annotation("flannel.alpha.coreos.com/backend-data")?;
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    value
        .get("VtepMAC")
        .and_then(|m| m.as_str())
        .map(str::to_string)
}
