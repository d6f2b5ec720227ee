//! Runs every scenario on every backend it applies to and prints the
//! agreement table.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cause::Cause;
use super::probe::{self, Outcome};
use super::scenarios::{Expect, Probe, Scenario, Src};
use super::skoop::{self, Verdict};
use super::topo::{Backend, BuildOptions, Cluster, ClusterData, Tables};
use skoop_netstack::probe::ProbeResult;

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
    /// When the kernel breaks the flow (or survives a fault skoop must warn
    /// about): a CRITICAL/FATAL (WARNING) suspicion names the entity at
    /// fault ("yes"/"no"); "-" otherwise.
    named: &'static str,
    cause: String,
    agree: bool,
}

/// The third judge of a scenario: the collector's real connection attempt
/// (`skoop collect probe`) from the source, against skoop's verdict.
struct ProbeRow {
    name: String,
    result: ProbeResult,
    /// The command's wall time: process start, netns entry, every attempt.
    took: Duration,
    agrees: bool,
    conclusive: bool,
    why: String,
}

/// Which scenarios, and how much to print.
pub struct Group {
    /// The test function running it: `KERNEL_BENCH_ONLY` is judged against
    /// the groups of this run (see `filter_selects_nothing`).
    pub name: &'static str,
    pub scenarios: Vec<Scenario>,
    /// Print every scenario's CRITICAL/FATAL and WARNING suspicions, not only
    /// those of disagreements.
    pub verbose: bool,
    /// Also probe each flow with `skoop collect probe` and require it to
    /// agree with skoop's verdict.
    pub probe: bool,
}

/// Every group of the bench: its test function's name and its scenarios.
pub type Catalogue = &'static [(&'static str, fn() -> Vec<Scenario>)];

/// The runs of a scenario: its name on each backend and iptables backend.
fn runs(sc: &Scenario) -> impl Iterator<Item = (String, Backend, Tables)> + '_ {
    sc.backends.iter().flat_map(move |&b| {
        sc.tables
            .iter()
            .map(move |&t| (format!("{}-{}{}", b.name(), sc.name, t.suffix()), b, t))
    })
}

/// Runs a group; fails when skoop and the kernel disagree anywhere, when
/// the kernel does not do what a scenario was designed for, or when
/// KERNEL_BENCH_ONLY selects no scenario in any group of this run.
///
/// KERNEL_BENCH_ONLY=TEXT runs the scenarios whose name contains TEXT;
/// KERNEL_BENCH_KERNEL_ONLY=1 only probes the kernel (to check a scenario's
/// design without collecting and diagnosing).
pub fn run(group: Group, all: Catalogue) -> Result<(), String> {
    let started = Instant::now();
    let only = std::env::var("KERNEL_BENCH_ONLY").ok();
    if let Some(o) = &only {
        filter_selects_nothing(o, all, &test_filter(std::env::args().skip(1)))?;
    }
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut data: BTreeMap<(&str, &str), ClusterData> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut collect_times = Vec::new();
    let mut probes: Vec<ProbeRow> = Vec::new();
    let kernel_only = std::env::var("KERNEL_BENCH_KERNEL_ONLY").as_deref() == Ok("1");
    for sc in &group.scenarios {
        for (name, backend, tables) in runs(sc) {
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
                probe: group.probe,
            };
            let row = scenario(&run, d, &bundle, &mut collect_times, &mut probes)
                .map_err(|e| format!("scenario {name}: {e}"))?;
            if !row.agree && !kernel_only {
                keep_bundle(&bundle, &name);
            }
            say!(
                "{:<56} kernel={:<28}{} skoop={:<5} named={:<3} agree={}",
                row.name,
                row.kernel,
                if row.as_designed {
                    ""
                } else {
                    " (NOT AS DESIGNED)"
                },
                row.skoop,
                row.named,
                row.agree
            );
            rows.push(row);
        }
    }
    if rows.is_empty() {
        say!(
            "{}: KERNEL_BENCH_ONLY={:?} selects none of this group's scenarios (others of this run have some)",
            group.name,
            only.unwrap_or_default()
        );
        return Ok(());
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
    let disagreeing = print_probes(&probes);
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
    if !disagreeing.is_empty() {
        return Err(format!(
            "the probe (skoop collect probe) disagrees with skoop's verdict on: {}",
            disagreeing.join(", ")
        ));
    }
    Ok(())
}

