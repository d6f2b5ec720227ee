//! Allocates without bound when a pod sends: the host must stop it at its memory limit.

use skoop_sdk::*;

struct MemoryHog;

impl CniPlugin for MemoryHog {
    fn metadata() -> Metadata {
        Metadata {
            name: "memory-hog".into(),
            version: "0.1.0".into(),
            description: "grows memory without bound".into(),
            ..Metadata::default()
        }
    }

    fn setup() -> Result<(Self, Vec<Suspicion>)> {
        Ok((MemoryHog, vec![]))
    }

    fn pod_send(&self, _: &Pod, _: &KernelWalk) -> Result<HopAnswer> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }
}

export_cni_plugin!(MemoryHog);
