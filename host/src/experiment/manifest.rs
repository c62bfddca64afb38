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
    /// The machine's shape (--topology), when one was given
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<String>,
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
    /// Why `--reset snapshot` fell back to overlay resets, if it did
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_fallback: Option<String>,
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
    /// The reset this run got (snapshot, overlay, in-guest): the one asked
    /// for, or overlay where a snapshot could not be made or loaded.
    #[serde(default)]
    pub reset: String,
    /// The saved state it started from (machine::snapshot's key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
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

    /// Runs that need not be redone by --resume: those that ended, or with
    /// `retry_failed` only those that ended well.
    pub fn finished(&self, variant: &str, iteration: u32, retry_failed: bool) -> bool {
        self.runs.iter().any(|r| {
            r.variant == variant && r.iteration == iteration && (r.status == "ok" || (r.status == "failed" && !retry_failed))
        })
    }

    /// What makes `new` (this invocation) differ from `self` (the group on
    /// disk) in a way --resume must not mix: each difference named, with the
    /// old and the new value where they are short.
    pub fn resume_conflicts(&self, new: &Manifest) -> Vec<String> {
        let mut out = Vec::new();
        let mut differ = |what: &str, a: &str, b: &str| {
            if a != b {
                out.push(format!("{what} ({} -> {})", if a.is_empty() { "none" } else { a }, if b.is_empty() { "none" } else { b }));
            }
        };
        differ("kernel", &self.kernel.id, &new.kernel.id);
        differ("image", &self.image_id, &new.image_id);
        // a kernel we did not build has its agent built later, from the guest
        if !self.agent_id.is_empty() && !new.agent_id.is_empty() {
            differ("guest agent", &self.agent_id, &new.agent_id);
        }
        differ("reset mode", &self.reset, &new.reset);
        differ("topology", self.topology.as_deref().unwrap_or(""), new.topology.as_deref().unwrap_or(""));
        differ("accelerator", &self.accel, &new.accel);
        differ("scheduler binaries", &self.custom_binaries.join(" "), &new.custom_binaries.join(" "));
        differ("scheduler crates", &self.sched_crates.join(" "), &new.sched_crates.join(" "));
        differ("scheduler arguments", &format!("{:?}", self.sched_args), &format!("{:?}", new.sched_args));
        differ("leakcheck baseline", &format!("{:?}", self.leakcheck_baseline_s), &format!("{:?}", new.leakcheck_baseline_s));
        if self.config != new.config {
            out.push("configuration (the merged config differs; compare manifest.json's config)".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            manifest_version: MANIFEST_VERSION,
            tool_version: "0.1.0".into(),
            scheduler: "scx_simple".into(),
            workload: "hackbench".into(),
            status: "interrupted".into(),
            started_unix: 1,
            finished_unix: None,
            accel: "tcg,thread=single".into(),
            qemu_version: "10.0".into(),
            kernel: KernelRef { id: "k1".into(), path: "/k".into(), version: None, has_helper: Some(true) },
            image_id: "i1".into(),
            agent_id: "a1".into(),
            reset: "overlay".into(),
            topology: None,
            variants: vec!["control".into(), "test".into()],
            iterations: 2,
            shard: None,
            custom_binaries: vec![],
            sched_crates: vec![],
            sched_args: vec![],
            leakcheck_baseline_s: None,
            config: Config::default_config(),
            snapshot_fallback: None,
            runs: vec![],
        }
    }

    fn run(variant: &str, iteration: u32, status: &str) -> RunRecord {
        RunRecord {
            variant: variant.into(),
            iteration,
            status: status.into(),
            failure: None,
            started_unix: 1,
            wall_s: 1.0,
            boot_s: 0.0,
            setup_s: 0.0,
            workload_s: 1.0,
            pull_s: 0.0,
            overhead_s: 0.0,
            reset: "overlay".into(),
            snapshot: None,
        }
    }

    #[test]
    fn resume_names_what_changed() {
        let old = manifest();
        assert!(old.resume_conflicts(&manifest()).is_empty());
        let mut new = manifest();
        new.agent_id = "a2".into();
        new.image_id = "i2".into();
        assert_eq!(old.resume_conflicts(&new), vec!["image (i1 -> i2)", "guest agent (a1 -> a2)"]);
        // an agent not built yet (a kernel we did not build) is not a change
        new = manifest();
        new.agent_id.clear();
        assert!(old.resume_conflicts(&new).is_empty());
        new.config.experiment.duration_s = 99.0;
        new.reset = "in-guest".into();
        let c = old.resume_conflicts(&new);
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(c[0] == "reset mode (overlay -> in-guest)" && c[1].starts_with("configuration"), "{c:?}");
    }

    #[test]
    fn retry_failed_redoes_failed_runs_only() {
        let mut m = manifest();
        m.record(run("control", 1, "ok"));
        m.record(run("test", 1, "failed"));
        m.record(run("control", 2, "interrupted"));
        assert!(m.finished("control", 1, false) && m.finished("control", 1, true));
        assert!(m.finished("test", 1, false) && !m.finished("test", 1, true));
        assert!(!m.finished("control", 2, false) && !m.finished("test", 2, false));
    }
}
