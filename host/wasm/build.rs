//! Builds the built-in extensions to wasm32-wasip2 components and embeds them,
//! so a plain `cargo build` yields a self-contained skoop.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Built-in extensions: (package, component file stem).
const BUILTINS: [&str; 3] = ["flannel", "calico", "generic"];

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .and_then(Path::parent)
        .expect("host/wasm lives in the workspace")
        .to_path_buf();
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for dir in ["wit", "sdk", "plugins", "providers", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    build_extensions(&root, &out);
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
