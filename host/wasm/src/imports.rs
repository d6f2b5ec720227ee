//! What the host lends extensions: the implementation of the imported
//! interfaces over the diagnosis' facts. Everything is read-only.

use std::sync::Arc;

use super::bindings::{
    cluster as wc, log as wl, netstack as wn, policy as wp, service as ws, types as wt, walk as ww,
};
use super::convert::*;
use super::state::HostState;
use skoop_engine::facts::Facts;
use skoop_engine::netstack::{Netstack, RouteQuery};
use skoop_engine::service::{self, ProxyConfig};
use skoop_engine::settings::ProxyMode;

impl HostState {
    fn facts(&self) -> Arc<Facts> {
        // Only metadata is read before the facts exist, and it calls no import.
        self.facts.clone().unwrap_or_else(|| {
            Arc::new(Facts::new(
                Default::default(),
                Default::default(),
                skoop_engine::settings::Settings {
                    network_plugin: String::new(),
                    cloud_provider: String::new(),
                    proxy_mode: ProxyMode::None,
                    cluster_cidr: None,
                    masquerade_mark: None,
                    masquerade_all: false,
                },
            ))
        })
    }

    fn may_read(&self, api_version: &str, kind: &str) -> Result<(), wt::Error> {
        let want = format!("{api_version}/{kind}");
        if kind == "Secret" || !self.reads.iter().any(|r| r == &want) {
            return Err(wt::Error::Invalid(format!(
                "extension {} may not read {want}: declare it in its metadata `reads` (Secrets are never lent)",
                self.name
            )));
        }
        Ok(())
    }
}

fn netns<'a>(facts: &'a Facts, ns: &wt::Netns) -> Result<&'a Netstack, wt::Error> {
    match ns {
        wt::Netns::Node(name) => facts.netstacks.node(name),
        wt::Netns::Pod(id) => facts.netstacks.pod(id),
    }
    .map_err(netstack_error)
}

fn bad(what: String) -> wt::Error {
    wt::Error::Invalid(what)
}

impl wt::Host for HostState {}

impl HostState {
    fn cluster_current_settings(&mut self) -> wc::Settings {
        settings_to(&self.facts().settings)
    }

    fn cluster_owner(&mut self, ip: wt::IpAddress, port: u16, protocol: wt::Protocol) -> wt::Owner {
        let facts = self.facts();
        match (ip_from(&ip), protocol_from(protocol)) {
            (Ok(ip), Ok(protocol)) => {
                let c = facts.view.classify(ip, port, protocol);
                owner_to(&c, |n| facts.view.nodes.get(n).map(|n| n.ip))
            }
            _ => wt::Owner::External(ip),
        }
    }

    fn cluster_pod(&mut self, id: String) -> Option<wt::PodInfo> {
        let facts = self.facts();
        let p = facts.view.pods.get(&id)?;
        Some(pod_to(p, facts.view.nodes.get(&p.node).map(|n| n.ip)))
    }

    fn cluster_pods_on(&mut self, name: String) -> Vec<wt::PodInfo> {
        let facts = self.facts();
        let node_ip = facts.view.nodes.get(&name).map(|n| n.ip);
        facts
            .view
            .pods
            .values()
            .filter(|p| p.node == name)
            .map(|p| pod_to(p, node_ip))
            .collect()
    }

    fn cluster_node(&mut self, name: String) -> Option<wt::NodeInfo> {
        self.facts().view.nodes.get(&name).map(node_to)
    }

    fn cluster_nodes(&mut self) -> Vec<wt::NodeInfo> {
        self.facts().view.nodes.values().map(node_to).collect()
    }

    fn cluster_get_object(
        &mut self,
        api_version: String,
        kind: String,
        namespace: String,
        name: String,
    ) -> Result<Option<String>, wt::Error> {
        self.may_read(&api_version, &kind)?;
        let facts = self.facts();
        Ok(facts
            .view
            .object(&api_version, &kind, &namespace, &name)
            .map(|o| o.json().to_string()))
    }

