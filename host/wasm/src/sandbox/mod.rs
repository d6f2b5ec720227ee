//! The sandbox of every extension instance, in one place: what its store
//! may hold ([`Limits`]), how long one call may run (deadlines), a WASI that
//! grants nothing, a cloud provider's outbound HTTP ([`egress`]), and the
//! diagnosis' secret values, blanked from all an extension hands back
//! ([`Secrets`]).

mod deadline;
pub mod egress;
mod limits;
mod text;
mod wasi;

pub use deadline::TICK;
pub(crate) use deadline::start_epoch_ticker;
pub use limits::Limits;
pub use text::Secrets;
pub(crate) use text::{clean, escape};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::WasiCtxView;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView};

use deadline::Deadline;
use egress::Egress;
use limits::MemoryLimiter;
use skoop_engine::plugin::Failure;

/// The confinement of one store: its WASI and HTTP contexts and their
/// resources, the memory limiter, the captured stderr, the outbound HTTP
/// hooks, and the deadline of the call under way.
pub(crate) struct Sandbox {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    stderr: MemoryOutputPipe,
    egress: Egress,
    deadline: Deadline,
}

impl Sandbox {
    pub(crate) fn new(memory_bytes: usize, egress: Egress) -> Sandbox {
        let (wasi, stderr) = wasi::deny_all();
        Sandbox {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_bytes),
            stderr,
            egress,
            deadline: Deadline::default(),
        }
    }

    /// The sandbox of a re-created instance: the outbound HTTP wiring
    /// carries over; the contexts, their resources and the memory count
    /// start afresh.
    pub(crate) fn renew(&mut self) -> Sandbox {
        Sandbox::new(self.limiter.max, std::mem::take(&mut self.egress))
    }

    pub(crate) fn egress(&mut self) -> &mut Egress {
        &mut self.egress
    }

    /// The call's deadline has passed: the import ends the call.
    pub(crate) fn check_deadline(&mut self, import: &str) -> wasmtime::Result<()> {
        self.deadline.check(import)
    }

    pub(crate) fn wasi_view(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }

    pub(crate) fn http_view(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }

    /// What a call that ended in `e` ran into: the memory limit, its
    /// deadline, or a trap (with the extension's last words on stderr).
    pub(crate) fn failure(
        &self,
        limits: Limits,
        e: &wasmtime::Error,
        secrets: &Secrets,
    ) -> Failure {
        if self.limiter.exceeded {
            Failure::Memory(limits.memory_bytes)
        } else if self.deadline.hit() || matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            Failure::Timeout(limits.call_timeout)
        } else {
            let mut msg = match e.downcast_ref::<Trap>() {
                Some(t) => t.to_string(),
                None => format!("{e:#}"),
            };
            if let Some(line) = wasi::last_line(&self.stderr) {
                msg = format!("{msg} ({line})");
            }
            Failure::Trap(clean(secrets, &msg))
        }
    }
}

/// Store data with a sandbox.
pub(crate) trait Confined: 'static {
    fn sandbox(&mut self) -> &mut Sandbox;
}

/// A store for `data` held to `limits`: memory and table caps, and epoch
/// deadlines that trap.
pub(crate) fn store<T: Confined>(engine: &Engine, mut data: T, limits: Limits) -> Store<T> {
    data.sandbox().limiter.max = limits.memory_bytes;
    let mut store = Store::new(engine, data);
    store.limiter(|d| &mut d.sandbox().limiter);
    store.epoch_deadline_trap();
    store
}

/// Set the deadline of the next call: epoch ticks for guest code, an
/// instant for host imports and outbound HTTP.
pub(crate) fn arm<T: Confined>(store: &mut Store<T>, limits: Limits) {
    store.set_epoch_deadline(deadline::ticks(limits));
    let sandbox = store.data_mut().sandbox();
    let until = sandbox.deadline.arm(limits);
    sandbox.egress.deadline = Some(until);
}

/// The call is over: its deadline no longer holds.
pub(crate) fn disarm<T: Confined>(store: &mut Store<T>) {
    store.data_mut().sandbox().deadline.disarm();
}
