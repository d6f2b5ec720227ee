//! Can this machine run the bench? Root, the tools, and a kernel with
//! network namespaces, veth, bridge and vxlan.

use std::sync::OnceLock;

use super::sh;

const TOOLS: [(&str, &str); 7] = [
    ("ip", "iproute2"),
    ("bridge", "iproute2"),
    ("iptables-restore", "iptables"),
    ("iptables-save", "iptables"),
    ("ipset", "ipset"),
    ("python3", "python3"),
    ("sysctl", "procps"),
];

/// True when the bench can run. False when it cannot and
/// SKOOP_SKIP_KERNEL_TESTS=1 says to skip; panics with what to install otherwise.
pub fn ready() -> bool {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    match CHECK.get_or_init(check) {
        Ok(()) => true,
        Err(why) if std::env::var("SKOOP_SKIP_KERNEL_TESTS").as_deref() == Ok("1") => {
            eprintln!("kernel-bench skipped (SKOOP_SKIP_KERNEL_TESTS=1): {why}");
            false
        }
        Err(why) => panic!(
            "kernel-bench cannot run: {why}\n\
             It needs root and: apt-get install iproute2 iptables ipset python3 procps\n\
             (or set SKOOP_SKIP_KERNEL_TESTS=1 to skip it)"
        ),
    }
}

fn check() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not running as root".into());
    }
    let missing: Vec<String> = TOOLS
        .iter()
        .filter(|(tool, _)| sh::run("sh", &["-c", &format!("command -v {tool}")]).is_err())
        .map(|(tool, pkg)| format!("{tool} (package {pkg})"))
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing tools: {}", missing.join(", ")));
    }
    let ns = format!("{}-pre", super::topo::unique_prefix());
    let mut guard = super::topo::NetnsGuard::default();
    guard
        .add(&ns)
        .map_err(|e| format!("cannot create a network namespace: {e}"))?;
    sh::ip_batch(
        &ns,
        &[
            "link add b0 type bridge".into(),
            "link add v0 type veth peer name v1".into(),
            "link add x0 type vxlan id 7 dstport 8472 nolearning".into(),
        ],
    )
    .map_err(|e| format!("the kernel lacks bridge/veth/vxlan: {e}"))?;
    sh::exec(
        &ns,
        "iptables",
        &[
            "-A",
            "FORWARD",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            "0.5",
            "-j",
            "ACCEPT",
        ],
    )
    .map_err(|e| format!("iptables cannot use the modules kube-proxy needs: {e}"))?;
    Ok(())
}
