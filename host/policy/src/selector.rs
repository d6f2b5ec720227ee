//! Label selectors (`matchLabels` and `matchExpressions`), compiled once.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Labels of a pod, namespace or node.
pub type Labels = BTreeMap<String, String>;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A compiled label selector; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    reqs: Vec<Requirement>,
}

impl Selector {
    /// The selector that matches everything (`{}`).
    pub fn everything() -> Self {
        Selector::default()
    }

    /// Compile a Kubernetes label selector; an unknown operator is an error (the API server rejects it).
    pub fn compile(sel: &LabelSelector) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if let Some(ml) = &sel.match_labels {
            for (k, v) in ml {
                reqs.push(Requirement::Equals(k.clone(), v.clone()));
            }
        }
        for e in sel.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default();
            let req = match e.operator.as_str() {
                "In" => {
                    if values.is_empty() {
                        return Err(format!("matchExpressions key {}: In needs values", e.key));
                    }
                    Requirement::In(e.key.clone(), values)
                }
                "NotIn" => {
                    if values.is_empty() {
                        return Err(format!(
                            "matchExpressions key {}: NotIn needs values",
                            e.key
                        ));
                    }
                    Requirement::NotIn(e.key.clone(), values)
                }
                "Exists" => Requirement::Exists(e.key.clone()),
                "DoesNotExist" => Requirement::DoesNotExist(e.key.clone()),
                other => {
                    return Err(format!(
                        "matchExpressions key {}: unknown operator {other:?} (In, NotIn, Exists, DoesNotExist)",
                        e.key
                    ));
                }
            };
            reqs.push(req);
        }
        Ok(Selector { reqs })
    }

    /// True for `{}`.
    pub fn is_everything(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Does the selector match these labels?
    pub fn matches(&self, labels: &Labels) -> bool {
        self.reqs.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            // A NotIn requirement is met by an object without the key.
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reqs.is_empty() {
            return write!(f, "{{}}");
        }
        let parts: Vec<String> = self
            .reqs
            .iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
            })
            .collect();
        write!(f, "{{{}}}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(kv: &[(&str, &str)]) -> Labels {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: if values.is_empty() {
                    None
                } else {
                    Some(values.iter().map(|s| s.to_string()).collect())
                },
            }]),
        }
    }

    // Semantics from the Kubernetes "Labels and Selectors" documentation.
    #[test]
    fn operators_follow_the_documentation() {
        let l = labels(&[("pod", "b"), ("env", "prod")]);
        let none = labels(&[]);
        let s = Selector::compile(&expr("pod", "In", &["b", "c"])).unwrap();
        assert!(s.matches(&l));
        assert!(!s.matches(&none));
        let s = Selector::compile(&expr("pod", "NotIn", &["a"])).unwrap();
        assert!(s.matches(&l));
        assert!(s.matches(&none), "NotIn matches an object without the key");
        let s = Selector::compile(&expr("env", "Exists", &[])).unwrap();
        assert!(s.matches(&l) && !s.matches(&none));
        let s = Selector::compile(&expr("env", "DoesNotExist", &[])).unwrap();
        assert!(!s.matches(&l) && s.matches(&none));
        assert!(Selector::compile(&expr("env", "Gt", &["1"])).is_err());
        assert!(
            Selector::compile(&LabelSelector::default())
                .unwrap()
                .matches(&none)
        );
    }
}
