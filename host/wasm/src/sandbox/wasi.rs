//! The WASI an extension gets: nothing (no files, sockets, name lookups,
//! environment or arguments) but a stderr the host captures for its error
//! reports.

use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// Bytes of an extension's stderr kept for error reports (panic messages).
const STDERR_CAPACITY: usize = 64 << 10;

/// A WASI context that grants nothing, and the pipe its stderr goes to.
pub(crate) fn deny_all() -> (WasiCtx, MemoryOutputPipe) {
    let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
    let mut b = WasiCtx::builder();
    b.stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    (b.build(), stderr)
}

/// What the extension last said on stderr: its panic message when it
/// panicked, else its last non-empty line.
pub(crate) fn last_line(stderr: &MemoryOutputPipe) -> Option<String> {
    let bytes = stderr.contents();
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
