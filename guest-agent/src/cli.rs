//! Command line. Exit codes: see exit.rs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use scx_contract::config::{Cleanup, Config};
use crate::exit::{Exit, BAD_INPUT};
use scx_contract::names::{Scheduler, Variant, Workload};

#[derive(Parser)]
#[command(
    name = "scx-guest-agent",
    version,
    about = "Runs inside the scx-vmctl guest: loads sched_ext schedulers, drives workloads, samples metrics",
    after_help = "Exit codes: 0 ok (reset: clean), 1 run failed, 2 bad input, 3 guest not clean, \
                  4 scheduler could not be loaded"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Load a scheduler, run a workload under it, sample, unload; write the
    /// result files (run.csv, run.json, dmesg.log, trace.log, workload.log)
    Run(Box<RunCli>),
    /// Sample a BPF map of a scheduler we did not load, found by name
    Watch(WatchCli),
    /// Unload schedulers, kill workload leftovers, clear logs and caches,
    /// and check the guest is clean (exit 3 if not)
    Reset,
    /// Show the schedulers, variants and workloads, and what this kernel offers
    Info(InfoCli),
    /// Check scx_bpf_map_scan_timeout against its contract with BPF_PROG_RUN
    /// (one line per case, then `N passed, M failed`; exit 1 on a failure)
    Selftest,
    /// Load and unload one build repeatedly; fail on an error exit, a cycle
    /// in which no task ran under it, or a kernel splat
    Cycle(CycleCli),
    /// Run a user's own scheduler binary instead of one of ours: start it,
    /// wait for sched_ext `enabled` and its map NAME, run the workload while
    /// sampling that map like `watch`, stop it (SIGINT, then SIGTERM/SIGKILL);
    /// writes what `run` writes plus scheduler.log (the binary's output)
    RunBin(Box<RunBinCli>),
    /// (tests) hold a fixture scheduler of bpf/fixtures until SIGINT: cgleak leaks per cgroup;
    /// timerwrite sweeps from dispatch while a bpf_timer writes the same map (debug kernel)
    Fixture(FixtureCli),
    /// Load one build and keep it attached until SIGINT/SIGTERM, like a
    /// user's scheduler binary (prints `EXIT: reason` as tools/sched_ext do)
    Hold(HoldCli),
    /// Measurements for `scx-vmctl bench` (one JSON object on stdout)
    Bench(crate::commands::bench::BenchCli),
    /// (internal) the custom-churn workload's process
    #[command(hide = true)]
    ChurnWorker(ChurnCli),
}

#[derive(Args)]
pub struct RunCli {
    /// scx_simple, scx_cfsish, scx_flatcg or scx_nest
    #[arg(long)]
    pub sched: String,
    /// control, test or bpfscan
    #[arg(long)]
    pub variant: String,
    /// where to look for the helper before loading the test variant
    #[arg(long, default_value = "/sys/kernel/btf/vmlinux")]
    pub kernel_btf: PathBuf,
    /// fault test: make the scheduler call scx_bpf_error() after this many seconds
    #[arg(long)]
    pub inject_error_after: Option<f64>,
    #[command(flatten)]
    pub common: RunCommon,
}

#[derive(Args)]
pub struct FixtureCli {
    /// the fixture: cgleak or timerwrite
    pub name: String,
}

#[derive(Args)]
pub struct RunBinCli {
    /// the scheduler binary (or script) to run
    #[arg(long)]
    pub bin: PathBuf,
    /// an argument for the binary (repeat for more)
    #[arg(long = "bin-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub bin_args: Vec<String>,
    /// the BPF map to sample (the kernel keeps the first 15 characters);
    /// without it, the binary's first task-storage or hash map
    #[arg(long)]
    pub map_name: Option<String>,
    /// recorded in run.json: custom, control or test
    #[arg(long, default_value = "custom")]
    pub variant: String,
    /// seconds the binary may take to enable its scheduler and create the map
    #[arg(long, default_value_t = 30.0)]
    pub start_timeout: f64,
    /// seconds the binary gets to exit after SIGINT (then SIGTERM, then SIGKILL)
    #[arg(long, default_value_t = 10.0)]
    pub stop_grace: f64,
    #[command(flatten)]
    pub common: RunCommon,
}