/// The probe's agreement count and its time per flow; the names of the
/// scenarios where it disagrees.
fn print_probes(probes: &[ProbeRow]) -> Vec<String> {
    if probes.is_empty() {
        return Vec::new();
    }
    let agreed = probes.iter().filter(|p| p.agrees).count();
    let inconclusive: Vec<&str> = probes
        .iter()
        .filter(|p| !p.conclusive)
        .map(|p| p.name.as_str())
        .collect();
    let spread = |rows: Vec<&ProbeRow>| -> String {
        let mut t: Vec<f64> = rows.iter().map(|p| p.took.as_secs_f64() * 1000.0).collect();
        if t.is_empty() {
            return "none".into();
        }
        t.sort_by(f64::total_cmp);
        let median = if t.len() % 2 == 1 {
            t[t.len() / 2]
        } else {
            (t[t.len() / 2 - 1] + t[t.len() / 2]) / 2.0
        };
        format!(
            "min {:.0} ms, median {:.0} ms, max {:.0} ms over {} flows",
            t[0],
            median,
            t[t.len() - 1],
            t.len()
        )
    };
    say!(
        "probe agrees {agreed}/{} ({} inconclusive{}{})",
        probes.len(),
        inconclusive.len(),
        if inconclusive.is_empty() { "" } else { ": " },
        inconclusive.join(", ")
    );
    say!(
        "probe time per flow (skoop collect probe, wall, default 3 attempts × 3 s): {}",
        spread(probes.iter().collect())
    );
    say!(
        "  got through: {}",
        spread(probes.iter().filter(|p| p.result.reached()).collect())
    );
    say!(
        "  did not: {}",
        spread(probes.iter().filter(|p| !p.result.reached()).collect())
    );
    probes
        .iter()
        .filter(|p| !p.agrees)
        .map(|p| format!("{} ({}: {})", p.name, p.result.detail, p.why))
        .collect()
}

/// The test harness's own selection, from its arguments: name filters
/// (substrings, or whole names with `--exact`) and `--skip` filters.
#[derive(Debug, Default, PartialEq)]
pub struct TestFilter {
    names: Vec<String>,
    skips: Vec<String>,
    exact: bool,
}

impl TestFilter {
    /// Does the harness run test function `name`?
    fn runs(&self, name: &str) -> bool {
        let hit = |f: &String| {
            if self.exact {
                name == f
            } else {
                name.contains(f.as_str())
            }
        };
        (self.names.is_empty() || self.names.iter().any(hit)) && !self.skips.iter().any(hit)
    }
}

/// Reads libtest's arguments (`cargo test -- ARGS`): positional arguments
/// are name filters; the options that take a value in the next argument
/// are skipped with it.
pub fn test_filter(args: impl Iterator<Item = String>) -> TestFilter {
    const WITH_VALUE: &[&str] = &[
        "--test-threads",
        "--format",
        "--color",
        "--logfile",
        "--shuffle-seed",
        "-Z",
    ];
    let mut f = TestFilter::default();
    let mut args = args;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--exact" => f.exact = true,
            "--skip" => f.skips.extend(args.next()),
            a if WITH_VALUE.contains(&a) => {
                args.next();
            }
            a if a.starts_with('-') => {}
            _ => f.names.push(a),
        }
    }
    f
}

/// `cargo test` runs every group with the same KERNEL_BENCH_ONLY, so a
/// filter aimed at one group selects nothing in the others, and those must
/// pass. What must not pass is a run where the filter selects nothing at
/// all (a typo would otherwise test nothing and succeed): every group of
/// the run fails then. The groups of the run are those the harness's own
/// name filters select.
pub fn filter_selects_nothing(
    only: &str,
    all: Catalogue,
    tests: &TestFilter,
) -> Result<(), String> {
    let groups: Vec<&str> = all
        .iter()
        .filter(|(name, _)| tests.runs(name))
        .map(|(name, _)| *name)
        .collect();
    let selected = all
        .iter()
        .filter(|(name, _)| tests.runs(name))
        .flat_map(|(_, scenarios)| scenarios())
        .any(|sc| runs(&sc).any(|(name, ..)| name.contains(only)));
    if selected {
        Ok(())
    } else {
        Err(format!(
            "KERNEL_BENCH_ONLY={only:?} selects no scenario in any group of this run ({})",
            groups.join(", ")
        ))
    }
}

/// One scenario on one flannel backend and one iptables backend.
struct Run<'a> {
    sc: &'a Scenario,
    backend: Backend,
    tables: Tables,
    name: &'a str,
    kernel_only: bool,
    verbose: bool,
    probe: bool,
}

