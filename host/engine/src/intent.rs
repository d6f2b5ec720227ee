//! What the cluster's objects say, for a plugin that asks the host instead of
//! walking the kernel: a Service packet's backends as the EndpointSlices and
//! kube-proxy's configuration give them, and the policy verdicts of a flow.
//! A datapath the host's walk cannot see (eBPF) compares itself with these.

use std::net::Ipv4Addr;
use std::sync::OnceLock;

use skoop_policy::DirectionVerdict;

use crate::cluster::{ClusterView, Owner};
use crate::facts::Facts;
use crate::policy::PolicyCheck;
use crate::service::{self, ProxyConfig};
use crate::suspicion::Suspicion;
use skoop_netstack::packet::{Packet, Protocol};

/// One backend of a Service packet.
#[derive(Debug)]
pub struct ServiceBackend<'a> {
    /// The packet after DNAT to this backend.
    pub packet: Packet,
    /// Who the backend is: its pod when the EndpointSlice names one, else
    /// whatever owns the endpoint's address.
    pub target: Owner<'a>,
}

/// A Service packet as the EndpointSlices resolve it.
#[derive(Debug, Default)]
pub struct ServiceIntent<'a> {
    /// Every ready backend.
    pub backends: Vec<ServiceBackend<'a>>,
    /// No ready endpoint, an unknown port, ...
    pub suspicions: Vec<Suspicion>,
}

/// Resolve `packet`, addressed to a Service, as kube-proxy's configuration
/// and the EndpointSlices say `node` should.
pub fn service<'a>(facts: &'a Facts, node: &str, packet: &Packet) -> ServiceIntent<'a> {
    let view = &facts.view;
    let proxy = ProxyConfig::from_settings(&facts.settings);
    let r = service::resolve(view, node, packet, &proxy);
    let backends = r
        .backends
        .iter()
        .map(|b| ServiceBackend {
            packet: b.packet,
            target: match b.pod.as_ref().and_then(|id| view.pods.get(id)) {
                Some(p) => Owner::Pod(p),
                None => view.classify(b.endpoint, b.packet.dport, b.packet.protocol),
            },
        })
        .collect();
    let suspicions = r
        .suspicions
        .into_iter()
        .map(|(level, message)| Suspicion {
            level,
            message,
            node: None,
        })
        .collect();
    ServiceIntent {
        backends,
        suspicions,
    }
}

/// The cluster's policy objects could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the cluster's policies cannot be evaluated: {0}")]
pub struct PoliciesUnreadable(String);

/// The policy verdicts a plugin asks for: the objects' word alone, so
/// enforcement plays no part. The policies are read on the first question.
#[derive(Debug, Default)]
pub struct PolicyIntent {
    check: OnceLock<Result<PolicyCheck, PoliciesUnreadable>>,
}

impl PolicyIntent {
    /// Verdicts for a packet from `src` to `dst` as the destination sees
    /// it: egress at `src` when it is a pod, ingress at `dst` when it is one.
    /// `plugin` names the asker in the evaluator's messages.
    pub fn verdicts(
        &self,
        view: &ClusterView,
        plugin: &str,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        dport: u16,
        protocol: Protocol,
    ) -> Result<Vec<DirectionVerdict>, PoliciesUnreadable> {
        let check = self.check.get_or_init(|| {
            PolicyCheck::new(view, plugin, &[], None)
                .map_err(|e| PoliciesUnreadable(format!("{e:#}")))
        });
        match check {
            Ok(c) => Ok(c.evaluate(view, src, dst, dport, protocol)),
            Err(e) => Err(e.clone()),
        }
    }
}
