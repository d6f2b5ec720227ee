//! Typed EC2 resources, parsed from the EC2 Query API's XML (`Version=2016-11-15`).
//!
//! Only what the underlay checks need is kept. Lists are `<item>` children of
//! `…Set` elements; IPv6 entries are skipped (skoop checks IPv4 only).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use roxmltree::Node;

use crate::xml::{self, boolean, child, cidr, ip, items, number, opt_string, string, strings};

/// One page of a Describe call and the token of the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// An IP protocol of a security group rule or network ACL entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// `-1`: every protocol.
    All,
    /// An IANA protocol number (6 tcp, 17 udp, 1 icmp, 4 ipip, 132 sctp).
    Number(u8),
}

pub use skoop_sdk::underlay::{ICMP, IPIP, SCTP, TCP, UDP, has_ports, protocol_name};

impl IpProtocol {
    /// `-1`, `all`, a name (`tcp`, `udp`, `icmp`, `icmpv6`, `sctp`) or a number.
    pub fn parse(s: &str) -> Option<IpProtocol> {
        match s.trim().to_ascii_lowercase().as_str() {
            "-1" | "all" => Some(IpProtocol::All),
            "tcp" => Some(IpProtocol::Number(TCP)),
            "udp" => Some(IpProtocol::Number(UDP)),
            "icmp" => Some(IpProtocol::Number(ICMP)),
            "icmpv6" => Some(IpProtocol::Number(58)),
            "sctp" => Some(IpProtocol::Number(SCTP)),
            n => n.parse::<u8>().ok().map(IpProtocol::Number),
        }
    }

    /// Whether the protocol number `p` is covered.
    pub fn covers(self, p: u8) -> bool {
        match self {
            IpProtocol::All => true,
            IpProtocol::Number(n) => n == p,
        }
    }

    /// `all`, `tcp`, `udp`, `icmp`, `sctp`, `ipip` or the number.
    pub fn name(self) -> String {
        match self {
            IpProtocol::All => "all traffic".into(),
            IpProtocol::Number(p) => protocol_name(p),
        }
    }
}

/// One private IPv4 address of a network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateIp {
    pub address: Ipv4Addr,
    pub primary: bool,
    /// The Elastic or public IP associated with it.
    pub public_ip: Option<Ipv4Addr>,
}

/// A network interface (ENI).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkInterface {
    pub id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub description: String,
    pub interface_type: String,
    pub status: String,
    pub private_ip: Option<Ipv4Addr>,
    /// Every private IPv4 address, the primary one first.
    pub private_ips: Vec<PrivateIp>,
    pub groups: Vec<String>,
    pub source_dest_check: bool,
    pub public_ip: Option<Ipv4Addr>,
    pub device_index: Option<u32>,
    pub instance_id: Option<String>,
    /// Addresses of prefixes delegated to the interface (`ipv4PrefixSet`, VPC CNI prefix mode).
    pub prefixes: Vec<Ipv4Net>,
}

impl NetworkInterface {
    /// Whether `addr` is one of the interface's private IPs (or in a delegated prefix).
    pub fn owns(&self, addr: Ipv4Addr) -> bool {
        self.private_ip == Some(addr)
            || self.private_ips.iter().any(|p| p.address == addr)
            || self.prefixes.iter().any(|p| p.contains(&addr))
    }

    /// The public IP associated with `addr` (one of the interface's private IPs).
    pub fn public_ip_of(&self, addr: Ipv4Addr) -> Option<Ipv4Addr> {
        self.private_ips
            .iter()
            .find(|p| p.address == addr)
            .and_then(|p| p.public_ip)
            .or(if self.private_ip == Some(addr) {
                self.public_ip
            } else {
                None
            })
    }

    /// Whether `addr` is a public IP associated with the interface.
    pub fn owns_public(&self, addr: Ipv4Addr) -> bool {
        self.public_ip == Some(addr) || self.private_ips.iter().any(|p| p.public_ip == Some(addr))
    }

