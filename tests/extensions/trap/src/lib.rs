//! Forwards from the pod, then panics at the node: the host must report the
//! partial path and name the extension and the call.

use skoop_sdk::*;

struct Trap;

impl CniPlugin for Trap {
    fn metadata() -> Metadata {
        Metadata {
            name: "trap".into(),
            version: "0.1.0".into(),
            description: "panics at the first node hop".into(),
            ..Metadata::default()
        }
    }

    fn setup() -> Result<(Self, Vec<Suspicion>)> {
        Ok((Trap, vec![]))
    }

    fn pod_send(&self, pod: &Pod, packet: Packet) -> Result<NodeStep> {
        VethPod::new(None, None).send(pod, packet)
    }
    fn pod_receive(&self, pod: &Pod, upstream: &Link) -> Result<NodeStep> {
        VethPod::new(None, None).receive(pod, upstream)
    }
    fn to_pod(&self, _: &Node, _: Option<&Link>, _: Packet, _: &Pod) -> Result<NodeStep> {
        panic!("deliberate panic in to_pod")
    }
    fn to_host(&self, _: &Node, _: Option<&Link>, _: Packet, _: &Node) -> Result<NodeStep> {
        panic!("deliberate panic in to_host")
    }
    fn to_service(&self, _: &Node, _: Option<&Link>, _: Packet, _: &Service) -> Result<NodeStep> {
        panic!("deliberate panic in to_service")
    }
    fn to_external(&self, _: &Node, _: Option<&Link>, _: Packet) -> Result<NodeStep> {
        panic!("deliberate panic in to_external")
    }
    fn serve(&self, _: &Node, _: Option<&Link>, _: Packet) -> Result<NodeStep> {
        panic!("deliberate panic in serve")
    }
}

export_cni_plugin!(Trap);
