//! The connectivity matrix: which workloads may reach which under the policies.
//!
//! Pods are grouped by namespace and identical labels (and, so the grouping stays exact,
//! by host networking, named container ports and which policy CIDRs hold their address).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::eval::Direction;
use crate::netpol::in_block;
use crate::{ContainerPort, Labels, Peer, PodInfo, PolicySet};
use skoop_netstack::packet::Protocol;

/// Pods that policies cannot tell apart.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub namespace: String,
    pub labels: Labels,
    /// `namespace/name` of every member.
    pub pods: Vec<String>,
    #[serde(skip)]
    members: Vec<usize>,
}

impl Group {
    /// A short name: the pod for a single pod, else `ns/{k=v,…}`.
    pub fn display(&self) -> String {
        if self.pods.len() == 1 {
            return self.pods[0].clone();
        }
        let l: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "{}/{{{}}} ({} pods)",
            self.namespace,
            l.join(","),
            self.pods.len()
        )
    }
}

/// The matrix for one port.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    pub port: u16,
    #[serde(serialize_with = "kubernetes_protocol")]
    pub protocol: Protocol,
    pub groups: Vec<Group>,
    /// `allowed[from][to]`.
    pub allowed: Vec<Vec<bool>>,
}

type GroupKey = (
    String,
    Labels,
    bool,
    Vec<ContainerPort>,
    Vec<bool>,
    Option<std::net::Ipv4Addr>,
);

/// How a pod appears as a peer: a hostNetwork pod is its node's address.
pub fn peer(p: &PodInfo) -> Peer<'_> {
    match (p.host_network, p.ip) {
        (true, Some(ip)) => Peer::Ip(ip),
        _ => Peer::Pod(p),
    }
}

/// Group `pods` (restricted to `namespace` when given) and evaluate every pair on `port/protocol`.
pub fn matrix(
    set: &PolicySet,
    pods: &[PodInfo],
    namespace: Option<&str>,
    port: u16,
    protocol: Protocol,
) -> Matrix {
    let cidrs = set.cidrs();
    let mut by_key: BTreeMap<GroupKey, Vec<usize>> = BTreeMap::new();
    for (i, p) in pods.iter().enumerate() {
        if namespace.is_some_and(|n| n != p.namespace) {
            continue;
        }
        let mut ports = p.ports.clone();
        ports.sort();
        let sig: Vec<bool> = cidrs
            .iter()
            .map(|(c, e)| p.ip.is_some_and(|ip| in_block(ip, c, e)))
            .collect();
        // hostNetwork pods act as their node address: they are grouped per address.
        let hn_ip = if p.host_network { p.ip } else { None };
        by_key
            .entry((
                p.namespace.clone(),
                p.labels.clone(),
                p.host_network,
                ports,
                sig,
                hn_ip,
            ))
            .or_default()
            .push(i);
    }
    let groups: Vec<Group> = by_key
        .into_iter()
        .map(|(k, members)| Group {
            namespace: k.0,
            labels: k.1,
            pods: members.iter().map(|&i| pods[i].id()).collect(),
            members,
        })
        .collect();
    let sel: Vec<(Vec<usize>, Vec<usize>)> = groups
        .iter()
        .map(|g| {
            let p = &pods[g.members[0]];
            (
                set.selecting(Direction::Egress, p),
                set.selecting(Direction::Ingress, p),
            )
        })
        .collect();
    let mut allowed = Vec::with_capacity(groups.len());
    for (si, gs) in groups.iter().enumerate() {
        let mut row = Vec::with_capacity(groups.len());
        for (di, gd) in groups.iter().enumerate() {
            let s = &pods[gs.members[0]];
            // Within a group, take two distinct pods when there are two: a pod reaching
            // itself is always allowed and says nothing about its siblings.
            let d = if std::ptr::eq(gs, gd) {
                &pods[*gd.members.get(1).unwrap_or(&gd.members[0])]
            } else {
                &pods[gd.members[0]]
            };
            let se = peer(s);
            let de = peer(d);
            let eg = s.host_network
                || set.allowed_with(Direction::Egress, s, &de, port, protocol, Some(&sel[si].0));
            let ok = eg
                && (d.host_network
                    || set.allowed_with(
                        Direction::Ingress,
                        d,
                        &se,
                        port,
                        protocol,
                        Some(&sel[di].1),
                    ));
            row.push(ok);
        }
        allowed.push(row);
    }
    Matrix {
        port,
        protocol,
        groups,
        allowed,
    }
}

/// `TCP`, as Kubernetes objects (and this matrix's JSON) write it.
fn kubernetes_protocol<S: serde::Serializer>(p: &Protocol, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.kubernetes_name())
}

impl Matrix {
    /// A text matrix: numbered groups, `.` allowed, `X` denied, then the legend.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Connectivity on {}/{} ({} groups; rows: from, columns: to; . allowed, X denied)",
            self.port,
            self.protocol.kubernetes_name(),
            self.groups.len()
        );
        let w = self.groups.len().to_string().len().max(2);
        let _ = write!(out, "{:>w$} ", "");
        for j in 0..self.groups.len() {
            let _ = write!(out, "{:>w$}", j + 1);
        }
        out.push('\n');
        for (i, row) in self.allowed.iter().enumerate() {
            let _ = write!(out, "{:>w$} ", i + 1);
            for ok in row {
                let _ = write!(out, "{:>w$}", if *ok { "." } else { "X" });
            }
            out.push('\n');
        }
        out.push('\n');
        for (i, g) in self.groups.iter().enumerate() {
            let _ = writeln!(out, "{:>w$}  {}", i + 1, g.display());
        }
        out
    }

    /// CSV: `from,to,port,protocol,allowed`, one line per pair of groups.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("from,to,port,protocol,allowed\n");
        for (i, row) in self.allowed.iter().enumerate() {
            for (j, ok) in row.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{}",
                    csv_field(&self.groups[i].display()),
                    csv_field(&self.groups[j].display()),
                    self.port,
                    self.protocol.kubernetes_name(),
                    ok
                );
            }
        }
        out
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
