//! Typed Alibaba Cloud resources, parsed leniently from the JSON answers of
//! ECS 2014-05-26, VPC 2016-04-28 and SLB 2014-05-15 (numbers may arrive as
//! strings, lists are wrapped in an object named after the element, and
//! anything missing is empty rather than an error).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::Value;

// ---- JSON helpers -------------------------------------------------------

/// A string field (numbers and booleans as text); empty when absent.
pub fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// An integer field, from a number or a numeric string.
pub fn int(v: &Value, key: &str) -> Option<i64> {
    match v.get(key) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean field, from a boolean or `"true"`/`"false"`.
pub fn boolean(v: &Value, key: &str) -> Option<bool> {
    match v.get(key) {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The elements of `{"Outer":{"Inner":[...]}}` (or a bare `{"Outer":[...]}`,
/// or a single object where a list was expected).
pub fn list<'a>(v: &'a Value, outer: &str, inner: &str) -> Vec<&'a Value> {
    let Some(o) = v.get(outer) else {
        return vec![];
    };
    let items = match o {
        Value::Array(_) => o,
        Value::Object(_) => match o.get(inner) {
            Some(i) => i,
            None => return vec![],
        },
        _ => return vec![],
    };
    match items {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![items],
        _ => vec![],
    }
}

/// The strings of `{"Outer":{"Inner":["a","b"]}}` (or a comma list).
pub fn strings(v: &Value, outer: &str, inner: &str) -> Vec<String> {
    let mut out = vec![];
    for item in list(v, outer, inner) {
        match item {
            Value::String(s) => out.extend(
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            Value::Number(n) => out.push(n.to_string()),
            _ => {}
        }
    }
    // `{"Outer":{"Inner":"a"}}`
    if out.is_empty()
        && let Some(Value::String(s)) = v.get(outer).and_then(|o| o.get(inner))
    {
        out.extend(
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
    out
}

fn ips(values: &[String]) -> Vec<Ipv4Addr> {
    values.iter().filter_map(|s| s.parse().ok()).collect()
}

fn ip(v: &Value, key: &str) -> Option<Ipv4Addr> {
    text(v, key).parse().ok()
}

/// An IPv4 CIDR or address (a bare address is a /32).
pub fn cidr(s: &str) -> Option<Ipv4Net> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    s.parse::<Ipv4Net>()
        .ok()
        .or_else(|| s.parse::<Ipv4Addr>().ok().map(Ipv4Net::from))
}

/// `TotalCount` of a paged answer.
pub fn total_count(v: &Value) -> Option<usize> {
    int(v, "TotalCount").and_then(|n| usize::try_from(n).ok())
}

// ---- ECS ------------------------------------------------------------------

/// An ENI as DescribeInstances lists it, or as DescribeNetworkInterfaces
/// describes it (then with its own security groups and public IPs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Eni {
    pub id: String,
    /// `Primary` or `Secondary`.
    pub kind: String,
    pub instance_id: String,
    pub vswitch_id: String,
    pub vpc_id: String,
    pub primary_ip: Option<Ipv4Addr>,
    pub ips: Vec<Ipv4Addr>,
    pub security_groups: Vec<String>,
    /// (private address, its public address).
    pub public_ips: Vec<(Option<Ipv4Addr>, Ipv4Addr)>,
}

impl Eni {
    pub fn is_primary(&self) -> bool {
        self.kind.eq_ignore_ascii_case("primary")
    }

    pub fn owns(&self, addr: Ipv4Addr) -> bool {
        self.primary_ip == Some(addr) || self.ips.contains(&addr)
    }

    /// The public address bound to `addr` (or to the whole ENI).
    pub fn public_ip_of(&self, addr: Ipv4Addr) -> Option<Ipv4Addr> {
        self.public_ips
            .iter()
            .find(|(p, _)| *p == Some(addr))
            .or_else(|| {
                self.public_ips
                    .iter()
                    .find(|(p, _)| p.is_none() || *p == self.primary_ip)
                    .filter(|_| self.primary_ip == Some(addr))
            })
            .map(|(_, public)| *public)
    }
}

/// An ECS instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub status: String,
    pub vpc_id: String,
    pub vswitch_id: String,
    pub private_ips: Vec<Ipv4Addr>,
    pub security_groups: Vec<String>,
    /// A public IP assigned at creation.
    pub public_ips: Vec<Ipv4Addr>,
    /// An EIP bound to the instance.
    pub eip: Option<Ipv4Addr>,
    pub enis: Vec<Eni>,
}

impl Instance {
    /// Whether `addr` is one of the instance's private addresses.
    pub fn owns(&self, addr: Ipv4Addr) -> bool {
        self.private_ips.contains(&addr) || self.enis.iter().any(|e| e.owns(addr))
    }

    /// Every private address.
    pub fn addresses(&self) -> Vec<Ipv4Addr> {
        let mut v = self.private_ips.clone();
        for e in &self.enis {
            v.extend(e.primary_ip);
            v.extend(e.ips.iter().copied());
        }
        v.sort();
        v.dedup();
        v
    }

    /// The ENI owning `addr`, if listed.
    pub fn eni_owning(&self, addr: Ipv4Addr) -> Option<&Eni> {
        self.enis.iter().find(|e| e.owns(addr))
    }

    /// The instance's own public address: a public IP or an EIP.
    pub fn public_ip(&self) -> Option<Ipv4Addr> {
        self.eip.or_else(|| self.public_ips.first().copied())
    }
}

pub fn parse_instances(v: &Value) -> Vec<Instance> {
    list(v, "Instances", "Instance")
        .into_iter()
        .map(|i| {
            let vpc = i.get("VpcAttributes").cloned().unwrap_or(Value::Null);
            let mut private_ips = ips(&strings(&vpc, "PrivateIpAddress", "IpAddress"));
            private_ips.extend(ips(&strings(i, "InnerIpAddress", "IpAddress")));
            let vpc_id = text(&vpc, "VpcId");
            let vswitch_id = text(&vpc, "VSwitchId");
            let id = text(i, "InstanceId");
            let security_groups = strings(i, "SecurityGroupIds", "SecurityGroupId");
            let enis = list(i, "NetworkInterfaces", "NetworkInterface")
                .into_iter()
                .map(|n| {
                    let mut addrs: Vec<Ipv4Addr> = list(n, "PrivateIpSets", "PrivateIpSet")
                        .into_iter()
                        .filter_map(|p| ip(p, "PrivateIpAddress"))
                        .collect();
                    let primary_ip = ip(n, "PrimaryIpAddress");
                    addrs.extend(primary_ip);
                    addrs.sort();
                    addrs.dedup();
                    Eni {
                        id: text(n, "NetworkInterfaceId"),
                        kind: text(n, "Type"),
                        instance_id: id.clone(),
                        vswitch_id: String::new(),
                        vpc_id: vpc_id.clone(),
                        primary_ip,
                        ips: addrs,
                        security_groups: vec![],
                        public_ips: vec![],
                    }
                })
                .collect();
            let eip = i.get("EipAddress").and_then(|e| ip(e, "IpAddress"));
            Instance {
                id,
                name: text(i, "InstanceName"),
                status: text(i, "Status"),
                vpc_id,
                vswitch_id,
                private_ips,
                security_groups,
                public_ips: ips(&strings(i, "PublicIpAddress", "IpAddress")),
                eip,
                enis,
            }
        })
        .collect()
}

pub fn parse_network_interfaces(v: &Value) -> Vec<Eni> {
    list(v, "NetworkInterfaceSets", "NetworkInterfaceSet")
        .into_iter()
        .map(|n| {
            let primary_ip = ip(n, "PrivateIpAddress");
            let mut addrs = vec![];
            let mut public_ips = vec![];
            for p in list(n, "PrivateIpSets", "PrivateIpSet") {
                let a = ip(p, "PrivateIpAddress");
                addrs.extend(a);
                if let Some(public) = p
                    .get("AssociatedPublicIp")
                    .and_then(|x| ip(x, "PublicIpAddress"))
                {
                    public_ips.push((a, public));
                }
            }
            if let Some(public) = n
                .get("AssociatedPublicIp")
                .and_then(|x| ip(x, "PublicIpAddress"))
                && !public_ips.iter().any(|(_, p)| *p == public)
            {
                public_ips.push((primary_ip, public));
            }
            addrs.extend(primary_ip);
            addrs.sort();
            addrs.dedup();
            let instance_id = match text(n, "InstanceId") {
                s if s.is_empty() => n
                    .get("Attachment")
                    .map(|a| text(a, "InstanceId"))
                    .unwrap_or_default(),
                s => s,
            };
            Eni {
                id: text(n, "NetworkInterfaceId"),
                kind: text(n, "Type"),
                instance_id,
                vswitch_id: text(n, "VSwitchId"),
                vpc_id: text(n, "VpcId"),
                primary_ip,
                ips: addrs,
                security_groups: strings(n, "SecurityGroupIds", "SecurityGroupId"),
                public_ips,
            }
        })
        .collect()
}

/// A security group's kind, which sets its default verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupKind {
    /// Basic ("normal"): outbound allowed, inbound from members of the group
    /// allowed (its internal access policy), the rest dropped.
    #[default]
    Normal,
    /// Enterprise (advanced): everything that no rule allows is dropped.
    Enterprise,
}

/// The IP protocol a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleProtocol {
    All,
    Number(u8),
}

