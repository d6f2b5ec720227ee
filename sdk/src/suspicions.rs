//! Assertion helpers: check a netstack fact and record a suspicion when it is
//! wrong. Facts the host could not collect become warnings, never silent passes.

use std::net::Ipv4Addr;

use crate::host::{Hook, Interface, Netns, RouteKind};
use crate::types::*;
use crate::{Error, Result};

/// What an interface is expected to look like.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Driver kind (veth, bridge, vxlan, ...), if it matters.
    pub kind: Option<&'a str>,
    /// Exact MTU, if it matters.
    pub mtu: Option<u32>,
    /// Level when the interface is missing.
    pub missing: Level,
    /// Level when it is down.
    pub down: Level,
    /// Level when the MTU differs.
    pub mtu_level: Level,
    /// Check the link state (off when the caller explains a down link itself).
    pub state: bool,
}

impl Default for Expect<'_> {
    fn default() -> Self {
        Expect {
            kind: None,
            mtu: None,
            missing: Level::Fatal,
            down: Level::Fatal,
            mtu_level: Level::Fatal,
            state: true,
        }
    }
}

/// Suspicions gathered at one net-node: the suspicions a hop reports, and
/// whether a fact it needed was missing.
///
/// The checking methods ([`interface`](Suspicions::interface),
/// [`sysctl`](Suspicions::sysctl), [`neighbour`](Suspicions::neighbour), …)
/// ask the host and record what is wrong; a fact the host could not collect
/// becomes a warning through [`tolerate`](Suspicions::tolerate), never a
/// silent pass. Turn them into a [`HopAnswer`](crate::HopAnswer) with
/// `.into()`, or, for a plugin walking a hop itself, finish its step with
/// [`into_step`](Suspicions::into_step) or [`dropped`](Suspicions::dropped).
///
/// ```
/// use skoop_sdk::prelude::*;
///
/// let mut f = Suspicions::new();
/// f.info("flannel's VtepMAC of node-2 is 8e:b7:e5:7f:ec:c1");
/// f.info("flannel's VtepMAC of node-2 is 8e:b7:e5:7f:ec:c1"); // kept once
/// assert_eq!(f.suspicions.len(), 1);
/// assert!(!f.blocking());
///
/// // A fact that was not collected: a warning, and `None` instead of the value.
/// let missing: Result<Option<String>> = Err(Error::Unavailable("no dump of node-3".into()));
/// assert_eq!(f.tolerate("sysctl net.ipv4.ip_forward of node node-3", missing).unwrap(), None);
/// assert!(f.unknown);
///
/// // Nothing explains a drop yet: the hop "cannot tell".
/// assert_eq!(f.clone().dropped().unwrap().action, ActionKind::Unknown);
///
/// // A suspicion that does: the hop drops, and says why.
/// f.fatal("interface cni0 of node node-3 is administratively down (ip link set cni0 up)");
/// let step = f.dropped().unwrap();
/// assert_eq!(step.action, ActionKind::Drop);
/// assert_eq!(step.suspicions.len(), 3);
/// assert_eq!(step.suspicions[2].level, Level::Fatal);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Suspicions {
    pub suspicions: Vec<Suspicion>,
    /// A fact this hop needed was not collected.
    pub unknown: bool,
    /// Branches of the host's walk (by index) the CNI knows go no further.
    pub ends: Vec<usize>,
}

impl Suspicions {
    pub fn new() -> Self {
        Suspicions::default()
    }

    /// Record a suspicion (duplicates are kept once).
    pub fn add(&mut self, level: Level, message: impl Into<String>) {
        self.push(Suspicion::new(level, message));
    }

    /// Record a suspicion about another net-node (a node by name, a pod as `ns/name`).
    pub fn add_about(&mut self, net_node: &str, level: Level, message: impl Into<String>) {
        self.push(Suspicion::new(level, message).about(net_node));
    }

    fn push(&mut self, s: Suspicion) {
        if !self.suspicions.contains(&s) {
            self.suspicions.push(s);
        }
    }

    pub fn info(&mut self, message: impl Into<String>) {
        self.add(Level::Info, message)
    }
    pub fn warning(&mut self, message: impl Into<String>) {
        self.add(Level::Warning, message)
    }
    pub fn critical(&mut self, message: impl Into<String>) {
        self.add(Level::Critical, message)
    }
    pub fn fatal(&mut self, message: impl Into<String>) {
        self.add(Level::Fatal, message)
    }

    /// The branch `index` of the host's walk goes no further (the CNI
    /// knows why; say it with a suspicion).
    pub fn end(&mut self, index: usize) {
        if !self.ends.contains(&index) {
            self.ends.push(index);
        }
    }

    /// A fatal fault of branch `index` of `walk`: the CNI's design says the
    /// packet goes no further, though the kernel sent it on (a branch the
    /// kernel already stopped keeps its own end).
    pub fn stop(&mut self, walk: &crate::KernelWalk, index: usize, message: impl Into<String>) {
        self.fatal(message);
        if walk.branches.get(index).is_some_and(|b| b.sent().is_some()) {
            self.end(index);
        }
    }

    /// Any critical or fatal suspicion so far.
    pub fn blocking(&self) -> bool {
        self.suspicions
            .iter()
            .any(|s| matches!(s.level, Level::Critical | Level::Fatal))
    }

    /// Add suspicions from elsewhere (the underlay, the service processor).
    pub fn extend(&mut self, more: Vec<Suspicion>) {
        for s in more {
            self.push(s);
        }
    }

