//! `skoop collect probe`: one real connection attempt (a few, bounded) from a
//! network namespace, beside the simulation: a TCP connect, a UDP datagram
//! and its reply, an SCTP INIT. It prints one JSON line, the
//! [`ProbeResult`] `skoop diagnose --probe` reads from the collector pod's log.
//!
//! It never sends more than the one flow it is given: `--count` attempts at
//! most (each a new socket, so a Service may pick another backend), each
//! bounded by `--timeout`, the first failure ending the probe, the whole run
//! bounded by [`BUDGET`].

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use skoop_error::{bad_input, exit};
use skoop_netstack::probe::{
    IcmpError, MAX_COUNT, MAX_TIMEOUT_MS, MIN_TIMEOUT_MS, PROBE_VERSION, ProbeAttempt,
    ProbeOutcome, ProbeResult,
};

use super::args::ProbeArgs;
use super::{cri, netns, parse_pod};

const MAX_TIMEOUT: Duration = Duration::from_millis(MAX_TIMEOUT_MS);
const MIN_TIMEOUT: Duration = Duration::from_millis(MIN_TIMEOUT_MS);
/// The whole probe: no attempt starts after it, none waits past it.
pub const BUDGET: Duration = Duration::from_secs(30);

/// The transport protocols a probe speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    fn parse(s: &str) -> Result<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "sctp" => Ok(Proto::Sctp),
            _ => Err(bad_input(format!(
                "--protocol {s:?}: the probe speaks tcp, udp or sctp"
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// What to send: one flow, how often, how long to wait.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub src: Option<Ipv4Addr>,
    pub dst: Ipv4Addr,
    pub port: u16,
    pub proto: Proto,
    pub count: u32,
    pub timeout: Duration,
    /// UDP: any datagram sent is answered (an echo service, or DNS).
    pub expect_reply: bool,
}

/// `3s`, `500ms`, `1.5` (seconds).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1.0)
    };
    let secs = num
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v * scale)
        .ok_or_else(|| {
            bad_input(format!(
                "--timeout {s:?}: expected a duration such as 3s, 500ms or 1.5"
            ))
        })?;
    Ok(Duration::from_secs_f64(secs.min(1e6)))
}

impl Plan {
    /// The plan of `args`, checked against the caps.
    pub fn from_args(args: &ProbeArgs) -> Result<Plan> {
        let proto = Proto::parse(&args.protocol)?;
        if args.port == 0 {
            return Err(bad_input("--port 0: give the destination port (1-65535)"));
        }
        if args.count == 0 || args.count > MAX_COUNT {
            return Err(bad_input(format!(
                "--count {}: a probe makes 1 to {MAX_COUNT} attempts",
                args.count
            )));
        }
        let timeout = parse_duration(&args.timeout)?;
        if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&timeout) {
            return Err(bad_input(format!(
                "--timeout {}: each attempt waits {} ms to {} s",
                args.timeout,
                MIN_TIMEOUT.as_millis(),
                MAX_TIMEOUT.as_secs()
            )));
        }
        if args.expect_reply && proto != Proto::Udp {
            return Err(bad_input(
                "--expect-reply is about UDP: a TCP or SCTP handshake is its own reply",
            ));
        }
        Ok(Plan {
            src: args.src,
            dst: args.dst,
            port: args.port,
            proto,
            count: args.count,
            timeout,
            // A DNS server answers a query, whatever its name says.
            expect_reply: args.expect_reply || (proto == Proto::Udp && args.port == DNS_PORT),
        })
    }
}

