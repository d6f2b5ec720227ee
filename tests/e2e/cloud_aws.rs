//! The AWS provider against moto (a local EC2/ELBv2 emulator with SigV4 and
//! IAM checking on): the real binary diagnoses a bundle whose nodes are moto
//! instances, over the provider's sandboxed outbound HTTP. States moto cannot
//! produce (blackhole routes) come from fixtures edited into a recording,
//! which also shows record and offline replay. Expected suspicions come from
//! the scenario each test builds, not from the provider's code.
//!
//! Needs the moto venv `tests/setup` creates; `SKOOP_SKIP_CLOUD_TESTS=1`
//! skips these tests (and the venv).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cloud::{
    self, Server, assert_suspicion, bundle, cloud_lines, python, skipped, with_load_balancer,
};
use crate::common::{Run, root, skoop_env};

/// A moto_server of this test, stopped when dropped.
struct Moto(Server);

impl Moto {
    fn start() -> Moto {
        Moto(Server::start("tests/cloud/moto_server.py"))
    }

    fn endpoint(&self) -> String {
        self.0.endpoint.clone()
    }

    /// Reset moto and build `scenario`, with auth on.
    fn scenario(&self, scenario: &str) -> Value {
        python(&[
            "tests/cloud/moto_scenarios.py",
            "--endpoint",
            &self.0.endpoint,
            "--scenario",
            scenario,
            "--auth",
        ])
    }

    fn stop(&mut self) {
        self.0.stop()
    }
}

