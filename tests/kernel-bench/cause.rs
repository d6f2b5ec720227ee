//! What a suspicion must name: the netns and the entity at fault — a rule,
//! route, device or entry — in the form the kernel's own tools print it.
//!
//! A keyword ("mtu", "drop", "cni0") is not enough: a report can mention it
//! while blaming the wrong node, rule or device, and the bench would pass a
//! wrong diagnosis. Each cause is written from the fault as injected (not
//! from what skoop prints) and checked against the netns after injection
//! (`Cause::verify`): an expectation naming a rule or route the kernel does
//! not have is a bug of the bench, reported as such.

use super::sh;
use super::topo::Cluster;

/// Where the entity lives: a network namespace of the cluster, as a
/// suspicion names it (a node by its name, a pod as `namespace/name`), or the
/// cluster's objects (a Service, named by itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    Node(&'static str),
    Pod(&'static str),
    Cluster,
}

impl At {
    pub fn label(self) -> &'static str {
        match self {
            At::Node(n) | At::Pod(n) => n,
            At::Cluster => "",
        }
    }

    fn netns(self, c: &Cluster) -> Result<&str, String> {
        match self {
            At::Node(n) => c.node(n),
            At::Pod(p) => c.pod(p),
            At::Cluster => Err("the cluster's objects have no netns".into()),
        }
    }
}

