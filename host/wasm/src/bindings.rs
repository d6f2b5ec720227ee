//! Host-side bindings of the WIT package: one module per world, sharing the
//! imported interfaces so one host implementation serves both.

/// The `cni-plugin` world.
pub mod cni {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "skoop:extension/cni-plugin",
    });
}

/// The `cloud-provider` world.
pub mod provider {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "skoop:extension/cloud-provider",
        with: {
            "skoop:extension/types": super::cni::skoop::extension::types,
            "skoop:extension/cluster": super::cni::skoop::extension::cluster,
            "skoop:extension/netstack": super::cni::skoop::extension::netstack,
            "skoop:extension/log": super::cni::skoop::extension::log,
        },
    });
}

pub use cni::skoop::extension::{cluster, infra, log, netstack, policy, service, types};
