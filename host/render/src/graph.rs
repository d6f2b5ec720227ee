//! The report as a graph: net-nodes with their worst level and suspicions,
//! links merged where branches share them, branches numbered as the text
//! report numbers them. Every graphical renderer draws this one model.

use skoop_engine::diagnose::{End, HopDecision, Leg};
use skoop_engine::path::{Action, LinkKind, NetNode, NetNodeKind};
use skoop_engine::report::Report;
use skoop_engine::suspicion::{Level, Suspicion};
use skoop_netstack::packet::Packet;

/// One net-node of the drawing.
#[derive(Debug, Clone)]
pub struct GNode {
    /// A stable key for the drawing (`n0`, `n1`, …); never user text.
    pub key: String,
    pub hop: NetNode,
    /// The worst level of its suspicions.
    pub level: Option<Level>,
    pub suspicions: Vec<Suspicion>,
    /// How branches ended here ("request #2 dropped: …").
    pub ends: Vec<String>,
    /// A branch was dropped here.
    pub dropped: bool,
    /// The packet starts here.
    pub source: bool,
    /// What the kernel pipeline decided here, one line per branch.
    pub decisions: Vec<String>,
}

/// One link of the drawing (links the trace repeats per branch are merged).
#[derive(Debug, Clone)]
pub struct GEdge {
    pub key: String,
    pub from: usize,
    pub to: usize,
    pub leg: Leg,
    pub kind: LinkKind,
    pub action: Action,
    pub oif: Option<String>,
    pub iif: Option<String>,
    pub packet: Packet,
    /// NAT or encapsulation changed the packet on the way to this link
    /// (or it is the first link of its direction).
    pub packet_changed: bool,
    /// Branches crossing it, e.g. `request #1`.
    pub branches: Vec<String>,
    /// The route and rules of the sender's pipeline that sent the packet here.
    pub decided_by: Vec<String>,
}

/// One branch: its name, how it ended and its edges in order.
#[derive(Debug, Clone)]
pub struct GBranch {
    pub name: String,
    pub leg: Leg,
    pub end: String,
    pub failed: bool,
    pub edges: Vec<usize>,
}

/// The graph of one report.
#[derive(Debug, Clone)]
pub struct Graph {
    /// `10.244.0.5 -> 10.96.100.10:80/tcp`.
    pub flow: String,
    /// healthy, broken, partial, incomplete.
    pub verdict: String,
    pub verdict_line: String,
    /// The simulation beside a real packet (`--probe`), as the text report
    /// writes it.
    pub probe_line: Option<String>,
    pub nodes: Vec<GNode>,
    pub edges: Vec<GEdge>,
    pub branches: Vec<GBranch>,
    /// Suspicions about no net-node of the path (cluster-wide: policy,
    /// configuration, or about an object the path does not cross).
    pub cluster: Vec<Suspicion>,
    pub error: Option<String>,
}

pub fn level_name(l: Option<Level>) -> &'static str {
    l.map(Level::name).unwrap_or("OK")
}

/// Fill colour of a net-node by its worst level (the legend shows them).
pub fn level_colour(l: Option<Level>) -> &'static str {
    match l {
        None => "#e6edf5",
        Some(Level::Info) => "#8fd19e",
        Some(Level::Warning) => "#ffc45c",
        Some(Level::Critical) => "#f2646e",
        Some(Level::Fatal) => "#b0124a",
    }
}

pub fn kind_name(k: LinkKind) -> &'static str {
    k.name()
}

pub fn node_kind_name(k: NetNodeKind) -> &'static str {
    match k {
        NetNodeKind::Pod => "pod",
        NetNodeKind::Node => "node",
        NetNodeKind::External => "external",
    }
}

pub fn action_name(a: Action) -> &'static str {
    match a {
        Action::Send => "send",
        Action::Forward => "forward",
        Action::Serve => "serve",
        Action::Drop => "drop",
        Action::Unknown => "unknown",
    }
}

