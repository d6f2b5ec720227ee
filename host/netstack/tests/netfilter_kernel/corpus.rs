//! The rulesets the kernel and the simulator are compared on, each with the
//! probes sent through it. Addresses: client A 10.99.1.2 (router side
//! `cali0a`), client B 10.99.3.2 (`ethb0`, the "pod network"), server
//! 10.99.2.2-4 (`srv0`); the router is .1 on each link.

use std::net::Ipv4Addr;

/// Which client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

#[derive(Debug, Clone, Copy)]
pub struct ProbeSpec {
    pub from: Side,
    pub udp: bool,
    pub dst: Ipv4Addr,
    pub dport: u16,
    /// Sent this many times; >1 for load-balanced (statistic) services.
    pub repeat: u32,
}

pub struct Corpus {
    pub name: &'static str,
    pub iptables: &'static str,
    pub ipsets: &'static str,
    /// `ip rule add` arguments for the router.
    pub ip_rules: &'static [&'static str],
    /// `ip route add` arguments for the router.
    pub ip_routes: &'static [&'static str],
    pub probes: Vec<ProbeSpec>,
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
}

fn tcp(from: Side, dst: &str, dport: u16) -> ProbeSpec {
    ProbeSpec {
        from,
        udp: false,
        dst: ip(dst),
        dport,
        repeat: 1,
    }
}

fn udp(from: Side, dst: &str, dport: u16) -> ProbeSpec {
    ProbeSpec {
        udp: true,
        ..tcp(from, dst, dport)
    }
}

fn many(mut p: ProbeSpec, n: u32) -> ProbeSpec {
    p.repeat = n;
    p
}

const KUBE_PROXY: &str = r#"*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A FORWARD -s 10.99.3.0/24 -m comment --comment "flanneld forward" -j ACCEPT
-A FORWARD -d 10.99.3.0/24 -m comment --comment "flanneld forward" -j ACCEPT
-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "default/gone:http has no endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 9000 -j REJECT --reject-with icmp-port-unreachable
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-SERVICES -d 10.96.0.20/32 -p tcp -m comment --comment "default/gone:http has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-EXT-WEB - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-DNS1 - [0:0]
:KUBE-SEP-WEB1 - [0:0]
:KUBE-SEP-WEB2 - [0:0]
:KUBE-SEP-WEB3 - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-DNS - [0:0]
:KUBE-SVC-WEB - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-EXT-WEB -m comment --comment "masquerade traffic for default/web:http external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-WEB -j KUBE-SVC-WEB
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 -j KUBE-EXT-WEB
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-DNS1 -s 10.99.2.3/32 -m comment --comment "kube-system/dns:dns" -j KUBE-MARK-MASQ
-A KUBE-SEP-DNS1 -p udp -m comment --comment "kube-system/dns:dns" -m udp -j DNAT --to-destination 10.99.2.3:5353
-A KUBE-SEP-WEB1 -s 10.99.2.2/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-WEB1 -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.99.2.2:8080
-A KUBE-SEP-WEB2 -s 10.99.2.3/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-WEB2 -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.99.2.3:8080
-A KUBE-SEP-WEB3 -s 10.99.2.4/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-WEB3 -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.99.2.4:8080
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-WEB
-A KUBE-SERVICES -d 10.96.0.53/32 -p udp -m comment --comment "kube-system/dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-DNS
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-DNS ! -s 10.99.3.0/24 -d 10.96.0.53/32 -p udp -m comment --comment "kube-system/dns:dns cluster IP" -m udp --dport 53 -j KUBE-MARK-MASQ
-A KUBE-SVC-DNS -m comment --comment "kube-system/dns:dns -> 10.99.2.3:5353" -j KUBE-SEP-DNS1
-A KUBE-SVC-WEB ! -s 10.99.3.0/24 -d 10.96.0.10/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-WEB -m comment --comment "default/web:http -> 10.99.2.2:8080" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-WEB1
-A KUBE-SVC-WEB -m comment --comment "default/web:http -> 10.99.2.3:8080" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-WEB2
-A KUBE-SVC-WEB -m comment --comment "default/web:http -> 10.99.2.4:8080" -j KUBE-SEP-WEB3
COMMIT
"#;

const FLANNEL: &str = r#"*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:FLANNEL-FWD - [0:0]
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A FLANNEL-FWD -s 10.99.3.0/24 -m comment --comment "flanneld forward" -j ACCEPT
-A FLANNEL-FWD -d 10.99.3.0/24 -m comment --comment "flanneld forward" -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:FLANNEL-POSTRTG - [0:0]
-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG
-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.99.3.0/24 -d 10.99.3.0/24 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG -s 10.99.3.0/24 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
-A FLANNEL-POSTRTG ! -s 10.99.3.0/24 -d 10.99.3.0/24 -m comment --comment "flanneld masq" -j RETURN
-A FLANNEL-POSTRTG ! -s 10.99.3.0/24 -d 10.99.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully
COMMIT
"#;

