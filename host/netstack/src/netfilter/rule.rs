//! One rule's words (everything after `-A CHAIN`) into conditions and a
//! target spec. Never fails: what is not understood becomes an unknown
//! condition (or, for targets, an unknown target when compiled).

use std::borrow::Cow;

use super::ipset::SetDir;
use super::lex::Token;
use super::matches::{
    AddrKind, CT_DNAT, CT_ESTABLISHED, CT_INVALID, CT_NEW, CT_RELATED, CT_SNAT, CT_UNTRACKED, Cond,
    CondKind, IfPat, OneOrMany, PortProto, Rpf, SetMatch, Side, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST,
    TCP_SYN, TCP_URG,
};
use super::values::{parse_addr_mask, parse_ip_range, parse_mark, parse_port_range, parse_u32};

/// One option word given to a target, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetOpt<'a> {
    pub name: Cow<'a, str>,
    pub args: Vec<Cow<'a, str>>,
}

/// `-j NAME opts...` or `-g NAME`, resolved against the table's chains later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetSpec<'a> {
    pub name: Cow<'a, str>,
    pub goto: bool,
    pub opts: Vec<TargetOpt<'a>>,
}

/// A rule's parsed words.
#[derive(Debug, Clone)]
pub(crate) struct RuleSpec<'a> {
    pub conds: Vec<Cond>,
    pub target: Option<TargetSpec<'a>>,
    pub comment: Option<String>,
}

/// Match modules understood here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Module {
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Multiport,
    Set,
    Mark,
    Conntrack,
    State,
    Addrtype,
    Statistic,
    Comment,
    Physdev,
    IpRange,
    Connmark,
    Owner,
    Socket,
    Rpfilter,
    Mac,
    Length,
    /// limit / hashlimit / recent: one assumed condition, options ignored.
    Assumed,
    /// An unknown module: one unknown condition, options swallowed.
    Unknown,
}

impl Module {
    fn from_name(name: &str) -> Option<Module> {
        Some(match name {
            "tcp" => Module::Tcp,
            "udp" => Module::Udp,
            "sctp" => Module::Sctp,
            "icmp" => Module::Icmp,
            "multiport" => Module::Multiport,
            "set" => Module::Set,
            "mark" => Module::Mark,
            "conntrack" => Module::Conntrack,
            "state" => Module::State,
            "addrtype" => Module::Addrtype,
            "statistic" => Module::Statistic,
            "comment" => Module::Comment,
            "physdev" => Module::Physdev,
            "iprange" => Module::IpRange,
            "connmark" => Module::Connmark,
            "owner" => Module::Owner,
            "socket" => Module::Socket,
            "rpfilter" => Module::Rpfilter,
            "mac" => Module::Mac,
            "length" => Module::Length,
            _ => return None,
        })
    }
}

fn assumed_name(name: &str) -> Option<&'static str> {
    match name {
        "limit" => Some("limit"),
        "hashlimit" => Some("hashlimit"),
        "recent" => Some("recent"),
        _ => None,
    }
}

/// `-m statistic` options, combined when the module ends.
#[derive(Debug, Default)]
struct Statistic {
    mode: Option<String>,
    probability: Option<f64>,
    every: Option<u32>,
    negate: bool,
    bad: Option<String>,
}

impl Statistic {
    fn finish(self) -> Cond {
        let negate = self.negate;
        let kind = if let Some(bad) = self.bad {
            CondKind::Unknown(bad.into())
        } else {
            match self.mode.as_deref() {
                Some("random") => match self.probability {
                    Some(p) if p >= 1.0 => CondKind::Const(true),
                    Some(p) if p <= 0.0 => CondKind::Const(false),
                    Some(_) => CondKind::Statistic,
                    None => CondKind::Unknown("statistic: --probability missing".into()),
                },
                Some("nth") => match self.every {
                    Some(n) if n <= 1 => CondKind::Const(true),
                    Some(_) => CondKind::Statistic,
                    None => CondKind::Unknown("statistic: --every missing".into()),
                },
                Some(m) => CondKind::Unknown(format!("statistic: unknown mode \"{m}\"").into()),
                None => CondKind::Unknown("statistic: --mode missing".into()),
            }
        };
        Cond { negate, kind }
    }
}

