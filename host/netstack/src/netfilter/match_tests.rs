//! End-to-end tests of the matches and targets that need hook context:
//! connection state (connmark, original tuple, NAT state), sockets (owner,
//! socket, TPROXY), reverse routes (rpfilter), interface-limited addrtype,
//! mac/length, `--return-nomatch`, and the non-terminating targets. Each
//! rule is checked matched, not matched, negated and undecidable.

use std::net::Ipv4Addr;

use super::test_util::{Facts, ip, node_facts, parse, tcp, udp};
use super::{Hook, IpsetStore, Outcome, ReverseRoute, Verdict, traverse};
use crate::packet::{Packet, Protocol};

/// A simplified single-rule result.
#[derive(Debug, PartialEq, Eq)]
enum R {
    /// The rule matched (certainly).
    Y,
    /// It did not.
    N,
    /// Undecidable: the outcome is uncertain.
    U,
}
use R::*;

fn outcomes(
    dump: &str,
    hook: Hook,
    p: &Packet,
    facts: &Facts,
    iif: Option<&str>,
    oif: Option<&str>,
) -> Vec<Outcome> {
    let sets = IpsetStore::parse(
        "create NETS hash:net family inet\nadd NETS 10.0.0.0/8\nadd NETS 10.244.1.0/24 nomatch\n",
    )
    .expect("sets");
    traverse(&parse(dump), &sets, facts, hook, p, iif, oif)
}

/// One `-j ACCEPT` rule in a chain whose policy is DROP.
fn rule_in(
    hook: Hook,
    words: &str,
    p: &Packet,
    facts: &Facts,
    iif: Option<&str>,
    oif: Option<&str>,
) -> R {
    let chain = hook.chain_name();
    let dump = format!("*mangle\n:{chain} DROP [0:0]\n-A {chain} {words} -j ACCEPT\nCOMMIT\n");
    let outs = outcomes(&dump, hook, p, facts, iif, oif);
    if outs.iter().any(|o| o.uncertain) {
        return U;
    }
    assert_eq!(outs.len(), 1, "{outs:#?}");
    match outs[0].verdict {
        Verdict::Accept => Y,
        _ => N,
    }
}

fn fwd(words: &str, p: &Packet) -> R {
    rule_in(
        Hook::Forward,
        words,
        p,
        &node_facts(),
        Some("cni0"),
        Some("eth0"),
    )
}

fn pre(words: &str, p: &Packet, facts: &Facts) -> R {
    rule_in(Hook::Prerouting, words, p, facts, Some("eth0"), None)
}

fn pod() -> Packet {
    tcp("10.244.1.5", "10.96.0.10", 80)
}

#[test]
fn connmark_is_known_on_a_new_connection_and_follows_connmark_targets() {
    let f = node_facts();
    assert_eq!(pre("-m connmark --mark 0x0", &pod(), &f), Y);
    assert_eq!(pre("-m connmark --mark 0x1/0x1", &pod(), &f), N);
    assert_eq!(pre("-m connmark ! --mark 0x1/0x1", &pod(), &f), Y);
    // Later hooks and replies do not know the connection mark.
    assert_eq!(fwd("-m connmark --mark 0x0", &pod()), U);
    assert_eq!(fwd("-m connmark ! --mark 0x0", &pod()), U);
    let mut reply = pod();
    reply.reply = true;
    assert_eq!(pre("-m connmark --mark 0x0", &reply, &f), U);
    assert_eq!(pre("-m connmark --mark bogus", &pod(), &f), U);

    // --set-xmark, --save-mark and --restore-mark with masks.
    let dump = "*mangle\n:PREROUTING ACCEPT [0:0]\n\
        -A PREROUTING -j CONNMARK --set-xmark 0x10/0xff\n\
        -A PREROUTING -m connmark --mark 0x10/0xff -j MARK --set-mark 0x1\n\
        -A PREROUTING -j CONNMARK --save-mark --nfmask 0xf --ctmask 0xf\n\
        -A PREROUTING -m connmark --mark 0x11 -j MARK --set-mark 0x0\n\
        -A PREROUTING -j CONNMARK --restore-mark --nfmask 0xff00 --ctmask 0xff\n\
        COMMIT\n";
    let outs = outcomes(dump, Hook::Prerouting, &pod(), &f, Some("eth0"), None);
    assert_eq!(outs.len(), 1);
    assert!(!outs[0].uncertain);
    // ctmark 0x10 → mark 1 → ctmark (0x10 & !0xf) ^ (1 & 0xf) = 0x11 → mark 0
    // → restore: mark = (0 & !0xff00) ^ (0x11 & 0xff) = 0x11.
    assert_eq!(outs[0].packet.mark, 0x11);

    // Restoring an unknown connection mark is uncertain and says so.
    let dump = "*mangle\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j CONNMARK --restore-mark\nCOMMIT\n";
    let outs = outcomes(dump, Hook::Forward, &pod(), &f, Some("cni0"), Some("eth0"));
    assert!(outs[0].uncertain);
    assert!(
        outs[0].notes[0].contains("--restore-mark"),
        "{:?}",
        outs[0].notes
    );
    // Setting the whole connection mark makes it known again.
    let dump = "*mangle\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j CONNMARK --set-mark 0x7\n\
        -A FORWARD -j CONNMARK --restore-mark --mask 0x3\nCOMMIT\n";
    let outs = outcomes(dump, Hook::Forward, &pod(), &f, Some("cni0"), Some("eth0"));
    assert!(!outs[0].uncertain);
    assert_eq!(outs[0].packet.mark, 0x3);
}

