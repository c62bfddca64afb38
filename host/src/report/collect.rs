//! Reads one group's files and turns them into a [`GroupSummary`]: runs,
//! per-variant aggregates, throughput changes, splats and criteria.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};

use super::capacity;
use super::criteria;
use scx_contract::sample as csv;
use super::layout::{GroupDir, RunFiles, VariantDir};
use super::runinfo;
use scx_contract::run::RunCore;
use super::runstats::SeriesStats;
use super::splat::{self, LogKind, Splat};
use super::stats::{relative_change, Estimate};
use super::summary::{
    EvictionCost, GroupSummary, MemorySummary, RunSummary, Throughput, ThroughputChange, VariantSummary,
};
use super::verifier;

/// What reading one run produced besides its summary.
struct RunRead {
    run: RunSummary,
    info: Option<RunCore>,
    splats: Vec<Splat>,
    logs: usize,
    note: Option<String>,
}

fn rel(group: &Path, p: &Path) -> String {
    p.strip_prefix(group).unwrap_or(p).display().to_string()
}

fn read_run(group: &Path, files: &RunFiles) -> Result<RunRead> {
    let parsed = match &files.csv {
        Some(p) => csv::parse_file(p)?,
        None => csv::CsvRun::default(),
    };
    let info = files.json.as_deref().map(runinfo::load).transpose()?;
    let mut splats = Vec::new();
    let mut logs = 0;
    for (path, kind) in [(&files.dmesg, LogKind::Dmesg), (&files.serial, LogKind::Serial)] {
        if let Some(p) = path {
            logs += 1;
            splats.extend(splat::scan_file(p, kind, &rel(group, p))?);
        }
    }
    // The runner's own findings count only when we have no log to scan
    // (otherwise they would be the same splats twice).
    if logs == 0 {
        if let (Some(i), Some(p)) = (&info, &files.json) {
            for s in &i.splats {
                splats.push(Splat {
                    file: rel(group, p),
                    line: None,
                    pattern: "reported_by_runner".into(),
                    lines: s.lines().take(splat::CONTEXT_LINES).map(str::to_string).collect(),
                });
            }
        }
    }
    let note = match (parsed.truncated_line, &files.csv) {
        (Some(line), Some(p)) => Some(format!("{}: cut-off line {line} dropped (run ended mid-write)", rel(group, p))),
        _ => None,
    };
    let stats = SeriesStats::of(&parsed.samples);
    let i = info.clone().unwrap_or_default();
    let run = RunSummary {
        iteration: files.iteration,
        status: match &info {
            Some(i) => i.status.clone().unwrap_or_else(|| "unknown".into()),
            None => "unknown".into(),
        },
        failure: i.failure,
        exit_kind: i.exit_kind,
        exit_reason: i.exit_reason,
        csv_truncated_line: parsed.truncated_line,
        stats,
        workload_metric: i.workload_metric,
        splats: splats.len(),
        series: parsed.samples,
    };
    Ok(RunRead { run, info, splats, logs, note })
}

fn estimate(xs: impl Iterator<Item = f64>) -> Option<Estimate> {
    Estimate::of(&xs.collect::<Vec<_>>())
}

/// Throughput over the runs that did not fail and reported the metric; runs
/// whose metric name differs from the first one's are left out.
fn throughput(runs: &[RunSummary]) -> Option<Throughput> {
    let usable = || {
        runs.iter()
            .filter(|r| r.status != "failed")
            .filter_map(|r| r.workload_metric.as_ref())
            .filter(|m| m.value.is_some_and(f64::is_finite))
    };
    let first = usable().next()?;
    let values = usable().filter(|m| m.name == first.name).filter_map(|m| m.value);
    Some(Throughput {
        metric: first.name.clone(),
        higher_is_better: first.higher_is_better,
        estimate: estimate(values)?,
    })
}

