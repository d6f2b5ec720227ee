//! Every detection path on a live cluster, what -v prints, and each failure
//! naming what was looked at and the flag to pass.

use serde_json::{Value, json};

use crate::common::*;
use crate::server::{Kubelet, State};

fn verbose(tweak: impl FnOnce(&mut State), extra: &[&str]) -> Run {
    let api = server_with(tweak);
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["-v"];
    args.extend_from_slice(extra);
    // -v is global; put it after the subcommand's own flags.
    diagnose_flow(&api, dir.path(), SAME_NODE, &args)
}

fn assert_ok(r: &Run) {
    assert!(
        r.code == 0 || r.code == 3,
        "exit {}:\n{}{}",
        r.code,
        r.stdout,
        r.stderr
    );
}

fn drop_flannel(s: &mut State) {
    remove(s, "DaemonSet", "kube-flannel-ds");
}

fn drop_flannel_pods(s: &mut State) {
    s.objects.retain(|o| {
        !(o["kind"] == "Pod"
            && o.pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with("kube-flannel-ds-")))
    });
}

fn set_kube_proxy_conf(s: &mut State, f: impl Fn(&str) -> String) {
    for o in &mut s.objects {
        if o["kind"] == "ConfigMap" && o["metadata"]["name"] == "kube-proxy" {
            let conf = o["data"]["config.conf"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            o["data"]["config.conf"] = json!(f(&conf));
        }
    }
}

#[test]
fn everything_detected_is_printed_at_v() {
    let r = verbose(|_| {}, &[]);
    assert_ok(&r);
    for line in [
        "network plugin flannel (detected from DaemonSet kube-flannel/kube-flannel-ds)",
        "kube-proxy mode iptables (detected from ConfigMap kube-system/kube-proxy)",
        "cluster CIDR 10.244.0.0/16 (detected from clusterCIDR of ConfigMap kube-system/kube-proxy)",
        "cloud provider generic",
        "node node-1 host interface eth0",
    ] {
        assert!(r.stderr.contains(line), "missing {line:?}:\n{}", r.stderr);
    }
}

#[test]
fn network_plugin_from_daemonset_pods() {
    let r = verbose(drop_flannel, &[]);
    assert_ok(&r);
    assert!(
        r.stderr
            .contains("network plugin flannel (detected from pod kube-flannel/kube-flannel-ds-"),
        "{}",
        r.stderr
    );
}

#[test]
fn network_plugin_failure_names_what_was_looked_at() {
    let r = verbose(
        |s| {
            drop_flannel(s);
            drop_flannel_pods(s);
        },
        &[],
    );
    assert_bad_input(
        &r,
        &[
            "cannot detect the network plugin",
            "kube-system/kube-proxy",
            "flannel (kube-flannel-ds",
            "--network-plugin NAME",
        ],
    );
    // The flag overrides detection.
    let r = verbose(
        |s| {
            drop_flannel(s);
            drop_flannel_pods(s);
        },
        &["--network-plugin", "flannel"],
    );
    assert_ok(&r);
    assert!(
        r.stderr
            .contains("network plugin flannel (--network-plugin)"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_known_plugin_without_extension_is_named() {
    let r = verbose(
        |s| {
            for o in &mut s.objects {
                if o["kind"] == "DaemonSet" && o["metadata"]["name"] == "kube-flannel-ds" {
                    o["metadata"]["name"] = json!("cilium");
                }
            }
            drop_flannel_pods(s);
        },
        &[],
    );
    assert_bad_input(
        &r,
        &[
            "runs cilium",
            "cilium",
            "--extension FILE",
            "--network-plugin",
        ],
    );
}

#[test]
fn proxy_mode_and_cidr_without_kube_proxy_configmap() {
    let r = verbose(|s| remove(s, "ConfigMap", "kube-proxy"), &[]);
    assert_ok(&r);
    assert!(
        r.stderr.contains("kube-proxy mode iptables (detected from KUBE-SERVICES rules in the dumps of node node-1)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("cluster CIDR 10.244.0.0/22 (detected from the pod CIDRs of 3 nodes)"),
        "{}",
        r.stderr
    );
}

#[test]
fn proxy_mode_ipvs_from_configmap_and_flag_override() {
    let r = verbose(
        |s| set_kube_proxy_conf(s, |c| c.replace("mode: \"iptables\"", "mode: \"ipvs\"")),
        &[],
    );
    assert!(
        r.stderr
            .contains("kube-proxy mode ipvs (detected from ConfigMap kube-system/kube-proxy)"),
        "{}",
        r.stderr
    );
    let r = verbose(|_| {}, &["--proxy-mode", "iptables"]);
    assert!(
        r.stderr.contains("kube-proxy mode iptables (--proxy-mode)"),
        "{}",
        r.stderr
    );
}

#[test]
fn unsupported_proxy_mode_names_the_flag() {
    let r = verbose(
        |s| set_kube_proxy_conf(s, |c| c.replace("mode: \"iptables\"", "mode: kernelspace")),
        &[],
    );
    assert_bad_input(
        &r,
        &[
            "ConfigMap kube-system/kube-proxy",
            "\"kernelspace\"",
            "--proxy-mode",
        ],
    );
}

#[test]
fn kube_proxy_config_yaml_is_read() {
    // Dual-stack clusterCIDR, masqueradeBit 15, masqueradeAll: a real
    // KubeProxyConfiguration's nested sections, not just top-level keys.
    let r = verbose(
        |s| {
            set_kube_proxy_conf(s, |c| {
                c.replace(
                    "clusterCIDR: 10.244.0.0/16",
                    "clusterCIDR: \"fd00:10:244::/56,10.244.0.0/16\"",
                )
                .replace("masqueradeAll: false", "masqueradeAll: true")
                .replacen("masqueradeBit: null", "masqueradeBit: 15", 1)
            })
        },
        &[],
    );
    assert_ok(&r);
    for line in [
        "cluster CIDR 10.244.0.0/16 (detected from clusterCIDR of ConfigMap kube-system/kube-proxy)",
        "masquerade mark 0x8000 (iptables.masqueradeBit 15 of ConfigMap kube-system/kube-proxy)",
        "kube-proxy masquerades all Service traffic (iptables.masqueradeAll of ConfigMap kube-system/kube-proxy)",
    ] {
        assert!(r.stderr.contains(line), "missing {line:?}:\n{}", r.stderr);
    }
    let settings = r.json()["settings"].clone();
    assert_eq!(settings["masquerade_mark"], 0x8000, "{settings}");
    assert_eq!(settings["masquerade_all"], true, "{settings}");
}

#[test]
fn malformed_kube_proxy_config_names_the_configmap_key_and_line() {
    let r = verbose(
        |s| set_kube_proxy_conf(s, |c| c.replacen("  burst: 0", "  burst: [0", 1)),
        &[],
    );
    assert_bad_input(
        &r,
        &[
            "ConfigMap kube-system/kube-proxy",
            "key config.conf",
            "at line ",
        ],
    );
}

#[test]
/// The live fixture's dumps hold no `ip kube-proxy` table: its Services are
/// resolved from the EndpointSlices, with a warning naming the node.
fn nftables_mode_without_kube_proxys_table_warns_and_uses_endpointslices() {
    let api = server_with(|s| {
        set_kube_proxy_conf(s, |c| c.replace("mode: \"iptables\"", "mode: nftables"))
    });
    let dir = tempfile::tempdir().unwrap();
    let r = diagnose(&api, dir.path(), &["-v"]);
    assert_ok(&r);
    assert!(
        r.stderr
            .contains("kube-proxy mode nftables (detected from ConfigMap kube-system/kube-proxy)"),
        "{}",
        r.stderr
    );
    let j = r.json();
    assert!(
        j["suspicions"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["level"] == "WARNING"
                && s["message"].as_str().is_some_and(|m| m
                    .starts_with("cannot check kube-proxy's rules on node node-1")
                    && m.contains("no `ip kube-proxy` nftables table")
                    && m.contains("EndpointSlices")))),
        "{}",
        j["suspicions"]
    );
}

#[test]
fn proxy_mode_from_a_node_that_cannot_be_collected() {
    let r = verbose(
        |s| {
            remove(s, "ConfigMap", "kube-proxy");
            s.kubelet.insert("node-1".into(), Kubelet::Crash);
        },
        &[],
    );
    assert_bad_input(
        &r,
        &[
            "cannot detect kube-proxy's mode",
            "node node-1",
            "--proxy-mode",
        ],
    );
}

#[test]
fn undetectable_cluster_cidr_warns_with_the_flag() {
    let r = verbose(
        |s| {
            remove(s, "ConfigMap", "kube-proxy");
            for o in &mut s.objects {
                if o["kind"] == "Node" {
                    o["spec"] = json!({});
                }
            }
        },
        &["--proxy-mode", "iptables"],
    );
    assert!(
        r.stderr.contains("warning: cannot detect the cluster CIDR"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("pass --cluster-cidr CIDR"),
        "{}",
        r.stderr
    );
}

#[test]
fn host_interface_not_found_is_a_warning() {
    let r = verbose(
        |s| {
            for o in &mut s.objects {
                if o["kind"] == "Node" && o["metadata"]["name"] == "node-1" {
                    o["status"]["addresses"] =
                        json!([{"type": "InternalIP", "address": "192.168.0.99"}]);
                }
            }
        },
        &[],
    );
    assert!(
        r.stderr.contains("cannot detect the host interface of node node-1: no interface in its dump holds its InternalIP 192.168.0.99"),
        "{}",
        r.stderr
    );
}

#[test]
fn flannel_backend_missing_names_its_flag() {
    let r = verbose(|s| remove(s, "ConfigMap", "kube-flannel-cfg"), &[]);
    assert_bad_input(&r, &["--flannel-backend-type"]);
    let r = verbose(
        |s| remove(s, "ConfigMap", "kube-flannel-cfg"),
        &["--flannel-backend-type", "vxlan"],
    );
    assert_ok(&r);
}
