//! `nft list chains` text: the reader that gives ingress chains the
//! devices `nft -j` leaves out, on a ruleset with ingress and egress chains
//! of the netdev and inet families; then the ingress hook traversed on the
//! devices the text names.
#![no_main]

use libfuzzer_sys::{fuzz_mutator, fuzz_target};
use skoop_fuzz::{Facts, Harvest};
use skoop_netstack::netfilter::{ConnState, Hook};
use skoop_netstack::nftables::{self, HookRules, NftRuleset};

/// Ingress and egress chains without their devices, as nft 1.0.6 lists them.
const RULESET: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
{"table": {"family": "netdev", "name": "nd", "handle": 1}},
{"chain": {"family": "netdev", "table": "nd", "name": "ing", "handle": 1, "type": "filter", "hook": "ingress", "prio": -500, "policy": "accept"}},
{"chain": {"family": "netdev", "table": "nd", "name": "eg", "handle": 2, "type": "filter", "hook": "egress", "prio": 0, "policy": "accept"}},
{"rule": {"family": "netdev", "table": "nd", "chain": "ing", "handle": 3, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "10.244.1.5"}}, {"drop": null}]}},
{"table": {"family": "inet", "name": "k", "handle": 2}},
{"chain": {"family": "inet", "table": "k", "name": "ing", "handle": 1, "type": "filter", "hook": "ingress", "prio": 0, "policy": "drop"}},
{"rule": {"family": "inet", "table": "k", "chain": "ing", "handle": 2, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}, {"accept": null}]}}]}"#;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut nft = NftRuleset::parse(RULESET).expect("the fixed ruleset parses");
    nft.bind_devices(&text);
    let h = Harvest::of(&text);
    let facts = Facts(&h);
    let rules = HookRules {
        iptables: None,
        nft: Some(&nft),
    };
    for packet in h.packets().into_iter().take(2) {
        for i in 0..3 {
            let conn = ConnState::at(Hook::Ingress, &packet);
            let out = nftables::traverse_hook(
                &rules,
                &facts,
                Hook::Ingress,
                &packet,
                h.device(i),
                None,
                &conn,
            );
            assert!(!out.is_empty());
        }
    }
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    skoop_fuzz::mutate_text(data, size, max_size, seed)
});