/// Aggregates a variant's runs (pure: no I/O), so tests can feed it directly.
pub fn aggregate(name: &str, files_found: usize, runs: Vec<RunSummary>) -> VariantSummary {
    let st = |r: &RunSummary| r.stats.clone();
    let with = || runs.iter().filter(|r| r.stats.samples > 0);
    let samples: usize = runs.iter().map(|r| r.stats.samples).sum();
    let sum: f64 = with().map(|r| r.stats.map_entries_mean.unwrap_or(0.0) * r.stats.samples as f64).sum();
    let evictions_total: u64 = runs.iter().map(|r| r.stats.evictions).sum();
    let scans_total: u64 = runs.iter().map(|r| r.stats.scans).sum();
    let scan_timeouts_total: u64 = runs.iter().map(|r| r.stats.scan_timeouts).sum();
    let busy_ns: f64 = runs.iter().map(|r| r.stats.scans as f64 * r.stats.scan_max_ns as f64).sum();
    let run_ns: f64 = with().filter_map(|r| r.stats.elapsed_s).sum::<f64>() * 1e9;
    let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
    VariantSummary {
        name: name.to_string(),
        files_found,
        samples,
        map_entries_max: with().filter_map(|r| r.stats.map_entries_max).max(),
        map_entries_mean: (samples > 0).then(|| sum / samples as f64),
        map_bytes_max: with().filter_map(|r| r.stats.map_bytes_max).max(),
        slope_per_s: estimate(runs.iter().filter_map(|r| r.stats.slope_per_s)),
        late_slope_per_s: estimate(runs.iter().filter_map(|r| r.stats.late_slope_per_s)),
        evictions_total,
        scans_total,
        scan_timeouts_total,
        false_evictions_total: runs.iter().map(|r| r.stats.false_evictions).sum(),
        track_ns_per_run: ratio(
            runs.iter().map(|r| r.stats.track_ns).sum(),
            runs.iter().map(|r| r.stats.runs).sum(),
        )
        .filter(|_| runs.iter().any(|r| r.stats.track_ns > 0)),
        eviction_cost: EvictionCost {
            evictions_per_scan: ratio(evictions_total, scans_total),
            scan_max_ns: runs.iter().map(|r| r.stats.scan_max_ns).max().unwrap_or(0),
            scan_timeout_share: ratio(scan_timeouts_total, scans_total),
            scan_time_share_max: (run_ns > 0.0 && scans_total > 0).then(|| busy_ns / run_ns),
        },
        memory: MemorySummary {
            mem_free_kb_min: with().filter_map(|r| r.stats.mem_free_kb_min).min(),
            mem_free_kb_drop: estimate(with().map(st).filter_map(|s| {
                Some(s.mem_free_kb_first? as f64 - s.mem_free_kb_last? as f64)
            })),
            sunreclaim_kb_max: with().filter_map(|r| r.stats.sunreclaim_kb_max).max(),
            sunreclaim_kb_growth: estimate(with().map(st).filter_map(|s| {
                Some(s.sunreclaim_kb_last? as f64 - s.sunreclaim_kb_first? as f64)
            })),
        },
        throughput: throughput(&runs),
        verifier: Vec::new(),
        cleanup: None,
        runs,
    }
}

/// Throughput of every non-control variant against control.
pub fn throughput_changes(variants: &[VariantSummary]) -> Vec<ThroughputChange> {
    let Some(base) = variants.iter().find(|v| v.name == "control").and_then(|v| v.throughput.as_ref()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for v in variants.iter().filter(|v| v.name != "control") {
        let Some(t) = v.throughput.as_ref().filter(|t| t.metric == base.metric) else { continue };
        let Some(ch) = relative_change(&base.estimate, &t.estimate) else { continue };
        let assessment = if ch.low.is_none() {
            "no interval (n < 2)"
        } else if !ch.excludes_zero() {
            "no significant change"
        } else if (ch.value > 0.0) == base.higher_is_better {
            "better"
        } else {
            "worse"
        };
        out.push(ThroughputChange {
            variant: v.name.clone(),
            against: "control".into(),
            metric: base.metric.clone(),
            higher_is_better: base.higher_is_better,
            relative_change: ch.value,
            ci95_low: ch.low,
            ci95_high: ch.high,
            assessment: assessment.into(),
        });
    }
    out
}

/// The kernel named by the group's manifest.json, if it names one.
/// Whether `scx-vmctl leakcheck` made the group (manifest.json says so).
fn manifest_is_leakcheck(dir: &Path) -> bool {
    std::fs::read(dir.join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get("leakcheck_baseline_s").is_some_and(|x| !x.is_null()))
}

fn manifest_topology(dir: &Path) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).ok()?).ok()?;
    v.get("topology")?.as_str().map(str::to_string)
}

fn manifest_kernel(dir: &Path) -> Result<Option<String>> {
    let p = dir.join("manifest.json");
    if !p.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", p.display()))?;
    let k = match v.get("kernel") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Object(o)) => ["release", "version", "name", "label"]
            .iter()
            .find_map(|f| o.get(*f).and_then(|x| x.as_str()).map(str::to_string)),
        _ => None,
    };
    Ok(k.or_else(|| v.get("kernel_release").and_then(|x| x.as_str()).map(str::to_string)))
}

fn read_variant(group: &Path, vd: &VariantDir, out: &mut GroupParts) -> Result<VariantSummary> {
    let mut runs = Vec::new();
    for f in &vd.runs {
        let r = read_run(group, f)?;
        out.logs += r.logs;
        out.splats.extend(r.splats);
        out.notes.extend(r.note);
        if let Some(i) = &r.info {
            out.accel.extend(i.accel.clone());
            out.reset.extend(i.reset.clone());
        }
        runs.push(r.run);
    }
    let files_found = vd.runs.iter().filter(|r| r.csv.is_some()).count();
    let mut v = aggregate(&vd.name, files_found, runs);
    if let Some(p) = &vd.verifier {
        v.verifier = verifier::parse_file(p)?;
    }
    Ok(v)
}