/// Most arguments one option takes (`--tcp-flags` takes two).
const MAX_ARGS: usize = 8;

enum Ctx {
    None,
    Module(Module, &'static str),
    Target,
}

/// The parser's state while walking one rule's words.
struct Parser<'t, 'a> {
    toks: &'t [Token<'a>],
    pos: usize,
    conds: Vec<Cond>,
    target: Option<TargetSpec<'a>>,
    comment: Option<String>,
    statistic: Option<Statistic>,
    /// The module `-p tcp|udp|icmp` loads implicitly.
    implicit: Option<Module>,
    /// Conditions from here on belong to the current `-m` module.
    module_start: usize,
    /// Flag options of the current module, applied when it ends.
    flags: ModFlags,
}

/// Options that modify a module's conditions rather than add one.
#[derive(Debug, Default, Clone, Copy)]
struct ModFlags {
    limit_in: bool,
    limit_out: bool,
    transparent: bool,
    nowildcard: bool,
    rpf: Rpf,
    return_nomatch: bool,
}

/// Parses the words after `-A CHAIN` (counters already removed).
pub(crate) fn parse_rule<'a>(toks: &[Token<'a>]) -> RuleSpec<'a> {
    let mut p = Parser {
        toks,
        pos: 0,
        conds: Vec::new(),
        target: None,
        comment: None,
        statistic: None,
        implicit: None,
        module_start: 0,
        flags: ModFlags::default(),
    };
    p.run();
    RuleSpec {
        conds: p.conds,
        target: p.target,
        comment: p.comment,
    }
}

fn unknown(reason: String) -> Cond {
    Cond {
        negate: false,
        kind: CondKind::Unknown(reason.into()),
    }
}

fn bad_value(opt: &str, args: &[&str]) -> String {
    format!("bad value for {opt}: \"{}\"", args.join(" "))
}

