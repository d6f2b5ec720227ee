//! The netstack simulation of one network namespace, built from its dump:
//! interfaces, sysctls, policy routing, neighbours/FDB, sockets and netfilter.

pub mod netfilter;
pub mod route;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::OnceLock;

use crate::dump::{FdbEntry, Interface, Neighbour, NetnsDump, NodeDump};
use crate::packet::{Packet, Protocol};
use netfilter::{Hook, IpsetStore, NetnsFacts, Outcome, Ruleset};
pub use route::{RouteHit, RouteKind, RouteQuery};

/// Why a question about a netns has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetstackError {
    /// The fact was not collected.
    #[error("{0}")]
    Unavailable(String),
    /// The collected fact cannot be read.
    #[error("{0}")]
    Invalid(String),
}

/// One network namespace.
#[derive(Debug)]
pub struct Netstack {
    /// "node n" or "pod ns/name".
    pub label: String,
    pub dump: NetnsDump,
    rules: OnceLock<Result<(Ruleset, IpsetStore), NetstackError>>,
}

impl Netstack {
    pub fn new(label: String, dump: NetnsDump) -> Self {
        Netstack {
            label,
            dump,
            rules: OnceLock::new(),
        }
    }

    fn absent(&self, fact: &str) -> Result<(), NetstackError> {
        match self.dump.absent.get(fact) {
            Some(why) => Err(NetstackError::Unavailable(format!(
                "{fact} of {} was not collected ({why})",
                self.label
            ))),
            None => Ok(()),
        }
    }

    pub fn interfaces(&self) -> &[Interface] {
        &self.dump.interfaces
    }

    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.dump.interfaces.iter().find(|i| i.name == name)
    }

    pub fn interface_by_index(&self, index: u32) -> Option<&Interface> {
        self.dump.interfaces.iter().find(|i| i.index == index)
    }

    pub fn sysctl(&self, key: &str) -> Option<&str> {
        self.dump.sysctls.get(key).map(String::as_str)
    }

    /// Route lookup through the policy rules.
    pub fn route(&self, q: &RouteQuery) -> Result<Vec<RouteHit>, NetstackError> {
        self.absent("routes")?;
        Ok(route::lookup(&self.dump, q))
    }

    /// True when `ip` has a `local` route (an address of this netns).
    pub fn is_local(&self, ip: Ipv4Addr) -> bool {
        route::is_local(&self.dump, ip)
    }

    pub fn neighbour(&self, dev: &str, ip: Ipv4Addr) -> Result<Option<&Neighbour>, NetstackError> {
        self.absent("neighbours")?;
        Ok(self
            .dump
            .neighbours
            .iter()
            .find(|n| n.dev == dev && n.ip == ip))
    }

    pub fn fdb(&self, dev: &str) -> Result<Vec<&FdbEntry>, NetstackError> {
        self.absent("fdb")?;
        Ok(self.dump.fdb.iter().filter(|e| e.dev == dev).collect())
    }

    /// A socket listens on `ip` (or any address) at `port`.
    pub fn listening(
        &self,
        protocol: Protocol,
        ip: Ipv4Addr,
        port: u16,
    ) -> Result<bool, NetstackError> {
        self.absent("sockets")?;
        Ok(self.dump.sockets.iter().any(|s| {
            Protocol::parse(&s.protocol) == Some(protocol)
                && s.port == port
                && (s.ip == ip || s.ip.is_unspecified())
        }))
    }

    fn ruleset(&self) -> Result<&(Ruleset, IpsetStore), NetstackError> {
        self.rules
            .get_or_init(|| {
                self.absent("iptables")?;
                let rules = match &self.dump.iptables {
                    Some(text) => Ruleset::parse(text).map_err(|e| {
                        NetstackError::Invalid(format!("iptables-save of {}: {e}", self.label))
                    })?,
                    None => Ruleset::default(),
                };
                let sets = match &self.dump.ipsets {
                    Some(text) => IpsetStore::parse(text).map_err(|e| {
                        NetstackError::Invalid(format!("ipset save of {}: {e}", self.label))
                    })?,
                    None => IpsetStore::default(),
                };
                Ok((rules, sets))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Traverse a netfilter hook.
    pub fn netfilter(
        &self,
        hook: Hook,
        packet: &Packet,
        iif: Option<&str>,
        oif: Option<&str>,
    ) -> Result<Vec<Outcome>, NetstackError> {
        let (rules, sets) = self.ruleset()?;
        Ok(netfilter::traverse(
            rules, sets, self, hook, packet, iif, oif,
        ))
    }
}

impl NetnsFacts for Netstack {
    fn is_local(&self, ip: Ipv4Addr) -> bool {
        Netstack::is_local(self, ip)
    }

    fn primary_address(&self, ifname: &str) -> Option<Ipv4Addr> {
        self.interface(ifname)
            .and_then(|i| i.addresses.first())
            .map(|a| a.addr())
    }
}

/// Every netns of the bundle, by netns id (`node:<name>` / `pod:<ns>/<name>`).
#[derive(Debug, Default)]
pub struct Netstacks {
    by_id: BTreeMap<String, Netstack>,
}

impl Netstacks {
    pub fn from_dumps(dumps: &BTreeMap<String, NodeDump>) -> Netstacks {
        let mut by_id = BTreeMap::new();
        for (name, d) in dumps {
            by_id.insert(
                format!("node:{name}"),
                Netstack::new(format!("node {name}"), d.host.clone()),
            );
            for p in &d.pods {
                let id = format!("{}/{}", p.namespace, p.name);
                by_id.insert(
                    format!("pod:{id}"),
                    Netstack::new(format!("pod {id}"), p.netns.clone()),
                );
            }
        }
        Netstacks { by_id }
    }

    /// A node's host netns.
    pub fn node(&self, name: &str) -> Result<&Netstack, NetstackError> {
        self.by_id.get(&format!("node:{name}")).ok_or_else(|| {
            NetstackError::Unavailable(format!("no dump of node {name} in the bundle"))
        })
    }

    /// A pod's netns (`namespace/name`).
    pub fn pod(&self, id: &str) -> Result<&Netstack, NetstackError> {
        self.by_id.get(&format!("pod:{id}")).ok_or_else(|| {
            NetstackError::Unavailable(format!("no dump of pod {id}'s network namespace"))
        })
    }
}
