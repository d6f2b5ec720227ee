//! Fixtures, kubeconfigs and running the binary against the fake server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::server::{FakeApi, State};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .expect("host/cli is in the repository")
}

/// The bundle the live tests mirror.
pub fn vxlan() -> PathBuf {
    root().join("tests/fixtures/bundles/vxlan")
}

/// The vxlan bundle's objects and node dumps.
pub fn fixture() -> (Vec<Value>, BTreeMap<String, String>) {
    crate::generate::fixture(&vxlan())
}

/// A server with the vxlan fixture, after `tweak`.
pub fn server_with(tweak: impl FnOnce(&mut State)) -> FakeApi {
    let (objects, dumps) = fixture();
    let mut state = State {
        objects,
        dumps,
        ..State::default()
    };
    tweak(&mut state);
    FakeApi::start(state)
}

pub fn server() -> FakeApi {
    server_with(|_| {})
}

/// Drop objects matching kind and name.
pub fn remove(state: &mut State, kind: &str, name: &str) {
    state.objects.retain(|o| {
        !(o["kind"] == kind && o.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
    });
}

/// A kubeconfig with context `fake` (the server, token auth) and context
/// `dead` (nothing listens there); `current` is the current context.
pub fn kubeconfig(dir: &Path, url: &str, current: &str, token: &str) -> PathBuf {
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {url}
- name: dead
  cluster:
    server: http://127.0.0.1:9
contexts:
- name: fake
  context:
    cluster: fake
    user: tester
- name: dead
  context:
    cluster: dead
    user: tester
current-context: {current}
users:
- name: tester
  user:
    token: {token}
"
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

/// The result of one run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

pub fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The binary, with a clean environment: no KUBECONFIG, HOME in `home`.
pub fn command(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_skoop"));
    c.current_dir(root())
        .env("SKOOP_CACHE_DIR", root().join("target").join("test-cache"))
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT");
    c
}

pub fn run(home: &Path, args: &[&str]) -> Run {
    finish(command(home).args(args).output().expect("run skoop"))
}

/// `skoop diagnose` of [`FLOW`] against `api` (JSON report).
pub fn diagnose(api: &FakeApi, dir: &Path, extra: &[&str]) -> Run {
    diagnose_flow(api, dir, FLOW, extra)
}

/// `skoop diagnose` of `flow` against `api` (JSON report).
pub fn diagnose_flow(api: &FakeApi, dir: &Path, flow: (&str, &str, &str), extra: &[&str]) -> Run {
    let kc = kubeconfig(dir, &api.url, "fake", "t0ken");
    let mut args = vec![
        "diagnose",
        "--kubeconfig",
        kc.to_str().expect("utf-8"),
        "-s",
        flow.0,
        "-d",
        flow.1,
        "-p",
        flow.2,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    run(dir, &args)
}

/// client-1 (node-1) to the `web` ClusterIP: backends on all three nodes.
pub const FLOW: (&str, &str, &str) = ("10.244.0.5", "10.96.100.10", "80");

/// client-1 to web-1, both on node-1.
pub const SAME_NODE: (&str, &str, &str) = ("10.244.0.5", "10.244.0.6", "8080");

/// A bad-input failure: exit 2, one line on stderr containing each of `parts`.
pub fn assert_bad_input(run: &Run, parts: &[&str]) {
    assert_eq!(
        run.code, 2,
        "expected exit 2:\n{}{}",
        run.stdout, run.stderr
    );
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let last = lines.last().copied().unwrap_or_default();
    for p in parts {
        assert!(
            last.contains(p),
            "stderr does not name {p:?}:\n{}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}
