//! The diagnosis loop: the source sends, then every next hop receives,
//! breadth-first, until each branch is delivered or dropped. A delivered
//! request starts the reply, which travels back through conntrack (NAT undone
//! where it was done). Loops and runaway paths are suspicions, not hangs.

use std::collections::{HashSet, VecDeque};
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::facts::Facts;
use crate::flow::Flow;
use crate::kernel_walk::{BranchEnd, KernelWalk};
use crate::path::{Action, Decision, LinkKind, NetNode, NetNodeKind, NodeStep, Transmission};
use crate::plugin::{Answer, CallError, Failure, HopAnswer, Plugin, RefusedKind, Role};
use crate::service::ProxyConfig;
use crate::settings::ProxyMode;
use crate::suspicion::{Level, Suspicion};
use crate::walk::{Arrival, Walker};
use skoop_netstack::packet::{Packet, Protocol};

/// The ephemeral port simulated clients send from.
pub const EPHEMERAL_PORT: u16 = 40000;
/// Hops one branch may take before it is called a loop.
pub const MAX_HOPS: usize = 32;
/// Hops a whole diagnosis may take (ECMP and backends multiply branches).
pub const MAX_STEPS: usize = 4096;

/// Which way a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Leg {
    Request,
    Reply,
}

/// One link a packet crossed.
#[derive(Debug, Clone, Serialize)]
pub struct LinkRecord {
    pub from: NetNode,
    pub to: NetNode,
    #[serde(rename = "type")]
    pub kind: LinkKind,
    /// What the receiving net-node did.
    pub action: Action,
    pub packet: Packet,
    pub iif: Option<String>,
    pub oif: Option<String>,
    /// The JSON keeps the report format's name for it.
    #[serde(rename = "direction")]
    pub leg: Leg,
}

/// How a branch ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum End {
    Delivered {
        at: NetNode,
    },
    Dropped {
        at: NetNode,
        /// The packet of a branch dropped while others went on.
        #[serde(skip_serializing_if = "Option::is_none")]
        packet: Option<Packet>,
    },
    Loop {
        at: NetNode,
    },
    HopLimit {
        at: NetNode,
    },
    Unfinished {
        at: NetNode,
        why: String,
    },
}

/// A pipeline decision filed under the hop whose evaluation asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HopDecision {
    pub at: NetNode,
    /// The JSON keeps the report format's name for it.
    #[serde(rename = "direction")]
    pub leg: Leg,
    #[serde(flatten)]
    pub decision: crate::path::Decision,
}

/// One complete path of the packet: the links in order and how it ended.
#[derive(Debug, Clone, Serialize)]
pub struct Branch {
    /// The JSON keeps the report format's name for it.
    #[serde(rename = "direction")]
    pub leg: Leg,
    pub links: Vec<usize>,
    pub start: NetNode,
    pub end: End,
}

/// The outcome of a diagnosis.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Trace {
    pub nodes: Vec<NetNode>,
    pub links: Vec<LinkRecord>,
    pub branches: Vec<Branch>,
    pub suspicions: Vec<Suspicion>,
    /// Policy verdicts where the request arrived (per direction).
    pub policy: Vec<skoop_policy::DirectionVerdict>,
    /// What the kernel pipeline decided at each hop, in the order it was asked.
    pub decisions: Vec<HopDecision>,
    /// The first extension failure; the branches it ended are unfinished
    /// and the trace is partial.
    #[serde(skip)]
    pub error: Option<CallError>,
}

impl Trace {
    fn node(&mut self, hop: &NetNode) {
        if !self.nodes.contains(hop) {
            self.nodes.push(hop.clone());
        }
    }

    fn suspect(&mut self, hop: Option<&NetNode>, level: Level, message: String) {
        let node = hop.map(|h| h.id.clone());
        // "cannot check A: why" and "cannot check B: why" become "cannot check A, B: why".
        if let Some((what, why)) = message
            .strip_prefix("cannot check ")
            .and_then(|m| m.split_once(": "))
            && let Some(prev) = self.suspicions.iter_mut().find(|s| {
                s.level == level
                    && s.node == node
                    && s.message.starts_with("cannot check ")
                    && s.message.ends_with(&format!(": {why}"))
            })
        {
            let head = prev
                .message
                .trim_end_matches(&format!(": {why}"))
                .to_string();
            if !head.split(", ").any(|w| w.ends_with(what)) {
                prev.message = format!("{head}, {what}: {why}");
            }
            return;
        }
        let s = Suspicion {
            level,
            node,
            message,
        };
        if !self.suspicions.contains(&s) {
            self.suspicions.push(s);
        }
    }

    /// Any critical or fatal suspicion.
    pub fn broken(&self) -> bool {
        self.suspicions.iter().any(|s| s.level.blocking())
    }
}

/// The packet travelling the other way.
fn reversed(p: &Packet) -> Packet {
    Packet {
        src: p.dst,
        sport: p.dport,
        dst: p.src,
        dport: p.sport,
        protocol: p.protocol,
        mark: 0,
        encap: None,
        reply: true,
        tos: 0,
        size: 0,
        icmp: None,
    }
}

struct Item {
    from: NetNode,
    tx: Transmission,
    trail: Vec<usize>,
    seen: HashSet<(NetNode, Packet)>,
    start: NetNode,
    /// The devices the packet left each net-node by so far, with their MTUs.
    mtus: Vec<MtuLimit>,
}

/// Failed extension calls after which a diagnosis stops: each branch a
/// failure ends is reported unfinished, and a plugin that fails everywhere
/// does not cost one timeout per branch.
pub const MAX_FAILED_CALLS: usize = 3;

/// Runs one diagnosis over a plugin instance.
pub struct Diagnosis<'a> {
    policy: Option<&'a crate::policy::PolicyCheck>,
    facts: &'a Facts,
    plugin: &'a mut dyn Plugin,
    trace: Trace,
    steps: usize,
    /// Calls into the extension that failed (trap, timeout, malformed answer).
    failed_calls: usize,
    /// Translations the cloud made to packets entering from outside (as
    /// entered, as sent): a load balancer undoes them on the way back.
    entries: Vec<(Packet, Packet)>,
    /// What the pipeline decided at the hop being walked, until it is filed.
    pending_decisions: Vec<Decision>,
    /// Every arrival at a net-node, by direction: where each direction's
    /// packets pass (a node seeing only one of them finds later packets
    /// INVALID).
    arrivals: Vec<(Leg, NetNode, Transmission)>,
}

/// Where the flow starts: a pod, or a node (also for host-network pods, and
/// for an address the plugin says a node owns, such as a tunnel device's).
pub fn source_net_node(
    facts: &Facts,
    plugin: &mut dyn Plugin,
    src: Ipv4Addr,
) -> Result<Option<NetNode>, CallError> {
    if let Some(n) = facts.view.node_by_ip(src) {
        return Ok(Some(NetNode {
            kind: NetNodeKind::Node,
            id: n.name.clone(),
        }));
    }
    if let Some(p) = facts.view.pod_by_ip(src) {
        return Ok(Some(NetNode {
            kind: NetNodeKind::Pod,
            id: p.id(),
        }));
    }
    let owner = plugin.address_owner(src)?;
    Ok(owner
        .filter(|n| facts.view.nodes.contains_key(n))
        .map(|id| NetNode {
            kind: NetNodeKind::Node,
            id,
        }))
}

impl<'a> Diagnosis<'a> {
    pub fn new(facts: &'a Facts, plugin: &'a mut dyn Plugin) -> Self {
        Diagnosis {
            policy: None,
            facts,
            plugin,
            trace: Trace::default(),
            steps: 0,
            failed_calls: 0,
            entries: Vec::new(),
            pending_decisions: Vec::new(),
            arrivals: Vec::new(),
        }
    }

