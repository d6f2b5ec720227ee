//! One netns's dump: everything gathered from the calling thread's netns.

use std::collections::BTreeMap;
use std::path::Path;

use super::netlink::Rtnl;
use super::{ipvs, links, neigh, routes, sockets, sysctl, tools};
use skoop_netstack::dump::NetnsDump;

/// Dump the network namespace the calling thread is in. Never fails: a fact
/// that cannot be read goes into `absent` with the reason.
pub fn collect() -> NetnsDump {
    let mut d = NetnsDump::default();
    match Rtnl::open() {
        Ok(mut rtnl) => netlink_facts(&mut rtnl, &mut d),
        Err(e) => {
            for fact in ["interfaces", "routes", "rules", "neighbours", "fdb"] {
                d.absent.insert(fact.into(), format!("{e:#}"));
            }
        }
    }
    d.sysctls = sysctl::collect(Path::new("/proc/sys"), &d.interfaces, &mut d.absent);
    let net = Path::new("/proc/thread-self/net");
    match sockets::collect(net) {
        Ok(s) => d.sockets = s,
        Err(e) => {
            d.absent.insert("sockets".into(), e);
        }
    }
    match tools::iptables() {
        Ok(t) => d.iptables = Some(t.into()),
        Err(e) => {
            d.absent.insert("iptables".into(), e);
        }
    }
    match tools::ipset() {
        Ok(t) => d.ipsets = Some(t),
        Err(e) => {
            d.absent.insert("ipset".into(), e);
        }
    }
    match tools::nft() {
        Ok(t) => {
            d.nft = Some(t);
            d.nft_chains = tools::nft_chains().ok();
        }
        Err(e) => {
            d.absent.insert("nft".into(), e);
        }
    }
    match std::fs::read_to_string(net.join("ip_vs")) {
        Ok(t) => d.ipvs = Some(ipvs::parse(&t)),
        Err(e) => {
            d.absent.insert(
                "ipvs".into(),
                format!(
                    "the kernel has no IPVS ({}: {e})",
                    net.join("ip_vs").display()
                ),
            );
        }
    }
    d
}

fn netlink_facts(rtnl: &mut Rtnl, d: &mut NetnsDump) {
    match links::collect(rtnl) {
        Ok(l) => d.interfaces = l,
        Err(e) => {
            d.absent.insert("interfaces".into(), format!("{e:#}"));
        }
    }
    let names: BTreeMap<u32, String> = d
        .interfaces
        .iter()
        .map(|i| (i.index, i.name.clone()))
        .collect();
    let mut record = |fact: &str, e: anyhow::Error| {
        d.absent.insert(fact.into(), format!("{e:#}"));
    };
    let routes = routes::collect_routes(rtnl, &names)
        .map_err(|e| record("routes", e))
        .ok();
    let rules = routes::collect_rules(rtnl)
        .map_err(|e| record("rules", e))
        .ok();
    let neighbours = neigh::collect_neighbours(rtnl, &names)
        .map_err(|e| record("neighbours", e))
        .ok();
    let fdb = neigh::collect_fdb(rtnl, &names)
        .map_err(|e| record("fdb", e))
        .ok();
    d.routes = routes.unwrap_or_default();
    d.rules = rules.unwrap_or_default();
    d.neighbours = neighbours.unwrap_or_default();
    d.fdb = fdb.unwrap_or_default();
}
