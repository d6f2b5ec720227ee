//! The Alibaba Cloud (Aliyun) cloud provider: checks the security groups,
//! VPC route tables, NAT gateway SNAT entries and CLB load balancers a
//! packet passes between the nodes of a cluster and to the outside, over the
//! ECS, VPC and SLB RPC APIs (ACS3-HMAC-SHA256 signed, from the guest).
//!
//! The checks are KubeSkoop's (`pkg/skoop/infra/aliyun`) with its bugs fixed:
//! security groups are evaluated whether or not the nodes share one, rules
//! by group id match the group's members, both CIDRs of a rule must match,
//! ICMP, GRE and protocol numbers match, rules are ordered by priority and
//! then drop first, basic and enterprise groups have their own defaults,
//! overlays are checked on their outer packet, routes by longest prefix,
//! SNAT entries by any covering source, EIPs on the instance or its ENI, UDP
//! listeners and `externalTrafficPolicy: Cluster` backends.

pub mod checks;
pub mod client;
pub mod cloud;
pub mod model;
pub mod path;
pub mod sign;
pub mod slb;

use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::rc::Rc;

use serde_json::Value;
use skoop_sdk::host::cluster;
use skoop_sdk::meta::{StaticConfigKey, StaticCredentialsFile, StaticMetadata};
use skoop_sdk::{
    CloudProvider, Error, Metadata, NetworkPlan, Node, Packet, Result, Settings, Suspicion,
    Underlay, export_cloud_provider,
};

use crate::client::{Client, HttpRequest, HttpResponse, Transport, TransportError};
use crate::cloud::{Aliyun, region_of};
use crate::path::LbService;
use crate::sign::Credentials;

/// The config keys.
pub const REGION: &str = "aliyun-region";
pub const ACCESS_KEY_ID: &str = "aliyun-access-key-id";
pub const ACCESS_KEY_SECRET: &str = "aliyun-access-key-secret";
pub const SECURITY_TOKEN: &str = "aliyun-security-token";
pub const PROFILE: &str = "aliyun-profile";
pub const ENDPOINT: &str = "aliyun-endpoint-url";

const fn credentials_file(key: &'static str) -> StaticCredentialsFile {
    StaticCredentialsFile {
        path: "~/.alibabacloud/credentials",
        path_env: Some("ALIBABA_CLOUD_CREDENTIALS_FILE"),
        section_key: Some(PROFILE),
        key,
    }
}

