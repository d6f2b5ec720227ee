//! Renderers of a diagnosis report, all output of a diagnosis: the text
//! report (coloured while it is written, on a terminal), JSON, and DOT, D2,
//! SVG (laid out in-process) and a self-contained html page drawn from one
//! graph model built from the engine's [`Report`].
//! Data flows one way: the engine's report in, text out.

use skoop_engine::report::Report;

pub mod d2;
pub mod dot;
pub mod escape;
pub mod graph;
pub mod html;
pub mod svg;
pub mod term;
pub mod text;

pub use graph::Graph;
pub use text::Colour;

/// An output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Dot,
    D2,
    Svg,
    /// The page alone, without the `--http` form.
    Html,
}

impl Format {
    /// Every format: its name and what it is.
    pub const ALL: [(Format, &'static str, &'static str); 6] = [
        (Format::Text, "text", "for people"),
        (Format::Json, "json", "for tools: the report's fields"),
        (Format::Dot, "dot", "Graphviz DOT"),
        (Format::D2, "d2", "D2 script"),
        (Format::Svg, "svg", "SVG, laid out by skoop itself"),
        (
            Format::Html,
            "html",
            "one self-contained html page (inline SVG, no network fetch)",
        ),
    ];

    /// The format named `name` (`text`, `json`, ...).
    pub fn named(name: &str) -> Option<Format> {
        Format::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(f, _, _)| *f)
    }
}

/// `report` in `format`; `colour` applies to text only.
pub fn render(report: &Report, format: Format, colour: Colour) -> String {
    match format {
        Format::Text => text::render(report, colour),
        Format::Json => text::json(report),
        Format::Dot => dot::render(&Graph::new(report)),
        Format::D2 => d2::render(&Graph::new(report)),
        Format::Svg => svg::render(&Graph::new(report)) + "\n",
        Format::Html => html::render(&Graph::new(report), None),
    }
}
