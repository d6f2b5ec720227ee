//! The three underlay paths a provider checks, over the facts a [`Cloud`]
//! fetches on demand: node to node, node to the outside, outside to node.

use std::net::Ipv4Addr;

use skoop_sdk::{Level, Node, Packet, Suspicion, Underlay, UnderlayHop};

use crate::checks::Port;
use crate::checks::{
    Attachment, Direction, Fetch, Flow, PrefixLists, RouteExpectation, acl_of, best_route,
    cannot_check, check_acl, check_route, check_security_groups, check_source_dest, push,
    route_table_of,
};
use crate::ec2::{
    Instance, InternetGateway, NatGateway, NetworkAcl, NetworkInterface, RouteTable, SecurityGroup,
    TCP, UDP,
};
use crate::elb::{Listener, LoadBalancer, TargetHealth, target_group_name};

/// The EC2 facts the checks read.
pub trait Cloud: PrefixLists {
    fn instance_by_id(&self, id: &str) -> Fetch<Option<Instance>>;
    fn instance_by_ip(&self, ip: Ipv4Addr) -> Fetch<Option<Instance>>;
    /// A security group; None when it does not exist.
    fn security_group(&self, id: &str) -> Fetch<Option<SecurityGroup>>;
    fn network_acls(&self, vpc: &str) -> Fetch<Vec<NetworkAcl>>;
    fn route_tables(&self, vpc: &str) -> Fetch<Vec<RouteTable>>;
    fn nat_gateway(&self, id: &str) -> Fetch<Option<NatGateway>>;
    fn internet_gateways(&self, vpc: &str) -> Fetch<Vec<InternetGateway>>;
    /// The network interfaces of the region's load balancers (`ELB …` descriptions).
    fn load_balancer_interfaces(&self) -> Fetch<Vec<NetworkInterface>>;
    /// The region's ELBv2 load balancers.
    fn load_balancers(&self) -> Fetch<Vec<LoadBalancer>>;
    fn listeners(&self, load_balancer_arn: &str) -> Fetch<Vec<Listener>>;
    fn target_health(&self, target_group_arn: &str) -> Fetch<Vec<TargetHealth>>;
}

/// The instance id of a provider ID (`aws:///us-east-1a/i-0abc`).
pub fn instance_id(provider_id: &str) -> Option<&str> {
    provider_id
        .strip_prefix("aws://")?
        .rsplit('/')
        .next()
        .filter(|id| id.starts_with("i-"))
}

/// The availability zone of a provider ID (`us-east-1a`).
pub fn zone(provider_id: &str) -> Option<&str> {
    let mut parts = provider_id.strip_prefix("aws://")?.rsplit('/');
    parts.next()?;
    parts.next().filter(|z| !z.is_empty())
}

/// The region of a node: its `topology.kubernetes.io/region` label, else its
/// provider ID's zone without the zone letter.
pub fn region_of(node: &Node) -> Option<String> {
    node.label("topology.kubernetes.io/region")
        .or_else(|| node.label("failure-domain.beta.kubernetes.io/region"))
        .map(str::to_string)
        .or_else(|| {
            let z = zone(node.provider_id.as_deref()?)?;
            let r = z.trim_end_matches(|c: char| c.is_ascii_lowercase());
            (r.len() < z.len() && !r.is_empty()).then(|| r.to_string())
        })
}

/// A node's end of the path: its instance and the ENI the packet uses.
struct End {
    instance: Instance,
    eni: NetworkInterface,
    owner: String,
}

impl End {
    fn at(&self) -> Attachment<'_> {
        Attachment {
            eni: &self.eni,
            owner: &self.owner,
        }
    }
}

/// The instance of `node`, by its provider ID, else by its address.
fn instance_of(cloud: &dyn Cloud, u: &mut Underlay, node: &Node) -> Option<Instance> {
    let subject = format!("the EC2 instance of node {}", node.name);
    let by_id = node.provider_id.as_deref().and_then(instance_id);
    if let Some(id) = by_id {
        match cloud.instance_by_id(id) {
            Ok(Some(i)) => return Some(i),
            Ok(None) => {}
            Err(e) => {
                push(u, cannot_check(&subject, &e));
                return None;
            }
        }
    }
    match cloud.instance_by_ip(node.ip) {
        Ok(Some(i)) => Some(i),
        Ok(None) => {
            let by = match by_id {
                Some(id) => format!("instance {id} of its provider ID nor by"),
                None => "its provider ID nor by".to_string(),
            };
            push(
                u,
                Suspicion::new(
                    Level::Warning,
                    format!(
                        "cannot check {subject}: no EC2 instance found by {by} its address {}",
                        node.ip
                    ),
                ),
            );
            None
        }
        Err(e) => {
            push(u, cannot_check(&subject, &e));
            None
        }
    }
}

