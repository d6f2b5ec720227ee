//! Set and map elements (named or anonymous) and three-valued lookups.

use std::collections::HashMap;

use serde_json::Value;

use super::value::{Datum, Part, Tri, Ty, parts, test_key, unwrap_elem};
use super::verdict::VerdictStmt;

/// What a map element maps to.
#[derive(Debug, Clone)]
pub(crate) enum ElemData {
    Verdict(VerdictStmt),
    /// A (possibly concatenated) value, e.g. a NAT address and port.
    Value(Box<[Part]>),
}

/// One element.
#[derive(Debug, Clone)]
pub(crate) struct Elem {
    pub key: Box<[Part]>,
    pub data: Option<ElemData>,
}

/// The elements of a set or map, indexed for exact lookups.
#[derive(Debug, Clone, Default)]
pub(crate) struct Elems {
    pub elems: Vec<Elem>,
    /// Elements whose every component is an exact value.
    exact: HashMap<Box<[Datum]>, usize>,
    /// Elements with a range, prefix or wildcard component.
    others: Vec<usize>,
    /// Why some element could not be read (lookups are then unknown).
    pub broken: Option<String>,
}

/// The result of a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    Found(usize),
    NotFound,
    /// The key is partly unknown: any of these elements, or none, may match.
    Maybe(Vec<usize>),
    /// The set cannot be evaluated.
    Unknown(String),
}

/// What map elements hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DataKind {
    None,
    Verdict,
    Values(Vec<Ty>),
}

impl Elems {
    pub fn push(&mut self, e: Elem) {
        let i = self.elems.len();
        let exact: Option<Box<[Datum]>> = e.key.iter().map(|p| p.exact().cloned()).collect();
        match exact {
            Some(k) => {
                self.exact.entry(k).or_insert(i);
            }
            None => self.others.push(i),
        }
        self.elems.push(e);
    }

    /// Reads JSON elements: keys of `key` types, map data of `data`.
    pub fn extend_json(&mut self, items: &[Value], key: &[Ty], data: &DataKind) {
        for item in items {
            match read_elem(item, key, data) {
                Ok(e) => self.push(e),
                Err(why) => {
                    if self.broken.is_none() {
                        self.broken = Some(format!("element {item}: {why}"));
                    }
                }
            }
        }
    }

    pub fn from_json(items: &[Value], key: &[Ty], data: &DataKind) -> Elems {
        let mut e = Elems::default();
        e.extend_json(items, key, data);
        e
    }

    pub fn lookup(&self, key: &[Option<Datum>]) -> Lookup {
        if let Some(why) = &self.broken {
            return Lookup::Unknown(why.clone());
        }
        let full: Option<Box<[Datum]>> = key.iter().cloned().collect();
        if let Some(k) = &full {
            if let Some(&i) = self.exact.get(k) {
                return Lookup::Found(i);
            }
            for &i in &self.others {
                if test_key(&self.elems[i].key, key) == Tri::Yes {
                    return Lookup::Found(i);
                }
            }
            return Lookup::NotFound;
        }
        let mut maybe = Vec::new();
        for (i, e) in self.elems.iter().enumerate() {
            match test_key(&e.key, key) {
                Tri::Yes => return Lookup::Found(i),
                Tri::Unknown => maybe.push(i),
                Tri::No => {}
            }
        }
        if maybe.is_empty() {
            Lookup::NotFound
        } else {
            Lookup::Maybe(maybe)
        }
    }

    pub fn len(&self) -> usize {
        self.elems.len()
    }
}

fn read_elem(item: &Value, key: &[Ty], data: &DataKind) -> Result<Elem, String> {
    let pair = || match item.as_array().map(Vec::as_slice) {
        Some([k, d]) => Ok((k, d)),
        _ => Err("a map element is not a [key, value] pair".to_string()),
    };
    match data {
        DataKind::None => Ok(Elem {
            key: parts(key, item)?,
            data: None,
        }),
        DataKind::Verdict => {
            let (k, d) = pair()?;
            let v = VerdictStmt::from_json(unwrap_elem(d))
                .ok_or_else(|| format!("{d} is not a verdict"))?;
            Ok(Elem {
                key: parts(key, k)?,
                data: Some(ElemData::Verdict(v)),
            })
        }
        DataKind::Values(tys) => {
            let (k, d) = pair()?;
            Ok(Elem {
                key: parts(key, k)?,
                data: Some(ElemData::Value(parts(tys, d)?)),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn addr(s: &str) -> Option<Datum> {
        Some(Datum::Addr(s.parse().expect("ip")))
    }

    #[test]
    fn exact_interval_and_partial_lookups() {
        let items = [
            json!({"prefix": {"addr": "10.0.0.0", "len": 8}}),
            json!("172.16.0.1"),
            json!({"range": ["192.168.1.1", "192.168.1.9"]}),
        ];
        let s = Elems::from_json(&items, &[Ty::Addr], &DataKind::None);
        assert_eq!(s.lookup(&[addr("172.16.0.1")]), Lookup::Found(1));
        assert_eq!(s.lookup(&[addr("10.3.2.1")]), Lookup::Found(0));
        assert_eq!(s.lookup(&[addr("192.168.1.5")]), Lookup::Found(2));
        assert_eq!(s.lookup(&[addr("192.168.1.10")]), Lookup::NotFound);
        assert_eq!(s.lookup(&[None]), Lookup::Maybe(vec![0, 1, 2]));
    }

    #[test]
    fn verdict_maps_and_broken_elements() {
        let tys = [Ty::Addr, Ty::Proto, Ty::Service];
        let items = [json!([{"concat": ["10.0.0.1", "tcp", 80]}, {"goto": {"target": "svc"}}])];
        let m = Elems::from_json(&items, &tys, &DataKind::Verdict);
        let key = [addr("10.0.0.1"), Some(Datum::Int(6)), Some(Datum::Int(80))];
        assert_eq!(m.lookup(&key), Lookup::Found(0));
        assert!(matches!(
            m.elems[0].data,
            Some(ElemData::Verdict(VerdictStmt::Goto(ref c))) if &**c == "svc"
        ));
        let icmp = [addr("10.0.0.1"), Some(Datum::Int(1)), None];
        assert_eq!(m.lookup(&icmp), Lookup::NotFound, "protocol rules it out");
        let bad = Elems::from_json(&[json!("nope")], &[Ty::Addr], &DataKind::None);
        assert!(matches!(bad.lookup(&[addr("1.1.1.1")]), Lookup::Unknown(_)));
    }
}