/// Where the probe runs: the netns file and how the result names it.
fn place(args: &ProbeArgs) -> Result<(PathBuf, String)> {
    let (path, from) = match (&args.pod, &args.netns) {
        (Some(pod), _) if pod.contains('=') => {
            let p = parse_pod(pod)?;
            let from = format!(
                "pod {}/{} (netns {})",
                p.namespace,
                p.name,
                p.netns.display()
            );
            (p.netns, from)
        }
        (Some(pod), _) => {
            let netns = pod_from_cri(pod)?;
            let from = format!("pod {pod} (netns {}, from CRI)", netns.display());
            (netns, from)
        }
        (None, Some(ns)) => {
            let path = netns::resolve(ns);
            let from = format!("netns {}", path.display());
            (path, from)
        }
        // This thread's own: the node's host netns in a collector pod.
        (None, None) => (
            PathBuf::from("/proc/thread-self/ns/net"),
            "host netns".to_string(),
        ),
    };
    if !path.exists() {
        return Err(bad_input(format!(
            "{from}: {} does not exist",
            path.display()
        )));
    }
    Ok((path, from))
}

/// The netns of pod `NS/NAME`, from the node's CRI runtime.
fn pod_from_cri(pod: &str) -> Result<PathBuf> {
    let Some((namespace, name)) = pod
        .split_once('/')
        .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains('/'))
    else {
        return Err(bad_input(format!(
            "--pod {pod:?}: expected NS/NAME (found through CRI) or NS/NAME=NETNS"
        )));
    };
    match cri::discover(Path::new("/")) {
        cri::Discovery::Unavailable(why) => Err(bad_input(format!(
            "--pod {pod}: cannot find its netns: {why}"
        ))),
        cri::Discovery::Found { socket, listing } => listing
            .sandboxes
            .iter()
            .find(|sb| sb.namespace == namespace && sb.name == name)
            .map(|sb| sb.netns.clone())
            .ok_or_else(|| {
                bad_input(format!(
                    "--pod {pod}: the runtime behind CRI socket {} has no ready sandbox of it with a netns of its own ({} pods listed): is the pod on this node, and not on the host network?",
                    socket.display(),
                    listing.sandboxes.len()
                ))
            }),
    }
}

/// Run `skoop collect probe`: the result goes to stdout as one JSON line.
pub fn run(args: &ProbeArgs) -> Result<u8> {
    let plan = Plan::from_args(args)?;
    let (path, from) = place(args)?;
    let result = netns::run_in(&path, move || probe(&plan, from))
        .with_context(|| format!("probing from netns {}", path.display()))?;
    let line = serde_json::to_string(&result).context("serialising the probe result")?;
    println!("{line}");
    Ok(exit::HEALTHY)
}

/// Make the attempts from the calling thread's netns.
pub fn probe(plan: &Plan, from: String) -> ProbeResult {
    let started = Instant::now();
    let mut attempts: Vec<ProbeAttempt> = Vec::new();
    for _ in 0..plan.count {
        let left = BUDGET.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        let timeout = plan.timeout.min(left);
        let a = match plan.proto {
            Proto::Tcp => stream(plan, timeout, Protocol::TCP),
            Proto::Sctp => stream(plan, timeout, Protocol::from(IPPROTO_SCTP)),
            Proto::Udp => datagram(plan, timeout),
        };
        let stop = !a.outcome.reached();
        attempts.push(a);
        // The first failure is the answer; more attempts would only send
        // more of what did not get through.
        if stop {
            break;
        }
    }
    let (outcome, detail) = summary(plan, &attempts);
    ProbeResult {
        version: PROBE_VERSION,
        from,
        src: plan.src,
        dst: plan.dst,
        port: plan.port,
        protocol: plan.proto.name().into(),
        reply_expected: plan.expect_reply,
        outcome,
        detail,
        attempts,
        elapsed_ms: ms(started.elapsed()),
        timeout_ms: u64::try_from(plan.timeout.as_millis()).unwrap_or(u64::MAX),
    }
}

