//! Rule statements and expressions, read from libnftables JSON.
//!
//! Reading never fails: an expression or statement the simulator does not
//! know is kept as `Unknown` (it evaluates as unknown), and a constant it
//! cannot type makes its match unknown, so one odd rule never discards a
//! ruleset.

use std::net::IpAddr;

use serde_json::Value;

use super::set::{DataKind, Elems};
use super::value::{Datum, Part, Ty, datum, parts};
use super::verdict::VerdictStmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    And,
    Or,
    Xor,
    Shl,
    Shr,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::And => "&",
            BinOp::Or => "|",
            BinOp::Xor => "^",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
        }
    }

    pub fn apply(self, a: u64, b: u64) -> u64 {
        let shift = u32::try_from(b).unwrap_or(u32::MAX);
        match self {
            BinOp::And => a & b,
            BinOp::Or => a | b,
            BinOp::Xor => a ^ b,
            BinOp::Shl => a.checked_shl(shift).unwrap_or(0),
            BinOp::Shr => a.checked_shr(shift).unwrap_or(0),
        }
    }
}

/// An expression that yields a value for the packet.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Payload {
        proto: Box<str>,
        field: Box<str>,
    },
    Meta(Box<str>),
    Ct {
        key: Box<str>,
        dir: Option<Box<str>>,
    },
    Fib {
        result: Box<str>,
        flags: Vec<Box<str>>,
    },
    Numgen {
        inc: bool,
        modulus: u32,
        offset: u32,
    },
    /// `jhash` / `symhash`: a per-flow hash the simulator cannot compute.
    Hash {
        kind: Box<str>,
        modulus: u32,
        offset: u32,
        seed: Option<u64>,
        expr: Option<Box<Expr>>,
    },
    Concat(Vec<Expr>),
    Binop {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// A constant typed by its context (the raw JSON is kept for printing).
    Const {
        ty: Ty,
        value: Datum,
        raw: RawJson,
    },
    Unknown {
        kind: Box<str>,
        raw: RawJson,
    },
}

/// JSON kept only to print a rule as `nft list` does: compact text, read
/// back when printed (a `Value` tree of an object costs a kilobyte and
/// more, for each of the tens of thousands of rules kube-proxy writes).
#[derive(Clone)]
pub(crate) struct RawJson(Box<str>);

impl RawJson {
    pub fn new(v: &Value) -> RawJson {
        RawJson(v.to_string().into_boxed_str())
    }

    /// The JSON again (it was serialized from a `Value`, so it reads back).
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

impl std::fmt::Debug for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn u32_field(o: &Value, key: &str) -> u32 {
    o.get(key)
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0)
}

impl Expr {
    /// Reads an expression; a bare constant is typed as `ctx`.
    pub fn from_json(v: &Value, ctx: Ty) -> Expr {
        let Some((kind, body)) = single_key(v) else {
            return match datum(ctx, v) {
                Ok(value) => Expr::Const {
                    ty: ctx,
                    value,
                    raw: RawJson::new(v),
                },
                Err(_) => Expr::Unknown {
                    kind: "constant".into(),
                    raw: RawJson::new(v),
                },
            };
        };
        let unknown = || Expr::Unknown {
            kind: kind.into(),
            raw: RawJson::new(v),
        };
        let s = |k: &str| body.get(k).and_then(Value::as_str);
        match kind {
            "payload" => match (s("protocol"), s("field")) {
                (Some(p), Some(f)) => Expr::Payload {
                    proto: p.into(),
                    field: f.into(),
                },
                _ => unknown(),
            },
            "meta" => match s("key") {
                Some(k) => Expr::Meta(k.into()),
                None => unknown(),
            },
            "ct" => match s("key") {
                Some(k) => Expr::Ct {
                    key: k.into(),
                    dir: s("dir").map(Into::into),
                },
                None => unknown(),
            },
            "fib" => {
                let flags = match body.get("flags") {
                    Some(Value::String(f)) => vec![f.as_str().into()],
                    Some(Value::Array(fs)) => fs
                        .iter()
                        .filter_map(Value::as_str)
                        .map(Into::into)
                        .collect(),
                    _ => Vec::new(),
                };
                match s("result") {
                    Some(r) => Expr::Fib {
                        result: r.into(),
                        flags,
                    },
                    None => unknown(),
                }
            }
            "numgen" => {
                let modulus = u32_field(body, "mod");
                if modulus == 0 {
                    return unknown();
                }
                Expr::Numgen {
                    inc: s("mode") == Some("inc"),
                    modulus,
                    offset: u32_field(body, "offset"),
                }
            }
            "jhash" | "symhash" => Expr::Hash {
                kind: kind.into(),
                modulus: u32_field(body, "mod"),
                offset: u32_field(body, "offset"),
                seed: body.get("seed").and_then(Value::as_u64),
                expr: body
                    .get("expr")
                    .map(|e| Box::new(Expr::from_json(e, Ty::Other))),
            },
            "concat" => match body.as_array() {
                Some(items) => Expr::Concat(
                    items
                        .iter()
                        .map(|i| Expr::from_json(i, Ty::Other))
                        .collect(),
                ),
                None => unknown(),
            },
            "&" | "|" | "^" | "<<" | ">>" => {
                let op = match kind {
                    "&" => BinOp::And,
                    "|" => BinOp::Or,
                    "^" => BinOp::Xor,
                    "<<" => BinOp::Shl,
                    _ => BinOp::Shr,
                };
                let Some([l, r]) = body.as_array().map(Vec::as_slice) else {
                    return unknown();
                };
                let left = Expr::from_json(l, ctx);
                let right = Expr::from_json(r, left.ty());
                Expr::Binop {
                    op,
                    left: Box::new(left),
                    right: Box::new(right),
                }
            }
            _ => unknown(),
        }
    }

