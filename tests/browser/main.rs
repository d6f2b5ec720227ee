//! The html report and `--http` in headless Chromium (Debian's package,
//! installed by tests/setup): colours by level, details on click, the form
//! diagnosing a second flow, and markup or script from the facts shown as
//! text and never run. Screenshots go to $CARGO_TARGET_TMPDIR/browser/.
//! Without Chromium these tests fail; they are never skipped.

mod cdp;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use cdp::{Browser, Page};

/// The level colours docs/report-formats.md documents.
const PALETTE: [(&str, &str); 5] = [
    ("OK", "#e6edf5"),
    ("INFO", "#8fd19e"),
    ("WARNING", "#ffc45c"),
    ("CRITICAL", "#f2646e"),
    ("FATAL", "#b0124a"),
];

/// Markup and script an attacker could place in an iptables comment or an
/// object name; it must show as text and never run.
const IMG: &str = "<img src=x onerror=window.__pwned=1>";
const SCRIPT: &str = "</script><script>window.__pwned=2</script>";

fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .expect("repository root")
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

fn skoop(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_skoop"))
        .args(args)
        .current_dir(root())
        .env("SKOOP_CACHE_DIR", root().join("target").join("test-cache"))
        .output()
        .expect("run skoop");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_report(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    let (_, out, err) = skoop(&a);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}{err}"))
}

fn rgb(hex: &str) -> String {
    let v = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex colour");
    format!("rgb({}, {}, {})", v(1), v(3), v(5))
}

fn colour_of(level: &str) -> String {
    let hex = PALETTE
        .iter()
        .find(|(l, _)| *l == level)
        .map(|(_, c)| *c)
        .expect("documented level");
    rgb(hex)
}

/// Worst level per net-node id, from the JSON report.
fn worst_levels(report: &Value) -> Vec<(String, String)> {
    let order = ["INFO", "WARNING", "CRITICAL", "FATAL"];
    let mut out: Vec<(String, String)> = Vec::new();
    for s in report["suspicions"].as_array().expect("suspicions") {
        let Some(node) = s["node"].as_str() else {
            continue;
        };
        let level = s["level"].as_str().expect("level").to_string();
        match out.iter_mut().find(|(n, _)| n == node) {
            Some((_, l)) => {
                let pos = |x: &str| order.iter().position(|o| *o == x);
                if pos(&level) > pos(l) {
                    *l = level;
                }
            }
            None => out.push((node.to_string(), level)),
        }
    }
    out
}

/// The selector of the drawn net-node whose id is `id`.
fn node_selector(page: &mut Page, id: &str) -> String {
    let id_js = serde_json::to_string(id).expect("json");
    let key = page.eval(&format!(
        "(() => {{ for (const g of document.querySelectorAll('g.node')) {{ const t = g.querySelector('title').textContent.split('\\n')[0]; if (t.slice(t.indexOf(' ') + 1) === {id_js}) return g.getAttribute('data-key'); }} return null; }})()"
    ));
    let key = key
        .as_str()
        .unwrap_or_else(|| panic!("net-node {id} is not drawn"));
    format!("g.node[data-key=\"{key}\"]")
}

/// Every net-node with suspicions is filled with its worst level's colour,
/// and clicking it lists its suspicions in the details panel.
fn check_levels_and_details(page: &mut Page, report: &Value) {
    let levels = worst_levels(report);
    assert!(
        !levels.is_empty(),
        "the flow has no suspicion on a net-node"
    );
    for (node, level) in &levels {
        let sel = node_selector(page, node);
        let fill = page.eval(&format!(
            "getComputedStyle(document.querySelector('{sel} .shape')).fill"
        ));
        assert_eq!(
            fill.as_str(),
            Some(colour_of(level).as_str()),
            "net-node {node} ({level}) is not drawn in its level's colour"
        );
        page.click(&sel);
        let details = page.eval("document.getElementById('details').textContent");
        let details = details.as_str().expect("details text");
        for s in report["suspicions"].as_array().expect("suspicions") {
            if s["node"].as_str() == Some(node.as_str()) {
                let msg = s["message"].as_str().expect("message");
                assert!(
                    details.contains(msg),
                    "clicking {node} does not show {msg:?}; the panel shows {details:?}"
                );
            }
        }
        // ...and the routes and rules its kernel pipeline decided with.
        for d in report["path"]["decisions"].as_array().expect("decisions") {
            if d["at"]["id"].as_str() != Some(node.as_str()) {
                continue;
            }
            let texts = d["route"].as_str().into_iter().chain(
                d["rules"]
                    .as_array()
                    .expect("rules")
                    .iter()
                    .filter_map(Value::as_str),
            );
            for t in texts {
                assert!(
                    details.contains(t),
                    "clicking {node} does not show the decision {t:?}; the panel shows {details:?}"
                );
            }
        }
    }
    // Cluster-level suspicions are on the page too.
    let cluster = page.eval("document.getElementById('cluster-suspicions').textContent");
    for s in report["suspicions"].as_array().expect("suspicions") {
        if s["node"].is_null() {
            let msg = s["message"].as_str().expect("message");
            assert!(cluster.as_str().is_some_and(|c| c.contains(msg)), "{msg}");
        }
    }
}

