//! The options of `skoop collect` (also the `skoop-collect` binary).

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Node name (default: the hostname).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,

    /// A pod netns to dump too, as NS/NAME=NETNS (a name under /run/netns or a path
    /// such as /proc/PID/ns/net); repeatable. Without it, pods are found through CRI.
    #[arg(long = "pod", value_name = "NS/NAME=NETNS")]
    pub pods: Vec<String>,

    /// Write the dump to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}