    /// Evaluate the policies where the request arrives.
    pub fn with_policy(mut self, policy: Option<&'a crate::policy::PolicyCheck>) -> Self {
        self.policy = policy;
        self
    }

    /// `delivered`: the simulated request reached `hop` (else the verdict is
    /// on the objects alone).
    fn check_policy(&mut self, source: &NetNode, hop: &NetNode, packet: &Packet, delivered: bool) {
        let Some(check) = self.policy else { return };
        let src_pod = (source.kind == NetNodeKind::Pod).then_some(source.id.as_str());
        let verdicts = match hop.kind {
            NetNodeKind::Pod => check.at_pod(self.facts, src_pod, packet, &hop.id),
            // Egress to an address that is no pod: outside, or a node (its
            // host network, hostNetwork pods): ipBlock and ANP `nodes` peers.
            NetNodeKind::External | NetNodeKind::Node => src_pod
                .and_then(|s| check.to_outside(s, packet))
                .into_iter()
                .collect(),
        };
        for v in verdicts {
            let at = NetNode {
                kind: NetNodeKind::Pod,
                id: v.pod.clone(),
            };
            if let Some((level, message)) = check.suspicion(&v) {
                self.trace.suspect(Some(&at), level, message);
            }
            if let Some(message) = check.disagreement(&v, delivered) {
                self.trace.suspect(Some(&at), Level::Warning, message);
            }
            if !self.trace.policy.contains(&v) {
                self.trace.policy.push(v);
            }
        }
    }

    /// The request reached no destination in the simulation (facts missing, or dropped):
    /// the policies are still evaluated on the objects, at the destination pod or at each
    /// ready backend of the Service (target port), with the source unchanged.
    fn policy_from_objects(&mut self, source: &NetNode, request: &Packet) {
        if self.policy.is_none() {
            return;
        }
        let arrivals = crate::policy::arrivals_from_objects(&self.facts.view, request);
        for (hop, p) in arrivals {
            self.check_policy(source, &hop, &p, false);
        }
    }

    /// The request reached no destination (facts missing, or dropped): what
    /// the objects alone say is wrong — the Service lacks the port or has
    /// no ready endpoint, a pod at either end is not running or not ready,
    /// its node is NotReady — unless the walk already said so at a node.
    fn objects_say(&mut self, request: &Packet) {
        for (at, level, message) in crate::objects::flow_states(self.facts, request) {
            if !self.trace.suspicions.iter().any(|s| s.message == message) {
                self.trace.suspect(at.as_ref(), level, message);
            }
        }
    }

    /// Add cluster-wide suspicions (plugin setup).
    pub fn global(&mut self, suspicions: Vec<Suspicion>) {
        self.record(None, &suspicions);
    }

    /// Record suspicions reported at `hop`, or at the net-node they are about.
    fn record(&mut self, hop: Option<&NetNode>, suspicions: &[Suspicion]) {
        for f in suspicions {
            let about = f.node.as_ref().map(|id| NetNode {
                kind: if id.contains('/') {
                    NetNodeKind::Pod
                } else {
                    NetNodeKind::Node
                },
                id: id.clone(),
            });
            self.trace
                .suspect(about.as_ref().or(hop), f.level, f.message.clone());
        }
    }

    /// Diagnose `flow` from `source`.
    pub fn run(mut self, source: NetNode, flow: Flow) -> Trace {
        // Conntrack starts empty for every pass (live mode re-runs a diagnosis).
        if let Ok(mut ct) = self.facts.conntrack.lock() {
            ct.clear();
        }
        let request = Packet {
            src: flow.src,
            sport: EPHEMERAL_PORT,
            dst: flow.dst,
            dport: flow.dport,
            protocol: flow.protocol,
            mark: 0,
            encap: None,
            reply: false,
            tos: 0,
            size: 0,
            icmp: None,
        };
        let delivered = self.walk(&source, request, Leg::Request);
        if delivered.is_empty() {
            self.policy_from_objects(&source, &request);
            self.objects_say(&request);
        }
        for (hop, packet) in delivered {
            if self.given_up() {
                break;
            }
            self.check_policy(&source, &hop, &packet, true);
            self.reply(&source, &hop, &packet, &request);
        }
        if !self.given_up() {
            self.check_one_way(&source);
        }
        self.explain_silent_failures();
        self.trace
    }

    /// A TCP connection whose request and reply take different ways: a
    /// node forwarding only one direction has the connection in conntrack in
    /// a state the later packets are INVALID for — after the SYN for a node
    /// that sees only the request, the SYN-ACK itself for one that sees only
    /// the reply. Walk those packets there as INVALID; a rule dropping them
    /// breaks the connection.
    fn check_one_way(&mut self, source: &NetNode) {
        // Only a reply that gets back shows the way the connection takes;
        // one dropped earlier is reported as such.
        let replied = self
            .trace
            .branches
            .iter()
            .any(|b| b.leg == Leg::Reply && matches!(b.end, End::Delivered { .. }));
        if !replied {
            return;
        }
        let seen = |arrivals: &[(Leg, NetNode, Transmission)], d: Leg| -> Vec<NetNode> {
            let mut v: Vec<NetNode> = Vec::new();
            for (_, h, _) in arrivals.iter().filter(|(dir, _, _)| *dir == d) {
                if !v.contains(h) {
                    v.push(h.clone());
                }
            }
            v
        };
        let request_hops = seen(&self.arrivals, Leg::Request);
        let reply_hops = seen(&self.arrivals, Leg::Reply);
        let mut checked: Vec<NetNode> = Vec::new();
        for (dir, at, tx) in self.arrivals.clone() {
            let other = match dir {
                Leg::Request => &reply_hops,
                Leg::Reply => &request_hops,
            };
            if at.kind != NetNodeKind::Node
                || tx.packet.protocol != Protocol::Tcp
                || other.contains(&at)
                || at == *source
                || checked.contains(&at)
            {
                continue;
            }
            // The reply starts where the request was served.
            let served_here = self.trace.branches.iter().any(|b| {
                b.leg == Leg::Request && matches!(&b.end, End::Delivered { at: d } if *d == at)
            });
            if served_here {
                continue;
            }
            checked.push(at.clone());
            let arrival = Arrival {
                ct_invalid: true,
                ..Arrival::over(&tx)
            };
            let walk = Walker {
                facts: self.facts,
                plugin: &mut *self.plugin,
            }
            .walk(&at, &arrival);
            let Ok(walk) = walk else { continue };
            let cause = walk.branches.iter().find_map(|b| match &b.end {
                BranchEnd::Dropped { kind, cause, .. } if kind == "netfilter" => {
                    Some(cause.clone())
                }
                _ => None,
            });
            let Some(cause) = cause else { continue };
            let others: Vec<String> = other
                .iter()
                .filter(|h| h.kind == NetNodeKind::Node)
                .map(|h| h.id.clone())
                .collect();
            let message = match dir {
                Leg::Request => format!(
                    "{at} forwards the request but not its reply (the reply passes {}): its conntrack sees one direction, so the client's packets after the SYN are INVALID there, and {cause} — connections open but carry no data",
                    if others.is_empty() {
                        "no node".to_string()
                    } else {
                        others.join(", ")
                    }
                ),
                Leg::Reply => format!(
                    "{at} forwards the reply but never saw the request (the request passes {}): its conntrack finds the SYN-ACK INVALID, and {cause} — connections never open",
                    if others.is_empty() {
                        "no node".to_string()
                    } else {
                        others.join(", ")
                    }
                ),
            };
            self.trace.suspect(Some(&at), Level::Critical, message);
        }
    }

    /// Start the reply at the net-node that served the request.
    fn reply(&mut self, client: &NetNode, server: &NetNode, served: &Packet, request: &Packet) {
        let reply = reversed(served);
        if server.kind == NetNodeKind::External {
            return self.reply_from_outside(client, server, reply, request);
        }
        let arrivals = self.walk(server, reply, Leg::Reply);
        self.check_arrivals(client, arrivals, request)
    }

