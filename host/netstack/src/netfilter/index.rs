//! Dispatch index of long chains (kube-proxy's KUBE-SERVICES holds one rule
//! per service): rule positions grouped by the exact destination address a
//! rule requires. Evaluation jumps from one candidate to the next; the rules
//! skipped are exactly those whose `-d A/32` cannot match the packet, so the
//! result and the rule order are what a linear scan gives.

use std::collections::HashMap;

use rustc_hash::FxBuildHasher;

use super::matches::{Cond, CondKind, OneOrMany};

/// Chains shorter than this are scanned.
const MIN_RULES: usize = 64;

#[derive(Debug, Clone, Default)]
pub(crate) struct DstIndex {
    /// Destination → where its rules' positions are in `keyed`.
    by_dst: HashMap<u32, (u32, u32), FxBuildHasher>,
    /// Positions of the rules that require a destination, grouped by
    /// destination, ascending within a group (one allocation, not one per
    /// Service).
    keyed: Vec<u32>,
    /// Positions of every other rule (ascending).
    other: Vec<u32>,
    len: usize,
}

/// The single host address a condition requires, if it is `-d A/32`.
fn exact_dst(c: &Cond) -> Option<u32> {
    match &c.kind {
        CondKind::Dst(OneOrMany::One(m)) if !c.negate && m.mask == u32::MAX => Some(m.addr),
        _ => None,
    }
}

/// The first position in `v` at or after `pos`.
fn at_or_after(v: &[u32], pos: usize) -> Option<usize> {
    let i = v.partition_point(|&p| (p as usize) < pos);
    v.get(i).map(|&p| p as usize)
}

impl DstIndex {
    /// An index for a chain whose rules have `conds`, in order, when the
    /// chain is long and mostly keyed by destination.
    pub fn build<'a>(conds: impl ExactSizeIterator<Item = &'a [Cond]>) -> Option<DstIndex> {
        let len = conds.len();
        if len < MIN_RULES || u32::try_from(len).is_err() {
            return None;
        }
        let mut ix = DstIndex {
            len,
            ..DstIndex::default()
        };
        let mut keyed: Vec<(u32, u32)> = Vec::with_capacity(len);
        for (i, c) in conds.enumerate() {
            let pos = i as u32;
            match c.iter().find_map(exact_dst) {
                Some(a) => keyed.push((a, pos)),
                None => ix.other.push(pos),
            }
        }
        keyed.sort_unstable();
        ix.by_dst.reserve(keyed.len());
        ix.keyed = keyed.iter().map(|&(_, pos)| pos).collect();
        let mut start = 0u32;
        for group in keyed.chunk_by(|a, b| a.0 == b.0) {
            let len = group.len() as u32;
            ix.by_dst.insert(group[0].0, (start, len));
            start += len;
        }
        (ix.other.len() * 2 <= len).then_some(ix)
    }

    /// The first rule at or after `pos` that can match a packet to `dst`
    /// (the chain's length when none can).
    pub fn next(&self, pos: usize, dst: u32) -> usize {
        let other = at_or_after(&self.other, pos);
        let keyed = self.by_dst.get(&dst).and_then(|&(start, len)| {
            let v = self.keyed.get(start as usize..(start + len) as usize)?;
            at_or_after(v, pos)
        });
        match (other, keyed) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => self.len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{parse, run, tcp};
    use super::super::{Hook, Verdict};

    fn services(n: u32) -> String {
        let mut text =
            String::from("*nat\n:PREROUTING ACCEPT\n:SVC - [0:0]\n-A PREROUTING -j SVC\n");
        for i in 0..n {
            text.push_str(&format!(
                "-A SVC -d 10.96.{}.{}/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.244.0.{}:8080\n",
                i / 250,
                i % 250 + 1,
                i % 250 + 1
            ));
            if i == 150 {
                // An unkeyed rule in the middle and a negated one: both stay candidates.
                text.push_str("-A SVC -p udp -j DNAT --to-destination 9.9.9.9\n");
                text.push_str("-A SVC ! -d 10.96.0.1/32 -p tcp -m tcp --dport 81 -j DNAT --to-destination 8.8.8.8\n");
            }
        }
        text.push_str("-A SVC -d 10.96.0.5/32 -p tcp -j DNAT --to-destination 7.7.7.7\nCOMMIT\n");
        text
    }

    #[test]
    fn long_chains_are_indexed_short_ones_are_not() {
        let rs = parse(&services(200));
        let svc = rs.chain("nat", "SVC").expect("chain");
        let ix = svc.compiled().index.as_ref().expect("indexed");
        assert_eq!(ix.other.len(), 2);
        let dst = u32::from(std::net::Ipv4Addr::new(10, 96, 0, 5));
        assert_eq!(ix.next(0, dst), 4);
        assert_eq!(ix.next(5, dst), 151, "the unkeyed rules come next");
        assert_eq!(
            ix.next(153, dst),
            202,
            "then the second rule for this address"
        );
        assert_eq!(ix.next(203, dst), 203, "then the end");
        let rs = parse(&services(10));
        assert!(
            rs.chain("nat", "SVC")
                .expect("chain")
                .compiled()
                .index
                .is_none()
        );
    }

    #[test]
    fn indexed_traversal_keeps_rule_order() {
        let dump = services(200);
        let run = |dst: &str, dport: u16, udp: bool| {
            let mut p = tcp("10.244.1.5", dst, dport);
            if udp {
                p.protocol = crate::packet::Protocol::Udp;
            }
            let outs = run(&dump, Hook::Prerouting, &p, Some("cni0"), None);
            assert_eq!(outs.len(), 1);
            assert_eq!(outs[0].verdict, Verdict::Accept);
            (
                outs[0].packet.dst.to_string(),
                outs[0].decided_by.as_ref().map(|d| d.index),
            )
        };
        assert_eq!(run("10.96.0.5", 80, false), ("10.244.0.5".into(), Some(5)));
        assert_eq!(
            run("10.96.0.200", 80, false),
            ("10.244.0.200".into(), Some(202))
        );
        assert_eq!(run("10.96.0.180", 80, true), ("9.9.9.9".into(), Some(152)));
        assert_eq!(run("10.96.0.180", 81, false), ("8.8.8.8".into(), Some(153)));
        assert_eq!(run("10.96.0.5", 443, false), ("7.7.7.7".into(), Some(203)));
        assert_eq!(run("10.96.9.9", 80, false), ("10.96.9.9".into(), None));
    }
}