/// `node`'s end for a packet from or to `addr`: the ENI owning `addr`, else
/// the one owning the node's address, else the primary one.
fn locate(cloud: &dyn Cloud, u: &mut Underlay, node: &Node, addr: Ipv4Addr) -> Option<End> {
    let instance = instance_of(cloud, u, node)?;
    let eni = instance
        .interface_owning(addr)
        .or_else(|| instance.interface_owning(node.ip))
        .or_else(|| instance.primary_interface())
        .cloned();
    let Some(eni) = eni else {
        push(
            u,
            Suspicion::new(
                Level::Warning,
                format!(
                    "cannot check the EC2 instance {} of node {}: it has no network interface",
                    instance.id, node.name
                ),
            ),
        );
        return None;
    };
    let owner = format!("node {}, instance {}", node.name, instance.id);
    Some(End {
        instance,
        eni,
        owner,
    })
}

/// When the node's address is none of its instance's (a bundle whose
/// addresses differ from the cloud's), the instance's primary address stands
/// for it: the underlay carries the instance's.
fn alias(flow: &mut Flow, node: &Node, end: &End) {
    if end.instance.interface_owning(node.ip).is_some() {
        return;
    }
    let Some(own) = end.eni.private_ip else {
        return;
    };
    if flow.src == node.ip {
        flow.src = own;
    }
    if flow.dst == node.ip {
        flow.dst = own;
    }
}

/// The groups of `end`'s ENI among `groups`; None (with a warning) when one is missing.
fn groups_of<'a>(
    u: &mut Underlay,
    end: &End,
    groups: &'a [SecurityGroup],
) -> Option<Vec<&'a SecurityGroup>> {
    let mut out = vec![];
    for id in &end.eni.groups {
        match groups.iter().find(|g| &g.id == id) {
            Some(g) => out.push(g),
            None => {
                push(
                    u,
                    Suspicion::new(
                        Level::Warning,
                        format!(
                            "cannot check security group {id} of {}: not found",
                            end.at().name()
                        ),
                    ),
                );
                return None;
            }
        }
    }
    Some(out)
}

/// The security groups of the ENIs of `ends`; None (with a warning) when one
/// cannot be fetched.
fn fetch_groups(cloud: &dyn Cloud, u: &mut Underlay, ends: &[&End]) -> Option<Vec<SecurityGroup>> {
    let mut ids: Vec<String> = ends.iter().flat_map(|e| e.eni.groups.clone()).collect();
    ids.sort();
    ids.dedup();
    let mut out = vec![];
    let mut ok = true;
    for id in ids {
        match cloud.security_group(&id) {
            Ok(Some(g)) => out.push(g),
            Ok(None) => {}
            Err(e) => {
                push(u, cannot_check(&format!("security group {id}"), &e));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn sg_check(
    cloud: &dyn Cloud,
    u: &mut Underlay,
    end: &End,
    all: &[SecurityGroup],
    direction: Direction,
    flow: &Flow,
    peer: Option<&NetworkInterface>,
) {
    if let Some(groups) = groups_of(u, end, all) {
        let groups: Vec<SecurityGroup> = groups.into_iter().cloned().collect();
        check_security_groups(u, end.at(), &groups, direction, flow, peer, cloud);
    }
}

fn acls(cloud: &dyn Cloud, u: &mut Underlay, vpc: &str) -> Vec<NetworkAcl> {
    cloud.network_acls(vpc).unwrap_or_else(|e| {
        push(u, cannot_check(&format!("the network ACLs of {vpc}"), &e));
        vec![]
    })
}

fn tables(cloud: &dyn Cloud, u: &mut Underlay, vpc: &str) -> Vec<RouteTable> {
    cloud.route_tables(vpc).unwrap_or_else(|e| {
        push(u, cannot_check(&format!("the route tables of {vpc}"), &e));
        vec![]
    })
}

/// The ACL of `end`'s subnet among `all`, with a warning when there is none.
fn acl_for<'a>(
    u: &mut Underlay,
    all: &'a [NetworkAcl],
    fetched: bool,
    end: &End,
) -> Option<&'a NetworkAcl> {
    let acl = acl_of(all, &end.eni.subnet_id);
    if acl.is_none() && fetched {
        push(
            u,
            Suspicion::new(
                Level::Warning,
                format!(
                    "cannot check the network ACL of subnet {}: none found in {}",
                    end.eni.subnet_id, end.eni.vpc_id
                ),
            ),
        );
    }
    acl
}

fn table_for<'a>(
    u: &mut Underlay,
    all: &'a [RouteTable],
    fetched: bool,
    subnet: &str,
    vpc: &str,
) -> Option<&'a RouteTable> {
    let t = route_table_of(all, subnet);
    if t.is_none() && fetched {
        push(
            u,
            Suspicion::new(
                Level::Warning,
                format!("cannot check the route table of subnet {subnet}: none found in {vpc}"),
            ),
        );
    }
    t
}