/// The probe's outcome and its sentence, from its attempts.
fn summary(plan: &Plan, attempts: &[ProbeAttempt]) -> (ProbeOutcome, String) {
    let n = attempts.len();
    let Some(last) = attempts.last() else {
        return (
            ProbeOutcome::Unavailable,
            "no attempt was made (the time budget was spent)".into(),
        );
    };
    if last.outcome.reached() {
        let verb = match plan.proto {
            Proto::Udp => "answered",
            _ => "connected",
        };
        let (lo, hi) = attempts
            .iter()
            .map(|a| a.elapsed_ms)
            .fold((f64::MAX, 0.0f64), |(lo, hi), t| (lo.min(t), hi.max(t)));
        let times = if n == 1 || (hi - lo) < 0.05 {
            format!("{hi:.1} ms")
        } else {
            format!("{lo:.1}–{hi:.1} ms")
        };
        let said = if n == 1 && plan.count == 1 {
            format!("{verb} in {times}")
        } else if n == plan.count as usize {
            format!("{verb} {n} of {n} times ({times})")
        } else {
            format!(
                "{verb} {n} of {} times ({times}; the time budget ended it)",
                plan.count
            )
        };
        return (last.outcome, said);
    }
    let before = if n > 1 {
        let verb = match plan.proto {
            Proto::Udp => "answered",
            _ => "connected",
        };
        format!(" (attempt {n}; the {} before it {verb})", n - 1)
    } else {
        String::new()
    };
    let detail = match last.outcome {
        ProbeOutcome::NoReply if !plan.expect_reply => {
            format!("{}{before} — a UDP service need not answer", last.detail)
        }
        _ => format!("{}{before}", last.detail),
    };
    (last.outcome, detail)
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// `3 s`, `500 ms`.
fn shown(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else if d >= Duration::from_secs(1) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

const IPPROTO_SCTP: i32 = 132;
const DNS_PORT: u16 = 53;

fn attempt(outcome: ProbeOutcome, detail: String, t0: Instant) -> ProbeAttempt {
    ProbeAttempt {
        outcome,
        detail,
        elapsed_ms: ms(t0.elapsed()),
        errno: None,
        icmp: None,
    }
}

/// A socket bound to the plan's source address, if it has one; an
/// attempt saying why not otherwise.
fn socket(plan: &Plan, ty: Type, proto: Protocol, t0: Instant) -> Result<Socket, ProbeAttempt> {
    let sock = Socket::new(Domain::IPV4, ty, Some(proto)).map_err(|e| {
        let no_sctp = plan.proto == Proto::Sctp
            && matches!(
                e.raw_os_error(),
                Some(libc::EPROTONOSUPPORT | libc::ESOCKTNOSUPPORT | libc::EAFNOSUPPORT)
            );
        let why = if no_sctp {
            format!("cannot probe sctp here: this kernel has no SCTP ({e})")
        } else {
            format!("cannot open a {} socket: {e}", plan.proto.name())
        };
        attempt(ProbeOutcome::Unavailable, why, t0)
    })?;
    // ICMP errors are queued for the socket with their type, code and
    // sender, which the errno alone does not say (IP_RECVERR; UDP sockets
    // hear of non-fatal ICMP errors, such as host unreachable, only then).
    set_int(sock.as_raw_fd(), libc::IPPROTO_IP, libc::IP_RECVERR, 1);
    if let Some(src) = plan.src
        && let Err(e) = sock.bind(&SockAddr::from(SocketAddrV4::new(src, 0)))
    {
        return Err(attempt(
            ProbeOutcome::Unavailable,
            format!("cannot send from {src} in this netns: {e}"),
            t0,
        ));
    }
    Ok(sock)
}

/// A TCP or SCTP connect: the handshake is the answer.
fn stream(plan: &Plan, timeout: Duration, proto: Protocol) -> ProbeAttempt {
    let t0 = Instant::now();
    let sock = match socket(plan, Type::STREAM, proto, t0) {
        Ok(s) => s,
        Err(a) => return a,
    };
    let dst = SockAddr::from(SocketAddrV4::new(plan.dst, plan.port));
    match sock.connect_timeout(&dst, timeout) {
        Ok(()) => {
            let local = local(&sock);
            let retrans = if plan.proto == Proto::Tcp {
                tcp_total_retrans(sock.as_raw_fd()).unwrap_or(0)
            } else {
                0
            };
            let took = shown_ms(t0);
            if retrans > 0 {
                // The connect succeeded only after the kernel sent the SYN
                // again: the first was lost (a Service's retransmitted SYN
                // may even be NATed to another backend).
                attempt(
                    ProbeOutcome::Retransmitted,
                    format!(
                        "connected from {local} only after {retrans} SYN retransmission(s), in {took}: the first SYN or its answer was lost"
                    ),
                    t0,
                )
            } else {
                attempt(
                    ProbeOutcome::Connected,
                    format!("connected from {local} in {took}"),
                    t0,
                )
            }
        }
        Err(e) => failed(plan, &sock, &e, timeout, t0),
    }
}

/// A UDP datagram, and the wait for its reply.
fn datagram(plan: &Plan, timeout: Duration) -> ProbeAttempt {
    let t0 = Instant::now();
    let sock = match socket(plan, Type::DGRAM, Protocol::UDP, t0) {
        Ok(s) => s,
        Err(a) => return a,
    };
    let dst = SockAddr::from(SocketAddrV4::new(plan.dst, plan.port));
    // Connected: the kernel then reports the ICMP errors about this
    // destination on the socket.
    if let Err(e) = sock.connect(&dst) {
        return failed(plan, &sock, &e, timeout, t0);
    }
    let udp = UdpSocket::from(sock);
    let payload = if plan.port == DNS_PORT {
        dns_query()
    } else {
        b"skoop probe\n".to_vec()
    };
    if let Err(e) = udp.send(&payload) {
        return failed_udp(plan, &udp, &e, timeout, t0);
    }
    let mut buf = [0u8; 2048];
    let deadline = t0 + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return no_reply(plan, &udp, timeout, t0);
        }
        if let Err(e) = udp.set_read_timeout(Some(left)) {
            return failed_udp(plan, &udp, &e, timeout, t0);
        }
        match udp.recv(&mut buf) {
            Ok(n) => {
                let local = udp
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| "?".into());
                return attempt(
                    ProbeOutcome::Answered,
                    format!("{n}-byte reply to {local} in {}", shown_ms(t0)),
                    t0,
                );
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return no_reply(plan, &udp, timeout, t0);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return failed_udp(plan, &udp, &e, timeout, t0),
        }
    }
}

