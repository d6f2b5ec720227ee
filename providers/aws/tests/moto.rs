//! The client and the checks against a live moto_server (ignored by default).
//!
//! ```sh
//! moto_server -H 127.0.0.1 -p 5155 &
//! python3 providers/aws/src/testdata/capture.py http://127.0.0.1:5155 --auth   # last line: the key
//! SKOOP_AWS_MOTO_URL=http://127.0.0.1:5155 SKOOP_AWS_MOTO_KEY=… SKOOP_AWS_MOTO_SECRET=… \
//!     cargo test -p aws --test moto -- --ignored
//! ```
//!
//! `capture.py` builds the scenario the XML fixtures come from (and rewrites them, the same
//! but for timestamps); `--auth` turns on moto's SigV4 and IAM checking with a read-only user.

use std::io::{Read, Write};
use std::net::TcpStream;

use aws::checks::FetchError;
use aws::client::{Client, Ec2, HttpRequest, HttpResponse, Settings, Transport, TransportError};
use aws::path::{self, Cloud};
use aws::sign::Credentials;
use skoop_sdk::{EPHEMERAL_PORT, Encap, EncapKind, Level, Node, Packet, Protocol};

/// HTTP/1.1 over a plain TCP connection, for `http://` endpoints only.
struct Tcp;

impl Transport for Tcp {
    fn send(&self, r: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let fail = |e: std::io::Error| TransportError::Failed(e.to_string());
        let rest = r
            .url
            .strip_prefix("http://")
            .ok_or_else(|| TransportError::Failed("http only".into()))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut s = TcpStream::connect(authority).map_err(fail)?;
        let mut head = format!(
            "{} /{path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\ncontent-length: {}\r\n",
            r.method,
            r.body.len()
        );
        for (k, v) in &r.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).map_err(fail)?;
        s.write_all(&r.body).map_err(fail)?;
        let mut answer = vec![];
        s.read_to_end(&mut answer).map_err(fail)?;
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| TransportError::Failed("no header end".into()))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| TransportError::Failed("no status".into()))?;
        Ok(HttpResponse {
            status,
            body: body.as_bytes().to_vec(),
        })
    }
}

fn cloud(key: Option<(String, String)>) -> Option<Ec2<Tcp>> {
    let url = std::env::var("SKOOP_AWS_MOTO_URL").ok()?;
    let credentials = key.map(|(access_key_id, secret_access_key)| Credentials {
        access_key_id,
        secret_access_key,
        session_token: None,
    });
    Some(Ec2::new(Client::new(
        Settings {
            region: "us-east-1".into(),
            endpoint: Some(url),
            credentials,
        },
        Tcp,
    )))
}

fn key() -> (String, String) {
    (
        std::env::var("SKOOP_AWS_MOTO_KEY").unwrap_or_else(|_| "AKIDEXAMPLE".into()),
        std::env::var("SKOOP_AWS_MOTO_SECRET").unwrap_or_else(|_| "secret".into()),
    )
}

fn node(name: &str, ip: &str) -> Node {
    Node {
        name: name.into(),
        ip: ip.parse().unwrap(),
        pod_cidrs: vec![],
        ready: true,
        host_interface: None,
        annotations: vec![],
        labels: vec![],
        provider_id: None,
    }
}

fn tcp(src: &str, dst: &str, dport: u16) -> Packet {
    Packet {
        src: src.parse().unwrap(),
        sport: EPHEMERAL_PORT,
        dst: dst.parse().unwrap(),
        dport,
        protocol: Protocol::Tcp,
        mark: 0,
        encap: None,
        reply: false,
        tos: 0,
        size: 0,
        icmp: None,
    }
}

