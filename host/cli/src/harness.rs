//! A vendor's harness for extensions: `extension test` (cases with expected
//! verdicts), `extension diff` (what changes between two builds) and
//! `extension replay` (re-run against recorded host calls).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::FromArgMatches;
use serde::Deserialize;
use serde_json::Value;

use crate::cli::{self, SettingsArgs, flag_values};
use skoop_diagnosis::{Context, Input, Request};
use skoop_engine::detect::Overrides;
use skoop_engine::flow::Flow;
use skoop_engine::plugin::CallError;
use skoop_engine::report::Report;
use skoop_engine::suspicion::Suspicion;
use skoop_error::{bad_input, exit};
use skoop_netstack::packet::Protocol;
use skoop_wasm::hostcalls::{CallLog, Recording, describe_import};
use skoop_wasm::runtime::Runtime;
use skoop_wasm::sandbox::Limits;
use skoop_wasm::{Kind, Lending, Origin, Registry};

/// Diagnose `flow` on what `request` names, with the extensions of
/// `registry`: one context, one flow.
pub fn diagnose(
    registry: &Registry,
    request: Request,
    flow: Flow,
) -> Result<(Report, Option<CallError>)> {
    let mut context = Context::open(registry, request, flow, None)?;
    let outcome = context.diagnose(flow)?;
    Ok((outcome.report, outcome.failed))
}

/// The settings that make the diagnosis use the extensions loaded from
/// files (the ones under test) rather than what the bundle's objects
/// reveal; a case's own `args` win over them.
fn force_loaded(registry: &Registry, overrides: &mut Overrides) {
    for e in registry.plugins.values().chain(registry.providers.values()) {
        if let Origin::File(_) = e.origin {
            let name = Some(e.info.name.clone());
            match e.info.kind {
                Kind::CniPlugin => {
                    overrides.network_plugin = overrides.network_plugin.take().or(name)
                }
                Kind::CloudProvider => {
                    overrides.cloud_provider = overrides.cloud_provider.take().or(name)
                }
            }
        }
    }
}

/// A flow as a case or a flow file writes it.
fn flow_of(src: &str, dst: &str, port: u16, protocol: &str) -> Result<Flow> {
    let protocol = Protocol::parse(protocol)
        .filter(|p| matches!(p, Protocol::Tcp | Protocol::Udp | Protocol::Sctp))
        .ok_or_else(|| bad_input(format!("protocol {protocol:?}: expected tcp, udp or sctp")))?;
    skoop_diagnosis::flow(src, dst, port, protocol)
}

/// The input a case's `bundle` names: `demo`, `demo:NAME`, or a directory
/// relative to the cases file.
fn input_of(bundle: &str, base: &Path) -> Input {
    match bundle.split_once(':') {
        _ if bundle == "demo" => Input::Demo(skoop_demos::DEFAULT.into()),
        Some(("demo", name)) => Input::Demo(name.into()),
        _ => Input::Bundle(base.join(bundle)),
    }
}

/// The request of one case: its input, its `args` (settings and extension
/// options), the loaded files forced.
fn case_request(registry: &Registry, case: &Case, base: &Path, limits: Limits) -> Result<Request> {
    let matches = cli::case_options(registry)
        .try_get_matches_from(&case.args)
        .map_err(|e| bad_input(format!("args: {}", e.render().to_string().trim())))?;
    let settings =
        SettingsArgs::from_arg_matches(&matches).map_err(|e| bad_input(format!("args: {e}")))?;
    let mut request = Request::new(input_of(&case.bundle, base));
    request.overrides = settings.overrides();
    request.enforces_network_policy = settings.enforces_network_policy;
    force_loaded(registry, &mut request.overrides);
    request.extension_values = flag_values(registry, Some(&matches));
    request.limits = limits;
    Ok(request)
}

/// A whole word of `text`, case-insensitively.
fn has_word(text: &str, word: &str) -> bool {
    let (text, word) = (text.to_lowercase(), word.to_lowercase());
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    !word.is_empty()
        && text.match_indices(&word).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            let after = text[i + word.len()..].chars().next();
            !before.is_some_and(is_word) && !after.is_some_and(is_word)
        })
}

/// A suspicion a case expects: its level and words its message holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub level: String,
    #[serde(default)]
    pub words: Vec<String>,
}

impl Expected {
    fn matches(&self, s: &Suspicion) -> bool {
        s.level.name().eq_ignore_ascii_case(&self.level)
            && self.words.iter().all(|w| has_word(&s.message, w))
    }
}

