//! `skoop extension new cni|provider NAME`: a crate that builds to a
//! component and passes its own `skoop extension test` as created.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::NewKind;
use skoop_error::{bad_input, exit};

/// A template file: where it goes in the new crate, and its text.
type Template = (&'static str, &'static str);

const CNI: &[Template] = &[
    (
        "Cargo.toml",
        include_str!("../templates/cni/Cargo.toml.tmpl"),
    ),
    ("src/lib.rs", include_str!("../templates/cni/lib.rs.tmpl")),
    (
        "tests/cases.json",
        include_str!("../templates/cni/cases.json.tmpl"),
    ),
    ("README.md", include_str!("../templates/cni/README.md.tmpl")),
    (
        ".gitignore",
        include_str!("../templates/cni/.gitignore.tmpl"),
    ),
];

const PROVIDER: &[Template] = &[
    (
        "Cargo.toml",
        include_str!("../templates/provider/Cargo.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../templates/provider/lib.rs.tmpl"),
    ),
    (
        "tests/cases.json",
        include_str!("../templates/provider/cases.json.tmpl"),
    ),
    (
        "README.md",
        include_str!("../templates/provider/README.md.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../templates/provider/.gitignore.tmpl"),
    ),
];

/// Names the built-ins use: a new extension with one of them would
/// silently replace a built-in when loaded.
const BUILTIN: &[&str] = &["flannel", "calico", "generic", "aws", "aliyun"];

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && name.len() <= 48
}

/// The right-hand side of the crate's `skoop-sdk` dependency: pinned to
/// this host's contract release, from a checkout when one is given.
fn sdk_dependency(sdk: Option<&Path>) -> Result<String> {
    let version = skoop_wasm::HOST_VERSION;
    match sdk {
        None => Ok(format!("\"{version}\"")),
        Some(p) => {
            let abs = std::fs::canonicalize(p)
                .map_err(|e| bad_input(format!("--sdk {}: {e}", p.display())))?;
            if !abs.join("Cargo.toml").is_file() {
                return Err(bad_input(format!(
                    "--sdk {}: no Cargo.toml there (pass the sdk/ directory of a skoop checkout)",
                    p.display()
                )));
            }
            let path = abs
                .to_string_lossy()
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            Ok(format!("{{ version = \"{version}\", path = \"{path}\" }}"))
        }
    }
}

fn render(text: &str, name: &str, sdk: &str) -> String {
    text.replace("{{name}}", name)
        .replace("{{crate}}", name)
        .replace("{{sdk_dependency}}", sdk)
        .replace("{{version}}", skoop_wasm::HOST_VERSION)
}

/// Write the new crate.
pub fn new(kind: NewKind, name: &str, dir: Option<&Path>, sdk: Option<&Path>) -> Result<u8> {
    if !valid_name(name) {
        return Err(bad_input(format!(
            "{name:?} is not a valid extension name: use lowercase letters, digits and dashes, starting with a letter"
        )));
    }
    if BUILTIN.contains(&name) {
        return Err(bad_input(format!(
            "{name} is the name of a built-in extension; choose another (loading it would replace the built-in)"
        )));
    }
    let dir: PathBuf = dir.map(Path::to_path_buf).unwrap_or_else(|| name.into());
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(bad_input(format!(
            "{} exists and is not empty; choose another --dir",
            dir.display()
        )));
    }
    let sdk = sdk_dependency(sdk)?;
    let files = match kind {
        NewKind::Cni => CNI,
        NewKind::Provider => PROVIDER,
    };
    for (path, text) in files {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&file, render(text, name, &sdk))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    let what = match kind {
        NewKind::Cni => "CNI plugin",
        NewKind::Provider => "cloud provider",
    };
    println!("Created {what} {name} in {}. Next:", dir.display());
    println!("  cd {}", dir.display());
    println!("  cargo build --target wasm32-wasip2 --release");
    println!(
        "  skoop --extension target/wasm32-wasip2/release/{}.wasm extension test tests",
        name.replace('-', "_")
    );
    Ok(exit::HEALTHY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(valid_name("acme-cni2"));
        for bad in ["", "Acme", "1abc", "a_b", "a-", "a b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn every_placeholder_is_filled() {
        for (path, text) in CNI.iter().chain(PROVIDER) {
            let out = render(text, "acme", "\"0.1.0\"");
            assert!(!out.contains("{{"), "{path} keeps a placeholder");
        }
    }
}
