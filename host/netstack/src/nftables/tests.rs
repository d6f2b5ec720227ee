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

#[allow(clippy::too_many_arguments)]
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

// ---- evaluation: statements and expressions ----

#[test]
fn empty_and_policy() {
    let rs = NftRuleset::default();
    let o = single(fwd(&rs, &tcp("1.1.1.1", "2.2.2.2", 80)));
    assert_eq!(o.verdict, Verdict::Accept);
    assert!(o.trace.is_empty() && o.decided_by.is_none());
    let rs = one_chain(
        "forward",
        "drop",
        vec![json!([
            m(
                "==",
                pl("ip", "saddr"),
                json!({"prefix": {"addr": "10.0.0.0", "len": 8}})
            ),
            accept()
        ])],
    );
    let o = single(fwd(&rs, &tcp("192.168.0.1", "2.2.2.2", 80)));
    assert_eq!(o.verdict, Verdict::Drop);
    let d = o.decided_by.expect("policy");
    assert_eq!(
        (d.index, d.rule.as_str(), d.family.as_deref(), d.handle),
        (0, "policy drop", Some("inet"), None)
    );
    let o = single(fwd(&rs, &tcp("10.1.1.1", "2.2.2.2", 80)));
    assert_eq!(o.verdict, Verdict::Accept);
    assert_eq!(decided(&o), ("t".into(), "c".into(), 1, Some(10)));
}

#[test]
fn a_drop_names_family_table_chain_handle_and_comment() {
    let rs = ruleset(vec![
        table("inet", "fw", 3),
        base("inet", "fw", "input", 1, "filter", "input", 0, "accept"),
        rule_c(
            "inet",
            "fw",
            "input",
            42,
            "no telnet",
            json!([
                m("==", pl("tcp", "dport"), json!(23)),
                json!({"counter": {"packets": 0, "bytes": 0}}),
                drop()
            ]),
        ),
    ]);
    let o = single(run(
        &rs,
        Hook::Input,
        &tcp("1.1.1.1", "192.168.1.10", 23),
        Some("eth0"),
        None,
    ));
    assert_eq!(o.verdict, Verdict::Drop);
    let d = o.decided_by.expect("the rule");
    assert_eq!(d.family.as_deref(), Some("inet"));
    assert_eq!(
        (d.table.as_str(), d.chain.as_str(), d.index, d.handle),
        ("fw", "input", 1, Some(42))
    );
    assert_eq!(
        d.rule,
        "tcp dport 23 counter packets 0 bytes 0 drop comment \"no telnet\""
    );
    assert_eq!(o.trace.len(), 1);
}

#[test]
fn payload_meta_and_port_matches() {
    let rs = one_chain(
        "forward",
        "drop",
        vec![
            json!([
                m("==", pl("ip", "protocol"), json!("udp")),
                m("==", pl("udp", "dport"), json!(53)),
                accept()
            ]),
            json!([
                m("==", meta("l4proto"), json!("tcp")),
                m(
                    "==",
                    pl("th", "dport"),
                    json!({"set": [22, {"range": [80, 90]}]})
                ),
                accept()
            ]),
            json!([
                m("==", meta("iifname"), json!("cali*")),
                m("!=", meta("oifname"), json!("eth0")),
                accept()
            ]),
            json!([m("==", meta("mark"), json!(16)), accept()]),
            json!([m("==", pl("tcp", "dport"), json!(53)), accept()]),
        ],
    );
    let t = |p: &Packet, iif: &str, oif: &str| {
        single(run(&rs, Hook::Forward, p, Some(iif), Some(oif))).verdict
    };
    assert_eq!(
        t(&udp("1.1.1.1", "2.2.2.2", 53), "eth0", "cni0"),
        Verdict::Accept
    );
    assert_eq!(
        t(&udp("1.1.1.1", "2.2.2.2", 54), "eth0", "cni0"),
        Verdict::Drop
    );
    assert_eq!(
        t(&tcp("1.1.1.1", "2.2.2.2", 85), "eth0", "cni0"),
        Verdict::Accept
    );
    assert_eq!(
        t(&tcp("1.1.1.1", "2.2.2.2", 91), "eth0", "cni0"),
        Verdict::Drop
    );
    assert_eq!(
        t(&tcp("1.1.1.1", "2.2.2.2", 91), "cali12", "cni0"),
        Verdict::Accept
    );
    assert_eq!(
        t(&tcp("1.1.1.1", "2.2.2.2", 91), "cali12", "eth0"),
        Verdict::Drop
    );
    let mut marked = tcp("1.1.1.1", "2.2.2.2", 91);
    marked.mark = 16;
    assert_eq!(t(&marked, "eth0", "cni0"), Verdict::Accept);
    // `tcp dport` carries nft's implicit `meta l4proto tcp`: a UDP packet never matches it.
    assert_eq!(
        t(&udp("1.1.1.1", "2.2.2.2", 54), "eth0", "cni0"),
        Verdict::Drop
    );
    // ICMP: `th dport` reads the ICMP header, which is not modelled.
    let outs = fwd(&rs, &icmp("1.1.1.1", "2.2.2.2"));
    assert_eq!(
        outs.len(),
        1,
        "meta l4proto tcp already fails for ICMP: {outs:#?}"
    );
}

#[test]
fn ct_state_status_mark_direction_and_original_tuple() {
    let rs = one_chain(
        "forward",
        "drop",
        vec![
            json!([
                m("in", ct("state"), json!(["established", "related"])),
                accept()
            ]),
            json!([m("in", ct("status"), json!("dnat")), accept()]),
            json!([m("==", ct("mark"), json!(7)), accept()]),
            json!([
                m(
                    "==",
                    json!({"ct": {"key": "ip daddr", "dir": "original"}}),
                    json!("10.96.0.10")
                ),
                accept()
            ]),
        ],
    );
    let p = tcp("10.0.0.1", "10.244.1.5", 80);
    let mut reply = p;
    reply.reply = true;
    // A reply is established.
    assert_eq!(single(fwd(&rs, &reply)).verdict, Verdict::Accept);
    // At forward, whether prerouting DNATed is not known without the conn state...
    let outs = traverse_hook(
        &only_nft(&rs),
        &node_facts(),
        Hook::Forward,
        &p,
        Some("eth0"),
        Some("cni0"),
        &ConnState::default(),
    );
    assert!(outs.iter().all(|o| o.uncertain), "{outs:#?}");
    assert!(
        outs[0]
            .notes
            .iter()
            .any(|n| n.contains("handle 11") && n.contains("ct status dnat")),
        "{:?}",
        outs[0].notes
    );
    // ... and known from the state the previous hook left.
    let mut conn = ConnState::at(Hook::Prerouting, &tcp("10.0.0.1", "10.96.0.10", 80));
    conn.dnat = Some(true);
    let o = single(traverse_hook(
        &only_nft(&rs),
        &node_facts(),
        Hook::Forward,
        &p,
        Some("eth0"),
        Some("cni0"),
        &conn,
    ));
    assert_eq!(
        (o.verdict, o.decided_by.map(|d| d.index)),
        (Verdict::Accept, Some(2))
    );
    conn.dnat = Some(false);
    conn.ctmark = Some(7);
    let o = single(traverse_hook(
        &only_nft(&rs),
        &node_facts(),
        Hook::Forward,
        &p,
        Some("eth0"),
        Some("cni0"),
        &conn,
    ));
    assert_eq!(o.decided_by.map(|d| d.index), Some(3));
    conn.ctmark = Some(0);
    let o = single(traverse_hook(
        &only_nft(&rs),
        &node_facts(),
        Hook::Forward,
        &p,
        Some("eth0"),
        Some("cni0"),
        &conn,
    ));
    assert_eq!(
        o.decided_by.map(|d| d.index),
        Some(4),
        "original daddr was the ClusterIP"
    );
    let dir = one_chain(
        "forward",
        "drop",
        vec![json!([m("==", ct("direction"), json!("reply")), accept()])],
    );
    assert_eq!(single(fwd(&dir, &reply)).verdict, Verdict::Accept);
    assert_eq!(single(fwd(&dir, &p)).verdict, Verdict::Drop);
}

