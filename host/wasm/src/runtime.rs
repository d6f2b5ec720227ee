//! The wasmtime engine and component compilation with an on-disk cache.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use skoop_error::bad_input;

/// The engine and its compile cache.
pub struct Runtime {
    pub engine: Engine,
    cache_dir: Option<PathBuf>,
    /// Why the cache directory is not used, or an entry was rejected.
    pub notices: std::sync::Mutex<Vec<String>>,
}

/// Marks a cache entry: the magic, then the SHA-256 of the native code.
const CACHE_MAGIC: &[u8; 8] = b"skoopc1\0";

/// Make sure the cache directory is private, for its files are loaded as
/// native code: created 0700 when missing; an existing one must belong to
/// this user. One that others could write is closed (chmod 700) and emptied,
/// which the returned note says; Err: not to be used.
fn private_dir(dir: &Path) -> std::result::Result<Option<String>, String> {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create it: {e}"))?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_dir() {
        return Err("it is not a directory".into());
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!("it belongs to uid {}, not to {me}", meta.uid()));
    }
    if meta.mode() & 0o077 == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("others may write it and it cannot be closed: {e}"))?;
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list it: {e}"))?;
    for entry in entries.flatten() {
        if entry.path().extension().is_some_and(|x| x == "cwasm") {
            std::fs::remove_file(entry.path()).map_err(|e| format!("cannot empty it: {e}"))?;
        }
    }
    Ok(Some(format!(
        "the compile cache {} was open to others (mode {:o}): closed to mode 700 and emptied",
        dir.display(),
        meta.mode() & 0o777
    )))
}

impl Runtime {
    /// An engine whose epoch ticks on a background thread, for the
    /// sandbox's call deadlines.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Runtime> {
        let engine = Engine::new(&crate::engine_config::config())
            .map_err(anyhow::Error::from)
            .context("creating the wasm engine")?;
        crate::sandbox::start_epoch_ticker(&engine).context("starting the epoch ticker")?;
        let mut notices = Vec::new();
        let cache_dir = cache_dir.filter(|dir| match private_dir(dir) {
            Ok(note) => {
                notices.extend(note);
                true
            }
            Err(why) => {
                notices.push(format!(
                    "the compile cache {} is not used: {why}",
                    dir.display()
                ));
                false
            }
        });
        Ok(Runtime {
            engine,
            cache_dir,
            notices: std::sync::Mutex::new(notices),
        })
    }

    fn notice(&self, n: String) {
        self.notices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(n);
    }

    /// The default cache directory: `$SKOOP_CACHE_DIR`, else the user's cache dir.
    pub fn default_cache_dir() -> Option<PathBuf> {
        std::env::var_os("SKOOP_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("skoop")))
    }

    fn cache_path(&self, bytes: &[u8]) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let mut h = DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        let digest = hex::encode(Sha256::digest(bytes));
        Some(dir.join(format!("{digest}-{:016x}.cwasm", h.finish())))
    }

    /// A built-in component: the native code compiled into the binary when
    /// it was made for this engine (same compatibility hash), else compiled
    /// as any other component.
    pub fn builtin(
        &self,
        label: &str,
        wasm: &[u8],
        native: Option<&[u8]>,
        built_for: u64,
    ) -> Result<Component> {
        if let Some(native) = native
            && built_for == crate::engine_config::compatibility(&self.engine)
        {
            // SAFETY: `native` is `Engine::precompile_component` output of
            // this very build (embedded by build.rs), for an engine with the
            // same configuration and compatibility hash as ours.
            if let Ok(c) = unsafe { Component::deserialize(&self.engine, native) } {
                return Ok(c);
            }
        }
        self.compile(label, wasm)
    }

    /// Compile a component, reusing the cached native code when there is one.
    /// `label` names the extension in errors.
    pub fn compile(&self, label: &str, bytes: &[u8]) -> Result<Component> {
        let cached = self.cache_path(bytes);
        if let Some(path) = &cached
            && path.is_file()
        {
            match read_cache(path) {
                // SAFETY: the native code is what `Component::serialize` of an
                // engine with the same compatibility hash (it is in the name)
                // wrote into our private cache, and its digest checks out.
                Ok(native) => {
                    if let Ok(c) = unsafe { Component::deserialize(&self.engine, &native) } {
                        return Ok(c);
                    }
                }
                Err(why) => {
                    let _ = std::fs::remove_file(path);
                    self.notice(format!(
                        "compile cache entry {} rejected ({why}); {label} compiled again",
                        path.display()
                    ));
                }
            }
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| bad_input(format!("{label}: not a valid component: {e:#}")))?;
        if let Some(path) = cached {
            // A cache that cannot be written only costs time.
            let _ = write_cache(&path, &component);
        }
        Ok(component)
    }
}

fn write_cache(path: &Path, component: &Component) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let native = component.serialize()?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(CACHE_MAGIC)?;
    f.write_all(&Sha256::digest(&native))?;
    f.write_all(&native)?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The native code of a cache entry, after its digest is checked.
fn read_cache(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let mut bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let head = CACHE_MAGIC.len() + 32;
    if bytes.len() < head || !bytes.starts_with(CACHE_MAGIC) {
        return Err("not a skoop cache entry".into());
    }
    if Sha256::digest(&bytes[head..]).as_slice() != &bytes[CACHE_MAGIC.len()..head] {
        return Err("its digest does not match its contents".into());
    }
    bytes.drain(..head);
    Ok(bytes)
}
