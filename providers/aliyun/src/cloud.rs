//! The facts the checks read, fetched on demand with requests that depend
//! only on the cluster, never on the flow diagnosed: the instances of every
//! node in one sorted request, then resources by id. A recording made by
//! `prefetch` therefore answers every later diagnosis of the cluster.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::rc::Rc;

use ipnet::Ipv4Net;
use skoop_sdk::Node;

use crate::client::{Client, ECS, Fetch, FetchError, SLB, Transport, VPC};
use crate::model::{
    self, Acl, BackendHealth, Eni, GroupKind, Instance, Listener, LoadBalancer, NatGateway,
    RouteEntry, SecurityGroup, SnatEntry, VServerGroup, VSwitch, Vpc,
};

/// The Alibaba Cloud facts the checks read.
pub trait Cloud {
    /// The cluster's nodes.
    fn nodes(&self) -> &[Node];
    /// The region asked.
    fn region(&self) -> &str;
    /// The instance of `node`: by its provider ID, else by its address.
    fn instance_of(&self, node: &Node) -> Fetch<Option<Instance>>;
    /// Every ENI of the cluster's instances, with its security groups and public IPs.
    fn enis(&self) -> Fetch<Vec<Eni>>;
    /// A security group with its kind and rules; None when it does not exist.
    fn security_group(&self, id: &str) -> Fetch<Option<SecurityGroup>>;
    fn prefix_list(&self, id: &str) -> Fetch<Vec<Ipv4Net>>;
    fn vpc(&self, id: &str) -> Fetch<Option<Vpc>>;
    fn vswitches(&self, vpc: &str) -> Fetch<Vec<VSwitch>>;
    fn system_route_table(&self, vrouter: &str) -> Fetch<Option<String>>;
    fn route_entries(&self, table: &str) -> Fetch<Vec<RouteEntry>>;
    fn nat_gateway(&self, id: &str) -> Fetch<Option<NatGateway>>;
    fn snat_entries(&self, table: &str) -> Fetch<Vec<SnatEntry>>;
    fn load_balancer(&self, address: Ipv4Addr) -> Fetch<Option<LoadBalancer>>;
    fn listener(&self, lb: &str, port: u16, protocol: &str) -> Fetch<Option<Listener>>;
    fn acl(&self, id: &str) -> Fetch<Acl>;
    fn vserver_group(&self, id: &str) -> Fetch<VServerGroup>;
    fn health(&self, lb: &str, port: u16, protocol: &str) -> Fetch<Vec<BackendHealth>>;
}

/// The instance id and region of a provider ID: `<region>.<instanceId>` (ACK)
/// or `alicloud://<region>.<instanceId>`.
pub fn parse_provider_id(provider_id: &str) -> Option<(&str, &str)> {
    let s = provider_id.trim();
    let s = s.strip_prefix("alicloud://").unwrap_or(s);
    let (region, id) = s.split_once('.')?;
    (!region.is_empty()
        && !region.contains('/')
        && id.starts_with("i-")
        && !id.contains(['/', '.']))
    .then_some((region, id))
}

/// The region of a node: its region label, else its provider ID's.
pub fn region_of(node: &Node) -> Option<String> {
    node.label("topology.kubernetes.io/region")
        .or_else(|| node.label("failure-domain.beta.kubernetes.io/region"))
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .or_else(|| parse_provider_id(node.provider_id.as_deref()?).map(|(r, _)| r.to_string()))
}

/// At most this many ids go in one request.
const CHUNK: usize = 100;

fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".into())
}

/// A fetch made once and kept.
type Kept<T> = RefCell<Option<Fetch<Rc<T>>>>;

/// The Cloud over the RPC client, caching what it parsed.
pub struct Aliyun<T> {
    client: Client<T>,
    nodes: Vec<Node>,
    instances: Kept<Vec<Instance>>,
    enis: Kept<Vec<Eni>>,
    kinds: Kept<HashMap<String, GroupKind>>,
}

impl<T: Transport> Aliyun<T> {
    pub fn new(client: Client<T>, mut nodes: Vec<Node>) -> Self {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Aliyun {
            client,
            nodes,
            instances: RefCell::new(None),
            enis: RefCell::new(None),
            kinds: RefCell::new(None),
        }
    }

    pub fn client(&self) -> &Client<T> {
        &self.client
    }

    /// Every instance of the cluster's nodes: by the sorted instance ids of
    /// their provider IDs, then the nodes not found by their sorted addresses.
    pub fn instances(&self) -> Fetch<Rc<Vec<Instance>>> {
        if let Some(hit) = self.instances.borrow().as_ref() {
            return hit.clone();
        }
        let answer = self.fetch_instances().map(Rc::new);
        *self.instances.borrow_mut() = Some(answer.clone());
        answer
    }

