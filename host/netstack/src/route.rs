//! Policy routing as the kernel does it: rules by priority, each selecting a
//! table; longest prefix then lowest metric within a table; `throw` falls
//! through to the next rule; ECMP next hops are returned as branches.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::dump::{NetnsDump, Route, Rule};

/// Kinds of route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Unicast,
    Local,
    Broadcast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
}

impl RouteKind {
    fn parse(s: &str) -> RouteKind {
        match s {
            "local" => RouteKind::Local,
            "broadcast" => RouteKind::Broadcast,
            "blackhole" => RouteKind::Blackhole,
            "unreachable" => RouteKind::Unreachable,
            "prohibit" => RouteKind::Prohibit,
            "throw" => RouteKind::Throw,
            _ => RouteKind::Unicast,
        }
    }
}

/// A route lookup question.
#[derive(Debug, Clone, Default)]
pub struct RouteQuery {
    pub dst: Option<Ipv4Addr>,
    pub src: Option<Ipv4Addr>,
    pub iif: Option<String>,
    pub mark: u32,
}

/// Lookup inputs the kernel also matches `ip rule`s on, beyond [`RouteQuery`].
#[derive(Debug, Clone, Default)]
pub struct RouteSelectors {
    /// The packet's TOS byte (rules with `tos` match its DSCP bits).
    pub tos: u8,
    /// The output device a socket is bound to (rules with `oif`); None for
    /// forwarded packets and unbound sockets.
    pub oif: Option<String>,
}

/// One next hop of a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteHit {
    pub table: u32,
    pub kind: RouteKind,
    pub prefix: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    pub dev: Option<String>,
    pub source: Option<Ipv4Addr>,
    pub rule_priority: u32,
    pub text: String,
    /// The protocol that installed the route, when the dump says.
    pub proto: Option<String>,
    pub scope: Option<String>,
    pub metric: u32,
    pub onlink: bool,
}

/// The kernel's rules when none were collected: local, main, default.
fn default_rules() -> Vec<Rule> {
    [(0, 255), (32766, 254), (32767, 253)]
        .into_iter()
        .map(|(priority, table)| Rule {
            priority,
            not: false,
            from: None,
            to: None,
            fwmark: None,
            fwmask: None,
            iif: None,
            oif: None,
            tos: None,
            action: "lookup".into(),
            table: Some(table),
            goto: None,
        })
        .collect()
}

fn rule_matches(rule: &Rule, q: &RouteQuery, sel: &RouteSelectors, dst: Ipv4Addr) -> bool {
    let mut ok = true;
    if let Some(from) = rule.from {
        // Without a source yet (locally originated), `from` selectors match
        // only the catch-all.
        ok &= q
            .src
            .map(|s| from.contains(&s))
            .unwrap_or(from.prefix_len() == 0);
    }
    if let Some(to) = rule.to {
        ok &= to.contains(&dst);
    }
    if let Some(mark) = rule.fwmark {
        let mask = rule.fwmask.unwrap_or(u32::MAX);
        ok &= q.mark & mask == mark & mask;
    }
    if let Some(iif) = &rule.iif {
        // `iif lo` is how the kernel names locally generated traffic.
        let have = q.iif.as_deref().unwrap_or("lo");
        ok &= have == iif;
    }
    if let Some(oif) = &rule.oif {
        ok &= sel.oif.as_deref() == Some(oif.as_str());
    }
    if let Some(tos) = rule.tos.filter(|t| *t != 0) {
        // The kernel compares the DSCP bits.
        ok &= tos & 0xfc == sel.tos & 0xfc;
    }
    ok != rule.not
}

/// The table name `ip route` prints.
fn table_name(t: u32) -> String {
    match t {
        255 => "local".into(),
        254 => "main".into(),
        253 => "default".into(),
        n => n.to_string(),
    }
}

