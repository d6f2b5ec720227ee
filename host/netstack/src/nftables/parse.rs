//! Reading `nft -j list ruleset` in one streaming pass.
//!
//! serde_json drives the read; each object of the `nftables` array is added
//! to the model as soon as it is read, so an error carries serde_json's line
//! and column and the path of the object being read (`nftables[37].rule`).
//! nft lists a table before its chains and sets and a chain before its rules
//! (1.0.x lists sets before chains, newer versions after; both work).

use std::cell::RefCell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::expr::{Expr, Stmt};
use super::family::Family;
use super::model::{BaseChain, ChainType, NftChain, NftRule, NftRuleset, NftSet, NftTable, Policy};
use super::set::{DataKind, Elems};
use super::value::Ty;

/// Malformed or truncated `nft -j` output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} column {column}: {path}: {message}")]
pub struct NftParseError {
    pub line: usize,
    pub column: usize,
    /// The object being read, e.g. `nftables[37].rule`.
    pub path: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Prio {
    Num(i64),
    Text(String),
}

#[derive(Deserialize)]
struct RawMeta {
    version: Option<String>,
}

#[derive(Deserialize)]
struct RawTable {
    family: String,
    name: String,
    #[serde(default)]
    handle: u64,
    flags: Option<OneOrMany>,
    comment: Option<String>,
}

#[derive(Deserialize)]
struct RawChain {
    family: String,
    table: String,
    name: String,
    #[serde(default)]
    handle: u64,
    comment: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    hook: Option<String>,
    prio: Option<Prio>,
    policy: Option<String>,
    dev: Option<OneOrMany>,
}

#[derive(Deserialize)]
struct RawRule {
    family: String,
    table: String,
    chain: String,
    #[serde(default)]
    handle: u64,
    comment: Option<String>,
    #[serde(default)]
    expr: Vec<Value>,
}

#[derive(Deserialize)]
struct RawSet {
    family: String,
    table: String,
    name: String,
    #[serde(default)]
    handle: u64,
    #[serde(rename = "type")]
    key: Option<Value>,
    map: Option<Value>,
    flags: Option<OneOrMany>,
    timeout: Option<u64>,
    comment: Option<String>,
    elem: Option<Value>,
}

#[derive(Deserialize)]
struct RawElement {
    family: String,
    table: String,
    name: String,
    elem: Option<Value>,
}

/// A priority as JSON gives it: an integer, or (from some writers) a name
/// with an offset such as `dstnat - 10`.
fn priority(family: Family, p: &Prio) -> Result<i32, String> {
    let s = match p {
        Prio::Num(n) => return i32::try_from(*n).map_err(|_| format!("priority {n} out of range")),
        Prio::Text(s) => s.trim(),
    };
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let (name, rest) = match s.find(['+', '-']) {
        Some(i) => (s[..i].trim(), Some(&s[i..])),
        None => (s, None),
    };
    let base = family
        .named_priority(name)
        .ok_or_else(|| format!("unknown priority \"{s}\" for family {family}"))?;
    let offset = match rest {
        None => 0,
        Some(r) => {
            let (sign, num) = r.split_at(1);
            let n: i32 = num
                .trim()
                .parse()
                .map_err(|_| format!("bad priority offset in \"{s}\""))?;
            if sign == "-" {
                n.checked_neg()
            } else {
                Some(n)
            }
            .ok_or_else(|| format!("bad priority offset in \"{s}\""))?
        }
    };
    base.checked_add(offset)
        .ok_or_else(|| format!("priority \"{s}\" out of range"))
}

/// Key or data types of a set: `"ipv4_addr"`, `["ipv4_addr", "inet_service"]`,
/// `"ipv4_addr . inet_service"` or `{"typeof": expr}`.
fn types(v: &Value) -> Vec<Ty> {
    match v {
        Value::String(s) => s.split(" . ").map(|t| Ty::from_name(t.trim())).collect(),
        Value::Array(items) => items
            .iter()
            .map(|t| t.as_str().map_or(Ty::Other, Ty::from_name))
            .collect(),
        Value::Object(o) => match o.get("typeof") {
            Some(e) => Expr::from_json(e, Ty::Other).tys(),
            None => vec![Ty::Other],
        },
        _ => vec![Ty::Other],
    }
}

fn family(s: &str) -> Result<Family, String> {
    Family::parse(s).ok_or_else(|| format!("unknown family \"{s}\""))
}

fn elem_list(v: Option<Value>) -> Vec<Value> {
    match v {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other],
    }
}

