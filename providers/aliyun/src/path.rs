//! The underlay paths the provider checks, over the facts a [`Cloud`]
//! fetches: node to node, node to the outside, outside to a node (or to a
//! LoadBalancer address in front of it), and the walk `prefetch` makes.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use skoop_sdk::{Node, Packet, Protocol, Suspicion, Underlay};

use crate::checks::{
    At, Direction, Expect, Flow, Peer, Source, best_route, cannot_check, check_nat_gateway,
    check_route, check_security_groups, fatal, hop, push, warning,
};
use crate::cloud::{Cloud, parse_provider_id};
use crate::model::{Instance, RouteEntry, SecurityGroup};
use crate::slb;

/// A node's end of the path: its instance and the ENI the packet uses.
struct End {
    instance: Instance,
    eni: String,
    primary: bool,
    vswitch: String,
    vpc: String,
    groups: Vec<String>,
    /// `instance i-abc (node n1)`.
    name: String,
    node: String,
}

impl End {
    fn owns(&self, addr: Ipv4Addr) -> bool {
        self.instance.owns(addr)
    }
}

/// The instance of `node`, with a warning when it cannot be found.
fn instance_of(cloud: &dyn Cloud, u: &mut Underlay, node: &Node) -> Option<Instance> {
    match cloud.instance_of(node) {
        Ok(Some(i)) => Some(i),
        Ok(None) => {
            let by = match node.provider_id.as_deref().and_then(parse_provider_id) {
                Some((_, id)) => format!("the id {id} of its provider ID or"),
                None => "its provider ID (none in the ACK form <region>.<instanceId>) or".into(),
            };
            warning(
                u,
                format!(
                    "cannot check the underlay of node {}: no ECS instance in region {} has {by} its address {}",
                    node.name,
                    cloud.region(),
                    node.ip
                ),
            );
            None
        }
        Err(e) => {
            push(
                u,
                cannot_check(&format!("the ECS instance of node {}", node.name), &e),
            );
            None
        }
    }
}

/// `node`'s end for a packet from or to `addr`: the ENI owning `addr`, else
/// the one owning the node's address, else the primary one.
fn locate(cloud: &dyn Cloud, u: &mut Underlay, node: &Node, addr: Ipv4Addr) -> Option<End> {
    let instance = instance_of(cloud, u, node)?;
    let name = format!("instance {} (node {})", instance.id, node.name);
    let eni = instance
        .eni_owning(addr)
        .or_else(|| instance.eni_owning(node.ip))
        .or_else(|| instance.enis.iter().find(|e| e.is_primary()))
        .cloned();
    let mut end = End {
        eni: eni.as_ref().map(|e| e.id.clone()).unwrap_or_default(),
        primary: eni
            .as_ref()
            .is_none_or(|e| e.is_primary() || e.kind.is_empty()),
        vswitch: instance.vswitch_id.clone(),
        vpc: instance.vpc_id.clone(),
        groups: instance.security_groups.clone(),
        name,
        node: node.name.clone(),
        instance,
    };
    if !end.primary {
        // A secondary ENI has its own vSwitch and security groups.
        match cloud.enis() {
            Ok(all) => match all.iter().find(|e| e.id == end.eni) {
                Some(e) => {
                    if !e.vswitch_id.is_empty() {
                        end.vswitch = e.vswitch_id.clone();
                    }
                    if !e.vpc_id.is_empty() {
                        end.vpc = e.vpc_id.clone();
                    }
                    end.groups = e.security_groups.clone();
                }
                None => warning(
                    u,
                    format!(
                        "cannot check ENI {} of {}: it was not found; its instance's security groups and vSwitch are used",
                        end.eni, end.name
                    ),
                ),
            },
            Err(e) => push(
                u,
                cannot_check(&format!("ENI {} of {}", end.eni, end.name), &e),
            ),
        }
    }
    Some(end)
}

/// The security groups of `end`, with the prefix lists their rules name;
/// None (with a warning) when one cannot be read.
/// Security groups with the entries of the prefix lists their rules name.
type Groups = (Vec<SecurityGroup>, HashMap<String, Vec<Ipv4Net>>);