/// A route as `ip route show table all` prints it.
pub fn render(r: &Route) -> String {
    let mut s = String::new();
    if r.kind != "unicast" {
        let _ = write!(s, "{} ", r.kind);
    }
    if r.dst.prefix_len() == 0 {
        s.push_str("default");
    } else if r.dst.prefix_len() == 32 {
        let _ = write!(s, "{}", r.dst.addr());
    } else {
        let _ = write!(s, "{}", r.dst);
    }
    if let Some(gw) = r.gateway {
        let _ = write!(s, " via {gw}");
    }
    if let Some(dev) = &r.dev {
        let _ = write!(s, " dev {dev}");
    }
    if r.table != 254 {
        let _ = write!(s, " table {}", table_name(r.table));
    }
    if let Some(p) = &r.proto {
        let _ = write!(s, " proto {p}");
    }
    if let Some(sc) = &r.scope {
        let _ = write!(s, " scope {sc}");
    }
    if let Some(src) = r.prefsrc {
        let _ = write!(s, " src {src}");
    }
    if r.metric != 0 {
        let _ = write!(s, " metric {}", r.metric);
    }
    if r.onlink {
        s.push_str(" onlink");
    }
    for nh in &r.nexthops {
        let _ = write!(s, " nexthop");
        if let Some(gw) = nh.gateway {
            let _ = write!(s, " via {gw}");
        }
        let _ = write!(s, " dev {} weight {}", nh.dev, nh.weight);
    }
    s
}

fn dev_up(dump: &NetnsDump, dev: &str) -> bool {
    dump.interfaces
        .iter()
        .find(|i| i.name == dev)
        .map(|i| i.admin_up)
        .unwrap_or(true)
}

/// The kernel drops routes through an administratively down device; a
/// multipath route lives while one of its next hops does.
fn usable(dump: &NetnsDump, r: &Route) -> bool {
    if r.nexthops.is_empty() {
        r.dev.as_deref().is_none_or(|d| dev_up(dump, d))
    } else {
        r.nexthops.iter().any(|n| dev_up(dump, &n.dev))
    }
}

/// Longest prefix, then lowest metric, in one table.
fn best_in_table(dump: &NetnsDump, table: u32, dst: Ipv4Addr) -> Option<&Route> {
    dump.routes
        .iter()
        .filter(|r| r.table == table && r.dst.contains(&dst) && usable(dump, r))
        .min_by_key(|r| (std::cmp::Reverse(r.dst.prefix_len()), r.metric))
}

/// The source address the kernel picks: prefsrc, else an address of the
/// output device in the gateway's (or destination's) subnet, else its first,
/// else the first address of any other device (loopback last).
fn select_source(
    dump: &NetnsDump,
    r: &Route,
    dev: Option<&str>,
    toward: Ipv4Addr,
) -> Option<Ipv4Addr> {
    if let Some(p) = r.prefsrc {
        return Some(p);
    }
    let on_dev = dump
        .interfaces
        .iter()
        .find(|i| Some(i.name.as_str()) == dev)
        .and_then(|iface| {
            iface
                .addresses
                .iter()
                .find(|a| a.contains(&toward))
                .or_else(|| iface.addresses.first())
        });
    if let Some(a) = on_dev {
        return Some(a.addr());
    }
    let any = |loopback: bool| {
        dump.interfaces
            .iter()
            .flat_map(|i| i.addresses.iter())
            .map(|a| a.addr())
            .find(|a| a.is_loopback() == loopback)
    };
    any(false).or_else(|| any(true))
}

