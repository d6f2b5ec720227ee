//! Calico's label selector language (IPPool `nodeSelector`): `all()`,
//! `has(k)`, `k == 'v'`, `k != 'v'`, `k in {'a', 'b'}`, `k not in {…}`,
//! `k contains 's'`, `k starts with 's'`, `k ends with 's'`, `!`, `&&`, `||`
//! and parentheses (`!` binds tightest, then `&&`, then `||`). An empty
//! selector selects everything, as Calico reads it.

/// A parsed selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    All,
    Has(String),
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Contains(String, String),
    StartsWith(String, String),
    EndsWith(String, String),
    Not(Box<Selector>),
    And(Box<Selector>, Box<Selector>),
    Or(Box<Selector>, Box<Selector>),
}

impl Selector {
    /// Parse `text`; the error says where it stopped making sense.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            at: 0,
        };
        p.blank();
        if p.at == p.s.len() {
            return Ok(Selector::All);
        }
        let sel = p.or()?;
        p.blank();
        if p.at != p.s.len() {
            return Err(p.error("an operator or the end"));
        }
        Ok(sel)
    }

    /// Does the selector select an object with these labels?
    pub fn matches(&self, labels: &[(String, String)]) -> bool {
        let get = |k: &str| labels.iter().find(|(l, _)| l == k).map(|(_, v)| v.as_str());
        match self {
            Selector::All => true,
            Selector::Has(k) => get(k).is_some(),
            Selector::Eq(k, v) => get(k) == Some(v.as_str()),
            // A missing label is "not equal", as in Calico.
            Selector::Ne(k, v) => get(k) != Some(v.as_str()),
            Selector::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Selector::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Selector::Contains(k, v) => get(k).is_some_and(|x| x.contains(v.as_str())),
            Selector::StartsWith(k, v) => get(k).is_some_and(|x| x.starts_with(v.as_str())),
            Selector::EndsWith(k, v) => get(k).is_some_and(|x| x.ends_with(v.as_str())),
            Selector::Not(s) => !s.matches(labels),
            Selector::And(a, b) => a.matches(labels) && b.matches(labels),
            Selector::Or(a, b) => a.matches(labels) || b.matches(labels),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn error(&self, wanted: &str) -> String {
        let rest = String::from_utf8_lossy(&self.s[self.at..]);
        format!("expected {wanted} at offset {} (`{rest}`)", self.at)
    }

    fn blank(&mut self) {
        while self.s.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    /// Consume `tok` (after blanks) if it comes next.
    fn eat(&mut self, tok: &str) -> bool {
        self.blank();
        if self.s[self.at..].starts_with(tok.as_bytes()) {
            self.at += tok.len();
            true
        } else {
            false
        }
    }

    /// Consume the word `w` if it comes next as a whole word.
    fn word(&mut self, w: &str) -> bool {
        self.blank();
        let end = self.at + w.len();
        if self.s[self.at..].starts_with(w.as_bytes())
            && !self.s.get(end).is_some_and(|c| key_char(*c))
        {
            self.at = end;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Selector, String> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = Selector::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Selector, String> {
        let mut left = self.unary()?;
        while self.eat("&&") {
            left = Selector::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Selector, String> {
        self.blank();
        if self.s.get(self.at) == Some(&b'!') && self.s.get(self.at + 1) != Some(&b'=') {
            self.at += 1;
            return Ok(Selector::Not(Box::new(self.unary()?)));
        }
        if self.eat("(") {
            let inner = self.or()?;
            if !self.eat(")") {
                return Err(self.error("`)`"));
            }
            return Ok(inner);
        }
        if self.word("all") {
            return self.empty_call(Selector::All);
        }
        if self.word("global") {
            // Selects every non-namespaced object: every node.
            return self.empty_call(Selector::All);
        }
        if self.word("has") {
            if !self.eat("(") {
                return Err(self.error("`(` after has"));
            }
            let k = self.key()?;
            if !self.eat(")") {
                return Err(self.error("`)`"));
            }
            return Ok(Selector::Has(k));
        }
        let k = self.key()?;
        if self.eat("==") {
            return Ok(Selector::Eq(k, self.string()?));
        }
        if self.eat("!=") {
            return Ok(Selector::Ne(k, self.string()?));
        }
        if self.word("in") {
            return Ok(Selector::In(k, self.set()?));
        }
        if self.word("not") {
            if !self.word("in") {
                return Err(self.error("`in` after not"));
            }
            return Ok(Selector::NotIn(k, self.set()?));
        }
        if self.word("contains") {
            return Ok(Selector::Contains(k, self.string()?));
        }
        if self.word("starts") {
            if !self.word("with") {
                return Err(self.error("`with` after starts"));
            }
            return Ok(Selector::StartsWith(k, self.string()?));
        }
        if self.word("ends") {
            if !self.word("with") {
                return Err(self.error("`with` after ends"));
            }
            return Ok(Selector::EndsWith(k, self.string()?));
        }
        Err(self.error("==, !=, in, not in, contains, starts with or ends with"))
    }

    fn empty_call(&mut self, s: Selector) -> Result<Selector, String> {
        if self.eat("(") && self.eat(")") {
            Ok(s)
        } else {
            Err(self.error("`()`"))
        }
    }

    fn key(&mut self) -> Result<String, String> {
        self.blank();
        let start = self.at;
        while self.s.get(self.at).is_some_and(|c| key_char(*c)) {
            self.at += 1;
        }
        if start == self.at {
            return Err(self.error("a label key"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.at]).into_owned())
    }

    fn string(&mut self) -> Result<String, String> {
        self.blank();
        let Some(&quote) = self.s.get(self.at).filter(|q| **q == b'\'' || **q == b'"') else {
            return Err(self.error("a quoted value"));
        };
        let start = self.at + 1;
        let Some(len) = self.s[start..].iter().position(|c| *c == quote) else {
            return Err(self.error("a closing quote"));
        };
        self.at = start + len + 1;
        Ok(String::from_utf8_lossy(&self.s[start..start + len]).into_owned())
    }

    fn set(&mut self) -> Result<Vec<String>, String> {
        if !self.eat("{") {
            return Err(self.error("`{`"));
        }
        let mut values = Vec::new();
        if self.eat("}") {
            return Ok(values);
        }
        loop {
            values.push(self.string()?);
            if self.eat("}") {
                return Ok(values);
            }
            if !self.eat(",") {
                return Err(self.error("`,` or `}`"));
            }
        }
    }
}

fn key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Cases from Calico's selector documentation
    /// (docs.tigera.io, "Selectors" reference).
    #[test]
    fn documented_selectors_select_as_calico_does() {
        let node = labels(&[
            ("kubernetes.io/hostname", "node-2"),
            ("zone", "eu-1a"),
            ("rack", "r12"),
        ]);
        for (sel, want) in [
            ("", true),
            ("all()", true),
            ("global()", true),
            ("kubernetes.io/hostname == 'node-2'", true),
            ("kubernetes.io/hostname == \"node-3\"", false),
            ("zone != 'eu-1b'", true),
            ("missing != 'x'", true),
            ("has(zone)", true),
            ("!has(zone)", false),
            ("zone in {'eu-1a', 'eu-1b'}", true),
            ("zone not in {'eu-1a'}", false),
            ("missing not in {'a'}", true),
            ("rack contains '1'", true),
            ("rack starts with 'r1'", true),
            ("rack ends with '3'", false),
            ("zone == 'eu-1a' && rack == 'r13'", false),
            ("zone == 'eu-1b' || rack == 'r12'", true),
            ("!(zone == 'eu-1a' && has(rack))", false),
            ("has(a) || has(zone) && has(b)", false),
            ("(has(a) || has(zone)) && has(rack)", true),
        ] {
            let s = Selector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(s.matches(&node), want, "{sel}");
        }
    }

    #[test]
    fn malformed_selectors_say_where() {
        for sel in [
            "zone = 'a'",
            "zone == a",
            "has(zone",
            "zone in {'a' 'b'}",
            "all() &&",
            "zone == 'a' extra",
        ] {
            let e = Selector::parse(sel).expect_err(sel);
            assert!(e.contains("at offset"), "{sel}: {e}");
        }
    }
}
