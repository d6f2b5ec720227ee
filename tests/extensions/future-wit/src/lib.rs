//! Built against `skoop:extension@1.0.0`: the host must refuse it by name.

wit_bindgen::generate!({ path: "wit", world: "next-major" });

struct Future;

impl exports::skoop::extension::metadata::Guest for Future {
    fn describe() -> String {
        "future".into()
    }
}

export!(Future);