    /// The outside answers: the reply enters the cluster at whoever owns its destination.
    fn reply_from_outside(
        &mut self,
        client: &NetNode,
        server: &NetNode,
        reply: Packet,
        request: &Packet,
    ) {
        let owner = self.facts.view.node_by_ip(reply.dst).or_else(|| {
            self.facts.view.nodes.values().find(|n| {
                self.facts
                    .netstacks
                    .node(&n.name)
                    .is_ok_and(|ns| ns.is_local(reply.dst))
            })
        });
        let Some(node) = owner else {
            self.trace.suspect(
                Some(server),
                Level::Fatal,
                format!(
                    "the reply from {} is addressed to {}, which is not routable outside the cluster: the request left without masquerade (SNAT)",
                    reply.src, reply.dst
                ),
            );
            return;
        };
        let hop = NetNode {
            kind: NetNodeKind::Node,
            id: node.name.clone(),
        };
        // The reply comes back on the interface the request left by.
        let left_by = self
            .trace
            .links
            .iter()
            .rev()
            .find(|l| l.leg == Leg::Request && &l.to == server && l.from == hop)
            .and_then(|l| l.oif.clone());
        let tx = Transmission {
            next: hop,
            kind: LinkKind::External,
            packet: reply,
            oif: None,
            iif: left_by.or_else(|| node.host_interface.clone()),
            next_hop_address: None,
            dst_mac: None,
            mtu: None,
        };
        let arrivals = self.bfs(
            vec![Item {
                from: server.clone(),
                tx,
                trail: vec![],
                seen: HashSet::new(),
                start: server.clone(),
                mtus: vec![],
            }],
            Leg::Reply,
        );
        self.check_arrivals(client, arrivals, request)
    }

    /// The reply must reach the client from the address it sent to.
    fn check_arrivals(
        &mut self,
        client: &NetNode,
        arrivals: Vec<(NetNode, Packet)>,
        request: &Packet,
    ) {
        for (hop, mut p) in arrivals {
            // The client's own netns undoes its NAT on delivery (INPUT).
            let label = match hop.kind {
                NetNodeKind::Node => format!("node {}", hop.id),
                NetNodeKind::Pod => format!("pod {}", hop.id),
                NetNodeKind::External => String::new(),
            };
            if let Ok(tables) = self.facts.conntrack.lock()
                && let Some(e) = tables.get(&label).and_then(|ct| ct.reply_of(&p))
                && e.dnat()
            {
                p.src = e.orig.dst;
                p.sport = e.orig.dport;
            }
            // The cloud (a load balancer, an elastic IP) undoes on the way
            // out what it translated on the way in.
            if hop.kind == NetNodeKind::External
                && let Some((_, sent)) = self.entries.iter().find(|(entered, sent)| {
                    (p.src, p.sport) == (entered.dst, entered.dport) && p.dst == sent.src
                })
            {
                p.src = sent.dst;
                p.sport = sent.dport;
            }
            if &hop != client {
                self.trace.suspect(
                    Some(&hop),
                    Level::Critical,
                    format!("the reply is delivered to {hop} instead of the client {client}"),
                );
            } else if (p.src, p.sport) != (request.dst, request.dport) {
                self.trace.suspect(
                    Some(&hop),
                    Level::Critical,
                    format!(
                        "the reply reaches {client} from {}:{}, but the request went to {}:{}: no connection matches it (asymmetric path or missing NAT) and the client drops it",
                        p.src, p.sport, request.dst, request.dport
                    ),
                );
            }
        }
    }

    /// Make sure a failed flow always carries a blocking suspicion.
    fn explain_silent_failures(&mut self) {
        if self.trace.error.is_some() || self.trace.broken() {
            return;
        }
        let unfinished = self
            .trace
            .branches
            .iter()
            .any(|b| matches!(b.end, End::Unfinished { .. }));
        if unfinished {
            return; // already explained by warnings: facts were missing
        }
        let dropped: Vec<NetNode> = self
            .trace
            .branches
            .iter()
            .filter_map(|b| match &b.end {
                End::Dropped { at, .. } => Some(at.clone()),
                _ => None,
            })
            .collect();
        if let Some(at) = dropped.first() {
            self.trace.suspect(
                Some(at),
                Level::Fatal,
                format!("the packet is dropped at {at} and no check explains why"),
            );
        }
    }

    fn call_failed(&mut self, at: &NetNode, e: CallError) -> Option<NodeStep> {
        match &e.failure {
            Failure::Refused(RefusedKind::Unavailable, m) => {
                self.trace
                    .suspect(Some(at), Level::Warning, format!("cannot check {at}: {m}"));
                None
            }
            _ => {
                // The branch ends here; the others go on, on an instance the
                // host re-creates, until too many calls have failed.
                self.failed_calls += 1;
                if self.trace.error.is_none() {
                    self.trace.error = Some(e);
                } else {
                    self.trace
                        .suspect(Some(at), Level::Warning, format!("also: {e}"));
                }
                None
            }
        }
    }

    /// Too many failed calls: stop following branches.
    fn given_up(&self) -> bool {
        self.failed_calls >= MAX_FAILED_CALLS
    }

    /// Send `packet` from `start` and follow every branch. Returns where it was delivered.
    fn walk(&mut self, start: &NetNode, packet: Packet, dir: Leg) -> Vec<(NetNode, Packet)> {
        self.trace.node(start);
        let step = match self.send(start, packet) {
            Ok(s) => s,
            Err(e) => {
                let why = e.to_string();
                self.call_failed(start, e);
                self.trace.branches.push(Branch {
                    leg: dir,
                    links: vec![],
                    start: start.clone(),
                    end: End::Unfinished {
                        at: start.clone(),
                        why,
                    },
                });
                return vec![];
            }
        };
        self.file_decisions(start, dir);
        self.record(Some(start), &step.suspicions);
        for p in &step.dropped {
            self.trace.branches.push(Branch {
                leg: dir,
                links: vec![],
                start: start.clone(),
                end: End::Dropped {
                    at: start.clone(),
                    packet: Some(*p),
                },
            });
        }
        if step.transmissions.is_empty() && step.dropped.is_empty() {
            let end = match step.action {
                Action::Serve => End::Delivered { at: start.clone() },
                Action::Unknown => End::Unfinished {
                    at: start.clone(),
                    why: "facts missing".into(),
                },
                _ => End::Dropped {
                    at: start.clone(),
                    packet: None,
                },
            };
            self.trace.branches.push(Branch {
                leg: dir,
                links: vec![],
                start: start.clone(),
                end,
            });
            return vec![];
        }
        if step.transmissions.is_empty() {
            return vec![];
        }
        let mut seen = HashSet::new();
        seen.insert((start.clone(), packet));
        let items = step
            .transmissions
            .into_iter()
            .map(|mut tx| {
                // A full-size packet: as large as the device it leaves by allows.
                if let Some((_, mtu)) = &tx.mtu {
                    tx.packet.size = *mtu;
                }
                Item {
                    from: start.clone(),
                    mtus: mtu_of(start, &tx),
                    tx,
                    trail: vec![],
                    seen: seen.clone(),
                    start: start.clone(),
                }
            })
            .collect();
        self.bfs(items, dir)
    }