pub fn leg_name(d: Leg) -> &'static str {
    match d {
        Leg::Request => "request",
        Leg::Reply => "reply",
    }
}

impl GEdge {
    /// `veth eth0 > cali12`.
    pub fn link_label(&self) -> String {
        let mut s = kind_name(self.kind).to_string();
        match (&self.oif, &self.iif) {
            (Some(o), Some(i)) => s.push_str(&format!(" {o} > {i}")),
            (Some(o), None) => s.push_str(&format!(" {o} >")),
            (None, Some(i)) => s.push_str(&format!(" > {i}")),
            (None, None) => {}
        }
        s
    }

    /// `request #1, #2`.
    pub fn branch_label(&self) -> String {
        let dir = leg_name(self.leg);
        let nums: Vec<&str> = self
            .branches
            .iter()
            .filter_map(|b| b.strip_prefix(dir).map(str::trim))
            .collect();
        format!("{dir} {}", nums.join(", "))
    }
}

fn push_new(list: &mut Vec<String>, s: String) {
    if !list.contains(&s) {
        list.push(s);
    }
}

/// One decision, a line for what happened and one per route and rule:
/// `request in node-1 from eth0: 10.244.0.5:… -> …`, `  => transmit on cni0 …`,
/// `  route …`, `  filter FORWARD #3: …`.
fn decision_line(d: &HopDecision) -> String {
    let x = &d.decision;
    let mut line = format!("{} in {}", leg_name(d.leg), x.netns);
    if let Some(iif) = &x.iif {
        line.push_str(&format!(" from {iif}"));
    }
    line.push_str(&format!(": {}\n  => {}", x.packet, x.fate));
    if x.out != x.packet {
        line.push_str(&format!(" as {}", x.out));
    }
    if let Some(r) = &x.route {
        line.push_str(&format!("\n  route {r}"));
    }
    for r in &x.rules {
        line.push_str(&format!("\n  {r}"));
    }
    line
}

