//! Runs every scenario on every backend it applies to and prints the
//! agreement table.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::probe::{self, Outcome};
use super::scenarios::{Expect, Probe, Scenario, Src};
use super::skoop::{self, Verdict};
use super::topo::{Backend, BuildOptions, Cluster, ClusterData, Tables};

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
    /// The kernel did what the scenario was designed for.
    as_designed: bool,
    skoop: &'static str,
    /// When the kernel breaks the flow: a CRITICAL/FATAL suspicion holds the
    /// scenario's keywords ("yes"/"no"); "-" otherwise.
    keywords: &'static str,
    cause: String,
    agree: bool,
}

/// Which scenarios, and how much to print.
pub struct Group {
    pub scenarios: Vec<Scenario>,
    /// Print every scenario's CRITICAL/FATAL and WARNING suspicions, not only
    /// those of disagreements.
    pub verbose: bool,
}

/// Runs a group; fails when skoop and the kernel disagree anywhere, or when
/// the kernel does not do what a scenario was designed for.
///
/// KERNEL_BENCH_ONLY=TEXT runs the scenarios whose name contains TEXT;
/// KERNEL_BENCH_KERNEL_ONLY=1 only probes the kernel (to check a scenario's
/// design without collecting and diagnosing).
pub fn run(group: Group) -> Result<(), String> {
    let started = Instant::now();
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut data: BTreeMap<(&str, &str), ClusterData> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut collect_times = Vec::new();
    let only = std::env::var("KERNEL_BENCH_ONLY").ok();
    let kernel_only = std::env::var("KERNEL_BENCH_KERNEL_ONLY").as_deref() == Ok("1");
    for sc in &group.scenarios {
        for (&backend, &tables) in sc
            .backends
            .iter()
            .flat_map(|b| sc.tables.iter().map(move |t| (b, t)))
        {
            let name = format!("{}-{}{}", backend.name(), sc.name, tables.suffix());
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
            let run = Run {
                sc,
                backend,
                tables,
                name: &name,
                kernel_only,
                verbose: group.verbose,
            };
            let row = scenario(&run, d, &bundle, &mut collect_times)
                .map_err(|e| format!("scenario {name}: {e}"))?;
            if !row.agree && !kernel_only {
                keep_bundle(&bundle, &name);
            }
            say!(
                "{:<52} kernel={:<28}{} skoop={:<5} keywords={:<3} agree={}",
                row.name,
                row.kernel,
                if row.as_designed {
                    ""
                } else {
                    " (NOT AS DESIGNED)"
                },
                row.skoop,
                row.keywords,
                row.agree
            );
            rows.push(row);
        }
    }
    print_table(&rows);
    let agreed = rows.iter().filter(|r| r.agree).count();
    let misdesigned: Vec<&str> = rows
        .iter()
        .filter(|r| !r.as_designed)
        .map(|r| r.name.as_str())
        .collect();
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
    if !misdesigned.is_empty() {
        return Err(format!(
            "the kernel did not do what these scenarios were designed for (fix the scenario, not skoop): {}",
            misdesigned.join(", ")
        ));
    }
    if agreed != rows.len() {
        return Err(format!(
            "{} scenario(s) where skoop and the kernel disagree (bundles kept under /tmp/kernel-bench-<scenario>)",
            rows.len() - agreed
        ));
    }
    Ok(())
}

/// One scenario on one flannel backend and one iptables backend.
struct Run<'a> {
    sc: &'a Scenario,
    backend: Backend,
    tables: Tables,
    name: &'a str,
    kernel_only: bool,
    verbose: bool,
}

fn scenario(
    run: &Run,
    data: &ClusterData,
    bundle: &Path,
    collect_times: &mut Vec<Duration>,
) -> Result<Row, String> {
    let (sc, name) = (run.sc, run.name);
    let cluster = Cluster::build(
        run.backend,
        data,
        BuildOptions {
            silent_pod: sc.silent_pod,
            tables: run.tables,
        },
    )?;
    if let Some(inject) = sc.fault {
        inject(&cluster)?;
    }
    let kernel = ask_kernel(&cluster, sc)?;
    let kernel_text = if kernel.ok {
        "ok".to_string()
    } else {
        format!("broken ({})", kernel.detail)
    };
    let as_designed = kernel.ok == sc.expect.kernel_reaches();
    if run.kernel_only {
        return Ok(Row {
            name: name.to_string(),
            what: sc.what,
            kernel: kernel_text,
            as_designed,
            skoop: "-",
            keywords: "-",
            cause: "-".into(),
            agree: as_designed,
        });
    }
    collect_times.extend(skoop::bundle(&cluster, bundle)?);
    let f = sc.flow;
    let verdict = skoop::diagnose(bundle, f.src_ip, f.dst, f.port, f.protocol())?;
    drop(cluster);
    let (agree, cause) = judge(sc, &kernel, &verdict);
    if !agree || run.verbose {
        say!(
            "--- {name}: kernel {kernel:?}; skoop exit {}:",
            verdict.exit
        );
        for s in &verdict.suspicions {
            if run.verbose && !matches!(s.level.as_str(), "CRITICAL" | "FATAL" | "WARNING") {
                continue;
            }
            say!("    {} [{}] {}", s.level, s.node, s.message);
        }
    }
    let keywords = match sc.expect {
        Expect::Agree(cause) if !kernel.ok => {
            if verdict.names(SEVERE, cause).is_some() {
                "yes"
            } else {
                "no"
            }
        }
        _ => "-",
    };
    Ok(Row {
        name: name.to_string(),
        what: sc.what,
        kernel: kernel_text,
        as_designed,
        skoop: if verdict.broken() { "3" } else { "0" },
        keywords,
        cause,
        agree,
    })
}

fn ask_kernel(c: &Cluster, sc: &Scenario) -> Result<Outcome, String> {
    let f = sc.flow;
    let from = match f.src {
        Src::Pod(key) => c.pod(key)?,
        Src::Node(node) => c.node(node)?,
        Src::Outside => {
            // The client's address lives in the VPC netns, the nodes' default gateway.
            super::sh::ip(&c.vpc, &format!("addr add {}/32 dev lo", f.src_ip))?;
            super::sh::ip(&c.vpc, "link set lo up")?;
            let mut last = None;
            for _ in 0..12 {
                let o = probe::tcp_from(&c.vpc, f.src_ip, f.dst, f.port)?;
                if !o.ok || f.probe != Probe::TcpEveryBackend {
                    return Ok(o);
                }
                last = Some(o);
            }
            return last.ok_or_else(|| "no probe ran".to_string());
        }
    };
    match f.probe {
        Probe::Tcp => probe::tcp(from, f.dst, f.port),
        Probe::TcpBound => probe::tcp_from(from, f.src_ip, f.dst, f.port),
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
        "\n{:<52} | {:<60} | {:<30} | {:<5} | {:<8} | {:<6} | named cause",
        "scenario",
        "fault",
        "kernel",
        "skoop",
        "keywords",
        "agree?"
    );
    say!("{}", "-".repeat(210));
    for r in rows {
        let cause: String = r.cause.chars().take(160).collect();
        say!(
            "{:<52} | {:<60} | {:<30} | {:<5} | {:<8} | {:<6} | {}",
            r.name,
            r.what,
            r.kernel,
            r.skoop,
            r.keywords,
            if r.agree { "yes" } else { "NO" },
            cause
        );
    }
}
