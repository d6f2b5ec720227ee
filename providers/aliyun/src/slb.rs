//! Checks of a Classic Load Balancer (CLB, the SLB API) in front of a
//! Service of type LoadBalancer, as pure functions: the load balancer's
//! status, the listener of the port and protocol (TCP or UDP), its access
//! control lists, its vServer group's backends against the ones the Service
//! expects, and their health.

use std::net::Ipv4Addr;

use skoop_sdk::{Level, Suspicion, Underlay};

use crate::checks::{Flow, fatal, hop, push, warning};
use crate::model::{Acl, BackendHealth, Listener, LoadBalancer, VServerGroup};

/// A backend the Service expects in the vServer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedBackend {
    /// The ECS instance id (or, for pods on ENIs, empty).
    pub server_id: String,
    pub ip: Option<Ipv4Addr>,
    pub port: u16,
    /// The node (or pod) it stands for.
    pub name: String,
}

/// The backends a Service expects behind its load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// `namespace/name`.
    pub service: String,
    /// `externalTrafficPolicy Cluster: every node`, for messages.
    pub why: String,
    pub backends: Vec<ExpectedBackend>,
}

/// The expected backends of a Service: with `externalTrafficPolicy: Local`
/// the nodes hosting a ready endpoint, else (Cluster) every node, each on
/// the node port. `nodes` are (node, instance id, address).
pub fn expected_backends(
    service: &str,
    local: bool,
    node_port: u16,
    nodes: &[(String, String, Ipv4Addr)],
    endpoint_nodes: &[String],
) -> Expected {
    let backends = nodes
        .iter()
        .filter(|(n, _, _)| !local || endpoint_nodes.contains(n))
        .map(|(n, id, ip)| ExpectedBackend {
            server_id: id.clone(),
            ip: Some(*ip),
            port: node_port,
            name: format!("node {n}"),
        })
        .collect();
    Expected {
        service: service.to_string(),
        why: if local {
            "externalTrafficPolicy Local: the nodes with a ready endpoint".into()
        } else {
            "externalTrafficPolicy Cluster: every node".into()
        },
        backends,
    }
}

/// The load balancer must be active.
pub fn check_load_balancer(u: &mut Underlay, lb: &LoadBalancer, flow: &Flow) -> bool {
    if lb.status.eq_ignore_ascii_case("active") {
        hop(
            u,
            "load-balancer",
            &lb.id,
            format!(
                "CLB {} ({} {}) is active",
                lb.id, lb.address_type, lb.address
            ),
        );
        true
    } else {
        fatal(
            u,
            format!(
                "CLB {} (address {}) is \"{}\", not \"active\", so {} is dropped",
                lb.id,
                lb.address,
                lb.status,
                flow.describe()
            ),
        );
        false
    }
}

/// `tcp listener 80 of CLB lb-x`.
fn listener_name(lb: &str, l: &Listener) -> String {
    format!("{} listener {} of CLB {lb}", l.protocol, l.port)
}

/// The listener of the port and protocol must exist and be running.
pub fn check_listener<'a>(
    u: &mut Underlay,
    lb: &str,
    listener: Option<&'a Listener>,
    port: u16,
    protocol: &str,
    flow: &Flow,
) -> Option<&'a Listener> {
    let Some(l) = listener else {
        fatal(
            u,
            format!(
                "CLB {lb} has no {protocol} listener on port {port}, so {} is dropped",
                flow.describe()
            ),
        );
        return None;
    };
    if !l.status.eq_ignore_ascii_case("running") {
        fatal(
            u,
            format!(
                "{} is \"{}\", not \"running\", so {} is dropped",
                listener_name(lb, l),
                l.status,
                flow.describe()
            ),
        );
        return None;
    }
    Some(l)
}

/// A listener's access control: with ACLs on, a whitelist must hold the
/// client (an empty whitelist lets everything through) and a blacklist
/// must not.
pub fn check_acl(
    u: &mut Underlay,
    lb: &str,
    l: &Listener,
    acls: &[Acl],
    client: Ipv4Addr,
    flow: &Flow,
) -> bool {
    if !l.acl_status.eq_ignore_ascii_case("on") || acls.is_empty() {
        return true;
    }
    let ids: Vec<&str> = acls.iter().map(|a| a.id.as_str()).collect();
    let holding = acls.iter().find_map(|a| {
        a.entries
            .iter()
            .find(|c| c.contains(&client))
            .map(|c| (a, c))
    });
    let white = !l.acl_type.eq_ignore_ascii_case("black");
    match (white, holding) {
        (true, Some((a, c))) => {
            hop(
                u,
                "acl",
                &a.id,
                format!("whitelist entry {c} admits the client {client}"),
            );
            true
        }
        (true, None) if acls.iter().all(|a| a.entries.is_empty()) => true,
        (true, None) => {
            fatal(
                u,
                format!(
                    "access control list {} (whitelist) of {} does not hold the client {client}, so {} is dropped",
                    ids.join(", "),
                    listener_name(lb, l),
                    flow.describe()
                ),
            );
            false
        }
        (false, Some((a, c))) => {
            fatal(
                u,
                format!(
                    "access control list {} (blacklist) of {} holds the client {client} in entry {c}, so {} is dropped",
                    a.id,
                    listener_name(lb, l),
                    flow.describe()
                ),
            );
            false
        }
        (false, None) => true,
    }
}

