//! The built-in demo clusters. Each is a bundle directory of this crate
//! (`cluster.json`, `nodes/<node>.json`) with `demo.json`: its name, what it
//! shows, and the flow `skoop diagnose --demo NAME` diagnoses when no flow
//! is given. `tests/fixtures/generate.py` writes them all.

use serde::Deserialize;

/// One demo's files, embedded at build time.
#[derive(Debug)]
pub struct Embedded {
    /// The directory under `host/demos`.
    pub dir: &'static str,
    demo: &'static str,
    /// The demo's `cluster.json`.
    pub cluster: &'static str,
    /// Its node dumps: (file name, text).
    pub nodes: &'static [(&'static str, &'static str)],
}

include!(concat!(env!("OUT_DIR"), "/demos.rs"));

/// A demo's `demo.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct About {
    pub name: String,
    /// What it shows, in one line.
    pub about: String,
    /// The flow diagnosed when none is given.
    pub flow: DefaultFlow,
}

/// A flow as `demo.json` writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultFlow {
    pub src: String,
    pub dst: String,
    pub port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
}

/// A `demo.json` that does not read: a build of this crate with a broken
/// demo, which the crate's tests catch.
#[derive(Debug, thiserror::Error)]
#[error("host/demos/{dir}/demo.json: {source}")]
pub struct BadDemo {
    dir: &'static str,
    source: serde_json::Error,
}

/// A built-in demo: its files and its `demo.json`.
#[derive(Debug)]
pub struct Demo {
    pub files: &'static Embedded,
    pub about: About,
}

/// The name of the demo `--demo` alone runs.
pub const DEFAULT: &str = "flannel";

/// Every built-in demo, the default first.
pub fn all() -> Result<Vec<Demo>, BadDemo> {
    let mut demos = EMBEDDED
        .iter()
        .map(|files| {
            serde_json::from_str(files.demo)
                .map(|about| Demo { files, about })
                .map_err(|source| BadDemo {
                    dir: files.dir,
                    source,
                })
        })
        .collect::<Result<Vec<Demo>, BadDemo>>()?;
    demos.sort_by_key(|d| (d.about.name != DEFAULT, d.about.name.clone()));
    Ok(demos)
}

/// The demo named `name`, if there is one.
pub fn find(name: &str) -> Result<Option<Demo>, BadDemo> {
    Ok(all()?.into_iter().find(|d| d.about.name == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_reads_and_has_its_node_dumps() {
        let demos = all().expect("every demo.json reads");
        let names: Vec<&str> = demos.iter().map(|d| d.about.name.as_str()).collect();
        assert_eq!(names, ["flannel", "calico"]);
        for d in &demos {
            assert_eq!(
                d.about.name, d.files.dir,
                "a demo is named for its directory"
            );
            assert!(!d.files.nodes.is_empty(), "{}: no node dumps", d.files.dir);
            assert!(d.files.cluster.contains("\"kind\""));
        }
    }

    #[test]
    fn unknown_names_find_nothing() {
        assert!(find("weave").expect("demos read").is_none());
        assert_eq!(
            find("calico")
                .expect("demos read")
                .map(|d| d.about.flow.port),
            Some(53)
        );
    }
}