    /// The datatype of the value.
    pub fn ty(&self) -> Ty {
        match self {
            Expr::Payload { proto, field } => match (&**proto, &**field) {
                ("ip" | "ip6", "saddr" | "daddr") => Ty::Addr,
                ("ip", "protocol") | ("ip6", "nexthdr") => Ty::Proto,
                ("ip", "dscp") | ("ip6", "dscp") => Ty::Dscp,
                (_, "sport" | "dport") => Ty::Service,
                ("tcp", "flags") => Ty::TcpFlags,
                ("icmp", "type") => Ty::IcmpType,
                _ => Ty::Int,
            },
            Expr::Meta(k) => match &**k {
                "l4proto" => Ty::Proto,
                "nfproto" => Ty::NfProto,
                "protocol" => Ty::EtherType,
                "iifname" | "oifname" | "iif" | "oif" | "ibrname" | "obrname" | "bri_iifname"
                | "bri_oifname" => Ty::Ifname,
                "mark" => Ty::Mark,
                "pkttype" => Ty::PktType,
                _ => Ty::Int,
            },
            Expr::Ct { key, .. } => match &**key {
                "state" => Ty::CtState,
                "status" => Ty::CtStatus,
                "direction" => Ty::CtDir,
                "mark" => Ty::Mark,
                "saddr" | "daddr" | "ip saddr" | "ip daddr" | "ip6 saddr" | "ip6 daddr" => Ty::Addr,
                "proto-src" | "proto-dst" => Ty::Service,
                "l3proto" => Ty::NfProto,
                "protocol" => Ty::Proto,
                _ => Ty::Int,
            },
            Expr::Fib { result, .. } => match &**result {
                "type" => Ty::FibType,
                "oif" | "oifname" => Ty::Ifname,
                _ => Ty::Int,
            },
            Expr::Numgen { .. } | Expr::Hash { .. } => Ty::Int,
            Expr::Binop { left, .. } => left.ty(),
            Expr::Const { ty, .. } => *ty,
            Expr::Concat(_) | Expr::Unknown { .. } => Ty::Other,
        }
    }

    /// One datatype per concatenation component.
    pub fn tys(&self) -> Vec<Ty> {
        match self {
            Expr::Concat(items) => items.iter().map(Expr::ty).collect(),
            e => vec![e.ty()],
        }
    }
}

/// The single `{"kind": body}` of an expression object.
pub(crate) fn single_key(v: &Value) -> Option<(&str, &Value)> {
    let o = v.as_object()?;
    if o.len() != 1 {
        return None;
    }
    o.iter().next().map(|(k, b)| (k.as_str(), b))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    /// `in`: bits of a flag type (`ct state new`).
    In,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "==" | "eq" => Op::Eq,
            "!=" | "ne" => Op::Ne,
            "<" | "lt" => Op::Lt,
            ">" | "gt" => Op::Gt,
            "<=" | "le" => Op::Le,
            ">=" | "ge" => Op::Ge,
            "in" => Op::In,
            _ => return None,
        })
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Ge => ">=",
            Op::In => "in",
        }
    }
}