impl<'a> Parser<'_, 'a> {
    fn run(&mut self) {
        let mut ctx = Ctx::None;
        let mut negate = false;
        while let Some(tok) = self.toks.get(self.pos) {
            self.pos += 1;
            if tok.is_bang() {
                negate = !negate;
                continue;
            }
            if !tok.is_option() {
                self.conds
                    .push(unknown(format!("unexpected word \"{}\"", tok.text)));
                negate = false;
                continue;
            }
            let opt: &str = tok.text.as_ref();
            let toks = self.toks;
            let (from, to) = self.take_args(&mut negate);
            let mut buf = [""; MAX_ARGS];
            let n = to - from;
            if n > MAX_ARGS {
                self.conds
                    .push(unknown(format!("too many arguments for {opt}")));
                negate = false;
                continue;
            }
            for (slot, t) in buf.iter_mut().zip(&toks[from..to]) {
                *slot = t.text.as_ref();
            }
            let args = &buf[..n];
            let neg = std::mem::take(&mut negate);
            match opt {
                "-m" | "--match" => {
                    self.end_module(&ctx);
                    ctx = self.start_module(args.first().copied().unwrap_or(""));
                }
                "-j" | "--jump" | "-g" | "--goto" => {
                    self.end_module(&ctx);
                    ctx = Ctx::Target;
                    match toks[from..to].first() {
                        Some(name) => {
                            self.target = Some(TargetSpec {
                                name: name.text.clone(),
                                goto: matches!(opt, "-g" | "--goto"),
                                opts: Vec::new(),
                            })
                        }
                        None => self.conds.push(unknown(format!("{opt} without a target"))),
                    }
                }
                "-c" | "--set-counters" | "-4" | "--ipv4" => {}
                // An ip6tables-only rule never applies to IPv4.
                "-6" | "--ipv6" => self.conds.push(Cond {
                    negate: false,
                    kind: CondKind::Const(false),
                }),
                _ => {
                    if let Some(c) = self.basic_option(opt, args, neg) {
                        self.conds.push(c);
                        continue;
                    }
                    match &ctx {
                        Ctx::Target => {
                            if let Some(t) = self.target.as_mut() {
                                t.opts.push(TargetOpt {
                                    name: tok.text.clone(),
                                    args: toks[from..to].iter().map(|t| t.text.clone()).collect(),
                                });
                            }
                        }
                        Ctx::Module(Module::Unknown | Module::Assumed, _) => {}
                        Ctx::Module(m, name) => {
                            let (m, name) = (*m, *name);
                            if !self.module_option(m, opt, args, neg) {
                                let implicit = self.implicit;
                                if !implicit
                                    .is_some_and(|im| self.module_option(im, opt, args, neg))
                                {
                                    self.conds.push(unknown(format!(
                                        "unknown option \"{opt}\" for match \"{name}\""
                                    )));
                                }
                            }
                        }
                        Ctx::None => {
                            let implicit = self.implicit;
                            if !implicit.is_some_and(|im| self.module_option(im, opt, args, neg)) {
                                self.conds
                                    .push(unknown(format!("unknown option \"{opt}\"")));
                            }
                        }
                    }
                }
            }
        }
        self.end_module(&ctx);
    }

    /// The token range of the words after an option, up to the next option
    /// or `!`; an old-style `--opt ! value` negation is folded into `negate`.
    fn take_args(&mut self, negate: &mut bool) -> (usize, usize) {
        if self.toks.get(self.pos).is_some_and(|t| t.is_bang())
            && self
                .toks
                .get(self.pos + 1)
                .is_some_and(|n| !n.is_option() && !n.is_bang())
        {
            *negate = !*negate;
            self.pos += 1;
        }
        let from = self.pos;
        while let Some(t) = self.toks.get(self.pos) {
            if t.is_bang() || t.is_option() {
                break;
            }
            self.pos += 1;
        }
        (from, self.pos)
    }

    fn start_module(&mut self, name: &str) -> Ctx {
        self.module_start = self.conds.len();
        self.flags = ModFlags::default();
        if let Some(m) = Module::from_name(name) {
            match m {
                Module::Statistic => self.statistic = Some(Statistic::default()),
                Module::Socket => self.conds.push(Cond {
                    negate: false,
                    kind: CondKind::Socket {
                        exact: false,
                        transparent: false,
                    },
                }),
                Module::Rpfilter => self.conds.push(Cond {
                    negate: false,
                    kind: CondKind::Rpfilter(Rpf::default()),
                }),
                _ => {}
            }
            // Module names are a small closed set: keep a static name for messages.
            let static_name = match m {
                Module::Tcp => "tcp",
                Module::Udp => "udp",
                Module::Sctp => "sctp",
                Module::Icmp => "icmp",
                Module::Multiport => "multiport",
                Module::Set => "set",
                Module::Mark => "mark",
                Module::Conntrack => "conntrack",
                Module::State => "state",
                Module::Addrtype => "addrtype",
                Module::Statistic => "statistic",
                Module::Comment => "comment",
                Module::Physdev => "physdev",
                Module::IpRange => "iprange",
                Module::Connmark => "connmark",
                Module::Owner => "owner",
                Module::Socket => "socket",
                Module::Rpfilter => "rpfilter",
                Module::Mac => "mac",
                Module::Length => "length",
                Module::Assumed | Module::Unknown => "",
            };
            return Ctx::Module(m, static_name);
        }
        if let Some(a) = assumed_name(name) {
            self.conds.push(Cond {
                negate: false,
                kind: CondKind::Assumed(a),
            });
            return Ctx::Module(Module::Assumed, a);
        }
        self.conds
            .push(unknown(format!("unknown match module \"{name}\"")));
        Ctx::Module(Module::Unknown, "")
    }

    fn end_module(&mut self, ctx: &Ctx) {
        if let Ctx::Module(Module::Statistic, _) = ctx
            && let Some(s) = self.statistic.take()
        {
            self.conds.push(s.finish());
        }
        let f = std::mem::take(&mut self.flags);
        for c in self.conds.iter_mut().skip(self.module_start) {
            match &mut c.kind {
                CondKind::AddrType {
                    limit_in,
                    limit_out,
                    ..
                } => {
                    *limit_in |= f.limit_in;
                    *limit_out |= f.limit_out;
                }
                CondKind::Socket { exact, transparent } => {
                    *exact |= f.nowildcard;
                    *transparent |= f.transparent;
                }
                CondKind::Rpfilter(r) => *r = f.rpf,
                CondKind::Set(m) => m.return_nomatch |= f.return_nomatch,
                _ => {}
            }
        }
        self.module_start = self.conds.len();
    }

    /// A flag option of module `m` (recorded, applied at the module's end).
    fn module_flag(&mut self, m: Module, opt: &str) -> bool {
        let f = &mut self.flags;
        match (m, opt) {
            (Module::Addrtype, "--limit-iface-in") => f.limit_in = true,
            (Module::Addrtype, "--limit-iface-out") => f.limit_out = true,
            (Module::Socket, "--transparent") => f.transparent = true,
            (Module::Socket, "--nowildcard") => f.nowildcard = true,
            (Module::Rpfilter, "--loose") => f.rpf.loose = true,
            (Module::Rpfilter, "--validmark") => f.rpf.validmark = true,
            (Module::Rpfilter, "--accept-local") => f.rpf.accept_local = true,
            (Module::Rpfilter, "--invert") => f.rpf.invert = true,
            (Module::Set, "--return-nomatch") => f.return_nomatch = true,
            _ => return false,
        }
        true
    }

    /// Options every rule has: addresses, interfaces, protocol, fragment.
    fn basic_option(&mut self, opt: &str, args: &[&str], negate: bool) -> Option<Cond> {
        let kind = match opt {
            "-s" | "--source" | "--src" | "-d" | "--destination" | "--dst" => {
                let dst = matches!(opt, "-d" | "--destination" | "--dst");
                let list = match args {
                    [a] => OneOrMany::parse_list(a, parse_addr_mask),
                    _ => None,
                };
                match list {
                    Some(l) if dst => CondKind::Dst(l),
                    Some(l) => CondKind::Src(l),
                    None => CondKind::Unknown(
                        format!("cannot use address \"{}\"", args.join(" ")).into(),
                    ),
                }
            }
            "-i" | "--in-interface" | "-o" | "--out-interface" => match args {
                [name] => {
                    let pat = IfPat::parse(name);
                    if opt.starts_with("-i") || opt == "--in-interface" {
                        CondKind::InIface(pat)
                    } else {
                        CondKind::OutIface(pat)
                    }
                }
                _ => CondKind::Unknown(bad_value(opt, args).into()),
            },
            "-p" | "--protocol" => match args {
                [name] => {
                    let n = protocol_number(name);
                    self.implicit = match n {
                        6 => Some(Module::Tcp),
                        17 => Some(Module::Udp),
                        132 => Some(Module::Sctp),
                        1 => Some(Module::Icmp),
                        _ => None,
                    };
                    CondKind::Proto(n)
                }
                _ => CondKind::Unknown(bad_value(opt, args).into()),
            },
            "-f" | "--fragment" => CondKind::Fragment,
            _ => return None,
        };
        Some(Cond { negate, kind })
    }

    /// A module option; false when the module has no such option.
    fn module_option(&mut self, m: Module, opt: &str, args: &[&str], negate: bool) -> bool {
        if args.is_empty() && !negate && self.module_flag(m, opt) {
            return true;
        }
        let kind = match module_cond(m, opt, args, &mut self.comment, &mut self.statistic, negate) {
            Handled::No => return false,
            Handled::Nothing => return true,
            Handled::Cond(kind) => kind,
        };
        self.conds.push(Cond { negate, kind });
        true
    }
}

