//! One line on a terminal saying what live mode is waiting for — objects
//! listed so far, collector pods not done yet — rewritten in place and
//! erased once done, so the report and the warnings stay as they were.
//! Nothing at all when stderr is not a terminal (a pipe, a file, CI).

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Redraw no more often than this: a large cluster lists thousands of pages.
const EVERY: Duration = Duration::from_millis(100);

/// The progress line of one run.
pub struct Progress {
    /// None: not a terminal, say nothing.
    state: Option<Mutex<State>>,
}

struct State {
    out: Box<dyn Write + Send>,
    shown: bool,
    drawn_at: Option<Instant>,
    started: Instant,
}

impl Progress {
    /// A line on stderr when it is a terminal (and `TERM` is not `dumb`).
    pub fn stderr() -> Progress {
        let terminal =
            std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        Progress::to(terminal.then(|| Box::new(std::io::stderr()) as Box<dyn Write + Send>))
    }

    /// A line on `out`; none without one.
    pub fn to(out: Option<Box<dyn Write + Send>>) -> Progress {
        Progress {
            state: out.map(|out| {
                Mutex::new(State {
                    out,
                    shown: false,
                    drawn_at: None,
                    started: Instant::now(),
                })
            }),
        }
    }

    /// Objects read so far (nothing before the first).
    pub fn listed(&self, objects: usize) {
        if objects == 0 {
            return;
        }
        self.draw(false, |elapsed| {
            format!("skoop: listing the cluster's objects: {objects} read ({elapsed:.1} s)")
        });
    }

    /// Collector pods still running or starting, of `total`.
    pub fn collecting(&self, waiting: &[String], total: usize) {
        let nodes = match waiting {
            [] => String::new(),
            [one] => format!(" (node {one})"),
            [first, rest @ ..] => format!(" (node {first} and {} more)", rest.len()),
        };
        let done = total.saturating_sub(waiting.len());
        self.draw(false, |elapsed| {
            format!("skoop: collecting node dumps: {done}/{total} done{nodes} ({elapsed:.1} s)")
        });
    }

    /// Print `line` as a line of its own, above the progress line.
    pub fn note(&self, line: &str) {
        match &self.state {
            Some(state) => {
                let mut s = state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                s.erase();
                let _ = writeln!(s.out, "{line}");
                let _ = s.out.flush();
            }
            None => eprintln!("{line}"),
        }
    }

    /// Erase the line: what follows starts on a clean line.
    pub fn done(&self) {
        if let Some(state) = &self.state {
            let mut s = state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            s.erase();
            let _ = s.out.flush();
        }
    }

    fn draw(&self, force: bool, text: impl FnOnce(f64) -> String) {
        let Some(state) = &self.state else {
            return;
        };
        let mut s = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if !force && s.drawn_at.is_some_and(|at| now.duration_since(at) < EVERY) {
            return;
        }
        let line = text(now.duration_since(s.started).as_secs_f64());
        // Carriage return and erase-line: the line is rewritten in place.
        let _ = write!(s.out, "\r\x1b[2K{line}");
        let _ = s.out.flush();
        s.shown = true;
        s.drawn_at = Some(now);
    }
}

impl State {
    fn erase(&mut self) {
        if self.shown {
            let _ = write!(self.out, "\r\x1b[2K");
            self.shown = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().map(|b| b.clone()).unwrap_or_default())
                .into_owned()
        }
    }

    #[test]
    fn the_line_is_rewritten_in_place_and_erased_before_notes_and_at_the_end() {
        let out = Captured::default();
        let p = Progress::to(Some(Box::new(out.clone())));
        p.listed(500);
        // Within the redraw interval: not drawn again.
        p.listed(1000);
        let text = out.text();
        assert!(text.starts_with("\r\x1b[2Kskoop: listing the cluster's objects: 500 read ("));
        assert!(!text.contains("1000"), "{text:?}");
        std::thread::sleep(EVERY);
        p.collecting(&["node-2".into(), "node-3".into()], 3);
        assert!(
            out.text().contains(
                "\r\x1b[2Kskoop: collecting node dumps: 1/3 done (node node-2 and 1 more) ("
            ),
            "{:?}",
            out.text()
        );
        p.note("skoop: node node-2: collector pod skoop/x is Pending");
        assert!(
            out.text()
                .ends_with("\r\x1b[2Kskoop: node node-2: collector pod skoop/x is Pending\n"),
            "{:?}",
            out.text()
        );
        drop(p);
        assert!(
            out.text().ends_with("is Pending\n"),
            "nothing to erase after a note: {:?}",
            out.text()
        );
    }

    #[test]
    fn nothing_is_drawn_without_a_terminal() {
        let p = Progress::to(None);
        p.listed(10);
        p.collecting(&[], 1);
        p.done();
    }
}
