//! The wasmtime engine: component compilation with an on-disk cache, the
//! epoch ticker behind per-call deadlines, and per-store memory limits.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, ResourceLimiter};

use skoop_engine::error::bad_input;

/// How often the engine's epoch advances; deadlines are counted in ticks.
pub const TICK: Duration = Duration::from_millis(10);

/// Resource limits of every extension store.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Linear memory a store may grow to, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call from the host into an extension.
    pub call_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            call_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// The deadline of one call, in epoch ticks.
    pub fn ticks(&self) -> u64 {
        (self.call_timeout.as_millis() / TICK.as_millis()).max(1) as u64
    }
}

/// Refuses memory growth past the limit and remembers that it did, so the
/// resulting trap can be reported as a memory overrun.
#[derive(Debug)]
pub struct MemoryLimiter {
    pub max: usize,
    pub exceeded: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.exceeded = true;
            wasmtime::bail!("memory limit of {} MiB exceeded", self.max >> 20);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// The engine and its compile cache.
pub struct Runtime {
    pub engine: Engine,
    cache_dir: Option<PathBuf>,
}

impl Runtime {
    /// An engine with epoch interruption, ticking on a background thread.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Runtime> {
        let engine = Engine::new(&crate::engine_config::config())
            .map_err(anyhow::Error::from)
            .context("creating the wasm engine")?;
        let ticker = engine.clone();
        std::thread::Builder::new()
            .name("skoop-epoch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(TICK);
                    ticker.increment_epoch();
                }
            })
            .context("starting the epoch ticker")?;
        Ok(Runtime { engine, cache_dir })
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
        if let Some(path) = self.cache_path(bytes)
            && path.is_file()
        {
            // SAFETY: the file was written by `Component::serialize` of an
            // engine with the same compatibility hash (it is in the name).
            if let Ok(c) = unsafe { Component::deserialize_file(&self.engine, &path) } {
                return Ok(c);
            }
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| bad_input(format!("{label}: not a valid component: {e:#}")))?;
        if let Some(path) = self.cache_path(bytes) {
            // A cache that cannot be written only costs time.
            let _ = write_cache(&path, &component);
        }
        Ok(component)
    }
}

fn write_cache(path: &Path, component: &Component) -> Result<()> {
    let dir = path.parent().context("cache path has a parent")?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, component.serialize()?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
