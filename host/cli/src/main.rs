//! The `skoop` binary: parse the command line, load extensions, run.
//! Exit status: 0 healthy, 3 broken, 2 bad usage or input, 1 internal failure.

/// mimalloc: reading a large bundle allocates a great deal on two threads,
/// and mimalloc's thread-local heaps and huge pages roughly halve the
/// time the kernel spends giving the process fresh pages (the scale
/// bench: 10k Services, about 90 ms with the system allocator, 55 ms with
/// this). Its version 2 holds less memory than version 3 for the same work.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod cli;
mod cloud;
mod harness;
mod http;
mod scaffold;

use anyhow::{Context, Result};
use clap::{FromArgMatches, Parser};

use crate::cli::{Cli, Cmd, DiagnoseArgs, ExtensionCmd, Format, ProtocolArg};
use skoop_engine::bundle::{self, Bundle};
use skoop_engine::cluster::Retain;
use skoop_engine::detect::{self, Overrides};
use skoop_engine::diagnose::{self, Diagnosis, Flow};
use skoop_engine::dump::NetnsDump;
use skoop_engine::error::{bad_input, exit, is_bad_input};
use skoop_engine::facts::Facts;
use skoop_engine::netstack::{NetstackError, Netstacks};
use skoop_engine::packet::Protocol;
use skoop_engine::plugin::{CallError, Failure, RefusedKind};
use skoop_engine::report::Report;
use skoop_live::Session;
use skoop_render::Graph;
use skoop_wasm::hostcalls::{CallLog, ExtensionCalls};
use skoop_wasm::runtime::Runtime;
use skoop_wasm::sandbox::Limits;
use skoop_wasm::settings_to;
use skoop_wasm::{Extension, Lending, Registry};

/// The demo's default flow: client-1 to the `web` ClusterIP, which has a broken backend.
const DEMO_FLOW: (&str, &str, u16) = ("10.244.0.5", "10.96.100.10", 80);
/// The Calico demo's default flow: client-1 to kube-dns over UDP.
const CALICO_DEMO_FLOW: (&str, &str, u16) = ("10.244.0.5", "10.96.0.10", 53);

fn main() -> ExitCode {
    // `skoop … | head` should end quietly when the reader goes away, as a
    // command-line tool does, not panic in println!.
    // SAFETY: restoring the default disposition of one signal at start-up,
    // before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match run(std::env::args_os().collect()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("skoop: {e:#}");
            ExitCode::from(if is_bad_input(&e) {
                exit::BAD_INPUT
            } else {
                exit::INTERNAL
            })
        }
    }
}

fn run(args: Vec<OsString>) -> Result<u8> {
    let pre = cli::prescan(&args);
    // The top-level help and version, and `collect` (which runs on nodes),
    // need no extension: no engine start-up, nothing compiled.
    if !pre.needs_extensions() {
        let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| e.exit());
        match &cli.command {
            Cmd::Collect(collect) => return skoop_collect::run(collect),
            Cmd::Extension {
                action: action @ (ExtensionCmd::Inspect { .. } | ExtensionCmd::New { .. }),
            } => return inspect_cmd(action),
            _ => {}
        }
    }
    let cache = if pre.no_cache {
        None
    } else {
        pre.cache_dir.clone().or_else(Runtime::default_cache_dir)
    };
    // A diagnosis of a bundle reads the bundle while the extensions load.
    let preload = pre.diagnose_snapshot().cloned().map(Preload::start);
    let registry = Registry::load(Runtime::new(cache.clone())?, &pre.extensions)?;
    let matches = match cli::command(&registry).try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::HEALTHY
            };
            let _ = e.print();
            return Ok(code);
        }
    };
    let cli = Cli::from_arg_matches(&matches).map_err(|e| bad_input(e.to_string()))?;
    for notice in &registry.notices {
        eprintln!("skoop: {notice}");
    }
    let limits = Limits {
        memory_bytes: cli.extension_memory.saturating_mul(1 << 20),
        call_timeout: Duration::try_from_secs_f64(cli.extension_timeout)
            .map_err(|_| bad_input("--extension-timeout must be a positive number of seconds"))?,
    };
    match &cli.command {
        Cmd::Diagnose(args) => {
            let values = ExtInputs {
                flags: flag_values(&registry, matches.subcommand_matches("diagnose")),
                cloud: args.snapshot.as_ref().map(|d| d.join("cloud")),
                record: args.record_host_calls.as_ref().map(|_| Recorder::default()),
            };
            diagnose_cmd(&registry, &cli, args, values, limits, preload)
        }
        Cmd::Extension { action } => extension_cmd(&registry, action, &cache, limits),
        Cmd::Collect(args) => skoop_collect::run(args),
        Cmd::Snapshot(args) => {
            let declared: Vec<String> = retain(&registry).kinds().collect();
            let code = if args.cloud_only {
                0
            } else {
                skoop_live::snapshot(args, &declared)?
            };
            match &args.cloud_provider {
                Some(name) if code == 0 => {
                    let flags = flag_values(&registry, matches.subcommand_matches("snapshot"));
                    cloud::record(&registry, name, &args.output, &flags, limits, cli.verbose)
                        .map(|()| code)
                }
                _ => Ok(code),
            }
        }
        Cmd::Connectivity(args) => connectivity_cmd(args),
    }
}