const CALICO: &str = r#"*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:cali-PREROUTING - [0:0]
:cali-from-host-endpoint - [0:0]
-A PREROUTING -m comment --comment "cali:6gwbT8clXdHdC1b1" -j cali-PREROUTING
-A cali-PREROUTING -m comment --comment "cali:XFX5xbM8B9qR10JG" -j MARK --set-xmark 0x0/0xf0000
-A cali-PREROUTING -i cali+ -m comment --comment "cali:EWMPb0zVROM-woQp" -j MARK --set-xmark 0x40000/0x40000
-A cali-PREROUTING -m comment --comment "cali:Ek_rsNpunyDlK3sH" -m mark --mark 0x0/0x40000 -j cali-from-host-endpoint
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:cali-FORWARD - [0:0]
:cali-from-hep-forward - [0:0]
:cali-from-wl-dispatch - [0:0]
:cali-fw-cali0a - [0:0]
:cali-pri-kns.default - [0:0]
-A FORWARD -m comment --comment "cali:wUHhoiAYhphO9Mso" -j cali-FORWARD
-A FORWARD -m comment --comment "cali:S93hcgKJrXEqnTfs" -m comment --comment "Policy explicitly accepted packet." -m mark --mark 0x10000/0x10000 -j ACCEPT
-A FORWARD -m comment --comment "cali:mp77cMpurHhyjLrM" -j MARK --set-xmark 0x10000/0x10000
-A cali-FORWARD -m comment --comment "cali:vjrMJCRpqwy5oRoX" -j MARK --set-xmark 0x0/0xe0000
-A cali-FORWARD -m comment --comment "cali:A_sPAO0mcxbT9mOV" -m mark --mark 0x0/0x10000 -j cali-from-hep-forward
-A cali-FORWARD -i cali+ -m comment --comment "cali:8ZoYfO5HKXWbB3pk" -j cali-from-wl-dispatch
-A cali-from-wl-dispatch -i cali0a -m comment --comment "cali:z-rUtQ8XlPYOtWDn" -g cali-fw-cali0a
-A cali-from-wl-dispatch -m comment --comment "cali:ZElDDdmtBP0z2r6f" -m comment --comment "Unknown interface" -j DROP
-A cali-fw-cali0a -m comment --comment "cali:0I_kXSWnpVb_vEsx" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A cali-fw-cali0a -m comment --comment "cali:YyCHjfZVGr-JUsNy" -m conntrack --ctstate INVALID -j DROP
-A cali-fw-cali0a -m comment --comment "cali:pMU8DZCkpjeKCm1p" -j MARK --set-xmark 0x0/0x10000
-A cali-fw-cali0a -m comment --comment "cali:SiLVsOCb4bddmfXb" -j cali-pri-kns.default
-A cali-fw-cali0a -m comment --comment "cali:x4XqvxuJ4vNRdHHP" -m comment --comment "Return if profile accepted" -m mark --mark 0x10000/0x10000 -j RETURN
-A cali-fw-cali0a -m comment --comment "cali:8Bw4yjpZBF2c33WA" -m comment --comment "Drop if no profiles matched" -j DROP
-A cali-pri-kns.default -m comment --comment "cali:7Fnh7Pv3_98FtLW7" -m set --match-set cali40s:allowed-dst dst -j MARK --set-xmark 0x10000/0x10000
-A cali-pri-kns.default -m comment --comment "cali:ZbV6bJXWSRefjK0u" -m mark --mark 0x10000/0x10000 -j RETURN
-A cali-pri-kns.default -p udp -m comment --comment "cali:PfTxQwEGpVHaP3Ku" -m set --match-set cali40s:dns dst,dst -j MARK --set-xmark 0x10000/0x10000
COMMIT
"#;

const CALICO_SETS: &str =
    "create cali40s:allowed-dst hash:net family inet hashsize 1024 maxelem 1048576
add cali40s:allowed-dst 10.99.2.0/24
add cali40s:allowed-dst 10.99.2.4/32 nomatch
create cali40s:dns hash:ip,port family inet hashsize 1024 maxelem 1048576
add cali40s:dns 10.99.2.4,udp:53
";

