//! What the cloud providers' end-to-end tests share: the emulator servers
//! (started and stopped by their Python scripts), and bundle copies whose
//! nodes are the emulator's machines.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{Run, root};

/// `SKOOP_SKIP_CLOUD_TESTS=1` skips the cloud tests (and `tests/setup` the moto venv).
pub fn skipped() -> bool {
    std::env::var_os("SKOOP_SKIP_CLOUD_TESTS").is_some()
}

/// Run a Python script of the repository; its stdout as JSON.
pub fn python(args: &[&str]) -> Value {
    let out = Command::new("python3")
        .args(args)
        .current_dir(root())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python3 {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "python3 {args:?} printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// An emulator server of this test (`SCRIPT start|stop`), stopped when dropped.
pub struct Server {
    script: &'static str,
    pid: u64,
    pub endpoint: String,
}

impl Server {
    pub fn start(script: &'static str) -> Server {
        let v = python(&[script, "start", "--port", "0"]);
        Server {
            script,
            pid: v["pid"].as_u64().expect("pid"),
            endpoint: v["endpoint"].as_str().expect("endpoint").to_string(),
        }
    }

    pub fn stop(&mut self) {
        if self.pid != 0 {
            python(&[self.script, "stop", &self.pid.to_string()]);
            self.pid = 0;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.pid != 0 {
            let _ = Command::new("python3")
                .args([self.script, "stop", &self.pid.to_string()])
                .current_dir(root())
                .output();
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of fixture bundle `base` (under target/test-cloud/NAME-PID) whose
/// nodes are the scenario's machines: `spec.providerID` from the scenario's
/// `nodes.<name>.provider_id`, and the region and zone labels.
pub fn bundle(base: &str, s: &Value, name: &str) -> PathBuf {
    let dir = root()
        .join("target")
        .join("test-cloud")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&root().join("tests/fixtures/bundles").join(base), &dir);
    edit_objects(&dir, |item| {
        if item["kind"] != "Node" {
            return;
        }
        let node = item["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some(n) = s["nodes"].get(&node) else {
            return;
        };
        item["spec"]["providerID"] = n["provider_id"].clone();
        item["metadata"]["labels"]["topology.kubernetes.io/region"] = s["region"].clone();
        item["metadata"]["labels"]["topology.kubernetes.io/zone"] = n["zone"].clone();
    });
    dir
}

/// Edit every object of the bundle's cluster.json.
pub fn edit_objects(dir: &Path, mut edit: impl FnMut(&mut Value)) {
    let file = dir.join("cluster.json");
    let mut list: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    for item in list["items"].as_array_mut().unwrap() {
        edit(item);
    }
    std::fs::write(&file, serde_json::to_string(&list).unwrap()).unwrap();
}

/// Service default/web-nodeport (port 80, node port 30080) exposed as a
/// LoadBalancer at `address`.
pub fn with_load_balancer(dir: &Path, address: &str) {
    edit_objects(dir, |item| {
        if item["kind"] == "Service" && item["metadata"]["name"] == "web-nodeport" {
            item["spec"]["type"] = "LoadBalancer".into();
            item["status"] = serde_json::json!({"loadBalancer": {"ingress": [{"ip": address}]}});
        }
    });
}

/// The suspicions of a run, as `LEVEL message` lines (the report checked
/// against its schema).
pub fn suspicions(run: &Run) -> Vec<String> {
    run.json()["suspicions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["level"].as_str().unwrap(),
                s["message"].as_str().unwrap()
            )
        })
        .collect()
}

/// The suspicions naming a resource of the cloud (`markers`: id prefixes and names).
pub fn cloud_lines(run: &Run, markers: &[&str]) -> Vec<String> {
    suspicions(run)
        .into_iter()
        .filter(|l| markers.iter().any(|k| l.contains(k)))
        .collect()
}

pub fn assert_suspicion(run: &Run, level: &str, needles: &[&str]) {
    let lines = suspicions(run);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(level) && needles.iter().all(|n| l.contains(n))),
        "no {level} suspicion with {needles:?} in:\n{}\nstderr:\n{}",
        lines.join("\n"),
        run.stderr
    );
}

/// A healthy underlay: no cloud suspicion above INFO, and exit 0.
pub fn assert_quiet(run: &Run, markers: &[&str]) {
    let bad: Vec<String> = cloud_lines(run, markers)
        .into_iter()
        .filter(|l| !l.starts_with("INFO"))
        .collect();
    assert!(
        bad.is_empty(),
        "a healthy underlay raised:\n{}\nstderr:\n{}",
        bad.join("\n"),
        run.stderr
    );
    assert_eq!(
        run.code,
        0,
        "{}\n{}",
        suspicions(run).join("\n"),
        run.stderr
    );
}
