//! The structure of an `iptables-save` dump: `*table` sections, `:CHAIN`
//! headers, `-A` rules and `COMMIT`. Rule words are handed to `rule.rs`.
//!
//! Reading a dump checks its structure and the syntax of every line, and
//! files each rule line under its chain; a chain's rules are compiled the
//! first time a traversal enters it. A node with kube-proxy rules for ten
//! thousand Services holds over a hundred thousand rules, of which a packet
//! visits a few dozen chains. Most lines are `-A CHAIN ...` with a quoted
//! comment: for those the chain word and the quotes' balance are all the
//! syntax there is to check before the chain is compiled, and they are read
//! in place (still JSON-escaped, for a dump read from a bundle; see
//! `text.rs`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use rustc_hash::FxBuildHasher;

use super::index::DstIndex;
use super::lex::{Token, is_counter, is_counter_word, tokenize_into};
use super::matches::Cond;
use super::rule::{RuleSpec, parse_rule};
use super::targets::{Target, compile, resolve};
use super::text::{RawLine, RulesText, lines, unescape};
use super::{ParseError, Verdict};

/// Chain name to index (FxHash: names are short, looked up once or twice
/// per rule, and come from the node's own dump).
type ChainIndex = HashMap<Arc<str>, usize, FxBuildHasher>;

/// One rule of a chain.
#[derive(Debug, Clone)]
pub struct Rule {
    pub table: Arc<str>,
    pub chain: Arc<str>,
    /// 1-based position in its chain.
    pub index: u32,
    pub(crate) conds: Box<[Cond]>,
    pub(crate) target: Target,
    /// Where the rule is written, for [`Rule::text`]: a walk reports a few
    /// of the thousands of rules it compiles.
    shared: Arc<Shared>,
    line: Line,
}

impl Rule {
    /// The `-m comment --comment` text, if any.
    pub fn comment(&self) -> Option<String> {
        let held = self.shared.line(self.line);
        let (toks, _) = rule_words(held.trim())?;
        parse_rule(toks.get(words_before_rule(&toks)..).unwrap_or(&[])).comment
    }

    /// The rule as written (e.g. `-A FORWARD -j DROP`), counters removed.
    pub fn text(&self) -> String {
        let held = self.shared.line(self.line);
        let line = held.trim();
        match rule_words(line) {
            Some((toks, true)) => display_text(line, &toks),
            _ => line.to_string(),
        }
    }
}

/// A rule line's words without its `[p:b]` counters, and whether it had
/// any; None if the line does not tokenize (checked when the dump was read).
fn rule_words(line: &str) -> Option<(Vec<Token<'_>>, bool)> {
    let mut toks = Vec::with_capacity(24);
    tokenize_into(line, &mut toks).ok()?;
    let before = toks.len();
    if line.contains('[') {
        toks.retain(|t| !is_counter(t));
    }
    let had_counters = toks.len() != before;
    Some((toks, had_counters))
}

/// Where a rule line is in the dump text (as held, see `text.rs`).
#[derive(Debug, Clone, Copy)]
struct Line {
    start: u32,
    end: u32,
}

/// A chain's rules, compiled.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub(crate) rules: Vec<Rule>,
    /// Destination dispatch of a long chain (see `index.rs`).
    pub(crate) index: Option<DstIndex>,
}

/// What the chains of one table share.
#[derive(Debug)]
struct Shared {
    table: Arc<str>,
    /// The dump's text.
    text: RulesText,
    /// The table's chains by name, to resolve jump targets.
    names: Arc<ChainIndex>,
}

impl Shared {
    /// A line of the dump, unescaped if it must be.
    fn line(&self, line: Line) -> Cow<'_, str> {
        self.text.span(line.start as usize, line.end as usize)
    }
}