fn groups_of(cloud: &dyn Cloud, u: &mut Underlay, end: &End) -> Option<Groups> {
    let mut groups = vec![];
    for id in &end.groups {
        match cloud.security_group(id) {
            Ok(Some(g)) => groups.push(g),
            Ok(None) => {
                warning(
                    u,
                    format!(
                        "cannot check security group {id} of {}: it does not exist in region {}",
                        end.name,
                        cloud.region()
                    ),
                );
                return None;
            }
            Err(e) => {
                push(
                    u,
                    cannot_check(&format!("security group {id} of {}", end.name), &e),
                );
                return None;
            }
        }
    }
    let mut lists = HashMap::new();
    let mut ids: Vec<&str> = groups
        .iter()
        .flat_map(|g| g.rules.iter().filter_map(|r| r.peer_prefix_list()))
        .collect();
    ids.sort();
    ids.dedup();
    for id in ids {
        match cloud.prefix_list(id) {
            Ok(c) => {
                lists.insert(id.to_string(), c);
            }
            Err(e) => push(u, cannot_check(&format!("prefix list {id}"), &e)),
        }
    }
    Some((groups, lists))
}

fn sg_check(
    cloud: &dyn Cloud,
    u: &mut Underlay,
    end: &End,
    direction: Direction,
    flow: &Flow,
    peer: &Peer,
) {
    let Some((groups, lists)) = groups_of(cloud, u, end) else {
        return;
    };
    let refs: Vec<&SecurityGroup> = groups.iter().collect();
    let at = At {
        name: &end.name,
        addr: match direction {
            Direction::Egress => flow.src,
            Direction::Ingress => flow.dst,
        },
    };
    let resolve = |id: &str| lists.get(id).cloned();
    check_security_groups(u, &refs, direction, flow, &at, peer, &resolve);
}

/// The peer `end` is for a flow address: its groups count when the address is its own.
fn peer_of(end: &End, addr: Ipv4Addr) -> Peer {
    Peer {
        addr: Some(addr),
        groups: if end.owns(addr) {
            end.groups.clone()
        } else {
            vec![]
        },
        name: end.name.clone(),
    }
}

/// The route table of `end`'s vSwitch (its own, else the VPC's system
/// table) and its entries.
fn route_table(
    cloud: &dyn Cloud,
    u: &mut Underlay,
    vpc: &str,
    vswitch: &str,
) -> Option<(String, Vec<RouteEntry>)> {
    let subject = format!("the route table of vSwitch {vswitch}");
    let vswitches = match cloud.vswitches(vpc) {
        Ok(v) => v,
        Err(e) => {
            push(u, cannot_check(&subject, &e));
            return None;
        }
    };
    let mut table = vswitches
        .iter()
        .find(|v| v.id == vswitch)
        .map(|v| v.route_table_id.clone())
        .unwrap_or_default();
    if table.is_empty() {
        let vrouter = match cloud.vpc(vpc) {
            Ok(Some(v)) => v.vrouter_id,
            Ok(None) => {
                warning(
                    u,
                    format!("cannot check {subject}: VPC {vpc} was not found"),
                );
                return None;
            }
            Err(e) => {
                push(u, cannot_check(&subject, &e));
                return None;
            }
        };
        table = match cloud.system_route_table(&vrouter) {
            Ok(Some(t)) => t,
            Ok(None) => {
                warning(
                    u,
                    format!(
                        "cannot check {subject}: vRouter {vrouter} of VPC {vpc} has no system route table"
                    ),
                );
                return None;
            }
            Err(e) => {
                push(u, cannot_check(&subject, &e));
                return None;
            }
        };
    }
    match cloud.route_entries(&table) {
        Ok(entries) => Some((table, entries)),
        Err(e) => {
            push(
                u,
                cannot_check(&format!("route table {table} of vSwitch {vswitch}"), &e),
            );
            None
        }
    }
}

