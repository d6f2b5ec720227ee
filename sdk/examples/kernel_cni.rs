//! A complete CNI plugin, `kernel-cni`, built as a WebAssembly component:
//! the host's kernel walk does the forwarding, and the plugin adds one
//! check of its own.
//!
//! ```sh
//! cargo build -p skoop-sdk --example kernel_cni --target wasm32-wasip2
//! skoop extension inspect target/wasm32-wasip2/debug/examples/kernel_cni.wasm
//! skoop --extension target/wasm32-wasip2/debug/examples/kernel_cni.wasm \
//!     diagnose --demo --network-plugin kernel-cni -s 10.244.0.5 -d 10.244.0.6 -p 8080
//! ```

use skoop_sdk::prelude::*;

/// Its one config key: `skoop diagnose --kernel-cni-check-forwarding false`.
const CHECK_FORWARDING: StaticConfigKey = StaticConfigKey {
    default: Some("true"),
    ..StaticConfigKey::new(
        "kernel-cni-check-forwarding",
        "require net.ipv4.ip_forward=1 on nodes (true/false)",
    )
};

/// The plugin value, built once per diagnosis by `setup`: whether to
/// require `net.ipv4.ip_forward=1` on every node a pod's packet crosses.
struct KernelCni(bool);

impl CniPlugin for KernelCni {
    const METADATA: Option<StaticMetadata> = Some(StaticMetadata {
        name: "kernel-cni",
        description: "example: pods on veths, nodes forward as their kernel does",
        version: env!("CARGO_PKG_VERSION"),
        config: &[CHECK_FORWARDING],
        ..StaticMetadata::EMPTY
    });

    fn setup() -> Result<(Self, Vec<Suspicion>)> {
        let value = host::cluster::config("kernel-cni-check-forwarding");
        let check_forwarding = match value.as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "--kernel-cni-check-forwarding {other:?} is not true or false"
                )));
            }
        };
        Ok((KernelCni(check_forwarding), vec![]))
    }

    // Every other role: the host's kernel walk, nothing to add.

    fn to_pod(&self, node: &Node, walk: &KernelWalk, _pod: &Pod) -> Result<HopAnswer> {
        let mut f = Suspicions::new();
        // A packet a pod sends to another pod is routed by the node unless
        // it is bridged; the host's walk already refuses to forward when
        // the sysctl is off — this names the CNI's requirement up front.
        if self.0 && walk.upstream.is_some() {
            let ns = Netns::node(&node.name);
            f.sysctl(
                &ns,
                "net.ipv4.ip_forward",
                "1",
                Level::Warning,
                "the node does not route pod traffic",
            )?;
        }
        Ok(f.into())
    }
}

export_cni_plugin!(KernelCni);
