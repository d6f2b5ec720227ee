//! `skoop collect`: dump the network stack of the netns it runs in (as the
//! node's host netns) and of pod netns, in the node dump format.

use anyhow::Result;

use crate::cli::CollectArgs;
use crate::error::bad_input;

/// Run `skoop collect`.
pub fn run(_args: &CollectArgs) -> Result<u8> {
    Err(bad_input("skoop collect is not available in this build"))
}