const TRICKY: &str = r#"*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:MARKS - [0:0]
-A PREROUTING -j MARKS
-A MARKS -i cali+ -j MARK --set-xmark 0x11/0xff
-A MARKS -i ethb+ -j MARK --set-mark 0x2200/0xff00
-A MARKS -p udp -j MARK --or-mark 0x1000
-A MARKS -p tcp -m tcp --dport 9000 -j MARK --xor-mark 0x3
-A MARKS -p tcp -m mark --mark 0x2200/0xff00 -m tcp --dport 443 -j MARK --and-mark 0xff
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:NATCHAIN - [0:0]
-A PREROUTING -d 10.96.1.1/32 -j NATCHAIN
-A NATCHAIN -p tcp -m mark --mark 0x10/0xf0 -j DNAT --to-destination 10.99.2.2:8080
-A NATCHAIN -p tcp -j DNAT --to-destination 10.99.2.3:9000
-A NATCHAIN -p udp -j DNAT --to-destination 10.99.2.4:5353
-A POSTROUTING -o srv+ -m mark --mark 0x2200/0xffff -p tcp -m multiport --dports 80,443 -j SNAT --to-source 10.99.2.1
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:CALLG - [0:0]
:CALLJ - [0:0]
:SUB - [0:0]
:NEG - [0:0]
-A INPUT -i ethb+ -p tcp -m tcp --dport 443 -j DROP
-A INPUT ! -i cali+ -p tcp -m tcp ! --dport 443 -j REJECT --reject-with tcp-reset
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -p tcp -m tcp --dport 443 -j CALLJ
-A FORWARD -p tcp -m conntrack --ctstate DNAT --ctorigdst 10.96.1.1 --ctorigdstport 443 -j ACCEPT
-A FORWARD -p tcp -m tcp --dport 9000 -j CALLG
-A FORWARD -p tcp -m tcp --dport 9000 -j ACCEPT
-A FORWARD -p tcp -s 10.99.3.0/24 -m tcp --dport 8080 -j RETURN
-A FORWARD -p tcp -m tcp --dport 8080 -j ACCEPT
-A FORWARD -p udp -m udp ! --dport 53 ! -s 10.99.1.0/24 -j REJECT --reject-with icmp-host-prohibited
-A FORWARD -j NEG
-A FORWARD -p tcp -m set --match-set blk dst -m tcp --dport 80 -j DROP
-A FORWARD -p tcp -m set --match-set lst dst,dst,src -j REJECT --reject-with tcp-reset
-A FORWARD -p tcp -m iprange --dst-range 10.99.2.2-10.99.2.3 -m tcp --dport 80 --tcp-flags SYN,ACK SYN -j ACCEPT
-A FORWARD -i cali+ -p udp -j ACCEPT
-A FORWARD ! -i cali+ -p udp -m set --match-set udpok dst,dst -j ACCEPT
-A CALLJ -j SUB
-A CALLJ -j REJECT --reject-with icmp-port-unreachable
-A CALLG -g SUB
-A CALLG -j REJECT --reject-with icmp-port-unreachable
-A SUB -s 10.99.1.0/24 -j RETURN
-A SUB -m mark --mark 0x22/0xff -j RETURN
-A SUB -j DROP
-A NEG ! -d 10.99.2.0/24 -j DROP
-A NEG -m mark ! --mark 0x0/0x10 -p tcp -m tcp --dport 80 -d 10.99.2.4 -j REJECT
COMMIT
"#;

const TRICKY_SETS: &str = "create blk hash:net family inet hashsize 1024 maxelem 65536
add blk 10.99.2.0/24
add blk 10.99.2.2/31 nomatch
create hipi hash:ip,port,ip family inet hashsize 1024 maxelem 65536
add hipi 10.99.2.3,tcp:80,10.99.3.2
create lst list:set size 8
add lst hipi
create udpok hash:ip,port family inet hashsize 1024 maxelem 65536
add udpok 10.99.2.2,udp:53
add udpok 10.99.2.4,udp:5353
";

const ROUTING: &str = r#"*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p udp -m udp --dport 5353 -j MARK --set-xmark 0x7/0xff
-A PREROUTING -p tcp -m tcp --dport 9000 -j MARK --set-xmark 0x100/0xf00
COMMIT
"#;