/// One test case.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// A bundle directory relative to the cases file, `demo` or `demo:NAME`.
    pub bundle: String,
    pub src: String,
    pub dst: String,
    pub port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
    /// `healthy` or `broken`.
    pub verdict: String,
    #[serde(default)]
    pub suspicions: Vec<Expected>,
    /// More `diagnose` flags (e.g. `--cloud-provider`, extension options).
    #[serde(default)]
    pub args: Vec<String>,
}

fn tcp() -> String {
    "tcp".into()
}

/// Where the cases of `path` are: the file itself, or cases.json or
/// tests/cases.json in the directory.
fn cases_file(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    for candidate in ["cases.json", "tests/cases.json"] {
        let f = path.join(candidate);
        if f.is_file() {
            return Ok(f);
        }
    }
    Err(bad_input(format!(
        "{}: no test cases (expected a cases file, or cases.json or tests/cases.json in the directory)",
        path.display()
    )))
}

/// Why a case failed, or None when it passed.
fn judge(case: &Case, report: &Report, failed: &Option<CallError>) -> Option<String> {
    if let Some(e) = failed {
        return Some(format!("the diagnosis stopped: {e}"));
    }
    let got = if report.broken() { "broken" } else { "healthy" };
    let blocking: Vec<&Suspicion> = report
        .suspicions
        .iter()
        .filter(|s| s.level.blocking())
        .collect();
    let mut why = Vec::new();
    if got != case.verdict {
        let mut w = format!("expected {}, got {got}", case.verdict);
        if let Some(s) = blocking.first() {
            w.push_str(&format!(" ({}: {})", s.level.name(), s.message));
        }
        why.push(w);
    }
    for e in &case.suspicions {
        if !report.suspicions.iter().any(|s| e.matches(s)) {
            why.push(format!(
                "no {} suspicion names {:?}",
                e.level.to_uppercase(),
                e.words
            ));
        }
    }
    // A broken case must be broken for the expected reasons only.
    for s in &blocking {
        if case.verdict == "broken" && !case.suspicions.iter().any(|e| e.matches(s)) {
            why.push(format!("unexpected {}: {}", s.level.name(), s.message));
        }
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// `skoop extension test CASES`.
pub fn test(registry: &Registry, path: &Path, limits: Limits) -> Result<u8> {
    let file = cases_file(path)?;
    let text = std::fs::read_to_string(&file)
        .map_err(|e| bad_input(format!("{}: cannot read it: {e}", file.display())))?;
    let cases: Vec<Case> = serde_json::from_str(&text)
        .map_err(|e| bad_input(format!("{}: not a list of test cases: {e}", file.display())))?;
    if cases.is_empty() {
        return Err(bad_input(format!("{}: holds no case", file.display())));
    }
    for c in &cases {
        if !matches!(c.verdict.as_str(), "healthy" | "broken") {
            return Err(bad_input(format!(
                "{}: case {}: verdict must be healthy or broken, not {:?}",
                file.display(),
                c.name,
                c.verdict
            )));
        }
    }
    let base = file.parent().unwrap_or(Path::new("."));
    let mut failed = 0;
    let width = cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for case in &cases {
        let start = Instant::now();
        let run = case_request(registry, case, base, limits).and_then(|request| {
            let flow = flow_of(&case.src, &case.dst, case.port, &case.protocol)?;
            diagnose(registry, request, flow)
        });
        let verdict = match run {
            Ok((report, err)) => judge(case, &report, &err),
            Err(e) => Some(format!("{e:#}")),
        };
        let took = start.elapsed().as_secs_f64();
        match verdict {
            None => println!("ok    {:<width$}  {} ({took:.2}s)", case.name, case.verdict),
            Some(why) => {
                failed += 1;
                println!("FAIL  {:<width$}  {why}", case.name);
            }
        }
    }
    println!(
        "{} passed, {failed} failed ({})",
        cases.len() - failed,
        file.display()
    );
    Ok(if failed == 0 {
        exit::HEALTHY
    } else {
        exit::BROKEN
    })
}

/// A flow to diagnose in `extension diff`.
#[derive(Debug, Clone, Deserialize)]
pub struct FlowSpec {
    pub src: String,
    pub dst: String,
    pub port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
}

impl std::fmt::Display for FlowSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} -> {}:{}/{}",
            self.src, self.dst, self.port, self.protocol
        )
    }
}

