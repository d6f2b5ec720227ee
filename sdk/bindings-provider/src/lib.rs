//! Generated bindings of the `cloud-provider` world, sharing the imported
//! interfaces and types of `skoop-bindings-cni`. Internal to `skoop-sdk`.
#![allow(clippy::all)]

wit_bindgen::generate!({
    path: "wit",
    world: "skoop:extension/cloud-provider",
    pub_export_macro: true,
    export_macro_name: "export_provider_world",
    default_bindings_module: "skoop_sdk::provider",
    with: {
        "skoop:extension/types@0.5.0": skoop_bindings_cni::skoop::extension::types,
        "skoop:extension/cluster@0.5.0": skoop_bindings_cni::skoop::extension::cluster,
        "skoop:extension/netstack@0.5.0": skoop_bindings_cni::skoop::extension::netstack,
        "skoop:extension/log@0.5.0": skoop_bindings_cni::skoop::extension::log,
        "skoop:extension/metadata@0.5.0": generate,
        "skoop:extension/provider@0.5.0": generate,
        "skoop:extension/infra-shim@0.5.0": generate,
    },
});