    fn cluster_list_objects(
        &mut self,
        api_version: String,
        kind: String,
        namespace: String,
    ) -> Result<Vec<String>, wt::Error> {
        self.may_read(&api_version, &kind)?;
        let facts = self.facts();
        Ok(facts
            .view
            .objects(&api_version, &kind, &namespace)
            .into_iter()
            .map(|o| o.json().to_string())
            .collect())
    }

    fn cluster_config(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }
}

impl HostState {
    fn netstack_interfaces(&mut self, ns: wt::Netns) -> Result<Vec<wn::InterfaceInfo>, wt::Error> {
        let facts = self.facts();
        let stack = netns(&facts, &ns)?;
        stack.absent("interfaces").map_err(netstack_error)?;
        Ok(stack.interfaces().iter().map(interface_to).collect())
    }

    fn netstack_interface_by_name(
        &mut self,
        ns: wt::Netns,
        name: String,
    ) -> Result<Option<wn::InterfaceInfo>, wt::Error> {
        let facts = self.facts();
        let stack = netns(&facts, &ns)?;
        stack.absent("interfaces").map_err(netstack_error)?;
        Ok(stack.interface(&name).map(interface_to))
    }

    fn netstack_interface_by_index(
        &mut self,
        ns: wt::Netns,
        index: u32,
    ) -> Result<Option<wn::InterfaceInfo>, wt::Error> {
        let facts = self.facts();
        let stack = netns(&facts, &ns)?;
        stack.absent("interfaces").map_err(netstack_error)?;
        Ok(stack.interface_by_index(index).map(interface_to))
    }

    fn netstack_sysctl(&mut self, ns: wt::Netns, key: String) -> Result<Option<String>, wt::Error> {
        let facts = self.facts();
        let stack = netns(&facts, &ns)?;
        // An unreadable sysctl is "not collected", not "absent from the kernel".
        stack
            .absent(&format!("sysctl {key}"))
            .map_err(netstack_error)?;
        Ok(stack.sysctl(&key).map(str::to_string))
    }

    fn netstack_ip_rules(&mut self, ns: wt::Netns) -> Result<Vec<wn::IpRule>, wt::Error> {
        let facts = self.facts();
        let stack = netns(&facts, &ns)?;
        stack.absent("rules").map_err(netstack_error)?;
        let rules = skoop_engine::netstack::route::rules(&stack.dump);
        Ok(rules
            .iter()
            .map(|r| wn::IpRule {
                priority: r.priority,
                src: r.from.map(prefix_to),
                dst: r.to.map(prefix_to),
                iif: r.iif.clone(),
                oif: r.oif.clone(),
                fwmark: r.fwmark.map(|m| (m, r.fwmask.unwrap_or(u32::MAX))),
                negated: r.not,
                action: r.action.clone(),
                table: if r.action == "lookup" { r.table } else { None },
                text: rule_text(r),
            })
            .collect())
    }

    fn netstack_routes(&mut self, ns: wt::Netns, table: u32) -> Result<Vec<wn::Route>, wt::Error> {
        let facts = self.facts();
        let stack = netns(&facts, &ns)?;
        stack.absent("routes").map_err(netstack_error)?;
        Ok(stack.table(table).iter().map(route_to).collect())
    }

    fn netstack_route_lookup(
        &mut self,
        ns: wt::Netns,
        q: wn::RouteQuery,
    ) -> Result<Vec<wn::Route>, wt::Error> {
        let facts = self.facts();
        let stack = netns(&facts, &ns)?;
        let query = RouteQuery {
            dst: Some(ip_from(&q.dst).map_err(bad)?),
            src: q.src.as_ref().map(ip_from).transpose().map_err(bad)?,
            iif: q.iif,
            mark: q.mark,
        };
        Ok(stack
            .route(&query)
            .map_err(netstack_error)?
            .iter()
            .map(route_to)
            .collect())
    }