pub fn all() -> Vec<Corpus> {
    use Side::{A, B};
    vec![
        Corpus {
            name: "kube-proxy",
            iptables: KUBE_PROXY,
            ipsets: "",
            ip_rules: &[],
            ip_routes: &[],
            probes: vec![
                many(tcp(A, "10.96.0.10", 80), 8),
                many(tcp(B, "10.96.0.10", 80), 8),
                tcp(A, "10.96.0.10", 443),
                tcp(A, "10.96.0.20", 80),
                udp(A, "10.96.0.53", 53),
                udp(B, "10.96.0.53", 53),
                many(tcp(A, "10.99.1.1", 30080), 4),
                many(tcp(B, "10.99.3.1", 30080), 4),
                tcp(A, "10.99.1.1", 9000),
                tcp(A, "10.99.1.1", 80),
                tcp(A, "10.99.2.2", 8080),
                tcp(B, "10.99.2.2", 8080),
                udp(A, "10.99.2.4", 53),
                udp(B, "10.99.2.4", 53),
            ],
        },
        Corpus {
            name: "flannel",
            iptables: FLANNEL,
            ipsets: "",
            ip_rules: &[],
            ip_routes: &[],
            probes: vec![
                tcp(B, "10.99.2.2", 80),
                tcp(B, "10.99.2.3", 443),
                udp(B, "10.99.2.4", 53),
                tcp(A, "10.99.2.2", 80),
                udp(A, "10.99.2.4", 53),
                tcp(B, "10.99.3.1", 80),
                tcp(A, "10.99.1.1", 443),
                tcp(B, "10.99.9.9", 80),
            ],
        },
        Corpus {
            name: "calico",
            iptables: CALICO,
            ipsets: CALICO_SETS,
            ip_rules: &[],
            ip_routes: &[],
            probes: vec![
                tcp(A, "10.99.2.2", 80),
                tcp(A, "10.99.2.3", 8080),
                tcp(A, "10.99.2.4", 80),
                udp(A, "10.99.2.4", 53),
                udp(A, "10.99.2.4", 5353),
                udp(A, "10.99.2.2", 5353),
                tcp(B, "10.99.2.4", 80),
                udp(B, "10.99.2.4", 5353),
            ],
        },
        Corpus {
            name: "tricky",
            iptables: TRICKY,
            ipsets: TRICKY_SETS,
            ip_rules: &[],
            ip_routes: &[],
            probes: vec![
                tcp(A, "10.99.2.2", 443),
                tcp(B, "10.99.2.2", 443),
                tcp(A, "10.99.2.2", 9000),
                tcp(B, "10.99.2.2", 9000),
                tcp(A, "10.99.2.2", 8080),
                tcp(B, "10.99.2.2", 8080),
                udp(A, "10.99.2.3", 5353),
                udp(B, "10.99.2.3", 5353),
                udp(B, "10.99.2.2", 53),
                udp(B, "10.99.2.3", 53),
                tcp(A, "10.99.2.2", 80),
                tcp(A, "10.99.2.3", 80),
                tcp(A, "10.99.2.4", 80),
                tcp(B, "10.99.2.3", 80),
                tcp(B, "10.99.2.2", 80),
                tcp(B, "10.99.2.4", 80),
                tcp(A, "10.96.1.1", 80),
                tcp(B, "10.96.1.1", 80),
                tcp(B, "10.96.1.1", 443),
                udp(A, "10.96.1.1", 53),
                udp(B, "10.96.1.1", 53),
                tcp(A, "10.99.9.9", 80),
                tcp(B, "10.99.3.1", 443),
                tcp(B, "10.99.3.1", 80),
                tcp(A, "10.99.1.1", 80),
            ],
        },
        Corpus {
            name: "policy-routing",
            iptables: ROUTING,
            ipsets: "",
            ip_rules: &[
                "fwmark 0x7/0xff blackhole pref 100",
                "tos 0x10 to 10.99.2.4 unreachable pref 105",
                "oif srv0 to 10.99.2.4 blackhole pref 106",
                "from 10.99.3.0/24 to 10.99.2.4 prohibit pref 110",
                "not from 10.99.1.0/24 lookup 100 pref 120",
                "fwmark 0x100/0xf00 goto 140 pref 130",
                "to 10.99.2.3 unreachable pref 135",
                "to 10.99.2.0/24 lookup main pref 140",
            ],
            ip_routes: &[
                "10.99.2.0/24 dev srv0 table 100",
                "throw 10.99.2.3 table 100",
                "blackhole 10.99.2.2 table 100",
            ],
            probes: vec![
                udp(A, "10.99.2.2", 5353),
                udp(A, "10.99.2.2", 53),
                tcp(B, "10.99.2.4", 80),
                tcp(A, "10.99.2.4", 80),
                tcp(B, "10.99.2.3", 80),
                tcp(A, "10.99.2.3", 80),
                tcp(A, "10.99.2.2", 80),
                tcp(B, "10.99.2.2", 80),
                tcp(A, "10.99.2.3", 9000),
                tcp(B, "10.99.2.3", 9000),
            ],
        },
    ]
}
