//! Asking the kernel: small servers inside pod/node netns, and real TCP
//! connects / UDP exchanges from a source netns.

use std::fs::File;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

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

/// Listeners on TCP and UDP ports (UDP echoes), served by one polling thread
/// until dropped.
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

fn serve(tcp: Vec<TcpListener>, udp: Vec<UdpSocket>, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        for l in &tcp {
            while let Ok((conn, _)) = l.accept() {
                drop(conn);
            }
        }
        for u in &udp {
            while let Ok((n, from)) = u.recv_from(&mut buf) {
                let _ = u.send_to(&buf[..n], from);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
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
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ok: bool,
    pub detail: String,
}

/// Source ports of the probes, below the kernel's ephemeral range: each
/// connect gets its own, so none meets the conntrack entry (and NAT binding)
/// a previous connect left in TIME_WAIT.
static NEXT_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

fn source_port() -> u16 {
    20_000 + NEXT_PORT.fetch_add(1, Ordering::Relaxed) % 10_000
}

/// A TCP connect from netns `from` to `dst:port`, from address `src` (None:
/// the one the kernel picks) and a port of its own.
fn connect(from: &str, src: Option<&str>, dst: &str, port: u16) -> Result<Outcome, String> {
    let parse = |a: String| a.parse::<SocketAddr>().map_err(|e| format!("{a}: {e}"));
    let src = parse(format!("{}:{}", src.unwrap_or("0.0.0.0"), source_port()))?;
    let dst = parse(format!("{dst}:{port}"))?;
    in_netns(from, move || {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .map_err(|e| format!("socket: {e}"))?;
        sock.bind(&src.into())
            .map_err(|e| format!("bind {src}: {e}"))?;
        Ok(connected(
            sock.connect_timeout(&dst.into(), CONNECT_TIMEOUT),
        ))
    })?
}

/// A TCP connect from netns `from`, bound to `src`, to `dst:port`.
pub fn tcp_from(from: &str, src: &str, dst: &str, port: u16) -> Result<Outcome, String> {
    connect(from, Some(src), dst, port)
}

/// The outcome of a TCP connect.
fn connected(r: std::io::Result<()>) -> Outcome {
    match r {
        Ok(()) => Outcome {
            ok: true,
            detail: "connected".into(),
        },
        Err(e) if e.kind() == ErrorKind::TimedOut => Outcome {
            ok: false,
            detail: "timeout".into(),
        },
        Err(e) => Outcome {
            ok: false,
            detail: e.to_string(),
        },
    }
}

/// A TCP connect from netns `from` to `dst:port`.
pub fn tcp(from: &str, dst: &str, port: u16) -> Result<Outcome, String> {
    connect(from, None, dst, port)
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
    })
}
