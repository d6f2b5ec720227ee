//! D2 (`d2 out.d2 out.svg` draws it): nodes by kind and worst level, the
//! suspicions as tooltips, cluster suspicions in a node of their own.

use std::fmt::Write as _;

use skoop_engine::diagnose::Leg;
use skoop_engine::path::NetNodeKind;

use crate::dot::leg_colour;
use crate::escape::d2 as q;
use crate::graph::{Graph, level_colour, level_name, node_kind_name};

pub fn render(g: &Graph) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "direction: right");
    let _ = writeln!(
        out,
        "title: {} {{\n  shape: text\n  near: top-center\n}}",
        q(&match &g.probe_line {
            Some(p) => format!("skoop {}  {}\n{p}", g.flow, g.verdict_line),
            None => format!("skoop {}  {}", g.flow, g.verdict_line),
        })
    );
    for n in &g.nodes {
        let shape = match n.hop.kind {
            NetNodeKind::Pod => "rectangle",
            NetNodeKind::Node => "hexagon",
            NetNodeKind::External => "cloud",
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
        let _ = writeln!(out, "{}: {} {{", n.key, q(&label));
        let _ = writeln!(out, "  shape: {shape}");
        let _ = writeln!(out, "  style.fill: \"{}\"", level_colour(n.level));
        if n.dropped {
            let _ = writeln!(out, "  style.stroke: \"#c00000\"");
            let _ = writeln!(out, "  style.stroke-width: 4");
        }
        let mut tip: Vec<String> = n
            .suspicions
            .iter()
            .map(|s| format!("{} {}", s.level.name(), s.message))
            .collect();
        tip.extend(n.ends.iter().cloned());
        if !tip.is_empty() {
            let _ = writeln!(out, "  tooltip: {}", q(&tip.join("\n")));
        }
        let _ = writeln!(out, "}}");
    }
    for e in &g.edges {
        let mut label = format!("{}\n{}", e.link_label(), e.branch_label());
        if e.packet_changed {
            let _ = write!(label, "\n{}", e.packet);
        }
        let _ = writeln!(
            out,
            "{} -> {}: {} {{",
            g.nodes[e.from].key,
            g.nodes[e.to].key,
            q(&label)
        );
        let _ = writeln!(out, "  style.stroke: \"{}\"", leg_colour(e.leg));
        if e.leg == Leg::Reply {
            let _ = writeln!(out, "  style.stroke-dash: 4");
        }
        let _ = writeln!(out, "}}");
    }
    if !g.cluster.is_empty() || g.error.is_some() {
        let mut lines: Vec<String> = g.cluster.iter().map(Graph::cluster_line).collect();
        if let Some(e) = &g.error {
            lines.push(format!("Extension failure: {e}"));
        }
        let worst = g.cluster.iter().map(|s| s.level).max();
        let _ = writeln!(
            out,
            "suspicions: {} {{\n  shape: page\n  style.fill: \"{}\"\n}}",
            q(&format!("Cluster suspicions\n{}", lines.join("\n"))),
            level_colour(worst)
        );
    }
    out
}
