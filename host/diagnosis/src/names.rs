//! Endpoints as people name them — pods, Services, nodes, the cluster's DNS
//! names and addresses — resolved against the cluster's objects into the
//! addresses and port a diagnosis walks.
//!
//! Forms: an IP; `NAMESPACE/POD`; `pod/NS/NAME`, `svc/NS/NAME` (also
//! `service/…`), `node/NAME`; `KIND/NAME` in any namespace; a Service's DNS
//! name (`web.default`, `web.default.svc`, `web.default.svc.DOMAIN`), a
//! pod's (`10-244-1-5.default.pod.DOMAIN`, `HOST.SUBDOMAIN.NS.svc.DOMAIN`);
//! a bare name of a node, pod or Service when only one object has it.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use anyhow::Result;
use skoop_engine::cluster::{ClusterView, NodeFacts, PodFacts, ServiceFacts};
use skoop_engine::flow::Flow;
use skoop_error::bad_input;
use skoop_netstack::packet::Protocol;

/// A flow as a person gives it: endpoints by name or address, the port by
/// number or name (or left out for a Service with one port), the protocol
/// if given (else the named port's, else TCP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSpec {
    pub src: String,
    pub dst: String,
    pub port: Option<String>,
    pub protocol: Option<Protocol>,
}

impl From<Flow> for FlowSpec {
    fn from(flow: Flow) -> FlowSpec {
        FlowSpec {
            src: flow.src.to_string(),
            dst: flow.dst.to_string(),
            port: Some(flow.dport.to_string()),
            protocol: Some(flow.protocol),
        }
    }
}

/// A flow with its endpoints' names: `pod/default/client-1`,
/// `svc/default/web`, `node/node-1` (`None` for an address that was given
/// as one).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub flow: Flow,
    pub src: Option<String>,
    pub dst: Option<String>,
}

