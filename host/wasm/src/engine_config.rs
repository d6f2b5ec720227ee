//! The wasmtime configuration of skoop's engine. Shared by the runtime and by
//! the build script, which precompiles the built-in extensions for it: both
//! must configure the engine identically for the precompiled code to load.

/// The engine configuration: components, and epoch interruption for deadlines.
pub fn config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    config
}

/// A stable digest of the engine's compatibility hash (FNV-1a; the std
/// hasher may differ between the build script and the binary).
pub fn compatibility(engine: &wasmtime::Engine) -> u64 {
    use std::hash::{Hash, Hasher};
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}
