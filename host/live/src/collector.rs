//! Collector pods: created lazily, one per node the diagnosis reaches,
//! waited for, read through their log, and deleted at the end, on failure
//! and on Ctrl-C/SIGTERM (unless preserved).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, LogParams, PostParams};
use tokio::runtime::Runtime;

use super::api::{Answer, ApiServer, Call};
use super::pod::{self, State};
use skoop_engine::bundle::parse_node;
use skoop_error::bad_input;
use skoop_netstack::dump::NodeDump;

use crate::progress::Progress;

/// Settings of the collector pods.
#[derive(Debug, Clone)]
pub struct Options {
    pub namespace: String,
    pub image: String,
    pub wait: Duration,
    pub preserve: bool,
    /// Labels this run's pods (`skoop.io/run`) and suffixes their names.
    pub run_id: String,
}

/// The collector pods of one run.
pub struct Collectors {
    api: Arc<ApiServer>,
    /// Pods in the collector namespace.
    pods: kube::Api<Pod>,
    opts: Options,
    /// Pods created (or being created); the lock is held across a create so
    /// cleanup never misses a pod whose create is in flight.
    created: tokio::sync::Mutex<Vec<String>>,
    namespace_ready: tokio::sync::OnceCell<()>,
    /// Set once cleanup started: no more pods are created.
    closing: AtomicBool,
    /// The first collector failure: later nodes are not attempted.
    failure: Mutex<Option<String>>,
    progress: Arc<Progress>,
    /// Nodes whose collector pod is being waited for, and how many were.
    waiting: Mutex<(Vec<String>, usize)>,
}

// Polling, not `kube::runtime::wait::await_condition`: a watch would need
// the `list` and `watch` verbs on pods, which deploy/rbac.yaml does not
// grant, and the test API server has no watch endpoint.
const POLL_FIRST: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(1);

impl Collectors {
    pub fn new(api: Arc<ApiServer>, progress: Arc<Progress>, opts: Options) -> Arc<Collectors> {
        Arc::new(Collectors {
            pods: kube::Api::namespaced(api.client(), &opts.namespace),
            api,
            opts,
            created: tokio::sync::Mutex::new(Vec::new()),
            namespace_ready: tokio::sync::OnceCell::new(),
            closing: AtomicBool::new(false),
            failure: Mutex::new(None),
            progress,
            waiting: Mutex::new((Vec::new(), 0)),
        })
    }

    /// The first collector failure of this run, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    /// A call on pods of the collector namespace: on `name` (if not empty)
    /// and the subresource of `resource` (`pods/log`).
    fn pods_call(&self, verb: &'static str, resource: &'static str, name: &str) -> Call {
        let mut path = self.pods.resource_url().to_string();
        for part in [name, resource.strip_prefix("pods/").unwrap_or("")] {
            if !part.is_empty() {
                path.push('/');
                path.push_str(part);
            }
        }
        Call {
            verb,
            group: String::new(),
            resource: resource.to_string(),
            namespace: Some(self.opts.namespace.clone()),
            path,
        }
    }