/// A built-in or user chain. Small: a node with kube-proxy rules for ten
/// thousand Services has some thirty thousand of them, few ever compiled.
#[derive(Debug, Clone)]
pub struct Chain {
    pub(crate) name: Arc<str>,
    /// Built-in chains have a policy; user chains have none.
    pub(crate) policy: Option<Verdict>,
    shared: Arc<Shared>,
    /// This chain's lines in the dump's text, in rule order.
    lines: Box<[Line]>,
    compiled: OnceLock<Box<Compiled>>,
}

impl Chain {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// ACCEPT or DROP for built-in chains, None for user chains.
    pub fn policy(&self) -> Option<Verdict> {
        self.policy
    }

    /// The rules, compiled on first use.
    pub fn rules(&self) -> &[Rule] {
        &self.compiled().rules
    }

    /// Number of rules, without compiling them.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub(crate) fn compiled(&self) -> &Compiled {
        self.compiled.get_or_init(|| self.compile())
    }

    fn compile(&self) -> Box<Compiled> {
        let shared = &*self.shared;
        let lookup = |n: &str| shared.names.get(n).copied();
        let mut rules = Vec::with_capacity(self.lines.len());
        for (i, line) in self.lines.iter().enumerate() {
            let held = shared.line(*line);
            let Some((toks, _)) = rule_words(held.trim()) else {
                continue;
            };
            let RuleSpec { conds, target, .. } =
                parse_rule(toks.get(words_before_rule(&toks)..).unwrap_or(&[]));
            let mut target = compile(target.as_ref(), lookup);
            resolve(&mut target, lookup);
            rules.push(Rule {
                table: shared.table.clone(),
                chain: self.name.clone(),
                index: u32::try_from(i + 1).unwrap_or(u32::MAX),
                conds: conds.into_boxed_slice(),
                target,
                shared: self.shared.clone(),
                line: *line,
            });
        }
        Box::new(Compiled {
            index: DstIndex::build(rules.iter().map(|r| &*r.conds)),
            rules,
        })
    }
}

/// The words before a rule's own: `-A CHAIN`, or `-I CHAIN [N]`.
fn words_before_rule(toks: &[Token<'_>]) -> usize {
    let insert = matches!(
        toks.first().map(|t| t.text.as_ref()),
        Some("-I" | "--insert")
    );
    if insert && toks.get(2).is_some_and(|t| t.text.parse::<usize>().is_ok()) {
        3
    } else {
        2
    }
}

/// One `*table` section.
#[derive(Debug, Clone)]
pub struct Table {
    pub(crate) name: Arc<str>,
    pub(crate) chains: Vec<Chain>,
    pub(crate) by_name: Arc<ChainIndex>,
}

impl Table {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn chains(&self) -> &[Chain] {
        &self.chains
    }

    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.by_name.get(name).map(|&i| &self.chains[i])
    }

    pub(crate) fn chain_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }
}

const BUILTIN: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

/// The built-in chains a table has (all five for tables not known here).
fn builtin_chains(table: &str) -> &'static [&'static str] {
    match table {
        "filter" | "security" => &["INPUT", "FORWARD", "OUTPUT"],
        "nat" => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
        "raw" => &["PREROUTING", "OUTPUT"],
        _ => &BUILTIN,
    }
}

/// A chain while its table is being read: its rule lines, in order.
struct PendingChain {
    name: Arc<str>,
    policy: Option<Verdict>,
    lines: Vec<Line>,
}

struct PendingTable {
    name: Arc<str>,
    chains: Vec<PendingChain>,
    by_name: ChainIndex,
    /// The chain of the previous `-A` line: a dump lists a chain's rules
    /// together, so most lines need no lookup.
    last: Option<usize>,
}

impl PendingTable {
    fn new(name: &str) -> PendingTable {
        PendingTable {
            name: Arc::from(name),
            chains: Vec::new(),
            by_name: ChainIndex::default(),
            last: None,
        }
    }

