//! What an extension asked the host and what the host answered, for
//! `skoop diagnose --record-host-calls FILE`, and the other way round for
//! `skoop extension replay`: the recorded answers stand in for the bundle or
//! cluster, so a vendor can re-run a plugin with nothing but the recording.
//!
//! A recording lists, per extension, every call the host made into it (the
//! export, its arguments and its answer) and, under each call, every import
//! the extension made while answering (the import, its arguments and what the
//! host said). Values are the WIT types as JSON. Secret config values are
//! blanked out of every string before the file is written.

use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sandbox::Secrets;
use crate::sandbox::egress::Exchange;

/// The format tag of a recording file.
pub const FORMAT: &str = "skoop-host-calls/1";

/// One import call: what the extension asked and what the host answered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImportCall {
    pub import: String,
    pub args: Value,
    pub answer: Value,
}

/// One call from the host into the extension, with the imports it made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Call {
    /// The export, as `interface.function` (`simple-plugin-node.to-pod`).
    pub export: String,
    /// Where the call was made, for the reader (`… at node node-1`).
    pub label: String,
    pub args: Value,
    /// `{"ok": …}`, `{"refused": …}` (the extension's error) or
    /// `{"failed": "…"}` (a trap, a timeout, a memory overrun).
    pub answer: Value,
    pub imports: Vec<ImportCall>,
}

/// Everything one extension was asked during a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ExtensionCalls {
    pub name: String,
    pub kind: String,
    pub version: String,
    pub sha256: String,
    /// Its config values (secret ones are not kept).
    pub config: std::collections::BTreeMap<String, String>,
    pub calls: Vec<Call>,
    /// A provider's outbound HTTP exchanges, in order.
    #[serde(default)]
    pub http: Vec<Exchange>,
}

/// A whole recording file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Recording {
    pub format: String,
    /// The contract the host spoke (`skoop:extension@0.5.0`).
    pub contract: String,
    pub host_version: String,
    /// What was diagnosed, for the reader.
    pub flow: String,
    pub extensions: Vec<ExtensionCalls>,
}

impl Recording {
    /// Parse a recording file's text; errors say what is wrong with it.
    pub fn parse(text: &str) -> Result<Recording, String> {
        let r: Recording = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if r.format != FORMAT {
            return Err(format!(
                "its format is {:?}, this skoop reads {FORMAT:?}",
                r.format
            ));
        }
        Ok(r)
    }

    /// The JSON text, with secret values blanked in every string.
    pub fn to_json(&self, secrets: &Secrets) -> String {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        redact_strings(&mut v, secrets);
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
    }
}

