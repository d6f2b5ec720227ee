//! Builds the built-in extensions to wasm32-wasip2 components and embeds them,
//! so a plain `cargo build` yields a self-contained skoop.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/engine_config.rs"]
mod engine_config;

/// Built-in extensions: (package, component file stem).
const BUILTINS: [&str; 5] = ["flannel", "calico", "generic", "aws", "aliyun"];

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
    // Small, optimised components for a release build; quick ones otherwise.
    let profile = if env::var("PROFILE").as_deref() == Ok("release") {
        "wasm-ext"
    } else {
        "wasm-ext-dev"
    };
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--profile",
            profile,
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
    // Native code for this engine, so a first run compiles nothing; only
    // when the binary runs where it was built (the runtime checks the
    // engine's compatibility hash and compiles as usual on a mismatch).
    let native = env::var("TARGET").ok() == env::var("HOST").ok();
    let engine = native.then(|| {
        wasmtime::Engine::new(&engine_config::config())
            .unwrap_or_else(|e| panic!("creating the wasm engine to precompile built-ins: {e}"))
    });
    let mut code =
        String::from("/// The built-in extensions.\npub const BUILTINS: &[Builtin] = &[\n");
    for p in BUILTINS {
        let file = target_dir
            .join("wasm32-wasip2")
            .join(profile)
            .join(format!("{p}.wasm"));
        let precompiled = match &engine {
            Some(engine) => {
                let bytes = std::fs::read(&file)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
                let native = engine
                    .precompile_component(&bytes)
                    .unwrap_or_else(|e| panic!("precompiling {}: {e}", file.display()));
                let path = out.join(format!("{p}.cwasm"));
                std::fs::write(&path, native)
                    .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
                format!("Some(include_bytes!({:?}))", path.display().to_string())
            }
            None => "None".to_string(),
        };
        let _ = writeln!(
            code,
            "    Builtin {{ name: {p:?}, wasm: include_bytes!({:?}), native: {precompiled} }},",
            file.display().to_string()
        );
    }
    code.push_str("];\n");
    let _ = writeln!(
        code,
        "/// The engine compatibility (see `engine_config::compatibility`) the native code is for.\npub const PRECOMPILED_FOR: u64 = {};",
        engine
            .as_ref()
            .map(engine_config::compatibility)
            .unwrap_or(0)
    );
    std::fs::write(out.join("builtin_extensions.rs"), code).expect("write builtin_extensions.rs");
}
