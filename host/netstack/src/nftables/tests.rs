//! Tests of the nftables reader, printer and walk. The `testdata/*.json`
//! files are real `nft -j list ruleset` output (nft 1.0.6) of the `*.nft`
//! files beside them, and `*.txt` the matching `nft list ruleset`.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::*;
use crate::netfilter::test_util::{Facts, node_facts, tcp, udp};
use crate::netfilter::{ConnState, Hook, IpsetStore, Outcome, ReverseRoute, Ruleset, Verdict};
use crate::packet::{Packet, Protocol};

const KUBE_PROXY: &str = include_str!("testdata/kube-proxy.json");
const KUBE_PROXY_TXT: &str = include_str!("testdata/kube-proxy.txt");
const FIREWALLD: &str = include_str!("testdata/firewalld.json");
const FIREWALLD_TXT: &str = include_str!("testdata/firewalld.txt");
const KINDS: &str = include_str!("testdata/kinds.json");
const KINDS_TXT: &str = include_str!("testdata/kinds.txt");
const IPT_NFT_JSON: &str = include_str!("testdata/iptables-nft.json");
const IPT_NFT_SAVE: &str = include_str!("testdata/iptables-nft.save");

fn parse(json: &str) -> NftRuleset {
    match NftRuleset::parse(json) {
        Ok(r) => r,
        Err(e) => panic!("ruleset does not parse: {e}"),
    }
}

// ---- building small rulesets as nft -j prints them ----

fn ruleset(objs: Vec<Value>) -> NftRuleset {
    parse(&json!({ "nftables": objs }).to_string())
}

fn table(family: &str, name: &str, handle: u64) -> Value {
    json!({"table": {"family": family, "name": name, "handle": handle}})
}

fn base(
    family: &str,
    table: &str,
    name: &str,
    handle: u64,
    kind: &str,
    hook: &str,
    prio: i32,
    policy: &str,
) -> Value {
    json!({"chain": {"family": family, "table": table, "name": name, "handle": handle,
        "type": kind, "hook": hook, "prio": prio, "policy": policy}})
}

fn chain(family: &str, table: &str, name: &str, handle: u64) -> Value {
    json!({"chain": {"family": family, "table": table, "name": name, "handle": handle}})
}

fn rule(family: &str, table: &str, chain: &str, handle: u64, expr: Value) -> Value {
    json!({"rule": {"family": family, "table": table, "chain": chain, "handle": handle, "expr": expr}})
}

fn rule_c(
    family: &str,
    table: &str,
    chain: &str,
    handle: u64,
    comment: &str,
    expr: Value,
) -> Value {
    json!({"rule": {"family": family, "table": table, "chain": chain, "handle": handle,
        "comment": comment, "expr": expr}})
}

