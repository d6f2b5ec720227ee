//! What one extension's store may hold: linear memory (all memories of the
//! instance together), instances, tables, and the time one call may take.

use std::time::Duration;

use wasmtime::ResourceLimiter;

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
pub(crate) struct MemoryLimiter {
    pub(crate) max: usize,
    /// Bytes of every linear memory of the store, together.
    pub(crate) used: usize,
    pub(crate) exceeded: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(max: usize) -> MemoryLimiter {
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

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::Engine;
    use wasmtime::component::Component;

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