#[test]
fn before_conntrack_ct_state_is_invalid_and_other_ct_keys_do_not_load() {
    let rs = ruleset(vec![
        table("ip", "t", 1),
        base("ip", "t", "raw", 1, "filter", "prerouting", -300, "accept"),
        rule(
            "ip",
            "t",
            "raw",
            2,
            json!([m("in", ct("state"), json!("invalid")), set_mark(1)]),
        ),
        rule(
            "ip",
            "t",
            "raw",
            3,
            json!([m("!=", ct("mark"), json!(0)), set_mark(99)]),
        ),
        rule(
            "ip",
            "t",
            "raw",
            4,
            json!([m("==", ct("mark"), json!(0)), set_mark(99)]),
        ),
        base("ip", "t", "late", 5, "filter", "prerouting", -199, "accept"),
        rule(
            "ip",
            "t",
            "late",
            6,
            json!([
                m("in", ct("state"), json!("new")),
                json!({"mangle": {"key": meta("mark"), "value": {"|": [meta("mark"), 2]}}})
            ]),
        ),
    ]);
    let o = single(run(
        &rs,
        Hook::Prerouting,
        &tcp("1.1.1.1", "192.168.1.10", 80),
        Some("eth0"),
        None,
    ));
    assert_eq!(
        o.packet.mark, 3,
        "invalid at -300 (mark 1), new at -199 (| 2), ct mark never loads"
    );
}

#[test]
fn notrack_makes_the_connection_untracked_and_skips_nat() {
    let rs = ruleset(vec![
        table("ip", "t", 1),
        base("ip", "t", "raw", 1, "filter", "output", -300, "accept"),
        rule(
            "ip",
            "t",
            "raw",
            2,
            json!([m("==", meta("l4proto"), json!("udp")), {"notrack": null}]),
        ),
        base("ip", "t", "nat", 3, "nat", "output", -100, "accept"),
        rule("ip", "t", "nat", 4, json!([{"dnat": {"addr": "9.9.9.9"}}])),
        base("ip", "t", "f", 5, "filter", "output", 0, "drop"),
        rule(
            "ip",
            "t",
            "f",
            6,
            json!([m("in", ct("state"), json!("untracked")), accept()]),
        ),
    ]);
    let p = udp("10.0.0.1", "10.0.0.53", 53);
    let o = single(run(&rs, Hook::Output, &p, None, Some("eth0")));
    assert_eq!(
        (o.verdict, o.packet.dst),
        (Verdict::Accept, ip("10.0.0.53"))
    );
    assert!(o.conn.untracked);
    // TCP is tracked: DNATed, then dropped by the policy.
    let o = single(run(
        &rs,
        Hook::Output,
        &tcp("10.0.0.1", "10.0.0.53", 53),
        None,
        Some("eth0"),
    ));
    assert_eq!((o.verdict, o.packet.dst), (Verdict::Drop, ip("9.9.9.9")));
}

#[test]
fn jump_goto_return_continue() {
    let rs = ruleset(vec![
        table("inet", "t", 1),
        base("inet", "t", "c", 1, "filter", "forward", 0, "drop"),
        chain("inet", "t", "a", 2),
        chain("inet", "t", "b", 3),
        rule("inet", "t", "c", 10, json!([jump("a")])),
        rule(
            "inet",
            "t",
            "c",
            11,
            json!([m("==", meta("mark"), json!(1)), accept()]),
        ),
        rule("inet", "t", "a", 12, json!([set_mark(1)])),
        rule(
            "inet",
            "t",
            "a",
            13,
            json!([m("==", pl("tcp", "dport"), json!(81)), goto("b")]),
        ),
        rule(
            "inet",
            "t",
            "a",
            14,
            json!([
                m("==", pl("tcp", "dport"), json!(82)),
                json!({"return": null}),
                drop()
            ]),
        ),
        rule(
            "inet",
            "t",
            "a",
            15,
            json!([
                m("==", pl("tcp", "dport"), json!(83)),
                json!({"continue": null})
            ]),
        ),
        rule(
            "inet",
            "t",
            "a",
            16,
            json!([m("==", pl("tcp", "dport"), json!(83)), drop()]),
        ),
        rule("inet", "t", "b", 17, json!([set_mark(2)])),
    ]);
    let t = |port| single(fwd(&rs, &tcp("1.1.1.1", "2.2.2.2", port)));
    // Back from `a` into `c`: its rule 2 accepts on mark 1.
    let o = t(80);
    assert_eq!((o.verdict, o.packet.mark), (Verdict::Accept, 1));
    // goto b: falling off b returns to c (not a), mark 2 fails, policy drop.
    let o = t(81);
    assert_eq!((o.verdict, o.packet.mark), (Verdict::Drop, 2));
    let chains: Vec<_> = o
        .trace
        .iter()
        .map(|h| format!("{}:{}", h.chain, h.index))
        .collect();
    assert_eq!(chains, ["c:1", "a:1", "a:2", "b:1", "c:0"]);
    // return ends `a` before its drop.
    assert_eq!(t(82).verdict, Verdict::Accept);
    // continue goes on with the next rule.
    let o = t(83);
    assert_eq!(
        (o.verdict, o.decided_by.map(|d| d.handle)),
        (Verdict::Drop, Some(Some(16)))
    );
}

/// Found by fuzzing (`fuzz/`, target `nft`): a goto loop over many rules
/// ran to 10 000 chain entries, and every rule it met was in the trace
/// (1 000 rules: 6 s and a trace of ten million rules for one walk).
#[test]
fn a_long_goto_loop_is_cut_by_the_rules_visited() {
    let mut objs = vec![
        table("ip", "t", 1),
        base("ip", "t", "c", 1, "filter", "forward", 0, "accept"),
        chain("ip", "t", "a", 2),
        rule("ip", "t", "c", 3, json!([goto("a")])),
    ];
    for i in 0..1000u64 {
        objs.push(rule(
            "ip",
            "t",
            "a",
            10 + i,
            json!([{"mangle": {"key": {"meta": {"key": "mark"}}, "value": i}}]),
        ));
    }
    objs.push(rule("ip", "t", "a", 2000, json!([goto("a")])));
    let outs = fwd(&ruleset(objs), &tcp("1.1.1.1", "2.2.2.2", 80));
    let [o] = outs.as_slice() else {
        panic!("{outs:?}");
    };
    assert_eq!((o.verdict, o.uncertain), (Verdict::Drop, true));
    assert!(
        o.notes
            .iter()
            .any(|n| n.contains("rules visited in this hook")),
        "{:?}",
        o.notes
    );
    assert_eq!(o.trace.len(), 257);
    assert_eq!(o.trace.last(), o.decided_by.as_ref());
}

#[test]
fn goto_from_the_base_chain_ends_in_its_policy_and_loops_are_cut() {
    let rs = ruleset(vec![
        table("ip", "t", 1),
        base("ip", "t", "c", 1, "filter", "forward", 0, "drop"),
        chain("ip", "t", "g", 2),
        rule("ip", "t", "c", 3, json!([goto("g")])),
        rule("ip", "t", "c", 4, json!([accept()])),
        rule(
            "ip",
            "t",
            "g",
            5,
            json!([m("==", pl("ip", "saddr"), json!("9.9.9.9")), accept()]),
        ),
    ]);
    let o = single(fwd(&rs, &tcp("1.1.1.1", "2.2.2.2", 80)));
    assert_eq!(
        (o.verdict, o.decided_by.map(|d| d.index)),
        (Verdict::Drop, Some(0))
    );
    let looped = ruleset(vec![
        table("ip", "t", 1),
        base("ip", "t", "c", 1, "filter", "forward", 0, "accept"),
        chain("ip", "t", "a", 2),
        rule("ip", "t", "c", 3, json!([goto("a")])),
        rule("ip", "t", "a", 4, json!([goto("a")])),
    ]);
    let outs = fwd(&looped, &tcp("1.1.1.1", "2.2.2.2", 80));
    assert_eq!(
        (outs.len(), outs[0].verdict, outs[0].uncertain),
        (1, Verdict::Drop, true)
    );
    assert!(
        outs[0].notes[0].contains("chains loop"),
        "{:?}",
        outs[0].notes
    );
    let mut deep = vec![
        table("ip", "t", 1),
        base("ip", "t", "c", 1, "filter", "forward", 0, "accept"),
    ];
    for i in 0..20 {
        deep.push(chain("ip", "t", &format!("d{i}"), 10 + i));
    }
    deep.push(rule("ip", "t", "c", 100, json!([jump("d0")])));
    for i in 0..19u64 {
        deep.push(rule(
            "ip",
            "t",
            &format!("d{i}"),
            101 + i,
            json!([jump(&format!("d{}", i + 1))]),
        ));
    }
    let o = fwd(&ruleset(deep), &tcp("1.1.1.1", "2.2.2.2", 80));
    assert_eq!(o[0].verdict, Verdict::Drop);
    assert!(o[0].notes[0].contains("deeper than 16"), "{:?}", o[0].notes);
}