/// From node `src` to node `dst`: the sending ENI's source/destination check
/// and security groups (egress), the network ACLs of both subnets when they
/// differ, the source subnet's route, then the receiving ENI's security groups
/// (ingress) and source/destination check. For a request, the network ACLs are
/// also checked for the traffic coming back.
pub fn node_to_node(cloud: &dyn Cloud, src: &Node, dst: &Node, packet: &Packet) -> Underlay {
    let mut flow = Flow::of(packet);
    let mut u = Underlay::default();
    let Some(s) = locate(cloud, &mut u, src, flow.src) else {
        return u;
    };
    let Some(d) = locate(cloud, &mut u, dst, flow.dst) else {
        return u;
    };
    alias(&mut flow, src, &s);
    alias(&mut flow, dst, &d);
    let flow = flow;
    // Security groups are stateful: a reply of an admitted connection passes.
    // A tunnel's packets from the other end are a flow of their own.
    let stateful = flow.tunnel.is_some() || !flow.reply;
    let groups = if stateful {
        fetch_groups(cloud, &mut u, &[&s, &d])
    } else {
        None
    };

    check_source_dest(&mut u, s.at(), &flow, true);
    if let Some(all) = &groups {
        sg_check(
            cloud,
            &mut u,
            &s,
            all,
            Direction::Egress,
            &flow,
            Some(&d.eni),
        );
    }

    // Network ACLs apply at subnet boundaries.
    let cross = s.eni.subnet_id != d.eni.subnet_id;
    let (mut acl_list, mut acls_fetched) = (vec![], false);
    if cross {
        acl_list = acls(cloud, &mut u, &s.eni.vpc_id);
        acls_fetched = !acl_list.is_empty();
        if d.eni.vpc_id != s.eni.vpc_id {
            acl_list.extend(acls(cloud, &mut u, &d.eni.vpc_id));
        }
    }
    let src_acl = if cross {
        acl_for(&mut u, &acl_list, acls_fetched, &s)
    } else {
        None
    };
    let dst_acl = if cross {
        acl_for(&mut u, &acl_list, acls_fetched, &d)
    } else {
        None
    };
    if let Some(a) = src_acl {
        check_acl(&mut u, a, &s.eni.subnet_id, true, &flow, true);
    }

    let rts = tables(cloud, &mut u, &s.eni.vpc_id);
    if let Some(t) = table_for(
        &mut u,
        &rts,
        !rts.is_empty(),
        &s.eni.subnet_id,
        &s.eni.vpc_id,
    ) {
        let enis: Vec<String> = d.instance.interfaces.iter().map(|i| i.id.clone()).collect();
        let expect = if flow.tunnel.is_none() && !d.eni.owns(flow.dst) {
            RouteExpectation::Node {
                name: &dst.name,
                instance: &d.instance.id,
                enis: &enis,
            }
        } else {
            RouteExpectation::Any
        };
        check_route(&mut u, t, &s.eni.subnet_id, &flow, expect, cloud);
    }

    if let Some(a) = dst_acl {
        check_acl(&mut u, a, &d.eni.subnet_id, false, &flow, true);
    }
    if let Some(all) = &groups {
        sg_check(
            cloud,
            &mut u,
            &d,
            all,
            Direction::Ingress,
            &flow,
            Some(&s.eni),
        );
    }
    check_source_dest(&mut u, d.at(), &flow, false);

    if !flow.reply {
        let back = flow.reversed();
        if let Some(a) = dst_acl {
            check_acl(&mut u, a, &d.eni.subnet_id, true, &back, false);
        }
        if let Some(a) = src_acl {
            check_acl(&mut u, a, &s.eni.subnet_id, false, &back, false);
        }
    }
    u
}

