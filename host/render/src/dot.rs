//! Graphviz DOT: `dot -Tsvg` draws it; suspicions are in each node's
//! tooltip and count, cluster suspicions in a box of their own.

use std::fmt::Write as _;

use skoop_engine::diagnose::Leg;
use skoop_engine::path::NetNodeKind;

use crate::escape::dot as q;
use crate::graph::{Graph, leg_name, level_colour, level_name, node_kind_name};

/// Stroke colour of request and reply links.
pub fn leg_colour(d: Leg) -> &'static str {
    match d {
        Leg::Request => "#1f5fa8",
        Leg::Reply => "#2b8a5c",
    }
}

pub fn render(g: &Graph) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph skoop {{");
    let mut title = format!("skoop {}  {}", g.flow, g.verdict_line);
    if let Some(p) = &g.probe_line {
        title.push('\n');
        title.push_str(p);
    }
    let _ = writeln!(
        out,
        "  graph [rankdir=LR, labelloc=t, fontname=\"Helvetica\", label={}];",
        q(&title)
    );
    let _ = writeln!(out, "  node [style=filled, fontname=\"Helvetica\"];");
    let _ = writeln!(out, "  edge [fontname=\"Helvetica\", fontsize=10];");
    for n in &g.nodes {
        let shape = match n.hop.kind {
            NetNodeKind::Pod => "shape=box, style=\"rounded,filled\"",
            NetNodeKind::Node => "shape=box3d",
            NetNodeKind::External => "shape=ellipse",
        };
        let mut label = format!("{}\n{}", node_kind_name(n.hop.kind), n.hop.id);
        if !n.suspicions.is_empty() {
            let _ = write!(
                label,
                "\n{} ({} suspicions)",
                level_name(n.level),
                n.suspicions.len()
            );
        }
        if n.dropped {
            label.push_str("\nDROPPED HERE");
        }
        let mut tip: Vec<String> = n
            .suspicions
            .iter()
            .map(|s| format!("{} {}", s.level.name(), s.message))
            .collect();
        tip.extend(n.ends.iter().cloned());
        let mark = if n.dropped {
            ", color=\"#c00000\", penwidth=3, peripheries=2"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {} [{shape}, label={}, fillcolor=\"{}\", tooltip={}{mark}];",
            n.key,
            q(&label),
            level_colour(n.level),
            q(&tip.join("\n"))
        );
    }
    for e in &g.edges {
        let mut label = format!("{}\n{}", e.link_label(), e.branch_label());
        if e.packet_changed {
            let _ = write!(label, "\n{}", e.packet);
        }
        let style = match e.leg {
            Leg::Request => "solid",
            Leg::Reply => "dashed",
        };
        let tip = format!(
            "{} {} -> {}: {}",
            leg_name(e.leg),
            g.nodes[e.from].hop,
            g.nodes[e.to].hop,
            e.packet
        );
        let _ = writeln!(
            out,
            "  {} -> {} [label={}, color=\"{}\", fontcolor=\"{}\", style={style}, tooltip={}];",
            g.nodes[e.from].key,
            g.nodes[e.to].key,
            q(&label),
            leg_colour(e.leg),
            leg_colour(e.leg),
            q(&tip)
        );
    }
    if !g.cluster.is_empty() || g.error.is_some() {
        let mut lines: Vec<String> = g.cluster.iter().map(Graph::cluster_line).collect();
        if let Some(e) = &g.error {
            lines.push(format!("Extension failure: {e}"));
        }
        let worst = g.cluster.iter().map(|s| s.level).max();
        let _ = writeln!(out, "  subgraph cluster_suspicions {{");
        let _ = writeln!(out, "    label=\"Cluster suspicions\";");
        let _ = writeln!(
            out,
            "    suspicions [shape=note, fillcolor=\"{}\", label={}, tooltip={}];",
            level_colour(worst),
            q(&(lines.join("\n") + "\n")),
            q(&lines.join("\n"))
        );
        let _ = writeln!(out, "  }}");
    }
    let _ = writeln!(out, "}}");
    out
}