#[test]
fn original_tuple_and_nat_state() {
    let f = node_facts();
    assert_eq!(pre("-m conntrack --ctorigdst 10.96.0.10", &pod(), &f), Y);
    assert_eq!(pre("-m conntrack --ctorigdst 10.96.0.0/12", &pod(), &f), Y);
    assert_eq!(pre("-m conntrack ! --ctorigdst 10.96.0.10", &pod(), &f), N);
    assert_eq!(pre("-m conntrack --ctorigsrc 10.244.1.5", &pod(), &f), Y);
    assert_eq!(pre("-m conntrack --ctorigdstport 80", &pod(), &f), Y);
    assert_eq!(pre("-m conntrack --ctorigdstport 81:90", &pod(), &f), N);
    assert_eq!(pre("-m conntrack ! --ctorigdstport 81:90", &pod(), &f), Y);
    assert_eq!(pre("-m conntrack --ctorigsrcport 40000", &pod(), &f), Y);
    assert_eq!(fwd("-m conntrack --ctorigdst 10.96.0.10", &pod()), U);
    assert_eq!(pre("-m conntrack --ctorigdst nowhere", &pod(), &f), U);
    assert_eq!(pre("-m conntrack --ctreplsrc 10.0.0.1", &pod(), &f), U);
    // After DNAT the original destination is still the service, and the
    // connection is in state DNAT for the rest of the traversal.
    let dump = "*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j DNAT --to-destination 10.244.2.7:8080\nCOMMIT\n\
        *filter\n:OUTPUT DROP [0:0]\n\
        -A OUTPUT -m conntrack --ctstate DNAT --ctorigdst 10.96.0.10 --ctorigdstport 80 -j ACCEPT\nCOMMIT\n";
    let outs = outcomes(dump, Hook::Output, &pod(), &f, None, Some("eth0"));
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].verdict, Verdict::Accept);
    assert_eq!(outs[0].packet.dst, ip("10.244.2.7"));
    let dump = dump.replace("--ctstate DNAT", "--ctstate SNAT");
    let outs = outcomes(&dump, Hook::Output, &pod(), &f, None, Some("eth0"));
    assert_eq!(outs[0].verdict, Verdict::Drop);
}

#[test]
fn owner_only_in_output() {
    let f = node_facts();
    assert_eq!(
        rule_in(
            Hook::Output,
            "-m owner --uid-owner 0",
            &pod(),
            &f,
            None,
            Some("eth0")
        ),
        U
    );
    assert_eq!(
        rule_in(
            Hook::Output,
            "-m owner ! --uid-owner 0",
            &pod(),
            &f,
            None,
            Some("eth0")
        ),
        U
    );
    assert_eq!(fwd("-m owner --uid-owner 0", &pod()), N);
    assert_eq!(fwd("-m owner ! --gid-owner 0", &pod()), Y);
    assert_eq!(fwd("-m owner --socket-exists", &pod()), N);
    assert_eq!(fwd("-m owner --uid-owner 0 --suppl-groups", &pod()), N);
}

fn with_sockets(socks: Vec<(Protocol, Ipv4Addr, u16)>) -> Facts {
    Facts {
        sockets: Some(socks),
        ..node_facts()
    }
}

