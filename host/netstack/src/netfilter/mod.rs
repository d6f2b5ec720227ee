//! Netfilter simulation: `iptables-save` parsed into tables and chains, and a
//! packet traversed through one hook with three-valued matching.
//!
//! INTERFACE CONTRACT (the rest of the host codes against exactly this):
//! - `Ruleset::parse(text) -> Result<Ruleset, ParseError>`; ParseError displays `line N: ...`.
//! - `IpsetStore::parse(text) -> Result<IpsetStore, ParseError>` (module `ipset`).
//! - `traverse(&Ruleset, &IpsetStore, &dyn NetnsFacts, Hook, &Packet, iif, oif) -> Vec<Outcome>`.
//!
//! Layout: `lex` tokenizes a line, `parse` reads the dump's tables and chains,
//! `rule` turns a rule's words into conditions (`matches`) and a target
//! (`targets`), `eval` walks a hook and `branches` merges its branches into
//! outcomes. `ipset` reads `ipset save` and answers membership questions.
//!
//! Semantics in short: the simulated packet is the first packet of its
//! connection (conntrack NEW, TCP SYN) or, with `packet.reply`, a reply
//! (ESTABLISHED, SYN+ACK, nat tables skipped). A match that cannot be decided
//! makes the rule *unknown*: both "matched" and "not matched" are explored and
//! the outcomes that depend on the choice are `uncertain`. `-m statistic` is a
//! branch whose both sides really happen (each load-balanced backend).

use std::net::Ipv4Addr;

use crate::packet::Packet;

pub(crate) mod branches;
pub(crate) mod eval;
mod index;
pub mod ipset;
mod lex;
pub(crate) mod matches;
mod parse;
mod rule;
mod targets;
mod text;
mod values;

#[cfg(test)]
mod kube_tests;
#[cfg(test)]
mod match_tests;
#[cfg(test)]
pub(crate) mod test_util;

pub use ipset::{IpsetStore, SetDir};
pub use parse::{Chain, Rule, Table};
pub use text::{RulesText, read_shared};

/// Netfilter hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// netdev ingress: every packet a device receives, before PREROUTING
    /// and conntrack (nftables only: netdev and inet ingress chains bound
    /// to the device).
    Ingress,
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    /// The built-in chain of this hook (`PREROUTING`, ...).
    pub fn chain_name(self) -> &'static str {
        match self {
            Hook::Ingress => "INGRESS",
            Hook::Prerouting => "PREROUTING",
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
            Hook::Postrouting => "POSTROUTING",
        }
    }

    /// The tables this hook consults, in kernel priority order.
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            Hook::Ingress => &[],
            Hook::Prerouting => &["raw", "mangle", "nat"],
            Hook::Input => &["mangle", "filter", "security", "nat"],
            Hook::Forward => &["mangle", "filter", "security"],
            Hook::Output => &["raw", "mangle", "nat", "filter", "security"],
            Hook::Postrouting => &["mangle", "nat"],
        }
    }
}

/// What the traversal needs to know about the netns it runs in.
pub trait NetnsFacts {
    /// True when `ip` is a local address of the netns (addrtype LOCAL).
    fn is_local(&self, ip: Ipv4Addr) -> bool;
    /// The primary IPv4 address of interface `ifname` (REDIRECT), if any.
    fn primary_address(&self, ifname: &str) -> Option<Ipv4Addr>;
    /// The source MASQUERADE picks for a packet leaving by `oif` toward
    /// `toward` (the kernel's `inet_select_addr`: a device without an
    /// address borrows another device's).
    fn masquerade_address(&self, oif: &str, toward: Ipv4Addr) -> Option<Ipv4Addr> {
        let _ = toward;
        self.primary_address(oif)
    }
    /// The IPv4 addresses of `ifname` (addrtype `--limit-iface-*`); None: not known.
    fn interface_addresses(&self, _ifname: &str) -> Option<Vec<Ipv4Addr>> {
        None
    }
    /// A socket listens on `ip` (or any address, unless `exact`) at `port`
    /// (`-m socket`, TPROXY); None: sockets not known.
    fn socket_listening(
        &self,
        _protocol: crate::packet::Protocol,
        _ip: Ipv4Addr,
        _port: u16,
        _exact: bool,
    ) -> Option<bool> {
        None
    }
    /// The route back to `to` from `from` with `mark` (for `-m rpfilter`);
    /// None: routes not known.
    fn reverse_route(&self, _to: Ipv4Addr, _from: Ipv4Addr, _mark: u32) -> Option<ReverseRoute> {
        None
    }
}

