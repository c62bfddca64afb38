//! (e) What an experiment costs beyond its workloads: per run, the wall time
//! minus the run's duration (boot, setup, the workload's wind-down, pull), from
//! the experiment's manifest.json; and the time from QEMU start to SSH
//! ready, per boot, with where the bench VM's boot spent it (serial log).

use crate::experiment::manifest::Manifest;
use crate::machine::vm::{INIT_DONE, INIT_STARTED};
use crate::report::stats::Estimate;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Goals under TCG (issue 14): per run beyond the workload with snapshot
/// resets, and a fresh boot from QEMU start to SSH ready.
pub const GOAL_RUN_OVERHEAD_S: f64 = 3.0;
pub const GOAL_BOOT_S: f64 = 1.5;
/// The experiment each reset mode is timed with.
pub const RESET_SCHEDULER: crate::names::Scheduler = crate::names::Scheduler::Simple;
pub const RESET_WORKLOAD: crate::names::Workload = crate::names::Workload::CustomChurn;

/// (duration, iterations) of each reset mode's experiment: the issue's
/// `experiment scx_simple custom-churn 30 3`, or a quick one.
pub fn reset_plan(short: bool) -> (f64, u32) {
    if short {
        (6.0, 1)
    } else {
        (30.0, 3)
    }
}

/// One reset mode's cost, from an experiment run with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResetCost {
    /// snapshot | overlay | in-guest
    pub reset: String,
    pub duration_s: f64,
    pub runs: Vec<Run>,
    pub overhead_s: Option<Estimate>,
    pub overhead_max_s: f64,
    /// runs that got another reset than asked (a snapshot that fell back)
    pub other_reset_runs: u32,
    /// the experiment's wall time, the saved guest's making included
    pub experiment_wall_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub variant: String,
    pub iteration: u32,
    pub status: String,
    pub wall_s: f64,
    /// QEMU start (overlay creation included) to SSH ready
    pub boot_s: f64,
    /// SSH, kernel check, agent copy, agent start
    pub setup_s: f64,
    /// agent start to agent exit: the duration plus the workload's wind-down
    pub workload_s: f64,
    pub pull_s: f64,
    /// wall_s - duration
    pub overhead_s: f64,
}

/// One boot seen from its serial log (guest clock) and from the host.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BootTimeline {
    /// host: QEMU start to SSH ready
    pub qemu_to_ssh_s: f64,
    /// guest clock: kernel start to init's first line ("scx-vmctl: init started")
    pub kernel_s: Option<f64>,
    /// guest clock: init start to "guest init done" (mounts, network, keys)
    pub init_s: Option<f64>,
    /// the rest: QEMU and firmware, a bzImage's decompression (none for a PVH vmlinux), sshd start, the SSH handshake
    pub rest_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Overhead {
    pub duration_s: f64,
    pub runs: Vec<Run>,
    pub overhead_s: Option<Estimate>,
    pub overhead_max_s: f64,
    /// every boot: the bench VM's and each experiment run's
    pub boot_s: Option<Estimate>,
    pub boot_max_s: f64,
    pub bench_vm_boot: BootTimeline,
    /// the same experiment with each reset mode, side by side
    pub resets: Vec<ResetCost>,
}

/// "[    1.246311] Run /usr/bin/tini as init process" -> 1.246311
fn kernel_time(serial: &str, marker: &str) -> Option<f64> {
    let line = serial.lines().find(|l| l.contains(marker))?;
    let inner = line.trim_start().strip_prefix('[')?.split(']').next()?;
    inner.trim().parse().ok()
}

pub fn timeline(serial: &str, qemu_to_ssh_s: f64) -> BootTimeline {
    // init's own line; the kernel's "Run /usr/bin/tini" shows at loglevel=7 only
    let tini = kernel_time(serial, INIT_STARTED).or_else(|| kernel_time(serial, "Run /usr/bin/tini"));
    let done = kernel_time(serial, INIT_DONE);
    BootTimeline {
        qemu_to_ssh_s,
        kernel_s: tini,
        init_s: tini.zip(done).map(|(a, b)| b - a),
        rest_s: done.map(|d| qemu_to_ssh_s - d),
    }
}

fn runs_of(m: &Manifest) -> Vec<Run> {
    m.runs
        .iter()
        .map(|r| Run {
            variant: r.variant.clone(),
            iteration: r.iteration,
            status: r.status.clone(),
            wall_s: r.wall_s,
            boot_s: r.boot_s,
            setup_s: r.setup_s,
            workload_s: r.workload_s,
            pull_s: r.pull_s,
            overhead_s: r.overhead_s,
        })
        .collect()
}

