//! Live cluster mode: the cluster view from the API server and node dumps from
//! collector pods, and `skoop snapshot`.
//!
//! Everything async lives here, on a small tokio runtime owned by the
//! [`Session`]; the rest of skoop stays synchronous.

mod api;
mod args;
mod collector;
mod config;
mod objects;
mod pod;
mod progress;
mod snapshot;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use tokio::runtime::Runtime;

pub use args::{LiveArgs, SnapshotArgs};
use skoop_engine::cluster::{ClusterView, Retain};
use skoop_error::bad_input;
use skoop_netstack::dump::NodeDump;
use skoop_netstack::{NetstackError, Netstacks};

pub use objects::KINDS;
pub use progress::Progress;

/// A connection to a live cluster and the collector pods of this run. The
/// pods are deleted when it is dropped (and on SIGINT/SIGTERM).
pub struct Session {
    rt: Runtime,
    api: Arc<api::ApiServer>,
    collectors: Arc<collector::Collectors>,
    /// The line on a terminal while objects are listed and dumps collected.
    progress: Arc<Progress>,
}

fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut x = nanos ^ (u128::from(std::process::id()) << 64);
    let mut id = String::new();
    for _ in 0..5 {
        let d = (x % 36) as u32;
        id.push(char::from_digit(d, 36).unwrap_or('0'));
        x /= 36;
    }
    id
}

impl Session {
    /// Resolve the cluster from the flags and environment and prepare the
    /// collectors; installs the SIGINT/SIGTERM handler. Sends no request.
    pub fn connect(args: &LiveArgs) -> Result<Session> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("skoop-live")
            .enable_all()
            .build()?;
        let target = rt.block_on(config::target(args))?;
        let server = target.config.cluster_url.to_string();
        let server = server.trim_end_matches('/').to_string();
        let client = {
            let _enter = rt.enter();
            kube::Client::try_from(target.config).map_err(|e| {
                bad_input(format!(
                    "cannot set up a client for the API server at {server} ({}): {e}",
                    target.origin
                ))
            })?
        };
        let api = Arc::new(api::ApiServer::new(
            client,
            server,
            target.origin,
            Duration::from_secs(args.api_timeout.max(1)),
        ));
        let progress = Arc::new(Progress::stderr());
        let collectors = collector::Collectors::new(
            api.clone(),
            progress.clone(),
            collector::Options {
                namespace: args.collector_namespace.clone(),
                image: args.collector_image.clone(),
                wait: Duration::from_secs(args.collector_pod_wait_timeout),
                preserve: args.preserve_collector_pod,
                run_id: run_id(),
            },
        );
        collector::guard_signals(&rt, collectors.clone())?;
        Ok(Session {
            rt,
            api,
            collectors,
            progress,
        })
    }

    /// Where the cluster is, for messages and reports.
    pub fn source(&self) -> String {
        format!("cluster at {} ({})", self.api.server, self.api.origin)
    }

    /// API requests sent so far.
    pub fn requests(&self) -> u64 {
        self.api.requests()
    }

    /// The cluster's objects (one paginated LIST per kind), without node
    /// dumps, as a snapshot writes them: every kind skoop reads, and the
    /// `declared` kinds (`apiVersion/Kind`) the loaded extensions read.
    pub fn objects(&self, declared: &[String]) -> Result<Vec<serde_json::Value>> {
        self.rt.block_on(objects::all(&self.api, declared))
    }

    /// The cluster view, read page by page, of every kind skoop reads and
    /// the kinds `retain` adds for the extensions; only the kinds `retain`
    /// names are kept as JSON.
    pub fn view(&self, retain: Retain) -> Result<ClusterView> {
        let view = self
            .rt
            .block_on(objects::view(&self.api, retain, &self.progress));
        self.progress.done();
        view
    }

    pub fn collect(&self, node: &str) -> Result<NodeDump> {
        self.rt.block_on(self.collectors.collect(node))
    }

    /// Collect several nodes, `parallel` at a time, in order: each node's
    /// dump as its collector wrote it (checked to be a valid dump).
    pub fn collect_many(&self, nodes: &[String], parallel: usize) -> Vec<Result<String>> {
        let mut out = Vec::with_capacity(nodes.len());
        for chunk in nodes.chunks(parallel.max(1)) {
            let jobs = chunk.iter().map(|n| async move {
                self.collectors.collect_text(n).await.map(|(_, text)| text)
            });
            out.extend(self.rt.block_on(futures::future::join_all(jobs)));
        }
        out
    }

    /// Netstacks that collect a node the first time the diagnosis asks for it.
    pub fn netstacks(&self, view: &ClusterView) -> Netstacks {
        let pod_node = view
            .pods
            .values()
            .map(|p| (p.id(), p.node.clone()))
            .collect();
        let handle = self.rt.handle().clone();
        let collectors = self.collectors.clone();
        Netstacks::lazy(
            view.nodes.keys().cloned(),
            pod_node,
            Box::new(move |node| {
                handle
                    .block_on(collectors.collect(node))
                    .map_err(|e| NetstackError::Unavailable(format!("{e:#}")))
            }),
            false,
        )
    }

    /// Run `skoop collect probe ARGS` on `node` in a pod of this run (deleted
    /// with the collectors) and return what it printed.
    pub fn probe(&self, node: &str, args: &[String]) -> Result<String> {
        self.rt.block_on(self.collectors.probe(node, args))
    }

    /// The first collector failure, if any: the diagnosis cannot be trusted.
    pub fn failure(&self) -> Option<anyhow::Error> {
        self.collectors.failure().map(bad_input)
    }

    /// Delete the collector pods now (also done on drop).
    pub fn cleanup(&self) {
        self.rt.block_on(self.collectors.cleanup());
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// The node a flow starts on: the source pod's node, or the source node.
pub fn source_node(view: &ClusterView, src: Ipv4Addr) -> Option<String> {
    view.node_by_ip(src)
        .map(|n| n.name.clone())
        .or_else(|| view.pod_by_ip(src).map(|p| p.node.clone()))
}

/// Run `skoop snapshot`.
/// `skoop snapshot`; `declared` are the kinds (`apiVersion/Kind`) the loaded
/// extensions read, captured besides skoop's own.
pub fn snapshot(args: &SnapshotArgs, declared: &[String]) -> Result<u8> {
    snapshot::run(args, declared)
}