/// What a name denotes.
enum Target<'v> {
    Address(Ipv4Addr),
    Pod(&'v PodFacts),
    Service(&'v ServiceFacts),
    Node(&'v NodeFacts),
}

impl Target<'_> {
    fn name(&self) -> Option<String> {
        match self {
            Target::Address(_) => None,
            Target::Pod(p) => Some(format!("pod/{}/{}", p.namespace, p.name)),
            Target::Service(s) => Some(format!("svc/{}/{}", s.namespace, s.name)),
            Target::Node(n) => Some(format!("node/{}", n.name)),
        }
    }

    /// `pod/default/web-1 (10.244.1.7)`, for lists of candidates.
    fn listed(&self) -> String {
        let address = match self {
            Target::Address(ip) => return ip.to_string(),
            Target::Pod(p) => p.ip.map(|ip| ip.to_string()),
            Target::Service(s) => s.cluster_ips.first().map(|ip| ip.to_string()),
            Target::Node(n) => Some(n.ip.to_string()),
        };
        format!(
            "{} ({})",
            self.name().unwrap_or_default(),
            address.as_deref().unwrap_or("no address")
        )
    }
}

/// Resolve `spec` against `view`.
pub fn resolve(view: &ClusterView, spec: &FlowSpec) -> Result<Resolved> {
    let domain = cluster_domain(view);
    let src = target(view, "-s", &spec.src, domain.as_deref())?;
    let dst = target(view, "-d", &spec.dst, domain.as_deref())?;
    let src_ip = source_address(view, &spec.src, &src)?;
    let dst_ip = destination_address(view, &spec.dst, &dst)?;
    let (dport, protocol) = port(&spec.dst, &dst, spec.port.as_deref(), spec.protocol)?;
    Ok(Resolved {
        flow: Flow {
            src: src_ip,
            dst: dst_ip,
            dport,
            protocol,
        },
        src: src.name(),
        dst: dst.name(),
    })
}

/// The cluster's DNS domain: the kubelet's `clusterDomain` (kubeadm's
/// ConfigMap kube-system/kubelet-config), else the zone CoreDNS's
/// `kubernetes` plugin serves (ConfigMap kube-system/coredns).
pub fn cluster_domain(view: &ClusterView) -> Option<String> {
    let data = |name: &str, key: &str| -> Option<String> {
        let cm = view.object("v1", "ConfigMap", "kube-system", name)?;
        let v: serde_json::Value = serde_json::from_str(cm.json()).ok()?;
        v.get("data")?.get(key)?.as_str().map(str::to_string)
    };
    if let Some(kubelet) = data("kubelet-config", "kubelet") {
        let domain = kubelet.lines().find_map(|l| {
            let v = l.trim().strip_prefix("clusterDomain:")?;
            Some(v.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        });
        if let Some(d) = domain.filter(|d| !d.is_empty()) {
            return Some(d.trim_end_matches('.').to_string());
        }
    }
    let corefile = data("coredns", "Corefile")?;
    corefile.lines().find_map(|l| {
        let mut words = l.split_whitespace();
        (words.next() == Some("kubernetes")).then_some(())?;
        words
            .take_while(|w| *w != "{")
            .find(|w| !w.ends_with(".arpa") && !w.ends_with(".arpa."))
            .map(|w| w.trim_end_matches('.').to_string())
    })
}

/// What `text` (given as `flag`) names.
fn target<'v>(
    view: &'v ClusterView,
    flag: &str,
    text: &str,
    domain: Option<&str>,
) -> Result<Target<'v>> {
    let text = text.trim();
    if text.is_empty() {
        return Err(bad_input(format!("{flag} is empty")));
    }
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => return Ok(Target::Address(ip)),
        Ok(IpAddr::V6(_)) => {
            return Err(bad_input(format!(
                "{flag} {text}: IPv6 is not supported yet; give an IPv4 address or a name"
            )));
        }
        Err(_) => {}
    }
    if let Some(n) = view.nodes.get(text) {
        return Ok(Target::Node(n));
    }
    let parts: Vec<&str> = text.split('/').collect();
    match parts.as_slice() {
        [kind, ns, name] => match kind_of(kind) {
            Some(Kind::Pod) => pod(view, flag, text, ns, name),
            Some(Kind::Service) => service(view, flag, text, ns, name),
            _ => Err(not_a_name(flag, text)),
        },
        [kind, name] if kind_of(kind).is_some() => match kind_of(kind) {
            Some(Kind::Node) => node(view, flag, text, name),
            Some(Kind::Pod) => only_one(
                flag,
                text,
                view.pods
                    .values()
                    .filter(|p| p.name == *name)
                    .map(Target::Pod)
                    .collect(),
                || similar_pods(view, None, name),
            ),
            Some(Kind::Service) => only_one(
                flag,
                text,
                view.services
                    .values()
                    .filter(|s| s.name == *name)
                    .map(Target::Service)
                    .collect(),
                || similar_services(view, None, name),
            ),
            None => Err(not_a_name(flag, text)),
        },
        [ns, name] => {
            // NAMESPACE/POD; a Service of that name when no pod has it.
            if let Some(p) = view.pods.get(text) {
                return Ok(Target::Pod(p));
            }
            if let Some(s) = view.services.get(text) {
                return Ok(Target::Service(s));
            }
            pod(view, flag, text, ns, name)
        }
        [_] if text.contains('.') => dns_name(view, flag, text, domain),
        [name] => {
            let mut found: Vec<Target<'v>> = Vec::new();
            found.extend(
                view.pods
                    .values()
                    .filter(|p| p.name == *name)
                    .map(Target::Pod),
            );
            found.extend(
                view.services
                    .values()
                    .filter(|s| s.name == *name)
                    .map(Target::Service),
            );
            only_one(flag, text, found, || {
                let mut all = similar_nodes(view, name, false);
                all.extend(similar_pods(view, None, name));
                all.extend(similar_services(view, None, name));
                all
            })
        }
        _ => Err(not_a_name(flag, text)),
    }
}

enum Kind {
    Pod,
    Service,
    Node,
}

fn kind_of(word: &str) -> Option<Kind> {
    match word {
        "pod" | "pods" | "po" => Some(Kind::Pod),
        "svc" | "service" | "services" => Some(Kind::Service),
        "node" | "nodes" | "no" => Some(Kind::Node),
        _ => None,
    }
}

fn not_a_name(flag: &str, text: &str) -> anyhow::Error {
    bad_input(format!(
        "{flag} {text:?} is neither an address nor a name skoop knows: give an IPv4 address, NAMESPACE/POD, pod/NAMESPACE/NAME, svc/NAMESPACE/NAME, node/NAME or a DNS name such as web.default"
    ))
}

