//! `skoop-collect probe`, the real binary, between two network namespaces:
//! a server listening, a port nobody listens on, DROP and REJECT rules, no
//! route, a neighbour that never answers, a lost SYN, UDP with and without
//! an answer, SCTP where this kernel has it. Each outcome is what the kernel
//! did, as the probe's JSON says it.
//!
//! Needs root, iproute2 and iptables; SKOOP_SKIP_KERNEL_TESTS=1 skips.

use std::fs::File;
use std::net::{TcpListener, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use skoop_netstack::probe::{ProbeOutcome, ProbeResult};

const BIN: &str = env!("CARGO_BIN_EXE_skoop-collect");

fn sh(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether the kernel tests can run here; panics with why when they cannot
/// and were not asked to be skipped.
fn ready() -> bool {
    let why = if !nix::unistd::geteuid().is_root() {
        Some("not running as root".to_string())
    } else {
        ["ip", "iptables"]
            .iter()
            .find(|t| sh("sh", &["-c", &format!("command -v {t}")]).is_err())
            .map(|t| format!("{t} is missing"))
    };
    match why {
        None => true,
        Some(why) if std::env::var("SKOOP_SKIP_KERNEL_TESTS").as_deref() == Ok("1") => {
            eprintln!("probe kernel test skipped (SKOOP_SKIP_KERNEL_TESTS=1): {why}");
            false
        }
        Some(why) => panic!(
            "the probe kernel test cannot run: {why} (it needs root, iproute2 and iptables; SKOOP_SKIP_KERNEL_TESTS=1 skips it)"
        ),
    }
}

/// Two namespaces, deleted on drop: `a` (10.99.0.1, the client) and `b`
/// (10.99.0.2, the servers and the rules).
struct Pair {
    a: String,
    b: String,
    stop: Arc<AtomicBool>,
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for ns in [&self.a, &self.b] {
            let _ = sh("ip", &["netns", "del", ns]);
        }
    }
}

fn in_netns<T: Send + 'static>(ns: &str, job: impl FnOnce() -> T + Send + 'static) -> T {
    let file = File::open(format!("/run/netns/{ns}")).expect("open netns");
    std::thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
        job()
    })
    .join()
    .expect("netns thread")
}

impl Pair {
    fn build() -> Pair {
        let id = std::process::id();
        let pair = Pair {
            a: format!("skp-probe-{id}-a"),
            b: format!("skp-probe-{id}-b"),
            stop: Arc::new(AtomicBool::new(false)),
        };
        for ns in [&pair.a, &pair.b] {
            let _ = sh("ip", &["netns", "del", ns]);
            sh("ip", &["netns", "add", ns]).expect("netns add");
        }
        let ip = |ns: &str, cmd: &str| {
            let mut args = vec!["-n", ns];
            args.extend(cmd.split_whitespace());
            sh("ip", &args).expect(cmd);
        };
        ip(
            &pair.a,
            &format!("link add a0 type veth peer name b0 netns {}", pair.b),
        );
        ip(&pair.a, "addr add 10.99.0.1/24 dev a0");
        ip(&pair.b, "addr add 10.99.0.2/24 dev b0");
        for (ns, dev) in [(&pair.a, "a0"), (&pair.b, "b0")] {
            ip(ns, &format!("link set {dev} up"));
            ip(ns, "link set lo up");
        }
        // A neighbour that never answers fails in ~0.3 s rather than ~3 s.
        sh(
            "ip",
            &[
                "netns",
                "exec",
                &pair.a,
                "sysctl",
                "-qw",
                "net.ipv4.neigh.a0.retrans_time_ms=100",
            ],
        )
        .expect("sysctl");
        let rules = [
            // Dropped: the connect times out.
            "-A INPUT -p tcp --dport 8082 -j DROP",
            // Rejected as a firewall does, with ICMP admin-prohibited.
            "-A INPUT -p tcp --dport 8083 -j REJECT --reject-with icmp-admin-prohibited",
            // Rejected with a TCP reset.
            "-A INPUT -p tcp --dport 8084 -j REJECT --reject-with tcp-reset",
            // The first SYN is lost, its retransmission gets through.
            "-A INPUT -p tcp --dport 8085 --syn -m statistic --mode nth --every 2 --packet 0 -j DROP",
            // A UDP service that answers nothing, as far as the client sees.
            "-A INPUT -p udp --dport 9999 -j DROP",
        ];
        for r in rules {
            let mut args = vec!["netns", "exec", &pair.b, "iptables"];
            args.extend(r.split_whitespace());
            sh("ip", &args).expect(r);
        }
        // Servers in b: TCP 8080, 8085 (accept and close), UDP 5353 (echo).
        let stop = pair.stop.clone();
        let (tcp, udp) = in_netns(&pair.b, || {
            let tcp: Vec<TcpListener> = [8080, 8085]
                .iter()
                .map(|p| TcpListener::bind(("10.99.0.2", *p)).expect("bind tcp"))
                .collect();
            let udp = UdpSocket::bind(("10.99.0.2", 5353)).expect("bind udp");
            (tcp, udp)
        });
        for l in &tcp {
            l.set_nonblocking(true).expect("nonblocking");
        }
        udp.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::SeqCst) {
                for l in &tcp {
                    while let Ok((c, _)) = l.accept() {
                        drop(c);
                    }
                }
                if let Ok((n, from)) = udp.recv_from(&mut buf) {
                    let _ = udp.send_to(&buf[..n], from);
                }
            }
        });
        pair
    }

    /// `skoop-collect probe --netns A ARGS` and its result.
    fn probe(&self, args: &[&str]) -> (ProbeResult, Duration) {
        let started = Instant::now();
        let out = Command::new(BIN)
            .args(["probe", "--netns", &self.a])
            .args(args)
            .output()
            .expect("run skoop-collect");
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "skoop-collect probe {args:?} exited {:?}: {}{}",
            out.status.code(),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        let r = ProbeResult::parse(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        eprintln!(
            "{:<70} {:>7.1} ms  {}",
            args.join(" "),
            took.as_secs_f64() * 1000.0,
            r.detail
        );
        (r, took)
    }
}

