//! Outbound HTTP of cloud providers (`wasi:http/outgoing-handler`), sandboxed:
//! only to the hosts the provider declares (and the endpoints the user gives
//! it), never to a loopback, link-local or metadata address unless a
//! user-given endpoint names it (checked on the resolved addresses, and the
//! connection goes to the address checked), with capped timeouts that also
//! respect the call's deadline, and capped sizes. Each exchange can be
//! recorded (credentials stripped) and replayed offline.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::text::Secrets;

/// Caps of one request: how long to connect and to wait for the answer,
/// and how large an answer may be.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_RESPONSE_BYTES: usize = 16 << 20;
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Request headers never recorded: they carry credentials.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "x-amz-security-token",
    "x-acs-security-token",
    "x-acs-accesskey-id",
];

/// One request and its answer, as a bundle's `cloud/<name>.json` holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Exchange {
    pub method: String,
    pub url: String,
    /// The request body (cloud query APIs send form or JSON text).
    pub request_body: String,
    /// Request headers other than credentials, for the reader.
    #[serde(default)]
    pub request_headers: Vec<(String, String)>,
    pub status: u16,
    #[serde(default)]
    pub content_type: Option<String>,
    pub body: String,
}

/// A provider's recorded exchanges.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Recording {
    pub provider: String,
    pub exchanges: Vec<Exchange>,
}

/// Request headers that name the operation in RPC-style cloud APIs (the
/// action may travel in a header, not the URL or body): part of what a
/// recorded exchange must match.
const OPERATION_HEADERS: &[&str] = &["x-acs-action", "x-acs-version", "x-amz-target"];

fn operation(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut op: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, _)| OPERATION_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    op.sort_unstable();
    op
}

/// `/path?query` of an absolute URL.
fn path_and_query(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find(['/', '?']) {
        Some(i) => &rest[i..],
        None => "/",
    }
}

impl Recording {
    fn find(
        &self,
        method: &str,
        url: &str,
        body: &str,
        headers: &[(String, String)],
    ) -> Option<&Exchange> {
        let op = operation(headers);
        // The endpoint may differ between recording and replay (recorded
        // through a private endpoint, replayed without one): path, query,
        // body and operation identify a request.
        let target = path_and_query(url);
        self.exchanges.iter().find(|e| {
            e.method == method
                && path_and_query(&e.url) == target
                && e.request_body == body
                && operation(&e.request_headers) == op
        })
    }
}

/// Where answers come from.
#[derive(Clone, Default)]
pub enum Mode {
    /// No outbound HTTP: every request is refused.
    #[default]
    Off,
    /// Ask the cloud; keep the exchanges when a recording is given.
    Live(Option<Arc<Mutex<Recording>>>),
    /// Answer from a recording; a request it lacks is "not recorded".
    Replay(Arc<Recording>),
}

/// The `wasi:http` hooks of one provider instance.
#[derive(Default)]
pub struct Egress {
    /// The provider's name, for logs.
    pub name: String,
    /// Host globs the provider declares.
    pub hosts: Vec<String>,
    /// Hosts of endpoints the user gave (`--<name>-endpoint-url`): allowed,
    /// even at a loopback or private address.
    pub endpoints: Vec<String>,
    pub mode: Mode,
    /// Log each request to stderr (`-v`).
    pub verbose: bool,
    /// When the current call into the extension must end.
    pub(crate) deadline: Option<Instant>,
    /// Blanked out of what is logged and recorded.
    pub(crate) secrets: Secrets,
}

/// A host glob: labels compared one by one, `*` is one whole label, except
/// that a leading `*` stands for one or more labels.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let pattern = pattern.to_ascii_lowercase();
    let p: Vec<&str> = pattern.split('.').collect();
    let h: Vec<&str> = host.split('.').collect();
    let same = |p: &[&str], h: &[&str]| p.iter().zip(h).all(|(p, h)| *p == "*" || p == h);
    match p.split_first() {
        Some((&"*", rest)) if h.len() > rest.len() => same(rest, &h[h.len() - rest.len()..]),
        Some((&"*", _)) => false,
        _ => p.len() == h.len() && same(&p, &h),
    }
}