fn hits(dump: &NetnsDump, r: &Route, priority: u32, dst: Ipv4Addr) -> Vec<RouteHit> {
    let text = render(r);
    let kind = RouteKind::parse(&r.kind);
    if r.nexthops.is_empty() {
        let toward = r.gateway.unwrap_or(dst);
        return vec![RouteHit {
            table: r.table,
            kind,
            prefix: r.dst,
            gateway: r.gateway,
            dev: r.dev.clone(),
            source: select_source(dump, r, r.dev.as_deref(), toward),
            rule_priority: priority,
            text,
            proto: r.proto.clone(),
            scope: r.scope.clone(),
            metric: r.metric,
            onlink: r.onlink,
        }];
    }
    r.nexthops
        .iter()
        .filter(|nh| dev_up(dump, &nh.dev))
        .map(|nh| RouteHit {
            table: r.table,
            kind,
            prefix: r.dst,
            gateway: nh.gateway,
            dev: Some(nh.dev.clone()),
            source: select_source(dump, r, Some(&nh.dev), nh.gateway.unwrap_or(dst)),
            rule_priority: priority,
            text: text.clone(),
            proto: r.proto.clone(),
            scope: r.scope.clone(),
            metric: r.metric,
            onlink: nh.onlink || r.onlink,
        })
        .collect()
}

fn rule_route(rule: &Rule, kind: RouteKind) -> RouteHit {
    RouteHit {
        table: 0,
        kind,
        prefix: Ipv4Net::default(),
        gateway: None,
        dev: None,
        source: None,
        rule_priority: rule.priority,
        text: format!("ip rule {}: {}", rule.priority, rule.action),
        proto: None,
        scope: None,
        metric: 0,
        onlink: false,
    }
}

/// The routes of one table, as `ip route show table N` lists them (each
/// next hop of a multipath route apart).
pub fn table(dump: &NetnsDump, table: u32) -> Vec<RouteHit> {
    dump.routes
        .iter()
        .filter(|r| r.table == table)
        .flat_map(|r| {
            let toward = r.gateway.unwrap_or(r.dst.addr());
            hits(dump, r, 0, toward)
        })
        .collect()
}

/// The netns's policy routing rules in the order the kernel tries them
/// (the kernel's defaults when the dump has none).
pub fn rules(dump: &NetnsDump) -> Vec<Rule> {
    let mut rules = if dump.rules.is_empty() {
        default_rules()
    } else {
        dump.rules.clone()
    };
    // Stable: rules of equal priority keep their (kernel) order.
    rules.sort_by_key(|r| r.priority);
    rules
}

/// Look `q.dst` up. Empty: no route (the kernel answers ENETUNREACH).
pub fn lookup(dump: &NetnsDump, q: &RouteQuery) -> Vec<RouteHit> {
    lookup_with(dump, q, &RouteSelectors::default())
}

/// [`lookup`] with the TOS and bound output device the rules may select on.
pub fn lookup_with(dump: &NetnsDump, q: &RouteQuery, sel: &RouteSelectors) -> Vec<RouteHit> {
    let Some(dst) = q.dst else {
        return vec![];
    };
    let rules = rules(dump);
    let mut i = 0;
    while let Some(rule) = rules.get(i) {
        i += 1;
        if !rule_matches(rule, q, sel, dst) {
            continue;
        }
        match rule.action.as_str() {
            "goto" => {
                // To the first rule of exactly the target priority; a goto
                // whose target is gone (or not after it) does nothing.
                let target = rule.goto.unwrap_or(0);
                if target > rule.priority
                    && let Some(j) = rules.iter().position(|r| r.priority == target)
                {
                    i = j;
                }
            }
            "blackhole" => return vec![rule_route(rule, RouteKind::Blackhole)],
            "unreachable" => return vec![rule_route(rule, RouteKind::Unreachable)],
            "prohibit" => return vec![rule_route(rule, RouteKind::Prohibit)],
            "nop" => {}
            _ => {
                let Some(table) = rule.table else { continue };
                match best_in_table(dump, table, dst) {
                    Some(r) if r.kind == "throw" => continue,
                    Some(r) => return hits(dump, r, rule.priority, dst),
                    None => continue,
                }
            }
        }
    }
    vec![]
}

