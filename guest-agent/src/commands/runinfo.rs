//! run.json (docs/results.md): what the run was and how it ended. The
//! documented core is the contract's RunCore; the fields after it are
//! extras for people and tools that want more.

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use scx_contract::config::Config;
use scx_contract::run::{RunCore, STATUS_OK};

use crate::commands::run::Drive;
use crate::scheduler::sched::{Counters, LoadReport};
use crate::scheduler::usersched::BinReport;

/// When each phase of a run was reached, seconds since the agent started:
/// where a run's time beyond its workload goes (bench (e)).
static TIMELINE: Mutex<Vec<(&'static str, f64)>> = Mutex::new(Vec::new());
static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Start the clock (at the agent's start).
pub fn start_clock() {
    START.get_or_init(Instant::now);
}

/// Mark that the run reached `phase` now.
pub fn mark(phase: &'static str) {
    let t = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    if let Ok(mut v) = TIMELINE.lock() {
        v.push((phase, (t * 1e3).round() / 1e3));
    }
}

fn timeline() -> Vec<(&'static str, f64)> {
    TIMELINE.lock().map(|v| v.clone()).unwrap_or_default()
}

#[derive(Debug, Serialize)]
pub struct RunInfo {
    #[serde(flatten)]
    pub core: RunCore,
    // extras
    pub ops_name: String,
    pub load: Option<LoadReport>,
    pub counters: Option<Counters>,
    pub samples: u64,
    pub max_map_entries: u64,
    /// the slowest sample (map walk included), milliseconds
    pub max_sample_ms: f64,
    pub trace_lines: u64,
    pub workload_error: Option<String>,
    /// workload rounds (hackbench) still running at the end: stopped, not counted
    pub workload_cut_rounds: u32,
    pub config: Config,
    pub agent_version: &'static str,
    /// `run-bin`: the user's binary, how it started and how it ended
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bin: Option<BinReport>,
    /// (phase, seconds since the agent started), in order; filled on write
    pub timeline: Vec<(&'static str, f64)>,
}

impl RunInfo {
    /// A run that has not started yet: status ok until something fails.
    pub fn new(scheduler: &str, variant: &str, d: &Drive<'_>, iteration: u32, accel: &str, reset: &str) -> RunInfo {
        let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        RunInfo {
            core: RunCore {
                scheduler: Some(scheduler.into()),
                workload: Some(d.workload.as_str().into()),
                variant: Some(variant.into()),
                iteration: Some(iteration),
                status: Some(STATUS_OK.into()),
                failure: None,
                exit_kind: Some("NONE".into()),
                exit_reason: Some(String::new()),
                workload_metric: None,
                duration_s: Some(d.duration.as_secs_f64()),
                interval_s: Some(d.interval.as_secs_f64()),
                started_unix: Some(started_unix),
                accel: Some(accel.into()),
                reset: Some(reset.into()),
                splats: Vec::new(),
            },
            ops_name: String::new(),
            load: None,
            counters: None,
            samples: 0,
            max_map_entries: 0,
            max_sample_ms: 0.0,
            trace_lines: 0,
            workload_error: None,
            workload_cut_rounds: 0,
            config: d.config.clone(),
            agent_version: env!("CARGO_PKG_VERSION"),
            bin: None,
            timeline: Vec::new(),
        }
    }

    /// run.json's text, the timeline up to now included.
    pub fn to_json(&mut self) -> serde_json::Result<String> {
        mark("written");
        self.timeline = timeline();
        serde_json::to_string_pretty(self)
    }

    /// Record the first reason the run failed; later ones are consequences.
    pub fn fail(&mut self, why: impl Into<String>) {
        self.core.fail(why)
    }
}