/// Flows from a file: a JSON array, or lines `SRC DST PORT[/PROTO]`.
fn read_flows(file: &Path) -> Result<Vec<FlowSpec>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| bad_input(format!("{}: cannot read it: {e}", file.display())))?;
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(&text)
            .map_err(|e| bad_input(format!("{}: not a list of flows: {e}", file.display())));
    }
    let mut flows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = || {
            bad_input(format!(
                "{}:{}: expected `SRC DST PORT[/PROTO]`, got {line:?}",
                file.display(),
                i + 1
            ))
        };
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [src, dst, port] = parts[..] else {
            return Err(bad());
        };
        let (port, protocol) = port.split_once('/').unwrap_or((port, "tcp"));
        flows.push(FlowSpec {
            src: src.into(),
            dst: dst.into(),
            port: port.parse().map_err(|_| bad())?,
            protocol: protocol.into(),
        });
    }
    Ok(flows)
}

/// Flows worth comparing on a bundle: each pod to a pod on another node and
/// to one on its own, and each pod to each Service port; at most `max`.
fn default_flows(dir: &Path, max: usize) -> Result<Vec<FlowSpec>> {
    let b = skoop_engine::bundle::load_dir(dir, skoop_engine::cluster::Retain::host())?;
    let pods: Vec<_> = b
        .view
        .pods
        .values()
        .filter(|p| !p.host_network && p.ip.is_some() && p.phase == "Running")
        .collect();
    let mut flows = Vec::new();
    for a in &pods {
        for same_node in [false, true] {
            if let Some(z) = pods
                .iter()
                .find(|z| z.ip != a.ip && (z.node == a.node) == same_node)
            {
                let port = z
                    .ports
                    .first()
                    .map(|p| (p.1, p.2))
                    .unwrap_or((8080, skoop_netstack::packet::Protocol::Tcp));
                flows.push(FlowSpec {
                    src: a.ip.map(|i| i.to_string()).unwrap_or_default(),
                    dst: z.ip.map(|i| i.to_string()).unwrap_or_default(),
                    port: port.0,
                    protocol: port.1.name().into(),
                });
            }
        }
    }
    if let Some(a) = pods.first() {
        for svc in b.view.services.values() {
            let (Some(ip), Some(port)) = (svc.cluster_ips.first(), svc.ports.first()) else {
                continue;
            };
            flows.push(FlowSpec {
                src: a.ip.map(|i| i.to_string()).unwrap_or_default(),
                dst: ip.to_string(),
                port: port.port,
                protocol: port.protocol.name().into(),
            });
        }
    }
    flows.truncate(max);
    Ok(flows)
}

/// Load one side of a diff: a file, or `builtin:NAME`.
fn side(spec: &str, cache: Option<PathBuf>) -> Result<(Registry, String)> {
    let (files, name) = match spec.strip_prefix("builtin:") {
        Some(name) => (vec![], Some(name.to_string())),
        None => (vec![PathBuf::from(spec)], None),
    };
    let registry = Registry::load(Runtime::new(cache)?, &files)?;
    let name = match name {
        Some(n) => {
            if !registry.plugins.contains_key(&n) && !registry.providers.contains_key(&n) {
                return Err(bad_input(format!("no built-in extension named {n:?}")));
            }
            n
        }
        None => registry
            .plugins
            .values()
            .chain(registry.providers.values())
            .find(|e| matches!(e.origin, Origin::File(_)))
            .map(|e| e.info.name.clone())
            .ok_or_else(|| bad_input(format!("{spec}: no extension loaded from it")))?,
    };
    Ok((registry, name))
}

/// What a diagnosis says, for comparing: the verdict and the suspicions.
fn outcome(r: Result<(Report, Option<CallError>)>) -> (String, Vec<String>) {
    match r {
        Ok((report, err)) => {
            let verdict = match (&err, report.broken()) {
                (Some(_), _) => "incomplete",
                (None, true) => "broken",
                (None, false) => "healthy",
            };
            let mut s: Vec<String> = report
                .suspicions
                .iter()
                .map(|s| {
                    format!(
                        "{} {}: {}",
                        s.level.name(),
                        s.node.as_deref().unwrap_or("-"),
                        s.message
                    )
                })
                .collect();
            if let Some(e) = err {
                s.push(format!("ERROR {e}"));
            }
            (verdict.into(), s)
        }
        Err(e) => ("error".into(), vec![format!("ERROR {e:#}")]),
    }
}

