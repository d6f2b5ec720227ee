//! The cluster's objects, read with one LIST per kind (paginated), shaped as
//! `kubectl get -o json` prints them. Secrets are never read.

use std::sync::Mutex;

use anyhow::Result;
use kube::api::{ApiResource, DynamicObject, ListParams};
use serde_json::Value;

use super::api::{Answer, ApiServer, Call};
use skoop_engine::cluster::{ClusterBuilder, ClusterView, Retain};
use skoop_engine::error::bad_input;

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

    fn resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.into(),
            version: self.version.into(),
            api_version: self.api_version(),
            kind: self.kind.into(),
            plural: self.plural.into(),
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
    // Namespace labels: NetworkPolicy namespaceSelectors and ANP subjects.
    kind("", "v1", "Namespace", "namespaces", false),
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
    // Cluster-scoped admin policies (absent CRDs: none).
    kind(
        "policy.networking.k8s.io",
        "v1alpha1",
        "AdminNetworkPolicy",
        "adminnetworkpolicies",
        true,
    ),
    kind(
        "policy.networking.k8s.io",
        "v1alpha1",
        "BaselineAdminNetworkPolicy",
        "baselineadminnetworkpolicies",
        true,
    ),
    kind("crd.projectcalico.org", "v1", "IPPool", "ippools", true),
    // What the Calico plugin reads (absent CRDs: a 404 means none, and the
    // plugin then says it cannot check).
    kind("projectcalico.org", "v3", "IPPool", "ippools", true),
    kind(
        "crd.projectcalico.org",
        "v1",
        "BlockAffinity",
        "blockaffinities",
        true,
    ),
    kind(
        "crd.projectcalico.org",
        "v1",
        "FelixConfiguration",
        "felixconfigurations",
        true,
    ),
    kind(
        "operator.tigera.io",
        "v1",
        "Installation",
        "installations",
        true,
    ),
];

/// Objects per LIST page (as kubectl).
const PAGE: u32 = 500;

/// Every object of one kind, across namespaces, with `apiVersion`/`kind` set
/// and `managedFields` dropped (as kubectl shows them).
pub async fn list(api: &ApiServer, k: &Kind) -> Result<Vec<Value>> {
    let resource = k.resource();
    let objects = kube::Api::<DynamicObject>::all_with(api.client(), &resource);
    let call = Call {
        verb: "list",
        group: k.group,
        resource: k.plural,
        namespace: None,
        path: objects.resource_url().to_string(),
    };
    let mut params = ListParams::default().limit(PAGE);
    let mut out = Vec::new();
    loop {
        let page = match api.send(&call, objects.list(&params)).await? {
            Answer::Ok(page) => page,
            Answer::Status(404, _) if k.optional => return Ok(out),
            Answer::Status(code, message) => {
                return Err(bad_input(format!(
                    "the API server at {} failed to list {} ({}): HTTP {code}: {message}",
                    api.server, k.plural, call.path
                )));
            }
        };
        for item in page.items {
            out.push(shape(item, &resource)?);
        }
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// List items come without their kind and apiVersion: set them. The rest
/// of the object moves over as it is (serializing the whole DynamicObject
/// would copy every spec and status once more).
fn shape(item: DynamicObject, r: &ApiResource) -> Result<Value> {
    let DynamicObject {
        mut metadata, data, ..
    } = item;
    metadata.managed_fields = None;
    // `data` holds the object's other keys, so it is always a JSON object.
    let mut map = match data {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    map.insert("apiVersion".into(), Value::String(r.api_version.clone()));
    map.insert("kind".into(), Value::String(r.kind.clone()));
    map.insert("metadata".into(), serde_json::to_value(metadata)?);
    Ok(Value::Object(map))
}

/// Every object skoop reads: the kinds are listed concurrently, the pages of
/// one kind in turn; the result is in [`KINDS`] order.
pub async fn all(api: &ApiServer) -> Result<Vec<Value>> {
    let lists = futures::future::join_all(KINDS.iter().map(|k| list(api, k))).await;
    let mut out = Vec::new();
    for l in lists {
        out.extend(l?);
    }
    Ok(out)
}

/// Read every page of one kind into `view` as it arrives: the page's JSON
/// is interpreted and dropped, never kept whole.
async fn read_into(api: &ApiServer, k: &Kind, view: &Mutex<ClusterBuilder>) -> Result<()> {
    let resource = k.resource();
    let objects = kube::Api::<DynamicObject>::all_with(api.client(), &resource);
    let url = objects.resource_url().to_string();
    let call = Call {
        verb: "list",
        group: k.group,
        resource: k.plural,
        namespace: None,
        path: url.clone(),
    };
    let api_version = k.api_version();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let request = kube::core::Request::new(&url).list(&params).map_err(|e| {
            bad_input(format!(
                "cannot build the request to list {}: {e}",
                k.plural
            ))
        })?;
        let client = api.client();
        let page = match api.send(&call, client.request_text(request)).await? {
            Answer::Ok(page) => page,
            Answer::Status(404, _) if k.optional => return Ok(()),
            Answer::Status(code, message) => {
                return Err(bad_input(format!(
                    "the API server at {} failed to list {} ({}): HTTP {code}: {message}",
                    api.server, k.plural, call.path
                )));
            }
        };
        let origin = format!("the API server's list of {} ({})", k.plural, call.path);
        let next = view
            .lock()
            .map_err(|_| anyhow::anyhow!("the cluster view was poisoned"))?
            .add_page(&page, &api_version, k.kind, &origin)?;
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}

/// The cluster view of every kind skoop reads, listed concurrently, each
/// page interpreted as it arrives; only the kinds `retain` names stay JSON.
pub async fn view(api: &ApiServer, retain: Retain) -> Result<ClusterView> {
    let builder = Mutex::new(ClusterBuilder::new(retain));
    let lists = futures::future::join_all(KINDS.iter().map(|k| read_into(api, k, &builder))).await;
    for l in lists {
        l?;
    }
    builder
        .into_inner()
        .map(ClusterBuilder::finish)
        .map_err(|_| anyhow::anyhow!("the cluster view was poisoned"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_shaped() {
        let item: DynamicObject = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n", "managedFields": [{"manager": "kubelet"}],
                         "creationTimestamp": "2024-05-06T07:41:12Z"},
            "spec": {"podCIDR": "10.244.0.0/24"}
        }))
        .unwrap();
        let v = shape(item, &KINDS[0].resource()).unwrap();
        assert_eq!(v["kind"], "Node");
        assert_eq!(v["apiVersion"], "v1");
        assert!(v["metadata"].get("managedFields").is_none());
        assert_eq!(v["metadata"]["creationTimestamp"], "2024-05-06T07:41:12Z");
        assert_eq!(v["spec"]["podCIDR"], "10.244.0.0/24");
        let slice = KINDS.iter().find(|k| k.kind == "EndpointSlice").unwrap();
        assert_eq!(slice.resource().api_version, "discovery.k8s.io/v1");
    }
}
