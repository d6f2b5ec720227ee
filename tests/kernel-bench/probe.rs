//! Asking the kernel: small servers inside pod/node netns, and real TCP
//! connects / UDP exchanges from a source netns.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};

use super::sh;

/// How long the kernel gets to complete a UDP exchange.
pub const TIMEOUT: Duration = Duration::from_millis(1500);

/// How long a TCP connect may take: less than the first SYN retransmission
/// (1 s). A SYN dropped before conntrack confirmed its entry (a blackhole
/// route after DNAT) leaves no entry behind, so the retransmitted SYN is
/// NATed afresh and may reach another Service backend: a connect that waited
/// for it would measure "some backend answers", not "this one does" (seen:
/// all 12 connects of a probe succeeding through a blackholed backend in
/// about one run in ten).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(900);

/// Run `job` on a thread inside netns `/run/netns/NAME`.
pub fn in_netns<T: Send + 'static>(
    name: &str,
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let path = format!("/run/netns/{name}");
    let file = File::open(&path).map_err(|e| format!("opening {path}: {e}"))?;
    std::thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns {path}: {e}"))?;
        Ok(job())
    })
    .join()
    .map_err(|_| "netns thread panicked".to_string())?
}

/// How much a bulk transfer sends each way: some 200 full-size segments, so
/// that a path MTU below the source's shows (the first segments are dropped
/// or answered with ICMP fragmentation-needed) and PMTU discovery must work
/// for the transfer to complete.
pub const BULK_BYTES: usize = 300 * 1024;

/// How long a bulk transfer may take, connect included. Healthy transfers
/// here take milliseconds, one that PMTU discovery rescues a few more (the
/// ICMP error triggers an immediate retransmission); a black-holed one
/// backs off from a 200 ms RTO and never completes.
pub const BULK_TIMEOUT: Duration = Duration::from_secs(5);

/// A small exchange on each of many connections (ECMP): enough to carry
/// data past the handshake, which a transit node seeing one direction only
/// lets through while it drops the rest as conntrack-INVALID.
pub const SPREAD_BYTES: usize = 16 * 1024;
pub const SPREAD_TIMEOUT: Duration = Duration::from_secs(1);

/// Listeners on TCP and UDP ports, served by one polling thread until
/// dropped. TCP connections are echoed (what arrives is sent back, and the
/// connection closed after the peer's FIN once all is sent); UDP datagrams
/// are echoed.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(netns: &str, tcp: &[u16], udp: &[u16]) -> Result<Self, String> {
        let (tcp, udp) = (tcp.to_vec(), udp.to_vec());
        let sockets = in_netns(netns, move || -> Result<_, String> {
            let t: Vec<TcpListener> = tcp
                .iter()
                .map(|p| {
                    TcpListener::bind(("0.0.0.0", *p)).map_err(|e| format!("bind tcp {p}: {e}"))
                })
                .collect::<Result<_, _>>()?;
            let u: Vec<UdpSocket> = udp
                .iter()
                .map(|p| UdpSocket::bind(("0.0.0.0", *p)).map_err(|e| format!("bind udp {p}: {e}")))
                .collect::<Result<_, _>>()?;
            for s in &t {
                s.set_nonblocking(true).map_err(|e| e.to_string())?;
            }
            for s in &u {
                s.set_nonblocking(true).map_err(|e| e.to_string())?;
            }
            Ok((t, u))
        })??;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || serve(sockets.0, sockets.1, &flag));
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

/// A TCP connection being echoed.
struct Echo {
    conn: TcpStream,
    /// Received, not yet sent back.
    pending: Vec<u8>,
    /// The peer has sent its FIN.
    eof: bool,
}

impl Echo {
    /// Moves what can be moved without blocking; false when done or broken.
    fn pump(&mut self, buf: &mut [u8]) -> bool {
        while !self.eof {
            match self.conn.read(buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return false,
            }
        }
        while !self.pending.is_empty() {
            match self.conn.write(&self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return false,
            }
        }
        !(self.eof && self.pending.is_empty())
    }
}

