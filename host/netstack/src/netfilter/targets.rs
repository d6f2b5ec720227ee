//! Rule targets: what a matching rule does. A target spec is compiled once
//! the table's chains are known (a user chain wins over a target of the same
//! name, as in iptables).

use std::borrow::Cow;
use std::net::Ipv4Addr;

use super::rule::TargetSpec;
use super::values::{parse_ipv4, parse_mark, parse_port, parse_u32};

/// `mark = (mark & !mask) ^ xor` — every MARK operation has this form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MarkOp {
    pub mask: u32,
    pub xor: u32,
}

impl MarkOp {
    pub fn apply(self, mark: u32) -> u32 {
        (mark & !self.mask) ^ self.xor
    }
}

/// What CONNMARK does to the connection mark (or, restoring, the packet mark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnmarkOp {
    /// ctmark = op(ctmark).
    Set(MarkOp),
    /// ctmark = (ctmark & !ctmask) ^ (mark & nfmask).
    Save { nfmask: u32, ctmask: u32 },
    /// mark = (mark & !nfmask) ^ (ctmark & ctmask).
    Restore { nfmask: u32, ctmask: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// No `-j`: the rule only counts.
    None,
    Accept,
    Drop,
    Reject,
    Return,
    /// Call a user chain (index in the table).
    Jump(usize),
    /// Go to a user chain without returning here.
    Goto(usize),
    Dnat {
        addr: Option<Ipv4Addr>,
        port: Option<u16>,
    },
    Snat {
        addr: Option<Ipv4Addr>,
        port: Option<u16>,
    },
    Masquerade,
    Redirect {
        port: Option<u16>,
    },
    Mark(MarkOp),
    /// TOS / DSCP: the TOS byte is rewritten like a mark (`(tos & !mask) ^ xor`).
    Tos(MarkOp),
    Connmark(ConnmarkOp),
    /// TPROXY: to a local (transparent) socket at `addr`:`port`, marking the packet.
    Tproxy {
        addr: Option<Ipv4Addr>,
        port: u16,
        mark: MarkOp,
    },
    /// Non-terminating with no effect on the simulated packet; optional note.
    Continue(Option<&'static str>),
    Notrack,
    Unknown(String),
    /// A name that is neither a known target nor a chain declared so far;
    /// [`resolve`] turns it into a jump/goto or an unknown target.
    Unresolved {
        name: Box<str>,
        goto: bool,
    },
}

fn opt<'s>(spec: &'s TargetSpec<'_>, names: &[&str]) -> Option<&'s [Cow<'s, str>]> {
    spec.opts
        .iter()
        .rev()
        .find(|o| names.contains(&o.name.as_ref()))
        .map(|o| o.args.as_slice())
}

fn one<'s>(spec: &'s TargetSpec<'_>, names: &[&str]) -> Option<&'s str> {
    match opt(spec, names)? {
        [a] => Some(a.as_ref()),
        _ => None,
    }
}

/// `[ADDR[-ADDR]][:PORT[-PORT]]`: the first address and first port.
fn nat_to(s: &str) -> Option<(Option<Ipv4Addr>, Option<u16>)> {
    let (a, p) = match s.split_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr = if a.is_empty() {
        None
    } else {
        Some(parse_ipv4(a.split('-').next()?)?)
    };
    let port = match p {
        Some(p) => Some(parse_port(p.split('-').next()?)?),
        None => None,
    };
    if addr.is_none() && port.is_none() {
        return None;
    }
    Some((addr, port))
}

/// MARK's and TOS's operations share one shape: `--set-x<what> V[/M]`
/// (xor V after clearing M), `--set-<what>` (MARK only: set the bits of V
/// under M), `--and-`, `--or-`, `--xor-`. `width` is the field's bits (a
/// plain `--set-tos V` replaces the whole TOS byte).
fn bit_op(spec: &TargetSpec<'_>, what: &str, width: u32) -> Option<MarkOp> {
    let o = spec.opts.iter().rev().find(|o| {
        o.name
            .strip_prefix("--")
            .and_then(|n| n.strip_suffix(what))
            .is_some_and(|op| matches!(op, "set-x" | "set-" | "and-" | "or-" | "xor-"))
    })?;
    let [arg] = o.args.as_slice() else {
        return None;
    };
    let op = o.name.strip_prefix("--")?.strip_suffix(what)?;
    let value_mask = || -> Option<(u32, u32)> {
        match arg.split_once('/') {
            Some((v, m)) => Some((parse_u32(v)?, parse_u32(m)?)),
            None => Some((parse_u32(arg)?, width)),
        }
    };
    Some(match op {
        "set-x" => {
            let (xor, mask) = value_mask()?;
            MarkOp { mask, xor }
        }
        // TOS's `--set-tos V/M` is the xor form; MARK's `--set-mark` sets bits.
        "set-" if what == "tos" => {
            let (xor, mask) = value_mask()?;
            MarkOp { mask, xor }
        }
        "set-" => {
            let (v, m) = value_mask()?;
            MarkOp {
                mask: v | m,
                xor: v,
            }
        }
        "and-" => MarkOp {
            mask: !parse_u32(arg)? & width,
            xor: 0,
        },
        "or-" => {
            let v = parse_u32(arg)?;
            MarkOp { mask: v, xor: v }
        }
        _ => MarkOp {
            mask: 0,
            xor: parse_u32(arg)?,
        },
    })
}

fn mark_op(spec: &TargetSpec<'_>) -> Option<MarkOp> {
    bit_op(spec, "mark", u32::MAX)
}

fn tos_op(spec: &TargetSpec<'_>) -> Option<MarkOp> {
    bit_op(spec, "tos", 0xff)
}

fn connmark_op(spec: &TargetSpec<'_>) -> Option<ConnmarkOp> {
    let mask = |names: &[&str]| -> Option<u32> {
        match one(spec, names) {
            Some(m) => parse_u32(m),
            None => Some(u32::MAX),
        }
    };
    let last = spec.opts.iter().rev().find(|o| {
        matches!(
            o.name.as_ref(),
            "--save-mark"
                | "--restore-mark"
                | "--set-xmark"
                | "--set-mark"
                | "--and-mark"
                | "--or-mark"
                | "--xor-mark"
        )
    })?;
    let both = mask(&["--mask"])?;
    let nfmask = if opt(spec, &["--nfmask"]).is_some() {
        mask(&["--nfmask"])?
    } else {
        both
    };
    let ctmask = if opt(spec, &["--ctmask"]).is_some() {
        mask(&["--ctmask"])?
    } else {
        both
    };
    Some(match last.name.as_ref() {
        "--save-mark" => ConnmarkOp::Save { nfmask, ctmask },
        "--restore-mark" => ConnmarkOp::Restore { nfmask, ctmask },
        _ => ConnmarkOp::Set(mark_op(spec)?),
    })
}

fn tproxy(spec: &TargetSpec<'_>) -> Option<Target> {
    let port = parse_port(one(spec, &["--on-port"])?)?;
    let addr = match one(spec, &["--on-ip"]) {
        Some(a) => Some(parse_ipv4(a)?),
        None => None,
    };
    let mark = match one(spec, &["--tproxy-mark"]) {
        Some(m) => {
            let (xor, mask) = parse_mark(m)?;
            MarkOp { mask, xor }
        }
        None => MarkOp { mask: 0, xor: 0 },
    };
    Some(Target::Tproxy { addr, port, mark })
}

/// Compiles a target; `chain` looks a user chain up by name.
pub(crate) fn compile(
    spec: Option<&TargetSpec<'_>>,
    chain: impl Fn(&str) -> Option<usize>,
) -> Target {
    let Some(spec) = spec else {
        return Target::None;
    };
    let name = spec.name.as_ref();
    if let Some(idx) = chain(name) {
        return if spec.goto {
            Target::Goto(idx)
        } else {
            Target::Jump(idx)
        };
    }
    if spec.goto {
        return Target::Unresolved {
            name: name.into(),
            goto: true,
        };
    }
    let bad = |what: &str| Target::Unknown(format!("{name}: missing or bad {what}"));
    match name {
        "ACCEPT" => Target::Accept,
        "DROP" => Target::Drop,
        "REJECT" => Target::Reject,
        "RETURN" => Target::Return,
        "DNAT" => match one(spec, &["--to-destination", "--to"]).and_then(nat_to) {
            Some((addr, port)) => Target::Dnat { addr, port },
            None => bad("--to-destination"),
        },
        "SNAT" => match one(spec, &["--to-source", "--to"]).and_then(nat_to) {
            Some((addr, port)) => Target::Snat { addr, port },
            None => bad("--to-source"),
        },
        "MASQUERADE" => Target::Masquerade,
        "REDIRECT" => match opt(spec, &["--to-ports", "--to-port"]) {
            None => Target::Redirect { port: None },
            Some([p]) => match p.as_ref().split('-').next().and_then(parse_port) {
                Some(port) => Target::Redirect { port: Some(port) },
                None => bad("--to-ports"),
            },
            Some(_) => bad("--to-ports"),
        },
        "MARK" => match mark_op(spec) {
            Some(op) => Target::Mark(op),
            None => bad("mark operation"),
        },
        "CONNMARK" => match connmark_op(spec) {
            Some(op) => Target::Connmark(op),
            None => bad("connmark operation"),
        },
        "TOS" => match tos_op(spec) {
            Some(op) => Target::Tos(op),
            None => bad("TOS operation"),
        },
        "DSCP" => match one(spec, &["--set-dscp"]).and_then(parse_u32) {
            // The DSCP is the TOS byte's upper six bits.
            Some(d) if d < 64 => Target::Tos(MarkOp {
                mask: 0xfc,
                xor: d << 2,
            }),
            _ => bad("--set-dscp"),
        },
        "LOG" | "NFLOG" | "ULOG" | "TRACE" | "AUDIT" | "CHECKSUM" | "TCPMSS" | "CLASSIFY"
        | "TTL" | "SET" | "SECMARK" | "CONNSECMARK" | "IDLETIMER" | "LED" => Target::Continue(None),
        "NOTRACK" => Target::Notrack,
        "CT" => {
            if opt(spec, &["--notrack"]).is_some() {
                Target::Notrack
            } else {
                Target::Continue(None)
            }
        }
        "TPROXY" => match tproxy(spec) {
            Some(t) => t,
            None => bad("--on-port"),
        },
        _ => Target::Unresolved {
            name: name.into(),
            goto: false,
        },
    }
}

/// Resolves a target compiled before all chains of its table were known.
pub(crate) fn resolve(target: &mut Target, chain: impl Fn(&str) -> Option<usize>) {
    let Target::Unresolved { name, goto } = target else {
        return;
    };
    *target = match (chain(name), *goto) {
        (Some(i), true) => Target::Goto(i),
        (Some(i), false) => Target::Jump(i),
        (None, true) => Target::Unknown(format!("goto to unknown chain \"{name}\"")),
        (None, false) => Target::Unknown(format!("unknown target \"{name}\"")),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netfilter::rule::TargetOpt;

    fn spec<'a>(name: &'a str, opts: &[(&'a str, &[&'a str])]) -> TargetSpec<'a> {
        TargetSpec {
            name: Cow::Borrowed(name),
            goto: false,
            opts: opts
                .iter()
                .map(|(n, a)| TargetOpt {
                    name: Cow::Borrowed(*n),
                    args: a.iter().map(|s| Cow::Borrowed(*s)).collect(),
                })
                .collect(),
        }
    }

    fn mark(name: &str, opt: &str, arg: &str, from: u32) -> u32 {
        match compile(Some(&spec(name, &[(opt, &[arg])])), |_| None) {
            Target::Mark(op) => op.apply(from),
            other => panic!("not a mark target: {other:?}"),
        }
    }

    fn tos(name: &str, opt: &str, arg: &str, from: u32) -> u32 {
        match compile(Some(&spec(name, &[(opt, &[arg])])), |_| None) {
            Target::Tos(op) => op.apply(from) & 0xff,
            other => panic!("not a TOS target: {other:?}"),
        }
    }

    #[test]
    fn tos_and_dscp_rewrite_the_tos_byte() {
        assert_eq!(tos("TOS", "--set-tos", "0x10/0xff", 0x02), 0x10);
        assert_eq!(tos("TOS", "--set-tos", "0x10/0x3f", 0xc2), 0xd0);
        assert_eq!(tos("TOS", "--set-tos", "0x10", 0x03), 0x10);
        assert_eq!(tos("TOS", "--or-tos", "0x08", 0x10), 0x18);
        assert_eq!(tos("TOS", "--and-tos", "0x0f", 0x1e), 0x0e);
        assert_eq!(tos("DSCP", "--set-dscp", "0x0a", 0x01), 0x29);
    }

    #[test]
    fn mark_operations() {
        assert_eq!(mark("MARK", "--set-xmark", "0x4000/0x4000", 0x1), 0x4001);
        assert_eq!(mark("MARK", "--set-xmark", "0x4000/0x0", 0x4000), 0x0);
        assert_eq!(mark("MARK", "--set-mark", "0x10", 0xff), 0x10);
        assert_eq!(mark("MARK", "--set-mark", "0x10/0xf0", 0xff), 0x1f);
        assert_eq!(mark("MARK", "--or-mark", "0x4000", 0x1), 0x4001);
        assert_eq!(mark("MARK", "--and-mark", "0xff", 0x4011), 0x11);
        assert_eq!(mark("MARK", "--xor-mark", "0x4000", 0x4001), 0x1);
    }

    #[test]
    fn nat_targets() {
        assert_eq!(
            compile(
                Some(&spec("DNAT", &[("--to-destination", &["10.0.0.1:80"])])),
                |_| None
            ),
            Target::Dnat {
                addr: Some(Ipv4Addr::new(10, 0, 0, 1)),
                port: Some(80)
            }
        );
        assert_eq!(
            compile(
                Some(&spec("SNAT", &[("--to-source", &["1.2.3.4-1.2.3.9"])])),
                |_| None
            ),
            Target::Snat {
                addr: Some(Ipv4Addr::new(1, 2, 3, 4)),
                port: None
            }
        );
        assert_eq!(
            compile(
                Some(&spec("DNAT", &[("--to-destination", &[":8080"])])),
                |_| None
            ),
            Target::Dnat {
                addr: None,
                port: Some(8080)
            }
        );
        assert!(matches!(
            compile(Some(&spec("DNAT", &[])), |_| None),
            Target::Unknown(_)
        ));
        assert_eq!(
            compile(
                Some(&spec("REDIRECT", &[("--to-ports", &["15001"])])),
                |_| None
            ),
            Target::Redirect { port: Some(15001) }
        );
    }

    fn resolved(spec: &TargetSpec<'_>, chain: impl Fn(&str) -> Option<usize> + Copy) -> Target {
        let mut t = compile(Some(spec), chain);
        resolve(&mut t, chain);
        t
    }

    #[test]
    fn chains_win_and_unknowns() {
        assert_eq!(
            compile(Some(&spec("LOG", &[])), |n| (n == "LOG").then_some(3)),
            Target::Jump(3)
        );
        let mut g = spec("X", &[]);
        g.goto = true;
        assert_eq!(compile(Some(&g), |_| Some(1)), Target::Goto(1));
        assert!(matches!(resolved(&g, |_| None), Target::Unknown(_)));
        assert!(
            matches!(resolved(&spec("FOO", &[]), |_| None), Target::Unknown(m) if m.contains("FOO"))
        );
        assert_eq!(resolved(&spec("LATER", &[]), |_| Some(7)), Target::Jump(7));
        assert!(matches!(
            compile(Some(&spec("TPROXY", &[])), |_| None),
            Target::Unknown(_)
        ));
        assert_eq!(
            compile(
                Some(&spec(
                    "TPROXY",
                    &[("--on-port", &["15006"]), ("--tproxy-mark", &["0x1/0x1"])]
                )),
                |_| None
            ),
            Target::Tproxy {
                addr: None,
                port: 15006,
                mark: MarkOp { mask: 1, xor: 1 }
            }
        );
        assert_eq!(compile(None, |_| None), Target::None);
        assert_eq!(
            compile(Some(&spec("CT", &[("--notrack", &[])])), |_| None),
            Target::Notrack
        );
    }
}