    fn fetch_instances(&self) -> Fetch<Vec<Instance>> {
        let mut ids: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|n| {
                parse_provider_id(n.provider_id.as_deref()?).map(|(_, id)| id.to_string())
            })
            .collect();
        ids.sort();
        ids.dedup();
        let mut found: Vec<Instance> = vec![];
        for chunk in ids.chunks(CHUNK) {
            let v = self.client.call(
                ECS,
                "DescribeInstances",
                &[
                    ("InstanceIds", json_list(chunk)),
                    ("PageSize", CHUNK.to_string()),
                ],
            )?;
            found.extend(model::parse_instances(&v));
        }
        let mut ips: Vec<Ipv4Addr> = self
            .nodes
            .iter()
            .filter(|n| {
                let by_id = n
                    .provider_id
                    .as_deref()
                    .and_then(parse_provider_id)
                    .is_some_and(|(_, id)| found.iter().any(|i| i.id == id));
                !by_id && !found.iter().any(|i| i.owns(n.ip))
            })
            .map(|n| n.ip)
            .collect();
        ips.sort();
        ips.dedup();
        let ips: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
        for chunk in ips.chunks(CHUNK) {
            let v = self.client.call(
                ECS,
                "DescribeInstances",
                &[
                    ("InstanceNetworkType", "vpc".into()),
                    ("PrivateIpAddresses", json_list(chunk)),
                    ("PageSize", CHUNK.to_string()),
                ],
            )?;
            for i in model::parse_instances(&v) {
                if !found.iter().any(|f| f.id == i.id) {
                    found.push(i);
                }
            }
        }
        Ok(found)
    }

    fn fetch_enis(&self) -> Fetch<Vec<Eni>> {
        let instances = self.instances()?;
        let mut ids: Vec<String> = instances
            .iter()
            .flat_map(|i| i.enis.iter().map(|e| e.id.clone()))
            .filter(|id| !id.is_empty())
            .collect();
        ids.sort();
        ids.dedup();
        let mut out = vec![];
        for chunk in ids.chunks(CHUNK) {
            let mut params: Vec<(String, String)> = chunk
                .iter()
                .enumerate()
                .map(|(n, id)| (format!("NetworkInterfaceId.{}", n + 1), id.clone()))
                .collect();
            params.push(("PageSize".into(), CHUNK.to_string()));
            let p: Vec<(&str, String)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            let v = self.client.call(ECS, "DescribeNetworkInterfaces", &p)?;
            out.extend(model::parse_network_interfaces(&v));
        }
        Ok(out)
    }

    /// The kind of every security group of the cluster's instances and
    /// ENIs, in one sorted request.
    fn kinds(&self) -> Fetch<Rc<HashMap<String, GroupKind>>> {
        if let Some(hit) = self.kinds.borrow().as_ref() {
            return hit.clone();
        }
        let answer = (|| {
            let instances = self.instances()?;
            let mut ids: Vec<String> = instances
                .iter()
                .flat_map(|i| i.security_groups.clone())
                .collect();
            // An ENI the caller cannot describe keeps the instance's groups.
            if let Ok(enis) = self.enis() {
                ids.extend(enis.iter().flat_map(|e| e.security_groups.clone()));
            }
            ids.sort();
            ids.dedup();
            let mut kinds = HashMap::new();
            for chunk in ids.chunks(CHUNK) {
                let v = self.client.call(
                    ECS,
                    "DescribeSecurityGroups",
                    &[
                        ("SecurityGroupIds", json_list(chunk)),
                        ("PageSize", CHUNK.to_string()),
                    ],
                )?;
                for (id, kind, _) in model::parse_security_groups(&v) {
                    kinds.insert(id, kind);
                }
            }
            Ok(Rc::new(kinds))
        })();
        *self.kinds.borrow_mut() = Some(answer.clone());
        answer
    }
}

fn not_found(e: &FetchError) -> bool {
    matches!(e, FetchError::Api { code, .. } if code.contains("NotFound") || code.starts_with("InvalidSecurityGroupId") || code.starts_with("InvalidLoadBalancerId") || code.contains("NotExist"))
}

impl<T: Transport> Cloud for Aliyun<T> {
    fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    fn region(&self) -> &str {
        &self.client.settings().region
    }

    fn instance_of(&self, node: &Node) -> Fetch<Option<Instance>> {
        let all = self.instances()?;
        let by_id = node
            .provider_id
            .as_deref()
            .and_then(parse_provider_id)
            .and_then(|(_, id)| all.iter().find(|i| i.id == id));
        Ok(by_id
            .or_else(|| all.iter().find(|i| i.owns(node.ip)))
            .cloned())
    }

    fn enis(&self) -> Fetch<Vec<Eni>> {
        if let Some(hit) = self.enis.borrow().as_ref() {
            return hit.clone().map(|v| (*v).clone());
        }
        let answer = self.fetch_enis().map(Rc::new);
        *self.enis.borrow_mut() = Some(answer.clone());
        answer.map(|v| (*v).clone())
    }

