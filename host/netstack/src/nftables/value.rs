//! Typed constants: nft datatypes, the values a key takes, and the element
//! parts (exact value, range, prefix, interface wildcard) sets and matches
//! compare keys against. JSON constants are turned into typed values once,
//! when the ruleset is read, so lookups compare plain values.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

/// An nft datatype, as far as evaluation and printing need to tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    /// `ipv4_addr`, `ipv6_addr`.
    Addr,
    /// `inet_proto` (printed by name).
    Proto,
    /// `inet_service` (printed as a number).
    Service,
    /// `ifname` (quoted; a trailing `*` is a wildcard).
    Ifname,
    /// `mark` (printed as `0x%08x`).
    Mark,
    CtState,
    CtStatus,
    CtDir,
    /// `fib_addrtype`.
    FibType,
    /// `nf_proto` (`meta nfproto`).
    NfProto,
    /// `ether_type` (`meta protocol`).
    EtherType,
    IcmpType,
    TcpFlags,
    PktType,
    Dscp,
    /// `fib ... oif exists|missing`.
    Bool,
    Verdict,
    /// A plain integer.
    Int,
    /// A datatype the simulator does not know: strings stay strings.
    Other,
}

impl Ty {
    /// The datatype named in a set declaration (`"type": "ipv4_addr"`).
    pub fn from_name(name: &str) -> Ty {
        match name {
            "ipv4_addr" | "ipv6_addr" => Ty::Addr,
            "inet_proto" => Ty::Proto,
            "inet_service" => Ty::Service,
            "ifname" | "iface_index" => Ty::Ifname,
            "mark" => Ty::Mark,
            "ct_state" => Ty::CtState,
            "ct_status" => Ty::CtStatus,
            "ct_dir" => Ty::CtDir,
            "fib_addrtype" => Ty::FibType,
            "nf_proto" => Ty::NfProto,
            "ether_type" => Ty::EtherType,
            "icmp_type" => Ty::IcmpType,
            "tcp_flag" => Ty::TcpFlags,
            "pkt_type" => Ty::PktType,
            "dscp" => Ty::Dscp,
            "boolean" => Ty::Bool,
            "verdict" => Ty::Verdict,
            "integer" | "uid" | "gid" | "realm" | "classid" | "cgroupsv2" | "ct_label"
            | "devgroup" | "time" | "day" | "hour" => Ty::Int,
            _ => Ty::Other,
        }
    }

    /// Bitmask types: `op "in"` tests bits, and lists of names are OR-ed.
    pub fn is_bitmask(self) -> bool {
        matches!(self, Ty::CtState | Ty::CtStatus | Ty::TcpFlags)
    }
}

/// One value of a key component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Datum {
    Int(u64),
    Addr(IpAddr),
    Str(Box<str>),
}

impl Datum {
    pub fn int(&self) -> Option<u64> {
        match self {
            Datum::Int(v) => Some(*v),
            _ => None,
        }
    }
}

/// One component of a set element or of a match's right-hand side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Exact(Datum),
    /// Inclusive range of one kind of datum.
    Range(Datum, Datum),
    Prefix(IpNet),
    /// An interface name ending in `*`: matches names starting with this.
    Wild(Box<str>),
}

/// Three-valued comparison result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    Yes,
    No,
    Unknown,
}

impl Tri {
    pub fn from_bool(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }

    pub fn not(self) -> Tri {
        match self {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            Tri::Unknown => Tri::Unknown,
        }
    }

    /// Conjunction: a false component wins over an unknown one.
    pub fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            _ => Tri::Unknown,
        }
    }
}

impl Part {
    /// Whether `d` (None: not known) falls in this part.
    pub fn test(&self, d: Option<&Datum>) -> Tri {
        let Some(d) = d else {
            return Tri::Unknown;
        };
        Tri::from_bool(match self {
            Part::Exact(v) => v == d,
            Part::Range(lo, hi) => same_kind(lo, d) && lo <= d && d <= hi,
            Part::Prefix(net) => matches!(d, Datum::Addr(a) if net.contains(a)),
            Part::Wild(prefix) => matches!(d, Datum::Str(s) if s.starts_with(&**prefix)),
        })
    }

    pub fn exact(&self) -> Option<&Datum> {
        match self {
            Part::Exact(d) => Some(d),
            _ => None,
        }
    }
}

fn same_kind(a: &Datum, b: &Datum) -> bool {
    match (a, b) {
        (Datum::Int(_), Datum::Int(_)) | (Datum::Str(_), Datum::Str(_)) => true,
        (Datum::Addr(x), Datum::Addr(y)) => x.is_ipv4() == y.is_ipv4(),
        _ => false,
    }
}