/// What `-m rpfilter` learns from the reverse route lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReverseRoute {
    /// The route is unicast (or local, for `--accept-local`).
    pub unicast: bool,
    pub local: bool,
    /// Its output devices (every ECMP next hop).
    pub devs: Vec<String>,
}

/// What conntrack knows about a packet's connection when it enters a hook;
/// None where it is not known. Carry [`Outcome::conn`] of one hook into the
/// next with [`traverse_conn`] so NAT state, the connection mark and the
/// original tuple flow through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnState {
    /// The connection was DNATed (ctstate DNAT).
    pub dnat: Option<bool>,
    /// The connection was SNATed (ctstate SNAT).
    pub snat: Option<bool>,
    /// The connection mark.
    pub ctmark: Option<u32>,
    /// The original-direction tuple.
    pub orig: Option<Packet>,
    /// NOTRACK / CT --notrack applied.
    pub untracked: bool,
    /// Conntrack finds the packet invalid for its connection's state (a
    /// node that saw only the other direction's packets): ctstate INVALID,
    /// and no NAT.
    pub invalid: bool,
}

impl ConnState {
    /// What a traversal of `hook` knows without being told: the first hook
    /// of a new connection (PREROUTING, OUTPUT) knows everything; a later
    /// hook knows no SNAT happened yet (SNAT is in POSTROUTING / INPUT nat)
    /// but not whether an earlier hook DNATed; a reply knows nothing.
    pub fn at(hook: Hook, packet: &Packet) -> ConnState {
        if packet.reply {
            return ConnState::default();
        }
        match hook {
            Hook::Prerouting | Hook::Output => ConnState {
                dnat: Some(false),
                snat: Some(false),
                ctmark: Some(0),
                orig: Some(*packet),
                untracked: false,
                invalid: false,
            },
            _ => ConnState {
                snat: Some(false),
                ..ConnState::default()
            },
        }
    }
}

/// The fate of a packet at a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Reject,
}

/// One rule the packet met (its match succeeded), or a chain policy (index 0).
///
/// iptables rules: `table`/`chain` as in `iptables-save`, `index` the rule's
/// 1-based position, `rule` its `-A ...` line; `family` and `handle` are None.
/// nftables rules: `family` (`ip`, `inet`, ...), `table` and `chain` names,
/// `index` the rule's 1-based position in its chain, `handle` its handle and
/// `rule` the rule as `nft list ruleset` prints it (comment included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    pub table: String,
    pub chain: String,
    pub index: u32,
    pub rule: String,
    /// The nftables family; None for iptables rules.
    pub family: Option<String>,
    /// The nftables rule handle; None for iptables rules and chain policies.
    pub handle: Option<u64>,
}

impl RuleHit {
    /// The rule as a report names it: `iptables filter/FORWARD rule 3
    /// `-A FORWARD -j DROP``, `iptables filter/FORWARD policy DROP`, or for
    /// nftables `nftables inet firewalld chain filter_FORWARD rule handle 42
    /// `ip saddr 10.0.0.0/8 drop``.
    pub fn describe(&self) -> String {
        match &self.family {
            None if self.index == 0 => format!(
                "iptables {}/{} policy {}",
                self.table,
                self.chain,
                self.rule.trim_start_matches("policy ")
            ),
            None => format!(
                "iptables {}/{} rule {} `{}`",
                self.table, self.chain, self.index, self.rule
            ),
            Some(family) => {
                let at = format!("nftables {family} {} chain {}", self.table, self.chain);
                match self.handle {
                    _ if self.index == 0 => format!("{at} {}", self.rule),
                    Some(h) => format!("{at} rule handle {h} `{}`", self.rule),
                    None => format!("{at} rule {} `{}`", self.index, self.rule),
                }
            }
        }
    }
}

