//! run.json (docs/results.md): what the run was and how it ended. Fields
//! past `splats` are extras for people and tools that want more; the
//! report ignores what it does not know.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::Config;
use crate::run::Drive;
use crate::sched::{Counters, LoadReport};
use crate::usersched::BinReport;
use crate::workload::Metric;

#[derive(Debug, Serialize)]
pub struct RunInfo {
    pub scheduler: String,
    pub workload: String,
    pub variant: String,
    pub iteration: u32,
    pub status: &'static str,
    pub failure: Option<String>,
    pub exit_kind: String,
    pub exit_reason: String,
    pub workload_metric: Option<Metric>,
    pub duration_s: f64,
    pub interval_s: f64,
    pub started_unix: u64,
    pub accel: String,
    pub reset: String,
    pub splats: Vec<String>,
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
    pub config: Config,
    pub agent_version: &'static str,
    /// `run-bin`: the user's binary, how it started and how it ended
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bin: Option<BinReport>,
}

impl RunInfo {
    /// A run that has not started yet: status ok until something fails.
    pub fn new(scheduler: &str, variant: &str, d: &Drive<'_>, iteration: u32, accel: &str, reset: &str) -> RunInfo {
        let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        RunInfo {
            scheduler: scheduler.into(),
            workload: d.workload.as_str().into(),
            variant: variant.into(),
            iteration,
            status: "ok",
            failure: None,
            exit_kind: "NONE".into(),
            exit_reason: String::new(),
            workload_metric: None,
            duration_s: d.duration.as_secs_f64(),
            interval_s: d.interval.as_secs_f64(),
            started_unix,
            accel: accel.into(),
            reset: reset.into(),
            splats: Vec::new(),
            ops_name: String::new(),
            load: None,
            counters: None,
            samples: 0,
            max_map_entries: 0,
            max_sample_ms: 0.0,
            trace_lines: 0,
            workload_error: None,
            config: d.config.clone(),
            agent_version: env!("CARGO_PKG_VERSION"),
            bin: None,
        }
    }

    /// Record the first reason the run failed; later ones are consequences.
    pub fn fail(&mut self, why: impl Into<String>) {
        if self.failure.is_none() {
            let why: String = why.into();
            // one line, as the contract says
            self.failure = Some(why.lines().next().unwrap_or("").to_string());
        }
        self.status = "failed";
    }
}
