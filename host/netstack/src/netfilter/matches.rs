//! Rule conditions (`-s`, `-m tcp --dport`, `-m set`, ...) and their
//! three-valued evaluation against the simulated packet.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use super::ipset::{IpsetStore, SetDir};
use super::values::AddrMask;
use super::{ConnState, Hook, NetnsFacts};
use crate::packet::{Packet, Protocol};

/// TCP flag bits as `--tcp-flags` names them.
pub(crate) const TCP_FIN: u8 = 0x01;
pub(crate) const TCP_SYN: u8 = 0x02;
pub(crate) const TCP_RST: u8 = 0x04;
pub(crate) const TCP_PSH: u8 = 0x08;
pub(crate) const TCP_ACK: u8 = 0x10;
pub(crate) const TCP_URG: u8 = 0x20;

/// Conntrack state bits (`--ctstate` / `--state`).
pub(crate) const CT_NEW: u8 = 0x01;
pub(crate) const CT_ESTABLISHED: u8 = 0x02;
pub(crate) const CT_RELATED: u8 = 0x04;
pub(crate) const CT_INVALID: u8 = 0x08;
pub(crate) const CT_UNTRACKED: u8 = 0x10;
pub(crate) const CT_SNAT: u8 = 0x20;
pub(crate) const CT_DNAT: u8 = 0x40;

/// An interface name pattern; a trailing `+` matches any suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IfPat {
    pub name: Box<str>,
    pub prefix: bool,
}

impl IfPat {
    pub fn parse(s: &str) -> IfPat {
        match s.strip_suffix('+') {
            Some(p) => IfPat {
                name: p.into(),
                prefix: true,
            },
            None => IfPat {
                name: s.into(),
                prefix: false,
            },
        }
    }

    /// No device is the empty name (as the kernel compares it).
    pub fn matches(&self, ifname: Option<&str>) -> bool {
        let dev = ifname.unwrap_or("");
        if self.prefix {
            dev.starts_with(&*self.name)
        } else {
            dev == &*self.name
        }
    }
}

/// One value or a comma list (the common single value needs no allocation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OneOrMany<T> {
    One(T),
    Many(Box<[T]>),
}

impl<T> OneOrMany<T> {
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(x) => std::slice::from_ref(x),
            OneOrMany::Many(v) => v,
        }
    }

    /// Parses a comma list with `f`; None when any item fails.
    pub fn parse_list(s: &str, f: impl Fn(&str) -> Option<T>) -> Option<OneOrMany<T>> {
        if s.contains(',') {
            s.split(',')
                .map(f)
                .collect::<Option<Box<[T]>>>()
                .map(OneOrMany::Many)
        } else {
            f(s).map(OneOrMany::One)
        }
    }
}

/// Which packet side a port or address condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Src,
    Dst,
    /// Either side (multiport `--ports`).
    Either,
}

/// The protocol a port match is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortProto {
    Tcp,
    Udp,
    Sctp,
    /// multiport: any protocol with ports.
    Any,
}

/// `-m addrtype` address kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddrKind {
    Local,
    Unicast,
    Broadcast,
    Multicast,
    /// Route types that the local table never holds for IPv4 addresses
    /// (BLACKHOLE, UNREACHABLE, PROHIBIT, THROW, NAT, XRESOLVE, ANYCAST, UNSPEC).
    Other,
}

impl AddrKind {
    pub fn parse(s: &str) -> Option<AddrKind> {
        Some(match s.to_ascii_uppercase().as_str() {
            "LOCAL" => AddrKind::Local,
            "UNICAST" => AddrKind::Unicast,
            "BROADCAST" => AddrKind::Broadcast,
            "MULTICAST" => AddrKind::Multicast,
            "BLACKHOLE" | "UNREACHABLE" | "PROHIBIT" | "THROW" | "NAT" | "XRESOLVE" | "ANYCAST"
            | "UNSPEC" => AddrKind::Other,
            _ => return None,
        })
    }

    /// `inet_dev_addr_type`: like [`AddrKind::of`] with only `addrs` (the
    /// limiting device's addresses) local.
    fn on_device(ip: Ipv4Addr, addrs: &[Ipv4Addr]) -> AddrKind {
        let o = ip.octets();
        if o[0] == 0 || ip.is_broadcast() {
            AddrKind::Broadcast
        } else if ip.is_multicast() {
            AddrKind::Multicast
        } else if addrs.contains(&ip) {
            AddrKind::Local
        } else {
            AddrKind::Unicast
        }
    }

    /// The kernel's `inet_addr_type`: zeronet/limited broadcast, multicast,
    /// then the local table (subnet broadcasts are not known here).
    fn of(ip: Ipv4Addr, facts: &dyn NetnsFacts) -> AddrKind {
        let o = ip.octets();
        if o[0] == 0 || ip.is_broadcast() {
            AddrKind::Broadcast
        } else if ip.is_multicast() {
            AddrKind::Multicast
        } else if ip.is_loopback() || facts.is_local(ip) {
            AddrKind::Local
        } else {
            AddrKind::Unicast
        }
    }
}

