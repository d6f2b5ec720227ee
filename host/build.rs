//! Builds the built-in extensions to wasm32-wasip2 components and embeds them,
//! with the demo bundle, so a plain `cargo build` yields a self-contained skoop.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Built-in extensions: (package, component file stem).
const BUILTINS: [&str; 2] = ["flannel", "generic"];

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .expect("host/ lives in the workspace")
        .to_path_buf();
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for dir in [
        "wit",
        "sdk",
        "plugins",
        "providers",
        "Cargo.lock",
        "host/demo",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    build_extensions(&root, &out);
    embed_demo(&root, &out);
}

fn build_extensions(root: &Path, out: &Path) {
    // A separate target dir: the outer cargo holds the lock on the main one.
    let target_dir = root.join("target").join("wasm-extensions");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "wasm-ext",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for p in BUILTINS {
        cmd.args(["-p", p]);
    }
    // Flags meant for the host build must not leak into the wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the built-in extensions: {e}"));
    if !status.success() {
        panic!(
            "building the built-in extensions for wasm32-wasip2 failed; is the target installed? (rustup target add wasm32-wasip2)"
        );
    }
    let mut code = String::from(
        "/// Built-in extensions: (name, component bytes).\npub const BUILTINS: &[(&str, &[u8])] = &[\n",
    );
    for p in BUILTINS {
        let file = target_dir
            .join("wasm32-wasip2")
            .join("wasm-ext")
            .join(format!("{p}.wasm"));
        let _ = writeln!(
            code,
            "    ({p:?}, include_bytes!({:?})),",
            file.display().to_string()
        );
    }
    code.push_str("];\n");
    std::fs::write(out.join("builtin_extensions.rs"), code).expect("write builtin_extensions.rs");
}

fn embed_demo(root: &Path, out: &Path) {
    let demo = root.join("host").join("demo");
    let mut code = format!(
        "/// The demo's cluster.json.\npub const CLUSTER: &str = include_str!({:?});\n/// The demo's node dumps: (file name, text).\npub const NODES: &[(&str, &str)] = &[\n",
        demo.join("cluster.json").display().to_string()
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(demo.join("nodes"))
        .expect("host/demo/nodes exists")
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
    std::fs::write(out.join("demo_files.rs"), code).expect("write demo_files.rs");
}
