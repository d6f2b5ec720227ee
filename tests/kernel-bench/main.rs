//! The kernel-verified bench: emulated flannel and Calico clusters in network
//! namespaces, where skoop's verdict must agree with what the kernel does.
//!
//! Needs root and iproute2 (`ip`, `bridge`), iptables, ipset, nftables and python3.
//! Set SKOOP_SKIP_KERNEL_TESTS=1 to skip on machines without them.

mod bench;
mod calico;
mod cause;
mod collect;
mod dataplane;
mod nftables;
mod paths;
mod preflight;
mod probe;
mod scenarios;
mod sh;
mod skoop;
mod topo;

/// Every group: its test function's name and its scenarios. A
/// KERNEL_BENCH_ONLY filter is judged against the groups the test harness
/// runs (`bench::filter_selects_nothing`).
const GROUPS: bench::Catalogue = &[
    ("kernel_bench", scenarios::all),
    ("dataplane_scenarios", dataplane::all),
    ("calico_scenarios", calico::all),
    ("path_scenarios", paths::all),
    ("nftables_scenarios", nftables::all),
];

/// Groups may run side by side: every namespace has a name of its own
/// (`topo::unique_prefix`), every device lives in one, and each probe has a
/// source port of its own.
fn run_group(name: &'static str, verbose: bool) {
    if !preflight::ready() {
        return;
    }
    let (_, scenarios) = GROUPS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no group {name}"));
    let group = bench::Group {
        name,
        scenarios: scenarios(),
        verbose,
        // The flannel and Calico scenarios get a third judge: the collector's
        // real connection attempt (`skoop collect probe`) from the source.
        probe: matches!(name, "kernel_bench" | "calico_scenarios"),
    };
    if let Err(e) = bench::run(group, GROUPS) {
        panic!("{e}");
    }
}

#[test]
fn kernel_bench() {
    run_group("kernel_bench", false);
}

/// Faults that live in the node's state (kube-proxy rules, policy routing,
/// conntrack matches, rp_filter, marks) while the Kubernetes objects look
/// healthy (issue 8): the verdict must follow the dataplane. Run alone with
/// `cargo test --test kernel-bench dataplane_scenarios`.
#[test]
fn dataplane_scenarios() {
    run_group("dataplane_scenarios", true);
}

/// Calico in BGP and VXLAN modes (issue 10): healthy flows and one fault
/// at a time; the kernel decides. Run alone with
/// `KERNEL_BENCH_ONLY=calico cargo test -p skoop --test kernel-bench calico_scenarios`.
#[test]
fn calico_scenarios() {
    run_group("calico_scenarios", false);
}

/// Paths across the link layer on every backend (issue 23): NodePorts from
/// outside and from pods on Calico, node to ClusterIP, pod MTU above the
/// tunnel's judged by a bulk transfer, ECMP routes, hairpin through the
/// bridge, MASQUERADE out of an address-less device. Run alone with
/// `cargo test -p skoop --test kernel-bench path_scenarios`.
#[test]
fn path_scenarios() {
    run_group("path_scenarios", true);
}

/// kube-proxy in nftables mode on every backend: its table loaded with
/// `nft -f`, faults in it as nftables transactions, and `inet` tables beside
/// iptables-nft (firewalld's forward reject; an earlier accept that a later
/// iptables DROP overrides). Run alone with
/// `cargo test -p skoop --test kernel-bench nftables_scenarios`.
#[test]
fn nftables_scenarios() {
    run_group("nftables_scenarios", false);
}

#[test]
fn collect_round_trip() {
    if !preflight::ready() {
        return;
    }
    if let Err(e) = collect::round_trip() {
        panic!("{e}");
    }
}

#[test]
fn collect_fifty_pods() {
    if !preflight::ready() {
        return;
    }
    if let Err(e) = collect::fifty_pods() {
        panic!("{e}");
    }
}

// The bench's own rules, checked without root or a kernel.

/// A single keyword names no entity: the judge refuses it rather than pass
/// a report that merely mentions it.
#[test]
fn judge_refuses_single_words() {
    let v = skoop::Verdict {
        exit: 3,
        suspicions: vec![skoop::Suspicion {
            level: "CRITICAL".into(),
            node: "node-1".into(),
            message: "flannel.1 MTU 1450 is below the pod MTU 1500".into(),
        }],
        ..skoop::Verdict::default()
    };
    let words = |alts: &[&[&str]]| -> Vec<Vec<String>> {
        alts.iter()
            .map(|a| a.iter().map(|w| w.to_string()).collect())
            .collect()
    };
    for single in [
        &[&["mtu"][..]][..],
        &[&["node-1", "1450"], &["cni0"]],
        &[&["", "mtu"]],
    ] {
        assert!(
            v.names(&["CRITICAL"], &words(single)).is_err(),
            "{single:?}"
        );
    }
    let named = v.names(&["CRITICAL"], &words(&[&["node-1", "flannel.1", "1450"]]));
    assert!(matches!(named, Ok(Some(_))));
    let elsewhere = v.names(&["CRITICAL"], &words(&[&["node-2", "flannel.1", "1450"]]));
    assert!(matches!(elsewhere, Ok(None)));
    assert!(v.names(&["CRITICAL"], &[]).is_err());
    // A multi-word text is one alternative's whole entity.
    let rule = v.names(&["CRITICAL"], &words(&[&["-j DROP"]]));
    assert!(matches!(rule, Ok(None)));
}

