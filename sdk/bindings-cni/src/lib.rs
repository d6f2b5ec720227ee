//! Generated bindings of the `cni-plugin` world. Internal to `skoop-sdk`; use that crate.
#![allow(clippy::all)]

wit_bindgen::generate!({
    path: "wit",
    world: "skoop:extension/cni-plugin",
    pub_export_macro: true,
    export_macro_name: "export_cni_world",
    default_bindings_module: "skoop_sdk::cni",
});
