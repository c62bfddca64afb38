//! Kernel splat scanner for `run<N>.dmesg.log` and `run<N>.serial.log`.
//!
//! A scheduler or kernel can misbehave while every program exits 0, so the
//! report scans the logs for the contract's splat patterns
//! (scx_contract::splat, listed with their reasons in docs/report.md). A hit
//! quotes its line and the next lines (up to [`CONTEXT_LINES`] in all), and
//! lines already quoted are not matched again.

use std::path::Path;

use anyhow::{Context, Result};
pub use scx_contract::splat::{classify, message_of, LogKind, PATTERNS};
use serde::{Deserialize, Serialize};

/// Lines quoted per hit, the hit line included.
pub const CONTEXT_LINES: usize = 5;
/// Hits kept per file; a storm of soft lockups says nothing new after that.
pub const MAX_HITS_PER_FILE: usize = 20;

/// One splat: where it was and its first lines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Splat {
    /// The log file, relative to the group directory (e.g. `test/run2.dmesg.log`).
    pub file: String,
    /// 1-based line of the hit; null for a splat the runner reported in run<N>.json.
    pub line: Option<usize>,
    /// Name from the pattern list.
    pub pattern: String,
    /// The hit line and the lines after it (at most CONTEXT_LINES).
    pub lines: Vec<String>,
}

/// Scans a log's text; `file` is what the hits will name.
pub fn scan_text(text: &str, kind: LogKind, file: &str) -> Vec<Splat> {
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut hits = Vec::new();
    let mut i = 0;
    while i < lines.len() && hits.len() < MAX_HITS_PER_FILE {
        if let Some(name) = classify(lines[i], kind) {
            let end = (i + CONTEXT_LINES).min(lines.len());
            hits.push(Splat {
                file: file.to_string(),
                line: Some(i + 1),
                pattern: name.to_string(),
                lines: lines[i..end].iter().map(|l| l.to_string()).collect(),
            });
            i = end;
        } else {
            i += 1;
        }
    }
    hits
}

/// Scans a log file (bytes that are not UTF-8 are replaced: consoles garble).
pub fn scan_file(path: &Path, kind: LogKind, file: &str) -> Result<Vec<Splat>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(scan_text(&String::from_utf8_lossy(&bytes), kind, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_quotes_context_and_does_not_double_count() {
        let log = "\
[   10.000000] sched_ext: BPF scheduler \"simple\" enabled
[   31.100000] ------------[ cut here ]------------
[   31.100001] WARNING: CPU: 1 PID: 77 at kernel/sched/ext.c:1789 dispatch_enqueue+0x1a2/0x3c0
[   31.100002] Modules linked in:
[   31.100003] CPU: 1 UID: 0 PID: 77 Comm: hackbench Not tainted 6.12.57 #1
[   31.100004] RIP: 0010:dispatch_enqueue+0x1a2/0x3c0
[   31.100005] Call Trace:
[   31.100006]  <TASK>
[   31.200000] sched_ext: BPF scheduler \"simple\" disabled (runtime error)
[   31.200001] sched_ext: simple: invalid DSQ ID 0x0000000000001234
[   31.200002]   scx_bpf_error_bstr+0x6e/0x90
";
        let hits = scan_text(log, LogKind::Dmesg, "test/run1.dmesg.log");
        assert_eq!(hits.len(), 2, "{hits:#?}");
        assert_eq!(hits[0].pattern, "warning");
        assert_eq!(hits[0].line, Some(3));
        assert_eq!(hits[0].lines.len(), CONTEXT_LINES);
        assert!(hits[0].lines[3].contains("RIP: 0010:dispatch_enqueue"));
        assert_eq!(hits[1].pattern, "sched_ext_ejected");
        assert_eq!(hits[1].line, Some(9));
        assert_eq!(hits[1].lines.len(), 3); // end of file
        assert_eq!(hits[1].file, "test/run1.dmesg.log");
    }

    #[test]
    fn hit_cap_and_message_of() {
        let log = "[ 1.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [x:1]\n".repeat(500);
        assert_eq!(scan_text(&log, LogKind::Dmesg, "f").len(), MAX_HITS_PER_FILE);
    }
}
