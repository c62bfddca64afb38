//! The documented core of `run<N>.json` (docs/results.md): what a run was and
//! how it ended. The agent writes every field here, then extras of its own
//! (flattened after them); a reader takes files from any runner, so every
//! field is optional on read and unknown fields are ignored.

use serde::{Deserialize, Serialize};

/// The workload's own figure of merit for one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadMetric {
    /// e.g. `hackbench_time_s`, `stressng_bogo_ops_s`
    pub name: String,
    /// None when the workload produced no figure
    pub value: Option<f64>,
    #[serde(default)]
    pub higher_is_better: bool,
}

/// `status` of a run that worked.
pub const STATUS_OK: &str = "ok";
/// `status` of a run that did not (`failure` says why, in one line).
pub const STATUS_FAILED: &str = "failed";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunCore {
    pub scheduler: Option<String>,
    pub workload: Option<String>,
    pub variant: Option<String>,
    pub iteration: Option<u32>,
    /// [`STATUS_OK`] or [`STATUS_FAILED`]
    pub status: Option<String>,
    /// the first reason the run failed, one line
    pub failure: Option<String>,
    /// sched_ext's exit kind (UNREG, ERROR, ERROR_STALL, ...), NONE if it never exited
    pub exit_kind: Option<String>,
    pub exit_reason: Option<String>,
    pub workload_metric: Option<WorkloadMetric>,
    pub duration_s: Option<f64>,
    pub interval_s: Option<f64>,
    pub started_unix: Option<i64>,
    pub accel: Option<String>,
    pub reset: Option<String>,
    /// kernel warnings, oopses, lockdep and KASAN reports the runner saw
    pub splats: Vec<String>,
}

impl RunCore {
    /// True when the run itself says it failed.
    pub fn failed(&self) -> bool {
        self.status.as_deref().is_some_and(|s| !s.eq_ignore_ascii_case(STATUS_OK))
    }

    /// Record the first reason the run failed; later ones are consequences.
    pub fn fail(&mut self, why: impl Into<String>) {
        if self.failure.is_none() {
            let why: String = why.into();
            self.failure = Some(why.lines().next().unwrap_or("").to_string());
        }
        self.status = Some(STATUS_FAILED.into());
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
        let r: RunCore = serde_json::from_str(text).unwrap();
        assert_eq!(r.iteration, Some(1));
        assert!(!r.failed() && !r.exit_is_error());
        assert_eq!(r.workload_metric.unwrap().value, Some(1.23));
        let r: RunCore = serde_json::from_str(r#"{"status": "failed"}"#).unwrap();
        assert!(r.failed() && r.scheduler.is_none());
    }

    #[test]
    fn the_first_failure_is_kept_on_one_line() {
        let mut r = RunCore { status: Some(STATUS_OK.into()), ..Default::default() };
        r.fail("verifier said no\nline 2");
        r.fail("a consequence");
        assert_eq!((r.status.as_deref(), r.failure.as_deref()), (Some("failed"), Some("verifier said no")));
        let back: RunCore = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
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
}