pub use skoop_sdk::underlay::{GRE, ICMP, IPIP, SCTP, TCP, UDP, has_ports, protocol_name};

impl RuleProtocol {
    /// `TCP`, `udp`, `ICMP`, `GRE`, `ALL`, or an IANA number.
    pub fn parse(s: &str) -> Option<RuleProtocol> {
        let s = s.trim();
        Some(match s.to_ascii_lowercase().as_str() {
            "all" | "-1" | "" => RuleProtocol::All,
            "tcp" => RuleProtocol::Number(TCP),
            "udp" => RuleProtocol::Number(UDP),
            "icmp" => RuleProtocol::Number(ICMP),
            "gre" => RuleProtocol::Number(GRE),
            "sctp" => RuleProtocol::Number(SCTP),
            "icmpv6" => return None,
            other => RuleProtocol::Number(other.parse().ok()?),
        })
    }

    pub fn covers(self, protocol: u8) -> bool {
        match self {
            RuleProtocol::All => true,
            RuleProtocol::Number(n) => n == protocol,
        }
    }

    pub fn name(self) -> String {
        match self {
            RuleProtocol::All => "all".into(),
            RuleProtocol::Number(n) => protocol_name(n),
        }
    }
}

/// `80/80`, `1/65535`, `-1/-1` (all): None for all.
pub fn port_range(s: &str) -> Option<(u16, u16)> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (a, b) = s.split_once('/').unwrap_or((s, s));
    let a: i64 = a.trim().parse().ok()?;
    let b: i64 = b.trim().parse().ok()?;
    if a < 0 || b < 0 {
        return None;
    }
    let lo = u16::try_from(a).ok()?;
    let hi = u16::try_from(b.max(a)).ok()?;
    Some((lo, hi))
}

