//! `skoop diagnose --help` groups its options the way a person looks for
//! them: the flow, where the facts come from, the live cluster, what
//! overrides detection, the output, the extensions' options, then the
//! options every command takes.

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
        ("--flannel-backend-type", "Extension options"),
        ("--extension", "Global options"),
        ("--verbose", "Global options"),
    ] {
        assert_eq!(heading_of(flag), heading, "{flag}");
    }
}
