//! What flannel knows about a hop the host walked: the devices, routes and
//! entries flannel's CNI config and flanneld should have made on the node
//! (cni0 and its veths, a route per remote pod CIDR, flannel.1 with a
//! neighbour and an FDB entry per remote VTEP from the nodes' annotations),
//! checked against what the node's kernel did with the packet.

use std::net::Ipv4Addr;

use skoop_sdk::host::{Netns, Route, cluster};
use skoop_sdk::suspicions::Expect;
use skoop_sdk::{
    Branch, HopAnswer, Level, Node, NodeChecks, NodeHop, Owner, Pod, Protocol, Result, Suspicions,
    VtepEntries,
};

use crate::{Backend, Flannel};

/// The bridge flannel's CNI config puts pods on.
pub const BRIDGE: &str = "cni0";

/// A pod's own side: a veth of flannel's pod MTU, its peer on cni0.
pub fn pod(plugin: &Flannel, pod: &Pod) -> Result<HopAnswer> {
    let mut f = Suspicions::new();
    if pod.host_network {
        return Ok(f.into());
    }
    plugin.veth_pod(&pod.node).check(pod, &mut f)?;
    f.ip_rules(&Netns::pod(&pod.id()))?;
    Ok(f.into())
}

/// The checks of one node hop.
pub struct Checks<'a> {
    pub plugin: &'a Flannel,
    pub hop: NodeHop<'a>,
}

impl<'a> NodeChecks<'a> for Checks<'a> {
    /// Checks every node hop gets: policy routing, and a tunnel packet that
    /// arrived on a backend flannel does not run.
    fn common(&mut self) -> Result<()> {
        self.hop.f.ip_rules(&self.hop.ns)?;
        let tunnelled = self
            .hop
            .walk
            .branches
            .iter()
            .any(|b| b.decapsulated_by().is_some());
        if tunnelled && self.backend() != Backend::Vxlan {
            self.hop.f.fatal(format!(
                "node {} receives VXLAN-encapsulated traffic but flannel runs the {} backend",
                self.hop.node.name,
                self.backend().name()
            ));
        }
        for b in &self.hop.walk.branches {
            if let Some(dev) = b.decapsulated_by() {
                self.vxlan_device(dev)?;
            }
        }
        // A VXLAN packet arrived: flannel's device must be there to take it.
        let over_vxlan = self
            .hop
            .walk
            .upstream
            .as_ref()
            .is_some_and(|l| l.kind == skoop_sdk::LinkKind::Vxlan);
        if over_vxlan && self.backend() == Backend::Vxlan {
            let dev = self.plugin.config.vxlan_dev();
            self.vxlan_device(&dev)?;
        }
        Ok(())
    }

    /// The packet is for another node's host network: it leaves by the
    /// host interface.
    fn toward_host(&mut self, _target: &Node) -> Result<()> {
        let walk = self.hop.walk;
        for (i, b) in walk.past_pipeline() {
            self.host_interface(i, b)?;
        }
        Ok(())
    }

    /// The packet leaves the cluster.
    fn toward_outside(&mut self) -> Result<()> {
        let host_if = self.host_if();
        for b in &self.hop.walk.branches {
            let (Some(oif), Some(route)) = (b.oif(), b.route()) else {
                continue;
            };
            if oif != host_if && oif != BRIDGE {
                self.hop.f.warning(format!(
                    "node {} sends traffic for {} out of {oif} (`{}`), not the host interface {host_if}",
                    self.hop.node.name,
                    b.packet().map(|p| p.dst.to_string()).unwrap_or_default(),
                    route.text,
                ));
            }
        }
        Ok(())
    }

    /// One branch whose packet is for `dst` (a pod, or a Service's backend).
    fn toward(&mut self, i: usize, b: &Branch, dst: Ipv4Addr) -> Result<()> {
        if b.pipeline_dropped() {
            // A device that is down takes its routes with it: the host
            // reports the missing route, flannel names the device.
            if b.dropped().is_some_and(|d| d.kind == "no-route") {
                self.egress_devices_up()?;
            }
            return Ok(());
        }
        let owner = cluster::owner_of(dst, 0, Protocol::Tcp).ok();
        match owner {
            Some(Owner::Pod(p)) if !p.host_network && p.node == self.hop.node.name => {
                self.local_pod(i, b, &p)
            }
            Some(Owner::Pod(p)) if !p.host_network => match cluster::node(&p.node) {
                Some(target) => self.remote_pod(i, b, &target),
                None => Ok(()),
            },
            _ => self.host_interface(i, b),
        }
    }

    fn hop(&mut self) -> &mut NodeHop<'a> {
        &mut self.hop
    }
}

