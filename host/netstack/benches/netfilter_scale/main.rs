//! Netfilter simulator at kube-proxy scale (not a timed test): parse + index
//! of an `iptables-save` dump with N services × 3 endpoints, one traced
//! packet to a service, and `iptables-restore --test` on the same dump.
//!
//! `cargo bench --bench netfilter_scale` (release build). Sizes can be given
//! as arguments: `cargo bench --bench netfilter_scale -- 1000 5000`.

mod kube_dump;

use std::hint::black_box;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use skoop_netstack::netfilter::{self, Hook, IpsetStore, NetnsFacts, Ruleset, Verdict};
use skoop_netstack::packet::{Packet, Protocol};

/// The node: eth0 192.168.1.10, cni0 10.244.1.1.
struct Node;

impl NetnsFacts for Node {
    fn is_local(&self, ip: Ipv4Addr) -> bool {
        ip == Ipv4Addr::new(192, 168, 1, 10) || ip == Ipv4Addr::new(10, 244, 1, 1)
    }
    fn primary_address(&self, ifname: &str) -> Option<Ipv4Addr> {
        match ifname {
            "eth0" => Some(Ipv4Addr::new(192, 168, 1, 10)),
            "cni0" => Some(Ipv4Addr::new(10, 244, 1, 1)),
            _ => None,
        }
    }
}

fn best_of<T>(runs: u32, mut f: impl FnMut() -> T) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let start = Instant::now();
        black_box(f());
        best = best.min(start.elapsed());
    }
    best
}

/// PREROUTING → FORWARD → POSTROUTING of one new connection from a pod to
/// service `i`; returns the number of outcomes that reached the wire.
fn trace(rules: &Ruleset, sets: &IpsetStore, i: u32) -> usize {
    let p = Packet {
        src: Ipv4Addr::new(10, 244, 1, 5),
        sport: 40000,
        dst: kube_dump::vip(i),
        dport: 80,
        protocol: Protocol::Tcp,
        mark: 0,
        encap: None,
        reply: false,
        tos: 0,
        size: 0,
        icmp: None,
    };
    let mut delivered = 0;
    for o in netfilter::traverse(rules, sets, &Node, Hook::Prerouting, &p, Some("cni0"), None) {
        if o.verdict != Verdict::Accept {
            continue;
        }
        let f = netfilter::traverse(
            rules,
            sets,
            &Node,
            Hook::Forward,
            &o.packet,
            Some("cni0"),
            Some("eth0"),
        );
        for o2 in f.into_iter().filter(|o| o.verdict == Verdict::Accept) {
            let post = netfilter::traverse(
                rules,
                sets,
                &Node,
                Hook::Postrouting,
                &o2.packet,
                Some("cni0"),
                Some("eth0"),
            );
            delivered += post.iter().filter(|o| o.verdict == Verdict::Accept).count();
        }
    }
    delivered
}

fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return f64::NAN;
    }
    ru.ru_maxrss as f64 / 1024.0
}

/// `iptables-restore --test` wall time on `text`, in a throw-away netns.
fn iptables_restore_test(text: &str) -> Result<Duration, String> {
    let ns = format!("sknf-{}-bench", std::process::id());
    let status = Command::new("ip").args(["netns", "add", &ns]).status();
    if !status.is_ok_and(|s| s.success()) {
        return Err("cannot create a netns (needs root and iproute2)".into());
    }
    let run_once = || -> Result<Duration, String> {
        let start = Instant::now();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns, "iptables-restore", "--test"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("iptables-restore: {e}"))?;
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let took = start.elapsed();
        if !out.status.success() {
            return Err(format!(
                "iptables-restore --test failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(took)
    };
    let mut best = Duration::MAX;
    let mut result = Ok(());
    for _ in 0..3 {
        match run_once() {
            Ok(d) => best = best.min(d),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    result.map(|()| best)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1000, 5000, 10_000]
    } else {
        sizes
    };
    println!(
        "{:>7} {:>8} {:>11} {:>10} {:>11} {:>12} {:>14} {:>6} {:>9}",
        "N",
        "rules",
        "parse+idx",
        "ipsets",
        "trace last",
        "trace median",
        "restore --test",
        "ratio",
        "peak RSS"
    );
    for n in sizes {
        let (text, rules) = kube_dump::iptables_save(n);
        let sets_text = kube_dump::ipset_save(n);
        let parse = best_of(5, || Ruleset::parse(&text).map(|r| r.rule_count()));
        let Ok(rs) = Ruleset::parse(&text) else {
            eprintln!("generated dump does not parse");
            std::process::exit(1);
        };
        assert_eq!(rs.rule_count(), rules, "every generated rule is parsed");
        let ipsets = best_of(5, || IpsetStore::parse(&sets_text).map(|s| s.len()));
        let sets = IpsetStore::parse(&sets_text).unwrap_or_default();
        // The last service is the worst case for a linear KUBE-SERVICES scan.
        let last = (0..n).rev().find(|i| i % 100 != 99).unwrap_or(0);
        assert_eq!(trace(&rs, &sets, last), 3, "three endpoints reached");
        let trace_last = best_of(50, || trace(&rs, &sets, last));
        let mut each: Vec<Duration> = (0..200u32)
            .map(|k| {
                let i = (k * 7919) % n;
                let start = Instant::now();
                black_box(trace(&rs, &sets, i));
                start.elapsed()
            })
            .collect();
        each.sort();
        let median = each[each.len() / 2];
        let (restore, ratio) = match iptables_restore_test(&text) {
            Ok(d) => (
                format!("{:.1} ms", ms(d)),
                format!("{:.2}", ms(parse) / ms(d)),
            ),
            Err(e) => {
                eprintln!("iptables-restore --test not timed: {e}");
                ("n/a".to_string(), "n/a".to_string())
            }
        };
        println!(
            "{n:>7} {rules:>8} {:>8.1} ms {:>7.1} ms {:>8.3} ms {:>9.3} ms {restore:>14} {ratio:>6} {:>5.0} MiB",
            ms(parse),
            ms(ipsets),
            ms(trace_last),
            ms(median),
            peak_rss_mib()
        );
    }
}