    fn declare(&mut self, name: &str, policy: Option<Verdict>) -> usize {
        if let Some(&i) = self.by_name.get(name) {
            self.chains[i].policy = policy;
            return i;
        }
        let name: Arc<str> = Arc::from(name);
        self.chains.push(PendingChain {
            name: name.clone(),
            policy,
            lines: Vec::new(),
        });
        self.by_name.insert(name, self.chains.len() - 1);
        self.chains.len() - 1
    }

    /// The chain `-A`/`-I` names; built-in chains need no header.
    fn chain_for_rule(&mut self, name: &str) -> Option<usize> {
        if let Some(i) = self.last
            && *self.chains[i].name == *name
        {
            return Some(i);
        }
        let i = match self.by_name.get(name) {
            Some(&i) => i,
            None if builtin_chains(&self.name).contains(&name) => {
                self.declare(name, Some(Verdict::Accept))
            }
            None => return None,
        };
        self.last = Some(i);
        Some(i)
    }

    /// `:NAME POLICY [counters]`
    fn header(
        &mut self,
        lineno: usize,
        name: &str,
        policy: Option<&str>,
    ) -> Result<(), ParseError> {
        if name.is_empty() {
            return Err(err(lineno, "chain header without a name"));
        }
        let policy = match policy {
            Some("ACCEPT") => Some(Verdict::Accept),
            Some("DROP") => Some(Verdict::Drop),
            Some("-") | None => {
                if BUILTIN.contains(&name) {
                    Some(Verdict::Accept)
                } else {
                    None
                }
            }
            Some(p) => return Err(err(lineno, format!("bad policy \"{p}\" for chain {name}"))),
        };
        self.declare(name, policy);
        Ok(())
    }

