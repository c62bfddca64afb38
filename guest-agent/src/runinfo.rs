//! run.json (docs/results.md): what the run was and how it ended. Fields
//! past `splats` are extras for people and tools that want more; the
//! report ignores what it does not know.

use serde::Serialize;

use crate::config::Config;
use crate::sched::{Counters, LoadReport};
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
}

impl RunInfo {
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
