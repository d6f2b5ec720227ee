//! Everything a diagnosis knows, shared read-only by the engine and every
//! extension instance.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::cluster::ClusterView;
use crate::netstack::{Conntrack, Netstacks};
use crate::path::Decision;
use crate::settings::Settings;

/// Cluster view, netstacks and settings of one diagnosis.
#[derive(Debug)]
pub struct Facts {
    pub view: ClusterView,
    pub netstacks: Netstacks,
    pub settings: Settings,
    /// Each netns's conntrack for this diagnosis, by netns label: the request
    /// leaves its connections here and the reply finds them.
    pub conntrack: Mutex<BTreeMap<String, Conntrack>>,
    /// What the kernel pipeline decided since the engine last took them: the
    /// host's `forward` import logs here, the engine files them under the hop
    /// being evaluated.
    pub decisions: Mutex<Vec<Decision>>,
}

impl Facts {
    pub fn new(view: ClusterView, netstacks: Netstacks, settings: Settings) -> Facts {
        Facts {
            view,
            netstacks,
            settings,
            conntrack: Mutex::default(),
            decisions: Mutex::default(),
        }
    }

    pub fn log_decisions(&self, d: Vec<Decision>) {
        // A poisoned lock only means another call panicked; the log is still usable.
        self.decisions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(d);
    }

    pub fn take_decisions(&self) -> Vec<Decision> {
        std::mem::take(
            &mut *self
                .decisions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}
