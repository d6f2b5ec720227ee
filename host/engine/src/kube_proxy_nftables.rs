//! kube-proxy's table in nftables mode (`ip kube-proxy`), read where the
//! Service cross-check must name a rule the walk did not meet: the `numgen`
//! rule missing a branch, the masquerade marks, the chain lacking its jump
//! to `mark-for-masquerade`. The proxier names a Service port's chains
//! `<prefix><hash>-<namespace>/<name>/<protocol>/<port name>`
//! (servicePortChainNameBase in pkg/proxy/nftables/proxier.go), so they
//! are found by that base whatever the hash.

use skoop_netstack::netfilter::RuleHit;
use skoop_netstack::nftables::{Family, NftChain, NftRule, NftRuleset, NftTable};

/// The chain kube-proxy jumps to for masquerade.
pub const MARK_FOR_MASQUERADE: &str = "mark-for-masquerade";

/// A Service port's chain base: `namespace/name/protocol/port name`.
pub fn service_base(namespace: &str, name: &str, protocol: &str, port_name: &str) -> String {
    format!("{namespace}/{name}/{protocol}/{port_name}")
}

/// An endpoint chain's base: the Service port's, then `__ip/port`.
pub fn endpoint_base(service: &str, ip: std::net::Ipv4Addr, port: u16) -> String {
    format!("{service}__{ip}/{port}")
}

/// A mark and the rule that sets or tests it, described.
pub type MarkRule = (u32, String);

#[derive(Clone, Copy)]
pub struct KubeProxyTable<'a> {
    table: &'a NftTable,
}

impl<'a> KubeProxyTable<'a> {
    pub fn of(nft: &'a NftRuleset) -> Option<KubeProxyTable<'a>> {
        nft.table(Family::Ip, "kube-proxy")
            .map(|table| KubeProxyTable { table })
    }

    /// The chain `<prefix><hash>-<base>`.
    pub fn chain(&self, prefix: &str, base: &str) -> Option<&'a NftChain> {
        self.table.chains().iter().find(|c| {
            c.name
                .strip_prefix(prefix)
                .and_then(|rest| rest.split_once('-'))
                .is_some_and(|(_, b)| b == base)
        })
    }

    /// A rule as a report names it.
    pub fn describe(&self, chain: &NftChain, rule: &NftRule) -> String {
        RuleHit {
            table: self.table.name.clone(),
            chain: chain.name.clone(),
            index: rule.index,
            rule: rule.text().to_string(),
            family: Some(self.table.family.name().to_string()),
            handle: Some(rule.handle),
        }
        .describe()
    }

    /// The Service chain's `numgen random mod N vmap { … }` rule when some
    /// value below N has no branch (a connection drawing it falls through
    /// without DNAT): the rule described, and the values.
    pub fn numgen_gaps(&self, service: &str) -> Option<(String, Vec<u32>)> {
        let chain = self.chain("service-", service)?;
        chain.rules().iter().find_map(|rule| {
            let gaps = numgen_gaps(rule.text())?;
            (!gaps.is_empty()).then(|| (self.describe(chain, rule), gaps))
        })
    }

    /// The mark `mark-for-masquerade` sets and the one `masquerading`
    /// tests, each with its rule described.
    pub fn masquerade_marks(&self) -> (Option<MarkRule>, Option<MarkRule>) {
        let mark_after = |chain: &str, op: &str| {
            let chain = self.table.chain(chain)?;
            chain.rules().iter().find_map(|rule| {
                let text = rule.text();
                let value = text.split_once(op)?.1.split_whitespace().next()?;
                let mark = u32::from_str_radix(value.trim_start_matches("0x"), 16).ok()?;
                Some((mark, self.describe(chain, rule)))
            })
        };
        (
            mark_after(MARK_FOR_MASQUERADE, "meta mark set meta mark | "),
            mark_after("masquerading", "meta mark & "),
        )
    }

