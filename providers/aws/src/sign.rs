//! AWS Signature Version 4, computed in the guest with the `aws-sigv4` crate.

use std::time::SystemTime;

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

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

/// The headers that sign a request: `x-amz-date`, `authorization` and, with a
/// session token, `x-amz-security-token`. `headers` are the request's own
/// (they are signed too); the host is taken from `url`.
pub fn sign_request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    credentials: &Credentials,
    scope: Scope<'_>,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let identity: Identity = AwsCredentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
        credentials.session_token.clone(),
        None,
        "skoop",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into();
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("cannot sign the request to {}: {e}", host_of(url)))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| format!("cannot sign the request to {}: {e}", host_of(url)))?
        .into_parts();
    let (signed, _params) = instructions.into_parts();
    Ok(signed
        .iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect())
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