/// Addresses a provider may not reach through a declared name: the host
/// itself, link-local (cloud metadata services live there) and the metadata
/// addresses of the clouds that use others.
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                // Alibaba Cloud's metadata service.
                || v4 == Ipv4Addr::new(100, 100, 100, 200)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unicast_link_local()
                // AWS's IPv6 metadata service.
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || v6.to_ipv4_mapped().is_some_and(|v4| forbidden(IpAddr::V4(v4)))
        }
    }
}

type Answer = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl Egress {
    fn allowed(&self, host: &str) -> bool {
        self.endpoints.iter().any(|e| e.eq_ignore_ascii_case(host))
            || self.hosts.iter().any(|p| host_matches(p, host))
    }

    /// The time left of the current call, within `cap`.
    fn budget(&self, cap: Duration) -> Duration {
        match self.deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(cap),
            None => cap,
        }
    }

    fn log(&self, method: &str, host: &str, path: &str, outcome: &str, started: Instant) {
        if self.verbose {
            eprintln!(
                "skoop: {}: http {method} {host}{} -> {outcome} ({} ms)",
                self.name,
                self.secrets.redact(path),
                started.elapsed().as_millis()
            );
        }
    }
}

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = Answer> + Send> {
        let started = Instant::now();
        let method = request.method().to_string();
        let uri = request.uri().clone();
        let host = uri.host().unwrap_or("").to_string();
        let path = uri.path().to_string();
        if !self.allowed(&host) {
            self.log(
                &method,
                &host,
                &path,
                "refused: not a declared host",
                started,
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let connect = self.budget(CONNECT_TIMEOUT);
        let respond = self.budget(RESPONSE_TIMEOUT);
        let user_endpoint = self.endpoints.iter().any(|e| e.eq_ignore_ascii_case(&host));
        let mode = self.mode.clone();
        let name = self.name.clone();
        let verbose = self.verbose;
        let secrets = self.secrets.clone();
        let redact = move |s: &str| secrets.redact(s);
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let body = Limited::new(body, MAX_REQUEST_BYTES)
                .collect()
                .await
                .map_err(|_| HttpError::HttpRequestBodySize(None))?
                .to_bytes();
            let url = uri.to_string();
            let request_body = String::from_utf8_lossy(&body).into_owned();
            let headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .filter(|(k, _)| !CREDENTIAL_HEADERS.contains(&k.as_str()))
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        redact(&String::from_utf8_lossy(v.as_bytes())),
                    )
                })
                .collect();
            let outcome = match &mode {
                Mode::Off => Err(HttpError::HttpRequestDenied),
                Mode::Replay(rec) => match rec.find(&method, &url, &request_body, &headers) {
                    Some(e) => Ok((
                        e.status,
                        e.content_type.clone(),
                        Bytes::from(e.body.clone()),
                    )),
                    None => Err(HttpError::InternalError(Some(format!(
                        "not recorded: {method} {host}{path}"
                    )))),
                },
                Mode::Live(record) => {
                    let sent = send(&parts, body, &uri, connect, respond, user_endpoint).await;
                    if let (Ok((status, ct, bytes)), Some(rec)) = (&sent, record) {
                        let exchange = Exchange {
                            method: method.clone(),
                            url: redact(&url),
                            request_body: redact(&request_body),
                            request_headers: headers.clone(),
                            status: *status,
                            content_type: ct.clone(),
                            body: redact(&String::from_utf8_lossy(bytes)),
                        };
                        let mut r = rec
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        if !r.exchanges.contains(&exchange) {
                            r.exchanges.push(exchange);
                        }
                    }
                    sent
                }
            };
            if verbose {
                let said = match &outcome {
                    Ok((status, ..)) => status.to_string(),
                    Err(e) => format!("error: {e}"),
                };
                let from = if matches!(mode, Mode::Replay(_)) {
                    " (recorded)"
                } else {
                    ""
                };
                eprintln!(
                    "skoop: {name}: http {method} {host}{} -> {said}{from} ({} ms)",
                    redact(&path),
                    started.elapsed().as_millis()
                );
            }
            let (status, content_type, bytes) = outcome?;
            let mut response = http::Response::builder().status(status);
            if let Some(ct) = content_type {
                response = response.header(http::header::CONTENT_TYPE, ct);
            }
            let response = response
                .body(
                    Full::new(bytes)
                        .map_err(|never| match never {})
                        .boxed_unsync(),
                )
                .map_err(|e| HttpError::InternalError(Some(e.to_string())))?;
            let io: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .unwrap_or_else(|_| {
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                }),
            )
        })
        .clone()
}