/// What `run` and `run-bin` share: the workload, the timing, the files.
#[derive(Args)]
pub struct RunCommon {
    /// stress-ng, hackbench or custom-churn
    #[arg(long)]
    pub workload: String,
    /// run length, seconds
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// sampling interval, seconds
    #[arg(long, default_value_t = 2.0)]
    pub interval: f64,
    /// seconds to sample with the scheduler loaded and no workload before
    /// the workload starts (leakcheck's no-churn phase; maps.csv `churning` 0)
    #[arg(long, default_value_t = 0.0)]
    pub baseline: f64,
    /// directory for the result files
    #[arg(long)]
    pub out: PathBuf,
    /// YAML file with `workloads:` and `cleanup:` sections (config/default.yaml)
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// JSON overriding the config: {"workloads": {...}, "cleanup": {...}}
    #[arg(long)]
    pub config_json: Option<String>,
    /// recorded in run.json
    #[arg(long, default_value_t = 1)]
    pub iteration: u32,
    /// recorded in run.json (the host knows the accelerator)
    #[arg(long, default_value = "")]
    pub accel: String,
    /// recorded in run.json: how the guest was reset before this run
    #[arg(long, default_value = "")]
    pub reset: String,
    #[command(flatten)]
    pub over: Overrides,
}

/// Single-value overrides, applied after --config and --config-json.
#[derive(Args, Default)]
pub struct Overrides {
    /// workloads.stress-ng.processes
    #[arg(long)]
    pub processes: Option<u32>,
    /// workloads.hackbench.groups
    #[arg(long)]
    pub hackbench_groups: Option<u32>,
    /// workloads.hackbench.loops
    #[arg(long)]
    pub hackbench_loops: Option<u32>,
    /// workloads.custom-churn.burst
    #[arg(long)]
    pub churn_burst: Option<u32>,
    /// workloads.custom-churn.rate_hz
    #[arg(long)]
    pub churn_rate_hz: Option<f64>,
    /// workloads.custom-churn.task_us
    #[arg(long)]
    pub churn_task_us: Option<u64>,
    /// workloads.custom-churn.duration_s and workloads.stress-ng.duration_s
    #[arg(long)]
    pub workload_duration: Option<f64>,
    /// cleanup.interval_ms
    #[arg(long)]
    pub cleanup_interval_ms: Option<u64>,
    /// cleanup.timeout_us
    #[arg(long)]
    pub cleanup_timeout_us: Option<u64>,
    /// cleanup.max_age_ms
    #[arg(long)]
    pub cleanup_max_age_ms: Option<u64>,
}

