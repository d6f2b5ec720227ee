//! Endpoints by name on the built-in demos: every name form resolves to
//! the address the demo's cluster.json gives it, and the report shows both.

use crate::common::{assert_bad_input, skoop};

/// (src, dst, -p, src IP, dst IP, port, src name, dst name); the addresses
/// are the demos' cluster.json (both demos share them).
type Form = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    u64,
    &'static str,
    &'static str,
);

const FORMS: &[Form] = &[
    (
        "default/client-1",
        "web.default",
        None,
        "10.244.0.5",
        "10.96.100.10",
        80,
        "pod/default/client-1",
        "svc/default/web",
    ),
    (
        "pod/default/client-1",
        "svc/default/web",
        Some("http"),
        "10.244.0.5",
        "10.96.100.10",
        80,
        "pod/default/client-1",
        "svc/default/web",
    ),
    (
        "client-1",
        "web.default.svc",
        Some("80"),
        "10.244.0.5",
        "10.96.100.10",
        80,
        "pod/default/client-1",
        "svc/default/web",
    ),
    (
        "node/node-1",
        "web.default.svc.cluster.local",
        Some("http"),
        "192.168.0.11",
        "10.96.100.10",
        80,
        "node/node-1",
        "svc/default/web",
    ),
    (
        "node-2",
        "10-244-2-8.default.pod.cluster.local",
        Some("8080"),
        "192.168.0.12",
        "10.244.2.8",
        8080,
        "node/node-2",
        "pod/default/web-3",
    ),
    (
        "kube-system/coredns-1",
        "default/web-2",
        Some("8080"),
        "10.244.1.9",
        "10.244.1.7",
        8080,
        "pod/kube-system/coredns-1",
        "pod/default/web-2",
    ),
    (
        "client-1",
        "svc/kube-dns",
        Some("dns"),
        "10.244.0.5",
        "10.96.0.10",
        53,
        "pod/default/client-1",
        "svc/kube-system/kube-dns",
    ),
];

#[test]
fn every_name_form_resolves_on_the_demos() {
    for demo in ["flannel", "calico"] {
        for (src, dst, port, src_ip, dst_ip, dport, src_name, dst_name) in FORMS {
            let mut args = vec![
                "diagnose", "--demo", demo, "-s", src, "-d", dst, "--format", "json",
            ];
            if let Some(p) = port {
                args.extend(["-p", p]);
            }
            let run = skoop(&args);
            assert!(
                run.code == 0 || run.code == 3,
                "{demo} {src} -> {dst}: exit {}\n{}",
                run.code,
                run.stderr
            );
            let r = run.json();
            let got = (
                r["src"].as_str(),
                r["dst"].as_str(),
                r["port"].as_u64(),
                r["src_name"].as_str(),
                r["dst_name"].as_str(),
            );
            assert_eq!(
                got,
                (
                    Some(*src_ip),
                    Some(*dst_ip),
                    Some(*dport),
                    Some(*src_name),
                    Some(*dst_name)
                ),
                "{demo}: {src} -> {dst} -p {port:?}"
            );
        }
    }
}

#[test]
fn a_named_port_brings_its_protocol_and_the_text_names_both_ends() {
    let run = skoop(&[
        "diagnose",
        "--demo",
        "flannel",
        "-s",
        "default/client-1",
        "-d",
        "kube-dns.kube-system",
        "-p",
        "dns",
    ]);
    let first = run.stdout.lines().next().unwrap_or_default();
    assert_eq!(
        first.split("  (").next(),
        Some(
            "skoop diagnose pod/default/client-1 (10.244.0.5) -> svc/kube-system/kube-dns (10.96.0.10):53/udp"
        ),
        "{}",
        run.stdout
    );
    // Addresses given as addresses stay as they were.
    let run = skoop(&[
        "diagnose",
        "--demo",
        "flannel",
        "-s",
        "10.244.0.5",
        "-d",
        "10.96.0.10",
        "-p",
        "53",
        "--protocol",
        "udp",
        "--format",
        "json",
    ]);
    let r = run.json();
    assert!(
        r.get("src_name").is_none() && r.get("dst_name").is_none(),
        "{r}"
    );
}

#[test]
fn ambiguity_and_no_match_are_bad_input_listing_candidates() {
    // "web" is a Service and a pod name prefix; as a source it is the Service.
    let run = skoop(&[
        "diagnose",
        "--demo",
        "flannel",
        "-s",
        "web",
        "-d",
        "web.default",
    ]);
    assert_bad_input(&run, "a Service is not a source");
    assert!(
        run.stderr.contains("pod/default/web-2 (10.244.1.7)"),
        "{}",
        run.stderr
    );
    let run = skoop(&[
        "diagnose",
        "--demo",
        "flannel",
        "-s",
        "default/clinet-1",
        "-d",
        "web.default",
    ]);
    assert_bad_input(
        &run,
        "no pod default/clinet-1; did you mean: pod/default/client-1 (10.244.0.5)",
    );
    let run = skoop(&[
        "diagnose",
        "--demo",
        "flannel",
        "-s",
        "client-1",
        "-d",
        "kube-dns.kube-system",
    ]);
    assert_bad_input(
        &run,
        "has more than one port; name one: dns (53/udp), dns-tcp (53/tcp)",
    );
    let run = skoop(&[
        "diagnose",
        "--demo",
        "flannel",
        "-s",
        "client-1",
        "-d",
        "web.default.svc.example.org",
    ]);
    assert_bad_input(&run, "the cluster's DNS domain is cluster.local");
    let run = skoop(&[
        "diagnose",
        "--demo",
        "flannel",
        "-s",
        "client-1",
        "-d",
        "svc/default/web",
        "-p",
        "grpc",
    ]);
    assert_bad_input(&run, "has no port of that name; its ports: http (80/tcp)");
}
