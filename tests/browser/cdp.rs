//! A small Chrome DevTools Protocol client over `--remote-debugging-pipe`
//! (fd 3: commands in, fd 4: replies and events out, each message JSON
//! ended by a NUL byte): enough to load a page, run JS, click with the
//! mouse and take screenshots, with no websocket or extra crate.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);

/// The browser binary: $SKOOP_CHROMIUM, else Debian's `chromium`. Missing
/// is a failure, never a skip: `tests/setup` installs it.
pub fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("SKOOP_CHROMIUM") {
        return PathBuf::from(p);
    }
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "the browser tests need Chromium and none was found: run tests/setup as root \
         (apt-get install chromium), or set SKOOP_CHROMIUM to its binary"
    );
}

pub struct Browser {
    child: Child,
    to: File,
    from: Receiver<Value>,
    next: u64,
    _profile: tempfile::TempDir,
    /// Events received while waiting for replies.
    pub events: Vec<Value>,
}

pub struct Page<'a> {
    pub browser: &'a mut Browser,
    session: String,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe().expect("pipe")
}

impl Browser {
    pub fn launch(log: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        // Commands: we write cmd_w, the browser reads fd 3. Replies: the
        // browser writes fd 4, we read out_r.
        let (cmd_r, cmd_w) = pipe();
        let (out_r, out_w) = pipe();
        let (cr, ow) = (cmd_r.as_raw_fd(), out_w.as_raw_fd());
        let log = File::create(log).expect("browser log");
        let mut cmd = Command::new(chromium());
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--remote-debugging-pipe",
            "--window-size=1400,1000",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
        // SAFETY: only dup2 (async-signal-safe) runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Through high numbers first, so fds 3 and 4 never alias a source.
                if libc::dup2(cr, 100) < 0
                    || libc::dup2(ow, 101) < 0
                    || libc::dup2(100, 3) < 0
                    || libc::dup2(101, 4) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start chromium");
        drop(cmd_r);
        drop(out_w);
        let (tx, rx) = channel();
        let reader = File::from(out_r);
        std::thread::spawn(move || {
            let mut r = BufReader::new(reader);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                            && tx.send(v).is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
        Browser {
            child,
            to: File::from(cmd_w),
            from: rx,
            next: 0,
            _profile: profile,
            events: Vec::new(),
        }
    }

    fn recv(&mut self, deadline: Instant, what: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.from.recv_timeout(left) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => {
                panic!("chromium: no answer to {what} in {TIMEOUT:?}")
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("chromium exited while waiting for {what}")
            }
        }
    }

    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let v = self.recv(deadline, method);
            if v["id"] == json!(id) {
                if let Some(e) = v.get("error") {
                    panic!("chromium: {method} failed: {e}");
                }
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    /// Wait for an event of `session` (already received, or to come).
    pub fn wait_event(&mut self, session: &str, method: &str) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(i) = self
                .events
                .iter()
                .position(|e| e["method"] == method && e["sessionId"] == session)
            {
                return self.events.remove(i);
            }
            let v = self.recv(deadline, method);
            self.events.push(v);
        }
    }

    pub fn page(&mut self) -> Page<'_> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let session = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        )["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        let mut page = Page {
            browser: self,
            session,
        };
        page.call("Page.enable", json!({}));
        page.call("Runtime.enable", json!({}));
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Page<'_> {
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.browser.call(Some(&s), method, params)
    }

    /// Load `url`; the time until its load event.
    pub fn goto(&mut self, url: &str) -> Duration {
        self.browser
            .events
            .retain(|e| e["method"] != "Page.loadEventFired");
        let start = Instant::now();
        self.call("Page.navigate", json!({"url": url}));
        let s = self.session.clone();
        self.browser.wait_event(&s, "Page.loadEventFired");
        start.elapsed()
    }

    /// Click where the page is, then wait for the navigation it starts.
    pub fn click_and_wait_load(&mut self, selector: &str) -> Duration {
        self.browser
            .events
            .retain(|e| e["method"] != "Page.loadEventFired");
        let start = Instant::now();
        self.click(selector);
        let s = self.session.clone();
        self.browser.wait_event(&s, "Page.loadEventFired");
        start.elapsed()
    }

    /// Evaluate `expr` in the page; its value (JSON).
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("page script {expr:?} threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// A real left click (mouse pressed and released) on the middle of the
    /// element `selector` finds.
    pub fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).expect("json");
        let at = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return null; e.scrollIntoView({{block: 'center', inline: 'center'}}); const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ));
        let (x, y) = match (at[0].as_f64(), at[1].as_f64()) {
            (Some(x), Some(y)) => (x, y),
            _ => panic!("no element {selector} to click"),
        };
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// A PNG of the whole page.
    pub fn screenshot(&mut self, path: &Path) {
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("base64");
        std::fs::write(path, png).expect("write screenshot");
    }
}