/// The right-hand side of a match.
#[derive(Debug, Clone)]
pub(crate) enum Rhs {
    /// One value, prefix, range or concatenation of them.
    Value(Box<[Part]>),
    /// Bits tested by `in`.
    Flags(u64),
    /// An anonymous set.
    Set(Elems),
    /// `@name`.
    Named(Box<str>),
    /// `fib … oif exists` / `missing`.
    Exists(bool),
    /// Not a constant the simulator can type.
    Bad(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Match {
    pub op: Op,
    pub left: Expr,
    pub right: Rhs,
    pub raw_right: RawJson,
}

/// A map used by `vmap` or a NAT statement.
#[derive(Debug, Clone)]
pub(crate) enum MapRef {
    Named(Box<str>),
    Anon { elems: Elems, raw: RawJson },
}

impl MapRef {
    fn from_json(v: &Value, key: &[Ty], data: &DataKind) -> MapRef {
        if let Some(name) = v.as_str().and_then(|s| s.strip_prefix('@')) {
            return MapRef::Named(name.into());
        }
        let items = v
            .get("set")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut elems = Elems::from_json(items, key, data);
        if v.get("set").is_none() {
            elems.broken = Some(format!("{v} is not a map"));
        }
        MapRef::Anon {
            elems,
            raw: RawJson::new(v),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NatKind {
    Snat,
    Dnat,
    Masquerade,
    Redirect,
}

#[derive(Debug, Clone)]
pub(crate) enum NatAddr {
    Addr(IpAddr),
    /// A range or prefix: the kernel picks one address per connection.
    Range(IpAddr, IpAddr),
    Map {
        key: Expr,
        map: MapRef,
    },
    Bad(String),
}

#[derive(Debug, Clone)]
pub(crate) enum NatPort {
    Port(u16),
    Range(u16, u16),
    Bad(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Nat {
    pub kind: NatKind,
    pub family: Option<Box<str>>,
    pub addr: Option<NatAddr>,
    pub port: Option<NatPort>,
    pub flags: Vec<Box<str>>,
    pub raw: RawJson,
}

/// One statement of a rule.
#[derive(Debug, Clone)]
pub(crate) enum Stmt {
    Match(Box<Match>),
    Verdict(VerdictStmt),
    Vmap {
        key: Expr,
        map: MapRef,
    },
    /// `meta mark set …`, `ct mark set …`.
    Mangle {
        key: Expr,
        value: Expr,
    },
    /// `add @set { … }` / `update @set { … }` / `delete @set { … }`.
    SetOp {
        op: Box<str>,
        set: Box<str>,
        elem: Expr,
        raw_elem: RawJson,
    },
    Nat(Box<Nat>),
    Reject {
        kind: Option<Box<str>>,
        code: Option<Box<str>>,
    },
    Notrack,
    Counter(RawJson),
    Log(RawJson),
    /// limit / quota / meter / ct count: assumed to let the packet on.
    Assumed {
        kind: Box<str>,
        raw: RawJson,
    },
    /// Statements with no effect on the simulated packet (`flow add`, `last`, ...).
    NoEffect {
        kind: Box<str>,
        raw: RawJson,
    },
    /// `xt match|target|watcher NAME` (iptables-nft's untranslated extensions).
    Xt {
        kind: Box<str>,
        name: Box<str>,
    },
    Unknown {
        kind: Box<str>,
        raw: RawJson,
    },
}

fn rhs(op: Op, left: &Expr, v: &Value) -> Rhs {
    if let (Expr::Fib { result, .. }, Value::Bool(b)) = (left, v)
        && matches!(&**result, "oif" | "oifname")
    {
        return Rhs::Exists(*b);
    }
    let tys = left.tys();
    if let Some(name) = v.as_str().and_then(|s| s.strip_prefix('@')) {
        return Rhs::Named(name.into());
    }
    if let Some(items) = v.get("set").and_then(Value::as_array) {
        return Rhs::Set(Elems::from_json(items, &tys, &DataKind::None));
    }
    if op == Op::In && tys.len() == 1 {
        return match datum(tys[0], v) {
            Ok(Datum::Int(bits)) => Rhs::Flags(bits),
            Ok(_) => Rhs::Bad(format!("{v} is not a flag value")),
            Err(e) => Rhs::Bad(e),
        };
    }
    match parts(&tys, v) {
        Ok(p) => Rhs::Value(p),
        Err(e) => Rhs::Bad(e),
    }
}

fn nat_addr(v: &Value) -> NatAddr {
    if let Some(s) = v.as_str() {
        return match s.parse() {
            Ok(a) => NatAddr::Addr(a),
            Err(_) => NatAddr::Bad(format!("\"{s}\" is not an address")),
        };
    }
    if let Some(m) = v.get("map") {
        let key = Expr::from_json(m.get("key").unwrap_or(&Value::Null), Ty::Other);
        let data = m.get("data").unwrap_or(&Value::Null);
        // Anonymous NAT maps say what they hold by their values: an address, or address . port.
        let first_value = data
            .get("set")
            .and_then(Value::as_array)
            .and_then(|s| s.first())
            .and_then(|e| e.as_array())
            .and_then(|pair| pair.get(1));
        let tys = match first_value {
            Some(d) if d.get("concat").is_some() => vec![Ty::Addr, Ty::Service],
            _ => vec![Ty::Addr],
        };
        let map = MapRef::from_json(data, &key.tys(), &DataKind::Values(tys));
        return NatAddr::Map { key, map };
    }
    match super::value::part(Ty::Addr, v) {
        Ok(Part::Range(Datum::Addr(lo), Datum::Addr(hi))) => NatAddr::Range(lo, hi),
        Ok(Part::Prefix(net)) => NatAddr::Range(net.network(), net.broadcast()),
        _ => NatAddr::Bad(format!("unsupported NAT address {v}")),
    }
}

fn nat_port(v: &Value) -> NatPort {
    let port = |v: &Value| v.as_u64().and_then(|p| u16::try_from(p).ok());
    if let Some(p) = port(v) {
        return NatPort::Port(p);
    }
    if let Some([lo, hi]) = v.get("range").and_then(Value::as_array).map(Vec::as_slice)
        && let (Some(lo), Some(hi)) = (port(lo), port(hi))
    {
        return NatPort::Range(lo, hi);
    }
    NatPort::Bad(format!("unsupported NAT port {v}"))
}

fn flag_list(v: Option<&Value>) -> Vec<Box<str>> {
    match v {
        Some(Value::String(s)) => vec![s.as_str().into()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(Into::into)
            .collect(),
        _ => Vec::new(),
    }
}

impl Stmt {
    pub fn from_json(v: &Value) -> Stmt {
        if let Some(verdict) = VerdictStmt::from_json(v) {
            return Stmt::Verdict(verdict);
        }
        let Some((kind, body)) = single_key(v) else {
            return Stmt::Unknown {
                kind: "statement".into(),
                raw: RawJson::new(v),
            };
        };
        let unknown = || Stmt::Unknown {
            kind: kind.into(),
            raw: RawJson::new(v),
        };
        match kind {
            "match" => {
                let (Some(op), Some(l), Some(r)) = (
                    body.get("op")
                        .and_then(Value::as_str)
                        .map_or(Some(Op::Eq), Op::parse),
                    body.get("left"),
                    body.get("right"),
                ) else {
                    return unknown();
                };
                let left = Expr::from_json(l, Ty::Other);
                let right = rhs(op, &left, r);
                Stmt::Match(Box::new(Match {
                    op,
                    left,
                    right,
                    raw_right: RawJson::new(r),
                }))
            }
            "vmap" => {
                let (Some(k), Some(d)) = (body.get("key"), body.get("data")) else {
                    return unknown();
                };
                let key = Expr::from_json(k, Ty::Other);
                let map = MapRef::from_json(d, &key.tys(), &DataKind::Verdict);
                Stmt::Vmap { key, map }
            }
            "mangle" => {
                let (Some(k), Some(val)) = (body.get("key"), body.get("value")) else {
                    return unknown();
                };
                let key = Expr::from_json(k, Ty::Other);
                let value = Expr::from_json(val, key.ty());
                Stmt::Mangle { key, value }
            }
            "set" => {
                let (Some(op), Some(set), Some(elem)) = (
                    body.get("op").and_then(Value::as_str),
                    body.get("set")
                        .and_then(Value::as_str)
                        .and_then(|s| s.strip_prefix('@')),
                    body.get("elem"),
                ) else {
                    return unknown();
                };
                Stmt::SetOp {
                    op: op.into(),
                    set: set.into(),
                    elem: Expr::from_json(super::value::unwrap_elem(elem), Ty::Other),
                    raw_elem: RawJson::new(elem),
                }
            }
            "snat" | "dnat" | "masquerade" | "redirect" => Stmt::Nat(Box::new(Nat {
                kind: match kind {
                    "snat" => NatKind::Snat,
                    "dnat" => NatKind::Dnat,
                    "masquerade" => NatKind::Masquerade,
                    _ => NatKind::Redirect,
                },
                family: body.get("family").and_then(Value::as_str).map(Into::into),
                addr: body.get("addr").map(nat_addr),
                port: body.get("port").map(nat_port),
                flags: flag_list(body.get("flags")),
                raw: RawJson::new(body),
            })),
            "reject" => Stmt::Reject {
                kind: body.get("type").and_then(Value::as_str).map(Into::into),
                code: body.get("expr").and_then(Value::as_str).map(Into::into),
            },
            "notrack" => Stmt::Notrack,
            "counter" => Stmt::Counter(RawJson::new(body)),
            "log" => Stmt::Log(RawJson::new(body)),
            "limit" | "quota" | "meter" | "ct count" => Stmt::Assumed {
                kind: kind.into(),
                raw: RawJson::new(body),
            },
            "flow" | "last" | "ct helper" | "ct timeout" | "ct expectation" | "secmark"
            | "synproxy" => Stmt::NoEffect {
                kind: kind.into(),
                raw: RawJson::new(body),
            },
            "xt" => Stmt::Xt {
                kind: body
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("match")
                    .into(),
                name: body
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .into(),
            },
            _ => unknown(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_kinds_are_kept() {
        let s = Stmt::from_json(&json!({"tproxy": {"addr": "1.1.1.1"}}));
        assert!(matches!(s, Stmt::Unknown { ref kind, .. } if &**kind == "tproxy"));
        let m = Stmt::from_json(
            &json!({"match": {"op": "==", "left": {"osf": {"key": "name"}}, "right": "Linux"}}),
        );
        let Stmt::Match(m) = m else { panic!("a match") };
        assert!(matches!(m.left, Expr::Unknown { ref kind, .. } if &**kind == "osf"));
        let bad = Stmt::from_json(
            &json!({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "nope"}}),
        );
        let Stmt::Match(bad) = bad else {
            panic!("a match")
        };
        assert!(matches!(bad.right, Rhs::Bad(_)));
    }

    #[test]
    fn rhs_kinds() {
        let m = |r: Value, op: &str| {
            let s = Stmt::from_json(
                &json!({"match": {"op": op, "left": {"ct": {"key": "state"}}, "right": r}}),
            );
            match s {
                Stmt::Match(m) => m.right,
                other => panic!("{other:?}"),
            }
        };
        assert!(matches!(m(json!("new"), "in"), Rhs::Flags(8)));
        assert!(matches!(
            m(json!(["established", "related"]), "in"),
            Rhs::Flags(6)
        ));
        assert!(
            matches!(m(json!({"set": ["established", "related"]}), "=="), Rhs::Set(ref e) if e.len() == 2)
        );
        assert!(matches!(m(json!("@x"), "=="), Rhs::Named(ref n) if &**n == "x"));
    }

    #[test]
    fn nat_forms() {
        let s = Stmt::from_json(
            &json!({"dnat": {"family": "ip", "addr": {"map": {"key": {"numgen": {"mode": "random", "mod": 2, "offset": 0}}, "data": {"set": [[0, {"concat": ["10.244.0.10", 9898]}], [1, {"concat": ["10.244.0.8", 9898]}]]}}}}}),
        );
        let Stmt::Nat(n) = s else { panic!("nat") };
        let Some(NatAddr::Map {
            map: MapRef::Anon { elems, .. },
            ..
        }) = &n.addr
        else {
            panic!("map")
        };
        assert_eq!(elems.len(), 2);
        assert!(elems.broken.is_none());
        let s = Stmt::from_json(
            &json!({"snat": {"addr": {"range": ["10.0.0.1", "10.0.0.5"]}, "port": {"range": [1000, 2000]}}}),
        );
        let Stmt::Nat(n) = s else { panic!("nat") };
        assert!(matches!(n.addr, Some(NatAddr::Range(..))));
        assert!(matches!(n.port, Some(NatPort::Range(1000, 2000))));
        let s = Stmt::from_json(&json!({"masquerade": {"flags": "fully-random"}}));
        let Stmt::Nat(n) = s else { panic!("nat") };
        assert_eq!(n.flags, vec![Box::<str>::from("fully-random")]);
    }
}
