//! A fake Kubernetes API server on 127.0.0.1 (plain HTTP/1.1): LIST with
//! pagination, GET, POST, DELETE and pod logs on the paths kube uses, from
//! fixture objects. It plays the kubelet too: a collector pod becomes ready
//! (or not, as the test says) and its log is that node's dump; a probe pod
//! runs its command with the real binary (or logs what the test says).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// What the fake kubelet does with a node's collector pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kubelet {
    /// Runs it; it succeeds and its log is the node's dump.
    Ready,
    /// Never starts it (ContainerCreating forever).
    Pending,
    /// The scheduler cannot place it.
    Unschedulable,
    /// It exits with status 1.
    Crash,
    /// Ready this many milliseconds after it was created.
    SlowMs(u64),
}

/// What the fake kubelet does with a probe pod (`skoop collect probe`,
/// `--probe`).
#[derive(Debug, Clone)]
pub enum Prober {
    /// Its log is this text, at once.
    Log(String),
    /// Runs the pod's command with the real binary (`skoop collect probe
    /// ...`); the fake plays CRI too: the pods of `netns` (`NS/NAME` → a
    /// netns under /run/netns) are found there, so `--pod NS/NAME` becomes
    /// `--pod NS/NAME=NETNS`, the form the binary takes without a runtime.
    Run {
        bin: std::path::PathBuf,
        netns: BTreeMap<String, String>,
    },
}

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
}

#[derive(Default)]
pub struct State {
    /// Fixture objects, kubectl-shaped (with kind/apiVersion).
    pub objects: Vec<Value>,
    /// Node dumps by node name (JSON text), the collector pods' logs.
    pub dumps: BTreeMap<String, String>,
    /// Per-node kubelet behaviour; default Ready.
    pub kubelet: BTreeMap<String, Kubelet>,
    pub namespaces: BTreeSet<String>,
    /// Collector pods by (namespace, name).
    pub pods: BTreeMap<(String, String), Value>,
    /// When each collector pod was created.
    pub created: BTreeMap<(String, String), std::time::Instant>,
    pub seen: Vec<Seen>,
    /// Requests (method, path prefix) answered 403.
    pub forbid: Vec<(String, String)>,
    /// Path prefixes never answered.
    pub hang: Vec<String>,
    /// The bearer token required, if any.
    pub token: Option<String>,
    /// Probe pods: what their log holds (None: they fail as a collector
    /// would, their log being no probe result).
    pub prober: Option<Prober>,
    /// Logs of pods that ran their own command (probe pods), by (namespace,
    /// name); a pod created but not in here is still running.
    pub logs: BTreeMap<(String, String), String>,
    /// Probe pods created and not started yet: (namespace, name, command).
    pub pending: Vec<(String, String, Vec<String>)>,
    /// Probe pods whose command is running.
    pub running: BTreeSet<(String, String)>,
}

/// Whether a pod's command is a probe.
fn probe_command(pod: &Value) -> Option<Vec<String>> {
    let cmd: Vec<String> = pod
        .pointer("/spec/containers/0/command")?
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    (cmd.get(1).map(String::as_str) == Some("collect")
        && cmd.get(2).map(String::as_str) == Some("probe"))
    .then_some(cmd)
}

/// Run a probe pod's command as the fake kubelet would, then file its log.
fn run_probe(state: Arc<Mutex<State>>, ns: String, name: String, command: Vec<String>) {
    let prober = state.lock().unwrap().prober.clone();
    let log = match prober {
        None => "skoop: cannot probe\n".to_string(),
        Some(Prober::Log(text)) => text,
        Some(Prober::Run { bin, netns }) => {
            let mut args: Vec<String> = command.into_iter().skip(1).collect();
            for i in 0..args.len() {
                if args[i] == "--pod"
                    && let Some(pod) = args.get(i + 1).cloned()
                    && let Some(path) = netns.get(&pod)
                {
                    args[i + 1] = format!("{pod}={path}");
                }
            }
            match std::process::Command::new(&bin).args(&args).output() {
                // A container log holds both streams.
                Ok(out) => format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stderr),
                    String::from_utf8_lossy(&out.stdout)
                ),
                Err(e) => format!("cannot run {}: {e}\n", bin.display()),
            }
        }
    };
    let mut s = state.lock().unwrap();
    let key = (ns, name);
    s.running.remove(&key);
    s.logs.insert(key, log);
}

