//! The kernel's forwarding pipeline for one netns, in the kernel's order:
//!
//! ```text
//! received on iif ─▶ (bridge port? bridged with br_netfilter, or up to the bridge's IP layer)
//!   ─▶ PREROUTING (raw, conntrack, mangle, nat DNAT; reply: reverse SNAT)
//!   ─▶ routing decision (policy rules with the packet's source, iif, mark, TOS)
//!   ─▶ rp_filter ─▶ local: INPUT (reverse DNAT for a reply) ─▶ delivered
//!               └▶ forward: ip_forward + conf.<iif>.forwarding ─▶ FORWARD
//!                  ─▶ POSTROUTING (SNAT/MASQUERADE; reply: reverse DNAT) ─▶ transmitted on oif
//! originated here ─▶ route ─▶ OUTPUT (nat DNAT, marks) ─▶ re-route if changed ─▶ POSTROUTING ─▶ oif
//! ```
//!
//! A netns's [`Conntrack`] is carried from one pass to the next (the request
//! creates entries; its reply finds them), so the reply undoes exactly the
//! NAT that was done here and `--ctstate DNAT`/`--ctorigdst` see it. Every
//! branch (statistic rules, unknown matches, ECMP) is one [`Forwarded`],
//! naming the rules and routes that decided it. Facts that were not collected
//! are never assumed fine: the outcome lists them in `unchecked`.

use std::net::Ipv4Addr;

use crate::netfilter::{ConnState, Hook, Outcome, RuleHit, Verdict};
use crate::packet::Packet;
use crate::{Netstack, NetstackError, RouteHit, RouteKind, RouteQuery, RouteSelectors};

/// Branches one pass may produce before the rest are cut (statistic × ECMP).
const MAX_BRANCHES: usize = 256;

/// One connection as this netns's conntrack holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtEntry {
    /// The packet as it entered the netns (the original tuple).
    pub orig: Packet,
    /// The packet as it left (after every NAT here); its reverse is the reply tuple.
    pub last: Packet,
    /// The connection mark.
    pub mark: u32,
}

impl CtEntry {
    /// ctstate DNAT: the destination was translated here.
    pub fn dnat(&self) -> bool {
        (self.orig.dst, self.orig.dport) != (self.last.dst, self.last.dport)
    }

    /// ctstate SNAT: the source was translated here.
    pub fn snat(&self) -> bool {
        (self.orig.src, self.orig.sport) != (self.last.src, self.last.sport)
    }

    /// `p` is this connection's reply.
    pub fn is_reply(&self, p: &Packet) -> bool {
        (p.src, p.sport, p.dst, p.dport, p.protocol)
            == (
                self.last.dst,
                self.last.dport,
                self.last.src,
                self.last.sport,
                self.last.protocol,
            )
    }

    fn conn(&self) -> ConnState {
        ConnState {
            dnat: Some(self.dnat()),
            snat: Some(self.snat()),
            ctmark: Some(self.mark),
            orig: Some(self.orig),
            untracked: false,
            invalid: false,
        }
    }
}

/// The conntrack table of one netns for one diagnosis.
#[derive(Debug, Clone, Default)]
pub struct Conntrack {
    entries: Vec<CtEntry>,
}

impl Conntrack {
    /// The connection `p` is the reply of.
    pub fn reply_of(&self, p: &Packet) -> Option<&CtEntry> {
        self.entries.iter().find(|e| e.is_reply(p))
    }

    /// Remember a new connection (once).
    pub fn insert(&mut self, e: CtEntry) {
        if !self.entries.contains(&e) {
            self.entries.push(e);
        }
    }

    pub fn entries(&self) -> &[CtEntry] {
        &self.entries
    }

    /// The connection a request packet continues: one this netns translated
    /// into exactly this packet.
    pub fn continued(&self, p: &Packet) -> Option<CtEntry> {
        self.entries
            .iter()
            .find(|e| e.last == *p && e.orig != *p)
            .copied()
    }

    /// Forget a connection (it was replaced by its continuation).
    pub fn remove(&mut self, e: &CtEntry) {
        self.entries.retain(|x| x != e);
    }
}

/// What the pipeline is asked.
#[derive(Debug, Clone)]
pub struct ForwardQuery {
    pub packet: Packet,
    /// The interface the packet arrives on; None: originated in this netns.
    pub iif: Option<String>,
    /// The address the sender resolved at L2 (its route's gateway, or the
    /// destination when on-link). On a bridge port, a frame for another port's
    /// address is bridged rather than routed. None: addressed to this netns.
    pub l2_next_hop: Option<Ipv4Addr>,
    /// The TOS byte (`ip rule … tos`).
    pub tos: u8,
    /// Translations that stand in for the netns's own nat rules where those
    /// cannot say (not collected, or in a table the simulation does not
    /// read): when the first nat hook leaves the destination unchanged, the
    /// packet is translated to each of these instead (a branch each).
    pub stand_in: Vec<Packet>,
    /// Conntrack holds the packet's connection in a state it is invalid for
    /// (a TCP segment after the handshake at a node that saw only this
    /// direction): ctstate INVALID, no NAT.
    pub ct_invalid: bool,
}

impl ForwardQuery {
    /// A packet this netns originates.
    pub fn originated(packet: Packet) -> ForwardQuery {
        ForwardQuery {
            packet,
            iif: None,
            l2_next_hop: None,
            tos: 0,
            stand_in: Vec::new(),
            ct_invalid: false,
        }
    }

    /// A packet arriving on `iif`, sent to the L2 next hop `l2_next_hop`.
    pub fn received(packet: Packet, iif: &str, l2_next_hop: Option<Ipv4Addr>) -> ForwardQuery {
        ForwardQuery {
            packet,
            iif: Some(iif.to_string()),
            l2_next_hop,
            tos: 0,
            stand_in: Vec::new(),
            ct_invalid: false,
        }
    }
}

/// How one branch ends in this netns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Delivered to a local socket (INPUT passed), received on `iif`.
    Deliver { iif: String },
    /// Leaves by `oif` toward the L2 neighbour `next_hop` (gateway, or the
    /// destination when on-link, or the bridged frame's destination).
    Transmit { oif: String, next_hop: Ipv4Addr },
    /// Dropped.
    Drop(DropCause),
}