/// From node `src` to node `dst`: the sender's security groups (outbound),
/// the route of the sender's vSwitch (the destination instance's own address
/// or, for natively routed pods, a route to that instance), and the
/// receiver's security groups (inbound). The security groups are evaluated
/// whether or not the nodes share one; for a tunnel, on the outer packet.
pub fn node_to_node(cloud: &dyn Cloud, src: &Node, dst: &Node, packet: &Packet) -> Underlay {
    let flow = Flow::of(packet);
    let mut u = Underlay::default();
    let Some(s) = locate(cloud, &mut u, src, flow.src) else {
        return u;
    };
    let Some(d) = locate(cloud, &mut u, dst, flow.dst) else {
        return u;
    };
    let sg = flow.needs_stateful_check();
    if sg {
        sg_check(
            cloud,
            &mut u,
            &s,
            Direction::Egress,
            &flow,
            &peer_of(&d, flow.dst),
        );
    }
    if let Some((table, entries)) = route_table(cloud, &mut u, &s.vpc, &s.vswitch) {
        let enis: Vec<String> = d.instance.enis.iter().map(|e| e.id.clone()).collect();
        let expect = if d.owns(flow.dst) {
            Expect::Instance {
                id: &d.instance.id,
                node: &d.node,
                enis: &enis,
            }
        } else {
            Expect::RoutedTo {
                id: &d.instance.id,
                node: &d.node,
                enis: &enis,
            }
        };
        check_route(&mut u, &table, &s.vswitch, &entries, &flow, expect);
    }
    if sg {
        sg_check(
            cloud,
            &mut u,
            &d,
            Direction::Ingress,
            &flow,
            &peer_of(&s, flow.src),
        );
    }
    u
}

/// The public address `end` sends from for `addr`: the instance's public IP
/// or EIP for its primary address, else an EIP bound to the ENI.
fn public_ip(cloud: &dyn Cloud, u: &mut Underlay, end: &End, addr: Ipv4Addr) -> Option<Ipv4Addr> {
    let primary_addr = end.primary
        && (end.instance.private_ips.first() == Some(&addr)
            || end
                .instance
                .enis
                .iter()
                .any(|e| e.is_primary() && e.primary_ip == Some(addr)));
    if primary_addr && let Some(p) = end.instance.public_ip() {
        return Some(p);
    }
    if end.eni.is_empty() || !end.owns(addr) {
        return None;
    }
    match cloud.enis() {
        Ok(all) => all
            .iter()
            .find(|e| e.id == end.eni)
            .and_then(|e| e.public_ip_of(addr)),
        Err(e) => {
            push(
                u,
                cannot_check(&format!("the EIPs of ENI {} of {}", end.eni, end.name), &e),
            );
            None
        }
    }
}

/// From node `src` to an address outside the VPC: the sender's security
/// groups (outbound); then either its public IP or EIP, or the route of its
/// vSwitch to a NAT gateway with a SNAT entry covering the source.
pub fn node_to_external(cloud: &dyn Cloud, src: &Node, packet: &Packet) -> Underlay {
    let flow = Flow::of(packet);
    let mut u = Underlay::default();
    let Some(s) = locate(cloud, &mut u, src, flow.src) else {
        return u;
    };
    if flow.needs_stateful_check() {
        let peer = Peer {
            addr: Some(flow.dst),
            groups: vec![],
            name: flow.dst.to_string(),
        };
        sg_check(cloud, &mut u, &s, Direction::Egress, &flow, &peer);
    }
    if flow.reply {
        return u;
    }
    if let Some(p) = public_ip(cloud, &mut u, &s, flow.src) {
        hop(
            &mut u,
            "public-ip",
            &s.instance.id,
            format!(
                "{} leaves {} from its public IP {p}",
                flow.describe(),
                s.name
            ),
        );
        return u;
    }
    let Some((table, entries)) = route_table(cloud, &mut u, &s.vpc, &s.vswitch) else {
        return u;
    };
    let Some(route) = best_route(&entries, flow.dst) else {
        fatal(
            &mut u,
            format!(
                "route table {table} of vSwitch {} has no route entry for {} and {} has no public IP or EIP, so {} does not reach the Internet",
                s.vswitch,
                flow.dst,
                s.name,
                flow.describe()
            ),
        );
        return u;
    };
    hop(
        &mut u,
        "route-table",
        &table,
        format!("route entry {} takes {}", route.describe(), flow.describe()),
    );
    let Some(next) = route.next_hops.first() else {
        return u;
    };
    let kind = next.kind.to_ascii_lowercase();
    if kind == "natgateway" {
        let gateway = match cloud.nat_gateway(&next.id) {
            Ok(g) => g,
            Err(e) => {
                push(
                    &mut u,
                    cannot_check(&format!("NAT gateway {}", next.id), &e),
                );
                return u;
            }
        };
        let mut snat = vec![];
        for t in gateway.iter().flat_map(|g| g.snat_table_ids.iter()) {
            match cloud.snat_entries(t) {
                Ok(e) => snat.extend(e),
                Err(e) => {
                    push(
                        &mut u,
                        cannot_check(&format!("SNAT table {t} of NAT gateway {}", next.id), &e),
                    );
                    return u;
                }
            }
        }
        let source = Source {
            addr: flow.src,
            vswitch: &s.vswitch,
            eni: &s.eni,
            name: &s.name,
        };
        check_nat_gateway(&mut u, &next.id, gateway.as_ref(), &snat, &flow, &source);
    } else if kind == "ipv4gateway" {
        fatal(
            &mut u,
            format!(
                "route table {table} of vSwitch {} sends {} by route entry {} to IPv4 gateway {}, which forwards only addresses with a public IP, and {} has no public IP or EIP",
                s.vswitch,
                flow.dst,
                route.describe(),
                next.id,
                s.name
            ),
        );
    } else if !route.is_local() {
        warning(
            &mut u,
            format!(
                "route table {table} of vSwitch {} sends {} by route entry {} to {} {}, beyond which skoop cannot check the way to the Internet",
                s.vswitch,
                flow.dst,
                route.describe(),
                next.kind,
                next.id
            ),
        );
    }
    u
}

