//! `service`: a Service packet as the EndpointSlices resolve it, for a
//! datapath the host's walk cannot see.

use super::bad;
use crate::bindings::{service as ws, types as wt};
use crate::convert::{owner_to, packet_from, packet_to, suspicions_to};
use crate::state::HostState;

impl HostState {
    fn service_resolve(
        &mut self,
        node: String,
        packet: wt::Packet,
    ) -> Result<ws::Resolution, wt::Error> {
        let facts = self.facts();
        let packet = packet_from(&packet).map_err(bad)?;
        let intent = skoop_engine::intent::service(&facts, &node, &packet);
        let node_ip = |n: &str| facts.view.nodes.get(n).map(|n| n.ip);
        Ok(ws::Resolution {
            backends: intent
                .backends
                .iter()
                .map(|b| ws::Backend {
                    packet: packet_to(&b.packet),
                    target: owner_to(&b.target, node_ip),
                })
                .collect(),
            suspicions: suspicions_to(&intent.suspicions),
        })
    }
}

lend!(ws {
    "service.resolve" fn resolve(node: String, packet: wt::Packet) -> Result<ws::Resolution, wt::Error> = service_resolve;
});
