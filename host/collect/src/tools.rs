//! Facts read by running programs in the calling thread's netns:
//! `iptables-save` (nft and legacy backends), `ipset save` and
//! `nft -j list ruleset`.

use std::process::Command;

/// What a program run gave: its stdout, or why there is none.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{program} failed ({}): {}", out.status, err.trim()));
    }
    String::from_utf8(out.stdout).map_err(|_| format!("{program} printed non-UTF-8 output"))
}

/// True when an `iptables-save` text holds at least one table.
fn has_tables(text: &str) -> bool {
    text.lines().any(|l| l.starts_with('*'))
}

/// The IPv4 ruleset: whichever of the nft and legacy backends holds tables,
/// both concatenated if both do; plain `iptables-save` when neither variant
/// can be run. An empty string means no rules at all.
pub fn iptables() -> Result<String, String> {
    let nft = run("iptables-nft-save", &[]);
    let legacy = run("iptables-legacy-save", &[]);
    match (nft, legacy) {
        (Err(a), Err(b)) => run("iptables-save", &[]).map_err(|c| format!("{a}; {b}; {c}")),
        (nft, legacy) => Ok(combine(nft.ok(), legacy.ok())),
    }
}

/// Join the two backends' outputs, keeping only those that hold tables.
pub fn combine(nft: Option<String>, legacy: Option<String>) -> String {
    let parts: Vec<String> = [nft, legacy]
        .into_iter()
        .flatten()
        .filter(|t| has_tables(t))
        .collect();
    parts.concat()
}

/// `ipset save`.
pub fn ipset() -> Result<String, String> {
    run("ipset", &["save"])
}

/// `nft -j list ruleset`: every nftables table, iptables-nft's included,
/// with set and map elements (no `-t`). `nft` missing is an error: the
/// diagnosis then says it cannot check nftables, never that it is fine.
pub fn nft() -> Result<String, String> {
    run("nft", &["-j", "list", "ruleset"])
}

/// `nft list chains`: the chain headers in nft's own syntax, which name an
/// ingress chain's devices where the JSON does not.
pub fn nft_chains() -> Result<String, String> {
    run("nft", &["list", "chains"])
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\nCOMMIT\n";

    #[test]
    fn only_backends_with_tables_are_kept() {
        assert_eq!(combine(Some(RULES.into()), Some(String::new())), RULES);
        assert_eq!(
            combine(Some("# nothing\n".into()), Some(RULES.into())),
            RULES
        );
        assert_eq!(
            combine(Some(RULES.into()), Some(RULES.into())),
            format!("{RULES}{RULES}")
        );
        assert_eq!(combine(None, None), "");
    }
}