    fn bfs(&mut self, items: Vec<Item>, dir: Leg) -> Vec<(NetNode, Packet)> {
        let mut queue: VecDeque<Item> = items.into();
        let mut delivered = Vec::new();
        while let Some(mut item) = queue.pop_front() {
            if self.given_up() {
                break;
            }
            let at = item.tx.next.clone();
            self.trace.node(&at);
            let link = self.trace.links.len();
            self.trace.links.push(LinkRecord {
                from: item.from.clone(),
                to: at.clone(),
                kind: item.tx.kind,
                action: Action::Forward,
                packet: item.tx.packet,
                iif: item.tx.iif.clone(),
                oif: item.tx.oif.clone(),
                leg: dir,
            });
            item.trail.push(link);
            let finish = |trace: &mut Trace, item: &Item, end: End| {
                trace.branches.push(Branch {
                    leg: dir,
                    links: item.trail.clone(),
                    start: item.start.clone(),
                    end,
                });
            };
            self.steps += 1;
            if item.trail.len() > MAX_HOPS || self.steps > MAX_STEPS {
                self.trace.suspect(
                    Some(&at),
                    Level::Fatal,
                    format!(
                        "the {} is still travelling after {} hops at {at}: a forwarding loop or a runaway path",
                        leg_name(dir),
                        item.trail.len()
                    ),
                );
                finish(&mut self.trace, &item, End::HopLimit { at });
                continue;
            }
            if !item.seen.insert((at.clone(), item.tx.packet)) {
                self.trace.suspect(
                    Some(&at),
                    Level::Fatal,
                    format!(
                        "forwarding loop: the {} {} comes back to {at}",
                        leg_name(dir),
                        item.tx.packet.tuple()
                    ),
                );
                finish(&mut self.trace, &item, End::Loop { at });
                continue;
            }
            self.arrivals.push((dir, at.clone(), item.tx.clone()));
            let received = self.receive(&item.from, &item.tx);
            self.file_decisions(&at, dir);
            let (delivered_here, step) = match received {
                Ok(r) => r,
                Err(e) => {
                    let why = e.to_string();
                    self.call_failed(&at, e);
                    finish(&mut self.trace, &item, End::Unfinished { at, why });
                    continue;
                }
            };
            self.trace.links[link].action = step.action;
            self.record(Some(&at), &step.suspicions);
            for p in &step.dropped {
                finish(
                    &mut self.trace,
                    &item,
                    End::Dropped {
                        at: at.clone(),
                        packet: Some(*p),
                    },
                );
            }
            if step.action == Action::Serve && step.transmissions.is_empty() {
                let (packet, recv_mtu) = delivered_here
                    .first()
                    .copied()
                    .unwrap_or((item.tx.packet, None));
                self.check_mtu(dir, &item.mtus, &packet, recv_mtu);
                delivered.push((at.clone(), packet));
                finish(&mut self.trace, &item, End::Delivered { at });
                continue;
            }
            if step.transmissions.is_empty() {
                if step.action == Action::Unknown {
                    let why = "facts missing".to_string();
                    finish(&mut self.trace, &item, End::Unfinished { at, why });
                } else if step.dropped.is_empty() {
                    finish(&mut self.trace, &item, End::Dropped { at, packet: None });
                }
                continue;
            }
            for tx in step.transmissions {
                let mut mtus = item.mtus.clone();
                mtus.extend(mtu_of(&at, &tx));
                queue.push_back(Item {
                    from: at.clone(),
                    tx,
                    trail: item.trail.clone(),
                    seen: item.seen.clone(),
                    start: item.start.clone(),
                    mtus,
                });
            }
        }
        delivered
    }

    /// A full-size packet must fit every device it left a net-node by. TCP
    /// sends no more than the receiver's MSS allows, so its size is bounded
    /// by the receiving interface too. A packet too large for a device is
    /// dropped there and answered with ICMP fragmentation-needed, from which
    /// path-MTU discovery learns the smaller size: an extra round trip, not
    /// a broken flow, as long as that ICMP error comes back.
    fn check_mtu(&mut self, dir: Leg, mtus: &[MtuLimit], packet: &Packet, recv_mtu: Option<u32>) {
        let mut size = packet.size;
        if packet.protocol == Protocol::Tcp
            && let Some(r) = recv_mtu
        {
            size = size.min(r);
        }
        if size == 0 {
            return;
        }
        let Some(limit) = mtus
            .iter()
            .filter(|l| l.mtu < size)
            .min_by_key(|l| l.mtu)
            .cloned()
        else {
            return;
        };
        let MtuLimit { at, dev, mtu, src } = &limit;
        let too_big = format!(
            "full-size packets of the {} ({size} bytes) are larger than the MTU {mtu} of {dev} on {at}",
            leg_name(dir)
        );
        match self.icmp_error_dropped(at, *src) {
            Err(e) => self.trace.suspect(
                Some(at),
                Level::Warning,
                format!(
                    "{too_big}: the kernel answers with ICMP fragmentation-needed, but whether it gets back to {src} cannot be walked ({e})"
                ),
            ),
            Ok(None) => self.trace.suspect(
                Some(at),
                Level::Warning,
                format!(
                    "{too_big}: the kernel drops them there and answers with ICMP fragmentation-needed, which gets back to {src}, so path-MTU discovery shrinks them (an extra round trip)"
                ),
            ),
            Ok(Some((drop_at, cause))) => self.trace.suspect(
                Some(&drop_at),
                Level::Critical,
                format!(
                    "{too_big}, and the ICMP fragmentation-needed {at} answers them with never reaches {src}: {cause}. Path-MTU discovery cannot shrink them, so large transfers stall (handshakes and small requests still pass)"
                ),
            ),
        }
    }

    /// Walk the ICMP fragmentation-needed that `from` sends to `to` through
    /// the kernels on its way, as the packets of the flow were walked (its
    /// source address the route's, conntrack RELATED). Where it is dropped,
    /// and why; None when it arrives (or the walk cannot tell).
    fn icmp_error_dropped(
        &mut self,
        from: &NetNode,
        to: std::net::Ipv4Addr,
    ) -> Result<Option<(NetNode, String)>, CallError> {
        let error = Packet {
            src: std::net::Ipv4Addr::UNSPECIFIED,
            sport: 0,
            dst: to,
            dport: 0,
            protocol: Protocol::Icmp,
            mark: 0,
            encap: None,
            reply: false,
            tos: 0,
            // The error quotes the IP header and 8 bytes of the packet.
            size: 56,
            icmp: Some(skoop_netstack::packet::Icmp::FRAG_NEEDED),
        };
        let mut at = from.clone();
        let mut arrival = Arrival::originated(error);
        for _ in 0..MAX_HOPS {
            if at.kind == NetNodeKind::External {
                return Ok(None);
            }
            let walk = Walker {
                facts: self.facts,
                plugin: &mut *self.plugin,
            }
            .walk(&at, &arrival)?;
            let mut next = None;
            let mut dropped = None;
            for b in &walk.branches {
                match &b.end {
                    BranchEnd::Delivered { .. } | BranchEnd::Unknown { .. } => return Ok(None),
                    BranchEnd::Dropped { cause, .. } => {
                        dropped.get_or_insert_with(|| (at.clone(), cause.clone()));
                    }
                    BranchEnd::Sent(tx) => {
                        next.get_or_insert_with(|| tx.clone());
                    }
                }
            }
            match (dropped, next) {
                (Some(d), _) => return Ok(Some(d)),
                (None, Some(tx)) => {
                    arrival = Arrival {
                        sender: Some(at.clone()),
                        ..Arrival::over(&tx)
                    };
                    at = tx.next;
                }
                (None, None) => return Ok(None),
            }
        }
        Ok(None)
    }

    /// File what the pipeline decided during the last step under `at`
    /// (the host's walk, and a plugin's own walk through the host's imports).
    fn file_decisions(&mut self, at: &NetNode, leg: Leg) {
        for decision in std::mem::take(&mut self.pending_decisions) {
            self.trace.decisions.push(HopDecision {
                at: at.clone(),
                leg,
                decision,
            });
        }
    }

    /// The source net-node originates `packet`.
    fn send(&mut self, at: &NetNode, packet: Packet) -> Result<NodeStep, CallError> {
        match at.kind {
            NetNodeKind::External => self.enter_from_outside(packet),
            _ => {
                let (step, _) = self.hop(at, None, &Arrival::originated(packet))?;
                Ok(step)
            }
        }
    }