/// `PORT[/PROTO]`.
fn parse_port_proto(s: &str) -> Result<(u16, skoop_policy::Protocol)> {
    let (port, proto) = match s.split_once('/') {
        Some((p, pr)) => (p, pr),
        None => (s, "TCP"),
    };
    let port: u16 = port
        .parse()
        .map_err(|_| bad_input(format!("--port {s}: expected PORT/PROTO, e.g. 80/TCP")))?;
    let proto = skoop_policy::Protocol::parse(proto)
        .ok_or_else(|| bad_input(format!("--port {s}: the protocol is TCP, UDP or SCTP")))?;
    Ok((port, proto))
}

/// The objects of a bundle's `cluster.json`, as JSON (the connectivity
/// matrix reads pods and policies only, no node dumps).
fn cluster_objects(dir: &std::path::Path) -> Result<Vec<serde_json::Value>> {
    let path = dir.join("cluster.json");
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| bad_input(format!("{origin}: {e}")))?;
    let mut list: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| skoop_engine::cluster::json_error(&origin, &e))?;
    match list.get_mut("items").map(serde_json::Value::take) {
        Some(serde_json::Value::Array(items)) => Ok(items),
        _ => Err(bad_input(format!(
            "{origin}: expected a Kubernetes List (`kubectl get ... -o json`)"
        ))),
    }
}

fn connectivity_cmd(args: &cli::ConnectivityArgs) -> Result<u8> {
    let (objects, source) = match &args.snapshot {
        Some(dir) => {
            let source = dir.display().to_string();
            if !dir.is_dir() {
                return Err(bad_input(format!(
                    "bundle directory {source} does not exist (expected cluster.json in it)"
                )));
            }
            (cluster_objects(dir)?, source)
        }
        None => {
            let session = Session::connect(&args.live)?;
            // Pods, namespaces and policies are skoop's own kinds.
            (session.objects(&[])?, session.source())
        }
    };
    let set = skoop_policy::PolicySet::from_objects(&objects)
        .map_err(|e| bad_input(format!("{source}: {e}")))?;
    let pods = skoop_policy::pods_from_objects(&objects)
        .map_err(|e| bad_input(format!("{source}: {e}")))?;
    let ports: Vec<(u16, skoop_policy::Protocol)> = match &args.port {
        Some(p) => vec![parse_port_proto(p)?],
        None => {
            let mut v: Vec<_> = pods
                .iter()
                .filter(|p| args.namespace.as_ref().is_none_or(|n| *n == p.namespace))
                .flat_map(|p| p.ports.iter().map(|c| (c.port, c.protocol)))
                .collect();
            v.sort();
            v.dedup();
            if v.is_empty() {
                return Err(bad_input(
                    "no pod declares a container port: pass --port PORT/PROTO",
                ));
            }
            v
        }
    };
    let matrices: Vec<skoop_policy::matrix::Matrix> = ports
        .iter()
        .map(|(port, proto)| {
            skoop_policy::matrix::matrix(&set, &pods, args.namespace.as_deref(), *port, *proto)
        })
        .collect();
    match args.format {
        cli::MatrixFormat::Text => {
            for m in &matrices {
                println!("{}", m.to_text());
            }
        }
        cli::MatrixFormat::Csv => {
            for (i, m) in matrices.iter().enumerate() {
                let csv = m.to_csv();
                // one header for all ports
                let body = if i == 0 {
                    csv.as_str()
                } else {
                    csv.split_once('\n').map_or("", |x| x.1)
                };
                print!("{body}");
            }
        }
        cli::MatrixFormat::Json => {
            let v = serde_json::json!({ "matrices": matrices });
            println!(
                "{}",
                serde_json::to_string_pretty(&v).context("serialising the matrix")?
            );
        }
    }
    Ok(exit::HEALTHY)
}

