//! Typed ELBv2 resources, parsed from the Elastic Load Balancing v2 Query
//! API's XML (`Version=2015-12-01`): UpperCamel names, lists of `<member>`.

use roxmltree::Node;

use crate::ec2::Page;
use crate::xml::{self, child, items, number, opt_string, string, strings};

/// A load balancer (application, network or gateway).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadBalancer {
    pub arn: String,
    pub name: String,
    pub dns_name: String,
    /// `internet-facing` or `internal`.
    pub scheme: String,
    pub vpc_id: String,
    /// `active`, `provisioning`, `active_impaired`, `failed`.
    pub state: String,
    /// `application`, `network`, `gateway`.
    pub kind: String,
    pub security_groups: Vec<String>,
}

impl LoadBalancer {
    /// `net/web/e325e2c363c3613e`: the part of the ARN after `loadbalancer/`,
    /// also what its network interfaces' descriptions name (`ELB net/web/…`).
    pub fn id(&self) -> &str {
        self.arn
            .split_once(":loadbalancer/")
            .map_or(self.arn.as_str(), |(_, id)| id)
    }
}

/// A listener.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listener {
    pub arn: String,
    pub port: u16,
    /// `TCP`, `UDP`, `TCP_UDP`, `TLS`, `HTTP`, `HTTPS`, `GENEVE`.
    pub protocol: String,
    /// The target groups its default actions forward to.
    pub target_groups: Vec<String>,
}

/// One target of a target group and its health.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetHealth {
    /// An instance id or an IP address.
    pub id: String,
    pub port: Option<u16>,
    /// `initial`, `healthy`, `unhealthy`, `unused`, `draining`, `unavailable`.
    pub state: String,
    pub reason: String,
    pub description: String,
}

/// The `…Result` element of an ELBv2 answer.
fn result<'a, 'i>(doc: &'a roxmltree::Document<'i>) -> Result<Node<'a, 'i>, String> {
    let root = doc.root_element();
    let name = root.tag_name().name();
    let Some(r) = name.strip_suffix("Response") else {
        return Err(format!("unexpected response <{name}>"));
    };
    child(root, &format!("{r}Result")).ok_or_else(|| format!("no {r}Result in the answer"))
}

fn page<T>(
    xml: &str,
    set: &str,
    each: impl Fn(Node<'_, '_>) -> Option<T>,
) -> Result<Page<T>, String> {
    let doc = xml::parse(xml)?;
    let r = result(&doc)?;
    Ok(Page {
        items: items(r, set).into_iter().filter_map(each).collect(),
        next_token: opt_string(r, "NextMarker"),
    })
}

/// DescribeLoadBalancers.
pub fn parse_load_balancers(xml: &str) -> Result<Page<LoadBalancer>, String> {
    page(xml, "LoadBalancers", |b| {
        Some(LoadBalancer {
            arn: opt_string(b, "LoadBalancerArn")?,
            name: string(b, "LoadBalancerName"),
            dns_name: string(b, "DNSName"),
            scheme: string(b, "Scheme"),
            vpc_id: string(b, "VpcId"),
            state: child(b, "State")
                .map(|s| string(s, "Code"))
                .unwrap_or_default(),
            kind: string(b, "Type"),
            security_groups: strings(b, "SecurityGroups", None),
        })
    })
}

/// DescribeListeners.
pub fn parse_listeners(xml: &str) -> Result<Page<Listener>, String> {
    page(xml, "Listeners", |l| {
        let mut target_groups = vec![];
        for a in items(l, "DefaultActions") {
            if !xml::text(a, "Type").is_some_and(|t| t.eq_ignore_ascii_case("forward")) {
                continue;
            }
            target_groups.extend(opt_string(a, "TargetGroupArn"));
            if let Some(f) = child(a, "ForwardConfig") {
                target_groups.extend(strings(f, "TargetGroups", Some("TargetGroupArn")));
            }
        }
        target_groups.sort();
        target_groups.dedup();
        Some(Listener {
            arn: opt_string(l, "ListenerArn")?,
            port: number(l, "Port").unwrap_or(0),
            protocol: string(l, "Protocol"),
            target_groups,
        })
    })
}

/// DescribeTargetHealth.
pub fn parse_target_health(xml: &str) -> Result<Page<TargetHealth>, String> {
    page(xml, "TargetHealthDescriptions", |d| {
        let target = child(d, "Target")?;
        let health = child(d, "TargetHealth");
        Some(TargetHealth {
            id: opt_string(target, "Id")?,
            port: number(target, "Port"),
            state: health.map(|h| string(h, "State")).unwrap_or_default(),
            reason: health.map(|h| string(h, "Reason")).unwrap_or_default(),
            description: health.map(|h| string(h, "Description")).unwrap_or_default(),
        })
    })
}

/// The name of a target group from its ARN (`…:targetgroup/web-tg/1fed…`).
pub fn target_group_name(arn: &str) -> &str {
    arn.split_once(":targetgroup/")
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_balancers_from_moto() {
        let p = parse_load_balancers(include_str!("testdata/DescribeLoadBalancers.xml")).unwrap();
        assert_eq!(p.next_token, None);
        let lb = &p.items[0];
        assert_eq!(lb.name, "web");
        assert_eq!(lb.state, "active");
        assert_eq!(lb.kind, "network");
        assert_eq!(lb.scheme, "internet-facing");
        assert_eq!(lb.security_groups, vec!["sg-9be3d32d5b9639a7d"]);
        assert_eq!(lb.id(), "app/web/4bc6a2fbe1b6517c");
        let err = include_str!("testdata/ErrorLoadBalancerNotFound.xml");
        assert!(parse_load_balancers(err).is_err());
        assert_eq!(
            xml::api_error(err).map(|(c, _)| c).as_deref(),
            Some("LoadBalancerNotFound")
        );
    }

    #[test]
    fn listeners_and_target_health_from_moto() {
        let l = parse_listeners(include_str!("testdata/DescribeListeners.xml")).unwrap();
        assert_eq!(l.items[0].port, 80);
        assert_eq!(l.items[0].protocol, "TCP");
        assert_eq!(l.items[0].target_groups.len(), 1);
        assert_eq!(target_group_name(&l.items[0].target_groups[0]), "web-tg");
        let h = parse_target_health(include_str!("testdata/DescribeTargetHealth.xml")).unwrap();
        assert_eq!(h.items.len(), 2);
        assert_eq!(h.items[0].state, "healthy");
        assert_eq!(h.items[0].port, Some(30080));
        assert_eq!(h.items[1].state, "unused");
        assert_eq!(h.items[1].reason, "Target.InvalidState");
        assert_eq!(h.items[1].description, "Target is in the stopped state");
    }

    #[test]
    fn next_marker_is_read() {
        let xml = r#"<DescribeLoadBalancersResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><DescribeLoadBalancersResult><LoadBalancers/><NextMarker>m2</NextMarker></DescribeLoadBalancersResult></DescribeLoadBalancersResponse>"#;
        assert_eq!(
            parse_load_balancers(xml).unwrap().next_token.as_deref(),
            Some("m2")
        );
    }
}