fn same_backend(b: &crate::model::Backend, e: &ExpectedBackend) -> bool {
    b.port == e.port
        && ((!b.server_id.is_empty() && b.server_id == e.server_id)
            || (b.server_id.is_empty()
                || b.kind.eq_ignore_ascii_case("eni")
                || b.kind.eq_ignore_ascii_case("ip"))
                && b.server_ip.is_some()
                && b.server_ip == e.ip)
}

/// The listener's vServer group must have backends, and (when the Service
/// is known) the very backends the Service expects.
pub fn check_vserver_group(
    u: &mut Underlay,
    lb: &str,
    l: &Listener,
    group: Option<&VServerGroup>,
    expected: Option<&Expected>,
    flow: &Flow,
) {
    let Some(g) = group else {
        warning(
            u,
            format!(
                "cannot check the backends of {}: it forwards to no vServer group",
                listener_name(lb, l)
            ),
        );
        return;
    };
    if g.backends.is_empty() {
        fatal(
            u,
            format!(
                "vServer group {} of {} has no backend, so {} is dropped",
                g.id,
                listener_name(lb, l),
                flow.describe()
            ),
        );
        return;
    }
    hop(
        u,
        "vserver-group",
        &g.id,
        format!("{} backends", g.backends.len()),
    );
    let Some(e) = expected else {
        return;
    };
    if g.backends.len() != e.backends.len() {
        warning(
            u,
            format!(
                "vServer group {} of {} has {} backends, but Service {} expects {} ({})",
                g.id,
                listener_name(lb, l),
                g.backends.len(),
                e.service,
                e.backends.len(),
                e.why
            ),
        );
    }
    for b in &g.backends {
        if !e.backends.iter().any(|x| same_backend(b, x)) {
            warning(
                u,
                format!(
                    "backend {} in vServer group {} of CLB {lb} is not one Service {} expects ({})",
                    b.name(),
                    g.id,
                    e.service,
                    e.why
                ),
            );
        }
    }
    for x in &e.backends {
        if !g.backends.iter().any(|b| same_backend(b, x)) {
            warning(
                u,
                format!(
                    "{} ({}:{}) is missing from vServer group {} of CLB {lb}, though Service {} expects it ({})",
                    x.name,
                    if x.server_id.is_empty() {
                        x.ip.map(|i| i.to_string()).unwrap_or_default()
                    } else {
                        x.server_id.clone()
                    },
                    x.port,
                    g.id,
                    e.service,
                    e.why
                ),
            );
        }
    }
}