/// `-m set --match-set NAME FLAGS`.
#[derive(Debug, Clone)]
pub(crate) struct SetMatch {
    pub name: String,
    pub dirs: Vec<SetDir>,
    /// `--return-nomatch`: a `nomatch` entry makes the match true.
    pub return_nomatch: bool,
}

/// `-m rpfilter` flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Rpf {
    pub loose: bool,
    pub validmark: bool,
    pub accept_local: bool,
    pub invert: bool,
}

/// One condition of a rule; all conditions of a rule must hold.
#[derive(Debug, Clone)]
pub(crate) struct Cond {
    pub negate: bool,
    pub kind: CondKind,
}

#[derive(Debug, Clone)]
pub(crate) enum CondKind {
    Src(OneOrMany<AddrMask>),
    Dst(OneOrMany<AddrMask>),
    InIface(IfPat),
    OutIface(IfPat),
    /// IANA protocol number; 0 is `all`.
    Proto(u8),
    /// `-f`: the simulated packet is never a non-first fragment.
    Fragment,
    Ports {
        proto: PortProto,
        side: Side,
        ranges: OneOrMany<(u16, u16)>,
    },
    TcpFlags {
        mask: u8,
        comp: u8,
    },
    /// `--icmp-type`: a type (255: any) and, when given, its code.
    IcmpType {
        kind: u8,
        code: Option<u8>,
    },
    Set(Box<SetMatch>),
    Mark {
        value: u32,
        mask: u32,
    },
    CtState(u8),
    /// `--ctdir`: true for REPLY.
    CtDir(bool),
    CtProto(u8),
    AddrType {
        side: Side,
        kinds: Vec<AddrKind>,
        /// `--limit-iface-in` / `--limit-iface-out`.
        limit_in: bool,
        limit_out: bool,
    },
    /// `-m connmark --mark`.
    ConnMark {
        value: u32,
        mask: u32,
    },
    /// `--ctorigsrc` / `--ctorigdst`.
    CtOrigAddr {
        side: Side,
        m: AddrMask,
    },
    /// `--ctorigsrcport` / `--ctorigdstport`.
    CtOrigPort {
        side: Side,
        lo: u16,
        hi: u16,
    },
    /// `-m owner`: only locally generated packets have a socket.
    Owner,
    /// `-m socket` (`--nowildcard`: exact address; `--transparent`).
    Socket {
        exact: bool,
        transparent: bool,
    },
    Rpfilter(Rpf),
    /// `-m mac --mac-source`.
    Mac,
    /// `-m length --length`.
    Length,
    IpRange {
        side: Side,
        lo: u32,
        hi: u32,
    },
    /// `--physdev-in [NAME]` (None: `--physdev-is-in`).
    PhysdevIn,
    PhysdevOut,
    PhysdevBridged,
    /// `-m statistic`: a branch point.
    Statistic,
    /// A condition decided when parsing (e.g. `--probability 1`).
    Const(bool),
    /// limit / hashlimit / recent: assumed to match, with a note.
    Assumed(&'static str),
    Unknown(Box<str>),
}

/// Everything an evaluation looks at besides the rules.
pub(crate) struct Env<'a> {
    pub hook: Hook,
    pub sets: &'a IpsetStore,
    pub facts: &'a dyn NetnsFacts,
    pub iif: Option<&'a str>,
    pub oif: Option<&'a str>,
}

/// The simulated packet plus the connection facts a traversal learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flow {
    pub packet: Packet,
    /// DNAT / SNAT happened during this traversal.
    pub dnat: bool,
    pub snat: bool,
    /// NOTRACK / CT --notrack was applied.
    pub untracked: bool,
    /// Conntrack finds the packet invalid for its connection's state.
    pub invalid: bool,
    /// The connection mark, when known (0 for a new connection at its first hook).
    pub ctmark: Option<u32>,
    /// The connection's original-direction tuple, when known.
    pub orig: Option<Packet>,
    /// DNAT / SNAT before this hook (None: not known).
    pub dnat_before: Option<bool>,
    pub snat_before: Option<bool>,
}

impl Flow {
    /// The flow entering `hook`: a new connection's first hook (PREROUTING,
    /// OUTPUT) knows its conntrack entry; later hooks and replies do not.
    pub fn start(packet: Packet, conn: &ConnState) -> Flow {
        Flow {
            packet,
            dnat: false,
            snat: false,
            untracked: conn.untracked,
            invalid: conn.invalid,
            ctmark: conn.ctmark,
            orig: conn.orig,
            dnat_before: conn.dnat,
            snat_before: conn.snat,
        }
    }

    /// The connection state after the traversal so far.
    pub fn conn(&self) -> ConnState {
        ConnState {
            dnat: if self.dnat {
                Some(true)
            } else {
                self.dnat_before
            },
            snat: if self.snat {
                Some(true)
            } else {
                self.snat_before
            },
            ctmark: self.ctmark,
            orig: self.orig,
            untracked: self.untracked,
            invalid: self.invalid,
        }
    }
}

