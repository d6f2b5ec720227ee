//! Kernel-verified nftables simulation: rulesets loaded with `nft -f` into a
//! router namespace, real TCP and UDP packets sent through it from a client
//! namespace to a server namespace, and the simulator's verdicts and
//! translations (computed from the router's `nft -j list ruleset`) compared
//! with what the kernel did.
//!
//! Skipped (passing, with a message) when not root, when `ip` or `nft` is
//! missing, or with `SKOOP_SKIP_KERNEL_TESTS=1`.
//!
//! Topology: client `c` (10.88.1.2) — `rc` router `r` `rs` — server `s`
//! (10.88.2.2 and 10.88.2.3). The client routes everything via the router.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

#[path = "support/command.rs"]
mod command;

use command::run;
use skoop_netstack::netfilter::{ConnState, Hook, NetnsFacts, Outcome, Verdict};
use skoop_netstack::nftables::{HookRules, NftRuleset, traverse_hook};
use skoop_netstack::packet::{Packet, Protocol};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 2);
const ROUTER_C: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 1);
const ROUTER_S: Ipv4Addr = Ipv4Addr::new(10, 88, 2, 1);
const BACKEND_A: Ipv4Addr = Ipv4Addr::new(10, 88, 2, 2);
const BACKEND_B: Ipv4Addr = Ipv4Addr::new(10, 88, 2, 3);
const SERVICE: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const TCP_PORTS: [u16; 3] = [80, 81, 8080];
const UDP_PORTS: [u16; 2] = [53, 5353];
/// How long a probe waits before calling its packet dropped.
const WAIT: Duration = Duration::from_millis(400);

fn skip_reason() -> Option<String> {
    if std::env::var("SKOOP_SKIP_KERNEL_TESTS").as_deref() == Ok("1") {
        return Some("SKOOP_SKIP_KERNEL_TESTS=1".to_string());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".to_string());
    }
    for tool in [["ip", "-V"], ["nft", "--version"]] {
        if run(&tool, None).is_err() {
            return Some(format!("`{}` is not available", tool[0]));
        }
    }
    None
}

/// The namespaces of one scenario; deleted on drop, also when a test fails.
struct Lab {
    prefix: String,
    created: Vec<String>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            let _ = run(&["ip", "netns", "del", ns], None);
        }
    }
}

impl Lab {
    fn new(tag: &str) -> Result<Lab, String> {
        let mut lab = Lab {
            prefix: format!("sknft{}{tag}", std::process::id()),
            created: Vec::new(),
        };
        lab.build()?;
        Ok(lab)
    }

