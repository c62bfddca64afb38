//! manifest.json of a result group: how the results were made (tool version,
//! accelerator, kernel, image and agent ids, configuration, reset mode) and
//! each run's status and timings. Rewritten atomically after every run, so an
//! interrupted experiment leaves a true record for `--resume`.

use crate::config::Config;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub tool_version: String,
    pub scheduler: String,
    pub workload: String,
    /// running | complete | interrupted
    pub status: String,
    pub started_unix: u64,
    pub finished_unix: Option<u64>,
    pub accel: String,
    pub qemu_version: String,
    pub kernel: KernelRef,
    pub image_id: String,
    pub agent_id: String,
    pub reset: String,
    pub variants: Vec<String>,
    pub iterations: u32,
    pub shard: Option<String>,
    pub custom_binaries: Vec<String>,
    /// --sched: the crates.io schedulers the binaries were built from (name@version)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sched_crates: Vec<String>,
    /// --sched-args: each binary's argv, in the order of custom_binaries
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sched_args: Vec<Vec<String>>,
    /// `leakcheck`: the seconds of no-churn sampling before each run's
    /// workload; its presence makes `report` judge the group on its maps
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leakcheck_baseline_s: Option<f64>,
    pub config: Config,
    pub runs: Vec<RunRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KernelRef {
    pub id: String,
    pub path: String,
    pub version: Option<String>,
    pub has_helper: Option<bool>,
}

/// One run as the runner saw it; times in seconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub variant: String,
    pub iteration: u32,
    /// ok | failed | interrupted
    pub status: String,
    pub failure: Option<String>,
    pub started_unix: u64,
    pub wall_s: f64,
    /// QEMU start to SSH ready (0 when the VM was reused)
    pub boot_s: f64,
    pub setup_s: f64,
    pub workload_s: f64,
    pub pull_s: f64,
    /// wall time beyond the workload's own duration
    pub overhead_s: f64,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest> {
        let b = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&b).with_context(|| format!("{} is not a manifest this version understands", path.display()))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::paths::write_atomic(path, &serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {} (disk full or not writable?)", path.display()))
    }

    /// Replace (or add) the record of a run.
    pub fn record(&mut self, r: RunRecord) {
        self.runs.retain(|x| !(x.variant == r.variant && x.iteration == r.iteration));
        self.runs.push(r);
        self.runs.sort_by_key(|r| (r.iteration, r.variant.clone()));
    }

    /// Runs that need not be redone by --resume.
    pub fn finished(&self, variant: &str, iteration: u32) -> bool {
        self.runs.iter().any(|r| r.variant == variant && r.iteration == iteration && r.status != "interrupted")
    }
}
