//! The walk of one hook: its stages (nft base chains and iptables tables) in
//! the kernel's order, each rule's statements in turn, with every branch
//! (numgen values, unknown matches, candidates of a partly known key)
//! explored as its own state. Finished states become outcomes through the
//! iptables evaluator's branch tree, so certainty is computed the same way.

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr};

use rustc_hash::FxHasher;

use super::expr::{Expr, MapRef, Match, Nat, NatAddr, NatKind, NatPort, Op, Rhs, Stmt};
use super::model::{NftChain, NftRule, NftTable, Policy};
use super::set::{ElemData, Elems, Lookup};
use super::value::{Datum, Part, Tri, test_key};
use super::verdict::VerdictStmt;
use crate::netfilter::branches::{BranchKind, Leaf, Tree};
use crate::netfilter::matches::{
    CT_ESTABLISHED, CT_INVALID, CT_NEW, CT_RELATED, CT_UNTRACKED, Flow,
};
use crate::netfilter::{Hook, IpsetStore, NetnsFacts, Outcome, RuleHit, Table, Verdict};
use crate::packet::{Packet, Protocol};

/// Deepest jump nesting: the kernel refuses deeper rulesets (NFT_JUMP_STACK_SIZE).
const MAX_JUMP_DEPTH: usize = 16;
/// Chains one state may enter in one base chain (guards goto loops a dump may describe).
const MAX_CHAIN_ENTRIES: u32 = 10_000;
/// Branch points explored in one walk before only the last alternative is followed.
const MAX_BRANCHES: usize = 512;
/// Distinct outcomes returned.
const MAX_OUTCOMES: usize = 64;
/// Most notes one outcome carries.
const MAX_NOTES: usize = 64;
/// Most elements a partly unknown key is branched over.
const MAX_CANDIDATES: usize = 16;
/// Rules one walk visits, over all its branches, before the branches still
/// running are dropped: chains that loop (which the kernel refuses to
/// load) would otherwise take seconds or more. At least this many, and
/// [`STEPS_PER_RULE`] per rule of the hook's nft tables.
const MIN_STEPS: usize = 100_000;
const STEPS_PER_RULE: usize = 16;
/// Rules one outcome's trace holds; each branch copies its trace.
const MAX_TRACE: usize = 256;

/// What one stage of a hook is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StageKind<'r> {
    Nft {
        table: &'r NftTable,
        chain: usize,
    },
    Ipt {
        table: &'r Table,
        sets: &'r IpsetStore,
    },
}

/// One base chain (or iptables table) of the hook.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stage<'r> {
    pub kind: StageKind<'r>,
    /// A nat chain: consulted for a connection's first packet only, until
    /// one nat chain binds the connection.
    pub nat: bool,
    /// Runs before conntrack (priority below -200 at prerouting/output):
    /// the packet has no conntrack entry yet.
    pub before_ct: bool,
}

/// A trace entry while walking.
#[derive(Debug, Clone)]
enum Hit<'r> {
    Rule {
        table: &'r NftTable,
        chain: &'r NftChain,
        rule: &'r NftRule,
    },
    Policy {
        table: &'r NftTable,
        chain: &'r NftChain,
        verdict: Verdict,
    },
    Ipt(Box<RuleHit>),
}