fn hop(kind: &str, id: &str, detail: String) -> UnderlayHop {
    UnderlayHop {
        kind: kind.into(),
        id: id.into(),
        detail,
    }
}

fn critical(u: &mut Underlay, message: String) {
    push(u, Suspicion::new(Level::Critical, message));
}

/// From node `src` to an address outside the VPC: the sending ENI's
/// source/destination check and security groups, its subnet's network ACL
/// (and the reply's way back in), its route, and the gateway the route takes:
/// an internet gateway needs a public IP on the source address, a NAT gateway
/// must be available and its own subnet must route to an internet gateway.
pub fn node_to_external(cloud: &dyn Cloud, src: &Node, packet: &Packet) -> Underlay {
    let mut flow = Flow::of(packet);
    let mut u = Underlay::default();
    let Some(s) = locate(cloud, &mut u, src, flow.src) else {
        return u;
    };
    alias(&mut flow, src, &s);
    let flow = flow;
    check_source_dest(&mut u, s.at(), &flow, true);
    // Security groups are stateful: a reply of an admitted connection passes.
    if (flow.tunnel.is_some() || !flow.reply)
        && let Some(all) = fetch_groups(cloud, &mut u, &[&s])
    {
        sg_check(cloud, &mut u, &s, &all, Direction::Egress, &flow, None);
    }
    let acl_list = acls(cloud, &mut u, &s.eni.vpc_id);
    let acl = acl_for(&mut u, &acl_list, !acl_list.is_empty(), &s);
    if let Some(a) = acl {
        check_acl(&mut u, a, &s.eni.subnet_id, true, &flow, true);
    }
    let rts = tables(cloud, &mut u, &s.eni.vpc_id);
    let table = table_for(
        &mut u,
        &rts,
        !rts.is_empty(),
        &s.eni.subnet_id,
        &s.eni.vpc_id,
    );
    let route = table.and_then(|t| {
        check_route(
            &mut u,
            t,
            &s.eni.subnet_id,
            &flow,
            RouteExpectation::Any,
            cloud,
        )
    });
    if let (Some(t), Some(route)) = (table, route)
        && !flow.reply
    {
        if let Some(igw) = route.internet_gateway() {
            match s.eni.public_ip_of(flow.src) {
                Some(public) => u.hops.push(hop(
                    "internet-gateway",
                    igw,
                    format!(
                        "translates the source {} to its public IP {public}",
                        flow.src
                    ),
                )),
                None => critical(
                    &mut u,
                    format!(
                        "route table {} of subnet {} sends {} to internet gateway {igw} (route {}), but {} of {} has no public IP: the internet gateway drops it (IGW_PUBLIC_IP_ASSOCIATION_FOR_EGRESS)",
                        t.id,
                        s.eni.subnet_id,
                        flow.describe(),
                        route.text(),
                        flow.src,
                        s.at().name()
                    ),
                ),
            }
        } else if let Some(nat) = &route.nat_gateway_id {
            nat_gateway(cloud, &mut u, nat, t, route, &rts, &flow);
        }
    }
    if !flow.reply
        && let Some(a) = acl
    {
        check_acl(&mut u, a, &s.eni.subnet_id, false, &flow.reversed(), false);
    }
    u
}