impl Flow {
    /// The ctstate bits that certainly hold, and those that may.
    pub(crate) fn ct_state(&self) -> (u8, u8) {
        if self.untracked {
            return (CT_UNTRACKED, 0);
        }
        if self.invalid {
            return (CT_INVALID, 0);
        }
        let mut sure = if self.packet.icmp.is_some_and(|m| m.is_error()) {
            // An ICMP error quoting the flow's header.
            CT_RELATED
        } else if self.packet.reply {
            CT_ESTABLISHED
        } else {
            CT_NEW
        };
        let mut maybe = 0;
        for (now, before, bit) in [
            (self.dnat, self.dnat_before, CT_DNAT),
            (self.snat, self.snat_before, CT_SNAT),
        ] {
            match (now, before) {
                (true, _) | (_, Some(true)) => sure |= bit,
                (false, None) => maybe |= bit,
                (false, Some(false)) => {}
            }
        }
        (sure, maybe)
    }

    /// The first packet of a connection is a SYN; its reply a SYN+ACK.
    pub(crate) fn tcp_flags(&self) -> u8 {
        if self.packet.reply {
            TCP_SYN | TCP_ACK
        } else {
            TCP_SYN
        }
    }
}

/// The three-valued result of one condition (plus the two special kinds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CondResult<'c> {
    Yes,
    No,
    Unknown(Cow<'c, str>),
    /// Matches for some packets of the flow and not for others (statistic).
    Chance,
    /// Treated as matching; the text names the module.
    Assumed(&'c str),
}

fn yes_no(b: bool) -> CondResult<'static> {
    if b { CondResult::Yes } else { CondResult::No }
}

fn ip_of(p: &Packet, side: Side) -> Ipv4Addr {
    match side {
        Side::Dst => p.dst,
        _ => p.src,
    }
}

