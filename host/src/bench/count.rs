//! (a) Counting map entries in the guest: the agent's batched walk (what
//! the sampler does every interval) against `bpftool map dump` plus counting
//! (what the original scripts did), on a 16k-entry hash map.

use super::Timings;
use serde::{Deserialize, Serialize};

/// Goal: the agent counts at least this many times faster than bpftool.
pub const GOAL_SPEEDUP: f64 = 50.0;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Way {
    /// entries this way counted
    pub count: u64,
    pub timings: Timings,
}

/// The agent's `bench count` output, plus the ratios.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Count {
    pub entries: u32,
    pub map_id: u32,
    pub agent_batch: Way,
    pub agent_next_key: Way,
    pub bpftool: Way,
    /// the kernel's own count (bpf_map_sum_elem_count from a map iterator): O(1)
    pub kernel_elem_count: Way,
    pub bpftool_output_bytes: u64,
    /// bpftool median / agent (batched) median
    #[serde(default)]
    pub speedup: f64,
    /// bpftool median / agent (GET_NEXT_KEY fallback) median
    #[serde(default)]
    pub speedup_next_key: f64,
}

impl Count {
    pub fn derive(&mut self) {
        self.speedup = super::ratio(self.bpftool.timings.median_ms, self.agent_batch.timings.median_ms);
        self.speedup_next_key = super::ratio(self.bpftool.timings.median_ms, self.agent_next_key.timings.median_ms);
    }
}

/// `scx-guest-agent bench count` arguments.
pub fn agent_args(short: bool) -> Vec<String> {
    let (reps, tool_reps) = if short { (5, 2) } else { (40, 5) };
    ["count", "--entries", "16384", "--reps", &reps.to_string(), "--bpftool-reps", &tool_reps.to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect()
}
