//! Extensions that misbehave are stopped within their limits and named; the
//! host never hangs or crashes. A third-party plugin overrides a built-in one.

use std::time::{Duration, Instant};

use crate::common::{skoop, test_extension};

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
            .contains("extension trap failed in simple-plugin-node.to-service at node node-1"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("deliberate panic in to_service"),
        "{}",
        run.stderr
    );
    // The hop that worked is still reported.
    assert!(
        run.stdout.contains("pod default/client-1"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Verdict: INCOMPLETE"), "{}", run.stdout);
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
}
