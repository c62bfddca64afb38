//! Progress on long steps: one rewritten status line on a terminal, plain
//! lines (at most one per `every`) when stderr is a file or a CI log.

use std::io::Write;
use std::time::{Duration, Instant};

pub struct Progress {
    label: String,
    tty: bool,
    start: Instant,
    last: Option<Instant>,
    every: Duration,
    drawn: bool,
}

pub fn fmt_elapsed(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

impl Progress {
    pub fn new(label: &str) -> Progress {
        Progress {
            label: label.to_string(),
            tty: crate::term::is_tty(libc::STDERR_FILENO),
            start: Instant::now(),
            last: None,
            every: Duration::from_secs(30),
            drawn: false,
        }
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
        let line = format!("[{}] {} ({} elapsed)", self.label, msg, fmt_elapsed(self.start.elapsed()));
        let mut err = std::io::stderr().lock();
        if self.tty {
            let width = crate::term::size().map(|(c, _)| c as usize).unwrap_or(100).saturating_sub(1);
            let shown: String = line.chars().take(width).collect();
            let _ = write!(err, "\r\x1b[2K{shown}");
            self.drawn = true;
        } else if self.last.is_none_or(|t| t.elapsed() >= self.every) {
            let _ = writeln!(err, "{line}");
            self.last = Some(Instant::now());
        }
        let _ = err.flush();
    }

    /// A line that always shows (and does not get overwritten).
    pub fn note(&mut self, msg: &str) {
        let mut err = std::io::stderr().lock();
        if self.drawn {
            let _ = write!(err, "\r\x1b[2K");
            self.drawn = false;
        }
        let _ = writeln!(err, "[{}] {}", self.label, msg);
    }

    pub fn finish(mut self, msg: &str) {
        let m = format!("{msg} in {}", fmt_elapsed(self.start.elapsed()));
        self.note(&m);
    }
}
