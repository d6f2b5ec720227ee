//! `skoop extension list|inspect|new|test|diff|replay`.

use std::path::PathBuf;

use anyhow::Result;
use skoop_error::{bad_input, exit};
use skoop_wasm::Registry;
use skoop_wasm::sandbox::Limits;

use crate::cli::{self, ExtensionCmd};
use crate::{harness, scaffold};

pub fn run(
    registry: &Registry,
    action: &ExtensionCmd,
    cache: &Option<PathBuf>,
    limits: Limits,
) -> Result<u8> {
    match action {
        ExtensionCmd::List => {
            let rows: Vec<[String; 6]> = registry
                .plugins
                .values()
                .chain(registry.providers.values())
                .map(|e| {
                    [
                        e.info.name.clone(),
                        serde_json::to_value(e.info.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        e.info.version.clone(),
                        e.info.wit_version.clone(),
                        format!("{}KB", e.size / 1024),
                        e.origin.to_string(),
                    ]
                })
                .collect();
            let header = ["NAME", "KIND", "VERSION", "WIT", "SIZE", "ORIGIN"].map(String::from);
            let mut widths = [0usize; 6];
            for row in rows.iter().chain(std::iter::once(&header)) {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.len());
                }
            }
            for row in std::iter::once(&header).chain(rows.iter()) {
                let line: Vec<String> = row
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                println!("{}", line.join("  ").trim_end());
            }
        }
        ExtensionCmd::Inspect { .. } | ExtensionCmd::New { .. } => return standalone(action),
        ExtensionCmd::Test { cases } => return harness::test(registry, cases, limits),
        ExtensionCmd::Replay { recording } => return harness::replay(registry, recording, limits),
        ExtensionCmd::Diff {
            old,
            new,
            bundle,
            flows,
        } => {
            return harness::diff(old, new, bundle, flows.as_deref(), cache.clone(), limits);
        }
    }
    Ok(exit::HEALTHY)
}

/// `extension inspect` and `extension new`: compile and run nothing.
pub fn standalone(action: &ExtensionCmd) -> Result<u8> {
    match action {
        ExtensionCmd::New {
            kind,
            name,
            dir,
            sdk,
        } => return scaffold::new(*kind, name, dir.as_deref(), sdk.as_deref()),
        ExtensionCmd::List
        | ExtensionCmd::Test { .. }
        | ExtensionCmd::Replay { .. }
        | ExtensionCmd::Diff { .. } => {}
        ExtensionCmd::Inspect { file, output } => {
            let label = format!("extension file {}", file.display());
            let bytes = std::fs::read(file)
                .map_err(|e| bad_input(format!("{label}: cannot read it: {e}")))?;
            let found = skoop_wasm::inspect::inspect(&bytes)
                .map_err(|e| bad_input(format!("{label}: {e}")))?;
            match output {
                cli::InspectFormat::Json => println!("{}", serde_json::to_string_pretty(&found)?),
                cli::InspectFormat::Text => print!("{}", inspection_text(&found)),
            }
        }
    }
    Ok(exit::HEALTHY)
}

/// `extension inspect` for people.
fn inspection_text(i: &skoop_wasm::inspect::Inspection) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let kind = match i.kind {
        Some(skoop_wasm::Kind::CniPlugin) => "CNI plugin (world cni-plugin)",
        Some(skoop_wasm::Kind::CloudProvider) => "cloud provider (world cloud-provider)",
        None => "not a skoop extension (exports neither plugin nor provider)",
    };
    let list = |l: &[String]| {
        if l.is_empty() {
            "-".to_string()
        } else {
            l.join(", ")
        }
    };
    match &i.metadata {
        Some(m) => {
            let _ = writeln!(s, "name          {} {}", m.name, m.version);
            let _ = writeln!(s, "kind          {kind}");
            let _ = writeln!(s, "contract      skoop:extension@{}", m.wit_version);
            let _ = writeln!(s, "description   {}", m.description);
            let _ = writeln!(
                s,
                "min host      {}",
                m.min_host_version.as_deref().unwrap_or("-")
            );
            let _ = writeln!(s, "reads         {}", list(&m.reads));
            let _ = writeln!(s, "enforces      {}", list(&m.enforces));
            let _ = writeln!(s, "http hosts    {}", list(&m.http_hosts));
            if m.config.is_empty() {
                let _ = writeln!(s, "config        -");
            }
            for k in &m.config {
                let mut notes = Vec::new();
                if k.secret {
                    notes.push("secret".to_string());
                }
                if let Some(d) = &k.default {
                    notes.push(format!("default {d}"));
                }
                if !k.env.is_empty() {
                    notes.push(format!("env {}", k.env.join(", ")));
                }
                if let Some(f) = &k.file {
                    notes.push(format!("file {} [{}]", f.path, f.key));
                }
                let notes = if notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", notes.join("; "))
                };
                let _ = writeln!(s, "config        --{}{notes}: {}", k.name, k.help);
            }
        }
        None => {
            let _ = writeln!(s, "kind          {kind}");
            let _ = writeln!(
                s,
                "contract      skoop:extension@{}",
                i.wit_version.as_deref().unwrap_or("?")
            );
            let _ = writeln!(
                s,
                "metadata      none in the file: the extension declares it only at run time (give its impl a `METADATA` const); `skoop --extension FILE extension list` describes it by running it"
            );
        }
    }
    let _ = writeln!(s, "imports       {}", list(&i.imports));
    let _ = writeln!(s, "size          {} bytes", i.size);
    let _ = writeln!(s, "sha256        {}", i.sha256);
    s
}