    fn security_group(&self, id: &str) -> Fetch<Option<SecurityGroup>> {
        let kinds = self.kinds()?;
        let Some(kind) = kinds.get(id).copied() else {
            return Ok(None);
        };
        let v = match self.client.call(
            ECS,
            "DescribeSecurityGroupAttribute",
            &[("SecurityGroupId", id.to_string())],
        ) {
            Ok(v) => v,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let (inner_accept, rules) = model::parse_security_group_attribute(&v);
        Ok(Some(SecurityGroup {
            id: id.to_string(),
            kind,
            inner_accept,
            vpc_id: model::text(&v, "VpcId"),
            rules,
        }))
    }

    fn prefix_list(&self, id: &str) -> Fetch<Vec<Ipv4Net>> {
        let v = self.client.call(
            ECS,
            "DescribePrefixListAttributes",
            &[("PrefixListId", id.to_string())],
        )?;
        Ok(model::parse_prefix_list(&v))
    }

    fn vpc(&self, id: &str) -> Fetch<Option<Vpc>> {
        let v = self
            .client
            .call(VPC, "DescribeVpcs", &[("VpcId", id.to_string())])?;
        Ok(model::parse_vpcs(&v).into_iter().find(|x| x.id == id))
    }

    fn vswitches(&self, vpc: &str) -> Fetch<Vec<VSwitch>> {
        self.client.paged(
            VPC,
            "DescribeVSwitches",
            &[("VpcId", vpc.to_string())],
            50,
            model::parse_vswitches,
        )
    }

    fn system_route_table(&self, vrouter: &str) -> Fetch<Option<String>> {
        let v = self.client.call(
            VPC,
            "DescribeRouteTables",
            &[
                ("VRouterId", vrouter.to_string()),
                ("PageSize", "50".into()),
            ],
        )?;
        Ok(model::parse_system_route_table(&v))
    }

    fn route_entries(&self, table: &str) -> Fetch<Vec<RouteEntry>> {
        self.client.tokened(
            VPC,
            "DescribeRouteEntryList",
            &[("RouteTableId", table.to_string())],
            "MaxResult",
            100,
            model::parse_route_entries,
        )
    }

    fn nat_gateway(&self, id: &str) -> Fetch<Option<NatGateway>> {
        match self.client.call(
            VPC,
            "DescribeNatGateways",
            &[("NatGatewayId", id.to_string())],
        ) {
            Ok(v) => Ok(model::parse_nat_gateways(&v)
                .into_iter()
                .find(|g| g.id == id)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn snat_entries(&self, table: &str) -> Fetch<Vec<SnatEntry>> {
        self.client.paged(
            VPC,
            "DescribeSnatTableEntries",
            &[("SnatTableId", table.to_string())],
            50,
            model::parse_snat_entries,
        )
    }

    fn load_balancer(&self, address: Ipv4Addr) -> Fetch<Option<LoadBalancer>> {
        let a = address.to_string();
        let v = self
            .client
            .call(SLB, "DescribeLoadBalancers", &[("Address", a.clone())])?;
        Ok(model::parse_load_balancers(&v)
            .into_iter()
            .find(|l| l.address == a))
    }

    fn listener(&self, lb: &str, port: u16, protocol: &str) -> Fetch<Option<Listener>> {
        let v = match self.client.call(
            SLB,
            "DescribeLoadBalancerListeners",
            &[
                ("LoadBalancerId.1", lb.to_string()),
                ("ListenerPort", port.to_string()),
                ("ListenerProtocol", protocol.to_ascii_lowercase()),
            ],
        ) {
            Ok(v) => v,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(model::parse_listeners(&v)
            .into_iter()
            .find(|l| l.port == port && l.protocol.eq_ignore_ascii_case(protocol)))
    }

    fn acl(&self, id: &str) -> Fetch<Acl> {
        let v = self.client.call(
            SLB,
            "DescribeAccessControlListAttribute",
            &[("AclId", id.to_string())],
        )?;
        let mut acl = model::parse_acl(&v);
        if acl.id.is_empty() {
            acl.id = id.to_string();
        }
        Ok(acl)
    }

    fn vserver_group(&self, id: &str) -> Fetch<VServerGroup> {
        let v = self.client.call(
            SLB,
            "DescribeVServerGroupAttribute",
            &[("VServerGroupId", id.to_string())],
        )?;
        let mut g = model::parse_vserver_group(&v);
        if g.id.is_empty() {
            g.id = id.to_string();
        }
        Ok(g)
    }

    fn health(&self, lb: &str, port: u16, protocol: &str) -> Fetch<Vec<BackendHealth>> {
        let v = self.client.call(
            SLB,
            "DescribeHealthStatus",
            &[
                ("LoadBalancerId", lb.to_string()),
                ("ListenerPort", port.to_string()),
                ("ListenerProtocol", protocol.to_ascii_lowercase()),
            ],
        )?;
        Ok(model::parse_health(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids() {
        assert_eq!(
            parse_provider_id("cn-hangzhou.i-bp1abc"),
            Some(("cn-hangzhou", "i-bp1abc"))
        );
        assert_eq!(
            parse_provider_id("alicloud://cn-beijing.i-2zeabc"),
            Some(("cn-beijing", "i-2zeabc"))
        );
        assert_eq!(parse_provider_id("aws:///us-east-1a/i-0abc"), None);
        assert_eq!(parse_provider_id("cn-hangzhou.node-1"), None);
        assert_eq!(parse_provider_id(""), None);
    }
}