fn extension_cmd(
    registry: &Registry,
    action: &ExtensionCmd,
    cache: &Option<std::path::PathBuf>,
    limits: Limits,
) -> Result<u8> {
    match action {
        ExtensionCmd::List => {
            let rows: Vec<[String; 6]> = registry
                .plugins
                .values()
                .chain(registry.providers.values())
                .map(|e| {
                    [
                        e.info.name.clone(),
                        serde_json::to_value(e.info.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        e.info.version.clone(),
                        e.info.wit_version.clone(),
                        format!("{}KB", e.size / 1024),
                        e.origin.to_string(),
                    ]
                })
                .collect();
            let header = ["NAME", "KIND", "VERSION", "WIT", "SIZE", "ORIGIN"].map(String::from);
            let mut widths = [0usize; 6];
            for row in rows.iter().chain(std::iter::once(&header)) {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.len());
                }
            }
            for row in std::iter::once(&header).chain(rows.iter()) {
                let line: Vec<String> = row
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                println!("{}", line.join("  ").trim_end());
            }
        }
        ExtensionCmd::Inspect { .. } | ExtensionCmd::New { .. } => return inspect_cmd(action),
        ExtensionCmd::Test { cases } => return harness::test(registry, cases, limits),
        ExtensionCmd::Replay { recording } => return harness::replay(registry, recording, limits),
        ExtensionCmd::Diff {
            old,
            new,
            snapshot,
            flows,
        } => {
            return harness::diff(old, new, snapshot, flows.as_deref(), cache.clone(), limits);
        }
    }
    Ok(exit::HEALTHY)
}

/// `extension inspect` and `extension new`: compile and run nothing.
fn inspect_cmd(action: &ExtensionCmd) -> Result<u8> {
    match action {
        ExtensionCmd::New {
            kind,
            name,
            dir,
            sdk,
        } => return scaffold::new(*kind, name, dir.as_deref(), sdk.as_deref()),
        ExtensionCmd::List
        | ExtensionCmd::Test { .. }
        | ExtensionCmd::Replay { .. }
        | ExtensionCmd::Diff { .. } => {}
        ExtensionCmd::Inspect { file, output } => {
            let label = format!("extension file {}", file.display());
            let bytes = std::fs::read(file)
                .map_err(|e| bad_input(format!("{label}: cannot read it: {e}")))?;
            let found = skoop_wasm::inspect::inspect(&bytes)
                .map_err(|e| bad_input(format!("{label}: {e}")))?;
            match output {
                cli::InspectFormat::Json => println!("{}", serde_json::to_string_pretty(&found)?),
                cli::InspectFormat::Text => print!("{}", inspection_text(&found)),
            }
        }
    }
    Ok(exit::HEALTHY)
}

/// `extension inspect` for people.
fn inspection_text(i: &skoop_wasm::inspect::Inspection) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let kind = match i.kind {
        Some(skoop_wasm::Kind::CniPlugin) => "CNI plugin (world cni-plugin)",
        Some(skoop_wasm::Kind::CloudProvider) => "cloud provider (world cloud-provider)",
        None => "not a skoop extension (exports neither plugin nor provider)",
    };
    let list = |l: &[String]| {
        if l.is_empty() {
            "-".to_string()
        } else {
            l.join(", ")
        }
    };
    match &i.metadata {
        Some(m) => {
            let _ = writeln!(s, "name          {} {}", m.name, m.version);
            let _ = writeln!(s, "kind          {kind}");
            let _ = writeln!(s, "contract      skoop:extension@{}", m.wit_version);
            let _ = writeln!(s, "description   {}", m.description);
            let _ = writeln!(
                s,
                "min host      {}",
                m.min_host_version.as_deref().unwrap_or("-")
            );
            let _ = writeln!(s, "reads         {}", list(&m.reads));
            let _ = writeln!(s, "enforces      {}", list(&m.enforces));
            let _ = writeln!(s, "http hosts    {}", list(&m.http_hosts));
            if m.config.is_empty() {
                let _ = writeln!(s, "config        -");
            }
            for k in &m.config {
                let mut notes = Vec::new();
                if k.secret {
                    notes.push("secret".to_string());
                }
                if let Some(d) = &k.default {
                    notes.push(format!("default {d}"));
                }
                if !k.env.is_empty() {
                    notes.push(format!("env {}", k.env.join(", ")));
                }
                if let Some(f) = &k.file {
                    notes.push(format!("file {} [{}]", f.path, f.key));
                }
                let notes = if notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", notes.join("; "))
                };
                let _ = writeln!(s, "config        --{}{notes}: {}", k.name, k.help);
            }
        }
        None => {
            let _ = writeln!(s, "kind          {kind}");
            let _ = writeln!(
                s,
                "contract      skoop:extension@{}",
                i.wit_version.as_deref().unwrap_or("?")
            );
            let _ = writeln!(
                s,
                "metadata      none in the file: the extension declares it only at run time (give its impl a `METADATA` const); `skoop --extension FILE extension list` describes it by running it"
            );
        }
    }
    let _ = writeln!(s, "imports       {}", list(&i.imports));
    let _ = writeln!(s, "size          {} bytes", i.size);
    let _ = writeln!(s, "sha256        {}", i.sha256);
    s
}