fn no_reply(plan: &Plan, udp: &UdpSocket, timeout: Duration, t0: Instant) -> ProbeAttempt {
    // An ICMP error may have been queued without failing the recv.
    if let Some(icmp) = icmp_error(udp.as_raw_fd()) {
        let mut a = attempt(ProbeOutcome::Unreachable, icmp_sentence(&icmp, None), t0);
        a.icmp = Some(icmp);
        return a;
    }
    let expected = if plan.port == DNS_PORT {
        " (a DNS query, which a DNS server answers)"
    } else if plan.expect_reply {
        " (a reply was expected)"
    } else {
        ""
    };
    attempt(
        ProbeOutcome::NoReply,
        format!("no reply within {}{expected}", shown(timeout)),
        t0,
    )
}

fn failed_udp(
    plan: &Plan,
    udp: &UdpSocket,
    e: &std::io::Error,
    timeout: Duration,
    t0: Instant,
) -> ProbeAttempt {
    classify(plan, udp.as_raw_fd(), None, e, timeout, t0)
}

fn failed(
    plan: &Plan,
    sock: &Socket,
    e: &std::io::Error,
    timeout: Duration,
    t0: Instant,
) -> ProbeAttempt {
    let local = sock
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket_ipv4())
        .map(|a| *a.ip())
        .filter(|ip| !ip.is_unspecified());
    classify(plan, sock.as_raw_fd(), local, e, timeout, t0)
}