/// `skoop extension diff OLD NEW --snapshot DIR [--flows FILE]`.
pub fn diff(
    old: &str,
    new: &str,
    bundle: &Path,
    flows: Option<&Path>,
    cache: Option<PathBuf>,
    limits: Limits,
) -> Result<u8> {
    let (old_reg, old_name) = side(old, cache.clone()).with_context(|| format!("loading {old}"))?;
    let (new_reg, new_name) = side(new, cache).with_context(|| format!("loading {new}"))?;
    let kind_of = |r: &Registry, n: &str| {
        if r.plugins.contains_key(n) {
            Kind::CniPlugin
        } else {
            Kind::CloudProvider
        }
    };
    let kind = kind_of(&new_reg, &new_name);
    if kind_of(&old_reg, &old_name) != kind {
        return Err(bad_input(format!(
            "{old} and {new} are not the same kind of extension"
        )));
    }
    let flows = match flows {
        Some(f) => read_flows(f)?,
        None => default_flows(bundle, 64)?,
    };
    if flows.is_empty() {
        return Err(bad_input(format!(
            "no flows to compare on {}: pass --flows FILE",
            bundle.display()
        )));
    }
    // Each side diagnoses with its own extension, named as the plugin or
    // the provider.
    let run = |registry: &Registry, name: &str, f: &FlowSpec| {
        let mut request = Request::new(Input::Bundle(bundle.to_path_buf()));
        match kind {
            Kind::CniPlugin => request.overrides.network_plugin = Some(name.to_string()),
            Kind::CloudProvider => request.overrides.cloud_provider = Some(name.to_string()),
        }
        request.limits = limits;
        flow_of(&f.src, &f.dst, f.port, &f.protocol)
            .and_then(|flow| diagnose(registry, request, flow))
    };
    println!(
        "{old_name} ({old}) -> {new_name} ({new}) over {} flows on {}",
        flows.len(),
        bundle.display()
    );
    let mut changed = 0;
    for f in &flows {
        let (va, sa) = outcome(run(&old_reg, &old_name, f));
        let (vb, sb) = outcome(run(&new_reg, &new_name, f));
        let gone: Vec<&String> = sa.iter().filter(|s| !sb.contains(s)).collect();
        let came: Vec<&String> = sb.iter().filter(|s| !sa.contains(s)).collect();
        if va == vb && gone.is_empty() && came.is_empty() {
            println!("same    {f}  {va}");
            continue;
        }
        changed += 1;
        if va == vb {
            println!("change  {f}  {va}");
        } else {
            println!("change  {f}  {va} -> {vb}");
        }
        for s in gone {
            println!("          - {s}");
        }
        for s in came {
            println!("          + {s}");
        }
    }
    println!("{} flows, {changed} changed", flows.len());
    Ok(if changed == 0 {
        exit::HEALTHY
    } else {
        exit::BROKEN
    })
}

/// Shorten a JSON value for a line of output.
fn short(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 300 {
        s.truncate(s.floor_char_boundary(297));
        s.push('…');
    }
    s
}