    fn ns(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    fn add_ns(&mut self, short: &str) -> Result<String, String> {
        let name = self.ns(short);
        run(&["ip", "netns", "add", &name], None)?;
        self.created.push(name.clone());
        run(&["ip", "-n", &name, "link", "set", "lo", "up"], None)?;
        Ok(name)
    }

    fn ip(ns: &str, args: &[&str]) -> Result<(), String> {
        let mut full = vec!["ip", "-n", ns];
        full.extend_from_slice(args);
        run(&full, None).map(|_| ())
    }

    fn exec(&self, short: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let ns = self.ns(short);
        let mut full = vec!["ip", "netns", "exec", ns.as_str()];
        full.extend_from_slice(args);
        run(&full, stdin)
    }

    fn veth(a: &str, a_if: &str, b: &str, b_if: &str) -> Result<(), String> {
        Lab::ip(
            a,
            &[
                "link", "add", a_if, "type", "veth", "peer", "name", "sknfpeer",
            ],
        )?;
        Lab::ip(a, &["link", "set", "sknfpeer", "netns", b])?;
        Lab::ip(b, &["link", "set", "sknfpeer", "name", b_if])?;
        Lab::ip(a, &["link", "set", a_if, "up"])?;
        Lab::ip(b, &["link", "set", b_if, "up"])
    }

    fn build(&mut self) -> Result<(), String> {
        let c = self.add_ns("c")?;
        let r = self.add_ns("r")?;
        let s = self.add_ns("s")?;
        Lab::veth(&r, "rc", &c, "eth0")?;
        Lab::veth(&r, "rs", &s, "eth0")?;
        Lab::ip(&r, &["addr", "add", &format!("{ROUTER_C}/24"), "dev", "rc"])?;
        Lab::ip(&r, &["addr", "add", &format!("{ROUTER_S}/24"), "dev", "rs"])?;
        Lab::ip(&c, &["addr", "add", &format!("{CLIENT}/24"), "dev", "eth0"])?;
        Lab::ip(
            &c,
            &["route", "add", "default", "via", &ROUTER_C.to_string()],
        )?;
        for a in [BACKEND_A, BACKEND_B] {
            Lab::ip(&s, &["addr", "add", &format!("{a}/24"), "dev", "eth0"])?;
        }
        Lab::ip(
            &s,
            &["route", "add", "default", "via", &ROUTER_S.to_string()],
        )?;
        self.exec("r", &["sysctl", "-qw", "net.ipv4.ip_forward=1"], None)?;
        Ok(())
    }

    /// Loads a ruleset into the router.
    fn load(&self, rules: &str) -> Result<(), String> {
        self.exec("r", &["nft", "-f", "-"], Some(rules)).map(|_| ())
    }

    /// What a collector would dump from the router.
    fn router_ruleset(&self) -> Result<NftRuleset, String> {
        let json = self.exec("r", &["nft", "-j", "list", "ruleset"], None)?;
        let chains = self.exec("r", &["nft", "list", "chains"], None)?;
        let mut rs = NftRuleset::parse(&json).map_err(|e| format!("router ruleset: {e}"))?;
        rs.bind_devices(&chains);
        Ok(rs)
    }
}

/// Moves the calling thread into netns `ns` (only this thread).
fn enter(ns: &str) -> Result<(), String> {
    let f = File::open(format!("/var/run/netns/{ns}")).map_err(|e| format!("netns {ns}: {e}"))?;
    // SAFETY: setns on a valid fd changes only this thread's network namespace.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("setns {ns}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// TCP listeners and UDP echo sockets in the server namespace; records the
/// local address of every TCP connection it accepts. Stopped on drop.
struct Server {
    stop: Arc<AtomicBool>,
    accepted: Arc<Mutex<Vec<SocketAddrV4>>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Server {
    fn start(ns: String) -> Result<Server, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop2, accepted2) = (stop.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            let setup = (|| -> Result<(Vec<TcpListener>, Vec<UdpSocket>), String> {
                enter(&ns)?;
                let mut tcp = Vec::new();
                for p in TCP_PORTS {
                    let l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, p))
                        .map_err(|e| format!("tcp {p}: {e}"))?;
                    l.set_nonblocking(true).map_err(|e| e.to_string())?;
                    tcp.push(l);
                }
                let mut udp = Vec::new();
                for p in UDP_PORTS {
                    let u = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, p))
                        .map_err(|e| format!("udp {p}: {e}"))?;
                    u.set_nonblocking(true).map_err(|e| e.to_string())?;
                    udp.push(u);
                }
                Ok((tcp, udp))
            })();
            let (tcp, udp) = match setup {
                Ok(s) => {
                    let _ = ready_tx.send(Ok(()));
                    s
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let mut buf = [0u8; 64];
            while !stop2.load(Ordering::Relaxed) {
                for l in &tcp {
                    while let Ok((mut conn, _)) = l.accept() {
                        if let Ok(SocketAddr::V4(local)) = conn.local_addr()
                            && let Ok(mut log) = accepted2.lock()
                        {
                            log.push(local);
                        }
                        let _ = conn.write_all(b"ok");
                    }
                }
                for u in &udp {
                    while let Ok((n, from)) = u.recv_from(&mut buf) {
                        let _ = u.send_to(&buf[..n], from);
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(Server {
                stop,
                accepted,
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("server did not start".to_string()),
        }
    }

    fn accepted(&self) -> Vec<SocketAddrV4> {
        self.accepted.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// What the kernel did to one probe, seen from the client.
fn fate_of(e: &std::io::Error) -> Verdict {
    match e.kind() {
        ErrorKind::ConnectionRefused
        | ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable => Verdict::Reject,
        _ => Verdict::Drop,
    }
}

/// Sends one probe from the client namespace: a TCP connect or a UDP datagram
/// that the server echoes.
fn probe(ns: &str, protocol: Protocol, dst: Ipv4Addr, port: u16) -> Result<Verdict, String> {
    let ns = ns.to_string();
    std::thread::spawn(move || -> Result<Verdict, String> {
        enter(&ns)?;
        let to = SocketAddr::V4(SocketAddrV4::new(dst, port));
        Ok(match protocol {
            Protocol::Tcp => match TcpStream::connect_timeout(&to, WAIT) {
                Ok(mut s) => {
                    let mut b = [0u8; 2];
                    let _ = s.set_read_timeout(Some(WAIT));
                    let _ = s.read(&mut b);
                    Verdict::Accept
                }
                Err(e) => fate_of(&e),
            },
            _ => {
                let u = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| e.to_string())?;
                u.connect(to).map_err(|e| e.to_string())?;
                u.set_read_timeout(Some(WAIT)).map_err(|e| e.to_string())?;
                u.send(b"probe").map_err(|e| e.to_string())?;
                let mut b = [0u8; 16];
                match u.recv(&mut b) {
                    Ok(_) => Verdict::Accept,
                    Err(e) => fate_of(&e),
                }
            }
        })
    })
    .join()
    .map_err(|_| "probe thread panicked".to_string())?
}

/// The router as the simulator sees it.
struct Router;

impl NetnsFacts for Router {
    fn is_local(&self, ip: Ipv4Addr) -> bool {
        ip == ROUTER_C || ip == ROUTER_S || ip.is_loopback()
    }

    fn primary_address(&self, ifname: &str) -> Option<Ipv4Addr> {
        match ifname {
            "rc" => Some(ROUTER_C),
            "rs" => Some(ROUTER_S),
            "lo" => Some(Ipv4Addr::LOCALHOST),
            _ => None,
        }
    }
}

fn packet(protocol: Protocol, dst: Ipv4Addr, dport: u16) -> Packet {
    Packet {
        src: CLIENT,
        sport: 40000,
        dst,
        dport,
        protocol,
        mark: 0,
        encap: None,
        reply: false,
        tos: 0,
        size: 0,
        icmp: None,
    }
}

/// The simulator's outcomes for a new connection at `hook` of the router.
fn simulate(rs: &NftRuleset, hook: Hook, p: &Packet) -> Vec<Outcome> {
    let (iif, oif) = match hook {
        Hook::Ingress | Hook::Prerouting => (Some("rc"), None),
        _ => (Some("rc"), Some("rs")),
    };
    let rules = HookRules {
        iptables: None,
        nft: Some(rs),
    };
    // Nothing NATed the connection before this hook in these scenarios.
    let conn = ConnState::at(Hook::Prerouting, p);
    traverse_hook(&rules, &Router, hook, p, iif, oif, &conn)
}

/// The one certain verdict the simulator gives.
fn sim_verdict(rs: &NftRuleset, hook: Hook, p: &Packet) -> Verdict {
    let outs = simulate(rs, hook, p);
    assert_eq!(outs.len(), 1, "{p}: expected one outcome, got {outs:#?}");
    assert!(!outs[0].uncertain, "{p}: uncertain: {outs:#?}");
    outs[0].verdict
}

/// Loads `rules`, sends each probe and compares the kernel's fate with the
/// simulator's verdict at `hook`.
fn compare(tag: &str, rules: &str, hook: Hook, probes: &[(Protocol, u16, Verdict)]) {
    if let Some(why) = skip_reason() {
        eprintln!("skipping kernel-verified nftables test {tag}: {why}");
        return;
    }
    let lab = Lab::new(tag).expect("lab");
    lab.load(rules).expect("ruleset loads");
    let _server = Server::start(lab.ns("s")).expect("server");
    let rs = lab.router_ruleset().expect("router ruleset");
    for &(protocol, port, expected) in probes {
        let kernel = probe(&lab.ns("c"), protocol, BACKEND_A, port).expect("probe");
        let sim = sim_verdict(&rs, hook, &packet(protocol, BACKEND_A, port));
        assert_eq!(
            kernel, expected,
            "{tag}: the kernel's fate of {protocol} {port}"
        );
        assert_eq!(
            sim, kernel,
            "{tag}: simulator vs kernel for {protocol} {port}"
        );
    }
}

#[test]
fn drop_in_inet_at_minus_10_beats_an_ip_filter_accept() {
    compare(
        "dropinet",
        "table ip ipf {
            chain forward_c { type filter hook forward priority 0; policy accept; accept; }
        }
        table inet guard {
            chain forward_c { type filter hook forward priority -10; policy accept;
                tcp dport 80 drop
                udp dport 53 drop
            }
        }",
        Hook::Forward,
        &[
            (Protocol::Tcp, 80, Verdict::Drop),
            (Protocol::Tcp, 8080, Verdict::Accept),
            (Protocol::Udp, 53, Verdict::Drop),
            (Protocol::Udp, 5353, Verdict::Accept),
        ],
    );
}

#[test]
fn a_netdev_ingress_chain_drops_before_anything_else_runs() {
    // The router's ingress on rc, where the client's packets come in; the
    // prerouting accept at -300 runs after it and cannot save them.
    compare(
        "ingress",
        "table netdev edge {
            chain rc_in { type filter hook ingress device \"rc\" priority 0; policy accept;
                ip daddr 10.88.2.2 tcp dport 80 drop
                udp dport 53 drop
            }
        }
        table ip early {
            chain pre { type filter hook prerouting priority -300; policy accept; accept; }
        }",
        Hook::Ingress,
        &[
            (Protocol::Tcp, 80, Verdict::Drop),
            (Protocol::Tcp, 8080, Verdict::Accept),
            (Protocol::Udp, 53, Verdict::Drop),
            (Protocol::Udp, 5353, Verdict::Accept),
        ],
    );
}

#[test]
fn accept_in_inet_does_not_save_a_packet_an_ip_chain_drops() {
    compare(
        "acceptinet",
        "table inet allow {
            chain forward_c { type filter hook forward priority 0; policy accept;
                tcp dport { 80, 81, 8080 } accept
                udp dport 5353 accept
            }
        }
        table ip block {
            chain forward_c { type filter hook forward priority 10; policy accept;
                tcp dport 80 drop
                tcp dport 81 reject with tcp reset
                udp dport 5353 reject
            }
        }",
        Hook::Forward,
        &[
            (Protocol::Tcp, 80, Verdict::Drop),
            (Protocol::Tcp, 81, Verdict::Reject),
            (Protocol::Tcp, 8080, Verdict::Accept),
            (Protocol::Udp, 5353, Verdict::Reject),
            (Protocol::Udp, 53, Verdict::Accept),
        ],
    );
}

#[test]
fn equal_priorities_run_in_reverse_registration_order() {
    // t1 is created first, t2 last: the kernel runs t2's chain first.
    compare(
        "tie",
        "table ip t1 {
            chain a { type filter hook forward priority 0; policy accept;
                tcp dport 81 meta mark 2 drop
                meta mark set 1
            }
        }
        table inet t2 {
            chain b { type filter hook forward priority 0; policy accept;
                tcp dport 80 meta mark 1 drop
                tcp dport 81 meta mark set 2
            }
        }",
        Hook::Forward,
        &[
            (Protocol::Tcp, 80, Verdict::Accept),
            (Protocol::Tcp, 81, Verdict::Drop),
        ],
    );
}

#[test]
fn ct_state_is_invalid_before_conntrack() {
    compare(
        "rawct",
        "table ip raw {
            chain pre { type filter hook prerouting priority raw; policy accept;
                tcp dport 80 ct state new drop
                tcp dport 81 ct state invalid drop
            }
        }",
        Hook::Prerouting,
        &[
            (Protocol::Tcp, 80, Verdict::Accept),
            (Protocol::Tcp, 81, Verdict::Drop),
        ],
    );
}