pub struct FakeApi {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

/// The fixture objects as LIST serves them, prepared once at start (the
/// objects do not change while the server runs): by API version and kind,
/// each item's JSON without its kind and apiVersion. So a page costs a copy
/// of its items, as a real API server's watch cache serves them, and the
/// benchmark measures skoop rather than this server.
#[derive(Default)]
struct Lists {
    /// (apiVersion, kind) → items in fixture order.
    items: BTreeMap<(String, String), Vec<String>>,
}

impl Lists {
    fn new(objects: &[Value]) -> Lists {
        let mut items: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for o in objects {
            let field = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let mut item = o.clone();
            // Real list responses omit the items' kind and apiVersion.
            if let Value::Object(m) = &mut item {
                m.remove("kind");
                m.remove("apiVersion");
            }
            items
                .entry((field("apiVersion"), field("kind")))
                .or_default()
                .push(item.to_string());
        }
        Lists { items }
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// (group, version, plural) → kind.
const RESOURCES: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "nodes", "Node"),
    ("", "v1", "namespaces", "Namespace"),
    ("", "v1", "pods", "Pod"),
    ("", "v1", "services", "Service"),
    ("", "v1", "configmaps", "ConfigMap"),
    ("", "v1", "secrets", "Secret"),
    ("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    (
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
    ),
    ("apps", "v1", "daemonsets", "DaemonSet"),
    (
        "policy.networking.k8s.io",
        "v1alpha1",
        "adminnetworkpolicies",
        "AdminNetworkPolicy",
    ),
    (
        "policy.networking.k8s.io",
        "v1alpha1",
        "baselineadminnetworkpolicies",
        "BaselineAdminNetworkPolicy",
    ),
];

impl FakeApi {
    pub fn start(state: State) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let lists = Arc::new(Lists::new(&state.objects));
        let state = Arc::new(Mutex::new(state));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, st, l) = (s.clone(), st.clone(), lists.clone());
                std::thread::spawn(move || serve(conn, s, &l, &st));
            }
        });
        FakeApi { url, state, stop }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Requests with this method whose path starts with `prefix`.
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == method && s.path.starts_with(prefix))
            .count()
    }

    /// Nodes the collector pods created so far were pinned to.
    pub fn collected_nodes(&self) -> Vec<String> {
        let seen = self.state.lock().unwrap();
        let mut nodes: Vec<String> = seen
            .pods
            .values()
            .filter_map(|p| p.pointer("/spec/nodeName").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        nodes.sort();
        nodes
    }
}

