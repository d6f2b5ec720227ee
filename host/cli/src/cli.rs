//! The command line (docs/architecture.md, "The command line"). Extension
//! config keys become ordinary flags of `diagnose`, so the parser is
//! completed once extensions are loaded.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Arg, ArgMatches, Args, Command, CommandFactory, Parser, Subcommand, ValueEnum};
use ipnet::Ipv4Net;

pub use skoop_collect::CollectArgs;
use skoop_engine::detect::Overrides;
use skoop_engine::settings::ProxyMode;
pub use skoop_live::{LiveArgs, SnapshotArgs};
use skoop_netstack::packet::Protocol;
use skoop_render::Format;
use skoop_wasm::Registry;

/// skoop: walk a packet through a Kubernetes cluster hop by hop and say why it fails.
#[derive(Debug, Parser)]
#[command(name = "skoop", version, max_term_width = 100)]
pub struct Cli {
    /// Load a wasm extension (CNI plugin or cloud provider); repeatable. One with
    /// the name of a built-in one replaces it.
    #[arg(
        long = "extension",
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub extensions: Vec<PathBuf>,

    /// Print detected settings and extension logs on stderr.
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub verbose: bool,

    /// Memory limit of each extension instance, in MiB.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        default_value_t = 256,
        value_name = "MIB"
    )]
    pub extension_memory: usize,

    /// Deadline of one call into an extension, in seconds.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        default_value_t = 10.0,
        value_name = "SECS"
    )]
    pub extension_timeout: f64,

    /// Where compiled extensions are cached (default: $SKOOP_CACHE_DIR, else the user cache dir).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "DIR"
    )]
    pub cache_dir: Option<PathBuf>,

    /// Do not cache compiled extensions.
    #[arg(long, global = true, help_heading = "Global options")]
    pub no_cache: bool,

    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Diagnose one flow: -s SRC -d DST -p PORT.
    Diagnose(DiagnoseArgs),
    /// Dump the network stack of this node (and of pod netns) in the bundle's node format.
    Collect(CollectArgs),
    /// Capture a bundle (cluster.json + nodes/*.json) from a live cluster.
    Snapshot(SnapshotArgs),
    /// Which workloads may reach which under the NetworkPolicies, AdminNetworkPolicies and
    /// BaselineAdminNetworkPolicies of a bundle (pods grouped by namespace and labels).
    Connectivity(ConnectivityArgs),
    /// List or inspect extensions.
    Extension {
        #[command(subcommand)]
        action: ExtensionCmd,
    },
    /// Print a shell completion script (with the loaded extensions' options):
    /// e.g. `skoop completions bash > /etc/bash_completion.d/skoop`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), with the loaded extensions' options:
    /// `skoop man | man -l -`.
    Man,
}

#[derive(Debug, Subcommand)]
pub enum ExtensionCmd {
    /// List the loaded extensions (built-ins and --extension ones).
    List,
    /// Show what an extension file declares — name, kind, versions, config
    /// keys (and which are secret), Kubernetes kinds read, HTTP hosts, its
    /// world's imports, size, sha256 — without compiling or running it.
    Inspect {
        /// The component (.wasm).
        file: PathBuf,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
        output: InspectFormat,
    },
    /// Re-run extensions against a `--record-host-calls` recording, with no
    /// bundle or cluster: each recorded call is made again with its
    /// arguments, the host answers from the recording, and every answer that
    /// differs (or question the recording lacks) is shown. Load the build to
    /// check with --extension. Exit 0: same answers; 3: they differ.
    Replay {
        /// The recording (JSON).
        recording: PathBuf,
    },
    /// Run the extension loaded with --extension (else the built-ins) over
    /// test cases: a bundle, a flow, the expected verdict and suspicions.
    /// One line per case and a summary; exit 0 only when every case passes.
    Test {
        /// A cases file (JSON array), or a directory holding cases.json or
        /// tests/cases.json.
        cases: PathBuf,
    },
    /// Which verdicts and suspicions change between two builds of an
    /// extension, over flows on one bundle. Exit 0: none; 3: some change.
    Diff {
        /// The old build: a component file, or `builtin:NAME`.
        old: String,
        /// The new build: a component file, or `builtin:NAME`.
        new: String,
        /// The bundle directory.
        #[arg(long = "snapshot", value_name = "DIR")]
        bundle: PathBuf,
        /// Flows to diagnose (JSON array of {src, dst, port, protocol}, or
        /// lines `SRC DST PORT[/PROTO]`); default: pod to pod across nodes
        /// and pod to Service, up to 64.
        #[arg(long, value_name = "FILE")]
        flows: Option<PathBuf>,
    },
    /// Start a new extension crate that builds to a component and passes its
    /// own `skoop extension test` out of the box.
    New {
        /// cni or provider.
        #[arg(value_enum)]
        kind: NewKind,
        /// The extension's name (lowercase letters, digits and dashes).
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Depend on the skoop-sdk at PATH (a checkout) rather than the
        /// published crate.
        #[arg(long, value_name = "PATH")]
        sdk: Option<PathBuf>,
    },
}