#[derive(Default)]
struct GroupParts {
    splats: Vec<Splat>,
    notes: Vec<String>,
    logs: usize,
    accel: BTreeSet<String>,
    reset: BTreeSet<String>,
}

/// Reads a whole group directory.
pub fn group(gd: &GroupDir) -> Result<GroupSummary> {
    let mut parts = GroupParts::default();
    let mut variants = Vec::new();
    for vd in &gd.variants {
        variants.push(read_variant(&gd.path, vd, &mut parts)?);
    }
    let mut maps = Vec::new();
    for vd in &gd.variants {
        for r in &vd.runs {
            let (csv, json) = (vd.path.join(format!("run{}.maps.csv", r.iteration)), vd.path.join(format!("run{}.maps.json", r.iteration)));
            maps.extend(super::leak::analyze_run(&vd.name, r.iteration, &csv, &json));
        }
    }
    // A leakcheck is judged on its maps (a control variant leaking fails
    // it); an experiment on the seed's criteria, the maps as information.
    let criteria = if manifest_is_leakcheck(&gd.path) {
        let mut c = vec![criteria::no_scheduler_error(&variants), criteria::no_kernel_splat(&parts.splats, parts.logs)];
        c.extend(maps.iter().map(super::leak::criterion));
        c
    } else {
        // Each cleaning variant's capacity against the stale rate, said in
        // its _plateaus row (why it fails, or how close it came).
        let accel: Vec<String> = parts.accel.iter().cloned().collect();
        let settings = capacity::Settings::read(&gd.path, &accel);
        let control = variants.iter().find(|v| v.name == "control").and_then(|c| c.late_slope_per_s.as_ref()).map(|e| e.mean);
        for (v, vd) in variants.iter_mut().zip(&gd.variants) {
            if criteria::CLEANING_VARIANTS.contains(&v.name.as_str()) {
                v.cleanup = capacity::measure(v, &vd.path, control, &settings);
            }
        }
        let mut c = criteria::evaluate(&variants, &parts.splats, parts.logs);
        capacity::annotate(&mut c, &variants, &settings);
        c
    };
    Ok(GroupSummary {
        path: gd.rel.clone(),
        scheduler: gd.scheduler.clone(),
        workload: gd.workload.clone(),
        kernel: manifest_kernel(&gd.path)?.or_else(|| gd.prefix.clone()),
        topology: manifest_topology(&gd.path),
        accel: parts.accel.into_iter().collect(),
        reset: parts.reset.into_iter().collect(),
        throughput_changes: throughput_changes(&variants),
        variants,
        criteria,
        splats: parts.splats,
        notes: parts.notes,
        maps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use scx_contract::run::WorkloadMetric;

    fn run(i: u32, status: &str, metric: Option<(&str, f64)>) -> RunSummary {
        RunSummary {
            iteration: i,
            status: status.into(),
            failure: None,
            exit_kind: None,
            exit_reason: None,
            csv_truncated_line: None,
            stats: SeriesStats::default(),
            workload_metric: metric.map(|(n, v)| WorkloadMetric { name: n.into(), value: Some(v), higher_is_better: true }),
            splats: 0,
            series: Vec::new(),
        }
    }

    #[test]
    fn throughput_skips_failed_runs_and_other_metrics() {
        let runs = vec![
            run(1, "ok", Some(("bogo_ops_per_s", 100.0))),
            run(2, "failed", Some(("bogo_ops_per_s", 1.0))),
            run(3, "ok", Some(("other", 5.0))),
            run(4, "ok", Some(("bogo_ops_per_s", 110.0))),
            run(5, "ok", None),
        ];
        let t = throughput(&runs).unwrap();
        assert_eq!((t.metric.as_str(), t.estimate.n, t.estimate.mean), ("bogo_ops_per_s", 2, 105.0));
        assert!(throughput(&[run(1, "ok", None)]).is_none());
    }

    #[test]
    fn empty_variant_aggregates_to_nulls() {
        let v = aggregate("test", 0, vec![run(1, "failed", None)]);
        assert_eq!((v.samples, v.map_entries_max, v.map_entries_mean), (0, None, None));
        assert!(v.slope_per_s.is_none() && v.throughput.is_none());
        assert_eq!(v.eviction_cost.evictions_per_scan, None);
    }

    #[test]
    fn throughput_change_direction() {
        let mk = |name: &str, xs: &[f64]| {
            let runs = xs.iter().enumerate().map(|(i, x)| run(i as u32 + 1, "ok", Some(("ops", *x)))).collect();
            aggregate(name, xs.len(), runs)
        };
        let vs = vec![mk("control", &[100.0, 101.0, 99.0]), mk("test", &[90.0, 91.0, 89.0])];
        let ch = throughput_changes(&vs);
        assert_eq!(ch.len(), 1);
        assert!((ch[0].relative_change + 0.1).abs() < 1e-12);
        assert_eq!(ch[0].assessment, "worse", "fewer ops/s with higher_is_better");
        assert!(throughput_changes(&vs[1..]).is_empty(), "no control, no change");
    }
}
