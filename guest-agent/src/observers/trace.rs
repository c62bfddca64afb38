//! The schedulers' bpf_printk() lines, read from trace_pipe by a thread for
//! the length of a run and written to trace.log as they arrive.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};

const TRACING: &str = "/sys/kernel/tracing";

pub struct TraceReader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

/// Empty the trace ring buffer (old lines are not this run's).
pub fn clear() {
    let _ = OpenOptions::new().write(true).truncate(true).open(Path::new(TRACING).join("trace"));
}

impl TraceReader {
    pub fn start(out: &Path) -> Result<TraceReader> {
        clear();
        let mut outf = File::create(out).with_context(|| format!("creating {}", out.display()))?;
        let pipe = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(Path::new(TRACING).join("trace_pipe"))
            .context("opening trace_pipe (is tracefs mounted at /sys/kernel/tracing?)")?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let thread = std::thread::Builder::new().name("trace".into()).spawn(move || {
            let mut pipe = pipe;
            let mut buf = vec![0u8; 64 * 1024];
            let mut pending = Vec::new();
            let mut lines = 0u64;
            loop {
                let stopping = st.load(Ordering::SeqCst);
                let mut pfd = libc::pollfd { fd: pipe.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // short timeout: the stop flag is checked at least 5x a second
                // SAFETY: pfd is one live pollfd on our stack (nfds 1) on `pipe`'s fd, open for the whole loop.
                let ready = unsafe { libc::poll(&mut pfd, 1, if stopping { 0 } else { 200 }) };
                if ready > 0 {
                    match pipe.read(&mut buf) {
                        Ok(n) if n > 0 => {
                            pending.extend_from_slice(&buf[..n]);
                            while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                                let line: Vec<u8> = pending.drain(..=i).collect();
                                // only BPF programs' printk, not other tracers' output
                                if line.windows(16).any(|w| w == b"bpf_trace_printk") {
                                    let _ = outf.write_all(&line);
                                    lines += 1;
                                }
                            }
                            let _ = outf.flush();
                            continue;
                        }
                        _ => {}
                    }
                }
                if stopping {
                    return lines;
                }
            }
        })?;
        Ok(TraceReader { stop, thread: Some(thread) })
    }

    /// Drain what is left and stop; returns the number of lines kept.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0)
    }
}