    /// The private IPs, comma separated, for messages.
    pub fn addresses(&self) -> String {
        let mut v: Vec<String> = self
            .private_ips
            .iter()
            .map(|p| p.address.to_string())
            .collect();
        if v.is_empty()
            && let Some(p) = self.private_ip
        {
            v.push(p.to_string());
        }
        v.extend(self.prefixes.iter().map(|p| p.to_string()));
        v.join(", ")
    }
}

/// An EC2 instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Instance {
    pub id: String,
    pub state: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub private_ip: Option<Ipv4Addr>,
    pub public_ip: Option<Ipv4Addr>,
    pub source_dest_check: Option<bool>,
    pub groups: Vec<String>,
    pub interfaces: Vec<NetworkInterface>,
}

impl Instance {
    /// The interface that owns `addr`, if any.
    pub fn interface_owning(&self, addr: Ipv4Addr) -> Option<&NetworkInterface> {
        self.interfaces.iter().find(|i| i.owns(addr))
    }

    /// The primary interface (device index 0), else the first.
    pub fn primary_interface(&self) -> Option<&NetworkInterface> {
        self.interfaces
            .iter()
            .find(|i| i.device_index == Some(0))
            .or_else(|| self.interfaces.first())
    }
}

/// A security group rule (one `ipPermissions` item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub protocol: IpProtocol,
    /// Port range start, or ICMP type; -1 or None: all.
    pub from_port: Option<i32>,
    /// Port range end, or ICMP code; -1 or None: all.
    pub to_port: Option<i32>,
    pub cidrs: Vec<Ipv4Net>,
    pub groups: Vec<String>,
    pub prefix_lists: Vec<String>,
}

/// A security group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub vpc_id: String,
    pub ingress: Vec<Permission>,
    pub egress: Vec<Permission>,
}

/// A network ACL entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    pub rule_number: u32,
    pub protocol: IpProtocol,
    pub allow: bool,
    pub egress: bool,
    /// None for IPv6 entries, which never match.
    pub cidr: Option<Ipv4Net>,
    /// The destination port range, for TCP/UDP entries; None: all.
    pub ports: Option<(u16, u16)>,
}

/// A network ACL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkAcl {
    pub id: String,
    pub vpc_id: String,
    pub default: bool,
    pub entries: Vec<AclEntry>,
    pub subnets: Vec<String>,
}

/// Where a route sends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDestination {
    Cidr(Ipv4Net),
    PrefixList(String),
}

/// A route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: RouteDestination,
    /// `local`, `igw-…`, `vgw-…`, `vpce-…`.
    pub gateway_id: Option<String>,
    pub nat_gateway_id: Option<String>,
    pub instance_id: Option<String>,
    pub network_interface_id: Option<String>,
    pub vpc_peering_connection_id: Option<String>,
    pub transit_gateway_id: Option<String>,
    /// Any other target (egress-only IGW, local gateway, carrier gateway, core network).
    pub other_target: Option<String>,
    /// `active` or `blackhole`.
    pub state: String,
}

impl Route {
    /// The target, for messages: `local`, `igw-…`, `nat-…`, `i-…`, `eni-…`.
    pub fn target(&self) -> String {
        self.gateway_id
            .clone()
            .or_else(|| self.nat_gateway_id.clone())
            .or_else(|| self.instance_id.clone())
            .or_else(|| self.network_interface_id.clone())
            .or_else(|| self.vpc_peering_connection_id.clone())
            .or_else(|| self.transit_gateway_id.clone())
            .or_else(|| self.other_target.clone())
            .unwrap_or_else(|| "no target".into())
    }

    /// The destination, for messages.
    pub fn destination_text(&self) -> String {
        match &self.destination {
            RouteDestination::Cidr(c) => c.to_string(),
            RouteDestination::PrefixList(p) => p.clone(),
        }
    }

    /// `10.0.0.0/16 -> local`.
    pub fn text(&self) -> String {
        format!("{} -> {}", self.destination_text(), self.target())
    }

