//! Outbound HTTP for cloud providers, over `wasi:http/outgoing-handler`.
//!
//! The host lets a request through only to the hosts the provider declares
//! in [`Metadata::http_hosts`](crate::Metadata) (and endpoints the user
//! gives in a `*-endpoint-url` config key), re-checks the addresses a name
//! resolves to, and caps time and size. With a recorded bundle it answers
//! from the recording instead; a request the recording lacks comes back as
//! [`Error::Unavailable`] ("not recorded").

use crate::{Error, Result};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use wasip2::io::streams::StreamError;

/// A request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// `https://host[:port]/path?query`.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// An answer.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (cloud APIs answer XML or JSON).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `scheme`, `authority`, `path?query` of an absolute URL.
fn split_url(url: &str) -> Result<(Scheme, &str, String)> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::Invalid(format!("not an absolute URL: {url}")))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        other => return Err(Error::Invalid(format!("unsupported URL scheme {other}"))),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.is_empty() {
        return Err(Error::Invalid(format!("no host in URL {url}")));
    }
    Ok((scheme, authority, path))
}

fn method(m: &str) -> Method {
    match m.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    }
}

fn refused(authority: &str, e: ErrorCode) -> Error {
    match e {
        ErrorCode::HttpRequestDenied => Error::Internal(format!(
            "the host refused the request to {authority}: it is not one of the provider's declared HTTP hosts"
        )),
        ErrorCode::DestinationIpProhibited => Error::Internal(format!(
            "the host refused the request to {authority}: it resolves to a forbidden address (loopback, link-local or metadata)"
        )),
        ErrorCode::InternalError(Some(m)) if m.starts_with("not recorded") => Error::Unavailable(m),
        other => Error::Internal(format!("HTTP request to {authority} failed: {other:?}")),
    }
}

/// Send `req` and wait for the whole answer.
pub fn send(req: &Request) -> Result<Response> {
    let (scheme, authority, path) = split_url(&req.url)?;
    let entries: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    let headers = Fields::from_list(&entries)
        .map_err(|e| Error::Invalid(format!("bad request header: {e:?}")))?;
    let request = OutgoingRequest::new(headers);
    let bad = |what: &str| Error::Invalid(format!("{what} of {} rejected", req.url));
    request
        .set_method(&method(&req.method))
        .map_err(|_| bad("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|_| bad("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|_| bad("authority"))?;
    request
        .set_path_with_query(Some(&path))
        .map_err(|_| bad("path"))?;
    let body = request
        .body()
        .map_err(|_| Error::Internal("request body taken twice".into()))?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| refused(authority, e))?;
    {
        let stream = body
            .write()
            .map_err(|_| Error::Internal("request body stream taken twice".into()))?;
        for chunk in req.body.chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(|e| {
                Error::Internal(format!("writing the request to {authority}: {e:?}"))
            })?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|e| refused(authority, e))?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return Err(refused(authority, e)),
        Some(Err(())) | None => {
            return Err(Error::Internal(format!(
                "no answer from {authority} (the response was already taken)"
            )));
        }
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|_| Error::Internal("response body taken twice".into()))?;
    let mut bytes = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|_| Error::Internal("response body stream taken twice".into()))?;
        loop {
            match stream.blocking_read(64 << 10) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(Error::Internal(format!(
                        "reading the answer of {authority}: {}",
                        e.to_debug_string()
                    )));
                }
            }
        }
    }
    let _ = IncomingBody::finish(incoming);
    Ok(Response {
        status,
        headers,
        body: bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        let (s, a, p) = split_url("https://ec2.us-east-1.amazonaws.com/").unwrap();
        assert!(matches!(s, Scheme::Https));
        assert_eq!((a, p.as_str()), ("ec2.us-east-1.amazonaws.com", "/"));
        let (s, a, p) = split_url("http://127.0.0.1:5055?Action=X").unwrap();
        assert!(matches!(s, Scheme::Http));
        assert_eq!((a, p.as_str()), ("127.0.0.1:5055", "/?Action=X"));
        assert!(split_url("ftp://x/").is_err());
        assert!(split_url("https:///x").is_err());
    }
}
