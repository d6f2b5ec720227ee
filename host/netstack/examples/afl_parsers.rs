//! AFL++ target for the `iptables-save` and `ipset save` parsers (and the
//! traversal of what parses). Stable Rust with cargo-afl:
//!
//! ```sh
//! cargo install cargo-afl
//! CARGO_TARGET_DIR=target/afl cargo afl build --release --example afl_parsers --features afl
//! cargo afl fuzz -i SEEDS -o target/afl/out -V 60 target/afl/release/examples/afl_parsers
//! ```
//!
//! Built without cargo-afl (plain `cargo build`), it only says how to build it.
#![allow(unexpected_cfgs)]

#[cfg(fuzzing)]
fn exercise(input: &str) {
    use std::net::Ipv4Addr;

    use skoop_netstack::netfilter::{self, Hook, IpsetStore, NetnsFacts, Ruleset, SetDir};
    use skoop_netstack::packet::{Packet, Protocol};

    struct Node;
    impl NetnsFacts for Node {
        fn is_local(&self, ip: Ipv4Addr) -> bool {
            ip == Ipv4Addr::new(192, 168, 1, 10)
        }
        fn primary_address(&self, ifname: &str) -> Option<Ipv4Addr> {
            (ifname == "eth0").then_some(Ipv4Addr::new(192, 168, 1, 10))
        }
    }
    let p = Packet {
        src: Ipv4Addr::new(10, 244, 1, 5),
        sport: 40000,
        dst: Ipv4Addr::new(10, 96, 0, 10),
        dport: 80,
        protocol: Protocol::Tcp,
        mark: 0x4000,
        encap: None,
        reply: false,
        size: 0,
        icmp: None,
    };
    let sets = IpsetStore::parse(input).unwrap_or_default();
    for name in input
        .lines()
        .filter_map(|l| l.strip_prefix("create "))
        .filter_map(|l| l.split(' ').next())
    {
        let _ = sets.test(name, &p, &[SetDir::Src, SetDir::Dst, SetDir::Dst]);
    }
    if let Ok(rs) = Ruleset::parse(input) {
        for hook in [Hook::Prerouting, Hook::Forward, Hook::Output] {
            let outs = netfilter::traverse(&rs, &sets, &Node, hook, &p, Some("eth0"), Some("cni0"));
            assert!(!outs.is_empty());
        }
    }
}

#[cfg(fuzzing)]
fn main() {
    afl::fuzz!(|data: &[u8]| {
        exercise(&String::from_utf8_lossy(data));
    });
}

#[cfg(not(fuzzing))]
fn main() {
    eprintln!("build this target with `cargo afl build --release --example afl_parsers`");
    eprintln!("(or use `cargo run --release --example fuzz_parsers` for the plain harness)");
}