#[derive(Default)]
struct Builder {
    ruleset: NftRuleset,
}

impl Builder {
    fn table_mut(&mut self, fam: &str, name: &str) -> Result<&mut NftTable, String> {
        let f = family(fam)?;
        self.ruleset
            .tables
            .iter_mut()
            .find(|t| t.family == f && t.name == name)
            .ok_or_else(|| format!("no table {fam} {name} listed before this object"))
    }

    fn table(&mut self, t: RawTable) -> Result<(), String> {
        let f = family(&t.family)?;
        if self.ruleset.table(f, &t.name).is_some() {
            return Ok(());
        }
        self.ruleset.tables.push(NftTable::new(
            f,
            t.name,
            t.handle,
            t.flags.map(OneOrMany::into_vec).unwrap_or_default(),
            t.comment,
        ));
        Ok(())
    }

    fn chain(&mut self, c: RawChain) -> Result<(), String> {
        let f = family(&c.family)?;
        let base = match (&c.hook, &c.kind) {
            (Some(hook), kind) => {
                let prio = match &c.prio {
                    Some(p) => priority(f, p)?,
                    None => 0,
                };
                let policy = match c.policy.as_deref() {
                    None | Some("accept") => Policy::Accept,
                    Some("drop") => Policy::Drop,
                    Some(p) => return Err(format!("unknown chain policy \"{p}\"")),
                };
                Some(BaseChain {
                    kind: match kind.as_deref() {
                        None | Some("filter") => ChainType::Filter,
                        Some("nat") => ChainType::Nat,
                        Some("route") => ChainType::Route,
                        Some(other) => ChainType::Other(other.to_string()),
                    },
                    hook: hook.clone(),
                    prio,
                    policy,
                    devices: c.dev.map(OneOrMany::into_vec).unwrap_or_default(),
                })
            }
            (None, _) => None,
        };
        let table = self.table_mut(&c.family, &c.table)?;
        table.add_chain(NftChain {
            name: c.name,
            handle: c.handle,
            comment: c.comment,
            base,
            rules: Vec::new(),
        });
        Ok(())
    }

    fn rule(&mut self, r: RawRule) -> Result<(), String> {
        let f = family(&r.family)?;
        let table = self.table_mut(&r.family, &r.table)?;
        let ci = table.chain_index(&r.chain).ok_or_else(|| {
            format!(
                "no chain {} in table {} {} listed before this rule",
                r.chain, r.family, r.table
            )
        })?;
        let chain = &mut table.chains[ci];
        let index = u32::try_from(chain.rules.len() + 1).unwrap_or(u32::MAX);
        let stmts = r.expr.iter().map(Stmt::from_json).collect();
        chain
            .rules
            .push(NftRule::new(f, r.handle, index, r.comment, stmts));
        Ok(())
    }

    fn set(&mut self, s: RawSet, is_map: bool) -> Result<(), String> {
        let key = s.key.as_ref().map(types).unwrap_or_else(|| vec![Ty::Other]);
        let data = match &s.map {
            None => DataKind::None,
            Some(Value::String(v)) if v == "verdict" => DataKind::Verdict,
            Some(v) => DataKind::Values(types(v)),
        };
        let elems = Elems::from_json(&elem_list(s.elem), &key, &data);
        let table = self.table_mut(&s.family, &s.table)?;
        table.add_set(NftSet {
            name: s.name,
            handle: s.handle,
            is_map: is_map || s.map.is_some(),
            flags: s.flags.map(OneOrMany::into_vec).unwrap_or_default(),
            timeout: s.timeout,
            comment: s.comment,
            key,
            data,
            elems,
        });
        Ok(())
    }

    fn element(&mut self, e: RawElement) -> Result<(), String> {
        let table = self.table_mut(&e.family, &e.table)?;
        let i = table.set_index(&e.name).ok_or_else(|| {
            format!(
                "no set {} in table {} {} listed before these elements",
                e.name, e.family, e.table
            )
        })?;
        let set = &mut table.sets[i];
        set.elems
            .extend_json(&elem_list(e.elem), &set.key, &set.data);
        Ok(())
    }
}

/// Shared by the seeds: the model so far and where the reader is.
struct Ctx {
    builder: RefCell<Builder>,
    path: RefCell<String>,
    saw_array: RefCell<bool>,
}

