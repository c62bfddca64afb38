//! Progress on long steps: an indicatif spinner line on a terminal, plain
//! lines (at most one per `every`) when stderr is a file or a CI log, where
//! a redrawn line would be noise.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    label: String,
    /// Some on a terminal
    bar: Option<ProgressBar>,
    start: Instant,
    last: Option<Instant>,
    every: Duration,
}

pub fn fmt_elapsed(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

impl Progress {
    pub fn new(label: &str) -> Progress {
        let bar = crate::term::is_tty(libc::STDERR_FILENO).then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{spinner} [{prefix}] {wide_msg} ({elapsed})").expect("a valid progress template"),
            );
            b.set_prefix(label.to_string());
            b.enable_steady_tick(Duration::from_millis(250));
            b
        });
        Progress { label: label.to_string(), bar, start: Instant::now(), last: None, every: Duration::from_secs(30) }
    }

    /// Plain-line period when not on a terminal.
    pub fn every(mut self, d: Duration) -> Progress {
        self.every = d;
        self
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn update(&mut self, msg: &str) {
        match &self.bar {
            Some(b) => b.set_message(msg.to_string()),
            None if self.last.is_none_or(|t| t.elapsed() >= self.every) => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "[{}] {} ({} elapsed)", self.label, msg, fmt_elapsed(self.start.elapsed()));
                let _ = err.flush();
                self.last = Some(Instant::now());
            }
            None => {}
        }
    }

    /// A line that always shows (and does not get overwritten).
    pub fn note(&mut self, msg: &str) {
        let line = format!("[{}] {}", self.label, msg);
        match &self.bar {
            Some(b) => b.suspend(|| crate::errln!("{line}")),
            None => crate::errln!("{line}"),
        }
    }

    pub fn finish(mut self, msg: &str) {
        let m = format!("{msg} in {}", fmt_elapsed(self.start.elapsed()));
        self.note(&m);
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // a step that ended in an error leaves no spinner behind
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
