//! The summary: what `summary.json` holds (schema in docs/report.md).
//!
//! Bump [`SCHEMA_VERSION`] on any change that removes or changes the meaning
//! of a field; adding a field keeps the version (readers ignore unknown
//! fields, and fields added later are `#[serde(default)]`).

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use scx_contract::sample::Sample;
use scx_contract::run::WorkloadMetric;
use super::runstats::SeriesStats;
use super::splat::Splat;
use super::stats::Estimate;
use super::verifier::VerifierProg;

/// Version of summary.json's schema.
pub const SCHEMA_VERSION: u32 = 1;

/// PASS, FAIL or SKIP (not judged: the data for it is missing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One success criterion's verdict for one group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    /// e.g. `control_grows`, `test_plateaus`, `bpfscan_evictions_positive`.
    pub name: String,
    /// The variant it judges; null for group-wide criteria.
    pub variant: Option<String>,
    pub status: Status,
    /// One line: the numbers behind the verdict.
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
}

impl Counts {
    pub fn of<'a>(criteria: impl IntoIterator<Item = &'a Criterion>) -> Counts {
        let mut c = Counts::default();
        for k in criteria {
            match k.status {
                Status::Pass => c.pass += 1,
                Status::Fail => c.fail += 1,
                Status::Skip => c.skip += 1,
            }
        }
        c
    }

    /// FAIL if anything failed, SKIP if nothing passed, else PASS.
    pub fn verdict(&self) -> Status {
        if self.fail > 0 {
            Status::Fail
        } else if self.pass == 0 {
            Status::Skip
        } else {
            Status::Pass
        }
    }
}

/// One run (iteration) of one variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub iteration: u32,
    /// From run<N>.json: "ok", "failed" (or what it said); "unknown" without one.
    pub status: String,
    pub failure: Option<String>,
    pub exit_kind: Option<String>,
    pub exit_reason: Option<String>,
    /// Line number of a cut-off last CSV line that was dropped.
    pub csv_truncated_line: Option<usize>,
    #[serde(flatten)]
    pub stats: SeriesStats,
    pub workload_metric: Option<WorkloadMetric>,
    /// Number of splats found in this run's logs.
    pub splats: usize,
    /// The samples themselves, for the plots; not in summary.json.
    #[serde(skip)]
    pub series: Vec<Sample>,
}

/// Cost of the cleanup: how much work a scan does and how long it may take.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvictionCost {
    /// evictions_total / scans_total.
    pub evictions_per_scan: Option<f64>,
    /// Longest single cleanup call over all runs (ns).
    pub scan_max_ns: u64,
    /// scan_timeouts_total / scans_total: scans cut short by their time budget.
    pub scan_timeout_share: Option<f64>,
    /// Upper bound of the share of one CPU spent scanning:
    /// sum(scans x scan_max_ns) / sum(run duration), over runs.
    pub scan_time_share_max: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemorySummary {
    pub mem_free_kb_min: Option<u64>,
    /// Per run: first minus last MemFree (KiB); positive = memory went away.
    pub mem_free_kb_drop: Option<Estimate>,
    pub sunreclaim_kb_max: Option<u64>,
    /// Per run: last minus first SUnreclaim (KiB).
    pub sunreclaim_kb_growth: Option<Estimate>,
}

/// The workload's figure of merit over a variant's runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub metric: String,
    pub higher_is_better: bool,
    #[serde(flatten)]
    pub estimate: Estimate,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantSummary {
    pub name: String,
    /// run<N>.csv files found (the original aggregate step's "files found").
    pub files_found: usize,
    pub runs: Vec<RunSummary>,
    /// Samples over all runs.
    pub samples: usize,
    pub map_entries_max: Option<u64>,
    /// Mean over all samples of all runs.
    pub map_entries_mean: Option<f64>,
    pub map_bytes_max: Option<u64>,
    /// Whole-run growth slope across runs (entries/s), with its 95% CI.
    pub slope_per_s: Option<Estimate>,
    /// Late-window slope across runs (entries/s).
    pub late_slope_per_s: Option<Estimate>,
    /// Sums over runs of each run's final cumulative counter.
    pub evictions_total: u64,
    pub scans_total: u64,
    pub scan_timeouts_total: u64,
    pub eviction_cost: EvictionCost,
    /// Sum over runs of live tasks touched again after a scan evicted their
    /// entry (bpf/include/track.h).
    #[serde(default)]
    pub false_evictions_total: u64,
    /// The tracking's cost: ns spent in the tracking code (insert/refresh,
    /// scans, exit_task deletes) per ops.running call, over all runs; null
    /// without the counters.
    #[serde(default)]
    pub track_ns_per_run: Option<f64>,
    pub memory: MemorySummary,
    pub throughput: Option<Throughput>,
    #[serde(default)]
    pub verifier: Vec<VerifierProg>,
    /// test and bpfscan: the cleanup's late-window capacity against the rate
    /// entries go stale (report/capacity.rs); absent for other variants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<super::capacity::Capacity>,
}