struct Top<'a>(&'a Ctx);

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object {\"nftables\": [...]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "nftables" {
                *self.0.path.borrow_mut() = "nftables".to_string();
                map.next_value_seed(Objects(self.0))?;
                *self.0.saw_array.borrow_mut() = true;
                *self.0.path.borrow_mut() = "nftables".to_string();
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct Objects<'a>(&'a Ctx);

impl<'de> DeserializeSeed<'de> for Objects<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Objects<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of nftables objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            *self.0.path.borrow_mut() = format!("nftables[{i}]");
            if seq.next_element_seed(Object(self.0))?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
}

struct Object<'a>(&'a Ctx);

impl<'de> DeserializeSeed<'de> for Object<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Object<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an nftables object such as {\"rule\": {...}}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            {
                let mut path = self.0.path.borrow_mut();
                let base = path.split('.').next().unwrap_or_default().to_string();
                *path = format!("{base}.{key}");
            }
            let added = match key.as_str() {
                "metainfo" => {
                    let m: RawMeta = map.next_value()?;
                    self.0.builder.borrow_mut().ruleset.version = m.version;
                    Ok(())
                }
                "table" => {
                    let t = map.next_value()?;
                    self.0.builder.borrow_mut().table(t)
                }
                "chain" => {
                    let c = map.next_value()?;
                    self.0.builder.borrow_mut().chain(c)
                }
                "rule" => {
                    let r = map.next_value()?;
                    self.0.builder.borrow_mut().rule(r)
                }
                "set" | "map" => {
                    let s = map.next_value()?;
                    self.0.builder.borrow_mut().set(s, key == "map")
                }
                "element" => {
                    let e = map.next_value()?;
                    self.0.builder.borrow_mut().element(e)
                }
                // Flowtables, stateful objects (counter, quota, ct helper, ...)
                // do not decide a packet's fate here.
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    Ok(())
                }
            };
            added.map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

/// serde_json's message without its trailing position.
fn bare_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_string()
}

/// Parses `nft -j list ruleset` output.
pub(crate) fn parse(text: &str) -> Result<NftRuleset, NftParseError> {
    let ctx = Ctx {
        builder: RefCell::new(Builder::default()),
        path: RefCell::new("(top)".to_string()),
        saw_array: RefCell::new(false),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let read = Top(&ctx).deserialize(&mut de).and_then(|()| de.end());
    if let Err(e) = read {
        return Err(NftParseError {
            line: e.line(),
            column: e.column(),
            path: ctx.path.borrow().clone(),
            message: bare_message(&e),
        });
    }
    if !*ctx.saw_array.borrow() {
        return Err(NftParseError {
            line: 1,
            column: 1,
            path: "(top)".to_string(),
            message: "no \"nftables\" array".to_string(),
        });
    }
    Ok(ctx.builder.into_inner().ruleset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_by_name_and_offset() {
        let p = |s: &str| priority(Family::Inet, &Prio::Text(s.to_string()));
        assert_eq!(p("dstnat - 10"), Ok(-110));
        assert_eq!(p("filter + 10"), Ok(10));
        assert_eq!(p("srcnat"), Ok(100));
        assert_eq!(p("raw"), Ok(-300));
        assert_eq!(p("mangle"), Ok(-150));
        assert_eq!(p("security"), Ok(50));
        assert_eq!(p("-110"), Ok(-110));
        assert!(p("bogus").is_err());
        assert_eq!(
            priority(Family::Bridge, &Prio::Text("filter".into())),
            Ok(-200)
        );
        assert_eq!(priority(Family::Ip, &Prio::Num(-90)), Ok(-90));
    }

    /// Seen reading the parser while fuzzing it, and reproduced with the
    /// `nft` fuzz target (`fuzz/`): an offset past `i32` overflowed (a
    /// panic with overflow checks, a wrong priority without).
    #[test]
    fn a_priority_out_of_range_is_an_error() {
        let p = |s: &str| priority(Family::Inet, &Prio::Text(s.to_string()));
        assert!(p("srcnat + 2147483647").is_err());
        assert!(p("dstnat - 2147483647").is_err());
        assert!(p("filter - -2147483648").is_err());
        assert_eq!(p("filter + 2147483647"), Ok(i32::MAX));
        assert!(priority(Family::Ip, &Prio::Num(1 << 40)).is_err());
    }
}
