//! The corpus' `ip rule add` / `ip route add` arguments as dump records, so
//! the simulator sees the policy routing the kernel was given.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use skoop_netstack::dump::{Route, Rule};

fn num(s: &str) -> Option<u32> {
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn net(s: &str) -> Option<Ipv4Net> {
    if s.contains('/') {
        s.parse().ok()
    } else {
        Ipv4Net::new(s.parse().ok()?, 32).ok()
    }
}

fn table_id(s: &str) -> Option<u32> {
    match s {
        "local" => Some(255),
        "main" => Some(254),
        "default" => Some(253),
        n => n.parse().ok(),
    }
}

/// The kernel's three default rules.
pub fn default_rules() -> Vec<Rule> {
    [(0, 255), (32766, 254), (32767, 253)]
        .into_iter()
        .map(|(priority, table)| blank_rule(priority, Some(table)))
        .collect()
}

fn blank_rule(priority: u32, table: Option<u32>) -> Rule {
    Rule {
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
        table,
        goto: None,
    }
}

/// `ip rule add` arguments (the forms the corpus uses).
pub fn rule(args: &str) -> Option<Rule> {
    let mut r = blank_rule(0, None);
    let mut it = args.split_whitespace();
    while let Some(w) = it.next() {
        match w {
            "not" => r.not = true,
            "from" => r.from = Some(net(it.next()?)?),
            "to" => r.to = Some(net(it.next()?)?),
            "fwmark" => {
                let v = it.next()?;
                match v.split_once('/') {
                    Some((m, k)) => {
                        r.fwmark = Some(num(m)?);
                        r.fwmask = Some(num(k)?);
                    }
                    None => r.fwmark = Some(num(v)?),
                }
            }
            "iif" => r.iif = Some(it.next()?.to_string()),
            "oif" => r.oif = Some(it.next()?.to_string()),
            "tos" => r.tos = Some(u8::try_from(num(it.next()?)?).ok()?),
            "pref" | "priority" => r.priority = num(it.next()?)?,
            "lookup" | "table" => r.table = Some(table_id(it.next()?)?),
            "goto" => {
                r.action = "goto".into();
                r.goto = Some(num(it.next()?)?);
            }
            "blackhole" | "unreachable" | "prohibit" => r.action = w.into(),
            _ => return None,
        }
    }
    Some(r)
}

/// `ip route add` arguments: `[TYPE] DST [via GW] [dev DEV] [table T]`.
pub fn route(args: &str) -> Option<Route> {
    let mut words: Vec<&str> = args.split_whitespace().collect();
    let kind = match words.first().copied() {
        Some(k @ ("throw" | "blackhole" | "unreachable" | "prohibit" | "local")) => {
            let k = k.to_string();
            words.remove(0);
            k
        }
        _ => "unicast".to_string(),
    };
    let mut it = words.into_iter();
    let dst = net(it.next()?)?;
    let mut r = Route {
        table: 254,
        kind,
        dst,
        gateway: None,
        dev: None,
        scope: None,
        proto: None,
        metric: 0,
        prefsrc: None,
        onlink: false,
        nexthops: vec![],
    };
    while let Some(w) = it.next() {
        match w {
            "via" => r.gateway = Some(it.next()?.parse::<Ipv4Addr>().ok()?),
            "dev" => r.dev = Some(it.next()?.to_string()),
            "table" => r.table = table_id(it.next()?)?,
            "metric" => r.metric = num(it.next()?)?,
            _ => return None,
        }
    }
    Some(r)
}