    fn finish(self, text: &RulesText) -> Table {
        let by_name = Arc::new(self.by_name);
        let table_name = self.name;
        let shared = Arc::new(Shared {
            table: table_name.clone(),
            text: text.clone(),
            names: by_name.clone(),
        });
        let chains = self
            .chains
            .into_iter()
            .map(|c| Chain {
                name: c.name,
                policy: c.policy,
                shared: shared.clone(),
                lines: c.lines.into_boxed_slice(),
                compiled: OnceLock::new(),
            })
            .collect();
        Table {
            name: table_name,
            chains,
            by_name,
        }
    }
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// The line as written without its `[p:b]` counter words.
fn display_text(line: &str, toks: &[Token<'_>]) -> String {
    let mut out = String::with_capacity(line.len());
    for t in toks {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&line[t.start..t.end]);
    }
    out
}

/// A line whose words need no tokenizer: no escapes to undo, no single
/// quotes, and its double quotes (if any) pair up — the tokenizer would
/// accept it. Then the words up to the first quote are whitespace-split.
fn simple(line: &str, l: &RawLine) -> bool {
    !l.complex && l.quotes.is_multiple_of(2) && memchr::memchr(b'\'', line.as_bytes()).is_none()
}

/// `-A CHAIN ...` read in place: the chain word, when the line is simple
/// and the word is plain (not quoted, not a counter).
fn fast_append(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("-A")?;
    if !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let chain = rest.split_ascii_whitespace().next()?;
    if chain.bytes().any(|b| matches!(b, b'"' | b'\\' | b'[')) {
        return None;
    }
    Some(chain)
}

/// `:NAME POLICY [counters]` read in place, when the line has no quotes.
fn fast_header(line: &str) -> (&str, Option<&str>) {
    let mut words = line
        .split_ascii_whitespace()
        .filter(|w| !is_counter_word(w));
    let name = words.next().and_then(|w| w.strip_prefix(':')).unwrap_or("");
    (name, words.next())
}

/// Reads a whole `iptables-save` dump: structure and syntax now, each
/// chain's rules when first used.
pub(crate) fn parse_tables(source: &RulesText) -> Result<Vec<Table>, ParseError> {
    read_tables(source, true)
}

/// `fast`: read simple lines in place (off only for tests, which check the
/// fast path against the tokenizer).
fn read_tables(source: &RulesText, fast: bool) -> Result<Vec<Table>, ParseError> {
    let raw = source.raw();
    let mut reader = Reader {
        source,
        tables: Vec::new(),
        cur: None,
    };
    let mut toks: Vec<Token<'_>> = Vec::with_capacity(32);
    for (i, l) in lines(source).enumerate() {
        let lineno = i + 1;
        let held = &raw[l.start..l.end];
        let line = held.trim();
        // Where the line is in `raw`, for the chain to read it again.
        let start = line.as_ptr() as usize - raw.as_ptr() as usize;
        let span = Line {
            start: u32::try_from(start)
                .map_err(|_| err(lineno, "iptables-save text over 4 GiB"))?,
            end: u32::try_from(start + line.len())
                .map_err(|_| err(lineno, "iptables-save text over 4 GiB"))?,
        };
        if fast && simple(line, &l) {
            if let Some(table) = reader.cur.as_mut()
                && let Some(chain) = fast_append(line)
            {
                table.append(lineno, chain, span)?;
                continue;
            }
            if line.starts_with(':') && l.quotes == 0 && reader.cur.is_some() {
                let (name, policy) = fast_header(line);
                if let Some(table) = reader.cur.as_mut() {
                    table.header(lineno, name, policy)?;
                }
                continue;
            }
        }
        if source.escaped() && (l.complex || l.quotes > 0) {
            let unescaped = unescape(held);
            let mut own: Vec<Token<'_>> = Vec::new();
            reader.line(lineno, unescaped.trim(), span, &mut own)?;
        } else {
            reader.line(lineno, line, span, &mut toks)?;
        }
    }
    Ok(reader.finish())
}

impl PendingTable {
    fn append(&mut self, lineno: usize, chain: &str, span: Line) -> Result<(), ParseError> {
        let Some(ci) = self.chain_for_rule(chain) else {
            return Err(err(
                lineno,
                format!("chain \"{chain}\" is not declared in table {}", self.name),
            ));
        };
        self.chains[ci].lines.push(span);
        Ok(())
    }
}

/// The tables read so far and the one being read.
struct Reader<'s> {
    source: &'s RulesText,
    tables: Vec<Table>,
    cur: Option<PendingTable>,
}