/// Nothing injected ran, no element came from the facts, nothing was fetched.
fn check_inert(page: &mut Page) {
    assert_eq!(page.eval("typeof window.__pwned"), "undefined");
    assert_eq!(page.eval("document.querySelectorAll('img').length"), 0);
    assert_eq!(page.eval("document.scripts.length"), 2);
    assert_eq!(
        page.eval("performance.getEntriesByType('resource').length"),
        0,
        "the page fetched something"
    );
    let thrown = page
        .browser
        .events
        .iter()
        .filter(|e| e["method"] == "Runtime.exceptionThrown")
        .count();
    assert_eq!(thrown, 0, "{:?}", page.browser.events);
}

/// `skoop diagnose ARGS --http 127.0.0.1:0`, and the URL it serves on.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_skoop"))
        .args(args)
        .args(["--http", "127.0.0.1:0"])
        .current_dir(root())
        .env("SKOOP_CACHE_DIR", root().join("target").join("test-cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start skoop --http");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(rest) = l.split("serving the report on ").nth(1) {
                    break rest.split(' ').next().expect("url").to_string();
                }
            }
            _ => panic!("skoop --http exited before serving"),
        }
    };
    // Keep draining stderr so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    Server { child, url }
}

fn figure(name: &str, value: String) {
    eprintln!("figure: {name}: {value}");
    let path = artifacts().join("figures.txt");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text.push_str(&format!("{name}: {value}\n"));
    let _ = std::fs::write(path, text);
}

#[test]
fn html_file_colours_and_details() {
    let dir = artifacts();
    let file = dir.join("demo.html");
    let file_s = file.to_str().expect("utf-8 path");
    let (code, _, err) = skoop(&["diagnose", "--demo", "--format", "html", "-o", file_s]);
    assert_eq!(code, 3, "{err}");
    let size = std::fs::metadata(&file).expect("html written").len();
    figure("demo html size", format!("{size} bytes"));
    let report = json_report(&["diagnose", "--demo"]);
    let mut browser = Browser::launch(&dir.join("chromium-html.log"));
    let mut page = browser.page();
    page.goto(&format!("file://{file_s}"));
    assert_eq!(
        page.eval("document.getElementById('verdict').textContent")
            .as_str()
            .map(|v| v.starts_with("Verdict: BROKEN")),
        Some(true)
    );
    check_levels_and_details(&mut page, &report);
    check_inert(&mut page);
    page.screenshot(&dir.join("demo-html.png"));
}

#[test]
fn http_view_and_second_flow() {
    let dir = artifacts();
    let server = serve(&["diagnose", "--demo"]);
    let report = json_report(&["diagnose", "--demo"]);
    let mut browser = Browser::launch(&dir.join("chromium-http.log"));
    let mut page = browser.page();
    let load = page.goto(&server.url);
    let nav = page.eval("performance.getEntriesByType('navigation')[0].duration");
    figure(
        "--http page load (demo, headless chromium)",
        format!(
            "{} ms until the load event (navigation timing {:.1} ms)",
            load.as_millis(),
            nav.as_f64().unwrap_or(-1.0)
        ),
    );
    check_levels_and_details(&mut page, &report);
    check_inert(&mut page);
    page.screenshot(&dir.join("http-first.png"));
    // The form diagnoses a second flow on the same facts.
    let second = [
        "diagnose",
        "--demo",
        "-s",
        "10.244.0.5",
        "-d",
        "10.244.1.7",
        "-p",
        "8080",
    ];
    let expected = json_report(&second);
    page.eval(
        "(() => { const f = document.getElementById('diagnose'); f.src.value = '10.244.0.5'; f.dst.value = '10.244.1.7'; f.port.value = '8080'; })()",
    );
    page.click_and_wait_load("#diagnose button[type=submit]");
    let title = page.eval("document.title");
    assert_eq!(
        title.as_str(),
        Some("skoop: 10.244.0.5 -> 10.244.1.7:8080/tcp HEALTHY"),
        "{title}"
    );
    let verdict = page.eval("document.getElementById('verdict').textContent");
    let (_, text, _) = skoop(&second);
    let last = text.lines().last().expect("verdict line");
    assert_eq!(verdict.as_str(), Some(last));
    assert_eq!(expected["verdict"], "healthy");
    check_inert(&mut page);
    page.screenshot(&dir.join("http-second.png"));
    // A flow that cannot be diagnosed: the form says why, as text.
    page.goto(&format!(
        "{}diagnose?src=10.9.9.9&dst=%3Cimg+src%3Dx+onerror%3Dwindow.__pwned%3D3%3E&port=80",
        server.url
    ));
    let err = page.eval("document.getElementById('form-error').textContent");
    assert!(
        err.as_str()
            .is_some_and(|e| e.contains("<img src=x onerror=window.__pwned=3>")),
        "{err}"
    );
    check_inert(&mut page);
}

