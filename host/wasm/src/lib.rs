//! Extensions: CNI plugins and cloud providers as sandboxed wasm components.
//! The built-in ones are embedded at build time; `--extension FILE` adds more
//! and a loaded one overrides a built-in of the same name.

pub mod bindings;
pub mod config;
mod convert;
mod engine_config;
pub mod hostcalls;
mod imports;
mod info;
pub mod inspect;
pub mod instance;
mod lending;
pub mod runtime;
pub mod sandbox;
mod state;

pub use bindings::{WIT_PACKAGE, WIT_VERSION};
pub use convert::settings_to;
pub use info::{ConfigKey, CredentialsFile, Info, Kind};
pub use lending::Lending;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use semver::Version;
use sha2::Digest as _;
use wasmtime::component::{Component, Linker};

use instance::{
    CniPre, PluginInstance, ProviderInstance, ProviderPre, cni_linker, provider_linker,
};
use runtime::Runtime;
use sandbox::{Limits, Secrets, clean};
use skoop_error::bad_input;
use state::HostState;

/// This host's own version, compared with an extension's `min-host-version`.
pub const HOST_VERSION: &str = env!("CARGO_PKG_VERSION");

mod builtin {
    /// A built-in extension, embedded by build.rs.
    pub struct Builtin {
        pub name: &'static str,
        /// The component.
        pub wasm: &'static [u8],
        /// Its native code for the engine of [`PRECOMPILED_FOR`], if precompiled.
        pub native: Option<&'static [u8]>,
    }

    include!(concat!(env!("OUT_DIR"), "/builtin_extensions.rs"));
}

