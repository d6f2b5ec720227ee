//! `skoop snapshot`: the live machinery writing a bundle instead of
//! diagnosing: `cluster.json` (a v1 List) and `nodes/<node>.json`.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::Session;
use crate::SnapshotArgs;
use skoop_error::{bad_input, exit};

/// Above this many nodes, `--all-nodes` needs `--yes`.
pub const CONFIRM_ABOVE: usize = 50;

/// Collectors running at once.
const PARALLEL: usize = 8;

fn node_names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Node"))
        .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// Which nodes to collect, checked against the cluster before any pod starts.
fn chosen(args: &SnapshotArgs, all: &[String]) -> Result<Vec<String>> {
    if args.all_nodes {
        if all.len() > CONFIRM_ABOVE && !args.yes {
            return Err(bad_input(format!(
                "the cluster has {} nodes: --all-nodes would start {} privileged collector pods; pass --yes to confirm, or pick nodes with --node NAME",
                all.len(),
                all.len()
            )));
        }
        return Ok(all.to_vec());
    }
    if args.nodes.is_empty() {
        return Err(bad_input(
            "which nodes? pass --node NAME (repeatable; the nodes of the flow you want to diagnose) or --all-nodes",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for n in &args.nodes {
        if !all.contains(n) {
            return Err(bad_input(format!(
                "--node {n}: no such node in the cluster ({} nodes{})",
                all.len(),
                if all.len() <= 10 {
                    format!(": {}", all.join(", "))
                } else {
                    String::new()
                }
            )));
        }
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    Ok(out)
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Run `skoop snapshot`.
pub fn run(args: &SnapshotArgs, declared: &[String]) -> Result<u8> {
    let session = Session::connect(&args.live)?;
    let items: Vec<Value> = session
        .objects(declared)?
        .into_iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) != Some("Secret"))
        .collect();
    let nodes = chosen(args, &node_names(&items))?;
    let dir = &args.output;
    let nodes_dir = dir.join("nodes");
    std::fs::create_dir_all(&nodes_dir)
        .map_err(|e| bad_input(format!("cannot create {}: {e}", nodes_dir.display())))?;
    write_json(
        &dir.join("cluster.json"),
        &json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}),
    )?;
    let dumps = session.collect_many(&nodes, PARALLEL);
    for (node, text) in nodes.iter().zip(dumps) {
        let path = nodes_dir.join(format!("{node}.json"));
        std::fs::write(&path, text?).with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!(
        "skoop: wrote {} ({} objects, {} node dumps; {} API requests)",
        dir.display(),
        items.len(),
        nodes.len(),
        session.requests()
    );
    session.cleanup();
    Ok(exit::HEALTHY)
}
