//! Its metadata section says who it is; its `describe()` never returns.
//! `skoop extension inspect` must answer at once from the section; loading it
//! must stop at the call deadline.

use skoop_sdk::meta::{StaticConfigKey, StaticMetadata};
use skoop_sdk::*;

struct Hang;

impl CloudProvider for Hang {
    const METADATA: Option<StaticMetadata> = Some(StaticMetadata {
        name: "hang",
        version: "0.0.1",
        description: "describe() spins forever",
        config: &[StaticConfigKey {
            secret: true,
            env: &["HANG_TOKEN"],
            ..StaticConfigKey::new("hang-token", "a credential")
        }],
        reads: &["v1/ConfigMap"],
        http_hosts: &["api.hang.example"],
        min_host_version: Some("0.1.0"),
        ..StaticMetadata::EMPTY
    });

    fn metadata() -> Metadata {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    fn create_network(_: &Settings) -> Result<NetworkPlan> {
        Err(Error::Internal("never reached".into()))
    }
}

export_cloud_provider!(Hang);
