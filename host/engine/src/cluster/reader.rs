//! The fast JSON reader: a `kubectl get -o json` List, or the API server's
//! LIST pages one kind at a time, read into a [`ClusterView`]. An item of a
//! kind the view interprets is read in one pass when its kind is given or
//! guessed (`mirrors.rs` says what is read of it); a long list is read on
//! two threads.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::mirrors::{
    Head, Headed, NodeObj, PodObj, ServiceObj, SliceObj, node_facts, pod_facts, service_facts,
    slice_endpoints, text,
};
use super::model::{ClusterView, EndpointFacts, RawJson, RawObject, ServiceFacts, Skipped};
use super::retain::Retain;
use skoop_error::bad_input;
use skoop_error::json::{Unreadable, place, plain, why_not};

#[derive(Deserialize)]
struct List<'a> {
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    metadata: Option<ListMeta>,
}

#[derive(Deserialize)]
struct ListMeta {
    #[serde(default, rename = "continue")]
    continue_: Option<String>,
}

/// One list item as read: its head, and its typed form for the kinds the
/// view interprets. Borrows from the JSON text; reading needs nothing from
/// the view, so items can be read on another thread.
struct Parsed<'a> {
    head: Head<'a>,
    api: Cow<'a, str>,
    kind: Cow<'a, str>,
    typed: Typed<'a>,
}