/// Every backend of the listener that fails its health check is a warning;
/// when none is healthy, nothing is forwarded.
pub fn check_health(
    u: &mut Underlay,
    lb: &str,
    l: &Listener,
    health: &[BackendHealth],
    flow: &Flow,
) {
    let of_listener: Vec<&BackendHealth> = health
        .iter()
        .filter(|h| h.listener_port == 0 || h.listener_port == l.port)
        .filter(|h| h.protocol.is_empty() || h.protocol == l.protocol)
        .filter(|h| !h.status.eq_ignore_ascii_case("unavailable"))
        .collect();
    if of_listener.is_empty() {
        return;
    }
    let name = |h: &BackendHealth| match h.server_ip {
        Some(ip) if !h.server_id.is_empty() => format!("{} ({ip}):{}", h.server_id, h.port),
        Some(ip) => format!("{ip}:{}", h.port),
        None => format!("{}:{}", h.server_id, h.port),
    };
    let sick: Vec<&&BackendHealth> = of_listener
        .iter()
        .filter(|h| !h.status.eq_ignore_ascii_case("normal"))
        .collect();
    if sick.len() == of_listener.len() {
        fatal(
            u,
            format!(
                "no backend of {} passes its health check ({}), so {} is dropped",
                listener_name(lb, l),
                sick.iter()
                    .map(|h| format!("{} is \"{}\"", name(h), h.status))
                    .collect::<Vec<_>>()
                    .join(", "),
                flow.describe()
            ),
        );
        return;
    }
    for h in sick {
        push(
            u,
            Suspicion::new(
                Level::Warning,
                format!(
                    "backend {} of {} is \"{}\" in its health check, not \"normal\"",
                    name(h),
                    listener_name(lb, l),
                    h.status
                ),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Backend;
    use skoop_sdk::{EPHEMERAL_PORT, Packet, Protocol};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn flow() -> Flow {
        Flow::of(&Packet {
            src: ip("8.8.8.8"),
            sport: EPHEMERAL_PORT,
            dst: ip("47.96.1.1"),
            dport: 80,
            protocol: Protocol::Tcp,
            mark: 0,
            encap: None,
            reply: false,
            tos: 0,
            size: 0,
            icmp: None,
        })
    }

    fn lb(status: &str) -> LoadBalancer {
        LoadBalancer {
            id: "lb-1".into(),
            address: "47.96.1.1".into(),
            address_type: "internet".into(),
            status: status.into(),
        }
    }

    fn listener(protocol: &str, status: &str) -> Listener {
        Listener {
            port: 80,
            protocol: protocol.into(),
            status: status.into(),
            acl_status: "off".into(),
            acl_type: String::new(),
            acl_ids: vec![],
            vserver_group_id: "rsp-1".into(),
            backend_port: None,
        }
    }

    fn levels(u: &Underlay) -> Vec<Level> {
        u.suspicions.iter().map(|s| s.level).collect()
    }

    #[test]
    fn status_and_listeners() {
        let mut u = Underlay::default();
        assert!(check_load_balancer(&mut u, &lb("active"), &flow()));
        assert!(u.suspicions.is_empty());
        let mut u = Underlay::default();
        assert!(!check_load_balancer(&mut u, &lb("inactive"), &flow()));
        assert_eq!(
            u.suspicions[0].message,
            "CLB lb-1 (address 47.96.1.1) is \"inactive\", not \"active\", so the request tcp 8.8.8.8 -> 47.96.1.1:80 is dropped"
        );
        let mut u = Underlay::default();
        assert!(check_listener(&mut u, "lb-1", None, 80, "tcp", &flow()).is_none());
        assert_eq!(
            u.suspicions[0].message,
            "CLB lb-1 has no tcp listener on port 80, so the request tcp 8.8.8.8 -> 47.96.1.1:80 is dropped"
        );
        // A UDP listener is checked like a TCP one (no panic, no TCP fields).
        let l = listener("udp", "stopped");
        let mut u = Underlay::default();
        assert!(check_listener(&mut u, "lb-1", Some(&l), 80, "udp", &flow()).is_none());
        assert!(
            u.suspicions[0]
                .message
                .starts_with("udp listener 80 of CLB lb-1 is \"stopped\", not \"running\"")
        );
        let l = listener("udp", "running");
        let mut u = Underlay::default();
        assert!(check_listener(&mut u, "lb-1", Some(&l), 80, "udp", &flow()).is_some());
        assert!(u.suspicions.is_empty());
    }

    #[test]
    fn access_control_lists() {
        let acl = |entries: &[&str]| Acl {
            id: "acl-1".into(),
            entries: entries
                .iter()
                .map(|e| crate::model::cidr(e).unwrap())
                .collect(),
        };
        let mut l = listener("tcp", "running");
        // Off: not checked.
        let mut u = Underlay::default();
        assert!(check_acl(
            &mut u,
            "lb-1",
            &l,
            &[acl(&["1.0.0.0/8"])],
            ip("8.8.8.8"),
            &flow()
        ));
        l.acl_status = "on".into();
        l.acl_type = "white".into();
        let mut u = Underlay::default();
        assert!(!check_acl(
            &mut u,
            "lb-1",
            &l,
            &[acl(&["1.0.0.0/8"])],
            ip("8.8.8.8"),
            &flow()
        ));
        assert_eq!(
            u.suspicions[0].message,
            "access control list acl-1 (whitelist) of tcp listener 80 of CLB lb-1 does not hold the client 8.8.8.8, so the request tcp 8.8.8.8 -> 47.96.1.1:80 is dropped"
        );
        let mut u = Underlay::default();
        assert!(check_acl(
            &mut u,
            "lb-1",
            &l,
            &[acl(&["8.8.0.0/16"])],
            ip("8.8.8.8"),
            &flow()
        ));
        let mut u = Underlay::default();
        assert!(
            check_acl(&mut u, "lb-1", &l, &[acl(&[])], ip("8.8.8.8"), &flow()),
            "an empty whitelist admits all"
        );
        l.acl_type = "black".into();
        let mut u = Underlay::default();
        assert!(!check_acl(
            &mut u,
            "lb-1",
            &l,
            &[acl(&["8.8.8.8"])],
            ip("8.8.8.8"),
            &flow()
        ));
        assert!(u.suspicions[0].message.contains("(blacklist)"));
        assert!(u.suspicions[0].message.contains("entry 8.8.8.8/32"));
        let mut u = Underlay::default();
        assert!(check_acl(
            &mut u,
            "lb-1",
            &l,
            &[acl(&["1.1.1.1"])],
            ip("8.8.8.8"),
            &flow()
        ));
    }

    fn nodes() -> Vec<(String, String, Ipv4Addr)> {
        vec![
            ("node-1".into(), "i-1".into(), ip("192.168.0.11")),
            ("node-2".into(), "i-2".into(), ip("192.168.0.12")),
            ("node-3".into(), "i-3".into(), ip("192.168.0.13")),
        ]
    }

    fn group(ids: &[&str], port: u16) -> VServerGroup {
        VServerGroup {
            id: "rsp-1".into(),
            backends: ids
                .iter()
                .map(|i| Backend {
                    server_id: i.to_string(),
                    server_ip: None,
                    port,
                    kind: "ecs".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn etp_cluster_expects_every_node() {
        let l = listener("tcp", "running");
        let e = expected_backends("default/web", false, 31080, &nodes(), &["node-2".into()]);
        assert_eq!(e.backends.len(), 3);
        let mut u = Underlay::default();
        check_vserver_group(
            &mut u,
            "lb-1",
            &l,
            Some(&group(&["i-1", "i-2", "i-3"], 31080)),
            Some(&e),
            &flow(),
        );
        assert!(u.suspicions.is_empty(), "{:?}", u.suspicions);
        // Local: only the nodes with endpoints.
        let e = expected_backends("default/web", true, 31080, &nodes(), &["node-2".into()]);
        let mut u = Underlay::default();
        check_vserver_group(
            &mut u,
            "lb-1",
            &l,
            Some(&group(&["i-2"], 31080)),
            Some(&e),
            &flow(),
        );
        assert!(u.suspicions.is_empty());
        let mut u = Underlay::default();
        check_vserver_group(
            &mut u,
            "lb-1",
            &l,
            Some(&group(&["i-1", "i-2"], 31080)),
            Some(&e),
            &flow(),
        );
        assert_eq!(levels(&u), vec![Level::Warning, Level::Warning]);
        assert!(u.suspicions[1].message.starts_with("backend i-1:31080 in vServer group rsp-1 of CLB lb-1 is not one Service default/web expects"));
        // Wrong port: the expected one is missing.
        let mut u = Underlay::default();
        check_vserver_group(
            &mut u,
            "lb-1",
            &l,
            Some(&group(&["i-2"], 30000)),
            Some(&e),
            &flow(),
        );
        assert!(u.suspicions.iter().any(|s| {
            s.message
                .starts_with("node node-2 (i-2:31080) is missing from vServer group rsp-1")
        }));
        // Empty and absent groups.
        let mut u = Underlay::default();
        check_vserver_group(
            &mut u,
            "lb-1",
            &l,
            Some(&group(&[], 31080)),
            Some(&e),
            &flow(),
        );
        assert_eq!(levels(&u), vec![Level::Fatal]);
        let mut u = Underlay::default();
        check_vserver_group(&mut u, "lb-1", &l, None, Some(&e), &flow());
        assert_eq!(levels(&u), vec![Level::Warning]);
    }

    #[test]
    fn health_of_every_backend() {
        let l = listener("tcp", "running");
        let h = |id: &str, status: &str| BackendHealth {
            server_id: id.into(),
            server_ip: Some(ip("192.168.0.11")),
            port: 31080,
            listener_port: 80,
            protocol: "tcp".into(),
            status: status.into(),
        };
        let mut u = Underlay::default();
        check_health(
            &mut u,
            "lb-1",
            &l,
            &[h("i-1", "normal"), h("i-2", "normal")],
            &flow(),
        );
        assert!(u.suspicions.is_empty());
        // Not only the first backend counts.
        let mut u = Underlay::default();
        check_health(
            &mut u,
            "lb-1",
            &l,
            &[h("i-1", "normal"), h("i-2", "abnormal")],
            &flow(),
        );
        assert_eq!(levels(&u), vec![Level::Warning]);
        assert_eq!(
            u.suspicions[0].message,
            "backend i-2 (192.168.0.11):31080 of tcp listener 80 of CLB lb-1 is \"abnormal\" in its health check, not \"normal\""
        );
        let mut u = Underlay::default();
        check_health(
            &mut u,
            "lb-1",
            &l,
            &[
                h("i-1", "abnormal"),
                h("i-2", "abnormal"),
                h("i-3", "unavailable"),
            ],
            &flow(),
        );
        assert_eq!(levels(&u), vec![Level::Fatal]);
    }
}