#[test]
fn numgen_explores_every_value_and_every_backend_is_certain() {
    let rs = ruleset(vec![
        table("ip", "t", 1),
        base("ip", "t", "nat", 1, "nat", "prerouting", -100, "accept"),
        rule(
            "ip",
            "t",
            "nat",
            2,
            json!([m("==", meta("l4proto"), json!("tcp")), {"dnat": {"family": "ip", "addr": {"map": {"key": {"numgen": {"mode": "random", "mod": 3, "offset": 0}}, "data": {"set": [[0, {"concat": ["10.244.0.10", 9898]}], [1, {"concat": ["10.244.0.8", 9898]}], [2, {"concat": ["10.244.0.9", 9899]}]]}}}}}]),
        ),
    ]);
    let outs = run(
        &rs,
        Hook::Prerouting,
        &tcp("10.0.0.1", "10.96.0.1", 80),
        Some("eth0"),
        None,
    );
    let dsts: Vec<_> = outs
        .iter()
        .map(|o| (o.packet.dst.to_string(), o.packet.dport, o.uncertain))
        .collect();
    assert_eq!(
        dsts,
        [
            ("10.244.0.10".to_string(), 9898, false),
            ("10.244.0.8".to_string(), 9898, false),
            ("10.244.0.9".to_string(), 9899, false)
        ]
    );
    assert!(outs.iter().all(|o| o.conn.dnat == Some(true)));
    // numgen inc with an offset in a vmap: every value, including the one that continues.
    let rs = ruleset(vec![
        table("inet", "t", 1),
        base("inet", "t", "c", 1, "filter", "forward", 0, "accept"),
        chain("inet", "t", "x", 2),
        rule(
            "inet",
            "t",
            "c",
            3,
            json!([{"vmap": {"key": {"numgen": {"mode": "inc", "mod": 3, "offset": 1}}, "data": {"set": [[1, drop()], [2, jump("x")], [3, {"continue": null}]]}}}]),
        ),
        rule("inet", "t", "x", 4, json!([set_mark(5)])),
    ]);
    let outs = fwd(&rs, &tcp("1.1.1.1", "2.2.2.2", 80));
    let got: Vec<_> = outs
        .iter()
        .map(|o| (o.verdict, o.packet.mark, o.uncertain))
        .collect();
    assert_eq!(
        got,
        [
            (Verdict::Drop, 0, false),
            (Verdict::Accept, 5, false),
            (Verdict::Accept, 0, false)
        ]
    );
}

#[test]
fn verdict_maps_with_concatenated_keys_and_interval_sets() {
    let rs = ruleset(vec![
        table("inet", "t", 1),
        json!({"map": {"family": "inet", "table": "t", "name": "svc", "handle": 2, "type": ["ipv4_addr", "inet_proto", "inet_service"], "map": "verdict",
            "elem": [[{"concat": ["10.96.0.1", "tcp", 443]}, accept()], [{"concat": ["10.96.0.10", "udp", 53]}, jump("dns")]]}}),
        json!({"set": {"family": "inet", "table": "t", "name": "nets", "handle": 3, "type": ["ipv4_addr", "inet_service"], "flags": ["interval"],
            "elem": [{"concat": [{"prefix": {"addr": "10.2.0.0", "len": 16}}, {"range": [1000, 2000]}]}]}}),
        json!({"map": {"family": "inet", "table": "t", "name": "ifs", "handle": 4, "type": "ifname", "map": "verdict", "flags": ["interval"],
            "elem": [["cali*", drop()], ["veth1", accept()]]}}),
        base("inet", "t", "c", 5, "filter", "forward", 0, "drop"),
        chain("inet", "t", "dns", 6),
        rule(
            "inet",
            "t",
            "c",
            7,
            json!([{"vmap": {"key": {"concat": [pl("ip", "daddr"), meta("l4proto"), pl("th", "dport")]}, "data": "@svc"}}]),
        ),
        rule(
            "inet",
            "t",
            "c",
            8,
            json!([
                m(
                    "==",
                    json!({"concat": [pl("ip", "saddr"), pl("tcp", "dport")]}),
                    json!("@nets")
                ),
                accept()
            ]),
        ),
        rule(
            "inet",
            "t",
            "c",
            9,
            json!([{"vmap": {"key": meta("iifname"), "data": "@ifs"}}]),
        ),
        rule("inet", "t", "dns", 10, json!([set_mark(53), accept()])),
    ]);
    let t = |p: &Packet, iif: &str| single(run(&rs, Hook::Forward, p, Some(iif), Some("cni0")));
    assert_eq!(
        t(&tcp("1.1.1.1", "10.96.0.1", 443), "eth0")
            .decided_by
            .map(|d| d.handle),
        Some(Some(7))
    );
    let o = t(&udp("1.1.1.1", "10.96.0.10", 53), "eth0");
    assert_eq!((o.verdict, o.packet.mark), (Verdict::Accept, 53));
    assert_eq!(
        t(&tcp("1.1.1.1", "10.96.0.10", 53), "eth0").verdict,
        Verdict::Drop
    );
    assert_eq!(
        t(&tcp("10.2.3.4", "9.9.9.9", 1500), "eth0").verdict,
        Verdict::Accept
    );
    assert_eq!(
        t(&tcp("10.2.3.4", "9.9.9.9", 2500), "eth0").verdict,
        Verdict::Drop
    );
    assert_eq!(
        t(&tcp("10.3.3.4", "9.9.9.9", 1500), "eth0").verdict,
        Verdict::Drop
    );
    assert_eq!(
        t(&tcp("1.1.1.1", "9.9.9.9", 1), "veth1").verdict,
        Verdict::Accept
    );
    let o = t(&tcp("1.1.1.1", "9.9.9.9", 1), "cali77");
    assert_eq!(
        (o.verdict, o.decided_by.map(|d| d.handle)),
        (Verdict::Drop, Some(Some(9)))
    );
    // An ICMP packet: `th dport` is unknown but `icmp` matches no element's protocol.
    assert_eq!(
        single(fwd(&rs, &icmp("1.1.1.1", "10.96.0.1"))).verdict,
        Verdict::Drop
    );
}

#[test]
fn a_partly_unknown_map_key_branches_over_the_candidates() {
    let rs = ruleset(vec![
        table("inet", "t", 1),
        base("inet", "t", "c", 1, "filter", "forward", 0, "accept"),
        rule(
            "inet",
            "t",
            "c",
            2,
            json!([{"vmap": {"key": {"jhash": {"mod": 2, "expr": pl("ip", "saddr")}}, "data": {"set": [[0, drop()], [1, json!({"goto": {"target": "r"}})]]}}}]),
        ),
        chain("inet", "t", "r", 3),
        rule(
            "inet",
            "t",
            "r",
            4,
            json!([{"reject": {"type": "icmpx", "expr": "port-unreachable"}}]),
        ),
    ]);
    let outs = fwd(&rs, &tcp("1.1.1.1", "2.2.2.2", 80));
    let got: Vec<_> = outs.iter().map(|o| (o.verdict, o.uncertain)).collect();
    assert_eq!(
        got,
        [
            (Verdict::Drop, true),
            (Verdict::Reject, true),
            (Verdict::Accept, true)
        ]
    );
    assert!(
        outs[0].notes[0].contains("inet t/c handle 2") && outs[0].notes[0].contains("jhash"),
        "{:?}",
        outs[0].notes
    );
}

#[test]
fn unknown_matches_give_uncertain_outcomes_naming_the_expression() {
    let rs = one_chain(
        "forward",
        "accept",
        vec![json!([
            m("==", json!({"osf": {"key": "name"}}), json!("Linux")),
            drop()
        ])],
    );
    let outs = fwd(&rs, &tcp("1.1.1.1", "2.2.2.2", 80));
    assert_eq!(outs.len(), 2);
    assert_eq!(
        (outs[0].verdict, outs[1].verdict),
        (Verdict::Drop, Verdict::Accept)
    );
    assert!(outs.iter().all(|o| o.uncertain));
    assert_eq!(
        outs[0].notes,
        [
            "inet t/c handle 10 (osf {\"key\":\"name\"} Linux drop): `osf {\"key\":\"name\"} Linux`: expression \"osf\" is not simulated"
        ]
    );
    // An unknown match whose both sides end the same is certain.
    let rs = one_chain(
        "forward",
        "accept",
        vec![json!([
            m("==", json!({"osf": {"key": "name"}}), json!("Linux")),
            set_mark(0)
        ])],
    );
    let o = single(fwd(&rs, &tcp("1.1.1.1", "2.2.2.2", 80)));
    assert_eq!(o.notes.len(), 1);
    // Unknown statements: drop and no effect.
    let rs = one_chain("forward", "accept", vec![json!([{"queue": {"num": 3}}])]);
    let outs = fwd(&rs, &tcp("1.1.1.1", "2.2.2.2", 80));
    assert_eq!(outs.len(), 1, "queue is a verdict: {outs:#?}");
    assert!(outs[0].uncertain);
    let rs = one_chain("forward", "accept", vec![json!([{"tproxy": {"port": 1}}])]);
    let got: Vec<_> = fwd(&rs, &tcp("1.1.1.1", "2.2.2.2", 80))
        .iter()
        .map(|o| (o.verdict, o.uncertain))
        .collect();
    assert_eq!(got, [(Verdict::Drop, true), (Verdict::Accept, true)]);
}

