//! `skoop connectivity`: the NetworkPolicy (and admin policy) matrix of a
//! bundle's or a live cluster's pods, per port.

use anyhow::{Context, Result};
use skoop_error::{bad_input, exit};
use skoop_live::Session;

use crate::cli;
use skoop_netstack::packet::Protocol;

/// `PORT[/PROTO]`.
fn parse_port_proto(s: &str) -> Result<(u16, Protocol)> {
    let (port, proto) = match s.split_once('/') {
        Some((p, pr)) => (p, pr),
        None => (s, "TCP"),
    };
    let port: u16 = port
        .parse()
        .map_err(|_| bad_input(format!("--port {s}: expected PORT/PROTO, e.g. 80/TCP")))?;
    let proto = Protocol::parse_kubernetes(proto)
        .ok_or_else(|| bad_input(format!("--port {s}: the protocol is TCP, UDP or SCTP")))?;
    Ok((port, proto))
}

/// The objects of a bundle's `cluster.json`, as JSON (the connectivity
/// matrix reads pods and policies only, no node dumps).
fn cluster_objects(dir: &std::path::Path) -> Result<Vec<serde_json::Value>> {
    let path = dir.join("cluster.json");
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| bad_input(format!("{origin}: {e}")))?;
    let mut list: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| skoop_engine::cluster::json_error(&origin, &text, &e))?;
    match list.get_mut("items").map(serde_json::Value::take) {
        Some(serde_json::Value::Array(items)) => Ok(items),
        _ => Err(bad_input(format!(
            "{origin}: expected a Kubernetes List (`kubectl get ... -o json`)"
        ))),
    }
}

/// The objects the policy evaluator can read; each it cannot is left out
/// with a warning naming it, its place and the field at fault.
fn readable(objects: Vec<serde_json::Value>, source: &str) -> Vec<serde_json::Value> {
    objects
        .into_iter()
        .enumerate()
        .filter_map(|(i, o)| {
            let one = std::iter::once(&o);
            let read = skoop_policy::PolicySet::from_objects(one.clone())
                .and_then(|_| skoop_policy::pods_from_objects(one));
            match read {
                Ok(_) => Some(o),
                Err(e) => {
                    eprintln!("skoop: warning: {source}: items[{i}]: {e} (left out)");
                    None
                }
            }
        })
        .collect()
}

pub fn run(args: &cli::ConnectivityArgs) -> Result<u8> {
    let (objects, source) = match &args.bundle {
        Some(dir) => {
            let source = dir.display().to_string();
            if !dir.is_dir() {
                return Err(bad_input(format!(
                    "bundle directory {source} does not exist (expected cluster.json in it)"
                )));
            }
            (cluster_objects(dir)?, source)
        }
        None => {
            let session = Session::connect(&args.live)?;
            // Pods, namespaces and policies are skoop's own kinds.
            (session.objects(&[])?, session.source())
        }
    };
    let (set, pods) = match (
        skoop_policy::PolicySet::from_objects(&objects),
        skoop_policy::pods_from_objects(&objects),
    ) {
        (Ok(set), Ok(pods)) => (set, pods),
        // Some object cannot be read: leave it out, say which, read the rest.
        _ => {
            let objects = readable(objects, &source);
            (
                skoop_policy::PolicySet::from_objects(&objects)
                    .map_err(|e| bad_input(format!("{source}: {e}")))?,
                skoop_policy::pods_from_objects(&objects)
                    .map_err(|e| bad_input(format!("{source}: {e}")))?,
            )
        }
    };
    let ports: Vec<(u16, Protocol)> = match &args.port {
        Some(p) => vec![parse_port_proto(p)?],
        None => {
            let mut v: Vec<_> = pods
                .iter()
                .filter(|p| args.namespace.as_ref().is_none_or(|n| *n == p.namespace))
                .flat_map(|p| p.ports.iter().map(|c| (c.port, c.protocol)))
                .collect();
            v.sort();
            v.dedup();
            if v.is_empty() {
                return Err(bad_input(
                    "no pod declares a container port: pass --port PORT/PROTO",
                ));
            }
            v
        }
    };
    let matrices: Vec<skoop_policy::matrix::Matrix> = ports
        .iter()
        .map(|(port, proto)| {
            skoop_policy::matrix::matrix(&set, &pods, args.namespace.as_deref(), *port, *proto)
        })
        .collect();
    match args.format {
        cli::MatrixFormat::Text => {
            for m in &matrices {
                println!("{}", m.to_text());
            }
        }
        cli::MatrixFormat::Csv => {
            for (i, m) in matrices.iter().enumerate() {
                let csv = m.to_csv();
                // one header for all ports
                let body = if i == 0 {
                    csv.as_str()
                } else {
                    csv.split_once('\n').map_or("", |x| x.1)
                };
                print!("{body}");
            }
        }
        cli::MatrixFormat::Json => {
            let v = serde_json::json!({ "matrices": matrices });
            println!(
                "{}",
                serde_json::to_string_pretty(&v).context("serialising the matrix")?
            );
        }
    }
    Ok(exit::HEALTHY)
}
