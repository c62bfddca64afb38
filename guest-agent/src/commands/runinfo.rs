//! run.json (docs/results.md): what the run was and how it ended. The
//! documented core is the contract's RunCore; the fields after it are
//! extras for people and tools that want more.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use scx_contract::config::Config;
use scx_contract::run::{RunCore, STATUS_OK};

use crate::commands::run::Drive;
use crate::scheduler::sched::{Counters, LoadReport};
use crate::scheduler::usersched::BinReport;

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
    pub config: Config,
    pub agent_version: &'static str,
    /// `run-bin`: the user's binary, how it started and how it ended
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bin: Option<BinReport>,
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
            config: d.config.clone(),
            agent_version: env!("CARGO_PKG_VERSION"),
            bin: None,
        }
    }

    /// Record the first reason the run failed; later ones are consequences.
    pub fn fail(&mut self, why: impl Into<String>) {
        self.core.fail(why)
    }
}
