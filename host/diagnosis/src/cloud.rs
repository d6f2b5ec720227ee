//! A cloud provider's access to its cloud: live (to the hosts it declares),
//! from a bundle's recording (`DIR/cloud/<name>.json`), and recording it
//! for `skoop snapshot --cloud-provider NAME`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use crate::lending::{ExtInputs, state_for};
use crate::request::Log;
use skoop_engine::bundle;
use skoop_engine::cluster::Retain;
use skoop_engine::facts::Facts;
use skoop_engine::settings::{ProxyMode, Settings};
use skoop_error::bad_input;
use skoop_wasm::instance::ProviderInstance;
use skoop_wasm::sandbox::Limits;
use skoop_wasm::sandbox::egress::{Mode, Recording};
use skoop_wasm::{Extension, Registry};

/// The host part of each user-given endpoint: `--<name>-endpoint-url`
/// values. The user chose them, so they may be loopback or private.
fn endpoints(provider: &mut ProviderInstance) -> Vec<String> {
    provider
        .config()
        .iter()
        .filter(|(k, _)| k.ends_with("-endpoint-url"))
        .filter_map(|(_, v)| url_host(v))
        .collect()
}

/// The host of `scheme://host[:port]/...`.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']')?.0,
        None => authority.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Wire the provider's outbound HTTP: the recording in the bundle when
/// there is one, else its cloud, live, when it declares hosts; else none.
pub(crate) fn connect(
    provider: &mut ProviderInstance,
    ext: &Extension,
    inputs: &ExtInputs,
) -> Result<()> {
    let verbose = inputs.verbose;
    let name = &ext.info.name;
    let recorded = inputs
        .cloud
        .as_ref()
        .map(|d| d.join(format!("{name}.json")))
        .filter(|f| f.is_file());
    let mode = match recorded {
        Some(file) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| bad_input(format!("{}: cannot read it: {e}", file.display())))?;
            let rec: Recording = serde_json::from_str(&text).map_err(|e| {
                bad_input(format!(
                    "{}: not a recording of cloud API exchanges: {e}",
                    file.display()
                ))
            })?;
            if verbose {
                (inputs.log)(&format!(
                    "{name}: answering from {} ({} recorded exchanges)",
                    file.display(),
                    rec.exchanges.len()
                ));
            }
            Mode::Replay(Arc::new(rec))
        }
        None if ext.info.http_hosts.is_empty() => Mode::Off,
        None => Mode::Live(None),
    };
    let endpoints = endpoints(provider);
    let egress = provider.egress();
    egress.name = name.clone();
    egress.hosts = ext.info.http_hosts.clone();
    egress.endpoints = endpoints;
    egress.verbose = verbose;
    egress.mode = mode;
    Ok(())
}

/// `skoop snapshot --cloud-provider NAME`: let the provider ask its cloud
/// what the checks of the bundle's nodes need, and write the exchanges to
/// `DIR/cloud/NAME.json` (credentials stripped) for offline diagnoses.
pub fn record(
    registry: &Registry,
    name: &str,
    dir: &Path,
    values: &std::collections::BTreeMap<String, String>,
    limits: Limits,
    verbose: bool,
    log: Log,
) -> Result<()> {
    let ext = registry.providers.get(name).ok_or_else(|| {
        bad_input(format!(
            "--cloud-provider {name}: no cloud provider of that name is loaded; load it with --extension"
        ))
    })?;
    if ext.info.http_hosts.is_empty() {
        return Err(bad_input(format!(
            "--cloud-provider {name}: it declares no HTTP hosts, so there is nothing of its cloud to record"
        )));
    }
    // The objects the provider reads (Services, EndpointSlices for its load balancers).
    let b = bundle::load_dir(
        dir,
        Retain::with_reads(ext.info.reads.iter().map(String::as_str)),
    )?;
    let netstacks = b.nodes.netstacks(&b.view);
    let settings = Settings {
        network_plugin: String::new(),
        cloud_provider: name.to_string(),
        proxy_mode: ProxyMode::None,
        cluster_cidr: None,
        masquerade_mark: None,
        masquerade_all: false,
    };
    let facts = Arc::new(Facts::new(b.view, netstacks, settings));
    let inputs = ExtInputs {
        values: values.clone(),
        cloud: None,
        record: None,
        verbose,
        log,
    };
    let mut provider = registry.provider(ext, state_for(ext, &facts, &inputs), limits)?;
    connect(&mut provider, ext, &inputs)?;
    let recording = Arc::new(Mutex::new(Recording {
        provider: name.to_string(),
        exchanges: Vec::new(),
    }));
    provider.egress().mode = Mode::Live(Some(recording.clone()));
    let suspicions = provider.prefetch().map_err(anyhow::Error::new)?;
    for f in &suspicions {
        log(&format!("{name}: {:?}: {}", f.level, f.message));
    }
    let rec = recording
        .lock()
        .map_err(|_| anyhow::anyhow!("the recording was left half-written"))?
        .clone();
    let out = dir.join("cloud");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let file = out.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(&rec)?;
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    log(&format!(
        "recorded {} {name} API exchanges in {}",
        rec.exchanges.len(),
        file.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoint_hosts() {
        use super::url_host;
        assert_eq!(
            url_host("http://127.0.0.1:5055").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            url_host("https://EC2.example.com/x?y").as_deref(),
            Some("ec2.example.com")
        );
        assert_eq!(url_host("http://[::1]:80/").as_deref(), Some("::1"));
        assert_eq!(url_host("127.0.0.1:5055"), None);
    }
}
