//! Running work inside another network namespace without leaking it into the
//! rest of the process: each job gets a dedicated thread that `setns`es first.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use nix::sched::{CloneFlags, setns};

/// Where a NETNS argument points: a bare name is under `/run/netns`, anything
/// with a slash is a path (e.g. `/proc/PID/ns/net`).
pub fn resolve(netns: &str) -> PathBuf {
    if netns.contains('/') {
        PathBuf::from(netns)
    } else {
        Path::new("/run/netns").join(netns)
    }
}

/// Run `job` on a new thread that has entered the netns at `path`. The
/// calling thread's namespace is untouched.
pub fn run_in<T, F>(path: &Path, job: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let file = File::open(path).with_context(|| format!("opening netns {}", path.display()))?;
    let shown = path.display().to_string();
    let handle = std::thread::Builder::new()
        .name("skoop-netns".into())
        .spawn(move || -> Result<T> {
            setns(&file, CloneFlags::CLONE_NEWNET)
                .with_context(|| format!("entering netns {shown}"))?;
            drop(file);
            Ok(job())
        })
        .context("spawning a netns thread")?;
    handle
        .join()
        .map_err(|_| anyhow!("the collector thread for netns {} panicked", path.display()))?
}