/// A fixture bundle (a FORWARD rule drops tcp 8080 on node-1) with markup
/// and script in the source pod's name and in the comment of that rule.
fn hostile_bundle(dir: &Path) -> PathBuf {
    let src = root().join("tests/fixtures/bundles/host-gw-forward-drop-port");
    let dst = dir.join("hostile-bundle");
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(dst.join("nodes")).expect("bundle dir");
    let pod = format!("client-{IMG}");
    let rewrite = |text: String| text.replace("client-1", &pod);
    let cluster = std::fs::read_to_string(src.join("cluster.json")).expect("cluster.json");
    std::fs::write(dst.join("cluster.json"), rewrite(cluster)).expect("write");
    for entry in std::fs::read_dir(src.join("nodes")).expect("nodes") {
        let path = entry.expect("entry").path();
        let mut text = rewrite(std::fs::read_to_string(&path).expect("node dump"));
        if path.file_name().is_some_and(|n| n == "node-1.json") {
            let mut dump: Value = serde_json::from_str(&text).expect("node dump json");
            let rules = dump["host"]["iptables"]
                .as_str()
                .expect("iptables")
                .to_string();
            let rule = "-A FORWARD -p tcp -m tcp --dport 8080";
            let marked = rules.replacen(
                rule,
                &format!("{rule} -m comment --comment \"{IMG}{SCRIPT}\""),
                1,
            );
            assert_ne!(rules, marked, "node-1 has no rule `{rule}` to comment");
            dump["host"]["iptables"] = Value::String(marked);
            text = serde_json::to_string_pretty(&dump).expect("json");
        }
        std::fs::write(
            dst.join("nodes").join(path.file_name().expect("name")),
            text,
        )
        .expect("write");
    }
    dst
}

#[test]
fn markup_from_the_facts_is_text() {
    let dir = artifacts();
    let bundle = hostile_bundle(&dir);
    let b = bundle.to_str().expect("utf-8 path");
    let args = [
        "diagnose",
        "--snapshot",
        b,
        "-s",
        "10.244.0.5",
        "-d",
        "10.96.100.10",
        "-p",
        "80",
    ];
    let report = json_report(&args);
    let all = report.to_string();
    assert!(
        all.contains(IMG),
        "the pod name does not reach the report: {all}"
    );
    assert!(
        all.contains(SCRIPT),
        "the rule comment does not reach the report: {all}"
    );
    let file = dir.join("hostile.html");
    let mut a = args.to_vec();
    a.extend(["--format", "html", "-o", file.to_str().expect("path")]);
    skoop(&a);
    let server = serve(&args);
    let mut browser = Browser::launch(&dir.join("chromium-hostile.log"));
    let mut page = browser.page();
    for (url, shot) in [
        (format!("file://{}", file.display()), "hostile-html.png"),
        (server.url.clone(), "hostile-http.png"),
    ] {
        page.goto(&url);
        check_inert(&mut page);
        check_levels_and_details(&mut page, &report);
        // The texts are on the page, as text.
        let body = page.eval("document.body.textContent");
        let body = body.as_str().expect("text");
        assert!(body.contains(IMG) && body.contains(SCRIPT), "{url}");
        let sel = node_selector(&mut page, &format!("default/client-{IMG}"));
        page.click(&sel);
        let details = page.eval("document.getElementById('details').textContent");
        assert!(
            details.as_str().is_some_and(|d| d.contains(IMG)),
            "{details}"
        );
        check_inert(&mut page);
        page.screenshot(&dir.join(shot));
    }
}
