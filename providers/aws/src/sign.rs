//! AWS Signature Version 4, computed in the guest over HMAC-SHA256 (the
//! crates the Aliyun provider's signer uses too; the `aws-sigv4` crate
//! would pull in some fifty more, compiled three times in a CI run).
//! Checked against AWS's published test suite and by moto, which
//! recomputes every signature with botocore.

use std::time::SystemTime;

use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// An access key, and the session token of temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(** redacted **)")
    }
}

impl Credentials {
    /// Blank every credential out of `text`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in [
            Some(&self.secret_access_key),
            self.session_token.as_ref(),
            Some(&self.access_key_id),
        ]
        .into_iter()
        .flatten()
        {
            if secret.len() >= 4 {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }
}

/// Where a signature is valid: the region and the service's signing name.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// RFC 3986 unreserved characters stay; the rest is `%XX`, as SigV4 wants.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The canonical query: each `k=v` re-encoded, sorted.
fn canonical_query(query: &str) -> String {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                utf8_percent_encode(&decode(k), UNRESERVED).to_string(),
                utf8_percent_encode(&decode(v), UNRESERVED).to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The headers that sign a request (AWS Signature Version 4): `x-amz-date`,
/// `authorization` and, with a session token, `x-amz-security-token`.
/// `headers` are the request's own (they are signed too); the `host` header
/// is the URL's authority, as the transport sends it.
pub fn sign_request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    credentials: &Credentials,
    scope: Scope<'_>,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| format!("cannot sign the request: {url} is not an absolute URL"))?;
    let authority = host_of(url);
    let after = &rest[authority.len()..];
    let (path, query) = match after.split_once('?') {
        Some((p, q)) => (p, q),
        None => (after, ""),
    };
    let path = if path.is_empty() { "/" } else { path };
    let (y, mo, d, h, mi, sec) = skoop_sdk::underlay::utc(time);
    let date = format!("{y:04}{mo:02}{d:02}");
    let amz_date = format!("{date}T{h:02}{mi:02}{sec:02}Z");
    let mut signed: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .filter(|(k, _)| k != "host" && k != "authorization")
        .collect();
    signed.push(("host".into(), authority.to_string()));
    signed.push(("x-amz-date".into(), amz_date.clone()));
    if let Some(token) = &credentials.session_token {
        signed.push(("x-amz-security-token".into(), token.clone()));
    }
    signed.sort();
    let canonical_headers: String = signed.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = signed
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{method}\n{path}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        canonical_query(query),
        sha256_hex(body)
    );
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{credential_scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let mut key = hmac(
        format!("AWS4{}", credentials.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [scope.region, scope.service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    let mut out = vec![
        ("x-amz-date".to_string(), amz_date),
        (
            "authorization".to_string(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
                credentials.access_key_id
            ),
        ),
    ];
    if let Some(token) = &credentials.session_token {
        out.push(("x-amz-security-token".to_string(), token.clone()));
    }
    Ok(out)
}

/// The host (and port) of a URL, for messages.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn example() -> Credentials {
        // The credentials of AWS's published SigV4 test suite.
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    /// 2015-08-30T12:36:00Z, the time of the test suite.
    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
        h.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn known_answer_get_vanilla() {
        // aws-sig-v4-test-suite/get-vanilla: GET / on example.amazonaws.com.
        let h = sign_request(
            "GET",
            "https://example.amazonaws.com/",
            &[],
            b"",
            &example(),
            Scope {
                region: "us-east-1",
                service: "service",
            },
            suite_time(),
        )
        .unwrap();
        assert_eq!(header(&h, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            header(&h, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
        assert_eq!(header(&h, "x-amz-security-token"), None);
    }

    #[test]
    fn ec2_form_post_signs_content_type_and_session_token() {
        let mut c = example();
        c.session_token = Some("TOKEN/with+chars==".into());
        let h = sign_request(
            "POST",
            "http://127.0.0.1:5155/",
            &[(
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            )],
            b"Action=DescribeVpcs&Version=2016-11-15",
            &c,
            Scope {
                region: "eu-west-1",
                service: "ec2",
            },
            suite_time(),
        )
        .unwrap();
        let auth = header(&h, "authorization").unwrap();
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
        ));
        let sig = auth.rsplit("Signature=").next().unwrap();
        assert_eq!(sig.len(), 64);
        assert!(sig.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            header(&h, "x-amz-security-token"),
            Some("TOKEN/with+chars==")
        );
        // The secret never appears.
        assert!(h.iter().all(|(_, v)| !v.contains(&c.secret_access_key)));
        // A different body, a different signature.
        let h2 = sign_request(
            "POST",
            "http://127.0.0.1:5155/",
            &[(
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            )],
            b"Action=DescribeVpcs&Version=2016-11-15&VpcId.1=vpc-1",
            &c,
            Scope {
                region: "eu-west-1",
                service: "ec2",
            },
            suite_time(),
        )
        .unwrap();
        assert_ne!(header(&h2, "authorization"), Some(auth));
    }

    #[test]
    fn redaction_and_debug() {
        let c = example();
        assert_eq!(format!("{c:?}"), "Credentials(** redacted **)");
        assert_eq!(
            c.redact("key AKIDEXAMPLE secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            "key *** secret ***"
        );
        assert_eq!(
            host_of("https://ec2.us-east-1.amazonaws.com/"),
            "ec2.us-east-1.amazonaws.com"
        );
        assert_eq!(host_of("http://127.0.0.1:5155"), "127.0.0.1:5155");
    }
}