#[test]
fn fib_type_and_reverse_path() {
    let rs = one_chain(
        "prerouting",
        "accept",
        vec![
            json!([
                m(
                    "==",
                    json!({"fib": {"result": "oif", "flags": ["saddr", "iif"]}}),
                    json!(false)
                ),
                drop()
            ]),
            json!([
                m(
                    "==",
                    json!({"fib": {"result": "type", "flags": ["daddr"]}}),
                    json!("local")
                ),
                set_mark(1)
            ]),
            json!([
                m(
                    "==",
                    json!({"fib": {"result": "type", "flags": ["daddr"]}}),
                    json!({"set": ["broadcast", "multicast"]})
                ),
                set_mark(2)
            ]),
        ],
    );
    let mut facts = node_facts();
    let t = |facts: &Facts, p: &Packet, iif: &str| {
        run_with(&only_nft(&rs), facts, Hook::Prerouting, p, Some(iif), None)
    };
    // Routes unknown: the rpf rule is unknown.
    let outs = t(&facts, &tcp("10.9.0.1", "192.168.1.10", 80), "eth0");
    assert!(
        outs.iter().all(|o| o.uncertain) && outs.len() == 2,
        "{outs:#?}"
    );
    facts.routes_back = Some(vec![
        (
            ip("10.9.0.0"),
            16,
            ReverseRoute {
                unicast: true,
                local: false,
                devs: vec!["eth0".into()],
            },
        ),
        (
            ip("10.244.0.0"),
            16,
            ReverseRoute {
                unicast: true,
                local: false,
                devs: vec!["cni0".into()],
            },
        ),
    ]);
    let o = single(t(&facts, &tcp("10.9.0.1", "192.168.1.10", 80), "eth0"));
    assert_eq!((o.verdict, o.packet.mark), (Verdict::Accept, 1));
    let o = single(t(&facts, &tcp("10.9.0.1", "10.0.0.1", 80), "eth0"));
    assert_eq!(
        (o.verdict, o.packet.mark),
        (Verdict::Accept, 0),
        "not local"
    );
    let o = single(t(&facts, &tcp("10.9.0.1", "224.0.0.251", 80), "eth0"));
    assert_eq!(o.packet.mark, 2);
    // Spoofed: the route back to a pod address leaves through cni0, not eth0.
    let o = single(t(&facts, &tcp("10.244.0.5", "192.168.1.10", 80), "eth0"));
    assert_eq!(
        (o.verdict, o.decided_by.map(|d| d.index)),
        (Verdict::Drop, Some(1))
    );
}

#[test]
fn marks_and_ct_marks_flow_into_later_chains() {
    let rs = ruleset(vec![
        table("inet", "a", 1),
        base("inet", "a", "m", 1, "filter", "prerouting", -150, "accept"),
        rule(
            "inet",
            "a",
            "m",
            2,
            json!([
                json!({"mangle": {"key": meta("mark"), "value": {"|": [{"&": [meta("mark"), 0xffff_00ff_u64]}, 0x4000]}}}),
                json!({"mangle": {"key": ct("mark"), "value": meta("mark")}})
            ]),
        ),
        base("inet", "a", "f", 3, "filter", "prerouting", 0, "drop"),
        rule(
            "inet",
            "a",
            "f",
            4,
            json!([
                m("==", json!({"&": [meta("mark"), 0x4000]}), json!(0x4000)),
                m("==", ct("mark"), json!(0x40ff)),
                accept()
            ]),
        ),
        rule(
            "inet",
            "a",
            "f",
            5,
            json!([m("==", pl("ip", "dscp"), json!("cs1")), accept()]),
        ),
    ]);
    let mut p = tcp("1.1.1.1", "2.2.2.2", 80);
    p.mark = 0x1ff;
    let o = single(run(&rs, Hook::Prerouting, &p, Some("eth0"), None));
    assert_eq!(
        (o.verdict, o.packet.mark, o.conn.ctmark),
        (Verdict::Accept, 0x40ff, Some(0x40ff))
    );
    assert_eq!(
        o.decided_by.map(|d| d.rule),
        Some("meta mark & 0x00004000 == 0x00004000 ct mark 0x000040ff accept".to_string())
    );
    let mut cs1 = tcp("1.1.1.1", "2.2.2.2", 80);
    cs1.tos = 0x08 << 2;
    cs1.mark = 0xff_0000;
    let o = single(run(&rs, Hook::Prerouting, &cs1, Some("eth0"), None));
    assert_eq!(
        (o.verdict, o.decided_by.map(|d| d.index)),
        (Verdict::Accept, Some(2))
    );
}

#[test]
fn dynamic_sets_see_their_updates() {
    let rs = ruleset(vec![
        table("ip", "t", 1),
        json!({"set": {"family": "ip", "table": "t", "name": "seen", "handle": 2, "type": "ipv4_addr", "flags": ["timeout"], "timeout": 60,
            "elem": [{"elem": {"val": "10.0.0.9", "timeout": 60, "expires": 30}}]}}),
        base("ip", "t", "c", 3, "filter", "forward", 0, "drop"),
        rule(
            "ip",
            "t",
            "c",
            4,
            json!([{"set": {"op": "update", "elem": {"elem": {"val": pl("ip", "saddr"), "timeout": 60}}, "set": "@seen"}}]),
        ),
        rule(
            "ip",
            "t",
            "c",
            5,
            json!([m("==", pl("ip", "saddr"), json!("@seen")), accept()]),
        ),
    ]);
    let o = single(fwd(&rs, &tcp("10.0.0.1", "2.2.2.2", 80)));
    assert_eq!(o.verdict, Verdict::Accept);
    assert_eq!(o.trace[0].rule, "update @seen { ip saddr timeout 1m }");
}

#[test]
fn nat_statements_translate_and_end_the_chain() {
    let rs = ruleset(vec![
        table("inet", "n", 1),
        base("inet", "n", "pre", 1, "nat", "prerouting", -100, "accept"),
        rule(
            "inet",
            "n",
            "pre",
            2,
            json!([m("==", pl("tcp", "dport"), json!(8080)), {"redirect": {"port": 15001}}]),
        ),
        rule(
            "inet",
            "n",
            "pre",
            3,
            json!([m("==", pl("ip", "daddr"), json!("10.96.0.10")), {"dnat": {"family": "ip", "addr": "10.0.0.7", "port": 5353}}]),
        ),
        rule(
            "inet",
            "n",
            "pre",
            4,
            json!([{"dnat": {"family": "ip", "addr": "1.1.1.1"}}]),
        ),
        base("inet", "n", "post", 5, "nat", "postrouting", 100, "accept"),
        rule(
            "inet",
            "n",
            "post",
            6,
            json!([m("==", meta("oifname"), json!("eth0")), {"masquerade": {"flags": "fully-random"}}]),
        ),
        rule(
            "inet",
            "n",
            "post",
            7,
            json!([m("==", pl("ip", "saddr"), json!({"prefix": {"addr": "10.0.0.0", "len": 8}})), {"snat": {"family": "ip", "addr": "192.168.1.1", "port": {"range": [1000, 2000]}}}]),
        ),
    ]);
    let pre = |p: &Packet| single(run(&rs, Hook::Prerouting, p, Some("cni0"), None));
    let o = pre(&tcp("10.244.1.5", "10.96.0.10", 8080));
    assert_eq!((o.packet.dst, o.packet.dport), (ip("10.244.1.1"), 15001));
    let o = pre(&udp("10.244.1.5", "10.96.0.10", 53));
    assert_eq!((o.packet.dst, o.packet.dport), (ip("10.0.0.7"), 5353));
    assert_eq!(
        o.decided_by.map(|d| d.rule),
        Some("ip daddr 10.96.0.10 dnat ip to 10.0.0.7:5353".to_string())
    );
    assert_eq!(o.trace.len(), 1, "the first DNAT ends the chain");
    let post =
        |p: &Packet, oif: &str| single(run(&rs, Hook::Postrouting, p, Some("cni0"), Some(oif)));
    let o = post(&tcp("10.244.1.5", "8.8.8.8", 53), "eth0");
    assert_eq!((o.packet.src, o.packet.sport), (ip("192.168.1.10"), 40000));
    assert_eq!(o.conn.snat, Some(true));
    let outs = run(
        &rs,
        Hook::Postrouting,
        &tcp("10.244.1.5", "8.8.8.8", 53),
        Some("cni0"),
        Some("cni0"),
    );
    // 10.244.1.5 is in 10/8: snat with a port outside the range picks one (uncertain).
    assert_eq!(
        (outs[0].packet.src, outs[0].packet.sport, outs[0].uncertain),
        (ip("192.168.1.1"), 1000, true)
    );
    // Replies never see nat chains.
    let mut reply = tcp("10.244.1.5", "10.96.0.10", 8080);
    reply.reply = true;
    let o = pre(&reply);
    assert_eq!(o.packet, reply);
    assert!(o.trace.is_empty());
}

