//! Runs every scenario on every backend it applies to and prints the
//! agreement table.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::probe::{self, Outcome};
use super::scenarios::{self, Expect, Probe, Scenario, Src};
use super::skoop::{self, Verdict};
use super::topo::{Backend, BuildOptions, Cluster, ClusterData};

const SEVERE: &[&str] = &["CRITICAL", "FATAL"];

/// Print to the real stderr: the test harness captures `println!`, and the
/// table and figures belong in the CI log even when the bench passes.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

struct Row {
    name: String,
    what: &'static str,
    kernel: String,
    skoop: String,
    cause: String,
    agree: bool,
}

pub fn run() -> Result<(), String> {
    let started = Instant::now();
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut data: BTreeMap<(&str, &str), ClusterData> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut collect_times = Vec::new();
    let only = std::env::var("KERNEL_BENCH_ONLY").ok();
    for sc in scenarios::all() {
        for &backend in sc.backends {
            let name = format!("{}-{}", backend.name(), sc.name);
            if only.as_deref().is_some_and(|o| !name.contains(o)) {
                continue;
            }
            let key = (backend.name(), sc.variant);
            let d = match data.entry(key) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let dir = work.path().join(format!("data-{}-{}", key.0, key.1));
                    e.insert(ClusterData::generate(backend, sc.variant, &dir)?)
                }
            };
            let bundle = work.path().join(&name);
            let row = scenario(&sc, backend, d, &bundle, &name, &mut collect_times)
                .map_err(|e| format!("scenario {name}: {e}"))?;
            if !row.agree {
                keep_bundle(&bundle, &name);
            }
            say!(
                "{:<44} kernel={:<28} skoop={:<5} agree={}",
                row.name,
                row.kernel,
                row.skoop,
                row.agree
            );
            rows.push(row);
        }
    }
    print_table(&rows);
    let agreed = rows.iter().filter(|r| r.agree).count();
    let (sum, max) = (
        collect_times.iter().sum::<Duration>(),
        collect_times.iter().max().copied().unwrap_or_default(),
    );
    say!(
        "\n{agreed}/{} scenarios agree; skoop collect per node netns (with its pods): mean {:.0} ms, max {:.0} ms over {} runs; bench wall time {:.1} s",
        rows.len(),
        sum.as_secs_f64() * 1000.0 / collect_times.len().max(1) as f64,
        max.as_secs_f64() * 1000.0,
        collect_times.len(),
        started.elapsed().as_secs_f64()
    );
    if agreed != rows.len() {
        return Err(format!(
            "{} scenario(s) where skoop and the kernel disagree (bundles kept under /tmp/kernel-bench-<scenario>)",
            rows.len() - agreed
        ));
    }
    Ok(())
}

fn scenario(
    sc: &Scenario,
    backend: Backend,
    data: &ClusterData,
    bundle: &Path,
    name: &str,
    collect_times: &mut Vec<Duration>,
) -> Result<Row, String> {
    let cluster = Cluster::build(
        backend,
        data,
        BuildOptions {
            silent_pod: sc.silent_pod,
        },
    )?;
    if let Some(inject) = sc.fault {
        inject(&cluster)?;
    }
    let kernel = ask_kernel(&cluster, sc)?;
    collect_times.extend(skoop::bundle(&cluster, bundle)?);
    let f = sc.flow;
    let verdict = skoop::diagnose(bundle, f.src_ip, f.dst, f.port, f.protocol())?;
    drop(cluster);
    let (agree, cause) = judge(sc, &kernel, &verdict);
    if !agree {
        say!(
            "--- {name}: kernel {kernel:?}; skoop exit {}:",
            verdict.exit
        );
        for s in &verdict.suspicions {
            say!("    {} [{}] {}", s.level, s.node, s.message);
        }
    }
    Ok(Row {
        name: name.to_string(),
        what: sc.what,
        kernel: if kernel.ok {
            "ok".into()
        } else {
            format!("broken ({})", kernel.detail)
        },
        skoop: if verdict.broken() {
            "3".into()
        } else {
            "0".into()
        },
        cause,
        agree,
    })
}

fn ask_kernel(c: &Cluster, sc: &Scenario) -> Result<Outcome, String> {
    let f = sc.flow;
    let from = match f.src {
        Src::Pod(key) => c.pod(key)?,
        Src::Node(node) => c.node(node)?,
    };
    match f.probe {
        Probe::Tcp => probe::tcp(from, f.dst, f.port),
        Probe::TcpEveryBackend => {
            // kube-proxy picks a backend at random per connection: 12 tries
            // miss one of two backends with probability 2^-11.
            for _ in 0..12 {
                let o = probe::tcp(from, f.dst, f.port)?;
                if !o.ok {
                    return Ok(o);
                }
            }
            Ok(Outcome {
                ok: true,
                detail: "12 connects".into(),
            })
        }
        Probe::UdpFullMtu => {
            let link = super::sh::ip(from, "link show eth0")?;
            let mtu: usize = link
                .split_whitespace()
                .skip_while(|w| *w != "mtu")
                .nth(1)
                .and_then(|m| m.parse().ok())
                .ok_or_else(|| format!("no MTU in {link:?}"))?;
            probe::udp_full_mtu(from, f.dst, f.port, mtu - 28)
        }
    }
}

/// Does skoop agree with the kernel, and which suspicion names the cause?
fn judge(sc: &Scenario, kernel: &Outcome, v: &Verdict) -> (bool, String) {
    match sc.expect {
        Expect::Agree(cause) => {
            if kernel.ok == v.broken() {
                return (false, first_severe(v));
            }
            if kernel.ok {
                return (true, "-".into());
            }
            match v.names(SEVERE, cause) {
                Some(s) => (true, format!("{} [{}] {}", s.level, s.node, s.message)),
                None => (
                    false,
                    format!("no CRITICAL/FATAL names it; first: {}", first_severe(v)),
                ),
            }
        }
        Expect::Warn(words) => match (kernel.ok, v.broken(), v.names(&["WARNING"], words)) {
            (true, false, Some(s)) => (true, format!("WARNING [{}] {}", s.node, s.message)),
            _ => (
                false,
                "expected exit 0 with a WARNING naming the fault".into(),
            ),
        },
    }
}

fn first_severe(v: &Verdict) -> String {
    v.suspicions
        .iter()
        .find(|s| SEVERE.contains(&s.level.as_str()))
        .map(|s| format!("{} [{}] {}", s.level, s.node, s.message))
        .unwrap_or_else(|| "-".into())
}

fn keep_bundle(bundle: &Path, name: &str) {
    let dest = PathBuf::from(format!("/tmp/kernel-bench-{name}"));
    let _ = std::fs::remove_dir_all(&dest);
    let copy = std::process::Command::new("cp")
        .arg("-r")
        .arg(bundle)
        .arg(&dest)
        .status();
    if copy.is_ok_and(|s| s.success()) {
        say!("kernel-bench: bundle of {name} kept in {}", dest.display());
    }
}

fn print_table(rows: &[Row]) {
    say!(
        "\n{:<44} | {:<60} | {:<30} | {:<5} | {:<6} | named cause",
        "scenario",
        "fault",
        "kernel",
        "skoop",
        "agree?"
    );
    say!("{}", "-".repeat(200));
    for r in rows {
        let cause: String = r.cause.chars().take(160).collect();
        say!(
            "{:<44} | {:<60} | {:<30} | {:<5} | {:<6} | {}",
            r.name,
            r.what,
            r.kernel,
            r.skoop,
            if r.agree { "yes" } else { "NO" },
            cause
        );
    }
}
