//! (e) What an experiment costs beyond its workloads: per run, the wall time
//! minus the run's duration (boot, setup, the workload's wind-down, pull), from
//! the experiment's manifest.json; and the time from QEMU start to SSH
//! ready, per boot, with where the bench VM's boot spent it (serial log).

use crate::experiment::manifest::Manifest;
use crate::report::stats::Estimate;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Goals under TCG.
pub const GOAL_RUN_OVERHEAD_S: f64 = 15.0;
pub const GOAL_BOOT_S: f64 = 4.0;

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
    /// guest clock: kernel start to `Run /usr/bin/tini`
    pub kernel_s: Option<f64>,
    /// guest clock: init start to "guest init done" (mounts, network, keys)
    pub init_s: Option<f64>,
    /// the rest: QEMU and firmware, kernel decompression, sshd start, the SSH handshake
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
}

/// "[    1.246311] Run /usr/bin/tini as init process" -> 1.246311
fn kernel_time(serial: &str, marker: &str) -> Option<f64> {
    let line = serial.lines().find(|l| l.contains(marker))?;
    let inner = line.trim_start().strip_prefix('[')?.split(']').next()?;
    inner.trim().parse().ok()
}

pub fn timeline(serial: &str, qemu_to_ssh_s: f64) -> BootTimeline {
    let tini = kernel_time(serial, "Run /usr/bin/tini");
    let done = kernel_time(serial, "guest init done");
    BootTimeline {
        qemu_to_ssh_s,
        kernel_s: tini,
        init_s: tini.zip(done).map(|(a, b)| b - a),
        rest_s: done.map(|d| qemu_to_ssh_s - d),
    }
}

pub fn collect(group: &Path, duration_s: f64, bench_vm_boot: BootTimeline) -> Result<Overhead> {
    let m = Manifest::load(&group.join("manifest.json"))?;
    let runs: Vec<Run> = m
        .runs
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
        .collect();
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_timeline_from_serial() {
        let s = "[    0.000000] Linux version 6.12\n[    1.246311] Run /usr/bin/tini as init process\n\
                 [    1.733480] scx-vmctl: guest init done, starting sshd\nServer listening on 0.0.0.0 port 22.\n";
        let t = timeline(s, 3.0);
        assert_eq!(t.kernel_s, Some(1.246311));
        assert!((t.init_s.unwrap() - 0.487169).abs() < 1e-9);
        assert!((t.rest_s.unwrap() - (3.0 - 1.73348)).abs() < 1e-9);
        let none = timeline("garbage\n", 2.0);
        assert_eq!((none.kernel_s, none.init_s, none.rest_s), (None, None, None));
    }
}