/// Why a branch was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropCause {
    /// A netfilter rule or chain policy.
    Netfilter {
        hook: Hook,
        verdict: Verdict,
        by: Option<RuleHit>,
    },
    /// No route matched (ENETUNREACH).
    NoRoute,
    /// A blackhole, unreachable or prohibit route or rule.
    Route(Box<RouteHit>),
    /// Forwarding is off for the input device.
    NotForwarding { sysctl: String, value: String },
    /// Reverse-path filtering rejected the source.
    RpFilter {
        iif: String,
        mode: u8,
        reverse: String,
    },
    /// An interface on the way is missing, down or without carrier.
    Device { dev: String, why: String },
    /// A fact the decision needs was not collected.
    Unavailable(String),
}

impl std::fmt::Display for DropCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropCause::Netfilter { hook, verdict, by } => {
                let what = match verdict {
                    Verdict::Reject => "rejected",
                    _ => "dropped",
                };
                match by {
                    Some(r) if r.index == 0 => write!(
                        f,
                        "{what} by the policy of {} chain {} ({})",
                        r.table, r.chain, r.rule
                    ),
                    Some(r) => write!(
                        f,
                        "{what} by iptables {} {} rule {}: `{}`",
                        r.table, r.chain, r.index, r.rule
                    ),
                    None => write!(f, "{what} in {}", hook.chain_name()),
                }
            }
            DropCause::NoRoute => f.write_str("no route matches (network unreachable)"),
            DropCause::Route(r) => write!(f, "the route is `{}`", r.text),
            DropCause::NotForwarding { sysctl, value } => {
                write!(f, "{sysctl} is {value}, so the packet is not forwarded")
            }
            DropCause::RpFilter { iif, mode, reverse } => write!(
                f,
                "reverse-path filter (rp_filter={mode}) on {iif}: the route back to the source is {reverse}"
            ),
            DropCause::Device { dev, why } => write!(f, "interface {dev} {why}"),
            DropCause::Unavailable(m) => write!(f, "cannot tell: {m}"),
        }
    }
}

/// One branch through the netns.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub fate: Fate,
    /// The packet as it leaves (or is delivered, or was dropped).
    pub packet: Packet,
    /// The route that decided, when one did.
    pub route: Option<RouteHit>,
    /// The frame was bridged between two ports of a bridge (no routing).
    pub bridged: bool,
    /// The bridge port a bridged frame came in by: a bridge sends a frame
    /// back out of it only with the port's hairpin flag.
    pub ingress_port: Option<String>,
    /// Every rule that matched, over all hooks, in order.
    pub rules: Vec<RuleHit>,
    /// A rule could not be evaluated: the fate may differ.
    pub uncertain: bool,
    /// Notes on undecidable rules.
    pub notes: Vec<String>,
    /// Facts not collected that this pass would have checked ("cannot check …").
    pub unchecked: Vec<String>,
    /// The conntrack entry this branch belongs to (found for a reply, created for a request).
    pub conntrack: Option<CtEntry>,
    /// The packet as it entered this netns, with the source a socket without
    /// an address got from its route.
    pub orig: Packet,
    /// The connection mark after this pass (CONNMARK).
    pub ctmark: u32,
}

/// The state of one branch while it walks the pipeline.
#[derive(Debug, Clone)]
struct Walk {
    packet: Packet,
    orig: Packet,
    conn: ConnState,
    entry: Option<CtEntry>,
    route: Option<RouteHit>,
    bridged: bool,
    ingress_port: Option<String>,
    rules: Vec<RuleHit>,
    uncertain: bool,
    notes: Vec<String>,
    unchecked: Vec<String>,
}

impl Walk {
    fn end(self, fate: Fate) -> Forwarded {
        Forwarded {
            fate,
            packet: self.packet,
            route: self.route,
            bridged: self.bridged,
            ingress_port: self.ingress_port,
            rules: self.rules,
            uncertain: self.uncertain,
            notes: self.notes,
            unchecked: self.unchecked,
            conntrack: self.entry,
            orig: self.orig,
            ctmark: self.conn.ctmark.unwrap_or(0),
        }
    }

    fn drop(self, cause: DropCause) -> Forwarded {
        self.end(Fate::Drop(cause))
    }

    fn unchecked(&mut self, what: String) {
        if !self.unchecked.contains(&what) {
            self.unchecked.push(what);
        }
    }

    /// Reverse SNAT for a reply (nat PREROUTING / OUTPUT): its destination
    /// becomes the original source.
    fn unsnat(&mut self) {
        if let Some(e) = self.entry.filter(|e| e.snat() && self.packet.reply) {
            self.packet.dst = e.orig.src;
            self.packet.dport = e.orig.sport;
        }
    }

    /// Reverse DNAT for a reply (nat POSTROUTING / INPUT): its source becomes
    /// the original destination.
    fn undnat(&mut self) {
        if let Some(e) = self.entry.filter(|e| e.dnat() && self.packet.reply) {
            self.packet.src = e.orig.dst;
            self.packet.sport = e.orig.dport;
        }
    }
}

/// The query's stand-in translations, when the nat hook left a new
/// connection's destination as it was.
fn stand_in(w: Walk, q: &ForwardQuery) -> Vec<Walk> {
    if q.stand_in.is_empty()
        || w.packet.reply
        || (w.packet.dst, w.packet.dport) != (w.orig.dst, w.orig.dport)
    {
        return vec![w];
    }
    q.stand_in
        .iter()
        .map(|p| {
            let mut w = w.clone();
            w.packet.dst = p.dst;
            w.packet.dport = p.dport;
            w.packet.mark |= p.mark;
            w.conn.dnat = Some(true);
            w
        })
        .collect()
}