#[test]
fn socket_match() {
    let p = tcp("10.0.0.1", "192.168.1.10", 15001);
    let any = with_sockets(vec![(Protocol::Tcp, Ipv4Addr::UNSPECIFIED, 15001)]);
    let exact = with_sockets(vec![(Protocol::Tcp, ip("192.168.1.10"), 15001)]);
    let none = with_sockets(vec![(Protocol::Udp, Ipv4Addr::UNSPECIFIED, 15001)]);
    assert_eq!(pre("-m socket", &p, &any), Y);
    assert_eq!(pre("-m socket", &p, &exact), Y);
    assert_eq!(pre("-m socket --nowildcard", &p, &any), N);
    assert_eq!(pre("-m socket --nowildcard", &p, &exact), Y);
    assert_eq!(pre("-m socket", &p, &none), N);
    assert_eq!(pre("-m socket --transparent", &p, &any), U);
    assert_eq!(pre("-m socket --transparent", &p, &none), N);
    assert_eq!(
        pre("-m socket", &p, &node_facts()),
        U,
        "sockets not collected"
    );
    let mut r = p;
    r.reply = true;
    assert_eq!(pre("-m socket", &r, &any), U);
}

#[test]
fn rpfilter_strict_loose_invert_and_unknown() {
    let facts = Facts {
        routes_back: Some(vec![
            (
                ip("10.0.0.0"),
                8,
                ReverseRoute {
                    unicast: true,
                    local: false,
                    devs: vec!["eth0".into()],
                },
            ),
            (
                ip("192.168.1.10"),
                32,
                ReverseRoute {
                    unicast: false,
                    local: true,
                    devs: vec!["eth0".into()],
                },
            ),
        ]),
        ..node_facts()
    };
    let from_ten = tcp("10.1.1.1", "192.168.1.10", 80);
    let from_pod = tcp("10.244.1.5", "192.168.1.10", 80);
    let unroutable = tcp("172.31.0.1", "192.168.1.10", 80);
    let spoofed_local = tcp("192.168.1.10", "192.168.1.10", 80);
    let r = |words: &str, p: &Packet, iif: &str| {
        rule_in(Hook::Prerouting, words, p, &facts, Some(iif), None)
    };
    assert_eq!(r("-m rpfilter", &from_ten, "eth0"), Y);
    assert_eq!(
        r("-m rpfilter", &from_ten, "cni0"),
        N,
        "strict: wrong interface"
    );
    assert_eq!(r("-m rpfilter --loose", &from_ten, "cni0"), Y);
    assert_eq!(r("-m rpfilter --invert", &from_ten, "cni0"), Y);
    assert_eq!(r("-m rpfilter --validmark --invert", &from_ten, "eth0"), N);
    assert_eq!(r("-m rpfilter --loose", &unroutable, "eth0"), N);
    assert_eq!(r("-m rpfilter", &spoofed_local, "eth0"), N);
    assert_eq!(r("-m rpfilter --accept-local", &spoofed_local, "eth0"), Y);
    assert_eq!(
        r("-m rpfilter", &from_pod, "lo"),
        Y,
        "loopback always passes"
    );
    assert_eq!(
        pre("-m rpfilter", &from_ten, &node_facts()),
        U,
        "routes not known"
    );
}

#[test]
fn addrtype_limited_to_an_interface() {
    let to_eth0 = tcp("10.244.1.5", "192.168.1.10", 80);
    let to_cni0 = tcp("10.244.1.5", "10.244.1.1", 80);
    let f = node_facts();
    let r = |words: &str, p: &Packet, iif: &str| {
        rule_in(Hook::Prerouting, words, p, &f, Some(iif), None)
    };
    assert_eq!(
        r(
            "-m addrtype --dst-type LOCAL --limit-iface-in",
            &to_eth0,
            "eth0"
        ),
        Y
    );
    assert_eq!(
        r(
            "-m addrtype --dst-type LOCAL --limit-iface-in",
            &to_cni0,
            "eth0"
        ),
        N
    );
    assert_eq!(r("-m addrtype --dst-type LOCAL", &to_cni0, "eth0"), Y);
    assert_eq!(
        r(
            "-m addrtype ! --dst-type LOCAL --limit-iface-in",
            &to_cni0,
            "eth0"
        ),
        Y
    );
    assert_eq!(
        r(
            "-m addrtype --limit-iface-in --dst-type UNICAST",
            &to_cni0,
            "eth0"
        ),
        Y
    );
    assert_eq!(
        rule_in(
            Hook::Prerouting,
            "-m addrtype --dst-type LOCAL --limit-iface-out",
            &to_eth0,
            &f,
            Some("eth0"),
            None
        ),
        U,
        "no output interface in PREROUTING"
    );
    assert_eq!(
        rule_in(
            Hook::Forward,
            "-m addrtype --src-type LOCAL --limit-iface-out",
            &to_cni0,
            &f,
            Some("eth0"),
            Some("cni0")
        ),
        N
    );
}

