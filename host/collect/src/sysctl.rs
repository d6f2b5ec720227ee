//! The sysctls the diagnosis reads, from `/proc/sys` of the calling thread's
//! netns, keyed by their dotted names (`net.ipv4.conf.flannel.1.forwarding`).

use std::collections::BTreeMap;
use std::path::Path;

use skoop_netstack::dump::Interface;

const PER_CONF: [&str; 3] = ["forwarding", "rp_filter", "proxy_arp"];

/// Read the global and per-interface sysctls. Unreadable ones go into `absent`.
/// `net.bridge.bridge-nf-call-iptables` exists only when br_netfilter is
/// loaded; its absence is a fact (not loaded), not an unknown.
pub fn collect(
    root: &Path,
    interfaces: &[Interface],
    absent: &mut BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut keys = vec![
        "net.ipv4.ip_forward".to_string(),
        "net.ipv4.conf.all.route_localnet".to_string(),
    ];
    let conf_names = ["all", "default"]
        .into_iter()
        .chain(interfaces.iter().map(|i| i.name.as_str()));
    for name in conf_names {
        keys.extend(PER_CONF.iter().map(|k| format!("net.ipv4.conf.{name}.{k}")));
    }
    let mut out = BTreeMap::new();
    for key in keys {
        match read(root, &key) {
            Ok(v) => {
                out.insert(key, v);
            }
            Err(e) => {
                absent.insert(format!("sysctl {key}"), e);
            }
        }
    }
    let bridge = "net.bridge.bridge-nf-call-iptables";
    if let Ok(v) = read(root, bridge) {
        out.insert(bridge.to_string(), v);
    }
    out
}

/// The file under `root` (normally `/proc/sys`) holding `key`. Interface names
/// may contain dots, so the path is built from the known structure rather
/// than by replacing every dot.
pub fn path_of(root: &Path, key: &str) -> std::path::PathBuf {
    if let Some(rest) = key.strip_prefix("net.ipv4.conf.")
        && let Some((iface, leaf)) = rest.rsplit_once('.')
    {
        return root.join("net/ipv4/conf").join(iface).join(leaf);
    }
    key.split('.')
        .fold(root.to_path_buf(), |p, part| p.join(part))
}

fn read(root: &Path, key: &str) -> Result<String, String> {
    std::fs::read_to_string(path_of(root, key))
        .map(|s| s.trim().to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_interface_names_map_to_one_directory() {
        let root = Path::new("/proc/sys");
        assert_eq!(
            path_of(root, "net.ipv4.conf.flannel.1.forwarding"),
            Path::new("/proc/sys/net/ipv4/conf/flannel.1/forwarding")
        );
        assert_eq!(
            path_of(root, "net.ipv4.ip_forward"),
            Path::new("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            path_of(root, "net.bridge.bridge-nf-call-iptables"),
            Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables")
        );
    }

    #[test]
    fn unreadable_sysctls_are_absent() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("net/ipv4/conf/eth0")).expect("mkdir");
        std::fs::write(dir.path().join("net/ipv4/ip_forward"), "1\n").expect("write");
        std::fs::write(dir.path().join("net/ipv4/conf/eth0/forwarding"), "0\n").expect("write");
        let mut absent = BTreeMap::new();
        let eth0 = Interface {
            index: 2,
            name: "eth0".into(),
            kind: "veth".into(),
            mtu: 1500,
            admin_up: true,
            oper_state: "UP".into(),
            master: None,
            peer_index: None,
            addresses: vec![],
            mac: None,
            vxlan: None,
            ..Interface::default()
        };
        let got = collect(dir.path(), &[eth0], &mut absent);
        assert_eq!(
            got.get("net.ipv4.ip_forward").map(String::as_str),
            Some("1")
        );
        assert_eq!(
            got.get("net.ipv4.conf.eth0.forwarding").map(String::as_str),
            Some("0")
        );
        assert!(absent.contains_key("sysctl net.ipv4.conf.eth0.rp_filter"));
        assert!(!got.contains_key("net.bridge.bridge-nf-call-iptables"));
    }
}
