//! Requests to the API server, each with a deadline, counted, and every
//! failure turned into one line naming the server, the verb and resource,
//! and for 401/403 the RBAC rule that is missing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use skoop_engine::error::bad_input;

/// What one request does, for messages and RBAC hints.
#[derive(Debug, Clone)]
pub struct Call {
    /// RBAC verb: list, get, create, delete.
    pub verb: &'static str,
    /// API group ("" for the core group).
    pub group: &'static str,
    /// Resource plural, with its subresource: `pods`, `pods/log`.
    pub resource: &'static str,
    /// Namespace of the object, if namespaced.
    pub namespace: Option<String>,
    /// Request path and query.
    pub path: String,
}

impl Call {
    fn what(&self) -> String {
        let group = if self.group.is_empty() {
            String::new()
        } else {
            format!(".{}", self.group)
        };
        match &self.namespace {
            Some(ns) => format!("{} {}{group} in namespace {ns}", self.verb, self.resource),
            None => format!("{} {}{group}", self.verb, self.resource),
        }
    }

    fn rule(&self) -> String {
        format!(
            "{{apiGroups: [\"{}\"], resources: [\"{}\"], verbs: [\"{}\"]}}",
            self.group, self.resource, self.verb
        )
    }
}

/// Outcome of a request the caller may expect to fail (404, 409).
pub enum Answer<T> {
    Ok(T),
    /// The API server answered with this HTTP status.
    Status(u16, String),
}

/// A client for one cluster.
pub struct Api {
    client: kube::Client,
    /// The API server's URL.
    pub server: String,
    /// Where the configuration came from.
    pub origin: String,
    timeout: Duration,
    requests: AtomicU64,
}

impl Api {
    pub fn new(client: kube::Client, server: String, origin: String, timeout: Duration) -> Api {
        Api {
            client,
            server,
            origin,
            timeout,
            requests: AtomicU64::new(0),
        }
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    async fn send(
        &self,
        call: &Call,
        method: http::Method,
        body: Option<&Value>,
    ) -> Result<Answer<String>> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(call.path.as_str())
            .header(http::header::ACCEPT, "application/json");
        let bytes = match body {
            Some(v) => {
                req = req.header(http::header::CONTENT_TYPE, "application/json");
                serde_json::to_vec(v)?
            }
            None => Vec::new(),
        };
        let req = req.body(bytes)?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let answer = tokio::time::timeout(self.timeout, self.client.request_text(req)).await;
        match answer {
            Err(_) => Err(bad_input(format!(
                "the API server at {} did not answer {} ({}) within {}s; check the network to it or raise --api-timeout",
                self.server,
                call.what(),
                call.path,
                self.timeout.as_secs()
            ))),
            Ok(Ok(text)) => Ok(Answer::Ok(text)),
            Ok(Err(kube::Error::Api(status))) => match status.code {
                401 => Err(bad_input(format!(
                    "the API server at {} refused the credentials of {} (401 Unauthorized) to {}: {}; log in again or pick another --context",
                    self.server,
                    self.origin,
                    call.what(),
                    status.message
                ))),
                403 => Err(bad_input(format!(
                    "forbidden to {} (403 from {}): {}; grant the ClusterRole rule {} (see deploy/rbac.yaml)",
                    call.what(),
                    self.server,
                    status.message,
                    call.rule()
                ))),
                code => Ok(Answer::Status(code, status.message.clone())),
            },
            Ok(Err(e)) => Err(bad_input(format!(
                "cannot reach the API server at {} ({}) to {}: {}",
                self.server,
                self.origin,
                call.what(),
                root_cause(&e)
            ))),
        }
    }

    fn unexpected<T>(&self, call: &Call, code: u16, message: &str) -> Result<T> {
        Err(bad_input(format!(
            "the API server at {} failed to {} ({}): HTTP {code}: {message}",
            self.server,
            call.what(),
            call.path
        )))
    }

    fn parse(&self, call: &Call, text: &str) -> Result<Value> {
        serde_json::from_str(text).map_err(|e| {
            bad_input(format!(
                "the API server at {} answered {} ({}) with malformed JSON: {e}",
                self.server,
                call.what(),
                call.path
            ))
        })
    }

    /// GET returning JSON; other statuses are returned to the caller.
    pub async fn get(&self, call: &Call) -> Result<Answer<Value>> {
        Ok(match self.send(call, http::Method::GET, None).await? {
            Answer::Ok(text) => Answer::Ok(self.parse(call, &text)?),
            Answer::Status(c, m) => Answer::Status(c, m),
        })
    }

    /// GET of text (logs) that must succeed.
    pub async fn text(&self, call: &Call) -> Result<String> {
        match self.send(call, http::Method::GET, None).await? {
            Answer::Ok(t) => Ok(t),
            Answer::Status(c, m) => self.unexpected(call, c, &m),
        }
    }

    /// POST an object; other statuses are returned to the caller.
    pub async fn create(&self, call: &Call, body: &Value) -> Result<Answer<()>> {
        Ok(
            match self.send(call, http::Method::POST, Some(body)).await? {
                Answer::Ok(_) => Answer::Ok(()),
                Answer::Status(c, m) => Answer::Status(c, m),
            },
        )
    }

    /// DELETE an object; a missing object is not an error.
    pub async fn delete(&self, call: &Call) -> Result<()> {
        match self.send(call, http::Method::DELETE, None).await? {
            Answer::Ok(_) | Answer::Status(404, _) => Ok(()),
            Answer::Status(c, m) => self.unexpected(call, c, &m),
        }
    }
}

/// The innermost cause, which says what went wrong on the wire
/// ("Connection refused", "dns error", a TLS failure).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    let mut text = cur.to_string();
    while let Some(next) = cur.source() {
        cur = next;
        text = cur.to_string();
    }
    text
}