    /// The chain `<prefix><hash>-<base>`, described, when none of its rules
    /// jumps to `mark-for-masquerade`.
    pub fn lacking_masquerade_jump(&self, prefix: &str, base: &str) -> Option<String> {
        let chain = self.chain(prefix, base)?;
        let jump = format!("jump {MARK_FOR_MASQUERADE}");
        let marks = chain.rules().iter().any(|r| r.text().contains(&jump));
        (!marks).then(|| {
            format!(
                "nftables {} {} chain {}",
                self.table.family.name(),
                self.table.name,
                chain.name
            )
        })
    }
}

/// The values below N that `numgen random mod N vmap { K : …, … }` has no
/// branch for; None when the rule is not one (or its keys are not plain
/// numbers).
fn numgen_gaps(text: &str) -> Option<Vec<u32>> {
    let rest = text.split_once("numgen random mod ")?.1;
    let (n, rest) = rest.split_once(' ')?;
    let n: u32 = n.parse().ok()?;
    let body = rest.strip_prefix("vmap {")?;
    let body = &body[..body.find('}')?];
    let mut keys = Vec::new();
    for element in body.split(',') {
        let key = element.split_once(':')?.0.trim();
        keys.push(key.parse::<u32>().ok()?);
    }
    Some((0..n).filter(|k| !keys.contains(k)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numgen_gaps_are_the_values_without_a_branch() {
        let full = "numgen random mod 2 vmap { 0 : goto endpoint-A-x, 1 : goto endpoint-B-y }";
        assert_eq!(numgen_gaps(full), Some(vec![]));
        let one = "numgen random mod 3 vmap { 0 : goto endpoint-A-x }";
        assert_eq!(numgen_gaps(one), Some(vec![1, 2]));
        assert_eq!(numgen_gaps("meta l4proto tcp dnat to 10.0.0.1:80"), None);
        assert_eq!(
            numgen_gaps("numgen random mod 2 vmap { 0-1 : goto a }"),
            None
        );
    }

    #[test]
    fn chains_are_found_by_base_whatever_the_hash() {
        let json = r#"{"nftables": [
            {"table": {"family": "ip", "name": "kube-proxy", "handle": 1}},
            {"chain": {"family": "ip", "table": "kube-proxy", "name": "service-ABCDEFGH-default/web/tcp/http", "handle": 2}},
            {"chain": {"family": "ip", "table": "kube-proxy", "name": "mark-for-masquerade", "handle": 3}},
            {"chain": {"family": "ip", "table": "kube-proxy", "name": "masquerading", "handle": 4}},
            {"rule": {"family": "ip", "table": "kube-proxy", "chain": "service-ABCDEFGH-default/web/tcp/http", "handle": 5,
              "expr": [{"vmap": {"key": {"numgen": {"mode": "random", "mod": 2, "offset": 0}},
                                 "data": {"set": [[0, {"goto": {"target": "endpoint-X-a"}}]]}}}]}},
            {"rule": {"family": "ip", "table": "kube-proxy", "chain": "mark-for-masquerade", "handle": 6,
              "expr": [{"mangle": {"key": {"meta": {"key": "mark"}},
                                   "value": {"|": [{"meta": {"key": "mark"}}, 32768]}}}]}},
            {"rule": {"family": "ip", "table": "kube-proxy", "chain": "masquerading", "handle": 7,
              "expr": [{"match": {"op": "==", "left": {"&": [{"meta": {"key": "mark"}}, 16384]}, "right": 0}},
                       {"return": null}]}}
        ]}"#;
        let nft = NftRuleset::parse(json).expect("ruleset");
        let kp = KubeProxyTable::of(&nft).expect("kube-proxy table");
        let base = service_base("default", "web", "tcp", "http");
        assert!(kp.chain("service-", &base).is_some());
        assert!(kp.chain("service-", "default/web/tcp/other").is_none());
        assert!(kp.chain("external-", &base).is_none());
        let (rule, gaps) = kp.numgen_gaps(&base).expect("a gap");
        assert_eq!(gaps, vec![1]);
        assert!(
            rule.contains("chain service-ABCDEFGH-default/web/tcp/http rule handle 5"),
            "{rule}"
        );
        let (set, tested) = kp.masquerade_marks();
        assert_eq!(set.map(|(m, _)| m), Some(0x8000));
        assert_eq!(tested.map(|(m, _)| m), Some(0x4000));
        assert!(kp.lacking_masquerade_jump("service-", &base).is_some());
    }
}
