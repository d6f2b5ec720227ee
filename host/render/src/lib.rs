//! Renderers of a diagnosis report: DOT, D2, SVG (laid out in-process) and
//! a self-contained html page, all drawn from one graph model built from
//! the engine's [`Report`]; plus the terminal colours of the text report.
//! Data flows one way: the engine's report in, text out.

use skoop_engine::report::Report;

pub mod d2;
pub mod dot;
pub mod escape;
pub mod graph;
pub mod html;
pub mod svg;
pub mod term;

pub use graph::Graph;

/// `dot`, `d2`, `svg` or `html` (without the `--http` form).
pub fn render(report: &Report, format: &str) -> Option<String> {
    let g = Graph::new(report);
    match format {
        "dot" => Some(dot::render(&g)),
        "d2" => Some(d2::render(&g)),
        "svg" => Some(svg::render(&g) + "\n"),
        "html" => Some(html::render(&g, None)),
        _ => None,
    }
}
