//! `skoop diagnose --probe`: after the simulated verdict, a probe pod on the
//! source's node runs `skoop collect probe`, its log is read, the two are set
//! side by side, and the pod goes with the collectors. The fake kubelet
//! either logs what the test says (the plumbing, no root needed) or runs
//! the pod's command with the real binary from a network namespace holding
//! the source pod's address (root; SKOOP_SKIP_KERNEL_TESTS=1 skips).

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;
use crate::server::{FakeApi, Prober};

const PODS: &str = "/api/v1/namespaces/skoop/pods";

/// A probe result line as `skoop collect probe` prints it.
fn result_line(outcome: &str, detail: &str) -> String {
    json!({
        "version": 1, "from": "pod default/client-1 (netns /proc/1/ns/net, from CRI)",
        "src": "10.244.0.5", "dst": "10.244.0.6", "port": 8080, "protocol": "tcp",
        "reply_expected": false, "outcome": outcome, "detail": detail,
        "attempts": [{"outcome": outcome, "detail": detail, "elapsed_ms": 3000.1}],
        "elapsed_ms": 3000.4, "timeout_ms": 3000
    })
    .to_string()
}

/// The report, checked against docs/report.schema.json (its `probe` too).
fn valid(report: Value) -> Value {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/report.schema.json")).expect("schema"),
    )
    .expect("schema JSON");
    let v = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = v.iter_errors(&report).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{report}");
    report
}

fn probe_pods(api: &FakeApi) -> Vec<Value> {
    let s = api.state.lock().unwrap();
    s.pods
        .values()
        .filter(|p| {
            p.pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with("skoop-probe-"))
        })
        .cloned()
        .collect()
}

fn all_deleted(api: &FakeApi) {
    assert!(
        api.state.lock().unwrap().pods.is_empty(),
        "pods left: {:?}",
        api.seen()
    );
    assert_eq!(api.count("POST", PODS), api.count("DELETE", PODS));
}

#[test]
fn probe_needs_a_live_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["diagnose", "--demo", "--probe"]);
    assert_bad_input(
        &r,
        &["--probe", "needs a live cluster", "--snapshot/--demo"],
    );
    let bundle = vxlan();
    let r = run(
        dir.path(),
        &[
            "diagnose",
            "--snapshot",
            bundle.to_str().expect("utf-8"),
            "-s",
            SAME_NODE.0,
            "-d",
            SAME_NODE.1,
            "-p",
            SAME_NODE.2,
            "--probe",
        ],
    );
    assert_bad_input(&r, &["needs a live cluster"]);
    let r = run(
        dir.path(),
        &[
            "diagnose",
            "-s",
            "10.0.0.1",
            "-d",
            "10.0.0.2",
            "-p",
            "80",
            "--probe",
            "--probe-count",
            "50",
        ],
    );
    assert_bad_input(&r, &["--probe-count 50", "1 to 20"]);
}

