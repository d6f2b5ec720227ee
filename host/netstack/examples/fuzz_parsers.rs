//! A mutation fuzzer for the `iptables-save` and `ipset save` parsers (and
//! the traversal of whatever parses), for stable Rust: seeds are the dumps of
//! the fixture bundles, inputs are their mutations, splices and random token
//! soup; every input runs under `catch_unwind`.
//!
//! cargo run --release --example fuzz_parsers -- [--seconds 60] [--execs N] [--seed S]
//!
//! Prints `execs N, crashes M`; crashing inputs are written to
//! `target/fuzz-crashes/` and the exit status is 1 when there is any.

use std::net::Ipv4Addr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use skoop_netstack::netfilter::{self, Hook, IpsetStore, NetnsFacts, Ruleset, SetDir};
use skoop_netstack::packet::{Packet, Protocol};

/// Words that steer mutations towards interesting parser states.
const DICT: &[&str] = &[
    "*filter",
    "*nat",
    "*mangle",
    "*raw",
    "*security",
    ":INPUT ACCEPT [0:0]",
    ":FORWARD DROP [0:0]",
    ":X - [0:0]",
    "COMMIT",
    "-A",
    "-I",
    "-N",
    "-D",
    "INPUT",
    "FORWARD",
    "PREROUTING",
    "X",
    "-j",
    "-g",
    "-m",
    "!",
    "-s",
    "-d",
    "-i",
    "-o",
    "-p",
    "-f",
    "tcp",
    "udp",
    "icmp",
    "all",
    "--dport",
    "--sport",
    "--dports",
    "multiport",
    "set",
    "--match-set",
    "src",
    "dst",
    "src,dst,dst",
    "statistic",
    "--mode",
    "random",
    "nth",
    "--probability",
    "--every",
    "--packet",
    "mark",
    "--mark",
    "0x4000/0x4000",
    "conntrack",
    "--ctstate",
    "NEW,ESTABLISHED",
    "addrtype",
    "--dst-type",
    "LOCAL",
    "comment",
    "--comment",
    "\"a \\\" b\"",
    "'x y'",
    "physdev",
    "--physdev-is-bridged",
    "iprange",
    "--src-range",
    "1.1.1.1-1.1.1.9",
    "--tcp-flags",
    "SYN,ACK",
    "SYN",
    "--syn",
    "DNAT",
    "--to-destination",
    "10.0.0.1:80-90",
    "SNAT",
    "--to-source",
    "MASQUERADE",
    "REDIRECT",
    "--to-ports",
    "MARK",
    "--set-xmark",
    "--or-mark",
    "--and-mark",
    "--xor-mark",
    "CONNMARK",
    "--save-mark",
    "RETURN",
    "ACCEPT",
    "DROP",
    "REJECT",
    "CT",
    "--notrack",
    "TPROXY",
    "LOG",
    "[1:2]",
    "10.0.0.0/8",
    "0.0.0.0/0",
    "1.2.3.4/33",
    "255.255.255.256",
    "eth+",
    "+",
    "4294967296",
    "99999999999999999999",
    "-1",
    "0x",
    ":",
    "::1",
    "create",
    "add",
    "hash:ip",
    "hash:net",
    "hash:ip,port",
    "hash:ip,port,ip",
    "hash:ip,port,net",
    "hash:net,port",
    "hash:net,iface",
    "bitmap:port",
    "list:set",
    "hash:ip,mark",
    "family",
    "inet",
    "inet6",
    "netmask",
    "24",
    "nomatch",
    "timeout",
    "10.0.0.1,tcp:80",
    "10.0.0.0/8,eth0",
    "10.0.0.1,udp:53,10.0.0.2",
    "icmp:echo-request",
    "0-65535",
    "physdev:eth0",
    "-N",
    "\\",
    "\"",
    "'",
    "\t",
    "é",
    "\u{0}",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

struct Node;

impl NetnsFacts for Node {
    fn is_local(&self, ip: Ipv4Addr) -> bool {
        ip == Ipv4Addr::new(192, 168, 1, 10)
    }
    fn primary_address(&self, ifname: &str) -> Option<Ipv4Addr> {
        (ifname == "eth0").then_some(Ipv4Addr::new(192, 168, 1, 10))
    }
}

/// The `iptables` / `ipsets` strings of every fixture node dump.
fn seeds(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(bundles) = std::fs::read_dir(root) else {
        return out;
    };
    let mut files: Vec<PathBuf> = bundles
        .flatten()
        .flat_map(|b| {
            std::fs::read_dir(b.path().join("nodes"))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let mut netns = vec![&v["host"]];
        if let Some(pods) = v["pods"].as_array() {
            netns.extend(pods.iter().map(|p| &p["netns"]));
        }
        for ns in netns {
            for key in ["iptables", "ipsets"] {
                if let Some(s) = ns[key].as_str()
                    && !out.iter().any(|o: &String| o == s)
                {
                    out.push(s.to_string());
                }
            }
        }
    }
    out
}

fn mutate(rng: &mut Rng, seeds: &[String]) -> String {
    if seeds.is_empty() || rng.below(8) == 0 {
        // Token soup.
        let mut s = String::new();
        for _ in 0..rng.below(40) {
            s.push_str(DICT[rng.below(DICT.len())]);
            s.push(if rng.below(6) == 0 { '\n' } else { ' ' });
        }
        return s;
    }
    let mut lines: Vec<String> = seeds[rng.below(seeds.len())]
        .lines()
        .map(str::to_string)
        .collect();
    for _ in 0..=rng.below(6) {
        let n = lines.len();
        match rng.below(9) {
            0 if n > 0 => {
                lines.remove(rng.below(n));
            }
            1 if n > 0 => {
                let l = lines[rng.below(n)].clone();
                lines.insert(rng.below(n + 1), l);
            }
            2 if n > 1 => {
                let (a, b) = (rng.below(n), rng.below(n));
                lines.swap(a, b);
            }
            3 => {
                // Splice a line from another seed.
                let other = &seeds[rng.below(seeds.len())];
                let ol: Vec<&str> = other.lines().collect();
                if !ol.is_empty() {
                    lines.insert(rng.below(n + 1), ol[rng.below(ol.len())].to_string());
                }
            }
            4 | 5 if n > 0 => {
                // Replace or insert a word.
                let i = rng.below(n);
                let mut words: Vec<String> = lines[i].split(' ').map(str::to_string).collect();
                let w = rng.below(words.len() + 1);
                let tok = DICT[rng.below(DICT.len())].to_string();
                if w < words.len() && rng.below(2) == 0 {
                    words[w] = tok;
                } else {
                    words.insert(w.min(words.len()), tok);
                }
                lines[i] = words.join(" ");
            }
            6 if n > 0 => {
                // Flip a byte (kept valid UTF-8 by lossy conversion).
                let i = rng.below(n);
                let mut bytes = lines[i].clone().into_bytes();
                if !bytes.is_empty() {
                    let j = rng.below(bytes.len());
                    bytes[j] ^= 1 << rng.below(8);
                }
                lines[i] = String::from_utf8_lossy(&bytes).into_owned();
            }
            7 if n > 0 => {
                // Truncate a line.
                let i = rng.below(n);
                let cut = rng.below(lines[i].len() + 1);
                if lines[i].is_char_boundary(cut) {
                    lines[i].truncate(cut);
                }
            }
            _ => {
                let i = rng.below(n + 1);
                lines.truncate(i);
            }
        }
    }
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// Everything a dump goes through in skoop: parse, then traverse.
fn exercise(input: &str) {
    let sets = IpsetStore::parse(input).unwrap_or_default();
    for line in input.lines() {
        if let Some(name) = line
            .strip_prefix("create ")
            .and_then(|l| l.split(' ').next())
        {
            let p = packet(Protocol::Tcp);
            for dirs in [
                &[SetDir::Src][..],
                &[SetDir::Dst, SetDir::Dst],
                &[SetDir::Dst, SetDir::Dst, SetDir::Src],
            ] {
                let _ = sets.test(name, &p, dirs);
                let _ = sets.test_with_ifaces(name, &p, dirs, Some("eth0"), None);
            }
        }
    }
    if let Ok(rs) = Ruleset::parse(input) {
        for hook in [
            Hook::Prerouting,
            Hook::Input,
            Hook::Forward,
            Hook::Output,
            Hook::Postrouting,
        ] {
            for proto in [Protocol::Tcp, Protocol::Udp] {
                let mut p = packet(proto);
                let outs =
                    netfilter::traverse(&rs, &sets, &Node, hook, &p, Some("eth0"), Some("cni0"));
                assert!(!outs.is_empty(), "a traversal always has an outcome");
                p.reply = true;
                let _ = netfilter::traverse(&rs, &sets, &Node, hook, &p, None, Some("eth0"));
            }
        }
    }
}

fn packet(protocol: Protocol) -> Packet {
    Packet {
        src: Ipv4Addr::new(10, 244, 1, 5),
        sport: 40000,
        dst: Ipv4Addr::new(10, 96, 0, 10),
        dport: 80,
        protocol,
        mark: 0x4000,
        encap: None,
        reply: false,
        tos: 0,
        size: 0,
        icmp: None,
    }
}

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() {
    let seconds = arg("--seconds").unwrap_or(60);
    let max_execs = arg("--execs").unwrap_or(u64::MAX);
    let mut rng = Rng(arg("--seed").unwrap_or(0x5eed_1234_abcd_ef01) | 1);
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = seeds(&here.join("../tests/fixtures/bundles"));
    let crash_dir = here.join("../target/fuzz-crashes");
    let last_panic: Arc<Mutex<String>> = Arc::default();
    let lp = last_panic.clone();
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(mut l) = lp.lock() {
            *l = info.to_string();
        }
    }));
    println!("fuzz_parsers: {} seeds, budget {seconds} s", seeds.len());
    let start = Instant::now();
    let budget = Duration::from_secs(seconds);
    let (mut execs, mut crashes) = (0u64, 0u64);
    // Every seed as is first.
    let mut queue: Vec<String> = seeds.clone();
    while start.elapsed() < budget && execs < max_execs {
        let input = queue.pop().unwrap_or_else(|| mutate(&mut rng, &seeds));
        execs += 1;
        if catch_unwind(AssertUnwindSafe(|| exercise(&input))).is_err() {
            crashes += 1;
            let _ = std::fs::create_dir_all(&crash_dir);
            let path = crash_dir.join(format!("crash-{crashes}.txt"));
            let _ = std::fs::write(&path, &input);
            let why = last_panic.lock().map(|l| l.clone()).unwrap_or_default();
            eprintln!(
                "crash {crashes}: {why}\n  input saved to {}",
                path.display()
            );
        }
    }
    println!(
        "execs {execs}, crashes {crashes} ({:.1} s, {:.0} execs/s)",
        start.elapsed().as_secs_f64(),
        execs as f64 / start.elapsed().as_secs_f64().max(1e-9)
    );
    if crashes > 0 {
        std::process::exit(1);
    }
}
