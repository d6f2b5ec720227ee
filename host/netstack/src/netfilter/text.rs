//! The text of an `iptables-save` dump as a node dump holds it.
//!
//! A bundle's node file carries the dump as a JSON string: many megabytes
//! with a `\n` escape between lines and a `\"` around every comment. Read
//! from a file it stays as written — the JSON literal — and a line is
//! unescaped only when something reads it: the parser checks structure and
//! quoting on the escaped form, and a chain's rules are unescaped when a
//! traversal first enters the chain. Read through [`read_shared`], it is
//! not even copied out of the file's text: a node with rules for ten
//! thousand Services is one copy of its dump in memory, not three.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// `iptables-save` output, plain or still JSON-escaped. Cheap to clone.
#[derive(Clone)]
pub struct RulesText {
    /// The text, or a file that holds it as a JSON string literal.
    text: Arc<String>,
    /// Where in `text`: the whole of it, or the inside of the literal.
    start: usize,
    end: usize,
    /// The span is JSON-escaped.
    json: bool,
}

thread_local! {
    /// The text being deserialized by [`read_shared`] on this thread.
    static SOURCE: RefCell<Option<Arc<String>>> = const { RefCell::new(None) };
}

/// Runs `read`, a deserialization of `text` itself (`serde_json::from_str`),
/// so that the [`RulesText`]s it reads keep a share of `text` rather than a
/// copy of their part of it.
pub fn read_shared<T>(text: &Arc<String>, read: impl FnOnce(&str) -> T) -> T {
    struct Restore(Option<Arc<String>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            SOURCE.with(|s| *s.borrow_mut() = previous);
        }
    }
    let _restore = Restore(SOURCE.with(|s| s.borrow_mut().replace(text.clone())));
    read(text)
}

impl std::fmt::Debug for RulesText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RulesText")
            .field("bytes", &self.text.len())
            .field("json", &self.json)
            .finish()
    }
}

impl From<String> for RulesText {
    fn from(text: String) -> RulesText {
        RulesText {
            start: 0,
            end: text.len(),
            text: Arc::new(text),
            json: false,
        }
    }
}

impl From<&str> for RulesText {
    fn from(text: &str) -> RulesText {
        RulesText::from(text.to_string())
    }
}

impl RulesText {
    /// The text a line's byte spans refer to: the dump itself, or the inside
    /// of the JSON literal.
    pub(crate) fn raw(&self) -> &str {
        self.text.get(self.start..self.end).unwrap_or_default()
    }

    /// The spans of `raw` are JSON-escaped.
    pub(crate) fn escaped(&self) -> bool {
        self.json
    }

    /// The whole dump, unescaped.
    pub fn text(&self) -> Cow<'_, str> {
        if self.json {
            unescape(self.raw())
        } else {
            Cow::Borrowed(self.raw())
        }
    }

    /// The dump contains `needle`, searched without unescaping where the
    /// escapes cannot hide a match: a needle with nothing to escape, in a
    /// text with no `\u` escape, matches where it is written — unless the
    /// match starts with an escape's letter (`n` of `\n`).
    pub fn contains(&self, needle: &str) -> bool {
        let raw = self.raw();
        let plain_needle = !needle.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
        if !self.json {
            return raw.contains(needle);
        }
        if !plain_needle || raw.contains("\\u") {
            return self.text().contains(needle);
        }
        let step = needle.chars().next().map_or(1, char::len_utf8);
        let mut from = 0;
        while let Some(i) = raw.get(from..).and_then(|r| r.find(needle)) {
            let at = from + i;
            let backslashes = raw.as_bytes()[..at]
                .iter()
                .rev()
                .take_while(|&&b| b == b'\\')
                .count();
            if backslashes.is_multiple_of(2) {
                return true;
            }
            from = at + step;
        }
        false
    }

    /// One span of [`RulesText::raw`] as text: borrowed unless it has escapes.
    pub(crate) fn span(&self, start: usize, end: usize) -> Cow<'_, str> {
        let raw = self.raw().get(start..end).unwrap_or_default();
        if self.json && raw.contains('\\') {
            unescape(raw)
        } else {
            Cow::Borrowed(raw)
        }
    }
}

