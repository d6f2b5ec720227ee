//! Rules printed back in `nft list ruleset` syntax, so a verdict names the
//! rule the way an operator sees it on the node.

use std::fmt::Write;

use serde_json::Value;

use super::expr::{Expr, MapRef, Match, Nat, NatAddr, NatKind, NatPort, Op, Stmt, single_key};
use super::family::Family;
use super::value::{Ty, symbol_name};
use super::verdict::VerdictStmt;

/// A rule of `family` as nft prints it: its statements and comment.
pub(crate) fn rule(family: Family, stmts: &[Stmt], comment: Option<&str>) -> String {
    let mut out = stmts
        .iter()
        .map(|s| stmt(s, family))
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(c) = comment {
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "comment \"{c}\"");
    }
    out
}

fn compact(v: &Value) -> String {
    v.to_string()
}

/// nft's time format: `3h`, `1m`, `1h30m`.
fn duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= n {
            let _ = write!(out, "{}{unit}", rest / n);
            rest %= n;
        }
    }
    out
}

pub(crate) fn expr(e: &Expr) -> String {
    match e {
        Expr::Payload { proto, field } => format!("{proto} {field}"),
        Expr::Meta(k) => match &**k {
            "iif" | "oif" | "iifname" | "oifname" | "iifgroup" | "oifgroup" => k.to_string(),
            _ => format!("meta {k}"),
        },
        Expr::Ct { key, dir } => match dir {
            Some(d) => format!("ct {d} {key}"),
            None => format!("ct {key}"),
        },
        Expr::Fib { result, flags } => {
            let flags: Vec<&str> = flags.iter().map(|f| &**f).collect();
            format!("fib {} {result}", flags.join(" . "))
        }
        Expr::Numgen {
            inc,
            modulus,
            offset,
        } => {
            let mut s = format!(
                "numgen {} mod {modulus}",
                if *inc { "inc" } else { "random" }
            );
            if *offset != 0 {
                let _ = write!(s, " offset {offset}");
            }
            s
        }
        Expr::Hash {
            kind,
            modulus,
            offset,
            seed,
            expr: inner,
        } => {
            let mut s = kind.to_string();
            if let Some(i) = inner {
                let _ = write!(s, " {}", expr(i));
            }
            let _ = write!(s, " mod {modulus}");
            if let Some(seed) = seed {
                let _ = write!(s, " seed {seed:#x}");
            }
            if *offset != 0 {
                let _ = write!(s, " offset {offset}");
            }
            s
        }
        Expr::Concat(items) => items.iter().map(expr).collect::<Vec<_>>().join(" . "),
        Expr::Binop { op, left, right } => {
            format!("{} {} {}", expr(left), op.symbol(), expr(right))
        }
        Expr::Const { ty, raw, .. } => value(&[*ty], &raw.value()),
        Expr::Unknown { kind, raw } => {
            let raw = raw.value();
            match kind.as_ref() {
                "constant" => compact(&raw),
                _ => format!(
                    "{kind} {}",
                    single_key(&raw).map_or_else(|| compact(&raw), |(_, b)| compact(b))
                ),
            }
        }
    }
}

/// A constant (scalar, prefix, range, concatenation, set or element) of the given types.
pub(crate) fn value(tys: &[Ty], v: &Value) -> String {
    let ty = tys.first().copied().unwrap_or(Ty::Other);
    match v {
        Value::String(s) if s.starts_with('@') => s.clone(),
        Value::String(s) => match ty {
            Ty::Ifname => format!("\"{s}\""),
            Ty::Other if s.chars().any(|c| c.is_whitespace() || c == '"') => format!("\"{s}\""),
            _ => s.clone(),
        },
        Value::Number(n) => match (ty, n.as_u64()) {
            (Ty::Mark, Some(v)) => format!("{v:#010x}"),
            (_, Some(v)) => symbol_name(ty, v).map_or_else(|| v.to_string(), str::to_string),
            _ => n.to_string(),
        },
        Value::Bool(b) if ty == Ty::Ifname => (if *b { "exists" } else { "missing" }).to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            // A map element [key, data] or a flag list.
            items
                .iter()
                .map(|i| value(&[ty], i))
                .collect::<Vec<_>>()
                .join(",")
        }
        Value::Object(_) => object_value(tys, v),
        Value::Null => String::new(),
    }
}