enum Handled {
    /// Not an option of this module.
    No,
    /// Consumed without a condition (comment, counters flags, statistic parts).
    Nothing,
    Cond(CondKind),
}

/// An `--icmp-type` value: a name as `iptables -p icmp -h` lists them, a
/// type, or `type/code`. Type 255 is `any`.
fn icmp_type(v: &str) -> Option<(u8, Option<u8>)> {
    const NAMES: &[(&str, u8, Option<u8>)] = &[
        ("any", 255, None),
        ("echo-reply", 0, None),
        ("pong", 0, None),
        ("destination-unreachable", 3, None),
        ("network-unreachable", 3, Some(0)),
        ("host-unreachable", 3, Some(1)),
        ("protocol-unreachable", 3, Some(2)),
        ("port-unreachable", 3, Some(3)),
        ("fragmentation-needed", 3, Some(4)),
        ("source-route-failed", 3, Some(5)),
        ("network-unknown", 3, Some(6)),
        ("host-unknown", 3, Some(7)),
        ("network-prohibited", 3, Some(9)),
        ("host-prohibited", 3, Some(10)),
        ("TOS-network-unreachable", 3, Some(11)),
        ("TOS-host-unreachable", 3, Some(12)),
        ("communication-prohibited", 3, Some(13)),
        ("host-precedence-violation", 3, Some(14)),
        ("precedence-cutoff", 3, Some(15)),
        ("source-quench", 4, None),
        ("redirect", 5, None),
        ("network-redirect", 5, Some(0)),
        ("host-redirect", 5, Some(1)),
        ("TOS-network-redirect", 5, Some(2)),
        ("TOS-host-redirect", 5, Some(3)),
        ("echo-request", 8, None),
        ("ping", 8, None),
        ("router-advertisement", 9, None),
        ("router-solicitation", 10, None),
        ("time-exceeded", 11, None),
        ("ttl-exceeded", 11, None),
        ("ttl-zero-during-transit", 11, Some(0)),
        ("ttl-zero-during-reassembly", 11, Some(1)),
        ("parameter-problem", 12, None),
        ("ip-header-bad", 12, Some(0)),
        ("required-option-missing", 12, Some(1)),
        ("timestamp-request", 13, None),
        ("timestamp-reply", 14, None),
        ("address-mask-request", 17, None),
        ("address-mask-reply", 18, None),
    ];
    if let Some((_, kind, code)) = NAMES.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(v)) {
        return Some((*kind, *code));
    }
    match v.split_once('/') {
        Some((t, c)) => Some((t.parse().ok()?, Some(c.parse().ok()?))),
        None => Some((v.parse().ok()?, None)),
    }
}