/// The provider's self-description, also written into the component's
/// metadata section.
pub const METADATA: StaticMetadata = StaticMetadata {
    name: "aliyun",
    version: env!("CARGO_PKG_VERSION"),
    description: "Alibaba Cloud: checks security groups, VPC route tables, NAT gateway SNAT entries and CLB load balancers between nodes and to and from the outside",
    config: &[
        StaticConfigKey {
            env: &["ALIBABA_CLOUD_REGION_ID"],
            ..StaticConfigKey::new(
                REGION,
                "Alibaba Cloud region of the cluster (default: the nodes' topology.kubernetes.io/region label)",
            )
        },
        StaticConfigKey {
            secret: true,
            env: &["ALIBABA_CLOUD_ACCESS_KEY_ID"],
            file: Some(credentials_file("access_key_id")),
            ..StaticConfigKey::new(
                ACCESS_KEY_ID,
                "AccessKey ID for the ECS, VPC and SLB APIs (read-only access suffices)",
            )
        },
        StaticConfigKey {
            secret: true,
            env: &["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
            file: Some(credentials_file("access_key_secret")),
            ..StaticConfigKey::new(ACCESS_KEY_SECRET, "AccessKey secret")
        },
        StaticConfigKey {
            secret: true,
            env: &["ALIBABA_CLOUD_SECURITY_TOKEN"],
            ..StaticConfigKey::new(
                SECURITY_TOKEN,
                "STS security token, with temporary AccessKeys",
            )
        },
        StaticConfigKey {
            env: &["ALIBABA_CLOUD_PROFILE"],
            ..StaticConfigKey::new(
                PROFILE,
                "profile (section) of ~/.alibabacloud/credentials to read the AccessKey from (default: \"default\")",
            )
        },
        StaticConfigKey::new(
            ENDPOINT,
            "one endpoint URL for the ECS, VPC and SLB APIs (tests, private endpoints)",
        ),
    ],
    reads: &["v1/Service", "discovery.k8s.io/v1/EndpointSlice"],
    http_hosts: &["*.aliyuncs.com"],
    ..StaticMetadata::EMPTY
};

/// The provider's self-description.
pub fn metadata() -> Metadata {
    METADATA.to_metadata()
}

/// The host's outbound HTTP.
pub struct Wasi;

impl Transport for Wasi {
    fn send(&self, r: &HttpRequest) -> std::result::Result<HttpResponse, TransportError> {
        let req = skoop_sdk::http::Request {
            method: r.method.clone(),
            url: r.url.clone(),
            headers: r.headers.clone(),
            body: r.body.clone(),
        };
        match skoop_sdk::http::send(&req) {
            Ok(resp) => Ok(HttpResponse {
                status: resp.status,
                body: resp.body,
            }),
            Err(Error::Unavailable(_)) => Err(TransportError::NotRecorded),
            Err(e) => Err(TransportError::Failed(e.to_string())),
        }
    }
}

fn config(key: &str) -> Option<String> {
    cluster::config(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The client settings from the config keys and the nodes.
pub fn settings_from(get: &dyn Fn(&str) -> Option<String>, nodes: &[Node]) -> client::Settings {
    let region = get(REGION)
        .or_else(|| {
            let mut sorted: Vec<&Node> = nodes.iter().collect();
            sorted.sort_by(|a, b| a.name.cmp(&b.name));
            sorted.iter().find_map(|n| region_of(n))
        })
        .unwrap_or_default();
    let credentials = match (get(ACCESS_KEY_ID), get(ACCESS_KEY_SECRET)) {
        (Some(id), Some(secret)) => Some(Credentials {
            access_key_id: id,
            access_key_secret: secret,
            security_token: get(SECURITY_TOKEN),
        }),
        _ => None,
    };
    client::Settings {
        region,
        endpoint: get(ENDPOINT),
        credentials,
    }
}

thread_local! {
    /// The cloud of this component, with every answer it got.
    static CLOUD: RefCell<Option<Rc<Aliyun<Wasi>>>> = const { RefCell::new(None) };
}

thread_local! {
    /// Whether the one set-up warning (no credentials, no region) was given.
    static WARNED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The set-up warnings once per component, not once per hop.
pub fn once(mut u: Underlay, warned: &std::cell::Cell<bool>) -> Underlay {
    let setup =
        |s: &Suspicion| s.message == checks::NO_CREDENTIALS || s.message == checks::NO_REGION;
    if warned.get() {
        u.suspicions.retain(|s| !setup(s));
    } else if u.suspicions.iter().any(setup) {
        warned.set(true);
    }
    u
}

fn once_per_component(u: Underlay) -> Underlay {
    WARNED.with(|w| once(u, w))
}

fn the_cloud() -> Rc<Aliyun<Wasi>> {
    CLOUD.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| {
                let nodes = cluster::nodes();
                let settings = settings_from(&config, &nodes);
                Rc::new(Aliyun::new(Client::new(settings, Wasi), nodes))
            })
            .clone()
    })
}

fn ip_of(v: &Value) -> Option<Ipv4Addr> {
    v.get("ip")?.as_str()?.parse().ok()
}

/// The Services of type LoadBalancer, from the objects the host lends.
pub fn lb_services(services: &[Value], slices: &[Value]) -> Vec<LbService> {
    let mut out = vec![];
    for s in services {
        let spec = &s["spec"];
        if spec["type"].as_str() != Some("LoadBalancer") {
            continue;
        }
        let ns = s["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = s["metadata"]["name"].as_str().unwrap_or_default();
        let mut ingress: Vec<Ipv4Addr> = s["status"]["loadBalancer"]["ingress"]
            .as_array()
            .map(|a| a.iter().filter_map(ip_of).collect())
            .unwrap_or_default();
        ingress.sort();
        ingress.dedup();
        let ports = spec["ports"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| {
                        let port = u16::try_from(p["port"].as_u64()?).ok()?;
                        let proto = p["protocol"].as_str().unwrap_or("TCP").to_ascii_lowercase();
                        let np = p["nodePort"].as_u64().and_then(|n| u16::try_from(n).ok());
                        Some((port, proto, np))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut endpoint_nodes: Vec<String> = slices
            .iter()
            .filter(|e| {
                e["metadata"]["namespace"].as_str().unwrap_or("default") == ns
                    && e["metadata"]["labels"]["kubernetes.io/service-name"].as_str() == Some(name)
            })
            .flat_map(|e| e["endpoints"].as_array().cloned().unwrap_or_default())
            .filter(|ep| ep["conditions"]["ready"].as_bool() != Some(false))
            .filter_map(|ep| ep["nodeName"].as_str().map(str::to_string))
            .collect();
        endpoint_nodes.sort();
        endpoint_nodes.dedup();
        out.push(LbService {
            id: format!("{ns}/{name}"),
            ingress,
            ports,
            local: spec["externalTrafficPolicy"].as_str() == Some("Local"),
            endpoint_nodes,
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn cluster_lb_services() -> Vec<LbService> {
    let services: Vec<Value> = cluster::list_objects("v1", "Service", "").unwrap_or_default();
    let slices: Vec<Value> =
        cluster::list_objects("discovery.k8s.io/v1", "EndpointSlice", "").unwrap_or_default();
    lb_services(&services, &slices)
}

struct AliyunProvider;

impl CloudProvider for AliyunProvider {
    const METADATA: Option<StaticMetadata> = Some(METADATA);

    fn create_network(settings: &Settings) -> Result<NetworkPlan> {
        if settings.network_plugin.is_empty() {
            return Err(Error::Invalid(
                "no network plugin given or detected; pass --network-plugin".into(),
            ));
        }
        Ok(NetworkPlan {
            plugin: settings.network_plugin.clone(),
            proxy_mode: settings.proxy_mode,
            infra_shim: true,
        })
    }

    fn node_to_node(src: &Node, _oif: &str, dst: &Node, packet: Packet) -> Result<Underlay> {
        Ok(once_per_component(path::node_to_node(
            &*the_cloud(),
            src,
            dst,
            &packet,
        )))
    }

    fn node_to_external(src: &Node, _oif: &str, packet: Packet) -> Result<Underlay> {
        Ok(once_per_component(path::node_to_external(
            &*the_cloud(),
            src,
            &packet,
        )))
    }

    fn external_to_node(dst: &Node, packet: Packet) -> Result<Underlay> {
        let services = cluster_lb_services();
        let service = services.iter().find(|s| s.ingress.contains(&packet.dst));
        Ok(once_per_component(path::external_to_node(
            &*the_cloud(),
            dst,
            &packet,
            service,
        )))
    }

    fn prefetch() -> Result<Vec<Suspicion>> {
        Ok(path::prefetch(&*the_cloud(), &cluster_lb_services()))
    }
}

export_cloud_provider!(AliyunProvider);

#[cfg(test)]
mod tests;
