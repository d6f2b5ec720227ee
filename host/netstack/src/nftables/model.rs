//! The ruleset model: tables, chains (base and regular), rules, named sets and maps.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::expr::Stmt;
use super::family::Family;
use super::set::{DataKind, Elems};
use super::value::Ty;

/// A base chain's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainType {
    Filter,
    /// Consulted only for the first packet of a connection, inside the NAT core.
    Nat,
    /// Like filter; output packets are routed again when their mark changes.
    Route,
    Other(String),
}

/// A base chain's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Accept,
    Drop,
}

/// What makes a chain a base chain.
#[derive(Debug, Clone)]
pub struct BaseChain {
    pub kind: ChainType,
    /// `prerouting`, `input`, `forward`, `output`, `postrouting`, `ingress`, ...
    pub hook: String,
    pub prio: i32,
    pub policy: Policy,
    /// Devices of netdev (and inet ingress) chains.
    pub devices: Vec<String>,
}

/// One rule.
#[derive(Debug)]
pub struct NftRule {
    pub handle: u64,
    /// 1-based position in its chain.
    pub index: u32,
    pub comment: Option<String>,
    pub(crate) family: Family,
    pub(crate) stmts: Vec<Stmt>,
    text: OnceLock<String>,
}

impl NftRule {
    pub(crate) fn new(
        family: Family,
        handle: u64,
        index: u32,
        comment: Option<String>,
        stmts: Vec<Stmt>,
    ) -> NftRule {
        NftRule {
            handle,
            index,
            comment,
            family,
            stmts,
            text: OnceLock::new(),
        }
    }

    /// The rule as `nft list ruleset` prints it (counters as read).
    pub fn text(&self) -> &str {
        self.text
            .get_or_init(|| super::render::rule(self.family, &self.stmts, self.comment.as_deref()))
    }

    /// Number of statements (matches included).
    pub fn len(&self) -> usize {
        self.stmts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stmts.is_empty()
    }
}

/// A chain.
#[derive(Debug)]
pub struct NftChain {
    pub name: String,
    pub handle: u64,
    pub comment: Option<String>,
    pub base: Option<BaseChain>,
    pub(crate) rules: Vec<NftRule>,
}

impl NftChain {
    pub fn rules(&self) -> &[NftRule] {
        &self.rules
    }
}

/// A named set or map.
#[derive(Debug)]
pub struct NftSet {
    pub name: String,
    pub handle: u64,
    pub is_map: bool,
    pub flags: Vec<String>,
    /// Default element timeout in seconds.
    pub timeout: Option<u64>,
    pub comment: Option<String>,
    pub(crate) key: Vec<Ty>,
    pub(crate) data: DataKind,
    pub(crate) elems: Elems,
}

impl NftSet {
    pub fn len(&self) -> usize {
        self.elems.len()
    }

    pub fn is_empty(&self) -> bool {
        self.elems.len() == 0
    }
}

/// A table.
#[derive(Debug)]
pub struct NftTable {
    pub family: Family,
    pub name: String,
    pub handle: u64,
    /// `dormant`, `owner`, `persist`.
    pub flags: Vec<String>,
    pub comment: Option<String>,
    pub(crate) chains: Vec<NftChain>,
    chain_ix: HashMap<String, usize>,
    pub(crate) sets: Vec<NftSet>,
    set_ix: HashMap<String, usize>,
}

impl NftTable {
    pub(crate) fn new(
        family: Family,
        name: String,
        handle: u64,
        flags: Vec<String>,
        comment: Option<String>,
    ) -> NftTable {
        NftTable {
            family,
            name,
            handle,
            flags,
            comment,
            chains: Vec::new(),
            chain_ix: HashMap::new(),
            sets: Vec::new(),
            set_ix: HashMap::new(),
        }
    }

    pub fn chains(&self) -> &[NftChain] {
        &self.chains
    }

    pub fn chain(&self, name: &str) -> Option<&NftChain> {
        self.chain_index(name).map(|i| &self.chains[i])
    }

    pub(crate) fn chain_index(&self, name: &str) -> Option<usize> {
        self.chain_ix.get(name).copied()
    }

    pub fn sets(&self) -> &[NftSet] {
        &self.sets
    }

    pub fn set(&self, name: &str) -> Option<&NftSet> {
        self.set_index(name).map(|i| &self.sets[i])
    }

    pub(crate) fn set_index(&self, name: &str) -> Option<usize> {
        self.set_ix.get(name).copied()
    }

