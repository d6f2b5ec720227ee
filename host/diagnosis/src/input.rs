//! The facts of a diagnosis from a demo, a bundle directory or a live
//! cluster: the objects now, the dumps of the nodes the flow will reach
//! read (or collected) in parallel, other nodes' dumps as the diagnosis
//! reaches them; then detection.

use std::path::PathBuf;
use std::thread::JoinHandle;

use anyhow::Result;
use skoop_engine::bundle::{self, Bundle};
use skoop_engine::cluster::Retain;
use skoop_engine::detect;
use skoop_engine::facts::Facts;
use skoop_error::bad_input;
use skoop_live::Session;
use skoop_netstack::dump::NetnsDump;
use skoop_netstack::{NetstackError, Netstacks};
use skoop_wasm::Registry;

use crate::flow::unknown_demo;
use crate::names::{self, FlowSpec};
use crate::request::{Input, Request};

/// A bundle read on its own thread while the extensions load. What the
/// extensions read is not known yet, so every kind is kept as JSON until
/// it is ([`ClusterView::retain_only`](skoop_engine::cluster::ClusterView::retain_only)).
pub struct Preload {
    dir: PathBuf,
    bundle: JoinHandle<Result<Bundle>>,
}

impl Preload {
    /// Start reading the bundle in `dir`.
    pub fn start(dir: PathBuf) -> Preload {
        let read = dir.clone();
        Preload {
            dir,
            bundle: std::thread::spawn(move || {
                let bundle = bundle::load_dir(&read, Retain::all());
                // This thread's freed memory (the cluster's JSON text).
                release_freed_memory();
                bundle
            }),
        }
    }
}

/// Facts read, and what reading them found.
pub(crate) struct Loaded {
    pub source: String,
    pub facts: Facts,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
    /// The live session; the collector pods live as long as it does.
    pub live: Option<Session>,
}

/// The kinds of objects to keep: what the loaded extensions and the host read.
pub fn retain(registry: &Registry) -> Retain {
    Retain::with_reads(
        registry
            .plugins
            .values()
            .chain(registry.providers.values())
            .flat_map(|e| e.info.reads.iter().chain(&e.info.detect_objects))
            .map(String::as_str),
    )
}

/// Hands memory freed so far back to the system now rather than after
/// mimalloc's short delay: the JSON text of a large cluster, freed once
/// read, would otherwise still count while the node dumps are read, and
/// the peak would be their sum. A no-op unless the program's allocator is
/// mimalloc (skoop's is).
pub(crate) fn release_freed_memory() {
    // SAFETY: mi_collect has no preconditions; it only returns the calling
    // thread's free pages (and freed segments) to the system.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// A node dump that could not be read is bad input (a bundle's malformed
/// file); one that could not be collected is for the diagnosis to report.
pub(crate) fn check_loaded(netstacks: &Netstacks) -> Result<()> {
    match netstacks
        .load_errors()
        .into_iter()
        .find(|(_, e)| matches!(e, NetstackError::Invalid(_)))
    {
        Some((_, e)) => Err(bad_input(e.to_string())),
        None => Ok(()),
    }
}

fn load_bundle(input: &Input, retain: Retain, preload: Option<Preload>) -> Result<Bundle> {
    match input {
        Input::Demo(name) => {
            let demo = skoop_demos::find(name)?.ok_or_else(|| unknown_demo(name))?;
            bundle::embedded(
                &format!("built-in {} demo", demo.about.name),
                &format!("host/demos/{}", demo.files.dir),
                demo.files.cluster,
                demo.files.nodes,
                retain,
            )
        }
        Input::Bundle(dir) => {
            if let Some(p) = preload.filter(|p| &p.dir == dir) {
                let mut b = p.bundle.join().map_err(|_| {
                    anyhow::anyhow!("the thread reading {} stopped", p.dir.display())
                })??;
                b.view.retain_only(&retain);
                return Ok(b);
            }
            bundle::load_dir(dir, retain)
        }
        Input::Live(_) => Err(bad_input("a live cluster is not a bundle")),
    }
}

/// Read the facts `request` names for a diagnosis of `flow` first.
pub(crate) fn load(
    request: &Request,
    registry: &Registry,
    first: &FlowSpec,
    preload: Option<Preload>,
) -> Result<Loaded> {
    let retain = retain(registry);
    let (source, mut view, netstacks, live) = match &request.input {
        Input::Live(args) => {
            let session = Session::connect(args)?;
            let start = std::time::Instant::now();
            let view = session.view(retain)?;
            release_freed_memory();
            if request.verbose {
                (request.log)(&format!(
                    "read {} objects from the {} in {:.2}s ({} API requests)",
                    view.counts().values().sum::<usize>(),
                    session.source(),
                    start.elapsed().as_secs_f64(),
                    session.requests()
                ));
            }
            let netstacks = session.netstacks(&view);
            (session.source(), view, netstacks, Some(session))
        }
        input => {
            let b = load_bundle(input, retain, preload)?;
            release_freed_memory();
            let netstacks = b.nodes.netstacks(&b.view);
            (b.source, b.view, netstacks, None)
        }
    };
    let flow = names::resolve(&view, first)?.flow;
    let flags = &request.overrides;
    netstacks.prefetch(&view.nodes_for(flow.src, flow.dst, flow.dport, flow.protocol));
    release_freed_memory();
    if detect::proxy_mode_needs_dumps(&view, flags) && netstacks.loaded_nodes().is_empty() {
        match (&live, skoop_live::source_node(&view, flow.src)) {
            (Some(_), Some(node)) => {
                netstacks.node(&node).map_err(|e| {
                    bad_input(format!(
                        "cannot detect kube-proxy's mode: no ConfigMap kube-system/kube-proxy, and node {node} could not be collected ({e}); pass --proxy-mode iptables|ipvs|nftables|none"
                    ))
                })?;
            }
            (Some(_), None) => {}
            (None, _) => {
                let all: Vec<String> = view.nodes.keys().cloned().collect();
                netstacks.prefetch(&all);
            }
        }
    }
    check_loaded(&netstacks)?;
    let warnings =
        detect::host_interfaces_with(&mut view, |n| netstacks.loaded_node(n).map(|s| &s.dump));
    let loaded = netstacks.loaded_nodes();
    let hosts: Vec<(&str, &NetnsDump)> = loaded
        .iter()
        .filter_map(|n| netstacks.loaded_node(n).map(|s| (n.as_str(), &s.dump)))
        .collect();
    let detected = detect::detect(&view, &hosts, flags, &registry.detection())?;
    drop(hosts);
    Ok(Loaded {
        source,
        facts: Facts::new(view, netstacks, detected.settings),
        warnings: detected.warnings.into_iter().chain(warnings).collect(),
        notes: detected.notes,
        live,
    })
}
