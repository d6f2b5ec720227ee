//! `ipset save` text: the parser, then every set it names tested with
//! packets between the addresses the text names, in every direction, with
//! and without interfaces and `--return-nomatch`; and the sets used by an
//! iptables traversal that matches on them.
#![no_main]

use libfuzzer_sys::{fuzz_mutator, fuzz_target};
use skoop_fuzz::{Facts, Harvest};
use skoop_netstack::netfilter::{self, Hook, IpsetStore, Ruleset, SetDir};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(sets) = IpsetStore::parse(&text) else {
        return;
    };
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("create ").or_else(|| l.strip_prefix("add ")))
        .filter_map(|l| l.split(' ').next())
        .take(8)
        .collect();
    let h = Harvest::of(&text);
    let dirs: [&[SetDir]; 4] = [
        &[SetDir::Src],
        &[SetDir::Dst, SetDir::Dst],
        &[SetDir::Src, SetDir::Dst, SetDir::Src],
        &[],
    ];
    for name in &names {
        let _ = sets.contains(name);
        let _ = sets.set_type(name);
        let _ = sets.unsupported_reason(name);
        for packet in h.packets() {
            for d in dirs {
                let _ = sets.test(name, &packet, d);
                let _ = sets.test_with_ifaces(name, &packet, d, h.device(0), None);
                let _ = sets.test_match(name, &packet, d, Some("eth0"), h.device(1), true);
            }
        }
    }
    // The sets as iptables rules use them (the sets of a dump are read for these).
    let mut rules = String::from("*filter\n:FORWARD ACCEPT [0:0]\n");
    for name in &names {
        if !name.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') && !name.is_empty()
        {
            rules.push_str(&format!(
                "-A FORWARD -m set --match-set {name} src,dst -j DROP\n-A FORWARD -m set ! --match-set {name} dst --return-nomatch -j ACCEPT\n"
            ));
        }
    }
    rules.push_str("COMMIT\n");
    if let Ok(rules) = Ruleset::parse(&rules) {
        let facts = Facts(&h);
        for packet in h.packets() {
            let out = netfilter::traverse(
                &rules,
                &sets,
                &facts,
                Hook::Forward,
                &packet,
                h.device(0),
                h.device(1),
            );
            assert!(!out.is_empty());
        }
    }
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    skoop_fuzz::mutate_text(data, size, max_size, seed)
});
