//! `netstack`: each netns's devices, routes, neighbours and netfilter as
//! the dumps hold them, and the host's kernel pipeline (`forward`), whose
//! decisions the call leaves for the engine.

use super::bad;
use crate::bindings::{netstack as wn, types as wt};
use crate::convert::{
    fdb_to, forwarded_to, hook_from, interface_to, ip_from, ip_to, netstack_error, outcome_to,
    packet_from, prefix_to, protocol_from, route_to,
};
use crate::state::HostState;
use skoop_engine::facts::Facts;
use skoop_engine::path::Decision;
use skoop_netstack::{Netstack, RouteQuery};

fn netns<'a>(facts: &'a Facts, ns: &wt::Netns) -> Result<&'a Netstack, wt::Error> {
    match ns {
        wt::Netns::Node(name) => facts.netstacks.node(name),
        wt::Netns::Pod(id) => facts.netstacks.pod(id),
    }
    .map_err(netstack_error)
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
        let rules = skoop_netstack::route::rules(&stack.dump);
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
        let q = skoop_netstack::ForwardQuery {
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
        self.decisions
            .extend(Decision::of(&stack.label, &q, &branches));
        Ok(branches.iter().map(forwarded_to).collect())
    }
}

fn rule_text(r: &skoop_netstack::dump::Rule) -> String {
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