    pub fn blackhole(&self) -> bool {
        self.state == "blackhole"
    }

    pub fn is_local(&self) -> bool {
        self.gateway_id.as_deref() == Some("local")
    }

    /// The internet gateway it targets.
    pub fn internet_gateway(&self) -> Option<&str> {
        self.gateway_id.as_deref().filter(|g| g.starts_with("igw-"))
    }
}

/// A route table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteTable {
    pub id: String,
    pub vpc_id: String,
    pub routes: Vec<Route>,
    /// Subnets explicitly associated.
    pub subnets: Vec<String>,
    /// The VPC's main route table.
    pub main: bool,
}

/// A subnet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub cidr: Option<Ipv4Net>,
    pub availability_zone: String,
}

/// A VPC.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vpc {
    pub id: String,
    /// The primary CIDR block and every associated one.
    pub cidrs: Vec<Ipv4Net>,
}

impl Vpc {
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.cidrs.iter().any(|c| c.contains(&addr))
    }
}

/// A NAT gateway.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NatGateway {
    pub id: String,
    /// `pending`, `available`, `failed`, `deleting`, `deleted`.
    pub state: String,
    pub subnet_id: String,
    pub vpc_id: String,
    /// `public` or `private`.
    pub connectivity_type: String,
    pub public_ips: Vec<Ipv4Addr>,
}

/// An internet gateway.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InternetGateway {
    pub id: String,
    /// (vpc id, state) of each attachment; state `available` means attached.
    pub attachments: Vec<(String, String)>,
}

impl InternetGateway {
    pub fn attached_to(&self, vpc: &str) -> bool {
        self.attachments
            .iter()
            .any(|(v, s)| v == vpc && (s == "available" || s == "attached"))
    }
}

// ---- parsing -------------------------------------------------------------

/// The root of a Describe response, or why the document is not one.
fn response_root<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    set: &str,
) -> Result<Node<'a, 'i>, String> {
    let root = doc.root_element();
    let name = root.tag_name().name();
    if !name.ends_with("Response")
        || (child(root, set).is_none() && child(root, "Errors").is_some())
    {
        return Err(format!("unexpected response <{name}>"));
    }
    Ok(root)
}

fn page<T>(
    xml: &str,
    set: &str,
    each: impl Fn(Node<'_, '_>) -> Option<T>,
) -> Result<Page<T>, String> {
    let doc = xml::parse(xml)?;
    let root = response_root(&doc, set)?;
    Ok(Page {
        items: items(root, set).into_iter().filter_map(each).collect(),
        next_token: opt_string(root, "nextToken"),
    })
}

fn permissions(n: Node<'_, '_>, set: &str) -> Vec<Permission> {
    items(n, set)
        .into_iter()
        .filter_map(|p| {
            let protocol = IpProtocol::parse(xml::text(p, "ipProtocol")?)?;
            Some(Permission {
                protocol,
                from_port: number(p, "fromPort"),
                to_port: number(p, "toPort"),
                cidrs: items(p, "ipRanges")
                    .into_iter()
                    .filter_map(|r| cidr(r, "cidrIp"))
                    .collect(),
                groups: strings(p, "groups", Some("groupId")),
                prefix_lists: strings(p, "prefixListIds", Some("prefixListId")),
            })
        })
        .collect()
}