enum Typed<'a> {
    Node(NodeObj<'a>),
    Pod(PodObj<'a>),
    Service(ServiceFacts),
    /// A Service's id and endpoints; `None` when the slice adds none.
    Slice(Option<(String, Vec<EndpointFacts>)>),
    Other,
}

impl<'a> Parsed<'a> {
    /// `of` gives the apiVersion and kind when the JSON lacks them. An
    /// object that cannot be read says which field, by its JSON path.
    fn read(item: &'a RawValue, of: Option<(&'a str, &'a str)>) -> Result<Self, Unreadable> {
        let json = item.get();
        if let Some(parsed) = Parsed::read_once(json, of) {
            return parsed;
        }
        let head: Head<'a> = serde_json::from_str(json).map_err(|_| why_not::<Head<'a>>(json))?;
        let (api, kind) = match of {
            Some((a, k)) => (Cow::Borrowed(a), Cow::Borrowed(k)),
            None => (
                head.api_version.clone().unwrap_or_default(),
                head.kind.clone().unwrap_or_default(),
            ),
        };
        let typed = match (api.as_ref(), kind.as_ref()) {
            ("v1", "Node") => {
                Typed::Node(serde_json::from_str(json).map_err(|_| why_not::<NodeObj<'a>>(json))?)
            }
            ("v1", "Pod") => {
                Typed::Pod(serde_json::from_str(json).map_err(|_| why_not::<PodObj<'a>>(json))?)
            }
            ("v1", "Service") => Typed::Service(service_facts(
                serde_json::from_str(json).map_err(|_| why_not::<ServiceObj<'a>>(json))?,
            )?),
            ("discovery.k8s.io/v1", "EndpointSlice") => Typed::Slice(slice_endpoints(
                serde_json::from_str(json).map_err(|_| why_not::<SliceObj<'a>>(json))?,
            )?),
            _ => Typed::Other,
        };
        Ok(Parsed {
            head,
            api,
            kind,
            typed,
        })
    }

    /// An object of a kind the view interprets, read in one pass rather
    /// than two (its head, then the object): the kind is given (`of`) or
    /// guessed from the text, and a guess must be confirmed by the
    /// object's own apiVersion and kind. None: read it the long way — not
    /// such a kind, a wrong guess, or an error the long way words.
    fn read_once(
        json: &'a str,
        of: Option<(&'a str, &'a str)>,
    ) -> Option<Result<Self, Unreadable>> {
        let (api, kind) = match of {
            Some(k) => k,
            None => guess_kind(json)?,
        };
        // The object's own apiVersion and kind must confirm a guess.
        let confirm = |h: &Head<'_>| {
            of.is_some()
                || (h.api_version.as_deref() == Some(api) && h.kind.as_deref() == Some(kind))
        };
        let (head, typed) = match (api, kind) {
            ("v1", "Node") => read_as(json, confirm).map(|(h, o)| (h, Typed::Node(o)))?,
            ("v1", "Pod") => read_as(json, confirm).map(|(h, o)| (h, Typed::Pod(o)))?,
            ("v1", "Service") => {
                let (h, o) = read_as(json, confirm)?;
                match service_facts(o) {
                    Ok(f) => (h, Typed::Service(f)),
                    Err(e) => return Some(Err(e)),
                }
            }
            ("discovery.k8s.io/v1", "EndpointSlice") => {
                let (h, o) = read_as(json, confirm)?;
                match slice_endpoints(o) {
                    Ok(s) => (h, Typed::Slice(s)),
                    Err(e) => return Some(Err(e)),
                }
            }
            _ => return None,
        };
        Some(Ok(Parsed {
            head,
            api: Cow::Borrowed(api),
            kind: Cow::Borrowed(kind),
            typed,
        }))
    }
}

/// `json` as a `T`, with its head, if it reads as one and `confirm` accepts
/// the head.
fn read_as<'a, T: Deserialize<'a> + Headed<'a>>(
    json: &'a str,
    confirm: impl Fn(&Head<'a>) -> bool,
) -> Option<(Head<'a>, T)> {
    let object: T = serde_json::from_str(json).ok()?;
    let head = object.head();
    confirm(&head).then_some((head, object))
}

/// The interpreted kind an object's text names, to try first. Nested
/// objects have `"kind"` keys too (a slice's endpoints name their Pods, a
/// static Pod's owner is its Node), so the kinds that are rarely nested
/// win; the object's own fields confirm the guess.
fn guess_kind(json: &str) -> Option<(&'static str, &'static str)> {
    const KINDS: [(&str, &str); 4] = [
        ("discovery.k8s.io/v1", "EndpointSlice"),
        ("v1", "Service"),
        ("v1", "Node"),
        ("v1", "Pod"),
    ];
    let mut best: Option<usize> = None;
    for (at, key) in json.match_indices("\"kind\"") {
        let Some(rest) = json.get(at + key.len()..) else {
            continue;
        };
        let Some(value) = rest
            .trim_start()
            .strip_prefix(':')
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix('"'))
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        if let Some(i) = KINDS.iter().position(|(_, k)| *k == value) {
            best = Some(best.map_or(i, |b| b.min(i)));
        }
    }
    best.map(|i| KINDS[i])
}

/// A file that cannot be read at all, said so a person can find the place:
/// `origin:line:column: malformed JSON: … (byte 1234, here: …»…)` for text
/// that is not JSON; the field at fault for JSON of the wrong shape.
pub fn json_error(origin: &str, text: &str, e: &serde_json::Error) -> anyhow::Error {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => bad_input(format!(
            "{origin}:{}:{}: malformed JSON: {} ({})",
            e.line(),
            e.column(),
            plain(e),
            place(text, e)
        )),
        Category::Data => bad_input(format!(
            "{origin}: not what skoop reads here: {} ({})",
            plain(e),
            place(text, e)
        )),
    }
}

/// Builds a [`ClusterView`] from JSON: a whole `kubectl get -o json` List,
/// or the pages of a LIST one kind at a time.
pub struct ClusterBuilder {
    view: ClusterView,
    retain: Retain,
    /// The text being read, when kept objects may share it.
    shared: Option<Arc<String>>,
}

impl ClusterBuilder {
    pub fn new(retain: Retain) -> ClusterBuilder {
        ClusterBuilder {
            view: ClusterView::default(),
            retain,
            shared: None,
        }
    }

    /// A List (or a single object) as `kubectl get … -o json` prints it.
    pub fn add_list(&mut self, json: &str, origin: &str) -> Result<()> {
        let list: List<'_> =
            serde_json::from_str(json).map_err(|e| json_error(origin, json, &e))?;
        match list.items {
            Some(items) => self.add_items(&items, None, origin),
            None if list.kind.is_some() => {
                let item: &RawValue =
                    serde_json::from_str(json).map_err(|e| json_error(origin, json, &e))?;
                self.add_object(item, None, origin)
            }
            None => Err(bad_input(format!(
                "{origin}: expected a Kubernetes List (`kubectl get ... -o json`)"
            ))),
        }
    }

    /// [`ClusterBuilder::add_list`] of a text the kept objects may share
    /// rather than copy (see `ClusterView::settle_shared`).
    fn add_shared_list(&mut self, text: &Arc<String>, origin: &str) -> Result<()> {
        self.shared = Some(text.clone());
        let added = self.add_list(text, origin);
        self.shared = None;
        added
    }

    /// The items of one LIST page of `api_version`/`kind` (the API server
    /// leaves kind and apiVersion out of list items); returns the token of
    /// the next page, if there is one.
    pub fn add_page(
        &mut self,
        json: &str,
        api_version: &str,
        kind: &str,
        origin: &str,
    ) -> Result<Option<String>> {
        let list: List<'_> =
            serde_json::from_str(json).map_err(|e| json_error(origin, json, &e))?;
        self.add_items(
            list.items.as_deref().unwrap_or_default(),
            Some((api_version, kind)),
            origin,
        )?;
        Ok(list
            .metadata
            .and_then(|m| m.continue_)
            .filter(|t| !t.is_empty()))
    }

    /// Items in order. Reading an item's JSON is most of the work and needs
    /// nothing from the others, so a long list is read in chunks by two
    /// threads: a helper reads chunk after chunk, and this thread takes the
    /// chunks into the view in list order, reading the next unread chunk
    /// itself whenever the one it needs is not ready. An item that cannot
    /// be read is skipped, and the view says so (`ClusterView::skipped`).
    fn add_items<'j>(
        &mut self,
        items: &[&'j RawValue],
        of: Option<(&'j str, &'j str)>,
        origin: &str,
    ) -> Result<()> {
        /// Items per chunk: large enough that handing one over is noise.
        const CHUNK: usize = 256;
        if items.len() < 8 * CHUNK {
            for (i, item) in items.iter().enumerate() {
                let parsed = Parsed::read(item, of);
                self.apply(item, i, parsed, of, origin)?;
            }
            return Ok(());
        }
        let chunks: Vec<&[&'j RawValue]> = items.chunks(CHUNK).collect();
        type Slot<'j> = Mutex<Option<Vec<Result<Parsed<'j>, Unreadable>>>>;
        let slots: Vec<Slot<'j>> = chunks.iter().map(|_| Mutex::new(None)).collect();
        let take = |i: usize| {
            slots[i]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        };
        // The next chunk nobody has started; past the end stops the helper.
        let next = AtomicUsize::new(0);
        let read = |i: usize| {
            let parsed = chunks[i]
                .iter()
                .map(|item| Parsed::read(item, of))
                .collect();
            *slots[i]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(parsed);
        };
        let me = std::thread::current();
        let count = chunks.len();
        std::thread::scope(|scope| {
            let (read, next, me) = (&read, &next, &me);
            let helper = scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    read(i);
                    me.unpark();
                }
            });
            let result = (|| {
                for (i, chunk) in chunks.iter().enumerate() {
                    let parsed = loop {
                        if let Some(p) = take(i) {
                            break p;
                        }
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        if j < count {
                            read(j);
                        } else if helper.is_finished() {
                            // The helper is done: chunk i is there, or never will be.
                            match take(i) {
                                Some(p) => break p,
                                None => {
                                    return Err(anyhow::anyhow!(
                                        "{origin}: the thread reading objects stopped unexpectedly"
                                    ));
                                }
                            }
                        } else {
                            std::thread::park_timeout(std::time::Duration::from_millis(1));
                        }
                    };
                    for (j, (item, parsed)) in chunk.iter().zip(parsed).enumerate() {
                        self.apply(item, i * CHUNK + j, parsed, of, origin)?;
                    }
                }
                Ok(())
            })();
            // On an error the helper has nothing left to do.
            next.store(count, Ordering::Relaxed);
            result
        })
    }

    /// One object; `of` gives its apiVersion and kind when the JSON lacks them.
    pub fn add_object<'j>(
        &mut self,
        item: &'j RawValue,
        of: Option<(&'j str, &'j str)>,
        origin: &str,
    ) -> Result<()> {
        let parsed = Parsed::read(item, of);
        self.apply(item, 0, parsed, of, origin)
    }

    /// Add item `index` of a list, as read by [`Parsed::read`], to the view;
    /// or say why it cannot be read and leave it out.
    fn apply(
        &mut self,
        item: &RawValue,
        index: usize,
        parsed: Result<Parsed<'_>, Unreadable>,
        of: Option<(&str, &str)>,
        origin: &str,
    ) -> Result<()> {
        let parsed = match parsed {
            Ok(p) => p,
            Err(fault) => {
                self.view.skip(skipped(item, index, of, origin, fault));
                return Ok(());
            }
        };
        let added = match parsed.typed {
            Typed::Node(node) => node_facts(node).map(|n| self.view.add_node(n)),
            Typed::Pod(pod) => pod_facts(pod).map(|p| self.view.add_pod(p)),
            Typed::Service(facts) => {
                self.view.add_service(facts);
                Ok(())
            }
            Typed::Slice(Some((service, endpoints))) => {
                self.view.add_endpoints(service, endpoints);
                Ok(())
            }
            Typed::Slice(None) | Typed::Other => Ok(()),
        };
        self.view.count(&parsed.api, &parsed.kind);
        let keep = self.retain.keeps(&parsed.api, &parsed.kind);
        // Policies are read again by the policy evaluator; one it could not
        // read is left out here, where the view says so, not there.
        let added = added.and_then(|()| match keep {
            true => skoop_policy::check_object(&parsed.api, &parsed.kind, item.get()),
            false => Ok(()),
        });
        if let Err(fault) = added {
            self.view.skip(skipped(item, index, of, origin, fault));
            return Ok(());
        }
        if keep {
            let json = if of.is_some() && parsed.head.kind.is_none() {
                RawJson::Owned(with_kind(item.get(), &parsed.api, &parsed.kind)?)
            } else {
                self.share(item.get())
                    .unwrap_or_else(|| RawJson::Owned(item.to_owned()))
            };
            self.view.keep(
                parsed.api.into_owned(),
                parsed.kind.into_owned(),
                RawObject {
                    namespace: text(&parsed.head.metadata.namespace),
                    name: text(&parsed.head.metadata.name),
                    json,
                },
            );
        }
        Ok(())
    }

    /// `json`'s place in the shared text, if it is in it.
    fn share(&self, json: &str) -> Option<RawJson> {
        let text = self.shared.as_ref()?;
        let start = (json.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
        let end = start + json.len();
        (text.get(start..end)?.as_ptr() == json.as_ptr()).then(|| RawJson::Shared {
            text: text.clone(),
            start,
            end,
        })
    }

    /// Objects read so far (left out or not), for progress.
    pub fn read_so_far(&self) -> usize {
        self.view.counts().values().sum::<usize>() + self.view.skipped().len()
    }

    pub fn finish(self) -> ClusterView {
        self.view
    }
}

/// A list item with `apiVersion` and `kind` put back, without the copy of
/// the whole object kubectl keeps in an annotation, as kubectl shows it.
fn with_kind(json: &str, api_version: &str, kind: &str) -> Result<Box<RawValue>> {
    let mut v: serde_json::Map<String, Value> = serde_json::from_str(json)?;
    v.insert("apiVersion".into(), Value::String(api_version.into()));
    v.insert("kind".into(), Value::String(kind.into()));
    if let Some(Value::Object(meta)) = v.get_mut("metadata") {
        meta.remove("managedFields");
        if let Some(Value::Object(ann)) = meta.get_mut("annotations") {
            ann.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    Ok(serde_json::value::to_raw_value(&v)?)
}

/// What can be read of item `index` that could not be read as an object:
/// its kind and name, the addresses it names and the Service it serves.
fn skipped(
    item: &RawValue,
    index: usize,
    of: Option<(&str, &str)>,
    origin: &str,
    fault: Unreadable,
) -> Skipped {
    let v: Value = serde_json::from_str(item.get()).unwrap_or(Value::Null);
    let field = |v: &Value, path: &[&str]| -> Option<String> {
        path.iter()
            .try_fold(v, |v, k| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (api_version, kind) = match of {
        Some((a, k)) => (a.to_string(), k.to_string()),
        None => (
            field(&v, &["apiVersion"]).unwrap_or_default(),
            field(&v, &["kind"]).unwrap_or_default(),
        ),
    };
    let mut addresses = Vec::new();
    let mut add = |s: Option<&str>| {
        if let Some(ip) = s.and_then(|s| s.parse::<std::net::Ipv4Addr>().ok())
            && !addresses.contains(&ip)
        {
            addresses.push(ip);
        }
    };
    let list = |v: &Value, path: &[&str]| -> Vec<Value> {
        path.iter()
            .try_fold(v, |v, k| v.get(k))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    add(field(&v, &["status", "podIP"]).as_deref());
    for p in list(&v, &["status", "podIPs"]) {
        add(field(&p, &["ip"]).as_deref());
    }
    add(field(&v, &["spec", "clusterIP"]).as_deref());
    for key in ["clusterIPs", "externalIPs"] {
        for ip in list(&v, &["spec", key]) {
            add(ip.as_str());
        }
    }
    for i in list(&v, &["status", "loadBalancer", "ingress"]) {
        add(field(&i, &["ip"]).as_deref());
    }
    for a in list(&v, &["status", "addresses"]) {
        add(field(&a, &["address"]).as_deref());
    }
    for e in list(&v, &["endpoints"]) {
        for ip in list(&e, &["addresses"]) {
            add(ip.as_str());
        }
    }
    let namespace = field(&v, &["metadata", "namespace"]).unwrap_or_default();
    let service = field(&v, &["metadata", "labels", "kubernetes.io/service-name"])
        .filter(|_| kind == "EndpointSlice")
        .map(|s| format!("{namespace}/{s}"));
    Skipped {
        origin: origin.to_string(),
        item: format!("items[{index}]"),
        api_version,
        kind,
        name: field(&v, &["metadata", "name"]).unwrap_or_default(),
        namespace,
        fault,
        addresses,
        service,
    }
}

impl ClusterView {
    /// Interpret `cluster.json` (a List), keeping the objects `retain` names.
    pub fn parse(json: &str, origin: &str, retain: Retain) -> Result<ClusterView> {
        let mut b = ClusterBuilder::new(retain);
        b.add_list(json, origin)?;
        Ok(b.finish())
    }

    /// [`ClusterView::parse`] of a text the kept objects may share.
    pub fn parse_shared(json: &Arc<String>, origin: &str, retain: Retain) -> Result<ClusterView> {
        let mut b = ClusterBuilder::new(retain);
        b.add_shared_list(json, origin)?;
        let mut view = b.finish();
        view.settle_shared();
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use serde_json::json;

    use super::*;

    #[test]
    fn a_guessed_kind_is_confirmed_by_the_object_itself() {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            // A static pod: its owner is a Node.
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "etcd", "namespace": "kube-system",
              "ownerReferences": [{"kind": "Node", "name": "node-1"}]},
             "spec": {"nodeName": "node-1"}, "status": {"podIP": "10.244.0.9", "phase": "Running"}},
            // A ConfigMap with a `kind` key that names a Service.
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"},
             "data": {"kind": "Service"}},
            // A slice: its endpoints name their Pods.
            {"addressType": "IPv4", "apiVersion": "discovery.k8s.io/v1",
             "endpoints": [{"addresses": ["10.244.0.9"], "targetRef": {"kind": "Pod", "name": "etcd", "namespace": "kube-system"}}],
             "kind": "EndpointSlice", "metadata": {"name": "s-1", "namespace": "kube-system",
              "labels": {"kubernetes.io/service-name": "etcd"}}, "ports": [{"port": 2379}]}
        ]})
        .to_string();
        assert_eq!(
            guess_kind(&list),
            Some(("discovery.k8s.io/v1", "EndpointSlice"))
        );
        let view = ClusterView::parse(&list, "list", Retain::host()).expect("view");
        assert!(view.pods.contains_key("kube-system/etcd"));
        assert!(view.nodes.is_empty());
        assert!(view.services.is_empty());
        assert_eq!(view.objects("v1", "ConfigMap", "n").len(), 1);
        let eps = &view.endpoints["kube-system/etcd"];
        assert_eq!(eps[0].pod.as_deref(), Some("kube-system/etcd"));
    }

    /// A List of `n` Services and their slices, interleaved; Service `bad`
    /// and Service `bad + 1` have a port out of range, when given.
    fn list(n: usize, bad: Option<usize>) -> String {
        let mut items = Vec::new();
        for i in 0..n {
            let port = if bad.is_some_and(|b| i == b || i == b + 1) {
                70_000
            } else {
                80
            };
            let ip = format!("10.96.{}.{}", i / 250, i % 250 + 1);
            items.push(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("svc-{i}"), "namespace": "default"},
                "spec": {"clusterIP": ip, "ports": [{"port": port, "protocol": "TCP"}]}}));
            items.push(
                json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "addressType": "IPv4",
                "metadata": {"name": format!("svc-{i}-x"), "namespace": "default",
                             "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
                "endpoints": [{"addresses": [format!("10.244.0.{}", i % 250 + 1)]}],
                "ports": [{"port": 8080, "protocol": "TCP"}]}),
            );
        }
        json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
    }

    #[test]
    fn a_long_list_read_on_two_threads_gives_every_object() {
        // 6,000 items: past the size read on two threads, ending in a short chunk.
        let view = ClusterView::parse(&list(3_000, None), "cluster.json", Retain::host()).unwrap();
        assert_eq!(view.services.len(), 3_000);
        assert_eq!(view.endpoints.len(), 3_000);
        assert_eq!(view.counts()[&("v1".into(), "Service".into())], 3_000);
        let svc = view.service_by_ip("10.96.11.250".parse().unwrap());
        assert_eq!(svc.map(|s| s.name.as_str()), Some("svc-2999"));
        let eps = &view.endpoints["default/svc-2999"];
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].ip, "10.244.0.250".parse::<Ipv4Addr>().unwrap());
    }

    #[test]
    fn a_long_list_skips_its_bad_objects_in_list_order() {
        // svc-1600 is item 3,200: in the chunk the second thread reads
        // (items 3,072 to 4,095), like svc-1601 after it.
        let view = ClusterView::parse(&list(3_000, Some(1_600)), "cluster.json", Retain::host())
            .expect("a view despite two bad Services");
        assert_eq!(view.services.len(), 2_998);
        let skipped: Vec<String> = view.skipped().iter().map(Skipped::message).collect();
        assert_eq!(
            skipped,
            [
                "cluster.json: items[3200].spec.ports[0].port: port 70000 out of range (1-65535) (Service default/svc-1600 skipped)",
                "cluster.json: items[3202].spec.ports[0].port: port 70000 out of range (1-65535) (Service default/svc-1601 skipped)",
            ]
        );
        assert_eq!(
            view.skipped()[0].addresses,
            ["10.96.6.101".parse::<Ipv4Addr>().unwrap()],
            "what the Service would have been"
        );
    }

    #[test]
    fn a_malformed_object_of_each_kind_is_skipped_naming_the_field() {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "broken", "namespace": "other"},
             "spec": {"containers": "oops"}, "status": {"podIP": "10.244.9.9"}},
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
             "status": {"addresses": {"type": "InternalIP"}}},
            {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
             "metadata": {"name": "web-x", "namespace": "default",
                          "labels": {"kubernetes.io/service-name": "web"}},
             "endpoints": [{"addresses": "10.244.1.7"}]},
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "deny", "namespace": "default"},
             "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": 10}}]}]}},
            {"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool",
             "metadata": "default-pool"},
            "not an object",
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fine", "namespace": "default"},
             "spec": {"nodeName": "n"}, "status": {"podIP": "10.244.0.5"}}
        ]})
        .to_string();
        let view = ClusterView::parse(&list, "cluster.json", Retain::all()).expect("a view");
        let skipped: Vec<String> = view.skipped().iter().map(Skipped::message).collect();
        assert_eq!(
            skipped,
            [
                r#"cluster.json: items[0].spec.containers: expected a list, found the string "oops" (Pod other/broken skipped)"#,
                "cluster.json: items[1].status.addresses: expected a list, found an object (Node n skipped)",
                r#"cluster.json: items[2].endpoints[0].addresses: expected a list, found the string "10.244.1.7" (EndpointSlice default/web-x skipped)"#,
                "cluster.json: items[3].spec.ingress[0].from[0].ipBlock.cidr: expected a string, found the number 10 (NetworkPolicy default/deny skipped)",
                r#"cluster.json: items[4].metadata: expected an object, found the string "default-pool" (an IPPool without a readable name skipped)"#,
                r#"cluster.json: items[5]: expected an object, found the string "not an object" (an object without a readable name skipped)"#,
            ]
        );
        assert!(view.pods.contains_key("default/fine"));
        assert!(
            view.objects("networking.k8s.io/v1", "NetworkPolicy", "")
                .is_empty()
        );
        assert_eq!(view.skipped()[2].service.as_deref(), Some("default/web"));
        assert_eq!(
            view.skipped()[0].addresses,
            ["10.244.9.9".parse::<Ipv4Addr>().unwrap()]
        );
    }
}