/// A Service of type LoadBalancer, as the provider needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbService {
    /// `namespace/name`.
    pub id: String,
    pub ingress: Vec<Ipv4Addr>,
    /// (port, protocol `tcp`/`udp`, node port).
    pub ports: Vec<(u16, String, Option<u16>)>,
    /// `externalTrafficPolicy: Local`.
    pub local: bool,
    /// Nodes with a ready endpoint.
    pub endpoint_nodes: Vec<String>,
}

fn protocol_of(p: Protocol) -> &'static str {
    match p {
        Protocol::Udp => "udp",
        _ => "tcp",
    }
}

/// The backends `service` expects, when every node's instance is known.
fn expected(
    cloud: &dyn Cloud,
    service: &LbService,
    port: u16,
    protocol: &str,
) -> Option<slb::Expected> {
    let node_port = service
        .ports
        .iter()
        .find(|(p, proto, _)| *p == port && proto == protocol)
        .and_then(|(_, _, np)| *np)?;
    let mut nodes = vec![];
    for n in cloud.nodes() {
        let i = cloud.instance_of(n).ok()??;
        nodes.push((n.name.clone(), i.id.clone(), n.ip));
    }
    Some(slb::expected_backends(
        &service.id,
        service.local,
        node_port,
        &nodes,
        &service.endpoint_nodes,
    ))
}

