//! `policy`: the objects' policy verdicts of a flow, for a plugin that
//! cross-checks what it programmed.

use crate::bindings::{policy as wp, types as wt};
use crate::convert::{ip_from, protocol_from};
use crate::state::HostState;

impl HostState {
    fn policy_evaluate(
        &mut self,
        src: wt::IpAddress,
        dst: wt::IpAddress,
        dport: u16,
        protocol: wt::Protocol,
    ) -> Vec<wp::Verdict> {
        let facts = self.facts();
        let (Ok(src), Ok(dst), Ok(protocol)) =
            (ip_from(&src), ip_from(&dst), protocol_from(protocol))
        else {
            return Vec::new();
        };
        // The contract's `evaluate` has no error: a flow it cannot evaluate
        // (an IPv6 one, unreadable policies) gets no verdicts.
        let verdicts = self
            .policy
            .verdicts(&facts.view, &self.name, src, dst, dport, protocol)
            .unwrap_or_default();
        verdicts
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

lend!(wp {
    "policy.evaluate" fn evaluate(src: wt::IpAddress, dst: wt::IpAddress, dport: u16, protocol: wt::Protocol) -> Vec<wp::Verdict> = policy_evaluate;
});
