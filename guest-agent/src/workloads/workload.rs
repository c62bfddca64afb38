//! The workloads, each spread over the run's cgroups: a stress-ng fork
//! storm, hackbench repeated until the time is up, and our own churn of
//! short-lived tasks (see churn.rs); and cgroup-churn, which makes cgroups
//! of its own (cpu.weight, cpu.max), runs short tasks in them and removes
//! them, what a per-cgroup map leaks on. Their output goes to workload.log,
//! prefixed by cgroup; their figure of merit is parsed from it.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::workloads::cgroup::{self, Cgroups, Leaf};
use scx_contract::config::Workloads;
use scx_contract::names::Workload;
use scx_contract::run::WorkloadMetric;


#[derive(Debug)]
pub struct Outcome {
    pub metric: WorkloadMetric,
    /// why the workload did not do its job, if it did not
    pub error: Option<String>,
    /// rounds still running when the run ended, stopped and not counted
    pub cut_rounds: u32,
}

/// What one cgroup's runner reports back.
#[derive(Debug, Default)]
struct Part {
    values: Vec<f64>,
    errors: Vec<String>,
    cut: u32,
}

type Log = Arc<Mutex<File>>;

fn log_line(log: &Log, prefix: &str, line: &str) {
    if let Ok(mut f) = log.lock() {
        let _ = writeln!(f, "[{prefix}] {line}");
        let _ = f.flush();
    }
}

