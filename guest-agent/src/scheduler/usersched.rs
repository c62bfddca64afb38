//! A user's own scheduler binary as a `Running` scheduler, so `run-bin`
//! drives it with `run`'s body: started with its output in scheduler.log,
//! ready once sched_ext is `enabled` and the named map exists (only maps
//! created after the start count, so a leftover is never picked), sampled
//! like `watch` (counters from its .bss when it has ours), stopped with
//! SIGINT, then SIGTERM, then SIGKILL.

use std::cell::RefCell;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::exit::{Exit, BAD_INPUT, LOAD_FAILED};
use crate::observers::kmsg::Kmsg;
use crate::bpf::maps::{self, MapInfo};
use crate::scheduler::sched::{self, Counters, ExitInfo, Running};
use crate::bpf::storagecount::{StorageCounter, BPF_MAP_TYPE_TASK_STORAGE};
use crate::commands::watch::{self, Bss};
use crate::scheduler::exitlog;
use crate::signals;

/// What run.json records about the binary (`bin`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct BinReport {
    pub path: String,
    pub args: Vec<String>,
    pub pid: u32,
    /// start to sched_ext `enabled`, milliseconds
    pub enable_ms: f64,
    pub map_name: String,
    pub map_id: u32,
    pub map_type: u32,
    /// whether evictions/scans came from the binary's .bss (else 0)
    pub counters_from_bss: bool,
    /// how it ended: "exited by itself", "SIGINT", "SIGTERM", "SIGKILL"
    pub stopped_by: String,
    /// its wait status, e.g. "exit 0" or "signal 9"
    pub status: String,
    /// seconds from our SIGINT to its exit
    pub stop_s: f64,
}

pub struct UserSched {
    child: Child,
    log: PathBuf,
    map: Option<(MapInfo, OwnedFd)>,
    bss: Option<Bss>,
    kmsg: RefCell<Kmsg>,
    klines: RefCell<Vec<String>>,
    /// how long SIGINT may take before SIGTERM
    grace: Duration,
    pub report: BinReport,
    pub ops_name: String,
}

fn status_str(s: std::process::ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (_, Some(sig)) => format!("signal {sig}"),
        _ => "unknown".into(),
    }
}

