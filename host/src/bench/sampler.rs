//! (b) What sampling costs the guest: CPU time of the agent per sample at the
//! run's 2 s interval, with a scheduler loaded and its map at 16k entries.

use super::Timings;
use serde::{Deserialize, Serialize};

/// Goal: the agent uses less than this share of one vCPU.
pub const GOAL_VCPU_PERCENT: f64 = 1.0;

/// The agent's `bench sampler` output, plus the shares of a vCPU.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sampler {
    pub ops_name: String,
    pub interval_s: f64,
    pub samples: u32,
    pub map_entries_min: u64,
    pub map_entries_max: u64,
    /// CPU time of one sample (the sampling thread)
    pub cpu_per_sample: Timings,
    pub wall_per_sample: Timings,
    /// the whole agent process's CPU time over the span
    pub process_cpu_ns: u64,
    pub span_ns: u64,
    /// CPU time of counting the map alone, the main part of a sample
    pub count_cpu: Timings,
    /// process_cpu_ns / span_ns, in percent of one vCPU
    #[serde(default)]
    pub vcpu_percent: f64,
    /// mean CPU per sample / interval, in percent of one vCPU
    #[serde(default)]
    pub per_sample_vcpu_percent: f64,
}

impl Sampler {
    pub fn derive(&mut self) {
        self.vcpu_percent = 100.0 * super::ratio(self.process_cpu_ns as f64, self.span_ns as f64);
        self.per_sample_vcpu_percent = 100.0 * super::ratio(self.cpu_per_sample.mean_ms / 1e3, self.interval_s);
    }
}

pub fn agent_args(short: bool) -> Vec<String> {
    let samples = if short { 3 } else { 15 };
    ["sampler", "--sched", "scx_simple", "--variant", "control", "--entries", "16384", "--interval", "2"]
        .iter()
        .map(|s| s.to_string())
        .chain(["--samples".to_string(), samples.to_string()])
        .collect()
}