/// A piece of a validated JSON string literal's inside, unescaped. Pieces
/// are cut at line breaks, never inside an escape.
pub(crate) fn unescape(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    // The escapes of a rule line are `\"` and `\\`, now and then `\t`:
    // undone here; `\u` (surrogate pairs and all) is left to serde_json.
    if !raw.contains("\\u") {
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(i) = rest.find('\\') {
            out.push_str(&rest[..i]);
            let c = match rest.as_bytes().get(i + 1) {
                Some(b'n') => '\n',
                Some(b't') => '\t',
                Some(b'r') => '\r',
                Some(b'b') => '\u{8}',
                Some(b'f') => '\u{c}',
                Some(b'/') => '/',
                Some(b'"') => '"',
                _ => '\\',
            };
            out.push(c);
            rest = rest.get(i + 2..).unwrap_or_default();
        }
        out.push_str(rest);
        return Cow::Owned(out);
    }
    let mut literal = String::with_capacity(raw.len() + 2);
    literal.push('"');
    literal.push_str(raw);
    literal.push('"');
    // Cannot fail on a piece of a literal serde_json has validated.
    Cow::Owned(serde_json::from_str(&literal).unwrap_or_default())
}

impl Serialize for RulesText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

impl<'de> Deserialize<'de> for RulesText {
    /// Keeps the JSON literal as written, not unescaped: under
    /// [`read_shared`] a share of the text being read, else a copy.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RulesText, D::Error> {
        let not_a_string = || D::Error::custom("expected the iptables-save text as a string");
        if let Some(source) = SOURCE.with(|s| s.borrow().clone()) {
            let raw = <&'de RawValue>::deserialize(d)?.get();
            let at = (raw.as_ptr() as usize).wrapping_sub(source.as_ptr() as usize);
            if source
                .get(at..at + raw.len())
                .is_some_and(|s| s.as_ptr() == raw.as_ptr())
            {
                return literal(source, at, raw.len()).ok_or_else(not_a_string);
            }
            return literal(Arc::new(raw.to_string()), 0, raw.len()).ok_or_else(not_a_string);
        }
        let raw: Box<str> = Box::<RawValue>::deserialize(d)?.into();
        let len = raw.len();
        literal(Arc::new(raw.into_string()), 0, len).ok_or_else(not_a_string)
    }
}

/// The JSON string literal at `at..at + len` of `text`.
fn literal(text: Arc<String>, at: usize, len: usize) -> Option<RulesText> {
    let raw = text.get(at..at + len)?;
    if len < 2 || !raw.starts_with('"') {
        return None;
    }
    Some(RulesText {
        text,
        start: at + 1,
        end: at + len - 1,
        json: true,
    })
}

/// One line of a dump: its span in [`RulesText::raw`], and what the
/// parser's fast path needs to know without unescaping it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawLine {
    pub start: usize,
    pub end: usize,
    /// Escapes other than `\"` (JSON) or any backslash (plain): the line
    /// must be unescaped and tokenized in full.
    pub complex: bool,
    /// Double quotes in the line, as the tokenizer sees them.
    pub quotes: u32,
}

/// The lines of a dump as `str::lines` splits the unescaped text (a final
/// line break ends the last line rather than starting an empty one).
pub(crate) fn lines(text: &RulesText) -> Lines<'_> {
    Lines {
        raw: text.raw().as_bytes(),
        json: text.escaped(),
        start: 0,
    }
}

/// Iterator of [`lines`].
pub(crate) struct Lines<'a> {
    raw: &'a [u8],
    json: bool,
    /// Where the next line starts.
    start: usize,
}

impl Iterator for Lines<'_> {
    type Item = RawLine;

    fn next(&mut self) -> Option<RawLine> {
        if self.start >= self.raw.len() {
            return None;
        }
        let (line, next) = if self.json {
            json_line(self.raw, self.start)
        } else {
            plain_line(self.raw, self.start)
        };
        self.start = next;
        Some(line)
    }
}

/// The plain line at `start`, and where the next one starts.
fn plain_line(raw: &[u8], start: usize) -> (RawLine, usize) {
    let end = memchr::memchr(b'\n', &raw[start..]).map_or(raw.len(), |i| start + i);
    let line = &raw[start..end];
    let quotes = u32::try_from(memchr::memchr_iter(b'"', line).count()).unwrap_or(u32::MAX);
    let raw_line = RawLine {
        start,
        end,
        complex: memchr::memchr(b'\\', line).is_some(),
        quotes,
    };
    (raw_line, end + 1)
}

