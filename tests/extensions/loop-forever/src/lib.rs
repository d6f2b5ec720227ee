//! Never returns from `setup`: the host must stop it at its deadline. With
//! `--loop-forever-mode imports` it spins on host imports instead of pure
//! guest code, where the engine's epoch check alone would see little.

use skoop_sdk::meta::{StaticConfigKey, StaticMetadata};
use skoop_sdk::*;

struct LoopForever;

impl CniPlugin for LoopForever {
    const METADATA: Option<StaticMetadata> = Some(StaticMetadata {
        name: "loop-forever",
        version: "0.1.0",
        description: "spins forever in setup",
        config: &[StaticConfigKey::new(
            "loop-forever-mode",
            "pure: spin in guest code; imports: spin calling the host",
        )],
        ..StaticMetadata::EMPTY
    });

    fn setup() -> Result<(Self, Vec<Suspicion>)> {
        let on_imports = host::cluster::config("loop-forever-mode").as_deref() == Some("imports");
        let mut n: u64 = 0;
        loop {
            if on_imports {
                n = n.wrapping_add(host::cluster::nodes().len() as u64);
            } else {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
    }
}

export_cni_plugin!(LoopForever);