    fn netstack_is_local(&mut self, ns: wt::Netns, ip: wt::IpAddress) -> Result<bool, wt::Error> {
        let facts = self.facts();
        Ok(netns(&facts, &ns)?.is_local(ip_from(&ip).map_err(bad)?))
    }

    fn netstack_neighbours(
        &mut self,
        ns: wt::Netns,
        dev: Option<String>,
    ) -> Result<Vec<wn::Neighbour>, wt::Error> {
        let facts = self.facts();
        let stack = netns(&facts, &ns)?;
        stack.absent("neighbours").map_err(netstack_error)?;
        Ok(stack
            .dump
            .neighbours
            .iter()
            .filter(|n| dev.as_deref().is_none_or(|d| d == n.dev))
            .map(|n| wn::Neighbour {
                ip: ip_to(n.ip),
                dev: n.dev.clone(),
                lladdr: n.lladdr.clone(),
                state: n.state.clone(),
            })
            .collect())
    }

    fn netstack_fdb(&mut self, ns: wt::Netns, dev: String) -> Result<Vec<wn::FdbEntry>, wt::Error> {
        let facts = self.facts();
        Ok(netns(&facts, &ns)?
            .fdb(&dev)
            .map_err(netstack_error)?
            .into_iter()
            .map(fdb_to)
            .collect())
    }

    fn netstack_listening(
        &mut self,
        ns: wt::Netns,
        protocol: wt::Protocol,
        ip: wt::IpAddress,
        port: u16,
    ) -> Result<bool, wt::Error> {
        let facts = self.facts();
        netns(&facts, &ns)?
            .listening(
                protocol_from(protocol).map_err(bad)?,
                ip_from(&ip).map_err(bad)?,
                port,
            )
            .map_err(netstack_error)
    }

    fn netstack_netfilter(
        &mut self,
        ns: wt::Netns,
        hook: wn::Hook,
        packet: wt::Packet,
        iif: Option<String>,
        oif: Option<String>,
    ) -> Result<Vec<wn::FilterOutcome>, wt::Error> {
        let facts = self.facts();
        let packet = packet_from(&packet).map_err(bad)?;
        Ok(netns(&facts, &ns)?
            .netfilter(hook_from(hook), &packet, iif.as_deref(), oif.as_deref())
            .map_err(netstack_error)?
            .iter()
            .map(outcome_to)
            .collect())
    }

    fn netstack_forward(
        &mut self,
        ns: wt::Netns,
        query: wn::ForwardQuery,
    ) -> Result<Vec<wn::Forwarded>, wt::Error> {
        let facts = self.facts();
        let stack = netns(&facts, &ns)?;
        let q = skoop_engine::netstack::ForwardQuery {
            packet: packet_from(&query.packet).map_err(bad)?,
            iif: query.iif,
            l2_next_hop: query
                .l2_next_hop
                .as_ref()
                .map(ip_from)
                .transpose()
                .map_err(bad)?,
            tos: query.tos,
            stand_in: Vec::new(),
            ct_invalid: false,
        };
        // A poisoned lock only means another call panicked; the table is still usable.
        let mut tables = facts
            .conntrack
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ct = tables.entry(stack.label.clone()).or_default();
        let branches = stack.forward(ct, &q);
        drop(tables);
        facts.log_decisions(skoop_engine::path::Decision::of(
            &stack.label,
            &q,
            &branches,
        ));
        Ok(branches.iter().map(forwarded_to).collect())
    }
}

