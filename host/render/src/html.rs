//! One self-contained html page: the inline SVG, CSS, a little JS and the
//! details of every net-node and link as JSON. No network fetch; a Content
//! Security Policy lets only the page's own script run.

use std::fmt::Write as _;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::escape::{script_json, xml};
use crate::graph::{Graph, action_name, leg_name, level_colour, level_name, node_kind_name};

/// The form of `--http`: the flow it shows and the facts it runs on.
#[derive(Debug, Clone, Default)]
pub struct Form {
    pub src: String,
    pub dst: String,
    pub port: String,
    pub protocol: String,
    /// What the facts are (bundle path, demo, live cluster).
    pub facts: String,
    /// Why the last submission could not be diagnosed.
    pub error: Option<String>,
}

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2733;background:#f5f7fa}
header{padding:12px 20px;background:#fff;border-bottom:1px solid #d5dde6}
h1{font-size:18px;margin:0 0 4px 0;font-family:monospace}
.verdict{font-weight:bold}.verdict-healthy{color:#2b8a5c}.verdict-broken{color:#c00000}.verdict-partial,.verdict-incomplete{color:#b36b00}
form{margin-top:8px;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
form input{font-family:monospace;width:10em}form input[name=port]{width:5em}
.error{color:#c00000;font-weight:bold;white-space:pre-wrap}
main{display:flex;gap:12px;padding:12px;align-items:flex-start}
#graph{flex:1;overflow:auto;background:#fff;border:1px solid #d5dde6;max-height:80vh}
#details{width:380px;min-width:300px;background:#fff;border:1px solid #d5dde6;padding:10px 14px;font-size:13px;overflow-wrap:anywhere}
#details h2{font-size:15px;margin:4px 0 8px 0;font-family:monospace}
#details dt{font-weight:bold;margin-top:4px}#details dd{margin:0 0 0 10px;font-family:monospace;white-space:pre-wrap}
.node,.edge{cursor:pointer}.node:hover .shape{stroke-width:3}
.selected .shape{stroke:#000!important;stroke-width:3.5!important}.edge.selected path+path{stroke-width:3.5}
section{padding:0 20px 16px 20px}section h2{font-size:15px}
ul.suspicions{list-style:none;padding:0}ul.suspicions li{margin:3px 0;font-size:13px}
.lvl{display:inline-block;min-width:74px;text-align:center;font-size:11px;font-weight:bold;border-radius:3px;padding:1px 4px;margin-right:6px}
"#;

const JS: &str = r#"
(function () {
  var data = JSON.parse(document.getElementById('skoop-data').textContent);
  var panel = document.getElementById('details');
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== null && text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function show(key) {
    var d = data.nodes[key] || data.edges[key];
    if (!d) return;
    panel.replaceChildren();
    panel.appendChild(el('h2', d.title));
    var dl = el('dl');
    d.fields.forEach(function (f) {
      if (f[1] === null || f[1] === '') return;
      dl.appendChild(el('dt', f[0]));
      dl.appendChild(el('dd', String(f[1])));
    });
    panel.appendChild(dl);
    panel.appendChild(el('h3', 'Suspicions'));
    if (!d.suspicions.length) {
      panel.appendChild(el('p', 'none', 'none'));
    } else {
      var ul = el('ul', null, 'suspicions');
      d.suspicions.forEach(function (s) {
        var li = el('li');
        var b = el('span', s.level, 'lvl');
        b.style.background = data.colours[s.level];
        li.appendChild(b);
        li.appendChild(document.createTextNode(s.message));
        ul.appendChild(li);
      });
      panel.appendChild(ul);
    }
    document.querySelectorAll('.selected').forEach(function (e) { e.classList.remove('selected'); });
    var g = document.querySelector('[data-key="' + key + '"]');
    if (g) g.classList.add('selected');
  }
  document.querySelectorAll('svg [data-key]').forEach(function (g) {
    g.addEventListener('click', function () { show(g.getAttribute('data-key')); });
    g.addEventListener('keydown', function (ev) { if (ev.key === 'Enter') show(g.getAttribute('data-key')); });
  });
})();
"#;

fn b64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The Content-Security-Policy of the page: nothing from the network, no
/// script but the page's own (inline event handlers never run).
pub fn csp() -> String {
    let hash = b64(&Sha256::digest(JS.as_bytes()));
    format!(
        "default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'"
    )
}

fn suspicions_json(list: &[skoop_engine::suspicion::Suspicion]) -> Value {
    Value::Array(
        list.iter()
            .map(|s| json!({"level": s.level.name(), "message": s.message}))
            .collect(),
    )
}

/// What clicking shows, per node and edge key.
fn details(g: &Graph) -> Value {
    let mut nodes = serde_json::Map::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let mut ifs: Vec<String> = Vec::new();
        for e in &g.edges {
            let name = if e.to == i {
                e.iif.clone()
            } else if e.from == i {
                e.oif.clone()
            } else {
                None
            };
            if let Some(name) = name
                && !ifs.contains(&name)
            {
                ifs.push(name);
            }
        }
        let packets_in: Vec<String> = g
            .edges
            .iter()
            .filter(|e| e.to == i)
            .map(|e| format!("{} ({}): {}", leg_name(e.leg), e.branch_label(), e.packet))
            .collect();
        let packets_out: Vec<String> = g
            .edges
            .iter()
            .filter(|e| e.from == i)
            .map(|e| format!("{} ({}): {}", leg_name(e.leg), e.branch_label(), e.packet))
            .collect();
        nodes.insert(
            n.key.clone(),
            json!({
                "title": n.hop.to_string(),
                "fields": [
                    ["id", n.hop.id],
                    ["type", node_kind_name(n.hop.kind)],
                    ["worst level", level_name(n.level)],
                    ["interfaces", ifs.join(", ")],
                    ["packets in", packets_in.join("\n")],
                    ["packets out", packets_out.join("\n")],
                    ["branches ending here", n.ends.join("\n")],
                    ["kernel decisions (routes and rules)", n.decisions.join("\n\n")],
                ],
                "suspicions": suspicions_json(&n.suspicions),
            }),
        );
    }
    let mut edges = serde_json::Map::new();
    for e in &g.edges {
        let (from, to) = (&g.nodes[e.from], &g.nodes[e.to]);
        let mut about: Vec<_> = from.suspicions.clone();
        about.extend(to.suspicions.iter().cloned());
        edges.insert(
            e.key.clone(),
            json!({
                "title": format!("{} -> {}", from.hop, to.hop),
                "fields": [
                    ["direction", leg_name(e.leg)],
                    ["branches", e.branches.join(", ")],
                    ["link", crate::graph::kind_name(e.kind)],
                    ["output interface (sender)", e.oif],
                    ["input interface (receiver)", e.iif],
                    ["action of the receiver", action_name(e.action)],
                    ["packet", e.packet.to_string()],
                    ["changed by NAT/encapsulation", if e.packet_changed { "yes (or first link)" } else { "no" }],
                    ["decided by (sender's kernel)", e.decided_by.join("\n")],
                ],
                "suspicions": suspicions_json(&about),
            }),
        );
    }
    let colours: serde_json::Map<String, Value> = [
        skoop_engine::suspicion::Level::Info,
        skoop_engine::suspicion::Level::Warning,
        skoop_engine::suspicion::Level::Critical,
        skoop_engine::suspicion::Level::Fatal,
    ]
    .into_iter()
    .map(|l| (l.name().to_string(), Value::from(level_colour(Some(l)))))
    .collect();
    json!({"nodes": nodes, "edges": edges, "colours": colours})
}

fn suspicion_li(out: &mut String, level: skoop_engine::suspicion::Level, text: &str) {
    let _ = write!(
        out,
        "<li><span class=\"lvl\" style=\"background:{}\">{}</span>{}</li>",
        level_colour(Some(level)),
        level.name(),
        xml(text)
    );
}

fn form_html(out: &mut String, f: &Form) {
    let _ = write!(
        out,
        "<form id=\"diagnose\" method=\"get\" action=\"/diagnose\"><label>src <input name=\"src\" value=\"{}\" required></label><label>dst <input name=\"dst\" value=\"{}\" required></label><label>port <input name=\"port\" value=\"{}\" placeholder=\"number or name\"></label><label>protocol <select name=\"protocol\">",
        xml(&f.src),
        xml(&f.dst),
        xml(&f.port)
    );
    // "auto": the named port's protocol, else tcp.
    for (value, label) in [
        ("", "auto"),
        ("tcp", "tcp"),
        ("udp", "udp"),
        ("sctp", "sctp"),
    ] {
        let sel = if f.protocol == value { " selected" } else { "" };
        let _ = write!(out, "<option value=\"{value}\"{sel}>{label}</option>");
    }
    let _ = write!(
        out,
        "</select></label><button type=\"submit\">Diagnose</button><span>on {}</span></form>",
        xml(&f.facts)
    );
    if let Some(e) = &f.error {
        let _ = write!(out, "<p class=\"error\" id=\"form-error\">{}</p>", xml(e));
    }
}

fn page(title: &str, header: &str, body: &str, data: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"{}\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body><header>{header}</header>{body}<script type=\"application/json\" id=\"skoop-data\">{data}</script><script>{JS}</script></body></html>\n",
        xml(&csp()),
        xml(title)
    )
}

/// The page of a report; with `form`, the `--http` form to diagnose another flow.
pub fn render(g: &Graph, form: Option<&Form>) -> String {
    let mut header = String::new();
    let _ = write!(
        header,
        "<h1>skoop diagnose {}</h1><div class=\"verdict verdict-{}\" id=\"verdict\">{}</div>",
        xml(&g.flow),
        xml(&g.verdict),
        xml(&g.verdict_line)
    );
    if let Some(p) = &g.probe_line {
        let _ = write!(header, "<div class=\"probe\" id=\"probe\">{}</div>", xml(p));
    }
    if let Some(f) = form {
        form_html(&mut header, f);
    }
    let mut body = String::new();
    let _ = write!(
        body,
        "<main><div id=\"graph\">{}</div><aside id=\"details\"><h2>Details</h2><p>Click a net-node or a link for its interfaces, packets, the routes and rules that decided, and suspicions.</p></aside></main>",
        crate::svg::render(g)
    );
    body.push_str("<section id=\"cluster-suspicions\"><h2>Cluster suspicions</h2>");
    if g.cluster.is_empty() {
        body.push_str("<p>none</p>");
    } else {
        body.push_str("<ul class=\"suspicions\">");
        for s in &g.cluster {
            let text = match &s.node {
                Some(n) => format!("[{n}] {}", s.message),
                None => s.message.clone(),
            };
            suspicion_li(&mut body, s.level, &text);
        }
        body.push_str("</ul>");
    }
    if let Some(e) = &g.error {
        let _ = write!(
            body,
            "<p class=\"error\">Extension failure: {}; the path is partial.</p>",
            xml(e)
        );
    }
    body.push_str("</section><section id=\"branches\"><h2>Branches</h2><ul>");
    for b in &g.branches {
        let _ = write!(
            body,
            "<li{}>{}: {}</li>",
            if b.failed { " class=\"error\"" } else { "" },
            xml(&b.name),
            xml(&b.end)
        );
    }
    body.push_str("</ul></section>");
    let title = format!("skoop: {} {}", g.flow, g.verdict.to_uppercase());
    page(
        &title,
        &header,
        &body,
        &script_json(&details(g).to_string()),
    )
}

/// The `--http` page when the form's flow could not be diagnosed.
pub fn error_page(form: &Form) -> String {
    let mut header = String::from("<h1>skoop diagnose</h1>");
    form_html(&mut header, form);
    page(
        "skoop: cannot diagnose",
        &header,
        "",
        "{\"nodes\":{},\"edges\":{},\"colours\":{}}",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        // RFC 4648 §10.
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(b64(i.as_bytes()), o);
        }
    }

    #[test]
    fn error_page_escapes_the_message() {
        let p = error_page(&Form {
            error: Some("<img src=x onerror=alert(1)>".into()),
            ..Form::default()
        });
        assert!(p.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(!p.contains("<img"));
    }
}