fn pod<'v>(
    view: &'v ClusterView,
    flag: &str,
    text: &str,
    ns: &str,
    name: &str,
) -> Result<Target<'v>> {
    match view.pods.get(&format!("{ns}/{name}")) {
        Some(p) => Ok(Target::Pod(p)),
        None => Err(no_match(
            flag,
            text,
            &format!("no pod {ns}/{name}"),
            similar_pods(view, Some(ns), name),
        )),
    }
}

fn service<'v>(
    view: &'v ClusterView,
    flag: &str,
    text: &str,
    ns: &str,
    name: &str,
) -> Result<Target<'v>> {
    match view.services.get(&format!("{ns}/{name}")) {
        Some(s) => Ok(Target::Service(s)),
        None => Err(no_match(
            flag,
            text,
            &format!("no Service {ns}/{name}"),
            similar_services(view, Some(ns), name),
        )),
    }
}

fn node<'v>(view: &'v ClusterView, flag: &str, text: &str, name: &str) -> Result<Target<'v>> {
    match view.nodes.get(name) {
        Some(n) => Ok(Target::Node(n)),
        None => Err(no_match(
            flag,
            text,
            &format!("no node {name}"),
            similar_nodes(view, name, true),
        )),
    }
}

/// A Service's or a pod's name in the cluster's DNS.
fn dns_name<'v>(
    view: &'v ClusterView,
    flag: &str,
    text: &str,
    domain: Option<&str>,
) -> Result<Target<'v>> {
    let name = text.trim_end_matches('.');
    let labels: Vec<&str> = name.split('.').collect();
    // The labels before the zone suffix (`svc` or `pod` and the domain).
    let (head, zone, rest) = match labels.iter().position(|l| *l == "svc" || *l == "pod") {
        Some(i) if i >= 2 => (&labels[..i], labels[i], &labels[i + 1..]),
        _ => (&labels[..], "svc", &labels[labels.len()..]),
    };
    if !rest.is_empty() {
        let given = rest.join(".");
        if let Some(d) = domain
            && given != d
        {
            return Err(bad_input(format!(
                "{flag} {text:?}: the cluster's DNS domain is {d} (from the kubelet's or CoreDNS's ConfigMap), not {given}"
            )));
        }
    }
    match (zone, head) {
        ("svc", [svc, ns]) => service(view, flag, text, ns, svc),
        ("svc", [host, subdomain, ns]) => {
            let found: Vec<Target<'v>> = view
                .pods
                .values()
                .filter(|p| {
                    p.namespace == *ns
                        && p.dns_name
                            .as_ref()
                            .is_some_and(|(h, s)| h == host && s == subdomain)
                })
                .map(Target::Pod)
                .collect();
            only_one(flag, text, found, || similar_pods(view, Some(ns), host))
        }
        ("pod", [dashed, ns]) => {
            let ip: Option<Ipv4Addr> = dashed.replace('-', ".").parse().ok();
            let found: Vec<Target<'v>> = ip
                .map(|ip| {
                    view.pods
                        .values()
                        .filter(|p| p.namespace == *ns && p.ip == Some(ip))
                        .map(Target::Pod)
                        .collect()
                })
                .unwrap_or_default();
            only_one(flag, text, found, Vec::new)
        }
        _ => Err(not_a_name(flag, text)),
    }
}

/// The one target found, or an error listing none's near misses or the
/// several found.
fn only_one<'v>(
    flag: &str,
    text: &str,
    mut found: Vec<Target<'v>>,
    similar: impl FnOnce() -> Vec<String>,
) -> Result<Target<'v>> {
    match found.len() {
        0 => Err(no_match(
            flag,
            text,
            "no pod, Service or node has that name",
            similar(),
        )),
        1 => Ok(found.remove(0)),
        _ => {
            let mut listed: Vec<String> = found.iter().map(Target::listed).collect();
            listed.sort();
            Err(bad_input(format!(
                "{flag} {text:?} names more than one object; name one: {}",
                listed.join(", ")
            )))
        }
    }
}

