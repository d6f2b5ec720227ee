//! Requests to the API server: kube's typed calls, each with a deadline,
//! counted, and every failure turned into one line naming the server, the
//! verb and resource, and for 401/403 the RBAC rule that is missing.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;

use skoop_error::bad_input;

/// What one request does, for messages and RBAC hints.
#[derive(Debug, Clone)]
pub struct Call {
    /// RBAC verb: list, get, create, delete.
    pub verb: &'static str,
    /// API group ("" for the core group).
    pub group: String,
    /// Resource plural, with its subresource: `pods`, `pods/log`.
    pub resource: String,
    /// Namespace of the object, if namespaced.
    pub namespace: Option<String>,
    /// The URL path it goes to (without the query), for messages.
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

/// The API server of one cluster.
pub struct ApiServer {
    client: kube::Client,
    /// The API server's URL.
    pub server: String,
    /// Where the configuration came from.
    pub origin: String,
    timeout: Duration,
    requests: AtomicU64,
}

impl ApiServer {
    pub fn new(
        client: kube::Client,
        server: String,
        origin: String,
        timeout: Duration,
    ) -> ApiServer {
        ApiServer {
            client,
            server,
            origin,
            timeout,
            requests: AtomicU64::new(0),
        }
    }

    /// The client, for building `kube::Api`s (a cheap clone).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Send one request (a `kube::Api` call described by `call`). Statuses
    /// other than 401 and 403 are returned to the caller.
    pub async fn send<T>(
        &self,
        call: &Call,
        request: impl Future<Output = kube::Result<T>>,
    ) -> Result<Answer<T>> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(self.timeout, request).await {
            Err(_) => Err(bad_input(format!(
                "the API server at {} did not answer {} ({}) within {}s; check the network to it or raise --api-timeout",
                self.server,
                call.what(),
                call.path,
                self.timeout.as_secs()
            ))),
            Ok(Ok(v)) => Ok(Answer::Ok(v)),
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
                code => Ok(Answer::Status(code, status.message)),
            },
            Ok(Err(kube::Error::SerdeError(e))) => Err(bad_input(format!(
                "the API server at {} answered {} ({}) with malformed JSON: {e}",
                self.server,
                call.what(),
                call.path
            ))),
            Ok(Err(e)) => Err(bad_input(format!(
                "cannot reach the API server at {} ({}) to {}: {}",
                self.server,
                self.origin,
                call.what(),
                root_cause(&e)
            ))),
        }
    }

    /// Send one request that must succeed: any status is an error.
    pub async fn must<T>(
        &self,
        call: &Call,
        request: impl Future<Output = kube::Result<T>>,
    ) -> Result<T> {
        match self.send(call, request).await? {
            Answer::Ok(v) => Ok(v),
            Answer::Status(code, message) => Err(self.unexpected(call, code, &message)),
        }
    }

    /// The error of a status the caller did not expect.
    pub fn unexpected(&self, call: &Call, code: u16, message: &str) -> anyhow::Error {
        bad_input(format!(
            "the API server at {} failed to {} ({}): HTTP {code}: {message}",
            self.server,
            call.what(),
            call.path
        ))
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