/// What `extension new` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NewKind {
    Cni,
    Provider,
}

/// Output format of `extension inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    Text,
    Json,
}

/// Output format of `connectivity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MatrixFormat {
    Text,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct ConnectivityArgs {
    /// The bundle directory (its cluster.json is read; node dumps are not needed).
    /// Without it, the live cluster is read (--kubeconfig/--context, else the default
    /// kubeconfig): pods, namespaces and policies only; no collector pod is started.
    #[arg(long = "snapshot", value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Only the pods of this namespace.
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// The destination port, e.g. 80/TCP, 53/udp, 9003/sctp (protocol defaults to TCP).
    /// Without it, one matrix per port the pods' containers declare.
    #[arg(long, value_name = "PORT/PROTO")]
    pub port: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = MatrixFormat::Text)]
    pub format: MatrixFormat,

    #[command(flatten)]
    pub live: LiveArgs,
}

/// The protocols a flow may have, as `--protocol` takes them.
fn flow_protocol() -> impl TypedValueParser<Value = Protocol> {
    PossibleValuesParser::new(["tcp", "udp", "sctp"]).try_map(|s: String| {
        Protocol::parse(&s).ok_or_else(|| format!("{s:?} is not tcp, udp or sctp"))
    })
}

/// kube-proxy mode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProxyModeArg {
    Iptables,
    Ipvs,
    /// kube-proxy's nftables proxier (table `ip kube-proxy`).
    Nftables,
    None,
}

impl From<ProxyModeArg> for ProxyMode {
    fn from(m: ProxyModeArg) -> ProxyMode {
        match m {
            ProxyModeArg::Iptables => ProxyMode::Iptables,
            ProxyModeArg::Ipvs => ProxyMode::Ipvs,
            ProxyModeArg::Nftables => ProxyMode::Nftables,
            ProxyModeArg::None => ProxyMode::None,
        }
    }
}