fn redact_strings(v: &mut Value, secrets: &Secrets) {
    match v {
        Value::String(s) => {
            let r = secrets.redact(s);
            if r != *s {
                *s = r;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| redact_strings(v, secrets)),
        Value::Object(o) => o.values_mut().for_each(|v| redact_strings(v, secrets)),
        _ => {}
    }
}

/// An extension's host calls, being recorded or replayed.
pub enum CallLog {
    /// Keep every call; `current` gathers the imports of the call under way.
    Record {
        current: Vec<ImportCall>,
        log: Arc<Mutex<ExtensionCalls>>,
    },
    /// Answer imports from the recording of the call under way.
    Replay {
        expected: Vec<ImportCall>,
        used: Vec<bool>,
        /// Imports asked that the recording does not hold.
        misses: Vec<String>,
    },
}

impl CallLog {
    /// Start replaying one recorded call.
    pub fn replay(imports: &[ImportCall]) -> CallLog {
        CallLog::Replay {
            expected: imports.to_vec(),
            used: vec![false; imports.len()],
            misses: Vec::new(),
        }
    }
}

/// Text of an import call, for messages.
pub fn describe_import(import: &str, args: &Value) -> String {
    let a = args.to_string();
    let a = a
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(&a);
    let mut a = a.to_string();
    if a.len() > 160 {
        a.truncate(a.floor_char_boundary(157));
        a.push('…');
    }
    format!("{import}({a})")
}

/// An import's answer type, when it is absent from a replayed recording,
/// or is there in another shape.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotRecorded(pub String);

impl CallLog {
    /// The recorded answer to `import(args)` while replaying; None while
    /// recording. Log lines are the extension's own words: printed, never
    /// matched, so they are answered by the host.
    pub(crate) fn replayed<R: DeserializeOwned>(
        &mut self,
        import: &str,
        args: Option<&Value>,
    ) -> Option<Result<R, NotRecorded>> {
        let CallLog::Replay {
            expected,
            used,
            misses,
        } = self
        else {
            return None;
        };
        if import == "log.log" {
            return None;
        }
        let args = args.cloned().unwrap_or(Value::Null);
        let found = expected
            .iter()
            .zip(used.iter())
            .position(|(c, u)| !u && c.import == import && c.args == args);
        let Some(i) = found else {
            let what = describe_import(import, &args);
            misses.push(what.clone());
            return Some(Err(NotRecorded(format!(
                "the extension asked {what}, which the recording does not hold"
            ))));
        };
        used[i] = true;
        Some(
            serde_json::from_value(expected[i].answer.clone()).map_err(|e| {
                NotRecorded(format!(
                    "the recorded answer to {} does not fit this contract: {e}",
                    describe_import(import, &args)
                ))
            }),
        )
    }

    /// Keep what the host answered to `import(args)`, while recording.
    pub(crate) fn record<R: Serialize>(&mut self, import: &str, args: Option<Value>, answer: &R) {
        if let CallLog::Record { current, .. } = self {
            current.push(ImportCall {
                import: import.to_string(),
                args: args.unwrap_or(Value::Null),
                answer: serde_json::to_value(answer).unwrap_or(Value::Null),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_round_trips_and_its_format_is_checked() {
        let r = Recording {
            format: FORMAT.into(),
            contract: "skoop:extension@0.5.0".into(),
            host_version: "0.1.0".into(),
            flow: "a -> b".into(),
            extensions: vec![ExtensionCalls {
                name: "x".into(),
                calls: vec![Call {
                    export: "plugin.setup".into(),
                    label: "plugin.setup".into(),
                    args: Value::Array(vec![]),
                    answer: serde_json::json!({"ok": []}),
                    imports: vec![ImportCall {
                        import: "cluster.nodes".into(),
                        args: Value::Array(vec![]),
                        answer: serde_json::json!([]),
                    }],
                }],
                ..ExtensionCalls::default()
            }],
        };
        let none = Secrets::default();
        assert_eq!(Recording::parse(&r.to_json(&none)).unwrap(), r);
        let other = r.to_json(&none).replace(FORMAT, "skoop-host-calls/9");
        assert!(Recording::parse(&other).unwrap_err().contains("format"));
    }

    #[test]
    fn secrets_are_blanked_in_every_string() {
        let secrets = Secrets::default();
        secrets.add(["hunter2-secret-value".to_string()]);
        let mut v = serde_json::json!({"a": ["x hunter2-secret-value y"], "b": 3});
        redact_strings(&mut v, &secrets);
        assert_eq!(v["a"][0], "x [secret] y");
    }

    #[test]
    fn replay_answers_in_order_and_names_what_it_lacks() {
        let mut log = CallLog::replay(&[
            ImportCall {
                import: "cluster.config".into(),
                args: serde_json::json!(["k"]),
                answer: serde_json::json!("one"),
            },
            ImportCall {
                import: "cluster.config".into(),
                args: serde_json::json!(["k"]),
                answer: serde_json::json!("two"),
            },
        ]);
        let mut ask = || {
            log.replayed::<Option<String>>("cluster.config", Some(&serde_json::json!(["k"])))
                .expect("replaying")
        };
        assert_eq!(ask().unwrap().as_deref(), Some("one"));
        assert_eq!(ask().unwrap().as_deref(), Some("two"));
        let e = ask().unwrap_err().to_string();
        assert!(e.contains("cluster.config(\"k\")"), "{e}");
    }
}
