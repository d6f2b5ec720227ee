//! Everything a diagnosis knows, shared read-only by the engine and every
//! extension instance.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::cluster::ClusterView;
use crate::settings::Settings;
use skoop_netstack::{Conntrack, Netstacks};

/// Cluster view, netstacks and settings of one diagnosis.
#[derive(Debug)]
pub struct Facts {
    pub view: ClusterView,
    pub netstacks: Netstacks,
    pub settings: Settings,
    /// Each netns's conntrack for this diagnosis, by netns label: the request
    /// leaves its connections here and the reply finds them.
    pub conntrack: Mutex<BTreeMap<String, Conntrack>>,
}

impl Facts {
    pub fn new(view: ClusterView, netstacks: Netstacks, settings: Settings) -> Facts {
        Facts {
            view,
            netstacks,
            settings,
            conntrack: Mutex::default(),
        }
    }
}
