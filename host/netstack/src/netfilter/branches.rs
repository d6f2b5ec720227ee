//! The branch tree of one traversal and its merge into distinct outcomes.
//!
//! Branch points are either *chance* (statistic: both sides really happen) or
//! *unknown* (an unknown match: only one side happens, we cannot tell which).
//! An outcome is certain when it is reached whatever the unknown rules do:
//! bottom-up, a chance node is certain of the union of its sides' certain
//! outcomes and an unknown node of their intersection.

use std::collections::{BTreeSet, HashMap};

use super::{Outcome, Verdict};
use crate::packet::Packet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BranchKind {
    Chance,
    Unknown,
}

/// A finished branch.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    pub outcome: Outcome,
    /// (node, side) this branch descends from; side 0 is "matched".
    pub parent: Option<(usize, usize)>,
    /// Something on the path could not be simulated exactly.
    pub forced_uncertain: bool,
    /// Unknown branch points on the path (fewer makes a better representative).
    pub unknowns: u32,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    kind: BranchKind,
    parent: Option<(usize, usize)>,
}

#[derive(Debug, Default)]
pub(crate) struct Tree {
    nodes: Vec<Node>,
    leaves: Vec<Leaf>,
}

type Set = BTreeSet<usize>;

fn verdict_key(v: Verdict) -> u8 {
    match v {
        Verdict::Accept => 0,
        Verdict::Drop => 1,
        Verdict::Reject => 2,
    }
}

struct Sink {
    sides: Vec<[Option<Set>; 2]>,
    root: Option<Set>,
}

impl Sink {
    fn deposit(&mut self, parent: Option<(usize, usize)>, set: Set) {
        let slot = match parent {
            None => &mut self.root,
            Some((n, s)) => match self.sides.get_mut(n).and_then(|x| x.get_mut(s)) {
                Some(slot) => slot,
                None => return,
            },
        };
        match slot {
            Some(existing) => existing.extend(set),
            None => *slot = Some(set),
        }
    }
}

impl Tree {
    /// A new branch point; returns its id.
    pub fn node(&mut self, kind: BranchKind, parent: Option<(usize, usize)>) -> usize {
        self.nodes.push(Node { kind, parent });
        self.nodes.len() - 1
    }

    pub fn leaf(&mut self, leaf: Leaf) {
        self.leaves.push(leaf);
    }

    /// Distinct outcomes (same verdict and packet merged) in discovery order,
    /// at most `cap` of them, each completed by `finish` with the index of
    /// the leaf it is (in the order the leaves were added): a traversal
    /// makes what is costly (the trace as `RuleHit`s) for these alone.
    pub fn outcomes(self, cap: usize, mut finish: impl FnMut(usize, &mut Outcome)) -> Vec<Outcome> {
        let mut index: HashMap<(u8, Packet), usize> = HashMap::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut leaf_group = Vec::with_capacity(self.leaves.len());
        for (i, leaf) in self.leaves.iter().enumerate() {
            let key = (verdict_key(leaf.outcome.verdict), leaf.outcome.packet);
            let g = *index.entry(key).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[g].push(i);
            leaf_group.push(g);
        }

        let mut sink = Sink {
            sides: vec![[None, None]; self.nodes.len()],
            root: None,
        };
        for (leaf, &g) in self.leaves.iter().zip(&leaf_group) {
            let set = if leaf.forced_uncertain {
                Set::new()
            } else {
                Set::from([g])
            };
            sink.deposit(leaf.parent, set);
        }
        // Children are always created after their parent.
        for n in (0..self.nodes.len()).rev() {
            let [a, b] = std::mem::take(&mut sink.sides[n]);
            let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
            let set = match self.nodes[n].kind {
                BranchKind::Chance => a.union(&b).copied().collect(),
                BranchKind::Unknown => a.intersection(&b).copied().collect(),
            };
            sink.deposit(self.nodes[n].parent, set);
        }
        let certain = sink.root.unwrap_or_default();

        let total = groups.len();
        let mut leaves: Vec<Option<Leaf>> = self.leaves.into_iter().map(Some).collect();
        let mut out = Vec::with_capacity(total.min(cap));
        for (g, members) in groups.iter().enumerate().take(cap) {
            let Some(&rep) = members
                .iter()
                .min_by_key(|&&i| (leaves[i].as_ref().map_or(u32::MAX, |l| l.unknowns), i))
            else {
                continue;
            };
            let Some(leaf) = leaves[rep].take() else {
                continue;
            };
            let mut o = leaf.outcome;
            finish(rep, &mut o);
            o.uncertain = !certain.contains(&g);
            if total > cap {
                o.notes.push(format!(
                    "outcome limit reached: {} more outcomes not shown",
                    total - cap
                ));
            }
            out.push(o);
        }
        out
    }
}
