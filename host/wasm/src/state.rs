//! The store data of one extension instance: a WASI context that grants
//! nothing (no files, sockets, environment or arguments), the memory limiter,
//! captured stderr, and what the host lends this extension.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::egress::Egress;

use super::instance::ProviderInstance;
use super::runtime::MemoryLimiter;
use skoop_engine::facts::Facts;

/// Bytes of an extension's stderr kept for error reports (panic messages).
const STDERR_CAPACITY: usize = 64 << 10;

/// Store data of one extension instance.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub stderr: MemoryOutputPipe,
    /// The extension's registry name, for logs.
    pub name: String,
    /// The diagnosis' facts; `None` while only metadata is read.
    pub facts: Option<Arc<Facts>>,
    /// This extension's config values (flags, else defaults).
    pub config: BTreeMap<String, String>,
    /// Kinds it may read, as `apiVersion/Kind`.
    pub reads: Vec<String>,
    /// The provider whose infra-shim answers `infra` calls.
    pub infra: Option<Arc<Mutex<ProviderInstance>>>,
    /// Print `log` calls to stderr.
    pub verbose: bool,
    /// The policy evaluator, built on the first `policy.evaluate` call.
    pub policy: Option<Arc<skoop_engine::policy::PolicyCheck>>,
    http: WasiHttpCtx,
    /// Outbound HTTP of a cloud provider: refused unless configured.
    pub egress: Egress,
    /// Host calls being recorded or replayed.
    pub calls: Option<super::hostcalls::CallLog>,
    /// When the current call into the extension must end; imports check it.
    pub deadline: Option<std::time::Instant>,
    /// An import found the deadline passed (the call timed out in the host).
    pub deadline_hit: bool,
    /// Imports answered (the benchmark's per-import figure).
    pub import_calls: u64,
}

impl HostState {
    pub fn new(name: &str, memory_bytes: usize) -> HostState {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let mut b = WasiCtx::builder();
        b.stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        HostState {
            wasi: b.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_bytes),
            stderr,
            name: name.to_string(),
            facts: None,
            config: BTreeMap::new(),
            reads: Vec::new(),
            infra: None,
            verbose: false,
            policy: None,
            http: WasiHttpCtx::new(),
            egress: Egress::default(),
            calls: None,
            deadline: None,
            deadline_hit: false,
            import_calls: 0,
        }
    }

    /// The state of a re-created instance: what the host lends it and how
    /// (facts, config, egress, recording) carries over; the WASI context,
    /// its resources and the memory count start afresh.
    pub fn renew(&mut self) -> HostState {
        let mut s = HostState::new(&self.name, self.limiter.max);
        s.facts = self.facts.clone();
        s.config = std::mem::take(&mut self.config);
        s.reads = std::mem::take(&mut self.reads);
        s.infra = self.infra.take();
        s.verbose = self.verbose;
        s.policy = self.policy.take();
        s.egress = std::mem::take(&mut self.egress);
        s.calls = self.calls.take();
        s.import_calls = self.import_calls;
        s
    }

    /// What the extension last said on stderr: its panic message when it
    /// panicked, else its last non-empty line.
    pub fn last_stderr_line(&self) -> Option<String> {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if let Some(i) = lines.iter().rposition(|l| l.contains("panicked at")) {
            let at = lines[i]
                .split_once("panicked at")
                .map(|(_, r)| r.trim())
                .unwrap_or("");
            let msg = lines.get(i + 1).copied().unwrap_or("");
            return Some(format!("panicked at {at} {msg}").trim().to_string());
        }
        lines.last().map(|l| l.to_string())
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}