#[test]
fn mac_and_length_are_undecidable_where_they_apply() {
    let f = node_facts();
    assert_eq!(pre("-m mac --mac-source 00:11:22:33:44:55", &pod(), &f), U);
    assert_eq!(
        pre("-m mac ! --mac-source 00:11:22:33:44:55", &pod(), &f),
        U
    );
    assert_eq!(
        rule_in(
            Hook::Output,
            "-m mac --mac-source 00:11:22:33:44:55",
            &pod(),
            &f,
            None,
            Some("eth0")
        ),
        N
    );
    assert_eq!(fwd("-m length --length 0:1500", &pod()), U);
    assert_eq!(fwd("-m length ! --length 1400:65535", &pod()), U);
    assert_eq!(fwd("-m length --length 9:1", &pod()), U);
    // A false condition still decides.
    assert_eq!(fwd("-s 1.1.1.1 -m length --length 0:1500", &pod()), N);
}

#[test]
fn set_return_nomatch() {
    let inside = tcp("10.1.0.1", "1.1.1.1", 80);
    let excluded = tcp("10.244.1.5", "1.1.1.1", 80);
    let outside = tcp("11.0.0.1", "1.1.1.1", 80);
    assert_eq!(fwd("-m set --match-set NETS src", &inside), Y);
    assert_eq!(fwd("-m set --match-set NETS src", &excluded), N);
    assert_eq!(
        fwd("-m set --match-set NETS src --return-nomatch", &excluded),
        Y
    );
    assert_eq!(
        fwd("-m set --match-set NETS src --return-nomatch", &outside),
        N
    );
    assert_eq!(
        fwd("-m set ! --match-set NETS src --return-nomatch", &excluded),
        N
    );
    assert_eq!(
        fwd("-m set --match-set NOPE src --return-nomatch", &excluded),
        U
    );
}

#[test]
fn tproxy_needs_a_listening_socket() {
    let dump = "*mangle\n:PREROUTING ACCEPT [0:0]\n\
        -A PREROUTING -p tcp -j TPROXY --on-port 15006 --on-ip 127.0.0.1 --tproxy-mark 0x1/0x1\n\
        -A PREROUTING -j MARK --set-mark 0x99\nCOMMIT\n";
    let p = tcp("10.244.1.5", "10.96.0.10", 80);
    let listening = with_sockets(vec![(Protocol::Tcp, Ipv4Addr::UNSPECIFIED, 15006)]);
    let outs = outcomes(dump, Hook::Prerouting, &p, &listening, Some("eth0"), None);
    assert_eq!(outs.len(), 1);
    assert_eq!(
        (outs[0].verdict, outs[0].packet.mark),
        (Verdict::Accept, 0x1)
    );
    assert_eq!(
        outs[0].packet.dst, p.dst,
        "the destination is not rewritten"
    );
    assert_eq!(outs[0].decided_by.as_ref().map(|d| d.index), Some(1));
    let outs = outcomes(
        dump,
        Hook::Prerouting,
        &p,
        &with_sockets(vec![]),
        Some("eth0"),
        None,
    );
    assert_eq!(outs[0].verdict, Verdict::Drop);
    assert!(outs[0].notes[0].contains("no socket listens on 127.0.0.1:15006"));
    let outs = outcomes(
        dump,
        Hook::Prerouting,
        &p,
        &node_facts(),
        Some("eth0"),
        None,
    );
    assert!(outs[0].uncertain);
    // Not reached by UDP.
    let outs = outcomes(
        dump,
        Hook::Prerouting,
        &udp("1.1.1.1", "2.2.2.2", 53),
        &node_facts(),
        Some("eth0"),
        None,
    );
    assert_eq!(outs[0].packet.mark, 0x99);
}

