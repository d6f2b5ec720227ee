//! What a component file declares, read without compiling or running it:
//! its `skoop:metadata` custom section (written by the SDK's export macros),
//! the interfaces it imports and exports, its size and digest.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmparser::{Parser, Payload};

use crate::bindings::WIT_PACKAGE;
use crate::info::{ConfigKey, CredentialsFile, Info, Kind};
use crate::sandbox::escape;

/// The custom section the SDK writes.
pub const SECTION: &str = "skoop:metadata";

/// A component file, as read statically.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub size: usize,
    pub sha256: String,
    /// From the exports: which world it implements.
    pub kind: Option<Kind>,
    /// From the versioned interface names.
    pub wit_version: Option<String>,
    /// The metadata section; None: the component has none (an older SDK).
    pub metadata: Option<Info>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

#[derive(Deserialize)]
struct SectionFile {
    path: String,
    path_env: Option<String>,
    section_key: Option<String>,
    key: String,
}

#[derive(Deserialize)]
struct SectionKey {
    name: String,
    #[serde(default)]
    help: String,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    secret: bool,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    file: Option<SectionFile>,
}

#[derive(Deserialize)]
struct Section {
    name: String,
    version: String,
    wit_version: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    config: Vec<SectionKey>,
    #[serde(default)]
    reads: Vec<String>,
    #[serde(default)]
    detect_daemonsets: Vec<String>,
    #[serde(default)]
    detect_objects: Vec<String>,
    #[serde(default)]
    enforces: Vec<String>,
    #[serde(default)]
    http_hosts: Vec<String>,
    #[serde(default)]
    min_host_version: Option<String>,
}

fn info_of(s: Section, kind: Kind) -> Info {
    Info {
        name: escape(&s.name),
        kind,
        version: escape(&s.version),
        wit_version: escape(&s.wit_version),
        description: escape(&s.description),
        config: s
            .config
            .into_iter()
            .map(|k| ConfigKey {
                name: escape(&k.name),
                help: escape(&k.help),
                default: k.default.as_deref().map(escape),
                secret: k.secret,
                env: k.env,
                file: k.file.map(|f| CredentialsFile {
                    path: f.path,
                    path_env: f.path_env,
                    section_key: f.section_key,
                    key: f.key,
                }),
            })
            .collect(),
        reads: s.reads,
        detect_daemonsets: s.detect_daemonsets,
        detect_objects: s.detect_objects,
        enforces: s.enforces,
        http_hosts: s.http_hosts,
        min_host_version: s.min_host_version.as_deref().map(escape),
    }
}

/// Read `bytes` (a component) without compiling it. Err: not a readable
/// component, or a metadata section that is not the SDK's JSON.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, String> {
    if !bytes.starts_with(b"\0asm") {
        return Err("not a WebAssembly file".into());
    }
    if Parser::is_core_wasm(bytes) {
        return Err("a core WebAssembly module, not a component".into());
    }
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut section: Option<&[u8]> = None;
    // Nesting of modules and components inside the top-level component.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("malformed component: {e}"))? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(r) if depth == 0 => {
                for i in r {
                    let i = i.map_err(|e| format!("malformed import: {e}"))?;
                    imports.push(i.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(r) if depth == 0 => {
                for e in r {
                    let e = e.map_err(|e| format!("malformed export: {e}"))?;
                    exports.push(e.name.name.to_string());
                }
            }
            Payload::CustomSection(c) if c.name() == SECTION && !c.data().is_empty() => {
                section = Some(c.data());
            }
            _ => {}
        }
    }
    let ours = |n: &&String| n.starts_with(WIT_PACKAGE);
    let wit_version = imports
        .iter()
        .chain(&exports)
        .find(ours)
        .and_then(|n| n.split_once('@').map(|(_, v)| v.to_string()));
    let exported = |iface: &str| {
        exports
            .iter()
            .any(|n| n.starts_with(&format!("{WIT_PACKAGE}/{iface}@")))
    };
    let kind = if exported("plugin") {
        Some(Kind::CniPlugin)
    } else if exported("provider") {
        Some(Kind::CloudProvider)
    } else {
        None
    };
    let metadata = match (section, kind) {
        (Some(data), Some(kind)) => {
            let s: Section = serde_json::from_slice(data)
                .map_err(|e| format!("its {SECTION} section is not the SDK's metadata: {e}"))?;
            Some(info_of(s, kind))
        }
        _ => None,
    };
    Ok(Inspection {
        size: bytes.len(),
        sha256: hex::encode(Sha256::digest(bytes)),
        kind,
        wit_version,
        metadata,
        imports,
        exports,
    })
}

/// Where `describe()` and the section disagree, one phrase each.
pub fn disagreements(section: &Info, described: &Info) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{what}: section {a}, describe() {b}"));
        }
    };
    check("name", section.name.clone(), described.name.clone());
    check(
        "version",
        section.version.clone(),
        described.version.clone(),
    );
    check(
        "config keys",
        format!(
            "{:?}",
            section
                .config
                .iter()
                .map(|k| (&k.name, k.secret))
                .collect::<Vec<_>>()
        ),
        format!(
            "{:?}",
            described
                .config
                .iter()
                .map(|k| (&k.name, k.secret))
                .collect::<Vec<_>>()
        ),
    );
    check(
        "reads",
        format!("{:?}", section.reads),
        format!("{:?}", described.reads),
    );
    check(
        "http hosts",
        format!("{:?}", section.http_hosts),
        format!("{:?}", described.http_hosts),
    );
    check(
        "enforces",
        format!("{:?}", section.enforces),
        format!("{:?}", described.enforces),
    );
    out
}
