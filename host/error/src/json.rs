//! JSON that cannot be read, said so a person can find it: the field by its
//! JSON path from the object (`spec.containers[0].ports`), the problem in
//! plain words ("expected a list, found the string \"oops\""), and — for a
//! whole file — the place with the text around it, not a column in a
//! one-line file.

use std::fmt;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A field that cannot be read: its JSON path from the object read (empty:
/// the object itself) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub path: String,
    pub reason: String,
}

impl Unreadable {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Unreadable {
        Unreadable {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The path below `prefix` (`items[3]` + `spec.ports` →
    /// `items[3].spec.ports`).
    pub fn at(&self, prefix: &str) -> String {
        match (prefix.is_empty(), self.path.is_empty()) {
            (_, true) => prefix.to_string(),
            (true, false) => self.path.clone(),
            (false, false) if self.path.starts_with('[') => format!("{prefix}{}", self.path),
            (false, false) => format!("{prefix}.{}", self.path),
        }
    }
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// Why `text` does not read as a `T`, with the path of the field at fault.
/// Call it after a plain read failed: tracking the path costs time a
/// successful read need not spend.
pub fn why_not<'a, T: Deserialize<'a>>(text: &'a str) -> Unreadable {
    let mut de = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(_) => Unreadable::new("", "cannot be read"),
        Err(e) => Unreadable::new(path_text(e.path()), plain(e.inner())),
    }
}

/// [`why_not`] for a value already parsed.
pub fn why_not_value<T: DeserializeOwned>(value: &serde_json::Value) -> Unreadable {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(_) => Unreadable::new("", "cannot be read"),
        Err(e) => Unreadable::new(path_text(e.path()), plain(e.inner())),
    }
}

/// `value` as a `T`, or why not with the path of the field at fault.
pub fn read_value<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, Unreadable> {
    serde_path_to_error::deserialize::<_, T>(value)
        .map_err(|e| Unreadable::new(path_text(e.path()), plain(e.inner())))
}

fn path_text(path: &serde_path_to_error::Path) -> String {
    let text = path.to_string();
    if text == "." { String::new() } else { text }
}

/// serde's message in plain words, without its line and column (a path or
/// an excerpt says where).
pub fn plain(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" at line ") {
        Some(at) if e.line() > 0 => &text[..at],
        _ => text.as_str(),
    };
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = text.strip_prefix(prefix)
            && let Some((found, expected)) = rest.split_once(", expected ")
        {
            return format!(
                "expected {}, found {}",
                expected_words(expected),
                found_words(found)
            );
        }
    }
    text.to_string()
}

/// serde's "expected" side: `a sequence` → `a list`, `struct PodSpec` →
/// `an object`, `u16` → `a number from 0 to 65535`.
fn expected_words(e: &str) -> String {
    let e = e.trim();
    match e {
        "a sequence" => "a list".into(),
        "a map" => "an object".into(),
        "a borrowed string" | "a string" => "a string".into(),
        "a boolean" => "true or false".into(),
        "u8" => "a number from 0 to 255".into(),
        "u16" => "a number from 0 to 65535".into(),
        "u32" => "a number from 0 to 4294967295".into(),
        "u64" | "usize" => "a non-negative number".into(),
        "i32" | "i64" | "isize" => "a number".into(),
        _ if e.starts_with("struct ") || e.starts_with("a struct") => "an object".into(),
        _ if e.starts_with("enum ") => format!("one of the values of {}", &e[5..]),
        // k8s-openapi's visitors name the type they read: `LabelSelector`.
        _ if e.starts_with(|c: char| c.is_ascii_uppercase())
            && e.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            format!("a {e} object")
        }
        _ => e.to_string(),
    }
}

/// serde's "found" side: `string "oops"` → `the string "oops"`, `map` →
/// `an object`.
fn found_words(f: &str) -> String {
    let f = f.trim();
    if let Some(s) = f.strip_prefix("string ") {
        return format!("the string {s}");
    }
    for kind in ["integer ", "floating point "] {
        if let Some(n) = f.strip_prefix(kind) {
            return format!("the number {}", n.trim_matches('`'));
        }
    }
    if let Some(b) = f.strip_prefix("boolean ") {
        return b.trim_matches('`').to_string();
    }
    match f {
        "map" => "an object".into(),
        "sequence" => "a list".into(),
        "unit value" | "null" => "null".into(),
        _ => f.to_string(),
    }
}

/// Where in `text` a parse error of the whole text is, beyond the line and
/// column serde gives: the byte offset in a one-line text (where a column
/// helps nobody), and the text around the place.
pub fn place(text: &str, e: &serde_json::Error) -> String {
    let (line, column) = (e.line(), e.column());
    if line == 0 {
        return "at the end".into();
    }
    let Some(line_text) = text.lines().nth(line - 1) else {
        return format!("line {line}, column {column}");
    };
    // The column counts bytes from 1; take up to 30 characters either side.
    let at = column.saturating_sub(1).min(line_text.len());
    let start = floor_char(line_text, at.saturating_sub(30));
    let end = floor_char(line_text, (at + 30).min(line_text.len()));
    let before = line_text
        .get(start..floor_char(line_text, at))
        .unwrap_or("");
    let after = line_text.get(floor_char(line_text, at)..end).unwrap_or("");
    let lines = text.lines().take(2).count();
    let place = if lines > 1 {
        String::new()
    } else {
        format!("byte {at}, ")
    };
    format!(
        "{place}here: {}{before}»{after}{}",
        if start > 0 { "…" } else { "" },
        if end < line_text.len() { "…" } else { "" }
    )
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Pod {
        spec: Spec,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Spec {
        containers: Vec<BTreeMap<String, serde_json::Value>>,
        port: Option<u16>,
    }

    #[test]
    fn the_path_and_plain_words_name_the_field() {
        let u = why_not::<Pod>(r#"{"spec": {"containers": "oops"}}"#);
        assert_eq!(u.path, "spec.containers");
        assert_eq!(u.reason, r#"expected a list, found the string "oops""#);
        assert_eq!(
            u.at("items[412]"),
            "items[412].spec.containers",
            "below the list item"
        );
        let u = why_not::<Pod>(r#"{"spec": {"containers": [], "port": 70000}}"#);
        assert_eq!(
            u.to_string(),
            "spec.port: expected a number from 0 to 65535, found the number 70000"
        );
        let v = serde_json::json!({"spec": {"containers": [5]}});
        let u = why_not_value::<Pod>(&v);
        assert_eq!(u.path, "spec.containers[0]");
        assert_eq!(u.reason, "expected an object, found the number 5");
    }

    #[test]
    fn a_place_in_a_one_line_file_shows_the_text_around_it() {
        let text = r#"{"items": [{"a": 1}, {"b": 2} {"c": 3}]}"#;
        let e = serde_json::from_str::<serde_json::Value>(text).expect_err("malformed");
        let p = place(text, &e);
        assert!(p.starts_with("byte 30, here: "), "{p}");
        assert!(p.contains(r#"{"b": 2} »{"c": 3}]}"#), "{p}");
        let text = "{\n  \"a\": 1,\n  \"b\" 2\n}";
        let e = serde_json::from_str::<serde_json::Value>(text).expect_err("malformed");
        assert_eq!(place(text, &e), "here:   \"b\" »2");
    }
}
