//! Everything a diagnosis knows, shared read-only by the engine and every
//! extension instance.

use crate::cluster::ClusterView;
use crate::detect::Settings;
use crate::netstack::Netstacks;

/// Cluster view, netstacks and settings of one diagnosis.
#[derive(Debug)]
pub struct Facts {
    pub view: ClusterView,
    pub netstacks: Netstacks,
    pub settings: Settings,
}
