//! `skoop diagnose --help` groups its options the way a person looks for
//! them: the flow, where the facts come from, the live cluster, what
//! overrides detection, the output, the extensions' options, then the
//! options every command takes. Completions and the man page come from the
//! same definitions.

use crate::common::skoop;

#[test]
fn diagnose_help_groups_the_options_under_headings() {
    let run = skoop(&["diagnose", "--help"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let heading_of = |flag: &str| -> String {
        let mut heading = String::new();
        for line in run.stdout.lines() {
            if !line.starts_with(' ') && line.ends_with(':') {
                heading = line.trim_end_matches(':').to_string();
            } else if line.trim_start().starts_with(flag)
                || line.trim_start().contains(&format!(", {flag}"))
            {
                return heading;
            }
        }
        panic!("{flag} is not in the help:\n{}", run.stdout);
    };
    for (flag, heading) in [
        ("--src", "Flow"),
        ("--protocol", "Flow"),
        ("--snapshot", "Input"),
        ("--demo", "Input"),
        (
            "--kubeconfig",
            "Live cluster (without --snapshot or --demo)",
        ),
        ("--network-plugin", "Detection overrides"),
        ("--proxy-mode", "Detection overrides"),
        ("--format", "Output"),
        ("--record-host-calls", "Output"),
        ("--flannel-backend-type", "Options of extension flannel"),
        ("--calico-pod-mtu", "Options of extension calico"),
        ("--extension", "Global options"),
        ("--verbose", "Global options"),
    ] {
        assert_eq!(heading_of(flag), heading, "{flag}");
    }
}

#[test]
fn completions_and_the_man_page_come_from_the_same_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let run = skoop(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        for long in ["snapshot", "calico-pod-mtu", "protocol"] {
            // fish names a long option `-l NAME`; bash and zsh `--NAME`.
            let word = match shell {
                "fish" => format!("-l {long}"),
                _ => format!("--{long}"),
            };
            assert!(
                run.stdout.contains(&word),
                "{shell} completion lacks {word}"
            );
        }
        assert!(run.stdout.contains("diagnose"), "{shell}");
    }
    let run = skoop(&["completions", "tcsh"]);
    assert_eq!(run.code, 2, "an unknown shell is bad usage: {}", run.stderr);
    let run = skoop(&["man"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for page in [
        ".TH skoop 1",
        ".TH skoop-diagnose 1",
        ".TH skoop-snapshot 1",
    ] {
        assert!(run.stdout.contains(page), "the man page lacks {page}");
    }
    for flag in ["\\-\\-snapshot", "\\-\\-calico\\-pod\\-mtu"] {
        assert!(run.stdout.contains(flag), "the man page lacks {flag}");
    }
}