/// One security group rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `SecurityGroupRuleId`, else a description of the rule.
    pub id: String,
    pub ingress: bool,
    /// None: an IPv6-only or unknown protocol, never matches IPv4.
    pub protocol: Option<RuleProtocol>,
    /// Destination ports; None: all.
    pub ports: Option<(u16, u16)>,
    /// Source ports; None: all.
    pub source_ports: Option<(u16, u16)>,
    pub accept: bool,
    /// 1-100, lower first.
    pub priority: u32,
    pub source_cidr: Option<Ipv4Net>,
    pub dest_cidr: Option<Ipv4Net>,
    pub source_group: Option<String>,
    pub dest_group: Option<String>,
    pub source_prefix_list: Option<String>,
    pub dest_prefix_list: Option<String>,
    /// The rule names an IPv6 peer only.
    pub ipv6_only: bool,
}

fn nonempty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl Rule {
    /// The peer the rule names: the source of an inbound rule, the
    /// destination of an outbound one.
    pub fn peer_cidr(&self) -> Option<Ipv4Net> {
        if self.ingress {
            self.source_cidr
        } else {
            self.dest_cidr
        }
    }

    pub fn peer_group(&self) -> Option<&str> {
        if self.ingress {
            self.source_group.as_deref()
        } else {
            self.dest_group.as_deref()
        }
    }

    pub fn peer_prefix_list(&self) -> Option<&str> {
        if self.ingress {
            self.source_prefix_list.as_deref()
        } else {
            self.dest_prefix_list.as_deref()
        }
    }

    /// The local end the rule names, if any: the destination of an inbound
    /// rule, the source of an outbound one.
    pub fn local_cidr(&self) -> Option<Ipv4Net> {
        if self.ingress {
            self.dest_cidr
        } else {
            self.source_cidr
        }
    }

    /// `accept tcp 8080/8080 from 10.0.0.0/8`, `drop udp 8472/8472 to sg-x`.
    pub fn describe(&self) -> String {
        let policy = if self.accept { "accept" } else { "drop" };
        let proto = self
            .protocol
            .map(|p| p.name())
            .unwrap_or_else(|| "ipv6".into());
        let ports = match self.ports {
            Some((a, b)) => format!(" {a}/{b}"),
            None => String::new(),
        };
        let dir = if self.ingress { "from" } else { "to" };
        let peer = self
            .peer_cidr()
            .map(|c| c.to_string())
            .or_else(|| self.peer_group().map(str::to_string))
            .or_else(|| self.peer_prefix_list().map(str::to_string))
            .unwrap_or_else(|| "an IPv6 range".into());
        format!("{policy} {proto}{ports} {dir} {peer}")
    }
}

