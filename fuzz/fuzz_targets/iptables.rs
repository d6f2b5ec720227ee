//! `iptables-save` text: the parser (plain text, and the same text as a
//! node dump holds it, a JSON string literal read without unescaping), then
//! every hook traversed with packets the rules name. The two readings must
//! agree: on the error, on the rules, and on every traversal's outcomes.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::{fuzz_mutator, fuzz_target};
use skoop_fuzz::{Facts, Harvest};
use skoop_netstack::dump::{RulesText, read_shared};
use skoop_netstack::netfilter::{self, ConnState, Hook, IpsetStore, Ruleset};

const HOOKS: [Hook; 5] = [
    Hook::Prerouting,
    Hook::Input,
    Hook::Forward,
    Hook::Output,
    Hook::Postrouting,
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let plain = Ruleset::parse(&text);
    let literal = Arc::new(serde_json::to_string(&*text).expect("a string is JSON"));
    let escaped: RulesText = read_shared(&literal, |t| serde_json::from_str(t))
        .expect("a JSON string literal reads as RulesText");
    let parsed = Ruleset::parse_text(&escaped);
    let (plain, parsed) = match (plain, parsed) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "plain and escaped readings fail differently");
            return;
        }
        (a, b) => panic!("plain {:?} but escaped {:?}", a.err(), b.err()),
    };
    assert_eq!(plain.rule_count(), parsed.rule_count());
    plain.compile_entry_chains();
    let h = Harvest::of(&text);
    let facts = Facts(&h);
    let sets = IpsetStore::default();
    for (n, packet) in h.packets().into_iter().enumerate() {
        for hook in HOOKS {
            let (iif, oif) = match hook {
                Hook::Prerouting | Hook::Input => (h.device(0), None),
                Hook::Output => (None, h.device(1)),
                _ => (h.device(0), h.device(1)),
            };
            let a = netfilter::traverse(&plain, &sets, &facts, hook, &packet, iif, oif);
            let b = netfilter::traverse(&parsed, &sets, &facts, hook, &packet, iif, oif);
            assert!(!a.is_empty() && a.len() <= 64, "{} outcomes", a.len());
            assert_eq!(a.len(), b.len());
            for (a, b) in a.iter().zip(&b) {
                assert_eq!(a.verdict, b.verdict);
                assert_eq!(a.decided_by, b.decided_by);
                assert_eq!(a.trace, b.trace);
            }
            // The next hook with what this one left conntrack knowing,
            // and with nothing known.
            if n == 0 {
                for conn in [a[0].conn, ConnState::default()] {
                    netfilter::traverse_conn(&plain, &sets, &facts, hook, &packet, oif, iif, &conn);
                }
            }
        }
    }
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    skoop_fuzz::mutate_text(data, size, max_size, seed)
});