/// Tests a key (one entry per concatenation component) against an element.
pub(crate) fn test_key(parts: &[Part], key: &[Option<Datum>]) -> Tri {
    if parts.len() != key.len() {
        return Tri::No;
    }
    parts
        .iter()
        .zip(key)
        .fold(Tri::Yes, |acc, (p, k)| acc.and(p.test(k.as_ref())))
}

/// Symbolic names of a datatype's values, as nft prints them.
fn symbols(ty: Ty) -> &'static [(&'static str, u64)] {
    match ty {
        Ty::Proto => &[
            ("icmp", 1),
            ("igmp", 2),
            ("ipip", 4),
            ("tcp", 6),
            ("udp", 17),
            ("ipv6", 41),
            ("gre", 47),
            ("esp", 50),
            ("ah", 51),
            ("ipv6-icmp", 58),
            ("icmpv6", 58),
            ("sctp", 132),
            ("udplite", 136),
            ("dccp", 33),
        ],
        Ty::CtState => &[
            ("invalid", 1),
            ("established", 2),
            ("related", 4),
            ("new", 8),
            ("untracked", 64),
        ],
        Ty::CtStatus => &[
            ("expected", 1),
            ("seen-reply", 2),
            ("assured", 4),
            ("confirmed", 8),
            ("snat", 16),
            ("dnat", 32),
            ("dying", 512),
        ],
        Ty::CtDir => &[("original", 0), ("reply", 1)],
        Ty::FibType => &[
            ("unspec", 0),
            ("unicast", 1),
            ("local", 2),
            ("broadcast", 3),
            ("anycast", 4),
            ("multicast", 5),
            ("blackhole", 6),
            ("unreachable", 7),
            ("prohibit", 8),
            ("throw", 9),
            ("nat", 10),
            ("xresolve", 11),
        ],
        Ty::NfProto => &[("ipv4", 2), ("ipv6", 10)],
        Ty::EtherType => &[
            ("ip", 0x0800),
            ("arp", 0x0806),
            ("ip6", 0x86dd),
            ("vlan", 0x8100),
            ("8021ad", 0x88a8),
        ],
        Ty::IcmpType => &[
            ("echo-reply", 0),
            ("destination-unreachable", 3),
            ("source-quench", 4),
            ("redirect", 5),
            ("echo-request", 8),
            ("router-advertisement", 9),
            ("router-solicitation", 10),
            ("time-exceeded", 11),
            ("parameter-problem", 12),
            ("timestamp-request", 13),
            ("timestamp-reply", 14),
            ("info-request", 15),
            ("info-reply", 16),
            ("address-mask-request", 17),
            ("address-mask-reply", 18),
        ],
        Ty::TcpFlags => &[
            ("fin", 0x01),
            ("syn", 0x02),
            ("rst", 0x04),
            ("psh", 0x08),
            ("ack", 0x10),
            ("urg", 0x20),
            ("ecn", 0x40),
            ("cwr", 0x80),
        ],
        Ty::PktType => &[
            ("host", 0),
            ("broadcast", 1),
            ("multicast", 2),
            ("other", 3),
        ],
        Ty::Dscp => &[
            ("cs0", 0x00),
            ("cs1", 0x08),
            ("cs2", 0x10),
            ("cs3", 0x18),
            ("cs4", 0x20),
            ("cs5", 0x28),
            ("cs6", 0x30),
            ("cs7", 0x38),
            ("df", 0x00),
            ("be", 0x00),
            ("lephb", 0x01),
            ("af11", 0x0a),
            ("af12", 0x0c),
            ("af13", 0x0e),
            ("af21", 0x12),
            ("af22", 0x14),
            ("af23", 0x16),
            ("af31", 0x1a),
            ("af32", 0x1c),
            ("af33", 0x1e),
            ("af41", 0x22),
            ("af42", 0x24),
            ("af43", 0x26),
            ("va", 0x2c),
            ("ef", 0x2e),
        ],
        Ty::Service => &[
            ("ssh", 22),
            ("smtp", 25),
            ("domain", 53),
            ("http", 80),
            ("https", 443),
        ],
        _ => &[],
    }
}

/// The name nft prints for `v` of type `ty`, if it has one.
pub(crate) fn symbol_name(ty: Ty, v: u64) -> Option<&'static str> {
    if ty == Ty::Service {
        return None;
    }
    symbols(ty).iter().find(|(_, n)| *n == v).map(|(s, _)| *s)
}

