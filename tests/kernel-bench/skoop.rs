//! Running the skoop binary: `collect` inside each node netns, `diagnose` on
//! the assembled bundle.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::topo::Cluster;

pub const SKOOP: &str = env!("CARGO_BIN_EXE_skoop");

/// `ip netns exec NS skoop collect --node NODE --pod ...  -o FILE`; returns its wall time.
pub fn collect(
    netns: &str,
    node: &str,
    pods: &[(String, String)],
    out: &Path,
) -> Result<Duration, String> {
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns", "exec", netns, SKOOP, "collect", "--node", node, "-o",
    ])
    .arg(out);
    for (key, pod_ns) in pods {
        cmd.args(["--pod", &format!("{key}={pod_ns}")]);
    }
    let start = Instant::now();
    let res = cmd
        .output()
        .map_err(|e| format!("running skoop collect: {e}"))?;
    let took = start.elapsed();
    if !res.status.success() {
        return Err(format!(
            "skoop collect in {netns} failed: {}",
            String::from_utf8_lossy(&res.stderr)
        ));
    }
    Ok(took)
}

/// Collect every node of `c` into `dir` (cluster.json + nodes/*.json).
pub fn bundle(c: &Cluster, dir: &Path) -> Result<Vec<Duration>, String> {
    std::fs::create_dir_all(dir.join("nodes")).map_err(|e| e.to_string())?;
    std::fs::copy(c.data_dir.join("cluster.json"), dir.join("cluster.json"))
        .map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    for (node, ns) in &c.node_ns {
        let pods: Vec<(String, String)> = c
            .pod_ns
            .iter()
            .filter(|(_, (n, _))| n == node)
            .map(|(k, (_, pns))| (k.clone(), pns.clone()))
            .collect();
        times.push(collect(
            ns,
            node,
            &pods,
            &dir.join("nodes").join(format!("{node}.json")),
        )?);
    }
    Ok(times)
}

/// One suspicion of a report.
#[derive(Debug, Clone)]
pub struct Suspicion {
    pub level: String,
    pub node: String,
    pub message: String,
}

/// What `skoop diagnose` said.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub exit: i32,
    pub suspicions: Vec<Suspicion>,
}

impl Verdict {
    pub fn broken(&self) -> bool {
        self.exit == 3
    }

    /// The first suspicion at one of `levels` whose node+message contains
    /// every word of one of `alternatives` (case-insensitive).
    pub fn names(&self, levels: &[&str], alternatives: &[&[&str]]) -> Option<&Suspicion> {
        self.suspicions.iter().find(|s| {
            levels.contains(&s.level.as_str()) && {
                let text = format!("{} {}", s.node, s.message).to_lowercase();
                alternatives
                    .iter()
                    .any(|words| words.iter().all(|w| text.contains(&w.to_lowercase())))
            }
        })
    }
}

pub fn diagnose(
    dir: &Path,
    src: &str,
    dst: &str,
    port: u16,
    protocol: &str,
) -> Result<Verdict, String> {
    let res = Command::new(SKOOP)
        .args(["diagnose", "--snapshot"])
        .arg(dir)
        .args([
            "-s",
            src,
            "-d",
            dst,
            "-p",
            &port.to_string(),
            "--protocol",
            protocol,
            "--format",
            "json",
        ])
        .output()
        .map_err(|e| format!("running skoop diagnose: {e}"))?;
    let exit = res.status.code().unwrap_or(-1);
    if exit != 0 && exit != 3 {
        return Err(format!(
            "skoop diagnose exited {exit}: {}",
            String::from_utf8_lossy(&res.stderr)
        ));
    }
    let report: Value = serde_json::from_slice(&res.stdout)
        .map_err(|e| format!("skoop diagnose printed no JSON report: {e}"))?;
    let suspicions = report["suspicions"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| Suspicion {
                    level: s["level"].as_str().unwrap_or_default().to_string(),
                    node: s["node"].as_str().unwrap_or_default().to_string(),
                    message: s["message"].as_str().unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Verdict { exit, suspicions })
}
