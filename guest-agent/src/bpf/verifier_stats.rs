//! Verifier statistics of every program of a loaded scheduler, as the BPF
//! community's veristat reports them (instructions processed, states), so the
//! nightly job can flag a change that bloats verification. The verifier prints
//! them at log level BPF_LOG_STATS (4) even when a program loads fine; we give
//! each program a log buffer of its own and parse the stats line afterwards.

use libbpf_rs::{AsRawLibbpf, OpenObject};
use serde::Serialize;

const BPF_LOG_STATS: u32 = 4;
const LOG_BYTES: usize = 16 << 10; // the stats line is short; room for a little more

/// One program's figures (the fields of veristat's JSON output).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProgStats {
    pub prog_name: String,
    pub verdict: String,
    pub total_insns: u64,
    pub total_states: u64,
    pub peak_states: u64,
}

/// The log buffers handed to libbpf; they must outlive the load.
pub struct LogBufs {
    bufs: Vec<(String, Box<[u8]>)>,
}

/// Ask for statistics from every program that will be loaded.
pub fn prepare(obj: &mut OpenObject) -> LogBufs {
    let mut bufs = Vec::new();
    for mut prog in obj.progs_mut() {
        if !prog.autoload() {
            continue;
        }
        let name = prog.name().to_string_lossy().into_owned();
        let mut buf = vec![0u8; LOG_BYTES].into_boxed_slice();
        prog.set_log_level(BPF_LOG_STATS);
        // SAFETY: the buffer lives in LogBufs, which the caller keeps until
        // after the load; libbpf only writes within the given size.
        unsafe {
            libbpf_rs::libbpf_sys::bpf_program__set_log_buf(
                prog.as_libbpf_object().as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len() as _,
            );
        }
        bufs.push((name, buf));
    }
    LogBufs { bufs }
}

impl LogBufs {
    /// What the verifier wrote for `prog` (libbpf does not print the log of
    /// a failed load when the buffer is ours).
    pub fn log_of(&self, prog: &str) -> Option<String> {
        let (_, buf) = self.bufs.iter().find(|(n, _)| n == prog)?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        (end > 0).then(|| String::from_utf8_lossy(&buf[..end]).into_owned())
    }

    /// The figures, after a successful load.
    pub fn collect(&self) -> Vec<ProgStats> {
        self.bufs
            .iter()
            .filter_map(|(name, buf)| {
                let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                parse(name, &String::from_utf8_lossy(&buf[..end]))
            })
            .collect()
    }
}

/// "processed 1234 insns (limit 1000000) max_states_per_insn 2 total_states 98 peak_states 98 mark_read 12"
pub fn parse(name: &str, log: &str) -> Option<ProgStats> {
    let line = log.lines().rev().find(|l| l.starts_with("processed "))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |key: &str| words.iter().position(|w| *w == key).and_then(|i| words.get(i + 1)).and_then(|v| v.parse().ok());
    Some(ProgStats {
        prog_name: name.to_string(),
        verdict: "success".into(),
        total_insns: after("processed")?,
        total_states: after("total_states").unwrap_or(0),
        peak_states: after("peak_states").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_stats_line() {
        let log = "func#0 @0\nverification time 210 usec\nstack depth 8\n\
                   processed 1543 insns (limit 1000000) max_states_per_insn 2 total_states 121 peak_states 98 mark_read 14\n";
        assert_eq!(
            parse("simple_dispatch", log),
            Some(ProgStats {
                prog_name: "simple_dispatch".into(),
                verdict: "success".into(),
                total_insns: 1543,
                total_states: 121,
                peak_states: 98
            })
        );
        assert_eq!(parse("x", "no stats here\n"), None);
    }
}
