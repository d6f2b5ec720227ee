//! `skoop-collect`: the node collector alone, for a minimal collector image
//! (no wasm runtime, no Kubernetes client). Same flags as `skoop collect`.

use std::process::ExitCode;

use clap::Parser;
use skoop_collect::CollectArgs;
use skoop_error::{exit, is_bad_input};

/// Dump the network stack of this node (and of pod netns) in the bundle's node format.
#[derive(Debug, Parser)]
#[command(name = "skoop-collect", version, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    args: CollectArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match skoop_collect::run(&cli.args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("skoop-collect: {e:#}");
            ExitCode::from(if is_bad_input(&e) {
                exit::BAD_INPUT
            } else {
                exit::INTERNAL
            })
        }
    }
}