fn no_match(flag: &str, text: &str, what: &str, mut similar: Vec<String>) -> anyhow::Error {
    let mut msg = format!("{flag} {text:?}: {what}");
    similar.sort();
    similar.dedup();
    if !similar.is_empty() {
        const SHOWN: usize = 10;
        let more = similar.len().saturating_sub(SHOWN);
        similar.truncate(SHOWN);
        let _ = write!(msg, "; did you mean: {}", similar.join(", "));
        if more > 0 {
            let _ = write!(msg, " (and {more} more)");
        }
    }
    bad_input(msg)
}

/// Whether `candidate` looks like `wanted`: one contains the other, or they
/// differ by at most two edits.
fn looks_like(candidate: &str, wanted: &str) -> bool {
    !wanted.is_empty()
        && (candidate.contains(wanted)
            || wanted.contains(candidate)
            || edit_distance(candidate, wanted) <= 2)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The candidates whose name looks like `name`, listed; with nothing alike,
/// all of them when `or_all` (the namespace's pods, when it was named).
fn similar<'v>(
    candidates: impl Iterator<Item = (&'v str, Target<'v>)> + Clone,
    name: &str,
    or_all: bool,
) -> Vec<String> {
    let alike: Vec<String> = candidates
        .clone()
        .filter(|(n, _)| looks_like(n, name))
        .map(|(_, t)| t.listed())
        .collect();
    if !alike.is_empty() || !or_all {
        return alike;
    }
    candidates.map(|(_, t)| t.listed()).collect()
}

/// Pods whose name looks like `name` (in `ns`, when given); with `ns`
/// given and nothing alike, the namespace's pods.
fn similar_pods(view: &ClusterView, ns: Option<&str>, name: &str) -> Vec<String> {
    let pods = view
        .pods
        .values()
        .filter(move |p| ns.is_none_or(|ns| p.namespace == ns))
        .map(|p| (p.name.as_str(), Target::Pod(p)));
    similar(pods, name, ns.is_some())
}

fn similar_services(view: &ClusterView, ns: Option<&str>, name: &str) -> Vec<String> {
    let services = view
        .services
        .values()
        .filter(move |s| ns.is_none_or(|ns| s.namespace == ns))
        .map(|s| (s.name.as_str(), Target::Service(s)));
    similar(services, name, ns.is_some())
}

/// Nodes whose name looks like `name`; with nothing alike, every node when
/// `or_all`.
fn similar_nodes(view: &ClusterView, name: &str, or_all: bool) -> Vec<String> {
    let nodes = view
        .nodes
        .values()
        .map(|n| (n.name.as_str(), Target::Node(n)));
    similar(nodes, name, or_all)
}

/// The address a flow from `target` leaves from.
fn source_address(view: &ClusterView, text: &str, target: &Target<'_>) -> Result<Ipv4Addr> {
    match target {
        Target::Address(ip) => Ok(*ip),
        Target::Pod(p) => pod_address(view, "-s", text, p),
        Target::Node(n) => Ok(n.ip),
        Target::Service(s) => {
            let pods = endpoint_pods(view, s);
            let mut msg = format!(
                "-s {text:?} is Service {}: a Service is not a source; name one of its pods",
                s.id()
            );
            if !pods.is_empty() {
                let _ = write!(msg, ": {}", pods.join(", "));
            }
            Err(bad_input(msg))
        }
    }
}

/// The address a flow to `target` goes to: a Service's cluster IP; a
/// headless Service's one ready pod (its DNS name's only answer).
fn destination_address(view: &ClusterView, text: &str, target: &Target<'_>) -> Result<Ipv4Addr> {
    match target {
        Target::Address(ip) => Ok(*ip),
        Target::Pod(p) => pod_address(view, "-d", text, p),
        Target::Node(n) => Ok(n.ip),
        Target::Service(s) => {
            if s.service_type == "ExternalName" {
                return Err(bad_input(format!(
                    "-d {text:?} is Service {}, of type ExternalName: its name is an alias of a name outside the cluster, which skoop does not resolve; give that address",
                    s.id()
                )));
            }
            if let Some(ip) = s.cluster_ips.first() {
                return Ok(*ip);
            }
            let ready: Vec<Ipv4Addr> = view
                .endpoints
                .get(&s.id())
                .map(|eps| eps.iter().filter(|e| e.ready).map(|e| e.ip).collect())
                .unwrap_or_default();
            match ready.as_slice() {
                [ip] => Ok(*ip),
                [] => Err(bad_input(format!(
                    "-d {text:?} is Service {}, headless (no cluster IP) and without ready endpoints: its DNS name has no address to diagnose",
                    s.id()
                ))),
                _ => Err(bad_input(format!(
                    "-d {text:?} is Service {}, headless (no cluster IP): its DNS name answers with each ready pod; name one: {}",
                    s.id(),
                    endpoint_pods(view, s).join(", ")
                ))),
            }
        }
    }
}

