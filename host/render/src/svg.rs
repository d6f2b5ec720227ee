//! SVG drawn in-process: a layered left-to-right layout (the request's
//! order from the source), request links forward, reply links curving back
//! underneath, suspicions as tooltips and as a list under the graph.

use std::fmt::Write as _;

use skoop_engine::diagnose::Leg;
use skoop_engine::path::NetNodeKind;
use skoop_engine::suspicion::Suspicion;

use crate::dot::leg_colour;
use crate::escape::xml;
use crate::graph::{Graph, level_colour, level_name, node_kind_name};

/// Width of one character of the monospace font at FONT px.
const CHAR_W: f64 = 7.3;
const FONT: f64 = 12.0;
const LINE: f64 = 15.0;
const ROW_GAP: f64 = 70.0;
const WRAP: usize = 110;

/// Where each net-node is drawn.
#[derive(Debug, Clone, Copy)]
struct Place {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

fn text_w(s: &str) -> f64 {
    s.chars().count() as f64 * CHAR_W
}

fn node_lines(g: &Graph, i: usize) -> Vec<String> {
    let n = &g.nodes[i];
    let mut lines = vec![node_kind_name(n.hop.kind).to_string(), n.hop.id.clone()];
    if !n.suspicions.is_empty() {
        lines.push(format!("{} ({})", level_name(n.level), n.suspicions.len()));
    }
    lines
}

fn edge_lines(g: &Graph, i: usize) -> Vec<String> {
    let e = &g.edges[i];
    let mut lines = vec![e.link_label(), e.branch_label()];
    if e.packet_changed {
        lines.push(e.packet.to_string());
    }
    lines
}

/// Rank of each node: its distance from the source along request links,
/// then along any link for nodes only the reply reaches.
fn ranks(g: &Graph) -> Vec<usize> {
    let mut rank: Vec<Option<usize>> = g.nodes.iter().map(|n| n.source.then_some(0)).collect();
    if rank.iter().all(Option::is_none) && !rank.is_empty() {
        rank[0] = Some(0);
    }
    for pass in [Some(Leg::Request), None] {
        loop {
            let mut changed = false;
            for e in &g.edges {
                if pass.is_some_and(|d| d != e.leg) || e.from == e.to {
                    continue;
                }
                if let (Some(r), None) = (rank[e.from], rank[e.to]) {
                    rank[e.to] = Some(r + 1);
                    changed = true;
                } else if pass.is_none()
                    && let (None, Some(r)) = (rank[e.from], rank[e.to])
                {
                    rank[e.from] = Some(r + 1);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }
    rank.into_iter().map(|r| r.unwrap_or(0)).collect()
}

fn tspans(out: &mut String, x: f64, y: f64, lines: &[String], anchor: &str, class: &str) {
    let _ = write!(
        out,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" class=\"{class}\">"
    );
    for (i, l) in lines.iter().enumerate() {
        let _ = write!(
            out,
            "<tspan x=\"{x:.1}\" dy=\"{}\">{}</tspan>",
            if i == 0 { 0.0 } else { LINE },
            xml(l)
        );
    }
    out.push_str("</text>");
}

fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in s.split(' ') {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
        while cur.chars().count() > width {
            let head: String = cur.chars().take(width).collect();
            let tail: String = cur.chars().skip(width).collect();
            lines.push(head);
            cur = tail;
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// The tooltip of a node: its id, its suspicions and how branches ended there.
pub fn node_tooltip(g: &Graph, i: usize) -> String {
    let n = &g.nodes[i];
    let mut t = n.hop.to_string();
    for s in &n.suspicions {
        let _ = write!(t, "\n{} {}", s.level.name(), s.message);
    }
    for e in &n.ends {
        let _ = write!(t, "\n{e}");
    }
    t
}

/// The SVG document (standalone, or inline in the html page).
pub fn render(g: &Graph) -> String {
    let rank = ranks(g);
    let cols = rank.iter().copied().max().map_or(0, |m| m + 1);
    let mut col_nodes: Vec<Vec<usize>> = vec![Vec::new(); cols];
    for (i, &r) in rank.iter().enumerate() {
        col_nodes[r].push(i);
    }
    let sizes: Vec<(f64, f64)> = (0..g.nodes.len())
        .map(|i| {
            let lines = node_lines(g, i);
            let w = lines.iter().map(|l| text_w(l)).fold(110.0, f64::max) + 24.0;
            (w, lines.len() as f64 * LINE + 16.0)
        })
        .collect();
    let col_w: Vec<f64> = col_nodes
        .iter()
        .map(|c| c.iter().map(|&i| sizes[i].0).fold(0.0, f64::max))
        .collect();
    // The gap after each column fits the labels of the links that cross it.
    let mut gap = vec![150.0f64; cols];
    for (i, e) in g.edges.iter().enumerate() {
        let (a, b) = (rank[e.from], rank[e.to]);
        if b == a + 1 {
            let w = edge_lines(g, i)
                .iter()
                .map(|l| text_w(l))
                .fold(0.0, f64::max);
            gap[a] = gap[a].max(w + 50.0);
        }
    }
    let header = 64.0;
    let max_rows = col_nodes.iter().map(Vec::len).max().unwrap_or(0);
    let row_h = sizes.iter().map(|s| s.1).fold(0.0, f64::max) + ROW_GAP;
    let mut place = vec![
        Place {
            x: 0.0,
            y: 0.0,
            w: 0.0,
            h: 0.0
        };
        g.nodes.len()
    ];
    let mut x = 30.0;
    for (c, nodes) in col_nodes.iter().enumerate() {
        let offset = (max_rows - nodes.len()) as f64 * row_h / 2.0;
        for (r, &i) in nodes.iter().enumerate() {
            let (w, h) = sizes[i];
            place[i] = Place {
                x: x + (col_w[c] - w) / 2.0,
                y: header + 40.0 + offset + r as f64 * row_h + (row_h - ROW_GAP - h) / 2.0,
                w,
                h,
            };
        }
        x += col_w[c] + gap[c];
    }
    let graph_w = x - gap.last().copied().unwrap_or(0.0) + 30.0;
    let graph_bottom = header + 40.0 + max_rows as f64 * row_h;

    let mut body = String::new();
    // Links.
    let mut depth = graph_bottom - ROW_GAP / 2.0;
    let mut parallel: Vec<((usize, usize), usize)> = Vec::new();
    let mut loops = vec![0usize; g.nodes.len()];
    for (i, e) in g.edges.iter().enumerate() {
        let (a, b) = (place[e.from], place[e.to]);
        let lines = edge_lines(g, i);
        let label_h = lines.len() as f64 * LINE;
        let colour = leg_colour(e.leg);
        let dash = if e.leg == Leg::Reply {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let (path, lx, ly) = if e.from == e.to {
            let k = loops[e.from] as f64;
            loops[e.from] += 1;
            let top = a.y - 30.0 - k * (label_h + 14.0);
            let path = format!(
                "M{:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
                a.x + a.w * 0.3,
                a.y,
                a.x + a.w * 0.2,
                top,
                a.x + a.w * 0.8,
                top,
                a.x + a.w * 0.7,
                a.y
            );
            (path, a.x + a.w / 2.0, top + 6.0 - label_h)
        } else if rank[e.to] > rank[e.from] {
            let key = (e.from, e.to);
            let k = match parallel.iter_mut().find(|(p, _)| *p == key) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    parallel.push((key, 0));
                    0
                }
            } as f64;
            let off = k * (label_h + 10.0);
            let (x1, y1) = (a.x + a.w, a.y + a.h / 2.0);
            let (x2, y2) = (b.x, b.y + b.h / 2.0);
            let mx = (x1 + x2) / 2.0;
            let path = format!(
                "M{x1:.1},{y1:.1} C{mx:.1},{:.1} {mx:.1},{:.1} {x2:.1},{y2:.1}",
                y1 + off * 1.3,
                y2 + off * 1.3
            );
            (path, mx, (y1 + y2) / 2.0 + off - label_h - 2.0)
        } else {
            depth += label_h + 24.0;
            let (x1, y1) = (a.x + a.w / 2.0, a.y + a.h);
            let (x2, y2) = (b.x + b.w / 2.0, b.y + b.h);
            // The curve's lowest point (t = 0.5) is at `depth`.
            let c = (depth * 8.0 - (y1 + y2)) / 6.0;
            let path = format!("M{x1:.1},{y1:.1} C{x1:.1},{c:.1} {x2:.1},{c:.1} {x2:.1},{y2:.1}");
            (path, (x1 + x2) / 2.0, depth - label_h + 2.0)
        };
        let tip = format!(
            "{}\n{} -> {}\n{}\npacket {}",
            e.branch_label(),
            g.nodes[e.from].hop,
            g.nodes[e.to].hop,
            e.link_label(),
            e.packet
        );
        let _ = write!(
            body,
            "<g class=\"edge {}\" data-key=\"{}\"><title>{}</title><path d=\"{path}\" fill=\"none\" stroke=\"transparent\" stroke-width=\"12\"/><path d=\"{path}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.6\"{dash} marker-end=\"url(#arrow-{})\"/>",
            crate::graph::leg_name(e.leg),
            e.key,
            xml(&tip),
            crate::graph::leg_name(e.leg),
        );
        let w = lines.iter().map(|l| text_w(l)).fold(0.0, f64::max);
        let _ = write!(
            body,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#ffffff\" fill-opacity=\"0.85\" rx=\"3\"/>",
            lx - w / 2.0 - 3.0,
            ly - FONT,
            w + 6.0,
            label_h + 4.0
        );
        tspans(&mut body, lx, ly, &lines, "middle", "elabel");
        body.push_str("</g>");
    }
    // Net-nodes, over the links.
    for (i, n) in g.nodes.iter().enumerate() {
        let p = place[i];
        let fill = level_colour(n.level);
        let (stroke, sw) = if n.dropped {
            ("#c00000", 4.0)
        } else {
            ("#44546a", 1.4)
        };
        let _ = write!(
            body,
            "<g class=\"node level-{}\" data-key=\"{}\" tabindex=\"0\"><title>{}</title>",
            level_name(n.level).to_lowercase(),
            n.key,
            xml(&node_tooltip(g, i))
        );
        match n.hop.kind {
            NetNodeKind::Pod => {
                let _ = write!(
                    body,
                    "<rect class=\"shape\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"14\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{sw}\"/>",
                    p.x, p.y, p.w, p.h
                );
            }
            NetNodeKind::Node => {
                let _ = write!(
                    body,
                    "<rect class=\"shape\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{sw}\"/><line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{stroke}\"/>",
                    p.x,
                    p.y,
                    p.w,
                    p.h,
                    p.x,
                    p.y + LINE + 4.0,
                    p.x + p.w,
                    p.y + LINE + 4.0
                );
            }
            NetNodeKind::External => {
                let _ = write!(
                    body,
                    "<ellipse class=\"shape\" cx=\"{:.1}\" cy=\"{:.1}\" rx=\"{:.1}\" ry=\"{:.1}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{sw}\" stroke-dasharray=\"5 3\"/>",
                    p.x + p.w / 2.0,
                    p.y + p.h / 2.0,
                    p.w / 2.0 + 8.0,
                    p.h / 2.0 + 4.0
                );
            }
        }
        tspans(
            &mut body,
            p.x + p.w / 2.0,
            p.y + FONT + 4.0,
            &node_lines(g, i),
            "middle",
            "nlabel",
        );
        if n.dropped {
            let _ = write!(
                body,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"dropmark\" fill=\"#c00000\">\u{2716} DROPPED</text>",
                p.x + p.w / 2.0,
                p.y - 6.0
            );
        }
        if n.source {
            let _ = write!(
                body,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"srcmark\">source</text>",
                p.x + p.w / 2.0,
                p.y - 6.0
            );
        }
        body.push_str("</g>");
    }
    // Suspicions under the graph: cluster-level ones first, then by net-node.
    let mut y = depth + 50.0;
    let mut suspicions = String::new();
    let mut width = graph_w;
    let mut section = |out: &mut String, y: &mut f64, title: &str, list: &[&Suspicion]| {
        let _ = write!(
            out,
            "<text x=\"30\" y=\"{:.1}\" class=\"fhead\">{}</text>",
            *y,
            xml(title)
        );
        *y += LINE + 4.0;
        for s in list {
            let lines = wrap(&s.message, WRAP);
            let _ = write!(
                out,
                "<g class=\"suspicion\"><title>{}</title><rect x=\"30\" y=\"{:.1}\" width=\"76\" height=\"{:.1}\" rx=\"3\" fill=\"{}\"/><text x=\"68\" y=\"{:.1}\" text-anchor=\"middle\" class=\"lvl\">{}</text>",
                xml(&s.message),
                *y - FONT + 1.0,
                LINE,
                level_colour(Some(s.level)),
                *y,
                s.level.name()
            );
            tspans(out, 116.0, *y, &lines, "start", "ftext");
            out.push_str("</g>");
            width = width.max(116.0 + lines.iter().map(|l| text_w(l)).fold(0.0, f64::max) + 30.0);
            *y += lines.len() as f64 * LINE + 6.0;
        }
        *y += 10.0;
    };
    let cluster: Vec<&Suspicion> = g.cluster.iter().collect();
    section(
        &mut suspicions,
        &mut y,
        if cluster.is_empty() {
            "Cluster suspicions: none"
        } else {
            "Cluster suspicions (policy, configuration, objects off the path)"
        },
        &cluster,
    );
    for n in g.nodes.iter().filter(|n| !n.suspicions.is_empty()) {
        let list: Vec<&Suspicion> = n.suspicions.iter().collect();
        section(&mut suspicions, &mut y, &n.hop.to_string(), &list);
    }
    if let Some(e) = &g.error {
        let _ = write!(
            suspicions,
            "<text x=\"30\" y=\"{y:.1}\" class=\"fhead\" fill=\"#c00000\">{}</text>",
            xml(&format!("Extension failure: {e}; the path is partial"))
        );
        y += LINE + 10.0;
    }
    if let Some(p) = &g.probe_line {
        let _ = write!(
            suspicions,
            "<text x=\"30\" y=\"{y:.1}\" class=\"fhead\">Probe (a real connection)</text>"
        );
        y += LINE + 4.0;
        let lines = wrap(p, WRAP + 12);
        let mut probe = String::new();
        tspans(&mut probe, 30.0, y, &lines, "start", "ftext");
        let _ = write!(suspicions, "<g class=\"probe\">{probe}</g>");
        width = width.max(30.0 + lines.iter().map(|l| text_w(l)).fold(0.0, f64::max) + 30.0);
        y += lines.len() as f64 * LINE + 10.0;
    }
    let height = y + 10.0;
    // Header: flow, verdict, legend.
    let mut head = String::new();
    let verdict_colour = match g.verdict.as_str() {
        "healthy" => "#2b8a5c",
        "broken" => "#c00000",
        _ => "#b36b00",
    };
    let _ = write!(
        head,
        "<text x=\"30\" y=\"26\" class=\"title\">{}</text><text x=\"30\" y=\"46\" class=\"verdict\" fill=\"{verdict_colour}\">{}</text>",
        xml(&format!("skoop diagnose {}", g.flow)),
        xml(&g.verdict_line)
    );
    let mut lx = 30.0;
    let ly = header;
    for l in [
        None,
        Some(skoop_engine::suspicion::Level::Info),
        Some(skoop_engine::suspicion::Level::Warning),
        Some(skoop_engine::suspicion::Level::Critical),
        Some(skoop_engine::suspicion::Level::Fatal),
    ] {
        let _ = write!(
            head,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"14\" height=\"14\" fill=\"{}\" stroke=\"#44546a\"/><text x=\"{:.1}\" y=\"{ly:.1}\" class=\"legend\">{}</text>",
            ly - 11.0,
            level_colour(l),
            lx + 18.0,
            level_name(l)
        );
        lx += 18.0 + text_w(level_name(l)) + 16.0;
    }
    for d in [Leg::Request, Leg::Reply] {
        let dash = if d == Leg::Reply {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = write!(
            head,
            "<line x1=\"{lx:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"1.6\"{dash}/><text x=\"{:.1}\" y=\"{ly:.1}\" class=\"legend\">{}</text>",
            ly - 4.0,
            lx + 30.0,
            ly - 4.0,
            leg_colour(d),
            lx + 36.0,
            crate::graph::leg_name(d)
        );
        lx += 36.0 + text_w(crate::graph::leg_name(d)) + 16.0;
    }
    width = width.max(lx + 20.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"skoop-graph\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"{FONT}\">"
    );
    svg.push_str("<style>.title{font-size:16px;font-weight:bold}.verdict{font-weight:bold}.elabel{font-size:12px}.nlabel{font-size:12px}.fhead{font-weight:bold}.lvl{font-size:10px;font-weight:bold}.dropmark{font-weight:bold}.srcmark{fill:#1f5fa8}.legend{font-size:11px}</style>");
    svg.push_str("<defs>");
    for d in [Leg::Request, Leg::Reply] {
        let _ = write!(
            svg,
            "<marker id=\"arrow-{}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{}\"/></marker>",
            crate::graph::leg_name(d),
            leg_colour(d)
        );
    }
    svg.push_str("</defs>");
    let _ = write!(
        svg,
        "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>{head}{body}{suspicions}</svg>"
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_every_character() {
        let s = "a bb ccc dddddddddddd e";
        let lines = wrap(s, 5);
        assert!(lines.iter().all(|l| l.chars().count() <= 5));
        assert_eq!(lines.join(" ").replace(' ', ""), s.replace(' ', ""));
    }
}
