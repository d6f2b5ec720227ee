//! Wall time and peak RSS of one child process, from the kernel's own
//! accounting (`wait4`'s rusage), not estimated.
//!
//! The measured command is started by a fresh copy of this binary
//! (`--rusage-of`): a child's `ru_maxrss` counts the memory of the process
//! it was forked from (exec records the old address space's high-water
//! mark), so a child of the benchmark, which holds generated clusters, would
//! report the benchmark's size rather than its own.

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One run of a command.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub wall: Duration,
    /// Peak resident set size in bytes.
    pub peak_rss: u64,
    /// CPU time (user + system) of the process itself: in live mode the
    /// rest of the wall time is spent waiting for the API server.
    pub cpu: Duration,
    pub code: i32,
}

/// Run `cmd` to completion, its stdout discarded and its stderr kept in
/// `stderr_to` (for the message when it fails).
pub fn run(cmd: &mut Command, stderr_to: &std::path::Path) -> Result<Run, String> {
    let me = std::env::current_exe().map_err(|e| format!("this benchmark's path: {e}"))?;
    let mut helper = Command::new(me);
    helper
        .arg(RUSAGE_OF)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => helper.env(k, v),
            None => helper.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        helper.current_dir(dir);
    }
    let err = File::create(stderr_to).map_err(|e| format!("{}: {e}", stderr_to.display()))?;
    let out = helper
        .stderr(Stdio::from(err))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text.split_whitespace().map(str::parse::<u64>);
    match (f.next(), f.next(), f.next(), f.next()) {
        (Some(Ok(wall_ns)), Some(Ok(peak_rss)), Some(Ok(cpu_ns)), Some(Ok(code))) => Ok(Run {
            wall: Duration::from_nanos(wall_ns),
            peak_rss,
            cpu: Duration::from_nanos(cpu_ns),
            code: code as i32,
        }),
        _ => Err(format!("{cmd:?}: the measuring helper said {text:?}")),
    }
}

/// The helper's flag: `BENCH --rusage-of PROGRAM ARGS…` runs the program
/// and prints its wall time (ns), peak RSS (bytes), CPU time (ns) and exit code.
pub const RUSAGE_OF: &str = "--rusage-of";

/// The helper: measure the command in `args` (its output discarded).
pub fn rusage_of(args: &[String]) -> Result<(), String> {
    let (program, rest) = args.split_first().ok_or("--rusage-of needs a command")?;
    let mut cmd = Command::new(program);
    cmd.args(rest);
    let r = measure(&mut cmd)?;
    println!(
        "{} {} {} {}",
        r.wall.as_nanos(),
        r.peak_rss,
        r.cpu.as_nanos(),
        u32::try_from(r.code).unwrap_or(255)
    );
    Ok(())
}

/// Spawn and wait for `cmd`, stdout discarded, stderr inherited.
fn measure(cmd: &mut Command) -> Result<Run, String> {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data the kernel fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own un-reaped child; both pointers are valid.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if r != pid {
        return Err(format!(
            "wait4 {cmd:?}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    Ok(Run {
        wall,
        peak_rss: (usage.ru_maxrss as u64) * 1024,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        code,
    })
}

/// The fastest of `n` runs (its peak RSS is the largest seen, its CPU time
/// the least).
pub fn best_of(
    n: u32,
    mut make: impl FnMut() -> Command,
    stderr_to: &std::path::Path,
    ok: &[i32],
) -> Result<Run, String> {
    let mut best: Option<Run> = None;
    for _ in 0..n {
        let mut cmd = make();
        let r = run(&mut cmd, stderr_to)?;
        if !ok.contains(&r.code) {
            let msg = std::fs::read_to_string(stderr_to).unwrap_or_default();
            return Err(format!("{cmd:?} exited {}: {msg}", r.code));
        }
        best = Some(match best {
            None => r,
            Some(b) => b.best(r),
        });
    }
    best.ok_or_else(|| "no runs".to_string())
}

impl Run {
    /// The best time and the highest peak of two runs of one command.
    pub fn best(self, r: Run) -> Run {
        Run {
            wall: self.wall.min(r.wall),
            peak_rss: self.peak_rss.max(r.peak_rss),
            cpu: self.cpu.min(r.cpu),
            code: r.code,
        }
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}
