//! docs/architecture.md's glossary names the code's types, and the names
//! the project retired stay retired: one word per concept.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .expect("host/diagnosis is in the repository")
}

/// Every `.rs` and `.wit` file of the host, the SDK, the extensions and the contract.
fn sources() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = ["host", "sdk", "plugins", "providers", "wit"]
        .iter()
        .map(|d| root().join(d))
        .collect();
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "target") {
                    dirs.push(p);
                }
            } else if p
                .extension()
                .is_some_and(|x| x == "rs" || x == "wit" || x == "tmpl")
                && let Ok(text) = std::fs::read_to_string(&p)
            {
                out.push((p, text));
            }
        }
    }
    assert!(out.len() > 100, "the source tree was not found");
    out
}

/// The code names of the glossary's third column: `Name` in backticks,
/// capitalised, without a path or a WIT prefix.
fn glossary_names() -> Vec<String> {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md"))
        .expect("docs/architecture.md exists");
    let glossary = doc
        .split("## Glossary")
        .nth(1)
        .and_then(|g| g.split("\n## ").next())
        .expect("docs/architecture.md has a Glossary section");
    let mut names = Vec::new();
    for row in glossary.lines().filter(|l| l.starts_with("| ")) {
        let Some(code) = row.split('|').nth(3) else {
            continue;
        };
        for (i, part) in code.split('`').enumerate() {
            let name = part.split("::").next().unwrap_or(part);
            if i % 2 == 1 && name.chars().next().is_some_and(char::is_uppercase) {
                names.push(name.to_string());
            }
        }
    }
    assert!(names.len() >= 20, "the glossary lost its rows: {names:?}");
    names
}

#[test]
fn every_name_in_the_glossary_is_a_type_of_the_code() {
    let sources = sources();
    let defined = |name: &str| {
        ["struct", "enum", "type", "trait"].iter().any(|k| {
            let head = format!("{k} {name}");
            sources.iter().any(|(_, t)| {
                t.match_indices(&head).any(|(i, _)| {
                    t[i + head.len()..]
                        .chars()
                        .next()
                        .is_some_and(|c| !c.is_alphanumeric() && c != '_')
                })
            })
        })
    };
    let missing: Vec<String> = glossary_names()
        .into_iter()
        .filter(|n| !defined(n))
        .collect();
    assert!(
        missing.is_empty(),
        "the glossary names types the code does not define: {missing:?}"
    );
}

#[test]
fn retired_names_are_gone() {
    // Each was a second name for a concept the glossary names once.
    const RETIRED: &[&str] = &[
        "HopId",
        "Classified",
        "Finding",
        "NetHop",
        "service-processor",
        "ServiceProcessor",
        "ProtocolArg",
    ];
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    // This file lists them.
    for (path, text) in sources().into_iter().filter(|(p, _)| !p.ends_with(file!())) {
        for name in RETIRED {
            for (i, _) in text.match_indices(name) {
                let before = text[..i].chars().next_back();
                let after = text[i + name.len()..].chars().next();
                if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
                    found.push(format!("{} uses {name}", path.display()));
                }
            }
        }
    }
    // The collector's CRI module says "Finding pod sandboxes" (a verb).
    found.retain(|f| !f.contains("collect/src/cri/mod.rs uses Finding"));
    assert!(found.is_empty(), "retired names: {found:#?}");
}