/// Time `experiment scx_simple custom-churn` with each reset mode, one
/// after the other, into `out/<mode>`.
pub async fn by_reset(vm: &crate::cli::VmArgs, out: &Path, short: bool) -> Result<Vec<ResetCost>> {
    let (duration, iterations) = reset_plan(short);
    let mut costs = Vec::new();
    for mode in crate::names::ResetMode::ALL {
        crate::errln!("[bench] (e) experiment {RESET_SCHEDULER} {RESET_WORKLOAD} {duration} {iterations} --reset {mode}");
        let mut cfg = crate::config::Config::default_config();
        cfg.experiment.duration_s = duration;
        cfg.experiment.iterations = iterations;
        cfg.experiment.variants = vec!["control".into(), "test".into()];
        cfg.experiment.reset = mode.to_string();
        let dir = out.join(mode.as_str());
        let mut spec = crate::experiment::ExperimentSpec::ours(RESET_SCHEDULER, RESET_WORKLOAD, cfg, vm.clone(), dir.clone())?;
        spec.force = true;
        let t = std::time::Instant::now();
        let code = crate::experiment::run_spec(spec).await?;
        if code == crate::exit::INTERRUPTED {
            anyhow::bail!("the experiment was interrupted");
        }
        let m = Manifest::load(&dir.join(RESET_SCHEDULER.as_str()).join(RESET_WORKLOAD.as_str()).join("manifest.json"))?;
        let runs = runs_of(&m);
        let overheads: Vec<f64> = runs.iter().filter(|r| r.status == "ok").map(|r| r.overhead_s).collect();
        costs.push(ResetCost {
            reset: mode.to_string(),
            duration_s: duration,
            other_reset_runs: m.runs.iter().filter(|r| r.reset != mode.as_str()).count() as u32,
            overhead_s: Estimate::of(&overheads),
            overhead_max_s: overheads.iter().copied().fold(0.0, f64::max),
            runs,
            experiment_wall_s: t.elapsed().as_secs_f64(),
        });
    }
    Ok(costs)
}

pub fn collect(group: &Path, duration_s: f64, bench_vm_boot: BootTimeline, resets: Vec<ResetCost>) -> Result<Overhead> {
    let m = Manifest::load(&group.join("manifest.json"))?;
    let runs = runs_of(&m);
    let ok: Vec<&Run> = runs.iter().filter(|r| r.status == "ok").collect();
    let overheads: Vec<f64> = ok.iter().map(|r| r.overhead_s).collect();
    let mut boots: Vec<f64> = ok.iter().map(|r| r.boot_s).filter(|b| *b > 0.0).collect();
    boots.push(bench_vm_boot.qemu_to_ssh_s);
    Ok(Overhead {
        duration_s,
        overhead_s: Estimate::of(&overheads),
        overhead_max_s: overheads.iter().copied().fold(0.0, f64::max),
        boot_s: Estimate::of(&boots),
        boot_max_s: boots.iter().copied().fold(0.0, f64::max),
        runs,
        bench_vm_boot,
        resets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_timeline_from_serial() {
        let s = "[    0.000000] Linux version 6.12\n[    1.246311] Run /usr/bin/tini as init process\n\
                 [    1.733480] scx-vmctl: guest init done, starting the SSH server\nServer listening on 0.0.0.0 port 22.\n";
        let t = timeline(s, 3.0);
        assert_eq!(t.kernel_s, Some(1.246311));
        assert!((t.init_s.unwrap() - 0.487169).abs() < 1e-9);
        assert!((t.rest_s.unwrap() - (3.0 - 1.73348)).abs() < 1e-9);
        // The quiet console (loglevel=6): init's own first line.
        let q = "[    0.000000] Linux version 6.12\n[    1.301000] scx-vmctl: init started\n\
                 [    1.501000] scx-vmctl: guest init done, starting the SSH server\n";
        let t = timeline(q, 2.0);
        assert_eq!(t.kernel_s, Some(1.301));
        assert!((t.init_s.unwrap() - 0.2).abs() < 1e-9);
        let none = timeline("garbage\n", 2.0);
        assert_eq!((none.kernel_s, none.init_s, none.rest_s), (None, None, None));
    }
}
