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

/// Caps on what one extension instance may create: a component nests core
/// instances, each with its memories and tables.
const MAX_INSTANCES: usize = 64;
const MAX_MEMORIES: usize = 16;
const MAX_TABLES: usize = 64;
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Refuses memory growth that would take the store's memories, summed,
/// past the limit (one component may hold several memories), and remembers
/// that it did, so the resulting trap can be reported as a memory overrun.
#[derive(Debug)]
pub struct MemoryLimiter {
    pub max: usize,
    /// Bytes of every linear memory of the store, together.
    pub used: usize,
    pub exceeded: bool,
}

impl MemoryLimiter {
    pub fn new(max: usize) -> MemoryLimiter {
        MemoryLimiter {
            max,
            used: 0,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if total > self.max {
            self.exceeded = true;
            wasmtime::bail!(
                "memory limit of {} MiB exceeded (all memories of the instance together)",
                self.max >> 20
            );
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_limit_counts_every_memory_of_the_instance() {
        const MIB: usize = 1 << 20;
        let mut l = MemoryLimiter::new(8 * MIB);
        // Two memories created at 3 MiB each: 6 MiB in all.
        assert!(l.memory_growing(0, 3 * MIB, None).unwrap());
        assert!(l.memory_growing(0, 3 * MIB, None).unwrap());
        // The first grows to 5 MiB: 8 MiB in all, at the limit.
        assert!(l.memory_growing(3 * MIB, 5 * MIB, None).unwrap());
        assert!(!l.exceeded);
        // The second may not grow by one more page, though it alone is 3 MiB.
        assert!(l.memory_growing(3 * MIB, 3 * MIB + 65536, None).is_err());
        assert!(l.exceeded);
        assert_eq!(l.used, 8 * MIB);
    }

    #[test]
    fn instances_memories_and_tables_are_capped() {
        let l = MemoryLimiter::new(1 << 20);
        assert_eq!(
            (l.instances(), l.memories(), l.tables()),
            (MAX_INSTANCES, MAX_MEMORIES, MAX_TABLES)
        );
    }

    /// A component whose two core instances each own a memory: one may grow
    /// alone within the limit, but not both together.
    #[test]
    fn a_component_with_two_memories_is_held_to_one_limit() {
        use wasm_encoder::{
            CodeSection, ComponentBuilder, ComponentExportKind, ExportKind, ExportSection,
            Function, FunctionSection, MemorySection, MemoryType, Module, PrimitiveValType,
            TypeSection, ValType,
        };
        const MIB: usize = 1 << 20;
        // A core module with one memory and `grow(pages) -> old size`.
        let mut m = Module::new();
        let mut types = TypeSection::new();
        types.ty().function([ValType::I32], [ValType::I32]);
        m.section(&types);
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        m.section(&funcs);
        let mut mems = MemorySection::new();
        mems.memory(MemoryType {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        m.section(&mems);
        let mut exports = ExportSection::new();
        exports.export("grow", ExportKind::Func, 0);
        m.section(&exports);
        let mut code = CodeSection::new();
        let mut f = Function::new([]);
        f.instructions().local_get(0).memory_grow(0).end();
        code.function(&f);
        m.section(&code);

        let mut c = ComponentBuilder::default();
        let module = c.core_module(None, &m);
        let (ty, mut enc) = c.type_function(None);
        enc.params([("pages", PrimitiveValType::U32)])
            .result(Some(PrimitiveValType::S32.into()));
        for name in ["grow-a", "grow-b"] {
            let inst = c.core_instantiate(None, module, []);
            let core = c.core_alias_export(None, inst, "grow", ExportKind::Func);
            let lifted = c.lift_func(None, core, ty, []);
            c.export(name, ComponentExportKind::Func, lifted, None);
        }
        let bytes = c.finish();

        let engine = Engine::new(&crate::engine_config::config()).unwrap();
        let component = Component::new(&engine, &bytes).unwrap();
        let mut store = wasmtime::Store::new(&engine, MemoryLimiter::new(4 * MIB));
        store.limiter(|l| l);
        store.set_epoch_deadline(u64::MAX / 2);
        let linker = wasmtime::component::Linker::new(&engine);
        let instance = linker.instantiate(&mut store, &component).unwrap();
        assert_eq!(store.data().used, 2 * 65536, "both initial memories count");
        let grow = |store: &mut wasmtime::Store<MemoryLimiter>, name: &str, pages: u32| {
            let f = instance
                .get_typed_func::<(u32,), (i32,)>(&mut *store, name)
                .unwrap();
            f.call(&mut *store, (pages,)).map(|r| r.0)
        };
        // 40 pages (2.5 MiB) in the first memory: 2.56 MiB in all.
        assert_eq!(grow(&mut store, "grow-a", 40).unwrap(), 1);
        assert!(!store.data().exceeded);
        // The second memory alone would stay under 4 MiB; both would not.
        let e = grow(&mut store, "grow-b", 40).unwrap_err();
        assert!(store.data().exceeded, "{e:#}");
        assert!(format!("{e:#}").contains("memory limit of 4 MiB"), "{e:#}");
    }
}
