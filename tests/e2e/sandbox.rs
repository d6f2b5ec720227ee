//! Extensions that misbehave are stopped within their limits and named; the
//! host never hangs or crashes. A third-party plugin overrides a built-in one.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{skoop, skoop_cached, skoop_env, test_extension};

fn diagnose_with(ext: &str, extra: &[&str]) -> (crate::common::Run, Duration) {
    let file = test_extension(ext);
    let path = file.to_string_lossy().into_owned();
    let mut args = vec!["--extension", path.as_str()];
    args.extend(extra);
    args.extend(["diagnose", "--demo", "--network-plugin", ext]);
    let start = Instant::now();
    let run = skoop(&args);
    (run, start.elapsed())
}

#[test]
fn endless_loop_is_stopped_at_the_deadline() {
    let (run, took) = diagnose_with("loop-forever", &["--extension-timeout", "1"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("extension loop-forever failed in plugin.setup"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no answer within 1.0s"),
        "{}",
        run.stderr
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

#[test]
fn memory_hog_is_stopped_at_the_limit() {
    let (run, _) = diagnose_with("memory-hog", &["--extension-memory", "32"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("extension memory-hog failed in plugin.pod-send"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("memory limit of 32 MiB"),
        "{}",
        run.stderr
    );
}

#[test]
fn trap_is_reported_with_the_partial_path() {
    let (run, _) = diagnose_with("trap", &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("extension trap failed in simple-plugin-node.to-pod at node node-2"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("deliberate panic in to_pod at node-2"),
        "{}",
        run.stderr
    );
    // The hops that worked are still reported, and so is the other branch's fault.
    assert!(
        run.stdout.contains("pod default/client-1"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("FDB entry"), "{}", run.stdout);
    assert!(run.stdout.contains("Verdict: INCOMPLETE"), "{}", run.stdout);
}

#[test]
fn a_trapped_extension_is_re_created_and_its_later_calls_work() {
    // Service web has backends web-1 (node-1) and web-2 (node-2); the plugin
    // panics at node-2. The web-1 branch and its reply are walked after the
    // trap, on a re-created instance.
    let file = test_extension("trap");
    let run = skoop(&[
        "-v",
        "--extension",
        &file.to_string_lossy(),
        "diagnose",
        "--snapshot",
        "tests/fixtures/bundles/vxlan",
        "--network-plugin",
        "trap",
        "-s",
        "10.244.0.5",
        "-d",
        "10.96.100.10",
        "-p",
        "80",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("extension trap failed in simple-plugin-node.to-pod at node node-2"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("re-created in a fresh store"),
        "{}",
        run.stderr
    );
    let report = run.json();
    let ends: Vec<(String, String, String)> = report["path"]["branches"]
        .as_array()
        .expect("branches")
        .iter()
        .map(|b| {
            (
                b["direction"].as_str().unwrap_or_default().to_string(),
                b["end"]["kind"].as_str().unwrap_or_default().to_string(),
                b["end"]["at"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let has =
        |d: &str, k: &str, at: &str| ends.iter().any(|e| e == &(d.into(), k.into(), at.into()));
    assert!(has("request", "unfinished", "node-2"), "{ends:?}");
    assert!(has("request", "delivered", "default/web-1"), "{ends:?}");
    assert!(has("reply", "delivered", "default/client-1"), "{ends:?}");
}

#[test]
fn a_loop_on_host_imports_is_stopped_at_the_deadline() {
    let file = test_extension("loop-forever");
    let path = file.to_string_lossy();
    let args = [
        "--extension",
        &path,
        "--extension-timeout",
        "1",
        "diagnose",
        "--demo",
        "--network-plugin",
        "loop-forever",
        "--loop-forever-mode",
        "imports",
    ];
    // Once to compile the component into the cache: on a loaded machine
    // compiling takes seconds the deadline has nothing to do with.
    let _ = skoop(&args);
    let start = Instant::now();
    let run = skoop(&args);
    let took = start.elapsed();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("extension loop-forever failed in plugin.setup"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no answer within 1.0s"),
        "{}",
        run.stderr
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

#[test]
fn third_party_plugin_overrides_the_builtin_and_sees_nothing_it_is_not_lent() {
    let file = test_extension("third-party");
    let path = file.to_string_lossy().into_owned();
    let run = skoop(&[
        "--extension",
        &path,
        "diagnose",
        "--demo",
        "-s",
        "10.244.0.5",
        "-d",
        "10.244.1.7",
        "-p",
        "8080",
        "--flannel-greeting",
        "hi",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("extension flannel 9.9.9-third-party from"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("overrides the built-in one"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("third-party flannel handled node-1"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("sandbox probe: 0 environment variables, 0 arguments, /etc/hostname denied"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("greeting hi"), "{}", run.stdout);
    // Its escape sequences are shown, never sent to the terminal.
    assert!(
        run.stdout
            .contains("terminal probe: \\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\u{d}\\u{a}CRITICAL fake"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains('\u{1b}') && !run.stderr.contains('\u{1b}'),
        "a raw escape reached the terminal"
    );
}

/// The cache entries (`*.cwasm`) in `dir`.
fn cache_entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .expect("cache dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect()
}

fn mode(dir: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// Compiled code is loaded from the cache only when its digest checks out;
/// a tampered entry is rejected, said so, and compiled again.
#[test]
fn a_tampered_cache_entry_is_rejected_and_recompiled() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let cache = tmp.path().join("cache");
    let ext = test_extension("third-party");
    let ext = ext.to_str().expect("path");
    let list = ["--extension", ext, "extension", "list"];
    let first = skoop_cached(&cache, &list);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(mode(&cache), 0o700, "the cache directory is not private");
    let entries = cache_entries(&cache);
    assert_eq!(entries.len(), 1, "{entries:?}");
    // Flip one byte of the native code, past the header.
    let mut bytes = std::fs::read(&entries[0]).expect("entry");
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&entries[0], &bytes).expect("tamper");
    let second = skoop_cached(&cache, &list);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("rejected (its digest does not match its contents)")
            && second.stderr.contains("compiled again"),
        "{}",
        second.stderr
    );
    // Rewritten whole: the next run loads it without a word.
    let third = skoop_cached(&cache, &list);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(!third.stderr.contains("cache"), "{}", third.stderr);
}

/// A cache directory others could write is closed and emptied before use;
/// one that belongs to someone else is not used at all.
#[test]
fn a_cache_others_can_write_is_closed_or_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("temp dir");
    let cache = tmp.path().join("cache");
    let ext = test_extension("third-party");
    let ext = ext.to_str().expect("path");
    let list = ["--extension", ext, "extension", "list"];
    assert_eq!(skoop_cached(&cache, &list).code, 0);
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let open = skoop_cached(&cache, &list);
    assert_eq!(open.code, 0, "{}", open.stderr);
    assert!(
        open.stderr
            .contains("was open to others (mode 777): closed to mode 700 and emptied"),
        "{}",
        open.stderr
    );
    assert_eq!(mode(&cache), 0o700);
    // The run compiled afresh and cached its own entry.
    assert_eq!(cache_entries(&cache).len(), 1);
    // Owned by another user (root can hand it over): never loaded from.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&cache, Some(65534), Some(65534)).expect("chown");
        let foreign = skoop_cached(&cache, &list);
        assert_eq!(foreign.code, 0, "{}", foreign.stderr);
        assert!(
            foreign
                .stderr
                .contains("is not used: it belongs to uid 65534, not to 0"),
            "{}",
            foreign.stderr
        );
    }
}

/// `--extension FILE@sha256:HEX` loads the file only when its digest is the
/// pinned one (the digest here comes from coreutils' sha256sum).
#[test]
fn a_pinned_extension_loads_only_with_its_digest() {
    let file = test_extension("third-party");
    let path = file.to_string_lossy().into_owned();
    let out = std::process::Command::new("sha256sum")
        .arg(&file)
        .output()
        .expect("sha256sum");
    let sum = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string();
    let good = format!("{path}@sha256:{}", sum.to_uppercase());
    let run = skoop(&["--extension", &good, "extension", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("9.9.9-third-party"), "{}", run.stdout);
    let mut wrong = sum.into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = format!("{path}@sha256:{}", String::from_utf8(wrong).expect("hex"));
    let run = skoop(&["--extension", &wrong, "extension", "list"]);
    crate::common::assert_bad_input(&run, &path);
    assert!(
        run.stderr.contains("not the pinned") && run.stderr.contains("refusing to load it"),
        "{}",
        run.stderr
    );
}

/// A provider may reach only the hosts it declares, never a metadata
/// address through them, and its secret config never reaches any output:
/// not the report, not the log, not the path's underlay hops.
#[test]
fn a_provider_cannot_reach_undeclared_hosts_or_metadata_or_leak_its_secret() {
    let file = test_extension("hostile-provider");
    let path = file.to_string_lossy().into_owned();
    let secret = "s3cr3t-T0ken-4711";
    for format in ["json", "text"] {
        let run = skoop_env(
            &[
                "-v",
                "--extension",
                &path,
                "diagnose",
                "--snapshot",
                "tests/fixtures/bundles/vxlan",
                "--cloud-provider",
                "hostile",
                "-s",
                "10.244.0.5",
                "-d",
                "10.244.1.7",
                "-p",
                "8080",
                "--format",
                format,
            ],
            &[("HOSTILE_TOKEN", secret)],
        );
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "the secret leaked:\n{}{}",
            run.stdout,
            run.stderr
        );
        assert!(
            run.stdout.contains("exfiltrating token=[secret]"),
            "{}",
            run.stdout
        );
        assert!(
            run.stderr.contains("leaking [secret] to the log"),
            "{}",
            run.stderr
        );
        assert!(
            run.stdout
                .contains("undeclared.test: it is not one of the provider's declared HTTP hosts"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("169.254.169.254: it resolves to a forbidden address"),
            "{}",
            run.stdout
        );
        assert!(
            run.stderr
                .contains("http GET undeclared.test/steal -> refused"),
            "-v names refused requests: {}",
            run.stderr
        );
    }
}

/// `extension inspect` reads the metadata section without running the
/// extension: one whose describe() never returns is shown at once, with its
/// secret key marked and its HTTP hosts; loading it stops at the deadline.
#[test]
fn inspect_reads_the_metadata_section_without_running_the_extension() {
    let file = test_extension("hang-describe");
    let path = file.to_string_lossy().into_owned();
    let start = Instant::now();
    let run = skoop(&["extension", "inspect", &path]);
    let took = start.elapsed();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(took < Duration::from_secs(3), "inspect took {took:?}");
    for line in [
        "name          hang 0.0.1",
        "kind          cloud provider (world cloud-provider)",
        "contract      skoop:extension@0.5.0",
        "http hosts    api.hang.example",
        "config        --hang-token (secret; env HANG_TOKEN): a credential",
        "min host      0.1.0",
    ] {
        assert!(run.stdout.contains(line), "no {line:?} in:\n{}", run.stdout);
    }
    let digest = Command::new("sha256sum")
        .arg(&file)
        .output()
        .expect("sha256sum");
    let digest = String::from_utf8_lossy(&digest.stdout);
    let digest = digest.split_whitespace().next().unwrap_or_default();
    assert!(
        run.stdout.contains(&format!("sha256        {digest}")),
        "{}",
        run.stdout
    );

    let json = skoop(&["extension", "inspect", "-o", "json", &path]).json_any();
    assert_eq!(json["metadata"]["config"][0]["secret"], true);
    assert_eq!(json["kind"], "cloud-provider");
    assert!(
        json["imports"].as_array().unwrap().iter().any(|i| i
            .as_str()
            .unwrap_or("")
            .starts_with("skoop:extension/cluster@0.5")),
        "{json}"
    );

    // Loading it runs describe(), which the deadline stops.
    let run = skoop(&[
        "--extension",
        &path,
        "--extension-timeout",
        "1",
        "extension",
        "list",
    ]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("metadata.describe"), "{}", run.stderr);
}
