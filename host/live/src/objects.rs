//! The cluster's objects, read with one LIST per kind (paginated), shaped as
//! `kubectl get -o json` prints them. Secrets are never read.

use std::collections::BTreeMap;
use std::sync::Mutex;

use anyhow::Result;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::core::GroupVersion;
use serde_json::Value;

use super::api::{Answer, ApiServer, Call};
use crate::progress::Progress;
use skoop_engine::cluster::{ClusterBuilder, ClusterView, Retain};
use skoop_error::bad_input;

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
];

/// Objects per LIST page (as kubectl).
const PAGE: u32 = 500;

/// One kind to list: one of [`KINDS`], or one an extension declares it
/// reads, resolved by API discovery.
#[derive(Debug, Clone)]
pub struct Listing {
    pub resource: ApiResource,
    /// A 404 means none (a CRD that is not installed).
    pub optional: bool,
}

impl Kind {
    pub fn listing(&self) -> Listing {
        Listing {
            resource: self.resource(),
            optional: self.optional,
        }
    }
}

impl Listing {
    fn call(&self, path: String) -> Call {
        Call {
            verb: "list",
            group: self.resource.group.clone(),
            resource: self.resource.plural.clone(),
            namespace: None,
            path,
        }
    }
}

/// The kinds extensions declare they read (`apiVersion/Kind`, e.g.
/// `crd.projectcalico.org/v1/IPPool`) beyond [`KINDS`], resolved by API
/// discovery: one request per group-version, all at once. A kind the server
/// does not serve (no such group, version or kind: a CRD not installed) is
/// left out; the extension then sees none and says it cannot check.
async fn discover(api: &ApiServer, declared: &[String]) -> Result<Vec<Listing>> {
    // group-version -> the kinds wanted from it
    let mut wanted: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for d in declared {
        let Some((api_version, kind)) = d.rsplit_once('/') else {
            continue;
        };
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let listed = KINDS
            .iter()
            .any(|k| k.group == group && k.version == version && k.kind == kind);
        let kinds = wanted.entry((group, version)).or_default();
        if !listed && !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    wanted.retain(|_, kinds| !kinds.is_empty());
    let found = futures::future::join_all(
        wanted
            .iter()
            .map(|(&(group, version), kinds)| group_version(api, group, version, kinds)),
    )
    .await;
    let mut out = Vec::new();
    for f in found {
        out.extend(f?);
    }
    Ok(out)
}

/// The `kinds` group `group`, version `version` serves (none if it is not served).
async fn group_version(
    api: &ApiServer,
    group: &str,
    version: &str,
    kinds: &[&str],
) -> Result<Vec<Listing>> {
    let gv = GroupVersion::gv(group, version);
    let path = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let call = Call {
        verb: "get",
        group: group.to_string(),
        resource: format!("the API discovery of {}", kinds.join(", ")),
        namespace: None,
        path,
    };
    let served = match api
        .send(&call, kube::discovery::pinned_group(&api.client(), &gv))
        .await?
    {
        Answer::Ok(g) => g.versioned_resources(version),
        Answer::Status(404, _) => return Ok(Vec::new()),
        Answer::Status(code, message) => return Err(api.unexpected(&call, code, &message)),
    };
    Ok(served
        .into_iter()
        .filter(|(r, _)| kinds.contains(&r.kind.as_str()))
        .map(|(resource, _)| Listing {
            resource,
            optional: true,
        })
        .collect())
}

/// Every object of one kind, across namespaces, with `apiVersion`/`kind` set
/// and `managedFields` dropped (as kubectl shows them).
pub async fn list(api: &ApiServer, l: &Listing) -> Result<Vec<Value>> {
    let resource = &l.resource;
    let objects = kube::Api::<DynamicObject>::all_with(api.client(), resource);
    let call = l.call(objects.resource_url().to_string());
    let mut params = ListParams::default().limit(PAGE);
    let mut out = Vec::new();
    loop {
        let page = match api.send(&call, objects.list(&params)).await? {
            Answer::Ok(page) => page,
            Answer::Status(404, _) if l.optional => return Ok(out),
            Answer::Status(code, message) => {
                return Err(bad_input(format!(
                    "the API server at {} failed to list {} ({}): HTTP {code}: {message}",
                    api.server, resource.plural, call.path
                )));
            }
        };
        for item in page.items {
            out.push(shape(item, resource)?);
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

/// Every object skoop reads, then those of the `declared` kinds extensions
/// read (found by discovery once skoop's own lists went through): the kinds
/// are listed concurrently, the pages of one kind in turn; the result is in
/// [`KINDS`] order, then `declared`'s.
pub async fn all(api: &ApiServer, declared: &[String]) -> Result<Vec<Value>> {
    let own: Vec<Listing> = KINDS.iter().map(Kind::listing).collect();
    let mut out = Vec::new();
    for l in futures::future::join_all(own.iter().map(|k| list(api, k))).await {
        out.extend(l?);
    }
    let extra = discover(api, declared).await?;
    for l in futures::future::join_all(extra.iter().map(|k| list(api, k))).await {
        out.extend(l?);
    }
    Ok(out)
}

/// Read every page of one kind into `view` as it arrives: the page's JSON
/// is interpreted and dropped, never kept whole.
async fn read_into(
    api: &ApiServer,
    l: &Listing,
    view: &Mutex<ClusterBuilder>,
    progress: &Progress,
) -> Result<()> {
    let resource = &l.resource;
    let objects = kube::Api::<DynamicObject>::all_with(api.client(), resource);
    let url = objects.resource_url().to_string();
    let call = l.call(url.clone());
    let api_version = resource.api_version.clone();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let request = kube::core::Request::new(&url).list(&params).map_err(|e| {
            bad_input(format!(
                "cannot build the request to list {}: {e}",
                resource.plural
            ))
        })?;
        let client = api.client();
        let page = match api.send(&call, client.request_text(request)).await? {
            Answer::Ok(page) => page,
            Answer::Status(404, _) if l.optional => return Ok(()),
            Answer::Status(code, message) => {
                return Err(bad_input(format!(
                    "the API server at {} failed to list {} ({}): HTTP {code}: {message}",
                    api.server, resource.plural, call.path
                )));
            }
        };
        let origin = format!(
            "the API server's list of {} ({})",
            resource.plural, call.path
        );
        let next = {
            let mut builder = view
                .lock()
                .map_err(|_| anyhow::anyhow!("the cluster view was poisoned"))?;
            let next = builder.add_page(&page, &api_version, &resource.kind, &origin)?;
            progress.listed(builder.read_so_far());
            next
        };
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}

/// The cluster view of every kind skoop reads, then of the kinds `retain`
/// adds for the extensions (found by discovery once skoop's own lists went
/// through), each listed concurrently and each page interpreted as it
/// arrives; only the kinds `retain` names stay JSON.
pub async fn view(api: &ApiServer, retain: Retain, progress: &Progress) -> Result<ClusterView> {
    let declared: Vec<String> = retain.kinds().collect();
    let builder = Mutex::new(ClusterBuilder::new(retain));
    let own: Vec<Listing> = KINDS.iter().map(Kind::listing).collect();
    let read = |k| read_into(api, k, &builder, progress);
    for l in futures::future::join_all(own.iter().map(read)).await {
        l?;
    }
    let extra = discover(api, &declared).await?;
    for l in futures::future::join_all(extra.iter().map(read)).await {
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