#[test]
fn reject_forms_are_rejects() {
    for r in [
        json!({"reject": {"type": "icmp", "expr": "port-unreachable"}}),
        json!({"reject": {"type": "tcp reset"}}),
        json!({"reject": {"type": "icmpx", "expr": "admin-prohibited"}}),
        json!({"reject": null}),
    ] {
        let rs = one_chain("forward", "accept", vec![json!([r])]);
        assert_eq!(
            single(fwd(&rs, &tcp("1.1.1.1", "2.2.2.2", 80))).verdict,
            Verdict::Reject
        );
    }
}

#[test]
fn limits_logs_and_counters_let_the_packet_on() {
    let rs = one_chain(
        "forward",
        "drop",
        vec![json!([
            {"limit": {"rate": 10, "burst": 5, "per": "second"}},
            {"log": {"prefix": "x "}},
            {"counter": {"packets": 1, "bytes": 2}},
            accept()
        ])],
    );
    let o = single(fwd(&rs, &tcp("1.1.1.1", "2.2.2.2", 80)));
    assert_eq!(o.verdict, Verdict::Accept);
    assert_eq!(o.notes.len(), 1);
    assert!(
        o.notes[0].contains("limit treated as letting the packet on"),
        "{:?}",
        o.notes
    );
}

#[test]
fn skuid_is_unknown_on_output_and_absent_elsewhere() {
    let rs = one_chain(
        "output",
        "accept",
        vec![json!([m("==", meta("skuid"), json!(0)), drop()])],
    );
    let outs = run(
        &rs,
        Hook::Output,
        &tcp("192.168.1.10", "2.2.2.2", 80),
        None,
        Some("eth0"),
    );
    assert_eq!(outs.len(), 2);
    let rs = one_chain(
        "forward",
        "accept",
        vec![json!([m("!=", meta("skuid"), json!(0)), drop()])],
    );
    assert_eq!(
        single(fwd(&rs, &tcp("1.1.1.1", "2.2.2.2", 80))).verdict,
        Verdict::Accept,
        "no socket: not even != matches"
    );
}

// ---- evaluation: real rulesets ----

/// A node: eth0 192.168.1.10 (the NodePort address), cni0 10.244.1.1.
fn kube_facts() -> Facts {
    node_facts()
}