fn network_interface(n: Node<'_, '_>) -> Option<NetworkInterface> {
    let attachment = child(n, "attachment");
    let association_ip = |n: Node<'_, '_>| child(n, "association").and_then(|a| ip(a, "publicIp"));
    let private_ips: Vec<PrivateIp> = items(n, "privateIpAddressesSet")
        .into_iter()
        .filter_map(|i| {
            Some(PrivateIp {
                address: ip(i, "privateIpAddress")?,
                primary: boolean(i, "primary").unwrap_or(false),
                public_ip: association_ip(i),
            })
        })
        .collect();
    Some(NetworkInterface {
        id: opt_string(n, "networkInterfaceId")?,
        subnet_id: string(n, "subnetId"),
        vpc_id: string(n, "vpcId"),
        description: string(n, "description"),
        interface_type: string(n, "interfaceType"),
        status: string(n, "status"),
        private_ip: ip(n, "privateIpAddress"),
        private_ips,
        groups: strings(n, "groupSet", Some("groupId")),
        source_dest_check: boolean(n, "sourceDestCheck").unwrap_or(true),
        public_ip: association_ip(n),
        device_index: attachment.and_then(|a| number(a, "deviceIndex")),
        instance_id: attachment.and_then(|a| opt_string(a, "instanceId")),
        prefixes: items(n, "ipv4PrefixSet")
            .into_iter()
            .filter_map(|p| cidr(p, "ipv4Prefix"))
            .collect(),
    })
}

/// DescribeInstances: every instance of every reservation.
pub fn parse_instances(xml: &str) -> Result<Page<Instance>, String> {
    let doc = xml::parse(xml)?;
    let root = response_root(&doc, "reservationSet")?;
    let mut out = vec![];
    for r in items(root, "reservationSet") {
        for i in items(r, "instancesSet") {
            let Some(id) = opt_string(i, "instanceId") else {
                continue;
            };
            let source_dest_check = boolean(i, "sourceDestCheck");
            let mut interfaces: Vec<NetworkInterface> = items(i, "networkInterfaceSet")
                .into_iter()
                .filter_map(network_interface)
                .collect();
            for eni in &mut interfaces {
                eni.instance_id.get_or_insert_with(|| id.clone());
                // The instance attribute and its primary interface's are one setting in EC2.
                if eni.device_index == Some(0) && source_dest_check == Some(false) {
                    eni.source_dest_check = false;
                }
            }
            out.push(Instance {
                id,
                state: child(i, "instanceState")
                    .map(|s| string(s, "name"))
                    .unwrap_or_default(),
                subnet_id: string(i, "subnetId"),
                vpc_id: string(i, "vpcId"),
                availability_zone: child(i, "placement")
                    .map(|p| string(p, "availabilityZone"))
                    .unwrap_or_default(),
                private_ip: ip(i, "privateIpAddress"),
                public_ip: ip(i, "ipAddress"),
                source_dest_check,
                groups: strings(i, "groupSet", Some("groupId")),
                interfaces,
            });
        }
    }
    Ok(Page {
        items: out,
        next_token: opt_string(root, "nextToken"),
    })
}

/// DescribeNetworkInterfaces.
pub fn parse_network_interfaces(xml: &str) -> Result<Page<NetworkInterface>, String> {
    page(xml, "networkInterfaceSet", network_interface)
}

/// DescribeSecurityGroups.
pub fn parse_security_groups(xml: &str) -> Result<Page<SecurityGroup>, String> {
    page(xml, "securityGroupInfo", |g| {
        Some(SecurityGroup {
            id: opt_string(g, "groupId")?,
            name: string(g, "groupName"),
            vpc_id: string(g, "vpcId"),
            ingress: permissions(g, "ipPermissions"),
            egress: permissions(g, "ipPermissionsEgress"),
        })
    })
}

/// DescribeNetworkAcls.
pub fn parse_network_acls(xml: &str) -> Result<Page<NetworkAcl>, String> {
    page(xml, "networkAclSet", |a| {
        Some(NetworkAcl {
            id: opt_string(a, "networkAclId")?,
            vpc_id: string(a, "vpcId"),
            default: boolean(a, "default").unwrap_or(false),
            entries: items(a, "entrySet")
                .into_iter()
                .filter_map(|e| {
                    Some(AclEntry {
                        rule_number: number(e, "ruleNumber")?,
                        protocol: IpProtocol::parse(xml::text(e, "protocol")?)?,
                        allow: xml::text(e, "ruleAction")? == "allow",
                        egress: boolean(e, "egress")?,
                        cidr: cidr(e, "cidrBlock"),
                        ports: child(e, "portRange").and_then(|r| {
                            Some((number::<u16>(r, "from")?, number::<u16>(r, "to")?))
                        }),
                    })
                })
                .collect(),
            subnets: strings(a, "associationSet", Some("subnetId")),
        })
    })
}