    async fn ensure_namespace(&self) -> Result<()> {
        self.namespace_ready
            .get_or_try_init(|| async {
                let ns = &self.opts.namespace;
                let namespaces = kube::Api::<Namespace>::all(self.api.client());
                let get = Call {
                    verb: "get",
                    group: String::new(),
                    resource: "namespaces".into(),
                    namespace: None,
                    path: format!("{}/{ns}", namespaces.resource_url()),
                };
                if let Answer::Ok(_) = self.api.send(&get, namespaces.get(ns)).await? {
                    return Ok(());
                }
                let create = Call {
                    verb: "create",
                    group: String::new(),
                    resource: "namespaces".into(),
                    namespace: None,
                    path: namespaces.resource_url().to_string(),
                };
                let labels = [
                    ("app.kubernetes.io/managed-by", "skoop"),
                    ("pod-security.kubernetes.io/enforce", "privileged"),
                ];
                let body = Namespace {
                    metadata: ObjectMeta {
                        name: Some(ns.clone()),
                        labels: Some(
                            labels
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                                .collect(),
                        ),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                };
                match self
                    .api
                    .send(&create, namespaces.create(&PostParams::default(), &body))
                    .await?
                {
                    Answer::Ok(_) | Answer::Status(409, _) => {
                        self.progress
                            .note(&format!("skoop: created namespace {ns} for the collector pods"));
                        Ok(())
                    }
                    Answer::Status(code, m) => Err(bad_input(format!(
                        "cannot create namespace {ns} for the collector pods: HTTP {code}: {m}; create it or pass --collector-namespace"
                    ))),
                }
            })
            .await
            .map(|_| ())
    }

    /// Create pod `name` on `node` running `command`.
    async fn create(&self, node: &str, name: String, command: Vec<String>) -> Result<String> {
        self.ensure_namespace().await?;
        let mut created = self.created.lock().await;
        if self.closing.load(Ordering::SeqCst) {
            return Err(bad_input("interrupted"));
        }
        let ns = &self.opts.namespace;
        let body = pod::manifest(
            &name,
            ns,
            node,
            &self.opts.image,
            &self.opts.run_id,
            command,
        );
        let call = self.pods_call("create", "pods", "");
        created.push(name.clone());
        let post = PostParams::default();
        match self.api.send(&call, self.pods.create(&post, &body)).await {
            Ok(Answer::Ok(_)) => Ok(name),
            Ok(Answer::Status(code, m)) => {
                created.retain(|n| n != &name);
                Err(bad_input(format!(
                    "cannot create collector pod {ns}/{name} for node {node}: HTTP {code}: {m}"
                )))
            }
            Err(e) => Err(e),
        }
    }

    async fn wait(&self, node: &str, name: &str) -> Result<()> {
        self.waiting_for(node, true);
        let waited = self.wait_done(node, name).await;
        self.waiting_for(node, false);
        waited
    }

    /// Note that `node`'s collector pod is (no longer) waited for, and say so.
    fn waiting_for(&self, node: &str, now: bool) {
        let Ok(mut w) = self.waiting.lock() else {
            return;
        };
        if now {
            w.0.push(node.to_string());
            w.1 += 1;
        } else {
            w.0.retain(|n| n != node);
        }
        if w.0.is_empty() {
            self.progress.done();
        } else {
            self.progress.collecting(&w.0, w.1);
        }
    }

    async fn wait_done(&self, node: &str, name: &str) -> Result<()> {
        let ns = &self.opts.namespace;
        let call = self.pods_call("get", "pods", name);
        let start = Instant::now();
        let mut delay = POLL_FIRST;
        let mut last = String::new();
        loop {
            let pod = match self.api.send(&call, self.pods.get(name)).await? {
                Answer::Ok(p) => p,
                Answer::Status(404, _) => {
                    return Err(bad_input(format!(
                        "collector pod {ns}/{name} on node {node} disappeared (deleted by someone else?)"
                    )));
                }
                Answer::Status(code, m) => {
                    return Err(bad_input(format!(
                        "cannot read collector pod {ns}/{name} on node {node}: HTTP {code}: {m}"
                    )));
                }
            };
            match pod::state(&pod) {
                State::Done => return Ok(()),
                State::Failed(why) => {
                    return Err(bad_input(format!(
                        "collector pod {ns}/{name} on node {node} failed: {why}"
                    )));
                }
                State::Waiting(why) => {
                    if why != last {
                        self.progress.note(&format!(
                            "skoop: node {node}: collector pod {ns}/{name} {why}"
                        ));
                        last = why;
                    }
                }
            }
            if start.elapsed() >= self.opts.wait {
                return Err(bad_input(format!(
                    "collector pod {ns}/{name} on node {node} is still {last} after {}s; check it with `kubectl -n {ns} describe pod {name}` or raise --collector-pod-wait-timeout",
                    self.opts.wait.as_secs()
                )));
            }
            if let Ok(w) = self.waiting.lock() {
                self.progress.collecting(&w.0, w.1);
            }
            tokio::time::sleep(delay.min(self.opts.wait.saturating_sub(start.elapsed()))).await;
            delay = (delay * 2).min(POLL_MAX);
        }
    }

    /// The log of pod `name`: what its command printed.
    async fn log(&self, name: &str) -> Result<String> {
        let call = self.pods_call("get", "pods/log", name);
        let params = LogParams {
            container: Some(pod::CONTAINER.into()),
            ..LogParams::default()
        };
        self.api.must(&call, self.pods.logs(name, &params)).await
    }

    async fn fetch(&self, node: &str, name: &str) -> Result<(NodeDump, String)> {
        let ns = &self.opts.namespace;
        let text = self.log(name).await?;
        let origin = format!("log of collector pod {ns}/{name} on node {node}");
        let dump = parse_node(&text, &origin)?;
        if dump.node != node {
            return Err(bad_input(format!(
                "{origin}: the dump is of node {:?}, not {node}",
                dump.node
            )));
        }
        Ok((dump, text))
    }

    /// Collect one node: create its pod, wait for it, read its dump.
    pub async fn collect(&self, node: &str) -> Result<NodeDump> {
        self.collect_text(node).await.map(|(dump, _)| dump)
    }

    /// Collect one node: its dump, and the dump as the collector wrote it.
    pub async fn collect_text(&self, node: &str) -> Result<(NodeDump, String)> {
        if let Some(f) = self.failure() {
            return Err(bad_input(format!(
                "node {node} not collected: an earlier collector failed ({f})"
            )));
        }
        let start = Instant::now();
        let result = async {
            let name = pod::name(node, &self.opts.run_id);
            let name = self.create(node, name, pod::collect_command(node)).await?;
            self.progress.note(&format!(
                "skoop: node {node}: collector pod {}/{name} created",
                self.opts.namespace
            ));
            self.wait(node, &name).await?;
            let (dump, text) = self.fetch(node, &name).await?;
            self.progress.note(&format!(
                "skoop: node {node}: collected in {:.1}s ({} KiB)",
                start.elapsed().as_secs_f64(),
                text.len() / 1024
            ));
            Ok::<_, anyhow::Error>((dump, text))
        }
        .await;
        if let Err(e) = &result
            && let Ok(mut f) = self.failure.lock()
            && f.is_none()
        {
            *f = Some(format!("{e:#}"));
        }
        result
    }

    /// Run `skoop collect probe ARGS` in a pod of its own on `node` (same
    /// rights, same cleanup as a collector) and return its log: the probe's
    /// JSON line. A failure here is the probe's alone: it does not mark the
    /// run's collectors failed.
    pub async fn probe(&self, node: &str, args: &[String]) -> Result<String> {
        let start = Instant::now();
        let ns = &self.opts.namespace;
        let name = pod::probe_name(node, &self.opts.run_id);
        let name = self.create(node, name, pod::probe_command(args)).await?;
        eprintln!("skoop: node {node}: probe pod {ns}/{name} created");
        self.wait(node, &name).await?;
        let text = self.log(&name).await?;
        eprintln!(
            "skoop: node {node}: probed in {:.1}s",
            start.elapsed().as_secs_f64()
        );
        Ok(text)
    }

    /// Delete every pod of this run (unless preserved); no pod is created
    /// after this starts.
    pub async fn cleanup(&self) {
        let created = {
            let mut guard = self.created.lock().await;
            self.closing.store(true, Ordering::SeqCst);
            std::mem::take(&mut *guard)
        };
        if created.is_empty() {
            return;
        }
        let ns = &self.opts.namespace;
        if self.opts.preserve {
            eprintln!(
                "skoop: keeping collector pods (--preserve-collector-pod): kubectl -n {ns} delete pod -l skoop.io/run={}",
                self.opts.run_id
            );
            return;
        }
        let now = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        let deletes = created.iter().map(|name| {
            let call = self.pods_call("delete", "pods", name);
            let now = &now;
            async move {
                let result = match self.api.send(&call, self.pods.delete(name, now)).await {
                    Ok(Answer::Ok(_) | Answer::Status(404, _)) => Ok(()),
                    Ok(Answer::Status(code, m)) => Err(self.api.unexpected(&call, code, &m)),
                    Err(e) => Err(e),
                };
                (name, result)
            }
        });
        for (name, result) in futures::future::join_all(deletes).await {
            if let Err(e) = result {
                eprintln!(
                    "skoop: could not delete collector pod {ns}/{name}: {e:#}; delete it with kubectl -n {ns} delete pod {name}"
                );
            }
        }
    }
}

/// Delete the pods and exit on SIGINT/SIGTERM. The signal handlers are
/// registered before this returns, so no pod is created unguarded.
pub fn guard_signals(rt: &Runtime, collectors: Arc<Collectors>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let _enter = rt.enter();
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    rt.spawn(async move {
        let code = tokio::select! {
            _ = int.recv() => 130,
            _ = term.recv() => 143,
        };
        eprintln!("skoop: interrupted; deleting the collector pods");
        collectors.cleanup().await;
        std::process::exit(code);
    });
    Ok(())
}