fn scenario(
    run: &Run,
    data: &ClusterData,
    bundle: &Path,
    collect_times: &mut Vec<Duration>,
    probes: &mut Vec<ProbeRow>,
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
    // What a suspicion must name, from the faulted cluster, and checked
    // against it: a wrong expectation is the bench's bug, not skoop's.
    let causes: Vec<Cause> = match sc.expect {
        Expect::Reach => Vec::new(),
        Expect::Warn(causes) | Expect::Broken(causes) => causes(&cluster)?,
    };
    for c in &causes {
        c.verify(&cluster)?;
    }
    let alternatives: Vec<Vec<String>> = causes.iter().flat_map(Cause::alternatives).collect();
    if !matches!(sc.expect, Expect::Reach) {
        skoop::refuse_single_words(&alternatives)?;
    }
    let kernel = ask_kernel(&cluster, sc)?;
    let mut kernel_text = if kernel.ok {
        "ok".to_string()
    } else {
        format!("broken ({})", kernel.detail)
    };
    let mut as_designed = kernel.ok == sc.expect.kernel_reaches();
    if let Some(check) = sc.check
        && let Err(why) = check(&cluster, &kernel)
    {
        as_designed = false;
        kernel_text = format!("{kernel_text}; {why}");
    }
    if run.kernel_only {
        return Ok(Row {
            name: name.to_string(),
            what: sc.what,
            kernel: kernel_text,
            as_designed,
            skoop: "-",
            named: "-",
            cause: "-".into(),
            agree: as_designed,
        });
    }
    collect_times.extend(skoop::bundle(&cluster, bundle)?);
    let f = sc.flow;
    let verdict = skoop::diagnose(bundle, f.src_ip, f.dst, f.port, f.protocol())?;
    if run.probe {
        let row = ask_collector(&cluster, sc, name, &verdict)?;
        say!(
            "    probe: {} in {:.0} ms — {}{}",
            row.result.detail,
            row.took.as_secs_f64() * 1000.0,
            if row.agrees { "agrees" } else { "DISAGREES" },
            if row.conclusive {
                String::new()
            } else {
                format!(" (inconclusive: {})", row.why)
            }
        );
        probes.push(row);
    }
    drop(cluster);
    let judged = judge(sc.expect, &alternatives, &kernel, &verdict)?;
    if !judged.agree || run.verbose {
        say!(
            "--- {name}: kernel {kernel:?}; skoop exit {}:",
            verdict.exit
        );
        if !judged.agree {
            say!("    expected one of: {alternatives:?}");
        }
        for s in &verdict.suspicions {
            if run.verbose && !matches!(s.level.as_str(), "CRITICAL" | "FATAL" | "WARNING") {
                continue;
            }
            say!("    {} [{}] {}", s.level, s.node, s.message);
        }
    }
    Ok(Row {
        name: name.to_string(),
        what: sc.what,
        kernel: kernel_text,
        as_designed,
        skoop: if verdict.broken() { "3" } else { "0" },
        named: judged.named,
        cause: judged.cause,
        agree: judged.agree && as_designed,
    })
}

/// The source netns of a scenario's flow; an outside client's address is
/// on the VPC netns's loopback (`ask_kernel` put it there).
fn source_netns<'c>(c: &'c Cluster, sc: &Scenario) -> Result<&'c str, String> {
    match sc.flow.src {
        Src::Pod(key) => c.pod(key),
        Src::Node(node) => c.node(node),
        Src::Outside => Ok(c.vpc.as_str()),
    }
}

/// The third judge: `skoop collect probe` from the flow's source, with
/// the source address bound as `diagnose --probe` binds it, judged against
/// skoop's verdict by the library's own comparison.
fn ask_collector(
    c: &Cluster,
    sc: &Scenario,
    name: &str,
    verdict: &Verdict,
) -> Result<ProbeRow, String> {
    let f = sc.flow;
    let count = match f.probe {
        // As the kernel judge: enough connects to meet every backend.
        Probe::TcpEveryBackend => 12,
        Probe::TcpSpread(n) => u32::try_from(n).unwrap_or(20).min(20),
        _ => 3,
    };
    let plan = skoop::ProbePlan {
        src: f.src_ip,
        dst: f.dst,
        port: f.port,
        protocol: f.protocol(),
        count,
        expect_reply: f.protocol() == "udp",
    };
    let (result, took) = skoop::probe(source_netns(c, sc)?, plan)?;
    let cmp = skoop_engine::probe::compare(verdict.simulated(), &result);
    Ok(ProbeRow {
        name: name.to_string(),
        result,
        took,
        agrees: cmp.agrees,
        conclusive: cmp.conclusive,
        why: cmp.why,
    })
}