#[test]
fn kube_proxy_clusterip_load_balances_over_every_endpoint() {
    let rs = parse(KUBE_PROXY);
    let p = tcp("10.0.1.5", "172.30.0.44", 80);
    let outs = run_with(
        &only_nft(&rs),
        &kube_facts(),
        Hook::Prerouting,
        &p,
        Some("cni0"),
        None,
    );
    let got: Vec<_> = outs
        .iter()
        .map(|o| {
            (
                o.verdict,
                o.packet.dst.to_string(),
                o.packet.dport,
                o.packet.mark,
                o.uncertain,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (Verdict::Accept, "10.180.0.4".to_string(), 80, 0, false),
            (Verdict::Accept, "10.180.0.5".to_string(), 80, 0, false),
        ]
    );
    let d = outs[0].decided_by.as_ref().expect("the dnat");
    assert_eq!(d.chain, "endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80");
    assert_eq!(d.rule, "meta l4proto tcp dnat to 10.180.0.4:80");
    // From outside the cluster CIDR: marked for masquerade.
    let outs = run_with(
        &only_nft(&rs),
        &kube_facts(),
        Hook::Prerouting,
        &tcp("192.168.5.5", "172.30.0.44", 80),
        Some("eth0"),
        None,
    );
    assert!(
        outs.iter().all(|o| o.packet.mark == 0x4000 && !o.uncertain),
        "{outs:#?}"
    );
    // Hairpin: an endpoint reaching itself through the service is marked.
    let outs = run_with(
        &only_nft(&rs),
        &kube_facts(),
        Hook::Prerouting,
        &tcp("10.180.0.4", "172.30.0.44", 80),
        Some("cni0"),
        None,
    );
    let marks: Vec<_> = outs
        .iter()
        .map(|o| (o.packet.dst.to_string(), o.packet.mark))
        .collect();
    assert_eq!(
        marks,
        [
            ("10.180.0.4".to_string(), 0x4000),
            ("10.180.0.5".to_string(), 0)
        ]
    );
}

#[test]
fn kube_proxy_session_affinity_follows_the_affinity_set() {
    let rs = parse(KUBE_PROXY);
    let dsts = |src: &str| -> Vec<String> {
        run_with(
            &only_nft(&rs),
            &kube_facts(),
            Hook::Prerouting,
            &tcp(src, "172.30.0.45", 80),
            Some("cni0"),
            None,
        )
        .iter()
        .map(|o| o.packet.dst.to_string())
        .collect()
    };
    assert_eq!(
        dsts("10.0.0.77"),
        ["10.180.0.6"],
        "10.0.0.77 has affinity to 10.180.0.6"
    );
    assert_eq!(dsts("10.0.0.78"), ["10.180.0.3", "10.180.0.6"]);
}

#[test]
fn kube_proxy_rejects_and_drops_what_has_no_endpoint() {
    let rs = parse(KUBE_PROXY);
    let out = |p: &Packet| {
        single(run_with(
            &only_nft(&rs),
            &kube_facts(),
            Hook::Output,
            p,
            None,
            Some("eth0"),
        ))
    };
    // No endpoints: goto reject-chain from no-endpoint-services.
    let o = out(&tcp("192.168.1.10", "172.30.0.46", 80));
    assert_eq!(o.verdict, Verdict::Reject);
    let d = o.decided_by.expect("reject-chain");
    assert_eq!(
        (d.chain.as_str(), d.rule.as_str(), d.family.as_deref()),
        ("reject-chain", "reject", Some("ip"))
    );
    // A ClusterIP on a port no service uses: rejected by cluster-ips-check.
    let o = out(&tcp("192.168.1.10", "172.30.0.44", 81));
    assert_eq!(o.verdict, Verdict::Reject);
    assert_eq!(o.decided_by.map(|d| d.rule), Some("ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"".to_string()));
    // An unallocated ClusterIP: dropped.
    let o = out(&tcp("192.168.1.10", "172.30.0.99", 80));
    assert_eq!(o.verdict, Verdict::Drop);
    assert_eq!(
        o.decided_by.map(|d| d.rule),
        Some(
            "ip daddr 172.30.0.0/16 drop comment \"Drop traffic to unallocated ClusterIPs\""
                .to_string()
        )
    );
    // Drop element of no-endpoint-services (eTP=Local, no local endpoint).
    let o = single(run_with(
        &only_nft(&rs),
        &kube_facts(),
        Hook::Forward,
        &tcp("10.0.0.1", "1.2.3.4", 80),
        Some("eth0"),
        Some("eth0"),
    ));
    assert_eq!(
        (o.verdict, o.decided_by.map(|d| d.chain)),
        (Verdict::Drop, Some("service-endpoints-check".to_string()))
    );
    // A reply is established: no check applies.
    let mut reply = tcp("172.30.0.46", "192.168.1.10", 80);
    reply.reply = true;
    assert_eq!(
        single(run_with(
            &only_nft(&rs),
            &kube_facts(),
            Hook::Input,
            &reply,
            Some("eth0"),
            None
        ))
        .verdict,
        Verdict::Accept
    );
}

#[test]
fn kube_proxy_nodeport_firewall_and_masquerade() {
    let rs = parse(KUBE_PROXY);
    let facts = kube_facts();
    // NodePort on the node address: external chain marks, service chain DNATs.
    let outs = run_with(
        &only_nft(&rs),
        &facts,
        Hook::Prerouting,
        &tcp("192.168.5.5", "192.168.1.10", 3004),
        Some("eth0"),
        None,
    );
    let got: Vec<_> = outs
        .iter()
        .map(|o| (o.packet.dst.to_string(), o.packet.mark))
        .collect();
    assert_eq!(
        got,
        [
            ("10.180.0.4".to_string(), 0x4000),
            ("10.180.0.5".to_string(), 0x4000)
        ]
    );
    // The LoadBalancer IP's source ranges: filter-prerouting-pre-dnat (-110) drops before DNAT.
    let o = single(run_with(
        &only_nft(&rs),
        &facts,
        Hook::Prerouting,
        &tcp("198.51.100.1", "5.6.7.8", 80),
        Some("eth0"),
        None,
    ));
    assert_eq!(o.verdict, Verdict::Drop);
    assert_eq!(
        o.decided_by.map(|d| d.chain),
        Some("firewall-HVFWP5L3-ns5/svc5/tcp/p80".to_string())
    );
    let outs = run_with(
        &only_nft(&rs),
        &facts,
        Hook::Prerouting,
        &tcp("203.0.113.5", "5.6.7.8", 80),
        Some("eth0"),
        None,
    );
    assert!(
        outs.iter()
            .all(|o| o.verdict == Verdict::Accept && o.packet.mark == 0x4000),
        "{outs:#?}"
    );
    assert_eq!(outs.len(), 2);
    // Postrouting: the mark is cleared and the source masqueraded to eth0's address.
    let mut p = tcp("203.0.113.5", "10.180.0.3", 80);
    p.mark = 0x4000;
    let o = single(run_with(
        &only_nft(&rs),
        &facts,
        Hook::Postrouting,
        &p,
        Some("eth0"),
        Some("eth0"),
    ));
    assert_eq!((o.packet.src, o.packet.mark), (ip("192.168.1.10"), 0));
    assert_eq!(
        o.decided_by.map(|d| d.rule),
        Some("masquerade fully-random".to_string())
    );
    // Unmarked: returned before masquerade.
    p.mark = 0;
    let o = single(run_with(
        &only_nft(&rs),
        &facts,
        Hook::Postrouting,
        &p,
        Some("eth0"),
        Some("eth0"),
    ));
    assert_eq!(o.packet.src, ip("203.0.113.5"));
}

#[test]
fn firewalld_forward_and_input() {
    let rs = parse(FIREWALLD);
    // A new connection that nothing NATed before this hook.
    let t = |hook, p: &Packet, iif: &str, oif: Option<&str>| {
        let conn = ConnState::at(Hook::Prerouting, p);
        single(traverse_hook(
            &only_nft(&rs),
            &node_facts(),
            hook,
            p,
            Some(iif),
            oif,
            &conn,
        ))
    };
    // Pod traffic through the trusted zone.
    let o = t(
        Hook::Forward,
        &tcp("10.244.1.5", "10.244.2.6", 80),
        "cni0",
        Some("flannel.1"),
    );
    assert_eq!(
        (o.verdict, o.decided_by.map(|d| d.rule)),
        (
            Verdict::Accept,
            Some("iifname \"cni0\" accept comment \"zone trusted\"".to_string())
        )
    );
    // flannel.1 -> eth1 is in no zone: the catch-all reject.
    let o = t(
        Hook::Forward,
        &tcp("10.244.2.6", "10.9.9.9", 80),
        "flannel.1",
        Some("eth1"),
    );
    assert_eq!(o.verdict, Verdict::Reject);
    let d = o.decided_by.expect("reject");
    assert_eq!(
        (d.table.as_str(), d.chain.as_str(), d.rule.as_str()),
        (
            "firewalld",
            "filter_FORWARD_POLICIES",
            "reject with icmpx admin-prohibited"
        )
    );
    // Input: ssh allowed in public, anything else rejected by the zone dispatch.
    let o = t(
        Hook::Input,
        &tcp("1.2.3.4", "192.168.1.10", 22),
        "eth0",
        None,
    );
    assert_eq!(
        (o.verdict, o.decided_by.map(|d| d.chain)),
        (Verdict::Accept, Some("filter_IN_public_allow".to_string()))
    );
    let o = t(
        Hook::Input,
        &tcp("1.2.3.4", "192.168.1.10", 8080),
        "eth0",
        None,
    );
    assert_eq!(
        (o.verdict, o.decided_by.map(|d| d.index)),
        (Verdict::Reject, Some(3))
    );
    // A DNATed connection is let through by `ct status dnat accept`.
    let mut conn = ConnState::at(Hook::Prerouting, &tcp("1.2.3.4", "192.168.1.10", 8443));
    conn.dnat = Some(true);
    let o = single(traverse_hook(
        &only_nft(&rs),
        &node_facts(),
        Hook::Forward,
        &tcp("1.2.3.4", "192.168.1.20", 443),
        Some("eth0"),
        Some("eth1"),
        &conn,
    ));
    assert_eq!(
        (o.verdict, o.decided_by.map(|d| d.index)),
        (Verdict::Accept, Some(2))
    );
    // Its port forward (nat_PREROUTING at -90, run by the NAT core).
    let o = t(
        Hook::Prerouting,
        &tcp("1.2.3.4", "192.168.1.10", 8443),
        "eth0",
        None,
    );
    assert_eq!((o.packet.dst, o.packet.dport), (ip("192.168.1.20"), 443));
    // Masquerade of pod traffic leaving eth0.
    let o = t(
        Hook::Postrouting,
        &tcp("10.244.1.5", "8.8.8.8", 53),
        "cni0",
        Some("eth0"),
    );
    assert_eq!(o.packet.src, ip("192.168.1.10"));
}

// ---- one hook across tables ----

#[test]
fn drop_in_an_inet_table_at_minus_10_wins_over_an_ip_filter_accept() {
    let rs = ruleset(vec![
        table("ip", "a", 1),
        base("ip", "a", "f", 1, "filter", "forward", 0, "accept"),
        rule("ip", "a", "f", 2, json!([accept()])),
        table("inet", "b", 2),
        base("inet", "b", "f", 1, "filter", "forward", -10, "accept"),
        rule(
            "inet",
            "b",
            "f",
            2,
            json!([m("==", pl("tcp", "dport"), json!(80)), drop()]),
        ),
    ]);
    let o = single(fwd(&rs, &tcp("1.1.1.1", "2.2.2.2", 80)));
    assert_eq!(o.verdict, Verdict::Drop);
    assert_eq!(
        o.decided_by.and_then(|d| d.family),
        Some("inet".to_string())
    );
    let o = single(fwd(&rs, &tcp("1.1.1.1", "2.2.2.2", 81)));
    assert_eq!(
        (o.verdict, o.decided_by.map(|d| d.table)),
        (Verdict::Accept, Some("a".to_string()))
    );
}

#[test]
fn netdev_ingress_chains_see_only_their_devices_and_nothing_else_sees_them() {
    let mut ingress = base("netdev", "edge", "in", 1, "filter", "ingress", 0, "accept");
    ingress["chain"]["dev"] = json!("veth1");
    let mut inet_ingress = base("inet", "guard", "in", 1, "filter", "ingress", -10, "accept");
    inet_ingress["chain"]["dev"] = json!(["veth1", "veth2"]);
    let rs = ruleset(vec![
        table("netdev", "edge", 1),
        ingress,
        rule(
            "netdev",
            "edge",
            "in",
            2,
            json!([m("==", pl("tcp", "dport"), json!(80)), drop()]),
        ),
        table("inet", "guard", 2),
        inet_ingress,
        rule(
            "inet",
            "guard",
            "in",
            2,
            json!([m("==", pl("tcp", "dport"), json!(81)), drop()]),
        ),
    ]);
    let p80 = tcp("1.1.1.1", "2.2.2.2", 80);
    let p81 = tcp("1.1.1.1", "2.2.2.2", 81);
    let o = single(run(&rs, Hook::Ingress, &p80, Some("veth1"), None));
    assert_eq!(
        (o.verdict, o.decided_by.map(|d| (d.family, d.table))),
        (Verdict::Drop, Some((Some("netdev".into()), "edge".into())))
    );
    // veth2 is bound only to the inet chain.
    assert_eq!(
        single(run(&rs, Hook::Ingress, &p80, Some("veth2"), None)).verdict,
        Verdict::Accept
    );
    assert_eq!(
        single(run(&rs, Hook::Ingress, &p81, Some("veth2"), None)).verdict,
        Verdict::Drop
    );
    assert_eq!(
        single(run(&rs, Hook::Ingress, &p81, Some("eth0"), None)).verdict,
        Verdict::Accept
    );
    // Ingress chains are not on the IP hooks.
    assert_eq!(
        single(run(&rs, Hook::Prerouting, &p80, Some("veth1"), None)).verdict,
        Verdict::Accept
    );
}

#[test]
fn ingress_devices_come_from_the_chain_headers_when_the_json_leaves_them_out() {
    // nft 1.0.6's JSON for `type filter hook ingress device "veth1"`.
    let rs = || {
        ruleset(vec![
            table("netdev", "edge", 1),
            base("netdev", "edge", "in", 1, "filter", "ingress", 0, "accept"),
            rule(
                "netdev",
                "edge",
                "in",
                2,
                json!([m("==", pl("tcp", "dport"), json!(80)), drop()]),
            ),
        ])
    };
    let p = tcp("1.1.1.1", "2.2.2.2", 80);
    // Unbound: a drop on any device, uncertain, the chain named.
    let outs = run(&rs(), Hook::Ingress, &p, Some("eth0"), None);
    let [o] = &outs[..] else {
        panic!("one outcome: {outs:?}")
    };
    assert!(o.uncertain);
    assert!(
        o.notes
            .iter()
            .any(|n| n.contains("netdev edge chain in") && n.contains("assumed eth0")),
        "{:?}",
        o.notes
    );
    // A packet the chain lets on is certain.
    let other = tcp("1.1.1.1", "2.2.2.2", 81);
    assert!(!single(run(&rs(), Hook::Ingress, &other, Some("eth0"), None)).uncertain);
    let mut bound = rs();
    bound.bind_devices(
        "table netdev edge {\n\tchain in {\n\t\ttype filter hook ingress device \"veth1\" priority filter; policy accept;\n\t}\n}\n",
    );
    let o = single(run(&bound, Hook::Ingress, &p, Some("veth1"), None));
    assert_eq!((o.verdict, o.uncertain), (Verdict::Drop, false));
    let o = single(run(&bound, Hook::Ingress, &p, Some("eth0"), None));
    assert_eq!((o.verdict, o.uncertain), (Verdict::Accept, false));
    let mut two = rs();
    two.bind_devices(
        "table netdev edge {\n\tchain in {\n\t\ttype filter hook ingress devices = { eth1, \"veth1\" } priority filter; policy accept;\n\t}\n}\n",
    );
    assert_eq!(
        single(run(&two, Hook::Ingress, &p, Some("eth1"), None)).verdict,
        Verdict::Drop
    );
}

#[test]
fn bridge_family_chains_are_on_the_bridge_layer_only() {
    let rs = ruleset(vec![
        table("bridge", "pods", 1),
        base(
            "bridge", "pods", "fwd", 1, "filter", "forward", -200, "accept",
        ),
        rule(
            "bridge",
            "pods",
            "fwd",
            2,
            json!([m("==", pl("tcp", "dport"), json!(8080)), drop()]),
        ),
        table("ip", "a", 2),
        base("ip", "a", "f", 1, "filter", "forward", 0, "drop"),
    ]);
    let p = tcp("10.244.0.5", "10.244.0.6", 8080);
    let facts = node_facts();
    let conn = ConnState::at(Hook::Forward, &p);
    let bridged = traverse_bridge_hook(&rs, &facts, Hook::Forward, &p, Some("veth1"), None, &conn);
    let o = single(bridged);
    assert_eq!(o.verdict, Verdict::Drop);
    assert_eq!(o.decided_by.map(|d| d.table), Some("pods".to_string()));
    // The ip table's policy drop is not on the bridge layer; the bridge
    // table is not on the IP layer.
    let other = tcp("10.244.0.5", "10.244.0.6", 8081);
    let o = single(traverse_bridge_hook(
        &rs,
        &facts,
        Hook::Forward,
        &other,
        None,
        None,
        &conn,
    ));
    assert_eq!(o.verdict, Verdict::Accept);
    let o = single(fwd(&rs, &p));
    assert_eq!(
        (o.verdict, o.decided_by.map(|d| d.table)),
        (Verdict::Drop, Some("a".to_string()))
    );
}

#[test]
fn accept_ends_only_its_base_chain() {
    let rs = ruleset(vec![
        table("inet", "b", 1),
        base("inet", "b", "f", 1, "filter", "forward", 0, "accept"),
        rule("inet", "b", "f", 2, json!([accept()])),
        table("ip", "a", 2),
        base("ip", "a", "f", 1, "filter", "forward", 10, "accept"),
        rule(
            "ip",
            "a",
            "f",
            2,
            json!([m("==", pl("tcp", "dport"), json!(80)), drop()]),
        ),
    ]);
    let o = single(fwd(&rs, &tcp("1.1.1.1", "2.2.2.2", 80)));
    assert_eq!(o.verdict, Verdict::Drop);
    let tables: Vec<_> = o.trace.iter().map(|h| h.table.as_str()).collect();
    assert_eq!(tables, ["b", "a"]);
}

#[test]
fn equal_priorities_run_later_registered_first() {
    // Verified against the kernel in tests/nft_kernel.rs: on a tie the chain
    // registered last runs first.
    let rs = ruleset(vec![
        table("ip", "t1", 1),
        base("ip", "t1", "c1", 1, "filter", "input", 0, "accept"),
        rule("ip", "t1", "c1", 3, json!([set_mark(1)])),
        base("ip", "t1", "c2", 2, "filter", "input", 0, "accept"),
        rule("ip", "t1", "c2", 4, json!([set_mark(2)])),
        table("inet", "t2", 2),
        base("inet", "t2", "d", 1, "filter", "input", 0, "accept"),
        rule("inet", "t2", "d", 2, json!([set_mark(3)])),
    ]);
    let o = single(run(
        &rs,
        Hook::Input,
        &tcp("1.1.1.1", "192.168.1.10", 80),
        Some("eth0"),
        None,
    ));
    let order: Vec<_> = o
        .trace
        .iter()
        .map(|h| format!("{}/{}", h.table, h.chain))
        .collect();
    assert_eq!(order, ["t2/d", "t1/c2", "t1/c1"]);
    assert_eq!(o.packet.mark, 1);
    assert!(
        o.notes.iter().any(|n| n.contains("share priority 0")),
        "{:?}",
        o.notes
    );
}

#[test]
fn nat_chains_run_inside_the_nat_core() {
    // A nat chain at -90 runs in the NAT core at -100, so a filter chain at
    // -95 already sees the translated destination (as the kernel does).
    let rs = ruleset(vec![
        table("ip", "t", 1),
        base("ip", "t", "f105", 1, "filter", "prerouting", -105, "accept"),
        rule(
            "ip",
            "t",
            "f105",
            10,
            json!([m("==", pl("ip", "daddr"), json!("10.77.0.3")), set_mark(1)]),
        ),
        base("ip", "t", "f95", 2, "filter", "prerouting", -95, "accept"),
        rule(
            "ip",
            "t",
            "f95",
            11,
            json!([m("==", pl("ip", "daddr"), json!("10.77.0.2")), {"mangle": {"key": meta("mark"), "value": {"|": [meta("mark"), 2]}}}]),
        ),
        base("ip", "t", "n90", 3, "nat", "prerouting", -90, "accept"),
        rule(
            "ip",
            "t",
            "n90",
            12,
            json!([{"dnat": {"addr": "10.77.0.2"}}]),
        ),
        base("ip", "t", "n110", 4, "nat", "prerouting", -110, "accept"),
        rule(
            "ip",
            "t",
            "n110",
            13,
            json!([m("==", pl("udp", "dport"), json!(7)), {"dnat": {"addr": "10.77.0.9"}}]),
        ),
    ]);
    let o = single(run(
        &rs,
        Hook::Prerouting,
        &udp("10.77.0.1", "10.77.0.3", 9999),
        Some("eth0"),
        None,
    ));
    assert_eq!((o.packet.dst, o.packet.mark), (ip("10.77.0.2"), 3));
    // The first nat chain that binds wins; later ones are not consulted.
    let o = single(run(
        &rs,
        Hook::Prerouting,
        &udp("10.77.0.1", "10.77.0.3", 7),
        Some("eth0"),
        None,
    ));
    assert_eq!(o.packet.dst, ip("10.77.0.9"));
    assert!(o.trace.iter().all(|h| h.chain != "n90"), "{:?}", o.trace);
}

fn ipt(text: &str) -> Ruleset {
    match Ruleset::parse(text) {
        Ok(r) => r,
        Err(e) => panic!("iptables dump does not parse: {e}"),
    }
}

#[test]
fn iptables_legacy_and_nft_take_part_in_one_order() {
    let legacy = ipt(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -p tcp --dport 80 -j ACCEPT\nCOMMIT\n\
        *nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -d 10.96.0.1/32 -p tcp -j DNAT --to-destination 10.244.1.9:8080\nCOMMIT\n",
    );
    let sets = IpsetStore::default();
    let nft = ruleset(vec![
        table("inet", "fw", 1),
        base("inet", "fw", "fwd", 1, "filter", "forward", -10, "accept"),
        rule(
            "inet",
            "fw",
            "fwd",
            2,
            json!([m("==", pl("tcp", "dport"), json!(22)), drop()]),
        ),
        rule(
            "inet",
            "fw",
            "fwd",
            3,
            json!([m("==", pl("tcp", "dport"), json!(443)), accept()]),
        ),
        base("inet", "fw", "nat", 4, "nat", "prerouting", -110, "accept"),
        rule(
            "inet",
            "fw",
            "nat",
            5,
            json!([m("==", pl("tcp", "dport"), json!(5000)), {"dnat": {"family": "ip", "addr": "10.244.1.7"}}]),
        ),
    ]);
    let rules = HookRules {
        iptables: Some(IptablesInput {
            rules: &legacy,
            sets: &sets,
            backend: IptablesBackend::Legacy,
        }),
        nft: Some(&nft),
    };
    let f = |port| {
        single(run_with(
            &rules,
            &node_facts(),
            Hook::Forward,
            &tcp("1.1.1.1", "2.2.2.2", port),
            Some("eth0"),
            Some("cni0"),
        ))
    };
    let o = f(22);
    assert_eq!(
        (o.verdict, o.decided_by.and_then(|d| d.family)),
        (Verdict::Drop, Some("inet".to_string()))
    );
    let o = f(80);
    assert_eq!(o.verdict, Verdict::Accept);
    assert_eq!(
        o.decided_by.map(|d| (d.table, d.family)),
        Some(("filter".to_string(), None))
    );
    // nft accept at -10 does not save it from the iptables FORWARD policy.
    let o = f(443);
    assert_eq!(
        (o.verdict, o.decided_by.map(|d| d.rule)),
        (Verdict::Drop, Some("policy DROP".to_string()))
    );
    // nat: the nft chain at -110 binds first; iptables nat is then skipped.
    let pre = |dport| {
        single(run_with(
            &rules,
            &node_facts(),
            Hook::Prerouting,
            &tcp("1.1.1.1", "10.96.0.1", dport),
            Some("eth0"),
            None,
        ))
    };
    assert_eq!(pre(5000).packet.dst, ip("10.244.1.7"));
    assert_eq!(pre(80).packet.dst, ip("10.244.1.9"));
}

#[test]
fn iptables_nft_rules_are_evaluated_once() {
    let save = ipt(IPT_NFT_SAVE);
    let nft = parse(IPT_NFT_JSON);
    assert_eq!(
        IptablesBackend::detect(IPT_NFT_SAVE),
        Some(IptablesBackend::Nft)
    );
    assert_eq!(
        IptablesBackend::detect(
            "# Generated by iptables-save v1.8.9 (legacy) on x\n*filter\nCOMMIT\n"
        ),
        Some(IptablesBackend::Legacy)
    );
    let filter = nft.table(Family::Ip, "filter").expect("ip filter");
    let nat = nft.table(Family::Ip, "nat").expect("ip nat");
    assert!(is_iptables_nft_table(filter) && is_iptables_nft_table(nat));
    assert!(nat.has_xt());
    let sets = IpsetStore::default();
    let input = IptablesInput {
        rules: &save,
        sets: &sets,
        backend: IptablesBackend::Nft,
    };
    assert!(evaluated_by_iptables(filter, Some(&input)));
    let rules = HookRules {
        iptables: Some(input),
        nft: Some(&nft),
    };
    let p = tcp("10.0.0.1", "10.96.0.10", 80);
    let outs = run_with(
        &rules,
        &node_facts(),
        Hook::Prerouting,
        &p,
        Some("eth0"),
        None,
    );
    let dsts: Vec<_> = outs
        .iter()
        .map(|o| (o.packet.dst.to_string(), o.uncertain))
        .collect();
    assert_eq!(
        dsts,
        [
            ("10.244.1.5".to_string(), false),
            ("10.244.2.6".to_string(), false)
        ]
    );
    // Every rule met is an iptables rule (no family, no handle): none twice.
    for o in &outs {
        assert!(o.trace.iter().all(|h| h.family.is_none()), "{:?}", o.trace);
        let mut lines: Vec<_> = o.trace.iter().map(|h| h.rule.clone()).collect();
        let n = lines.len();
        lines.dedup();
        assert_eq!(lines.len(), n);
    }
    let o = single(run_with(
        &rules,
        &node_facts(),
        Hook::Forward,
        &tcp("1.1.1.1", "2.2.2.2", 80),
        Some("eth0"),
        Some("eth1"),
    ));
    assert_eq!(
        (o.verdict, o.trace.len()),
        (Verdict::Drop, 1),
        "one FORWARD policy, not two"
    );
    // Without the iptables dump the JSON is the only source: xt statistic is unknown.
    let outs = run(&nft, Hook::Prerouting, &p, Some("eth0"), None);
    assert!(outs.iter().all(|o| o.uncertain), "{outs:#?}");
    assert!(
        outs.iter()
            .flat_map(|o| &o.notes)
            .any(|n| n.contains("xt match \"statistic\"")),
        "{outs:#?}"
    );
    // A legacy iptables dump beside them does not own the nft tables.
    let legacy = IptablesInput {
        rules: &save,
        sets: &sets,
        backend: IptablesBackend::Legacy,
    };
    assert!(!evaluated_by_iptables(filter, Some(&legacy)));
}

#[test]
fn traverse_chain_walks_one_base_chain() {
    let rs = parse(KUBE_PROXY);
    let facts = kube_facts();
    let p = tcp("10.0.1.5", "172.30.0.44", 80);
    let outs = traverse_chain(
        &rs,
        Family::Ip,
        "kube-proxy",
        "nat-output",
        &facts,
        Hook::Output,
        &p,
        None,
        Some("eth0"),
        &ConnState::at(Hook::Output, &p),
    )
    .expect("a base chain");
    assert_eq!(outs.len(), 2);
    assert!(
        traverse_chain(
            &rs,
            Family::Ip,
            "kube-proxy",
            "services",
            &facts,
            Hook::Output,
            &p,
            None,
            None,
            &ConnState::default()
        )
        .is_none()
    );
    assert!(
        traverse_chain(
            &rs,
            Family::Inet,
            "kube-proxy",
            "nat-output",
            &facts,
            Hook::Output,
            &p,
            None,
            None,
            &ConnState::default()
        )
        .is_none()
    );
}

#[test]
fn thousands_of_services_are_looked_up_not_scanned() {
    let mut elems = Vec::new();
    let mut objs = vec![table("ip", "kp", 1)];
    for i in 0..5000u32 {
        let svc = format!("172.30.{}.{}", i / 250, i % 250 + 1);
        elems.push(json!([{"concat": [svc, "tcp", 80]}, goto(&format!("svc-{i}"))]));
    }
    objs.push(
        json!({"map": {"family": "ip", "table": "kp", "name": "service-ips", "handle": 2,
        "type": ["ipv4_addr", "inet_proto", "inet_service"], "map": "verdict", "elem": elems}}),
    );
    objs.push(base(
        "ip",
        "kp",
        "nat-prerouting",
        3,
        "nat",
        "prerouting",
        -100,
        "accept",
    ));
    objs.push(rule("ip", "kp", "nat-prerouting", 4, json!([{"vmap": {"key": {"concat": [pl("ip", "daddr"), meta("l4proto"), pl("th", "dport")]}, "data": "@service-ips"}}])));
    for i in 0..5000u32 {
        let name = format!("svc-{i}");
        objs.push(chain("ip", "kp", &name, 10 + u64::from(i)));
        objs.push(rule("ip", "kp", &name, 20_000 + u64::from(i), json!([{"dnat": {"addr": format!("10.180.{}.{}", i / 250, i % 250 + 1), "port": 8080}}])));
    }
    let start = std::time::Instant::now();
    let rs = ruleset(objs);
    let o = single(run(
        &rs,
        Hook::Prerouting,
        &tcp("10.0.0.1", "172.30.19.250", 80),
        Some("eth0"),
        None,
    ));
    assert_eq!((o.packet.dst, o.packet.dport), (ip("10.180.19.250"), 8080));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}
