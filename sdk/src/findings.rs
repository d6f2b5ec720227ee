//! Assertion helpers: check a netstack fact and record a suspicion when it is
//! wrong. Facts the host could not collect become warnings, never silent passes.

use std::net::Ipv4Addr;

use crate::host::{Fate, ForwardQuery, Forwarded, Hook, Interface, Netns, RouteKind, Verdict};
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

/// Findings gathered at one net-node: the suspicions a hop reports, and
/// whether a fact it needed was missing.
///
/// The checking methods ([`interface`](Findings::interface),
/// [`sysctl`](Findings::sysctl), [`forward`](Findings::forward),
/// [`neighbour`](Findings::neighbour), …) ask the host and record what is
/// wrong; a fact the host could not collect becomes a warning through
/// [`tolerate`](Findings::tolerate), never a silent pass. Finish the hop
/// with [`into_step`](Findings::into_step) or [`dropped`](Findings::dropped).
///
/// ```
/// use skoop_sdk::prelude::*;
///
/// let mut f = Findings::new();
/// f.info("node-1 has 2 ECMP next hops to 10.244.1.7; following the first");
/// f.info("node-1 has 2 ECMP next hops to 10.244.1.7; following the first"); // kept once
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
/// // A finding that does: the hop drops, and says why.
/// f.fatal("interface cni0 of node node-3 is administratively down (ip link set cni0 up)");
/// let step = f.dropped().unwrap();
/// assert_eq!(step.action, ActionKind::Drop);
/// assert_eq!(step.suspicions.len(), 3);
/// assert_eq!(step.suspicions[2].level, Level::Fatal);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub suspicions: Vec<Suspicion>,
    /// A fact this hop needed was not collected.
    pub unknown: bool,
}

impl Findings {
    pub fn new() -> Self {
        Findings::default()
    }

    /// Record a finding (duplicates are kept once).
    pub fn add(&mut self, level: Level, message: impl Into<String>) {
        self.push(Suspicion::new(level, message));
    }

    /// Record a finding about another net-node (a node by name, a pod as `ns/name`).
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

    /// Any critical or fatal finding so far.
    pub fn blocking(&self) -> bool {
        self.suspicions
            .iter()
            .any(|s| matches!(s.level, Level::Critical | Level::Fatal))
    }

    /// Add findings from elsewhere (the underlay, the service processor).
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

    /// Finish a step: attach the findings.
    pub fn into_step(self, step: NodeStep) -> NodeStep {
        step.with(self.suspicions)
    }