impl Checks<'_> {
    fn backend(&self) -> Backend {
        self.plugin.config.backend
    }

    /// The interface holding the node's InternalIP. When the dump does not
    /// show it, flannel's default `eth0` is assumed and the report says so.
    fn host_if(&mut self) -> String {
        match &self.hop.node.host_interface {
            Some(i) => i.clone(),
            None => {
                self.hop.f.warning(format!(
                    "cannot check which interface of node {} holds its InternalIP {} (not in its dump): flannel's checks assume eth0",
                    self.hop.node.name, self.hop.node.ip
                ));
                "eth0".to_string()
            }
        }
    }

    /// A pod of this node: flannel's route sends it to cni0, whose ports are
    /// the pods' veths.
    fn local_pod(&mut self, i: usize, b: &Branch, pod: &Pod) -> Result<()> {
        let bridge = Expect {
            kind: Some("bridge"),
            mtu: self.plugin.config.pod_mtu(&self.hop.node.name),
            mtu_level: Level::Warning,
            ..Expect::default()
        };
        self.hop.f.interface(&self.hop.ns, BRIDGE, bridge)?;
        if b.sent().is_some()
            && let Some(oif) = b.oif()
            && oif != BRIDGE
        {
            let route = b
                .route()
                .map(|r| format!("`{}`", r.text))
                .unwrap_or_else(|| format!("dev {oif}"));
            self.hop.f.stop(self.hop.walk, i, format!(
                "node {} routes pod {} ({}) via {route}, not via {BRIDGE}: flannel's route `{} dev {BRIDGE}` is missing",
                self.hop.node.name,
                pod.id(),
                pod.ip,
                self.hop.node
                    .pod_cidrs
                    .first()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "<podCIDR>".into())
            ));
        }
        self.plugin
            .veth_pod(&self.hop.node.name)
            .check(pod, &mut self.hop.f)?;
        if self.plugin.config.require_bridge_nf {
            self.hop.f.sysctl(
                &self.hop.ns,
                "net.bridge.bridge-nf-call-iptables",
                "1",
                Level::Warning,
                "bridged traffic skips iptables, so Service replies between pods on one node are not un-NATed",
            )?;
        }
        Ok(())
    }

    /// A pod of another node: the route flanneld programs for its pod CIDR,
    /// and on the vxlan backend the neighbour and FDB entries of its VTEP.
    fn remote_pod(&mut self, i: usize, b: &Branch, target: &Node) -> Result<()> {
        if !self.egress_devices_up()? {
            // Its routes went with the device: the packet does not reach
            // the other node the way flannel sends it.
            if b.sent().is_some() {
                self.hop.f.end(i);
            }
            return Ok(());
        }
        let Some(route) = b.route().cloned() else {
            return Ok(());
        };
        let vxlan_dev = self.plugin.config.vxlan_dev();
        let dev = route.dev.clone().unwrap_or_default();
        let cidr = target
            .pod_cidrs
            .first()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "<podCIDR>".into());
        if dev == vxlan_dev {
            if self.backend() != Backend::Vxlan {
                self.hop.f.stop(self.hop.walk, i, format!(
                    "node {} sends the {} for {} over {vxlan_dev} (`{}`), but flannel runs the {} backend: a stale VXLAN route",
                    self.hop.node.name,
                    self.hop.walk.packet.direction(),
                    target.name,
                    route.text,
                    self.backend().name()
                ));
                return Ok(());
            }
            return self.over_vxlan(i, b, &route, target);
        }
        let gateway = b.next_hop().unwrap_or(self.hop.walk.packet.dst);
        let at_gateway = cluster::node_by_ip(gateway);
        if self.backend() == Backend::Vxlan {
            if at_gateway.is_some() {
                // Straight to a node: flannel's DirectRouting does this on
                // purpose; otherwise the kernel still delivers: a warning.
                if !(self.plugin.config.direct_routing && gateway == target.ip) {
                    self.hop.f.warning(format!(
                        "node {} routes pod CIDR {} of node {} straight to {gateway} (`{}`), not over {vxlan_dev}: flannel's DirectRouting is off, so flanneld did not program this route",
                        self.hop.node.name, route.prefix, target.name, route.text
                    ));
                }
                return self.host_interface(i, b);
            }
            let expect = format!(
                "`{cidr} via {} dev {vxlan_dev} onlink`",
                vtep_ip(target).map(|i| i.to_string()).unwrap_or_default()
            );
            self.hop.f.stop(self.hop.walk, i, if route.prefix.prefix_len() == 0 {
                format!(
                    "node {} has no route for pod CIDR {cidr} of node {}: it falls to the default route `{}`; flannel vxlan programs {expect}",
                    self.hop.node.name, target.name, route.text
                )
            } else {
                format!(
                    "node {} routes pod CIDR {cidr} of node {} via `{}`; flannel vxlan programs {expect}",
                    self.hop.node.name, target.name, route.text
                )
            });
            return Ok(());
        }
        // host-gw: `podCIDR via NODE-IP dev HOST-IF`.
        if at_gateway.is_none() {
            let host_if = self.host_if();
            self.hop.f.stop(self.hop.walk, i, if route.prefix.prefix_len() == 0 {
                format!(
                    "node {} has no route for the pod CIDR of node {} ({cidr}): it falls to the default route `{}` and leaves the cluster; flannel host-gw programs `{cidr} via {} dev {}`",
                    self.hop.node.name,
                    target.name,
                    route.text,
                    target.ip,
                    host_if
                )
            } else {
                format!(
                    "node {} routes pod CIDR {} of node {} via {gateway} (`{}`), but node {} is {}",
                    self.hop.node.name, route.prefix, target.name, route.text, target.name, target.ip
                )
            });
            return Ok(());
        }
        self.host_interface(i, b)
    }

    /// A branch that leaves by a device other than the host interface:
    /// flannel's traffic between nodes goes by its `--iface`.
    fn host_interface(&mut self, i: usize, b: &Branch) -> Result<()> {
        let host_if = self.host_if();
        let (Some(oif), Some(route)) = (b.oif(), b.route()) else {
            return Ok(());
        };
        if oif == host_if || oif == BRIDGE || oif == self.plugin.config.vxlan_dev() {
            return Ok(());
        }
        if b.sent()
            .is_some_and(|t| t.next_hop.kind == skoop_sdk::NetNodeKind::Pod)
        {
            return Ok(());
        }
        let msg = format!(
            "node {} routes the {} for {} via `{}`, not via the host interface {host_if}",
            self.hop.node.name,
            self.hop.walk.packet.direction(),
            b.packet()
                .map(|p| p.dst)
                .unwrap_or(self.hop.walk.packet.dst),
            route.text
        );
        // Another interface that still reaches a node carries the packet:
        // the kernel follows it, so it is worth a warning, not a verdict.
        let reaches_node = b
            .next_hop()
            .is_some_and(|g| cluster::node_by_ip(g).is_some());
        if reaches_node {
            self.hop.f.warning(msg);
        } else {
            self.hop.f.stop(self.hop.walk, i, msg);
        }
        Ok(())
    }

    /// A down device has lost its routes: name the device, not the missing
    /// route. The host interface, and flannel.1 on the vxlan backend.
    fn egress_devices_up(&mut self) -> Result<bool> {
        let host_if = self.host_if();
        if let Some(dev) = self
            .hop
            .f
            .interface(&self.hop.ns, &host_if, Expect::default())?
            && !dev.up()
        {
            return Ok(false);
        }
        if self.backend() == Backend::Vxlan {
            let vxlan_dev = self.plugin.config.vxlan_dev();
            if let Some(dev) = self.vxlan_device(&vxlan_dev)?
                && !dev.up()
            {
                return Ok(false);
            }
        }
        Ok(!self.hop.f.blocking())
    }

    /// flannel.1 as flanneld creates it: a vxlan device with the VNI and
    /// port of flannel's config, and the host MTU less the VXLAN header.
    fn vxlan_device(&mut self, name: &str) -> Result<Option<skoop_sdk::host::Interface>> {
        let expect = Expect {
            kind: Some("vxlan"),
            ..Expect::default()
        };
        let Some(dev) = self.hop.f.interface(&self.hop.ns, name, expect)? else {
            return Ok(None);
        };
        let what = format!("interface {name} of node {}", self.hop.node.name);
        let config = &self.plugin.config;
        if let Some(vni) = dev.vxlan_id
            && vni != config.vni
        {
            self.hop.f.critical(format!(
                "{what} has VNI {vni}, but flannel's config says {}",
                config.vni
            ));
        }
        if let Some(port) = dev.vxlan_port
            && port != config.port
        {
            self.hop.f.critical(format!(
                "{what} uses UDP port {port}, but flannel's config says {}",
                config.port
            ));
        }
        let host_mtu = self
            .hop
            .node
            .host_interface
            .as_ref()
            .and_then(|h| self.hop.ns.interface(h).ok().flatten())
            .map(|i| i.mtu);
        if let Some(host_mtu) = host_mtu {
            let expected = host_mtu.saturating_sub(Backend::Vxlan.overhead());
            let pod_mtu = config.pod_mtu(&self.hop.node.name);
            if pod_mtu.is_some_and(|p| dev.mtu < p) {
                self.hop.f.warning(format!(
                    "{what} has MTU {}, below the pod MTU {}: flanneld sets it to {expected} (the host MTU less the VXLAN header)",
                    dev.mtu,
                    pod_mtu.unwrap_or_default()
                ));
            } else if dev.mtu != expected {
                self.hop
                    .f
                    .warning(format!("{what} has MTU {}, expected {expected}", dev.mtu));
            }
        }
        Ok(Some(dev))
    }

    /// Over flannel.1: the route's gateway is the VTEP of the target's
    /// node, whose neighbour entry holds its VtepMAC and whose FDB entry
    /// points at its public IP, as flanneld programs them from the nodes'
    /// annotations.
    fn over_vxlan(&mut self, i: usize, b: &Branch, route: &Route, target: &Node) -> Result<()> {
        let vxlan_dev = self.plugin.config.vxlan_dev();
        let name = self.hop.node.name.clone();
        let Some(gateway) = route.gateway else {
            self.hop.f.stop(self.hop.walk, i, format!(
                "node {name} routes {} via `{}` without a VTEP gateway: flannel vxlan programs `{} via {} dev {vxlan_dev} onlink`",
                target.name,
                route.text,
                route.prefix,
                vtep_ip(target).map(|i| i.to_string()).unwrap_or_default()
            ));
            return Ok(());
        };
        let owner = cluster::nodes()
            .into_iter()
            .find(|n| vtep_ip(n) == Some(gateway));
        let Some(owner) = owner else {
            self.hop.f.stop(
                self.hop.walk,
                i,
                format!(
                    "node {name} routes {} via VTEP {gateway} (`{}`), which belongs to no node",
                    target.name, route.text
                ),
            );
            return Ok(());
        };
        if owner.name != target.name {
            self.hop.f.warning(format!(
                "node {name} sends traffic for node {} through the VTEP of node {} (`{}`): a detour",
                target.name, owner.name, route.text
            ));
        }
        let want_mac = vtep_mac(&owner);
        let whose = format!("node {}'s VtepMAC", owner.name);
        VtepEntries {
            cni: "flannel",
            node: &name,
            dev: &vxlan_dev,
            vtep: gateway,
            owner: &owner.name,
            mac: want_mac.as_deref().map(|m| (m, whose.as_str())),
            remote: public_ip(&owner),
            programmed_by: "flanneld programs it PERMANENT",
        }
        .check(self.hop.walk, i, b, &mut self.hop.f);
        Ok(())
    }
}