fn pod_address(view: &ClusterView, flag: &str, text: &str, p: &PodFacts) -> Result<Ipv4Addr> {
    if let Some(ip) = p.ip {
        return Ok(ip);
    }
    if p.host_network
        && let Some(n) = view.nodes.get(&p.node)
    {
        return Ok(n.ip);
    }
    Err(bad_input(format!(
        "{flag} {text:?} is pod {}, which has no IPv4 address (phase {})",
        p.id(),
        p.phase
    )))
}

/// `pod/NS/NAME (IP)` of a Service's endpoints, ready ones first.
fn endpoint_pods(view: &ClusterView, s: &ServiceFacts) -> Vec<String> {
    let mut eps: Vec<_> = view
        .endpoints
        .get(&s.id())
        .map(|e| e.iter().collect())
        .unwrap_or_default();
    eps.sort_by_key(|e| !e.ready);
    eps.iter()
        .map(|e| match &e.pod {
            Some(pod) => format!("pod/{pod} ({})", e.ip),
            None => e.ip.to_string(),
        })
        .collect()
}

/// The destination port and protocol: `-p` as a number, or the name of a
/// port of the Service or the pod; left out for a Service or pod with one
/// port.
fn port(
    text: &str,
    target: &Target<'_>,
    port: Option<&str>,
    protocol: Option<Protocol>,
) -> Result<(u16, Protocol)> {
    let default = protocol.unwrap_or(Protocol::Tcp);
    if let Some(p) = port.map(str::trim)
        && let Ok(n) = p.parse::<u16>()
    {
        if n == 0 {
            return Err(bad_input("-p 0 is not a port (1-65535)"));
        }
        return Ok((n, default));
    }
    // (name, port, protocol) of what the destination declares.
    let (what, declared): (String, Vec<(String, u16, Protocol)>) = match target {
        Target::Service(s) => (
            format!("Service {}", s.id()),
            s.ports
                .iter()
                .map(|p| (p.name.clone(), p.port, p.protocol))
                .collect(),
        ),
        Target::Pod(p) => (format!("pod {}", p.id()), p.ports.clone()),
        Target::Node(_) | Target::Address(_) => {
            return Err(bad_input(match port {
                Some(p) => format!(
                    "-p {p:?} is not a port number (1-65535); a port name needs a Service or pod destination, and -d {text:?} is not one"
                ),
                None => "missing -p PORT: the destination port".to_string(),
            }));
        }
    };
    let candidates = || {
        declared
            .iter()
            .map(|(name, port, proto)| {
                if name.is_empty() {
                    format!("{port}/{}", proto.name())
                } else {
                    format!("{name} ({port}/{})", proto.name())
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let of_protocol = |p: &&(String, u16, Protocol)| protocol.is_none_or(|want| p.2 == want);
    match port {
        Some(name) => {
            let found: Vec<&(String, u16, Protocol)> = declared
                .iter()
                .filter(|p| p.0 == name)
                .filter(of_protocol)
                .collect();
            match found.as_slice() {
                [(_, port, proto)] => Ok((*port, *proto)),
                [] if declared.is_empty() => Err(bad_input(format!(
                    "-p {name:?}: {what} declares no ports; give the port number"
                ))),
                [] => Err(bad_input(format!(
                    "-p {name:?}: {what} has no port of that name; its ports: {}",
                    candidates()
                ))),
                _ => Err(bad_input(format!(
                    "-p {name:?}: {what} has that port name for more than one protocol; add --protocol: {}",
                    candidates()
                ))),
            }
        }
        None => {
            let found: Vec<&(String, u16, Protocol)> =
                declared.iter().filter(of_protocol).collect();
            match found.as_slice() {
                [(_, port, proto)] => Ok((*port, *proto)),
                [] if declared.is_empty() => Err(bad_input(format!(
                    "missing -p PORT: {what} declares no ports"
                ))),
                _ => Err(bad_input(format!(
                    "missing -p PORT: {what} has more than one port; name one: {}",
                    candidates()
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use skoop_engine::cluster::Retain;

    use super::*;

    /// Two namespaces with a pod and a Service named alike, a headless
    /// Service, a pod with a hostname and subdomain, a custom DNS domain.
    fn view() -> ClusterView {
        let pod = |ns: &str, name: &str, ip: &str, extra: serde_json::Value| {
            let mut spec = json!({"nodeName": "node-a", "containers": [
                {"ports": [{"name": "http", "containerPort": 8080}]}]});
            if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
                s.extend(e.clone());
            }
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "namespace": ns},
                   "spec": spec,
                   "status": {"podIP": ip, "phase": "Running",
                              "conditions": [{"type": "Ready", "status": "True"}]}})
        };
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"},
             "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.10"}]}},
            pod("shop", "web", "10.1.0.5", json!({})),
            pod("shop", "db-0", "10.1.0.6", json!({"hostname": "db-0", "subdomain": "db"})),
            pod("blog", "web", "10.1.0.7", json!({})),
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
             "spec": {"clusterIP": "10.96.0.20", "ports": [
                {"name": "http", "port": 80, "protocol": "TCP"},
                {"name": "metrics", "port": 9100, "protocol": "TCP"}]}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dns", "namespace": "blog"},
             "spec": {"clusterIP": "10.96.0.53", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "shop"},
             "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}},
            {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
             "metadata": {"name": "db-x", "namespace": "shop",
                          "labels": {"kubernetes.io/service-name": "db"}},
             "endpoints": [{"addresses": ["10.1.0.6"], "conditions": {"ready": true},
                            "targetRef": {"kind": "Pod", "name": "db-0", "namespace": "shop"}}],
             "ports": [{"port": 5432}]},
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "kubelet-config", "namespace": "kube-system"},
             "data": {"kubelet": "apiVersion: kubelet.config.k8s.io/v1beta1\nclusterDomain: corp.local\nclusterDNS:\n- 10.96.0.10\n"}}
        ]});
        ClusterView::parse(&list.to_string(), "test", Retain::host()).expect("a view")
    }

    fn spec(src: &str, dst: &str, port: Option<&str>) -> FlowSpec {
        FlowSpec {
            src: src.into(),
            dst: dst.into(),
            port: port.map(str::to_string),
            protocol: None,
        }
    }

    fn resolved(src: &str, dst: &str, port: Option<&str>) -> Resolved {
        resolve(&view(), &spec(src, dst, port)).unwrap_or_else(|e| panic!("{src} -> {dst}: {e:#}"))
    }

    fn error(src: &str, dst: &str, port: Option<&str>) -> String {
        match resolve(&view(), &spec(src, dst, port)) {
            Ok(r) => panic!("{src} -> {dst} resolved to {:?}", r.flow),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn every_name_form_resolves() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().expect("an IP");
        for (src, dst, port, want_src, want_dst, want_port) in [
            (
                "shop/web",
                "svc/shop/web",
                Some("http"),
                "10.1.0.5",
                "10.96.0.20",
                80,
            ),
            (
                "pod/blog/web",
                "web.shop",
                Some("metrics"),
                "10.1.0.7",
                "10.96.0.20",
                9100,
            ),
            (
                "pods/shop/web",
                "web.shop.svc",
                Some("80"),
                "10.1.0.5",
                "10.96.0.20",
                80,
            ),
            (
                "node/node-a",
                "web.shop.svc.corp.local.",
                Some("80"),
                "192.168.1.10",
                "10.96.0.20",
                80,
            ),
            (
                "node-a",
                "10-1-0-7.blog.pod.corp.local",
                None,
                "192.168.1.10",
                "10.1.0.7",
                8080,
            ),
            (
                "db-0",
                "db-0.db.shop.svc.corp.local",
                Some("http"),
                "10.1.0.6",
                "10.1.0.6",
                8080,
            ),
            (
                "10.1.0.5",
                "db.shop",
                Some("5432"),
                "10.1.0.5",
                "10.1.0.6",
                5432,
            ),
            ("shop/web", "svc/dns", None, "10.1.0.5", "10.96.0.53", 53),
            (
                "shop/web",
                "192.168.1.10",
                Some("10250"),
                "10.1.0.5",
                "192.168.1.10",
                10250,
            ),
        ] {
            let r = resolved(src, dst, port);
            assert_eq!(
                (r.flow.src, r.flow.dst, r.flow.dport),
                (ip(want_src), ip(want_dst), want_port),
                "{src} -> {dst} -p {port:?}"
            );
        }
        let r = resolved("shop/web", "dns.blog", None);
        assert_eq!(r.flow.protocol, Protocol::Udp, "the named port's protocol");
        assert_eq!(r.src.as_deref(), Some("pod/shop/web"));
        assert_eq!(r.dst.as_deref(), Some("svc/blog/dns"));
        let r = resolved("10.1.0.5", "192.168.1.10", Some("22"));
        assert_eq!((r.src, r.dst), (None, None), "addresses stay unnamed");
        assert_eq!(r.flow.protocol, Protocol::Tcp);
    }

    #[test]
    fn the_cluster_domain_comes_from_the_kubelet_or_coredns() {
        assert_eq!(cluster_domain(&view()).as_deref(), Some("corp.local"));
        let coredns = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "coredns", "namespace": "kube-system"},
             "data": {"Corefile": ".:53 {\n    errors\n    kubernetes k8s.example in-addr.arpa ip6.arpa {\n       pods insecure\n    }\n}\n"}}]});
        let v = ClusterView::parse(&coredns.to_string(), "test", Retain::host()).expect("view");
        assert_eq!(cluster_domain(&v).as_deref(), Some("k8s.example"));
        let empty = ClusterView::parse(r#"{"kind": "List", "items": []}"#, "t", Retain::host())
            .expect("view");
        assert_eq!(cluster_domain(&empty), None);
    }

    #[test]
    fn ambiguity_and_no_match_list_the_candidates() {
        let e = error("web", "svc/shop/web", Some("80"));
        assert!(e.contains("names more than one object"), "{e}");
        for c in [
            "pod/blog/web (10.1.0.7)",
            "pod/shop/web (10.1.0.5)",
            "svc/shop/web (10.96.0.20)",
        ] {
            assert!(e.contains(c), "{c} missing: {e}");
        }
        let e = error("shop/wbe", "svc/shop/web", Some("80"));
        assert!(e.contains("no pod shop/wbe"), "{e}");
        assert!(e.contains("did you mean: pod/shop/web (10.1.0.5)"), "{e}");
        let e = error("shop/web", "svc/shop/api", Some("80"));
        assert!(e.contains("no Service shop/api"), "{e}");
        assert!(e.contains("svc/shop/db"), "the namespace's Services: {e}");
        let e = error("shop/web", "node/node-b", Some("80"));
        assert!(
            e.contains("no node node-b; did you mean: node/node-a"),
            "{e}"
        );
        let e = error("shop/web", "web.shop.svc.cluster.local", Some("80"));
        assert!(e.contains("domain is corp.local"), "{e}");
        assert!(e.contains("not cluster.local"), "{e}");
        let e = error("a/b/c/d", "web.shop", Some("80"));
        assert!(e.contains("neither an address nor a name"), "{e}");
    }

    #[test]
    fn ports_by_name_or_left_out() {
        let e = error("shop/web", "svc/shop/web", None);
        assert!(e.contains("more than one port"), "{e}");
        assert!(e.contains("http (80/tcp), metrics (9100/tcp)"), "{e}");
        let e = error("shop/web", "svc/shop/web", Some("grpc"));
        assert!(e.contains("no port of that name"), "{e}");
        let e = error("shop/web", "node-a", Some("http"));
        assert!(
            e.contains("a port name needs a Service or pod destination"),
            "{e}"
        );
        let e = error("shop/web", "node-a", None);
        assert!(e.contains("missing -p"), "{e}");
        let e = error("shop/web", "svc/shop/web", Some("0"));
        assert!(e.contains("-p 0 is not a port"), "{e}");
    }

    #[test]
    fn services_are_destinations_only() {
        let e = error("svc/shop/db", "shop/web", Some("80"));
        assert!(e.contains("a Service is not a source"), "{e}");
        assert!(e.contains("pod/shop/db-0 (10.1.0.6)"), "{e}");
    }
}