/// Names, addresses and numbers match only whole.
#[test]
fn texts_match_whole() {
    use skoop::contains_whole as whole;
    assert!(whole("no route to 10.244.1.0/26", "10.244.1.0/26"));
    assert!(!whole("no route to 10.244.1.0/26", "10.244.1.0"));
    assert!(whole(
        "neighbour 10.244.1.0 on vxlan.calico.",
        "vxlan.calico"
    ));
    assert!(whole("neighbour 10.244.1.0 on vxlan.calico.", "10.244.1.0"));
    assert!(!whole("node-10 drops", "node-1"));
    assert!(!whole("default/web-2 has no endpoints", "default/web"));
    assert!(whole("default/web:http has no endpoints", "default/web"));
    assert!(whole("DNAT to 10.244.1.7:8080", "10.244.1.7"));
    assert!(whole(
        "Service default/web (10.96.100.10:80/tcp)",
        "10.96.100.10:80"
    ));
    assert!(!whole("flannel.10 is down", "flannel.1"));
    assert!(!whole("net.ipv4.conf.flannel.1.rp_filter=1", "flannel.1"));
    assert!(whole(
        "-A FORWARD -s 203.0.113.9/32 -j DROP",
        "-s 203.0.113.9/32 -j DROP"
    ));
    assert!(whole("MAC 1A:2B:3C:4D:5E:6F", "1a:2b:3c:4d:5e:6f"));
}

/// `cargo test` runs every group with the same KERNEL_BENCH_ONLY: a filter
/// selecting nothing anywhere in the run fails; one selecting scenarios of
/// another group of the run does not.
#[test]
fn filter_selecting_nothing_fails() {
    let args = |a: &[&str]| bench::test_filter(a.iter().map(|s| s.to_string()));
    let everything = args(&["--test-threads", "1"]);
    assert!(bench::filter_selects_nothing("xyz", GROUPS, &everything).is_err());
    assert!(bench::filter_selects_nothing("calico-vxlan-vxlan-fdb", GROUPS, &everything).is_ok());
    // Only the flannel group runs: a Calico-only filter selects nothing.
    let flannel = args(&["kernel_bench", "--exact", "--test-threads", "1"]);
    assert!(bench::filter_selects_nothing("calico-vxlan-vxlan-fdb", GROUPS, &flannel).is_err());
    let skipped = args(&["--skip", "calico"]);
    assert!(bench::filter_selects_nothing("calico-vxlan-vxlan-fdb", GROUPS, &skipped).is_err());
    assert!(bench::filter_selects_nothing("host-gw-forward-drop", GROUPS, &skipped).is_ok());
}

/// Each cause yields alternatives naming its netns and its entity, in the
/// forms a report prints them.
#[test]
fn causes_name_netns_and_entity() {
    use cause::{At, Cause, Entity};
    let node2 = At::Node("node-2");
    let alts = |c: Cause| c.alternatives();
    assert_eq!(
        alts(cause::route(
            At::Node("node-1"),
            "10.244.1.0/24 via 192.168.0.99 dev eth0"
        )),
        [
            vec!["node-1", "10.244.1.0/24 via 192.168.0.99 dev eth0"],
            vec!["node-1", "10.244.1.0/24", "192.168.0.99"],
        ]
    );
    assert_eq!(
        alts(cause::route_in(
            At::Node("node-1"),
            100,
            "blackhole default"
        )),
        [vec!["node-1", "blackhole default", "table 100"]]
    );
    assert_eq!(
        alts(cause::sysctl(node2, "net.ipv4.conf.flannel.1.rp_filter")),
        [
            vec!["node-2", "net.ipv4.conf.flannel.1.rp_filter"],
            vec!["node-2", "flannel.1", "rp_filter"],
        ]
    );
    assert_eq!(
        alts(cause::sysctl(node2, "net.ipv4.conf.all.forwarding")),
        [vec!["node-2", "net.ipv4.conf.all.forwarding"]]
    );
    let mark = cause::rule(node2, "KUBE-MARK-MASQ", "-j MARK --set-xmark 0x8000/0x8000");
    assert_eq!(
        alts(mark.keyed("0x8000"))[1],
        ["node-2", "KUBE-MARK-MASQ", "0x8000"]
    );
    let element = cause::nft_element_missing(
        At::Node("node-1"),
        "ip",
        "kube-proxy",
        "service-ips",
        "10.96.100.10 . tcp . 80",
    );
    assert_eq!(
        alts(element),
        [
            vec!["node-1", "service-ips", "10.96.100.10 . tcp . 80"],
            vec!["node-1", "service-ips", "10.96.100.10:80"],
        ]
    );
    let nft_mark = cause::nft_rule(
        node2,
        "ip",
        "kube-proxy",
        "mark-for-masquerade",
        "meta mark set meta mark | 0x00008000",
    );
    assert_eq!(
        alts(nft_mark.keyed("0x8000")),
        [
            vec![
                "node-2",
                "mark-for-masquerade",
                "meta mark set meta mark | 0x00008000"
            ],
            vec!["node-2", "mark-for-masquerade", "0x8000"],
        ]
    );
    let service = Cause {
        at: At::Cluster,
        what: Entity::NoEndpoints("default/web"),
    };
    assert!(
        alts(service)
            .iter()
            .all(|a| a[0] == "default/web" && a.len() == 2)
    );
}
