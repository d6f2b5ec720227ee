//! What a diagnosis is asked for: where the facts come from, what overrides
//! detection, what the extensions are given, and the sandbox's limits.

use std::collections::BTreeMap;
use std::path::PathBuf;

use skoop_engine::detect::Overrides;
use skoop_live::LiveArgs;
use skoop_wasm::sandbox::Limits;

/// Where the facts come from.
#[derive(Debug, Clone)]
pub enum Input {
    /// A built-in demo by name (`skoop_demos`).
    Demo(String),
    /// A bundle directory: `cluster.json` and `nodes/<node>.json`, and the
    /// cloud recordings under `cloud/`.
    Bundle(PathBuf),
    /// A live cluster, through its API server and collector pods.
    Live(LiveArgs),
}

/// Where progress and warnings go: a line without the `skoop: ` prefix.
pub type Log = fn(&str);

fn to_stderr(line: &str) {
    eprintln!("skoop: {line}");
}

/// A typed diagnosis request.
#[derive(Debug, Clone)]
pub struct Request {
    pub input: Input,
    /// Settings that replace detection (network plugin, cloud provider,
    /// kube-proxy mode, cluster CIDR).
    pub overrides: Overrides,
    /// Whether the network plugin enforces NetworkPolicy and the admin
    /// policies (default: what it declares, or says at set-up).
    pub enforces_network_policy: Option<bool>,
    /// Extension config values by option name (`--<name> VALUE`).
    pub extension_values: BTreeMap<String, String>,
    /// Memory and time each extension call may take.
    pub limits: Limits,
    /// Record every host call of every extension (`Context::write_host_calls`).
    pub record_host_calls: bool,
    /// Report progress and detection details through `log`, not only warnings.
    pub verbose: bool,
    /// Where progress, notices and warnings go (stderr by default).
    pub log: Log,
}

impl Request {
    /// A request with the defaults: detection decides, default limits, no
    /// recording.
    pub fn new(input: Input) -> Request {
        Request {
            input,
            overrides: Overrides::default(),
            enforces_network_policy: None,
            extension_values: BTreeMap::new(),
            limits: Limits::default(),
            record_host_calls: false,
            verbose: false,
            log: to_stderr,
        }
    }

    /// The directory of the bundle's cloud recordings, when the input is a
    /// bundle.
    pub(crate) fn cloud_recordings(&self) -> Option<PathBuf> {
        match &self.input {
            Input::Bundle(dir) => Some(dir.join("cloud")),
            _ => None,
        }
    }
}