/// The load balancer at `packet.dst`: status, listener, ACLs, vServer group
/// and health.
pub fn to_load_balancer(
    cloud: &dyn Cloud,
    packet: &Packet,
    service: Option<&LbService>,
) -> Underlay {
    let flow = Flow::of(packet);
    let mut u = Underlay::default();
    let subject = format!("the load balancer at {}", packet.dst);
    let lb = match cloud.load_balancer(packet.dst) {
        Ok(Some(lb)) => lb,
        Ok(None) => {
            warning(
                &mut u,
                format!(
                    "cannot check {subject}: no CLB in region {} has that address (NLB and ALB are not checked)",
                    cloud.region()
                ),
            );
            return u;
        }
        Err(e) => {
            push(&mut u, cannot_check(&subject, &e));
            return u;
        }
    };
    if !slb::check_load_balancer(&mut u, &lb, &flow) {
        return u;
    }
    let protocol = protocol_of(packet.protocol);
    let listener = match cloud.listener(&lb.id, packet.dport, protocol) {
        Ok(l) => l,
        Err(e) => {
            push(
                &mut u,
                cannot_check(
                    &format!("the {protocol} listener {} of CLB {}", packet.dport, lb.id),
                    &e,
                ),
            );
            return u;
        }
    };
    let Some(l) = slb::check_listener(
        &mut u,
        &lb.id,
        listener.as_ref(),
        packet.dport,
        protocol,
        &flow,
    ) else {
        return u;
    };
    if l.acl_status.eq_ignore_ascii_case("on") {
        let mut acls = vec![];
        for id in &l.acl_ids {
            match cloud.acl(id) {
                Ok(a) => acls.push(a),
                Err(e) => push(
                    &mut u,
                    cannot_check(&format!("access control list {id} of CLB {}", lb.id), &e),
                ),
            }
        }
        if acls.len() == l.acl_ids.len()
            && !slb::check_acl(&mut u, &lb.id, l, &acls, flow.src, &flow)
        {
            return u;
        }
    }
    let exp = service.and_then(|s| expected(cloud, s, packet.dport, protocol));
    if l.vserver_group_id.is_empty() {
        slb::check_vserver_group(&mut u, &lb.id, l, None, exp.as_ref(), &flow);
    } else {
        match cloud.vserver_group(&l.vserver_group_id) {
            Ok(g) => slb::check_vserver_group(&mut u, &lb.id, l, Some(&g), exp.as_ref(), &flow),
            Err(e) => push(
                &mut u,
                cannot_check(
                    &format!("vServer group {} of CLB {}", l.vserver_group_id, lb.id),
                    &e,
                ),
            ),
        }
    }
    match cloud.health(&lb.id, l.port, &l.protocol) {
        Ok(h) => slb::check_health(&mut u, &lb.id, l, &h, &flow),
        Err(e) => push(
            &mut u,
            cannot_check(&format!("the backend health of CLB {}", lb.id), &e),
        ),
    }
    u
}

/// From outside the cluster to node `dst`: to one of its addresses (or its
/// public IP), the node's security groups (inbound); to a LoadBalancer
/// address, the CLB checks.
pub fn external_to_node(
    cloud: &dyn Cloud,
    dst: &Node,
    packet: &Packet,
    service: Option<&LbService>,
) -> Underlay {
    let mut u = Underlay::default();
    let Some(d) = locate(cloud, &mut u, dst, dst.ip) else {
        return u;
    };
    let to_node = packet.dst == dst.ip || d.owns(packet.dst);
    let to_public = !to_node && public_ip(cloud, &mut u, &d, dst.ip) == Some(packet.dst);
    if !to_node && !to_public {
        let lb = to_load_balancer(cloud, packet, service);
        u.hops.extend(lb.hops);
        for s in lb.suspicions {
            push(&mut u, s);
        }
        // A CLB's backends are the nodes' NodePorts: the node receives the
        // packet at its own address and the Service's node port.
        let node_port = service.and_then(|s| {
            s.ports
                .iter()
                .find(|(port, proto, _)| {
                    *port == packet.dport && proto.as_str() == protocol_of(packet.protocol)
                })
                .and_then(|(_, _, np)| *np)
        });
        if let Some(np) = node_port {
            u.entry = Some(Packet {
                dst: dst.ip,
                dport: np,
                ..*packet
            });
        }
        return u;
    }
    let mut p = *packet;
    if to_public {
        // The EIP or public IP is translated to the private address.
        p.dst = dst.ip;
        u.entry = Some(p);
    }
    let flow = Flow::of(&p);
    if flow.needs_stateful_check() {
        let peer = Peer {
            addr: Some(flow.src),
            groups: vec![],
            name: flow.src.to_string(),
        };
        sg_check(cloud, &mut u, &d, Direction::Ingress, &flow, &peer);
    }
    u
}