/// One outcome of a traversal; several outcomes are branches (statistic, unknown matches).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    pub packet: Packet,
    pub uncertain: bool,
    pub trace: Vec<RuleHit>,
    pub decided_by: Option<RuleHit>,
    pub notes: Vec<String>,
    /// The connection's state after this hook (for the next hook).
    pub conn: ConnState,
}

/// A syntax error in iptables-save or ipset save text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// A parsed iptables-save dump.
#[derive(Debug, Clone, Default)]
pub struct Ruleset {
    tables: Vec<Table>,
}

impl Ruleset {
    /// Parses `iptables-save` output (legacy or nft backend). Unknown match
    /// modules and targets keep the rule (it evaluates as unknown); only
    /// syntax errors fail.
    pub fn parse(text: &str) -> Result<Ruleset, ParseError> {
        Ruleset::parse_text(&RulesText::from(text))
    }

    /// [`Ruleset::parse`] of a dump's text as held (plain or JSON-escaped),
    /// which the rules then share.
    pub fn parse_text(text: &RulesText) -> Result<Ruleset, ParseError> {
        Ok(Ruleset {
            tables: parse::parse_tables(text)?,
        })
    }

    /// The `*table` sections in dump order (a name may repeat when a dump
    /// concatenates two backends; both are consulted).
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    /// The first section named `name`.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name() == name)
    }

    /// A chain of a table (first section of that name).
    pub fn chain(&self, table: &str, chain: &str) -> Option<&Chain> {
        self.table(table)?.chain(chain)
    }

    /// Compiles now the chains nearly every walk enters — the built-in
    /// chains and the chains they jump to (kube-proxy's KUBE-SERVICES, a
    /// CNI's forward chain) — which a loader thread can do while the
    /// diagnosis does other work. Other chains still compile on first use.
    pub fn compile_entry_chains(&self) {
        for table in &self.tables {
            for chain in table.chains.iter().filter(|c| c.policy.is_some()) {
                for rule in chain.rules() {
                    if let targets::Target::Jump(i) | targets::Target::Goto(i) = rule.target
                        && let Some(entered) = table.chains.get(i)
                    {
                        entered.compiled();
                    }
                }
            }
        }
    }

    /// Number of rules in all tables.
    pub fn rule_count(&self) -> usize {
        self.tables
            .iter()
            .flat_map(|t| t.chains())
            .map(|c| c.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

/// Traverse `hook` with `packet`. An empty ruleset accepts everything.
///
/// `iif`/`oif` None means the packet has no such device at this hook (no
/// input device in OUTPUT, no output device in PREROUTING/INPUT).
/// Returns every distinct outcome (at least one, at most 64).
pub fn traverse(
    rules: &Ruleset,
    sets: &IpsetStore,
    facts: &dyn NetnsFacts,
    hook: Hook,
    packet: &Packet,
    iif: Option<&str>,
    oif: Option<&str>,
) -> Vec<Outcome> {
    let conn = ConnState::at(hook, packet);
    eval::traverse(rules, sets, facts, hook, packet, iif, oif, &conn)
}

/// [`traverse`] with what conntrack knows from the hooks before (the
/// previous outcome's [`Outcome::conn`]).
#[allow(clippy::too_many_arguments)]
pub fn traverse_conn(
    rules: &Ruleset,
    sets: &IpsetStore,
    facts: &dyn NetnsFacts,
    hook: Hook,
    packet: &Packet,
    iif: Option<&str>,
    oif: Option<&str>,
    conn: &ConnState,
) -> Vec<Outcome> {
    eval::traverse(rules, sets, facts, hook, packet, iif, oif, conn)
}
