//! An extension's self-description: what it is, the config keys it
//! accepts, what it reads, detects, enforces and may reach.

use serde::Serialize;

/// What an extension provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    CniPlugin,
    CloudProvider,
}

/// A config key an extension accepts (`--<name>`).
#[derive(Debug, Clone, Serialize)]
pub struct ConfigKey {
    pub name: String,
    pub help: String,
    pub default: Option<String>,
    /// A credential: never logged, echoed or recorded.
    pub secret: bool,
    /// Environment variables that give the value when the flag is absent.
    pub env: Vec<String>,
    /// A credentials file that gives it as a last resort.
    pub file: Option<CredentialsFile>,
}

/// A value in an INI-style credentials file (`~/.aws/credentials`).
#[derive(Debug, Clone, Serialize)]
pub struct CredentialsFile {
    pub path: String,
    pub path_env: Option<String>,
    pub section_key: Option<String>,
    pub key: String,
}

/// An extension's self-description.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub name: String,
    pub kind: Kind,
    pub version: String,
    pub wit_version: String,
    pub description: String,
    pub config: Vec<ConfigKey>,
    pub reads: Vec<String>,
    pub detect_daemonsets: Vec<String>,
    /// Kinds (`apiVersion/Kind`) whose presence reveals the CNI plugin.
    pub detect_objects: Vec<String>,
    /// Policy kinds a CNI plugin enforces (`apiVersion/Kind`); empty: none.
    pub enforces: Vec<String>,
    /// Hosts a cloud provider may send HTTP requests to (globs).
    pub http_hosts: Vec<String>,
    /// The oldest host version it works with.
    pub min_host_version: Option<String>,
}