impl Hit<'_> {
    fn to_rule_hit(&self) -> RuleHit {
        match self {
            Hit::Rule { table, chain, rule } => RuleHit {
                table: table.name.clone(),
                chain: chain.name.clone(),
                index: rule.index,
                rule: rule.text().to_string(),
                family: Some(table.family.name().to_string()),
                handle: Some(rule.handle),
            },
            Hit::Policy {
                table,
                chain,
                verdict,
            } => RuleHit {
                table: table.name.clone(),
                chain: chain.name.clone(),
                index: 0,
                rule: format!(
                    "policy {}",
                    match verdict {
                        Verdict::Accept => "accept",
                        Verdict::Drop => "drop",
                        Verdict::Reject => "reject",
                    }
                ),
                family: Some(table.family.name().to_string()),
                handle: None,
            },
            Hit::Ipt(h) => (**h).clone(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    chain: usize,
    rule: usize,
    stmt: usize,
    /// The rule's hit is in the trace.
    met: bool,
}

/// One branch of the walk.
#[derive(Debug, Clone)]
struct State<'r> {
    flow: Flow,
    stage: usize,
    frames: Vec<Frame>,
    entries: u32,
    trace: Vec<Hit<'r>>,
    notes: Vec<String>,
    /// The statement notes written, by rule, statement and reason (see
    /// [`Walk::run`]).
    noted: Vec<u64>,
    decided_by: Option<Hit<'r>>,
    finished: Option<Verdict>,
    forced_uncertain: bool,
    unknowns: u32,
    parent: Option<(usize, usize)>,
    limit_noted: bool,
    /// Alternatives chosen for the statement being executed, in the order
    /// its evaluation asks for them.
    choices: Vec<usize>,
    cursor: usize,
    /// Elements added to dynamic sets on this path (`add`/`update @set`).
    added: Vec<(&'r NftTable, usize, Box<[Datum]>)>,
    /// A nat chain of this hook bound the connection.
    nat_bound: bool,
}

impl<'r> State<'r> {
    /// Records a rule (or policy) the packet met: the first [`MAX_TRACE`]
    /// and the last (the branch notes the cut when it ends).
    fn hit(&mut self, h: Hit<'r>) {
        if self.trace.len() <= MAX_TRACE {
            self.trace.push(h);
        } else if let Some(last) = self.trace.last_mut() {
            *last = h;
        }
    }

    fn note(&mut self, note: String) {
        if self.notes.len() > MAX_NOTES || self.notes.contains(&note) {
            return;
        }
        if self.notes.len() == MAX_NOTES {
            self.notes.push("further notes omitted".to_string());
        } else {
            self.notes.push(note);
        }
    }

    fn finish(&mut self, verdict: Verdict, hit: Hit<'r>) {
        self.decided_by = Some(hit);
        self.finished = Some(verdict);
    }

    fn next_stage(&mut self) {
        self.frames.clear();
        self.stage += 1;
    }

    fn next_rule(&mut self) {
        if let Some(f) = self.frames.last_mut() {
            f.rule += 1;
            f.stmt = 0;
            f.met = false;
        }
    }

    /// The next alternative of the current statement, or a request to branch.
    fn choose(
        &mut self,
        kind: BranchKind,
        n: usize,
        reason: Option<String>,
    ) -> Result<usize, Need> {
        if n <= 1 {
            return Ok(0);
        }
        if let Some(&c) = self.choices.get(self.cursor) {
            self.cursor += 1;
            return Ok(c);
        }
        Err(Need { kind, n, reason })
    }
}

/// A statement needs a branch before it can go on.
#[derive(Debug)]
struct Need {
    kind: BranchKind,
    n: usize,
    reason: Option<String>,
}

/// What a statement did.
#[derive(Debug)]
enum AfterStmt {
    Next,
    /// The rule stops here (a match failed or a lookup missed).
    Break,
    Verdict(VerdictStmt),
    /// Drop or reject.
    End(Verdict),
    /// A NAT statement bound the connection: like accept.
    Nat,
}

/// One component of a key.
#[derive(Debug, Clone)]
enum Kv {
    Val(Datum),
    /// Bits that certainly are set and bits that may be.
    Bits {
        sure: u64,
        maybe: u64,
    },
    Unknown(String),
    /// The expression cannot load (no such header, no conntrack entry):
    /// the rule does not match, whatever the operator.
    Absent,
}

enum Key {
    Absent,
    Parts(Vec<Kv>),
}

impl Key {
    /// Per component the value, None where it is not known; and why not.
    fn known(&self) -> (Vec<Option<Datum>>, Vec<String>) {
        let mut reasons = Vec::new();
        let parts = match self {
            Key::Absent => Vec::new(),
            Key::Parts(kvs) => kvs
                .iter()
                .map(|kv| match kv {
                    Kv::Val(d) => Some(d.clone()),
                    Kv::Bits { sure, maybe: 0 } => Some(Datum::Int(*sure)),
                    Kv::Bits { .. } => {
                        reasons.push(NAT_BEFORE.to_string());
                        None
                    }
                    Kv::Unknown(r) => {
                        reasons.push(r.clone());
                        None
                    }
                    Kv::Absent => None,
                })
                .collect(),
        };
        (parts, reasons)
    }
}

const NAT_BEFORE: &str =
    "conntrack: whether the connection was NATed before this hook is not known";

fn v4(a: Ipv4Addr) -> Datum {
    Datum::Addr(IpAddr::V4(a))
}

fn reasons_text(r: &[String]) -> String {
    if r.is_empty() {
        "a value is not known".to_string()
    } else {
        r.join("; ")
    }
}

/// The walk of one hook.
pub(crate) struct Walk<'r, 'e> {
    pub stages: Vec<Stage<'r>>,
    pub hook: Hook,
    pub facts: &'e dyn NetnsFacts,
    pub iif: Option<&'e str>,
    pub oif: Option<&'e str>,
    /// Notes every outcome carries (e.g. priority ties).
    pub notes: Vec<String>,
}

impl<'r> Walk<'r, '_> {
    fn dst_manip(&self) -> bool {
        matches!(self.hook, Hook::Prerouting | Hook::Output)
    }

    /// Whether a stage is passed over for this packet.
    fn skip(&self, stage: &Stage<'r>, st: &State<'r>) -> bool {
        if !stage.nat {
            return false;
        }
        let bound_before = if self.dst_manip() {
            st.flow.dnat_before == Some(true)
        } else {
            st.flow.snat_before == Some(true)
        };
        st.flow.packet.reply || st.flow.untracked || st.nat_bound || bound_before
    }

    fn nft_stage(&self, st: &State<'r>) -> Option<(&'r NftTable, &Stage<'r>)> {
        let stage = self.stages.get(st.stage)?;
        match stage.kind {
            StageKind::Nft { table, .. } => Some((table, stage)),
            StageKind::Ipt { .. } => None,
        }
    }

    /// Runs `st` until it finishes or needs a branch; `steps` counts the
    /// rules visited by every branch, at most `max_steps`.
    fn run(
        &self,
        st: &mut State<'r>,
        steps: &Cell<usize>,
        max_steps: usize,
    ) -> Option<(BranchKind, Vec<State<'r>>)> {
        loop {
            if st.finished.is_some() {
                return None;
            }
            if st.frames.is_empty() {
                let Some(stage) = self.stages.get(st.stage) else {
                    st.finished = Some(Verdict::Accept);
                    return None;
                };
                if self.skip(stage, st) {
                    st.stage += 1;
                    continue;
                }
                match stage.kind {
                    StageKind::Ipt { table, sets } => {
                        let mut children = self.ipt_stage(st, table, sets);
                        if children.len() == 1 {
                            if let Some(only) = children.pop() {
                                *st = only;
                            }
                            continue;
                        }
                        return Some((BranchKind::Chance, children));
                    }
                    StageKind::Nft { chain, .. } => {
                        st.frames.push(Frame {
                            chain,
                            rule: 0,
                            stmt: 0,
                            met: false,
                        });
                        st.entries = 0;
                    }
                }
                continue;
            }
            let Some((table, stage)) = self.nft_stage(st) else {
                st.frames.clear();
                continue;
            };
            let Some(&top) = st.frames.last() else {
                continue;
            };
            let chain = &table.chains[top.chain];
            let Some(rule) = chain.rules.get(top.rule) else {
                self.do_return(st, table);
                continue;
            };
            if top.stmt == 0 && st.choices.is_empty() {
                steps.set(steps.get() + 1);
                if steps.get() > max_steps {
                    st.forced_uncertain = true;
                    st.note(format!(
                        "{} {}/{} handle {} ({}): more than {max_steps} rules visited in this hook (chains that loop, or call each other many times over); packet dropped",
                        table.family,
                        table.name,
                        chain.name,
                        rule.handle,
                        rule.text()
                    ));
                    let hit = Hit::Rule { table, chain, rule };
                    st.hit(hit.clone());
                    st.finish(Verdict::Drop, hit);
                    return None;
                }
            }
            let Some(stmt) = rule.stmts.get(top.stmt) else {
                // The rule ran to its end without a verdict.
                self.meet(st, table, chain, rule);
                st.next_rule();
                continue;
            };
            st.cursor = 0;
            let step = match self.exec(st, stage, table, chain, rule, stmt) {
                Ok(step) => step,
                Err(need) => {
                    if let Some(reason) = &need.reason {
                        // Once per rule, statement and reason: a loop meets
                        // the same statement again and again.
                        let mut h = FxHasher::default();
                        (std::ptr::from_ref(rule) as usize).hash(&mut h);
                        top.stmt.hash(&mut h);
                        reason.hash(&mut h);
                        let key = h.finish();
                        if st.notes.len() <= MAX_NOTES && !st.noted.contains(&key) {
                            st.noted.push(key);
                            let note = self.rule_note(table, chain, rule, stmt, reason);
                            st.note(note);
                        }
                    }
                    let children = (0..need.n)
                        .map(|i| {
                            let mut c = st.clone();
                            c.choices.push(i);
                            c
                        })
                        .collect();
                    return Some((need.kind, children));
                }
            };
            st.choices.clear();
            st.cursor = 0;
            if !matches!(step, AfterStmt::Break) && !is_match(stmt) {
                self.meet(st, table, chain, rule);
            }
            let hit = Hit::Rule { table, chain, rule };
            match step {
                AfterStmt::Next => {
                    if let Some(f) = st.frames.last_mut() {
                        f.stmt += 1;
                    }
                }
                AfterStmt::Break => st.next_rule(),
                AfterStmt::End(v) => st.finish(v, hit),
                AfterStmt::Nat => {
                    st.decided_by = Some(hit);
                    st.next_stage();
                }
                AfterStmt::Verdict(v) => self.verdict(st, table, chain, rule, v),
            }
        }
    }

    fn meet(
        &self,
        st: &mut State<'r>,
        table: &'r NftTable,
        chain: &'r NftChain,
        rule: &'r NftRule,
    ) {
        if let Some(f) = st.frames.last_mut()
            && !f.met
        {
            f.met = true;
            st.hit(Hit::Rule { table, chain, rule });
        }
    }

    fn rule_note(
        &self,
        table: &NftTable,
        chain: &NftChain,
        rule: &NftRule,
        stmt: &Stmt,
        reason: &str,
    ) -> String {
        format!(
            "{} {}/{} handle {} ({}): `{}`: {}",
            table.family,
            table.name,
            chain.name,
            rule.handle,
            rule.text(),
            super::render::stmt(stmt, table.family),
            reason
        )
    }

    fn verdict(
        &self,
        st: &mut State<'r>,
        table: &'r NftTable,
        chain: &'r NftChain,
        rule: &'r NftRule,
        v: VerdictStmt,
    ) {
        let hit = Hit::Rule { table, chain, rule };
        match v {
            VerdictStmt::Accept => {
                st.decided_by = Some(hit);
                st.next_stage();
            }
            VerdictStmt::Drop => st.finish(Verdict::Drop, hit),
            VerdictStmt::Queue => {
                st.forced_uncertain = true;
                let note = format!(
                    "{} {}/{} handle {} ({}): queued to userspace, whose verdict is not known; simulated as drop",
                    table.family,
                    table.name,
                    chain.name,
                    rule.handle,
                    rule.text()
                );
                st.note(note);
                st.finish(Verdict::Drop, hit);
            }
            VerdictStmt::Continue => st.next_rule(),
            VerdictStmt::Return => self.do_return(st, table),
            VerdictStmt::Jump(ref target) | VerdictStmt::Goto(ref target) => {
                let goto = matches!(v, VerdictStmt::Goto(_));
                let Some(ci) = table.chain_index(target) else {
                    st.forced_uncertain = true;
                    let note = format!(
                        "{} {}/{} handle {} ({}): no chain {target}; packet dropped",
                        table.family,
                        table.name,
                        chain.name,
                        rule.handle,
                        rule.text()
                    );
                    st.note(note);
                    st.finish(Verdict::Drop, hit);
                    return;
                };
                st.entries += 1;
                if (!goto && st.frames.len() > MAX_JUMP_DEPTH) || st.entries > MAX_CHAIN_ENTRIES {
                    st.forced_uncertain = true;
                    let note = format!(
                        "{} {}/{} handle {} ({}): jumps nest deeper than {MAX_JUMP_DEPTH} or chains loop (the kernel refuses such a ruleset); packet dropped",
                        table.family,
                        table.name,
                        chain.name,
                        rule.handle,
                        rule.text()
                    );
                    st.note(note);
                    st.finish(Verdict::Drop, hit);
                    return;
                }
                if goto {
                    st.frames.pop();
                } else {
                    st.next_rule();
                }
                st.frames.push(Frame {
                    chain: ci,
                    rule: 0,
                    stmt: 0,
                    met: false,
                });
            }
        }
    }

    /// `return` or the end of a chain: back to the caller, or the base chain's policy.
    fn do_return(&self, st: &mut State<'r>, table: &'r NftTable) {
        st.frames.pop();
        if !st.frames.is_empty() {
            return;
        }
        let Some(StageKind::Nft { chain, .. }) = self.stages.get(st.stage).map(|s| s.kind) else {
            st.next_stage();
            return;
        };
        let base = &table.chains[chain];
        match base.base.as_ref().map_or(Policy::Accept, |b| b.policy) {
            Policy::Accept => st.next_stage(),
            Policy::Drop => {
                let h = Hit::Policy {
                    table,
                    chain: base,
                    verdict: Verdict::Drop,
                };
                st.hit(h.clone());
                st.finish(Verdict::Drop, h);
            }
        }
    }

    /// Runs an iptables table as one stage; each of its outcomes goes on.
    fn ipt_stage(&self, st: &State<'r>, table: &'r Table, sets: &'r IpsetStore) -> Vec<State<'r>> {
        let conn = st.flow.conn();
        let outcomes = crate::netfilter::eval::traverse_tables(
            vec![table],
            sets,
            self.facts,
            self.hook,
            &st.flow.packet,
            self.iif,
            self.oif,
            &conn,
        );
        outcomes
            .into_iter()
            .map(|o| {
                let mut c = st.clone();
                c.stage += 1;
                c.flow.packet = o.packet;
                c.flow.ctmark = o.conn.ctmark;
                c.flow.untracked = o.conn.untracked;
                if o.conn.dnat == Some(true) && conn.dnat != Some(true) {
                    c.flow.dnat = true;
                    c.nat_bound |= self.dst_manip();
                }
                if o.conn.snat == Some(true) && conn.snat != Some(true) {
                    c.flow.snat = true;
                    c.nat_bound |= !self.dst_manip();
                }
                for h in o.trace {
                    c.hit(Hit::Ipt(Box::new(h)));
                }
                for n in o.notes {
                    c.note(n);
                }
                c.forced_uncertain |= o.uncertain;
                match o.verdict {
                    Verdict::Accept => {
                        if let Some(d) = o.decided_by {
                            c.decided_by = Some(Hit::Ipt(Box::new(d)));
                        }
                    }
                    v => {
                        c.finished = Some(v);
                        c.decided_by = o.decided_by.map(|d| Hit::Ipt(Box::new(d)));
                    }
                }
                c
            })
            .collect()
    }

    // ---- statements ----

    fn exec(
        &self,
        st: &mut State<'r>,
        stage: &Stage<'r>,
        table: &'r NftTable,
        chain: &'r NftChain,
        rule: &'r NftRule,
        stmt: &'r Stmt,
    ) -> Result<AfterStmt, Need> {
        match stmt {
            Stmt::Match(m) => {
                let (tri, reason) = self.eval_match(st, stage, table, m)?;
                match tri {
                    Tri::Yes => Ok(AfterStmt::Next),
                    Tri::No => Ok(AfterStmt::Break),
                    Tri::Unknown => {
                        let c = st.choose(BranchKind::Unknown, 2, Some(reason))?;
                        Ok(if c == 0 {
                            AfterStmt::Next
                        } else {
                            AfterStmt::Break
                        })
                    }
                }
            }
            Stmt::Verdict(v) => Ok(AfterStmt::Verdict(v.clone())),
            Stmt::Vmap { key, map } => {
                let k = self.key(st, stage, key)?;
                if matches!(k, Key::Absent) {
                    return Ok(AfterStmt::Break);
                }
                let Some(elem) = self.map_lookup(st, table, map, &k)? else {
                    return Ok(AfterStmt::Break);
                };
                match elem.data {
                    Some(ElemData::Verdict(ref v)) => Ok(AfterStmt::Verdict(v.clone())),
                    _ => {
                        self.uncertain(
                            st,
                            table,
                            chain,
                            rule,
                            stmt,
                            "the map does not hold verdicts",
                        );
                        Ok(AfterStmt::Break)
                    }
                }
            }
            Stmt::Mangle { key, value } => {
                self.mangle(st, stage, table, chain, rule, stmt, key, value)?;
                Ok(AfterStmt::Next)
            }
            Stmt::SetOp { op, set, elem, .. } => {
                let k = self.key(st, stage, elem)?;
                let (known, _) = k.known();
                let full: Option<Box<[Datum]>> = known.into_iter().collect();
                match (table.set_index(set), full) {
                    (Some(si), Some(key)) if &**op != "delete" && !key.is_empty() => {
                        st.added.push((table, si, key));
                    }
                    (None, _) => self.uncertain(
                        st,
                        table,
                        chain,
                        rule,
                        stmt,
                        &format!("no set @{set} in this table"),
                    ),
                    _ => {}
                }
                Ok(AfterStmt::Next)
            }
            Stmt::Nat(n) => self.nat(st, stage, table, chain, rule, stmt, n),
            Stmt::Reject { .. } => Ok(AfterStmt::End(Verdict::Reject)),
            Stmt::Notrack => {
                if stage.before_ct {
                    st.flow.untracked = true;
                } else {
                    let note = self.rule_note(
                        table,
                        chain,
                        rule,
                        stmt,
                        "notrack after conntrack (priority -200 or later) has no effect",
                    );
                    st.note(note);
                }
                Ok(AfterStmt::Next)
            }
            Stmt::Counter(_) | Stmt::Log(_) | Stmt::NoEffect { .. } => Ok(AfterStmt::Next),
            Stmt::Assumed { kind, .. } => {
                let note = self.rule_note(
                    table,
                    chain,
                    rule,
                    stmt,
                    &format!("{kind} treated as letting the packet on"),
                );
                st.note(note);
                Ok(AfterStmt::Next)
            }
            Stmt::Xt { kind, name } => {
                if &**kind == "match" {
                    if &**name == "comment" {
                        return Ok(AfterStmt::Next);
                    }
                    let c = st.choose(
                        BranchKind::Unknown,
                        2,
                        Some(format!(
                            "iptables-nft match \"{name}\" is not described by the JSON dump"
                        )),
                    )?;
                    return Ok(if c == 0 {
                        AfterStmt::Next
                    } else {
                        AfterStmt::Break
                    });
                }
                let c = st.choose(
                    BranchKind::Unknown,
                    2,
                    Some(format!(
                        "iptables-nft {kind} \"{name}\" is not described by the JSON dump; explored as drop and as no effect"
                    )),
                )?;
                Ok(if c == 0 {
                    AfterStmt::End(Verdict::Drop)
                } else {
                    AfterStmt::Next
                })
            }
            Stmt::Unknown { kind, .. } => {
                let c = st.choose(
                    BranchKind::Unknown,
                    2,
                    Some(format!(
                        "statement \"{kind}\" is not simulated; explored as drop and as no effect"
                    )),
                )?;
                Ok(if c == 0 {
                    AfterStmt::End(Verdict::Drop)
                } else {
                    AfterStmt::Next
                })
            }
        }
    }

    /// Something on this path could not be simulated exactly (not a branch point).
    fn uncertain(
        &self,
        st: &mut State<'r>,
        table: &NftTable,
        chain: &NftChain,
        rule: &NftRule,
        stmt: &Stmt,
        why: &str,
    ) {
        st.forced_uncertain = true;
        let note = self.rule_note(table, chain, rule, stmt, why);
        st.note(note);
    }

    #[allow(clippy::too_many_arguments)]
    fn mangle(
        &self,
        st: &mut State<'r>,
        stage: &Stage<'r>,
        table: &'r NftTable,
        chain: &'r NftChain,
        rule: &'r NftRule,
        stmt: &'r Stmt,
        key: &Expr,
        value: &Expr,
    ) -> Result<(), Need> {
        let v = match self.value(st, stage, value)? {
            Kv::Val(Datum::Int(v)) => Some(v),
            Kv::Bits { sure, maybe: 0 } => Some(sure),
            _ => None,
        };
        let no_ct = st.flow.untracked || stage.before_ct;
        match key {
            Expr::Meta(k) if &**k == "mark" => match v {
                Some(v) => st.flow.packet.mark = (v & 0xffff_ffff) as u32,
                None => self.uncertain(
                    st,
                    table,
                    chain,
                    rule,
                    stmt,
                    "the new mark is not known; packet mark left unchanged",
                ),
            },
            Expr::Ct { key: k, .. } if &**k == "mark" => {
                // Without a conntrack entry the kernel sets nothing.
                if !no_ct {
                    st.flow.ctmark = v.map(|v| (v & 0xffff_ffff) as u32);
                }
            }
            Expr::Payload { proto, field } if &**proto == "ip" && &**field == "dscp" => match v {
                Some(v) => {
                    st.flow.packet.tos = (st.flow.packet.tos & 0x03) | (((v & 0x3f) as u8) << 2)
                }
                None => self.uncertain(st, table, chain, rule, stmt, "the new DSCP is not known"),
            },
            Expr::Meta(k) if matches!(&**k, "priority" | "nftrace" | "secmark") => {}
            _ => self.uncertain(
                st,
                table,
                chain,
                rule,
                stmt,
                "setting this field is not simulated",
            ),
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn nat(
        &self,
        st: &mut State<'r>,
        stage: &Stage<'r>,
        table: &'r NftTable,
        chain: &'r NftChain,
        rule: &'r NftRule,
        stmt: &'r Stmt,
        n: &'r Nat,
    ) -> Result<AfterStmt, Need> {
        if n.family.as_deref() == Some("ip6") {
            // An ip6 NAT statement in an inet chain leaves IPv4 packets alone.
            return Ok(AfterStmt::Next);
        }
        let p = st.flow.packet;
        let mut addr: Option<Ipv4Addr> = None;
        let mut port: Option<u16> = None;
        match &n.addr {
            None => {}
            Some(NatAddr::Addr(IpAddr::V4(a))) => addr = Some(*a),
            Some(NatAddr::Addr(IpAddr::V6(_))) => return Ok(AfterStmt::Next),
            Some(NatAddr::Range(IpAddr::V4(lo), hi)) => {
                addr = Some(*lo);
                self.uncertain(
                    st,
                    table,
                    chain,
                    rule,
                    stmt,
                    &format!(
                        "the kernel picks one address of {lo}-{hi} per connection; simulated with the first"
                    ),
                );
            }
            Some(NatAddr::Range(..)) => return Ok(AfterStmt::Next),
            Some(NatAddr::Map { key, map }) => {
                let k = self.key(st, stage, key)?;
                if matches!(k, Key::Absent) {
                    return Ok(AfterStmt::Break);
                }
                let Some(elem) = self.map_lookup(st, table, map, &k)? else {
                    return Ok(AfterStmt::Break);
                };
                match &elem.data {
                    Some(ElemData::Value(parts)) => {
                        match parts.first() {
                            Some(Part::Exact(Datum::Addr(IpAddr::V4(a)))) => addr = Some(*a),
                            _ => self.uncertain(
                                st,
                                table,
                                chain,
                                rule,
                                stmt,
                                "the mapped NAT address is not an IPv4 address",
                            ),
                        }
                        if let Some(Part::Exact(Datum::Int(pt))) = parts.get(1) {
                            port = u16::try_from(*pt).ok();
                        }
                    }
                    _ => self.uncertain(
                        st,
                        table,
                        chain,
                        rule,
                        stmt,
                        "the map does not hold addresses",
                    ),
                }
            }
            Some(NatAddr::Bad(why)) => self.uncertain(st, table, chain, rule, stmt, why),
        }
        let current_port = match n.kind {
            NatKind::Snat | NatKind::Masquerade => p.sport,
            NatKind::Dnat | NatKind::Redirect => p.dport,
        };
        match &n.port {
            Some(NatPort::Port(pt)) => port = Some(*pt),
            // The kernel keeps a port already in the range.
            Some(NatPort::Range(lo, hi)) if !(*lo..=*hi).contains(&current_port) => {
                port = Some(*lo);
                self.uncertain(
                    st,
                    table,
                    chain,
                    rule,
                    stmt,
                    "the kernel picks a port of the range; simulated with the first",
                );
            }
            Some(NatPort::Bad(why)) => self.uncertain(st, table, chain, rule, stmt, why),
            None | Some(NatPort::Range(..)) => {}
        }
        match n.kind {
            // As the kernel's inet_select_addr: a device without an address (a
            // Calico veth) borrows another device's.
            NatKind::Masquerade => match self
                .oif
                .and_then(|o| self.facts.masquerade_address(o, p.dst))
            {
                Some(a) => addr = Some(a),
                None => {
                    let why = match self.oif {
                        Some(o) => format!(
                            "masquerade: no IPv4 address known on {o}; source left unchanged"
                        ),
                        None => "masquerade without an output interface; source left unchanged"
                            .to_string(),
                    };
                    self.uncertain(st, table, chain, rule, stmt, &why);
                }
            },
            NatKind::Redirect => {
                let to = if self.hook == Hook::Output {
                    Some(Ipv4Addr::LOCALHOST)
                } else {
                    self.iif.and_then(|i| self.facts.primary_address(i))
                };
                match to {
                    Some(a) => addr = Some(a),
                    None => self.uncertain(
                        st,
                        table,
                        chain,
                        rule,
                        stmt,
                        "redirect: no IPv4 address known on the input interface; destination left unchanged",
                    ),
                }
            }
            _ => {}
        }
        let pkt = &mut st.flow.packet;
        let has_ports = pkt.protocol != Protocol::Icmp;
        match n.kind {
            NatKind::Dnat | NatKind::Redirect => {
                if let Some(a) = addr {
                    pkt.dst = a;
                }
                if let (Some(pt), true) = (port, has_ports) {
                    pkt.dport = pt;
                }
                st.flow.dnat = true;
            }
            NatKind::Snat | NatKind::Masquerade => {
                if let Some(a) = addr {
                    pkt.src = a;
                }
                if let (Some(pt), true) = (port, has_ports) {
                    pkt.sport = pt;
                }
                st.flow.snat = true;
            }
        }
        st.nat_bound = true;
        Ok(AfterStmt::Nat)
    }

    /// The element of a (vmap or NAT) map the key selects; None when none does.
    fn map_lookup(
        &self,
        st: &mut State<'r>,
        table: &'r NftTable,
        map: &'r MapRef,
        key: &Key,
    ) -> Result<Option<&'r super::set::Elem>, Need> {
        let elems: &'r Elems = match map {
            MapRef::Named(name) => match table.set(name) {
                Some(s) => &s.elems,
                None => {
                    st.forced_uncertain = true;
                    st.note(format!(
                        "{} {}: no map @{name}; lookup treated as a miss",
                        table.family, table.name
                    ));
                    return Ok(None);
                }
            },
            MapRef::Anon { elems, .. } => elems,
        };
        let (known, reasons) = key.known();
        match elems.lookup(&known) {
            Lookup::Found(i) => Ok(elems.elems.get(i)),
            Lookup::NotFound => Ok(None),
            Lookup::Maybe(cands) => {
                if cands.len() > MAX_CANDIDATES {
                    st.forced_uncertain = true;
                    st.note(format!(
                        "{} {}: a map key is partly unknown ({}) and {} elements may match; only the miss was followed",
                        table.family,
                        table.name,
                        reasons_text(&reasons),
                        cands.len()
                    ));
                    return Ok(None);
                }
                let c = st.choose(
                    BranchKind::Unknown,
                    cands.len() + 1,
                    Some(format!(
                        "map key partly unknown ({}); each of {} elements and the miss explored",
                        reasons_text(&reasons),
                        cands.len()
                    )),
                )?;
                Ok(cands.get(c).and_then(|&i| elems.elems.get(i)))
            }
            Lookup::Unknown(why) => {
                st.forced_uncertain = true;
                st.note(format!(
                    "{} {}: map cannot be evaluated ({why}); lookup treated as a miss",
                    table.family, table.name
                ));
                Ok(None)
            }
        }
    }

    // ---- matches ----

    fn eval_match(
        &self,
        st: &mut State<'r>,
        stage: &Stage<'r>,
        table: &'r NftTable,
        m: &Match,
    ) -> Result<(Tri, String), Need> {
        let key = self.key(st, stage, &m.left)?;
        let Key::Parts(kvs) = &key else {
            return Ok((Tri::No, String::new()));
        };
        let (known, reasons) = key.known();
        let why = || reasons_text(&reasons);
        let tri = match &m.right {
            Rhs::Bad(e) => return Ok((Tri::Unknown, format!("cannot read the value: {e}"))),
            Rhs::Exists(want) => match kvs.first() {
                Some(Kv::Val(Datum::Str(s))) => {
                    let t = Tri::from_bool(s.is_empty() != *want);
                    if m.op == Op::Ne { t.not() } else { t }
                }
                _ => Tri::Unknown,
            },
            Rhs::Flags(mask) => {
                let t = match kvs.first() {
                    Some(Kv::Val(Datum::Int(v))) => Tri::from_bool(v & mask != 0),
                    Some(Kv::Bits { sure, maybe }) => {
                        if sure & mask != 0 {
                            Tri::Yes
                        } else if maybe & mask != 0 {
                            Tri::Unknown
                        } else {
                            Tri::No
                        }
                    }
                    _ => Tri::Unknown,
                };
                match m.op {
                    Op::In | Op::Eq => t,
                    Op::Ne => t.not(),
                    _ => Tri::Unknown,
                }
            }
            Rhs::Value(parts) => match m.op {
                Op::Eq | Op::In => test_key(parts, &known),
                Op::Ne => test_key(parts, &known).not(),
                op => match (parts.first().and_then(Part::exact), known.first()) {
                    (Some(r), Some(Some(l))) if parts.len() == 1 => Tri::from_bool(match op {
                        Op::Lt => l < r,
                        Op::Gt => l > r,
                        Op::Le => l <= r,
                        _ => l >= r,
                    }),
                    _ => Tri::Unknown,
                },
            },
            Rhs::Set(elems) => {
                let t = lookup_tri(&elems.lookup(&known));
                if m.op == Op::Ne { t.not() } else { t }
            }
            Rhs::Named(name) => {
                let t = match table.set_index(name) {
                    Some(si) => {
                        let mut t = lookup_tri(&table.sets[si].elems.lookup(&known));
                        if t != Tri::Yes {
                            let full: Option<Vec<Datum>> = known.iter().cloned().collect();
                            if let Some(full) = full
                                && st.added.iter().any(|(t2, s2, k)| {
                                    std::ptr::eq(*t2, table) && *s2 == si && **k == *full
                                })
                            {
                                t = Tri::Yes;
                            }
                        }
                        t
                    }
                    None => return Ok((Tri::Unknown, format!("no set @{name} in this table"))),
                };
                if m.op == Op::Ne { t.not() } else { t }
            }
        };
        Ok((tri, why()))
    }

    // ---- expressions ----

    fn key(&self, st: &mut State<'r>, stage: &Stage<'r>, e: &Expr) -> Result<Key, Need> {
        let kvs = match e {
            Expr::Concat(items) => {
                let mut kvs = Vec::with_capacity(items.len());
                for i in items {
                    kvs.push(self.value(st, stage, i)?);
                }
                kvs
            }
            e => vec![self.value(st, stage, e)?],
        };
        if kvs.iter().any(|k| matches!(k, Kv::Absent)) {
            return Ok(Key::Absent);
        }
        Ok(Key::Parts(kvs))
    }

    fn value(&self, st: &mut State<'r>, stage: &Stage<'r>, e: &Expr) -> Result<Kv, Need> {
        Ok(match e {
            Expr::Payload { proto, field } => payload(&st.flow, proto, field),
            Expr::Meta(k) => self.meta(&st.flow, k),
            Expr::Ct { key, dir } => ct(&st.flow, stage.before_ct, key, dir.as_deref()),
            Expr::Fib { result, flags } => self.fib(&st.flow.packet, result, flags),
            Expr::Numgen {
                modulus, offset, ..
            } => {
                let n = usize::try_from(*modulus).unwrap_or(1);
                let c = st.choose(BranchKind::Chance, n, None)?;
                Kv::Val(Datum::Int(u64::from(*offset) + c as u64))
            }
            Expr::Hash { kind, .. } => Kv::Unknown(format!("{kind} of the flow is not computed")),
            Expr::Concat(_) => Kv::Unknown("a nested concatenation".to_string()),
            Expr::Binop { op, left, right } => {
                let l = self.value(st, stage, left)?;
                let r = self.value(st, stage, right)?;
                match (l, r) {
                    (Kv::Absent, _) | (_, Kv::Absent) => Kv::Absent,
                    (Kv::Val(Datum::Int(a)), Kv::Val(Datum::Int(b))) => {
                        Kv::Val(Datum::Int(op.apply(a, b)))
                    }
                    (Kv::Bits { sure, maybe }, Kv::Val(Datum::Int(b)))
                        if *op == super::expr::BinOp::And =>
                    {
                        Kv::Bits {
                            sure: sure & b,
                            maybe: maybe & b,
                        }
                    }
                    (Kv::Unknown(r), _) | (_, Kv::Unknown(r)) => Kv::Unknown(r),
                    _ => Kv::Unknown(format!("operator {} on these values", op.symbol())),
                }
            }
            Expr::Const { value, .. } => Kv::Val(value.clone()),
            Expr::Unknown { kind, .. } => {
                Kv::Unknown(format!("expression \"{kind}\" is not simulated"))
            }
        })
    }

    fn meta(&self, flow: &Flow, key: &str) -> Kv {
        let p = &flow.packet;
        let dev = |d: Option<&str>| Kv::Val(Datum::Str(d.unwrap_or("").into()));
        match key {
            "l4proto" => Kv::Val(Datum::Int(u64::from(p.protocol.number()))),
            "nfproto" => Kv::Val(Datum::Int(2)),
            "protocol" => Kv::Val(Datum::Int(0x0800)),
            "iifname" | "iif" => dev(self.iif),
            "oifname" | "oif" => dev(self.oif),
            "mark" => Kv::Val(Datum::Int(u64::from(p.mark))),
            "skuid" | "skgid" => {
                if self.hook == Hook::Output {
                    Kv::Unknown("the owner of the sending socket is not known".to_string())
                } else {
                    Kv::Absent
                }
            }
            "pkttype" => {
                let d = p.dst;
                Kv::Val(Datum::Int(if d.is_broadcast() {
                    1
                } else if d.is_multicast() {
                    2
                } else {
                    0
                }))
            }
            "nftrace" => Kv::Val(Datum::Int(0)),
            other => Kv::Unknown(format!("meta {other} is not simulated")),
        }
    }

    fn fib(&self, p: &Packet, result: &str, flags: &[Box<str>]) -> Kv {
        let has = |f: &str| flags.iter().any(|x| &**x == f);
        let saddr = has("saddr");
        let addr = if saddr { p.src } else { p.dst };
        let dev = if has("iif") {
            Some(self.iif)
        } else if has("oif") {
            Some(self.oif)
        } else {
            None
        };
        match result {
            "type" => {
                let o = addr.octets();
                let t = if o[0] == 0 || addr.is_broadcast() {
                    3
                } else if addr.is_multicast() {
                    5
                } else {
                    match dev {
                        Some(d) => match d.and_then(|d| self.facts.interface_addresses(d)) {
                            Some(addrs) if addrs.contains(&addr) => 2,
                            Some(_) => 1,
                            None => {
                                return Kv::Unknown(
                                    "fib: the interface's addresses are not known".to_string(),
                                );
                            }
                        },
                        None if addr.is_loopback() || self.facts.is_local(addr) => 2,
                        None => 1,
                    }
                };
                Kv::Val(Datum::Int(t))
            }
            "oif" | "oifname" => {
                if self.hook == Hook::Prerouting && self.iif == Some("lo") {
                    return Kv::Val(Datum::Str("lo".into()));
                }
                let (to, from) = if saddr {
                    (p.src, p.dst)
                } else {
                    (p.dst, p.src)
                };
                let mark = if has("mark") { p.mark } else { 0 };
                let Some(route) = self.facts.reverse_route(to, from, mark) else {
                    return Kv::Unknown("fib: the routes are not known".to_string());
                };
                let found = if route.local || !route.unicast {
                    ""
                } else {
                    match dev {
                        Some(Some(d)) => {
                            if route.devs.iter().any(|x| x == d) {
                                d
                            } else {
                                ""
                            }
                        }
                        Some(None) => "",
                        None => route.devs.first().map_or("", String::as_str),
                    }
                };
                Kv::Val(Datum::Str(found.into()))
            }
            other => Kv::Unknown(format!("fib result {other} is not simulated")),
        }
    }
}

fn lookup_tri(l: &Lookup) -> Tri {
    match l {
        Lookup::Found(_) => Tri::Yes,
        Lookup::NotFound => Tri::No,
        Lookup::Maybe(_) | Lookup::Unknown(_) => Tri::Unknown,
    }
}

fn is_match(s: &Stmt) -> bool {
    matches!(s, Stmt::Match(_)) || matches!(s, Stmt::Xt { kind, .. } if &**kind == "match")
}

fn payload(flow: &Flow, proto: &str, field: &str) -> Kv {
    let p = &flow.packet;
    let ports = matches!(p.protocol, Protocol::Tcp | Protocol::Udp | Protocol::Sctp);
    let port = |f: &str| match f {
        "sport" => Kv::Val(Datum::Int(u64::from(p.sport))),
        "dport" => Kv::Val(Datum::Int(u64::from(p.dport))),
        other => Kv::Unknown(format!("{proto} {other} is not simulated")),
    };
    match proto {
        "ip" => match field {
            "saddr" => Kv::Val(v4(p.src)),
            "daddr" => Kv::Val(v4(p.dst)),
            "protocol" => Kv::Val(Datum::Int(u64::from(p.protocol.number()))),
            "dscp" => Kv::Val(Datum::Int(u64::from(p.tos >> 2))),
            "ecn" => Kv::Val(Datum::Int(u64::from(p.tos & 3))),
            "version" => Kv::Val(Datum::Int(4)),
            other => Kv::Unknown(format!("ip {other} is not simulated")),
        },
        // An IPv4 packet has no IPv6 header: nft's implicit family check fails.
        "ip6" => Kv::Absent,
        "tcp" | "udp" | "sctp" => {
            let want = match proto {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                _ => Protocol::Sctp,
            };
            if p.protocol != want {
                return Kv::Absent;
            }
            match field {
                "sport" | "dport" => port(field),
                "flags" if want == Protocol::Tcp => {
                    Kv::Val(Datum::Int(u64::from(flow.tcp_flags())))
                }
                other => Kv::Unknown(format!("{proto} {other} is not simulated")),
            }
        }
        "th" => {
            if ports {
                port(field)
            } else {
                Kv::Unknown(format!(
                    "th {field} of a {} packet reads its header bytes, which are not simulated",
                    p.protocol
                ))
            }
        }
        "icmp" => {
            if p.protocol == Protocol::Icmp {
                Kv::Unknown(format!("icmp {field} of the flow is not modelled"))
            } else {
                Kv::Absent
            }
        }
        "udplite" | "dccp" | "icmpv6" | "ah" | "esp" | "comp" => Kv::Absent,
        other => Kv::Unknown(format!("{other} {field} is not simulated")),
    }
}

/// nft's ct state bit of an iptables ctstate bit.
fn state_bits(ipt: u8) -> u64 {
    let mut b = 0;
    for (i, n) in [
        (CT_INVALID, 1),
        (CT_ESTABLISHED, 2),
        (CT_RELATED, 4),
        (CT_NEW, 8),
        (CT_UNTRACKED, 64),
    ] {
        if ipt & i != 0 {
            b |= n;
        }
    }
    b
}

fn ct(flow: &Flow, before_ct: bool, key: &str, dir: Option<&str>) -> Kv {
    use crate::netfilter::matches::{CT_DNAT, CT_SNAT};
    if flow.untracked || before_ct {
        // No conntrack entry: the kernel reports untracked (or, before
        // conntrack ran, invalid) and every other ct key fails to load.
        return match key {
            "state" => Kv::Val(Datum::Int(if flow.untracked { 64 } else { 1 })),
            _ => Kv::Absent,
        };
    }
    let p = &flow.packet;
    match key {
        "state" => Kv::Val(Datum::Int(state_bits(flow.ct_state().0))),
        "status" => {
            let (sure, maybe) = flow.ct_state();
            let nat = |bits: u8| {
                (if bits & CT_SNAT != 0 { 16 } else { 0 })
                    | (if bits & CT_DNAT != 0 { 32 } else { 0 })
            };
            // A reply is on a confirmed connection that has seen a reply.
            let conf = if p.reply { 8 | 2 } else { 0 };
            Kv::Bits {
                sure: nat(sure) | conf,
                maybe: nat(maybe),
            }
        }
        "mark" => match flow.ctmark {
            Some(m) => Kv::Val(Datum::Int(u64::from(m))),
            None => Kv::Unknown("the connection mark is not known at this hook".to_string()),
        },
        "direction" => Kv::Val(Datum::Int(u64::from(p.reply))),
        "l3proto" => Kv::Val(Datum::Int(2)),
        "protocol" => Kv::Val(Datum::Int(u64::from(p.protocol.number()))),
        "saddr" | "daddr" | "ip saddr" | "ip daddr" | "proto-src" | "proto-dst" => {
            if dir == Some("reply") {
                return Kv::Unknown("the reply tuple is not simulated".to_string());
            }
            let Some(o) = &flow.orig else {
                return Kv::Unknown("the original tuple is not known at this hook".to_string());
            };
            match key {
                "saddr" | "ip saddr" => Kv::Val(v4(o.src)),
                "daddr" | "ip daddr" => Kv::Val(v4(o.dst)),
                "proto-src" => Kv::Val(Datum::Int(u64::from(o.sport))),
                _ => Kv::Val(Datum::Int(u64::from(o.dport))),
            }
        }
        "ip6 saddr" | "ip6 daddr" => Kv::Absent,
        other => Kv::Unknown(format!("ct {other} is not simulated")),
    }
}

/// Walks the stages and merges the finished branches into outcomes.
pub(crate) fn walk(
    w: &Walk<'_, '_>,
    packet: &Packet,
    conn: &crate::netfilter::ConnState,
) -> Vec<Outcome> {
    let mut start = State {
        flow: Flow::start(*packet, conn),
        stage: 0,
        frames: Vec::new(),
        entries: 0,
        trace: Vec::new(),
        notes: Vec::new(),
        noted: Vec::new(),
        decided_by: None,
        finished: None,
        forced_uncertain: false,
        unknowns: 0,
        parent: None,
        limit_noted: false,
        choices: Vec::new(),
        cursor: 0,
        added: Vec::new(),
        nat_bound: false,
    };
    for n in &w.notes {
        start.note(n.clone());
    }
    let mut tree = Tree::default();
    // Each finished branch's trace, by leaf: only the outcomes returned get
    // theirs as `RuleHit`s.
    let mut traces: Vec<(Vec<Hit<'_>>, Option<Hit<'_>>)> = Vec::new();
    let rules: usize = w
        .stages
        .iter()
        .filter_map(|s| match s.kind {
            StageKind::Nft { table, .. } => {
                Some(table.chains.iter().map(|c| c.rules.len()).sum::<usize>())
            }
            StageKind::Ipt { .. } => None,
        })
        .sum::<usize>();
    let max_steps = MIN_STEPS.max(rules.saturating_mul(STEPS_PER_RULE));
    let steps = Cell::new(0);
    let mut branches = 0usize;
    let mut work = vec![start];
    while let Some(mut st) = work.pop() {
        let Some((kind, children)) = w.run(&mut st, &steps, max_steps) else {
            let verdict = st.finished.unwrap_or(Verdict::Accept);
            if st.trace.len() > MAX_TRACE {
                st.note(format!(
                    "more than {MAX_TRACE} rules matched; the trace holds the first {MAX_TRACE} and the last"
                ));
            }
            traces.push((std::mem::take(&mut st.trace), st.decided_by.take()));
            tree.leaf(Leaf {
                outcome: Outcome {
                    verdict,
                    packet: st.flow.packet,
                    uncertain: false,
                    trace: Vec::new(),
                    decided_by: None,
                    conn: st.flow.conn(),
                    notes: st.notes,
                },
                parent: st.parent,
                forced_uncertain: st.forced_uncertain,
                unknowns: st.unknowns,
            });
            continue;
        };
        let n = children.len();
        if n == 0 {
            continue;
        }
        if branches >= MAX_BRANCHES {
            if let Some(mut last) = children.into_iter().last() {
                last.forced_uncertain = true;
                if !last.limit_noted {
                    last.limit_noted = true;
                    last.note(
                        "branch limit reached; from here on only the last alternative of each branch was followed"
                            .to_string(),
                    );
                }
                work.push(last);
            }
            continue;
        }
        branches += 1;
        // An n-way branch is a chain of two-way nodes: the union (chance) or
        // intersection (unknown) over a chain equals that over all n sides.
        let mut parent = st.parent;
        let mut ready = Vec::with_capacity(n);
        for (i, mut c) in children.into_iter().enumerate() {
            if i + 1 < n {
                let node = tree.node(kind, parent);
                c.parent = Some((node, 0));
                parent = Some((node, 1));
            } else {
                c.parent = parent;
            }
            if kind == BranchKind::Unknown {
                c.unknowns += 1;
            }
            ready.push(c);
        }
        work.extend(ready.into_iter().rev());
    }
    tree.outcomes(MAX_OUTCOMES, |leaf, o| {
        if let Some((trace, decided_by)) = traces.get(leaf) {
            o.trace = trace.iter().map(Hit::to_rule_hit).collect();
            o.decided_by = decided_by.as_ref().map(Hit::to_rule_hit);
        }
    })
}