fn module_cond(
    m: Module,
    opt: &str,
    args: &[&str],
    comment: &mut Option<String>,
    statistic: &mut Option<Statistic>,
    negate: bool,
) -> Handled {
    let one = match args {
        [a] => Some(*a),
        _ => None,
    };
    let bad = || Handled::Cond(CondKind::Unknown(bad_value(opt, args).into()));
    let ports = |proto: PortProto, side: Side| match one.and_then(|a| parse_port_range(a, ':')) {
        Some(r) => Handled::Cond(CondKind::Ports {
            proto,
            side,
            ranges: OneOrMany::One(r),
        }),
        None => bad(),
    };
    match (m, opt) {
        (Module::Tcp, "--sport" | "--source-port") => ports(PortProto::Tcp, Side::Src),
        (Module::Tcp, "--dport" | "--destination-port") => ports(PortProto::Tcp, Side::Dst),
        (Module::Udp, "--sport" | "--source-port") => ports(PortProto::Udp, Side::Src),
        (Module::Udp, "--dport" | "--destination-port") => ports(PortProto::Udp, Side::Dst),
        (Module::Sctp, "--sport" | "--source-port") => ports(PortProto::Sctp, Side::Src),
        (Module::Sctp, "--dport" | "--destination-port") => ports(PortProto::Sctp, Side::Dst),
        (Module::Tcp, "--tcp-flags") => match args {
            [mask, comp] => match (tcp_flags(mask), tcp_flags(comp)) {
                (Some(mask), Some(comp)) => Handled::Cond(CondKind::TcpFlags { mask, comp }),
                _ => bad(),
            },
            _ => bad(),
        },
        (Module::Tcp, "--syn") => Handled::Cond(CondKind::TcpFlags {
            mask: TCP_SYN | TCP_RST | TCP_ACK | TCP_FIN,
            comp: TCP_SYN,
        }),
        (Module::Icmp, "--icmp-type") => match one.and_then(icmp_type) {
            Some((kind, code)) => Handled::Cond(CondKind::IcmpType { kind, code }),
            None => bad(),
        },
        (
            Module::Multiport,
            "--sports" | "--source-ports" | "--dports" | "--destination-ports" | "--ports",
        ) => {
            let side = match opt {
                "--sports" | "--source-ports" => Side::Src,
                "--ports" => Side::Either,
                _ => Side::Dst,
            };
            let ranges = one.and_then(|a| OneOrMany::parse_list(a, |p| parse_port_range(p, ':')));
            match ranges {
                Some(ranges) => Handled::Cond(CondKind::Ports {
                    proto: PortProto::Any,
                    side,
                    ranges,
                }),
                None => bad(),
            }
        }
        (Module::Set, "--match-set") => match args {
            [name, flags] => {
                let dirs: Option<Vec<SetDir>> = flags
                    .split(',')
                    .map(|f| match f {
                        "src" => Some(SetDir::Src),
                        "dst" => Some(SetDir::Dst),
                        _ => None,
                    })
                    .collect();
                match dirs {
                    Some(dirs) => Handled::Cond(CondKind::Set(Box::new(SetMatch {
                        name: (*name).to_string(),
                        dirs,
                        return_nomatch: false,
                    }))),
                    None => bad(),
                }
            }
            _ => bad(),
        },
        (Module::Set, "--update-counters" | "--update-subcounters") => Handled::Nothing,
        (Module::Mark, "--mark") => match one.and_then(parse_mark) {
            Some((value, mask)) => Handled::Cond(CondKind::Mark { value, mask }),
            None => bad(),
        },
        (Module::Conntrack, "--ctstate") | (Module::State, "--state") => {
            match one.and_then(ct_states) {
                Some(bits) => Handled::Cond(CondKind::CtState(bits)),
                None => bad(),
            }
        }
        (Module::Conntrack, "--ctdir") => match one.map(|a| a.to_ascii_uppercase()).as_deref() {
            Some("ORIGINAL") => Handled::Cond(CondKind::CtDir(false)),
            Some("REPLY") => Handled::Cond(CondKind::CtDir(true)),
            _ => bad(),
        },
        (Module::Conntrack, "--ctorigsrc" | "--ctorigdst") => {
            let side = if opt == "--ctorigsrc" {
                Side::Src
            } else {
                Side::Dst
            };
            match one.and_then(parse_addr_mask) {
                Some(m) => Handled::Cond(CondKind::CtOrigAddr { side, m }),
                None => bad(),
            }
        }
        (Module::Conntrack, "--ctorigsrcport" | "--ctorigdstport") => {
            let side = if opt == "--ctorigsrcport" {
                Side::Src
            } else {
                Side::Dst
            };
            match one.and_then(|a| parse_port_range(a, ':')) {
                Some((lo, hi)) => Handled::Cond(CondKind::CtOrigPort { side, lo, hi }),
                None => bad(),
            }
        }
        (Module::Connmark, "--mark") => match one.and_then(parse_mark) {
            Some((value, mask)) => Handled::Cond(CondKind::ConnMark { value, mask }),
            None => bad(),
        },
        (Module::Owner, "--uid-owner" | "--gid-owner" | "--socket-exists") => {
            Handled::Cond(CondKind::Owner)
        }
        (Module::Owner, "--suppl-groups") => Handled::Nothing,
        (Module::Mac, "--mac-source") => match one {
            Some(_) => Handled::Cond(CondKind::Mac),
            None => bad(),
        },
        (Module::Length, "--length") => match one.and_then(|a| parse_port_range(a, ':')) {
            Some(_) => Handled::Cond(CondKind::Length),
            None => bad(),
        },
        (Module::Conntrack, "--ctproto") => match one {
            Some(p) => Handled::Cond(CondKind::CtProto(protocol_number(p))),
            None => bad(),
        },
        (Module::Addrtype, "--src-type" | "--dst-type") => {
            let side = if opt == "--src-type" {
                Side::Src
            } else {
                Side::Dst
            };
            let kinds: Option<Vec<_>> =
                one.and_then(|a| a.split(',').map(AddrKind::parse).collect());
            match kinds {
                Some(kinds) => Handled::Cond(CondKind::AddrType {
                    side,
                    kinds,
                    limit_in: false,
                    limit_out: false,
                }),
                None => bad(),
            }
        }
        (Module::Statistic, "--mode" | "--probability" | "--every" | "--packet") => {
            let s = statistic.get_or_insert_with(Statistic::default);
            match (opt, one) {
                ("--mode", Some(m)) => s.mode = Some(m.to_string()),
                ("--probability", Some(p)) => match p.parse::<f64>() {
                    Ok(p) if p.is_finite() => {
                        s.probability = Some(p);
                        s.negate ^= negate;
                    }
                    _ => s.bad = Some(bad_value(opt, args)),
                },
                ("--every", Some(n)) => match parse_u32(n) {
                    Some(n) => {
                        s.every = Some(n);
                        s.negate ^= negate;
                    }
                    None => s.bad = Some(bad_value(opt, args)),
                },
                ("--packet", Some(_)) => {}
                _ => s.bad = Some(bad_value(opt, args)),
            }
            Handled::Nothing
        }
        (Module::Comment, "--comment") => {
            match comment {
                Some(c) => {
                    c.push_str("; ");
                    c.push_str(&args.join(" "));
                }
                None => *comment = Some(one.map_or_else(|| args.join(" "), str::to_string)),
            }
            Handled::Nothing
        }
        (Module::Physdev, "--physdev-in" | "--physdev-is-in") => Handled::Cond(CondKind::PhysdevIn),
        (Module::Physdev, "--physdev-out" | "--physdev-is-out") => {
            Handled::Cond(CondKind::PhysdevOut)
        }
        (Module::Physdev, "--physdev-is-bridged") => Handled::Cond(CondKind::PhysdevBridged),
        (Module::IpRange, "--src-range" | "--dst-range") => {
            let side = if opt == "--src-range" {
                Side::Src
            } else {
                Side::Dst
            };
            match one.and_then(parse_ip_range) {
                Some((lo, hi)) => Handled::Cond(CondKind::IpRange { side, lo, hi }),
                None => bad(),
            }
        }
        _ => Handled::No,
    }
}