fn serve(tcp: Vec<TcpListener>, udp: Vec<UdpSocket>, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65536];
    let mut echoes: Vec<Echo> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        for l in &tcp {
            while let Ok((conn, _)) = l.accept() {
                // Accepted sockets do not inherit the listener's O_NONBLOCK.
                if conn.set_nonblocking(true).is_ok() {
                    echoes.push(Echo {
                        conn,
                        pending: Vec::new(),
                        eof: false,
                    });
                }
            }
        }
        echoes.retain_mut(|e| e.pump(&mut buf));
        for u in &udp {
            while let Ok((n, from)) = u.recv_from(&mut buf) {
                let _ = u.send_to(&buf[..n], from);
            }
        }
        // Poll fast while a connection is open (a bulk transfer), slowly
        // otherwise.
        let idle = if echoes.is_empty() { 10 } else { 1 };
        std::thread::sleep(Duration::from_millis(idle));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The kernel's answer to one probe.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub ok: bool,
    pub detail: String,
    /// Each TCP connect's source port and whether it connected.
    pub tries: Vec<(u16, bool)>,
}

/// Source ports of the probes, below the kernel's ephemeral range: each
/// connect gets its own, so none meets the conntrack entry (and NAT binding)
/// a previous connect left in TIME_WAIT.
static NEXT_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

fn source_port() -> u16 {
    20_000 + NEXT_PORT.fetch_add(1, Ordering::Relaxed) % 10_000
}

/// Linux's SO_TXREHASH (asm-generic), and its "disabled" value.
const SO_TXREHASH: libc::c_int = 74;
const SOCK_TXREHASH_DISABLED: libc::c_int = 0;

/// A TCP socket in netns `from`, bound to address `src` (None: the one the
/// kernel picks) and a port of its own, connected to `dst:port` within
/// CONNECT_TIMEOUT: (source port, the socket or why not).
///
/// The socket never rethinks its hash. A forwarding node's ECMP choice for
/// a pod's TCP packets is the socket's own random hash (the skb carries it
/// as an L4 hash, which fib_multipath_hash takes as is), and on every
/// retransmission timeout the kernel draws a new one (net.core.txrehash),
/// moving a stalled connection to another path at random: a probe that
/// waited for that would measure "some path works", not "this path works".
fn open(
    from: &str,
    src: Option<&str>,
    dst: &str,
    port: u16,
) -> Result<(u16, std::io::Result<TcpStream>), String> {
    let parse = |a: String| a.parse::<SocketAddr>().map_err(|e| format!("{a}: {e}"));
    let sport = source_port();
    let src = parse(format!("{}:{sport}", src.unwrap_or("0.0.0.0")))?;
    let dst = parse(format!("{dst}:{port}"))?;
    let conn = in_netns(from, move || {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .map_err(|e| format!("socket: {e}"))?;
        let off = SOCK_TXREHASH_DISABLED;
        // SAFETY: a valid socket, and an option value of the size given.
        let set = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&sock),
                libc::SOL_SOCKET,
                SO_TXREHASH,
                (&raw const off).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if set != 0 {
            return Err(format!("SO_TXREHASH: {}", std::io::Error::last_os_error()));
        }
        sock.bind(&src.into())
            .map_err(|e| format!("bind {src}: {e}"))?;
        Ok::<_, String>(
            sock.connect_timeout(&dst.into(), CONNECT_TIMEOUT)
                .map(|()| TcpStream::from(sock)),
        )
    })??;
    Ok((sport, conn))
}

/// A TCP connect from netns `from` to `dst:port`, from address `src` (None:
/// the one the kernel picks).
pub fn connect(from: &str, src: Option<&str>, dst: &str, port: u16) -> Result<Outcome, String> {
    let (sport, conn) = open(from, src, dst, port)?;
    let mut o = connected(conn.map(drop));
    o.tries.push((sport, o.ok));
    Ok(o)
}

/// The outcome of a TCP connect.
fn connected(r: std::io::Result<()>) -> Outcome {
    match r {
        Ok(()) => Outcome {
            ok: true,
            detail: "connected".into(),
            ..Outcome::default()
        },
        Err(e) if e.kind() == ErrorKind::TimedOut => Outcome {
            detail: "timeout".into(),
            ..Outcome::default()
        },
        Err(e) => Outcome {
            detail: e.to_string(),
            ..Outcome::default()
        },
    }
}