    /// A packet from outside enters the cluster: at the node it is addressed
    /// to, or, for a Service's LoadBalancer or external IP, at the nodes
    /// that may serve it (with externalTrafficPolicy Local, those of its
    /// ready endpoints), each after the cloud underlay.
    fn enter_from_outside(&mut self, packet: Packet) -> Result<NodeStep, CallError> {
        let facts = self.facts;
        let (nodes, mut suspicions) = crate::entry::entry_nodes(&facts.view, &packet);
        let mut transmissions = Vec::new();
        for n in nodes {
            let entry = self.plugin.underlay_from_outside(n, &packet)?;
            self.pending_decisions
                .extend(crate::walk::underlay_decision(
                    "the outside",
                    "",
                    &format!("node {}", n.name),
                    &packet,
                    &entry,
                ));
            suspicions.extend(entry.suspicions);
            if let Some(p) = entry.packet
                && p != packet
            {
                self.entries.push((p, packet));
            }
            let iif = entry
                .delivered_to
                .as_deref()
                .and_then(|mac| {
                    facts.netstacks.loaded_node(&n.name).and_then(|s| {
                        s.interfaces()
                            .iter()
                            .find(|i| {
                                i.mac
                                    .as_deref()
                                    .is_some_and(|m| m.eq_ignore_ascii_case(mac))
                            })
                            .map(|i| i.name.clone())
                    })
                })
                .or_else(|| n.host_interface.clone());
            transmissions.push(Transmission {
                next: NetNode {
                    kind: NetNodeKind::Node,
                    id: n.name.clone(),
                },
                kind: LinkKind::External,
                packet: entry.packet.unwrap_or(packet),
                oif: None,
                iif,
                next_hop_address: None,
                dst_mac: None,
                mtu: None,
            });
        }
        Ok(NodeStep {
            action: if transmissions.is_empty() {
                Action::Drop
            } else {
                Action::Send
            },
            transmissions,
            dropped: vec![],
            suspicions,
        })
    }

    /// `tx` arrives at its next hop. Returns the packets delivered there
    /// (with the MTU of the interface that took each) and its step.
    fn receive(
        &mut self,
        from: &NetNode,
        tx: &Transmission,
    ) -> Result<(DeliveredHere, NodeStep), CallError> {
        let at = &tx.next;
        if at.kind == NetNodeKind::External {
            let step = NodeStep {
                action: Action::Serve,
                transmissions: vec![],
                dropped: vec![],
                suspicions: vec![],
            };
            return Ok((vec![(tx.packet, None)], step));
        }
        let arrival = Arrival {
            sender: Some(from.clone()),
            ..Arrival::over(tx)
        };
        let (step, delivered) = self.hop(at, Some((from, tx)), &arrival)?;
        Ok((delivered, step))
    }

    /// The host walks `arrival` through net-node `at`, the plugin adds what
    /// its CNI knows, and both become the hop's step. Also returns the
    /// packets delivered there.
    fn hop(
        &mut self,
        at: &NetNode,
        upstream: Option<(&NetNode, &Transmission)>,
        arrival: &Arrival,
    ) -> Result<(NodeStep, DeliveredHere), CallError> {
        let facts = self.facts;
        let mut walk = Walker {
            facts,
            plugin: &mut *self.plugin,
        }
        .walk(at, arrival)?;
        walk.upstream = upstream.map(|(h, t)| (h.clone(), t.clone()));
        let role = self.role(at, upstream.is_none(), &walk)?;
        if let Role::ToPod(n, pod) = &role
            && !facts.view.nodes.contains_key(&pod.node)
        {
            // The objects say the pod runs where no node is: nothing the
            // node's kernel does reaches it there.
            walk.suspicions.push(Suspicion {
                level: Level::Fatal,
                message: format!(
                    "pod {} runs on node {}, which is not in the cluster",
                    pod.id(),
                    pod.node
                ),
                node: None,
            });
            let _ = n;
            for b in &mut walk.branches {
                if let BranchEnd::Sent(tx) = &b.end {
                    b.end = BranchEnd::Dropped {
                        packet: tx.packet,
                        kind: "object".into(),
                        cause: "the pod's node is not in the cluster".into(),
                    };
                }
            }
        }
        if let Role::ToService(node, _) = &role {
            self.cross_check_service(&node.name, &mut walk);
        }
        let Answer {
            hop: answer,
            mut decisions,
        } = self.plugin.hop(role, &walk)?;
        self.pending_decisions.append(&mut walk.decisions);
        self.pending_decisions.append(&mut decisions);
        let stack = crate::walk::netns_of(facts, at).and_then(|ns| facts.netstacks.netns(&ns).ok());
        let (step, delivered) = step_of(walk, answer);
        let delivered = delivered
            .into_iter()
            .map(|(p, iif)| {
                let mtu = stack
                    .and_then(|s| s.interface(&iif))
                    .filter(|i| i.kind != "loopback")
                    .map(|i| i.mtu);
                (p, mtu)
            })
            .collect();
        Ok((step, delivered))
    }

    fn pod(&self, at: &NetNode) -> Result<&'a crate::cluster::PodFacts, CallError> {
        self.facts.view.pods.get(&at.id).ok_or_else(|| CallError {
            extension: "skoop".into(),
            call: format!("pod {}", at.id),
            failure: Failure::Malformed(format!("the packet was sent to an unknown pod {}", at.id)),
        })
    }

    /// Which of the plugin's roles a net-node's walk is: at a pod, sending
    /// or receiving; at a node, by what the packet is for as it arrives (a
    /// reply to an address the node masqueraded to is for whoever conntrack
    /// says sent the request).
    fn role(
        &self,
        at: &NetNode,
        originated: bool,
        walk: &KernelWalk,
    ) -> Result<Role<'a>, CallError> {
        let facts = self.facts;
        if at.kind == NetNodeKind::Pod {
            let pod = self.pod(at)?;
            return Ok(if originated {
                Role::PodSend(pod)
            } else {
                Role::PodReceive(pod)
            });
        }
        let Some(n) = facts.view.nodes.get(&at.id) else {
            return Err(CallError {
                extension: "skoop".into(),
                call: format!("node {}", at.id),
                failure: Failure::Malformed(format!(
                    "the packet was sent to an unknown node {}",
                    at.id
                )),
            });
        };
        let packet = walk.packet;
        let stack = facts.netstacks.node(&n.name).ok();
        let local = stack.is_some_and(|s| s.is_local(packet.dst));
        let mut dst = packet.dst;
        if packet.reply
            && let Some(s) = stack
            && let Ok(tables) = facts.conntrack.lock()
            && let Some(e) = tables.get(&s.label).and_then(|ct| ct.reply_of(&packet))
            && e.snat()
        {
            dst = e.orig.src;
        }
        let local = local && dst == packet.dst;
        if !packet.reply
            && let Some((svc, _, via_node_port)) = crate::service::find(&facts.view, &packet)
            && (!via_node_port || local || packet.dst == n.ip)
        {
            return Ok(Role::ToService(n, svc));
        }
        if local || dst == n.ip {
            return Ok(Role::Serve(n));
        }
        if let Some(p) = facts.view.pod_by_ip(dst).filter(|p| !p.host_network) {
            return Ok(Role::ToPod(n, p));
        }
        if let Some(t) = facts.view.node_by_ip(dst) {
            return Ok(Role::ToHost(n, t));
        }
        // A non-pod address in a node's pod CIDR (its VTEP or bridge
        // address) belongs to that node.
        if let Some(owner) = facts
            .view
            .nodes
            .values()
            .find(|o| o.name != n.name && o.pod_cidrs.iter().any(|c| c.contains(&dst)))
        {
            return Ok(Role::ToHost(n, owner));
        }
        Ok(Role::ToExternal(n))
    }

    /// kube-proxy's translation on this node (the walk's nat hooks did it)
    /// against the Service and its EndpointSlices.
    fn cross_check_service(&mut self, node: &str, walk: &mut KernelWalk) {
        let facts = self.facts;
        let proxy = ProxyConfig::from_settings(&facts.settings);
        let suspicions = match facts.settings.proxy_mode {
            ProxyMode::Nftables
                if !facts
                    .netstacks
                    .node(node)
                    .ok()
                    .and_then(|s| s.nft().ok().flatten())
                    .is_some_and(crate::service::has_kube_proxy_table) =>
            {
                // The walk stood in for the rules (and said why, per node).
                vec![]
            }
            mode => crate::service::cross_check(
                &facts.view,
                node,
                &walk.packet,
                &proxy,
                mode,
                facts.netstacks.node(node),
                &walk.branches,
            ),
        };
        for (level, message) in suspicions {
            let f = Suspicion {
                level,
                message,
                node: None,
            };
            if !walk.suspicions.contains(&f) {
                walk.suspicions.push(f);
            }
        }
    }
}

