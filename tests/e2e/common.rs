//! Running the binary, and building the test extensions once per test run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .expect("host/cli is in the repository")
}

/// The result of one run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as JSON, checked against the report's schema (docs/report.schema.json).
    pub fn json(&self) -> serde_json::Value {
        let value = serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        });
        assert_report_schema(&value);
        value
    }

    /// stdout as JSON that is not a diagnosis report (e.g. `connectivity`).
    pub fn json_any(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Fail unless `report` follows docs/report.schema.json.
pub fn assert_report_schema(report: &serde_json::Value) {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = SCHEMA.get_or_init(|| {
        let text = std::fs::read_to_string(root().join("docs/report.schema.json"))
            .expect("docs/report.schema.json");
        let schema: serde_json::Value =
            serde_json::from_str(&text).expect("docs/report.schema.json is JSON");
        jsonschema::validator_for(&schema).expect("docs/report.schema.json is a valid schema")
    });
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the report does not follow docs/report.schema.json:\n{}\n{report}",
        errors.join("\n")
    );
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `skoop` with `args` from the repository root, with a cache shared by the tests.
pub fn skoop(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_skoop"))
        .args(args)
        .current_dir(root())
        .env("SKOOP_CACHE_DIR", root().join("target").join("test-cache"))
        .output()
        .expect("run skoop");
    finish(out)
}

/// Run `skoop` with `args` and extra environment variables.
pub fn skoop_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_skoop"))
        .args(args)
        .current_dir(root())
        .env("SKOOP_CACHE_DIR", root().join("target").join("test-cache"))
        .envs(env.iter().copied())
        .output()
        .expect("run skoop");
    finish(out)
}

/// Run `skoop` with `args` and its compile cache in `cache`.
pub fn skoop_cached(cache: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_skoop"))
        .args(args)
        .current_dir(root())
        .env("SKOOP_CACHE_DIR", cache)
        .output()
        .expect("run skoop");
    finish(out)
}

/// A bad-input failure: exit 2, one line on stderr naming `culprit`, no panic.
pub fn assert_bad_input(run: &Run, culprit: &str) {
    assert_eq!(
        run.code, 2,
        "expected exit 2, got {}:\n{}{}",
        run.code, run.stdout, run.stderr
    );
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got:\n{}",
        run.stderr
    );
    assert!(
        lines[0].contains(culprit),
        "stderr does not name {culprit:?}:\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// The test extensions (tests/extensions/*), built to components once.
pub fn test_extension(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        // The build script's wasm target dir: the SDK and calico are built there already.
        let target = root().join("target").join("wasm-extensions");
        let status = Command::new(env!("CARGO"))
            .current_dir(root())
            .args([
                "build",
                "--locked",
                "--target",
                "wasm32-wasip2",
                "--profile",
                "wasm-ext-dev",
            ])
            .args([
                "-p",
                "loop-forever",
                "-p",
                "memory-hog",
                "-p",
                "trap",
                "-p",
                "third-party",
                "-p",
                "future-wit",
                "-p",
                "hostile-provider",
                "-p",
                "hang-describe",
                // The Calico plugin, built on its own as a third party would.
                "-p",
                "calico",
            ])
            .arg("--target-dir")
            .arg(&target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("run cargo to build the test extensions");
        assert!(status.success(), "building the test extensions failed");
        target.join("wasm32-wasip2").join("wasm-ext-dev")
    });
    let file = dir.join(format!("{}.wasm", name.replace('-', "_")));
    assert!(file.is_file(), "{} was not built", file.display());
    file
}
