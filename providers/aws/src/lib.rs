//! The AWS cloud provider: wires the cluster's CNI plugin like the generic
//! provider, and checks the AWS underlay the nodes' packets cross — security
//! groups, network ACLs, route tables, source/destination checks, internet
//! and NAT gateways — from the EC2 API, signed in the guest with SigV4.
//!
//! Every suspicion names the resource and the rule that decided, and ends with
//! the matching AWS Reachability Analyzer explanation code.

pub mod checks;
pub mod client;
pub mod ec2;
pub mod elb;
pub mod path;
pub mod sign;
pub mod xml;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use skoop_sdk::meta::{StaticConfigKey, StaticCredentialsFile, StaticMetadata};
use skoop_sdk::{
    CloudProvider, Error, Level, NetworkPlan, Node, Packet, Result, Settings, Suspicion, Underlay,
    host, http,
};

use crate::client::{Client, Ec2, HttpRequest, HttpResponse, Transport, TransportError};
use crate::path::Cloud;
use crate::sign::Credentials;

/// Requests over the host's wasi:http, answered from the recording when replaying.
struct Wasi;

impl Transport for Wasi {
    fn send(&self, r: &HttpRequest) -> std::result::Result<HttpResponse, TransportError> {
        let request = http::Request {
            method: r.method.clone(),
            url: r.url.clone(),
            headers: r.headers.clone(),
            body: r.body.clone(),
        };
        match http::send(&request) {
            Ok(a) => Ok(HttpResponse {
                status: a.status,
                body: a.body,
            }),
            Err(Error::Unavailable(_)) => Err(TransportError::NotRecorded),
            Err(e) => Err(TransportError::Failed(e.to_string())),
        }
    }
}

thread_local! {
    /// One client per region and endpoint, kept for the component's life:
    /// every Describe answer is fetched once per diagnosis.
    static CLOUDS: RefCell<HashMap<String, Rc<Ec2<Wasi>>>> = RefCell::new(HashMap::new());
}

/// A config value, trimmed; None when unset or blank.
fn config(key: &str) -> Option<String> {
    host::cluster::config(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The client settings for checks about `node`.
pub fn settings_for(
    node: &Node,
    config: impl Fn(&str) -> Option<String>,
) -> std::result::Result<client::Settings, Suspicion> {
    let Some(region) = config("aws-region").or_else(|| path::region_of(node)) else {
        return Err(Suspicion::new(
            Level::Warning,
            format!(
                "cannot check the AWS underlay of node {}: no region; give --aws-region or set AWS_REGION",
                node.name
            ),
        ));
    };
    let credentials = match (config("aws-access-key-id"), config("aws-secret-access-key")) {
        (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
            access_key_id,
            secret_access_key,
            session_token: config("aws-session-token"),
        }),
        _ => None,
    };
    Ok(client::Settings {
        region,
        endpoint: config("aws-endpoint-url"),
        credentials,
    })
}

fn cloud_key(s: &client::Settings) -> String {
    format!("{} {}", s.region, s.endpoint.as_deref().unwrap_or_default())
}

/// Run `check` against the cloud of `node`'s region.
fn with_cloud(node: &Node, check: impl FnOnce(&dyn Cloud) -> Underlay) -> Underlay {
    let settings = match settings_for(node, config) {
        Ok(s) => s,
        Err(s) => {
            return Underlay {
                suspicions: vec![s],
                ..Underlay::default()
            };
        }
    };
    let key = cloud_key(&settings);
    let cloud = CLOUDS.with(|c| {
        c.borrow_mut()
            .entry(key)
            .or_insert_with(|| Rc::new(Ec2::new(Client::new(settings, Wasi))))
            .clone()
    });
    check(&*cloud)
}

const fn credentials_file(key: &'static str) -> StaticCredentialsFile {
    StaticCredentialsFile {
        path: "~/.aws/credentials",
        path_env: Some("AWS_SHARED_CREDENTIALS_FILE"),
        section_key: Some("aws-profile"),
        key,
    }
}

/// The provider.
pub struct Aws;

impl CloudProvider for Aws {
    const METADATA: Option<StaticMetadata> = Some(StaticMetadata {
        name: "aws",
        version: env!("CARGO_PKG_VERSION"),
        description: "AWS: checks security groups, network ACLs, route tables, source/destination checks, internet and NAT gateways and load balancers between nodes and to and from the outside (EC2 and ELBv2 APIs, read-only)",
        config: &[
            StaticConfigKey {
                env: &["AWS_REGION", "AWS_DEFAULT_REGION"],
                ..StaticConfigKey::new(
                    "aws-region",
                    "AWS region of the cluster (default: the nodes' topology.kubernetes.io/region label, else the zone of their provider ID)",
                )
            },
            StaticConfigKey {
                env: &["AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"],
                ..StaticConfigKey::new(
                    "aws-endpoint-url",
                    "EC2 and ELBv2 endpoint instead of https://ec2.<region>.amazonaws.com (a private endpoint, or a test server); requests are signed for its host",
                )
            },
            StaticConfigKey {
                env: &["AWS_PROFILE"],
                ..StaticConfigKey::new(
                    "aws-profile",
                    "Profile (section) of the shared credentials file to read the keys from (default: default)",
                )
            },
            StaticConfigKey {
                secret: true,
                env: &["AWS_ACCESS_KEY_ID"],
                file: Some(credentials_file("aws_access_key_id")),
                ..StaticConfigKey::new(
                    "aws-access-key-id",
                    "AWS access key id, allowed ec2:Describe*, ec2:GetManagedPrefixListEntries and elasticloadbalancing:Describe*",
                )
            },
            StaticConfigKey {
                secret: true,
                env: &["AWS_SECRET_ACCESS_KEY"],
                file: Some(credentials_file("aws_secret_access_key")),
                ..StaticConfigKey::new("aws-secret-access-key", "AWS secret access key")
            },
            StaticConfigKey {
                secret: true,
                env: &["AWS_SESSION_TOKEN"],
                file: Some(credentials_file("aws_session_token")),
                ..StaticConfigKey::new(
                    "aws-session-token",
                    "AWS session token of temporary credentials",
                )
            },
        ],
        http_hosts: &[
            "ec2.*.amazonaws.com",
            "elasticloadbalancing.*.amazonaws.com",
        ],
        ..StaticMetadata::EMPTY
    });

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
        Ok(with_cloud(src, |cloud| {
            path::node_to_node(cloud, src, dst, &packet)
        }))
    }

    fn node_to_external(src: &Node, _oif: &str, packet: Packet) -> Result<Underlay> {
        Ok(with_cloud(src, |cloud| {
            path::node_to_external(cloud, src, &packet)
        }))
    }

    fn external_to_node(dst: &Node, packet: Packet) -> Result<Underlay> {
        Ok(with_cloud(dst, |cloud| {
            path::external_to_node(cloud, dst, &packet)
        }))
    }

    fn prefetch() -> Result<Vec<Suspicion>> {
        // Nodes by the client (region, endpoint) their checks use.
        let mut groups: Vec<(String, Vec<Node>)> = vec![];
        let mut out: Vec<Suspicion> = vec![];
        for node in host::cluster::nodes() {
            match settings_for(&node, config) {
                Ok(s) => {
                    let key = cloud_key(&s);
                    match groups.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, nodes)) => nodes.push(node),
                        None => groups.push((key, vec![node])),
                    }
                }
                Err(s) => {
                    if !out.contains(&s) {
                        out.push(s);
                    }
                }
            }
        }
        for (_, nodes) in groups {
            let Some(first) = nodes.first() else {
                continue;
            };
            let found = with_cloud(first, |cloud| Underlay {
                suspicions: path::prefetch(cloud, &nodes),
                ..Underlay::default()
            });
            for s in found.suspicions {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        Ok(out)
    }
}