/// Resolve, check every address, connect to a checked one, send, and read
/// the whole answer within the caps: (status, content type, body).
async fn send(
    parts: &http::request::Parts,
    body: Bytes,
    uri: &http::Uri,
    connect: Duration,
    respond: Duration,
    user_endpoint: bool,
) -> wasmtime_wasi_http::Result<(u16, Option<String>, Bytes)> {
    let host = uri.host().ok_or(HttpError::HttpRequestUriInvalid)?;
    let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(connect, tokio::net::lookup_host((bare, port)))
            .await
            .map_err(|_| HttpError::DnsTimeout)?
            .map_err(|_| HttpError::DestinationNotFound)?
            .collect(),
    };
    let addr = addrs
        .iter()
        .find(|a| user_endpoint || !forbidden(a.ip()))
        .copied()
        .ok_or(if addrs.is_empty() {
            HttpError::DestinationNotFound
        } else {
            HttpError::DestinationIpProhibited
        })?;
    let stream = tokio::time::timeout(connect, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(|_| HttpError::ConnectionRefused)?;
    let mut request = http::Request::builder()
        .method(parts.method.clone())
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()));
    for (k, v) in &parts.headers {
        request = request.header(k, v);
    }
    if !parts.headers.contains_key(http::header::HOST) {
        let authority = uri.authority().map_or(host.to_string(), |a| a.to_string());
        request = request.header(http::header::HOST, authority);
    }
    let request = request
        .body(Full::new(body))
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let exchange = async {
        let response = if tls {
            let name = rustls::pki_types::ServerName::try_from(bare.to_string())
                .map_err(|_| HttpError::HttpRequestUriInvalid)?;
            let stream = tokio_rustls::TlsConnector::from(tls_config())
                .connect(name, stream)
                .await
                .map_err(|_| HttpError::TlsProtocolError)?;
            exchange(TokioIo::new(stream), request).await?
        } else {
            exchange(TokioIo::new(stream), request).await?
        };
        Ok::<_, HttpError>(response)
    };
    tokio::time::timeout(respond, exchange)
        .await
        .map_err(|_| HttpError::HttpResponseTimeout)?
}

async fn exchange<I>(
    io: I,
    request: http::Request<Full<Bytes>>,
) -> wasmtime_wasi_http::Result<(u16, Option<String>, Bytes)>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|_| HttpError::HttpProtocolError)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|_| HttpError::HttpResponseIncomplete)?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|_| HttpError::HttpResponseBodySize(None))?
        .to_bytes();
    Ok((status, content_type, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_globs_match_whole_labels() {
        assert!(host_matches(
            "ec2.*.amazonaws.com",
            "ec2.us-east-1.amazonaws.com"
        ));
        assert!(host_matches(
            "ec2.*.amazonaws.com",
            "EC2.eu-west-1.amazonaws.com."
        ));
        assert!(!host_matches(
            "ec2.*.amazonaws.com",
            "ec2.us-east-1.amazonaws.com.evil.io"
        ));
        assert!(!host_matches(
            "ec2.*.amazonaws.com",
            "ec2.a.b.amazonaws.com"
        ));
        assert!(!host_matches("ec2.*.amazonaws.com", "evil.io"));
        assert!(host_matches("*.aliyuncs.com", "ecs.aliyuncs.com"));
        assert!(host_matches(
            "*.aliyuncs.com",
            "vpc.cn-hangzhou.aliyuncs.com"
        ));
        assert!(!host_matches("*.aliyuncs.com", "aliyuncs.com"));
        assert!(!host_matches("*.aliyuncs.com", "aliyuncs.com.evil.io"));
    }

    #[test]
    fn metadata_loopback_and_link_local_are_forbidden() {
        for ip in [
            "169.254.169.254",
            "127.0.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "fe80::1",
        ] {
            assert!(forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["54.239.28.85", "10.0.0.5", "192.168.1.1", "2600:1f18::1"] {
            assert!(!forbidden(ip.parse().unwrap()), "{ip}");
        }
    }
}
