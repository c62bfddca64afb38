//! (b) What sampling costs the guest: CPU time of the agent per sample at the
//! run's 2 s interval, with a scheduler loaded and its map at 16k entries.

use scx_contract::bench::SamplerResult;
use serde::{Deserialize, Serialize};

/// Goal: the agent uses less than this share of one vCPU.
pub const GOAL_VCPU_PERCENT: f64 = 1.0;

/// The agent's `bench sampler` output (its fields inline in the report's
/// JSON), plus the shares of a vCPU.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sampler {
    #[serde(flatten)]
    pub measured: SamplerResult,
    /// process_cpu_ns / span_ns, in percent of one vCPU
    pub vcpu_percent: f64,
    /// mean CPU per sample / interval, in percent of one vCPU
    pub per_sample_vcpu_percent: f64,
}

impl Sampler {
    pub fn new(measured: SamplerResult) -> Sampler {
        let m = &measured;
        let vcpu_percent = 100.0 * super::ratio(m.process_cpu_ns as f64, m.span_ns as f64);
        let per_sample_vcpu_percent = 100.0 * super::ratio(m.cpu_per_sample.mean_ms / 1e3, m.interval_s);
        Sampler { measured, vcpu_percent, per_sample_vcpu_percent }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_agents_line_and_keeps_the_report_flat() {
        let t = |mean| format!(r#"{{"n":15,"median_ms":{mean},"mean_ms":{mean},"min_ms":{mean},"max_ms":{mean}}}"#);
        let line = format!(
            r#"{{"ops_name":"simple_control","interval_s":2.0,"samples":15,"map_entries_min":16384,"map_entries_max":16390,"cpu_per_sample":{},"wall_per_sample":{},"process_cpu_ns":300000000,"span_ns":30000000000,"count_cpu":{}}}"#,
            t(4.0),
            t(5.0),
            t(3.0)
        );
        let s = Sampler::new(serde_json::from_str::<SamplerResult>(&line).unwrap());
        assert!((s.vcpu_percent - 1.0).abs() < 1e-9, "{}", s.vcpu_percent);
        assert!((s.per_sample_vcpu_percent - 0.2).abs() < 1e-9, "{}", s.per_sample_vcpu_percent);
        let report = serde_json::to_value(&s).unwrap();
        assert_eq!(report["ops_name"], "simple_control");
        assert_eq!(report["count_cpu"]["n"], 15);
        assert!(report["vcpu_percent"].is_number());
    }
}