/// The plumbing: the probe pod's command, node and rights, its log read,
/// a disagreement reported on the source, and the pod kept or deleted as
/// the collectors are.
#[test]
fn a_probe_pod_runs_on_the_source_node_and_disagreement_is_a_warning() {
    let api = server_with(|s| {
        s.prober = Some(Prober::Log(format!(
            "skoop collect: 3 pod sandbox(es) from CRI socket /run/containerd/containerd.sock\n{}\n",
            result_line("timed-out", "timed out after 3 s")
        )));
    });
    let dir = tempfile::tempdir().unwrap();
    let r = diagnose_flow(
        &api,
        dir.path(),
        SAME_NODE,
        &["--probe", "--preserve-collector-pod"],
    );
    // The simulation says healthy: a warning does not change the exit status.
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report = valid(r.json());
    assert_eq!(report["verdict"], "healthy");
    let p = &report["probe"];
    assert_eq!(p["outcome"], "timed-out", "{p}");
    assert_eq!(p["agrees"], false, "{p}");
    assert_eq!(p["conclusive"], true, "{p}");
    assert_eq!(p["from"], "pod default/client-1 on node node-1");
    assert_eq!(p["attempts"], 1);
    let warning = report["suspicions"]
        .as_array()
        .expect("suspicions")
        .iter()
        .find(|s| {
            s["message"]
                .as_str()
                .is_some_and(|m| m.contains("disagree"))
        })
        .expect("a disagreement suspicion");
    assert_eq!(warning["level"], "WARNING");
    assert_eq!(warning["node"], "default/client-1");
    let message = warning["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("skoop snapshot -o DIR --node node-1"),
        "{message}"
    );
    assert!(
        r.stderr
            .contains("probing 10.244.0.6:8080/tcp from pod default/client-1 on node node-1"),
        "{}",
        r.stderr
    );
    let pods = probe_pods(&api);
    assert_eq!(pods.len(), 1, "one probe pod: {pods:?}");
    let pod = &pods[0];
    assert_eq!(pod["spec"]["nodeName"], "node-1");
    assert_eq!(pod["spec"]["hostPID"], true);
    assert_eq!(
        pod["spec"]["containers"][0]["securityContext"]["privileged"],
        true
    );
    assert_eq!(
        pod["spec"]["containers"][0]["command"],
        json!([
            "skoop",
            "collect",
            "probe",
            "--src",
            "10.244.0.5",
            "--dst",
            "10.244.0.6",
            "--port",
            "8080",
            "--protocol",
            "tcp",
            "--count",
            "3",
            "--timeout",
            "3000ms",
            "--pod",
            "default/client-1"
        ])
    );

    // Without --preserve-collector-pod the probe pod goes too; the text
    // report sets the two side by side.
    let api = server_with(|s| {
        s.prober = Some(Prober::Log(result_line(
            "connected",
            "connected 2 of 2 times (0.3 ms)",
        )));
    });
    let kc = kubeconfig(dir.path(), &api.url, "fake", "t0ken");
    let r = run(
        dir.path(),
        &[
            "diagnose",
            "--kubeconfig",
            kc.to_str().expect("utf-8"),
            "-s",
            SAME_NODE.0,
            "-d",
            SAME_NODE.1,
            "-p",
            SAME_NODE.2,
            "--probe",
            "--probe-count",
            "2",
            "--probe-timeout",
            "0.5",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("\n  simulated: HEALTHY; probe: connected 2 of 2 times (0.3 ms) — agrees\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("Probe (a real connection from pod default/client-1 on node node-1):")
    );
    assert!(
        api.seen()
            .iter()
            .any(|s| s.method == "DELETE" && s.path.contains("/skoop-probe-node-1-")),
        "{:?}",
        api.seen()
    );
    all_deleted(&api);
}

/// A pod whose log is no probe result: said in the report, the diagnosis
/// stands; a source outside the cluster: no probe pod at all.
#[test]
fn a_probe_that_cannot_be_made_is_said_not_fatal() {
    let api = server_with(|s| {
        s.prober = Some(Prober::Log("exec format error\n".into()));
    });
    let dir = tempfile::tempdir().unwrap();
    let r = diagnose_flow(&api, dir.path(), SAME_NODE, &["--probe"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report = valid(r.json());
    let p = &report["probe"];
    assert_eq!(p["outcome"], "unavailable", "{p}");
    assert_eq!(p["conclusive"], false);
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("holds no probe result") && detail.contains("exec format error"),
        "{detail}"
    );
    all_deleted(&api);

    let api = server();
    let r = diagnose_flow(
        &api,
        dir.path(),
        ("203.0.113.9", "192.168.0.12", "30080"),
        &["--probe"],
    );
    assert!(r.code == 0 || r.code == 3, "{}{}", r.stdout, r.stderr);
    let p = &r.json()["probe"];
    assert_eq!(p["outcome"], "unavailable", "{p}");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("neither a pod nor a node")),
        "{p}"
    );
    assert!(
        !api.seen()
            .iter()
            .any(|s| s.method == "POST" && s.path.starts_with(PODS) && s.path.contains("probe")),
        "no probe pod"
    );
    assert_eq!(
        probe_pods(&api).len(),
        0,
        "no probe pod for a source outside the cluster"
    );
    all_deleted(&api);
}

// With the real binary, in network namespaces.

fn kernel_ready() -> bool {
    if nix::unistd::geteuid().is_root() && Command::new("ip").arg("-V").output().is_ok() {
        return true;
    }
    if std::env::var("SKOOP_SKIP_KERNEL_TESTS").as_deref() == Ok("1") {
        eprintln!("live probe kernel test skipped (SKOOP_SKIP_KERNEL_TESTS=1)");
        return false;
    }
    panic!("the live probe test needs root and iproute2 (SKOOP_SKIP_KERNEL_TESTS=1 skips it)");
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// client-1's netns (10.244.0.5) wired to web-1's (10.244.0.6, listening
/// on 8080), as on node-1 of the fixture; deleted on drop.
struct Pods {
    client: String,
    web: String,
    stop: Arc<AtomicBool>,
}

impl Drop for Pods {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for ns in [&self.client, &self.web] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

impl Pods {
    fn build() -> Pods {
        let id = std::process::id();
        let pods = Pods {
            client: format!("skl-{id}-client"),
            web: format!("skl-{id}-web"),
            stop: Arc::new(AtomicBool::new(false)),
        };
        for ns in [&pods.client, &pods.web] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            sh(&["ip", "netns", "add", ns]);
        }
        let (c, w) = (pods.client.as_str(), pods.web.as_str());
        sh(&[
            "ip", "-n", c, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
            w,
        ]);
        sh(&["ip", "-n", c, "addr", "add", "10.244.0.5/24", "dev", "eth0"]);
        sh(&["ip", "-n", w, "addr", "add", "10.244.0.6/24", "dev", "eth0"]);
        for ns in [c, w] {
            sh(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let file = File::open(format!("/run/netns/{w}")).expect("netns");
        let listener = std::thread::spawn(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            TcpListener::bind("10.244.0.6:8080").expect("bind")
        })
        .join()
        .expect("thread");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = pods.stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                while let Ok((c, _)) = listener.accept() {
                    drop(c);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        pods
    }
}

#[test]
fn the_real_collector_probes_from_the_source_pods_netns() {
    if !kernel_ready() {
        return;
    }
    let pods = Pods::build();
    let prober = Prober::Run {
        bin: env!("CARGO_BIN_EXE_skoop").into(),
        netns: BTreeMap::from([("default/client-1".to_string(), pods.client.clone())]),
    };
    let dir = tempfile::tempdir().unwrap();

    // web-1 listens: the simulation and the kernel agree.
    let api = server_with(|s| s.prober = Some(prober.clone()));
    let r = diagnose_flow(&api, dir.path(), SAME_NODE, &["--probe"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report = valid(r.json());
    let p = &report["probe"];
    assert_eq!(p["outcome"], "connected", "{p}\n{}", r.stderr);
    assert_eq!(
        (p["agrees"].as_bool(), p["conclusive"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(p["attempts"], 3);
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("connected 3 of 3 times")),
        "{p}"
    );
    all_deleted(&api);

    // A DROP in web-1's netns the dumps do not have: the real packet times
    // out where the simulation says healthy — a disagreement, on the source.
    sh(&[
        "ip", "netns", "exec", &pods.web, "iptables", "-I", "INPUT", "-p", "tcp", "--dport",
        "8080", "-j", "DROP",
    ]);
    let api = server_with(|s| s.prober = Some(prober.clone()));
    let r = diagnose_flow(
        &api,
        dir.path(),
        SAME_NODE,
        &["--probe", "--probe-timeout", "0.5"],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let report = r.json();
    let p = &report["probe"];
    assert_eq!(p["outcome"], "timed-out", "{p}");
    assert_eq!(p["detail"], "timed out after 500 ms");
    assert_eq!(p["agrees"], false);
    let w = &report["suspicions"][0];
    assert_eq!(w["level"], "WARNING", "{w}");
    assert_eq!(w["node"], "default/client-1");
    assert!(
        w["message"]
            .as_str()
            .is_some_and(|m| m.contains("the model missed something")),
        "{w}"
    );
    all_deleted(&api);
}