    /// Finish a branch that goes no further: a drop when a finding explains
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
    /// Returns it when present.
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
            self.add(expect.missing, format!("{what} is missing"));
            return Ok(None);
        };
        if let Some(kind) = expect.kind
            && iface.kind != kind
        {
            self.add(
                expect.missing,
                format!("{what} is a {} device, expected {kind}", iface.kind),
            );
        }
        if expect.state && !iface.admin_up {
            self.add(
                expect.down,
                format!("{what} is administratively down (ip link set {name} up)"),
            );
        } else if expect.state && !iface.oper_up {
            self.add(
                expect.down,
                format!("{what} is up but has no carrier (operationally down)"),
            );
        }
        if let Some(mtu) = expect.mtu
            && iface.mtu != mtu
        {
            self.add(
                expect.mtu_level,
                format!("{what} has MTU {}, expected {mtu}", iface.mtu),
            );
        }
        Ok(Some(iface))
    }

    /// Check that a sysctl has the wanted value; `false` when it has another
    /// (a value that was not collected is a warning and counts as fine).
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
                self.warning(format!("{what} was not collected; {why}"));
                Ok(true)
            }
            Some(Some(v)) if v.trim() == want => Ok(true),
            Some(Some(v)) => {
                self.add(
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

    /// Run a netfilter hook. A certain drop is fatal and names the deciding
    /// rule; an uncertain one is a warning with the notes. Returns the
    /// packet as it leaves the hook, or `None` when it is dropped.
    pub fn netfilter(
        &mut self,
        ns: &Netns,
        hook: Hook,
        packet: &Packet,
        iif: Option<&str>,
        oif: Option<&str>,
    ) -> Result<Option<Packet>> {
        let hook_name = hook_name(hook);
        let what = format!("iptables {hook_name} of {}", ns.label());
        let Some(outcomes) = self.tolerate(&what, ns.netfilter(hook, packet, iif, oif))? else {
            return Ok(Some(*packet));
        };
        for o in &outcomes {
            for note in &o.notes {
                self.warning(format!("{what}: {note}"));
            }
        }
        let accepted = outcomes.iter().find(|o| o.verdict == Verdict::Accept);
        let refused: Vec<_> = outcomes
            .iter()
            .filter(|o| o.verdict != Verdict::Accept)
            .collect();
        for o in &refused {
            let verb = if o.verdict == Verdict::Drop {
                "drops"
            } else {
                "rejects"
            };
            let by = match &o.decided_by {
                Some(hit) if hit.index == 0 => {
                    format!("{}/{} {}", hit.table, hit.chain, hit.rule)
                }
                Some(hit) => format!(
                    "{}/{} rule {} `{}`",
                    hit.table, hit.chain, hit.index, hit.rule
                ),
                None => hook_name.to_string(),
            };
            let msg = format!(
                "iptables {by} {verb} the {} {} on {}",
                packet.direction(),
                packet.tuple(),
                ns.label()
            );
            let certain = !o.uncertain && accepted.is_none();
            self.add(
                if certain {
                    Level::Fatal
                } else {
                    Level::Warning
                },
                msg,
            );
        }
        Ok(accepted.map(|o| o.packet))
    }

    /// Walk `q` through the netns's kernel pipeline (the host's
    /// [`Netns::forward`]). Facts it could not check and undecidable rules
    /// become warnings; every branch comes back, dropped ones included (see
    /// [`Findings::report_drop`]).
    pub fn forward(&mut self, ns: &Netns, q: &ForwardQuery) -> Result<Option<Vec<Forwarded>>> {
        let what = format!("the kernel pipeline of {}", ns.label());
        let Some(out) = self.tolerate(&what, ns.forward(q))? else {
            return Ok(None);
        };
        for f in &out {
            for u in &f.unchecked {
                self.warning(format!("cannot check {u}"));
            }
            for note in &f.notes {
                self.warning(format!("iptables of {}: {note}", ns.label()));
            }
        }
        Ok(Some(out))
    }

    /// The suspicion for a branch the pipeline dropped, worded after what
    /// decided it (the rule, the route and its table, the sysctl, the device).
    /// A drop that depends on an undecidable rule is a warning.
    pub fn report_drop(&mut self, ns: &Netns, packet: &Packet, f: &Forwarded) {
        let Fate::Drop(cause) = &f.fate else {
            return;
        };
        let level = if f.uncertain {
            Level::Warning
        } else {
            Level::Fatal
        };
        let dir = packet.direction();
        let msg = match cause.kind.as_str() {
            "netfilter" => {
                let by = match &cause.rule {
                    Some(hit) if hit.index == 0 => {
                        format!("{}/{} {}", hit.table, hit.chain, hit.rule)
                    }
                    Some(hit) => format!(
                        "{}/{} rule {} `{}`",
                        hit.table, hit.chain, hit.index, hit.rule
                    ),
                    None => "a hook".to_string(),
                };
                let verb = if cause.message.starts_with("rejected") {
                    "rejects"
                } else {
                    "drops"
                };
                format!(
                    "iptables {by} {verb} the {dir} {} on {}",
                    f.packet.tuple(),
                    ns.label()
                )
            }
            "no-route" => format!(
                "{} has no route to {} for the {dir} {}",
                ns.label(),
                f.packet.dst,
                f.packet.tuple()
            ),
            "route" => match &cause.route {
                Some(r) => {
                    let table = match r.table {
                        0 => format!("ip rule {}", r.rule_priority),
                        254 => format!("table main (ip rule {})", r.rule_priority),
                        t => format!("table {t} (ip rule {})", r.rule_priority),
                    };
                    format!(
                        "{} routes {} to a {} route (`{}`, {table}): the {dir} is discarded",
                        ns.label(),
                        f.packet.dst,
                        route_kind_name(r.kind),
                        r.text
                    )
                }
                None => format!("{}: {}", ns.label(), cause.message),
            },
            "unavailable" => {
                self.warning(format!("cannot check {}: {}", ns.label(), cause.message));
                self.unknown = true;
                return;
            }
            _ => format!(
                "{} drops the {dir} {}: {}",
                ns.label(),
                f.packet.tuple(),
                cause.message
            ),
        };
        self.add(level, msg);
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

    /// Something must listen at the packet's destination.
    pub fn listening(&mut self, ns: &Netns, packet: &Packet, level: Level) -> Result<()> {
        let what = format!(
            "{} port {} on {} of {}",
            protocol_name(packet.protocol),
            packet.dport,
            packet.dst,
            ns.label()
        );
        if packet.protocol == Protocol::Icmp {
            return Ok(());
        }
        if let Some(false) = self.tolerate(
            &format!("sockets of {}", ns.label()),
            ns.listening(packet.protocol, packet.dst, packet.dport),
        )? {
            self.add(level, format!("nothing listens on {what}"));
        }
        Ok(())
    }

    /// Route the packet and check the result is a usable unicast route.
    /// Returns the chosen routes (ECMP: several) or none when it cannot be routed.
    pub fn route(
        &mut self,
        ns: &Netns,
        packet: &Packet,
        iif: Option<&str>,
    ) -> Result<Option<Vec<crate::host::Route>>> {
        let what = format!("routes of {}", ns.label());
        let Some(routes) = self.tolerate(&what, ns.route(packet.dst, None, iif, packet.mark))?
        else {
            return Ok(None);
        };
        if routes.is_empty() {
            self.fatal(format!(
                "{} has no route to {} for the {} {}",
                ns.label(),
                packet.dst,
                packet.direction(),
                packet.tuple()
            ));
            return Ok(None);
        }
        let first = &routes[0];
        match first.kind {
            RouteKind::Unicast | RouteKind::Local => Ok(Some(routes)),
            other => {
                self.fatal(format!(
                    "{} routes {} to a {} route (`{}`): the {} is discarded",
                    ns.label(),
                    packet.dst,
                    route_kind_name(other),
                    first.text,
                    packet.direction()
                ));
                Ok(None)
            }
        }
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
