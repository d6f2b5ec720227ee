//! Which cluster to talk to: `--kubeconfig`, `--context`, `KUBECONFIG`,
//! `~/.kube/config`, else the in-cluster service account.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};

use crate::LiveArgs;
use skoop_error::bad_input;

/// The client configuration and where it came from, for messages.
pub struct Target {
    pub config: Config,
    /// e.g. "kubeconfig /home/u/.kube/config, context prod".
    pub origin: String,
}

fn read_kubeconfig(path: &Path, what: &str) -> Result<Kubeconfig> {
    if !path.exists() {
        return Err(bad_input(format!(
            "kubeconfig {} ({what}) does not exist; pass --kubeconfig FILE",
            path.display()
        )));
    }
    Kubeconfig::read_from(path).map_err(|e| {
        bad_input(format!(
            "kubeconfig {} ({what}) cannot be read: {e}",
            path.display()
        ))
    })
}

fn env_paths() -> Option<Vec<PathBuf>> {
    let value = std::env::var_os("KUBECONFIG")?;
    let paths: Vec<PathBuf> = std::env::split_paths(&value)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    (!paths.is_empty()).then_some(paths)
}

/// The kubeconfig the flags and environment name, merged as kubectl merges
/// `KUBECONFIG`; `None` when there is none and in-cluster config applies.
fn kubeconfig(args: &LiveArgs) -> Result<Option<(Kubeconfig, String)>> {
    if let Some(path) = &args.kubeconfig {
        let kc = read_kubeconfig(path, "--kubeconfig")?;
        return Ok(Some((kc, format!("kubeconfig {}", path.display()))));
    }
    if let Some(paths) = env_paths() {
        let mut merged = Kubeconfig::default();
        for p in &paths {
            let kc = read_kubeconfig(p, "from $KUBECONFIG")?;
            merged = merged.merge(kc).map_err(|e| {
                bad_input(format!("$KUBECONFIG: cannot merge {}: {e}", p.display()))
            })?;
        }
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Ok(Some((merged, format!("kubeconfig {}", names.join(":")))));
    }
    let default = dirs::home_dir().map(|h| h.join(".kube").join("config"));
    match default {
        Some(path) if path.exists() => {
            let kc = read_kubeconfig(&path, "default")?;
            Ok(Some((kc, format!("kubeconfig {}", path.display()))))
        }
        _ => Ok(None),
    }
}

/// Resolve the cluster to talk to. Every failure is one line naming the
/// file, context or variable at fault.
pub async fn target(args: &LiveArgs) -> Result<Target> {
    let timeout = Duration::from_secs(args.api_timeout.max(1));
    let Some((kc, origin)) = kubeconfig(args)? else {
        if let Some(ctx) = &args.context {
            return Err(bad_input(format!(
                "--context {ctx}: no kubeconfig found ($KUBECONFIG is unset and ~/.kube/config does not exist); pass --kubeconfig FILE"
            )));
        }
        let mut config = Config::incluster().map_err(|e| {
            bad_input(format!(
                "no cluster to diagnose: no kubeconfig ($KUBECONFIG is unset, ~/.kube/config does not exist) and not running in a pod ({e}); pass --kubeconfig FILE, or --snapshot DIR for a bundle"
            ))
        })?;
        config.connect_timeout = Some(timeout);
        return Ok(Target {
            config,
            origin: "in-cluster service account".to_string(),
        });
    };
    let context = match &args.context {
        Some(c) => c.clone(),
        None => kc.current_context.clone().ok_or_else(|| {
            bad_input(format!(
                "{origin} sets no current-context; pass --context NAME (contexts: {})",
                context_names(&kc)
            ))
        })?,
    };
    if !kc.contexts.iter().any(|c| c.name == context) {
        return Err(bad_input(format!(
            "{origin} has no context {context:?} (contexts: {}); pass --context NAME",
            context_names(&kc)
        )));
    }
    let options = KubeConfigOptions {
        context: Some(context.clone()),
        ..KubeConfigOptions::default()
    };
    let origin = format!("{origin}, context {context}");
    let mut config = Config::from_custom_kubeconfig(kc, &options)
        .await
        .map_err(|e| bad_input(format!("{origin}: {e}")))?;
    config.connect_timeout = Some(timeout);
    Ok(Target { config, origin })
}

fn context_names(kc: &Kubeconfig) -> String {
    if kc.contexts.is_empty() {
        return "none".to_string();
    }
    kc.contexts
        .iter()
        .map(|c| c.name.clone())
        .collect::<Vec<_>>()
        .join(", ")
}