fn credentials(s: &Value) -> Vec<(&'static str, String)> {
    vec![
        (
            "AWS_ACCESS_KEY_ID",
            s["access_key_id"].as_str().unwrap().to_string(),
        ),
        (
            "AWS_SECRET_ACCESS_KEY",
            s["secret_access_key"].as_str().unwrap().to_string(),
        ),
        // Nothing of the machine's own AWS set-up may leak in.
        ("AWS_PROFILE", "skoop-test-none".to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".to_string()),
    ]
}

/// Diagnose `flow` (`src dst port [proto]`) on `dir` with the AWS provider.
fn diagnose(dir: &Path, endpoint: Option<&str>, s: &Value, flow: &str) -> Run {
    let d = dir.to_string_lossy().into_owned();
    let f: Vec<&str> = flow.split_whitespace().collect();
    let mut args = vec![
        "-v",
        "diagnose",
        "--snapshot",
        &d,
        "--cloud-provider",
        "aws",
        "--aws-region",
        "us-east-1",
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
    if let Some(e) = endpoint {
        args.extend(["--aws-endpoint-url", e]);
    }
    let env = credentials(s);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    skoop_env(&args, &env)
}

/// What AWS suspicions name; the plugin's do not.
const AWS: &[&str] = &[
    "sg-", "acl-", "rtb-", "eni-", "i-", "igw-", "nat-", "subnet-", "AWS", "aws",
];

fn aws_lines(run: &Run) -> Vec<String> {
    cloud_lines(run, AWS)
}

fn assert_quiet(run: &Run) {
    cloud::assert_quiet(run, AWS)
}

const CROSS_NODE: &str = "10.244.0.5 10.244.1.7 8080";

#[test]
fn aws_underlay_checks_against_moto() {
    if skipped() {
        return;
    }
    let moto = Moto::start();
    let ep = &moto.endpoint();

    // Healthy: VXLAN between nodes and egress through the internet gateway.
    let s = moto.scenario("healthy");
    let dir = bundle("vxlan", &s, "healthy");
    let run = diagnose(&dir, Some(ep), &s, CROSS_NODE);
    assert_quiet(&run);
    assert!(
        run.stderr.contains("http POST 127.0.0.1/ -> 200"),
        "-v logs each request: {}",
        run.stderr
    );
    assert!(
        !run.stderr
            .contains(s["secret_access_key"].as_str().unwrap())
    );
    let run = diagnose(&dir, Some(ep), &s, "10.244.0.5 1.1.1.1 443");
    assert_quiet(&run);
    // The underlay's devices are on the path, under the hop that handed the packet over.
    let report = run.json();
    let decisions = report["path"]["decisions"].as_array().unwrap();
    assert!(
        decisions.iter().any(
            |d| d["netns"].as_str().unwrap_or("").starts_with("underlay")
                && d["rules"].as_array().is_some_and(|r| r.iter().any(|x| x
                    .as_str()
                    .unwrap_or("")
                    .contains(s["ids"]["igw"].as_str().unwrap())))
        ),
        "no underlay decision naming the internet gateway: {decisions:#?}"
    );

    // The node security group admits no VXLAN.
    let s = moto.scenario("sg-blocks-vxlan");
    let dir = bundle("vxlan", &s, "sg-blocks-vxlan");
    let run = diagnose(&dir, Some(ep), &s, CROSS_NODE);
    assert_suspicion(
        &run,
        "CRITICAL",
        &[
            s["ids"]["sg_node"].as_str().unwrap(),
            "8472",
            "ENI_SG_RULES_MISMATCH",
        ],
    );
    assert_eq!(run.code, 3);

    // VXLAN and 8080 admitted by a reference to the node group itself.
    let s = moto.scenario("sg-by-group-reference");
    let dir = bundle("vxlan", &s, "sg-by-group-reference");
    assert_quiet(&diagnose(&dir, Some(ep), &s, CROSS_NODE));

    // node-3's subnet NACL denies inbound TCP 1024-65535: the reply to node-3's
    // request to the kubelet of node-1 dies there; the request itself passes.
    let s = moto.scenario("nacl-denies-ephemeral");
    let dir = bundle("vxlan", &s, "nacl-denies-ephemeral");
    let run = diagnose(&dir, Some(ep), &s, "192.168.0.13 192.168.0.11 10250");
    assert_suspicion(
        &run,
        "CRITICAL",
        &[s["ids"]["nacl"].as_str().unwrap(), "SUBNET_ACL_RESTRICTION"],
    );
    assert_eq!(run.code, 3);
    // VXLAN (UDP 8472 both ways) is admitted.
    assert_quiet(&diagnose(&dir, Some(ep), &s, "10.244.2.8 10.244.0.6 8080"));

    // Natively routed pods (host-gw): routes to the pod CIDRs and source/dest
    // check off are what AWS needs.
    let s = moto.scenario("pod-cidr-routes");
    let dir = bundle("host-gw", &s, "pod-cidr-routes");
    assert_quiet(&diagnose(&dir, Some(ep), &s, CROSS_NODE));
    let s = moto.scenario("no-route-to-pod-cidr");
    let dir = bundle("host-gw", &s, "no-route-to-pod-cidr");
    let run = diagnose(&dir, Some(ep), &s, CROSS_NODE);
    assert_suspicion(
        &run,
        "CRITICAL",
        &[s["ids"]["rtb"].as_str().unwrap(), "10.244.1.7"],
    );
    let s = moto.scenario("source-dest-check-on");
    let dir = bundle("host-gw", &s, "source-dest-check-on");
    let run = diagnose(&dir, Some(ep), &s, CROSS_NODE);
    assert_suspicion(&run, "CRITICAL", &["ENI_SOURCE_DEST_CHECK_RESTRICTION"]);

    // No route to the internet.
    let s = moto.scenario("no-egress-route");
    let dir = bundle("vxlan", &s, "no-egress-route");
    let run = diagnose(&dir, Some(ep), &s, "10.244.0.5 1.1.1.1 443");
    assert_suspicion(
        &run,
        "CRITICAL",
        &[s["ids"]["rtb"].as_str().unwrap(), "NO_ROUTE_TO_DESTINATION"],
    );
}

/// `skoop snapshot --cloud-provider aws --cloud-only` records what the checks
/// ask; with moto stopped the same diagnosis runs offline with the same
/// suspicions; a state moto cannot produce (a blackhole route) edited into the
/// recording is found; a request the recording lacks is "not recorded".
#[test]
fn aws_record_and_replay_offline() {
    if skipped() {
        return;
    }
    let mut moto = Moto::start();
    let ep = moto.endpoint();
    let s = moto.scenario("pod-cidr-routes");
    let dir = bundle("host-gw", &s, "record");
    let live = diagnose(&dir, Some(&ep), &s, CROSS_NODE);
    assert_quiet(&live);

    let d = dir.to_string_lossy().into_owned();
    let env = credentials(&s);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let rec = skoop_env(
        &[
            "snapshot",
            "-o",
            &d,
            "--cloud-provider",
            "aws",
            "--cloud-only",
            "--aws-endpoint-url",
            &ep,
            "--aws-region",
            "us-east-1",
        ],
        &env,
    );
    assert_eq!(rec.code, 0, "{}{}", rec.stdout, rec.stderr);
    let file = dir.join("cloud/aws.json");
    let text = std::fs::read_to_string(&file).expect("cloud/aws.json written");
    for secret in [
        s["secret_access_key"].as_str().unwrap(),
        "Authorization",
        "Signature=",
    ] {
        assert!(!text.contains(secret), "the recording holds {secret}");
    }
    eprintln!("recording: {} bytes", text.len());
    moto.stop();

    // Offline: no endpoint, no credentials, moto gone.
    let offline = diagnose(&dir, None, &no_credentials(), CROSS_NODE);
    assert_eq!(aws_lines(&offline), aws_lines(&live), "{}", offline.stderr);
    assert_eq!(offline.code, live.code);
    assert!(offline.stderr.contains("(recorded)"), "{}", offline.stderr);

    // A blackhole route, which moto cannot produce, edited into the recording.
    let mut recording: Value = serde_json::from_str(&text).unwrap();
    let blackhole = std::fs::read_to_string(
        root().join("tests/cloud/fixtures/describe_route_tables_blackhole.xml"),
    )
    .unwrap();
    let mut edited = false;
    for e in recording["exchanges"].as_array_mut().unwrap() {
        if e["request_body"]
            .as_str()
            .unwrap_or("")
            .contains("Action=DescribeRouteTables")
        {
            e["body"] = Value::String(blackhole.clone());
            edited = true;
        }
    }
    assert!(edited, "the recording has no DescribeRouteTables exchange");
    std::fs::write(&file, serde_json::to_string_pretty(&recording).unwrap()).unwrap();
    let run = diagnose(&dir, None, &no_credentials(), CROSS_NODE);
    assert_suspicion(&run, "CRITICAL", &["10.244.1.0/24", "BAD_STATE_ROUTE"]);

    // A recording without the answers: "cannot check (not recorded)", a warning, never healthy silence.
    recording["exchanges"] = Value::Array(vec![]);
    std::fs::write(&file, serde_json::to_string(&recording).unwrap()).unwrap();
    let run = diagnose(&dir, None, &no_credentials(), CROSS_NODE);
    assert_suspicion(&run, "WARNING", &["not recorded"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Replace the answer to every recorded request for `action` with `fixture`.
fn answer_with(recording: &mut Value, action: &str, fixture: &str) {
    let body = std::fs::read_to_string(root().join("tests/cloud/fixtures").join(fixture)).unwrap();
    let mut edited = false;
    for e in recording["exchanges"].as_array_mut().unwrap() {
        let request = e["request_body"].as_str().unwrap_or("");
        if request.contains(&format!("Action={action}&"))
            || request.ends_with(&format!("Action={action}"))
        {
            e["body"] = Value::String(body.clone());
            edited = true;
        }
    }
    assert!(edited, "the recording has no {action} exchange");
}

/// Record `scenario` from moto into a copy of the vxlan bundle whose
/// Service default/web-nodeport is a LoadBalancer at the NLB's address.
fn record_load_balancer(scenario: &str) -> (PathBuf, Value) {
    let mut moto = Moto::start();
    let s = moto.scenario(scenario);
    let dir = bundle("vxlan", &s, scenario);
    with_load_balancer(&dir, NLB_ADDRESS);
    let d = dir.to_string_lossy().into_owned();
    let env = credentials(&s);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ep = moto.endpoint();
    let rec = skoop_env(
        &[
            "snapshot",
            "-o",
            &d,
            "--cloud-provider",
            "aws",
            "--cloud-only",
            "--aws-endpoint-url",
            &ep,
            "--aws-region",
            "us-east-1",
        ],
        &env,
    );
    assert_eq!(rec.code, 0, "{}{}", rec.stdout, rec.stderr);
    moto.stop();
    // moto creates no ENI for a load balancer: the recorded answer gets the
    // NLB's, as AWS lists it (tests/cloud/fixtures/README.md).
    let path = dir.join("cloud/aws.json");
    let mut recording: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    answer_with(
        &mut recording,
        "DescribeNetworkInterfaces",
        "describe_network_interfaces_nlb_eni.xml",
    );
    std::fs::write(&path, serde_json::to_string_pretty(&recording).unwrap()).unwrap();
    (dir, recording)
}

/// The NLB's public address in the fixture.
const NLB_ADDRESS: &str = "54.214.0.100";

/// A client on the internet calls a Service's network load balancer: healthy
/// targets pass; an unhealthy target (a state moto cannot produce, from a
/// fixture) and a missing listener are named with the resource.
#[test]
fn aws_load_balancer_from_outside() {
    if skipped() {
        return;
    }
    let flow = &format!("203.0.113.9 {NLB_ADDRESS} 80");
    let (dir, mut recording) = record_load_balancer("elb-healthy");
    let run = diagnose(&dir, None, &no_credentials(), flow);
    assert_quiet(&run);
    let links = run.json()["path"]["links"].clone();
    assert!(
        links
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["type"] == "external"
                && l["packet"]["dport"] == 30080
                && l["packet"]["dst"] == "192.168.0.12"),
        "the NLB hands node-2 the packet at its NodePort: {links:#}"
    );

    answer_with(
        &mut recording,
        "DescribeTargetHealth",
        "describe_target_health_unhealthy.xml",
    );
    std::fs::write(
        dir.join("cloud/aws.json"),
        serde_json::to_string(&recording).unwrap(),
    )
    .unwrap();
    let run = diagnose(&dir, None, &no_credentials(), flow);
    assert_suspicion(
        &run,
        "CRITICAL",
        &[
            "i-da2cedbb2cdec1546",
            "unhealthy",
            "Target.FailedHealthChecks",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);

    let (dir, _) = record_load_balancer("elb-listener-missing");
    let run = diagnose(&dir, None, &no_credentials(), flow);
    assert_suspicion(
        &run,
        "CRITICAL",
        &["no listener", "ELBV2_LISTENERS_MISMATCH"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Offline runs get no credentials at all.
fn no_credentials() -> Value {
    serde_json::json!({"access_key_id": "", "secret_access_key": ""})
}