/// DescribeRouteTables.
pub fn parse_route_tables(xml: &str) -> Result<Page<RouteTable>, String> {
    page(xml, "routeTableSet", |t| {
        let associations = items(t, "associationSet");
        Some(RouteTable {
            id: opt_string(t, "routeTableId")?,
            vpc_id: string(t, "vpcId"),
            main: associations
                .iter()
                .any(|a| boolean(*a, "main").unwrap_or(false)),
            subnets: associations
                .iter()
                .filter(|a| {
                    child(**a, "associationState")
                        .and_then(|s| xml::text(s, "state"))
                        .is_none_or(|s| s == "associated")
                })
                .filter_map(|a| opt_string(*a, "subnetId"))
                .collect(),
            routes: items(t, "routeSet")
                .into_iter()
                .filter_map(|r| {
                    let destination = match (
                        cidr(r, "destinationCidrBlock"),
                        opt_string(r, "destinationPrefixListId"),
                    ) {
                        (Some(c), _) => RouteDestination::Cidr(c),
                        (None, Some(p)) => RouteDestination::PrefixList(p),
                        // IPv6 routes.
                        (None, None) => return None,
                    };
                    Some(Route {
                        destination,
                        gateway_id: opt_string(r, "gatewayId"),
                        nat_gateway_id: opt_string(r, "natGatewayId"),
                        instance_id: opt_string(r, "instanceId"),
                        network_interface_id: opt_string(r, "networkInterfaceId"),
                        vpc_peering_connection_id: opt_string(r, "vpcPeeringConnectionId"),
                        transit_gateway_id: opt_string(r, "transitGatewayId"),
                        other_target: opt_string(r, "egressOnlyInternetGatewayId")
                            .or_else(|| opt_string(r, "localGatewayId"))
                            .or_else(|| opt_string(r, "carrierGatewayId"))
                            .or_else(|| opt_string(r, "coreNetworkArn")),
                        state: opt_string(r, "state").unwrap_or_else(|| "active".into()),
                    })
                })
                .collect(),
        })
    })
}

/// DescribeSubnets.
pub fn parse_subnets(xml: &str) -> Result<Page<Subnet>, String> {
    page(xml, "subnetSet", |s| {
        Some(Subnet {
            id: opt_string(s, "subnetId")?,
            vpc_id: string(s, "vpcId"),
            cidr: cidr(s, "cidrBlock"),
            availability_zone: string(s, "availabilityZone"),
        })
    })
}

/// DescribeVpcs.
pub fn parse_vpcs(xml: &str) -> Result<Page<Vpc>, String> {
    page(xml, "vpcSet", |v| {
        let mut cidrs: Vec<Ipv4Net> = cidr(v, "cidrBlock").into_iter().collect();
        for a in items(v, "cidrBlockAssociationSet") {
            let state = child(a, "cidrBlockState").and_then(|s| xml::text(s, "state"));
            if let Some(c) = cidr(a, "cidrBlock")
                && state.is_none_or(|s| s == "associated")
                && !cidrs.contains(&c)
            {
                cidrs.push(c);
            }
        }
        Some(Vpc {
            id: opt_string(v, "vpcId")?,
            cidrs,
        })
    })
}

/// DescribeNatGateways.
pub fn parse_nat_gateways(xml: &str) -> Result<Page<NatGateway>, String> {
    page(xml, "natGatewaySet", |g| {
        Some(NatGateway {
            id: opt_string(g, "natGatewayId")?,
            state: string(g, "state"),
            subnet_id: string(g, "subnetId"),
            vpc_id: string(g, "vpcId"),
            connectivity_type: opt_string(g, "connectivityType").unwrap_or_else(|| "public".into()),
            public_ips: items(g, "natGatewayAddressSet")
                .into_iter()
                .filter_map(|a| ip(a, "publicIp"))
                .collect(),
        })
    })
}