/// The last `n` lines of a file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return "(no output)".into();
    }
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl UserSched {
    /// Start `bin` and wait until it is ready to be measured. On any error
    /// the binary is stopped again (Drop).
    pub fn start(bin: &Path, args: &[String], map_name: Option<&str>, log: &Path, timeout: Duration, grace: Duration) -> Result<UserSched> {
        if !bin.is_file() {
            return Err(Exit::new(BAD_INPUT, format!("{}: no such file", bin.display())).into());
        }
        if sched::state() != "disabled" {
            return Err(Exit::new(
                LOAD_FAILED,
                format!(
                    "another sched_ext scheduler is attached (state {}, ops {}); run `reset` first",
                    sched::state(),
                    sched::root_ops().unwrap_or_default()
                ),
            )
            .into());
        }
        let baseline = maps::last_id();
        let kmsg = Kmsg::open_at_end()?;
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let t0 = Instant::now();
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            // its own group: our signals reach the binary and its children only
            .process_group(0)
            .spawn()
            .map_err(|e| Exit::new(LOAD_FAILED, format!("cannot start {}: {e}", bin.display())))?;
        let mut s = UserSched {
            report: BinReport {
                path: bin.display().to_string(),
                args: args.to_vec(),
                pid: child.id(),
                map_name: map_name.unwrap_or_default().to_string(),
                ..Default::default()
            },
            child,
            log: log.to_path_buf(),
            map: None,
            bss: None,
            kmsg: RefCell::new(kmsg),
            klines: RefCell::new(Vec::new()),
            ops_name: String::new(),
            grace,
        };
        s.wait_enabled(t0, timeout)?;
        s.report.enable_ms = t0.elapsed().as_secs_f64() * 1e3;
        s.ops_name = sched::root_ops().unwrap_or_default();
        s.find_map(map_name, baseline)?;
        s.report.map_name = s.map.as_ref().map(|(m, _)| m.name.clone()).unwrap_or_default();
        Ok(s)
    }

    fn wait_enabled(&mut self, t0: Instant, timeout: Duration) -> Result<()> {
        loop {
            if let Some(st) = self.child.try_wait()? {
                return Err(Exit::new(
                    LOAD_FAILED,
                    format!(
                        "{} ended ({}) before sched_ext was enabled; its last output:\n{}",
                        self.report.path,
                        status_str(st),
                        tail(&self.log, 15)
                    ),
                )
                .into());
            }
            let st = sched::state();
            if st == "enabled" {
                return Ok(());
            }
            if t0.elapsed() > timeout || signals::stopping() {
                return Err(Exit::new(
                    LOAD_FAILED,
                    format!(
                        "sched_ext not enabled {:.0} s after starting {} (state `{st}`); its last output:\n{}",
                        t0.elapsed().as_secs_f64(),
                        self.report.path,
                        tail(&self.log, 15)
                    ),
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The newest map called `name` created since the start (or, with no
    /// name, the one `auto_map` picks); libbpf creates all of an object's
    /// maps before attaching, but give it a moment.
    fn find_map(&mut self, name: Option<&str>, baseline: u32) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let (mi, fd) = loop {
            let mut found: Vec<_> = match name {
                Some(name) => maps::find_by_name(name).into_iter().filter(|(m, _)| m.id > baseline).collect(),
                None => auto_map(maps::all().into_iter().filter(|(m, _)| m.id > baseline).collect()).into_iter().collect(),
            };
            found.sort_by_key(|(m, _)| m.id);
            if let Some(f) = found.pop() {
                if name.is_none() {
                    eprintln!("agent: no --map-name: sampling `{}` (type {}, the scheduler's first task-storage or hash map)", f.0.name, f.0.map_type);
                }
                break f;
            }
            if Instant::now() > deadline {
                let mut names: Vec<String> =
                    maps::all().into_iter().filter(|(m, _)| m.id > baseline).map(|(m, _)| m.name).collect();
                names.sort();
                names.dedup();
                let what = match name {
                    Some(n) => format!("no BPF map named `{n}`"),
                    None => "no task-storage or hash map to sample (give one with --map-name)".to_string(),
                };
                return Err(Exit::new(
                    BAD_INPUT,
                    format!(
                        "{} created {what}; its maps: {}",
                        self.report.path,
                        if names.is_empty() { "none".to_string() } else { names.join(", ") }
                    ),
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let name = mi.name.clone();
        // a map the kernel cannot walk (queue, ring buffer) is no use; task
        // storage is counted by a task iterator instead
        let countable = if crate::bpf::storagecount::is_local_storage(mi.map_type) {
            StorageCounter::new(fd.as_fd()).and_then(|mut c| c.count()).map(|_| 0)
        } else {
            maps::Counter::default().count(fd.as_fd(), mi.key_size, maps::walk_value_size(&mi))
        };
        if let Err(e) = countable {
            return Err(Exit::new(
                BAD_INPUT,
                format!("map `{name}` (type {}) cannot be counted through BPF syscalls: {e:#}", mi.map_type),
            )
            .into());
        }
        self.bss = watch::find_bss(mi.id, baseline);
        self.report.counters_from_bss = self.bss.is_some();
        self.report.map_id = mi.id;
        self.report.map_type = mi.map_type;
        self.map = Some((mi, fd));
        Ok(())
    }

    pub fn has_counters(&self) -> bool {
        self.bss.is_some()
    }

    /// SIGINT to its group, then SIGTERM, then SIGKILL; reap it.
    fn stop(&mut self, grace: Duration) {
        if !self.report.stopped_by.is_empty() {
            return;
        }
        let pgid = self.child.id() as i32;
        let t = Instant::now();
        let mut by = "exited by itself";
        for (sig, name, wait) in [
            (libc::SIGINT, "SIGINT", grace),
            (libc::SIGTERM, "SIGTERM", Duration::from_secs(3)),
            (libc::SIGKILL, "SIGKILL", Duration::from_secs(5)),
        ] {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            // SAFETY: plain kill(2) on the child's group: it was spawned with process_group(0), so
            // its pid is the pgid.
            unsafe { libc::kill(-pgid, sig) };
            by = name;
            let end = Instant::now() + wait;
            while Instant::now() < end && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.report.stop_s = t.elapsed().as_secs_f64();
        self.report.stopped_by = by.to_string();
        self.report.status = match self.child.wait() {
            Ok(st) => status_str(st),
            Err(e) => format!("unknown ({e})"),
        };
        // children it left in its group
        // SAFETY: plain kill(2), integers only; an empty group just gives ESRCH.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

/// The map to sample when none is named: the scheduler's first (lowest
/// id) task-storage map, else its first hash-family map; its .bss, .data
/// and .rodata arrays, per-CPU arrays and ring buffers say nothing about
/// per-task state.
pub fn auto_map(mut created: Vec<(MapInfo, OwnedFd)>) -> Option<(MapInfo, OwnedFd)> {
    created.sort_by_key(|(m, _)| m.id);
    let pos = created
        .iter()
        .position(|(m, _)| m.map_type == BPF_MAP_TYPE_TASK_STORAGE)
        .or_else(|| created.iter().position(|(m, _)| maps::HASH_FAMILY.contains(&m.map_type)))?;
    Some(created.swap_remove(pos))
}

impl Running for UserSched {
    fn counters(&self) -> Counters {
        self.bss.as_ref().map(|b| b.counters()).unwrap_or_default()
    }

    /// From the kernel's disable line, with the binary's EXIT line for
    /// the message; None while the scheduler is up.
    fn exit_info(&self) -> Option<ExitInfo> {
        self.klines.borrow_mut().extend(self.kmsg.borrow_mut().read_new());
        let kernel = exitlog::from_kernel(&self.klines.borrow());
        // its output is complete only once it is gone
        let output = (!self.report.stopped_by.is_empty())
            .then(|| exitlog::from_output(&std::fs::read_to_string(&self.log).unwrap_or_default()))
            .flatten();
        exitlog::combine(kernel, output)
    }

    fn inject_error(&mut self) {
        eprintln!("agent: cannot inject an error into a scheduler we did not load");
    }

    fn tracked_map(&self) -> BorrowedFd<'_> {
        self.map.as_ref().expect("start() found the map").1.as_fd()
    }

    fn detach(&mut self) {
        self.stop(self.grace)
    }
}

impl Drop for UserSched {
    /// Never leave the binary behind (an error after it started).
    fn drop(&mut self) {
        self.stop(self.grace.min(Duration::from_secs(5)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_words() {
        let ok = std::process::Command::new("true").status().unwrap();
        assert_eq!(status_str(ok), "exit 0");
        let f = std::process::Command::new("sh").args(["-c", "kill -9 $$"]).status().unwrap();
        assert_eq!(status_str(f), "signal 9");
    }

    #[test]
    fn auto_map_prefers_task_storage_then_hash() {
        let m = |id: u32, name: &str, map_type: u32| {
            let fd: OwnedFd = File::open("/dev/null").unwrap().into();
            (
                MapInfo { id, name: name.into(), map_type, key_size: 4, value_size: 8, max_entries: 1, btf_id: 0, btf_key_type_id: 0, btf_value_type_id: 0 },
                fd,
            )
        };
        let pick = |v: Vec<(MapInfo, OwnedFd)>| auto_map(v).map(|(m, _)| m.name);
        // .bss (array), a per-CPU array, a hash map and task storage: task storage wins
        let all = || vec![m(7, "main.bss", 2), m(5, "cpu_ctx_stor", 6), m(9, "pids", 1), m(8, "task_ctx_stor", 29)];
        assert_eq!(pick(all()), Some("task_ctx_stor".into()));
        // no task storage: the first hash-family map by id
        assert_eq!(pick(vec![m(7, "main.bss", 2), m(12, "late", 9), m(9, "pids", 1)]), Some("pids".into()));
        // arrays and ring buffers only: nothing to pick
        assert_eq!(pick(vec![m(7, "main.bss", 2), m(3, "events", 27)]), None);
    }

    #[test]
    fn tail_of_a_file() {
        let d = std::env::temp_dir().join(format!("usersched-tail-{}", std::process::id()));
        std::fs::write(&d, "a\nb\nc\n").unwrap();
        assert_eq!(tail(&d, 2), "b\nc");
        assert_eq!(tail(&d, 10), "a\nb\nc");
        let _ = std::fs::remove_file(&d);
        assert_eq!(tail(Path::new("/nonexistent/x"), 3), "(no output)");
    }
}