/// Throughput of a variant relative to control.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThroughputChange {
    pub variant: String,
    pub against: String,
    pub metric: String,
    pub higher_is_better: bool,
    /// mean(variant) / mean(against) - 1.
    pub relative_change: f64,
    pub ci95_low: Option<f64>,
    pub ci95_high: Option<f64>,
    /// "better", "worse", "no significant change" or "no interval (n < 2)".
    pub assessment: String,
}

/// One scheduler x workload (x kernel) cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// Relative to the directory summarized; "." when it was the group itself.
    pub path: String,
    pub scheduler: String,
    pub workload: String,
    pub kernel: Option<String>,
    /// The machine's shape (manifest.json's topology), when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<String>,
    /// Distinct values of run<N>.json's accel / reset.
    pub accel: Vec<String>,
    pub reset: Vec<String>,
    pub variants: Vec<VariantSummary>,
    pub throughput_changes: Vec<ThroughputChange>,
    pub criteria: Vec<Criterion>,
    pub splats: Vec<Splat>,
    /// Things worth knowing that are not verdicts (truncated CSV lines, ...).
    pub notes: Vec<String>,
    /// Every sampled map of the scheduler against exits (run<N>.maps.csv):
    /// LEAK or OK per map and run. Informational here (a control variant
    /// leaks by design); not a criterion.
    #[serde(default)]
    pub maps: Vec<super::leak::MapGrowth>,
}

impl GroupSummary {
    pub fn variant(&self, name: &str) -> Option<&VariantSummary> {
        self.variants.iter().find(|v| v.name == name)
    }

    pub fn criterion(&self, name: &str) -> Option<&Criterion> {
        self.criteria.iter().find(|c| c.name == name)
    }

    pub fn counts(&self) -> Counts {
        Counts::of(&self.criteria)
    }

    /// "kernel/scheduler/workload" (kernel omitted when unknown): the key a
    /// baseline comparison matches groups by.
    pub fn key(&self) -> String {
        let mut k: Vec<&str> = self.kernel.iter().chain(&self.topology).map(String::as_str).collect();
        k.extend([self.scheduler.as_str(), self.workload.as_str()]);
        k.join("/")
    }
}

/// Everything `report` concluded, as written to summary.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema_version: u32,
    /// "scx-vmctl <version>".
    pub generator: String,
    pub verdict: Status,
    pub counts: Counts,
    pub groups: Vec<GroupSummary>,
}

impl Summary {
    pub fn new(groups: Vec<GroupSummary>) -> Summary {
        let counts = Counts::of(groups.iter().flat_map(|g| &g.criteria));
        Summary {
            schema_version: SCHEMA_VERSION,
            generator: format!("scx-vmctl {}", env!("CARGO_PKG_VERSION")),
            verdict: counts.verdict(),
            counts,
            groups,
        }
    }

    /// True when no criterion failed and at least one passed.
    pub fn all_pass(&self) -> bool {
        self.verdict == Status::Pass
    }

    /// The process exit code for this verdict (see crate::exit): OK when all
    /// pass, CRITERION_FAILED when one failed or nothing could be judged.
    pub fn exit_code(&self) -> i32 {
        if self.all_pass() {
            crate::exit::OK
        } else {
            crate::exit::CRITERION_FAILED
        }
    }

    /// Reads a summary.json, refusing one from a newer schema.
    pub fn load(path: &Path) -> Result<Summary> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        let version = v.get("schema_version").and_then(|x| x.as_u64());
        match version {
            Some(n) if n as u32 == SCHEMA_VERSION => {}
            Some(n) => anyhow::bail!(
                "{}: summary schema_version {n}, this scx-vmctl reads {SCHEMA_VERSION}",
                path.display()
            ),
            None => anyhow::bail!("{}: no schema_version: not a scx-vmctl summary.json", path.display()),
        }
        serde_json::from_value(v).with_context(|| format!("{}: not a valid summary.json", path.display()))
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("summary serializes");
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crit(status: Status) -> Criterion {
        Criterion { name: "x".into(), variant: None, status, reason: String::new() }
    }

    #[test]
    fn verdict_rules() {
        let v = |s: &[Status]| Counts::of(&s.iter().map(|x| crit(*x)).collect::<Vec<_>>()).verdict();
        assert_eq!(v(&[Status::Pass, Status::Skip]), Status::Pass);
        assert_eq!(v(&[Status::Pass, Status::Fail]), Status::Fail);
        assert_eq!(v(&[Status::Skip, Status::Skip]), Status::Skip);
        assert_eq!(v(&[]), Status::Skip);
        let s = Summary::new(vec![]);
        assert!(!s.all_pass());
        assert_eq!(s.exit_code(), crate::exit::CRITERION_FAILED);
    }

    #[test]
    fn status_serializes_uppercase() {
        assert_eq!(serde_json::to_string(&Status::Pass).unwrap(), "\"PASS\"");
        assert_eq!(serde_json::from_str::<Status>("\"SKIP\"").unwrap(), Status::Skip);
    }
}