// Natively (the unit tests) the crate builds without the component's
// exports, whose names a native linker rejects.
#[cfg(target_arch = "wasm32")]
skoop_sdk::export_cloud_provider!(Aws);

#[cfg(test)]
mod tests {
    use super::*;

    fn node(provider_id: Option<&str>) -> Node {
        Node {
            name: "n1".into(),
            ip: "10.0.1.10".parse().unwrap(),
            pod_cidrs: vec![],
            ready: true,
            host_interface: None,
            annotations: vec![],
            labels: vec![],
            provider_id: provider_id.map(str::to_string),
        }
    }

    #[test]
    fn metadata_flags_start_with_aws_and_credentials_are_secret() {
        let m = Aws::metadata();
        assert_eq!(m.name, "aws");
        assert!(m.config.iter().all(|k| k.name.starts_with("aws-")));
        for k in [
            "aws-access-key-id",
            "aws-secret-access-key",
            "aws-session-token",
        ] {
            let key = m.config.iter().find(|c| c.name == k).unwrap();
            assert!(key.secret, "{k}");
            let file = key.file.as_ref().unwrap();
            assert_eq!(file.path, "~/.aws/credentials");
            assert_eq!(file.section_key.as_deref(), Some("aws-profile"));
        }
        assert!(m.http_hosts.contains(&"ec2.*.amazonaws.com".to_string()));
    }

    #[test]
    fn settings_from_config_and_the_node() {
        let given = |k: &str| match k {
            "aws-access-key-id" => Some("AKID".to_string()),
            "aws-secret-access-key" => Some("SECRET".to_string()),
            "aws-endpoint-url" => Some("http://127.0.0.1:5155".to_string()),
            _ => None,
        };
        let s = settings_for(&node(Some("aws:///eu-central-1b/i-1")), given).unwrap();
        assert_eq!(s.region, "eu-central-1");
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:5155"));
        assert_eq!(
            s.credentials.as_ref().map(|c| c.access_key_id.as_str()),
            Some("AKID")
        );
        assert_eq!(
            s.credentials.as_ref().and_then(|c| c.session_token.clone()),
            None
        );
        let s = settings_for(&node(None), |k| {
            (k == "aws-region").then(|| "ap-south-1".to_string())
        })
        .unwrap();
        assert_eq!(s.region, "ap-south-1");
        assert!(s.credentials.is_none());
        let e = settings_for(&node(None), |_| None).unwrap_err();
        assert_eq!(e.level, Level::Warning);
        assert_eq!(
            e.message,
            "cannot check the AWS underlay of node n1: no region; give --aws-region or set AWS_REGION"
        );
    }
}