/// True when `ip` has a `local` route in the local table.
pub fn is_local(dump: &NetnsDump, ip: Ipv4Addr) -> bool {
    dump.routes
        .iter()
        .any(|r| r.table == 255 && r.kind == "local" && r.dst.contains(&ip))
        || dump
            .interfaces
            .iter()
            .any(|i| i.addresses.iter().any(|a| a.addr() == ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::Interface;

    fn route(table: u32, kind: &str, dst: &str, gw: Option<&str>, dev: &str, metric: u32) -> Route {
        Route {
            table,
            kind: kind.into(),
            dst: dst.parse().unwrap(),
            gateway: gw.map(|g| g.parse().unwrap()),
            dev: Some(dev.into()),
            scope: None,
            proto: None,
            metric,
            prefsrc: None,
            onlink: false,
            nexthops: vec![],
        }
    }

    fn iface(name: &str, addr: &str, up: bool) -> Interface {
        Interface {
            index: 1,
            name: name.into(),
            kind: "device".into(),
            mtu: 1500,
            admin_up: up,
            oper_state: if up { "UP" } else { "DOWN" }.into(),
            master: None,
            peer_index: None,
            addresses: vec![addr.parse().unwrap()],
            mac: None,
            vxlan: None,
            ..Interface::default()
        }
    }

    fn q(dst: &str) -> RouteQuery {
        RouteQuery {
            dst: Some(dst.parse().unwrap()),
            ..Default::default()
        }
    }

    fn base() -> NetnsDump {
        NetnsDump {
            interfaces: vec![
                iface("eth0", "192.168.0.11/24", true),
                iface("cni0", "10.244.0.1/24", true),
            ],
            routes: vec![
                route(
                    254,
                    "unicast",
                    "0.0.0.0/0",
                    Some("192.168.0.1"),
                    "eth0",
                    100,
                ),
                route(254, "unicast", "192.168.0.0/24", None, "eth0", 0),
                route(254, "unicast", "10.244.0.0/24", None, "cni0", 0),
                route(255, "local", "192.168.0.11/32", None, "eth0", 0),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn longest_prefix_wins_and_source_is_selected() {
        let d = base();
        let h = lookup(&d, &q("10.244.0.7"));
        assert_eq!(h[0].dev.as_deref(), Some("cni0"));
        assert_eq!(h[0].source, Some("10.244.0.1".parse().unwrap()));
        let h = lookup(&d, &q("8.8.8.8"));
        assert_eq!(h[0].gateway, Some("192.168.0.1".parse().unwrap()));
        assert_eq!(h[0].text, "default via 192.168.0.1 dev eth0 metric 100");
    }

    #[test]
    fn local_table_comes_first() {
        let h = lookup(&base(), &q("192.168.0.11"));
        assert_eq!(h[0].kind, RouteKind::Local);
        assert!(is_local(&base(), "192.168.0.11".parse().unwrap()));
    }

    #[test]
    fn lower_metric_wins_on_equal_prefix() {
        let mut d = base();
        d.routes.push(route(
            254,
            "unicast",
            "0.0.0.0/0",
            Some("192.168.0.2"),
            "eth0",
            50,
        ));
        assert_eq!(
            lookup(&d, &q("1.1.1.1"))[0].gateway,
            Some("192.168.0.2".parse().unwrap())
        );
    }

    #[test]
    fn routes_through_a_down_device_are_gone() {
        let mut d = base();
        d.interfaces[1].admin_up = false;
        assert_eq!(lookup(&d, &q("10.244.0.7"))[0].dev.as_deref(), Some("eth0"));
    }

    #[test]
    fn fwmark_rule_selects_custom_table_and_throw_falls_through() {
        let mut d = base();
        d.rules = default_rules();
        d.rules.push(Rule {
            priority: 100,
            fwmark: Some(0x10),
            fwmask: Some(0xff),
            table: Some(100),
            ..default_rules()[1].clone()
        });
        d.routes.push(route(
            100,
            "unicast",
            "0.0.0.0/0",
            Some("192.168.0.3"),
            "eth0",
            0,
        ));
        d.routes
            .push(route(100, "throw", "10.244.0.0/16", None, "eth0", 0));
        let mut marked = q("1.1.1.1");
        marked.mark = 0x10;
        assert_eq!(lookup(&d, &marked)[0].table, 100);
        assert_eq!(lookup(&d, &q("1.1.1.1"))[0].table, 254);
        let mut thrown = q("10.244.0.9");
        thrown.mark = 0x10;
        assert_eq!(lookup(&d, &thrown)[0].table, 254);
    }

    #[test]
    fn unreachable_rule_and_no_route() {
        let mut d = base();
        d.routes.retain(|r| r.dst.prefix_len() != 0);
        assert!(lookup(&d, &q("8.8.8.8")).is_empty());
        d.rules = default_rules();
        d.rules.push(Rule {
            priority: 10,
            to: Some("8.8.8.0/24".parse().unwrap()),
            action: "unreachable".into(),
            table: None,
            ..default_rules()[0].clone()
        });
        assert_eq!(lookup(&d, &q("8.8.8.8"))[0].kind, RouteKind::Unreachable);
    }

    #[test]
    fn ecmp_gives_every_next_hop() {
        let mut d = base();
        let mut r = route(254, "unicast", "10.0.0.0/8", None, "eth0", 0);
        r.dev = None;
        r.nexthops = vec![
            crate::dump::NextHop {
                gateway: Some("192.168.0.5".parse().unwrap()),
                dev: "eth0".into(),
                weight: 1,
                onlink: false,
            },
            crate::dump::NextHop {
                gateway: Some("192.168.0.6".parse().unwrap()),
                dev: "eth0".into(),
                weight: 1,
                onlink: false,
            },
        ];
        d.routes.push(r);
        assert_eq!(lookup(&d, &q("10.1.2.3")).len(), 2);
    }

    fn rule(priority: u32, action: &str, table: Option<u32>) -> Rule {
        Rule {
            priority,
            action: action.into(),
            table,
            ..default_rules()[0].clone()
        }
    }

    fn with_rules(extra: Vec<Rule>) -> NetnsDump {
        let mut d = base();
        d.rules = default_rules();
        d.rules.extend(extra);
        d
    }

    #[test]
    fn tos_and_oif_selectors() {
        let mut r = rule(10, "blackhole", None);
        r.tos = Some(0x10);
        let d = with_rules(vec![r]);
        assert_eq!(lookup(&d, &q("8.8.8.8"))[0].kind, RouteKind::Unicast);
        let sel = RouteSelectors {
            tos: 0x10,
            oif: None,
        };
        assert_eq!(
            lookup_with(&d, &q("8.8.8.8"), &sel)[0].kind,
            RouteKind::Blackhole
        );
        let mut r = rule(10, "prohibit", None);
        r.oif = Some("eth0".into());
        let d = with_rules(vec![r]);
        assert_eq!(lookup(&d, &q("8.8.8.8"))[0].kind, RouteKind::Unicast);
        let sel = RouteSelectors {
            tos: 0,
            oif: Some("eth0".into()),
        };
        assert_eq!(
            lookup_with(&d, &q("8.8.8.8"), &sel)[0].kind,
            RouteKind::Prohibit
        );
    }

    #[test]
    fn not_inverts_the_whole_selector() {
        let mut r = rule(10, "blackhole", None);
        r.not = true;
        r.from = Some("10.244.0.0/16".parse().unwrap());
        let d = with_rules(vec![r]);
        let mut from_pod = q("8.8.8.8");
        from_pod.src = Some("10.244.0.5".parse().unwrap());
        assert_eq!(lookup(&d, &from_pod)[0].kind, RouteKind::Unicast);
        let mut other = q("8.8.8.8");
        other.src = Some("192.168.0.11".parse().unwrap());
        assert_eq!(lookup(&d, &other)[0].kind, RouteKind::Blackhole);
    }

    #[test]
    fn goto_jumps_to_the_exact_priority_and_unresolved_goto_does_nothing() {
        let mut g = rule(10, "goto", None);
        g.goto = Some(30);
        let d = with_rules(vec![
            g.clone(),
            rule(20, "unreachable", None),
            rule(30, "prohibit", None),
        ]);
        assert_eq!(lookup(&d, &q("8.8.8.8"))[0].kind, RouteKind::Prohibit);
        g.goto = Some(25);
        let d = with_rules(vec![
            g,
            rule(20, "unreachable", None),
            rule(30, "prohibit", None),
        ]);
        assert_eq!(
            lookup(&d, &q("8.8.8.8"))[0].kind,
            RouteKind::Unreachable,
            "no rule at 25: the goto is unresolved"
        );
        let d = with_rules(vec![rule(10, "nop", None)]);
        assert_eq!(lookup(&d, &q("8.8.8.8"))[0].table, 254);
    }

    #[test]
    fn rule_actions_and_route_types() {
        let d = with_rules(vec![rule(5, "blackhole", None)]);
        let h = lookup(&d, &q("8.8.8.8"));
        assert_eq!((h[0].kind, h[0].rule_priority), (RouteKind::Blackhole, 5));
        assert_eq!(h[0].text, "ip rule 5: blackhole");
        let mut d = with_rules(vec![rule(5, "lookup", Some(100))]);
        for kind in ["blackhole", "unreachable", "prohibit"] {
            d.routes.retain(|r| r.table != 100);
            d.routes
                .push(route(100, kind, "8.8.8.0/24", None, "eth0", 0));
            let h = lookup(&d, &q("8.8.8.8"));
            assert_eq!(h[0].kind, RouteKind::parse(kind));
            assert_eq!(h[0].table, 100);
        }
        // The default table is consulted last.
        let mut d = base();
        d.routes.retain(|r| r.dst.prefix_len() != 0);
        d.routes.push(route(
            253,
            "unicast",
            "0.0.0.0/0",
            Some("192.168.0.9"),
            "eth0",
            0,
        ));
        assert_eq!(lookup(&d, &q("8.8.8.8"))[0].table, 253);
        // Broadcast routes of the local table.
        d.routes
            .push(route(255, "broadcast", "192.168.0.255/32", None, "eth0", 0));
        assert_eq!(
            lookup(&d, &q("192.168.0.255"))[0].kind,
            RouteKind::Broadcast
        );
    }

    #[test]
    fn ecmp_skips_dead_next_hops_and_sources_fall_back() {
        let mut d = base();
        d.interfaces.push(iface("eth1", "172.16.0.2/24", false));
        let mut r = route(254, "unicast", "10.0.0.0/8", None, "eth0", 0);
        r.dev = None;
        r.nexthops = vec![
            crate::dump::NextHop {
                gateway: Some("192.168.0.5".parse().unwrap()),
                dev: "eth0".into(),
                weight: 1,
                onlink: false,
            },
            crate::dump::NextHop {
                gateway: Some("172.16.0.1".parse().unwrap()),
                dev: "eth1".into(),
                weight: 1,
                onlink: false,
            },
        ];
        d.routes.push(r);
        let h = lookup(&d, &q("10.1.2.3"));
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].dev.as_deref(), Some("eth0"));
        // prefsrc wins; a device without addresses borrows another's.
        let mut d = base();
        d.interfaces.push(Interface {
            addresses: vec![],
            ..iface("wg0", "10.9.9.9/32", true)
        });
        d.routes
            .push(route(254, "unicast", "10.50.0.0/16", None, "wg0", 0));
        let mut with_src = route(254, "unicast", "10.60.0.0/16", None, "eth0", 0);
        with_src.prefsrc = Some("10.244.0.1".parse().unwrap());
        d.routes.push(with_src);
        assert_eq!(
            lookup(&d, &q("10.50.1.1"))[0].source,
            Some("192.168.0.11".parse().unwrap())
        );
        assert_eq!(
            lookup(&d, &q("10.60.1.1"))[0].source,
            Some("10.244.0.1".parse().unwrap())
        );
    }
}