/// `skoop extension replay FILE`.
pub fn replay(registry: &Registry, file: &Path, limits: Limits) -> Result<u8> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| bad_input(format!("{}: cannot read it: {e}", file.display())))?;
    let rec = Recording::parse(&text).map_err(|e| {
        bad_input(format!(
            "{}: not a host-call recording: {e}",
            file.display()
        ))
    })?;
    // The extensions to check: those loaded from files, else every one recorded.
    let from_files: Vec<&str> = registry
        .plugins
        .values()
        .chain(registry.providers.values())
        .filter(|e| matches!(e.origin, Origin::File(_)))
        .map(|e| e.info.name.as_str())
        .collect();
    let mut differ = 0;
    let mut replayed = 0;
    for recorded in &rec.extensions {
        if !from_files.is_empty() && !from_files.contains(&recorded.name.as_str()) {
            continue;
        }
        let ext = registry
            .plugins
            .get(&recorded.name)
            .or_else(|| registry.providers.get(&recorded.name))
            .ok_or_else(|| {
                bad_input(format!(
                    "{}: extension {} is recorded but not loaded; load it with --extension",
                    file.display(),
                    recorded.name
                ))
            })?;
        replayed += 1;
        println!(
            "{} {} ({}) against {} {} as recorded: {} calls",
            ext.info.name,
            ext.info.version,
            ext.origin,
            recorded.name,
            recorded.version,
            recorded.calls.len()
        );
        let state = Lending {
            config: recorded.config.clone(),
            reads: ext.info.reads.clone(),
            calls: Some(CallLog::replay(&[])),
            ..Lending::default()
        };
        let mut instance = match ext.info.kind {
            Kind::CniPlugin => Instance::Cni(registry.plugin(ext, state, None, limits)?),
            Kind::CloudProvider => {
                let mut p = registry.provider(ext, state, limits)?;
                let egress = p.egress();
                egress.name = ext.info.name.clone();
                egress.hosts = ext.info.http_hosts.clone();
                egress.mode = skoop_wasm::sandbox::egress::Mode::Replay(std::sync::Arc::new(
                    skoop_wasm::sandbox::egress::Recording {
                        provider: recorded.name.clone(),
                        exchanges: recorded.http.clone(),
                    },
                ));
                Instance::Provider(p)
            }
        };
        let mut same = 0;
        for (i, call) in recorded.calls.iter().enumerate() {
            *instance.calls() = Some(CallLog::replay(&call.imports));
            instance
                .invoke(&call.export, &call.args)
                .map_err(|e| bad_input(format!("{}: call {}: {e}", file.display(), i + 1)))?;
            let answer = instance.last_answer().unwrap_or(Value::Null);
            let (misses, unasked) = match instance.calls() {
                Some(CallLog::Replay {
                    expected,
                    used,
                    misses,
                }) => (
                    misses.clone(),
                    expected
                        .iter()
                        .zip(used)
                        .filter(|(c, u)| !**u && c.import != "log.log")
                        .map(|(c, _)| describe_import(&c.import, &c.args))
                        .collect::<Vec<_>>(),
                ),
                _ => (vec![], vec![]),
            };
            if answer == call.answer && misses.is_empty() {
                same += 1;
                continue;
            }
            differ += 1;
            println!("  call {} {}: the answer differs", i + 1, call.label);
            if answer != call.answer {
                println!("    recorded: {}", short(&call.answer));
                println!("    now:      {}", short(&answer));
            }
            for m in &misses {
                println!("    asked {m}, which the recording does not hold");
            }
            for u in unasked.iter().take(5) {
                println!("    did not ask {u}, as the recorded build did");
            }
        }
        println!(
            "  {same} of {} calls answered as recorded",
            recorded.calls.len()
        );
    }
    if replayed == 0 {
        return Err(bad_input(format!(
            "{}: records none of the extensions loaded with --extension ({})",
            file.display(),
            from_files.join(", ")
        )));
    }
    Ok(if differ == 0 {
        exit::HEALTHY
    } else {
        exit::BROKEN
    })
}

/// A plugin or a provider, for replay.
enum Instance {
    Cni(skoop_wasm::instance::PluginInstance),
    Provider(skoop_wasm::instance::ProviderInstance),
}

impl Instance {
    fn calls(&mut self) -> &mut Option<CallLog> {
        match self {
            Instance::Cni(p) => p.calls(),
            Instance::Provider(p) => p.calls(),
        }
    }

    fn invoke(&mut self, export: &str, args: &Value) -> Result<(), String> {
        match self {
            Instance::Cni(p) => p.invoke(export, args),
            Instance::Provider(p) => p.invoke(export, args),
        }
    }

    fn last_answer(&mut self) -> Option<Value> {
        match self {
            Instance::Cni(p) => p.last_answer(),
            Instance::Provider(p) => p.last_answer(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_match_whole_and_case_insensitively() {
        assert!(has_word("node node-1's FDB entry", "fdb"));
        assert!(has_word("points at 192.168.0.23 (no node)", "192.168.0.23"));
        assert!(!has_word("node-10 down", "node-1x"));
        assert!(!has_word("fdbs", "fdb"));
    }

    #[test]
    fn flows_read_from_lines_with_comments() {
        let dir = std::env::temp_dir().join(format!("skoop-flows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("flows");
        std::fs::write(
            &f,
            "# a comment\n10.0.0.1 10.0.0.2 53/udp\n10.0.0.1 10.0.0.3 80\n",
        )
        .unwrap();
        let flows = read_flows(&f).unwrap();
        assert_eq!(flows.len(), 2);
        assert_eq!(flows[0].to_string(), "10.0.0.1 -> 10.0.0.2:53/udp");
        assert_eq!(flows[1].protocol, "tcp");
        std::fs::write(&f, "10.0.0.1 80\n").unwrap();
        let e = read_flows(&f).unwrap_err().to_string();
        assert!(e.contains(":1: expected"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
