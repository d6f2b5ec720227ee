//! Finding pod sandboxes without `--pod`: through the CRI runtime socket
//! (containerd, cri-dockerd, CRI-O), as KubeSkoop's collector does.

mod client;
#[cfg(test)]
mod fake;
mod proto;

use std::path::{Path, PathBuf};

pub use client::Listing;

/// The CRI sockets looked for, in order.
pub const SOCKETS: [&str; 5] = [
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/run/cri-dockerd.sock",
    "/var/run/cri-dockerd.sock",
    "/run/crio/crio.sock",
];

/// What the CRI said about this node's pods.
#[derive(Debug)]
pub enum Discovery {
    /// The runtime listed its sandboxes.
    Found { socket: PathBuf, listing: Listing },
    /// No pod could be listed, and why (no socket, the runtime failed).
    Unavailable(String),
}

/// Ask the first CRI socket present under `root` (normally `/`).
pub fn discover(root: &Path) -> Discovery {
    let Some(socket) = find_socket(root) else {
        return Discovery::Unavailable(format!(
            "no CRI socket found (looked for {}); only the host netns was dumped — pass --pod NS/NAME=NETNS for each pod",
            SOCKETS.join(", ")
        ));
    };
    match client::list_sandboxes(&socket) {
        Ok(listing) => Discovery::Found { socket, listing },
        Err(e) => Discovery::Unavailable(format!(
            "listing pod sandboxes through CRI socket {} failed: {e:#}; only the host netns was dumped — pass --pod NS/NAME=NETNS for each pod",
            socket.display()
        )),
    }
}

/// The first CRI socket present under `root`.
pub fn find_socket(root: &Path) -> Option<PathBuf> {
    SOCKETS
        .iter()
        .map(|s| root.join(s.trim_start_matches('/')))
        .find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_socket_is_said_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        match discover(dir.path()) {
            Discovery::Unavailable(why) => assert!(why.starts_with("no CRI socket found"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_dead_socket_is_reported_not_fatal() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("run")).expect("mkdir");
        std::fs::write(dir.path().join("run/cri-dockerd.sock"), "").expect("write");
        match discover(dir.path()) {
            Discovery::Unavailable(why) => {
                assert!(why.contains("cri-dockerd.sock failed"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }
}
