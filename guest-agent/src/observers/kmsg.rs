//! The kernel log of a run, read from /dev/kmsg (records after the agent
//! started only), and the splats in it: warnings, oopses, stalls.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;

use anyhow::{Context, Result};

pub struct Kmsg {
    file: File,
}

impl Kmsg {
    /// Open positioned at the end: only what the kernel logs from now on.
    pub fn open_at_end() -> Result<Kmsg> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .context("opening /dev/kmsg")?;
        // SAFETY: plain lseek on the fd of `file`, which we own and keep open.
        unsafe { libc::lseek(file.as_raw_fd(), 0, libc::SEEK_END) };
        Ok(Kmsg { file })
    }

    /// Every record logged since open (or the last call), formatted like
    /// dmesg: "[   12.345678] message".
    pub fn read_new(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(l) = format_record(&String::from_utf8_lossy(&buf[..n])) {
                        out.extend(l);
                    }
                }
                // EPIPE: records were overwritten before we read them; go on
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break, // EAGAIN: nothing more
            }
        }
        out
    }
}

/// "6,1234,5678901,-;message\n SUBSYSTEM=...\n" -> ["[    5.678901] message"].
/// Continuation lines starting with a space are key=value metadata: dropped.
pub fn format_record(rec: &str) -> Option<Vec<String>> {
    let (head, body) = rec.split_once(';')?;
    let ts_us: u64 = head.split(',').nth(2)?.parse().ok()?;
    let msg = body.lines().next().unwrap_or("");
    // the kernel escapes non-printables as \xNN; multi-line messages come
    // as separate records, so one line per record
    Some(vec![format!("[{:5}.{:06}] {}", ts_us / 1_000_000, ts_us % 1_000_000, msg)])
}

/// Empty the kernel ring buffer as `dmesg -C` does.
pub fn clear() -> Result<()> {
    // SYSLOG_ACTION_CLEAR
    // SAFETY: CLEAR reads and writes no buffer, so a null pointer with length 0 is valid.
    if unsafe { libc::klogctl(5, std::ptr::null_mut(), 0) } < 0 {
        anyhow::bail!("klogctl(CLEAR): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Lines that start a kernel splat (the contract's patterns, the same the
/// report uses): what CI must not see after a run. sched_ext's own report of
/// a scheduler error is not one (the exit kind records that), but its
/// watchdog's stall is.
pub fn splats(lines: &[String]) -> Vec<String> {
    use scx_contract::splat::{classify, is_kernel_splat, LogKind};
    lines
        .iter()
        .filter(|l| classify(l, LogKind::Dmesg).is_some_and(is_kernel_splat))
        .take(20)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_format() {
        let r = "6,1234,5678901,-;sched_ext: BPF scheduler \"simple_test\" enabled\n SUBSYSTEM=x\n";
        assert_eq!(
            format_record(r).unwrap(),
            vec!["[    5.678901] sched_ext: BPF scheduler \"simple_test\" enabled".to_string()]
        );
        assert!(format_record("garbage").is_none());
    }

    #[test]
    fn splat_detection() {
        let lines: Vec<String> = [
            "[1.0] sched_ext: BPF scheduler \"simple_test\" enabled",
            "[2.0] sched_ext: BPF scheduler \"simple_test\" disabled (unregistered from user space)",
            "[3.0] WARNING: CPU: 1 PID: 77 at kernel/sched/ext.c:1234 foo+0x1/0x2",
            "[3.1] Call Trace:",
            "[3.2] sched_ext: BPF scheduler \"simple_test\" disabled (runtime error)",
            "[4.0] sched_ext: simple_test: runnable task stall (kworker/0:1[12] failed to run for 30.1s)",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = splats(&lines);
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(s[0].contains("WARNING"));
        assert!(s[1].contains("stall"));
        assert!(splats(&lines[..2]).is_empty());
    }
}