#[derive(Args)]
pub struct WatchCli {
    /// the map's name (the kernel keeps the first 15 characters)
    #[arg(long, default_value = "tracked_tasks")]
    pub map_name: String,
    #[arg(long, default_value_t = 2.0)]
    pub interval: f64,
    /// stop after this many seconds (default: until the scheduler goes or a signal)
    #[arg(long)]
    pub duration: Option<f64>,
    /// CSV file to write (same columns as run.csv)
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct CycleCli {
    #[arg(long)]
    pub sched: String,
    #[arg(long)]
    pub variant: String,
    #[arg(long, default_value_t = 20)]
    pub count: u32,
    /// seconds to keep each load attached
    #[arg(long, default_value_t = 0.2)]
    pub hold: f64,
    #[arg(long, default_value = "/sys/kernel/btf/vmlinux")]
    pub kernel_btf: PathBuf,
}

#[derive(Args)]
pub struct HoldCli {
    #[arg(long)]
    pub sched: String,
    #[arg(long)]
    pub variant: String,
    /// cleanup.interval_ms (test and bpfscan variants)
    #[arg(long)]
    pub cleanup_interval_ms: Option<u64>,
    /// cleanup.timeout_us
    #[arg(long)]
    pub cleanup_timeout_us: Option<u64>,
    /// cleanup.max_age_ms
    #[arg(long)]
    pub cleanup_max_age_ms: Option<u64>,
    #[arg(long, default_value = "/sys/kernel/btf/vmlinux")]
    pub kernel_btf: PathBuf,
}

#[derive(Args)]
pub struct InfoCli {
    #[arg(long, default_value = "/sys/kernel/btf/vmlinux")]
    pub kernel_btf: PathBuf,
}

#[derive(Args)]
pub struct ChurnCli {
    #[arg(long)]
    pub burst: u32,
    #[arg(long)]
    pub rate_hz: f64,
    #[arg(long)]
    pub task_us: u64,
    #[arg(long)]
    pub duration: f64,
}

pub fn seconds(what: &str, v: f64) -> Result<Duration> {
    if !(v > 0.0 && v.is_finite() && v < 1e7) {
        return Err(Exit::new(BAD_INPUT, format!("--{what} must be a positive number of seconds")).into());
    }
    Ok(Duration::from_secs_f64(v))
}

impl RunCli {
    pub fn names(&self) -> Result<(Scheduler, Variant, Workload)> {
        Ok((Scheduler::parse(&self.sched)?, Variant::parse(&self.variant)?, Workload::parse(&self.common.workload)?))
    }
}

impl HoldCli {
    pub fn cleanup(&self) -> Result<Cleanup> {
        let mut c = Config::default();
        let d = &mut c.cleanup;
        d.interval_ms = self.cleanup_interval_ms.unwrap_or(d.interval_ms);
        d.timeout_us = self.cleanup_timeout_us.unwrap_or(d.timeout_us);
        d.max_age_ms = self.cleanup_max_age_ms.unwrap_or(d.max_age_ms);
        c.validate().map_err(|e| Exit::new(BAD_INPUT, format!("{e:#}")))?;
        Ok(c.cleanup)
    }
}

impl RunCommon {
    /// --baseline: 0 (none) or a positive number of seconds
    pub fn baseline(&self) -> Result<Duration> {
        if self.baseline == 0.0 {
            return Ok(Duration::ZERO);
        }
        seconds("baseline", self.baseline)
    }

    pub fn config(&self) -> Result<Config> {
        let yaml = match &self.config {
            Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?),
            None => None,
        };
        let mut c = Config::load(yaml.as_deref(), self.config_json.as_deref())
            .map_err(|e| Exit::new(BAD_INPUT, format!("{e:#}")))?;
        let o = &self.over;
        let w = &mut c.workloads;
        if let Some(v) = o.processes {
            w.stress_ng.processes = v;
        }
        if let Some(v) = o.hackbench_groups {
            w.hackbench.groups = v;
        }
        if let Some(v) = o.hackbench_loops {
            w.hackbench.loops = v;
        }
        if let Some(v) = o.churn_burst {
            w.churn.burst = v;
        }
        if let Some(v) = o.churn_rate_hz {
            w.churn.rate_hz = v;
        }
        if let Some(v) = o.churn_task_us {
            w.churn.task_us = v;
        }
        if let Some(v) = o.workload_duration {
            w.churn.duration_s = v;
            w.stress_ng.duration_s = v;
        }
        if let Some(v) = o.cleanup_interval_ms {
            c.cleanup.interval_ms = v;
        }
        if let Some(v) = o.cleanup_timeout_us {
            c.cleanup.timeout_us = v;
        }
        if let Some(v) = o.cleanup_max_age_ms {
            c.cleanup.max_age_ms = v;
        }
        c.validate().map_err(|e| Exit::new(BAD_INPUT, format!("{e:#}")))?;
        Ok(c)
    }
}
