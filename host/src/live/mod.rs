//! Live cluster mode: the cluster view from the API server and node dumps from
//! collector pods, and `skoop snapshot`.

use anyhow::Result;

use crate::bundle::Bundle;
use crate::cli::{LiveArgs, SnapshotArgs};
use crate::error::bad_input;

/// A bundle for diagnosing a live cluster.
pub fn bundle(_args: &LiveArgs) -> Result<Bundle> {
    Err(bad_input(
        "live cluster mode (--kubeconfig/--context) is not available in this build; diagnose a bundle with --snapshot DIR",
    ))
}

/// Run `skoop snapshot`.
pub fn snapshot(_args: &SnapshotArgs) -> Result<u8> {
    Err(bad_input("skoop snapshot is not available in this build"))
}