fn ipv4(flag: &str, value: &str) -> Result<Ipv4Addr> {
    match value.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Ok(ip),
        Ok(IpAddr::V6(_)) => Err(bad_input(format!(
            "{flag} {value}: IPv6 is not supported yet; give an IPv4 address"
        ))),
        Err(_) => Err(bad_input(format!(
            "{flag} {value:?} is not an IPv4 address"
        ))),
    }
}

fn flow(args: &DiagnoseArgs) -> Result<Flow> {
    let protocol = match args.protocol {
        ProtocolArg::Tcp => Protocol::Tcp,
        ProtocolArg::Udp => Protocol::Udp,
        ProtocolArg::Sctp => Protocol::Sctp,
    };
    let demo_default =
        args.demo.is_some() && args.src.is_none() && args.dst.is_none() && args.port.is_none();
    if demo_default {
        let (f, protocol) = if args.demo.as_deref() == Some("calico") {
            (CALICO_DEMO_FLOW, Protocol::Udp)
        } else {
            (DEMO_FLOW, Protocol::Tcp)
        };
        return Ok(Flow {
            src: ipv4("-s", f.0)?,
            dst: ipv4("-d", f.1)?,
            dport: f.2,
            protocol,
        });
    }
    let src = args
        .src
        .as_deref()
        .ok_or_else(|| bad_input("missing -s SRC: the source pod or node IP"))?;
    let dst = args
        .dst
        .as_deref()
        .ok_or_else(|| bad_input("missing -d DST: the destination IP"))?;
    let dport = args
        .port
        .ok_or_else(|| bad_input("missing -p PORT: the destination port"))?;
    Ok(Flow {
        src: ipv4("-s", src)?,
        dst: ipv4("-d", dst)?,
        dport,
        protocol,
    })
}

/// A bundle read on its own thread while the extensions load. What the
/// extensions read is not known yet, so every kind is kept as JSON until
/// it is ([`ClusterView::retain_only`](skoop_engine::cluster::ClusterView::retain_only)).
struct Preload {
    dir: std::path::PathBuf,
    bundle: std::thread::JoinHandle<Result<Bundle>>,
}