impl Graph {
    pub fn new(report: &Report) -> Graph {
        let mut nodes: Vec<GNode> = Vec::new();
        fn index(nodes: &mut Vec<GNode>, hop: &NetNode) -> usize {
            if let Some(i) = nodes.iter().position(|n| &n.hop == hop) {
                return i;
            }
            nodes.push(GNode {
                key: format!("n{}", nodes.len()),
                hop: hop.clone(),
                level: None,
                suspicions: Vec::new(),
                ends: Vec::new(),
                dropped: false,
                source: false,
                decisions: Vec::new(),
            });
            nodes.len() - 1
        }
        for hop in &report.path.nodes {
            index(&mut nodes, hop);
        }
        let mut edges: Vec<GEdge> = Vec::new();
        // Trace link index -> drawing edge index.
        let mut edge_of = Vec::with_capacity(report.path.links.len());
        for l in &report.path.links {
            let from = index(&mut nodes, &l.from);
            let to = index(&mut nodes, &l.to);
            let same = edges.iter().position(|e| {
                e.from == from
                    && e.to == to
                    && e.leg == l.leg
                    && e.kind == l.kind
                    && e.oif == l.oif
                    && e.iif == l.iif
                    && e.packet == l.packet
                    && e.action == l.action
            });
            let i = match same {
                Some(i) => i,
                None => {
                    edges.push(GEdge {
                        key: format!("e{}", edges.len()),
                        from,
                        to,
                        leg: l.leg,
                        kind: l.kind,
                        action: l.action,
                        oif: l.oif.clone(),
                        iif: l.iif.clone(),
                        packet: l.packet,
                        packet_changed: false,
                        branches: Vec::new(),
                        decided_by: Vec::new(),
                    });
                    edges.len() - 1
                }
            };
            edge_of.push(i);
        }
        let mut branches = Vec::new();
        for dir in [Leg::Request, Leg::Reply] {
            let mut n = 0;
            for b in report.path.branches.iter().filter(|b| b.leg == dir) {
                n += 1;
                let name = format!("{} #{n}", leg_name(dir));
                let start = index(&mut nodes, &b.start);
                if dir == Leg::Request {
                    nodes[start].source = true;
                }
                let (end, at, failed) = match &b.end {
                    End::Delivered { at } => (format!("delivered at {at}"), at, false),
                    End::Dropped { at, packet: None } => (format!("dropped at {at}"), at, true),
                    End::Dropped {
                        at,
                        packet: Some(p),
                    } => (format!("dropped at {at}: {}", p.tuple()), at, true),
                    End::Loop { at } => (format!("loops at {at}"), at, true),
                    End::HopLimit { at } => (format!("hop limit reached at {at}"), at, true),
                    End::Unfinished { at, why } => {
                        (format!("not followed past {at}: {why}"), at, false)
                    }
                };
                let at = index(&mut nodes, at);
                nodes[at].ends.push(format!("{name} {end}"));
                if matches!(b.end, End::Dropped { .. }) {
                    nodes[at].dropped = true;
                }
                let mut last: Option<Packet> = None;
                let mut list = Vec::new();
                for &li in &b.links {
                    let Some(&ei) = edge_of.get(li) else {
                        continue;
                    };
                    let e = &mut edges[ei];
                    if last != Some(e.packet) {
                        e.packet_changed = true;
                    }
                    last = Some(e.packet);
                    if !e.branches.contains(&name) {
                        e.branches.push(name.clone());
                    }
                    list.push(ei);
                }
                branches.push(GBranch {
                    name,
                    leg: dir,
                    end,
                    failed,
                    edges: list,
                });
            }
        }
        for d in &report.path.decisions {
            let at = index(&mut nodes, &d.at);
            nodes[at].decisions.push(decision_line(d));
            // The link this decision sent: same sender, direction and
            // interface; the packet may since have been encapsulated.
            let decided = |e: &GEdge| {
                e.from == at
                    && e.leg == d.leg
                    && d.decision.oif.is_some()
                    && e.oif == d.decision.oif
            };
            let exact = edges
                .iter()
                .position(|e| decided(e) && e.packet == d.decision.out);
            let edge = exact.or_else(|| edges.iter().position(decided));
            if let Some(e) = edge {
                let e = &mut edges[e];
                if let Some(r) = &d.decision.route {
                    push_new(&mut e.decided_by, format!("route: {r}"));
                }
                for r in &d.decision.rules {
                    push_new(&mut e.decided_by, format!("rule: {r}"));
                }
            }
        }
        let mut cluster = Vec::new();
        for s in &report.suspicions {
            let at = s
                .node
                .as_ref()
                .and_then(|id| nodes.iter().position(|n| &n.hop.id == id));
            match at {
                Some(i) => {
                    let n = &mut nodes[i];
                    n.level = n.level.max(Some(s.level));
                    n.suspicions.push(s.clone());
                }
                None => cluster.push(s.clone()),
            }
        }
        Graph {
            flow: format!(
                "{} -> {}:{}/{}",
                report.src_label(),
                report.dst_label(),
                report.port,
                report.protocol
            ),
            verdict: report.verdict.to_string(),
            verdict_line: crate::text::verdict_line(report, crate::Colour::Off),
            probe_line: crate::text::probe_line(report, crate::Colour::Off),
            nodes,
            edges,
            branches,
            cluster,
            error: report.error.clone(),
        }
    }

    /// Every suspicion of the report, on the path or not.
    pub fn all_suspicions(&self) -> impl Iterator<Item = &Suspicion> {
        self.nodes
            .iter()
            .flat_map(|n| n.suspicions.iter())
            .chain(self.cluster.iter())
    }

    /// The label of a cluster suspicion: its message, prefixed with what it is
    /// about when that is not on the path.
    pub fn cluster_line(s: &Suspicion) -> String {
        match &s.node {
            Some(n) => format!("{} [{n}] {}", s.level.name(), s.message),
            None => format!("{} {}", s.level.name(), s.message),
        }
    }
}