impl Reader<'_> {
    fn finish(mut self) -> Vec<Table> {
        if let Some(t) = self.cur.take() {
            self.tables.push(t.finish(self.source));
        }
        self.tables
    }

    /// One line read in full. `span` is where it is in the dump as held.
    fn line<'l>(
        &mut self,
        lineno: usize,
        line: &'l str,
        span: Line,
        toks: &mut Vec<Token<'l>>,
    ) -> Result<(), ParseError> {
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        if let Some(name) = line.strip_prefix('*') {
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(err(lineno, format!("bad table line \"{line}\"")));
            }
            if let Some(t) = self.cur.take() {
                self.tables.push(t.finish(self.source));
            }
            self.cur = Some(PendingTable::new(name));
            return Ok(());
        }
        if line == "COMMIT" {
            return match self.cur.take() {
                Some(t) => {
                    self.tables.push(t.finish(self.source));
                    Ok(())
                }
                None => Err(err(lineno, "COMMIT outside a table")),
            };
        }
        let Some(table) = self.cur.as_mut() else {
            return Err(err(lineno, format!("rule outside a table: \"{line}\"")));
        };
        tokenize_into(line, toks).map_err(|m| err(lineno, m))?;
        if line.contains('[') {
            toks.retain(|t| !is_counter(t));
        }
        if let Some(name) = line.strip_prefix(':') {
            let name = toks
                .first()
                .and_then(|t| t.text.strip_prefix(':'))
                .unwrap_or(name);
            let policy = toks.get(1).map(|t| t.text.as_ref());
            return table.header(lineno, name, policy);
        }
        let cmd = toks.first().map(|t| t.text.as_ref()).unwrap_or("");
        match cmd {
            "-A" | "--append" | "-I" | "--insert" => {
                let Some(chain) = toks.get(1).map(|t| t.text.as_ref()) else {
                    return Err(err(lineno, format!("{cmd} without a chain")));
                };
                if !matches!(cmd, "-I" | "--insert") {
                    return table.append(lineno, chain, span);
                }
                let Some(ci) = table.chain_for_rule(chain) else {
                    return Err(err(
                        lineno,
                        format!("chain \"{chain}\" is not declared in table {}", table.name),
                    ));
                };
                let mut pos = 0usize;
                if let Some(n) = toks.get(2).and_then(|t| t.text.parse::<usize>().ok()) {
                    pos = n.saturating_sub(1);
                }
                let chain = &mut table.chains[ci];
                let at = pos.min(chain.lines.len());
                chain.lines.insert(at, span);
            }
            "-N" | "--new-chain" => match toks.get(1) {
                Some(t) => {
                    let name = t.text.as_ref();
                    if !table.by_name.contains_key(name) {
                        table.declare(name, None);
                    }
                }
                None => return Err(err(lineno, "-N without a chain")),
            },
            _ => return Err(err(lineno, format!("unexpected line \"{line}\""))),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Ruleset;
    use super::*;

    const DUMP: &str = r#"# Generated by iptables-save v1.8.7 on Mon Jan  1 00:00:00 2024
*filter
:INPUT ACCEPT [120:3400]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
[5:300] -A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -s 10.244.0.0/16 [0:0] -j ACCEPT
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "say \"hi\"" -m mark --mark 0x4000/0x4000 -j ACCEPT
COMMIT
# Completed on Mon Jan  1 00:00:00 2024
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.244.0.0/16 ! -d 10.244.0.0/16 -j MASQUERADE --random-fully
COMMIT
"#;

    fn errline(text: &str) -> usize {
        match Ruleset::parse(text) {
            Ok(_) => panic!("expected a parse error for {text:?}"),
            Err(e) => {
                assert!(e.to_string().starts_with(&format!("line {}: ", e.line)));
                e.line
            }
        }
    }

    type Summary = Vec<(
        String,
        String,
        Option<Verdict>,
        Vec<(u32, String, Option<String>, String)>,
    )>;

    /// Everything a parse yields, to compare two ways of reading one text.
    fn summary(r: Result<Vec<Table>, ParseError>) -> Result<Summary, String> {
        let tables = r.map_err(|e| e.to_string())?;
        Ok(tables
            .iter()
            .flat_map(|t| t.chains())
            .map(|c| {
                let rules = c
                    .rules()
                    .iter()
                    .map(|r| {
                        let target = format!("{:?}", r.target);
                        (r.index, r.text(), r.comment(), target)
                    })
                    .collect();
                (
                    c.shared.table.to_string(),
                    c.name.to_string(),
                    c.policy,
                    rules,
                )
            })
            .collect())
    }

    /// The text read plain, read JSON-escaped as a node file holds it, and
    /// read line by line through the tokenizer: the same tables, rules and
    /// errors.
    fn same_every_way(text: &str) {
        let json: RulesText =
            serde_json::from_str(&serde_json::to_string(text).expect("json")).expect("json text");
        let plain = RulesText::from(text);
        let reference = summary(read_tables(&plain, false));
        assert_eq!(
            summary(read_tables(&plain, true)),
            reference,
            "plain {text:?}"
        );
        assert_eq!(
            summary(read_tables(&json, true)),
            reference,
            "json {text:?}"
        );
        assert_eq!(
            summary(read_tables(&json, false)),
            reference,
            "json slow {text:?}"
        );
    }

    #[test]
    fn escaped_and_fast_reads_agree_with_the_tokenizer() {
        same_every_way(DUMP);
        same_every_way(
            "*filter\n:INPUT ACCEPT\n-A INPUT -m comment --comment \"a\\\"b\" -j DROP\nCOMMIT\n",
        );
        same_every_way("*filter\n:X - [0:0]\n-A\tX -j DROP\n-A X 'a b' -j DROP\n-A X \"a\n");
        same_every_way("*nat\n-A KUBE-X\u{a0}-j DROP\n");
    }

    #[test]
    fn tables_chains_policies() {
        let rs = Ruleset::parse(DUMP).expect("parse");
        assert_eq!(rs.tables().len(), 2);
        assert_eq!(rs.rule_count(), 5);
        let filter = rs.table("filter").expect("filter");
        assert_eq!(filter.chains().len(), 4);
        assert_eq!(
            rs.chain("filter", "INPUT").and_then(|c| c.policy()),
            Some(Verdict::Accept)
        );
        assert_eq!(
            rs.chain("filter", "FORWARD").and_then(|c| c.policy()),
            Some(Verdict::Drop)
        );
        assert_eq!(
            rs.chain("filter", "KUBE-FORWARD").and_then(|c| c.policy()),
            None
        );
        assert!(rs.chain("nat", "OUTPUT").is_none());
    }

    #[test]
    fn rules_keep_position_text_and_comment() {
        let rs = Ruleset::parse(DUMP).expect("parse");
        let fwd = rs.chain("filter", "FORWARD").expect("FORWARD");
        let r1 = &fwd.rules()[0];
        assert_eq!((&*r1.table, &*r1.chain, r1.index), ("filter", "FORWARD", 1));
        assert_eq!(
            r1.text(),
            r#"-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD"#
        );
        assert_eq!(r1.comment().as_deref(), Some("kubernetes forwarding rules"));
        assert!(matches!(r1.target, Target::Jump(_)));
        let r2 = &fwd.rules()[1];
        assert_eq!(r2.index, 2);
        assert_eq!(r2.text(), "-A FORWARD -s 10.244.0.0/16 -j ACCEPT");
        let kf = rs.chain("filter", "KUBE-FORWARD").expect("KUBE-FORWARD");
        assert_eq!(kf.rules()[1].comment().as_deref(), Some(r#"say "hi""#));
        assert_eq!(kf.rules()[1].index, 2);
        let masq = &rs.chain("nat", "POSTROUTING").expect("POSTROUTING").rules()[0];
        assert_eq!(masq.target, Target::Masquerade);
    }

    #[test]
    fn unknown_modules_and_targets_parse() {
        let rs = Ruleset::parse(
            "*mangle\n:PREROUTING ACCEPT\n-A PREROUTING -m foo --bar baz -j TPROXY --on-ip 1.1.1.1\n-A PREROUTING -j NOSUCH\nCOMMIT\n",
        )
        .expect("parse");
        let rules = rs.chain("mangle", "PREROUTING").expect("chain").rules();
        assert_eq!(rules.len(), 2);
        assert!(matches!(rules[0].target, Target::Unknown(_)));
        assert!(matches!(&rules[1].target, Target::Unknown(m) if m.contains("NOSUCH")));
    }

    #[test]
    fn text_and_comment_are_read_back_from_the_line() {
        let text = "*filter\n:X - [0:0]\n-I INPUT 1 -m comment --comment \"first one\" -j X\n[3:4] -A X -m comment --comment \"say \\\"hi\\\"\" -j DROP\nCOMMIT\n";
        for held in [
            RulesText::from(text),
            serde_json::from_str(&serde_json::to_string(text).expect("json")).expect("text"),
        ] {
            let rs = Ruleset::parse_text(&held).expect("parse");
            let input = &rs.chain("filter", "INPUT").expect("INPUT").rules()[0];
            assert_eq!(input.comment().as_deref(), Some("first one"));
            assert_eq!(
                input.text(),
                "-I INPUT 1 -m comment --comment \"first one\" -j X"
            );
            let x = &rs.chain("filter", "X").expect("X").rules()[0];
            assert_eq!(x.comment().as_deref(), Some("say \"hi\""));
            assert_eq!(
                x.text(),
                "-A X -m comment --comment \"say \\\"hi\\\"\" -j DROP"
            );
        }
    }

    #[test]
    fn entry_chains_compile_ahead_and_the_rest_on_first_use() {
        let rs = Ruleset::parse(
            "*nat\n:PREROUTING ACCEPT\n:SVC - [0:0]\n:SEP - [0:0]\n:LONELY - [0:0]\n-A PREROUTING -j SVC\n-A SVC -j SEP\n-A SEP -j DNAT --to-destination 1.2.3.4\n-A LONELY -j DROP\nCOMMIT\n",
        )
        .expect("parse");
        let compiled = |name: &str| {
            rs.chain("nat", name)
                .expect("chain")
                .compiled
                .get()
                .is_some()
        };
        assert!(!compiled("PREROUTING") && !compiled("SVC"));
        rs.compile_entry_chains();
        assert!(compiled("PREROUTING") && compiled("SVC"));
        assert!(!compiled("SEP") && !compiled("LONELY"));
    }

    #[test]
    fn insert_and_new_chain() {
        let rs = Ruleset::parse(
            "*filter\n-N MINE\n-A INPUT -j DROP\n-I INPUT -j MINE\n-I INPUT 2 -s 1.1.1.1 -j ACCEPT\nCOMMIT\n",
        )
        .expect("parse");
        let texts: Vec<_> = rs
            .chain("filter", "INPUT")
            .expect("INPUT")
            .rules()
            .iter()
            .map(|r| (r.index, r.text()))
            .collect();
        assert_eq!(
            texts,
            [
                (1, "-I INPUT -j MINE".to_string()),
                (2, "-I INPUT 2 -s 1.1.1.1 -j ACCEPT".to_string()),
                (3, "-A INPUT -j DROP".to_string())
            ]
        );
    }

    #[test]
    fn empty_and_unterminated_tables() {
        assert!(Ruleset::parse("").expect("empty").is_empty());
        assert!(
            Ruleset::parse("# only a comment\n\n")
                .expect("comments")
                .is_empty()
        );
        let rs = Ruleset::parse("*raw\n:PREROUTING ACCEPT [0:0]\n").expect("no COMMIT");
        assert_eq!(rs.tables().len(), 1);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(errline("-A INPUT -j DROP\n"), 1);
        assert_eq!(
            errline("*filter\n:INPUT ACCEPT\nCOMMIT\n-A INPUT -j DROP\n"),
            4
        );
        assert_eq!(
            errline("*filter\n:INPUT ACCEPT [0:0]\n-A NOPE -j DROP\nCOMMIT\n"),
            3
        );
        assert_eq!(
            errline(
                "*filter\n:INPUT ACCEPT\n# c\n-A INPUT -m comment --comment \"open -j DROP\nCOMMIT\n"
            ),
            4
        );
        assert_eq!(errline("COMMIT\n"), 1);
        assert_eq!(errline("*filter\n:INPUT MAYBE\n"), 2);
        assert_eq!(errline("*filter\nhello world\n"), 2);
        assert_eq!(errline("*\n"), 1);
        // A built-in chain needs no header; a user chain does.
        assert!(Ruleset::parse("*filter\n-A FORWARD -j DROP\nCOMMIT\n").is_ok());
        assert_eq!(errline("*raw\n-A FORWARD -j DROP\nCOMMIT\n"), 2);
    }

    #[test]
    fn parsed_data_is_shareable() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Ruleset>();
        send_sync::<super::super::IpsetStore>();
    }

    #[test]
    fn ipv6_only_rules_never_match() {
        let rs =
            Ruleset::parse("*filter\n:INPUT ACCEPT\n-A INPUT -6 -j DROP\nCOMMIT\n").expect("parse");
        let rule = &rs.chain("filter", "INPUT").expect("INPUT").rules()[0];
        assert!(matches!(
            rule.conds[0].kind,
            super::super::matches::CondKind::Const(false)
        ));
    }

    #[test]
    fn garbage_never_panics() {
        // A small deterministic generator (xorshift) over iptables-ish words.
        let words = [
            "*filter",
            "*nat",
            ":INPUT",
            ":X",
            "ACCEPT",
            "DROP",
            "-",
            "[0:0]",
            "COMMIT",
            "-A",
            "-I",
            "-N",
            "INPUT",
            "X",
            "-j",
            "-g",
            "-m",
            "tcp",
            "set",
            "statistic",
            "--dport",
            "--mode",
            "random",
            "--probability",
            "!",
            "\"",
            "'",
            "\\",
            "-s",
            "1.2.3.4/33",
            "-p",
            "--match-set",
            "src,dst",
            "--to-destination",
            "DNAT",
            "MARK",
            "--set-xmark",
            "0x4000/0x4000",
            "#",
            "é",
            "",
            " ",
            "\t",
            ":",
            "-A X",
            "--comment",
            "\"a b\"",
            "1:2",
            "99999999999",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let mut text = String::new();
            for _ in 0..(next() % 8) {
                for _ in 0..(next() % 10) {
                    text.push_str(words[(next() % words.len() as u64) as usize]);
                    text.push(if next() % 5 == 0 { '\n' } else { ' ' });
                }
                text.push('\n');
            }
            same_every_way(&text);
            if let Ok(rs) = Ruleset::parse(&text) {
                let p = crate::netfilter::test_util::tcp("10.0.0.1", "10.0.0.2", 80);
                for hook in [
                    super::super::Hook::Input,
                    super::super::Hook::Output,
                    super::super::Hook::Prerouting,
                ] {
                    let outs = super::super::traverse(
                        &rs,
                        &super::super::IpsetStore::default(),
                        &crate::netfilter::test_util::node_facts(),
                        hook,
                        &p,
                        Some("eth0"),
                        None,
                    );
                    assert!(!outs.is_empty());
                }
            }
            let _ = super::super::IpsetStore::parse(&text);
        }
        // Raw bytes turned into (lossy) text.
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..(next() % 120)).map(|_| (next() % 256) as u8).collect();
            let text = String::from_utf8_lossy(&bytes);
            same_every_way(&text);
            let _ = super::super::IpsetStore::parse(&text);
        }
    }

    #[test]
    fn large_dump_parses_quickly() {
        let mut text = String::from("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n");
        for i in 0..1000 {
            text.push_str(&format!(":KUBE-SVC-{i} - [0:0]\n"));
        }
        text.push_str(
            "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
        );
        for i in 0..100_000u32 {
            text.push_str(&format!(
                "-A KUBE-SERVICES -d 10.96.{}.{}/32 -p tcp -m comment --comment \"ns/svc-{i}:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-{}\n",
                (i >> 8) & 0xff,
                i & 0xff,
                i % 1000
            ));
        }
        text.push_str("COMMIT\n");
        // Best of three: the first parse of a process also pays for fresh pages.
        let mut took = std::time::Duration::MAX;
        for _ in 0..3 {
            let start = std::time::Instant::now();
            let rs = Ruleset::parse(&text).expect("parse");
            took = took.min(start.elapsed());
            assert_eq!(rs.rule_count(), 100_001);
        }
        // Debug builds are much slower; the 150 ms budget is for release.
        let budget = if cfg!(debug_assertions) { 5000 } else { 150 };
        assert!(took.as_millis() < budget, "parse took {took:?}");
    }
}
