//! Text an extension hands back, made safe to print and to keep: the secret
//! values of the diagnosis blanked out, and control characters shown as
//! escapes instead of acting on the terminal.

use std::sync::{Arc, PoisonError, RwLock};

/// Shorter values are not worth blanking (and would mangle ordinary text).
const MIN_SECRET_LEN: usize = 4;

/// The values of config keys declared secret, blanked out of every text an
/// extension hands back (a provider holds its credentials and could try to
/// put them in a message). One set serves every extension of a registry: a
/// clone shares it, so values added for one instance are blanked in all.
#[derive(Debug, Clone, Default)]
pub struct Secrets(Arc<RwLock<Vec<String>>>);

impl Secrets {
    /// Add secret values to blank out.
    pub fn add(&self, values: impl IntoIterator<Item = String>) {
        // A poisoned lock only means a panic elsewhere; the list is intact.
        let mut list = self.0.write().unwrap_or_else(PoisonError::into_inner);
        for v in values {
            if v.len() >= MIN_SECRET_LEN && !list.contains(&v) {
                list.push(v);
            }
        }
    }

    /// `s` with every secret value replaced by `[secret]`.
    pub fn redact(&self, s: &str) -> String {
        let list = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let mut out = s.to_string();
        for v in list.iter() {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "[secret]");
            }
        }
        out
    }
}

/// Extension-provided text made safe to print: secrets blanked, then
/// control characters (escape sequences, carriage returns, newlines) and
/// bidirectional overrides shown as `\u{..}` escapes.
pub fn clean(secrets: &Secrets, s: &str) -> String {
    escape(&secrets.redact(s))
}

/// `s` with control characters and bidirectional overrides escaped.
pub fn escape(s: &str) -> String {
    if !s.chars().any(hostile) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if hostile(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn hostile(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_blanked_and_control_characters_escaped() {
        let secrets = Secrets::default();
        secrets.add(["hunter2-secret-value".to_string(), "abc".to_string()]);
        assert_eq!(
            clean(&secrets, "key hunter2-secret-value\x1b[2J abc"),
            "key [secret]\\u{1b}[2J abc"
        );
        // A clone shares the set.
        let other = secrets.clone();
        other.add(["another-one".to_string()]);
        assert_eq!(secrets.redact("another-one"), "[secret]");
    }

    #[test]
    fn escape_sequences_and_bidi_overrides_are_shown_not_obeyed() {
        assert_eq!(escape("plain text: ok"), "plain text: ok");
        assert_eq!(
            escape("\u{1b}[31mred\u{1b}[0m\r\nfake line"),
            "\\u{1b}[31mred\\u{1b}[0m\\u{d}\\u{a}fake line"
        );
        assert_eq!(escape("a\u{202e}b\u{7}"), "a\\u{202e}b\\u{7}");
        // Non-ASCII text that is not a control character stays as it is.
        assert_eq!(escape("café → ü"), "café → ü");
    }
}
