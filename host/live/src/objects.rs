//! The cluster's objects, read with one LIST per kind (paginated), shaped as
//! `kubectl get -o json` prints them. Secrets are never read.

use anyhow::Result;
use serde_json::Value;

use super::api::{Answer, Api, Call};

/// A kind skoop reads.
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    /// Not every cluster has it (a CRD): a 404 means none.
    pub optional: bool,
}

impl Kind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn base(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }
}

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    optional: bool,
) -> Kind {
    Kind {
        group,
        version,
        kind,
        plural,
        optional,
    }
}

/// Every kind in a bundle: what the cluster view and detection read.
pub const KINDS: &[Kind] = &[
    kind("", "v1", "Node", "nodes", false),
    kind("", "v1", "Pod", "pods", false),
    kind("", "v1", "Service", "services", false),
    kind(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        false,
    ),
    kind(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        false,
    ),
    kind("", "v1", "ConfigMap", "configmaps", false),
    kind("apps", "v1", "DaemonSet", "daemonsets", false),
    kind("crd.projectcalico.org", "v1", "IPPool", "ippools", true),
];

/// Objects per LIST page (as kubectl).
const PAGE: usize = 500;

/// Every object of one kind, across namespaces, with `apiVersion`/`kind` set
/// and `managedFields` dropped (as kubectl shows them).
pub async fn list(api: &Api, k: &Kind) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("{}/{}?limit={PAGE}", k.base(), k.plural);
        if let Some(t) = &token {
            path.push_str("&continue=");
            path.push_str(&encode(t));
        }
        let call = Call {
            verb: "list",
            group: k.group,
            resource: k.plural,
            namespace: None,
            path,
        };
        let page = match api.get(&call).await? {
            Answer::Ok(v) => v,
            Answer::Status(404, _) if k.optional => return Ok(out),
            Answer::Status(code, message) => {
                return Err(skoop_engine::error::bad_input(format!(
                    "the API server at {} failed to list {} ({}): HTTP {code}: {message}",
                    api.server, k.plural, call.path
                )));
            }
        };
        let (items, next) = split_page(page);
        out.extend(items.into_iter().map(|item| shape(item, k)));
        match next {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

/// A page's items and its continue token.
fn split_page(page: Value) -> (Vec<Value>, Option<String>) {
    let Value::Object(mut map) = page else {
        return (Vec::new(), None);
    };
    let next = map
        .get("metadata")
        .and_then(|m| m.get("continue"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let items = match map.remove("items") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    (items, next)
}

fn shape(mut item: Value, k: &Kind) -> Value {
    if let Value::Object(map) = &mut item {
        map.insert("apiVersion".into(), Value::String(k.api_version()));
        map.insert("kind".into(), Value::String(k.kind.into()));
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            meta.remove("managedFields");
        }
    }
    item
}

/// Percent-encode a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Every object skoop reads: the kinds are listed concurrently, the pages of
/// one kind in turn; the result is in [`KINDS`] order.
pub async fn all(api: &Api) -> Result<Vec<Value>> {
    let lists = super::collector::join_all(KINDS.iter().map(|k| list(api, k))).await;
    let mut out = Vec::new();
    for l in lists {
        out.extend(l?);
    }
    Ok(out)
}

/// Drop what no reader needs from an object kept for a diagnosis: the copy
/// of the whole object kubectl keeps in an annotation.
pub fn slim(mut item: Value) -> Value {
    if let Some(Value::Object(ann)) = item.pointer_mut("/metadata/annotations") {
        ann.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_split_and_items_shaped() {
        let page = serde_json::json!({
            "metadata": {"continue": "abc"},
            "items": [{"metadata": {"name": "n", "managedFields": []}}]
        });
        let (items, next) = split_page(page);
        assert_eq!(next.as_deref(), Some("abc"));
        let v = shape(items[0].clone(), &KINDS[0]);
        assert_eq!(v["kind"], "Node");
        assert_eq!(v["apiVersion"], "v1");
        assert!(v["metadata"].get("managedFields").is_none());
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}
