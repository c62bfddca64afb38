//! `run<N>.json`: what a run was and how it ended (docs/results.md). Every
//! field is optional here so that a runner adding fields, or an older runner
//! lacking some, does not break the report.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunInfo {
    pub scheduler: Option<String>,
    pub workload: Option<String>,
    pub variant: Option<String>,
    pub iteration: Option<u32>,
    pub status: Option<String>,
    pub failure: Option<String>,
    pub exit_kind: Option<String>,
    pub exit_reason: Option<String>,
    pub workload_metric: Option<WorkloadMetric>,
    pub duration_s: Option<f64>,
    pub interval_s: Option<f64>,
    pub started_unix: Option<i64>,
    pub accel: Option<String>,
    pub reset: Option<String>,
    pub splats: Vec<String>,
}

/// The workload's own figure of merit for one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadMetric {
    pub name: String,
    pub value: Option<f64>,
    #[serde(default)]
    pub higher_is_better: bool,
}

impl RunInfo {
    pub fn load(path: &Path) -> Result<RunInfo> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a valid run<N>.json", path.display()))
    }

    /// True when the run itself says it failed.
    pub fn failed(&self) -> bool {
        self.status.as_deref().is_some_and(|s| !s.eq_ignore_ascii_case("ok"))
    }

    /// True when the sched_ext exit kind is an error or a stall (SCX_EXIT_ERROR,
    /// ERROR_BPF, ERROR_STALL, in whatever spelling the loader used) rather than
    /// an orderly unregistration.
    pub fn exit_is_error(&self) -> bool {
        self.exit_kind.as_deref().is_some_and(exit_kind_is_error)
    }
}

pub fn exit_kind_is_error(kind: &str) -> bool {
    let k = kind.to_ascii_uppercase();
    k.contains("ERR") || k.contains("STALL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example_with_extra_fields() {
        let text = r#"{
          "scheduler": "scx_simple", "workload": "hackbench", "variant": "test", "iteration": 1,
          "status": "ok", "failure": null, "exit_kind": "UNREG_USER", "exit_reason": "",
          "workload_metric": {"name": "hackbench_time_s", "value": 1.23, "higher_is_better": false},
          "duration_s": 20.0, "interval_s": 2.0, "started_unix": 1764000000,
          "accel": "tcg,thread=single", "reset": "overlay", "splats": [], "new_field": 7
        }"#;
        let r: RunInfo = serde_json::from_str(text).unwrap();
        assert_eq!(r.iteration, Some(1));
        assert!(!r.failed() && !r.exit_is_error());
        assert_eq!(r.workload_metric.unwrap().value, Some(1.23));
    }

    #[test]
    fn error_kinds() {
        for k in ["ERROR", "ERROR_BPF", "ERROR_STALL", "error_stall", "SCX_EXIT_ERROR"] {
            assert!(exit_kind_is_error(k), "{k}");
        }
        for k in ["UNREG_USER", "unregistered", "UNREG_KERN", "SYSRQ", "DONE", "NONE"] {
            assert!(!exit_kind_is_error(k), "{k}");
        }
    }

    #[test]
    fn bad_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run3.json");
        std::fs::write(&p, "{\"status\": ").unwrap();
        let err = format!("{:#}", RunInfo::load(&p).unwrap_err());
        assert!(err.contains("run3.json"), "{err}");
    }
}