/// The report formats, as `--format` takes them.
fn report_format() -> impl TypedValueParser<Value = Format> {
    PossibleValuesParser::new(
        Format::ALL
            .iter()
            .map(|(_, name, help)| PossibleValue::new(*name).help(*help)),
    )
    .try_map(|s: String| Format::named(&s).ok_or_else(|| format!("{s:?} is not a format")))
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// Source: a pod or node, by name or address — NAMESPACE/POD,
    /// pod/NAMESPACE/NAME, node/NAME, a pod's DNS name, an IP.
    #[arg(
        help_heading = "Flow",
        short = 's',
        long = "src",
        value_name = "NAME|IP"
    )]
    pub src: Option<String>,

    /// Destination: a pod, Service, node or outside address — also
    /// svc/NAMESPACE/NAME and a Service's DNS name (web.default,
    /// web.default.svc.cluster.local).
    #[arg(
        help_heading = "Flow",
        short = 'd',
        long = "dst",
        value_name = "NAME|IP"
    )]
    pub dst: Option<String>,

    /// Destination port, by number or by the Service's (or pod's) port name;
    /// may be left out when the destination has one port.
    #[arg(
        help_heading = "Flow",
        short = 'p',
        long = "port",
        value_name = "PORT|NAME"
    )]
    pub port: Option<String>,

    /// Transport protocol [default: the named port's, else tcp].
    #[arg(help_heading = "Flow", long, value_parser = flow_protocol())]
    pub protocol: Option<Protocol>,

    /// Diagnose offline on a bundle directory (cluster.json + nodes/<node>.json).
    #[arg(
        help_heading = "Input",
        long = "snapshot",
        value_name = "DIR",
        conflicts_with = "demo"
    )]
    pub bundle: Option<PathBuf>,

    /// Diagnose on a built-in demo cluster (`flannel` when no NAME is given,
    /// `calico`; `list` names them); without -s/-d/-p it shows a broken flow.
    #[arg(help_heading = "Input", long, value_name = "NAME", num_args = 0..=1, default_missing_value = "flannel")]
    pub demo: Option<String>,

    #[command(
        flatten,
        next_help_heading = "Live cluster (without --snapshot or --demo)"
    )]
    pub live: LiveArgs,

    /// After the simulated verdict, send the flow for real from the source's
    /// netns (a TCP connect, a UDP datagram and its reply, an SCTP INIT)
    /// through a collector pod on the source's node, and report both side by
    /// side; a disagreement is a WARNING asking for the bundle.
    #[arg(
        help_heading = "Live cluster (without --snapshot or --demo)",
        long,
        conflicts_with = "http"
    )]
    pub probe: bool,

    /// With --probe: attempts at most (1-20), each a new connection; the
    /// first failure ends the probe.
    #[arg(
        help_heading = "Live cluster (without --snapshot or --demo)",
        long,
        value_name = "N",
        default_value_t = 3,
        requires = "probe"
    )]
    pub probe_count: u32,

    /// With --probe: how long each attempt waits, in seconds (at most 10).
    #[arg(
        help_heading = "Live cluster (without --snapshot or --demo)",
        long,
        value_name = "SECS",
        default_value_t = 3.0,
        requires = "probe"
    )]
    pub probe_timeout: f64,

    #[command(flatten, next_help_heading = "Detection overrides")]
    pub settings: SettingsArgs,

    /// Output format.
    #[arg(help_heading = "Output", long, default_value = "text", value_parser = report_format())]
    pub format: Format,

    /// Write the report to FILE instead of stdout.
    #[arg(
        help_heading = "Output",
        short = 'o',
        long = "output",
        value_name = "FILE"
    )]
    pub output: Option<PathBuf>,

    /// Print the verdict line alone on stdout (the report still goes to -o FILE).
    #[arg(help_heading = "Output", short = 'q', long)]
    pub quiet: bool,

    /// Serve the report as an interactive page on ADDR (host:port, or a port
    /// alone for 127.0.0.1), with a form to diagnose other flows on the same facts.
    #[arg(help_heading = "Output", long, value_name = "ADDR", conflicts_with_all = ["quiet", "output"])]
    pub http: Option<String>,

    /// Record every call the host made into each extension and every host
    /// import the extension made, with the answers, to FILE (JSON; secret
    /// values blanked): `skoop extension replay FILE` re-runs an extension
    /// against it with no bundle or cluster.
    #[arg(
        help_heading = "Output",
        long,
        value_name = "FILE",
        conflicts_with = "http"
    )]
    pub record_host_calls: Option<PathBuf>,
}

/// The settings a diagnosis may be given instead of detecting them; also
/// what a test case's `args` may say.
#[derive(Debug, Clone, Args)]
pub struct SettingsArgs {
    /// Network plugin (default: detected from the DaemonSets).
    #[arg(long, value_name = "NAME")]
    pub network_plugin: Option<String>,