impl Preload {
    fn start(dir: std::path::PathBuf) -> Preload {
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

fn load_bundle(args: &DiagnoseArgs, retain: Retain, preload: Option<Preload>) -> Result<Bundle> {
    if let Some(name) = &args.demo {
        return bundle::load_named_demo(name, retain);
    }
    // The full parse may read the command line otherwise than the prescan.
    if let Some(p) = preload.filter(|p| args.snapshot.as_ref() == Some(&p.dir)) {
        let mut b = p
            .bundle
            .join()
            .map_err(|_| anyhow::anyhow!("the thread reading {} stopped", p.dir.display()))??;
        b.view.retain_only(&retain);
        return Ok(b);
    }
    match &args.snapshot {
        Some(dir) => bundle::load_dir(dir, retain),
        None => Err(bad_input("no bundle: pass --snapshot DIR or --demo")),
    }
}

/// The facts of a diagnosis, and the live session that collects them (the
/// collector pods live as long as it does).
struct Input {
    source: String,
    facts: Facts,
    warnings: Vec<String>,
    notes: Vec<String>,
    live: Option<Session>,
}

fn overrides(args: &DiagnoseArgs) -> Overrides {
    Overrides {
        network_plugin: args.network_plugin.clone(),
        cloud_provider: args.cloud_provider.clone(),
        proxy_mode: args.proxy_mode.map(Into::into),
        cluster_cidr: args.cluster_cidr,
    }
}

/// What the loaded extensions and the host read as objects.
fn retain(registry: &Registry) -> Retain {
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
/// the peak would be their sum.
fn release_freed_memory() {
    // SAFETY: mi_collect has no preconditions; it only returns the calling
    // thread's free pages (and freed segments) to the system.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// A node dump that could not be read is bad input (a bundle's malformed
/// file); one that could not be collected is for the diagnosis to report.
fn check_loaded(netstacks: &Netstacks) -> Result<()> {
    match netstacks
        .load_errors()
        .into_iter()
        .find(|(_, e)| matches!(e, NetstackError::Invalid(_)))
    {
        Some((_, e)) => Err(bad_input(e.to_string())),
        None => Ok(()),
    }
}

/// Facts from the demo, a bundle directory or a live cluster: the objects
/// now, and the dumps of the nodes the flow will reach, read (or collected)
/// in parallel; other nodes' dumps as the diagnosis reaches them.
fn input(
    args: &DiagnoseArgs,
    registry: &Registry,
    flow: Flow,
    verbose: bool,
    preload: Option<Preload>,
) -> Result<Input> {
    let retain = retain(registry);
    let (source, mut view, netstacks, live) = if args.demo.is_some() || args.snapshot.is_some() {
        let b = load_bundle(args, retain, preload)?;
        release_freed_memory();
        let netstacks = b.nodes.netstacks(&b.view);
        (b.source, b.view, netstacks, None)
    } else {
        let session = Session::connect(&args.live)?;
        let start = std::time::Instant::now();
        let view = session.view(retain)?;
        release_freed_memory();
        if verbose {
            eprintln!(
                "skoop: read {} objects from the {} in {:.2}s ({} API requests)",
                view.counts().values().sum::<usize>(),
                session.source(),
                start.elapsed().as_secs_f64(),
                session.requests()
            );
        }
        let netstacks = session.netstacks(&view);
        (session.source(), view, netstacks, Some(session))
    };
    let flags = overrides(args);
    netstacks.prefetch(&view.nodes_for(flow.src, flow.dst, flow.dport, flow.protocol));
    release_freed_memory();
    if detect::proxy_mode_needs_dumps(&view, &flags) && netstacks.loaded_nodes().is_empty() {
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
    let detected = detect::detect(&view, &hosts, &flags, &registry.detection())?;
    drop(hosts);
    Ok(Input {
        source,
        facts: Facts::new(view, netstacks, detected.settings),
        warnings: detected.warnings.into_iter().chain(warnings).collect(),
        notes: detected.notes,
        live,
    })
}

/// What extensions get besides the facts: config flags, and where a
/// bundle's cloud recordings are.
pub struct ExtInputs {
    pub flags: BTreeMap<String, String>,
    /// `DIR/cloud` of the bundle, when diagnosing one.
    pub cloud: Option<std::path::PathBuf>,
    /// Host calls of each extension instance, when `--record-host-calls`.
    pub record: Option<Recorder>,
}

/// The host calls of the extensions of the last diagnosis pass.
pub type Recorder = Arc<Mutex<Vec<RecordedExt>>>;

/// One extension instance's recording: its calls, and a provider's HTTP.
pub struct RecordedExt {
    calls: Arc<Mutex<ExtensionCalls>>,
    http: Option<Arc<Mutex<skoop_wasm::sandbox::egress::Recording>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Write what `--record-host-calls` gathered.
fn write_host_calls(
    path: &std::path::Path,
    record: &Recorder,
    flow: &Flow,
    secrets: &skoop_wasm::sandbox::Secrets,
) -> Result<()> {
    let extensions = lock(record)
        .iter()
        .map(|r| {
            let mut calls = lock(&r.calls).clone();
            if let Some(http) = &r.http {
                calls.http = lock(http).exchanges.clone();
            }
            calls
        })
        .collect();
    let rec = skoop_wasm::hostcalls::Recording {
        format: skoop_wasm::hostcalls::FORMAT.into(),
        contract: format!("{}@{}", skoop_wasm::WIT_PACKAGE, skoop_wasm::WIT_VERSION),
        host_version: skoop_wasm::HOST_VERSION.into(),
        flow: format!(
            "{} -> {}:{}/{}",
            flow.src,
            flow.dst,
            flow.dport,
            flow.protocol.name()
        ),
        extensions,
    };
    std::fs::write(path, rec.to_json(secrets))
        .with_context(|| format!("writing {}", path.display()))
}

/// The extension config flags given on the command line of `sub`.
fn flag_values(registry: &Registry, sub: Option<&clap::ArgMatches>) -> BTreeMap<String, String> {
    registry
        .config_keys()
        .into_iter()
        .filter_map(|(_, k)| {
            sub.and_then(|m| m.try_get_one::<String>(&k.name).ok().flatten())
                .map(|v| (k.name.clone(), v.clone()))
        })
        .collect()
}

/// What one extension of this diagnosis is lent.
fn state_for(ext: &Extension, facts: &Arc<Facts>, values: &ExtInputs, verbose: bool) -> Lending {
    let (config, secrets) = skoop_wasm::config::resolve(
        &ext.info,
        &values.flags,
        &skoop_wasm::config::Sources::process(),
    );
    let mut s = Lending {
        facts: Some(facts.clone()),
        reads: ext.info.reads.clone(),
        verbose,
        secrets,
        ..Lending::default()
    };
    if let Some(record) = &values.record {
        let calls = Arc::new(Mutex::new(ExtensionCalls {
            name: ext.info.name.clone(),
            kind: serde_json::to_value(ext.info.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            version: ext.info.version.clone(),
            sha256: ext.sha256.clone(),
            config: config
                .iter()
                .filter(|(k, _)| !ext.info.config.iter().any(|c| &c.name == *k && c.secret))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..ExtensionCalls::default()
        }));
        lock(record).push(RecordedExt {
            calls: calls.clone(),
            http: None,
        });
        s.calls = Some(CallLog::Record {
            current: Vec::new(),
            log: calls,
        });
    }
    s.config = config;
    s
}

/// An extension's refusal at set-up is about the user's input (a missing
/// flag, an unsupported mode); anything else is an internal failure.
fn setup_error(e: CallError) -> anyhow::Error {
    match e.failure {
        Failure::Refused(RefusedKind::Invalid | RefusedKind::Unavailable, _) => {
            bad_input(e.to_string())
        }
        _ => anyhow::Error::new(e),
    }
}

fn names(map: &BTreeMap<String, Extension>) -> String {
    map.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// One pass of the diagnosis over `facts`: the report, and the engine's
/// error if it stopped early.
fn diagnose_once(
    registry: &Registry,
    cli: &Cli,
    facts: &Arc<Facts>,
    flow: Flow,
    values: &ExtInputs,
    limits: Limits,
    source_name: &str,
) -> Result<(Report, Option<CallError>)> {
    // A recording holds the last pass only (earlier ones ran on fewer nodes).
    if let Some(record) = &values.record {
        lock(record).clear();
    }
    let provider_ext = registry
        .providers
        .get(&facts.settings.cloud_provider)
        .ok_or_else(|| {
            bad_input(format!(
                "no cloud provider named {:?} is loaded (loaded: {}); load it with --extension",
                facts.settings.cloud_provider,
                names(&registry.providers)
            ))
        })?;
    let mut provider = registry.provider(
        provider_ext,
        state_for(provider_ext, facts, values, cli.verbose),
        limits,
    )?;
    cloud::connect(&mut provider, provider_ext, values, cli.verbose)?;
    if let Some(record) = &values.record {
        // The provider's HTTP exchanges go into the recording too.
        use skoop_wasm::sandbox::egress::{Mode, Recording};
        let http = match &provider.egress().mode {
            Mode::Live(None) => {
                let rec = Arc::new(Mutex::new(Recording {
                    provider: provider_ext.info.name.clone(),
                    exchanges: Vec::new(),
                }));
                provider.egress().mode = Mode::Live(Some(rec.clone()));
                Some(rec)
            }
            Mode::Live(Some(rec)) => Some(rec.clone()),
            Mode::Replay(rec) => Some(Arc::new(Mutex::new((**rec).clone()))),
            Mode::Off => None,
        };
        if let Some(last) = lock(record)
            .iter_mut()
            .rev()
            .find(|r| lock(&r.calls).name == provider_ext.info.name)
        {
            last.http = http;
        }
    }
    let plan = provider
        .create_network(settings_to(&facts.settings))
        .map_err(setup_error)?;
    let plugin_ext = registry.plugins.get(&plan.plugin).ok_or_else(|| {
        bad_input(format!(
            "cloud provider {} wires network plugin {:?}, which is not loaded (loaded: {}); pass --network-plugin or load it with --extension",
            provider_ext.info.name,
            plan.plugin,
            names(&registry.plugins)
        ))
    })?;
    let state = state_for(plugin_ext, facts, values, cli.verbose);
    let infra = plan.infra_shim.then_some(provider);
    let mut plugin = registry.plugin(plugin_ext, state, infra, limits)?;
    let setup = plugin.setup().map_err(setup_error)?;
    let source = match diagnose::source_hop(facts, &mut plugin, flow.src)? {
        Some(hop) => hop,
        None => diagnose::outside_source(facts, &flow).map_err(|why| {
            bad_input(format!(
                "source {} is neither a pod nor a node of the cluster in {source_name}; {why}",
                flow.src
            ))
        })?,
    };
    // A plugin may say in setup what it enforces in this cluster (its
    // version decides); else its metadata says.
    let enforces = setup
        .enforces
        .clone()
        .unwrap_or_else(|| plugin_ext.info.enforces.clone());
    let policy = skoop_engine::policy::PolicyCheck::new(
        &facts.view,
        &plugin_ext.info.name,
        &enforces,
        match &cli.command {
            Cmd::Diagnose(a) => a.enforces_network_policy,
            _ => None,
        },
    )?;
    let mut diagnosis = Diagnosis::new(facts, &mut plugin).with_policy(Some(&policy));
    diagnosis.global(setup.findings);
    let trace = diagnosis.run(source, flow);
    let failed = trace.error.clone();
    let report = Report::new(
        &flow,
        facts.settings.clone(),
        source_name.to_string(),
        trace,
    );
    Ok((report, failed))
}

/// Diagnose, and again while the diagnosis reaches nodes whose dumps were
/// not read (or collected) before it started: the last pass then runs with
/// every node it touches loaded and its host interface known. `facts` gains
/// the nodes loaded on the way (the `--http` form diagnoses further flows on
/// them).
#[allow(clippy::too_many_arguments)]
fn diagnose_live(
    registry: &Registry,
    cli: &Cli,
    facts: &mut Arc<Facts>,
    source: &str,
    live: Option<&Session>,
    flow: Flow,
    values: &ExtInputs,
    limits: Limits,
) -> Result<(Report, Option<CallError>)> {
    loop {
        let before = facts.netstacks.loaded_nodes();
        let (report, failed) = diagnose_once(registry, cli, facts, flow, values, limits, source)?;
        if let Some(e) = live.and_then(Session::failure) {
            return Err(e);
        }
        check_loaded(&facts.netstacks)?;
        let after = facts.netstacks.loaded_nodes();
        if after == before {
            if let Some(session) = live {
                let facts = &**facts;
                for n in &after {
                    if cli.verbose {
                        let iface = facts
                            .view
                            .nodes
                            .get(n)
                            .and_then(|n| n.host_interface.clone());
                        eprintln!(
                            "skoop: node {n} host interface {}",
                            iface.as_deref().unwrap_or("unknown")
                        );
                    }
                }
                if cli.verbose {
                    eprintln!("skoop: {} API requests", session.requests());
                }
            }
            return Ok((report, failed));
        }
        if cli.verbose {
            let new: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
            eprintln!(
                "skoop: the diagnosis reached nodes not loaded before it started ({}); diagnosing again with them",
                new.iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let Some(owned) = Arc::get_mut(facts) else {
            return Err(anyhow::anyhow!(
                "the facts of the diagnosis are still shared"
            ));
        };
        let netstacks = owned.netstacks.clone();
        let warnings = detect::host_interfaces_with(&mut owned.view, |n| {
            netstacks.loaded_node(n).map(|s| &s.dump)
        });
        for w in warnings.iter().filter(|w| {
            (cli.verbose || live.is_some())
                && before.iter().all(|b| !w.contains(&format!("node {b}:")))
        }) {
            eprintln!("skoop: warning: {w}");
        }
    }
}

/// Diagnose `args` and return the report: for the harness, which runs many
/// diagnoses in one process.
fn diagnose_report(
    registry: &Registry,
    cli: &Cli,
    args: &DiagnoseArgs,
    values: &ExtInputs,
    limits: Limits,
) -> Result<(Report, Option<CallError>)> {
    let flow = flow(args)?;
    let Input {
        source,
        facts,
        live,
        ..
    } = input(args, registry, flow, cli.verbose, None)?;
    let mut facts = Arc::new(facts);
    diagnose_live(
        registry,
        cli,
        &mut facts,
        &source,
        live.as_ref(),
        flow,
        values,
        limits,
    )
}

fn diagnose_cmd(
    registry: &Registry,
    cli: &Cli,
    args: &DiagnoseArgs,
    values: ExtInputs,
    limits: Limits,
    preload: Option<Preload>,
) -> Result<u8> {
    if args.demo.as_deref() == Some("list") {
        for (name, what) in bundle::DEMOS {
            println!("{name:<8} {what}");
        }
        return Ok(0);
    }
    let flow = flow(args)?;
    let input = input(args, registry, flow, cli.verbose, preload)?;
    let settings = &input.facts.settings;
    if cli.verbose {
        eprintln!(
            "skoop: network plugin {}, cloud provider {}, kube-proxy {:?}, cluster CIDR {}",
            settings.network_plugin,
            settings.cloud_provider,
            settings.proxy_mode,
            settings
                .cluster_cidr
                .map(|c| c.to_string())
                .unwrap_or_else(|| "unknown".into())
        );
        for note in &input.notes {
            eprintln!("skoop: detected: {note}");
        }
        if input.live.is_none() {
            for n in input.facts.view.nodes.values() {
                let iface = match (
                    &n.host_interface,
                    input.facts.netstacks.loaded_node(&n.name),
                ) {
                    (Some(i), _) => i.as_str(),
                    (None, Some(_)) => "unknown",
                    (None, None) => "not read yet (the path may not reach it)",
                };
                eprintln!("skoop: node {} host interface {iface}", n.name);
            }
        }
    }
    if cli.verbose || input.live.is_some() {
        for w in &input.warnings {
            eprintln!("skoop: warning: {w}");
        }
    }
    let Input {
        source,
        facts,
        live,
        ..
    } = input;
    let mut facts = Arc::new(facts);
    let (report, failed) = diagnose_live(
        registry,
        cli,
        &mut facts,
        &source,
        live.as_ref(),
        flow,
        &values,
        limits,
    )?;
    if let (Some(path), Some(record)) = (&args.record_host_calls, &values.record) {
        write_host_calls(path, record, &flow, registry.secrets())?;
    }
    if let Some(addr) = &args.http {
        let mut diagnose = |flow: Flow| -> Result<Report> {
            let (report, failed) = diagnose_live(
                registry,
                cli,
                &mut facts,
                &source,
                live.as_ref(),
                flow,
                &values,
                limits,
            )?;
            if let Some(e) = failed {
                eprintln!("skoop: {e}");
            }
            Ok(report)
        };
        return http::serve(addr, report, &source, &mut diagnose);
    }
    let to_terminal = args.output.is_none()
        && skoop_render::term::wanted(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        );
    let text = match args.format {
        Format::Text if to_terminal => skoop_render::term::colour(&report.text()),
        Format::Text => report.text(),
        Format::Json => report.json(),
        Format::Dot => skoop_render::dot::render(&Graph::new(&report)),
        Format::D2 => skoop_render::d2::render(&Graph::new(&report)),
        Format::Svg => skoop_render::svg::render(&Graph::new(&report)) + "\n",
        Format::Html => skoop_render::html::render(&Graph::new(&report), None),
    };
    let write = |text: &str| -> Result<()> {
        match &args.output {
            Some(path) => {
                std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
            }
            None => {
                print!("{text}");
                Ok(())
            }
        }
    };
    if args.quiet {
        // The report still goes to -o FILE; stdout gets the verdict alone.
        if args.output.is_some() {
            write(&text)?;
        }
        let line = report.verdict_line() + "\n";
        if to_terminal {
            print!("{}", skoop_render::term::colour(&line));
        } else {
            print!("{line}");
        }
    } else {
        write(&text)?;
    }
    drop(live);
    // The process ends now: freeing every parsed rule, route and object one
    // by one would only delay the exit (a tenth of a second on a large
    // cluster). The collector pods went with `live`.
    std::mem::forget(facts);
    if let Some(e) = failed {
        eprintln!("skoop: {e}");
        return Ok(exit::INTERNAL);
    }
    Ok(if report.broken() {
        exit::BROKEN
    } else {
        exit::HEALTHY
    })
}