struct Request {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect();
    Some(Request {
        method,
        path: path.to_string(),
        query,
        headers,
        body,
    })
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if b[i] == b'%'
            && let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve(conn: TcpStream, state: Arc<Mutex<State>>, lists: &Lists, stop: &AtomicBool) {
    let Ok(write) = conn.try_clone() else { return };
    let mut write = write;
    let mut read = BufReader::new(conn);
    while let Some(req) = read_request(&mut read) {
        let hang = {
            let mut s = state.lock().unwrap();
            s.seen.push(Seen {
                method: req.method.clone(),
                path: req.path.clone(),
            });
            s.hang.iter().any(|p| req.path.starts_with(p.as_str()))
        };
        if hang {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        let (code, ctype, body, start) = {
            let mut s = state.lock().unwrap();
            let answer = handle(&mut s, lists, &req);
            let start = std::mem::take(&mut s.pending);
            for (ns, name, _) in &start {
                s.running.insert((ns.clone(), name.clone()));
            }
            (answer.0, answer.1, answer.2, start)
        };
        // The kubelet starts the probe pods just created.
        for (ns, name, command) in start {
            let state = state.clone();
            std::thread::spawn(move || run_probe(state, ns, name, command));
        }
        let head = format!(
            "HTTP/1.1 {code} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            reason(code),
            body.len()
        );
        if write.write_all(head.as_bytes()).is_err() || write.write_all(&body).is_err() {
            return;
        }
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        _ => "Error",
    }
}

fn status(code: u16, reason: &str, message: &str) -> (u16, &'static str, Vec<u8>) {
    let v = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (code, "application/json", v.to_string().into_bytes())
}

fn ok(code: u16, v: &Value) -> (u16, &'static str, Vec<u8>) {
    (code, "application/json", v.to_string().into_bytes())
}

/// (kind, plural) served under group `g`, version `v`: the built-in
/// resources, and any kind of the fixture's objects there (a CRD; its
/// plural is the kind in lower case plus "s", as for the CRDs skoop reads).
fn served(lists: &Lists, g: &str, v: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = RESOURCES
        .iter()
        .filter(|(rg, rv, _, _)| *rg == g && *rv == v)
        .map(|(_, _, plural, kind)| (kind.to_string(), plural.to_string()))
        .collect();
    let api_version = if g.is_empty() {
        v.to_string()
    } else {
        format!("{g}/{v}")
    };
    for (api, kind) in lists.items.keys() {
        if *api == api_version && !out.iter().any(|(k, _)| k == kind) {
            out.push((kind.to_string(), format!("{}s", kind.to_lowercase())));
        }
    }
    out
}

fn handle(s: &mut State, lists: &Lists, req: &Request) -> (u16, &'static str, Vec<u8>) {
    if let Some(token) = &s.token {
        let auth = req
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        if auth != format!("Bearer {token}") {
            return status(401, "Unauthorized", "Unauthorized");
        }
    }
    if s.forbid
        .iter()
        .any(|(m, p)| *m == req.method && req.path.starts_with(p.as_str()))
    {
        return status(
            403,
            "Forbidden",
            &format!(
                "User \"test\" cannot {} resource at {}",
                req.method.to_lowercase(),
                req.path
            ),
        );
    }
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    // Cluster-wide lists: /api/v1/<plural>, /apis/<g>/<v>/<plural>.
    let list = match segs.as_slice() {
        ["api", "v1", plural] => Some(("", "v1", *plural)),
        ["apis", g, v, plural] => Some((*g, *v, *plural)),
        _ => None,
    };
    if let (Some((g, v, plural)), "GET") = (list, req.method.as_str()) {
        let Some((kind, _)) = served(lists, g, v).into_iter().find(|(_, p)| p == plural) else {
            return status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            );
        };
        return list_page(lists, g, v, &kind, req);
    }
    // API discovery: /api/v1, /apis/<g>/<v>.
    let discovery = match segs.as_slice() {
        ["api", "v1"] => Some(("", "v1")),
        ["apis", g, v] => Some((*g, *v)),
        _ => None,
    };
    if let (Some((g, v)), "GET") = (discovery, req.method.as_str()) {
        let kinds = served(lists, g, v);
        if kinds.is_empty() {
            return status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            );
        }
        let group_version = if g.is_empty() {
            v.to_string()
        } else {
            format!("{g}/{v}")
        };
        let resources: Vec<Value> = kinds
            .iter()
            .map(|(kind, plural)| {
                json!({"name": plural, "singularName": kind.to_lowercase(), "namespaced": false,
                       "kind": kind, "verbs": ["get", "list"]})
            })
            .collect();
        return ok(
            200,
            &json!({"kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": group_version, "resources": resources}),
        );
    }
    match (req.method.as_str(), segs.as_slice()) {
        ("GET", ["api", "v1", "namespaces", ns]) => {
            if s.namespaces.contains(*ns) {
                ok(
                    200,
                    &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                )
            } else {
                status(404, "NotFound", &format!("namespaces \"{ns}\" not found"))
            }
        }
        ("POST", ["api", "v1", "namespaces"]) => {
            let v: Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let name = v
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !s.namespaces.insert(name.to_string()) {
                return status(409, "AlreadyExists", "exists");
            }
            ok(201, &v)
        }
        ("POST", ["api", "v1", "namespaces", ns, "pods"]) => {
            if !s.namespaces.contains(*ns) {
                return status(404, "NotFound", &format!("namespaces \"{ns}\" not found"));
            }
            let v: Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let name = v
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if s.pods.contains_key(&(ns.to_string(), name.clone())) {
                return status(409, "AlreadyExists", "exists");
            }
            s.created
                .insert((ns.to_string(), name.clone()), std::time::Instant::now());
            if let Some(command) = probe_command(&v) {
                s.pending.push((ns.to_string(), name.clone(), command));
            }
            s.pods.insert((ns.to_string(), name), v.clone());
            ok(201, &v)
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name]) => {
            match s.pods.get(&(ns.to_string(), name.to_string())) {
                Some(p) => {
                    let node = p
                        .pointer("/spec/nodeName")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let mut k = s.kubelet.get(node).copied().unwrap_or(Kubelet::Ready);
                    if let Kubelet::SlowMs(ms) = k {
                        let born = s.created.get(&(ns.to_string(), name.to_string()));
                        k = match born {
                            Some(t) if t.elapsed() < Duration::from_millis(ms) => Kubelet::Pending,
                            _ => Kubelet::Ready,
                        };
                    }
                    let key = (ns.to_string(), name.to_string());
                    let mut p = p.clone();
                    p["status"] = if s.running.contains(&key)
                        || s.pending.iter().any(|(n, m, _)| (n, m) == (&key.0, &key.1))
                    {
                        json!({"phase": "Running", "containerStatuses": [
                            {"name": "collect", "state": {"running": {}}}]})
                    } else {
                        pod_status(k)
                    };
                    ok(200, &p)
                }
                None => status(404, "NotFound", &format!("pods \"{name}\" not found")),
            }
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name, "log"]) => {
            let Some(p) = s.pods.get(&(ns.to_string(), name.to_string())) else {
                return status(404, "NotFound", &format!("pods \"{name}\" not found"));
            };
            if let Some(log) = s.logs.get(&(ns.to_string(), name.to_string())) {
                return (200, "text/plain", log.clone().into_bytes());
            }
            let node = p
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("");
            match s.dumps.get(node) {
                Some(d) => (200, "text/plain", d.clone().into_bytes()),
                None => (200, "text/plain", b"skoop: cannot collect\n".to_vec()),
            }
        }
        ("DELETE", ["api", "v1", "namespaces", ns, "pods", name]) => {
            match s.pods.remove(&(ns.to_string(), name.to_string())) {
                Some(p) => ok(200, &p),
                None => status(404, "NotFound", &format!("pods \"{name}\" not found")),
            }
        }
        _ => status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