fn m(op: &str, left: Value, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn pl(proto: &str, field: &str) -> Value {
    json!({"payload": {"protocol": proto, "field": field}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn ct(key: &str) -> Value {
    json!({"ct": {"key": key}})
}

fn accept() -> Value {
    json!({"accept": null})
}

fn drop() -> Value {
    json!({"drop": null})
}

fn jump(t: &str) -> Value {
    json!({"jump": {"target": t}})
}

fn goto(t: &str) -> Value {
    json!({"goto": {"target": t}})
}

fn set_mark(v: u64) -> Value {
    json!({"mangle": {"key": meta("mark"), "value": v}})
}

fn only_nft(rs: &NftRuleset) -> HookRules<'_> {
    HookRules {
        iptables: None,
        nft: Some(rs),
    }
}

fn run_with(
    rules: &HookRules<'_>,
    facts: &Facts,
    hook: Hook,
    p: &Packet,
    iif: Option<&str>,
    oif: Option<&str>,
) -> Vec<Outcome> {
    traverse_hook(rules, facts, hook, p, iif, oif, &ConnState::at(hook, p))
}

fn run(
    rs: &NftRuleset,
    hook: Hook,
    p: &Packet,
    iif: Option<&str>,
    oif: Option<&str>,
) -> Vec<Outcome> {
    run_with(&only_nft(rs), &node_facts(), hook, p, iif, oif)
}

fn fwd(rs: &NftRuleset, p: &Packet) -> Vec<Outcome> {
    run(rs, Hook::Forward, p, Some("eth0"), Some("cni0"))
}

fn single(outs: Vec<Outcome>) -> Outcome {
    crate::netfilter::test_util::single(outs)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

fn icmp(src: &str, dst: &str) -> Packet {
    crate::netfilter::test_util::packet(Protocol::Icmp, src, 0, dst, 0)
}

/// One inet table `t` with base chain `c` on `hook` (filter, prio 0, policy) and the given rules.
fn one_chain(hook: &str, policy: &str, rules: Vec<Value>) -> NftRuleset {
    let mut objs = vec![
        table("inet", "t", 1),
        base("inet", "t", "c", 1, "filter", hook, 0, policy),
    ];
    for (i, exprs) in rules.into_iter().enumerate() {
        objs.push(rule("inet", "t", "c", 10 + i as u64, exprs));
    }
    ruleset(objs)
}

fn decided(o: &Outcome) -> (String, String, u32, Option<u64>) {
    let d = o.decided_by.as_ref().expect("a deciding rule");
    (d.table.clone(), d.chain.clone(), d.index, d.handle)
}

// ---- parsing ----

#[test]
fn kube_proxy_ruleset_parses() {
    let rs = parse(KUBE_PROXY);
    assert_eq!(rs.version.as_deref(), Some("1.0.6"));
    let t = rs
        .table(Family::Ip, "kube-proxy")
        .expect("kube-proxy table");
    let prio = |c: &str| {
        t.chain(c)
            .and_then(|c| c.base.as_ref())
            .map(|b| (b.hook.clone(), b.prio))
    };
    assert_eq!(
        prio("filter-prerouting-pre-dnat"),
        Some(("prerouting".into(), -110))
    );
    assert_eq!(
        prio("filter-output-pre-dnat"),
        Some(("output".into(), -110))
    );
    assert_eq!(prio("filter-forward"), Some(("forward".into(), 0)));
    assert_eq!(prio("nat-prerouting"), Some(("prerouting".into(), -100)));
    assert_eq!(prio("nat-postrouting"), Some(("postrouting".into(), 100)));
    assert_eq!(prio("services"), None, "a regular chain");
    let nat = t
        .chain("nat-output")
        .and_then(|c| c.base.as_ref())
        .expect("nat-output");
    assert_eq!(
        (nat.kind.clone(), nat.policy),
        (ChainType::Nat, Policy::Accept)
    );
    let svc = t.set("service-ips").expect("service-ips map");
    assert!(svc.is_map);
    assert_eq!(svc.len(), 3);
    assert_eq!(
        svc.comment.as_deref(),
        Some("ClusterIP, ExternalIP and LoadBalancer IP traffic")
    );
    let aff = t
        .set("affinity-X2B4UN2P-ns5/svc5/tcp/p80__10.180.0.6/80")
        .expect("affinity set");
    assert_eq!((aff.timeout, aff.len()), (Some(10800), 1));
    assert!(aff.flags.iter().any(|f| f == "timeout"));
    assert_eq!(t.set("no-endpoint-services").map(NftSet::len), Some(2));
    let reject = t.chain("cluster-ips-check").expect("chain").rules();
    assert_eq!(
        reject[0].comment.as_deref(),
        Some("Reject traffic to invalid ports of ClusterIPs")
    );
    assert_eq!(reject[0].index, 1);
    assert!(rs.rule_count() > 30);
}

#[test]
fn firewalld_table_parses_with_offset_priorities() {
    let rs = parse(FIREWALLD);
    let t = rs.table(Family::Inet, "firewalld").expect("inet firewalld");
    let prio = |c: &str| t.chain(c).and_then(|c| c.base.as_ref()).map(|b| b.prio);
    assert_eq!(prio("mangle_PREROUTING"), Some(-140));
    assert_eq!(prio("nat_PREROUTING"), Some(-90));
    assert_eq!(prio("nat_OUTPUT"), Some(-90));
    assert_eq!(prio("nat_POSTROUTING"), Some(110));
    assert_eq!(prio("filter_FORWARD"), Some(10));
    assert_eq!(prio("filter_INPUT"), Some(10));
    assert!(!is_iptables_nft_table(t));
}

/// The rules of `nft list ruleset` text, without counters' values.
fn listed_rules(txt: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_chain = false;
    for line in txt.lines() {
        let l = line.trim();
        if l.starts_with("chain ") {
            in_chain = true;
            continue;
        }
        if l == "}" {
            in_chain = false;
            continue;
        }
        if in_chain && !l.is_empty() && !l.starts_with("type ") && !l.starts_with("comment ") {
            out.push(l.to_string());
        }
    }
    out
}

fn printed_rules(rs: &NftRuleset) -> Vec<String> {
    rs.tables()
        .iter()
        .flat_map(|t| t.chains())
        .flat_map(|c| c.rules())
        .map(|r| r.text().to_string())
        .collect()
}

#[test]
fn rules_print_as_nft_lists_them() {
    for (json, txt) in [
        (KUBE_PROXY, KUBE_PROXY_TXT),
        (FIREWALLD, FIREWALLD_TXT),
        (KINDS, KINDS_TXT),
    ] {
        let rs = parse(json);
        let mut listed = listed_rules(txt);
        let mut printed = printed_rules(&rs);
        listed.sort();
        printed.sort();
        assert_eq!(printed, listed);
    }
}

#[test]
fn every_expression_of_the_kinds_fixture_is_read() {
    let rs = parse(KINDS);
    let t = rs.table(Family::Inet, "k").expect("inet k");
    let unknown: Vec<&str> = t
        .chains()
        .iter()
        .flat_map(|c| c.rules())
        .filter(|r| {
            r.stmts.iter().any(|s| {
                matches!(s, expr::Stmt::Unknown { .. })
                    || matches!(s, expr::Stmt::Match(m) if matches!(m.left, expr::Expr::Unknown { .. }) || matches!(m.right, expr::Rhs::Bad(_)))
            })
        })
        .map(NftRule::text)
        .collect();
    assert!(unknown.is_empty(), "{unknown:#?}");
    assert!(t.sets().iter().all(|s| s.elems.broken.is_none()));
    // Other families are read and kept.
    assert!(rs.table(Family::Netdev, "nd").is_some());
    assert_eq!(
        rs.table(Family::Bridge, "br")
            .and_then(|t| t.chain("f"))
            .and_then(|c| c.base.as_ref())
            .map(|b| b.prio),
        Some(-200)
    );
    assert!(rs.table(Family::Ip6, "v6").is_some());
}

#[test]
fn unknown_expressions_are_kept_not_fatal() {
    let rs = ruleset(vec![
        table("ip", "t", 1),
        base("ip", "t", "c", 1, "filter", "forward", 0, "accept"),
        rule(
            "ip",
            "t",
            "c",
            2,
            json!([
                m(
                    "==",
                    json!({"osf": {"key": "name", "ttl": "loose"}}),
                    json!("Linux")
                ),
                drop()
            ]),
        ),
        rule(
            "ip",
            "t",
            "c",
            3,
            json!([{"tproxy": {"family": "ip", "addr": "1.1.1.1", "port": 80}}]),
        ),
        json!({"flowtable": {"family": "ip", "name": "ft", "table": "t", "handle": 4}}),
        json!({"counter": {"family": "ip", "name": "cnt", "table": "t", "handle": 5, "packets": 0, "bytes": 0}}),
        json!({"future-object": {"x": 1}}),
    ]);
    let c = rs
        .table(Family::Ip, "t")
        .and_then(|t| t.chain("c"))
        .expect("chain");
    assert_eq!(c.rules().len(), 2);
    assert_eq!(
        c.rules()[0].text(),
        "osf {\"key\":\"name\",\"ttl\":\"loose\"} Linux drop"
    );
}

#[test]
fn malformed_json_names_line_column_and_object() {
    let err = |s: &str| NftRuleset::parse(s).expect_err("malformed input must fail");
    let e = err(
        "{\"nftables\": [{\"metainfo\": {\"version\": \"1.0.6\"}},\n {\"table\": {\"family\": \"ip\", \"name\": \"t\"}},\n {\"rule\": {\"family\": \"ip\", \"table\": \"t\", \"expr\": []}}]}",
    );
    assert_eq!(e.path, "nftables[2].rule");
    assert_eq!(e.line, 3);
    assert!(e.message.contains("missing field `chain`"), "{e}");
    assert!(e.to_string().starts_with("line 3 column "), "{e}");
    let e = err(
        "{\"nftables\": [{\"table\": {\"family\": \"ip\", \"name\": \"t\"}}, {\"rule\": {\"family\": \"ip\", \"table\": \"t\", \"chain\": \"nope\", \"expr\": []}}]}",
    );
    assert_eq!(e.path, "nftables[1].rule");
    assert!(e.message.contains("no chain nope"), "{e}");
    let e = err(
        "{\"nftables\": [{\"chain\": {\"family\": \"ip\", \"table\": \"t\", \"name\": \"c\"}}]}",
    );
    assert!(e.message.contains("no table ip t"), "{e}");
    let e = err("{\"nftables\": [{\"table\": {\"family\": \"decnet\", \"name\": \"t\"}}]}");
    assert!(e.message.contains("unknown family"), "{e}");
    let e = err(
        "{\"nftables\": [{\"table\": {\"family\": \"ip\", \"name\": \"t\"}}, {\"chain\": {\"family\": \"ip\", \"table\": \"t\", \"name\": \"c\", \"hook\": \"input\", \"prio\": \"nonsense\"}}]}",
    );
    assert!(e.message.contains("unknown priority"), "{e}");
    let e = err("{\"something\": 1}");
    assert!(e.message.contains("no \"nftables\" array"), "{e}");
    let e = err("[1, 2]");
    assert_eq!((e.line, e.path.as_str()), (1, "(top)"));
    let e = err("{\"nftables\": [5]}");
    assert_eq!(e.path, "nftables[0]");
    let e = err("");
    assert!(e.message.contains("EOF"), "{e}");
    let e = err("{\"nftables\": []} trailing");
    assert!(e.message.contains("trailing"), "{e}");
}

#[test]
fn truncated_dumps_fail_with_a_position_never_a_panic() {
    for (name, json) in [
        ("kube-proxy", KUBE_PROXY),
        ("firewalld", FIREWALLD),
        ("kinds", KINDS),
    ] {
        let bytes = json.trim_end().len();
        for cut in (1..bytes).step_by(37) {
            if !json.is_char_boundary(cut) {
                continue;
            }
            let e = NftRuleset::parse(&json[..cut])
                .expect_err(&format!("{name} cut at {cut} must not parse"));
            assert!(e.line >= 1 && e.column >= 1, "{name} cut at {cut}: {e}");
            assert!(e.path.starts_with("nftables") || e.path == "(top)", "{e}");
        }
    }
    // A cut inside the 38th object names it.
    let objs: Value = serde_json::from_str(KUBE_PROXY).expect("fixture");
    let mut text = String::from("{\"nftables\": [");
    for (i, o) in objs["nftables"]
        .as_array()
        .expect("array")
        .iter()
        .enumerate()
        .take(37)
    {
        if i > 0 {
            text.push_str(",\n");
        }
        text.push_str(&o.to_string());
    }
    text.push_str(",\n{\"rule\": {\"family\": \"ip\", \"table\": \"kube-pro");
    let e = NftRuleset::parse(&text).expect_err("truncated");
    assert_eq!(e.path, "nftables[37].rule");
    assert_eq!(e.line, 38);
}

#[test]
fn element_objects_add_to_sets() {
    let rs = ruleset(vec![
        table("ip", "t", 1),
        json!({"set": {"family": "ip", "table": "t", "name": "s", "type": "ipv4_addr", "handle": 2}}),
        json!({"element": {"family": "ip", "table": "t", "name": "s", "elem": ["10.0.0.1", {"prefix": {"addr": "10.1.0.0", "len": 16}}]}}),
    ]);
    assert_eq!(
        rs.table(Family::Ip, "t")
            .and_then(|t| t.set("s"))
            .map(NftSet::len),
        Some(2)
    );
    let e = NftRuleset::parse(&json!({"nftables": [table("ip", "t", 1), json!({"element": {"family": "ip", "table": "t", "name": "nope", "elem": ["1.1.1.1"]}})]}).to_string())
        .expect_err("no such set");
    assert!(e.message.contains("no set nope"), "{e}");
}