/// A NAT gateway on the way out: it must be available, and its subnet must
/// route the destination to an internet gateway (public NAT gateways).
fn nat_gateway(
    cloud: &dyn Cloud,
    u: &mut Underlay,
    id: &str,
    table: &RouteTable,
    route: &crate::ec2::Route,
    rts: &[RouteTable],
    flow: &Flow,
) {
    let nat = match cloud.nat_gateway(id) {
        Ok(Some(n)) => n,
        Ok(None) => {
            critical(
                u,
                format!(
                    "route table {} sends {} by route {} to NAT gateway {id}, which does not exist (BAD_STATE_ROUTE)",
                    table.id,
                    flow.describe(),
                    route.text()
                ),
            );
            return;
        }
        Err(e) => {
            push(u, cannot_check(&format!("NAT gateway {id}"), &e));
            return;
        }
    };
    if nat.state != "available" {
        critical(
            u,
            format!(
                "NAT gateway {id} (route {} of route table {}) is {}, not available: it drops {} (BAD_STATE)",
                route.text(),
                table.id,
                if nat.state.is_empty() {
                    "in no state"
                } else {
                    &nat.state
                },
                flow.describe()
            ),
        );
        return;
    }
    let public: Vec<String> = nat.public_ips.iter().map(|p| p.to_string()).collect();
    u.hops.push(hop(
        "nat-gateway",
        id,
        if public.is_empty() {
            format!("translates the source {} to its own address", flow.src)
        } else {
            format!(
                "translates the source {} to {}",
                flow.src,
                public.join(", ")
            )
        },
    ));
    if nat.connectivity_type == "private" || nat.subnet_id.is_empty() {
        return;
    }
    let Some(t) = route_table_of(rts, &nat.subnet_id) else {
        return;
    };
    let Some(r) = check_route(u, t, &nat.subnet_id, flow, RouteExpectation::Any, cloud) else {
        return;
    };
    match r.internet_gateway() {
        Some(igw) => u.hops.push(hop(
            "internet-gateway",
            igw,
            format!("carries the NAT gateway {id}'s traffic out"),
        )),
        None => critical(
            u,
            format!(
                "route table {} of NAT gateway {id}'s subnet {} sends {} by route {}, not to an internet gateway: the public NAT gateway cannot reach it (NO_ROUTE_TO_DESTINATION)",
                t.id,
                nat.subnet_id,
                flow.dst,
                r.text()
            ),
        ),
    }
}

/// From an address outside the VPC to node `dst`: through an internet
/// gateway when the destination is a public IP of the node, then the
/// subnet's network ACL, the ENI's security groups and source/destination
/// check; for a request, the reply's way back (network ACL, and a route back
/// through the internet gateway when the request came through it).
pub fn external_to_node(cloud: &dyn Cloud, dst: &Node, packet: &Packet) -> Underlay {
    let mut flow = Flow::of(packet);
    let mut u = Underlay::default();
    let Some(instance) = instance_of(cloud, &mut u, dst) else {
        return u;
    };
    // The ENI the destination address belongs to, privately or publicly
    // (the node's address stands for its instance's primary one).
    if flow.dst == dst.ip
        && instance.interface_owning(dst.ip).is_none()
        && let Some(own) = instance.primary_interface().and_then(|e| e.private_ip)
    {
        flow.dst = own;
    }
    let private = instance.interface_owning(flow.dst).cloned();
    let public = instance
        .interfaces
        .iter()
        .find(|i| i.owns_public(flow.dst))
        .cloned();
    let Some(eni) = private.clone().or(public.clone()) else {
        // Not one of the node's addresses: a load balancer's, or another.
        load_balancer(cloud, &mut u, dst, &instance, &flow, packet);
        return u;
    };
    let d = End {
        owner: format!("node {}, instance {}", dst.name, instance.id),
        instance,
        eni,
    };
    let mut igw_id: Option<String> = None;
    let public_addr = flow.dst;
    if private.is_none() {
        // The internet gateway translates the public IP to the private one.
        let Some(private_ip) = d
            .eni
            .private_ips
            .iter()
            .find(|p| p.public_ip == Some(flow.dst))
            .map(|p| p.address)
            .or(d.eni.private_ip)
        else {
            return u;
        };
        match cloud.internet_gateways(&d.eni.vpc_id) {
            Ok(igws) => match igws.iter().find(|g| g.attached_to(&d.eni.vpc_id)) {
                Some(g) => {
                    igw_id = Some(g.id.clone());
                    u.hops.push(hop(
                        "internet-gateway",
                        &g.id,
                        format!("translates the destination {public_addr} to {private_ip}"),
                    ));
                }
                None => critical(
                    &mut u,
                    format!(
                        "{} has no internet gateway attached: {} to the public IP {public_addr} of {} cannot enter it (NO_ROUTE_TO_DESTINATION)",
                        d.eni.vpc_id,
                        flow.describe(),
                        d.at().name()
                    ),
                ),
            },
            Err(e) => push(
                &mut u,
                cannot_check(&format!("the internet gateways of {}", d.eni.vpc_id), &e),
            ),
        }
        flow.dst = private_ip;
    }

    let acl_list = acls(cloud, &mut u, &d.eni.vpc_id);
    let acl = acl_for(&mut u, &acl_list, !acl_list.is_empty(), &d);
    if let Some(a) = acl {
        check_acl(&mut u, a, &d.eni.subnet_id, false, &flow, true);
    }
    // Security groups are stateful: a reply of an admitted connection passes.
    if (flow.tunnel.is_some() || !flow.reply)
        && let Some(all) = fetch_groups(cloud, &mut u, &[&d])
    {
        sg_check(cloud, &mut u, &d, &all, Direction::Ingress, &flow, None);
    }
    check_source_dest(&mut u, d.at(), &flow, false);

    if !flow.reply {
        let back = flow.reversed();
        if let Some(a) = acl {
            check_acl(&mut u, a, &d.eni.subnet_id, true, &back, false);
        }
        let rts = tables(cloud, &mut u, &d.eni.vpc_id);
        if let Some(t) = table_for(
            &mut u,
            &rts,
            !rts.is_empty(),
            &d.eni.subnet_id,
            &d.eni.vpc_id,
        ) {
            match best_route(&mut u, t, back.dst, cloud) {
                None => critical(
                    &mut u,
                    format!(
                        "route table {} of subnet {} has no route to {} for {} (NO_ROUTE_TO_DESTINATION)",
                        t.id,
                        d.eni.subnet_id,
                        back.dst,
                        back.describe()
                    ),
                ),
                Some(r) if r.blackhole() => critical(
                    &mut u,
                    format!(
                        "route table {} of subnet {} sends {} by route {}, whose target no longer exists (state blackhole) (BAD_STATE_ROUTE)",
                        t.id,
                        d.eni.subnet_id,
                        back.dst,
                        r.text()
                    ),
                ),
                Some(r) => {
                    if let Some(igw) = &igw_id
                        && r.internet_gateway() != Some(igw.as_str())
                    {
                        critical(
                            &mut u,
                            format!(
                                "route table {} of subnet {} sends {} by route {}, not back through internet gateway {igw}: the reply from the public IP {public_addr} is not translated back and is dropped (NO_ROUTE_TO_DESTINATION)",
                                t.id,
                                d.eni.subnet_id,
                                back.describe(),
                                r.text()
                            ),
                        );
                    }
                }
            }
        }
    }
    u
}

