//! `--http ADDR`: serve the report page, and diagnose the flows its form
//! submits on the same facts. One request at a time; GET only.

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::Result;
use skoop_diagnosis::FlowSpec;
use skoop_engine::report::Report;
use skoop_error::{bad_input, is_bad_input};
use skoop_netstack::packet::Protocol;
use skoop_render::Graph;
use skoop_render::html::{self, Form};
use tiny_http::{Header, Method, Response, Server};

/// `8080` alone means 127.0.0.1:8080: loopback unless told otherwise.
fn listen_addr(addr: &str) -> Result<SocketAddr> {
    let with_host = if addr.chars().all(|c| c.is_ascii_digit()) {
        format!("127.0.0.1:{addr}")
    } else {
        addr.to_string()
    };
    with_host
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| bad_input(format!("--http {addr:?} is not HOST:PORT or PORT")))
}

/// Decode one `application/x-www-form-urlencoded` component.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(url: &str) -> Vec<(String, String)> {
    url.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn form_of(report: &Report, facts: &str) -> Form {
    Form {
        src: report
            .src_name
            .clone()
            .unwrap_or_else(|| report.src.clone()),
        dst: report
            .dst_name
            .clone()
            .unwrap_or_else(|| report.dst.clone()),
        port: report.port.to_string(),
        protocol: report.protocol.clone(),
        facts: facts.to_string(),
        error: None,
    }
}

/// The flow the form asks for: names or addresses, the port by number or
/// name (or none, for a destination with one port).
fn flow_of(form: &Form) -> Result<FlowSpec> {
    let given = |name: &str, v: &str| {
        let v = v.trim();
        if v.is_empty() {
            Err(bad_input(format!(
                "{name} is empty: give a name or an address"
            )))
        } else {
            Ok(v.to_string())
        }
    };
    let port = match form.port.trim() {
        "" => None,
        p if p.chars().all(|c| c.is_ascii_digit()) => {
            p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                bad_input(format!("port {:?} is not a port (1-65535)", form.port))
            })?;
            Some(p.to_string())
        }
        name => Some(name.to_string()),
    };
    let protocol = match form.protocol.as_str() {
        "" => None,
        "tcp" => Some(Protocol::Tcp),
        "udp" => Some(Protocol::Udp),
        "sctp" => Some(Protocol::Sctp),
        other => {
            return Err(bad_input(format!(
                "protocol {other:?} is not tcp, udp or sctp"
            )));
        }
    };
    Ok(FlowSpec {
        src: given("src", &form.src)?,
        dst: given("dst", &form.dst)?,
        port,
        protocol,
    })
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn respond(req: tiny_http::Request, status: u16, content_type: &str, body: String) {
    let mut resp = Response::from_string(body).with_status_code(status);
    for h in [
        header("Content-Type", content_type),
        header("Content-Security-Policy", &html::csp()),
        header("X-Content-Type-Options", "nosniff"),
        header("Cache-Control", "no-store"),
        header("Referrer-Policy", "no-referrer"),
    ]
    .into_iter()
    .flatten()
    {
        resp.add_header(h);
    }
    // A client that went away is no failure of ours.
    let _ = req.respond(resp);
}

/// A loopback server answers only requests addressed to a loopback name, so
/// a web page elsewhere cannot reach it through DNS rebinding.
fn host_allowed(req: &tiny_http::Request, bound: SocketAddr) -> bool {
    if !bound.ip().is_loopback() {
        return true;
    }
    let Some(h) = req.headers().iter().find(|h| h.field.equiv("Host")) else {
        return false;
    };
    let host = h.value.as_str();
    let name = match host.rsplit_once(':') {
        Some((n, p)) if p.chars().all(|c| c.is_ascii_digit()) => n,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Serve until killed. `diagnose` runs one more flow on the same facts.
pub fn serve(
    addr: &str,
    first: Report,
    facts: &str,
    diagnose: &mut dyn FnMut(FlowSpec) -> Result<Report>,
) -> Result<u8> {
    let addr = listen_addr(addr)?;
    let server =
        Server::http(addr).map_err(|e| bad_input(format!("--http {addr}: cannot listen: {e}")))?;
    let bound = server.server_addr().to_ip().unwrap_or(addr);
    let first_page = html::render(&Graph::new(&first), Some(&form_of(&first, facts)));
    eprintln!("skoop: serving the report on http://{bound}/ (interrupt to stop)");
    for req in server.incoming_requests() {
        if !host_allowed(&req, bound) {
            respond(
                req,
                403,
                "text/plain; charset=utf-8",
                "forbidden host\n".into(),
            );
            continue;
        }
        if !matches!(req.method(), Method::Get | Method::Head) {
            respond(req, 405, "text/plain; charset=utf-8", "GET only\n".into());
            continue;
        }
        let url = req.url().to_string();
        let path = url.split('?').next().unwrap_or("");
        match path {
            "/" => respond(req, 200, "text/html; charset=utf-8", first_page.clone()),
            "/diagnose" => {
                let mut form = form_of(&first, facts);
                for (k, v) in query(&url) {
                    match k.as_str() {
                        "src" => form.src = v,
                        "dst" => form.dst = v,
                        "port" => form.port = v,
                        "protocol" => form.protocol = v,
                        _ => {}
                    }
                }
                match flow_of(&form).and_then(&mut *diagnose) {
                    Ok(report) => {
                        let page = html::render(&Graph::new(&report), Some(&form));
                        respond(req, 200, "text/html; charset=utf-8", page)
                    }
                    Err(e) => {
                        let status = if is_bad_input(&e) { 400 } else { 500 };
                        form.error = Some(format!("{e:#}"));
                        respond(
                            req,
                            status,
                            "text/html; charset=utf-8",
                            html::error_page(&form),
                        )
                    }
                }
            }
            _ => respond(req, 404, "text/plain; charset=utf-8", "not found\n".into()),
        }
    }
    Ok(skoop_error::exit::HEALTHY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_decoded() {
        let q = query("/diagnose?src=10.0.0.1&dst=a%3Cb%3E+c&port=80&x");
        assert_eq!(q[1], ("dst".to_string(), "a<b> c".to_string()));
        assert_eq!(q[3], ("x".to_string(), String::new()));
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }

    #[test]
    fn a_bare_port_binds_loopback() {
        assert_eq!(listen_addr("8080").ok(), "127.0.0.1:8080".parse().ok());
        assert!(listen_addr("not an address").is_err());
    }

    #[test]
    fn form_flow_is_checked() {
        let mut f = Form {
            src: "10.0.0.1".into(),
            dst: "10.0.0.2".into(),
            port: "0".into(),
            protocol: "tcp".into(),
            ..Form::default()
        };
        assert!(flow_of(&f).is_err());
        f.port = "80".into();
        assert!(flow_of(&f).is_ok());
        f.port = "http".into();
        assert_eq!(flow_of(&f).ok().and_then(|s| s.port), Some("http".into()));
        f.src = " ".into();
        assert!(flow_of(&f).is_err());
    }
}
