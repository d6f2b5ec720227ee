//! Embeds the demo bundles (host/demo, host/demo-calico) so `skoop diagnose
//! --demo [calico]` needs no files.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .and_then(Path::parent)
        .expect("host/engine lives in the workspace")
        .to_path_buf();
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for (dir, file) in [
        ("demo", "demo_files.rs"),
        ("demo-calico", "demo_calico_files.rs"),
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            root.join("host").join(dir).display()
        );
        embed_demo(&root.join("host").join(dir), &out.join(file));
    }
}

fn embed_demo(demo: &Path, out: &Path) {
    let mut code = format!(
        "/// The demo's cluster.json.\npub const CLUSTER: &str = include_str!({:?});\n/// The demo's node dumps: (file name, text).\npub const NODES: &[(&str, &str)] = &[\n",
        demo.join("cluster.json").display().to_string()
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(demo.join("nodes"))
        .unwrap_or_else(|e| panic!("{}: {e}", demo.join("nodes").display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
        .collect();
    files.sort();
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let _ = writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            f.display().to_string()
        );
    }
    code.push_str("];\n");
    std::fs::write(out, code).unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
}