/// Whether a listener protocol carries an IP protocol.
fn listener_carries(listener: &str, protocol: u8) -> bool {
    match protocol {
        TCP => matches!(listener, "TCP" | "TLS" | "TCP_UDP" | "HTTP" | "HTTPS"),
        UDP => matches!(listener, "UDP" | "TCP_UDP"),
        _ => false,
    }
}

/// From outside through an ELBv2 load balancer whose address is `flow.dst`
/// to node `node`: the load balancer must be active, have a listener for the
/// port, forward it to a target group where the node is a healthy target; then
/// the node's subnet's network ACL and its security groups must admit the
/// packet the load balancer sends (the client's address for a network load
/// balancer's instance targets, else the load balancer's own).
fn load_balancer(
    cloud: &dyn Cloud,
    u: &mut Underlay,
    node: &Node,
    instance: &Instance,
    flow: &Flow,
    packet: &Packet,
) {
    let enis = match cloud.load_balancer_interfaces() {
        Ok(e) => e,
        Err(e) => {
            push(
                u,
                cannot_check(&format!("the load balancer at {}", flow.dst), &e),
            );
            return;
        }
    };
    let Some(lb_eni) = enis
        .iter()
        .find(|e| e.owns(flow.dst) || e.owns_public(flow.dst))
    else {
        push(
            u,
            Suspicion::new(
                Level::Warning,
                format!(
                    "no load balancer network interface and no interface of node {} owns {}: the AWS path of {} was not checked",
                    node.name,
                    flow.dst,
                    flow.describe()
                ),
            ),
        );
        return;
    };
    let lb_id = lb_eni.description.strip_prefix("ELB ").unwrap_or_default();
    // `net/NAME/ID` or `app/NAME/ID`: NAME/ID identifies it.
    let name_id = |id: &str| id.split('/').skip(1).collect::<Vec<_>>().join("/");
    let lb = match cloud.load_balancers() {
        Ok(all) => all.into_iter().find(|b| name_id(b.id()) == name_id(lb_id)),
        Err(e) => {
            push(u, cannot_check(&format!("load balancer {lb_id}"), &e));
            return;
        }
    };
    let Some(lb) = lb else {
        push(
            u,
            Suspicion::new(
                Level::Warning,
                format!(
                    "{} holds {} for load balancer {lb_id}, which is no Application or Network Load Balancer of the region (a Classic Load Balancer, or one being deleted): {} was not checked",
                    lb_eni.id,
                    flow.dst,
                    flow.describe()
                ),
            ),
        );
        return;
    };
    let name = format!("load balancer {}", lb.name);
    if lb.state != "active" {
        critical(
            u,
            format!(
                "{name} ({}) is {}, not active: it does not pass {} (BAD_STATE)",
                lb.id(),
                if lb.state.is_empty() {
                    "in no state"
                } else {
                    &lb.state
                },
                flow.describe()
            ),
        );
        return;
    }
    let listeners = match cloud.listeners(&lb.arn) {
        Ok(l) => l,
        Err(e) => {
            push(u, cannot_check(&format!("the listeners of {name}"), &e));
            return;
        }
    };
    let Some(listener) = listeners
        .iter()
        .find(|l| flow.dport == Port::One(l.port) && listener_carries(&l.protocol, flow.protocol))
    else {
        let have: Vec<String> = listeners
            .iter()
            .map(|l| format!("{} {}", l.protocol, l.port))
            .collect();
        critical(
            u,
            format!(
                "{name} has no listener for {}; it listens on {} (ELBV2_LISTENERS_MISMATCH)",
                flow.describe(),
                if have.is_empty() {
                    "nothing".to_string()
                } else {
                    have.join(", ")
                }
            ),
        );
        return;
    };
    let what = format!("listener {} {} of {name}", listener.protocol, listener.port);
    if listener.target_groups.is_empty() {
        critical(
            u,
            format!(
                "{what} forwards {} to no target group (ELBV2_LISTENER_HAS_NO_TG)",
                flow.describe()
            ),
        );
        return;
    }
    let mut passed: Vec<(String, TargetHealth)> = vec![];
    for tg in &listener.target_groups {
        let tg_name = target_group_name(tg);
        let health = match cloud.target_health(tg) {
            Ok(h) => h,
            Err(e) => {
                push(
                    u,
                    cannot_check(&format!("the targets of target group {tg_name}"), &e),
                );
                continue;
            }
        };
        let mine: Vec<&TargetHealth> = health
            .iter()
            .filter(|t| {
                t.id == instance.id
                    || t.id
                        .parse()
                        .is_ok_and(|ip| instance.interface_owning(ip).is_some())
            })
            .collect();
        if mine.is_empty() {
            push(
                u,
                Suspicion::new(
                    Level::Warning,
                    format!(
                        "node {} (instance {}) is no target of target group {tg_name} of {what}: the load balancer sends it none of {} (TARGET_ADDRESS_RESTRICTION)",
                        node.name,
                        instance.id,
                        flow.describe()
                    ),
                ),
            );
        }
        for t in mine {
            if t.state == "healthy" {
                passed.push((tg_name.to_string(), t.clone()));
                continue;
            }
            let why = [t.reason.as_str(), t.description.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(": ");
            critical(
                u,
                format!(
                    "target {}{} (node {}) of target group {tg_name} of {what} is {}{}: the load balancer does not send it {} (BAD_STATE)",
                    t.id,
                    t.port.map(|p| format!(" port {p}")).unwrap_or_default(),
                    node.name,
                    if t.state.is_empty() {
                        "in no state"
                    } else {
                        &t.state
                    },
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(" ({why})")
                    },
                    flow.describe()
                ),
            );
        }
    }
    let Some((tg_name, target)) = passed.first() else {
        return;
    };
    u.hops.push(hop(
        "load-balancer",
        lb.id(),
        format!(
            "{} forwards {} to target group {tg_name}, where {}{} is healthy",
            what,
            flow.describe(),
            target.id,
            target
                .port
                .map(|p| format!(" port {p}"))
                .unwrap_or_default()
        ),
    ));
    // What reaches the node: the target's address and port, from the client
    // (network load balancer, instance target) or from the load balancer.
    let eni = match target.id.parse::<Ipv4Addr>() {
        Ok(ip) => instance.interface_owning(ip),
        Err(_) => instance
            .interface_owning(node.ip)
            .or_else(|| instance.primary_interface()),
    };
    let Some(eni) = eni.cloned() else {
        return;
    };
    let Some(addr) = target.id.parse().ok().or(eni.private_ip) else {
        return;
    };
    let preserves_client = lb.kind == "network" && target.id.starts_with("i-");
    let Some(src) = (if preserves_client {
        Some(flow.src)
    } else {
        lb_eni.private_ip
    }) else {
        return;
    };
    let inner = Flow {
        src,
        dst: addr,
        dport: target.port.map_or(flow.dport, Port::One),
        ..*flow
    };
    // The node receives the packet at the target's address and port (an
    // instance target: the node's own address, as the cluster knows it).
    u.entry = Some(Packet {
        src,
        dst: if target.id.starts_with("i-") {
            node.ip
        } else {
            addr
        },
        dport: target.port.unwrap_or(packet.dport),
        ..*packet
    });
    let d = End {
        owner: format!("node {}, instance {}", node.name, instance.id),
        instance: instance.clone(),
        eni,
    };
    // Network ACLs apply at the subnet boundary, and to the client's packets.
    if lb_eni.subnet_id != d.eni.subnet_id || preserves_client {
        let acl_list = acls(cloud, u, &d.eni.vpc_id);
        if let Some(a) = acl_for(u, &acl_list, !acl_list.is_empty(), &d) {
            check_acl(u, a, &d.eni.subnet_id, false, &inner, true);
            check_acl(u, a, &d.eni.subnet_id, true, &inner.reversed(), false);
        }
    }
    if let Some(all) = fetch_groups(cloud, u, &[&d]) {
        sg_check(cloud, u, &d, &all, Direction::Ingress, &inner, Some(lb_eni));
    }
}

