//! The Alibaba Cloud provider against `tests/cloud/aliyun_fake.py` (a local
//! fake of the ECS, VPC and SLB RPC APIs that verifies ACS3-HMAC-SHA256
//! signatures): the real binary diagnoses a bundle whose nodes are the
//! fake's instances, over the provider's sandboxed outbound HTTP, and a
//! recording made by `skoop snapshot` answers the same diagnosis offline.
//! Expected suspicions come from the scenario each test loads
//! (`tests/cloud/aliyun_scenarios.py`), not from the provider's code.
//!
//! Needs only `python3`; `SKOOP_SKIP_CLOUD_TESTS=1` skips these tests.

use std::path::Path;

use serde_json::Value;

use crate::cloud::{
    self, Server, assert_suspicion, bundle as cloud_bundle, cloud_lines, python, skipped,
    with_load_balancer,
};
use crate::common::{Run, skoop_env};

/// An aliyun_fake server of this test, stopped when dropped.
struct Fake(Server);

impl Fake {
    fn start() -> Fake {
        Fake(Server::start("tests/cloud/aliyun_fake.py"))
    }

    fn endpoint(&self) -> String {
        self.0.endpoint.clone()
    }

    /// Load `scenario` into the fake; its summary (keys, nodes, ids).
    fn scenario(&self, scenario: &str) -> Value {
        python(&[
            "tests/cloud/aliyun_scenarios.py",
            "--endpoint",
            &self.0.endpoint,
            "--scenario",
            scenario,
        ])
    }

    fn stop(&mut self) {
        self.0.stop()
    }
}

/// A copy of fixture bundle `base` whose nodes are the fake's instances
/// (`spec.providerID` `<region>.<instanceId>`, as on ACK).
fn bundle(base: &str, s: &Value, name: &str) -> std::path::PathBuf {
    cloud_bundle(base, s, &format!("aliyun-{name}"))
}

fn credentials(id: &str, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", id.to_string()),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret.to_string()),
        // Nothing of the machine's own Alibaba Cloud set-up may leak in.
        ("ALIBABA_CLOUD_SECURITY_TOKEN", String::new()),
        ("ALIBABA_CLOUD_PROFILE", "skoop-test-none".to_string()),
        ("ALIBABA_CLOUD_CREDENTIALS_FILE", "/nonexistent".to_string()),
    ]
}

fn scenario_credentials(s: &Value) -> Vec<(&'static str, String)> {
    credentials(
        s["access_key_id"].as_str().unwrap(),
        s["access_key_secret"].as_str().unwrap(),
    )
}

