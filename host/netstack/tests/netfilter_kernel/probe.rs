//! Real packets: receivers in the server and router namespaces that record
//! the destination each probe arrived at, and clients that send one probe and
//! read its fate (delivered, dropped or rejected).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol as SockProto, Socket, Type};

use crate::fate::{Fate, Host};
use crate::lab::enter;

/// How long a probe waits before calling its packet dropped.
const WAIT: Duration = Duration::from_millis(250);

/// Probe id → where it arrived.
pub type Log = Arc<Mutex<HashMap<u32, Fate>>>;

/// A receiver thread; stopped on drop.
pub struct Receiver {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn id_of(buf: &[u8]) -> Option<u32> {
    std::str::from_utf8(buf)
        .ok()?
        .trim()
        .strip_prefix("probe-")?
        .parse()
        .ok()
}

fn v4(a: SocketAddr) -> Option<SocketAddrV4> {
    match a {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(_) => None,
    }
}

/// Starts a receiver in `ns`: TCP on 0.0.0.0 at `tcp_ports`, UDP on each of
/// `udp_addrs` × `udp_ports`.
pub fn receiver(
    ns: String,
    host: Host,
    tcp_ports: &'static [u16],
    udp_addrs: Vec<Ipv4Addr>,
    udp_ports: &'static [u16],
    log: Log,
) -> Result<Receiver, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let stop2 = stop.clone();
    let thread = std::thread::spawn(move || {
        let setup = (|| -> Result<(Vec<TcpListener>, Vec<UdpSocket>), String> {
            enter(&ns)?;
            let mut tcp = Vec::new();
            for p in tcp_ports {
                let l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, *p))
                    .map_err(|e| format!("{ns}: tcp listen {p}: {e}"))?;
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                tcp.push(l);
            }
            let mut udp = Vec::new();
            for a in &udp_addrs {
                for p in udp_ports {
                    let s = UdpSocket::bind((*a, *p))
                        .map_err(|e| format!("{ns}: udp bind {a}:{p}: {e}"))?;
                    s.set_nonblocking(true).map_err(|e| e.to_string())?;
                    udp.push(s);
                }
            }
            Ok((tcp, udp))
        })();
        let (tcp, udp) = match setup {
            Ok(x) => {
                let _ = ready_tx.send(Ok(()));
                x
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        let mut buf = [0u8; 64];
        while !stop2.load(Ordering::Relaxed) {
            let mut busy = false;
            for l in &tcp {
                if let Ok((mut stream, peer)) = l.accept() {
                    busy = true;
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(WAIT));
                    let mut got = Vec::new();
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf[..n]);
                        if got.ends_with(b"\n") {
                            break;
                        }
                    }
                    if let (Some(id), Ok(local), Some(peer)) =
                        (id_of(&got), stream.local_addr(), v4(peer))
                        && let Some(local) = v4(local)
                    {
                        record(&log, id, host, local, *peer.ip());
                    }
                }
            }
            for s in &udp {
                if let Ok((n, peer)) = s.recv_from(&mut buf) {
                    busy = true;
                    if let (Some(id), Ok(local), Some(peer)) =
                        (id_of(&buf[..n]), s.local_addr(), v4(peer))
                        && let Some(local) = v4(local)
                    {
                        record(&log, id, host, local, *peer.ip());
                    }
                }
            }
            if !busy {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    match ready_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => Ok(Receiver {
            stop,
            thread: Some(thread),
        }),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(format!("receiver did not start: {e}")),
    }
}

fn record(log: &Log, id: u32, host: Host, dst: SocketAddrV4, src: Ipv4Addr) {
    if let Ok(mut l) = log.lock() {
        l.insert(id, Fate::Delivered { host, dst, src });
    }
}

/// One real packet from a client netns.
#[derive(Debug, Clone)]
pub struct Send {
    pub ns: String,
    pub src: Ipv4Addr,
    pub sport: u16,
    pub dst: SocketAddrV4,
    pub udp: bool,
    pub id: u32,
}

fn refused(kind: ErrorKind, raw: Option<i32>) -> bool {
    matches!(
        kind,
        ErrorKind::ConnectionRefused | ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable
    ) || matches!(
        raw,
        Some(libc::EACCES)
            | Some(libc::EPERM)
            | Some(libc::EHOSTUNREACH)
            | Some(libc::ENETUNREACH)
            | Some(libc::ECONNREFUSED)
    )
}

/// What the client saw: Some(Rejected) / Some(Dropped), or None when the
/// receiver's log decides (delivered or dropped).
fn client_side(s: &Send) -> Result<Option<Fate>, String> {
    enter(&s.ns)?;
    let local = SocketAddr::V4(SocketAddrV4::new(s.src, s.sport));
    if s.udp {
        let sock = UdpSocket::bind(local).map_err(|e| format!("udp bind {local}: {e}"))?;
        let one: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int option value of the right size.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_RECVERR,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        sock.connect(s.dst)
            .map_err(|e| format!("udp connect: {e}"))?;
        sock.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        if let Err(e) = sock.send(format!("probe-{}\n", s.id).as_bytes()) {
            return if refused(e.kind(), e.raw_os_error()) {
                Ok(Some(Fate::Rejected))
            } else {
                Err(format!("udp send: {e}"))
            };
        }
        let mut buf = [0u8; 16];
        match sock.recv(&mut buf) {
            Ok(_) => Ok(None),
            Err(e) if refused(e.kind(), e.raw_os_error()) => Ok(Some(Fate::Rejected)),
            Err(_) => Ok(None),
        }
    } else {
        let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(SockProto::TCP))
            .map_err(|e| e.to_string())?;
        sock.set_reuse_address(true).map_err(|e| e.to_string())?;
        sock.bind(&local.into())
            .map_err(|e| format!("tcp bind {local}: {e}"))?;
        match sock.connect_timeout(&SocketAddr::V4(s.dst).into(), WAIT) {
            Ok(()) => {
                let mut stream: TcpStream = sock.into();
                stream
                    .write_all(format!("probe-{}\n", s.id).as_bytes())
                    .map_err(|e| format!("tcp write: {e}"))?;
                let _ = stream.flush();
                // Let the receiver read before the connection closes.
                std::thread::sleep(Duration::from_millis(5));
                Ok(None)
            }
            Err(e) if refused(e.kind(), e.raw_os_error()) => Ok(Some(Fate::Rejected)),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                Ok(Some(Fate::Dropped))
            }
            Err(e) => Err(format!("tcp connect {}: {e}", s.dst)),
        }
    }
}

/// Sends one probe and returns the kernel's fate for it.
pub fn send(s: &Send, log: &Log) -> Result<Fate, String> {
    let job = s.clone();
    let seen = std::thread::spawn(move || client_side(&job))
        .join()
        .map_err(|_| "client thread panicked".to_string())??;
    if let Some(f) = seen {
        return Ok(f);
    }
    // Delivered if the receiver logged it (give it a moment), else dropped.
    let start = Instant::now();
    loop {
        if let Some(f) = log.lock().ok().and_then(|l| l.get(&s.id).cloned()) {
            return Ok(f);
        }
        if start.elapsed() > WAIT {
            return Ok(Fate::Dropped);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
