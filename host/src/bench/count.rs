//! (a) Counting map entries in the guest: the agent's batched walk (what
//! the sampler does every interval) against `bpftool map dump` plus counting
//! (what the original scripts did), on a 16k-entry hash map.

use scx_contract::bench::CountResult;
use serde::{Deserialize, Serialize};

/// Goal: the agent counts at least this many times faster than bpftool.
pub const GOAL_SPEEDUP: f64 = 50.0;

/// The agent's `bench count` output (its fields inline in the report's
/// JSON), plus the ratios.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Count {
    #[serde(flatten)]
    pub measured: CountResult,
    /// bpftool median / agent (batched) median
    pub speedup: f64,
    /// bpftool median / agent (GET_NEXT_KEY fallback) median
    pub speedup_next_key: f64,
}

impl Count {
    pub fn new(measured: CountResult) -> Count {
        let m = &measured;
        let speedup = super::ratio(m.bpftool.timings.median_ms, m.agent_batch.timings.median_ms);
        let speedup_next_key = super::ratio(m.bpftool.timings.median_ms, m.agent_next_key.timings.median_ms);
        Count { measured, speedup, speedup_next_key }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_agents_line_and_keeps_the_report_flat() {
        let t = |median| format!(r#"{{"n":5,"median_ms":{median},"mean_ms":{median},"min_ms":{median},"max_ms":{median}}}"#);
        let way = |median| format!(r#"{{"count":16384,"timings":{}}}"#, t(median));
        let line = format!(
            r#"{{"entries":16384,"map_id":7,"agent_batch":{},"agent_next_key":{},"bpftool":{},"kernel_elem_count":{},"bpftool_output_bytes":2179072}}"#,
            way(2.0),
            way(10.0),
            way(500.0),
            way(0.05)
        );
        let c = Count::new(serde_json::from_str::<CountResult>(&line).unwrap());
        assert_eq!((c.speedup, c.speedup_next_key), (250.0, 50.0));
        let report = serde_json::to_value(&c).unwrap();
        assert_eq!(report["bpftool_output_bytes"], 2179072);
        assert_eq!(report["agent_batch"]["timings"]["median_ms"], 2.0);
        assert_eq!(report["speedup"], 250.0);
        let back: Count = serde_json::from_value(report).unwrap();
        assert_eq!(back.measured, c.measured);
    }
}