/// A security group with its rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityGroup {
    pub id: String,
    pub kind: GroupKind,
    /// Members of a basic group reach each other (`InnerAccessPolicy` Accept).
    pub inner_accept: bool,
    pub vpc_id: String,
    pub rules: Vec<Rule>,
}

/// (id, kind) of DescribeSecurityGroups.
pub fn parse_security_groups(v: &Value) -> Vec<(String, GroupKind, String)> {
    list(v, "SecurityGroups", "SecurityGroup")
        .into_iter()
        .map(|g| {
            let kind = if text(g, "SecurityGroupType").eq_ignore_ascii_case("enterprise") {
                GroupKind::Enterprise
            } else {
                GroupKind::Normal
            };
            (text(g, "SecurityGroupId"), kind, text(g, "VpcId"))
        })
        .collect()
}

/// DescribeSecurityGroupAttribute: (InnerAccessPolicy is Accept, rules).
pub fn parse_security_group_attribute(v: &Value) -> (bool, Vec<Rule>) {
    let inner = !text(v, "InnerAccessPolicy").eq_ignore_ascii_case("drop");
    let rules = list(v, "Permissions", "Permission")
        .into_iter()
        .enumerate()
        .map(|(n, p)| {
            let ingress = !text(p, "Direction").eq_ignore_ascii_case("egress");
            let source_cidr = cidr(&text(p, "SourceCidrIp"));
            let dest_cidr = cidr(&text(p, "DestCidrIp"));
            let source_group = nonempty(text(p, "SourceGroupId"));
            let dest_group = nonempty(text(p, "DestGroupId"));
            let source_prefix_list = nonempty(text(p, "SourcePrefixListId"));
            let dest_prefix_list = nonempty(text(p, "DestPrefixListId"));
            let v6 = |k: &str| !text(p, k).is_empty();
            let ipv6_only = if ingress {
                v6("Ipv6SourceCidrIp")
                    && source_cidr.is_none()
                    && source_group.is_none()
                    && source_prefix_list.is_none()
            } else {
                v6("Ipv6DestCidrIp")
                    && dest_cidr.is_none()
                    && dest_group.is_none()
                    && dest_prefix_list.is_none()
            };
            let id = match text(p, "SecurityGroupRuleId") {
                s if s.is_empty() => format!("#{}", n + 1),
                s => s,
            };
            let priority = int(p, "Priority")
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .unwrap_or(1);
            Rule {
                id,
                ingress,
                protocol: RuleProtocol::parse(&text(p, "IpProtocol")),
                ports: port_range(&text(p, "PortRange")),
                source_ports: port_range(&text(p, "SourcePortRange")),
                accept: !text(p, "Policy").eq_ignore_ascii_case("drop"),
                priority,
                source_cidr,
                dest_cidr,
                source_group,
                dest_group,
                source_prefix_list,
                dest_prefix_list,
                ipv6_only,
            }
        })
        .collect();
    (inner, rules)
}

