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
    ("nft", "nftables"),
    ("python3", "python3"),
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
             It needs root and: apt-get install iproute2 iptables ipset nftables python3\n\
             (or set SKOOP_SKIP_KERNEL_TESTS=1 to skip it)"
        ),
    }
}

fn check() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not running as root".into());
    }
    sweep_stale();
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

/// Delete namespaces an earlier bench run left behind when it was killed
/// (its drop guards never ran): names `kb<PID>x<N>-...` whose PID is gone.
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("kb")
            .and_then(|rest| rest.split_once('x'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = sh::run("ip", &["netns", "del", &name]);
        }
    }
}
