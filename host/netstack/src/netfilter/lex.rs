//! Shell-like tokenizing of one `iptables-save` / `ipset save` line.
//!
//! Words are separated by ASCII whitespace. Double quotes group words and
//! understand `\"` and `\\`; single quotes group words literally. A word made
//! of quoted and unquoted pieces (`a"b c"`) is one token.

use std::borrow::Cow;

/// One word of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub text: Cow<'a, str>,
    /// Any part of the word was quoted (then it is never an option name).
    pub quoted: bool,
    /// Byte span of the raw word in the line.
    pub start: usize,
    pub end: usize,
}

impl Token<'_> {
    /// An unquoted word starting with `-` (an option name).
    pub fn is_option(&self) -> bool {
        !self.quoted && self.text.starts_with('-') && self.text.len() > 1
    }

    /// An unquoted `!`.
    pub fn is_bang(&self) -> bool {
        !self.quoted && self.text == "!"
    }
}

/// Splits `line` into tokens; `Err` names an unterminated quote.
pub(crate) fn tokenize(line: &str) -> Result<Vec<Token<'_>>, String> {
    let mut tokens = Vec::new();
    tokenize_into(line, &mut tokens)?;
    Ok(tokens)
}

/// Like [`tokenize`], into a reused buffer (cleared first).
pub(crate) fn tokenize_into<'a>(line: &'a str, tokens: &mut Vec<Token<'a>>) -> Result<(), String> {
    tokens.clear();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if is_space(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        // Fast path: a plain word, or one `"..."` without escapes.
        if let Some((text, quoted, end)) = simple_word(line, i) {
            tokens.push(Token {
                text: Cow::Borrowed(text),
                quoted,
                start,
                end,
            });
            i = end;
            continue;
        }
        let mut owned: Option<String> = None;
        let mut quoted = false;
        // Start of the current unquoted run (pushed lazily into `owned`).
        let mut run = i;
        while i < bytes.len() && !is_space(bytes[i]) {
            match bytes[i] {
                b'"' => {
                    let buf = owned.get_or_insert_with(String::new);
                    buf.push_str(&line[run..i]);
                    quoted = true;
                    i += 1;
                    let mut seg = i;
                    loop {
                        match bytes.get(i) {
                            None => {
                                return Err(format!("unterminated quote at column {}", start + 1));
                            }
                            Some(b'"') => {
                                buf.push_str(&line[seg..i]);
                                i += 1;
                                break;
                            }
                            Some(b'\\') if matches!(bytes.get(i + 1), Some(b'"') | Some(b'\\')) => {
                                buf.push_str(&line[seg..i]);
                                seg = i + 1;
                                i += 2;
                            }
                            Some(_) => i += 1,
                        }
                    }
                    run = i;
                }
                b'\'' => {
                    let buf = owned.get_or_insert_with(String::new);
                    buf.push_str(&line[run..i]);
                    quoted = true;
                    i += 1;
                    let seg = i;
                    while i < bytes.len() && bytes[i] != b'\'' {
                        i += 1;
                    }
                    if i >= bytes.len() {
                        return Err(format!("unterminated quote at column {}", start + 1));
                    }
                    buf.push_str(&line[seg..i]);
                    i += 1;
                    run = i;
                }
                _ => i += 1,
            }
        }
        let text = match owned {
            Some(mut buf) => {
                buf.push_str(&line[run..i]);
                Cow::Owned(buf)
            }
            None => Cow::Borrowed(&line[start..i]),
        };
        tokens.push(Token {
            text,
            quoted,
            start,
            end: i,
        });
    }
    Ok(())
}

/// Byte classes: 0 plain, 1 whitespace, 2 quote or backslash.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b' ' as usize] = 1;
    t[b'\t' as usize] = 1;
    t[b'\n' as usize] = 1;
    t[b'\r' as usize] = 1;
    t[0x0c] = 1;
    t[b'"' as usize] = 2;
    t[b'\'' as usize] = 2;
    t
};

fn is_space(b: u8) -> bool {
    CLASS[b as usize] == 1
}

/// The word starting at `i` when it needs no unescaping: (text, quoted, end).
fn simple_word(line: &str, i: usize) -> Option<(&str, bool, usize)> {
    let bytes = line.as_bytes();
    if bytes[i] == b'"' {
        let close = i
            + 1
            + bytes[i + 1..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\')?;
        if bytes[close] != b'"' || bytes.get(close + 1).is_some_and(|&b| !is_space(b)) {
            return None;
        }
        return Some((&line[i + 1..close], true, close + 1));
    }
    let rest = &bytes[i..];
    let len = rest
        .iter()
        .position(|&b| CLASS[b as usize] != 0)
        .unwrap_or(rest.len());
    if rest.get(len).is_some_and(|&b| CLASS[b as usize] == 2) {
        return None;
    }
    Some((&line[i..i + len], false, i + len))
}

/// A `[packets:bytes]` counter word.
pub(crate) fn is_counter(tok: &Token<'_>) -> bool {
    !tok.quoted && is_counter_word(&tok.text)
}

/// An unquoted word is `[packets:bytes]`.
pub(crate) fn is_counter_word(t: &str) -> bool {
    let Some(inner) = t.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
        return false;
    };
    let Some((a, b)) = inner.split_once(':') else {
        return false;
    };
    !a.is_empty()
        && !b.is_empty()
        && a.bytes().all(|c| c.is_ascii_digit())
        && b.bytes().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        tokenize(line)
            .expect("tokenize")
            .into_iter()
            .map(|t| t.text.into_owned())
            .collect()
    }

    #[test]
    fn splits_on_whitespace() {
        assert_eq!(
            words("  -A  FORWARD\t-j DROP "),
            ["-A", "FORWARD", "-j", "DROP"]
        );
        assert!(words("").is_empty());
    }

    #[test]
    fn double_quotes_group_and_escape() {
        assert_eq!(words(r#"--comment "a b" x"#), ["--comment", "a b", "x"]);
        assert_eq!(words(r#""say \"hi\" \\ ok""#), [r#"say "hi" \ ok"#]);
        assert_eq!(words(r#"pre"mid dle"post"#), ["premid dlepost"]);
        assert_eq!(words(r#""""#), [""]);
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(words(r#"'a "b' c"#), [r#"a "b"#, "c"]);
    }

    #[test]
    fn quoted_words_are_not_options() {
        let toks = tokenize(r#"-j "-x" !"#).expect("tokenize");
        assert!(toks[0].is_option());
        assert!(!toks[1].is_option());
        assert!(toks[2].is_bang());
        assert_eq!((toks[1].start, toks[1].end), (3, 7));
    }

    #[test]
    fn unterminated_quotes_fail() {
        assert!(tokenize(r#"--comment "open"#).is_err());
        assert!(tokenize(r#"--comment "esc\""#).is_err());
        assert!(tokenize("'x").is_err());
    }

    #[test]
    fn counters() {
        let toks = tokenize(r#"[0:0] [12:3456] [a:1] "[1:2]" [1:]"#).expect("tokenize");
        let flags: Vec<bool> = toks.iter().map(is_counter).collect();
        assert_eq!(flags, [true, true, false, false, false]);
    }

    #[test]
    fn utf8_is_kept() {
        assert_eq!(
            words("--comment \"héllo wörld\" ü"),
            ["--comment", "héllo wörld", "ü"]
        );
    }
}
