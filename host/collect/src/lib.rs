//! `skoop collect`: dump the network stack of the netns it runs in (as the
//! node's host netns) and of pod netns, in the node dump format.
//!
//! Each pod netns is read on a dedicated thread that `setns`es into it, so the
//! rest of the process never leaves its own namespace.

mod args;
mod cri;
mod ipvs;
mod links;
mod neigh;
mod netlink;
mod netns;
mod netns_dump;
pub mod probe;
mod routes;
mod sockets;
mod sysctl;
mod tools;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};

pub use args::{CollectArgs, CollectCmd, ProbeArgs};
use skoop_error::{bad_input, exit};
use skoop_netstack::dump::{DUMP_VERSION, NetnsDump, NodeDump, PodNetns};

/// One `--pod NS/NAME=NETNS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSpec {
    pub namespace: String,
    pub name: String,
    pub netns: PathBuf,
}

/// Parse `NS/NAME=NETNS`.
pub fn parse_pod(s: &str) -> Result<PodSpec> {
    let bad = || {
        bad_input(format!(
            "--pod {s:?}: expected NS/NAME=NETNS (a name under /run/netns or a path such as /proc/PID/ns/net)"
        ))
    };
    let (key, ns) = s.split_once('=').ok_or_else(bad)?;
    let (namespace, name) = key.split_once('/').ok_or_else(bad)?;
    if namespace.is_empty() || name.is_empty() || ns.is_empty() || name.contains('/') {
        return Err(bad());
    }
    Ok(PodSpec {
        namespace: namespace.into(),
        name: name.into(),
        netns: netns::resolve(ns),
    })
}

/// Dump the node: the current netns as host, then each pod netns.
pub fn collect_node(node: &str, pods: &[PodSpec]) -> Result<NodeDump> {
    for p in pods {
        if !p.netns.exists() {
            return Err(bad_input(format!(
                "--pod {}/{}: netns {} does not exist",
                p.namespace,
                p.name,
                p.netns.display()
            )));
        }
    }
    let host = netns::run_in(Path::new("/proc/thread-self/ns/net"), netns_dump::collect)
        .context("dumping the host netns")?;
    let netns = collect_pods(pods)?;
    let pods = pods
        .iter()
        .zip(netns)
        .map(|(p, netns)| PodNetns {
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            netns,
        })
        .collect();
    Ok(NodeDump {
        version: DUMP_VERSION,
        node: node.to_string(),
        host,
        pods,
    })
}

/// How many pod netns are read at once (each read mostly waits on
/// iptables-save/ipset child processes).
const PARALLEL_PODS: usize = 4;

/// Dump every pod netns, a few at a time, in the order given.
fn collect_pods(pods: &[PodSpec]) -> Result<Vec<NetnsDump>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<NetnsDump>>>> =
        Mutex::new((0..pods.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_PODS.min(pods.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = pods.get(i) else { break };
                    let r = netns::run_in(&p.netns, netns_dump::collect)
                        .with_context(|| format!("dumping pod {}/{}", p.namespace, p.name));
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(r);
                    }
                }
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a pod collector thread panicked"))?;
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("a pod netns was not dumped"))))
        .collect()
}

/// Run `skoop collect` (or `skoop collect probe`).
pub fn run(args: &CollectArgs) -> Result<u8> {
    if let Some(CollectCmd::Probe(probe)) = &args.action {
        return probe::run(probe);
    }
    let pods = args
        .pods
        .iter()
        .map(|s| parse_pod(s))
        .collect::<Result<Vec<_>>>()?;
    let node = match &args.node {
        Some(n) => n.clone(),
        None => hostname()?,
    };
    let mut notes = Vec::new();
    let pods = if pods.is_empty() {
        from_cri(&mut notes)
    } else {
        pods
    };
    let mut dump = collect_node(&node, &pods)?;
    for (fact, why) in notes {
        eprintln!("skoop collect: {fact}: {why}");
        dump.host.absent.insert(fact, why);
    }
    let text = serde_json::to_string_pretty(&dump).context("serialising the dump")?;
    match &args.output {
        Some(path) => std::fs::write(path, text + "\n")
            .map_err(|e| bad_input(format!("cannot write {}: {e}", path.display())))?,
        None => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}").context("writing the dump to stdout")?;
        }
    }
    Ok(exit::HEALTHY)
}

/// The pods the CRI runtime knows, with notes (fact, why) for what it could
/// not tell; no pods at all when there is no runtime to ask.
fn from_cri(notes: &mut Vec<(String, String)>) -> Vec<PodSpec> {
    match cri::discover(Path::new("/")) {
        cri::Discovery::Unavailable(why) => {
            notes.push(("pods".into(), why));
            Vec::new()
        }
        cri::Discovery::Found { socket, listing } => {
            eprintln!(
                "skoop collect: {} pod sandbox(es) from CRI socket {}",
                listing.sandboxes.len(),
                socket.display()
            );
            for skipped in listing.skipped {
                let (key, why) = skipped.split_once(": ").unwrap_or(("?", skipped.as_str()));
                notes.push((format!("pod {key}"), why.to_string()));
            }
            let mut pods = Vec::new();
            for sb in listing.sandboxes {
                let key = format!("{}/{}", sb.namespace, sb.name);
                if sb.netns.exists() {
                    pods.push(PodSpec {
                        namespace: sb.namespace,
                        name: sb.name,
                        netns: sb.netns,
                    });
                } else {
                    notes.push((
                        format!("pod {key}"),
                        format!(
                            "its netns {} (from CRI) is not visible here",
                            sb.netns.display()
                        ),
                    ));
                }
            }
            pods
        }
    }
}

fn hostname() -> Result<String> {
    let name = nix::unistd::gethostname().context("reading the hostname")?;
    Ok(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_specs_take_names_and_paths() {
        let p = parse_pod("default/web-1=cni-1234").expect("parse");
        assert_eq!(
            (p.namespace.as_str(), p.name.as_str()),
            ("default", "web-1")
        );
        assert_eq!(p.netns, Path::new("/run/netns/cni-1234"));
        let p = parse_pod("kube-system/dns=/proc/42/ns/net").expect("parse");
        assert_eq!(p.netns, Path::new("/proc/42/ns/net"));
    }

    #[test]
    fn malformed_pod_specs_are_bad_input() {
        for s in ["web-1=x", "default/web-1", "/web=x", "default/=x", "a/b="] {
            let err = parse_pod(s).expect_err(s);
            assert!(skoop_error::is_bad_input(&err), "{s}");
        }
    }
}
