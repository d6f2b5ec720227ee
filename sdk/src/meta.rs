//! Metadata known at compile time. The export macros write it into the
//! component's `skoop:metadata` custom section (JSON), so that
//! `skoop extension inspect` shows an extension without running any of its
//! code; the host also checks `describe()` against it at load.
//!
//! ```
//! use skoop_sdk::meta::{StaticConfigKey, StaticMetadata};
//!
//! const META: StaticMetadata = StaticMetadata {
//!     name: "tiny-cni",
//!     version: "0.1.0",
//!     description: "pods on veths",
//!     config: &[StaticConfigKey::new("tiny-cni-mtu", "pod MTU")],
//!     ..StaticMetadata::EMPTY
//! };
//! const N: usize = skoop_sdk::meta::section_len(Some(META));
//! let bytes: [u8; N] = skoop_sdk::meta::section(Some(META));
//! let text = std::str::from_utf8(&bytes).unwrap();
//! assert!(text.starts_with(r#"{"name":"tiny-cni","version":"0.1.0""#));
//! assert_eq!(META.to_metadata().config[0].name, "tiny-cni-mtu");
//! ```

use crate::{ConfigKey, CredentialsFile, Metadata};

/// The custom section's name.
pub const SECTION: &str = "skoop:metadata";

/// A [`CredentialsFile`] known at compile time.
#[derive(Debug, Clone, Copy)]
pub struct StaticCredentialsFile {
    pub path: &'static str,
    pub path_env: Option<&'static str>,
    pub section_key: Option<&'static str>,
    pub key: &'static str,
}

/// A [`ConfigKey`] known at compile time.
#[derive(Debug, Clone, Copy)]
pub struct StaticConfigKey {
    pub name: &'static str,
    pub help: &'static str,
    pub default: Option<&'static str>,
    pub secret: bool,
    pub env: &'static [&'static str],
    pub file: Option<StaticCredentialsFile>,
}

impl StaticConfigKey {
    /// A key without default, not secret.
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        StaticConfigKey {
            name,
            help,
            default: None,
            secret: false,
            env: &[],
            file: None,
        }
    }
}

/// [`Metadata`] known at compile time (the WIT version is the SDK's).
#[derive(Debug, Clone, Copy)]
pub struct StaticMetadata {
    pub name: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    pub config: &'static [StaticConfigKey],
    pub reads: &'static [&'static str],
    pub detect_daemonsets: &'static [&'static str],
    pub detect_objects: &'static [&'static str],
    pub enforces: &'static [&'static str],
    pub http_hosts: &'static [&'static str],
    pub min_host_version: Option<&'static str>,
}

impl StaticMetadata {
    /// Everything empty, for `..StaticMetadata::EMPTY`.
    pub const EMPTY: StaticMetadata = StaticMetadata {
        name: "",
        version: "",
        description: "",
        config: &[],
        reads: &[],
        detect_daemonsets: &[],
        detect_objects: &[],
        enforces: &[],
        http_hosts: &[],
        min_host_version: None,
    };

    /// The run-time [`Metadata`].
    pub fn to_metadata(&self) -> Metadata {
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        Metadata {
            name: self.name.into(),
            version: self.version.into(),
            description: self.description.into(),
            config: self
                .config
                .iter()
                .map(|k| ConfigKey {
                    name: k.name.into(),
                    help: k.help.into(),
                    default: k.default.map(str::to_string),
                    secret: k.secret,
                    env: list(k.env),
                    file: k.file.map(|f| CredentialsFile {
                        path: f.path.into(),
                        path_env: f.path_env.map(str::to_string),
                        section_key: f.section_key.map(str::to_string),
                        key: f.key.into(),
                    }),
                })
                .collect(),
            reads: list(self.reads),
            detect_daemonsets: list(self.detect_daemonsets),
            detect_objects: list(self.detect_objects),
            enforces: list(self.enforces),
            http_hosts: list(self.http_hosts),
            min_host_version: self.min_host_version.map(str::to_string),
        }
    }
}

/// A JSON writer that runs at compile time: it counts when `buf` is None.
struct W<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> W<N> {
    const fn byte(&mut self, b: u8) {
        if self.len < N {
            self.buf[self.len] = b;
        }
        self.len += 1;
    }