/// Runs the scenario's probe from its source.
fn ask_kernel(c: &Cluster, sc: &Scenario) -> Result<Outcome, String> {
    let f = sc.flow;
    // The source netns, and the address to bind when not the kernel's pick.
    let (from, bind) = match f.src {
        Src::Pod(key) => (c.pod(key)?, None),
        Src::Node(node) => (c.node(node)?, None),
        Src::Outside => {
            // The client's address lives in the VPC netns, the nodes' default gateway.
            super::sh::ip(&c.vpc, &format!("addr add {}/32 dev lo", f.src_ip))?;
            super::sh::ip(&c.vpc, "link set lo up")?;
            (c.vpc.as_str(), Some(f.src_ip))
        }
    };
    let bind = if f.probe == Probe::TcpBound {
        Some(f.src_ip)
    } else {
        bind
    };
    let connect = || probe::connect(from, bind, f.dst, f.port);
    match f.probe {
        Probe::Tcp | Probe::TcpBound => connect(),
        Probe::TcpEveryBackend => {
            // kube-proxy picks a backend at random per connection: 12 tries
            // miss one of two backends with probability 2^-11.
            let mut all = Outcome::default();
            for _ in 0..12 {
                let o = connect()?;
                all.tries.extend(o.tries);
                if !o.ok {
                    return Ok(Outcome {
                        tries: all.tries,
                        ..o
                    });
                }
            }
            Ok(Outcome {
                ok: true,
                detail: "12 connects".into(),
                tries: all.tries,
            })
        }
        Probe::TcpSpread(n) => {
            // Every connection, failed or not: which ones fail is the answer.
            let mut tries = Vec::new();
            for _ in 0..n {
                let o = probe::exchange(
                    from,
                    bind,
                    f.dst,
                    f.port,
                    probe::SPREAD_BYTES,
                    probe::SPREAD_TIMEOUT,
                )?;
                tries.extend(o.tries);
            }
            let failed = tries.iter().filter(|(_, ok)| !ok).count();
            Ok(Outcome {
                ok: failed == 0,
                detail: format!("{failed} of {n} connections failed"),
                tries,
            })
        }
        Probe::Bulk => probe::bulk(from, bind, f.dst, f.port),
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

struct Judged {
    agree: bool,
    /// Whether the suspicion the expectation needs names a cause: "yes",
    /// "no", or "-" when none is needed.
    named: &'static str,
    cause: String,
}

/// Does skoop agree with the kernel, and does the suspicion the scenario
/// needs name one of its causes (`alternatives`: each cause's texts)?
fn judge(
    expect: Expect,
    alternatives: &[Vec<String>],
    kernel: &Outcome,
    v: &Verdict,
) -> Result<Judged, String> {
    let shown = |s: &skoop::Suspicion| format!("{} [{}] {}", s.level, s.node, s.message);
    Ok(match expect {
        Expect::Reach | Expect::Broken(_) if kernel.ok == v.broken() => Judged {
            agree: false,
            named: "-",
            cause: first_severe(v),
        },
        Expect::Reach => Judged {
            agree: true,
            named: "-",
            cause: "-".into(),
        },
        // The kernel reached a scenario designed to break: the row is
        // misdesigned, and skoop agreeing with the kernel is all there is.
        Expect::Broken(_) if kernel.ok => Judged {
            agree: true,
            named: "-",
            cause: "-".into(),
        },
        Expect::Broken(_) => match v.names(SEVERE, alternatives)? {
            Some(s) => Judged {
                agree: true,
                named: "yes",
                cause: shown(s),
            },
            None => Judged {
                agree: false,
                named: "no",
                cause: format!("no CRITICAL/FATAL names it; first: {}", first_severe(v)),
            },
        },
        Expect::Warn(_) => {
            let warning = v.names(&["WARNING"], alternatives)?;
            match (kernel.ok, v.broken(), warning) {
                (true, false, Some(s)) => Judged {
                    agree: true,
                    named: "yes",
                    cause: shown(s),
                },
                (true, false, None) => Judged {
                    agree: false,
                    named: "no",
                    cause: "exit 0, but no WARNING names the fault".into(),
                },
                _ => Judged {
                    agree: false,
                    named: "-",
                    cause: format!("expected exit 0 with a WARNING; first: {}", first_severe(v)),
                },
            }
        }
    })
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
        "\n{:<56} | {:<60} | {:<30} | {:<5} | {:<8} | {:<6} | named cause",
        "scenario",
        "fault",
        "kernel",
        "skoop",
        "named",
        "agree?"
    );
    say!("{}", "-".repeat(210));
    for r in rows {
        let cause: String = r.cause.chars().take(160).collect();
        say!(
            "{:<56} | {:<60} | {:<30} | {:<5} | {:<8} | {:<6} | {}",
            r.name,
            r.what,
            r.kernel,
            r.skoop,
            r.named,
            if r.agree { "yes" } else { "NO" },
            cause
        );
    }
}