/// Fetch everything the checks of `nodes` may ask, with the very requests
/// the checks make (so a recording answers them offline): each node's
/// instance, the security groups of its ENIs and the prefix lists they name,
/// and for each VPC its network ACLs, route tables (with the NAT gateways and
/// prefix lists they name) and internet gateways. Returns the warnings.
pub fn prefetch(cloud: &dyn Cloud, nodes: &[Node]) -> Vec<Suspicion> {
    let mut u = Underlay::default();
    let mut vpcs: Vec<String> = vec![];
    let mut groups: Vec<String> = vec![];
    for node in nodes {
        let Some(instance) = instance_of(cloud, &mut u, node) else {
            continue;
        };
        for eni in &instance.interfaces {
            if !vpcs.contains(&eni.vpc_id) {
                vpcs.push(eni.vpc_id.clone());
            }
            for g in &eni.groups {
                if !groups.contains(g) {
                    groups.push(g.clone());
                }
            }
        }
    }
    let mut lists: Vec<String> = vec![];
    for id in &groups {
        match cloud.security_group(id) {
            Ok(Some(g)) => {
                for rule in g.ingress.iter().chain(&g.egress) {
                    lists.extend(rule.prefix_lists.iter().cloned());
                }
            }
            Ok(None) => {}
            Err(e) => push(&mut u, cannot_check(&format!("security group {id}"), &e)),
        }
    }
    let mut nats: Vec<String> = vec![];
    for vpc in &vpcs {
        acls(cloud, &mut u, vpc);
        for t in tables(cloud, &mut u, vpc) {
            for r in &t.routes {
                if let crate::ec2::RouteDestination::PrefixList(pl) = &r.destination {
                    lists.push(pl.clone());
                }
                if let Some(n) = &r.nat_gateway_id {
                    nats.push(n.clone());
                }
            }
        }
        if let Err(e) = cloud.internet_gateways(vpc) {
            push(
                &mut u,
                cannot_check(&format!("the internet gateways of {vpc}"), &e),
            );
        }
    }
    lists.sort();
    lists.dedup();
    for pl in &lists {
        if let Err(e) = cloud.prefix_list(pl) {
            push(&mut u, cannot_check(&format!("prefix list {pl}"), &e));
        }
    }
    nats.sort();
    nats.dedup();
    for n in &nats {
        if let Err(e) = cloud.nat_gateway(n) {
            push(&mut u, cannot_check(&format!("NAT gateway {n}"), &e));
        }
    }
    // Load balancers of the nodes' VPCs. Their errors are recorded like the
    // answers; the checks that need them report them.
    if cloud.load_balancer_interfaces().is_ok()
        && let Ok(lbs) = cloud.load_balancers()
    {
        for lb in lbs.iter().filter(|b| vpcs.contains(&b.vpc_id)) {
            let Ok(listeners) = cloud.listeners(&lb.arn) else {
                continue;
            };
            let mut tgs: Vec<&String> = listeners.iter().flat_map(|l| &l.target_groups).collect();
            tgs.sort();
            tgs.dedup();
            for tg in tgs {
                let _ = cloud.target_health(tg);
            }
        }
    }
    u.suspicions
}

#[cfg(test)]
mod tests;
