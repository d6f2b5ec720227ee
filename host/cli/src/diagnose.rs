//! `skoop diagnose`: the command line made a request, the report written
//! in the chosen format, the exit code from the verdict.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context as _, Result};
use skoop_diagnosis::{Context, FlowSpec, Input, Preload, ProbeOptions, Request};
use skoop_engine::report::Report;
use skoop_error::{bad_input, exit};
use skoop_render::Colour;
use skoop_wasm::Registry;
use skoop_wasm::sandbox::Limits;

use crate::cli::{Cli, DiagnoseArgs};
use crate::http;

/// The request `args` make: input, overrides, extension values, limits.
pub fn request(
    args: &DiagnoseArgs,
    values: BTreeMap<String, String>,
    limits: Limits,
    verbose: bool,
) -> Request {
    let input = match (&args.demo, &args.bundle) {
        (Some(name), _) => Input::Demo(name.clone()),
        (None, Some(dir)) => Input::Bundle(dir.clone()),
        (None, None) => Input::Live(args.live.clone()),
    };
    let mut request = Request::new(input);
    request.overrides = args.settings.overrides();
    request.enforces_network_policy = args.settings.enforces_network_policy;
    request.extension_values = values;
    request.limits = limits;
    request.record_host_calls = args.record_host_calls.is_some();
    request.verbose = verbose;
    request
}

/// The flow of `-s`, `-d`, `-p` as given (names or addresses); a demo's
/// own flow when none is given.
pub fn flow(args: &DiagnoseArgs) -> Result<FlowSpec> {
    if let Some(name) = &args.demo
        && args.src.is_none()
        && args.dst.is_none()
        && args.port.is_none()
    {
        return Ok(skoop_diagnosis::demo_flow(name)?.into());
    }
    let src = args.src.clone().ok_or_else(|| {
        bad_input("missing -s SRC: the source pod or node (a name such as NAMESPACE/POD, or an IP)")
    })?;
    let dst = args.dst.clone().ok_or_else(|| {
        bad_input("missing -d DST: the destination (a name such as svc/NAMESPACE/NAME, or an IP)")
    })?;
    Ok(FlowSpec {
        src,
        dst,
        port: args.port.clone(),
        protocol: args.protocol,
    })
}

/// `--probe`'s options, checked before anything is read: it needs a live
/// cluster and attempts within the collector's caps.
fn probe_options(args: &DiagnoseArgs) -> Result<Option<ProbeOptions>> {
    if !args.probe {
        return Ok(None);
    }
    if args.demo.is_some() || args.bundle.is_some() {
        return Err(skoop_diagnosis::needs_live());
    }
    let t = args.probe_timeout;
    if !t.is_finite() || t < 0.0 {
        return Err(bad_input(format!(
            "--probe-timeout {t}: give the seconds each attempt waits"
        )));
    }
    ProbeOptions::new(args.probe_count, Duration::from_secs_f64(t.min(1e6))).map(Some)
}

/// What `--verbose` shows of the context before the diagnosis.
fn describe(context: &Context) {
    let settings = context.settings();
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
    for note in context.notes() {
        eprintln!("skoop: detected: {note}");
    }
    if context.is_live() {
        return;
    }
    let facts = context.facts();
    for n in facts.view.nodes.values() {
        let iface = match (&n.host_interface, facts.netstacks.loaded_node(&n.name)) {
            (Some(i), _) => i.as_str(),
            (None, Some(_)) => "unknown",
            (None, None) => "not read yet (the path may not reach it)",
        };
        eprintln!("skoop: node {} host interface {iface}", n.name);
    }
}

/// The objects left out, on stderr: all with few, the first ones with many.
fn warn_skipped(skipped: &[String]) {
    const SHOWN: usize = 20;
    for line in skipped.iter().take(SHOWN) {
        eprintln!("skoop: warning: {line}");
    }
    if skipped.len() > SHOWN {
        eprintln!(
            "skoop: warning: and {} more objects could not be read and were left out",
            skipped.len() - SHOWN
        );
    }
}

pub fn run(
    registry: &Registry,
    cli: &Cli,
    args: &DiagnoseArgs,
    values: BTreeMap<String, String>,
    limits: Limits,
    preload: Option<Preload>,
) -> Result<u8> {
    if args.demo.as_deref() == Some("list") {
        for d in skoop_demos::all()? {
            println!("{:<8} {}", d.about.name, d.about.about);
        }
        return Ok(exit::HEALTHY);
    }
    let probe = probe_options(args)?;
    let spec = flow(args)?;
    let request = request(args, values, limits, cli.verbose);
    let mut context = Context::open(registry, request, spec.clone(), preload)?;
    if cli.verbose {
        describe(&context);
    }
    if cli.verbose || context.is_live() {
        for w in context.warnings() {
            eprintln!("skoop: warning: {w}");
        }
    }
    warn_skipped(&context.skipped());
    let (resolved, mut outcome) = context.diagnose_named(&spec)?;
    if let Some(options) = probe {
        context.probe(&resolved.flow, &mut outcome.report, options)?;
    }
    if let Some(path) = &args.record_host_calls {
        context.write_host_calls(path, &resolved.flow)?;
    }
    if let Some(addr) = &args.http {
        let source = context.source().to_string();
        let mut diagnose = |spec: FlowSpec| -> Result<Report> {
            let (_, outcome) = context.diagnose_named(&spec)?;
            if let Some(e) = outcome.failed {
                eprintln!("skoop: {e}");
            }
            Ok(outcome.report)
        };
        return http::serve(addr, outcome.report, &source, &mut diagnose);
    }
    let colour = if args.output.is_none()
        && skoop_render::term::wanted(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ) {
        Colour::On
    } else {
        Colour::Off
    };
    let report = &outcome.report;
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
            write(&skoop_render::render(report, args.format, Colour::Off))?;
        }
        println!("{}", skoop_render::text::verdict_line(report, colour));
        if let Some(line) = skoop_render::text::probe_line(report, colour) {
            println!("{line}");
        }
    } else {
        write(&skoop_render::render(report, args.format, colour))?;
    }
    let code = match &outcome.failed {
        Some(e) => {
            eprintln!("skoop: {e}");
            exit::INTERNAL
        }
        None if report.broken() => exit::BROKEN,
        None => exit::HEALTHY,
    };
    // The process ends now: see `Context::finish_fast`.
    drop(outcome);
    context.finish_fast();
    Ok(code)
}
