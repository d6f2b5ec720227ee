//! Escaping for each output language. Every string that comes from facts,
//! objects or extensions passes through one of these before it is written.

/// Text or attribute value in XML/HTML/SVG: no markup can start.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// JSON placed inside a `<script>` element: `<`, `>` and `&` become \u escapes
/// so no `</script>` or `<!--` can end or change the element.
pub fn script_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// A Graphviz double-quoted string, quotes included. Backslashes are doubled
/// so no escString sequence (`\N`, `\l`, …) is interpreted; newlines in `s`
/// become line breaks.
pub fn dot(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A D2 double-quoted string, quotes included: `\` escapes quotes,
/// backslashes and `$` (no `${…}` substitution).
pub fn d2(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_cannot_start() {
        assert_eq!(
            xml("<img src=x onerror='a()'>&"),
            "&lt;img src=x onerror=&#39;a()&#39;&gt;&amp;"
        );
        assert_eq!(
            script_json("\"</script><!--\""),
            "\"\\u003c/script\\u003e\\u003c!--\""
        );
    }

    #[test]
    fn quoted_strings_stay_closed() {
        assert_eq!(dot("a\"b\\N"), "\"a\\\"b\\\\N\"");
        assert_eq!(d2("${x} \"q\""), "\"\\${x} \\\"q\\\"\"");
    }
}
