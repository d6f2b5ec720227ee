//! Finding pod sandboxes without `--pod`: through the CRI runtime socket.
//!
//! This build locates the CRI sockets (containerd, cri-dockerd, CRI-O) but has
//! no CRI gRPC client yet, so it cannot list sandboxes itself: it says so, and
//! the caller dumps the host netns only and records why the pods are missing.

use std::path::{Path, PathBuf};

/// The CRI sockets looked for, in order.
pub const SOCKETS: [&str; 5] = [
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/run/cri-dockerd.sock",
    "/var/run/cri-dockerd.sock",
    "/run/crio/crio.sock",
];

/// Why no pod netns is dumped when no `--pod` was given.
pub fn why_no_pods(root: &Path) -> String {
    match find_socket(root) {
        None => format!(
            "no CRI socket found (looked for {}); only the host netns was dumped — pass --pod NS/NAME=NETNS for each pod",
            SOCKETS.join(", ")
        ),
        Some(sock) => format!(
            "CRI socket {} found, but this build has no CRI client to list pod sandboxes; only the host netns was dumped — pass --pod NS/NAME=NETNS for each pod",
            sock.display()
        ),
    }
}

/// The first CRI socket present under `root` (normally `/`).
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
        assert!(why_no_pods(dir.path()).starts_with("no CRI socket found"));
        std::fs::create_dir_all(dir.path().join("run")).expect("mkdir");
        std::fs::write(dir.path().join("run/cri-dockerd.sock"), "").expect("write");
        let why = why_no_pods(dir.path());
        assert!(why.contains("cri-dockerd.sock found"), "{why}");
    }
}
