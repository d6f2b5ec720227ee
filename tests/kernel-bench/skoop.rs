//! Running the skoop binary: `collect` inside each node netns, `diagnose` on
//! the assembled bundle.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use skoop_engine::diagnose::Leg;
use skoop_engine::probe::{Ending, Simulated, simulated_from};
use skoop_netstack::probe::ProbeResult;

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
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub exit: i32,
    pub suspicions: Vec<Suspicion>,
    /// The report's `verdict`.
    pub verdict: String,
    /// Each branch's direction and how it ended (`end.kind`).
    pub branches: Vec<(String, String)>,
}

impl Verdict {
    pub fn broken(&self) -> bool {
        self.exit == 3
    }

    /// The first suspicion at one of `levels` whose node and message contain
    /// every text of one alternative, each as a whole (`contains_whole`,
    /// case-insensitive).
    ///
    /// Refuses an alternative of a single word: a keyword such as `mtu`,
    /// `cni0` or `endpoint` names no entity, and a report mentioning it may
    /// blame the wrong node, rule or device.
    pub fn names(
        &self,
        levels: &[&str],
        alternatives: &[Vec<String>],
    ) -> Result<Option<&Suspicion>, String> {
        refuse_single_words(alternatives)?;
        Ok(self.suspicions.iter().find(|s| {
            levels.contains(&s.level.as_str()) && {
                let text = format!("{} {}", s.node, s.message);
                alternatives
                    .iter()
                    .any(|alt| alt.iter().all(|t| contains_whole(&text, t)))
            }
        }))
    }
}

/// Fails on an expectation that names no entity: no alternative at all, or
/// one of a single word (`mtu`, `cni0`, `endpoint`) or with an empty text.
pub fn refuse_single_words(alternatives: &[Vec<String>]) -> Result<(), String> {
    if alternatives.is_empty() {
        return Err("the bench refuses an expectation with no cause to name".into());
    }
    for alt in alternatives {
        let words: usize = alt.iter().map(|t| t.split_whitespace().count()).sum();
        if words < 2 || alt.iter().any(|t| t.trim().is_empty()) {
            return Err(format!(
                "the bench refuses the expectation {alt:?}: it must name the netns and the entity at fault"
            ));
        }
    }
    Ok(())
}

/// Characters that continue a name, address or number.
fn glued(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Does `text` contain `needle` (case-insensitive) as a whole, not as a
/// piece of a longer name, address or number? `10.244.1.0` is not in
/// `10.244.1.0/26`, `node-1` not in `node-10`, `default/web` not in
/// `default/web-2`, `flannel.1` not in `flannel.10`; `10.244.1.7` is in
/// `10.244.1.7:8080` and at the end of a sentence.
pub fn contains_whole(text: &str, needle: &str) -> bool {
    let (text, needle) = (text.to_lowercase(), needle.to_lowercase());
    let (Some(first), Some(last)) = (needle.chars().next(), needle.chars().last()) else {
        return false;
    };
    text.match_indices(&needle).any(|(at, _)| {
        let mut before = text[..at].chars().rev();
        let mut after = text[at + needle.len()..].chars();
        let starts_clean = !glued(first)
            || match before.next() {
                None => true,
                Some(c) => !glued(c) && c != '.' && c != '/',
            };
        let ends_clean = !glued(last)
            || match (after.next(), after.next()) {
                (None, _) => true,
                (Some(c), _) if glued(c) => false,
                // A dot glues when a name goes on after it, a slash when a
                // prefix length does: `flannel.1.rp_filter`, `10.244.1.0/26`,
                // but `... eth0.` and `10.96.100.10:80/tcp`.
                (Some('.'), Some(n)) => !glued(n),
                (Some('/'), Some(n)) => !n.is_ascii_digit(),
                _ => true,
            };
        starts_clean && ends_clean
    })
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
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let branches = report["path"]["branches"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|b| (text(&b["direction"]), text(&b["end"]["kind"])))
                .collect()
        })
        .unwrap_or_default();
    Ok(Verdict {
        exit,
        suspicions,
        verdict: text(&report["verdict"]),
        branches,
    })
}

impl Verdict {
    /// The simulation as a probe can check it (`skoop_engine::probe`).
    pub fn simulated(&self) -> Simulated {
        let ends: Vec<(Leg, Ending)> = self
            .branches
            .iter()
            .map(|(dir, end)| {
                let leg = if dir == "reply" {
                    Leg::Reply
                } else {
                    Leg::Request
                };
                (leg, Ending::named(end))
            })
            .collect();
        simulated_from(&self.verdict, self.broken(), &ends)
    }
}

/// How hard the bench probes, and what it knows of the destination.
#[derive(Debug, Clone, Copy)]
pub struct ProbePlan<'a> {
    pub src: &'a str,
    pub dst: &'a str,
    pub port: u16,
    pub protocol: &'a str,
    pub count: u32,
    /// The bench's UDP servers echo every datagram.
    pub expect_reply: bool,
}

/// `skoop collect probe --netns NS ...` (the binary enters the netns itself,
/// as in a collector pod), with the flow's source address bound as
/// `diagnose --probe` binds it; the result and the command's wall time.
pub fn probe(netns: &str, plan: ProbePlan) -> Result<(ProbeResult, Duration), String> {
    let port = plan.port.to_string();
    let count = plan.count.to_string();
    let mut cmd = Command::new(SKOOP);
    cmd.args(["collect", "probe", "--netns", netns])
        .args(["--src", plan.src, "--dst", plan.dst, "--port", &port])
        .args(["--protocol", plan.protocol, "--count", &count]);
    if plan.expect_reply {
        cmd.arg("--expect-reply");
    }
    let start = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("running skoop collect probe: {e}"))?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(format!(
            "skoop collect probe in {netns} exited {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let result = ProbeResult::parse(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| format!("skoop collect probe in {netns}: {e}"))?;
    Ok((result, took))
}
