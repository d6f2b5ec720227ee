//! The kernel-verified bench: emulated flannel clusters in network
//! namespaces, where skoop's verdict must agree with what the kernel does.
//!
//! Needs root and iproute2 (`ip`, `bridge`), iptables, ipset and python3.
//! Set SKOOP_SKIP_KERNEL_TESTS=1 to skip on machines without them.

mod bench;
mod calico;
mod collect;
mod dataplane;
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