fn rule_text(r: &skoop_engine::dump::Rule) -> String {
    let mut s = format!("{}:", r.priority);
    if r.not {
        s.push_str(" not");
    }
    s.push_str(&format!(
        " from {}",
        r.from
            .map(|f| f.to_string())
            .unwrap_or_else(|| "all".into())
    ));
    if let Some(to) = r.to {
        s.push_str(&format!(" to {to}"));
    }
    if let Some(m) = r.fwmark {
        s.push_str(&format!(" fwmark {m:#x}"));
        if let Some(mask) = r.fwmask {
            s.push_str(&format!("/{mask:#x}"));
        }
    }
    if let Some(i) = &r.iif {
        s.push_str(&format!(" iif {i}"));
    }
    if let Some(o) = &r.oif {
        s.push_str(&format!(" oif {o}"));
    }
    match r.action.as_str() {
        "lookup" => s.push_str(&format!(" lookup {}", r.table.unwrap_or(254))),
        "goto" => s.push_str(&format!(" goto {}", r.goto.unwrap_or(0))),
        other => s.push_str(&format!(" {other}")),
    }
    s
}

impl HostState {
    /// The EndpointSlices' answer for a datapath the host's walk cannot see.
    fn service_resolve(
        &mut self,
        node: String,
        packet: wt::Packet,
    ) -> Result<ws::Resolution, wt::Error> {
        let facts = self.facts();
        let packet = packet_from(&packet).map_err(bad)?;
        let proxy = ProxyConfig::from_settings(&facts.settings);
        let r = service::resolve(&facts.view, &node, &packet, &proxy);
        let mut backends = Vec::new();
        for b in &r.backends {
            let target = match b.pod.as_ref().and_then(|id| facts.view.pods.get(id)) {
                Some(p) => wt::Owner::Pod(pod_to(p, facts.view.nodes.get(&p.node).map(|n| n.ip))),
                None => {
                    let c = facts
                        .view
                        .classify(b.endpoint, b.packet.dport, b.packet.protocol);
                    owner_to(&c, |n| facts.view.nodes.get(n).map(|n| n.ip))
                }
            };
            backends.push(ws::Backend {
                packet: packet_to(&b.packet),
                target,
            });
        }
        Ok(ws::Resolution {
            backends,
            suspicions: suspicions_to(&findings_of(&r.findings)),
        })
    }
}

impl HostState {
    fn policy_evaluate(
        &mut self,
        src: wt::IpAddress,
        dst: wt::IpAddress,
        dport: u16,
        protocol: wt::Protocol,
    ) -> Vec<wp::Verdict> {
        let facts = self.facts();
        let (Ok(src), Ok(dst)) = (ip_from(&src), ip_from(&dst)) else {
            return Vec::new();
        };
        let check = match &self.policy {
            Some(c) => c.clone(),
            None => {
                match skoop_engine::policy::PolicyCheck::new(&facts.view, &self.name, &[], None) {
                    Ok(c) => {
                        let c = Arc::new(c);
                        self.policy = Some(c.clone());
                        c
                    }
                    Err(_) => return Vec::new(),
                }
            }
        };
        let Ok(protocol) = protocol_from(protocol) else {
            return Vec::new();
        };
        check
            .evaluate(&facts.view, src, dst, dport, protocol)
            .into_iter()
            .map(|v| wp::Verdict {
                direction: v.direction.to_string(),
                pod: v.pod.clone(),
                allowed: v.allowed,
                decision: v.decision.kind().to_string(),
                policies: v.named_policies(),
                explanation: v.explanation,
            })
            .collect()
    }
}

impl HostState {
    fn log_log(&mut self, level: wt::Level, message: String) {
        if self.verbose {
            eprintln!(
                "[{}] {}: {}",
                self.name,
                level_from(level).name(),
                clean(&message)
            );
        }
    }
}

// The imports proper: each is bounded by the call's deadline, and recorded
// or answered from a recording when asked (see hostcalls.rs).
macro_rules! lend {
    ($iface:ident { $($name:literal fn $f:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $inner:ident;)* }) => {
        impl $iface::Host for HostState {
            $(
                fn $f(&mut self $(, $arg: $ty)*) -> wasmtime::Result<$ret> {
                    let args = self.recording().then(|| serde_json::json!([$(&$arg),*]));
                    self.hostcall($name, args, move |h| h.$inner($($arg),*))
                }
            )*
        }
    };
}

