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

/// Groups may run side by side: every namespace has a name of its own
/// (`topo::unique_prefix`), every device lives in one, and each probe has a
/// source port of its own.
fn run_group(group: bench::Group) {
    if let Err(e) = bench::run(group) {
        panic!("{e}");
    }
}

#[test]
fn kernel_bench() {
    if !preflight::ready() {
        return;
    }
    run_group(bench::Group {
        scenarios: scenarios::all(),
        verbose: false,
    });
}

/// Faults that live in the node's state (kube-proxy rules, policy routing,
/// conntrack matches, rp_filter, marks) while the Kubernetes objects look
/// healthy (issue 8): the verdict must follow the dataplane. Run alone with
/// `cargo test --test kernel-bench dataplane_scenarios`.
#[test]
fn dataplane_scenarios() {
    if !preflight::ready() {
        return;
    }
    run_group(bench::Group {
        scenarios: dataplane::all(),
        verbose: true,
    });
}

/// Calico in BGP and VXLAN modes (issue 10): healthy flows and one fault
/// at a time; the kernel decides. Run alone with
/// `KERNEL_BENCH_ONLY=calico cargo test -p skoop --test kernel-bench calico_scenarios`.
#[test]
fn calico_scenarios() {
    if !preflight::ready() {
        return;
    }
    run_group(bench::Group {
        scenarios: calico::all(),
        verbose: false,
    });
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
