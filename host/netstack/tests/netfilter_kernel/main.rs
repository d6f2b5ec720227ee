//! Differential test: the netfilter/routing simulator against the real
//! kernel. For each corpus a router netns carries the ruleset between two
//! client namespaces and a server namespace; real TCP SYNs and UDP datagrams
//! go through it, and the kernel's fate of each (delivered where, from which
//! source; dropped; rejected) must be one the simulator gives for the same
//! packet on the router's own `iptables-save` and `ipset save`.
//!
//! Needs root, iproute2, iptables and ipset. Without them the test fails
//! saying what to install, unless SKOOP_SKIP_KERNEL_TESTS=1.

#[path = "../support/command.rs"]
mod command;
mod corpus;
mod fate;
mod iproute;
mod lab;
mod probe;
mod sim;

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use skoop_netstack::packet::{Packet, Protocol};

use corpus::{Corpus, Side};
use fate::{Fate, Host};
use lab::{Backend, CLIENT_A, CLIENT_B, Lab, SERVER_ADDRS, TCP_PORTS, UDP_PORTS, router_addrs};

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// What is missing to run against the kernel, if anything.
fn missing_prerequisites() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("must run as root (network namespaces, iptables)".into());
    }
    let tools = [
        ("ip", "iproute2"),
        ("iptables-restore", "iptables"),
        ("iptables-save", "iptables"),
        ("ipset", "ipset"),
        ("sysctl", "procps"),
    ];
    let missing: Vec<String> = tools
        .iter()
        .filter(|(t, _)| !on_path(t))
        .map(|(t, pkg)| format!("{t} (apt-get install {pkg})"))
        .collect();
    (!missing.is_empty()).then(|| format!("missing tools: {}", missing.join(", ")))
}

struct Disagreement {
    corpus: String,
    packet: String,
    kernel: Fate,
    sim: String,
}

fn sim_text(s: &sim::SimFates) -> String {
    let mut t = s
        .fates
        .iter()
        .map(Fate::to_string)
        .collect::<Vec<_>>()
        .join(" | ");
    if t.is_empty() {
        t = "(no outcome)".into();
    }
    if s.uncertain {
        t.push_str(" [uncertain]");
    }
    for n in &s.notes {
        t.push_str(&format!("\n      note: {n}"));
    }
    t
}

/// Runs one corpus; returns (agree, disagreements).
fn run_corpus(
    c: &Corpus,
    backend: Backend,
    tag: usize,
) -> Result<(u32, Vec<Disagreement>), String> {
    let mut lab = Lab::new(&tag.to_string());
    lab.build()?;
    lab.load(c.iptables, c.ipsets, c.ip_rules, c.ip_routes, backend)?;
    let (save, sets) = lab.router_dumps(backend)?;
    let mut rules = Vec::new();
    if !c.ip_rules.is_empty() {
        rules = iproute::default_rules();
        for r in c.ip_rules {
            rules.push(iproute::rule(r).ok_or_else(|| format!("cannot read ip rule \"{r}\""))?);
        }
    }
    let mut routes = Vec::new();
    for r in c.ip_routes {
        routes.push(iproute::route(r).ok_or_else(|| format!("cannot read ip route \"{r}\""))?);
    }
    let router = sim::router(save, sets, rules, routes);

    let log: probe::Log = Arc::new(Mutex::new(HashMap::new()));
    let _server = probe::receiver(
        lab.ns("s"),
        Host::Server,
        &TCP_PORTS,
        SERVER_ADDRS.to_vec(),
        &UDP_PORTS,
        log.clone(),
    )?;
    let _router_rx = probe::receiver(
        lab.ns("r"),
        Host::Router,
        &TCP_PORTS,
        router_addrs().to_vec(),
        &UDP_PORTS,
        log.clone(),
    )?;

    let mut agree = 0;
    let mut bad = Vec::new();
    let mut id = 0u32;
    for spec in &c.probes {
        let client = match spec.from {
            Side::A => CLIENT_A,
            Side::B => CLIENT_B,
        };
        for _ in 0..spec.repeat {
            id += 1;
            let sport = 20000 + u16::try_from(id).unwrap_or(0);
            let packet = Packet {
                src: client.addr,
                sport,
                dst: spec.dst,
                dport: spec.dport,
                protocol: if spec.udp {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                },
                mark: 0,
                encap: None,
                reply: false,
                tos: 0,
                size: 0,
                icmp: None,
            };
            let kernel = probe::send(
                &probe::Send {
                    ns: lab.ns(client.name),
                    src: client.addr,
                    sport,
                    dst: SocketAddrV4::new(spec.dst, spec.dport),
                    udp: spec.udp,
                    id,
                },
                &log,
            )?;
            let simulated = sim::simulate(&router, client.router_if, &packet)?;
            if std::env::var_os("SKOOP_NF_VERBOSE").is_some() {
                println!(
                    "  [{}] {}: kernel {kernel}; simulator {}",
                    c.name,
                    packet.tuple(),
                    sim_text(&simulated)
                );
            }
            let exact = spec.repeat > 1 || simulated.fates.len() == 1;
            if simulated.fates.contains(&kernel) && exact && !simulated.uncertain {
                agree += 1;
            } else {
                bad.push(Disagreement {
                    corpus: format!("{} ({})", c.name, backend.name()),
                    packet: format!("{} (in on {})", packet.tuple(), client.router_if),
                    kernel,
                    sim: sim_text(&simulated),
                });
            }
        }
    }
    Ok((agree, bad))
}

#[test]
fn simulator_agrees_with_the_kernel() {
    if let Some(why) = missing_prerequisites() {
        if std::env::var("SKOOP_SKIP_KERNEL_TESTS").as_deref() == Ok("1") {
            println!("netfilter-kernel: skipped (SKOOP_SKIP_KERNEL_TESTS=1): {why}");
            return;
        }
        panic!(
            "netfilter-kernel: {why}. Install iproute2, iptables, ipset and procps and run as root, \
             or set SKOOP_SKIP_KERNEL_TESTS=1 to skip"
        );
    }
    let start = Instant::now();
    let mut all_bad = Vec::new();
    let mut summary = Vec::new();
    // The legacy backend too, where the kernel and the tools have it.
    let mut backends = vec![Backend::Nft];
    if on_path("iptables-legacy-restore") && on_path("iptables-legacy-save") {
        backends.push(Backend::Legacy);
    } else {
        println!("netfilter-kernel: iptables-legacy-restore not found; nft backend only");
    }
    let mut tag = 0;
    for backend in backends {
        for c in &corpus::all() {
            tag += 1;
            match run_corpus(c, backend, tag) {
                Ok((agree, bad)) => {
                    let line = format!(
                        "{} ({}): {agree} agree, {} disagree",
                        c.name,
                        backend.name(),
                        bad.len()
                    );
                    println!("{line}");
                    summary.push(line);
                    all_bad.extend(bad);
                }
                Err(e) => panic!("corpus {} ({}): could not run: {e}", c.name, backend.name()),
            }
        }
    }
    println!("netfilter-kernel: {:.1?} in all", start.elapsed());
    if !all_bad.is_empty() {
        let mut msg = format!("{}\n\nDisagreements:\n", summary.join("\n"));
        for d in &all_bad {
            msg.push_str(&format!(
                "  [{}] {}\n    kernel:    {}\n    simulator: {}\n",
                d.corpus, d.packet, d.kernel, d.sim
            ));
        }
        panic!("{msg}");
    }
}