    /// Say whether the network plugin enforces NetworkPolicy, AdminNetworkPolicy and
    /// BaselineAdminNetworkPolicy (default: what the plugin declares; flannel enforces none).
    /// A policy deny is CRITICAL when enforced, a WARNING otherwise.
    #[arg(long, value_name = "BOOL")]
    pub enforces_network_policy: Option<bool>,

    /// Cloud provider.
    #[arg(long, value_name = "NAME")]
    pub cloud_provider: Option<String>,

    /// kube-proxy mode (default: detected from its ConfigMap).
    #[arg(long, value_enum)]
    pub proxy_mode: Option<ProxyModeArg>,

    /// Cluster (pod) CIDR (default: kube-proxy's clusterCIDR, else the node pod CIDRs).
    #[arg(long, value_name = "CIDR")]
    pub cluster_cidr: Option<Ipv4Net>,
}

impl SettingsArgs {
    /// The settings given instead of detected.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            network_plugin: self.network_plugin.clone(),
            cloud_provider: self.cloud_provider.clone(),
            proxy_mode: self.proxy_mode.map(Into::into),
            cluster_cidr: self.cluster_cidr,
        }
    }
}

/// The parser of a test case's `args`: the settings options and the
/// loaded extensions' config options.
pub fn case_options(registry: &Registry) -> Command {
    let mut c = SettingsArgs::augment_args(Command::new("args").no_binary_name(true));
    for (_, k) in registry.config_keys() {
        c = c.arg(Arg::new(k.name.clone()).long(k.name.clone()));
    }
    c
}

/// The extension config values given on the command line of `sub`.
pub fn flag_values(registry: &Registry, sub: Option<&ArgMatches>) -> BTreeMap<String, String> {
    registry
        .config_keys()
        .into_iter()
        .filter_map(|(_, k)| {
            sub.and_then(|m| m.try_get_one::<String>(&k.name).ok().flatten())
                .map(|v| (k.name.clone(), v.clone()))
        })
        .collect()
}

/// What must be known before extensions load: which files, which cache.
#[derive(Debug, Default)]
pub struct Prescan {
    pub extensions: Vec<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub no_cache: bool,
    /// The subcommand, if one is given (the first positional argument).
    pub subcommand: Option<String>,
    /// The word after the subcommand (`extension inspect`).
    pub action: Option<String>,
    /// `--snapshot DIR`, the bundle of a `diagnose`.
    pub bundle: Option<PathBuf>,
}

impl Prescan {
    /// Whether the command line needs the extensions loaded: not for the
    /// top-level help or version, nor for `collect` or `extension inspect`.
    pub fn needs_extensions(&self) -> bool {
        let standalone = self.subcommand.as_deref() == Some("extension")
            && matches!(self.action.as_deref(), Some("inspect" | "new"));
        !standalone && !matches!(self.subcommand.as_deref(), None | Some("collect"))
    }

    /// The bundle a `diagnose` will read, which can be read while the
    /// extensions load.
    pub fn diagnose_bundle(&self) -> Option<&PathBuf> {
        self.bundle
            .as_ref()
            .filter(|_| self.subcommand.as_deref() == Some("diagnose"))
    }
}

/// Read the loader flags out of the raw arguments (the full parse needs the
/// extensions loaded first, for their flags).
pub fn prescan(args: &[OsString]) -> Prescan {
    let mut p = Prescan::default();
    let mut it = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        match flag.as_str() {
            "--extension" => {
                if let Some(v) = inline.or_else(|| it.next()) {
                    p.extensions.push(PathBuf::from(v));
                }
            }
            "--cache-dir" => p.cache_dir = inline.or_else(|| it.next()).map(PathBuf::from),
            "--snapshot" if p.subcommand.is_some() => {
                p.bundle = inline.or_else(|| it.next()).map(PathBuf::from);
            }
            "--no-cache" => p.no_cache = true,
            // Their values are no subcommand.
            "--extension-memory" | "--extension-timeout" if inline.is_none() => {
                it.next();
            }
            _ if p.subcommand.is_none() && !a.starts_with('-') => p.subcommand = Some(a.clone()),
            _ if p.action.is_none() && p.subcommand.is_some() && !a.starts_with('-') => {
                p.action = Some(a.clone())
            }
            _ => {}
        }
    }
    p
}