/// Run `cmd` in `leaf` until it exits, teeing stdout+stderr into the log.
/// `pid` holds the child's pid (= its process group) while it runs so
/// `stop` can signal the whole tree.
fn run_child(cmd: &mut Command, leaf: &Leaf, log: &Log, pid: &AtomicI32) -> Result<(i32, String)> {
    // one pipe for both streams keeps their lines in order
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into fds, an [i32; 2] that outlives the call.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("pipe: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fds[] are fresh from pipe2 and owned by nothing else.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    cmd.stdin(Stdio::null()).stdout(Stdio::from(wr.try_clone()?)).stderr(Stdio::from(wr));
    let mut child = cgroup::spawn_into(cmd, leaf)?;
    // the Command holds the write ends: drop them or we never see EOF
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    pid.store(child.id() as i32, Ordering::SeqCst);

    let mut out = String::new();
    for line in BufReader::new(File::from(rd)).lines() {
        let Ok(line) = line else { break };
        log_line(log, &leaf.name, &line);
        out.push_str(&line);
        out.push('\n');
    }
    let status = child.wait()?;
    pid.store(0, Ordering::SeqCst);
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok((code, out))
}

pub struct Running {
    kind: Workload,
    stop: Arc<AtomicBool>,
    pids: Vec<Arc<AtomicI32>>,
    threads: Vec<JoinHandle<Part>>,
    deadline: Instant,
}

/// `share` of `total` for part `i` of `n`, at least 1 each.
fn split(total: u32, i: usize, n: usize) -> u32 {
    let n = n.max(1) as u32;
    let base = total / n;
    let extra = if (i as u32) < total % n { 1 } else { 0 };
    (base + extra).max(1)
}

fn secs(d: f64, run: Duration) -> Duration {
    if d > 0.0 {
        Duration::from_secs_f64(d).min(run)
    } else {
        run
    }
}

pub fn start(
    kind: Workload,
    cfg: &Workloads,
    cgroups: &Cgroups,
    run_duration: Duration,
    log_path: &std::path::Path,
) -> Result<Running> {
    let log: Log = Arc::new(Mutex::new(
        File::create(log_path).with_context(|| format!("creating {}", log_path.display()))?,
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let n = cgroups.leaves.len();
    let duration = match kind {
        Workload::StressNg => secs(cfg.stress_ng.duration_s, run_duration),
        Workload::Hackbench => run_duration,
        Workload::CustomChurn => secs(cfg.churn.duration_s, run_duration),
        Workload::CgroupChurn => secs(cfg.cgroup_churn.duration_s, run_duration),
    };
    let deadline = Instant::now() + duration;
    let mut pids = Vec::new();
    let mut threads = Vec::new();

    if kind == Workload::CgroupChurn {
        // one runner, beside the run's cgroups: it makes its own
        let weights: Vec<u32> = cgroups.leaves.iter().map(|l| l.weight).collect();
        let (log, stop2, cfg, weighted) = (log.clone(), stop.clone(), cfg.clone(), cgroups.weighted);
        let t = std::thread::Builder::new()
            .name("workload-cgroup-churn".into())
            .spawn(move || cgroup_churn_loop(&cfg, &weights, weighted, &log, &stop2, deadline))?;
        threads.push(t);
        return Ok(Running { kind, stop, pids, threads, deadline });
    }
    for (i, leaf) in cgroups.leaves.iter().enumerate() {
        let leaf = Leaf { name: leaf.name.clone(), path: leaf.path.clone(), weight: leaf.weight };
        let (log, stop, pid) = (log.clone(), stop.clone(), Arc::new(AtomicI32::new(0)));
        pids.push(pid.clone());
        let cfg = cfg.clone();
        let t = std::thread::Builder::new()
            .name(format!("workload-{}", leaf.name))
            .spawn(move || match kind {
                Workload::StressNg => {
                    let mut cmd = Command::new("stress-ng");
                    cmd.arg("--fork")
                        .arg(split(cfg.stress_ng.processes, i, n).to_string())
                        .arg("--timeout")
                        .arg(format!("{}s", duration.as_secs().max(1)))
                        .arg("--metrics-brief");
                    one_shot(&mut cmd, &leaf, &log, &pid, parse_stress_ng)
                }
                Workload::CustomChurn => {
                    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
                    let mut cmd = Command::new(exe);
                    cmd.arg("churn-worker")
                        .arg("--burst")
                        .arg(split(cfg.churn.burst, i, n).to_string())
                        .arg("--rate-hz")
                        .arg(cfg.churn.rate_hz.to_string())
                        .arg("--task-us")
                        .arg(cfg.churn.task_us.to_string())
                        .arg("--duration")
                        .arg(format!("{:.3}", duration.as_secs_f64()));
                    one_shot(&mut cmd, &leaf, &log, &pid, parse_churn)
                }
                Workload::Hackbench => hackbench_loop(&cfg, &leaf, &log, &pid, &stop, deadline),
                Workload::CgroupChurn => unreachable!("started above"),
            })?;
        threads.push(t);
    }
    Ok(Running { kind, stop, pids, threads, deadline })
}

fn one_shot(
    cmd: &mut Command,
    leaf: &Leaf,
    log: &Log,
    pid: &AtomicI32,
    parse: fn(&str) -> Option<f64>,
) -> Part {
    let mut part = Part::default();
    match run_child(cmd, leaf, log, pid) {
        Ok((code, out)) => {
            match parse(&out) {
                Some(v) => part.values.push(v),
                None => part.errors.push(format!("{}: no result in its output", leaf.name)),
            }
            if code != 0 {
                part.errors.push(format!("{}: exited with status {code}", leaf.name));
            }
        }
        Err(e) => part.errors.push(format!("{}: {e:#}", leaf.name)),
    }
    part
}

fn hackbench_loop(
    cfg: &Workloads,
    leaf: &Leaf,
    log: &Log,
    pid: &AtomicI32,
    stop: &AtomicBool,
    deadline: Instant,
) -> Part {
    let h = &cfg.hackbench;
    let mut part = Part::default();
    let mut runs = 0;
    while !stop.load(Ordering::SeqCst)
        && Instant::now() < deadline
        && (h.max_runs == 0 || runs < h.max_runs)
    {
        let mut cmd = Command::new("hackbench");
        cmd.args(["-g", &h.groups.to_string(), "-l", &h.loops.to_string(), "-f", &h.fds.to_string()]);
        if h.threads {
            cmd.arg("-T");
        }
        match run_child(&mut cmd, leaf, log, pid) {
            // hackbench catches stop()'s SIGTERM and exits 0: with a Time: of
            // the shortened round, or none ("No measurements available") when
            // the signal came during set-up. Either way we cut it, it did not fail.
            Ok((0, out)) if hackbench_signalled(&out) => {
                part.cut += 1;
                log_line(log, &leaf.name, "hackbench: the round running at the run's end was stopped (not counted)");
                break;
            }
            Ok((0, out)) => match parse_hackbench(&out) {
                Some(t) => part.values.push(t),
                None => part.errors.push(format!("{}: hackbench printed no Time:", leaf.name)),
            },
            // killed by stop(): not a failure of the workload
            Ok(_) if stop.load(Ordering::SeqCst) => {
                part.cut += 1;
                log_line(log, &leaf.name, "hackbench: the round running at the run's end was killed (not counted)");
                break;
            }
            Ok((code, _)) => {
                part.errors.push(format!("{}: hackbench exited with status {code}", leaf.name));
                break;
            }
            Err(e) => {
                part.errors.push(format!("{}: {e:#}", leaf.name));
                break;
            }
        }
        runs += 1;
    }
    part
}

/// cgroup-churn: every 1/rate_hz seconds a new cgroup under the run's
/// parent gets a cpu.weight (cycling over the run's cgroups' weights) and
/// cpu.max, runs `tasks` short processes and is removed once they are gone.
/// Its figure of merit is cgroups removed per second.
fn cgroup_churn_loop(cfg: &Workloads, weights: &[u32], weighted: bool, log: &Log, stop: &AtomicBool, deadline: Instant) -> Part {
    let c = &cfg.cgroup_churn;
    let mut part = Part::default();
    let period = Duration::from_secs_f64(1.0 / c.rate_hz);
    let t0 = Instant::now();
    let (mut made, mut removed) = (0u64, 0u64);
    let mut next = t0;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let leaf = Leaf {
            name: format!("churn-{made}"),
            path: std::path::Path::new(cgroup::PARENT).join(format!("churn-{made}")),
            weight: weights.get(made as usize % weights.len().max(1)).copied().unwrap_or(100),
        };
        made += 1;
        if let Err(e) = one_cgroup(c, &leaf, weighted) {
            part.errors.push(format!("{}: {e:#}", leaf.name));
            log_line(log, "cgroup-churn", &format!("{}: {e:#}", leaf.name));
            break;
        }
        removed += 1;
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep((next - now).min(deadline.saturating_duration_since(now)));
        } else {
            next = now; // behind: do not bunch up
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    log_line(log, "cgroup-churn", &format!("cgroups: {made} made, {removed} removed in {secs:.1} s"));
    if secs > 0.0 && removed > 0 {
        part.values.push(removed as f64 / secs);
    }
    part
}

/// Make one cgroup, run the short tasks in it, wait for them, remove it.
fn one_cgroup(c: &scx_contract::config::CgroupChurn, leaf: &Leaf, weighted: bool) -> Result<()> {
    std::fs::create_dir(&leaf.path).with_context(|| format!("creating {}", leaf.path.display()))?;
    let result = (|| -> Result<()> {
        if weighted {
            std::fs::write(leaf.path.join("cpu.weight"), leaf.weight.to_string()).context("writing cpu.weight")?;
            std::fs::write(leaf.path.join("cpu.max"), &c.cpu_max).context("writing cpu.max")?;
        }
        let mut children = Vec::new();
        for _ in 0..c.tasks {
            let mut cmd = Command::new("/bin/true");
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            children.push(cgroup::spawn_into(&mut cmd, leaf)?);
        }
        for mut ch in children {
            ch.wait()?;
        }
        Ok(())
    })();
    // a task that has exited may linger in the cgroup for a moment
    let end = Instant::now() + Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(&leaf.path) {
            Ok(()) => break,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => return Err(e).with_context(|| format!("removing {}", leaf.path.display())),
        }
    }
    result
}

impl Running {
    /// All runners are done by themselves.
    pub fn finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    /// Let the workload end by itself for up to `grace` past its deadline,
    /// then SIGTERM its process groups, then SIGKILL; collect the result.
    /// Stopping well before the deadline (the scheduler died, a signal)
    /// skips the grace period, and so does hackbench: a round still running
    /// at the deadline is cut there (a cut-off sample, not counted), so a
    /// slow host cannot stretch a run or fail it.
    pub fn stop(self, grace: Duration) -> Outcome {
        let grace = if self.kind == Workload::Hackbench { Duration::ZERO } else { grace };
        let now = Instant::now();
        let until = if now + Duration::from_secs(1) >= self.deadline { self.deadline.max(now) + grace } else { now };
        // no new hackbench round from here on
        self.stop.store(true, Ordering::SeqCst);
        while Instant::now() < until && !self.finished() {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop.store(true, Ordering::SeqCst);
        for (sig, wait) in [(libc::SIGTERM, 2000), (libc::SIGKILL, 3000)] {
            if self.finished() {
                break;
            }
            for p in &self.pids {
                let pid = p.load(Ordering::SeqCst);
                if pid > 0 {
                    // SAFETY: plain kill(2) on the child's process group; pid > 0, so -pid is never 0 or -1.
                    unsafe { libc::kill(-pid, sig) };
                }
            }
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(wait) && !self.finished() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let mut values = Vec::new();
        let mut errors = Vec::new();
        let mut cut = 0;
        for t in self.threads {
            match t.join() {
                Ok(p) => {
                    values.extend(p.values);
                    errors.extend(p.errors);
                    cut += p.cut;
                }
                Err(_) => errors.push("a workload thread panicked".into()),
            }
        }
        summarize(self.kind, &values, errors, cut)
    }
}

/// Combine per-cgroup results into the run's metric: throughputs add up
/// (stress-ng, churn), hackbench times are averaged over all runs.
fn summarize(kind: Workload, values: &[f64], errors: Vec<String>, cut_rounds: u32) -> Outcome {
    let (name, higher, value) = match kind {
        Workload::StressNg => ("stressng_bogo_ops_s", true, sum(values)),
        Workload::CustomChurn => ("churn_tasks_per_s", true, sum(values)),
        Workload::CgroupChurn => ("cgroups_per_s", true, sum(values)),
        Workload::Hackbench => (
            "hackbench_time_s",
            false,
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64),
        ),
    };
    let mut error = (!errors.is_empty()).then(|| errors.join("; "));
    // no round finished before the end (a slow host, a short run): no
    // figure for this run, but nothing failed either
    if value.is_none() && error.is_none() && cut_rounds == 0 {
        error = Some("the workload produced no result".into());
    }
    Outcome { metric: WorkloadMetric { name: name.into(), value, higher_is_better: higher }, error, cut_rounds }
}

fn sum(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum())
}

/// bogo ops/s (real time) of the fork stressor from `--metrics-brief`:
/// `stress-ng: metrc: [411] fork  30318  10.00  2.23  13.61  3031.68  1913.98`
/// (older versions say `info:` instead of `metrc:`).
pub fn parse_stress_ng(out: &str) -> Option<f64> {
    out.lines().find_map(|l| {
        let after = l.split_once(']')?.1;
        let mut tok = after.split_whitespace();
        if tok.next()? != "fork" {
            return None;
        }
        let nums: Vec<f64> = tok.map_while(|t| t.parse().ok()).collect();
        // bogo ops, real, usr, sys, bogo ops/s (real time), ...
        (nums.len() >= 5).then(|| nums[4])
    })
}

/// `Time: 0.421` -> 0.421
/// hackbench's own line on catching a signal ("Signal 15 caught, longjmp'ing out!").
fn hackbench_signalled(out: &str) -> bool {
    out.lines().any(|l| l.starts_with("Signal ") && l.contains(" caught"))
}

pub fn parse_hackbench(out: &str) -> Option<f64> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Time:").and_then(|v| v.trim().parse().ok()))
}

/// The churn worker's last line: `churn-worker: spawned 600 failed 0 elapsed 10.002 rate 59.99`
pub fn parse_churn(out: &str) -> Option<f64> {
    out.lines().rev().find_map(|l| {
        let rest = l.strip_prefix("churn-worker:")?;
        let tok: Vec<&str> = rest.split_whitespace().collect();
        let pos = tok.iter().position(|t| *t == "rate")?;
        tok.get(pos + 1)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stress_ng_new_and_old_formats() {
        let new = "stress-ng: info:  [411] setting to a 10 secs run per stressor\n\
stress-ng: info:  [411] dispatching hogs: 4 fork\n\
stress-ng: metrc: [411] stressor       bogo ops real time  usr time  sys time   bogo ops/s     bogo ops/s\n\
stress-ng: metrc: [411]                           (secs)    (secs)    (secs)   (real time) (usr+sys time)\n\
stress-ng: metrc: [411] fork              30318     10.00      2.23     13.61      3031.68        1913.98\n\
stress-ng: info:  [411] successful run completed in 10.01 secs\n";
        assert_eq!(parse_stress_ng(new), Some(3031.68));
        let old = "stress-ng: info:  [99] fork 1200 10.01 0.50 3.00 119.88 342.86\n";
        assert_eq!(parse_stress_ng(old), Some(119.88));
        assert_eq!(parse_stress_ng("stress-ng: info: [1] dispatching hogs: 4 fork\n"), None);
        assert_eq!(parse_stress_ng(""), None);
    }

    #[test]
    fn hackbench_time() {
        let out = "Running in process mode with 4 groups using 40 file descriptors each (== 160 tasks)\n\
Each sender will pass 100 messages of 100 bytes\nTime: 0.421\n";
        assert_eq!(parse_hackbench(out), Some(0.421));
        assert_eq!(parse_hackbench("Time: oops\n"), None);
        assert!(!hackbench_signalled(out));
    }

    #[test]
    fn hackbench_cut_by_sigterm_is_recognised() {
        // rt-tests 2.5's output, SIGTERM to its process group during set-up and mid-run
        let setup = "Running in process mode with 200 groups using 40 file descriptors each (== 8000 tasks)\n\
Each sender will pass 100000 messages of 100 bytes\nSignal 15 caught, longjmp'ing out!\n\
longjmp'ed out, reaping children\nsending SIGTERM to all child processes\n\
signaling 240 worker threads to terminate\nNo measurements available\n";
        assert!(hackbench_signalled(setup));
        assert_eq!(parse_hackbench(setup), None);
        let mid = "Signal 15 caught, longjmp'ing out!\nlongjmp'ed out, reaping children\n\
signaling 800 worker threads to terminate\nTime: 2.588\n";
        assert!(hackbench_signalled(mid), "a shortened round's Time: is not a measurement");
    }

    #[test]
    fn churn_summary() {
        let out = "churn-worker: starting\nchurn-worker: spawned 600 failed 0 elapsed 10.002 rate 59.99\n";
        assert_eq!(parse_churn(out), Some(59.99));
        assert_eq!(parse_churn("nothing"), None);
    }

    #[test]
    fn split_spreads_and_never_gives_zero() {
        assert_eq!((0..3).map(|i| split(4, i, 3)).collect::<Vec<_>>(), vec![2, 1, 1]);
        assert_eq!((0..3).map(|i| split(32, i, 3)).sum::<u32>(), 32);
        assert_eq!(split(1, 2, 3), 1);
        assert_eq!(split(5, 0, 0), 5);
    }

    #[test]
    fn summaries() {
        let o = summarize(Workload::Hackbench, &[1.0, 2.0, 3.0], vec![], 1);
        assert_eq!(o.metric.value, Some(2.0));
        assert!(!o.metric.higher_is_better);
        assert!(o.error.is_none());
        let o = summarize(Workload::StressNg, &[10.0, 5.5], vec![], 0);
        assert_eq!(o.metric.value, Some(15.5));
        assert_eq!(o.metric.name, "stressng_bogo_ops_s");
        let o = summarize(Workload::CustomChurn, &[], vec![], 0);
        assert_eq!(o.metric.value, None);
        assert!(o.error.is_some());
        // a hackbench whose only round was cut at the end: no figure, no failure
        let o = summarize(Workload::Hackbench, &[], vec![], 2);
        assert_eq!((o.metric.value, o.error.is_none(), o.cut_rounds), (None, true, 2));
    }
}
