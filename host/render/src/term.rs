//! ANSI colours for the text report on a terminal: the level of each
//! suspicion, the end of a failed branch and the verdict. The words stay
//! as they are, so the coloured text reads the same without colour.

const RESET: &str = "\x1b[0m";

fn level_sgr(word: &str) -> Option<&'static str> {
    match word {
        "FATAL" => Some("\x1b[1;35m"),
        "CRITICAL" => Some("\x1b[1;31m"),
        "WARNING" => Some("\x1b[33m"),
        "INFO" => Some("\x1b[32m"),
        _ => None,
    }
}

/// Colour a text report as `Report::text` lays it out: suspicion lines
/// (`    LEVEL     message`), branch ends (`  #N DROPPED at …`) and the verdict.
pub fn colour(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let nl = &line[body.len()..];
        let indent = body.len() - body.trim_start().len();
        let word = body.trim_start().split(' ').next().unwrap_or("");
        if indent == 4
            && let Some(sgr) = level_sgr(word)
        {
            let (head, rest) = body.split_at(indent + word.len());
            out.push_str(&format!(
                "{}{sgr}{}{RESET}{rest}{nl}",
                &head[..indent],
                word
            ));
        } else if let Some(v) = body.strip_prefix("Verdict: ") {
            let sgr = if v.starts_with("HEALTHY") {
                "\x1b[1;32m"
            } else if v.starts_with("BROKEN") {
                "\x1b[1;31m"
            } else {
                "\x1b[1;33m"
            };
            out.push_str(&format!("{sgr}{body}{RESET}{nl}"));
        } else if indent == 2
            && body.trim_start().starts_with('#')
            && ["DROPPED", "LOOP", "HOP LIMIT"]
                .iter()
                .any(|w| body.contains(&format!(" {w} at ")))
        {
            out.push_str(&format!("\x1b[31m{body}{RESET}{nl}"));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Whether to colour stdout: a terminal, and `NO_COLOR` unset or empty
/// (no-color.org).
pub fn wanted(stdout_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stdout_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_levels_and_verdict_only() {
        let text = "Suspicions:\n  node-1\n    CRITICAL  rule says FATAL here\n\nVerdict: BROKEN (0 fatal)\n";
        let c = colour(text);
        assert!(c.contains("    \x1b[1;31mCRITICAL\x1b[0m  rule says FATAL here\n"));
        assert!(c.contains("\x1b[1;31mVerdict: BROKEN (0 fatal)\x1b[0m\n"));
        // Removing the escapes gives the text back.
        let plain = c.replace("\x1b[1;31m", "").replace("\x1b[0m", "");
        assert_eq!(plain, text);
    }

    #[test]
    fn no_color_and_pipes_get_none() {
        assert!(wanted(true, None));
        assert!(wanted(true, Some(std::ffi::OsStr::new(""))));
        assert!(!wanted(true, Some(std::ffi::OsStr::new("1"))));
        assert!(!wanted(false, None));
    }
}