#[test]
fn non_terminating_targets_continue() {
    let dump = "*raw\n:PREROUTING ACCEPT [0:0]\n\
        -A PREROUTING -j TRACE\n-A PREROUTING -j CT --zone 1\nCOMMIT\n\
        *mangle\n:PREROUTING ACCEPT [0:0]\n\
        -A PREROUTING -j LOG --log-prefix \"x: \"\n-A PREROUTING -j NFLOG --nflog-group 5\n\
        -A PREROUTING -j MARK --set-mark 0x5\nCOMMIT\n";
    let outs = outcomes(
        dump,
        Hook::Prerouting,
        &pod(),
        &node_facts(),
        Some("eth0"),
        None,
    );
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].packet.mark, 0x5);
    assert_eq!(outs[0].trace.len(), 5);
    assert!(!outs[0].uncertain);
}

#[test]
fn reject_types_and_kube_mark_chains() {
    for with in [
        "icmp-port-unreachable",
        "icmp-host-prohibited",
        "tcp-reset",
        "icmp-admin-prohibited",
    ] {
        let words = format!("-p tcp -j REJECT --reject-with {with}");
        let dump = format!("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD {words}\nCOMMIT\n");
        let outs = outcomes(
            &dump,
            Hook::Forward,
            &pod(),
            &node_facts(),
            Some("cni0"),
            Some("eth0"),
        );
        assert_eq!(outs[0].verdict, Verdict::Reject, "{with}");
    }
    // KUBE-MARK-DROP is an ordinary chain that marks; the drop comes later.
    let dump = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-MARK-DROP - [0:0]\n\
        -A PREROUTING -j KUBE-MARK-DROP\n-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000\nCOMMIT\n\
        *filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m mark --mark 0x8000/0x8000 -j DROP\nCOMMIT\n";
    let o = outcomes(
        dump,
        Hook::Prerouting,
        &pod(),
        &node_facts(),
        Some("cni0"),
        None,
    );
    assert_eq!((o[0].verdict, o[0].packet.mark), (Verdict::Accept, 0x8000));
    let o2 = outcomes(
        dump,
        Hook::Forward,
        &o[0].packet,
        &node_facts(),
        Some("cni0"),
        Some("eth0"),
    );
    assert_eq!(o2[0].verdict, Verdict::Drop);
}

#[test]
fn nat_state_flows_between_hooks_and_is_unknown_without_it() {
    use super::{ConnState, traverse_conn};
    let dump = "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -d 10.96.0.10 -j DNAT --to-destination 10.244.2.7:8080\nCOMMIT\n\
        *filter\n:FORWARD DROP [0:0]\n\
        -A FORWARD -m conntrack --ctstate DNAT --ctorigdst 10.96.0.10 -j ACCEPT\nCOMMIT\n";
    let f = node_facts();
    let pre = outcomes(dump, Hook::Prerouting, &pod(), &f, Some("cni0"), None);
    assert_eq!(pre.len(), 1);
    let conn = pre[0].conn;
    assert_eq!(conn.dnat, Some(true));
    assert_eq!(conn.orig.map(|o| o.dst), Some(ip("10.96.0.10")));
    let sets = IpsetStore::default();
    let fwd = traverse_conn(
        &parse(dump),
        &sets,
        &f,
        Hook::Forward,
        &pre[0].packet,
        Some("cni0"),
        Some("eth0"),
        &conn,
    );
    assert_eq!(fwd.len(), 1);
    assert_eq!((fwd[0].verdict, fwd[0].uncertain), (Verdict::Accept, false));
    // Not DNATed in PREROUTING: certainly not in state DNAT.
    let direct = tcp("10.244.1.5", "10.244.2.7", 8080);
    let conn = outcomes(dump, Hook::Prerouting, &direct, &f, Some("cni0"), None)[0].conn;
    let fwd = traverse_conn(
        &parse(dump),
        &sets,
        &f,
        Hook::Forward,
        &direct,
        Some("cni0"),
        Some("eth0"),
        &conn,
    );
    assert_eq!((fwd[0].verdict, fwd[0].uncertain), (Verdict::Drop, false));
    // Without the earlier hooks' state the DNAT bit is unknown.
    assert_eq!(fwd_default_dnat(&pre[0].packet), U);
    assert_eq!(ConnState::at(Hook::Forward, &direct).snat, Some(false));
}

fn fwd_default_dnat(p: &Packet) -> R {
    fwd("-m conntrack --ctstate DNAT", p)
}