/// flannel's VTEP address of a node: the network address of its pod CIDR.
fn vtep_ip(node: &Node) -> Option<Ipv4Addr> {
    node.pod_cidrs.first().map(|c| c.network())
}

/// A node's flannel backend-data annotation, as JSON.
fn backend_data(node: &Node) -> Option<serde_json::Value> {
    let data = node.annotation("flannel.alpha.coreos.com/backend-data")?;
    serde_json::from_str(data).ok()
}

/// flannel's VtepMAC of a node, from its backend-data annotation.
fn vtep_mac(node: &Node) -> Option<String> {
    backend_data(node)?
        .get("VtepMAC")
        .and_then(|m| m.as_str())
        .map(str::to_string)
}

/// The address flanneld points a node's FDB entry at: its public-ip
/// annotation, else its InternalIP.
fn public_ip(node: &Node) -> Ipv4Addr {
    node.annotation("flannel.alpha.coreos.com/public-ip")
        .and_then(|a| a.parse().ok())
        .unwrap_or(node.ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node as flanneld's vxlan backend annotates it.
    fn node(annotations: &[(&str, &str)]) -> Node {
        Node {
            name: "node-2".into(),
            ip: Ipv4Addr::new(192, 168, 0, 12),
            pod_cidrs: vec!["10.244.1.0/24".parse().unwrap()],
            ready: true,
            host_interface: Some("eth0".into()),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            labels: vec![],
            provider_id: None,
        }
    }

    const BACKEND_DATA: &str = "flannel.alpha.coreos.com/backend-data";
    const PUBLIC_IP: &str = "flannel.alpha.coreos.com/public-ip";

    #[test]
    fn the_vtep_address_is_the_network_address_of_the_pod_cidr() {
        // flanneld gives flannel.1 the lease's first address (10.244.1.0/32)
        // and routes `10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink`.
        assert_eq!(vtep_ip(&node(&[])), Some(Ipv4Addr::new(10, 244, 1, 0)));
        let no_lease = Node {
            pod_cidrs: vec![],
            ..node(&[])
        };
        assert_eq!(vtep_ip(&no_lease), None);
    }

    #[test]
    fn the_vtep_mac_comes_from_the_backend_data_annotation() {
        let n = node(&[(BACKEND_DATA, r#"{"VNI":1,"VtepMAC":"8e:b7:e5:7f:ec:c1"}"#)]);
        assert_eq!(vtep_mac(&n).as_deref(), Some("8e:b7:e5:7f:ec:c1"));
        assert_eq!(
            backend_data(&n).and_then(|d| d.get("VNI").and_then(|v| v.as_u64())),
            Some(1)
        );
        // No annotation, annotation that is not JSON, JSON without VtepMAC:
        // flanneld has not published the VTEP, so there is nothing to expect.
        assert_eq!(vtep_mac(&node(&[])), None);
        assert_eq!(
            vtep_mac(&node(&[(BACKEND_DATA, "8e:b7:e5:7f:ec:c1")])),
            None
        );
        assert_eq!(backend_data(&node(&[(BACKEND_DATA, "not json")])), None);
        assert_eq!(vtep_mac(&node(&[(BACKEND_DATA, r#"{"VNI":1}"#)])), None);
        // The annotation's key is flannel's, not another CNI's.
        let other = node(&[(
            "projectcalico.org/backend-data",
            r#"{"VtepMAC":"8e:b7:e5:7f:ec:c1"}"#,
        )]);
        assert_eq!(vtep_mac(&other), None);
    }

    #[test]
    fn the_fdb_remote_is_the_public_ip_annotation_else_the_internal_ip() {
        // flanneld's --public-ip (or the --iface address) published on the node.
        let n = node(&[(PUBLIC_IP, "203.0.113.7")]);
        assert_eq!(public_ip(&n), Ipv4Addr::new(203, 0, 113, 7));
        assert_eq!(public_ip(&node(&[])), Ipv4Addr::new(192, 168, 0, 12));
        // An unreadable annotation: the InternalIP, as for none.
        let n = node(&[(PUBLIC_IP, "node-2.example")]);
        assert_eq!(public_ip(&n), Ipv4Addr::new(192, 168, 0, 12));
    }
}
