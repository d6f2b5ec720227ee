//! Bundles: `cluster.json` (a Kubernetes List) plus `nodes/<node>.json` dumps,
//! from a directory or compiled into the binary (the demos).
//!
//! The objects are read at once into the cluster view; a node dump is read
//! only when the diagnosis reaches its node (see [`NodeFiles::netstacks`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::cluster::{ClusterView, Retain};
use skoop_error::bad_input;
use skoop_netstack::dump::{DUMP_VERSION, NodeDump, read_shared};
use skoop_netstack::{NetstackError, Netstacks};

/// The facts of one cluster: its objects read, its node dumps located.
#[derive(Debug)]
pub struct Bundle {
    /// Where it came from, for messages.
    pub source: String,
    /// The objects of `cluster.json`.
    pub view: ClusterView,
    /// The node dumps, by node name, not read yet.
    pub nodes: NodeFiles,
}

/// Where a node dump is.
#[derive(Debug, Clone)]
enum NodeFile {
    Path(PathBuf),
    Embedded(&'static str),
}

/// A bundle's node dumps by node name (the file name without `.json`).
#[derive(Debug, Clone, Default)]
pub struct NodeFiles {
    files: BTreeMap<String, (String, NodeFile)>,
}

impl NodeFiles {
    /// Nodes with a dump.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.files.keys()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Read and check one node's dump; bad input when it is malformed, of
    /// another version or of another node.
    pub fn load(&self, node: &str) -> Result<NodeDump> {
        let (origin, file) = self
            .files
            .get(node)
            .ok_or_else(|| bad_input(format!("no dump of node {node} in the bundle")))?;
        let dump = match file {
            NodeFile::Embedded(text) => parse_node(text, origin)?,
            NodeFile::Path(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| bad_input(format!("{origin}: {e}")))?;
                // The rules stay in the file's text (see `RulesText`).
                parse_node_shared(&Arc::new(text), origin)?
            }
        };
        if dump.node != node {
            return Err(bad_input(format!(
                "{origin}: the dump is of node {:?}; name the file {}.json",
                dump.node, dump.node
            )));
        }
        Ok(dump)
    }

    /// Netstacks that read each node's dump when the diagnosis first reaches
    /// the node. A dump that cannot be read is remembered as `Invalid` (see
    /// [`Netstacks::load_errors`]).
    pub fn netstacks(self, view: &ClusterView) -> Netstacks {
        let pod_node = view
            .pods
            .values()
            .filter(|p| self.files.contains_key(&p.node))
            .map(|p| (p.id(), p.node.clone()))
            .collect();
        let names: Vec<String> = self.files.keys().cloned().collect();
        let files = Arc::new(self);
        Netstacks::lazy(
            names,
            pod_node,
            Box::new(move |node| {
                files
                    .load(node)
                    .map_err(|e| NetstackError::Invalid(format!("{e:#}")))
            }),
            true,
        )
    }
}

