//! nftables simulation: `nft -j list ruleset` read into tables, chains,
//! rules, sets and maps, and a packet walked through a netfilter hook
//! across nft base chains and iptables tables in the kernel's order.
//!
//! INTERFACE CONTRACT:
//! - `NftRuleset::parse(json) -> Result<NftRuleset, NftParseError>`; the
//!   error displays `line L column C: nftables[37].rule: message`.
//! - `traverse_hook(&HookRules, &dyn NetnsFacts, Hook, &Packet, iif, oif, &ConnState) -> Vec<Outcome>`:
//!   one hook, every table (iptables-legacy, iptables-nft, native nft) in order.
//! - `traverse_chain(&NftRuleset, Family, table, chain, ...) -> Option<Vec<Outcome>>`:
//!   one base chain and everything it jumps or goes to.
//!
//! Layout: `parse` reads the JSON into the `model`; `family` holds address
//! families, `expr` statements and expressions, `verdict` verdict statements
//! (also the data of verdict maps), `value` typed constants, `set` elements
//! and lookups, `render` prints rules back in nft syntax; `hook` orders a
//! hook's stages and decides which tables iptables evaluates; `eval` walks
//! them.
//!
//! Semantics in short, as for iptables: the packet is a connection's first
//! packet or (with `packet.reply`) a reply; an expression the simulator
//! cannot decide makes its match *unknown* and both sides are explored,
//! with the outcomes that depend on it `uncertain` and a note naming the
//! family, table, chain, rule handle and statement; `numgen` is a branch
//! whose every value really happens (each backend). Expressions the
//! simulator does not know are kept and evaluate as unknown.

mod eval;
mod expr;
mod family;
mod hook;
mod model;
mod parse;
mod render;
mod set;
mod value;
mod verdict;

#[cfg(test)]
mod tests;

pub use family::Family;
pub use hook::{
    HookRules, IptablesBackend, IptablesInput, Layer, evaluated_by_iptables, is_iptables_nft_table,
    traverse_bridge_hook, traverse_chain, traverse_hook,
};
pub use model::{BaseChain, ChainType, NftChain, NftRule, NftRuleset, NftSet, NftTable, Policy};
pub use parse::NftParseError;

impl NftRuleset {
    /// Parses `nft -j list ruleset` output (taken without `-t`, which drops
    /// set elements). Unknown expressions and statements are kept; only
    /// malformed JSON or an object that refers to one not listed before it
    /// fails.
    pub fn parse(json: &str) -> Result<NftRuleset, NftParseError> {
        parse::parse(json)
    }
}
