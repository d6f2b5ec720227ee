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
        let (f, suspicions) = Flannel::setup()?;
        Ok((Trap(f), suspicions))
    }

    fn enforces(&self) -> Option<Vec<String>> {
        self.0.enforces()
    }
    fn pod_send(&self, pod: &Pod, walk: &KernelWalk) -> Result<HopAnswer> {
        self.0.pod_send(pod, walk)
    }
    fn pod_receive(&self, pod: &Pod, walk: &KernelWalk) -> Result<HopAnswer> {
        self.0.pod_receive(pod, walk)
    }
    fn address_owner(&self, ip: std::net::Ipv4Addr) -> Option<String> {
        self.0.address_owner(ip)
    }
    fn to_pod(&self, node: &Node, walk: &KernelWalk, pod: &Pod) -> Result<HopAnswer> {
        if node.name == "node-2" {
            panic!("deliberate panic in to_pod at node-2");
        }
        self.0.to_pod(node, walk, pod)
    }
    fn to_host(&self, node: &Node, walk: &KernelWalk, target: &Node) -> Result<HopAnswer> {
        self.0.to_host(node, walk, target)
    }
    fn to_service(&self, node: &Node, walk: &KernelWalk, service: &Service) -> Result<HopAnswer> {
        self.0.to_service(node, walk, service)
    }
    fn to_external(&self, node: &Node, walk: &KernelWalk) -> Result<HopAnswer> {
        self.0.to_external(node, walk)
    }
    fn serve(&self, node: &Node, walk: &KernelWalk) -> Result<HopAnswer> {
        self.0.serve(node, walk)
    }
}

export_cni_plugin!(Trap);