/// The entity at fault.
#[derive(Clone, Debug)]
pub enum Entity {
    /// An iptables rule: its chain and the rule as `iptables-save` prints it
    /// after `-A CHAIN `; `key`, when given, the value that identifies it in
    /// its chain, for a report that describes the rule rather than print it
    /// (`KUBE-MARK-MASQ` and its mark `0x8000`: the save form of `--or-mark`
    /// is `--set-xmark 0x8000/0x8000`).
    Rule {
        chain: String,
        rule: String,
        key: Option<String>,
    },
    /// A chain that lacks a rule it needs (a KUBE-SVC without fall-through,
    /// KUBE-SERVICES without a Service's jump), with what identifies the
    /// missing rule (the ClusterIP), if anything.
    Chain {
        chain: String,
        missing: Option<String>,
    },
    /// kube-proxy's rules of a Service (`namespace/name`) on a node, for one
    /// address: its `ClusterIP:port`, or an endpoint's `IP:port` (a missing
    /// rule named by what it was for).
    ServiceRules { service: &'static str, of: String },
    /// A route as `ip route show table T` prints it, up to its device
    /// (flags such as `onlink`, `proto` and `scope` left off), and its table
    /// when not main (named as `table T`).
    Route { route: String, table: Option<u32> },
    /// A route that is missing: its destination as `ip route` prints it.
    NoRoute(String),
    /// No route at all covers this address (the netns lacks a default).
    Unroutable(String),
    /// A device.
    Device(String),
    /// A device and its MTU.
    Mtu(String, u32),
    /// A bridge port's flag (`hairpin`).
    PortFlag(String, &'static str),
    /// A sysctl by its key (`net.ipv4.ip_forward`,
    /// `net.ipv4.conf.flannel.1.rp_filter`).
    Sysctl(String),
    /// A neighbour entry (present, wrong or missing): its IP on a device.
    Neigh { ip: String, dev: String },
    /// An FDB entry (present, wrong or missing): its MAC on a device.
    Fdb { mac: String, dev: String },
    /// No socket listening on this TCP port.
    NoListener(u16),
    /// A Service (`namespace/name`) without endpoints.
    NoEndpoints(&'static str),
    /// An nftables rule in its family, table and chain, as `nft list chain`
    /// prints it (no handle); `key`, when given, the value that identifies it
    /// in its chain, for a report that describes the rule (a mark).
    NftRule {
        family: String,
        table: String,
        chain: String,
        rule: String,
        key: Option<String>,
    },
    /// An nftables chain that lacks a rule it needs, named by what the
    /// missing rule holds (the chain it jumps to).
    NftChain {
        family: String,
        table: String,
        chain: String,
        missing: String,
    },
    /// An element of an nftables map or set, its key as `nft list` prints it
    /// (`10.96.100.10 . tcp . 80`): missing, or there when `present`.
    NftElement {
        family: String,
        table: String,
        map: String,
        element: String,
        present: bool,
    },
}

/// One entity at fault in one netns. A scenario gives one or more; a
/// suspicion naming any of them names the cause.
#[derive(Clone, Debug)]
pub struct Cause {
    pub at: At,
    pub what: Entity,
}

impl Cause {
    /// The ways a suspicion may name this cause: in each, the texts its node
    /// and message must all contain, each as a whole (see
    /// `skoop::contains_whole`). The netns comes first (none for the
    /// cluster's objects).
    pub fn alternatives(&self) -> Vec<Vec<String>> {
        let at: Vec<String> = Some(self.at.label())
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .into_iter()
            .collect();
        let with = |texts: &[&str]| -> Vec<String> {
            at.iter()
                .cloned()
                .chain(texts.iter().map(|t| t.to_string()))
                .collect()
        };
        match &self.what {
            Entity::Rule { chain, rule, key } => {
                let mut alts = vec![with(&[chain, rule])];
                alts.extend(key.as_deref().map(|k| with(&[chain, k])));
                alts
            }
            Entity::Chain { chain, missing } => {
                let mut texts = vec![chain.as_str()];
                texts.extend(missing.as_deref());
                vec![with(&texts)]
            }
            Entity::ServiceRules { service, of } => vec![with(&[service, of])],
            Entity::Route { route, table } => {
                let table = table.map(|n| format!("table {n}"));
                let tabled = |texts: &[&str]| {
                    let mut t = with(texts);
                    t.extend(table.clone());
                    t
                };
                let mut alts = vec![tabled(&[route])];
                // `DST via GW dev DEV`: also named by its destination and
                // gateway ("DST ... via GW (DEV)").
                let words: Vec<&str> = route.split_whitespace().collect();
                if let [dst, "via", gw, ..] = words[..] {
                    alts.push(tabled(&[dst, gw]));
                }
                alts
            }
            Entity::NoRoute(dst) if *dst == "default" => vec![with(&["default route"])],
            Entity::NoRoute(dst) => vec![with(&[dst])],
            Entity::Unroutable(addr) => vec![with(&["no route", addr])],
            Entity::Device(dev) => vec![with(&[dev])],
            Entity::Mtu(dev, mtu) => vec![with(&[dev, &mtu.to_string()])],
            Entity::PortFlag(dev, flag) => vec![with(&[dev, flag])],
            Entity::Sysctl(key) => {
                let mut alts = vec![with(&[key])];
                // A device's own setting: also named by device and parameter
                // ("rp_filter=1 on flannel.1").
                if let Some((dev, param)) = per_device(key)
                    && !matches!(dev, "all" | "default")
                {
                    alts.push(with(&[dev, param]));
                }
                alts
            }
            Entity::Neigh { ip, dev } => vec![with(&[ip, dev])],
            Entity::Fdb { mac, dev } => vec![with(&[mac, dev])],
            Entity::NoListener(port) => vec![with(&[&port.to_string()])],
            Entity::NoEndpoints(svc) => ["no endpoints", "no ready endpoint", "no ready endpoints"]
                .iter()
                .map(|phrase| with(&[svc, phrase]))
                .collect(),
            Entity::NftRule {
                chain, rule, key, ..
            } => {
                let mut alts = vec![with(&[chain, rule])];
                alts.extend(key.as_deref().map(|k| with(&[chain, k])));
                alts
            }
            Entity::NftChain { chain, missing, .. } => vec![with(&[chain, missing])],
            Entity::NftElement { map, element, .. } => {
                let mut alts = vec![with(&[map, element])];
                // `ADDR . PROTO . PORT`: also named as ADDR:PORT.
                let words: Vec<&str> = element.split(" . ").collect();
                if let [addr, _, port] = words[..] {
                    alts.push(with(&[map, &format!("{addr}:{port}")]));
                }
                alts
            }
        }
    }

    /// The identifying value of a rule (see `Entity::Rule`, `Entity::NftRule`).
    pub fn keyed(mut self, value: &str) -> Self {
        if let Entity::Rule { key, .. } | Entity::NftRule { key, .. } = &mut self.what {
            *key = Some(value.to_string());
        }
        self
    }

    /// Is this cause really in the netns, as written? Checked after the
    /// fault is injected.
    pub fn verify(&self, c: &Cluster) -> Result<(), String> {
        if let Entity::NoEndpoints(_) | Entity::ServiceRules { .. } = self.what {
            return Ok(());
        }
        let ns = self.at.netns(c)?;
        let iptables_save = || match self.at {
            // Pods' rules are injected with the system's default iptables.
            At::Pod(_) => sh::exec(ns, "iptables-save", &[]),
            At::Node(_) | At::Cluster => sh::exec(ns, c.tables.save(), &[]),
        };
        let fail = |why: String| Err(format!("expectation {self:?}: {why}"));
        match &self.what {
            Entity::Rule { chain, rule, .. } => {
                let line = format!("-A {chain} {rule}");
                if !iptables_save()?.lines().any(|l| l == line) {
                    return fail(format!("iptables-save has no line `{line}`"));
                }
            }
            Entity::Chain { chain, .. } => {
                let head = format!(":{chain} ");
                if !iptables_save()?.lines().any(|l| l.starts_with(&head)) {
                    return fail(format!("iptables-save has no chain {chain}"));
                }
            }
            Entity::Route { route, table } => {
                let table = table.map_or("main".to_string(), |n| n.to_string());
                let routes = sh::ip(ns, &format!("route show table {table}"))?;
                if !routes
                    .lines()
                    .any(|l| l == route || l.starts_with(&format!("{route} ")))
                {
                    return fail(format!("no route `{route}` in table {table}:\n{routes}"));
                }
            }
            Entity::NoRoute(dst) => {
                let routes = sh::ip(ns, "route show")?;
                if routes.lines().any(|l| l.starts_with(&format!("{dst} "))) {
                    return fail(format!("the route to {dst} is there:\n{routes}"));
                }
            }
            Entity::Device(dev)
            | Entity::PortFlag(dev, _)
            | Entity::Neigh { dev, .. }
            | Entity::Fdb { dev, .. } => {
                sh::ip(ns, &format!("link show dev {dev}"))?;
            }
            Entity::Mtu(dev, mtu) => {
                let link = sh::ip(ns, &format!("link show dev {dev}"))?;
                if !link.contains(&format!(" mtu {mtu} ")) {
                    return fail(format!("{dev} has not MTU {mtu}: {link}"));
                }
            }
            Entity::Sysctl(key) => {
                let path = sysctl_path(key);
                super::probe::in_netns(ns, move || std::fs::read_to_string(&path))?
                    .map_err(|e| format!("expectation {self:?}: {e}"))?;
            }
            Entity::Unroutable(addr) => {
                let got = sh::ip(ns, &format!("route get {addr}"));
                if got.is_ok() {
                    return fail(format!("a route covers {addr}: {got:?}"));
                }
            }
            Entity::NftRule {
                family,
                table,
                chain,
                rule,
                ..
            } => {
                let listed = sh::exec(ns, "nft", &["list", "chain", family, table, chain])?;
                if !listed.lines().any(|l| l.trim() == rule) {
                    return fail(format!("nft lists no rule `{rule}`:\n{listed}"));
                }
            }
            Entity::NftChain {
                family,
                table,
                chain,
                missing,
            } => {
                let listed = sh::exec(ns, "nft", &["list", "chain", family, table, chain])?;
                if listed
                    .lines()
                    .any(|l| super::skoop::contains_whole(l, missing))
                {
                    return fail(format!("a rule holds `{missing}`:\n{listed}"));
                }
            }
            Entity::NftElement {
                family,
                table,
                map,
                element,
                present,
            } => {
                sh::exec(ns, "nft", &["list", "map", family, table, map])
                    .or_else(|_| sh::exec(ns, "nft", &["list", "set", family, table, map]))?;
                let found = sh::exec(
                    ns,
                    "nft",
                    &[
                        "get",
                        "element",
                        family,
                        table,
                        map,
                        &format!("{{ {element} }}"),
                    ],
                )
                .is_ok();
                if found != *present {
                    let is = if found { "has" } else { "lacks" };
                    return fail(format!("{family} {table} {map} {is} element {element}"));
                }
            }
            Entity::NoListener(_) | Entity::NoEndpoints(_) | Entity::ServiceRules { .. } => {}
        }
        Ok(())
    }
}

/// A per-device key's device and parameter; the device name may hold dots
/// (`net.ipv4.conf.flannel.1.rp_filter`).
fn per_device(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix("net.ipv4.conf.")?.rsplit_once('.')
}

/// The /proc/sys path of a key.
fn sysctl_path(key: &str) -> String {
    match per_device(key) {
        Some((dev, param)) => format!("/proc/sys/net/ipv4/conf/{dev}/{param}"),
        None => format!("/proc/sys/{}", key.replace('.', "/")),
    }
}

pub fn rule(at: At, chain: &str, rule: &str) -> Cause {
    Cause {
        at,
        what: Entity::Rule {
            chain: chain.into(),
            rule: rule.into(),
            key: None,
        },
    }
}

pub fn service_rules(at: At, service: &'static str, of: &str) -> Cause {
    Cause {
        at,
        what: Entity::ServiceRules {
            service,
            of: of.into(),
        },
    }
}

pub fn unroutable(at: At, addr: &str) -> Cause {
    Cause {
        at,
        what: Entity::Unroutable(addr.into()),
    }
}

/// The one rule (of `chain`, or of any chain) in node `at`'s iptables-save
/// holding every text of `picks`: for rules whose full text is only known
/// once kube-proxy's rules are loaded (comments, chain hashes).
pub fn saved_rule(
    c: &Cluster,
    at: At,
    chain: Option<&str>,
    picks: &[&str],
) -> Result<Cause, String> {
    let At::Node(node) = at else {
        return Err(format!("saved_rule: {at:?} is not a node"));
    };
    let saved = sh::exec(c.node(node)?, c.tables.save(), &[])?;
    let found: Vec<(&str, &str)> = saved
        .lines()
        .filter_map(|l| l.strip_prefix("-A ")?.split_once(' '))
        .filter(|(ch, r)| {
            chain.is_none_or(|want| want == *ch) && picks.iter().all(|p| r.contains(p))
        })
        .collect();
    match found[..] {
        [(ch, r)] => Ok(rule(at, ch, r)),
        _ => Err(format!(
            "{node}: {} rules of {} hold {picks:?}, not one",
            found.len(),
            chain.unwrap_or("any chain")
        )),
    }
}

pub fn chain(at: At, chain: &str, missing: Option<&str>) -> Cause {
    Cause {
        at,
        what: Entity::Chain {
            chain: chain.into(),
            missing: missing.map(str::to_string),
        },
    }
}

pub fn route(at: At, route: &str) -> Cause {
    Cause {
        at,
        what: Entity::Route {
            route: route.into(),
            table: None,
        },
    }
}

pub fn route_in(at: At, table: u32, route: &str) -> Cause {
    Cause {
        at,
        what: Entity::Route {
            route: route.into(),
            table: Some(table),
        },
    }
}

pub fn no_route(at: At, dst: &str) -> Cause {
    Cause {
        at,
        what: Entity::NoRoute(dst.into()),
    }
}

pub fn device(at: At, dev: &str) -> Cause {
    Cause {
        at,
        what: Entity::Device(dev.into()),
    }
}

pub fn mtu(at: At, dev: &str, mtu: u32) -> Cause {
    Cause {
        at,
        what: Entity::Mtu(dev.into(), mtu),
    }
}

pub fn sysctl(at: At, key: &str) -> Cause {
    Cause {
        at,
        what: Entity::Sysctl(key.into()),
    }
}

/// `net.ipv4.ip_forward=0` turns forwarding off on every device: a report
/// may name the global switch or the arrival device's own.
pub fn forwarding_off(at: At, arrival: &str) -> Vec<Cause> {
    vec![
        sysctl(at, "net.ipv4.ip_forward"),
        sysctl(at, "net.ipv4.conf.all.forwarding"),
        sysctl(at, &format!("net.ipv4.conf.{arrival}.forwarding")),
    ]
}

/// An nftables rule of `chain`, as `nft list chain` prints it.
pub fn nft_rule(at: At, family: &str, table: &str, chain: &str, rule: &str) -> Cause {
    Cause {
        at,
        what: Entity::NftRule {
            family: family.into(),
            table: table.into(),
            chain: chain.into(),
            rule: rule.into(),
            key: None,
        },
    }
}

/// The one rule of `chain` in the netns's nftables ruleset holding every
/// text of `picks`, as `nft list chain` prints it: for rules whose exact text
/// (vmap elements, chain hashes) is only known once loaded.
pub fn listed_nft_rule(
    c: &Cluster,
    at: At,
    family: &str,
    table: &str,
    chain: &str,
    picks: &[&str],
) -> Result<Cause, String> {
    let listed = sh::exec(
        at.netns(c)?,
        "nft",
        &["list", "chain", family, table, chain],
    )?;
    let found: Vec<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|l| picks.iter().all(|p| l.contains(p)))
        .collect();
    match found[..] {
        [rule] => Ok(nft_rule(at, family, table, chain, rule)),
        _ => Err(format!(
            "{}: {} rules of {family} {table} {chain} hold {picks:?}, not one",
            at.label(),
            found.len()
        )),
    }
}

/// An nftables chain lacking a rule that holds `missing`.
pub fn nft_chain_lacking(at: At, family: &str, table: &str, chain: &str, missing: &str) -> Cause {
    Cause {
        at,
        what: Entity::NftChain {
            family: family.into(),
            table: table.into(),
            chain: chain.into(),
            missing: missing.into(),
        },
    }
}

/// An element missing from an nftables map or set.
pub fn nft_element_missing(at: At, family: &str, table: &str, map: &str, element: &str) -> Cause {
    Cause {
        at,
        what: Entity::NftElement {
            family: family.into(),
            table: table.into(),
            map: map.into(),
            element: element.into(),
            present: false,
        },
    }
}
