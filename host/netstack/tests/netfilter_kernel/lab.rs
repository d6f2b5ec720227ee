//! The namespaces of one differential run: two clients, a router that carries
//! the ruleset, and a server. Torn down on drop (also when a test panics).

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

/// A client netns and the router interface it is attached to.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub name: &'static str,
    pub addr: Ipv4Addr,
    pub router_if: &'static str,
    pub router_addr: Ipv4Addr,
}

pub const CLIENT_A: Client = Client {
    name: "a",
    addr: Ipv4Addr::new(10, 99, 1, 2),
    router_if: "cali0a",
    router_addr: Ipv4Addr::new(10, 99, 1, 1),
};

pub const CLIENT_B: Client = Client {
    name: "b",
    addr: Ipv4Addr::new(10, 99, 3, 2),
    router_if: "ethb0",
    router_addr: Ipv4Addr::new(10, 99, 3, 1),
};

/// The router's interface towards the server.
pub const SERVER_IF: &str = "srv0";
pub const ROUTER_SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 99, 2, 1);
/// The router's default gateway: an address nobody has (packets die at ARP).
pub const DEAD_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 99, 2, 254);
pub const SERVER_ADDRS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 99, 2, 2),
    Ipv4Addr::new(10, 99, 2, 3),
    Ipv4Addr::new(10, 99, 2, 4),
];
pub const TCP_PORTS: [u16; 5] = [80, 443, 8080, 9000, 30080];
pub const UDP_PORTS: [u16; 2] = [53, 5353];

pub fn router_addrs() -> [Ipv4Addr; 3] {
    [
        CLIENT_A.router_addr,
        CLIENT_B.router_addr,
        ROUTER_SERVER_ADDR,
    ]
}

pub use crate::command::run;

/// The iptables backend a corpus is loaded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Nft,
    Legacy,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Nft => "nft",
            Backend::Legacy => "legacy",
        }
    }

    fn restore(self) -> &'static str {
        match self {
            Backend::Nft => "iptables-restore",
            Backend::Legacy => "iptables-legacy-restore",
        }
    }

    fn save(self) -> &'static str {
        match self {
            Backend::Nft => "iptables-save",
            Backend::Legacy => "iptables-legacy-save",
        }
    }
}

/// The namespaces of one run, deleted on drop.
pub struct Lab {
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
    /// `sknf-<pid>-<tag>-`: unique per process and per corpus.
    pub fn new(tag: &str) -> Lab {
        Lab {
            prefix: format!("sknf-{}-{tag}-", std::process::id()),
            created: Vec::new(),
        }
    }

    pub fn ns(&self, short: &str) -> String {
        format!("{}{short}", self.prefix)
    }

    fn add_ns(&mut self, short: &str) -> Result<String, String> {
        let name = self.ns(short);
        run(&["ip", "netns", "add", &name], None)?;
        self.created.push(name.clone());
        self.ip(&name, &["link", "set", "lo", "up"])?;
        Ok(name)
    }

    fn ip(&self, ns: &str, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["ip", "-n", ns];
        full.extend_from_slice(args);
        run(&full, None)
    }

    pub fn exec(&self, ns: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        run(&full, stdin)
    }

    fn sysctl(&self, ns: &str, key: &str, value: &str) -> Result<(), String> {
        self.exec(ns, &["sysctl", "-qw", &format!("{key}={value}")], None)
            .map(|_| ())
    }

    /// A veth from `a` (named `a_if`) to `b` (named `b_if`).
    fn veth(&self, a: &str, a_if: &str, b: &str, b_if: &str) -> Result<(), String> {
        let tmp = format!("sk{}", self.created.len());
        self.ip(
            a,
            &["link", "add", a_if, "type", "veth", "peer", "name", &tmp],
        )?;
        self.ip(a, &["link", "set", &tmp, "netns", b])?;
        self.ip(b, &["link", "set", &tmp, "name", b_if])?;
        self.ip(a, &["link", "set", a_if, "up"])?;
        self.ip(b, &["link", "set", b_if, "up"])?;
        Ok(())
    }

    fn addr(&self, ns: &str, dev: &str, cidr: &str) -> Result<(), String> {
        self.ip(ns, &["addr", "add", cidr, "dev", dev]).map(|_| ())
    }

    /// Builds the topology; the router gets no ruleset yet.
    pub fn build(&mut self) -> Result<(), String> {
        let r = self.add_ns("r")?;
        let s = self.add_ns("s")?;
        for key in [
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
            "net.ipv4.icmp_ratelimit=0",
            "net.ipv4.icmp_msgs_per_sec=100000",
        ] {
            let (k, v) = key.split_once('=').unwrap_or((key, ""));
            self.sysctl(&r, k, v)?;
        }
        for c in [CLIENT_A, CLIENT_B] {
            let ns = self.add_ns(c.name)?;
            self.veth(&r, c.router_if, &ns, "eth0")?;
            self.addr(&r, c.router_if, &format!("{}/24", c.router_addr))?;
            self.addr(&ns, "eth0", &format!("{}/24", c.addr))?;
            self.ip(
                &ns,
                &["route", "add", "default", "via", &c.router_addr.to_string()],
            )?;
            self.sysctl(&r, &format!("net.ipv4.conf.{}.rp_filter", c.router_if), "0")?;
        }
        self.veth(&r, SERVER_IF, &s, "eth0")?;
        self.addr(&r, SERVER_IF, &format!("{ROUTER_SERVER_ADDR}/24"))?;
        for a in SERVER_ADDRS {
            self.addr(&s, "eth0", &format!("{a}/24"))?;
        }
        self.ip(
            &s,
            &[
                "route",
                "add",
                "default",
                "via",
                &ROUTER_SERVER_ADDR.to_string(),
            ],
        )?;
        self.ip(
            &r,
            &["route", "add", "default", "via", &DEAD_GATEWAY.to_string()],
        )?;
        Ok(())
    }

    /// Loads a ruleset (and ipsets first) into the router.
    pub fn load(
        &self,
        iptables: &str,
        ipsets: &str,
        ip_rules: &[&str],
        ip_routes: &[&str],
        backend: Backend,
    ) -> Result<(), String> {
        let r = self.ns("r");
        if !ipsets.trim().is_empty() {
            self.exec(&r, &["ipset", "restore"], Some(ipsets))?;
        }
        self.exec(&r, &[backend.restore()], Some(iptables))?;
        for rule in ip_rules {
            let mut args = vec!["rule", "add"];
            args.extend(rule.split_whitespace());
            self.ip(&r, &args)?;
        }
        for route in ip_routes {
            let mut args = vec!["route", "add"];
            args.extend(route.split_whitespace());
            self.ip(&r, &args)?;
        }
        Ok(())
    }

    /// What a collector would dump from the router: `iptables-save`, `ipset save`.
    pub fn router_dumps(&self, backend: Backend) -> Result<(String, String), String> {
        let r = self.ns("r");
        Ok((
            self.exec(&r, &[backend.save()], None)?,
            self.exec(&r, &["ipset", "save"], None)?,
        ))
    }
}

/// Moves the calling thread into netns `ns` (only this thread).
pub fn enter(ns: &str) -> Result<(), String> {
    let f = File::open(format!("/var/run/netns/{ns}")).map_err(|e| format!("netns {ns}: {e}"))?;
    // SAFETY: setns on a valid fd only changes this thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(format!("setns {ns}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}