impl Netstack {
    /// Walk `q.packet` through this netns as the kernel would. `ct` is this
    /// netns's conntrack for the diagnosis: a reply finds its connection
    /// there, a request adds one per branch that gets through.
    pub fn forward(&self, ct: &mut Conntrack, q: &ForwardQuery) -> Vec<Forwarded> {
        let packet = q.packet;
        let entry = if packet.reply {
            ct.reply_of(&packet).copied()
        } else {
            None
        };
        // A request this netns already translated (kube-proxy's Service DNAT,
        // resolved by the host before the rest of the walk) continues that
        // connection: conntrack knows its original tuple and that it is DNATed.
        let continued = if packet.reply {
            None
        } else {
            ct.continued(&packet)
        };
        let first = if q.iif.is_some() {
            Hook::Prerouting
        } else {
            Hook::Output
        };
        let conn = match (entry, continued) {
            (Some(e), _) => e.conn(),
            (None, Some(e)) => ConnState {
                snat: Some(false),
                ..e.conn()
            },
            (None, None) => ConnState::at(first, &packet),
        };
        let conn = ConnState {
            invalid: q.ct_invalid,
            ..conn
        };
        let walk = Walk {
            packet,
            orig: packet,
            conn,
            entry,
            route: None,
            bridged: false,
            ingress_port: None,
            rules: Vec::new(),
            uncertain: false,
            notes: Vec::new(),
            unchecked: Vec::new(),
        };
        let mut out = match &q.iif {
            Some(iif) => self.received(walk, iif, q),
            None => self.originated(walk, q),
        };
        out.truncate(MAX_BRANCHES);
        if !packet.reply {
            if let Some(e) = continued {
                ct.remove(&e);
            }
            for f in &mut out {
                if matches!(f.fate, Fate::Drop(_)) {
                    continue;
                }
                let e = CtEntry {
                    orig: continued.map(|e| e.orig).unwrap_or(f.orig),
                    last: f.packet,
                    mark: f.ctmark,
                };
                ct.insert(e);
                f.conntrack = Some(e);
            }
        }
        out
    }

    /// A packet received on `iif`.
    fn received(&self, mut w: Walk, iif: &str, q: &ForwardQuery) -> Vec<Forwarded> {
        if let Err(cause) = self.device_up(&mut w, iif, false) {
            return vec![w.drop(cause)];
        }
        let mut out = Vec::new();
        for (w, o) in self.hook(w, Hook::Ingress, Some(iif), None) {
            match o {
                Some(cause) => out.push(w.drop(cause)),
                None => out.extend(self.received_past_ingress(w, iif, q)),
            }
        }
        out
    }

    /// A received packet the device's ingress chains let on.
    fn received_past_ingress(&self, mut w: Walk, iif: &str, q: &ForwardQuery) -> Vec<Forwarded> {
        let mut l3_iif = iif.to_string();
        let mut port = None;
        let master = self.interface(iif).and_then(|i| i.master.clone());
        if let Some(bridge) = master {
            if let Err(cause) = self.device_up(&mut w, &bridge, false) {
                return vec![w.drop(cause)];
            }
            if let Some(nh) = q.l2_next_hop.filter(|nh| !self.is_local(*nh)) {
                w.ingress_port = Some(iif.to_string());
                return self.bridged(w, &bridge, nh);
            }
            l3_iif = bridge;
            port = Some(iif);
        }
        let mut out = Vec::new();
        for (mut w, o) in self.hook(w, Hook::Prerouting, Some(&l3_iif), None) {
            if let Some(cause) = o {
                out.push(w.drop(cause));
                continue;
            }
            w.unsnat();
            for w in stand_in(w, q) {
                out.extend(self.route_received(w, &l3_iif, port, q.tos));
            }
        }
        out
    }

    /// br_netfilter: a frame addressed to the bridge itself whose destination
    /// PREROUTING translated to an address behind the same bridge is bridged
    /// back out (`br_nf_pre_routing_finish`'s bridged DNAT), not routed:
    /// neither ip_forward nor rp_filter apply, and it may leave by the port
    /// it came in by (hairpin).
    fn bridged_dnat(&self, w: &Walk, iif: &str, port: Option<&str>, hit: &RouteHit) -> bool {
        port.is_some()
            && hit.kind == RouteKind::Unicast
            && hit.dev.as_deref() == Some(iif)
            && (w.packet.dst, w.packet.dport) != (w.orig.dst, w.orig.dport)
            && !w.packet.reply
            && self.sysctl("net.bridge.bridge-nf-call-iptables") == Some("1")
    }

    /// A frame bridged between two ports: with br_netfilter the IP hooks see
    /// it (iif and oif the bridge), without it nothing does — not even
    /// conntrack, so a reply is not un-NATed.
    fn bridged(&self, mut w: Walk, bridge: &str, next_hop: Ipv4Addr) -> Vec<Forwarded> {
        w.bridged = true;
        let key = "net.bridge.bridge-nf-call-iptables";
        // The collector records the key only when br_netfilter is loaded.
        let nf = self.sysctl(key) == Some("1");
        let fate = Fate::Transmit {
            oif: bridge.to_string(),
            next_hop,
        };
        let port = w.ingress_port.clone();
        let mut out = Vec::new();
        // On each bridge hook the `bridge` family's chains (at priority
        // filter, -200) run before br_netfilter's IP hooks (0).
        let hook = |w: Walk, h: Hook, oif: Option<&str>| -> Vec<(Walk, Option<DropCause>)> {
            let mut after = Vec::new();
            for (w, o) in self.bridge_layer(w, h, port.as_deref(), None) {
                match o {
                    Some(_) => after.push((w, o)),
                    None if nf => after.extend(self.hook(w, h, Some(bridge), oif)),
                    None => after.push((w, None)),
                }
            }
            after
        };
        for (mut w, o) in hook(w, Hook::Prerouting, None) {
            if let Some(cause) = o {
                out.push(w.drop(cause));
                continue;
            }
            if nf {
                w.unsnat();
            }
            for (w, o) in hook(w, Hook::Forward, Some(bridge)) {
                if let Some(cause) = o {
                    out.push(w.drop(cause));
                    continue;
                }
                for (mut w, o) in hook(w, Hook::Postrouting, Some(bridge)) {
                    match o {
                        Some(cause) => out.push(w.drop(cause)),
                        None => {
                            if nf {
                                w.undnat();
                            }
                            out.push(w.end(fate.clone()));
                        }
                    }
                }
            }
        }
        out
    }

