//! The policy corpus: every case under tests/corpus is an object-only bundle with its
//! expected reachability transcribed from a public suite (see tests/corpus/generate.py).
//! Each expected flow is checked with both the explained verdict and the fast matrix path.

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;

use serde_json::Value;
use skoop_netstack::packet::Protocol;
use skoop_policy::matrix::peer;
use skoop_policy::{Direction, PodInfo, PolicySet, pods_from_objects};

struct Case {
    name: String,
    set: PolicySet,
    pods: Vec<PodInfo>,
    expected: Value,
}

fn load(dir: &Path) -> Case {
    let cluster: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("cluster.json")).unwrap()).unwrap();
    let items = cluster["items"].as_array().unwrap();
    Case {
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        set: PolicySet::from_objects(items).unwrap(),
        pods: pods_from_objects(items).unwrap(),
        expected: serde_json::from_str(&fs::read_to_string(dir.join("expected.json")).unwrap())
            .unwrap(),
    }
}

fn pod<'a>(c: &'a Case, id: &str) -> &'a PodInfo {
    c.pods
        .iter()
        .find(|p| p.id() == id)
        .unwrap_or_else(|| panic!("{}: no pod {id}", c.name))
}

/// The verdict for a pod-to-pod flow, checked against the fast path; returns (allowed, text).
fn pod_flow(c: &Case, from: &str, to: &str, port: u16, proto: Protocol) -> (bool, String) {
    let (f, t) = (pod(c, from), pod(c, to));
    let v = c.set.flow(&peer(f), &peer(t), port, proto);
    let fast = (f.host_network || c.set.allowed(Direction::Egress, f, &peer(t), port, proto))
        && (t.host_network || c.set.allowed(Direction::Ingress, t, &peer(f), port, proto));
    assert_eq!(
        v.allowed, fast,
        "{}: explained and fast verdicts differ for {from} -> {to}",
        c.name
    );
    let text: Vec<String> = v
        .egress
        .iter()
        .chain(v.ingress.iter())
        .map(|d| d.explanation.clone())
        .collect();
    if !v.allowed {
        assert!(
            text.iter().any(|t| t.contains("denied")),
            "{}: a deny explains itself: {text:?}",
            c.name
        );
    }
    (v.allowed, text.join(" / "))
}

#[test]
fn corpus_cases_agree_with_their_suites() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut dirs: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let (mut cases, mut flows, mut failures) = (0, 0, Vec::new());
    for dir in &dirs {
        let c = load(dir);
        cases += 1;
        for check in c.expected["checks"].as_array().unwrap() {
            let port = check["port"].as_u64().unwrap() as u16;
            let proto = Protocol::parse_kubernetes(check["protocol"].as_str().unwrap()).unwrap();
            let mut expect = Vec::new();
            if let Some(r) = check["reachability"].as_object() {
                for (from, row) in r {
                    for (to, v) in row.as_object().unwrap() {
                        expect.push((from.clone(), to.clone(), v.as_bool().unwrap()));
                    }
                }
            }
            for f in check["pod_flows"].as_array().into_iter().flatten() {
                expect.push((
                    f["from"].as_str().unwrap().to_string(),
                    f["to"].as_str().unwrap().to_string(),
                    f["allowed"].as_bool().unwrap(),
                ));
            }
            for (from, to, want) in expect {
                flows += 1;
                let (got, why) = pod_flow(&c, &from, &to, port, proto);
                if got != want {
                    failures.push(format!(
                        "{}: {from} -> {to} {port}/{proto}: expected {want}, got {got} ({why})",
                        c.name
                    ));
                }
            }
            for f in check["ip_flows"].as_array().into_iter().flatten() {
                flows += 1;
                let ip: Ipv4Addr = f["from"].as_str().unwrap().parse().unwrap();
                let to = pod(&c, f["to"].as_str().unwrap());
                let want = f["allowed"].as_bool().unwrap();
                let v = c.set.ingress(&skoop_policy::Peer::Ip(ip), to, port, proto);
                if v.allowed != want {
                    failures.push(format!(
                        "{}: {ip} -> {} {port}/{proto}: expected {want}, got {} ({})",
                        c.name,
                        to.id(),
                        v.allowed,
                        v.explanation
                    ));
                }
            }
        }
    }
    eprintln!("policy corpus: {cases} cases, {flows} flows");
    assert!(cases >= 60, "the corpus holds at least 60 cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The explanation names what decided (issue 11 item 3), checked on corpus cases.
#[test]
fn verdicts_name_the_deciding_policy_and_nearest_misses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    // e2e-ports: x/a admits namespace y on 81/TCP only.
    let c = load(&root.join("e2e-ports"));
    let v = c
        .set
        .ingress(&peer(pod(&c, "y/a")), pod(&c, "x/a"), 81, Protocol::Tcp);
    assert!(v.allowed);
    assert!(matches!(
        &v.decision,
        skoop_policy::DecidedBy::NetworkPolicyAllow { policy, rule: 0, .. }
            if policy == "x/allow-client-a-via-ns-selector"
    ));
    let v = c
        .set
        .ingress(&peer(pod(&c, "y/a")), pod(&c, "x/a"), 80, Protocol::Tcp);
    assert!(!v.allowed);
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["decision"]["kind"], "network-policy-deny");
    assert_eq!(
        json["decision"]["policies"][0],
        "x/allow-client-a-via-ns-selector"
    );
    let miss = json["decision"]["nearest_misses"][0]["reason"]
        .as_str()
        .unwrap();
    assert!(miss.contains("port 80/TCP is not among 81/TCP"), "{miss}");
    assert!(v.explanation.contains("policy"), "{}", v.explanation);
    let v = c
        .set
        .ingress(&peer(pod(&c, "z/a")), pod(&c, "x/a"), 81, Protocol::Tcp);
    assert!(
        v.explanation.contains(
            "namespaceSelector {kubernetes.io/metadata.name=y} does not match namespace z"
        ),
        "{}",
        v.explanation
    );
    // ANP: priority and action are named.
    let c = load(&root.join("anp-priority-50-denies"));
    let g = "network-policy-conformance-gryffindor/harry-potter-0";
    let s = "network-policy-conformance-slytherin/draco-malfoy-0";
    let v = c
        .set
        .ingress(&peer(pod(&c, s)), pod(&c, g), 80, Protocol::Tcp);
    assert!(!v.allowed);
    assert!(
        v.explanation
            .contains("AdminNetworkPolicy priority-50-example (priority 50) rule 0"),
        "{}",
        v.explanation
    );
    assert!(v.explanation.contains("(Deny)"));
}

#[test]
fn decision_kind_is_the_serialised_tag() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let c = load(&root.join("anp-integration-pass-ingress-to-np"));
    for f in &c.pods {
        for t in &c.pods {
            let v = c.set.flow(&peer(f), &peer(t), 80, Protocol::Tcp);
            for d in v.egress.iter().chain(v.ingress.iter()) {
                let json = serde_json::to_value(d).unwrap();
                assert_eq!(json["decision"]["kind"], d.decision.kind());
            }
        }
    }
}