/// Diagnose `flow` (`src dst port [proto]`) on `dir` with the Aliyun provider.
fn diagnose(dir: &Path, endpoint: &str, env: &[(&'static str, String)], flow: &str) -> Run {
    let d = dir.to_string_lossy().into_owned();
    let f: Vec<&str> = flow.split_whitespace().collect();
    let args = vec![
        "-v",
        "diagnose",
        "--snapshot",
        &d,
        "--cloud-provider",
        "aliyun",
        "--aliyun-endpoint-url",
        endpoint,
        "--aliyun-region",
        "cn-hangzhou",
        "-s",
        f[0],
        "-d",
        f[1],
        "-p",
        f[2],
        "--protocol",
        f.get(3).copied().unwrap_or("tcp"),
        "--format",
        "json",
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = skoop_env(&args, &env);
    for (_, v) in &env {
        if v.len() > 20 {
            assert!(
                !run.stdout.contains(v) && !run.stderr.contains(v),
                "a credential leaked into the output:\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
    }
    run
}

/// The report of a run, checked against docs/report.schema.json.
fn report(run: &Run) -> Value {
    run.json()
}

/// What Alibaba Cloud suspicions name; the plugin's do not.
const ALIYUN: &[&str] = &[
    "sg-", "vtb-", "vsw-", "ngw-", "i-bp1", "lb-", "Alibaba", "aliyun", "CLB",
];

fn aliyun_lines(run: &Run) -> Vec<String> {
    cloud_lines(run, ALIYUN)
}

fn assert_quiet(run: &Run) {
    cloud::assert_quiet(run, ALIYUN)
}

fn id<'a>(s: &'a Value, key: &str) -> &'a str {
    s["ids"][key].as_str().unwrap()
}

fn instance<'a>(s: &'a Value, node: &str) -> &'a str {
    s["nodes"][node]["instance_id"].as_str().unwrap()
}

const CROSS_NODE: &str = "10.244.0.5 10.244.1.7 8080";
const EXTERNAL: &str = "10.244.0.5 1.1.1.1 443";

#[test]
fn aliyun_underlay_checks_against_the_fake() {
    if skipped() {
        return;
    }
    let fake = Fake::start();
    let ep = &fake.endpoint();

    // Healthy: VXLAN between nodes in one basic group; egress by SNAT.
    let s = fake.scenario("healthy");
    let env = scenario_credentials(&s);
    let vxlan = bundle("vxlan", &s, "healthy");
    let run = diagnose(&vxlan, ep, &env, CROSS_NODE);
    assert_quiet(&run);
    assert!(
        run.stderr.contains("http POST 127.0.0.1/ -> 200"),
        "-v logs each request: {}",
        run.stderr
    );
    let run = diagnose(&vxlan, ep, &env, EXTERNAL);
    assert_quiet(&run);
    // The underlay's devices are on the path, under the hop that handed the packet over.
    let report = report(&run);
    let decisions = report["path"]["decisions"].as_array().unwrap();
    assert!(
        decisions.iter().any(
            |d| d["netns"].as_str().unwrap_or("").starts_with("underlay")
                && d["rules"].as_array().is_some_and(|r| r
                    .iter()
                    .any(|x| x.as_str().unwrap_or("").contains(id(&s, "nat_gateway"))))
        ),
        "no underlay decision naming the NAT gateway: {decisions:#?}"
    );
    // Natively routed pods: the VPC routes each pod CIDR to its node.
    let hostgw = bundle("host-gw", &s, "healthy-host-gw");
    assert_quiet(&diagnose(&hostgw, ep, &env, CROSS_NODE));

    // The node group drops VXLAN (a drop beats an accept of the same priority).
    let s = fake.scenario("sg-blocks-vxlan");
    let run = diagnose(&vxlan, ep, &env, CROSS_NODE);
    assert_suspicion(
        &run,
        "FATAL",
        &[
            id(&s, "sg"),
            instance(&s, "node-2"),
            "8472",
            "drop udp 8472/8472",
        ],
    );
    assert_ne!(run.code, 0);
    // Natively routed pods are no VXLAN: they pass.
    assert_quiet(&diagnose(&hostgw, ep, &env, CROSS_NODE));

    // Different groups that admit each other by group id: healthy.
    fake.scenario("sg-allows-by-group-id");
    assert_quiet(&diagnose(&vxlan, ep, &env, CROSS_NODE));

    // Different groups and no rule: the block is found.
    let s = fake.scenario("no-common-sg-but-blocked");
    let run = diagnose(&vxlan, ep, &env, CROSS_NODE);
    assert_suspicion(
        &run,
        "FATAL",
        &[
            id(&s, "sg_b"),
            instance(&s, "node-2"),
            "no inbound rule",
            "8472",
        ],
    );

    // host-gw: node-2's pod CIDR has no route (the default route takes it to the NAT gateway).
    let s = fake.scenario("route-missing-pod-cidr");
    let run = diagnose(&hostgw, ep, &env, CROSS_NODE);
    assert_suspicion(
        &run,
        "FATAL",
        &[
            id(&s, "route_table"),
            "no route entry for 10.244.1.7",
            instance(&s, "node-2"),
        ],
    );
    // VXLAN does not need it.
    assert_quiet(&diagnose(&vxlan, ep, &env, CROSS_NODE));

    // host-gw: node-2's pod CIDR routed to node-3.
    let s = fake.scenario("route-wrong-next-hop");
    let run = diagnose(&hostgw, ep, &env, CROSS_NODE);
    assert_suspicion(
        &run,
        "FATAL",
        &[
            id(&s, "route_table"),
            id(&s, "route_node_2"),
            instance(&s, "node-3"),
            instance(&s, "node-2"),
        ],
    );

    // A SNAT entry for the VPC CIDR covers the node.
    fake.scenario("snat-by-vpc-cidr");
    assert_quiet(&diagnose(&vxlan, ep, &env, EXTERNAL));

    // No SNAT entry and no EIP.
    let s = fake.scenario("no-snat");
    let run = diagnose(&vxlan, ep, &env, EXTERNAL);
    assert_suspicion(
        &run,
        "FATAL",
        &[
            id(&s, "nat_gateway"),
            id(&s, "snat_table"),
            "no SNAT entry for source 192.168.0.11",
        ],
    );
    assert_ne!(run.code, 0);

    // A wrong secret: the fake rejects the signature; a warning naming the API, no verdict.
    fake.scenario("healthy");
    let wrong = credentials(
        s["access_key_id"].as_str().unwrap(),
        "skoopWrongSecret0000000000000000",
    );
    let run = diagnose(&vxlan, ep, &wrong, CROSS_NODE);
    assert_suspicion(
        &run,
        "WARNING",
        &[
            "cannot check",
            "ECS DescribeInstances: SignatureDoesNotMatch",
        ],
    );
    assert!(
        aliyun_lines(&run).iter().all(|l| l.starts_with("WARNING")),
        "{:?}",
        aliyun_lines(&run)
    );

    // No credentials at all: one warning naming the flags and variables.
    let none = credentials("", "");
    let run = diagnose(&vxlan, ep, &none, CROSS_NODE);
    assert_suspicion(
        &run,
        "WARNING",
        &[
            "no credentials",
            "--aliyun-access-key-id",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        ],
    );
    let _ = std::fs::remove_dir_all(&vxlan);
    let _ = std::fs::remove_dir_all(&hostgw);
}

/// A client on the internet calls the Service's CLB: the CLB's listener,
/// vServer group and health are checked, and the CLB hands the packet to
/// each node's NodePort, which kube-proxy's rules (from the node dumps)
/// carry to a backend pod.
#[test]
fn aliyun_load_balancer_from_outside() {
    if skipped() {
        return;
    }
    let fake = Fake::start();
    let ep = &fake.endpoint();
    let flow = "203.0.113.9 47.96.200.1 80";

    let s = fake.scenario("healthy");
    let dir = bundle("vxlan", &s, "clb-healthy");
    with_load_balancer(&dir, "47.96.200.1");
    let run = diagnose(&dir, ep, &scenario_credentials(&s), flow);
    assert_quiet(&run);
    let report = report(&run);
    let decisions = report["path"]["decisions"].as_array().unwrap();
    assert!(
        decisions
            .iter()
            .any(|d| d["netns"] == "underlay from the outside"
                && d["rules"].as_array().is_some_and(|r| r
                    .iter()
                    .any(|x| x.as_str().unwrap_or("").contains(id(&s, "lb"))))),
        "no underlay decision naming the CLB: {decisions:#?}"
    );
    // Each node receives the packet at its NodePort and serves it through a pod.
    let links = report["path"]["links"].as_array().unwrap();
    assert!(
        links.iter().any(|l| l["type"] == "external"
            && l["packet"]["dport"] == 30080
            && l["packet"]["dst"] == "192.168.0.12"),
        "{links:#?}"
    );

    let s = fake.scenario("clb-listener-stopped");
    let run = diagnose(&dir, ep, &scenario_credentials(&s), flow);
    assert_suspicion(&run, "FATAL", &[id(&s, "lb"), "stopped"]);

    let s = fake.scenario("clb-backend-unhealthy");
    let run = diagnose(&dir, ep, &scenario_credentials(&s), flow);
    assert_suspicion(&run, "WARNING", &[instance(&s, "node-2")]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `skoop snapshot --cloud-provider aliyun --cloud-only` records what the
/// checks ask; with the fake stopped, the same diagnoses run offline with
/// the same suspicions and no credentials; a request the recording lacks is
/// "not recorded".
#[test]
fn aliyun_record_and_replay_offline() {
    if skipped() {
        return;
    }
    let mut fake = Fake::start();
    let ep = fake.endpoint();
    let s = fake.scenario("route-wrong-next-hop");
    let env = scenario_credentials(&s);
    let dir = bundle("host-gw", &s, "record");
    let live = diagnose(&dir, &ep, &env, CROSS_NODE);
    let live_out = diagnose(&dir, &ep, &env, EXTERNAL);
    assert!(!aliyun_lines(&live).is_empty());

    let d = dir.to_string_lossy().into_owned();
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let rec = skoop_env(
        &[
            "snapshot",
            "-o",
            &d,
            "--cloud-provider",
            "aliyun",
            "--cloud-only",
            "--aliyun-endpoint-url",
            &ep,
            "--aliyun-region",
            "cn-hangzhou",
        ],
        &envs,
    );
    assert_eq!(rec.code, 0, "{}{}", rec.stdout, rec.stderr);
    let file = dir.join("cloud/aliyun.json");
    let text = std::fs::read_to_string(&file).expect("cloud/aliyun.json written");
    for secret in [
        s["access_key_secret"].as_str().unwrap(),
        s["access_key_id"].as_str().unwrap(),
        "authorization",
        "Signature=",
    ] {
        assert!(!text.contains(secret), "the recording holds {secret}");
    }
    eprintln!("recording: {} bytes", text.len());
    fake.stop();

    // Offline: the fake is gone and there are no credentials.
    let none = credentials("", "");
    let offline = diagnose(&dir, &ep, &none, CROSS_NODE);
    assert_eq!(
        aliyun_lines(&offline),
        aliyun_lines(&live),
        "{}",
        offline.stderr
    );
    assert_eq!(offline.code, live.code);
    assert!(offline.stderr.contains("(recorded)"), "{}", offline.stderr);
    let offline_out = diagnose(&dir, &ep, &none, EXTERNAL);
    assert_eq!(
        aliyun_lines(&offline_out),
        aliyun_lines(&live_out),
        "{}",
        offline_out.stderr
    );

    // A recording without the answers: "cannot check (not recorded)", a warning, never healthy silence.
    let mut recording: Value = serde_json::from_str(&text).unwrap();
    recording["exchanges"] = Value::Array(vec![]);
    std::fs::write(&file, serde_json::to_string(&recording).unwrap()).unwrap();
    let run = diagnose(&dir, &ep, &none, CROSS_NODE);
    assert_suspicion(&run, "WARNING", &["not recorded"]);
    let _ = std::fs::remove_dir_all(&dir);
}