#[test]
fn a_nat_chain_at_minus_90_translates_before_a_filter_chain_at_minus_95() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping kernel-verified nftables test natcore: {why}");
        return;
    }
    let lab = Lab::new("natcore").expect("lab");
    lab.load(&format!(
        "table ip t {{
            chain n {{ type nat hook prerouting priority -90; policy accept;
                ip daddr {SERVICE} tcp dport 80 dnat to {BACKEND_B}:8080
            }}
            chain f {{ type filter hook prerouting priority -95; policy accept;
                ip daddr {BACKEND_B} tcp dport 8080 drop
            }}
        }}"
    ))
    .expect("ruleset loads");
    let _server = Server::start(lab.ns("s")).expect("server");
    let rs = lab.router_ruleset().expect("router ruleset");
    let kernel = probe(&lab.ns("c"), Protocol::Tcp, SERVICE, 80).expect("probe");
    assert_eq!(
        kernel,
        Verdict::Drop,
        "the kernel drops the translated packet"
    );
    assert_eq!(
        sim_verdict(&rs, Hook::Prerouting, &packet(Protocol::Tcp, SERVICE, 80)),
        kernel
    );
}

#[test]
fn kube_proxy_style_dnat_by_vmap_and_numgen_reaches_both_backends() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping kernel-verified nftables test kubedn: {why}");
        return;
    }
    let lab = Lab::new("kubedn").expect("lab");
    lab.load(&format!(
        "table ip kube-proxy {{
            map service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict;
                elements = {{ {SERVICE} . tcp . 80 : goto service-web }} }}
            chain nat-prerouting {{ type nat hook prerouting priority dstnat; policy accept; jump services; }}
            chain services {{ ip daddr . meta l4proto . th dport vmap @service-ips; }}
            chain service-web {{
                ip daddr {SERVICE} ip saddr != 10.244.0.0/16 jump mark-for-masquerade
                numgen random mod 2 vmap {{ 0 : goto endpoint-a, 1 : goto endpoint-b }}
            }}
            chain mark-for-masquerade {{ meta mark set meta mark | 0x4000; }}
            chain endpoint-a {{ meta l4proto tcp dnat to {BACKEND_A}:8080; }}
            chain endpoint-b {{ meta l4proto tcp dnat to {BACKEND_B}:8080; }}
        }}"
    ))
    .expect("ruleset loads");
    let server = Server::start(lab.ns("s")).expect("server");
    let rs = lab.router_ruleset().expect("router ruleset");
    for _ in 0..40 {
        let v = probe(&lab.ns("c"), Protocol::Tcp, SERVICE, 80).expect("probe");
        assert_eq!(v, Verdict::Accept, "every connection reaches a backend");
    }
    let kernel: BTreeSet<SocketAddrV4> = server.accepted().into_iter().collect();
    let outs = simulate(&rs, Hook::Prerouting, &packet(Protocol::Tcp, SERVICE, 80));
    assert!(
        outs.iter()
            .all(|o| o.verdict == Verdict::Accept && !o.uncertain),
        "{outs:#?}"
    );
    assert!(outs.iter().all(|o| o.packet.mark == 0x4000), "{outs:#?}");
    let sim: BTreeSet<SocketAddrV4> = outs
        .iter()
        .map(|o| SocketAddrV4::new(o.packet.dst, o.packet.dport))
        .collect();
    assert_eq!(sim, kernel, "the simulator's backends are the kernel's");
    assert_eq!(sim.len(), 2);
}
