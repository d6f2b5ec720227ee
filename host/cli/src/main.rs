//! The `skoop` binary: parse the command line, load extensions, run the
//! command, print, exit. Exit status: 0 healthy, 3 broken, 2 bad usage or
//! input, 1 internal failure.

/// mimalloc: reading a large bundle allocates a great deal on two threads,
/// and mimalloc's thread-local heaps and huge pages roughly halve the
/// time the kernel spends giving the process fresh pages (the scale
/// bench: 10k Services, about 90 ms with the system allocator, 55 ms with
/// this). Its version 2 holds less memory than version 3 for the same work.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

mod cli;
mod connectivity;
mod diagnose;
mod extension;
mod harness;
mod http;
mod scaffold;

use anyhow::{Context as _, Result};
use clap::{FromArgMatches, Parser};

use crate::cli::{Cli, Cmd, ExtensionCmd, flag_values};
use skoop_diagnosis::Preload;
use skoop_error::{bad_input, exit, is_bad_input};
use skoop_wasm::Registry;
use skoop_wasm::runtime::Runtime;
use skoop_wasm::sandbox::Limits;

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

fn log(line: &str) {
    eprintln!("skoop: {line}");
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
            } => return extension::standalone(action),
            _ => {}
        }
    }
    let cache = if pre.no_cache {
        None
    } else {
        pre.cache_dir.clone().or_else(Runtime::default_cache_dir)
    };
    // A diagnosis of a bundle reads the bundle while the extensions load.
    let preload = pre.diagnose_bundle().cloned().map(Preload::start);
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
        log(notice);
    }
    let limits = Limits {
        memory_bytes: cli.extension_memory.saturating_mul(1 << 20),
        call_timeout: Duration::try_from_secs_f64(cli.extension_timeout)
            .map_err(|_| bad_input("--extension-timeout must be a positive number of seconds"))?,
    };
    match &cli.command {
        Cmd::Diagnose(args) => {
            let values = flag_values(&registry, matches.subcommand_matches("diagnose"));
            diagnose::run(&registry, &cli, args, values, limits, preload)
        }
        Cmd::Extension { action } => extension::run(&registry, action, &cache, limits),
        Cmd::Collect(args) => skoop_collect::run(args),
        Cmd::Snapshot(args) => {
            let declared: Vec<String> = skoop_diagnosis::retain(&registry).kinds().collect();
            let code = if args.cloud_only {
                0
            } else {
                skoop_live::snapshot(args, &declared)?
            };
            match &args.cloud_provider {
                Some(name) if code == 0 => {
                    let values = flag_values(&registry, matches.subcommand_matches("snapshot"));
                    skoop_diagnosis::cloud::record(
                        &registry,
                        name,
                        &args.output,
                        &values,
                        limits,
                        cli.verbose,
                        log,
                    )
                    .map(|()| code)
                }
                _ => Ok(code),
            }
        }
        Cmd::Connectivity(args) => connectivity::run(args),
        Cmd::Completions { shell } => {
            let mut command = cli::command(&registry);
            clap_complete::generate(*shell, &mut command, "skoop", &mut std::io::stdout());
            Ok(exit::HEALTHY)
        }
        Cmd::Man => {
            let man = clap_mangen::Man::new(cli::command(&registry));
            let mut page = Vec::new();
            man.render(&mut page).context("rendering the man page")?;
            // Each subcommand's page follows, so one page holds every option.
            for sub in cli::command(&registry).get_subcommands() {
                let name = format!("skoop-{}", sub.get_name());
                clap_mangen::Man::new(sub.clone().name(name))
                    .render(&mut page)
                    .context("rendering the man page")?;
            }
            std::io::Write::write_all(&mut std::io::stdout(), &page)
                .context("writing the man page")?;
            Ok(exit::HEALTHY)
        }
    }
}