/// A net-node's step: the host's walk, as the plugin answered about it (the
/// branches it knows go no further end here).
fn step_of(walk: KernelWalk, answer: HopAnswer) -> (NodeStep, Vec<(Packet, String)>) {
    let (more, ends) = match answer {
        HopAnswer::Walked(step) => {
            let delivered = walk
                .branches
                .iter()
                .filter_map(|b| match &b.end {
                    BranchEnd::Delivered { packet, iif } => Some((*packet, iif.clone())),
                    _ => None,
                })
                .collect();
            return (step, delivered);
        }
        HopAnswer::Checks(more, ends) => (more, ends),
    };
    let mut delivered = Vec::new();
    let mut transmissions = Vec::new();
    let mut dropped = Vec::new();
    let mut unknown = false;
    for (i, b) in walk.branches.iter().enumerate() {
        match &b.end {
            BranchEnd::Delivered { packet, iif } => delivered.push((*packet, iif.clone())),
            BranchEnd::Sent(tx) if ends.contains(&i) => dropped.push(tx.packet),
            BranchEnd::Sent(tx) => {
                let mut tx = tx.clone();
                tx.mtu = b.mtus.iter().min_by_key(|(_, m)| *m).cloned();
                transmissions.push(tx);
            }
            BranchEnd::Dropped { packet, .. } => dropped.push(*packet),
            BranchEnd::Unknown { .. } => unknown = true,
        }
    }
    let mut suspicions = walk.suspicions;
    for f in more {
        if !suspicions.contains(&f) {
            suspicions.push(f);
        }
    }
    let action = if !transmissions.is_empty() {
        Action::Forward
    } else if !delivered.is_empty() {
        Action::Serve
    } else if unknown && dropped.is_empty() {
        Action::Unknown
    } else {
        Action::Drop
    };
    // A branch that ends here while others go on is a dropped packet; when
    // every branch ends here, the action says it.
    if transmissions.is_empty() && delivered.is_empty() {
        dropped.clear();
    }
    (
        NodeStep {
            action,
            transmissions,
            dropped,
            suspicions,
        },
        delivered,
    )
}

/// The device `tx` left `from` by, with its MTU.
/// The packets a hop delivered to its own sockets, each with the MTU of the
/// interface that took it (None: not known).
type DeliveredHere = Vec<(Packet, Option<u32>)>;

/// The smallest MTU a packet met leaving one net-node.
#[derive(Debug, Clone)]
struct MtuLimit {
    at: NetNode,
    dev: String,
    mtu: u32,
    /// The packet's source there: where the ICMP error goes.
    src: std::net::Ipv4Addr,
}

fn mtu_of(from: &NetNode, tx: &Transmission) -> Vec<MtuLimit> {
    tx.mtu
        .iter()
        .map(|(dev, mtu)| MtuLimit {
            at: from.clone(),
            dev: dev.clone(),
            mtu: *mtu,
            src: tx.packet.src,
        })
        .collect()
}

fn leg_name(d: Leg) -> &'static str {
    match d {
        Leg::Request => "request",
        Leg::Reply => "reply",
    }
}

#[cfg(test)]
mod tests {
    //! The loop driven by native test plugins: no wasm, no dumps.

    use super::*;
    use crate::cluster::ClusterView;
    use crate::plugin::Plugin;
    use crate::settings::{ProxyMode, Settings};
    use skoop_netstack::Netstacks;