/// What a failed connect or send means, with the ICMP error the kernel
/// queued, if any.
fn classify(
    plan: &Plan,
    fd: RawFd,
    local: Option<Ipv4Addr>,
    e: &std::io::Error,
    timeout: Duration,
    t0: Instant,
) -> ProbeAttempt {
    let icmp = icmp_error(fd);
    let errno = e.raw_os_error();
    let name = errno.map(errno_name);
    let (outcome, detail) = match errno {
        // socket2's own timeout carries no errno.
        None if e.kind() == ErrorKind::TimedOut => (
            ProbeOutcome::TimedOut,
            format!("timed out after {}", shown(timeout)),
        ),
        Some(libc::ETIMEDOUT) => (
            ProbeOutcome::TimedOut,
            format!("timed out after {} (ETIMEDOUT)", shown_ms(t0)),
        ),
        Some(libc::ECONNREFUSED) => (
            ProbeOutcome::Refused,
            match (&icmp, plan.proto) {
                (Some(i), _) => format!("refused: {}", icmp_sentence(i, local)),
                (None, Proto::Tcp) => "refused: TCP RST from the destination".into(),
                (None, Proto::Sctp) => "refused: SCTP ABORT from the destination".into(),
                (None, Proto::Udp) => "refused: ICMP port unreachable".into(),
            },
        ),
        Some(libc::ECONNRESET) => (
            ProbeOutcome::Reset,
            "reset while connecting (ECONNRESET)".into(),
        ),
        Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT | libc::EINVAL) => (
            ProbeOutcome::Unavailable,
            format!("cannot probe from this netns: {e}"),
        ),
        Some(n) => {
            let why = match (&icmp, n) {
                (Some(i), _) => icmp_sentence(i, local),
                (None, libc::ENETUNREACH) => {
                    format!("no route to {} in this netns (ENETUNREACH)", plan.dst)
                }
                (None, libc::EHOSTUNREACH) => {
                    format!("no route to host {} (EHOSTUNREACH)", plan.dst)
                }
                (None, libc::EPERM | libc::EACCES) => format!(
                    "the source netns refused to send it ({}: a netfilter rule or a prohibit route)",
                    errno_name(n)
                ),
                (None, _) => format!("{e} ({})", errno_name(n)),
            };
            (ProbeOutcome::Unreachable, format!("unreachable: {why}"))
        }
        None => (ProbeOutcome::Unavailable, format!("cannot probe: {e}")),
    };
    let detail = match (&name, &icmp) {
        (Some(n), Some(_)) if outcome == ProbeOutcome::Unreachable => format!("{detail} ({n})"),
        _ => detail,
    };
    ProbeAttempt {
        outcome,
        detail,
        elapsed_ms: ms(t0.elapsed()),
        errno: name,
        icmp,
    }
}

fn shown_ms(t0: Instant) -> String {
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.1} ms")
    }
}

fn local(sock: &Socket) -> String {
    sock.local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.to_string())
        .unwrap_or_else(|| "?".into())
}

/// `ICMP host unreachable from 10.244.0.1`; an error the source netns sent
/// itself (a neighbour that never answered) says so.
fn icmp_sentence(i: &IcmpError, local: Option<Ipv4Addr>) -> String {
    match i.from {
        Some(from) if Some(from) == local => format!(
            "ICMP {} from this netns itself ({from}: the next hop never answered ARP, or a local rule rejected it)",
            i.name
        ),
        Some(from) => format!("ICMP {} from {from}", i.name),
        None => format!("ICMP {}", i.name),
    }
}

/// The ICMP (type 3 and a few others) names as RFC 792/1812 give them.
pub fn icmp_name(kind: u8, code: u8) -> String {
    let name = match (kind, code) {
        (3, 0) => "net unreachable",
        (3, 1) => "host unreachable",
        (3, 2) => "protocol unreachable",
        (3, 3) => "port unreachable",
        (3, 4) => "fragmentation needed",
        (3, 5) => "source route failed",
        (3, 6) => "destination network unknown",
        (3, 7) => "destination host unknown",
        (3, 9) => "network administratively prohibited",
        (3, 10) => "host administratively prohibited",
        (3, 13) => "communication administratively prohibited",
        (11, _) => "time exceeded",
        (12, _) => "parameter problem",
        _ => return format!("type {kind} code {code}"),
    };
    format!("{name} (type {kind} code {code})")
}

