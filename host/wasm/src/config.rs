//! Extension config values: a flag, else the environment variables the
//! extension names, else its credentials file, else the default. The host
//! reads the environment and the file on the extension's behalf (the
//! extension sees neither), and keeps the secret values out of every output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::info::{ConfigKey, CredentialsFile, Info};

/// Where values come from besides flags.
pub struct Sources<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub home: Option<PathBuf>,
}

impl Sources<'_> {
    /// The process environment and the user's home directory.
    pub fn process() -> Sources<'static> {
        Sources {
            env: &|k| std::env::var(k).ok().filter(|v| !v.is_empty()),
            home: dirs::home_dir(),
        }
    }
}

/// The resolved values of `info`'s keys, and the values of its secret keys.
pub fn resolve(
    info: &Info,
    flags: &BTreeMap<String, String>,
    src: &Sources,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut values = BTreeMap::new();
    // Keys read from a file may name their section by another key's value:
    // resolve the others first.
    let (plain, filed): (Vec<&ConfigKey>, Vec<&ConfigKey>) =
        info.config.iter().partition(|k| k.file.is_none());
    for key in plain.into_iter().chain(filed) {
        let value = flags
            .get(&key.name)
            .cloned()
            .or_else(|| key.env.iter().find_map(|v| (src.env)(v)))
            .or_else(|| key.file.as_ref().and_then(|f| from_file(f, &values, src)))
            .or_else(|| key.default.clone());
        if let Some(v) = value {
            values.insert(key.name.clone(), v);
        }
    }
    let secrets = info
        .config
        .iter()
        .filter(|k| k.secret)
        .filter_map(|k| values.get(&k.name).cloned())
        .collect();
    (values, secrets)
}

fn expand(path: &str, home: Option<&Path>) -> Option<PathBuf> {
    match path.strip_prefix("~/") {
        Some(rest) => home.map(|h| h.join(rest)),
        None => Some(PathBuf::from(path)),
    }
}

/// The value of `f.key` in the section the values name (else `default`).
/// A missing or unreadable file gives nothing: the flag or variable is then
/// what the extension asks the user for.
fn from_file(
    f: &CredentialsFile,
    values: &BTreeMap<String, String>,
    src: &Sources,
) -> Option<String> {
    let path = f
        .path_env
        .as_deref()
        .and_then(|v| (src.env)(v))
        .map(PathBuf::from)
        .or_else(|| expand(&f.path, src.home.as_deref()))?;
    let ini = ini::Ini::load_from_file(&path).ok()?;
    let section = f
        .section_key
        .as_ref()
        .and_then(|k| values.get(k))
        .map(String::as_str)
        .unwrap_or("default");
    ini.section(Some(section))
        .and_then(|s| s.get(&f.key))
        .map(str::to_string)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::info::Kind;

    fn info(keys: Vec<ConfigKey>) -> Info {
        Info {
            name: "aws".into(),
            kind: Kind::CloudProvider,
            version: "1".into(),
            wit_version: "0.5.0".into(),
            description: String::new(),
            config: keys,
            reads: vec![],
            detect_daemonsets: vec![],
            detect_objects: vec![],
            enforces: vec![],
            http_hosts: vec![],
            min_host_version: None,
        }
    }

    fn key(name: &str, env: &[&str], file: Option<&str>, secret: bool) -> ConfigKey {
        ConfigKey {
            name: name.into(),
            help: String::new(),
            default: None,
            secret,
            env: env.iter().map(|s| s.to_string()).collect(),
            file: file.map(|k| CredentialsFile {
                path: "~/.aws/credentials".into(),
                path_env: Some("AWS_SHARED_CREDENTIALS_FILE".into()),
                section_key: Some("aws-profile".into()),
                key: k.into(),
            }),
        }
    }

    #[test]
    fn flag_then_environment_then_file_in_the_named_section() {
        let dir = std::env::temp_dir().join(format!("skoop-config-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".aws")).unwrap();
        std::fs::write(
            dir.join(".aws/credentials"),
            "[default]\naws_secret_access_key = from-default\n\n[ops]\naws_secret_access_key = from-ops\n",
        )
        .unwrap();
        let i = info(vec![
            key(
                "aws-secret-access-key",
                &["AWS_SECRET_ACCESS_KEY"],
                Some("aws_secret_access_key"),
                true,
            ),
            key("aws-profile", &["AWS_PROFILE"], None, false),
        ]);
        let none = |_: &str| None;
        let src = Sources {
            env: &none,
            home: Some(dir.clone()),
        };
        let (v, secrets) = resolve(&i, &BTreeMap::new(), &src);
        assert_eq!(v["aws-secret-access-key"], "from-default");
        assert_eq!(secrets, vec!["from-default".to_string()]);

        let profile = |k: &str| (k == "AWS_PROFILE").then(|| "ops".to_string());
        let src = Sources {
            env: &profile,
            home: Some(dir.clone()),
        };
        let (v, _) = resolve(&i, &BTreeMap::new(), &src);
        assert_eq!(v["aws-secret-access-key"], "from-ops");

        let envd = |k: &str| (k == "AWS_SECRET_ACCESS_KEY").then(|| "from-env".to_string());
        let src = Sources {
            env: &envd,
            home: Some(dir.clone()),
        };
        let (v, _) = resolve(&i, &BTreeMap::new(), &src);
        assert_eq!(v["aws-secret-access-key"], "from-env");

        let flags =
            BTreeMap::from([("aws-secret-access-key".to_string(), "from-flag".to_string())]);
        let (v, secrets) = resolve(&i, &flags, &src);
        assert_eq!(v["aws-secret-access-key"], "from-flag");
        assert_eq!(secrets, vec!["from-flag".to_string()]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_file_gives_nothing() {
        let i = info(vec![key(
            "aws-secret-access-key",
            &[],
            Some("aws_secret_access_key"),
            true,
        )]);
        let none = |_: &str| None;
        let src = Sources {
            env: &none,
            home: Some(PathBuf::from("/nonexistent")),
        };
        let (v, secrets) = resolve(&i, &BTreeMap::new(), &src);
        assert!(v.is_empty() && secrets.is_empty());
    }
}