/// The escaped line at `start`, and where the next one starts.
fn json_line(raw: &[u8], start: usize) -> (RawLine, usize) {
    let mut at = start;
    let mut complex = false;
    let mut quotes = 0u32;
    while let Some(i) = raw.get(at..).and_then(|r| memchr::memchr(b'\\', r)) {
        let esc = at + i;
        let (len, newline) = match raw.get(esc + 1) {
            Some(b'n') => (2, true),
            Some(b'"') => {
                quotes = quotes.saturating_add(1);
                (2, false)
            }
            Some(b'u') => {
                complex = true;
                let hex = raw.get(esc + 2..esc + 6).unwrap_or_default();
                (6, hex.eq_ignore_ascii_case(b"000a"))
            }
            _ => {
                complex = true;
                (2, false)
            }
        };
        if newline {
            let line = RawLine {
                start,
                end: esc,
                complex,
                quotes,
            };
            return (line, esc + len);
        }
        at = esc + len;
    }
    let line = RawLine {
        start,
        end: raw.len(),
        complex,
        quotes,
    };
    (line, raw.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> RulesText {
        serde_json::from_str(&serde_json::to_string(text).unwrap()).unwrap()
    }

    fn line_texts(t: &RulesText) -> Vec<String> {
        lines(t)
            .map(|l| t.span(l.start, l.end).into_owned())
            .collect()
    }

    #[test]
    fn lines_split_like_str_lines() {
        for text in [
            "",
            "\n",
            "a",
            "a\n",
            "a\nb",
            "a\n\nb\n",
            "a\r\nb\r\n",
            "-A X -m comment --comment \"q \\\" \\\\ x\" -j Y\n*nat\n",
            "tab\there\u{a0}é\n",
        ] {
            let want: Vec<&str> = text.lines().collect();
            let got = line_texts(&json(text));
            let got: Vec<&str> = got.iter().map(|l| l.trim_end_matches('\r')).collect();
            assert_eq!(got, want, "json {text:?}");
            let plain = RulesText::from(text);
            let got = line_texts(&plain);
            let got: Vec<&str> = got.iter().map(|l| l.trim_end_matches('\r')).collect();
            assert_eq!(got, want, "plain {text:?}");
        }
    }

    #[test]
    fn unescapes_as_serde_json_does() {
        for text in ["a\"b\\c\td/e\r\u{8}\u{c}", "\u{1f600} é \u{7}", "plain"] {
            let literal = serde_json::to_string(text).unwrap();
            assert_eq!(unescape(&literal[1..literal.len() - 1]), text);
        }
        assert_eq!(unescape(r"\/"), "/");
    }

    #[test]
    fn a_unicode_escaped_newline_breaks_the_line() {
        let t: RulesText = serde_json::from_str(r#""a\u000Ab""#).unwrap();
        assert_eq!(line_texts(&t), ["a", "b"]);
    }

    #[test]
    fn round_trips_and_searches_unescaped() {
        let text = "*filter\n-A X -m comment --comment \"say \\\"hi\\\"\" -j DROP\nCOMMIT\n";
        let t = json(text);
        assert_eq!(t.text(), text);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            serde_json::to_string(text).unwrap()
        );
        assert!(t.contains("-j DROP"));
        assert!(t.contains("\"say"));
        assert!(!t.contains("\\\"say"));
        let u: RulesText = serde_json::from_str(r#""\u004bUBE-SVC-X""#).unwrap();
        assert!(u.contains("KUBE-SVC-"));
        // `nat` is not in "\nat" (a line break, then "at"); it is in "\\nat".
        assert!(!json("*filter\nat").contains("nat"));
        assert!(json("a\\nat").contains("nat"));
        assert!(json("x\nnat").contains("nat"));
    }

    #[test]
    fn quotes_counted_as_the_tokenizer_sees_them() {
        let t = json("a \"b\" c\n'x'\nd \\ e");
        let l: Vec<RawLine> = lines(&t).collect();
        assert_eq!((l[0].quotes, l[0].complex), (2, false));
        assert!(!l[1].complex);
        assert!(l[2].complex);
    }

    #[test]
    fn read_shared_keeps_a_share_of_the_file() {
        #[derive(Deserialize)]
        struct Dump {
            iptables: RulesText,
        }
        let file = Arc::new(r#"{"iptables": "*nat\n-A X \"y\"\n"}"#.to_string());
        let dump: Dump = read_shared(&file, |t| serde_json::from_str(t)).unwrap();
        assert_eq!(Arc::strong_count(&file), 2);
        assert_eq!(dump.iptables.text(), "*nat\n-A X \"y\"\n");
        // Outside read_shared: a copy of the literal, from text or a value.
        let copy: Dump = serde_json::from_str(&file).unwrap();
        assert_eq!(Arc::strong_count(&file), 2);
        assert_eq!(copy.iptables.text(), dump.iptables.text());
        let value: serde_json::Value = serde_json::from_str(&file).unwrap();
        let copy: Dump = serde_json::from_value(value).unwrap();
        assert_eq!(copy.iptables.text(), dump.iptables.text());
    }

    #[test]
    fn not_a_string_is_refused() {
        let err = serde_json::from_str::<RulesText>("[1]").unwrap_err();
        assert!(err.to_string().contains("as a string"), "{err}");
    }
}