fn errno_name(n: i32) -> String {
    let name = match n {
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ECONNRESET => "ECONNRESET",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EHOSTDOWN => "EHOSTDOWN",
        libc::ENONET => "ENONET",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EPROTO => "EPROTO",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::EINVAL => "EINVAL",
        _ => return format!("errno {n}"),
    };
    name.to_string()
}

/// A DNS query (RFC 1035) for `kubernetes.default.svc.cluster.local` A: any
/// DNS server answers it, if only with NXDOMAIN or REFUSED.
fn dns_query() -> Vec<u8> {
    let mut q = vec![
        0x5b, 0x00, // id
        0x01, 0x00, // a standard query, recursion desired
        0x00, 0x01, // one question
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    for label in ["kubernetes", "default", "svc", "cluster", "local"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0x00, 0x00, 0x01, 0x00, 0x01]); // root, A, IN
    q
}

// The few socket calls socket2 does not wrap: IP_RECVERR's error queue and
// TCP_INFO.

fn set_int(fd: RawFd, level: i32, name: i32, value: libc::c_int) {
    // SAFETY: a socket the caller owns, and an option value of the size given.
    let _ = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// How many segments the kernel retransmitted on this connection (its SYN,
/// right after a connect).
fn tcp_total_retrans(fd: RawFd) -> Option<u32> {
    // SAFETY: tcp_info is plain old data; all zeroes is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: a socket the caller owns; the kernel writes at most `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_total_retrans) + 4;
    (r == 0 && len as usize >= needed).then_some(info.tcpi_total_retrans)
}

/// The first ICMP error queued for the socket (IP_RECVERR), if any.
fn icmp_error(fd: RawFd) -> Option<IcmpError> {
    let mut data = [0u8; 512];
    // u64s: the control buffer must be aligned for cmsghdr.
    let mut control = [0u64; 64];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain old data; all zeroes is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: every pointer in msg points into live buffers of the lengths given.
    let n = unsafe { libc::recvmsg(fd, &raw mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
    if n < 0 {
        return None;
    }
    let ee_len = std::mem::size_of::<libc::sock_extended_err>();
    let sin_len = std::mem::size_of::<libc::sockaddr_in>();
    // SAFETY: msg was filled by recvmsg; the CMSG_* walk stays inside its control buffer.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&raw const msg) };
    while !cmsg.is_null() {
        // SAFETY: non-null, inside the control buffer (CMSG_FIRSTHDR/NXTHDR).
        let c = unsafe { &*cmsg };
        // SAFETY: CMSG_LEN is arithmetic.
        let full = unsafe { libc::CMSG_LEN((ee_len + sin_len) as u32) } as usize;
        if c.cmsg_level == libc::IPPROTO_IP && c.cmsg_type == libc::IP_RECVERR && c.cmsg_len >= full
        {
            // SAFETY: the data holds a sock_extended_err and the offender's
            // sockaddr_in right after it (SO_EE_OFFENDER), as cmsg_len says.
            let (ee, offender) = unsafe {
                let p = libc::CMSG_DATA(cmsg);
                (
                    std::ptr::read_unaligned(p.cast::<libc::sock_extended_err>()),
                    std::ptr::read_unaligned(p.add(ee_len).cast::<libc::sockaddr_in>()),
                )
            };
            if ee.ee_origin == libc::SO_EE_ORIGIN_ICMP {
                let from = (offender.sin_family == libc::AF_INET as libc::sa_family_t)
                    .then(|| Ipv4Addr::from(u32::from_be(offender.sin_addr.s_addr)));
                return Some(IcmpError {
                    kind: ee.ee_type,
                    code: ee.ee_code,
                    from,
                    name: icmp_name(ee.ee_type, ee.ee_code),
                });
            }
        }
        // SAFETY: as above.
        cmsg = unsafe { libc::CMSG_NXTHDR(&raw const msg, cmsg) };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> ProbeArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct P {
            #[command(flatten)]
            a: ProbeArgs,
        }
        let mut v = vec!["probe", "--dst", "10.96.0.10", "--port", "53"];
        v.extend_from_slice(extra);
        P::parse_from(v).a
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("3s").ok(), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_duration("500ms").ok(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_duration("1.5").ok(),
            Some(Duration::from_millis(1500))
        );
        for bad in ["", "s", "-1s", "three", "NaN"] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(skoop_error::is_bad_input(&e), "{bad}");
        }
    }

    #[test]
    fn the_caps_hold() {
        let ok = Plan::from_args(&args(&[])).expect("defaults");
        assert_eq!((ok.count, ok.timeout), (3, Duration::from_secs(3)));
        assert_eq!(ok.proto, Proto::Tcp);
        assert!(!ok.expect_reply, "a TCP handshake is its own reply");
        let udp = Plan::from_args(&args(&["--protocol", "udp"])).expect("udp");
        assert!(udp.expect_reply, "port 53 gets a DNS query");
        for (bad, says) in [
            (&["--count", "0"][..], "--count 0"),
            (&["--count", "21"], "--count 21"),
            (&["--timeout", "11s"], "--timeout 11s"),
            (&["--timeout", "1ms"], "--timeout 1ms"),
            (&["--expect-reply"], "UDP"),
            (&["--protocol", "icmp"], "tcp, udp or sctp"),
        ] {
            let e = Plan::from_args(&args(bad)).expect_err(says);
            assert!(skoop_error::is_bad_input(&e), "{bad:?}");
            assert!(format!("{e}").contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn summaries_say_what_happened() {
        let plan = Plan::from_args(&args(&[])).expect("plan");
        let a = |outcome, detail: &str, ms| ProbeAttempt {
            outcome,
            detail: detail.into(),
            elapsed_ms: ms,
            errno: None,
            icmp: None,
        };
        let ok = a(ProbeOutcome::Connected, "connected", 0.4);
        let (o, d) = summary(&plan, &[ok.clone(), ok.clone(), ok.clone()]);
        assert_eq!(o, ProbeOutcome::Connected);
        assert_eq!(d, "connected 3 of 3 times (0.4 ms)");
        let late = a(ProbeOutcome::TimedOut, "timed out after 3 s", 3000.0);
        let (o, d) = summary(&plan, &[ok, late]);
        assert_eq!(o, ProbeOutcome::TimedOut);
        assert_eq!(
            d,
            "timed out after 3 s (attempt 2; the 1 before it connected)"
        );
        let udp = Plan {
            proto: Proto::Udp,
            port: 9000,
            expect_reply: false,
            ..plan
        };
        let silent = a(ProbeOutcome::NoReply, "no reply within 3 s", 3000.0);
        let (o, d) = summary(&udp, &[silent]);
        assert_eq!(o, ProbeOutcome::NoReply);
        assert!(d.ends_with("a UDP service need not answer"), "{d}");
        let (o, _) = summary(&plan, &[]);
        assert_eq!(o, ProbeOutcome::Unavailable);
    }

    #[test]
    fn icmp_kinds_are_named() {
        assert_eq!(icmp_name(3, 1), "host unreachable (type 3 code 1)");
        assert_eq!(
            icmp_name(3, 13),
            "communication administratively prohibited (type 3 code 13)"
        );
        assert_eq!(icmp_name(5, 0), "type 5 code 0");
        let q = dns_query();
        // Header, five labels and the root, type and class.
        assert_eq!(q.len(), 12 + 38 + 4);
        assert_eq!(&q[q.len() - 4..], &[0, 1, 0, 1]);
    }
}
