//! What the host lends one extension instance for a diagnosis.

use std::collections::BTreeMap;
use std::sync::Arc;

use skoop_engine::facts::Facts;

use crate::hostcalls::CallLog;
use crate::sandbox::egress::Egress;

/// What one extension instance is lent: handed over at instantiation, and
/// carried over when a failed instance is re-created.
#[derive(Default)]
pub struct Lending {
    /// The diagnosis' facts; None: the extension is only described.
    pub facts: Option<Arc<Facts>>,
    /// Its config values (flags, else environment, file or defaults).
    pub config: BTreeMap<String, String>,
    /// The values among `config` of keys declared secret: blanked out of
    /// everything any extension of the registry hands back or is recorded.
    pub secrets: Vec<String>,
    /// Kinds it may read, as `apiVersion/Kind`.
    pub reads: Vec<String>,
    /// Print its `log` calls to stderr.
    pub verbose: bool,
    /// A cloud provider's outbound HTTP: refused unless configured.
    pub egress: Egress,
    /// Its host calls, recorded or answered from a recording.
    pub calls: Option<CallLog>,
}