/// A bulk transfer from netns `from` to the echo server at `dst:port`:
/// BULK_BYTES sent, then the same bytes read back, within BULK_TIMEOUT.
/// Both ends send at their interfaces' MTUs (segments as large as the
/// negotiated MSS), so a path MTU below them must be discovered.
pub fn bulk(from: &str, src: Option<&str>, dst: &str, port: u16) -> Result<Outcome, String> {
    exchange(from, src, dst, port, BULK_BYTES, BULK_TIMEOUT)
}

/// A TCP connection from netns `from` to the echo server at `dst:port` that
/// sends `bytes`, then reads them back, all within `timeout`.
pub fn exchange(
    from: &str,
    src: Option<&str>,
    dst: &str,
    port: u16,
    bytes: usize,
    timeout: Duration,
) -> Result<Outcome, String> {
    let started = Instant::now();
    let (sport, conn) = open(from, src, dst, port)?;
    let conn = match conn {
        Ok(c) => c,
        Err(e) => {
            let mut o = connected(Err(e));
            o.tries.push((sport, false));
            return Ok(o);
        }
    };
    let deadline = started + timeout;
    let data: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
    let mut writer = conn.try_clone().map_err(|e| e.to_string())?;
    writer
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let sent = data.clone();
    let sending = std::thread::spawn(move || -> std::io::Result<()> {
        writer.write_all(&sent)?;
        writer.shutdown(Shutdown::Write)
    });
    let mut reader = &conn;
    let mut got = Vec::with_capacity(bytes);
    let mut buf = vec![0u8; 65536];
    let end = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Err("timeout".to_string());
        }
        reader
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break Err("timeout".to_string());
            }
            Err(e) => break Err(e.to_string()),
        }
    };
    // Wakes a writer still blocked on a black-holed path.
    let _ = conn.shutdown(Shutdown::Both);
    let wrote = sending.join().map_err(|_| "bulk writer panicked")?;
    let took = started.elapsed().as_millis();
    let (ok, detail) = match (end, wrote) {
        (Ok(()), Ok(())) if got == data => {
            (true, format!("{} kB each way in {took} ms", bytes / 1024))
        }
        (Ok(()), Ok(())) => (
            false,
            format!("{} of {bytes} bytes echoed intact", got.len()),
        ),
        (Err(e), _) => (
            false,
            format!("{e} after {took} ms, {} of {bytes} bytes back", got.len()),
        ),
        (Ok(()), Err(e)) => (false, format!("sending: {e}")),
    };
    Ok(Outcome {
        ok,
        detail,
        tries: vec![(sport, ok)],
    })
}

/// A UDP exchange from netns `from`: one datagram with DF set that fills the
/// source's outgoing interface MTU (`size` bytes of payload), echoed back.
pub fn udp_full_mtu(from: &str, dst: &str, port: u16, size: usize) -> Result<Outcome, String> {
    const SCRIPT: &str = r#"
import socket, sys
dst, port, size, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
# Linux: IP_MTU_DISCOVER = 10, IP_PMTUDISC_DO = 2 (some builds lack the names)
s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_MTU_DISCOVER", 10), getattr(socket, "IP_PMTUDISC_DO", 2))
s.settimeout(timeout)
try:
    s.sendto(b"x" * size, (dst, port))
    data = s.recv(65536)
    print("ok" if len(data) == size else "short reply")
except OSError as e:
    print(e)
"#;
    let out = sh::exec(
        from,
        "python3",
        &[
            "-c",
            SCRIPT,
            dst,
            &port.to_string(),
            &size.to_string(),
            &TIMEOUT.as_secs_f64().to_string(),
        ],
    )?;
    let line = out.trim().to_string();
    Ok(Outcome {
        ok: line == "ok",
        detail: if line == "ok" {
            format!("{size}-byte DF datagram echoed")
        } else {
            line
        },
        tries: Vec::new(),
    })
}