    /// The routing decision for a received packet, then INPUT or FORWARD.
    fn route_received(&self, w: Walk, iif: &str, port: Option<&str>, tos: u8) -> Vec<Forwarded> {
        let q = RouteQuery {
            dst: Some(w.packet.dst),
            src: Some(w.packet.src),
            iif: Some(iif.to_string()),
            mark: w.packet.mark,
        };
        let tos = if tos == 0 { w.packet.tos } else { tos };
        let hits = match self.route_with(&q, &RouteSelectors { tos, oif: None }) {
            Ok(h) => h,
            Err(e) => return vec![w.drop(DropCause::Unavailable(e.to_string()))],
        };
        if hits.is_empty() {
            return vec![w.drop(DropCause::NoRoute)];
        }
        let mut out = Vec::new();
        for hit in hits {
            let mut w = w.clone();
            w.route = Some(hit.clone());
            let bridged = self.bridged_dnat(&w, iif, port, &hit);
            if !bridged && let Err(cause) = self.rp_filter(&mut w, iif) {
                out.push(w.drop(cause));
                continue;
            }
            match hit.kind {
                RouteKind::Local | RouteKind::Broadcast => out.extend(self.input(w, iif)),
                RouteKind::Unicast => {
                    if bridged {
                        w.bridged = true;
                        w.ingress_port = port.map(str::to_string);
                    } else if let Err(cause) = self.forwarding(&mut w, iif) {
                        out.push(w.drop(cause));
                        continue;
                    }
                    let Some(oif) = hit.dev.clone() else {
                        out.push(w.drop(DropCause::NoRoute));
                        continue;
                    };
                    let next_hop = hit.gateway.unwrap_or(w.packet.dst);
                    for (w, o) in self.hook(w, Hook::Forward, Some(iif), Some(&oif)) {
                        match o {
                            Some(cause) => out.push(w.drop(cause)),
                            None => out.extend(self.postrouting(w, Some(iif), &oif, next_hop)),
                        }
                    }
                }
                _ => out.push(w.drop(DropCause::Route(Box::new(hit)))),
            }
        }
        out
    }

    /// Local delivery: INPUT, where a reply's DNAT is reversed.
    fn input(&self, w: Walk, iif: &str) -> Vec<Forwarded> {
        let mut out = Vec::new();
        for (mut w, o) in self.hook(w, Hook::Input, Some(iif), None) {
            if let Some(cause) = o {
                out.push(w.drop(cause));
                continue;
            }
            if let Some(ipvs) = self.ipvs_new_connection(&w) {
                out.extend(self.ipvs_forward(w, iif, ipvs));
                continue;
            }
            w.undnat();
            out.push(w.end(Fate::Deliver {
                iif: iif.to_string(),
            }));
        }
        out
    }

    /// IPVS takes a new connection to one of its virtual services at
    /// LOCAL_IN, after INPUT (kube-proxy's ipvs mode binds the VIPs to
    /// kube-ipvs0, so they route locally).
    fn ipvs_new_connection(&self, w: &Walk) -> Option<crate::ipvs::IpvsMatch> {
        if w.packet.reply || w.entry.is_some() || self.dump.absent.contains_key("ipvs") {
            return None;
        }
        crate::ipvs::lookup(self.dump.ipvs.as_deref()?, &w.packet)
    }

    /// IPVS sends the connection to each schedulable real server (a branch
    /// each): translated for Masq (the conntrack entry kube-proxy's
    /// `net.ipv4.vs.conntrack` keeps), routed as the director's own packet,
    /// out through POSTROUTING. No schedulable server: rejected.
    fn ipvs_forward(&self, w: Walk, iif: &str, m: crate::ipvs::IpvsMatch) -> Vec<Forwarded> {
        if m.rejects() {
            let mut w = w;
            w.notes.push(format!(
                "IPVS `{}` has no real server that takes new connections",
                m.text
            ));
            return vec![w.drop(DropCause::Netfilter {
                hook: Hook::Input,
                verdict: Verdict::Reject,
                by: Some(RuleHit {
                    table: "ipvs".into(),
                    chain: m.text.clone(),
                    index: 0,
                    rule: format!("{} (no schedulable real server)", m.text),
                    family: None,
                    handle: None,
                }),
            })];
        }
        let mut out = Vec::new();
        for b in m.branches {
            let mut w = w.clone();
            w.packet = b.packet;
            w.rules.push(RuleHit {
                table: "ipvs".into(),
                chain: m.text.clone(),
                index: 1,
                rule: format!(
                    "{} {}",
                    m.text,
                    crate::ipvs::render_real_server(&b.real_server)
                ),
                family: None,
                handle: None,
            });
            let hits = match self.local_route(&w.packet, None, w.packet.tos) {
                Ok(h) => h,
                Err(e) => {
                    out.push(w.drop(DropCause::Unavailable(e.to_string())));
                    continue;
                }
            };
            let Some(hit) = hits.into_iter().next() else {
                out.push(w.drop(DropCause::NoRoute));
                continue;
            };
            w.route = Some(hit.clone());
            match (hit.kind, hit.dev.clone()) {
                (RouteKind::Unicast, Some(oif)) => {
                    let next_hop = hit.gateway.unwrap_or(w.packet.dst);
                    out.extend(self.postrouting(w, Some(iif), &oif, next_hop));
                }
                (RouteKind::Local, _) => {
                    w.undnat();
                    out.push(w.end(Fate::Deliver {
                        iif: iif.to_string(),
                    }));
                }
                _ => out.push(w.drop(DropCause::Route(Box::new(hit)))),
            }
        }
        out
    }

    /// POSTROUTING, then the output device must be able to send.
    fn postrouting(
        &self,
        w: Walk,
        iif: Option<&str>,
        oif: &str,
        next_hop: Ipv4Addr,
    ) -> Vec<Forwarded> {
        let mut out = Vec::new();
        for (mut w, o) in self.hook(w, Hook::Postrouting, iif, Some(oif)) {
            if let Some(cause) = o {
                out.push(w.drop(cause));
                continue;
            }
            w.undnat();
            if let Err(cause) = self.device_up(&mut w, oif, true) {
                out.push(w.drop(cause));
                continue;
            }
            out.push(w.end(Fate::Transmit {
                oif: oif.to_string(),
                next_hop,
            }));
        }
        out
    }

