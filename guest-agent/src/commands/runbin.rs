//! `run-bin`: a run with a user's own scheduler binary in place of one of
//! ours. Same workload, sampling, logs and run.json as `run` (it reuses
//! run.rs's frame and body); the binary's output goes to scheduler.log and
//! run.json gains a `bin` record. Exit codes as `run`; 2 also when the
//! binary creates no map of that name.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use scx_contract::config::Config;
use scx_contract::names::Workload;
use crate::commands::run::{self, Drive};
use crate::commands::runinfo::RunInfo;
use crate::scheduler::sched;
use crate::scheduler::usersched::{self, UserSched};

pub struct BinArgs {
    pub bin: PathBuf,
    pub bin_args: Vec<String>,
    pub map_name: Option<String>,
    pub variant: String,
    pub workload: Workload,
    pub duration: Duration,
    pub interval: Duration,
    pub baseline: Duration,
    pub out: PathBuf,
    pub config: Config,
    pub iteration: u32,
    pub accel: String,
    pub reset: String,
    pub start_timeout: Duration,
    pub stop_grace: Duration,
}

pub fn run_bin(a: BinArgs) -> Result<i32> {
    sched::check_sched_ext()?;
    let d = Drive {
        workload: a.workload,
        config: &a.config,
        duration: a.duration,
        interval: a.interval,
        baseline: a.baseline,
        out: &a.out,
        inject_error_after: None,
        prog_baseline: crate::bpf::schedmaps::prog_last_id(),
    };
    let name = a.bin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "custom".into());
    let mut info = RunInfo::new(&name, &a.variant, &d, a.iteration, &a.accel, &a.reset);
    let log = a.out.join("scheduler.log");
    run::frame(&mut info, &d, |cgroups, info| {
        let started = UserSched::start(&a.bin, &a.bin_args, a.map_name.as_deref(), &log, a.start_timeout, a.stop_grace);
        let mut s = match started {
            Ok(s) => s,
            Err(e) => {
                info.bin = Some(usersched::BinReport { path: a.bin.display().to_string(), ..Default::default() });
                return Err(e);
            }
        };
        crate::commands::runinfo::mark("attached");
        info.ops_name = s.ops_name.clone();
        eprintln!(
            "agent: {} enabled `{}` in {:.0} ms; map `{}` id {}{}",
            a.bin.display(),
            s.ops_name,
            s.report.enable_ms,
            s.report.map_name,
            s.report.map_id,
            if s.has_counters() { ", counters from its .bss" } else { ", no counters (evictions/scans 0)" }
        );
        let body = run::body(&d, cgroups, &mut s);
        // the kernel logs the disable from a worker: allow for its delay
        run::unload(info, &mut s, Duration::from_secs(5));
        crate::commands::runinfo::mark("unloaded");
        if !s.has_counters() {
            info.counters = None;
        }
        if s.report.stopped_by == "SIGTERM" || s.report.stopped_by == "SIGKILL" {
            eprintln!(
                "agent: {} ignored SIGINT for {:.0} s; stopped with {}",
                a.bin.display(),
                a.stop_grace.as_secs_f64(),
                s.report.stopped_by
            );
        }
        info.bin = Some(s.report.clone());
        body
    })
}