impl Cond {
    /// Evaluates the condition, honouring `!`.
    pub fn eval<'c>(&'c self, flow: &Flow, env: &Env<'_>) -> CondResult<'c> {
        let p = &flow.packet;
        let res = match &self.kind {
            CondKind::Src(list) => yes_no(list.as_slice().iter().any(|m| m.contains(p.src))),
            CondKind::Dst(list) => yes_no(list.as_slice().iter().any(|m| m.contains(p.dst))),
            CondKind::InIface(pat) => yes_no(pat.matches(env.iif)),
            CondKind::OutIface(pat) => yes_no(pat.matches(env.oif)),
            CondKind::Proto(n) => yes_no(*n == 0 || *n == p.protocol.number()),
            CondKind::Fragment => CondResult::No,
            CondKind::Ports {
                proto,
                side,
                ranges,
            } => {
                let proto_ok = match proto {
                    PortProto::Tcp => p.protocol == Protocol::Tcp,
                    PortProto::Udp => p.protocol == Protocol::Udp,
                    PortProto::Sctp => p.protocol == Protocol::Sctp,
                    PortProto::Any => p.protocol != Protocol::Icmp,
                };
                if !proto_ok {
                    // A port match never matches another protocol, negated or not.
                    return CondResult::No;
                }
                let hit = |port: u16| {
                    ranges
                        .as_slice()
                        .iter()
                        .any(|&(lo, hi)| lo <= port && port <= hi)
                };
                yes_no(match side {
                    Side::Src => hit(p.sport),
                    Side::Dst => hit(p.dport),
                    Side::Either => hit(p.sport) || hit(p.dport),
                })
            }
            CondKind::TcpFlags { mask, comp } => {
                if p.protocol != Protocol::Tcp {
                    return CondResult::No;
                }
                yes_no(flow.tcp_flags() & mask == *comp)
            }
            CondKind::IcmpType { kind, code } => {
                if p.protocol != Protocol::Icmp {
                    return CondResult::No;
                }
                match p.icmp {
                    _ if *kind == 255 => CondResult::Yes,
                    Some(m) => yes_no(m.kind == *kind && code.is_none_or(|c| c == m.code)),
                    None => {
                        CondResult::Unknown(Cow::Borrowed("the ICMP type of the flow is not known"))
                    }
                }
            }
            CondKind::Set(m) => {
                let (name, dirs) = (&m.name, &m.dirs);
                match env
                    .sets
                    .test_match(name, p, dirs, env.iif, env.oif, m.return_nomatch)
                {
                    Some(b) => yes_no(b),
                    None => {
                        let why = if let Some(r) = env.sets.unsupported_reason(name) {
                            format!("ipset \"{name}\": {r}")
                        } else if env.sets.contains(name) {
                            format!("ipset \"{name}\" cannot be evaluated")
                        } else {
                            format!("unknown ipset \"{name}\"")
                        };
                        CondResult::Unknown(Cow::Owned(why))
                    }
                }
            }
            CondKind::Mark { value, mask } => yes_no(p.mark & mask == *value),
            CondKind::CtState(bits) => {
                let (sure, maybe) = flow.ct_state();
                if sure & bits != 0 {
                    CondResult::Yes
                } else if maybe & bits != 0 {
                    CondResult::Unknown(Cow::Borrowed(
                        "conntrack: whether the connection was NATed before this hook is not known",
                    ))
                } else {
                    CondResult::No
                }
            }
            CondKind::CtDir(reply) => yes_no(p.reply == *reply),
            CondKind::CtProto(n) => yes_no(*n == 0 || *n == p.protocol.number()),
            CondKind::AddrType {
                side,
                kinds,
                limit_in,
                limit_out,
            } => {
                let ip = ip_of(p, *side);
                let kind = if *limit_in || *limit_out {
                    let dev = if *limit_in { env.iif } else { env.oif };
                    match dev.and_then(|d| env.facts.interface_addresses(d)) {
                        Some(addrs) => AddrKind::on_device(ip, &addrs),
                        None => {
                            return CondResult::Unknown(Cow::Borrowed(
                                "addrtype: the limiting interface's addresses are not known",
                            ));
                        }
                    }
                } else {
                    AddrKind::of(ip, env.facts)
                };
                yes_no(kinds.contains(&kind))
            }
            CondKind::ConnMark { value, mask } => match flow.ctmark {
                Some(m) => yes_no(m & mask == *value),
                None => {
                    return CondResult::Unknown(Cow::Borrowed(
                        "connmark: the connection mark is not known at this hook",
                    ));
                }
            },
            CondKind::CtOrigAddr { side, m } => match &flow.orig {
                Some(o) => yes_no(m.contains(ip_of(o, *side))),
                None => {
                    return CondResult::Unknown(Cow::Borrowed(
                        "conntrack: the original tuple is not known at this hook",
                    ));
                }
            },
            CondKind::CtOrigPort { side, lo, hi } => match &flow.orig {
                Some(o) if o.protocol == Protocol::Icmp => CondResult::No,
                Some(o) => {
                    let port = if *side == Side::Dst { o.dport } else { o.sport };
                    yes_no(*lo <= port && port <= *hi)
                }
                None => {
                    return CondResult::Unknown(Cow::Borrowed(
                        "conntrack: the original tuple is not known at this hook",
                    ));
                }
            },
            CondKind::Owner => {
                if env.hook == Hook::Output || (env.iif.is_none() && env.hook == Hook::Postrouting)
                {
                    return CondResult::Unknown(Cow::Borrowed(
                        "owner: the sending socket's owner is not known",
                    ));
                }
                // Forwarded and received packets have no local socket.
                CondResult::No
            }
            CondKind::Socket { exact, transparent } => {
                if p.protocol == Protocol::Icmp {
                    CondResult::No
                } else if p.reply {
                    return CondResult::Unknown(Cow::Borrowed(
                        "socket: established sockets are not known",
                    ));
                } else {
                    match env
                        .facts
                        .socket_listening(p.protocol, p.dst, p.dport, *exact)
                    {
                        Some(false) => CondResult::No,
                        Some(true) if !transparent => CondResult::Yes,
                        Some(true) => {
                            return CondResult::Unknown(Cow::Borrowed(
                                "socket --transparent: whether the socket is transparent is not known",
                            ));
                        }
                        None => {
                            return CondResult::Unknown(Cow::Borrowed(
                                "socket: the netns's sockets are not known",
                            ));
                        }
                    }
                }
            }
            CondKind::Rpfilter(f) => return rpfilter(*f, p, env),
            CondKind::Mac => {
                if env.iif.is_none() {
                    CondResult::No
                } else {
                    return CondResult::Unknown(Cow::Borrowed(
                        "mac: the source MAC address is not modelled",
                    ));
                }
            }
            CondKind::Length => {
                return CondResult::Unknown(Cow::Borrowed(
                    "length: the packet length is not modelled",
                ));
            }
            CondKind::IpRange { side, lo, hi } => {
                let ip = u32::from(ip_of(p, *side));
                yes_no(*lo <= ip && ip <= *hi)
            }
            CondKind::PhysdevIn | CondKind::PhysdevBridged => {
                if env.iif.is_none() {
                    CondResult::No
                } else {
                    CondResult::Unknown(Cow::Borrowed("physdev (bridge port) is not modelled"))
                }
            }
            CondKind::PhysdevOut => {
                if env.oif.is_none() {
                    CondResult::No
                } else {
                    CondResult::Unknown(Cow::Borrowed("physdev (bridge port) is not modelled"))
                }
            }
            CondKind::Const(b) => yes_no(*b),
            CondKind::Statistic => return CondResult::Chance,
            CondKind::Assumed(module) => return CondResult::Assumed(module),
            CondKind::Unknown(reason) => return CondResult::Unknown(Cow::Borrowed(reason)),
        };
        if self.negate {
            match res {
                CondResult::Yes => CondResult::No,
                CondResult::No => CondResult::Yes,
                other => other,
            }
        } else {
            res
        }
    }
}