    const CLUSTER: &str = r#"{"kind": "List", "apiVersion": "v1", "items": [
      {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
       "spec": {"podCIDRs": ["10.244.0.0/24"]},
       "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.11"}]}},
      {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"},
       "spec": {"podCIDRs": ["10.244.1.0/24"]},
       "status": {"addresses": [{"type": "InternalIP", "address": "192.168.0.12"}]}},
      {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "d", "name": "a"},
       "spec": {"nodeName": "n1"}, "status": {"phase": "Running", "podIP": "10.244.0.5",
       "conditions": [{"type": "Ready", "status": "True"}]}},
      {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "d", "name": "b"},
       "spec": {"nodeName": "n2"}, "status": {"phase": "Running", "podIP": "10.244.1.7",
       "conditions": [{"type": "Ready", "status": "True"}]}}
    ]}"#;

    fn facts() -> Facts {
        let view = ClusterView::parse(CLUSTER, "test", Default::default()).expect("test view");
        Facts::new(
            view,
            Netstacks::default(),
            Settings {
                network_plugin: "test".into(),
                cloud_provider: "generic".into(),
                proxy_mode: ProxyMode::None,
                cluster_cidr: None,
                masquerade_mark: None,
                masquerade_all: false,
            },
        )
    }

    fn hop(kind: NetNodeKind, id: &str) -> NetNode {
        NetNode {
            kind,
            id: id.into(),
        }
    }

    fn to(next: NetNode, packet: Packet) -> NodeStep {
        NodeStep {
            action: Action::Forward,
            transmissions: vec![Transmission {
                next,
                kind: LinkKind::Underlay,
                packet,
                oif: None,
                iif: None,
                next_hop_address: None,
                dst_mac: None,
                mtu: None,
            }],
            dropped: vec![],
            suspicions: vec![],
        }
    }

    fn end(action: Action, suspicions: Vec<Suspicion>) -> NodeStep {
        NodeStep {
            action,
            transmissions: vec![],
            dropped: vec![],
            suspicions,
        }
    }

    /// A plugin whose node hops are one closure; pods send to their node and
    /// serve what they receive.
    struct Scripted<F: FnMut(&str, &Packet) -> Result<NodeStep, CallError>> {
        node: F,
        /// Rewrites the reply a pod sends (to test the arrival checks).
        reply_src: Option<Ipv4Addr>,
    }

    impl<F: FnMut(&str, &Packet) -> Result<NodeStep, CallError>> Plugin for Scripted<F> {
        fn hop(&mut self, role: Role<'_>, walk: &KernelWalk) -> Result<Answer, CallError> {
            let step = match role {
                Role::PodSend(pod) => {
                    let mut p = walk.packet;
                    if p.reply
                        && let Some(src) = self.reply_src
                    {
                        p.src = src;
                    }
                    to(hop(NetNodeKind::Node, &pod.node), p)
                }
                Role::PodReceive(_) => end(Action::Serve, vec![]),
                Role::ToPod(n, _)
                | Role::ToHost(n, _)
                | Role::ToService(n, _)
                | Role::ToExternal(n)
                | Role::Serve(n) => (self.node)(&n.name, &walk.packet)?,
            };
            Ok(HopAnswer::Walked(step).into())
        }
    }

    fn flow() -> Flow {
        Flow {
            src: "10.244.0.5".parse().expect("ip"),
            dst: "10.244.1.7".parse().expect("ip"),
            dport: 8080,
            protocol: Protocol::Tcp,
        }
    }

    fn run(plugin: &mut dyn Plugin) -> Trace {
        let facts = facts();
        Diagnosis::new(&facts, plugin).run(hop(NetNodeKind::Pod, "d/a"), flow())
    }

    /// Nodes route by destination: pods on n1 are 10.244.0.x.
    fn routed(node: &str, p: &Packet) -> Result<NodeStep, CallError> {
        let owner = if p.dst.octets()[2] == 0 { "n1" } else { "n2" };
        let pod = if p.dst.octets()[2] == 0 { "d/a" } else { "d/b" };
        Ok(if owner == node {
            to(hop(NetNodeKind::Pod, pod), *p)
        } else {
            to(hop(NetNodeKind::Node, owner), *p)
        })
    }

    #[test]
    fn a_healthy_flow_is_delivered_both_ways_without_suspicions() {
        let t = run(&mut Scripted {
            node: routed,
            reply_src: None,
        });
        assert!(t.suspicions.is_empty(), "{:?}", t.suspicions);
        let delivered: Vec<_> = t.branches.iter().map(|b| (b.leg, b.end.clone())).collect();
        assert_eq!(
            delivered,
            vec![
                (
                    Leg::Request,
                    End::Delivered {
                        at: hop(NetNodeKind::Pod, "d/b")
                    }
                ),
                (
                    Leg::Reply,
                    End::Delivered {
                        at: hop(NetNodeKind::Pod, "d/a")
                    }
                ),
            ]
        );
    }

    #[test]
    fn a_loop_is_fatal_and_ends_the_branch() {
        let t = run(&mut Scripted {
            node: |node: &str, p: &Packet| {
                let other = if node == "n1" { "n2" } else { "n1" };
                Ok(to(hop(NetNodeKind::Node, other), *p))
            },
            reply_src: None,
        });
        assert!(t.broken());
        assert!(
            t.suspicions
                .iter()
                .any(|s| s.message.starts_with("forwarding loop")),
            "{:?}",
            t.suspicions
        );
        assert!(matches!(t.branches[0].end, End::Loop { .. }));
    }

    #[test]
    fn a_runaway_path_hits_the_hop_limit() {
        // Each hop changes the packet (its mark), so no state repeats.
        let t = run(&mut Scripted {
            node: |node: &str, p: &Packet| {
                let other = if node == "n1" { "n2" } else { "n1" };
                let mut q = *p;
                q.mark += 1;
                Ok(to(hop(NetNodeKind::Node, other), q))
            },
            reply_src: None,
        });
        assert!(matches!(t.branches[0].end, End::HopLimit { .. }));
        assert!(
            t.suspicions
                .iter()
                .any(|s| s.message.contains("still travelling after"))
        );
    }

    #[test]
    fn an_unexplained_drop_gets_a_fatal_and_an_explained_one_does_not() {
        let t = run(&mut Scripted {
            node: |_: &str, _: &Packet| Ok(end(Action::Drop, vec![])),
            reply_src: None,
        });
        assert_eq!(t.suspicions.len(), 1);
        assert!(t.suspicions[0].message.contains("no check explains why"));
        let t = run(&mut Scripted {
            node: |_: &str, _: &Packet| {
                Ok(end(
                    Action::Drop,
                    vec![Suspicion {
                        level: Level::Fatal,
                        message: "rule X drops it".into(),
                        node: None,
                    }],
                ))
            },
            reply_src: None,
        });
        assert_eq!(t.suspicions.len(), 1);
        assert_eq!(t.suspicions[0].message, "rule X drops it");
    }

    #[test]
    fn missing_facts_are_a_warning_and_an_unfinished_branch() {
        let t = run(&mut Scripted {
            node: |node: &str, _: &Packet| {
                Err(CallError {
                    extension: "test".into(),
                    call: format!("node {node}"),
                    failure: Failure::Refused(
                        RefusedKind::Unavailable,
                        "no dump of node n1".into(),
                    ),
                })
            },
            reply_src: None,
        });
        assert!(!t.broken());
        assert!(t.error.is_none());
        assert!(
            t.suspicions
                .iter()
                .any(|s| s.level == Level::Warning && s.message.starts_with("cannot check node n1"))
        );
        assert!(matches!(t.branches[0].end, End::Unfinished { .. }));
    }

    #[test]
    fn a_crash_stops_the_diagnosis_and_keeps_the_partial_path() {
        let t = run(&mut Scripted {
            node: |_: &str, _: &Packet| {
                Err(CallError {
                    extension: "test".into(),
                    call: "node".into(),
                    failure: Failure::Trap("unreachable".into()),
                })
            },
            reply_src: None,
        });
        assert!(t.error.is_some());
        assert_eq!(t.links.len(), 1, "the pod's link is kept");
    }

    #[test]
    fn a_crash_ends_its_branch_and_the_other_branches_go_on() {
        let t = run(&mut Scripted {
            node: |node: &str, p: &Packet| {
                if node == "n1" && !p.reply {
                    // Two branches: the second is the one that crashes at n2.
                    let mut other = *p;
                    other.dport = 9090;
                    let mut step = to(hop(NetNodeKind::Node, "n2"), *p);
                    step.transmissions
                        .extend(to(hop(NetNodeKind::Node, "n2"), other).transmissions);
                    return Ok(step);
                }
                if p.dport == 9090 {
                    return Err(CallError {
                        extension: "test".into(),
                        call: "node n2".into(),
                        failure: Failure::Trap("unreachable".into()),
                    });
                }
                routed(node, p)
            },
            reply_src: None,
        });
        assert!(t.error.is_some());
        let ends: Vec<_> = t.branches.iter().map(|b| (b.leg, &b.end)).collect();
        assert!(
            ends.iter()
                .any(|(d, e)| *d == Leg::Request && matches!(e, End::Unfinished { .. })),
            "{ends:?}"
        );
        // The branch after the crash is followed, and so is its reply.
        assert!(
            ends.iter().any(|(d, e)| *d == Leg::Reply
                && **e
                    == End::Delivered {
                        at: hop(NetNodeKind::Pod, "d/a")
                    }),
            "{ends:?}"
        );
    }

    #[test]
    fn a_plugin_that_keeps_failing_is_given_up_on() {
        let mut calls = 0;
        let t = run(&mut Scripted {
            node: |_: &str, p: &Packet| {
                calls += 1;
                if calls == 1 {
                    // Eight branches, each of which will fail.
                    let mut step = to(hop(NetNodeKind::Node, "n2"), *p);
                    for port in 1..8 {
                        let mut q = *p;
                        q.dport = port;
                        step.transmissions
                            .extend(to(hop(NetNodeKind::Node, "n2"), q).transmissions);
                    }
                    return Ok(step);
                }
                Err(CallError {
                    extension: "test".into(),
                    call: "node".into(),
                    failure: Failure::Timeout(std::time::Duration::from_secs(1)),
                })
            },
            reply_src: None,
        });
        assert!(t.error.is_some());
        assert_eq!(calls, 1 + MAX_FAILED_CALLS);
    }

    #[test]
    fn a_reply_from_the_wrong_address_is_critical() {
        let t = run(&mut Scripted {
            node: routed,
            reply_src: Some("10.244.1.99".parse().expect("ip")),
        });
        assert!(
            t.suspicions
                .iter()
                .any(|s| s.level == Level::Critical && s.message.contains("no connection matches")),
            "{:?}",
            t.suspicions
        );
    }

    // ---- End to end over dumps: the host walks every hop, and the plugin
    // ---- lets its walk stand (the fixtures are walk.rs's).

    use crate::walk::tests::{Backend, Lab, Stands};

    fn diagnose(lab: &Lab) -> Trace {
        let facts = lab.facts();
        Diagnosis::new(&facts, &mut Stands).run(hop(NetNodeKind::Pod, "d/a"), flow())
    }

    /// Level, net-node and message of each suspicion.
    fn found(t: &Trace) -> Vec<(Level, Option<&str>, &str)> {
        t.suspicions
            .iter()
            .map(|s| (s.level, s.node.as_deref(), s.message.as_str()))
            .collect()
    }

    fn ends(t: &Trace) -> Vec<(Leg, End)> {
        t.branches.iter().map(|b| (b.leg, b.end.clone())).collect()
    }

    fn both_ways_delivered() -> Vec<(Leg, End)> {
        vec![
            (
                Leg::Request,
                End::Delivered {
                    at: hop(NetNodeKind::Pod, "d/b"),
                },
            ),
            (
                Leg::Reply,
                End::Delivered {
                    at: hop(NetNodeKind::Pod, "d/a"),
                },
            ),
        ]
    }

    #[test]
    fn pods_over_vxlan_are_walked_both_ways_without_suspicions() {
        let t = diagnose(&Lab::new(2, Backend::Vxlan));
        assert_eq!(found(&t), vec![]);
        assert_eq!(ends(&t), both_ways_delivered());
        let hops: Vec<String> = t.nodes.iter().map(|h| h.to_string()).collect();
        assert_eq!(hops, ["pod d/a", "node n1", "node n2", "pod d/b"]);
        let kinds: Vec<(Leg, LinkKind)> = t.links.iter().map(|l| (l.leg, l.kind)).collect();
        assert_eq!(
            kinds,
            [Leg::Request, Leg::Reply]
                .into_iter()
                .flat_map(|d| [
                    (d, LinkKind::Veth),
                    (d, LinkKind::Vxlan),
                    (d, LinkKind::Veth)
                ])
                .collect::<Vec<_>>()
        );
    }

    const MTU_REQUEST: &str = "full-size packets of the request (1500 bytes) are larger than the MTU 1450 of flannel.1 on node n1";
    const MTU_REPLY: &str = "full-size packets of the reply (1500 bytes) are larger than the MTU 1450 of flannel.1 on node n2";
    const PMTUD_WORKS: &str = "the kernel drops them there and answers with ICMP fragmentation-needed, which gets back to";
    const ICMP_DROP: &str = "-A OUTPUT -p icmp -m icmp --icmp-type 3/4 -j DROP";

    /// Pods at MTU 1500 whose nodes reach each other over flannel.1 at 1450.
    fn mtu_lab() -> Lab {
        let mut lab = Lab::new(2, Backend::Vxlan);
        lab.pod_mtu(1500);
        lab
    }

    #[test]
    fn a_path_mtu_below_the_pods_is_a_warning_when_the_icmp_error_gets_back() {
        let t = diagnose(&mtu_lab());
        assert_eq!(
            found(&t),
            vec![
                (
                    Level::Warning,
                    Some("n1"),
                    format!("{MTU_REQUEST}: {PMTUD_WORKS} 10.244.0.5, so path-MTU discovery shrinks them (an extra round trip)").as_str()
                ),
                (
                    Level::Warning,
                    Some("n2"),
                    format!("{MTU_REPLY}: {PMTUD_WORKS} 10.244.1.7, so path-MTU discovery shrinks them (an extra round trip)").as_str()
                ),
            ]
        );
        assert!(!t.broken());
        assert_eq!(ends(&t), both_ways_delivered());
    }

    #[test]
    fn a_rule_dropping_the_fragmentation_needed_error_is_critical_and_named() {
        let mut lab = mtu_lab();
        lab.rule("n1", ICMP_DROP);
        let t = diagnose(&lab);
        let critical = format!(
            "{MTU_REQUEST}, and the ICMP fragmentation-needed node n1 answers them with never reaches 10.244.0.5: iptables filter/OUTPUT rule 1 `{ICMP_DROP}` drops the ICMP error 10.244.0.1 -> 10.244.0.5 icmp fragmentation-needed on node n1. Path-MTU discovery cannot shrink them, so large transfers stall (handshakes and small requests still pass)"
        );
        assert_eq!(
            found(&t),
            vec![
                (Level::Critical, Some("n1"), critical.as_str()),
                (
                    Level::Warning,
                    Some("n2"),
                    format!("{MTU_REPLY}: {PMTUD_WORKS} 10.244.1.7, so path-MTU discovery shrinks them (an extra round trip)").as_str()
                ),
            ]
        );
        // The flow's own packets still get through.
        assert_eq!(ends(&t), both_ways_delivered());
    }

    const INVALID_DROP: &str = "-A FORWARD -m conntrack --ctstate INVALID -j DROP";

    /// Three host-gw nodes; n1 sends n2's pod CIDR through n3, and n3 drops
    /// conntrack INVALID packets. n2 answers n1 directly.
    fn one_way_lab() -> Lab {
        let mut lab = Lab::new(3, Backend::HostGw);
        lab.route(
            "n1",
            serde_json::json!({"dst": "10.244.1.0/24", "gateway": "192.168.0.13", "dev": "eth0"}),
        );
        lab.rule("n3", INVALID_DROP);
        lab
    }

    fn detour(from: &str, dir: &str, dst: &str, owner: &str, cidr: &str) -> String {
        format!(
            "node {from} sends the {dir} for {dst} (node {owner}) through node n3 (`{cidr} via 192.168.0.13 dev eth0`): a detour"
        )
    }

    #[test]
    fn a_node_forwarding_only_the_request_drops_its_invalid_packets_critically() {
        let t = diagnose(&one_way_lab());
        let to_n2 = detour("n1", "request", "10.244.1.7", "n2", "10.244.1.0/24");
        let critical = format!(
            "node n3 forwards the request but not its reply (the reply passes n2, n1): its conntrack sees one direction, so the client's packets after the SYN are INVALID there, and iptables filter/FORWARD rule 1 `{INVALID_DROP}` drops the request 10.244.0.5:40000 -> 10.244.1.7:8080/tcp on node n3 — connections open but carry no data"
        );
        assert_eq!(
            found(&t),
            vec![
                (Level::Warning, Some("n1"), to_n2.as_str()),
                (Level::Critical, Some("n3"), critical.as_str()),
            ]
        );
        // The handshake's own packets pass: only the later ones are INVALID.
        assert_eq!(ends(&t), both_ways_delivered());
    }

    #[test]
    fn one_way_transit_is_quiet_when_no_rule_drops_invalid_packets() {
        let mut lab = Lab::new(3, Backend::HostGw);
        lab.route(
            "n1",
            serde_json::json!({"dst": "10.244.1.0/24", "gateway": "192.168.0.13", "dev": "eth0"}),
        );
        let t = diagnose(&lab);
        let to_n2 = detour("n1", "request", "10.244.1.7", "n2", "10.244.1.0/24");
        assert_eq!(
            found(&t),
            vec![(Level::Warning, Some("n1"), to_n2.as_str())]
        );
        assert_eq!(ends(&t), both_ways_delivered());
    }

    #[test]
    fn a_node_both_directions_pass_is_quiet_with_the_invalid_rule() {
        let mut lab = one_way_lab();
        lab.route(
            "n2",
            serde_json::json!({"dst": "10.244.0.0/24", "gateway": "192.168.0.13", "dev": "eth0"}),
        );
        let t = diagnose(&lab);
        let to_n2 = detour("n1", "request", "10.244.1.7", "n2", "10.244.1.0/24");
        let to_n1 = detour("n2", "reply", "10.244.0.5", "n1", "10.244.0.0/24");
        assert_eq!(
            found(&t),
            vec![
                (Level::Warning, Some("n1"), to_n2.as_str()),
                (Level::Warning, Some("n2"), to_n1.as_str()),
            ]
        );
        assert_eq!(ends(&t), both_ways_delivered());
    }
}