fn parse_int(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// A scalar constant of type `ty` written as a JSON string.
pub(crate) fn datum_from_str(ty: Ty, s: &str) -> Result<Datum, String> {
    match ty {
        Ty::Addr => s
            .parse::<IpAddr>()
            .map(Datum::Addr)
            .map_err(|_| format!("\"{s}\" is not an IP address")),
        Ty::Ifname | Ty::Other => Ok(Datum::Str(unescape_ifname(s).into())),
        Ty::Verdict => Err(format!("\"{s}\" is not a verdict")),
        _ => {
            if let Some(v) = symbols(ty).iter().find(|(n, _)| *n == s).map(|(_, v)| *v) {
                return Ok(Datum::Int(v));
            }
            // Flag lists may come as one string ("syn|ack").
            if ty.is_bitmask() && (s.contains('|') || s.contains(',')) {
                let mut v = 0;
                for name in s.split(['|', ',']) {
                    v |= datum_from_str(ty, name.trim())?.int().unwrap_or(0);
                }
                return Ok(Datum::Int(v));
            }
            parse_int(s)
                .map(Datum::Int)
                .ok_or_else(|| format!("\"{s}\" is not a value of this type"))
        }
    }
}

/// `\*` in an interface name is a literal star.
fn unescape_ifname(s: &str) -> String {
    s.replace("\\*", "*")
}

/// A trailing unescaped `*` makes an interface name a wildcard.
fn ifname_wildcard(s: &str) -> Option<&str> {
    let prefix = s.strip_suffix('*')?;
    if prefix.ends_with('\\') {
        None
    } else {
        Some(prefix)
    }
}

/// A scalar JSON constant (string, number, bool, flag list) as a datum of `ty`.
pub(crate) fn datum(ty: Ty, v: &Value) -> Result<Datum, String> {
    match v {
        Value::String(s) => datum_from_str(ty, s),
        Value::Number(n) => n
            .as_u64()
            .map(Datum::Int)
            .ok_or_else(|| format!("{n} is not a non-negative integer")),
        Value::Bool(b) => Ok(Datum::Int(u64::from(*b))),
        Value::Array(items) if ty.is_bitmask() || ty == Ty::Int || ty == Ty::Mark => {
            let mut acc = 0;
            for item in items {
                acc |= datum(ty, item)?
                    .int()
                    .ok_or_else(|| "a flag list holds a non-integer".to_string())?;
            }
            Ok(Datum::Int(acc))
        }
        Value::Object(o) if o.len() == 1 => {
            let (op, args) = o.iter().next().ok_or("empty object")?;
            let Some([a, b]) = args.as_array().map(Vec::as_slice) else {
                return Err(format!("unsupported constant {v}"));
            };
            let (a, b) = (
                datum(ty, a)?.int().ok_or("non-integer operand")?,
                datum(ty, b)?.int().ok_or("non-integer operand")?,
            );
            Ok(Datum::Int(match op.as_str() {
                "|" => a | b,
                "&" => a & b,
                "^" => a ^ b,
                "<<" => a.checked_shl(u32::try_from(b).unwrap_or(64)).unwrap_or(0),
                ">>" => a.checked_shr(u32::try_from(b).unwrap_or(64)).unwrap_or(0),
                _ => return Err(format!("unsupported constant {v}")),
            }))
        }
        _ => Err(format!("unsupported constant {v}")),
    }
}

/// One component: a scalar, `prefix`, `range` or (for interface names) a wildcard.
pub(crate) fn part(ty: Ty, v: &Value) -> Result<Part, String> {
    if let Value::String(s) = v
        && ty == Ty::Ifname
        && let Some(prefix) = ifname_wildcard(s)
    {
        return Ok(Part::Wild(unescape_ifname(prefix).into()));
    }
    if let Some(o) = v.as_object()
        && o.len() == 1
    {
        if let Some(p) = o.get("prefix") {
            let addr = p
                .get("addr")
                .and_then(Value::as_str)
                .and_then(|a| a.parse::<IpAddr>().ok())
                .ok_or_else(|| format!("bad prefix {v}"))?;
            let len = p
                .get("len")
                .and_then(Value::as_u64)
                .and_then(|l| u8::try_from(l).ok())
                .ok_or_else(|| format!("bad prefix {v}"))?;
            return IpNet::new(addr, len)
                .map(|n| Part::Prefix(n.trunc()))
                .map_err(|_| format!("bad prefix {v}"));
        }
        if let Some(r) = o.get("range") {
            let Some([lo, hi]) = r.as_array().map(Vec::as_slice) else {
                return Err(format!("bad range {v}"));
            };
            return Ok(Part::Range(datum(ty, lo)?, datum(ty, hi)?));
        }
        if let Some(e) = o.get("elem") {
            let val = e
                .get("val")
                .ok_or_else(|| format!("elem without val: {v}"))?;
            return part(ty, val);
        }
    }
    datum(ty, v).map(Part::Exact)
}

/// A (possibly concatenated) value: one part per type in `tys`.
pub(crate) fn parts(tys: &[Ty], v: &Value) -> Result<Box<[Part]>, String> {
    let v = unwrap_elem(v);
    match v.get("concat").and_then(Value::as_array) {
        Some(items) => {
            if items.len() != tys.len() {
                return Err(format!(
                    "concatenation of {} values where the key has {}",
                    items.len(),
                    tys.len()
                ));
            }
            items.iter().zip(tys).map(|(v, &t)| part(t, v)).collect()
        }
        None if tys.len() == 1 => Ok(Box::new([part(tys[0], v)?])),
        None => Err(format!(
            "a single value where the key has {} components",
            tys.len()
        )),
    }
}

/// The value inside an `{"elem": {"val": …}}` wrapper (or `v` itself).
pub(crate) fn unwrap_elem(v: &Value) -> &Value {
    match v.get("elem").and_then(|e| e.get("val")) {
        Some(inner) if v.as_object().is_some_and(|o| o.len() == 1) => inner,
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn constants_by_type() {
        assert_eq!(datum(Ty::Proto, &json!("tcp")), Ok(Datum::Int(6)));
        assert_eq!(datum(Ty::Service, &json!(80)), Ok(Datum::Int(80)));
        assert_eq!(datum(Ty::Mark, &json!("0x4000")), Ok(Datum::Int(0x4000)));
        assert_eq!(
            datum(Ty::CtState, &json!(["established", "related"])),
            Ok(Datum::Int(6))
        );
        assert_eq!(datum(Ty::TcpFlags, &json!("syn|ack")), Ok(Datum::Int(0x12)));
        assert_eq!(datum(Ty::Bool, &json!(false)), Ok(Datum::Int(0)));
        assert!(datum(Ty::Addr, &json!("not-an-ip")).is_err());
        assert!(datum(Ty::Proto, &json!("nosuch")).is_err());
        assert_eq!(datum(Ty::Mark, &json!({"|": [16, 1]})), Ok(Datum::Int(17)));
    }

    #[test]
    fn parts_prefixes_ranges_wildcards() {
        let p = part(Ty::Addr, &json!({"prefix": {"addr": "10.0.0.0", "len": 8}})).expect("prefix");
        assert_eq!(
            p.test(Some(&Datum::Addr("10.9.9.9".parse().expect("ip")))),
            Tri::Yes
        );
        assert_eq!(
            p.test(Some(&Datum::Addr("11.0.0.1".parse().expect("ip")))),
            Tri::No
        );
        let r = part(Ty::Service, &json!({"range": [80, 90]})).expect("range");
        assert_eq!(r.test(Some(&Datum::Int(85))), Tri::Yes);
        assert_eq!(r.test(Some(&Datum::Int(91))), Tri::No);
        assert_eq!(r.test(None), Tri::Unknown);
        let w = part(Ty::Ifname, &json!("cali*")).expect("wildcard");
        assert_eq!(w.test(Some(&Datum::Str("cali123".into()))), Tri::Yes);
        assert_eq!(w.test(Some(&Datum::Str("eth0".into()))), Tri::No);
        let lit = part(Ty::Ifname, &json!("a\\*")).expect("escaped star");
        assert_eq!(lit, Part::Exact(Datum::Str("a*".into())));
        assert!(
            part(
                Ty::Addr,
                &json!({"prefix": {"addr": "10.0.0.0", "len": 99}})
            )
            .is_err()
        );
    }

    #[test]
    fn concatenations() {
        let tys = [Ty::Addr, Ty::Proto, Ty::Service];
        let ps = parts(&tys, &json!({"concat": ["10.0.0.1", "tcp", 80]})).expect("concat");
        let key = [
            Some(Datum::Addr("10.0.0.1".parse().expect("ip"))),
            Some(Datum::Int(6)),
            Some(Datum::Int(80)),
        ];
        assert_eq!(test_key(&ps, &key), Tri::Yes);
        let partial = [key[0].clone(), Some(Datum::Int(17)), None];
        assert_eq!(test_key(&ps, &partial), Tri::No, "a known mismatch decides");
        let partial = [key[0].clone(), key[1].clone(), None];
        assert_eq!(test_key(&ps, &partial), Tri::Unknown);
        assert!(parts(&tys, &json!({"concat": ["10.0.0.1", "tcp"]})).is_err());
        let wrapped = json!({"elem": {"val": {"concat": ["10.0.0.1", "tcp", 80]}, "comment": "x"}});
        assert_eq!(parts(&tys, &wrapped).expect("elem"), ps);
    }
}