/// `-m rpfilter`: the reverse route to the source must be unicast (local
/// with `--accept-local`) and, unless `--loose`, leave through the input
/// interface; `--invert` flips the result.
fn rpfilter(f: Rpf, p: &Packet, env: &Env<'_>) -> CondResult<'static> {
    let Some(iif) = env.iif else {
        return CondResult::Unknown(Cow::Borrowed("rpfilter: no input interface"));
    };
    let ok = if iif == "lo" {
        true
    } else {
        let mark = if f.validmark { p.mark } else { 0 };
        let Some(back) = env.facts.reverse_route(p.src, p.dst, mark) else {
            return CondResult::Unknown(Cow::Borrowed("rpfilter: the routes are not known"));
        };
        if back.local {
            f.accept_local
        } else if !back.unicast {
            false
        } else {
            f.loose || back.devs.iter().any(|d| d == iif)
        }
    };
    yes_no(ok != f.invert)
}

/// How a whole rule's conditions came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RuleMatch<'c> {
    No,
    /// Matches; the strings name modules assumed to match.
    Yes(Vec<&'c str>),
    /// Some condition is unknown (reasons) or a chance (statistic), none is false.
    Branch {
        unknown: Vec<Cow<'c, str>>,
        chance: bool,
        assumed: Vec<&'c str>,
    },
}

/// Evaluates all conditions; a false one wins over unknown ones.
pub(crate) fn eval_rule<'c>(conds: &'c [Cond], flow: &Flow, env: &Env<'_>) -> RuleMatch<'c> {
    let mut unknown = Vec::new();
    let mut chance = false;
    let mut assumed = Vec::new();
    for c in conds {
        match c.eval(flow, env) {
            CondResult::Yes => {}
            CondResult::No => return RuleMatch::No,
            CondResult::Unknown(r) => unknown.push(r),
            CondResult::Chance => chance = true,
            CondResult::Assumed(m) => assumed.push(m),
        }
    }
    if unknown.is_empty() && !chance {
        RuleMatch::Yes(assumed)
    } else {
        RuleMatch::Branch {
            unknown,
            chance,
            assumed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netfilter::test_util::{node_facts, packet, parse, tcp, udp};

    /// A simplified `RuleMatch`.
    #[derive(Debug, PartialEq, Eq)]
    enum R {
        Y,
        N,
        Unknown,
        Chance,
        Assumed,
    }
    use R::*;

    fn eval_with(
        words: &str,
        p: &Packet,
        sets: &IpsetStore,
        iif: Option<&str>,
        oif: Option<&str>,
    ) -> R {
        let dump =
            format!("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD {words} -j ACCEPT\nCOMMIT\n");
        let rs = parse(&dump);
        let chain = rs.chain("filter", "FORWARD").expect("chain");
        let rule = &chain.rules()[0];
        let facts = node_facts();
        let env = Env {
            hook: Hook::Forward,
            sets,
            facts: &facts,
            iif,
            oif,
        };
        let flow = Flow::start(*p, &ConnState::at(Hook::Prerouting, p));
        match eval_rule(&rule.conds, &flow, &env) {
            RuleMatch::No => N,
            RuleMatch::Yes(a) if a.is_empty() => Y,
            RuleMatch::Yes(_) => Assumed,
            RuleMatch::Branch { unknown, .. } if !unknown.is_empty() => Unknown,
            RuleMatch::Branch { .. } => Chance,
        }
    }

    fn ev(words: &str, p: &Packet) -> R {
        eval_with(words, p, &IpsetStore::default(), Some("eth0"), Some("cni0"))
    }

    fn pod() -> Packet {
        tcp("10.244.1.5", "10.96.0.10", 80)
    }

    #[test]
    fn addresses() {
        let p = pod();
        assert_eq!(ev("-s 10.244.1.5", &p), Y);
        assert_eq!(ev("-s 10.244.1.5/32", &p), Y);
        assert_eq!(ev("-s 10.244.0.0/16", &p), Y);
        assert_eq!(ev("! -s 10.244.0.0/16", &p), N);
        assert_eq!(ev("! -s 10.0.0.0/16", &p), Y);
        assert_eq!(ev("-s 10.0.0.1,10.244.1.5", &p), Y);
        assert_eq!(ev("-s 10.244.0.0/255.255.0.0", &p), Y);
        assert_eq!(ev("-d 10.96.0.10/32", &p), Y);
        assert_eq!(ev("-d 10.96.0.11/32", &p), N);
        assert_eq!(ev("--destination 10.96.0.0/12", &p), Y);
        assert_eq!(ev("-s host.example.com", &p), Unknown);
    }

    #[test]
    fn interfaces() {
        let p = pod();
        assert_eq!(ev("-i eth0", &p), Y);
        assert_eq!(ev("-i eth+", &p), Y);
        assert_eq!(ev("-i +", &p), Y);
        assert_eq!(ev("-i cali+", &p), N);
        assert_eq!(ev("! -i cali+", &p), Y);
        assert_eq!(ev("-o cni0", &p), Y);
        assert_eq!(ev("-o veth+", &p), N);
        assert_eq!(ev("! -o cni0", &p), N);
        let s = IpsetStore::default();
        assert_eq!(eval_with("-i eth0", &p, &s, None, None), N);
        assert_eq!(eval_with("! -i eth0", &p, &s, None, None), Y);
        assert_eq!(eval_with("! -o lo", &p, &s, None, Some("lo")), N);
    }

    #[test]
    fn protocols() {
        let p = pod();
        assert_eq!(ev("-p tcp", &p), Y);
        assert_eq!(ev("-p TCP", &p), Y);
        assert_eq!(ev("-p 6", &p), Y);
        assert_eq!(ev("-p all", &p), Y);
        assert_eq!(ev("-p udp", &p), N);
        assert_eq!(ev("! -p udp", &p), Y);
        assert_eq!(ev("-p sctp", &p), N);
        assert_eq!(ev("! -p tcp", &p), N);
        assert_eq!(
            ev(
                "-p icmp",
                &packet(Protocol::Icmp, "1.1.1.1", 0, "2.2.2.2", 0)
            ),
            Y
        );
        assert_eq!(ev("-f", &p), N);
        assert_eq!(ev("! -f", &p), Y);
    }

    /// kube-proxy writes `-p sctp -m sctp --dport N` for an SCTP Service port (iptables-extensions(8)).
    #[test]
    fn sctp_protocol_and_ports() {
        let sctp = packet(Protocol::Sctp, "10.244.1.5", 40000, "10.96.0.20", 9003);
        assert_eq!(ev("-p sctp", &sctp), Y);
        assert_eq!(ev("-p 132", &sctp), Y);
        assert_eq!(ev("-p tcp", &sctp), N);
        assert_eq!(ev("-p sctp -m sctp --dport 9003", &sctp), Y);
        assert_eq!(ev("-p sctp -m sctp --dport 9005", &sctp), N);
        assert_eq!(ev("-p sctp -m sctp --sport 40000", &sctp), Y);
        assert_eq!(ev("-p sctp --dport 9000:9010", &sctp), Y);
        // A TCP port match never matches SCTP, and the reverse.
        assert_eq!(ev("-p tcp -m tcp --dport 9003", &sctp), N);
        assert_eq!(ev("-p sctp -m sctp --dport 80", &pod()), N);
        assert_eq!(ev("-m multiport --dports 9003", &sctp), Y);
    }

    #[test]
    fn tcp_udp_ports() {
        let p = pod();
        assert_eq!(ev("-p tcp -m tcp --dport 80", &p), Y);
        assert_eq!(ev("-p tcp -m tcp --dport 79", &p), N);
        assert_eq!(ev("-p tcp -m tcp --dport 70:90", &p), Y);
        assert_eq!(ev("-p tcp -m tcp ! --dport 80", &p), N);
        assert_eq!(ev("-p tcp -m tcp ! --dport 81", &p), Y);
        assert_eq!(ev("-p tcp -m tcp --sport 40000 --dport 80", &p), Y);
        assert_eq!(ev("-p tcp -m tcp --destination-port 80", &p), Y);
        assert_eq!(ev("-p tcp --dport 80", &p), Y, "implicit tcp module");
        assert_eq!(
            ev("-p tcp -m tcp --dport ! 80", &p),
            N,
            "old-style negation"
        );
        assert_eq!(ev("-p tcp -m tcp --dport http", &p), Unknown);
        let u = udp("10.244.1.5", "10.96.0.10", 53);
        assert_eq!(ev("-p udp -m udp --dport 53", &u), Y);
        assert_eq!(ev("-p udp -m udp --dport 53", &p), N);
        assert_eq!(
            ev("-m udp ! --dport 53", &p),
            N,
            "a port match never matches another protocol"
        );
        assert_eq!(ev("-m tcp --dport 53", &u), N);
    }

    #[test]
    fn multiport() {
        let p = pod();
        assert_eq!(ev("-p tcp -m multiport --dports 22,80,443", &p), Y);
        assert_eq!(ev("-p tcp -m multiport --dports 1000:2000,80", &p), Y);
        assert_eq!(ev("-p tcp -m multiport --dports 22,443", &p), N);
        assert_eq!(ev("-p tcp -m multiport ! --dports 22,443", &p), Y);
        assert_eq!(ev("-p tcp -m multiport --ports 40000", &p), Y);
        assert_eq!(ev("-p tcp -m multiport --sports 1:100", &p), N);
        assert_eq!(ev("-p tcp -m multiport --source-ports 39000:41000", &p), Y);
        let icmp = packet(Protocol::Icmp, "10.244.1.5", 0, "10.96.0.10", 0);
        assert_eq!(ev("-m multiport ! --dports 22", &icmp), N);
    }

    #[test]
    fn ipset_match() {
        let sets =
            IpsetStore::parse("create S hash:ip family inet\nadd S 10.244.1.5\n").expect("ipset");
        let p = pod();
        let e = |w: &str| eval_with(w, &p, &sets, Some("eth0"), Some("cni0"));
        assert_eq!(e("-m set --match-set S src"), Y);
        assert_eq!(e("-m set --match-set S dst"), N);
        assert_eq!(e("-m set ! --match-set S src"), N);
        assert_eq!(e("-m set ! --match-set S dst"), Y);
        assert_eq!(e("-m set --match-set S src ! --update-counters"), Y);
        assert_eq!(e("-m set --match-set MISSING src"), Unknown);
        assert_eq!(e("-m set ! --match-set MISSING src"), Unknown);
        assert_eq!(e("-m set --match-set S sideways"), Unknown);
    }

    #[test]
    fn marks() {
        let mut p = pod();
        p.mark = 0x4000;
        assert_eq!(ev("-m mark --mark 0x4000/0x4000", &p), Y);
        assert_eq!(ev("-m mark ! --mark 0x4000/0x4000", &p), N);
        assert_eq!(ev("-m mark --mark 0x1", &p), N);
        assert_eq!(ev("-m mark --mark 0x4000", &p), Y);
        assert_eq!(ev("-m mark ! --mark 0x0/0x4000", &p), Y);
    }

    #[test]
    fn conntrack_states() {
        let p = pod();
        assert_eq!(ev("-m conntrack --ctstate NEW", &p), Y);
        assert_eq!(ev("-m conntrack --ctstate RELATED,ESTABLISHED", &p), N);
        assert_eq!(ev("-m conntrack ! --ctstate INVALID", &p), Y);
        assert_eq!(ev("-m conntrack --ctstate INVALID", &p), N);
        assert_eq!(ev("-m conntrack --ctstate DNAT", &p), N);
        assert_eq!(ev("-m state --state NEW", &p), Y);
        assert_eq!(ev("-m conntrack --ctdir ORIGINAL", &p), Y);
        assert_eq!(ev("-m conntrack --ctproto tcp", &p), Y);
        assert_eq!(ev("-m conntrack --ctstatus ASSURED", &p), Unknown);
        assert_eq!(ev("-m conntrack --ctstate BOGUS", &p), Unknown);
        let mut r = p;
        r.reply = true;
        assert_eq!(ev("-m conntrack --ctstate RELATED,ESTABLISHED", &r), Y);
        assert_eq!(ev("-m state --state ESTABLISHED", &r), Y);
        assert_eq!(ev("-m conntrack --ctstate NEW", &r), N);
        assert_eq!(ev("-m conntrack --ctdir REPLY", &r), Y);
    }

    #[test]
    fn addrtype() {
        let to_node = tcp("10.244.1.5", "192.168.1.10", 30080);
        assert_eq!(ev("-m addrtype --dst-type LOCAL", &to_node), Y);
        assert_eq!(ev("-m addrtype ! --dst-type LOCAL", &to_node), N);
        assert_eq!(ev("-m addrtype --src-type LOCAL", &to_node), N);
        assert_eq!(ev("-m addrtype --dst-type UNICAST", &to_node), N);
        assert_eq!(ev("-m addrtype --dst-type LOCAL,BROADCAST", &to_node), Y);
        assert_eq!(
            ev("-m addrtype --dst-type LOCAL --limit-iface-in", &to_node),
            Y
        );
        assert_eq!(
            ev("-m addrtype --dst-type LOCAL --limit-iface-out", &to_node),
            N,
            "192.168.1.10 is not an address of cni0"
        );
        let out = tcp("10.244.1.5", "8.8.8.8", 53);
        assert_eq!(ev("-m addrtype --dst-type UNICAST", &out), Y);
        assert_eq!(ev("-m addrtype --dst-type LOCAL", &out), N);
        assert_eq!(
            ev(
                "-m addrtype --dst-type MULTICAST",
                &tcp("1.1.1.1", "224.0.0.5", 1)
            ),
            Y
        );
        assert_eq!(
            ev(
                "-m addrtype --dst-type BROADCAST",
                &tcp("1.1.1.1", "255.255.255.255", 1)
            ),
            Y
        );
        assert_eq!(
            ev(
                "-m addrtype --src-type LOCAL",
                &tcp("127.0.0.1", "1.1.1.1", 1)
            ),
            Y
        );
        assert_eq!(ev("-m addrtype --dst-type NOPE", &out), Unknown);
    }

    #[test]
    fn statistic() {
        let p = pod();
        assert_eq!(
            ev("-m statistic --mode random --probability 0.33333333349", &p),
            Chance
        );
        assert_eq!(
            ev("-m statistic --mode random ! --probability 0.5", &p),
            Chance
        );
        assert_eq!(ev("-m statistic --mode random --probability 1.0", &p), Y);
        assert_eq!(ev("-m statistic --mode random --probability 0", &p), N);
        assert_eq!(
            ev("-m statistic --mode nth --every 2 --packet 0", &p),
            Chance
        );
        assert_eq!(ev("-m statistic --mode nth --every 1 --packet 0", &p), Y);
        assert_eq!(ev("-m statistic --mode weird", &p), Unknown);
        assert_eq!(
            ev(
                "-s 1.1.1.1 -m statistic --mode random --probability 0.5",
                &p
            ),
            N
        );
    }

    #[test]
    fn comment_always_matches() {
        let p = pod();
        assert_eq!(
            ev(
                r#"-m comment --comment "kube-system/kube-dns:dns cluster IP""#,
                &p
            ),
            Y
        );
        let rs = parse(
            "*filter\n:INPUT ACCEPT\n-A INPUT -m comment --comment \"a b\" -m comment --comment c -j ACCEPT\nCOMMIT\n",
        );
        let rule = &rs.chain("filter", "INPUT").expect("chain").rules()[0];
        assert_eq!(rule.comment().as_deref(), Some("a b; c"));
    }

    #[test]
    fn physdev() {
        let p = pod();
        let s = IpsetStore::default();
        assert_eq!(
            eval_with("-m physdev --physdev-in veth1", &p, &s, None, Some("eth0")),
            N
        );
        assert_eq!(
            eval_with(
                "-m physdev ! --physdev-is-bridged",
                &p,
                &s,
                None,
                Some("eth0")
            ),
            Y
        );
        assert_eq!(
            eval_with("-m physdev --physdev-out veth1", &p, &s, Some("cni0"), None),
            N
        );
        assert_eq!(ev("-m physdev --physdev-in veth1", &p), Unknown);
        assert_eq!(ev("-m physdev --physdev-is-bridged", &p), Unknown);
    }

    #[test]
    fn tcp_flags() {
        let p = pod();
        assert_eq!(ev("-p tcp -m tcp --syn", &p), Y);
        assert_eq!(ev("-p tcp -m tcp ! --syn", &p), N);
        assert_eq!(ev("-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN", &p), Y);
        assert_eq!(ev("-p tcp -m tcp --tcp-flags SYN,ACK SYN,ACK", &p), N);
        let mut r = p;
        r.reply = true;
        assert_eq!(ev("-p tcp -m tcp --syn", &r), N);
        assert_eq!(ev("-p tcp -m tcp --tcp-flags SYN,ACK SYN,ACK", &r), Y);
        assert_eq!(ev("-p tcp -m tcp --tcp-flags ALL NONE", &r), N);
        assert_eq!(ev("-m tcp --syn", &udp("1.1.1.1", "2.2.2.2", 1)), N);
        assert_eq!(ev("-p tcp -m tcp --tcp-flags BOGUS SYN", &p), Unknown);
        assert_eq!(ev("-p tcp -m tcp --tcp-option 2", &p), Unknown);
    }

    #[test]
    fn icmp_type() {
        let icmp = packet(Protocol::Icmp, "10.244.1.5", 0, "10.244.2.5", 0);
        assert_eq!(ev("-p icmp -m icmp --icmp-type 8", &icmp), Unknown);
        assert_eq!(ev("-p icmp --icmp-type echo-request", &icmp), Unknown);
        assert_eq!(ev("-m icmp --icmp-type 8", &pod()), N);
        assert_eq!(ev("-m icmp ! --icmp-type 8", &pod()), N);
        // A known message matches by type, type/code and name (iptables-save
        // prints `3/4`; `-p icmp -h` lists the names).
        let frag = Packet {
            icmp: Some(crate::packet::Icmp::FRAG_NEEDED),
            ..icmp
        };
        assert_eq!(ev("-p icmp -m icmp --icmp-type 3/4", &frag), Y);
        assert_eq!(ev("-p icmp -m icmp --icmp-type 3", &frag), Y);
        assert_eq!(ev("-p icmp --icmp-type fragmentation-needed", &frag), Y);
        assert_eq!(ev("-p icmp --icmp-type destination-unreachable", &frag), Y);
        assert_eq!(ev("-p icmp --icmp-type port-unreachable", &frag), N);
        assert_eq!(ev("-p icmp --icmp-type echo-request", &frag), N);
        assert_eq!(ev("-p icmp -m icmp ! --icmp-type 3/4", &frag), N);
        assert_eq!(ev("-p icmp --icmp-type any", &icmp), Y);
        // An error quotes the flow: conntrack calls it RELATED, not NEW.
        assert_eq!(ev("-m conntrack --ctstate RELATED,ESTABLISHED", &frag), Y);
        assert_eq!(ev("-m conntrack --ctstate NEW", &frag), N);
    }

    #[test]
    fn assumed_modules() {
        let p = pod();
        assert_eq!(ev("-m limit --limit 5/min --limit-burst 10", &p), Assumed);
        assert_eq!(
            ev("-m hashlimit --hashlimit-upto 1/sec --hashlimit-name x", &p),
            Assumed
        );
        assert_eq!(
            ev("-m recent ! --rcheck --seconds 60 --name ssh", &p),
            Assumed
        );
        assert_eq!(ev("-s 1.1.1.1 -m limit --limit 1/s", &p), N);
    }

    #[test]
    fn iprange() {
        let p = pod();
        assert_eq!(ev("-m iprange --src-range 10.244.1.1-10.244.1.9", &p), Y);
        assert_eq!(ev("-m iprange ! --src-range 10.244.1.1-10.244.1.9", &p), N);
        assert_eq!(ev("-m iprange --dst-range 10.0.0.1-10.0.0.2", &p), N);
        assert_eq!(ev("-m iprange ! --dst-range 10.0.0.1-10.0.0.2", &p), Y);
        assert_eq!(ev("-m iprange --dst-range 10.0.0.9-10.0.0.2", &p), Unknown);
    }

    #[test]
    fn unknown_modules_and_options() {
        let p = pod();
        assert_eq!(ev("-m foo --bar 1", &p), Unknown);
        assert_eq!(ev("-m tcp -p tcp --weird", &p), Unknown);
        assert_eq!(ev("-m quota2 --name q", &p), Unknown);
        assert_eq!(ev("-m owner --uid-owner 0", &p), N, "no socket in FORWARD");
        assert_eq!(ev("--bogus", &p), Unknown);
        assert_eq!(ev("stray", &p), Unknown);
        // A false condition wins over an unknown one.
        assert_eq!(ev("-m foo --bar -s 1.1.1.1", &p), N);
        assert_eq!(ev("-m foo --bar ! -s 1.1.1.1", &p), Unknown);
    }
}