/// `-p` names and numbers; names other than the common ones map to 255
/// (a protocol the simulated packet never has).
fn protocol_number(name: &str) -> u8 {
    if let Ok(n) = name.parse::<u8>() {
        return n;
    }
    const NAMES: [(&str, u8); 13] = [
        ("tcp", 6),
        ("udp", 17),
        ("icmp", 1),
        ("all", 0),
        ("ip", 0),
        ("sctp", 132),
        ("gre", 47),
        ("esp", 50),
        ("ah", 51),
        ("udplite", 136),
        ("ipv6-icmp", 58),
        ("icmpv6", 58),
        ("ipip", 4),
    ];
    NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or(255, |(_, v)| *v)
}

fn tcp_flags(list: &str) -> Option<u8> {
    let mut bits = 0;
    for f in list.split(',') {
        bits |= match f.to_ascii_uppercase().as_str() {
            "FIN" => TCP_FIN,
            "SYN" => TCP_SYN,
            "RST" => TCP_RST,
            "PSH" => TCP_PSH,
            "ACK" => TCP_ACK,
            "URG" => TCP_URG,
            "ALL" => TCP_FIN | TCP_SYN | TCP_RST | TCP_PSH | TCP_ACK | TCP_URG,
            "NONE" => 0,
            _ => return None,
        };
    }
    Some(bits)
}

fn ct_states(list: &str) -> Option<u8> {
    let mut bits = 0;
    for s in list.split(',') {
        bits |= match s.to_ascii_uppercase().as_str() {
            "NEW" => CT_NEW,
            "ESTABLISHED" => CT_ESTABLISHED,
            "RELATED" => CT_RELATED,
            "INVALID" => CT_INVALID,
            "UNTRACKED" => CT_UNTRACKED,
            "SNAT" => CT_SNAT,
            "DNAT" => CT_DNAT,
            _ => return None,
        };
    }
    Some(bits)
}
