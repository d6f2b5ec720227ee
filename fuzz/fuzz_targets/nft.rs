//! `nft -j list ruleset` JSON: the streaming parser, then every hook of the
//! IP layer traversed with packets the ruleset names (alone, and beside an
//! iptables-nft ruleset), the bridge layer's hooks, and the per-table
//! questions the hook ordering asks.
#![no_main]

use libfuzzer_sys::{fuzz_mutator, fuzz_target};
use skoop_fuzz::{Facts, Harvest};
use skoop_netstack::netfilter::{ConnState, Hook, IpsetStore, Ruleset};
use skoop_netstack::nftables::{
    self, HookRules, IptablesBackend, IptablesInput, NftRuleset, evaluated_by_iptables,
    is_iptables_nft_table,
};

const HOOKS: [Hook; 6] = [
    Hook::Ingress,
    Hook::Prerouting,
    Hook::Input,
    Hook::Forward,
    Hook::Output,
    Hook::Postrouting,
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(nft) = NftRuleset::parse(&text) else {
        return;
    };
    let _ = nft.rule_count();
    let rules = Ruleset::parse("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -j ACCEPT\nCOMMIT\n")
        .expect("a fixed ruleset");
    let sets = IpsetStore::default();
    let iptables = IptablesInput {
        rules: &rules,
        sets: &sets,
        backend: IptablesBackend::Nft,
    };
    for table in nft.tables() {
        let _ = is_iptables_nft_table(table);
        let _ = evaluated_by_iptables(table, Some(&iptables));
        let _ = evaluated_by_iptables(table, None);
    }
    let h = Harvest::of(&text);
    let facts = Facts(&h);
    for (n, packet) in h.packets().into_iter().enumerate() {
        for hook in HOOKS {
            let (iif, oif) = match hook {
                Hook::Ingress | Hook::Prerouting | Hook::Input => (h.device(0), None),
                Hook::Output => (None, h.device(1)),
                _ => (h.device(0), h.device(1)),
            };
            let conn = ConnState::at(hook, &packet);
            let alone = HookRules {
                iptables: None,
                nft: Some(&nft),
            };
            let out = nftables::traverse_hook(&alone, &facts, hook, &packet, iif, oif, &conn);
            assert!(!out.is_empty() && out.len() <= 64, "{} outcomes", out.len());
            // What this hook left, into the next one.
            let _ = nftables::traverse_hook(&alone, &facts, hook, &packet, iif, oif, &out[0].conn);
            if n < 2 {
                let both = HookRules {
                    iptables: Some(iptables),
                    nft: Some(&nft),
                };
                let out = nftables::traverse_hook(&both, &facts, hook, &packet, iif, oif, &conn);
                assert!(!out.is_empty() && out.len() <= 64);
            }
            if n == 0 && matches!(hook, Hook::Prerouting | Hook::Input | Hook::Forward) {
                let _ = nftables::traverse_bridge_hook(
                    &nft,
                    &facts,
                    hook,
                    &packet,
                    h.device(0),
                    h.device(1),
                    &conn,
                );
            }
        }
    }
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    skoop_fuzz::mutate_json(data, size, max_size, seed)
});