    /// A packet this netns originates: route, OUTPUT, re-route when OUTPUT
    /// changed the destination or the mark, POSTROUTING.
    fn originated(&self, mut w: Walk, q: &ForwardQuery) -> Vec<Forwarded> {
        w.unsnat();
        // connect() looks the route up again once the source is chosen
        // (ip_route_connect), so `from` rules see the packet's source.
        let src = Some(w.packet.src);
        let hits = match self.local_route(&w.packet, src, q.tos) {
            Ok(h) => h,
            Err(e) => return vec![w.drop(DropCause::Unavailable(e.to_string()))],
        };
        let Some(first) = hits.first().cloned() else {
            return vec![w.drop(DropCause::NoRoute)];
        };
        // A socket not bound to an address (a tunnel device's own packets
        // without `local`) gets the route's source.
        if w.packet.src.is_unspecified()
            && let Some(src) = first.source
        {
            w.packet.src = src;
            w.orig.src = src;
        }
        let oif = first.dev.clone().unwrap_or_else(|| "lo".to_string());
        let mut out = Vec::new();
        let mut passed = Vec::new();
        for (w, o) in self.hook(w, Hook::Output, None, Some(&oif)) {
            match o {
                Some(cause) => out.push(w.drop(cause)),
                None => passed.extend(stand_in(w, q)),
            }
        }
        for w in passed {
            let changed = (w.packet.dst, w.packet.mark) != (w.orig.dst, w.orig.mark);
            let hits = if changed {
                match self.local_route(&w.packet, Some(w.packet.src), q.tos) {
                    Ok(h) => h,
                    Err(e) => {
                        out.push(w.drop(DropCause::Unavailable(e.to_string())));
                        continue;
                    }
                }
            } else {
                hits.clone()
            };
            if hits.is_empty() {
                out.push(w.drop(DropCause::NoRoute));
                continue;
            }
            for hit in hits {
                let mut w = w.clone();
                w.route = Some(hit.clone());
                match hit.kind {
                    RouteKind::Local | RouteKind::Broadcast => {
                        // Over loopback and back in: POSTROUTING, PREROUTING, INPUT.
                        for (w, o) in self.hook(w, Hook::Postrouting, None, Some("lo")) {
                            if let Some(cause) = o {
                                out.push(w.drop(cause));
                                continue;
                            }
                            for (w, o) in self.hook(w, Hook::Prerouting, Some("lo"), None) {
                                match o {
                                    Some(cause) => out.push(w.drop(cause)),
                                    None => out.extend(self.input(w, "lo")),
                                }
                            }
                        }
                    }
                    RouteKind::Unicast => {
                        let Some(oif) = hit.dev.clone() else {
                            out.push(w.drop(DropCause::NoRoute));
                            continue;
                        };
                        let next_hop = hit.gateway.unwrap_or(w.packet.dst);
                        out.extend(self.postrouting(w, None, &oif, next_hop));
                    }
                    _ => out.push(w.drop(DropCause::Route(Box::new(hit)))),
                }
            }
        }
        out
    }

    fn local_route(
        &self,
        p: &Packet,
        src: Option<Ipv4Addr>,
        tos: u8,
    ) -> Result<Vec<RouteHit>, NetstackError> {
        let q = RouteQuery {
            dst: Some(p.dst),
            src,
            iif: None,
            mark: p.mark,
        };
        let tos = if tos == 0 { p.tos } else { tos };
        self.route_with(&q, &RouteSelectors { tos, oif: None })
    }

    /// Traverse one hook; each outcome with the drop it caused, if any.
    fn hook(
        &self,
        w: Walk,
        hook: Hook,
        iif: Option<&str>,
        oif: Option<&str>,
    ) -> Vec<(Walk, Option<DropCause>)> {
        let found = self.netfilter_hook(hook, &w.packet, iif, oif, &w.conn);
        Self::apply(w, hook, found)
    }

    /// Traverse one hook of the bridge layer with a bridged frame.
    fn bridge_layer(
        &self,
        w: Walk,
        hook: Hook,
        iif: Option<&str>,
        oif: Option<&str>,
    ) -> Vec<(Walk, Option<DropCause>)> {
        let found = self.bridge_hook(hook, &w.packet, iif, oif, &w.conn);
        Self::apply(w, hook, found)
    }

    /// A hook's outcomes applied to the walk.
    fn apply(
        mut w: Walk,
        hook: Hook,
        (outcomes, unchecked): (Option<Vec<Outcome>>, Vec<String>),
    ) -> Vec<(Walk, Option<DropCause>)> {
        for u in unchecked {
            w.unchecked(u);
        }
        let Some(outcomes) = outcomes else {
            return vec![(w, None)];
        };
        outcomes
            .into_iter()
            .map(|o: Outcome| {
                let mut w = w.clone();
                w.packet = o.packet;
                w.conn = o.conn;
                w.rules.extend(o.trace);
                w.uncertain |= o.uncertain;
                for n in o.notes {
                    if !w.notes.contains(&n) {
                        w.notes.push(n);
                    }
                }
                let cause = match o.verdict {
                    Verdict::Accept => None,
                    verdict => Some(DropCause::Netfilter {
                        hook,
                        verdict,
                        by: o.decided_by,
                    }),
                };
                (w, cause)
            })
            .collect()
    }

    /// The interface exists and is up (with carrier, for sending).
    fn device_up(&self, w: &mut Walk, dev: &str, sending: bool) -> Result<(), DropCause> {
        if let Some(why) = self.dump.absent.get("interfaces") {
            w.unchecked(format!("interface {dev} of {} ({why})", self.label));
            return Ok(());
        }
        let Some(i) = self.interface(dev) else {
            return Err(DropCause::Device {
                dev: dev.to_string(),
                why: "does not exist".into(),
            });
        };
        if !i.admin_up {
            return Err(DropCause::Device {
                dev: dev.to_string(),
                why: "is administratively down".into(),
            });
        }
        if sending && !i.oper_up() {
            return Err(DropCause::Device {
                dev: dev.to_string(),
                why: format!("has no carrier (state {})", i.oper_state),
            });
        }
        Ok(())
    }

    /// A sysctl, or a note that it was not collected.
    fn sysctl_or_note(&self, w: &mut Walk, key: &str) -> Option<String> {
        match self.sysctl(key) {
            Some(v) => Some(v.to_string()),
            None => {
                w.unchecked(format!("sysctl {key} of {} (not collected)", self.label));
                None
            }
        }
    }

