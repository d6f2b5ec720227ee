//! A node dump some of whose sections cannot be read: each such section —
//! one netns's routes, one netns's iptables text — is left out and marked
//! absent with the reason, so the walk says "cannot check" for that part
//! alone and reads the rest. Only a dump whose node, version or layout is
//! unreadable is refused.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use skoop_error::json::{Unreadable, why_not_value};
use skoop_netstack::dump::{
    FdbEntry, Interface, IpvsService, Neighbour, Route, Rule, Socket, UNREADABLE,
};

/// `dump` with every unreadable section of every netns left out and marked
/// absent; `None` when nothing needed leaving out. `origin` names the file.
pub fn repair(dump: &mut Value, origin: &str) -> Option<Vec<String>> {
    let mut notes = Vec::new();
    let top = dump.as_object_mut()?;
    if let Some(host) = top.get_mut("host") {
        repair_netns(host, "host", origin, &mut notes);
    }
    if let Some(Value::Array(pods)) = top.get_mut("pods") {
        let mut keep = Vec::new();
        for (i, mut pod) in std::mem::take(pods).into_iter().enumerate() {
            let at = format!("pods[{i}]");
            let named = pod
                .get("namespace")
                .and_then(Value::as_str)
                .zip(pod.get("name").and_then(Value::as_str))
                .is_some();
            if !named {
                notes.push(format!(
                    "{origin}: {at}: a pod netns without a readable namespace and name was left out"
                ));
                continue;
            }
            if let Some(netns) = pod.get_mut("netns") {
                repair_netns(netns, &format!("{at}.netns"), origin, &mut notes);
            }
            keep.push(pod);
        }
        *pods = keep;
    }
    (!notes.is_empty()).then_some(notes)
}

/// The sections of one netns dump, each checked on its own.
fn repair_netns(netns: &mut Value, at: &str, origin: &str, notes: &mut Vec<String>) {
    let Some(map) = netns.as_object_mut() else {
        let why = format!(
            "{UNREADABLE}{origin}: {at}: expected an object, found {}",
            kind_of(netns)
        );
        notes.push(why.clone());
        // Nothing of this netns can be read: every fact is absent.
        let absent: Map<String, Value> = [
            "interfaces",
            "routes",
            "rules",
            "neighbours",
            "fdb",
            "iptables",
            "nft",
            "sockets",
            "ipvs",
        ]
        .iter()
        .map(|k| (k.to_string(), Value::String(why.clone())))
        .collect();
        *netns = Value::Object(
            [("absent".to_string(), Value::Object(absent))]
                .into_iter()
                .collect(),
        );
        return;
    };
    let mut absent: BTreeMap<String, String> = map
        .get("absent")
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .unwrap_or_default();
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let Some(value) = map.get(&key) else {
            continue;
        };
        let fault = match key.as_str() {
            "interfaces" => check::<Vec<Interface>>(value),
            "routes" => check::<Vec<Route>>(value),
            "rules" => check::<Vec<Rule>>(value),
            "neighbours" => check::<Vec<Neighbour>>(value),
            "fdb" => check::<Vec<FdbEntry>>(value),
            "sockets" => check::<Vec<Socket>>(value),
            "ipvs" => check::<Option<Vec<IpvsService>>>(value),
            "iptables" | "ipsets" | "nft" | "nft_chains" => check::<Option<String>>(value),
            "sysctls" => {
                // One unreadable sysctl leaves the others: each is read alone.
                sysctls(map, at, origin, notes);
                continue;
            }
            "absent" => check::<BTreeMap<String, String>>(value),
            _ => Some(Unreadable::new("", "not a section of a node dump")),
        };
        let Some(fault) = fault else {
            continue;
        };
        map.remove(&key);
        let place = fault.at(&format!("{at}.{key}"));
        let why = format!("{UNREADABLE}{origin}: {place}: {}", fault.reason);
        notes.push(why.clone());
        // The fact the walk asks about when it needs this section.
        let fact = match key.as_str() {
            "ipsets" => "iptables",
            "nft_chains" => "nft",
            "absent" => continue,
            other => other,
        };
        if is_fact(fact) {
            absent.insert(fact.to_string(), why);
        }
    }
    if !absent.is_empty()
        && let Ok(v) = serde_json::to_value(&absent)
    {
        map.insert("absent".into(), v);
    }
}