/// Where an extension came from.
#[derive(Debug, Clone)]
pub enum Origin {
    BuiltIn,
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built-in"),
            Origin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A component linked against its world once, ready to instantiate.
#[derive(Clone)]
pub(crate) enum Linked {
    Cni(CniPre),
    Provider(ProviderPre),
}

/// A compiled, described extension.
pub struct Extension {
    pub info: Info,
    pub origin: Origin,
    pub component: Component,
    linked: Linked,
    /// Size of the component in bytes.
    pub size: usize,
    /// SHA-256 of the component, hex.
    pub sha256: String,
}

/// Every loaded extension, by kind and name.
pub struct Registry {
    pub runtime: Runtime,
    pub plugins: BTreeMap<String, Extension>,
    pub providers: BTreeMap<String, Extension>,
    cni_linker: Linker<HostState>,
    provider_linker: Linker<HostState>,
    /// The secret values of the extensions' config, blanked out of all
    /// they hand back and of recordings.
    secrets: Secrets,
    /// Overrides and other things the user should know.
    pub notices: Vec<String>,
}

/// `FILE@sha256:HEX` is FILE pinned to that digest (64 hex digits, either
/// case); anything else is a plain file name.
fn pinned(arg: &std::path::Path) -> (PathBuf, Option<String>) {
    let text = arg.to_string_lossy();
    if let Some((file, hex)) = text.rsplit_once("@sha256:")
        && hex.len() == 64
        && hex.chars().all(|c| c.is_ascii_hexdigit())
        && !file.is_empty()
    {
        return (PathBuf::from(file), Some(hex.to_ascii_lowercase()));
    }
    (arg.to_path_buf(), None)
}

/// The same `extension-info` record is generated once per world; both convert alike.
macro_rules! info_from {
    ($i:expr, $kind:expr, $secrets:expr) => {{
        let i = $i;
        let secrets: &Secrets = $secrets;
        let safe = |s: &str| clean(secrets, s);
        Info {
            name: safe(&i.name),
            kind: $kind,
            version: safe(&i.version),
            wit_version: safe(&i.wit_version),
            description: safe(&i.description),
            config: i
                .config
                .into_iter()
                .map(|c| ConfigKey {
                    name: safe(&c.name),
                    help: safe(&c.help),
                    default: c.default.as_deref().map(safe),
                    secret: c.secret,
                    env: c.env,
                    file: c.file.map(|f| CredentialsFile {
                        path: f.path,
                        path_env: f.path_env,
                        section_key: f.section_key,
                        key: f.key,
                    }),
                })
                .collect(),
            reads: i.reads,
            detect_daemonsets: i.detect_daemonsets,
            detect_objects: i.detect_objects,
            enforces: i.enforces,
            http_hosts: i.http_hosts,
            min_host_version: i.min_host_version.as_deref().map(safe),
        }
    }};
}

/// `x.y.z` of a versioned interface name `pkg/iface@x.y.z`.
fn version_of(name: &str) -> Option<&str> {
    name.split_once('@').map(|(_, v)| v)
}

/// Semver compatibility as the component model applies it: same major, or
/// for 0.x the same minor. A version that does not parse is incompatible.
fn compatible(ours: &str, theirs: &str) -> bool {
    let (Ok(a), Ok(b)) = (Version::parse(ours), Version::parse(theirs)) else {
        return false;
    };
    if a.major == 0 {
        b.major == 0 && a.minor == b.minor
    } else {
        a.major == b.major
    }
}

impl Registry {
    /// Load the built-ins, then `files` (later ones override earlier ones).
    pub fn load(runtime: Runtime, files: &[PathBuf]) -> Result<Registry> {
        let cni_linker = cni_linker(&runtime.engine).context("linking the CNI world")?;
        let provider_linker =
            provider_linker(&runtime.engine).context("linking the provider world")?;
        let mut reg = Registry {
            runtime,
            plugins: BTreeMap::new(),
            providers: BTreeMap::new(),
            cni_linker,
            provider_linker,
            secrets: Secrets::default(),
            notices: Vec::new(),
        };
        for b in builtin::BUILTINS {
            let label = format!("built-in extension {}", b.name);
            let component =
                reg.runtime
                    .builtin(&label, b.wasm, b.native, builtin::PRECOMPILED_FOR)?;
            let ext = reg
                .describe_component(&label, b.wasm, component, Origin::BuiltIn)
                .with_context(|| format!("loading built-in extension {}", b.name))?;
            reg.insert(ext);
        }
        for arg in files {
            let (file, pin) = pinned(arg);
            let label = format!("--extension {}", file.display());
            let bytes = std::fs::read(&file)
                .map_err(|e| bad_input(format!("{label}: cannot read it: {e}")))?;
            if let Some(pin) = pin {
                let actual = hex::encode(sha2::Sha256::digest(&bytes));
                if actual != pin {
                    return Err(bad_input(format!(
                        "{label}: its sha256 is {actual}, not the pinned {pin}; refusing to load it (a different build, or tampered with)"
                    )));
                }
            }
            let ext = reg.load_component(&label, &bytes, Origin::File(file.clone()))?;
            reg.insert(ext);
        }
        let cache = std::mem::take(
            &mut *reg
                .runtime
                .notices
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        reg.notices.extend(cache);
        Ok(reg)
    }

    fn insert(&mut self, ext: Extension) {
        let map = match ext.info.kind {
            Kind::CniPlugin => &mut self.plugins,
            Kind::CloudProvider => &mut self.providers,
        };
        if let Some(old) = map.get(&ext.info.name) {
            self.notices.push(format!(
                "extension {} {} from {} overrides the {} one ({})",
                ext.info.name, ext.info.version, ext.origin, old.origin, old.info.version
            ));
        }
        map.insert(ext.info.name.clone(), ext);
    }

    /// Check, compile and describe one component. Errors name `label`.
    pub fn load_component(&self, label: &str, bytes: &[u8], origin: Origin) -> Result<Extension> {
        if !bytes.starts_with(b"\0asm") {
            return Err(bad_input(format!("{label} is not a WebAssembly file")));
        }
        if wasmparser::Parser::is_core_wasm(bytes) {
            return Err(bad_input(format!(
                "{label} is a core WebAssembly module, not a component: build it with `cargo build --target wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
            )));
        }
        let component = self.runtime.compile(label, bytes)?;
        self.describe_component(label, bytes, component, origin)
    }

    /// Check a compiled component's contract version and kind, and describe it.
    fn describe_component(
        &self,
        label: &str,
        bytes: &[u8],
        component: Component,
        origin: Origin,
    ) -> Result<Extension> {
        let engine = &self.runtime.engine;
        let ty = component.component_type();
        let names: Vec<String> = ty
            .imports(engine)
            .map(|(n, _)| n.to_string())
            .chain(ty.exports(engine).map(|(n, _)| n.to_string()))
            .filter(|n| n.starts_with(WIT_PACKAGE))
            .collect();
        let Some(first) = names.first() else {
            return Err(bad_input(format!(
                "{label} is a component but not a skoop extension: it uses no {WIT_PACKAGE} interface"
            )));
        };
        let theirs = version_of(first).unwrap_or("?");
        if !compatible(WIT_VERSION, theirs) {
            return Err(bad_input(format!(
                "{label} was built for {WIT_PACKAGE}@{theirs}, but this skoop speaks {WIT_PACKAGE}@{WIT_VERSION}: rebuild it against skoop-sdk {WIT_VERSION}"
            )));
        }
        let exports = |iface: &str| {
            names
                .iter()
                .any(|n| n.starts_with(&format!("{WIT_PACKAGE}/{iface}@")))
        };
        let kind = if exports("plugin") {
            Kind::CniPlugin
        } else if exports("provider") {
            Kind::CloudProvider
        } else {
            return Err(bad_input(format!(
                "{label} exports neither {WIT_PACKAGE}/plugin nor {WIT_PACKAGE}/provider"
            )));
        };
        let limits = Limits::default();
        let state = HostState::new(
            label,
            Lending::default(),
            self.secrets.clone(),
            limits.memory_bytes,
        );
        let refuse = |e: anyhow::Error| bad_input(format!("{label}: cannot instantiate: {e:#}"));
        let (info, linked) = match kind {
            Kind::CniPlugin => {
                let pre = self
                    .cni_linker
                    .instantiate_pre(&component)
                    .map_err(|e| refuse(e.into()))
                    .and_then(|p| CniPre::new(p).map_err(|e| refuse(e.into())))?;
                let mut inst =
                    PluginInstance::new(engine, &pre, state, None, limits).map_err(refuse)?;
                let described = inst.describe().map_err(|e| bad_input(e.to_string()))?;
                let info = info_from!(described, kind, &self.secrets);
                (info, Linked::Cni(pre))
            }
            Kind::CloudProvider => {
                let pre = self
                    .provider_linker
                    .instantiate_pre(&component)
                    .map_err(|e| refuse(e.into()))
                    .and_then(|p| ProviderPre::new(p).map_err(|e| refuse(e.into())))?;
                let mut inst =
                    ProviderInstance::new(engine, &pre, state, limits).map_err(refuse)?;
                let described = inst.describe().map_err(|e| bad_input(e.to_string()))?;
                let info = info_from!(described, kind, &self.secrets);
                (info, Linked::Provider(pre))
            }
        };
        validate(label, &info)?;
        // The metadata section (read without running it) must say what
        // describe() says; built-ins are checked by their tests.
        if let Origin::File(_) = origin
            && let Ok(inspect::Inspection {
                metadata: Some(section),
                ..
            }) = inspect::inspect(bytes)
        {
            let differ = inspect::disagreements(&section, &info);
            if !differ.is_empty() {
                return Err(bad_input(format!(
                    "{label}: its {} section and its describe() disagree ({}); rebuild it",
                    inspect::SECTION,
                    differ.join("; ")
                )));
            }
        }
        Ok(Extension {
            info,
            origin,
            component,
            linked,
            size: bytes.len(),
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
        })
    }

    /// Every config key of every extension, with its owner.
    pub fn config_keys(&self) -> Vec<(&str, &ConfigKey)> {
        self.plugins
            .values()
            .chain(self.providers.values())
            .flat_map(|e| e.info.config.iter().map(move |k| (e.info.name.as_str(), k)))
            .collect()
    }

    /// Plugin name → what reveals it, for detection.
    pub fn detection(&self) -> BTreeMap<String, skoop_engine::detect::Reveals> {
        self.plugins
            .values()
            .map(|e| {
                let reveals = skoop_engine::detect::Reveals {
                    daemonsets: e.info.detect_daemonsets.clone(),
                    objects: e.info.detect_objects.clone(),
                };
                (e.info.name.clone(), reveals)
            })
            .collect()
    }

    /// The secret values of every extension instantiated so far.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// The store data of an instance of `ext`, lent `lending`.
    fn state(&self, ext: &Extension, lending: Lending, limits: Limits) -> HostState {
        HostState::new(
            &ext.info.name,
            lending,
            self.secrets.clone(),
            limits.memory_bytes,
        )
    }

    /// Instantiate a plugin for a diagnosis; `underlay` is the cloud provider
    /// whose underlay export answers for the underlay, if it has one.
    pub fn plugin(
        &self,
        ext: &Extension,
        lending: Lending,
        underlay: Option<ProviderInstance>,
        limits: Limits,
    ) -> Result<PluginInstance> {
        let Linked::Cni(pre) = &ext.linked else {
            return Err(bad_input(format!("{} is not a CNI plugin", ext.info.name)));
        };
        let state = self.state(ext, lending, limits);
        PluginInstance::new(&self.runtime.engine, pre, state, underlay, limits)
            .with_context(|| format!("instantiating extension {}", ext.info.name))
    }

    /// Instantiate a provider for a diagnosis.
    pub fn provider(
        &self,
        ext: &Extension,
        lending: Lending,
        limits: Limits,
    ) -> Result<ProviderInstance> {
        let Linked::Provider(pre) = &ext.linked else {
            return Err(bad_input(format!(
                "{} is not a cloud provider",
                ext.info.name
            )));
        };
        let state = self.state(ext, lending, limits);
        ProviderInstance::new(&self.runtime.engine, pre, state, limits)
            .with_context(|| format!("instantiating extension {}", ext.info.name))
    }
}

/// Names must be usable as registry keys and flag prefixes.
fn validate(label: &str, info: &Info) -> Result<()> {
    let ok_name = !info.name.is_empty()
        && info
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok_name {
        return Err(bad_input(format!(
            "{label} declares the name {:?}; names are lower-case letters, digits and dashes",
            info.name
        )));
    }
    for key in &info.config {
        if !key.name.starts_with(&format!("{}-", info.name)) {
            return Err(bad_input(format!(
                "{label}: config key {:?} must start with the extension's name ({}-...)",
                key.name, info.name
            )));
        }
    }
    if let Some(min) = &info.min_host_version {
        let Ok(wanted) = Version::parse(min) else {
            return Err(bad_input(format!(
                "{label} declares the minimum host version {min:?}, which is not x.y.z"
            )));
        };
        let ours = Version::parse(HOST_VERSION).expect("the crate version is semver");
        if wanted > ours {
            return Err(bad_input(format!(
                "{label} ({} {}) needs skoop {wanted} or newer, but this is skoop {ours}: upgrade skoop, or use an older release of the extension",
                info.name, info.version
            )));
        }
    }
    if !info.http_hosts.is_empty() && info.kind != Kind::CloudProvider {
        return Err(bad_input(format!(
            "{label} declares HTTP hosts, but only cloud providers may send HTTP requests"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(compatible("0.1.0", "0.1.3"));
        assert!(!compatible("0.1.0", "0.2.0"));
        assert!(!compatible("0.3.0", "0.2.0"));
        assert!(!compatible("0.4.0", "0.3.0"));
        assert!(!compatible("0.5.0", "0.4.0"));
        assert!(!compatible("0.1.0", "1.0.0"));
        assert!(compatible("1.2.0", "1.0.0"));
        assert!(!compatible("1.2.0", "2.0.0"));
        assert!(!compatible("0.1.0", "0.1"));
        assert!(!compatible("0.1.0", "?"));
        assert_eq!(version_of("skoop:extension/plugin@0.1.0"), Some("0.1.0"));
    }

    fn info(min_host_version: Option<&str>, http_hosts: &[&str], kind: Kind) -> Info {
        Info {
            name: "x".into(),
            kind,
            version: "1.0.0".into(),
            wit_version: WIT_VERSION.into(),
            description: String::new(),
            config: vec![],
            reads: vec![],
            detect_daemonsets: vec![],
            detect_objects: vec![],
            enforces: vec![],
            http_hosts: http_hosts.iter().map(|h| h.to_string()).collect(),
            min_host_version: min_host_version.map(str::to_string),
        }
    }

    #[test]
    fn an_extension_needing_a_newer_host_is_refused_naming_both_versions() {
        assert!(validate("x.wasm", &info(Some(HOST_VERSION), &[], Kind::CniPlugin)).is_ok());
        let e = validate("x.wasm", &info(Some("99.0.0"), &[], Kind::CniPlugin))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("needs skoop 99.0.0 or newer")
                && e.contains(&format!("this is skoop {HOST_VERSION}")),
            "{e}"
        );
        let e = validate("x.wasm", &info(Some("soon"), &[], Kind::CniPlugin)).unwrap_err();
        assert!(e.to_string().contains("not x.y.z"), "{e}");
    }

    #[test]
    fn only_providers_may_declare_http_hosts() {
        assert!(validate("x.wasm", &info(None, &["*.example"], Kind::CloudProvider)).is_ok());
        let e = validate("x.wasm", &info(None, &["*.example"], Kind::CniPlugin)).unwrap_err();
        assert!(e.to_string().contains("only cloud providers"), "{e}");
    }
}
