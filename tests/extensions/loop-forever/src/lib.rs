//! Never returns from `setup`: the host must stop it at its deadline.

use skoop_sdk::*;

struct LoopForever;

impl CniPlugin for LoopForever {
    fn metadata() -> Metadata {
        Metadata {
            name: "loop-forever".into(),
            version: "0.1.0".into(),
            description: "spins forever in setup".into(),
            ..Metadata::default()
        }
    }

    fn setup() -> Result<(Self, Vec<Suspicion>)> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    fn pod_send(&self, _: &Pod, _: Packet) -> Result<NodeStep> {
        Ok(NodeStep::drop())
    }
    fn pod_receive(&self, _: &Pod, _: &Link) -> Result<NodeStep> {
        Ok(NodeStep::drop())
    }
    fn to_pod(&self, _: &Node, _: Option<&Link>, _: Packet, _: &Pod) -> Result<NodeStep> {
        Ok(NodeStep::drop())
    }
    fn to_host(&self, _: &Node, _: Option<&Link>, _: Packet, _: &Node) -> Result<NodeStep> {
        Ok(NodeStep::drop())
    }
    fn to_external(&self, _: &Node, _: Option<&Link>, _: Packet) -> Result<NodeStep> {
        Ok(NodeStep::drop())
    }
    fn serve(&self, _: &Node, _: Option<&Link>, _: Packet) -> Result<NodeStep> {
        Ok(NodeStep::drop())
    }
}

export_cni_plugin!(LoopForever);
