//! `reset`: bring the guest back to a clean state between runs without a
//! reboot, then check that it is clean. Non-zero exit (3) with the reasons
//! when it is not.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::exit::{NOT_CLEAN, OK};
use scx_contract::names::is_our_ops_name;
use crate::bpf::maps;
use crate::observers::{kmsg, procs, trace};
use crate::scheduler::sched;
use crate::workloads::cgroup;

pub const OUR_MAPS: &[&str] = &["tracked_tasks"];

fn wait_disabled(limit: Duration) -> String {
    let end = Instant::now() + limit;
    loop {
        let st = sched::state();
        if st == "disabled" || st == "unsupported" || Instant::now() > end {
            return st;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn reset() -> Result<i32> {
    let mut notes: Vec<String> = Vec::new();
    let mut problems: Vec<String> = Vec::new();

    // 1. other agents first: a `run` unloads its scheduler and removes its
    //    workload when told to stop; a `watch` holds a map open
    let agents: Vec<i32> = procs::list().iter().filter(|p| procs::is_agent(p)).map(|p| p.pid).collect();
    if !agents.is_empty() {
        notes.push(format!("stopped {} agent process(es)", agents.len()));
        for pid in procs::terminate(&agents, libc::SIGTERM, Duration::from_secs(15)) {
            problems.push(format!("agent process {pid} survived SIGKILL"));
        }
    }

    // 2. any scheduler still attached: ours went with its process; anything
    //    else is a foreign one, which SysRq-S turns off (its process lives on)
    if sched::state() != "disabled" && sched::state() != "unsupported" {
        let ops = sched::root_ops().unwrap_or_default();
        let st = wait_disabled(Duration::from_secs(2));
        if st != "disabled" {
            if is_our_ops_name(&ops) {
                notes.push(format!("scheduler `{ops}` still attached; disabling it with SysRq-S"));
            } else {
                notes.push(format!("foreign scheduler `{ops}` was attached; disabled it with SysRq-S (its process is not ours and still runs)"));
            }
            let _ = std::fs::write("/proc/sysrq-trigger", "S");
            let st = wait_disabled(Duration::from_secs(10));
            if st != "disabled" {
                problems.push(format!("sched_ext state is `{st}` (ops `{ops}`) and will not go to disabled"));
            }
        }
    }

    // 3. workload leftovers
    let left: Vec<i32> = procs::list().iter().filter(|p| procs::is_workload(p)).map(|p| p.pid).collect();
    if !left.is_empty() {
        notes.push(format!("killed {} workload process(es)", left.len()));
        for pid in procs::terminate(&left, libc::SIGKILL, Duration::from_secs(5)) {
            problems.push(format!("workload process {pid} survived SIGKILL"));
        }
    }
    if let Err(e) = cgroup::remove_all() {
        problems.push(format!("{e:#}"));
    }

    // 4. logs and caches
    if let Err(e) = kmsg::clear() {
        problems.push(format!("{e:#}"));
    }
    trace::clear();
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    if let Err(e) = std::fs::write("/proc/sys/vm/drop_caches", "3") {
        problems.push(format!("dropping caches: {e}"));
    }

    // 5. the checks
    let st = sched::state();
    if st != "disabled" && st != "unsupported" && !problems.iter().any(|p| p.contains("sched_ext state")) {
        problems.push(format!("sched_ext state is `{st}`"));
    }
    for name in OUR_MAPS {
        for (mi, _) in maps::find_by_name(name) {
            problems.push(format!(
                "BPF map `{}` (id {}) still exists: something still holds it (a process or a pin under /sys/fs/bpf)",
                mi.name, mi.id
            ));
        }
    }
    let still: Vec<String> = procs::list()
        .iter()
        .filter(|p| procs::is_workload(p) || procs::is_agent(p))
        .map(|p| format!("{} ({})", p.pid, p.comm))
        .collect();
    if !still.is_empty() {
        problems.push(format!("processes left: {}", still.join(", ")));
    }
    if Path::new(cgroup::PARENT).exists() {
        problems.push(format!("{} still exists", cgroup::PARENT));
    }

    for n in &notes {
        println!("reset: {n}");
    }
    if problems.is_empty() {
        println!("reset: clean");
        Ok(OK)
    } else {
        for p in &problems {
            eprintln!("reset: NOT clean: {p}");
        }
        Ok(NOT_CLEAN)
    }
}