    /// ip_forward and the input device's forwarding switch.
    fn forwarding(&self, w: &mut Walk, iif: &str) -> Result<(), DropCause> {
        for key in [
            "net.ipv4.ip_forward".to_string(),
            format!("net.ipv4.conf.{iif}.forwarding"),
        ] {
            if let Some(v) = self.sysctl_or_note(w, &key)
                && v.trim() != "1"
            {
                return Err(DropCause::NotForwarding {
                    sysctl: key,
                    value: v.trim().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Reverse-path filtering: the higher of `all` and the device's mode.
    fn rp_filter(&self, w: &mut Walk, iif: &str) -> Result<(), DropCause> {
        if iif == "lo" || w.packet.src.is_unspecified() {
            return Ok(());
        }
        let mode = |w: &mut Walk, key: String| {
            self.sysctl_or_note(w, &key)
                .and_then(|v| v.trim().parse::<u8>().ok())
        };
        let all = mode(w, "net.ipv4.conf.all.rp_filter".into());
        let dev = mode(w, format!("net.ipv4.conf.{iif}.rp_filter"));
        let m = all.unwrap_or(0).max(dev.unwrap_or(0));
        if m == 0 {
            return Ok(());
        }
        let q = RouteQuery {
            dst: Some(w.packet.src),
            src: Some(w.packet.dst),
            iif: None,
            mark: 0,
        };
        let back = match self.route(&q) {
            Ok(b) => b,
            Err(e) => {
                w.unchecked(format!("rp_filter on {iif} ({e})"));
                return Ok(());
            }
        };
        let unicast: Vec<&RouteHit> = back
            .iter()
            .filter(|h| h.kind == RouteKind::Unicast)
            .collect();
        let ok = if m == 1 {
            unicast.iter().any(|h| h.dev.as_deref() == Some(iif))
        } else {
            !unicast.is_empty()
        };
        if ok {
            return Ok(());
        }
        let reverse = back
            .first()
            .map(|h| format!("`{}`", h.text))
            .unwrap_or_else(|| "missing".to_string());
        Err(DropCause::RpFilter {
            iif: iif.to_string(),
            mode: m,
            reverse,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::dump::NetnsDump;
    use crate::packet::Protocol;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("test address")
    }

    fn tcp(src: &str, dst: &str, dport: u16) -> Packet {
        Packet {
            src: ip(src),
            sport: 40000,
            dst: ip(dst),
            dport,
            protocol: Protocol::Tcp,
            mark: 0,
            encap: None,
            reply: false,
            tos: 0,
            size: 0,
            icmp: None,
        }
    }

    fn reply_of(p: &Packet) -> Packet {
        Packet {
            src: p.dst,
            sport: p.dport,
            dst: p.src,
            dport: p.sport,
            reply: true,
            ..*p
        }
    }

    const KUBE: &str = "*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-A - [0:0]
:KUBE-SEP-1 - [0:0]
:KUBE-SEP-2 - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A OUTPUT -j KUBE-SERVICES
-A POSTROUTING -j KUBE-POSTROUTING
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-A
-A KUBE-SVC-A -m statistic --mode random --probability 0.5 -j KUBE-SEP-1
-A KUBE-SVC-A -j KUBE-SEP-2
-A KUBE-SEP-1 -p tcp -j DNAT --to-destination 10.244.0.6:8080
-A KUBE-SEP-2 -p tcp -j DNAT --to-destination 10.244.1.7:8080
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MASQUERADE
COMMIT
";

    /// node-1: cni0 10.244.0.1/24 with two veths, eth0 192.168.0.1/24, a route
    /// to node-2's pod CIDR via 192.168.0.2.
    fn node(extra: serde_json::Value) -> Netstack {
        let mut d = json!({
            "interfaces": [
                {"index": 1, "name": "lo", "kind": "loopback", "mtu": 65536, "admin_up": true, "oper_state": "UNKNOWN", "addresses": ["127.0.0.1/8"]},
                {"index": 2, "name": "eth0", "kind": "device", "mtu": 1500, "admin_up": true, "oper_state": "UP", "addresses": ["192.168.0.1/24"]},
                {"index": 3, "name": "eth1", "kind": "device", "mtu": 1500, "admin_up": true, "oper_state": "UP", "addresses": ["172.16.0.1/24"]},
                {"index": 4, "name": "cni0", "kind": "bridge", "mtu": 1450, "admin_up": true, "oper_state": "UP", "addresses": ["10.244.0.1/24"]},
                {"index": 5, "name": "veth-a", "kind": "veth", "mtu": 1450, "admin_up": true, "oper_state": "UP", "master": "cni0"},
                {"index": 6, "name": "veth-b", "kind": "veth", "mtu": 1450, "admin_up": true, "oper_state": "UP", "master": "cni0"}
            ],
            "routes": [
                {"table": 255, "type": "local", "dst": "10.244.0.1/32", "dev": "cni0"},
                {"table": 255, "type": "local", "dst": "192.168.0.1/32", "dev": "eth0"},
                {"table": 255, "type": "local", "dst": "172.16.0.1/32", "dev": "eth1"},
                {"dst": "10.244.0.0/24", "dev": "cni0"},
                {"dst": "10.244.1.0/24", "gateway": "192.168.0.2", "dev": "eth0"},
                {"dst": "192.168.0.0/24", "dev": "eth0"},
                {"dst": "172.16.0.0/24", "dev": "eth1"},
                {"dst": "0.0.0.0/0", "gateway": "192.168.0.254", "dev": "eth0"}
            ],
            "rules": [
                {"priority": 0, "table": 255},
                {"priority": 32766, "table": 254},
                {"priority": 32767, "table": 253}
            ],
            "sysctls": {
                "net.ipv4.ip_forward": "1",
                "net.ipv4.conf.all.rp_filter": "0",
                "net.ipv4.conf.cni0.rp_filter": "0",
                "net.ipv4.conf.eth0.rp_filter": "0",
                "net.ipv4.conf.eth1.rp_filter": "0",
                "net.ipv4.conf.cni0.forwarding": "1",
                "net.ipv4.conf.eth0.forwarding": "1",
                "net.ipv4.conf.eth1.forwarding": "1",
                "net.bridge.bridge-nf-call-iptables": "1"
            },
            "iptables": KUBE
        });
        if let (Some(base), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                match (base.get_mut(k), v) {
                    (Some(serde_json::Value::Array(a)), serde_json::Value::Array(b)) => {
                        a.splice(0..0, b.iter().cloned());
                    }
                    (Some(serde_json::Value::Object(a)), serde_json::Value::Object(b)) => {
                        a.extend(b.clone());
                    }
                    _ => {
                        base.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        let dump: NetnsDump = serde_json::from_value(d).expect("test dump");
        Netstack::new("node node-1".into(), dump)
    }

    fn from(iif: &str, packet: Packet) -> ForwardQuery {
        ForwardQuery {
            packet,
            iif: Some(iif.into()),
            l2_next_hop: None,
            tos: 0,
            stand_in: Vec::new(),
            ct_invalid: false,
        }
    }

    fn fates(out: &[Forwarded]) -> Vec<Fate> {
        out.iter().map(|f| f.fate.clone()).collect()
    }

    #[test]
    fn service_dnat_comes_from_the_node_rules_and_the_reply_undoes_it() {
        let n = node(json!({}));
        let mut ct = Conntrack::default();
        let req = tcp("10.244.0.5", "10.96.0.10", 80);
        let out = n.forward(&mut ct, &from("veth-a", req));
        assert_eq!(
            fates(&out),
            vec![
                Fate::Transmit {
                    oif: "cni0".into(),
                    next_hop: ip("10.244.0.6")
                },
                Fate::Transmit {
                    oif: "eth0".into(),
                    next_hop: ip("192.168.0.2")
                },
            ]
        );
        assert_eq!(out[1].packet.dst, ip("10.244.1.7"));
        assert!(out[1].rules.iter().any(|r| r.chain == "KUBE-SEP-2"));
        assert_eq!(ct.entries().len(), 2);
        // The reply from the remote backend comes back on eth0 and leaves
        // toward the client with the ClusterIP as its source.
        let back = n.forward(&mut ct, &from("eth0", reply_of(&out[1].packet)));
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].packet.src, ip("10.96.0.10"));
        assert_eq!(back[0].packet.sport, 80);
        assert_eq!(
            back[0].fate,
            Fate::Transmit {
                oif: "cni0".into(),
                next_hop: ip("10.244.0.5")
            }
        );
    }

    #[test]
    fn a_service_missing_from_the_rules_is_not_translated() {
        let n = node(json!({"iptables": "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"}));
        let out = n.forward(
            &mut Conntrack::default(),
            &from("veth-a", tcp("10.244.0.5", "10.96.0.10", 80)),
        );
        // Un-translated, the ClusterIP follows the default route out of the cluster.
        assert_eq!(
            fates(&out),
            vec![Fate::Transmit {
                oif: "eth0".into(),
                next_hop: ip("192.168.0.254")
            }]
        );
    }

    #[test]
    fn forwarded_lookups_use_the_source_and_custom_tables() {
        let n = node(json!({
            "rules": [{"priority": 100, "from": "10.244.0.0/24", "table": 100}],
            "routes": [{"table": 100, "type": "blackhole", "dst": "0.0.0.0/0"}]
        }));
        let out = n.forward(
            &mut Conntrack::default(),
            &from("veth-a", tcp("10.244.0.5", "10.244.1.7", 8080)),
        );
        match &out[0].fate {
            Fate::Drop(DropCause::Route(r)) => {
                assert_eq!(r.kind, RouteKind::Blackhole);
                assert_eq!(r.table, 100);
            }
            f => panic!("expected a blackhole drop, got {f:?}"),
        }
        // The node's own traffic has another source: not selected.
        let own = n.forward(
            &mut Conntrack::default(),
            &ForwardQuery {
                packet: tcp("192.168.0.1", "10.244.1.7", 8080),
                iif: None,
                l2_next_hop: None,
                tos: 0,
                stand_in: Vec::new(),
                ct_invalid: false,
            },
        );
        assert!(matches!(own[0].fate, Fate::Transmit { .. }));
    }

    #[test]
    fn throw_falls_through_to_main_and_fwmark_rules_see_mangle_marks() {
        let n = node(json!({
            "rules": [
                {"priority": 100, "fwmark": 16, "table": 100},
                {"priority": 101, "from": "10.244.0.0/24", "table": 101}
            ],
            "routes": [
                {"table": 100, "type": "unreachable", "dst": "10.244.1.0/24"},
                {"table": 101, "type": "throw", "dst": "0.0.0.0/0"}
            ],
            "iptables": format!("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp --dport 9090 -j MARK --set-mark 0x10\nCOMMIT\n{KUBE}")
        }));
        let ok = n.forward(
            &mut Conntrack::default(),
            &from("veth-a", tcp("10.244.0.5", "10.244.1.7", 8080)),
        );
        assert!(matches!(ok[0].fate, Fate::Transmit { .. }));
        let marked = n.forward(
            &mut Conntrack::default(),
            &from("veth-a", tcp("10.244.0.5", "10.244.1.7", 9090)),
        );
        match &marked[0].fate {
            Fate::Drop(DropCause::Route(r)) => assert_eq!(r.kind, RouteKind::Unreachable),
            f => panic!("expected unreachable, got {f:?}"),
        }
    }

    #[test]
    fn a_tos_set_in_mangle_selects_a_tos_rule() {
        let n = node(json!({
            "rules": [{"priority": 100, "tos": 16, "table": 100}],
            "routes": [{"table": 100, "type": "blackhole", "dst": "0.0.0.0/0"}],
            "iptables": format!("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp --dport 9090 -j TOS --set-tos 0x10/0xff\nCOMMIT\n{KUBE}")
        }));
        let plain = n.forward(
            &mut Conntrack::default(),
            &from("veth-a", tcp("10.244.0.5", "10.244.1.7", 8080)),
        );
        assert!(matches!(plain[0].fate, Fate::Transmit { .. }));
        let marked = n.forward(
            &mut Conntrack::default(),
            &from("veth-a", tcp("10.244.0.5", "10.244.1.7", 9090)),
        );
        assert!(matches!(&marked[0].fate, Fate::Drop(DropCause::Route(r)) if r.table == 100));
    }

    #[test]
    fn forwarding_and_rp_filter_are_the_kernels() {
        let off = node(json!({"sysctls": {"net.ipv4.conf.cni0.forwarding": "0"}}));
        let out = off.forward(
            &mut Conntrack::default(),
            &from("veth-a", tcp("10.244.0.5", "10.244.1.7", 8080)),
        );
        assert!(matches!(
            &out[0].fate,
            Fate::Drop(DropCause::NotForwarding { sysctl, .. }) if sysctl == "net.ipv4.conf.cni0.forwarding"
        ));
        // A packet from 10.244.1.7 arriving on eth1, whose route back is via eth0.
        let strict = node(json!({"sysctls": {"net.ipv4.conf.eth1.rp_filter": "1"}}));
        let p = tcp("10.244.1.7", "10.244.0.5", 8080);
        let out = strict.forward(&mut Conntrack::default(), &from("eth1", p));
        assert!(matches!(
            &out[0].fate,
            Fate::Drop(DropCause::RpFilter { mode: 1, .. })
        ));
        let loose = node(json!({"sysctls": {"net.ipv4.conf.eth1.rp_filter": "2"}}));
        let out = loose.forward(&mut Conntrack::default(), &from("eth1", p));
        assert!(matches!(out[0].fate, Fate::Transmit { .. }));
    }

    #[test]
    fn absent_sysctls_are_reported_not_assumed() {
        let mut n = node(json!({}));
        n.dump.sysctls.remove("net.ipv4.conf.cni0.forwarding");
        let out = n.forward(
            &mut Conntrack::default(),
            &from("veth-a", tcp("10.244.0.5", "10.244.1.7", 8080)),
        );
        assert!(matches!(out[0].fate, Fate::Transmit { .. }));
        assert!(
            out[0]
                .unchecked
                .iter()
                .any(|u| u.contains("net.ipv4.conf.cni0.forwarding")),
            "{:?}",
            out[0].unchecked
        );
    }

    #[test]
    fn ctstate_dnat_is_decided_at_forward() {
        let n = node(json!({
            "iptables": format!("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -m conntrack --ctstate DNAT -j DROP\nCOMMIT\n{KUBE}")
        }));
        let out = n.forward(
            &mut Conntrack::default(),
            &from("veth-a", tcp("10.244.0.5", "10.96.0.10", 80)),
        );
        // The bridged-back backend (same node) and the remote one are both DNATed.
        assert!(out.iter().all(|f| matches!(
            &f.fate,
            Fate::Drop(DropCause::Netfilter {
                hook: Hook::Forward,
                ..
            })
        )));
        assert!(out.iter().all(|f| !f.uncertain));
        // A plain pod-to-pod flow is not.
        let out = n.forward(
            &mut Conntrack::default(),
            &from("veth-a", tcp("10.244.0.5", "10.244.1.7", 8080)),
        );
        assert!(matches!(out[0].fate, Fate::Transmit { .. }));
    }

    #[test]
    fn bridged_frames_see_iptables_only_with_br_netfilter() {
        let mut ct = Conntrack::default();
        let n = node(json!({}));
        let q = ForwardQuery {
            l2_next_hop: Some(ip("10.244.0.6")),
            ..from("veth-a", tcp("10.244.0.5", "10.244.0.6", 8080))
        };
        let out = n.forward(&mut ct, &q);
        assert!(out[0].bridged);
        assert_eq!(
            out[0].fate,
            Fate::Transmit {
                oif: "cni0".into(),
                next_hop: ip("10.244.0.6")
            }
        );
        // A Service reply bridged between two pods is un-DNATed only through br_netfilter.
        // (A new conntrack: the direct flow above has the same reply tuple.)
        let mut ct = Conntrack::default();
        let req = tcp("10.244.0.5", "10.96.0.10", 80);
        n.forward(&mut ct, &from("veth-a", req));
        let reply = ForwardQuery {
            l2_next_hop: Some(ip("10.244.0.5")),
            ..from("veth-b", reply_of(&tcp("10.244.0.5", "10.244.0.6", 8080)))
        };
        let back = n.forward(&mut ct, &reply);
        assert_eq!(back[0].packet.src, ip("10.96.0.10"));
        let mut off = node(json!({}));
        off.dump
            .sysctls
            .remove("net.bridge.bridge-nf-call-iptables");
        let back = off.forward(&mut ct, &reply);
        assert_eq!(back[0].packet.src, ip("10.244.0.6"));
    }

    #[test]
    fn masquerade_follows_the_mark_and_the_reply_is_un_snatted() {
        let rules = "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -s 172.16.0.0/24 -j MARK --set-xmark 0x4000/0x4000\n-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE\nCOMMIT\n";
        let n = node(json!({"iptables": rules}));
        let mut ct = Conntrack::default();
        let out = n.forward(
            &mut ct,
            &from("eth1", tcp("172.16.0.9", "10.244.0.6", 8080)),
        );
        assert_eq!(out[0].packet.src, ip("10.244.0.1"));
        let back = n.forward(&mut ct, &from("cni0", reply_of(&out[0].packet)));
        assert_eq!(back[0].packet.dst, ip("172.16.0.9"));
        assert_eq!(
            back[0].fate,
            Fate::Transmit {
                oif: "eth1".into(),
                next_hop: ip("172.16.0.9")
            }
        );
    }

    #[test]
    fn a_down_output_device_drops_and_originated_traffic_is_routed_after_output() {
        let n = node(json!({}));
        let out = n.forward(
            &mut Conntrack::default(),
            &ForwardQuery {
                packet: tcp("192.168.0.1", "10.96.0.10", 80),
                iif: None,
                l2_next_hop: None,
                tos: 0,
                stand_in: Vec::new(),
                ct_invalid: false,
            },
        );
        // OUTPUT DNAT re-routes: one backend over cni0, the other via node-2.
        let oifs: Vec<_> = out
            .iter()
            .filter_map(|f| match &f.fate {
                Fate::Transmit { oif, .. } => Some(oif.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(oifs, vec!["cni0".to_string(), "eth0".to_string()]);
        let mut down = node(json!({}));
        if let Some(i) = down.dump.interfaces.iter_mut().find(|i| i.name == "eth0") {
            i.oper_state = "DOWN".into();
        }
        let out = down.forward(
            &mut Conntrack::default(),
            &from("veth-a", tcp("10.244.0.5", "10.244.1.7", 8080)),
        );
        assert!(matches!(&out[0].fate, Fate::Drop(DropCause::Device { dev, .. }) if dev == "eth0"));
    }
}
