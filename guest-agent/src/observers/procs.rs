//! Processes of ours found through /proc: workload leftovers (stress-ng,
//! hackbench, churn workers and their children) and other agents.

use std::fs;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub comm: String,
    pub cmdline: Vec<String>,
}

pub fn list() -> Vec<Proc> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|c| *c == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        out.push(Proc { pid, comm: comm.trim().to_string(), cmdline });
    }
    out
}

/// A process one of our workloads started.
pub fn is_workload(p: &Proc) -> bool {
    p.comm.starts_with("stress-ng")
        || p.comm == "hackbench"
        || p.cmdline.iter().any(|a| a == "churn-worker")
}

/// Where the host puts a user's own scheduler binaries (experiment --sched-bin).
pub const CUSTOM_DIR: &str = "/root/custom/";

/// Another agent that may hold a scheduler or a map (`run`, `run-bin`,
/// `hold`, `watch`), or a user's scheduler binary the host copied in (run
/// directly or by an interpreter): all stop cleanly on SIGTERM.
pub fn is_agent(p: &Proc) -> bool {
    let agent = p.cmdline.first().is_some_and(|a| a.ends_with("scx-guest-agent"))
        && p.cmdline.get(1).is_some_and(|a| ["run", "run-bin", "hold", "watch"].contains(&a.as_str()));
    agent || p.cmdline.iter().take(2).any(|a| a.starts_with(CUSTOM_DIR))
}

fn alive(pid: i32) -> bool {
    // a zombie is gone for our purposes: it holds no maps, runs nothing
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rsplit_once(')').map(|(_, r)| !r.trim_start().starts_with('Z')).unwrap_or(false),
        Err(_) => false,
    }
}

/// Signal `pids`, wait up to `wait` for them to go; SIGKILL what is left
/// and wait a little more. Returns the pids still alive.
pub fn terminate(pids: &[i32], first: i32, wait: Duration) -> Vec<i32> {
    let me = std::process::id() as i32;
    let pids: Vec<i32> = pids.iter().copied().filter(|p| *p != me).collect();
    for p in &pids {
        // SAFETY: plain kill(2), integers only; a pid that is already gone just gives ESRCH.
        unsafe { libc::kill(*p, first) };
    }
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in pids.iter().filter(|p| alive(**p)) {
        // SAFETY: plain kill(2), integers only; a pid that exited since alive() gives ESRCH.
        unsafe { libc::kill(*p, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    pids.into_iter().filter(|p| alive(*p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Proc {
        Proc { pid: 1, comm: String::new(), cmdline: args.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn agents_and_user_binaries() {
        assert!(is_agent(&p(&["/root/scx-guest-agent", "run-bin", "--bin", "x"])));
        assert!(is_agent(&p(&["/root/scx-guest-agent", "hold", "--sched", "scx_simple"])));
        assert!(!is_agent(&p(&["/root/scx-guest-agent", "reset"])));
        assert!(is_agent(&p(&["/root/custom/custom"])));
        assert!(is_agent(&p(&["/bin/sh", "/root/custom/control"])));
        assert!(!is_agent(&p(&["sleep", "10"])));
    }
}