/// The facts the netstack answers "not collected" for.
fn is_fact(key: &str) -> bool {
    matches!(
        key,
        "interfaces"
            | "routes"
            | "rules"
            | "neighbours"
            | "fdb"
            | "iptables"
            | "nft"
            | "sockets"
            | "ipvs"
    )
}

/// Sysctls whose values are not strings are left out one by one: the walk
/// asks for each by name and takes a missing one as unknown.
fn sysctls(map: &mut Map<String, Value>, at: &str, origin: &str, notes: &mut Vec<String>) {
    match map.get_mut("sysctls") {
        Some(Value::Object(s)) => {
            let bad: Vec<String> = s
                .iter()
                .filter(|(_, v)| !v.is_string())
                .map(|(k, _)| k.clone())
                .collect();
            for k in bad {
                if let Some(v) = s.remove(&k) {
                    notes.push(format!(
                        "{UNREADABLE}{origin}: {at}.sysctls.{k}: expected a string, found {}",
                        kind_of(&v)
                    ));
                }
            }
        }
        Some(other) => {
            notes.push(format!(
                "{UNREADABLE}{origin}: {at}.sysctls: expected an object, found {}",
                kind_of(other)
            ));
            map.remove("sysctls");
        }
        None => {}
    }
}

fn check<T: DeserializeOwned>(value: &Value) -> Option<Unreadable> {
    serde_json::from_value::<T>(value.clone())
        .err()
        .map(|_| why_not_value::<T>(value))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_unreadable_section_is_absent_and_the_rest_stays() {
        let mut dump = json!({"version": 1, "node": "n", "host": {
            "routes": [{"dst": 5}],
            "interfaces": [],
            "iptables": 7,
            "sysctls": {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": 0},
            "absent": {"ipvs": "no IPVS"}
        }, "pods": [
            {"namespace": "default", "name": "a", "netns": "oops"},
            {"name": "b", "netns": {}}
        ]});
        let notes = repair(&mut dump, "nodes/n.json").expect("something was left out");
        let host = &dump["host"];
        assert!(host.get("routes").is_none() && host.get("iptables").is_none());
        assert_eq!(host["interfaces"], json!([]));
        assert_eq!(host["sysctls"], json!({"net.ipv4.ip_forward": "1"}));
        let absent = &host["absent"];
        assert_eq!(absent["ipvs"], "no IPVS", "what was absent stays absent");
        let routes = absent["routes"].as_str().unwrap_or_default();
        assert!(
            routes.starts_with("could not be read: nodes/n.json: host.routes[0].dst: expected"),
            "{routes}"
        );
        assert!(
            absent["iptables"]
                .as_str()
                .is_some_and(|s| s.contains("host.iptables: expected a string, found the number 7")),
            "{absent}"
        );
        assert_eq!(
            dump["pods"].as_array().map(Vec::len),
            Some(1),
            "pod b has no namespace"
        );
        assert!(dump["pods"][0]["netns"]["absent"]["routes"].is_string());
        assert_eq!(notes.len(), 5, "{notes:#?}");
        let parsed: skoop_netstack::dump::NodeDump =
            serde_json::from_value(dump).expect("reads after the repair");
        assert!(parsed.host.absent.contains_key("routes"));
    }

    #[test]
    fn a_readable_dump_needs_nothing() {
        let mut dump = json!({"version": 1, "node": "n", "host": {"routes": []}});
        assert!(repair(&mut dump, "nodes/n.json").is_none());
    }
}