    /// A fact that was not collected becomes a warning and `None`; other
    /// errors propagate.
    pub fn tolerate<T>(&mut self, what: &str, r: Result<T>) -> Result<Option<T>> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(Error::Unavailable(why)) => {
                self.warning(format!("cannot check {what}: {why}"));
                self.unknown = true;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Finish a step: attach the suspicions.
    pub fn into_step(self, step: NodeStep) -> NodeStep {
        step.with(self.suspicions)
    }

    /// The suspicions gathered, for a [`HopAnswer`](crate::HopAnswer).
    pub fn into_suspicions(self) -> Vec<Suspicion> {
        self.suspicions
    }

    /// Finish a branch that goes no further: a drop when a suspicion explains
    /// it, "unknown" when a missing fact is why the hop cannot tell.
    pub fn dropped(self) -> Result<NodeStep> {
        let step = if self.unknown && !self.blocking() {
            NodeStep::unknown()
        } else {
            NodeStep::drop()
        };
        Ok(self.into_step(step))
    }

    /// Check an interface: present, of the right kind, up, with the right MTU.
    /// Returns it when present. What is wrong with a present device is said of
    /// the net-node that holds it (once, whichever hop looks); a missing one
    /// of the hop that needed it.
    pub fn interface(
        &mut self,
        ns: &Netns,
        name: &str,
        expect: Expect<'_>,
    ) -> Result<Option<Interface>> {
        let what = format!("interface {name} of {}", ns.label());
        let Some(found) = self.tolerate(&what, ns.interface(name))? else {
            return Ok(None);
        };
        let Some(iface) = found else {
            // Found missing where the walk needed it: that hop's suspicion.
            self.add(expect.missing, format!("{what} is missing"));
            return Ok(None);
        };
        if let Some(kind) = expect.kind
            && iface.kind != kind
        {
            self.add_about(
                ns.net_node(),
                expect.missing,
                format!("{what} is a {} device, expected {kind}", iface.kind),
            );
        }
        if expect.state && !iface.admin_up {
            self.add_about(
                ns.net_node(),
                expect.down,
                format!("{what} is administratively down (ip link set {name} up)"),
            );
        } else if expect.state && !iface.oper_up {
            self.add_about(
                ns.net_node(),
                expect.down,
                format!("{what} is up but has no carrier (operationally down)"),
            );
        }
        if let Some(mtu) = expect.mtu
            && iface.mtu != mtu
        {
            self.add_about(
                ns.net_node(),
                expect.mtu_level,
                format!("{what} has MTU {}, expected {mtu}", iface.mtu),
            );
        }
        Ok(Some(iface))
    }

    /// Check that a sysctl has the wanted value; `false` when it has another
    /// (a value that was not collected is a warning and counts as fine).
    /// Said of the net-node that holds it.
    pub fn sysctl(
        &mut self,
        ns: &Netns,
        key: &str,
        want: &str,
        level: Level,
        why: &str,
    ) -> Result<bool> {
        let what = format!("sysctl {key} of {}", ns.label());
        match self.tolerate(&what, ns.sysctl(key))? {
            None => Ok(true),
            Some(None) => {
                self.add_about(
                    ns.net_node(),
                    Level::Warning,
                    format!("{what} was not collected; {why}"),
                );
                Ok(true)
            }
            Some(Some(v)) if v.trim() == want => Ok(true),
            Some(Some(v)) => {
                self.add_about(
                    ns.net_node(),
                    level,
                    format!("{what} is {}, must be {want}: {why}", v.trim()),
                );
                Ok(false)
            }
        }
    }

    /// Policy routing must keep the `local` and `main` lookups; extra rules are worth a warning.
    pub fn ip_rules(&mut self, ns: &Netns) -> Result<()> {
        let what = format!("ip rules of {}", ns.label());
        let Some(rules) = self.tolerate(&what, ns.ip_rules())? else {
            return Ok(());
        };
        for (table, name) in [(255, "local"), (254, "main")] {
            if !rules.iter().any(|r| r.table == Some(table)) {
                self.critical(format!("{what}: no rule looks up table {name}"));
            }
        }
        let extra: Vec<&str> = rules
            .iter()
            .filter(|r| !matches!(r.table, Some(253..=255)))
            .map(|r| r.text.as_str())
            .collect();
        if !extra.is_empty() {
            self.warning(format!(
                "{what}: policy routing present: {}",
                extra.join("; ")
            ));
        }
        Ok(())
    }

    /// The neighbour of `ip` on `dev` must not be FAILED/INCOMPLETE.
    pub fn neighbour(&mut self, ns: &Netns, dev: &str, ip: Ipv4Addr, level: Level) -> Result<()> {
        let what = format!("neighbour {ip} on {dev} of {}", ns.label());
        if let Some(Some(n)) = self.tolerate(&what, ns.neighbour(dev, ip))?
            && n.failed()
        {
            self.add(
                level,
                format!("{what} is {}: it does not answer ARP", n.state),
            );
        }
        Ok(())
    }
}

/// The name `ip route` uses for a route kind.
pub fn route_kind_name(kind: RouteKind) -> &'static str {
    match kind {
        RouteKind::Unicast => "unicast",
        RouteKind::Local => "local",
        RouteKind::Broadcast => "broadcast",
        RouteKind::Blackhole => "blackhole",
        RouteKind::Unreachable => "unreachable",
        RouteKind::Prohibit => "prohibit",
        RouteKind::Throw => "throw",
    }
}

/// The iptables name of a hook.
pub fn hook_name(hook: Hook) -> &'static str {
    match hook {
        Hook::Prerouting => "PREROUTING",
        Hook::Input => "INPUT",
        Hook::Forward => "FORWARD",
        Hook::Output => "OUTPUT",
        Hook::Postrouting => "POSTROUTING",
    }
}