lend!(wc {
    "cluster.current-settings" fn current_settings() -> wc::Settings = cluster_current_settings;
    "cluster.owner-of" fn owner_of(ip: wt::IpAddress, port: u16, protocol: wt::Protocol) -> wt::Owner = cluster_owner;
    "cluster.pod" fn pod(id: String) -> Option<wt::PodInfo> = cluster_pod;
    "cluster.pods-on" fn pods_on(name: String) -> Vec<wt::PodInfo> = cluster_pods_on;
    "cluster.node" fn node(name: String) -> Option<wt::NodeInfo> = cluster_node;
    "cluster.nodes" fn nodes() -> Vec<wt::NodeInfo> = cluster_nodes;
    "cluster.get-object" fn get_object(api_version: String, kind: String, namespace: String, name: String) -> Result<Option<String>, wt::Error> = cluster_get_object;
    "cluster.list-objects" fn list_objects(api_version: String, kind: String, namespace: String) -> Result<Vec<String>, wt::Error> = cluster_list_objects;
    "cluster.config" fn config(key: String) -> Option<String> = cluster_config;
});

lend!(wn {
    "netstack.interfaces" fn interfaces(ns: wt::Netns) -> Result<Vec<wn::InterfaceInfo>, wt::Error> = netstack_interfaces;
    "netstack.interface-by-name" fn interface_by_name(ns: wt::Netns, name: String) -> Result<Option<wn::InterfaceInfo>, wt::Error> = netstack_interface_by_name;
    "netstack.interface-by-index" fn interface_by_index(ns: wt::Netns, index: u32) -> Result<Option<wn::InterfaceInfo>, wt::Error> = netstack_interface_by_index;
    "netstack.sysctl" fn sysctl(ns: wt::Netns, key: String) -> Result<Option<String>, wt::Error> = netstack_sysctl;
    "netstack.ip-rules" fn ip_rules(ns: wt::Netns) -> Result<Vec<wn::IpRule>, wt::Error> = netstack_ip_rules;
    "netstack.routes" fn routes(ns: wt::Netns, table: u32) -> Result<Vec<wn::Route>, wt::Error> = netstack_routes;
    "netstack.route-lookup" fn route_lookup(ns: wt::Netns, q: wn::RouteQuery) -> Result<Vec<wn::Route>, wt::Error> = netstack_route_lookup;
    "netstack.is-local" fn is_local(ns: wt::Netns, ip: wt::IpAddress) -> Result<bool, wt::Error> = netstack_is_local;
    "netstack.neighbours" fn neighbours(ns: wt::Netns, dev: Option<String>) -> Result<Vec<wn::Neighbour>, wt::Error> = netstack_neighbours;
    "netstack.fdb" fn fdb(ns: wt::Netns, dev: String) -> Result<Vec<wn::FdbEntry>, wt::Error> = netstack_fdb;
    "netstack.listening" fn listening(ns: wt::Netns, protocol: wt::Protocol, ip: wt::IpAddress, port: u16) -> Result<bool, wt::Error> = netstack_listening;
    "netstack.netfilter" fn netfilter(ns: wt::Netns, hook: wn::Hook, packet: wt::Packet, iif: Option<String>, oif: Option<String>) -> Result<Vec<wn::FilterOutcome>, wt::Error> = netstack_netfilter;
    "netstack.forward" fn forward(ns: wt::Netns, query: wn::ForwardQuery) -> Result<Vec<wn::Forwarded>, wt::Error> = netstack_forward;
});

lend!(ws {
    "service.resolve" fn resolve(node: String, packet: wt::Packet) -> Result<ws::Resolution, wt::Error> = service_resolve;
});

impl ww::Host for HostState {}

lend!(wp {
    "policy.evaluate" fn evaluate(src: wt::IpAddress, dst: wt::IpAddress, dport: u16, protocol: wt::Protocol) -> Vec<wp::Verdict> = policy_evaluate;
});

lend!(wl {
    "log.log" fn log(level: wt::Level, message: String) -> () = log_log;
});
