//! Embeds every demo under this crate (a directory with `demo.json`,
//! `cluster.json` and `nodes/*.json`) so `skoop diagnose --demo NAME` needs
//! no files.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut demos: Vec<PathBuf> = std::fs::read_dir(&manifest)
        .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("demo.json").is_file())
        .collect();
    demos.sort();
    let mut code = String::from(
        "/// The embedded demos, by directory name.\npub const EMBEDDED: &[Embedded] = &[\n",
    );
    for demo in &demos {
        println!("cargo:rerun-if-changed={}", demo.display());
        embed_demo(demo, &mut code);
    }
    code.push_str("];\n");
    let file = out.join("demos.rs");
    std::fs::write(&file, code).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
}

fn embed_demo(demo: &Path, code: &mut String) {
    let dir = demo
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_else(|| panic!("{}: not a UTF-8 name", demo.display()));
    let _ = writeln!(
        code,
        "    Embedded {{\n        dir: {dir:?},\n        demo: include_str!({:?}),\n        cluster: include_str!({:?}),\n        nodes: &[",
        demo.join("demo.json").display().to_string(),
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
            "            ({name:?}, include_str!({:?})),",
            f.display().to_string()
        );
    }
    code.push_str("        ],\n    },\n");
}