fn object_value(tys: &[Ty], v: &Value) -> String {
    let ty = tys.first().copied().unwrap_or(Ty::Other);
    if let Some(verdict) = VerdictStmt::from_json(v) {
        return verdict_text(&verdict);
    }
    let Some((kind, body)) = single_key(v) else {
        return compact(v);
    };
    match kind {
        "prefix" => format!(
            "{}/{}",
            body.get("addr").and_then(Value::as_str).unwrap_or("?"),
            body.get("len").map_or_else(String::new, |l| l.to_string())
        ),
        "range" => match body.as_array().map(Vec::as_slice) {
            Some([lo, hi]) => format!("{}-{}", value(&[ty], lo), value(&[ty], hi)),
            _ => compact(v),
        },
        "concat" => match body.as_array() {
            Some(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| value(&[tys.get(i).copied().unwrap_or(Ty::Other)], item))
                .collect::<Vec<_>>()
                .join(" . "),
            None => compact(v),
        },
        "set" => match body.as_array() {
            Some(items) => format!(
                "{{ {} }}",
                items
                    .iter()
                    .map(|i| element(tys, &[], i))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => compact(v),
        },
        "elem" => element_body(tys, body),
        "|" | "&" | "^" => match body.as_array().map(Vec::as_slice) {
            Some([a, b]) => format!("{} {kind} {}", value(tys, a), value(tys, b)),
            _ => compact(v),
        },
        _ => compact(v),
    }
}

fn element_body(tys: &[Ty], body: &Value) -> String {
    let mut s = body.get("val").map_or_else(String::new, |v| value(tys, v));
    if let Some(t) = body.get("timeout").and_then(Value::as_u64) {
        let _ = write!(s, " timeout {}", duration(t));
    }
    if let Some(t) = body.get("expires").and_then(Value::as_u64) {
        let _ = write!(s, " expires {}", duration(t));
    }
    if let Some(c) = body.get("comment").and_then(Value::as_str) {
        let _ = write!(s, " comment \"{c}\"");
    }
    s
}

/// One element of an anonymous set or map (`k` or `k : v`).
fn element(key: &[Ty], data: &[Ty], v: &Value) -> String {
    match v.as_array().map(Vec::as_slice) {
        Some([k, d]) => format!("{} : {}", value(key, k), value(data, d)),
        _ => value(key, v),
    }
}

fn verdict_text(v: &VerdictStmt) -> String {
    match v {
        VerdictStmt::Accept => "accept".to_string(),
        VerdictStmt::Drop => "drop".to_string(),
        VerdictStmt::Continue => "continue".to_string(),
        VerdictStmt::Return => "return".to_string(),
        VerdictStmt::Jump(t) => format!("jump {t}"),
        VerdictStmt::Goto(t) => format!("goto {t}"),
        VerdictStmt::Queue => "queue".to_string(),
    }
}

fn map_text(map: &MapRef, key: &[Ty], data: &[Ty]) -> String {
    match map {
        MapRef::Named(n) => format!("@{n}"),
        MapRef::Anon { raw, .. } => {
            let raw = raw.value();
            match raw.get("set").and_then(Value::as_array) {
                Some(items) => format!(
                    "{{ {} }}",
                    items
                        .iter()
                        .map(|i| element(key, data, i))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => compact(&raw),
            }
        }
    }
}

fn match_text(m: &Match) -> String {
    let tys = m.left.tys();
    let raw_right = m.raw_right.value();
    let right = value(&tys, &raw_right);
    // `tcp flags & (syn | ack) == syn` prints as `tcp flags syn / syn,ack`.
    if let Expr::Binop {
        op: super::expr::BinOp::And,
        left,
        right: mask,
    } = &m.left
        && left.ty().is_bitmask()
        && m.op == Op::Eq
        && let Expr::Const { raw, .. } = &**mask
    {
        return format!(
            "{} {right} / {}",
            expr(left),
            value(&[left.ty()], &raw.value())
        );
    }
    if let Expr::Fib { result, .. } = &m.left
        && (&**result == "oif" || &**result == "oifname")
        && let Value::Bool(b) = raw_right
    {
        let word = if b == (m.op != Op::Ne) {
            "exists"
        } else {
            "missing"
        };
        return format!("{} {word}", expr(&m.left));
    }
    let left = expr(&m.left);
    match m.op {
        Op::Eq if matches!(m.left, Expr::Binop { .. }) => format!("{left} == {right}"),
        Op::Eq | Op::In => format!("{left} {right}"),
        op => format!("{left} {} {right}", op.symbol()),
    }
}

fn nat_text(n: &Nat) -> String {
    let raw = n.raw.value();
    let mut s = match n.kind {
        NatKind::Snat => "snat",
        NatKind::Dnat => "dnat",
        NatKind::Masquerade => "masquerade",
        NatKind::Redirect => "redirect",
    }
    .to_string();
    if let Some(f) = &n.family
        && matches!(n.kind, NatKind::Snat | NatKind::Dnat)
    {
        let _ = write!(s, " {f}");
    }
    let port = n.port.as_ref().map(|p| match p {
        NatPort::Port(p) => p.to_string(),
        NatPort::Range(lo, hi) => format!("{lo}-{hi}"),
        NatPort::Bad(_) => raw.get("port").map_or_else(String::new, compact),
    });
    let addr = n.addr.as_ref().map(|a| match a {
        NatAddr::Addr(ip) => ip.to_string(),
        NatAddr::Range(..) | NatAddr::Bad(_) => raw
            .get("addr")
            .map_or_else(String::new, |v| value(&[Ty::Addr], v)),
        NatAddr::Map { key, map } => {
            let data = match map {
                MapRef::Anon { raw, .. }
                    if raw
                        .value()
                        .get("set")
                        .and_then(Value::as_array)
                        .and_then(|s| s.first())
                        .and_then(Value::as_array)
                        .and_then(|p| p.get(1))
                        .is_some_and(|d| d.get("concat").is_some()) =>
                {
                    vec![Ty::Addr, Ty::Service]
                }
                _ => vec![Ty::Addr],
            };
            format!("{} map {}", expr(key), map_text(map, &key.tys(), &data))
        }
    });
    match (addr, port) {
        (Some(a), Some(p)) => {
            let _ = write!(s, " to {a}:{p}");
        }
        (Some(a), None) => {
            let _ = write!(s, " to {a}");
        }
        (None, Some(p)) => {
            let _ = write!(s, " to :{p}");
        }
        (None, None) => {}
    }
    if !n.flags.is_empty() {
        let flags: Vec<&str> = n.flags.iter().map(|f| &**f).collect();
        let _ = write!(s, " {}", flags.join(","));
    }
    s
}

fn reject_text(kind: Option<&str>, code: Option<&str>, family: Family) -> String {
    let default_kind = match family {
        Family::Ip => "icmp",
        Family::Ip6 => "icmpv6",
        _ => "icmpx",
    };
    match (kind, code) {
        (None, None) => "reject".to_string(),
        (Some(k), Some("port-unreachable")) if k == default_kind => "reject".to_string(),
        (Some(k), None) => format!("reject with {k}"),
        (Some(k), Some(c)) => format!("reject with {k} {c}"),
        (None, Some(c)) => format!("reject with {default_kind} {c}"),
    }
}

fn limit_text(kind: &str, b: &Value) -> String {
    let over = if b.get("inv").and_then(Value::as_bool) == Some(true) {
        "over "
    } else {
        ""
    };
    match kind {
        "limit" => {
            let rate = b.get("rate").map_or_else(String::new, compact);
            let per = b.get("per").and_then(Value::as_str).unwrap_or("second");
            let unit = b.get("rate_unit").and_then(Value::as_str);
            let mut s = match unit {
                Some(u) if u != "packets" => format!("limit rate {over}{rate} {u}/{per}"),
                _ => format!("limit rate {over}{rate}/{per}"),
            };
            if let Some(burst) = b.get("burst").and_then(Value::as_u64)
                && burst != 5
                && burst != 0
            {
                let u = b
                    .get("burst_unit")
                    .and_then(Value::as_str)
                    .unwrap_or("packets");
                let _ = write!(s, " burst {burst} {u}");
            }
            s
        }
        "quota" => format!(
            "quota {over}{} {}",
            b.get("val").map_or_else(String::new, compact),
            b.get("val_unit").and_then(Value::as_str).unwrap_or("bytes")
        ),
        "ct count" => format!(
            "ct count {over}{}",
            b.get("val").map_or_else(String::new, compact)
        ),
        _ => format!("{kind} {}", compact(b)),
    }
}

fn log_text(b: &Value) -> String {
    let mut s = "log".to_string();
    if let Some(p) = b.get("prefix").and_then(Value::as_str) {
        let _ = write!(s, " prefix \"{p}\"");
    }
    for key in ["group", "snaplen", "queue-threshold"] {
        if let Some(v) = b.get(key) {
            let _ = write!(s, " {key} {v}");
        }
    }
    if let Some(l) = b.get("level").and_then(Value::as_str) {
        let _ = write!(s, " level {l}");
    }
    if let Some(f) = b.get("flags") {
        let _ = write!(s, " flags {}", value(&[Ty::Other], f));
    }
    s
}

pub(crate) fn stmt(s: &Stmt, family: Family) -> String {
    match s {
        Stmt::Match(m) => match_text(m),
        Stmt::Verdict(v) => verdict_text(v),
        Stmt::Vmap { key, map } => format!(
            "{} vmap {}",
            expr(key),
            map_text(map, &key.tys(), &[Ty::Verdict])
        ),
        Stmt::Mangle { key, value } => format!("{} set {}", expr(key), expr(value)),
        Stmt::SetOp {
            op,
            set,
            elem,
            raw_elem,
        } => {
            let mut inner = expr(elem);
            if let Some(body) = raw_elem.value().get("elem") {
                if let Some(t) = body.get("timeout").and_then(Value::as_u64) {
                    let _ = write!(inner, " timeout {}", duration(t));
                }
                if let Some(c) = body.get("comment").and_then(Value::as_str) {
                    let _ = write!(inner, " comment \"{c}\"");
                }
            }
            format!("{op} @{set} {{ {inner} }}")
        }
        Stmt::Nat(n) => nat_text(n),
        Stmt::Reject { kind, code } => reject_text(kind.as_deref(), code.as_deref(), family),
        Stmt::Notrack => "notrack".to_string(),
        Stmt::Counter(b) => {
            let b = b.value();
            match (b.get("packets"), b.get("bytes")) {
                (Some(p), Some(by)) => format!("counter packets {p} bytes {by}"),
                _ => "counter".to_string(),
            }
        }
        Stmt::Log(b) => log_text(&b.value()),
        Stmt::Assumed { kind, raw } => limit_text(kind, &raw.value()),
        Stmt::NoEffect { kind, raw } => {
            let raw = raw.value();
            match &**kind {
                "flow" => format!(
                    "flow {} {}",
                    raw.get("op").and_then(Value::as_str).unwrap_or("add"),
                    raw.get("flowtable").and_then(Value::as_str).unwrap_or("?")
                ),
                _ => format!("{kind} {}", compact(&raw)),
            }
        }
        Stmt::Xt { kind, name } => format!("xt {kind} \"{name}\""),
        Stmt::Unknown { kind, raw } => {
            let raw = raw.value();
            let body = single_key(&raw).map_or_else(|| compact(&raw), |(_, b)| compact(b));
            format!("{kind} {body}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(10800), "3h");
        assert_eq!(duration(60), "1m");
        assert_eq!(duration(5400), "1h30m");
        assert_eq!(duration(0), "0s");
    }
}