    /// Adds a chain; a second declaration of the same name is merged into the first.
    pub(crate) fn add_chain(&mut self, chain: NftChain) -> usize {
        if let Some(&i) = self.chain_ix.get(&chain.name) {
            if self.chains[i].base.is_none() {
                self.chains[i].base = chain.base;
            }
            return i;
        }
        let i = self.chains.len();
        self.chain_ix.insert(chain.name.clone(), i);
        self.chains.push(chain);
        i
    }

    pub(crate) fn add_set(&mut self, set: NftSet) -> usize {
        if let Some(&i) = self.set_ix.get(&set.name) {
            return i;
        }
        let i = self.sets.len();
        self.set_ix.insert(set.name.clone(), i);
        self.sets.push(set);
        i
    }

    /// True when the table is dormant (its chains see no packets).
    pub fn dormant(&self) -> bool {
        self.flags.iter().any(|f| f == "dormant")
    }

    /// Some rule may change what a later base chain sees (a mark, the ct
    /// mark, an address): the order among base chains of equal priority
    /// can then matter.
    pub fn mutates(&self) -> bool {
        self.chains
            .iter()
            .flat_map(|c| &c.rules)
            .flat_map(|r| &r.stmts)
            .any(|s| matches!(s, Stmt::Mangle { .. } | Stmt::Nat(_) | Stmt::Notrack))
    }

    /// Whether any rule holds an `xt` (iptables-nft compat) expression.
    pub fn has_xt(&self) -> bool {
        self.chains
            .iter()
            .flat_map(|c| &c.rules)
            .flat_map(|r| &r.stmts)
            .any(|s| matches!(s, Stmt::Xt { .. }))
    }
}

/// A parsed `nft -j list ruleset`.
#[derive(Debug, Default)]
pub struct NftRuleset {
    /// nft's version from `metainfo`.
    pub version: Option<String>,
    pub(crate) tables: Vec<NftTable>,
}

impl NftRuleset {
    pub fn tables(&self) -> &[NftTable] {
        &self.tables
    }

    /// Gives the ingress chains the JSON left without a device theirs, from
    /// `nft list chains` (`type filter hook ingress device "eth0" …` or
    /// `devices = { eth0, eth1 }`).
    pub fn bind_devices(&mut self, chains_text: &str) {
        let mut table: Option<(Family, String)> = None;
        let mut chain: Option<String> = None;
        for line in chains_text.lines().map(str::trim) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[..] {
                ["table", family, name, "{"] => {
                    table = Family::parse(family).map(|f| (f, name.to_string()));
                    chain = None;
                }
                ["chain", name, "{"] => chain = Some(name.to_string()),
                _ if line.contains(" hook ingress ") || line.contains(" hook egress ") => {
                    let (Some((family, tname)), Some(cname)) = (&table, &chain) else {
                        continue;
                    };
                    let devices = header_devices(line);
                    let Some(t) = self
                        .tables
                        .iter_mut()
                        .find(|t| t.family == *family && t.name == *tname)
                    else {
                        continue;
                    };
                    let Some(i) = t.chain_index(cname) else {
                        continue;
                    };
                    if let Some(base) = t.chains[i].base.as_mut()
                        && base.devices.is_empty()
                    {
                        base.devices = devices;
                    }
                }
                _ => {}
            }
        }
    }

    /// A table by family and name (`ip kube-proxy`).
    pub fn table(&self, family: Family, name: &str) -> Option<&NftTable> {
        self.tables
            .iter()
            .find(|t| t.family == family && t.name == name)
    }

    pub fn rule_count(&self) -> usize {
        self.tables
            .iter()
            .flat_map(|t| &t.chains)
            .map(|c| c.rules.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

/// The devices a chain header names: `device "eth0"` or
/// `devices = { "eth0", eth1 }`.
fn header_devices(line: &str) -> Vec<String> {
    let unquote = |s: &str| s.trim().trim_matches('"').to_string();
    if let Some(rest) = line.split_once("devices = {").map(|(_, r)| r) {
        let body = rest.split_once('}').map_or(rest, |(b, _)| b);
        return body
            .split(',')
            .map(unquote)
            .filter(|d| !d.is_empty())
            .collect();
    }
    line.split_once("device ")
        .and_then(|(_, r)| r.split_whitespace().next())
        .map(|d| vec![unquote(d)])
        .unwrap_or_default()
}
