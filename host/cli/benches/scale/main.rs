//! skoop at scale, measured against a reference in the same run (a benchmark,
//! not a timed test; numbers are printed, nothing is asserted but correctness):
//!
//! 1. bundle: a snapshot of two nodes carrying kube-proxy's rules for N
//!    Services (default 10k, 20k, 40k), diagnosed pod → the last Service's
//!    VIP, against `iptables-restore --test` on one node's rules;
//!    the same bundle with kube-proxy in nftables mode (the first N only,
//!    unless SKOOP_BENCH_NFT_ALL is set), against `nft -c -f` of one node's
//!    kube-proxy table;
//! 2. live: 1,000 nodes / 20,000 pods / 5,000 Services behind the fake API
//!    server of the live tests;
//! 3. start-up: `skoop diagnose --demo` with no component cache (cold) and
//!    with one (warm), `skoop --help` and `skoop extension list` cold.
//!
//! Wall time is the best of several runs; memory is the peak RSS the kernel
//! accounts to the process (`wait4`).
//!
//! `cargo bench -p skoop --bench scale [-- SERVICES...]` (release build; run
//! as root for the iptables-restore reference, which runs in its own netns;
//! `SKOOP_BENCH_BIN=PATH` measures another skoop binary on the same inputs).

#[allow(dead_code)]
#[path = "../../../../tests/live/common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../../../../tests/live/generate.rs"]
mod generate;
#[allow(dead_code)]
#[path = "../../../../tests/live/server.rs"]
mod server;

mod bundle;
mod measure;
mod nftables;

use std::path::{Path, PathBuf};
use std::process::Command;

use measure::{best_of, mib, ms};

const RUNS: u32 = 3;
/// Runs of each side of a bundle's ratio, in turn.
const BUNDLE_RUNS: u32 = 5;

