//! Bundles: `cluster.json` (a Kubernetes List) plus `nodes/<node>.json` dumps,
//! from a directory or from the demo compiled into the binary.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::dump::{DUMP_VERSION, NodeDump};
use crate::error::bad_input;

/// The facts of one cluster, not yet interpreted.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Where it came from, for messages.
    pub source: String,
    /// Every object of `cluster.json`'s `items`.
    pub objects: Vec<Value>,
    /// Node dumps by node name.
    pub nodes: BTreeMap<String, NodeDump>,
}

/// The demo bundle's files, embedded at build time.
mod demo {
    include!(concat!(env!("OUT_DIR"), "/demo_files.rs"));
}

/// The Calico demo bundle's files (host/demo-calico), embedded the same way.
mod demo_calico {
    include!(concat!(env!("OUT_DIR"), "/demo_calico_files.rs"));
}

/// The built-in demos: (name, what it shows).
pub const DEMOS: &[(&str, &str)] = &[
    (
        "flannel",
        "flannel vxlan; a stale FDB entry breaks one backend of the web Service (the default)",
    ),
    (
        "calico",
        "Calico VXLAN; a policy on CoreDNS admits DNS over TCP only, so felix drops UDP lookups",
    ),
];

/// A built-in demo by name (see [`DEMOS`]).
pub fn load_named_demo(name: &str) -> Result<Bundle> {
    match name {
        "flannel" => load_demo(),
        "calico" => {
            let objects = parse_cluster(demo_calico::CLUSTER, "demo-calico/cluster.json")?;
            let mut nodes = BTreeMap::new();
            for (file, text) in demo_calico::NODES {
                let origin = format!("demo-calico/nodes/{file}");
                let dump = parse_node(text, &origin)?;
                add_node(&mut nodes, dump, &origin)?;
            }
            Ok(Bundle {
                source: "built-in calico demo".to_string(),
                objects,
                nodes,
            })
        }
        other => Err(bad_input(format!(
            "no built-in demo {other:?}; the demos are: {} (--demo list)",
            DEMOS.iter().map(|d| d.0).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Read a bundle directory.
pub fn load_dir(dir: &Path) -> Result<Bundle> {
    if !dir.is_dir() {
        return Err(bad_input(format!(
            "bundle directory {} does not exist (expected cluster.json and nodes/<node>.json in it)",
            dir.display()
        )));
    }
    let cluster_path = dir.join("cluster.json");
    let text = std::fs::read_to_string(&cluster_path)
        .map_err(|e| bad_input(format!("{}: {e}", cluster_path.display())))?;
    let objects = parse_cluster(&text, &cluster_path.display().to_string())?;
    let mut nodes = BTreeMap::new();
    let nodes_dir = dir.join("nodes");
    if nodes_dir.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(&nodes_dir)
            .with_context(|| format!("reading {}", nodes_dir.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading {}", nodes_dir.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
            let dump = parse_node(&text, &path.display().to_string())?;
            add_node(&mut nodes, dump, &path.display().to_string())?;
        }
    }
    Ok(Bundle {
        source: dir.display().to_string(),
        objects,
        nodes,
    })
}

/// The demo bundle compiled into the binary.
pub fn load_demo() -> Result<Bundle> {
    let objects = parse_cluster(demo::CLUSTER, "demo/cluster.json")?;
    let mut nodes = BTreeMap::new();
    for (file, text) in demo::NODES {
        let origin = format!("demo/nodes/{file}");
        let dump = parse_node(text, &origin)?;
        add_node(&mut nodes, dump, &origin)?;
    }
    Ok(Bundle {
        source: "built-in demo".to_string(),
        objects,
        nodes,
    })
}

fn add_node(nodes: &mut BTreeMap<String, NodeDump>, dump: NodeDump, origin: &str) -> Result<()> {
    let stem = Path::new(origin)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if stem != dump.node {
        return Err(bad_input(format!(
            "{origin}: the dump is of node {:?}; name the file {}.json",
            dump.node, dump.node
        )));
    }
    if nodes.insert(dump.node.clone(), dump).is_some() {
        return Err(bad_input(format!("{origin}: node dumped twice")));
    }
    Ok(())
}

/// Parse `cluster.json`: a List (or a single object) of Kubernetes objects.
pub fn parse_cluster(text: &str, origin: &str) -> Result<Vec<Value>> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        bad_input(format!(
            "{origin}:{}:{}: malformed JSON: {e}",
            e.line(),
            e.column()
        ))
    })?;
    match value {
        Value::Object(ref map) if map.get("items").is_some() => match map.get("items") {
            Some(Value::Array(items)) => Ok(items.clone()),
            _ => Err(bad_input(format!("{origin}: `items` is not a list"))),
        },
        Value::Object(ref map) if map.get("kind").is_some() => Ok(vec![value]),
        _ => Err(bad_input(format!(
            "{origin}: expected a Kubernetes List (`kubectl get ... -o json`)"
        ))),
    }
}

/// Parse one node dump, checking its version first so a dump from another
/// skoop gets a clear message rather than a field error.
pub fn parse_node(text: &str, origin: &str) -> Result<NodeDump> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        bad_input(format!(
            "{origin}:{}:{}: malformed JSON: {e}",
            e.line(),
            e.column()
        ))
    })?;
    match value.get("version").and_then(Value::as_u64) {
        Some(v) if v == u64::from(DUMP_VERSION) => {}
        Some(v) => {
            return Err(bad_input(format!(
                "{origin}: node dump version {v}, but this skoop reads version {DUMP_VERSION}; collect it again with this skoop's `skoop collect`"
            )));
        }
        None => {
            return Err(bad_input(format!(
                "{origin}: not a skoop node dump (no `version` field)"
            )));
        }
    }
    serde_json::from_str(text).map_err(|e| {
        bad_input(format!(
            "{origin}:{}:{}: invalid node dump: {e}",
            e.line(),
            e.column()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_cluster_names_line_and_column() {
        let err = parse_cluster("{\n  \"items\": [\n    {,}\n  ]\n}", "x/cluster.json")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x/cluster.json:3:6:"), "{err}");
    }

    #[test]
    fn wrong_dump_version_is_named() {
        let err = parse_node(r#"{"version": 99, "node": "n"}"#, "nodes/n.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("version 99"), "{err}");
        assert!(err.contains("nodes/n.json"), "{err}");
    }

    #[test]
    fn demo_loads() {
        let b = load_demo().unwrap();
        assert!(!b.objects.is_empty());
        assert!(b.nodes.len() >= 2);
    }
}