/// Read a bundle directory, keeping the objects `retain` names as JSON.
pub fn load_dir(dir: &Path, retain: Retain) -> Result<Bundle> {
    if !dir.is_dir() {
        return Err(bad_input(format!(
            "bundle directory {} does not exist (expected cluster.json and nodes/<node>.json in it)",
            dir.display()
        )));
    }
    let cluster_path = dir.join("cluster.json");
    let text = std::fs::read_to_string(&cluster_path)
        .map_err(|e| bad_input(format!("{}: {e}", cluster_path.display())))?;
    let text = Arc::new(text);
    let view = ClusterView::parse_shared(&text, &cluster_path.display().to_string(), retain)?;
    // Kept only if the objects kept as JSON share it.
    drop(text);
    let mut nodes = NodeFiles::default();
    let nodes_dir = dir.join("nodes");
    if nodes_dir.is_dir() {
        let entries: Vec<_> = std::fs::read_dir(&nodes_dir)
            .with_context(|| format!("reading {}", nodes_dir.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading {}", nodes_dir.display()))?;
        for entry in entries {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let origin = path.display().to_string();
            add_node(&mut nodes, &origin, NodeFile::Path(path))?;
        }
    }
    Ok(Bundle {
        source: dir.display().to_string(),
        view,
        nodes,
    })
}

/// A bundle compiled into the binary (a built-in demo), its files under
/// `dir/`.
pub fn embedded(
    source: &str,
    dir: &str,
    cluster: &str,
    files: &[(&str, &'static str)],
    retain: Retain,
) -> Result<Bundle> {
    let view = ClusterView::parse(cluster, &format!("{dir}/cluster.json"), retain)?;
    let mut nodes = NodeFiles::default();
    for (file, text) in files {
        add_node(
            &mut nodes,
            &format!("{dir}/nodes/{file}"),
            NodeFile::Embedded(text),
        )?;
    }
    Ok(Bundle {
        source: source.to_string(),
        view,
        nodes,
    })
}

fn add_node(nodes: &mut NodeFiles, origin: &str, file: NodeFile) -> Result<()> {
    let stem = Path::new(origin)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    if nodes
        .files
        .insert(stem, (origin.to_string(), file))
        .is_some()
    {
        return Err(bad_input(format!("{origin}: node dumped twice")));
    }
    Ok(())
}

/// Parse one node dump. A dump of another version gets a message that says
/// so rather than a field error.
pub fn parse_node(text: &str, origin: &str) -> Result<NodeDump> {
    checked_node(serde_json::from_str::<NodeDump>(text), text, origin)
}

/// [`parse_node`] of a file's text, which the dump's iptables rules then
/// share rather than copy.
pub fn parse_node_shared(text: &Arc<String>, origin: &str) -> Result<NodeDump> {
    let parsed = read_shared(text, |t| serde_json::from_str::<NodeDump>(t));
    checked_node(parsed, text, origin)
}

fn checked_node(
    parsed: serde_json::Result<NodeDump>,
    text: &str,
    origin: &str,
) -> Result<NodeDump> {
    #[derive(Deserialize)]
    struct Version {
        version: Option<u64>,
    }
    let version = match &parsed {
        Ok(d) => Some(u64::from(d.version)),
        // Read the version alone, so a dump of another version is named as such.
        Err(_) => match serde_json::from_str::<Version>(text) {
            Ok(v) => v.version,
            Err(e) => return Err(crate::cluster::json_error(origin, text, &e)),
        },
    };
    match version {
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
    if let Ok(dump) = parsed {
        return Ok(dump);
    }
    // Leave out the sections that cannot be read, each marked absent, and
    // read the rest; what cannot be left out is an error naming its field.
    let refused = || {
        let fault = skoop_error::json::why_not::<NodeDump>(text);
        bad_input(format!("{origin}: invalid node dump: {fault}"))
    };
    let mut value: serde_json::Value = serde_json::from_str(text).map_err(|_| refused())?;
    if crate::dump_sections::repair(&mut value, origin).is_none() {
        return Err(refused());
    }
    serde_json::to_string(&value)
        .ok()
        .and_then(|t| serde_json::from_str::<NodeDump>(&t).ok())
        .ok_or_else(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_cluster_names_line_and_column() {
        let err = ClusterView::parse(
            "{\n  \"items\": [\n    {,}\n  ]\n}",
            "x/cluster.json",
            Retain::host(),
        )
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
    fn dump_without_version_is_named() {
        let err = parse_node(r#"{"node": "n"}"#, "nodes/n.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a skoop node dump"), "{err}");
    }

    #[test]
    fn a_bundle_loads_and_reads_dumps_only_when_asked() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demos/flannel");
        let b = load_dir(&dir, Retain::host()).unwrap();
        assert!(!b.view.nodes.is_empty());
        let names: Vec<String> = b.nodes.names().cloned().collect();
        assert!(names.len() >= 2);
        let stacks = b.nodes.clone().netstacks(&b.view);
        assert!(stacks.loaded_nodes().is_empty());
        assert!(stacks.node(&names[0]).is_ok());
        assert_eq!(stacks.loaded_nodes(), vec![names[0].clone()]);
    }

    #[test]
    fn a_dump_named_for_another_node_is_refused_when_read() {
        let mut files = NodeFiles::default();
        add_node(
            &mut files,
            "b/nodes/n2.json",
            NodeFile::Embedded(r#"{"version": 1, "node": "n1", "host": {}}"#),
        )
        .unwrap();
        let err = files.load("n2").unwrap_err().to_string();
        assert!(err.contains("name the file n1.json"), "{err}");
    }
}