/// DescribeInternetGateways.
pub fn parse_internet_gateways(xml: &str) -> Result<Page<InternetGateway>, String> {
    page(xml, "internetGatewaySet", |g| {
        Some(InternetGateway {
            id: opt_string(g, "internetGatewayId")?,
            attachments: items(g, "attachmentSet")
                .into_iter()
                .map(|a| (string(a, "vpcId"), string(a, "state")))
                .collect(),
        })
    })
}

/// GetManagedPrefixListEntries: the IPv4 CIDRs.
pub fn parse_prefix_list_entries(xml: &str) -> Result<Page<Ipv4Net>, String> {
    page(xml, "entrySet", |e| cidr(e, "cidr"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn instances_from_moto() {
        let p = parse_instances(include_str!("testdata/DescribeInstances.xml")).unwrap();
        assert_eq!(p.next_token, None);
        assert_eq!(p.items.len(), 2);
        let i1 = &p.items[0];
        assert_eq!(i1.id, "i-3d4ea05055a535705");
        assert_eq!(i1.state, "running");
        assert_eq!(i1.subnet_id, "subnet-b4e7733adfa936a8b");
        assert_eq!(i1.vpc_id, "vpc-9af3739bc4b716148");
        assert_eq!(i1.availability_zone, "us-east-1a");
        assert_eq!(i1.private_ip, Some(ip("10.0.1.10")));
        assert_eq!(i1.public_ip, Some(ip("54.214.172.152")));
        assert_eq!(i1.source_dest_check, Some(true));
        assert_eq!(i1.interfaces.len(), 1);
        let e = &i1.interfaces[0];
        assert_eq!(e.id, "eni-98c4fc7a39e8f2a34");
        assert_eq!(e.groups, vec!["sg-ea315b7a0675f309a"]);
        assert_eq!(e.device_index, Some(0));
        assert!(e.source_dest_check);
        assert_eq!(e.public_ip, Some(ip("54.214.172.152")));
        assert_eq!(e.instance_id.as_deref(), Some("i-3d4ea05055a535705"));
        // The secondary private IP is kept, without a public IP.
        assert_eq!(e.private_ips.len(), 2);
        assert!(e.owns(ip("10.0.1.11")));
        assert_eq!(e.public_ip_of(ip("10.0.1.10")), Some(ip("54.214.172.152")));
        assert_eq!(e.public_ip_of(ip("10.0.1.11")), None);
        assert!(!e.owns(ip("10.0.1.12")));

        let i2 = &p.items[1];
        assert_eq!(i2.public_ip, None);
        assert_eq!(i2.groups, vec!["sg-ea315b7a0675f309a"]);
        assert_eq!(i2.interfaces.len(), 2);
        let extra = i2.interface_owning(ip("10.0.2.30")).unwrap();
        assert_eq!(extra.device_index, Some(1));
        assert!(!extra.source_dest_check);
        assert_eq!(extra.groups.len(), 2);
        assert_eq!(
            i2.primary_interface().unwrap().private_ip,
            Some(ip("10.0.2.20"))
        );
    }

    #[test]
    fn instance_source_dest_check_off_applies_to_its_primary_interface() {
        let xml = include_str!("testdata/DescribeInstancesByIp.xml").replacen(
            "</rootDeviceType><groupSet><item><groupId>sg-ea315b7a0675f309a</groupId><groupName>nodes</groupName></item></groupSet><sourceDestCheck>true",
            "</rootDeviceType><groupSet><item><groupId>sg-ea315b7a0675f309a</groupId><groupName>nodes</groupName></item></groupSet><sourceDestCheck>false",
            1,
        );
        let p = parse_instances(&xml).unwrap();
        let i = &p.items[0];
        assert_eq!(i.source_dest_check, Some(false));
        assert!(!i.primary_interface().unwrap().source_dest_check);
    }

    #[test]
    fn network_interfaces_from_moto() {
        let p = parse_network_interfaces(include_str!("testdata/DescribeNetworkInterfaces.xml"))
            .unwrap();
        assert_eq!(p.items.len(), 1);
        let e = &p.items[0];
        assert_eq!(e.description, "extra");
        assert_eq!(e.instance_id.as_deref(), Some("i-93a316ebee0ec0c2d"));
        assert_eq!(e.private_ip, Some(ip("10.0.2.30")));
        assert!(!e.source_dest_check);
        assert_eq!(e.subnet_id, "subnet-486e94440541820d9");
    }

    #[test]
    fn security_groups_from_moto() {
        let p = parse_security_groups(include_str!("testdata/DescribeSecurityGroups.xml")).unwrap();
        assert_eq!(p.items.len(), 2);
        let nodes = &p.items[0];
        assert_eq!(nodes.name, "nodes");
        assert_eq!(nodes.egress.len(), 1);
        assert_eq!(nodes.egress[0].protocol, IpProtocol::All);
        assert_eq!(nodes.egress[0].cidrs, vec![net("0.0.0.0/0")]);
        assert_eq!(nodes.ingress.len(), 6);
        assert_eq!(nodes.ingress[0].groups, vec!["sg-ea315b7a0675f309a"]);
        assert_eq!(nodes.ingress[1].protocol, IpProtocol::Number(TCP));
        assert_eq!(nodes.ingress[1].from_port, Some(22));
        assert_eq!(nodes.ingress[2].protocol, IpProtocol::Number(UDP));
        assert_eq!(nodes.ingress[2].to_port, Some(8472));
        assert_eq!(nodes.ingress[3].protocol, IpProtocol::Number(ICMP));
        assert_eq!(nodes.ingress[3].from_port, Some(-1));
        assert_eq!(nodes.ingress[4].prefix_lists, vec!["pl-c1546c89b397e0868"]);
        assert_eq!(nodes.ingress[4].groups, vec!["sg-9be3d32d5b9639a7d"]);
        assert_eq!(nodes.ingress[5].protocol, IpProtocol::Number(IPIP));
        let lb = &p.items[1];
        assert!(lb.ingress.is_empty());
        assert_eq!(lb.egress[0].protocol, IpProtocol::Number(TCP));
        assert_eq!(lb.egress[0].groups, vec!["sg-ea315b7a0675f309a"]);
    }

    #[test]
    fn network_acls_from_moto() {
        let p = parse_network_acls(include_str!("testdata/DescribeNetworkAcls.xml")).unwrap();
        assert_eq!(p.items.len(), 2);
        let d = &p.items[0];
        assert!(d.default);
        assert_eq!(d.subnets, vec!["subnet-b4e7733adfa936a8b"]);
        assert_eq!(d.entries.len(), 4);
        assert!(d.entries.iter().any(|e| e.rule_number == 32767 && !e.allow));
        let c = &p.items[1];
        assert!(!c.default);
        assert_eq!(c.subnets, vec!["subnet-486e94440541820d9"]);
        let e90 = c.entries.iter().find(|e| e.rule_number == 90).unwrap();
        assert_eq!(
            e90,
            &AclEntry {
                rule_number: 90,
                protocol: IpProtocol::Number(UDP),
                allow: false,
                egress: true,
                cidr: Some(net("10.0.1.0/24")),
                ports: Some((8472, 8472)),
            }
        );
        assert!(!c.entries.iter().any(|e| e.rule_number == 32767));
    }

    #[test]
    fn route_tables_from_moto() {
        let p = parse_route_tables(include_str!("testdata/DescribeRouteTables.xml")).unwrap();
        assert_eq!(p.items.len(), 2);
        let main = &p.items[0];
        assert!(main.main);
        assert!(main.subnets.is_empty());
        assert_eq!(main.routes.len(), 4);
        assert!(main.routes[0].is_local());
        assert_eq!(
            main.routes[2].internet_gateway(),
            Some("igw-30151cfc191d4753b")
        );
        assert_eq!(
            main.routes[3].destination,
            RouteDestination::PrefixList("pl-c1546c89b397e0868".into())
        );
        let rt = &p.items[1];
        assert!(!rt.main);
        assert_eq!(rt.subnets, vec!["subnet-486e94440541820d9"]);
        assert_eq!(
            rt.routes[2].nat_gateway_id.as_deref(),
            Some("nat-db892186fe15de1a0")
        );
        assert_eq!(
            rt.routes[3].instance_id.as_deref(),
            Some("i-3d4ea05055a535705")
        );
        assert_eq!(rt.routes[3].text(), "10.244.1.0/24 -> i-3d4ea05055a535705");
        assert_eq!(rt.routes[4].target(), "eni-737ff868171af5a2f");
        assert!(rt.routes.iter().all(|r| !r.blackhole()));
    }

    #[test]
    fn subnets_vpcs_gateways_prefix_lists_from_moto() {
        let s = parse_subnets(include_str!("testdata/DescribeSubnets.xml")).unwrap();
        assert_eq!(s.items[1].cidr, Some(net("10.0.2.0/24")));
        assert_eq!(s.items[1].availability_zone, "us-east-1b");
        let v = parse_vpcs(include_str!("testdata/DescribeVpcs.xml")).unwrap();
        assert_eq!(
            v.items[0].cidrs,
            vec![net("10.0.0.0/16"), net("10.1.0.0/16")]
        );
        assert!(v.items[0].contains(ip("10.1.2.3")));
        let n = parse_nat_gateways(include_str!("testdata/DescribeNatGateways.xml")).unwrap();
        assert_eq!(n.items[0].state, "available");
        assert_eq!(n.items[0].subnet_id, "subnet-b4e7733adfa936a8b");
        let g =
            parse_internet_gateways(include_str!("testdata/DescribeInternetGateways.xml")).unwrap();
        assert!(g.items[0].attached_to("vpc-9af3739bc4b716148"));
        assert!(!g.items[0].attached_to("vpc-other"));
        let pl =
            parse_prefix_list_entries(include_str!("testdata/GetManagedPrefixListEntries.xml"))
                .unwrap();
        assert_eq!(pl.items, vec![net("192.0.2.0/24"), net("198.51.100.0/24")]);
    }

    #[test]
    fn errors_and_foreign_documents_are_not_pages() {
        let err = include_str!("testdata/ErrorInstanceNotFound.xml");
        assert!(parse_instances(err).is_err());
        assert_eq!(
            xml::api_error(err),
            Some((
                "InvalidInstanceID.NotFound".into(),
                "The instance ID 'i-00000000000000000' does not exist".into()
            ))
        );
        // moto answers an unsigned request with S3's bucket list.
        assert!(parse_vpcs("<ListAllMyBucketsResult><Buckets/></ListAllMyBucketsResult>").is_err());
        assert!(parse_vpcs("not xml").is_err());
    }

    #[test]
    fn next_token_is_read() {
        let xml = r#"<DescribeSubnetsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15"><subnetSet/><nextToken>abc</nextToken></DescribeSubnetsResponse>"#;
        let p = parse_subnets(xml).unwrap();
        assert!(p.items.is_empty());
        assert_eq!(p.next_token.as_deref(), Some("abc"));
    }

    #[test]
    fn protocols() {
        assert_eq!(IpProtocol::parse("-1"), Some(IpProtocol::All));
        assert_eq!(IpProtocol::parse("tcp"), Some(IpProtocol::Number(6)));
        assert_eq!(IpProtocol::parse("6"), Some(IpProtocol::Number(6)));
        assert_eq!(IpProtocol::parse("132"), Some(IpProtocol::Number(132)));
        assert_eq!(IpProtocol::parse("bogus"), None);
        assert!(IpProtocol::All.covers(4));
        assert!(!IpProtocol::Number(6).covers(17));
        assert_eq!(IpProtocol::Number(4).name(), "ipip");
    }
}