/// DescribePrefixListAttributes: the IPv4 entries.
pub fn parse_prefix_list(v: &Value) -> Vec<Ipv4Net> {
    list(v, "Entries", "Entry")
        .into_iter()
        .filter_map(|e| cidr(&text(e, "Cidr")))
        .collect()
}

// ---- VPC ------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vpc {
    pub id: String,
    pub cidrs: Vec<Ipv4Net>,
    pub vrouter_id: String,
}

pub fn parse_vpcs(v: &Value) -> Vec<Vpc> {
    list(v, "Vpcs", "Vpc")
        .into_iter()
        .map(|x| {
            let mut cidrs: Vec<Ipv4Net> = cidr(&text(x, "CidrBlock")).into_iter().collect();
            cidrs.extend(
                strings(x, "SecondaryCidrBlocks", "SecondaryCidrBlock")
                    .iter()
                    .filter_map(|c| cidr(c)),
            );
            cidrs.extend(
                strings(x, "UserCidrs", "UserCidr")
                    .iter()
                    .filter_map(|c| cidr(c)),
            );
            Vpc {
                id: text(x, "VpcId"),
                cidrs,
                vrouter_id: text(x, "VRouterId"),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VSwitch {
    pub id: String,
    pub vpc_id: String,
    pub cidr: Option<Ipv4Net>,
    /// The route table associated with it (a custom one, or the system one).
    pub route_table_id: String,
}

pub fn parse_vswitches(v: &Value) -> Vec<VSwitch> {
    list(v, "VSwitches", "VSwitch")
        .into_iter()
        .map(|x| VSwitch {
            id: text(x, "VSwitchId"),
            vpc_id: text(x, "VpcId"),
            cidr: cidr(&text(x, "CidrBlock")),
            route_table_id: x
                .get("RouteTable")
                .map(|r| text(r, "RouteTableId"))
                .unwrap_or_default(),
        })
        .collect()
}

/// DescribeRouteTables: the id of the `System` table.
pub fn parse_system_route_table(v: &Value) -> Option<String> {
    list(v, "RouteTables", "RouteTable")
        .into_iter()
        .find(|t| text(t, "RouteTableType").eq_ignore_ascii_case("system"))
        .map(|t| text(t, "RouteTableId"))
        .filter(|s| !s.is_empty())
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NextHop {
    /// `Instance`, `NatGateway`, `local`, ...
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    pub id: String,
    pub destination: Ipv4Net,
    /// `System`, `Custom`, `BGP`, `CEN`, `ECR`.
    pub kind: String,
    pub status: String,
    pub next_hops: Vec<NextHop>,
}

impl RouteEntry {
    /// A system route inside the VPC: delivered by the vRouter itself.
    pub fn is_local(&self) -> bool {
        self.next_hops.is_empty()
            || self.next_hops.iter().all(|h| {
                h.kind.eq_ignore_ascii_case("local") || (h.kind.is_empty() && h.id.is_empty())
            })
    }

    /// `rte-x (10.244.1.0/24 -> Instance i-abc)`.
    pub fn describe(&self) -> String {
        let hops: Vec<String> = self
            .next_hops
            .iter()
            .map(|h| {
                if h.id.is_empty() {
                    h.kind.clone()
                } else {
                    format!("{} {}", h.kind, h.id)
                }
            })
            .collect();
        let target = if self.is_local() {
            "local".to_string()
        } else {
            hops.join(", ")
        };
        if self.id.is_empty() {
            format!("{} -> {target}", self.destination)
        } else {
            format!("{} ({} -> {target})", self.id, self.destination)
        }
    }
}

pub fn parse_route_entries(v: &Value) -> Vec<RouteEntry> {
    list(v, "RouteEntrys", "RouteEntry")
        .into_iter()
        .filter_map(|e| {
            let destination = cidr(&text(e, "DestinationCidrBlock"))?;
            let mut next_hops: Vec<NextHop> = list(e, "NextHops", "NextHop")
                .into_iter()
                .map(|h| NextHop {
                    kind: text(h, "NextHopType"),
                    id: text(h, "NextHopId"),
                })
                .filter(|h| !(h.kind.is_empty() && h.id.is_empty()))
                .collect();
            // DescribeRouteTables' flat form.
            if next_hops.is_empty() {
                let kind = text(e, "NextHopType");
                let id = text(e, "InstanceId");
                if !kind.is_empty() || !id.is_empty() {
                    next_hops.push(NextHop { kind, id });
                }
            }
            Some(RouteEntry {
                id: text(e, "RouteEntryId"),
                destination,
                kind: text(e, "Type"),
                status: text(e, "Status"),
                next_hops,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatGateway {
    pub id: String,
    pub status: String,
    /// `internet` or `intranet` (a VPC NAT gateway reaches no Internet).
    pub network_type: String,
    pub snat_table_ids: Vec<String>,
}

pub fn parse_nat_gateways(v: &Value) -> Vec<NatGateway> {
    list(v, "NatGateways", "NatGateway")
        .into_iter()
        .map(|g| NatGateway {
            id: text(g, "NatGatewayId"),
            status: text(g, "Status"),
            network_type: text(g, "NetworkType"),
            snat_table_ids: strings(g, "SnatTableIds", "SnatTableId"),
        })
        .collect()
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnatEntry {
    pub id: String,
    pub table_id: String,
    pub source_cidr: Option<Ipv4Net>,
    pub source_vswitch: String,
    pub eni: String,
    pub snat_ip: String,
    pub status: String,
}

impl SnatEntry {
    /// `snat-x (source 192.168.0.0/24 -> 47.1.2.3)`.
    pub fn describe(&self) -> String {
        let source = match (
            &self.source_cidr,
            self.source_vswitch.as_str(),
            self.eni.as_str(),
        ) {
            (Some(c), _, _) => c.to_string(),
            (None, v, _) if !v.is_empty() => v.to_string(),
            (None, _, e) if !e.is_empty() => e.to_string(),
            _ => "?".into(),
        };
        format!("{} (source {source} -> {})", self.id, self.snat_ip)
    }
}

pub fn parse_snat_entries(v: &Value) -> Vec<SnatEntry> {
    list(v, "SnatTableEntries", "SnatTableEntry")
        .into_iter()
        .map(|e| SnatEntry {
            id: text(e, "SnatEntryId"),
            table_id: text(e, "SnatTableId"),
            source_cidr: cidr(&text(e, "SourceCIDR")),
            source_vswitch: text(e, "SourceVSwitchId"),
            eni: text(e, "NetworkInterfaceId"),
            snat_ip: text(e, "SnatIp"),
            status: text(e, "Status"),
        })
        .collect()
}

// ---- SLB (CLB) --------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadBalancer {
    pub id: String,
    pub address: String,
    /// `internet` or `intranet`.
    pub address_type: String,
    pub status: String,
}

pub fn parse_load_balancers(v: &Value) -> Vec<LoadBalancer> {
    list(v, "LoadBalancers", "LoadBalancer")
        .into_iter()
        .map(|l| LoadBalancer {
            id: text(l, "LoadBalancerId"),
            address: text(l, "Address"),
            address_type: text(l, "AddressType"),
            status: text(l, "LoadBalancerStatus"),
        })
        .collect()
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listener {
    pub port: u16,
    /// `tcp`, `udp`, `http`, `https` (lower case).
    pub protocol: String,
    pub status: String,
    /// `on` or `off`.
    pub acl_status: String,
    /// `white` or `black`.
    pub acl_type: String,
    pub acl_ids: Vec<String>,
    pub vserver_group_id: String,
    pub backend_port: Option<u16>,
}

/// DescribeLoadBalancerListeners (a bare `Listeners` list).
pub fn parse_listeners(v: &Value) -> Vec<Listener> {
    list(v, "Listeners", "Listener")
        .into_iter()
        .map(|l| {
            let mut acl_ids = strings(l, "AclIds", "AclId");
            if let Some(Value::Array(a)) = l.get("AclIds") {
                acl_ids = a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect();
            }
            let single = text(l, "AclId");
            if !single.is_empty() && !acl_ids.contains(&single) {
                acl_ids.insert(0, single);
            }
            Listener {
                port: int(l, "ListenerPort")
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0),
                protocol: text(l, "ListenerProtocol").to_ascii_lowercase(),
                status: text(l, "Status"),
                acl_status: text(l, "AclStatus"),
                acl_type: text(l, "AclType"),
                acl_ids,
                vserver_group_id: text(l, "VServerGroupId"),
                backend_port: int(l, "BackendServerPort").and_then(|p| u16::try_from(p).ok()),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    pub id: String,
    pub entries: Vec<Ipv4Net>,
}

/// DescribeAccessControlListAttribute.
pub fn parse_acl(v: &Value) -> Acl {
    Acl {
        id: text(v, "AclId"),
        entries: list(v, "AclEntrys", "AclEntry")
            .into_iter()
            .filter_map(|e| cidr(&text(e, "AclEntryIP")))
            .collect(),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backend {
    /// The ECS instance or ENI id.
    pub server_id: String,
    pub server_ip: Option<Ipv4Addr>,
    pub port: u16,
    /// `ecs`, `eni`, `eci`.
    pub kind: String,
}

impl Backend {
    pub fn name(&self) -> String {
        match self.server_ip {
            Some(ip) if self.server_id.is_empty() => format!("{ip}:{}", self.port),
            Some(ip) => format!("{} ({ip}):{}", self.server_id, self.port),
            None => format!("{}:{}", self.server_id, self.port),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VServerGroup {
    pub id: String,
    pub backends: Vec<Backend>,
}

pub fn parse_vserver_group(v: &Value) -> VServerGroup {
    VServerGroup {
        id: text(v, "VServerGroupId"),
        backends: list(v, "BackendServers", "BackendServer")
            .into_iter()
            .map(|b| Backend {
                server_id: text(b, "ServerId"),
                server_ip: ip(b, "ServerIp"),
                port: int(b, "Port")
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0),
                kind: text(b, "Type"),
            })
            .collect(),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendHealth {
    pub server_id: String,
    pub server_ip: Option<Ipv4Addr>,
    pub port: u16,
    pub listener_port: u16,
    pub protocol: String,
    /// `normal`, `abnormal`, `unavailable` (health check off).
    pub status: String,
}

pub fn parse_health(v: &Value) -> Vec<BackendHealth> {
    list(v, "BackendServers", "BackendServer")
        .into_iter()
        .map(|b| BackendHealth {
            server_id: text(b, "ServerId"),
            server_ip: ip(b, "ServerIp"),
            port: int(b, "Port")
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0),
            listener_port: int(b, "ListenerPort")
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0),
            protocol: text(b, "Protocol").to_ascii_lowercase(),
            status: text(b, "ServerHealthStatus"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_fields() {
        let v = json!({"A": 5, "B": " x ", "C": "7", "D": "true", "L": {"I": "one"}, "M": {"I": ["a,b", "c"]}});
        assert_eq!(text(&v, "A"), "5");
        assert_eq!(text(&v, "B"), "x");
        assert_eq!(int(&v, "C"), Some(7));
        assert_eq!(boolean(&v, "D"), Some(true));
        assert_eq!(strings(&v, "L", "I"), vec!["one"]);
        assert_eq!(strings(&v, "M", "I"), vec!["a", "b", "c"]);
        assert!(list(&v, "Nope", "X").is_empty());
        assert_eq!(cidr("10.0.0.1"), Some("10.0.0.1/32".parse().unwrap()));
        assert_eq!(cidr("::/0"), None);
    }

    #[test]
    fn instances_and_enis() {
        let v: Value =
            serde_json::from_str(include_str!("testdata/DescribeInstances.json")).unwrap();
        let i = parse_instances(&v);
        assert_eq!(i.len(), 2);
        assert_eq!(i[0].id, "i-bp1node0000000000001");
        assert_eq!(i[0].vpc_id, "vpc-bp1cluster000000001");
        assert_eq!(i[0].vswitch_id, "vsw-bp1nodes0000000001");
        assert_eq!(
            i[0].private_ips,
            vec!["192.168.0.11".parse::<Ipv4Addr>().unwrap()]
        );
        assert_eq!(i[0].security_groups, vec!["sg-bp1nodes00000000001"]);
        assert_eq!(i[0].enis.len(), 1);
        assert!(i[0].enis[0].is_primary());
        assert_eq!(i[1].eip, Some("47.96.0.12".parse().unwrap()));
        assert_eq!(i[1].public_ip(), Some("47.96.0.12".parse().unwrap()));
        assert!(i[1].owns("192.168.0.12".parse().unwrap()));

        let v: Value =
            serde_json::from_str(include_str!("testdata/DescribeNetworkInterfaces.json")).unwrap();
        let e = parse_network_interfaces(&v);
        assert_eq!(e[0].security_groups, vec!["sg-bp1nodes00000000001"]);
        assert_eq!(e[0].vswitch_id, "vsw-bp1nodes0000000001");
        assert_eq!(
            e[1].public_ip_of("192.168.0.21".parse().unwrap()),
            Some("47.96.0.21".parse().unwrap())
        );
        assert_eq!(e[1].public_ip_of("192.168.0.22".parse().unwrap()), None);
    }

    #[test]
    fn security_group_rules() {
        let v: Value =
            serde_json::from_str(include_str!("testdata/DescribeSecurityGroupAttribute.json"))
                .unwrap();
        let (inner, rules) = parse_security_group_attribute(&v);
        assert!(inner);
        assert_eq!(rules.len(), 4);
        assert_eq!(rules[0].priority, 1);
        assert!(!rules[0].accept);
        assert_eq!(rules[0].protocol, Some(RuleProtocol::Number(UDP)));
        assert_eq!(rules[0].ports, Some((8472, 8472)));
        assert_eq!(
            rules[0].describe(),
            "drop udp 8472/8472 from 192.168.0.0/16"
        );
        assert_eq!(
            rules[1].priority, 2,
            "priority arrives as a string or a number"
        );
        assert_eq!(
            rules[1].source_group.as_deref(),
            Some("sg-bp1other000000000001")
        );
        assert_eq!(rules[1].ports, None);
        assert_eq!(rules[2].protocol, Some(RuleProtocol::Number(GRE)));
        assert!(!rules[3].ingress);
        assert!(rules[3].ipv6_only);
        assert_eq!(RuleProtocol::parse("4"), Some(RuleProtocol::Number(IPIP)));
        assert_eq!(RuleProtocol::parse("ICMPv6"), None);
        assert_eq!(port_range("-1/-1"), None);
        assert_eq!(port_range("1/65535"), Some((1, 65535)));
    }

    #[test]
    fn routes_nat_and_slb() {
        let v: Value =
            serde_json::from_str(include_str!("testdata/DescribeRouteEntryList.json")).unwrap();
        let r = parse_route_entries(&v);
        assert_eq!(r.len(), 3);
        assert!(r[0].is_local());
        assert!(!r[1].is_local());
        assert_eq!(
            r[1].describe(),
            "rte-bp1pods00000000001 (10.244.1.0/24 -> Instance i-bp1node0000000000002)"
        );
        let v = json!({"NatGateways": {"NatGateway": [{"NatGatewayId": "ngw-1", "Status": "Available", "NetworkType": "internet", "SnatTableIds": {"SnatTableId": ["stb-1"]}}]}});
        assert_eq!(parse_nat_gateways(&v)[0].snat_table_ids, vec!["stb-1"]);
        let v = json!({"SnatTableEntries": {"SnatTableEntry": [{"SnatEntryId": "snat-1", "SourceCIDR": "192.168.0.0/24", "SnatIp": "47.1.1.1", "Status": "Available"}]}});
        assert_eq!(
            parse_snat_entries(&v)[0].describe(),
            "snat-1 (source 192.168.0.0/24 -> 47.1.1.1)"
        );
        let v = json!({"Listeners": [{"ListenerPort": "80", "ListenerProtocol": "TCP", "Status": "running", "AclStatus": "on", "AclType": "white", "AclIds": ["acl-1"], "VServerGroupId": "rsp-1"}]});
        let l = parse_listeners(&v);
        assert_eq!(
            (l[0].port, l[0].protocol.as_str(), l[0].acl_ids.clone()),
            (80, "tcp", vec!["acl-1".to_string()])
        );
        let v = json!({"AclId": "acl-1", "AclEntrys": {"AclEntry": [{"AclEntryIP": "1.2.3.0/24"}, {"AclEntryIP": "5.6.7.8"}]}});
        assert_eq!(parse_acl(&v).entries.len(), 2);
    }
}
