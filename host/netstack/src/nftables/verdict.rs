//! Verdict statements: a rule's last word, and the data of verdict maps.

use serde_json::Value;

/// A verdict statement (also the data of verdict maps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VerdictStmt {
    Accept,
    Drop,
    Continue,
    Return,
    Jump(Box<str>),
    Goto(Box<str>),
    /// `queue`: userspace decides.
    Queue,
}

impl VerdictStmt {
    /// `{"accept": null}`, `{"jump": {"target": "x"}}`, ...
    pub fn from_json(v: &Value) -> Option<VerdictStmt> {
        let o = v.as_object()?;
        if o.len() != 1 {
            return None;
        }
        let (k, inner) = o.iter().next()?;
        let target = || -> Option<Box<str>> { Some(inner.get("target")?.as_str()?.into()) };
        Some(match k.as_str() {
            "accept" => VerdictStmt::Accept,
            "drop" => VerdictStmt::Drop,
            "continue" => VerdictStmt::Continue,
            "return" => VerdictStmt::Return,
            "jump" => VerdictStmt::Jump(target()?),
            "goto" => VerdictStmt::Goto(target()?),
            "queue" => VerdictStmt::Queue,
            _ => return None,
        })
    }
}