    const fn raw(&mut self, s: &str) {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            self.byte(b[i]);
            i += 1;
        }
    }

    const fn string(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.byte(b'"');
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c == b'"' || c == b'\\' {
                self.byte(b'\\');
                self.byte(c);
            } else if c < 0x20 {
                self.raw("\\u00");
                self.byte(HEX[(c >> 4) as usize]);
                self.byte(HEX[(c & 15) as usize]);
            } else {
                self.byte(c);
            }
            i += 1;
        }
        self.byte(b'"');
    }

    const fn opt(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.raw("null"),
        }
    }

    const fn key(&mut self, k: &str, first: bool) {
        if !first {
            self.byte(b',');
        }
        self.string(k);
        self.byte(b':');
    }

    const fn strings(&mut self, l: &[&str]) {
        self.byte(b'[');
        let mut i = 0;
        while i < l.len() {
            if i > 0 {
                self.byte(b',');
            }
            self.string(l[i]);
            i += 1;
        }
        self.byte(b']');
    }

    const fn metadata(&mut self, m: &StaticMetadata) {
        self.byte(b'{');
        self.key("name", true);
        self.string(m.name);
        self.key("version", false);
        self.string(m.version);
        self.key("wit_version", false);
        self.string(crate::WIT_VERSION);
        self.key("description", false);
        self.string(m.description);
        self.key("config", false);
        self.byte(b'[');
        let mut i = 0;
        while i < m.config.len() {
            let k = &m.config[i];
            if i > 0 {
                self.byte(b',');
            }
            self.byte(b'{');
            self.key("name", true);
            self.string(k.name);
            self.key("help", false);
            self.string(k.help);
            self.key("default", false);
            self.opt(k.default);
            self.key("secret", false);
            self.raw(if k.secret { "true" } else { "false" });
            self.key("env", false);
            self.strings(k.env);
            self.key("file", false);
            match k.file {
                Some(f) => {
                    self.byte(b'{');
                    self.key("path", true);
                    self.string(f.path);
                    self.key("path_env", false);
                    self.opt(f.path_env);
                    self.key("section_key", false);
                    self.opt(f.section_key);
                    self.key("key", false);
                    self.string(f.key);
                    self.byte(b'}');
                }
                None => self.raw("null"),
            }
            self.byte(b'}');
            i += 1;
        }
        self.byte(b']');
        self.key("reads", false);
        self.strings(m.reads);
        self.key("detect_daemonsets", false);
        self.strings(m.detect_daemonsets);
        self.key("detect_objects", false);
        self.strings(m.detect_objects);
        self.key("enforces", false);
        self.strings(m.enforces);
        self.key("http_hosts", false);
        self.strings(m.http_hosts);
        self.key("min_host_version", false);
        self.opt(m.min_host_version);
        self.byte(b'}');
    }
}

/// The length of the section for `m` (0 without static metadata).
pub const fn section_len(m: Option<StaticMetadata>) -> usize {
    match m {
        Some(m) => {
            let mut w = W::<0> { buf: [], len: 0 };
            w.metadata(&m);
            w.len
        }
        None => 0,
    }
}

/// The section's bytes: `m` as JSON; `N` is [`section_len`].
pub const fn section<const N: usize>(m: Option<StaticMetadata>) -> [u8; N] {
    let mut w = W::<N> {
        buf: [0; N],
        len: 0,
    };
    if let Some(m) = m {
        w.metadata(&m);
    }
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: StaticMetadata = StaticMetadata {
        name: "x",
        version: "1.0.0",
        description: "quote \" backslash \\ newline \n",
        config: &[StaticConfigKey {
            secret: true,
            env: &["X_TOKEN"],
            file: Some(StaticCredentialsFile {
                path: "~/.x",
                path_env: None,
                section_key: Some("x-profile"),
                key: "token",
            }),
            ..StaticConfigKey::new("x-token", "a token")
        }],
        http_hosts: &["*.x.example"],
        ..StaticMetadata::EMPTY
    };

    #[test]
    fn the_section_is_the_metadata_as_json() {
        const N: usize = section_len(Some(META));
        let bytes: [u8; N] = section(Some(META));
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["description"], "quote \" backslash \\ newline \n");
        assert_eq!(v["wit_version"], crate::WIT_VERSION);
        assert_eq!(v["config"][0]["secret"], true);
        assert_eq!(v["config"][0]["env"][0], "X_TOKEN");
        assert_eq!(v["config"][0]["file"]["section_key"], "x-profile");
        assert_eq!(v["http_hosts"][0], "*.x.example");
        assert_eq!(v["min_host_version"], serde_json::Value::Null);
        assert_eq!(section_len(None), 0);
    }
}