/// Ask everything the checks of this cluster may need, with the very
/// requests the checks make; warnings for what could not be fetched.
pub fn prefetch(cloud: &dyn Cloud, services: &[LbService]) -> Vec<Suspicion> {
    let mut u = Underlay::default();
    let mut instances = vec![];
    for n in cloud.nodes() {
        if let Some(i) = instance_of(cloud, &mut u, n) {
            instances.push((n.clone(), i));
        }
    }
    if instances.is_empty() {
        return u.suspicions;
    }
    let enis = match cloud.enis() {
        Ok(e) => e,
        Err(e) => {
            push(
                &mut u,
                cannot_check("the ENIs of the cluster's instances", &e),
            );
            vec![]
        }
    };
    let mut group_ids: Vec<String> = instances
        .iter()
        .flat_map(|(_, i)| i.security_groups.clone())
        .chain(enis.iter().flat_map(|e| e.security_groups.clone()))
        .collect();
    group_ids.sort();
    group_ids.dedup();
    let mut lists = vec![];
    for id in &group_ids {
        match cloud.security_group(id) {
            Ok(Some(g)) => lists.extend(
                g.rules
                    .iter()
                    .filter_map(|r| r.peer_prefix_list().map(str::to_string)),
            ),
            Ok(None) => warning(
                &mut u,
                format!(
                    "cannot check security group {id}: it does not exist in region {}",
                    cloud.region()
                ),
            ),
            Err(e) => push(&mut u, cannot_check(&format!("security group {id}"), &e)),
        }
    }
    lists.sort();
    lists.dedup();
    for id in &lists {
        if let Err(e) = cloud.prefix_list(id) {
            push(&mut u, cannot_check(&format!("prefix list {id}"), &e));
        }
    }
    // (VPC, vSwitch) of every instance and ENI.
    let mut places: Vec<(String, String)> = instances
        .iter()
        .map(|(_, i)| (i.vpc_id.clone(), i.vswitch_id.clone()))
        .chain(
            enis.iter()
                .map(|e| (e.vpc_id.clone(), e.vswitch_id.clone())),
        )
        .filter(|(v, s)| !v.is_empty() && !s.is_empty())
        .collect();
    places.sort();
    places.dedup();
    let mut gateways = vec![];
    for (vpc, vswitch) in &places {
        if let Some((_, entries)) = route_table(cloud, &mut u, vpc, vswitch) {
            gateways.extend(
                entries
                    .iter()
                    .flat_map(|e| e.next_hops.iter())
                    .filter(|h| h.kind.eq_ignore_ascii_case("NatGateway"))
                    .map(|h| h.id.clone()),
            );
        }
    }
    gateways.sort();
    gateways.dedup();
    for id in &gateways {
        match cloud.nat_gateway(id) {
            Ok(Some(g)) => {
                for t in &g.snat_table_ids {
                    if let Err(e) = cloud.snat_entries(t) {
                        push(
                            &mut u,
                            cannot_check(&format!("SNAT table {t} of NAT gateway {id}"), &e),
                        );
                    }
                }
            }
            Ok(None) => {}
            Err(e) => push(&mut u, cannot_check(&format!("NAT gateway {id}"), &e)),
        }
    }
    for s in services {
        for ip in &s.ingress {
            let lb = match cloud.load_balancer(*ip) {
                Ok(Some(lb)) => lb,
                Ok(None) => continue,
                Err(e) => {
                    push(
                        &mut u,
                        cannot_check(
                            &format!("the load balancer at {ip} of Service {}", s.id),
                            &e,
                        ),
                    );
                    continue;
                }
            };
            for (port, protocol, _) in &s.ports {
                let l = match cloud.listener(&lb.id, *port, protocol) {
                    Ok(Some(l)) => l,
                    Ok(None) => continue,
                    Err(e) => {
                        push(
                            &mut u,
                            cannot_check(
                                &format!("the {protocol} listener {port} of CLB {}", lb.id),
                                &e,
                            ),
                        );
                        continue;
                    }
                };
                for id in &l.acl_ids {
                    if let Err(e) = cloud.acl(id) {
                        push(
                            &mut u,
                            cannot_check(&format!("access control list {id} of CLB {}", lb.id), &e),
                        );
                    }
                }
                if !l.vserver_group_id.is_empty()
                    && let Err(e) = cloud.vserver_group(&l.vserver_group_id)
                {
                    push(
                        &mut u,
                        cannot_check(
                            &format!("vServer group {} of CLB {}", l.vserver_group_id, lb.id),
                            &e,
                        ),
                    );
                }
                if let Err(e) = cloud.health(&lb.id, l.port, &l.protocol) {
                    push(
                        &mut u,
                        cannot_check(&format!("the backend health of CLB {}", lb.id), &e),
                    );
                }
            }
        }
    }
    u.suspicions
}
