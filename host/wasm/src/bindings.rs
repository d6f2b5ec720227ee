//! Host-side bindings of the WIT package: one module per world, sharing the
//! imported interfaces so one host implementation serves both.
//!
//! Every generated type is serde-(de)serializable, for `--record-host-calls`
//! and `skoop extension replay`; imports are trappable, so a host call past
//! the call's deadline, or one a replayed recording does not hold, ends the
//! call instead of answering.

/// The WIT package name.
pub const WIT_PACKAGE: &str = "skoop:extension";
/// The WIT package version this host implements.
pub const WIT_VERSION: &str = "0.5.0";

/// The `cni-plugin` world.
pub mod cni {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "skoop:extension/cni-plugin",
        imports: { default: trappable },
        additional_derives: [serde::Serialize, serde::Deserialize],
    });
}

/// The `cloud-provider` world.
pub mod provider {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "skoop:extension/cloud-provider",
        imports: { default: trappable },
        additional_derives: [serde::Serialize, serde::Deserialize],
        with: {
            "skoop:extension/types": super::cni::skoop::extension::types,
            "skoop:extension/cluster": super::cni::skoop::extension::cluster,
            "skoop:extension/netstack": super::cni::skoop::extension::netstack,
            "skoop:extension/log": super::cni::skoop::extension::log,
        },
    });
}

pub use cni::skoop::extension::{cluster, log, netstack, policy, service, types, walk};