/// The full command, with every extension's config keys as `diagnose` flags.
pub fn command(registry: &Registry) -> Command {
    let keys: Vec<(String, String, String)> = registry
        .config_keys()
        .into_iter()
        .map(|(owner, k)| {
            let default = k
                .default
                .as_ref()
                .map(|d| format!(" [default: {d}]"))
                .unwrap_or_default();
            let env = if k.env.is_empty() {
                String::new()
            } else {
                format!(" [env: {}]", k.env.join(", "))
            };
            let secret = if k.secret {
                " (secret: never shown or recorded)"
            } else {
                ""
            };
            (
                owner.to_string(),
                k.name.clone(),
                format!("{}{secret}{default}{env}", k.help),
            )
        })
        .collect();
    let add = move |mut sc: Command| {
        for (owner, name, help) in &keys {
            sc = sc.arg(
                Arg::new(name.clone())
                    .long(name.clone())
                    .value_name("VALUE")
                    .help(help.clone())
                    .help_heading(format!("Options of extension {owner}")),
            );
        }
        sc
    };
    Cli::command()
        .mut_subcommand("diagnose", add.clone())
        .mut_subcommand("snapshot", add)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prescan_finds_loader_flags() {
        let args: Vec<OsString> = [
            "skoop",
            "--extension",
            "a.wasm",
            "diagnose",
            "--extension=b.wasm",
            "--no-cache",
            "-s",
            "1.2.3.4",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let p = prescan(&args);
        assert_eq!(
            p.extensions,
            vec![PathBuf::from("a.wasm"), PathBuf::from("b.wasm")]
        );
        assert!(p.no_cache);
        assert_eq!(p.subcommand.as_deref(), Some("diagnose"));
        assert!(p.needs_extensions());
    }

    #[test]
    fn the_bundle_of_a_diagnose_is_found_before_the_full_parse() {
        let scan = |a: &[&str]| prescan(&a.iter().map(OsString::from).collect::<Vec<_>>());
        let dir = |p: &Prescan| p.diagnose_bundle().cloned();
        let b = Some(PathBuf::from("b"));
        assert_eq!(
            dir(&scan(&[
                "skoop",
                "diagnose",
                "--snapshot",
                "b",
                "-s",
                "1.1.1.1"
            ])),
            b
        );
        assert_eq!(dir(&scan(&["skoop", "-v", "diagnose", "--snapshot=b"])), b);
        assert_eq!(
            dir(&scan(&["skoop", "connectivity", "--snapshot", "b"])),
            None
        );
        assert_eq!(dir(&scan(&["skoop", "diagnose", "--demo"])), None);
        assert_eq!(
            dir(&scan(&["skoop", "diagnose", "--", "--snapshot", "b"])),
            None
        );
    }

    #[test]
    fn top_level_help_and_collect_need_no_extensions() {
        let scan = |a: &[&str]| prescan(&a.iter().map(OsString::from).collect::<Vec<_>>());
        assert!(!scan(&["skoop", "--help"]).needs_extensions());
        assert!(!scan(&["skoop", "--extension-timeout", "3", "--version"]).needs_extensions());
        assert!(!scan(&["skoop", "-v", "collect", "-o", "x"]).needs_extensions());
        let list = scan(&["skoop", "--extension-memory", "64", "extension", "list"]);
        assert_eq!(list.subcommand.as_deref(), Some("extension"));
        assert!(scan(&["skoop", "help", "diagnose"]).needs_extensions());
        assert!(!scan(&["skoop", "extension", "inspect", "x.wasm"]).needs_extensions());
        assert!(scan(&["skoop", "extension", "list"]).needs_extensions());
        assert!(!scan(&["skoop", "extension", "new", "cni", "x"]).needs_extensions());
        assert!(scan(&["skoop", "extension", "test", "dir"]).needs_extensions());
    }
}
