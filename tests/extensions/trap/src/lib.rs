//! flannel, except that it panics at node node-2's hop toward a pod: the
//! host must report the branch it ends, re-create the instance, and follow
//! the other branches (and their replies) on the new one.

use flannel::Flannel;
use skoop_sdk::meta::StaticMetadata;
use skoop_sdk::*;

struct Trap(Flannel);

impl CniPlugin for Trap {
    const METADATA: Option<StaticMetadata> = Some(StaticMetadata {
        name: "trap",
        version: "0.1.0",
        description: "flannel that panics at node-2's hop toward a pod",
        reads: &["v1/ConfigMap"],
        ..StaticMetadata::EMPTY
    });

    fn setup() -> Result<(Self, Vec<Suspicion>)> {
        let (f, findings) = Flannel::setup()?;
        Ok((Trap(f), findings))
    }

    fn pod_send(&self, pod: &Pod, packet: Packet) -> Result<NodeStep> {
        self.0.pod_send(pod, packet)
    }
    fn pod_receive(&self, pod: &Pod, upstream: &Link) -> Result<NodeStep> {
        self.0.pod_receive(pod, upstream)
    }
    fn to_pod(
        &self,
        node: &Node,
        up: Option<&Link>,
        packet: Packet,
        pod: &Pod,
    ) -> Result<NodeStep> {
        if node.name == "node-2" {
            panic!("deliberate panic in to_pod at node-2");
        }
        self.0.to_pod(node, up, packet, pod)
    }
    fn to_host(
        &self,
        node: &Node,
        up: Option<&Link>,
        packet: Packet,
        t: &Node,
    ) -> Result<NodeStep> {
        self.0.to_host(node, up, packet, t)
    }
    fn to_external(&self, node: &Node, up: Option<&Link>, packet: Packet) -> Result<NodeStep> {
        self.0.to_external(node, up, packet)
    }
    fn serve(&self, node: &Node, up: Option<&Link>, packet: Packet) -> Result<NodeStep> {
        self.0.serve(node, up, packet)
    }
}

export_cni_plugin!(Trap);