fn pod_status(k: Kubelet) -> Value {
    match k {
        Kubelet::Ready | Kubelet::SlowMs(_) => json!({"phase": "Succeeded", "containerStatuses": [
            {"name": "collect", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
        Kubelet::Pending => json!({"phase": "Pending", "containerStatuses": [
            {"name": "collect", "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
        Kubelet::Unschedulable => json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/disk-pressure: }"}]}),
        Kubelet::Crash => json!({"phase": "Failed", "containerStatuses": [
            {"name": "collect", "state": {"terminated": {"exitCode": 1, "reason": "Error",
             "message": "netlink: permission denied"}}}]}),
    }
}

fn list_page(
    lists: &Lists,
    g: &str,
    v: &str,
    kind: &str,
    req: &Request,
) -> (u16, &'static str, Vec<u8>) {
    let api_version = if g.is_empty() {
        v.to_string()
    } else {
        format!("{g}/{v}")
    };
    let all: &[String] = lists
        .items
        .get(&(api_version.clone(), kind.to_string()))
        .map_or(&[], Vec::as_slice);
    let start: usize = req
        .query
        .get("continue")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit: usize = req
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX);
    let end = start.saturating_add(limit).min(all.len());
    let mut meta = json!({"resourceVersion": "1000"});
    if end < all.len() {
        meta["continue"] = json!(end.to_string());
    }
    // The envelope with an empty item list, the prepared items spliced in.
    let head = json!({"kind": format!("{kind}List"), "apiVersion": api_version,
        "metadata": meta})
    .to_string();
    let page = &all[start.min(end)..end];
    let mut body =
        Vec::with_capacity(head.len() + 12 + page.iter().map(|i| i.len() + 1).sum::<usize>());
    body.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    body.extend_from_slice(b",\"items\":[");
    for (i, item) in page.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item.as_bytes());
    }
    body.extend_from_slice(b"]}");
    (200, "application/json", body)
}