#[test]
#[ignore = "needs a moto_server set up by src/testdata/capture.py (SKOOP_AWS_MOTO_URL)"]
fn checks_against_moto() {
    let Some(c) = cloud(Some(key())) else {
        panic!("set SKOOP_AWS_MOTO_URL");
    };
    let n1 = node("n1", "10.0.1.10");
    let n2 = node("n2", "10.0.2.20");

    let warnings = path::prefetch(&c, &[n1.clone(), n2.clone()]);
    assert!(warnings.is_empty(), "{warnings:?}");
    let prefetched = c.client().sent().len();

    // VXLAN from n1 to n2: the custom ACL of subnet b denies the return tunnel (rule 90).
    let vxlan = Packet {
        encap: Some(Encap {
            kind: EncapKind::Vxlan,
            src: n1.ip,
            dst: n2.ip,
            vni: Some(1),
            port: Some(8472),
        }),
        ..tcp("10.244.1.5", "10.244.2.5", 80)
    };
    let u = path::node_to_node(&c, &n1, &n2, &vxlan);
    println!("{u:#?}");
    let kinds: Vec<&str> = u.hops.iter().map(|h| h.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "security-group",
            "network-acl",
            "route-table",
            "network-acl",
            "security-group"
        ]
    );
    assert_eq!(u.suspicions.len(), 1);
    assert_eq!(u.suspicions[0].level, Level::Critical);
    assert!(
        u.suspicions[0]
            .message
            .starts_with("network ACL acl-961492613d1c8816b of subnet subnet-486e94440541820d9 denies the VXLAN reply udp 10.0.2.20 -> 10.0.1.10:8472 outbound: rule 90 (deny udp 8472 to 10.0.1.0/24)"),
        "{}",
        u.suspicions[0].message
    );

    // n1 out through its internet gateway: healthy.
    let u = path::node_to_external(&c, &n1, &tcp("10.0.1.10", "8.8.8.8", 443));
    println!("{u:#?}");
    assert!(u.suspicions.is_empty(), "{:?}", u.suspicions);
    assert_eq!(
        u.hops.last().map(|h| h.kind.as_str()),
        Some("internet-gateway")
    );

    // n2 out through the NAT gateway; subnet b's ACL drops the replies.
    let u = path::node_to_external(&c, &n2, &tcp("10.0.2.20", "8.8.8.8", 443));
    println!("{u:#?}");
    assert!(u.hops.iter().any(|h| h.kind == "nat-gateway"));
    assert_eq!(u.suspicions.len(), 1, "{:?}", u.suspicions);
    assert!(u.suspicions[0].message.contains(
        "denies the reply tcp 8.8.8.8:443 -> 10.0.2.20 on ephemeral ports 1024-65535 inbound"
    ));

    // From outside to n1's public IP on ssh: healthy; on 8080: no rule.
    let public = c
        .instance_by_ip(n1.ip)
        .unwrap()
        .and_then(|i| i.public_ip)
        .unwrap();
    let u = path::external_to_node(&c, &n1, &tcp("203.0.113.7", &public.to_string(), 22));
    assert!(u.suspicions.is_empty(), "{:?}", u.suspicions);
    let u = path::external_to_node(&c, &n1, &tcp("203.0.113.7", &public.to_string(), 8080));
    assert!(u.suspicions[0].message.ends_with("(ENI_SG_RULES_MISMATCH)"));

    // Everything the checks asked was prefetched.
    assert_eq!(c.client().sent().len(), prefetched);
}

#[test]
#[ignore = "needs a moto_server with auth on (SKOOP_AWS_MOTO_URL, SKOOP_AWS_MOTO_KEY, SKOOP_AWS_MOTO_SECRET)"]
fn moto_checks_signatures() {
    let (id, secret) = key();
    let good = cloud(Some((id.clone(), secret))).expect("set SKOOP_AWS_MOTO_URL");
    assert!(
        good.instance_by_ip("10.0.1.10".parse().unwrap())
            .unwrap()
            .is_some()
    );
    let bad = cloud(Some((id, "wrong".into()))).unwrap();
    match bad.instance_by_ip("10.0.1.10".parse().unwrap()) {
        Err(FetchError::Api { code, .. }) => assert_eq!(code, "AuthFailure"),
        other => panic!("{other:?}"),
    }
    let none = cloud(None).unwrap();
    assert_eq!(
        none.instance_by_ip("10.0.1.10".parse().unwrap()),
        Err(FetchError::NoCredentials)
    );
}
