//! The options of live mode and of `skoop snapshot` (flattened into the CLI).

use std::path::PathBuf;

use clap::Args;

/// How to reach a live cluster and run collector pods on it.
#[derive(Debug, Clone, Args)]
pub struct LiveArgs {
    /// Kubeconfig of a live cluster (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Namespace of the collector pods (created if missing).
    #[arg(long, value_name = "NS", default_value = "skoop")]
    pub collector_namespace: String,

    /// Image of the collector pods (it runs `skoop collect`).
    #[arg(long, value_name = "IMAGE", default_value = "skoop/collector:0.1")]
    pub collector_image: String,

    /// How long to wait for a collector pod, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub collector_pod_wait_timeout: u64,

    /// Keep the collector pods after the run.
    #[arg(long)]
    pub preserve_collector_pod: bool,

    /// Deadline of one API request, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub api_timeout: u64,
}

impl LiveArgs {
    /// True when the user asked for live mode.
    pub fn wanted(&self) -> bool {
        self.kubeconfig.is_some() || self.context.is_some()
    }
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Directory to write the bundle to.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: PathBuf,

    /// Nodes to collect; repeatable.
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,

    /// Collect every node (asks for --yes on large clusters).
    #[arg(long)]
    pub all_nodes: bool,

    /// Confirm collecting every node of a large cluster.
    #[arg(long)]
    pub yes: bool,

    /// Also record what this cloud provider asks its cloud about the
    /// bundle's nodes, in DIR/cloud/<NAME>.json, so its checks run offline.
    #[arg(long, value_name = "NAME")]
    pub cloud_provider: Option<String>,

    /// With --cloud-provider: record only the cloud, into a bundle DIR that
    /// already holds cluster.json (taken earlier, or without cloud access).
    #[arg(long, requires = "cloud_provider")]
    pub cloud_only: bool,

    #[command(flatten)]
    pub live: LiveArgs,
}