/// The binary measured: this build's, or `SKOOP_BENCH_BIN` (e.g. an older
/// build, for before/after figures on the same inputs).
fn skoop_bin() -> String {
    std::env::var("SKOOP_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_skoop").to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(measure::RUSAGE_OF) {
        if let Err(e) = measure::rusage_of(&args[2..]) {
            eprintln!("{e}");
            std::process::exit(1);
        }
        return;
    }
    if let Err(e) = run() {
        eprintln!("scale benchmark failed: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| a.parse().map_err(|e| format!("{a}: {e}")))
        .collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() {
        vec![10_000, 20_000, 40_000]
    } else {
        sizes
    };
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    // SKOOP_BENCH_KEEP=DIR keeps the generated inputs there (for profiling).
    let dir = std::env::var_os("SKOOP_BENCH_KEEP")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| scratch.path().to_path_buf());
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cache = dir.join("cache");
    println!("skoop scale benchmark ({})\n", skoop_bin());
    let times = bundles(&dir, &cache, &sizes)?;
    nft_bundles(&dir, &cache, &times)?;
    live(&dir, &cache)?;
    startup(&dir)?;
    Ok(())
}

fn skoop(cache: &Path) -> Command {
    let mut c = Command::new(skoop_bin());
    c.env("SKOOP_CACHE_DIR", cache)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST");
    c
}

/// `skoop diagnose --snapshot DIR` from client-1 to the diagnosed Service.
fn diagnose(cache: &Path, dir: &Path, n: u32) -> Command {
    let vip = bundle::vip(bundle::diagnosed(n)).to_string();
    let mut c = skoop(cache);
    c.args(["diagnose", "--snapshot"]).arg(dir).args([
        "-s",
        "10.244.0.5",
        "-d",
        &vip,
        "-p",
        "80",
        "--format",
        "json",
    ]);
    c
}

/// skoop on a bundle against a reference command, measured in turn (once
/// to fill the component cache first; the figures are warm), so that a
/// slow spell of the machine falls on both rather than on one side of the
/// ratio. The reference's error, if it cannot run, is kept for the report.
fn against(
    reference: impl Fn() -> Command,
    reference_runs: u32,
    diagnose: impl Fn() -> Command,
    err: &Path,
) -> Result<(Result<measure::Run, String>, measure::Run), String> {
    best_of(1, &diagnose, err, &[0])?;
    let mut r = best_of(1, &reference, err, &[0]);
    let mut s = best_of(1, &diagnose, err, &[0])?;
    for i in 1..BUNDLE_RUNS {
        if let Ok(best) = r
            && i < reference_runs
        {
            r = best_of(1, &reference, err, &[0]).map(|n| best.best(n));
        }
        s = s.best(best_of(1, &diagnose, err, &[0])?);
    }
    Ok((r, s))
}

/// The reference's time and skoop's ratio to it, or "n/a".
fn ratio(reference: &Result<measure::Run, String>, s: &measure::Run) -> (String, String) {
    match reference {
        Ok(r) => (
            format!("{:.0}", ms(r.wall)),
            format!("{:.2}", s.wall.as_secs_f64() / r.wall.as_secs_f64()),
        ),
        Err(_) => ("n/a".into(), "n/a".into()),
    }
}

fn size(p: PathBuf) -> f64 {
    std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
}

/// The iptables-mode bundles; skoop's time on each, by N.
fn bundles(scratch: &Path, cache: &Path, sizes: &[u32]) -> Result<Vec<(u32, f64)>, String> {
    let fixture = common::vxlan();
    let err = scratch.join("stderr");
    println!("1. bundle: 2 node dumps with kube-proxy rules for N Services, pod -> last VIP");
    println!(
        "{:>7} {:>9} {:>9} {:>11} {:>12} {:>10} {:>7} {:>10} {:>12}",
        "N",
        "rules",
        "dump MB",
        "cluster MB",
        "restore ms",
        "skoop ms",
        "ratio",
        "peak MiB",
        "ms / 10k svc"
    );
    let mut times = Vec::new();
    for &n in sizes {
        let dir = scratch.join(format!("bundle-{n}"));
        let rules = bundle::write(&fixture, &dir, n)?;
        let node_rules = scratch.join(format!("rules-{n}.txt"));
        let dump = bundle::read_json(&dir.join("nodes/node-1.json"))?;
        std::fs::write(
            &node_rules,
            dump["host"]["iptables"].as_str().unwrap_or_default(),
        )
        .map_err(|e| e.to_string())?;
        drop(dump);
        let restore = || {
            let mut c = Command::new("unshare");
            c.args(["--net", "iptables-restore", "--test"])
                .arg(&node_rules);
            c
        };
        let (reference, s) = against(restore, BUNDLE_RUNS, || diagnose(cache, &dir, n), &err)?;
        let (restore, ratio) = ratio(&reference, &s);
        println!(
            "{:>7} {:>9} {:>9.1} {:>11.1} {:>12} {:>10.0} {:>7} {:>10.1} {:>12.0}",
            n,
            rules,
            size(dir.join("nodes/node-1.json")),
            size(dir.join("cluster.json")),
            restore,
            ms(s.wall),
            ratio,
            mib(s.peak_rss),
            ms(s.wall) * 10_000.0 / f64::from(n)
        );
        if let Err(e) = reference {
            println!("        (no reference: {e})");
        }
        times.push((n, ms(s.wall)));
        if std::env::var_os("SKOOP_BENCH_KEEP").is_none() {
            std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
        }
    }
    println!(
        "targets: ratio <= 0.15 and peak <= 120 MiB at 10k; time and memory at most linear in N\n"
    );
    Ok(times)
}

/// The same bundles with kube-proxy in nftables mode, against `nft -c -f`
/// of node-1's kube-proxy table (the kernel's own parser, no commit) and
/// beside the iptables-mode figure for the same N.
fn nft_bundles(scratch: &Path, cache: &Path, iptables: &[(u32, f64)]) -> Result<(), String> {
    let fixture = common::vxlan();
    let err = scratch.join("stderr");
    println!(
        "1b. the same bundles, kube-proxy in nftables mode (`nft -j list ruleset` of the loaded rules)"
    );
    println!(
        "{:>7} {:>9} {:>9} {:>9} {:>12} {:>10} {:>7} {:>10} {:>14}",
        "N",
        "rules",
        "elements",
        "dump MB",
        "nft -c ms",
        "skoop ms",
        "ratio",
        "peak MiB",
        "iptables mode"
    );
    // Loading kube-proxy's table with `nft -f` (to render the dumps) takes
    // about as long as `nft -c`, and grows faster than N: the first size
    // only, unless SKOOP_BENCH_NFT_ALL is set.
    let all = std::env::var_os("SKOOP_BENCH_NFT_ALL").is_some();
    for &(n, ipt_ms) in iptables.iter().take(if all { usize::MAX } else { 1 }) {
        let dir = scratch.join(format!("bundle-nft-{n}"));
        let written = match nftables::write(&fixture, &dir, scratch, n) {
            Ok(w) => w,
            Err(e) => {
                println!("        (skipped: {e})");
                return Ok(());
            }
        };
        // The walk must be nftables': the VIP is translated by a rule of
        // kube-proxy's table, named in the path.
        let out = diagnose(cache, &dir, n)
            .output()
            .map_err(|e| format!("skoop: {e}"))?;
        let report = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !report.contains("\"ip kube-proxy endpoint-") {
            println!(
                "{n:>7}  (not measured: skoop exited {:?} without kube-proxy's nftables rules in its path)",
                out.status.code()
            );
            continue;
        }
        let check = || {
            let mut c = Command::new("unshare");
            c.args(["--net", "nft", "-c", "-f"]).arg(&written.script);
            c
        };
        // `nft -c` takes seconds: once is enough beside skoop's five.
        let (reference, s) = against(check, 1, || diagnose(cache, &dir, n), &err)?;
        let (check, ratio) = ratio(&reference, &s);
        println!(
            "{:>7} {:>9} {:>9} {:>9.1} {:>12} {:>10.0} {:>7} {:>10.1} {:>11.0} ms",
            n,
            written.rules,
            written.elements,
            size(dir.join("nodes/node-1.json")),
            check,
            ms(s.wall),
            ratio,
            mib(s.peak_rss),
            ipt_ms
        );
        if let Err(e) = reference {
            println!("        (no reference: {e})");
        }
        if std::env::var_os("SKOOP_BENCH_KEEP").is_none() {
            std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
        }
    }
    println!();
    Ok(())
}

fn live(scratch: &Path, cache: &Path) -> Result<(), String> {
    let (mut objects, dumps) = generate::fixture(&common::vxlan());
    generate::generate(&mut objects);
    let api = server::FakeApi::start(server::State {
        objects,
        dumps,
        ..server::State::default()
    });
    let home = scratch.join("home");
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let kc = common::kubeconfig(&home, &api.url, "fake", "t0ken");
    let err = scratch.join("stderr");
    let (src, dst, port) = common::FLOW;
    let r = best_of(
        RUNS,
        || {
            let mut c = skoop(cache);
            c.env("HOME", &home)
                .args(["diagnose", "--kubeconfig"])
                .arg(&kc)
                .args(["-s", src, "-d", dst, "-p", port, "--format", "json"]);
            c
        },
        &err,
        &[0, 3],
    )?;
    let requests = api.seen().len() as u32 / RUNS;
    println!(
        "2. live: {} nodes, {} pods, {} Services via the fake API server: {:.0} ms ({:.0} ms of it skoop's CPU), peak {:.1} MiB, {} API requests per run",
        generate::NODES,
        generate::PODS,
        generate::SERVICES,
        ms(r.wall),
        ms(r.cpu),
        mib(r.peak_rss),
        requests
    );
    println!("   targets: <= 1500 ms and <= 200 MiB\n");
    Ok(())
}

fn startup(scratch: &Path) -> Result<(), String> {
    let err = scratch.join("stderr");
    let mut fresh = 0;
    let mut cold_cache = || {
        fresh += 1;
        scratch.join(format!("cold-{fresh}"))
    };
    println!("3. start-up (best of 5)");
    let cold = best_of(
        5,
        || {
            let mut c = skoop(&cold_cache());
            c.args(["diagnose", "--demo"]);
            c
        },
        &err,
        &[3],
    )?;
    let warm_cache = scratch.join("warm");
    let warm = best_of(
        5,
        || {
            let mut c = skoop(&warm_cache);
            c.args(["diagnose", "--demo"]);
            c
        },
        &err,
        &[3],
    )?;
    println!(
        "   diagnose --demo, no cache: {:.1} ms (target <= 60), peak {:.1} MiB; warm: {:.1} ms",
        ms(cold.wall),
        mib(cold.peak_rss),
        ms(warm.wall)
    );
    for args in [&["--help"][..], &["extension", "list"][..]] {
        let dir = scratch.join(format!("untouched-{}", args.join("-")));
        let r = best_of(
            5,
            || {
                let mut c = skoop(&dir);
                c.args(args);
                c
            },
            &err,
            &[0],
        )?;
        let compiled = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        println!(
            "   skoop {}, no cache: {:.1} ms, {} file(s) written to the cache",
            args.join(" "),
            ms(r.wall),
            compiled
        );
    }
    Ok(())
}