#[test]
fn the_probe_says_what_the_kernel_did() {
    if !ready() {
        return;
    }
    let pair = Pair::build();
    let tcp = |port: &str, extra: &[&str]| {
        let mut a = vec!["--dst", "10.99.0.2", "--port", port, "--timeout", "700ms"];
        a.extend_from_slice(extra);
        pair.probe(&a)
    };

    // Listening: three connects.
    let (r, _) = tcp("8080", &[]);
    assert_eq!(r.outcome, ProbeOutcome::Connected, "{r:?}");
    assert_eq!(r.attempts.len(), 3);
    assert!(
        r.detail.starts_with("connected 3 of 3 times"),
        "{}",
        r.detail
    );
    assert!(r.attempts[0].detail.contains("from 10.99.0.1:"), "{r:?}");

    // Nobody listens: the kernel answers with a RST.
    let (r, _) = tcp("8081", &[]);
    assert_eq!(r.outcome, ProbeOutcome::Refused, "{r:?}");
    assert_eq!(r.attempts.len(), 1, "the first failure ends the probe");
    assert_eq!(r.detail, "refused: TCP RST from the destination");

    // DROP: nothing comes back.
    let (r, took) = tcp("8082", &[]);
    assert_eq!(r.outcome, ProbeOutcome::TimedOut, "{r:?}");
    assert_eq!(r.detail, "timed out after 700 ms");
    assert!(took < Duration::from_secs(3), "{took:?}");

    // REJECT with ICMP admin-prohibited: named with its sender.
    let (r, _) = tcp("8083", &[]);
    assert_eq!(r.outcome, ProbeOutcome::Unreachable, "{r:?}");
    let a = &r.attempts[0];
    assert_eq!(a.errno.as_deref(), Some("EHOSTUNREACH"), "{a:?}");
    let icmp = a.icmp.as_ref().expect("the ICMP error");
    assert_eq!((icmp.kind, icmp.code), (3, 13), "{icmp:?}");
    assert_eq!(icmp.from, Some("10.99.0.2".parse().expect("ip")));
    assert!(
        r.detail
            .contains("communication administratively prohibited (type 3 code 13) from 10.99.0.2"),
        "{}",
        r.detail
    );

    // REJECT with a TCP reset: refused, as a closed port.
    let (r, _) = tcp("8084", &[]);
    assert_eq!(r.outcome, ProbeOutcome::Refused, "{r:?}");

    // The first SYN is lost: connected, but a packet was lost on the way.
    let (r, _) = pair.probe(&["--dst", "10.99.0.2", "--port", "8085", "--count", "1"]);
    assert_eq!(r.outcome, ProbeOutcome::Retransmitted, "{r:?}");
    assert!(r.detail.contains("1 SYN retransmission"), "{}", r.detail);

    // No route in the source netns.
    let (r, _) = pair.probe(&["--dst", "10.98.0.1", "--port", "80"]);
    assert_eq!(r.outcome, ProbeOutcome::Unreachable, "{r:?}");
    assert_eq!(r.attempts[0].errno.as_deref(), Some("ENETUNREACH"), "{r:?}");
    assert!(r.detail.contains("no route to 10.98.0.1"), "{}", r.detail);

    // A neighbour that never answers ARP: the source netns tells itself.
    let (r, _) = pair.probe(&["--dst", "10.99.0.77", "--port", "80", "--timeout", "3s"]);
    assert_eq!(r.outcome, ProbeOutcome::Unreachable, "{r:?}");
    let icmp = r.attempts[0].icmp.as_ref().expect("an ICMP error");
    assert_eq!((icmp.kind, icmp.code), (3, 1), "{icmp:?}");
    assert!(r.detail.contains("from this netns itself"), "{}", r.detail);

    // UDP: an echo answers; an expected reply that never comes fails; a
    // closed port says so with ICMP; silence where no reply is expected
    // proves nothing.
    let udp = |port: &str, extra: &[&str]| {
        let mut a = vec![
            "--dst",
            "10.99.0.2",
            "--port",
            port,
            "--protocol",
            "udp",
            "--timeout",
            "500ms",
        ];
        a.extend_from_slice(extra);
        pair.probe(&a)
    };
    let (r, _) = udp("5353", &["--expect-reply"]);
    assert_eq!(r.outcome, ProbeOutcome::Answered, "{r:?}");
    assert_eq!(r.attempts.len(), 3);
    assert!(r.reached() && !r.inconclusive());
    let (r, _) = udp("5354", &[]);
    assert_eq!(r.outcome, ProbeOutcome::Refused, "{r:?}");
    assert!(r.detail.contains("port unreachable"), "{}", r.detail);
    let (r, _) = udp("9999", &[]);
    assert_eq!(r.outcome, ProbeOutcome::NoReply, "{r:?}");
    assert!(r.inconclusive(), "{r:?}");
    assert!(
        r.detail.ends_with("a UDP service need not answer"),
        "{}",
        r.detail
    );
    let (r, _) = udp("9999", &["--expect-reply"]);
    assert_eq!(r.outcome, ProbeOutcome::NoReply);
    assert!(!r.inconclusive(), "a reply was expected: {r:?}");

    // SCTP: an INIT where the kernel has SCTP, else said plainly.
    let (r, _) = pair.probe(&[
        "--dst",
        "10.99.0.2",
        "--port",
        "9003",
        "--protocol",
        "sctp",
        "--timeout",
        "500ms",
    ]);
    if r.outcome == ProbeOutcome::Unavailable {
        assert!(r.detail.contains("cannot probe sctp here"), "{}", r.detail);
    } else {
        // Nobody listens: an ABORT.
        assert_eq!(r.outcome, ProbeOutcome::Refused, "{r:?}");
    }

    // A source address the netns does not have.
    let (r, _) = tcp("8080", &["--src", "10.99.0.9"]);
    assert_eq!(r.outcome, ProbeOutcome::Unavailable, "{r:?}");
    assert!(
        r.detail.contains("cannot send from 10.99.0.9"),
        "{}",
        r.detail
    );
    let (r, _) = tcp("8080", &["--src", "10.99.0.1", "--count", "1"]);
    assert_eq!(r.outcome, ProbeOutcome::Connected, "{r:?}");
    assert_eq!(r.src, Some("10.99.0.1".parse().expect("ip")));

    // The pod form (NS/NAME=NETNS) runs in that netns too.
    let out = Command::new(BIN)
        .args(["probe", "--pod", &format!("test/client={}", pair.a)])
        .args(["--dst", "10.99.0.2", "--port", "8080", "--count", "1"])
        .output()
        .expect("run skoop-collect");
    let r = ProbeResult::parse(&String::from_utf8_lossy(&out.stdout)).expect("a result");
    assert_eq!(r.outcome, ProbeOutcome::Connected, "{r:?}");
    assert!(r.from.starts_with("pod test/client"), "{}", r.from);
}

/// Bad input is refused before anything is sent (no root needed).
#[test]
fn bad_probes_are_refused_with_what_is_wrong() {
    for (args, says) in [
        (&["--count", "50"][..], "--count 50"),
        (&["--timeout", "1m"], "--timeout"),
        (&["--protocol", "icmp"], "tcp, udp or sctp"),
        (&["--netns", "/nonexistent/netns"], "does not exist"),
        (&["--pod", "nonamespace"], "NS/NAME"),
    ] {
        let out = Command::new(BIN)
            .args(["probe", "--dst", "10.99.0.2", "--port", "80"])
            .args(args)
            .output()
            .expect("run skoop-collect");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
