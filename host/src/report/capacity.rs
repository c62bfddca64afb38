//! Why a cleaning variant (test, bpfscan) does or does not plateau: the
//! cleanup's capacity against the rate at which entries go stale.
//!
//! The cleanup may spend `cleanup.timeout_us` of guest time per call, at most
//! once per `cleanup.interval_ms`. Entries go stale at about the rate tasks
//! exit (an exited task's entry is never touched again). When most calls run
//! out of their budget (`scan_timeouts`) and the evictions they achieve fall
//! short of that rate, the map grows by the difference: the cleanup is
//! *capacity-bound*, and the remedy is a larger budget or more frequent
//! calls, by the factor the figures give. Otherwise the growth is something
//! else, and the verdict says which: a max age too long for the run, live
//! tasks rising, a sawtooth caught on a rising edge.
//!
//! Every figure is taken over the runs' late windows (the part of each run
//! test_plateaus judges: elapsed >= LATE_FRACTION of the run), summed over
//! runs. The stale rate is, in order of preference, the task exits counted
//! by the agent's raw tracepoint (run<N>.maps.csv, `tasks_exited`), control's
//! late growth, or this variant's own evictions plus its growth.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::fmt::{num, pct};
use super::runstats::LATE_FRACTION;
use super::stats::{ls_slope, mean};
use super::summary::{Criterion, RunSummary, Status, VariantSummary};

/// "Most scans timed out": the cleanup spent its whole budget this often.
pub const MOST_TIMED_OUT: f64 = 0.5;
/// Evictions below this share of the stale rate fall short of it.
pub const SHORT_OF: f64 = 0.9;
/// The advised setting aims at this many times the stale rate, so that a
/// backlog drains and run-to-run noise does not tip it over again.
pub const MARGIN: f64 = 2.0;
/// Not advised below this interval (calls that often cost dispatch latency).
pub const MIN_INTERVAL_MS: f64 = 10.0;

/// The cleanup settings of the group's runs (manifest.json) and how they ran.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    pub interval_ms: Option<f64>,
    pub timeout_us: Option<f64>,
    pub max_age_ms: Option<f64>,
    /// The guest ran under TCG (manifest's or run<N>.json's accel).
    pub tcg: bool,
    /// The runs were a user's binaries (--sched-bin, --sched): their cleanup
    /// is their own, not our config's.
    pub own_binaries: bool,
}

impl Settings {
    /// From `<group>/manifest.json` (config.cleanup, accel, custom_binaries)
    /// and the accelerators the runs recorded. A missing or partial manifest
    /// leaves the settings unknown; the advice then gives factors.
    pub fn read(group: &Path, run_accel: &[String]) -> Settings {
        let m: serde_json::Value = std::fs::read(group.join("manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let c = &m["config"]["cleanup"];
        let accel = m["accel"]
            .as_str()
            .into_iter()
            .map(str::to_string)
            .chain(run_accel.iter().cloned());
        Settings {
            interval_ms: c["interval_ms"].as_f64(),
            timeout_us: c["timeout_us"].as_f64(),
            max_age_ms: c["max_age_ms"].as_f64(),
            tcg: accel
                .into_iter()
                .any(|a| a.to_ascii_lowercase().contains("tcg")),
            own_binaries: m["custom_binaries"]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
        }
    }
}

/// What the late windows show about the cleanup (summary.json: a variant's
/// `cleanup`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// Seconds of late window the figures cover, summed over runs.
    pub window_s: f64,
    /// Evictions achieved per second (the capacity, when most scans timed out).
    pub evictions_per_s: f64,
    pub scans_per_s: f64,
    pub evictions_per_scan: Option<f64>,
    /// Share of the late windows' scans cut short by their budget.
    pub timed_out_share: Option<f64>,
    /// Evictions per ms of per-call budget, when capacity-bound (a budget
    /// that ran out with stale entries left): the helper's own speed,
    /// comparable across settings and kernels.
    pub evictions_per_budget_ms: Option<f64>,
    /// Rate at which entries go stale (entries/s).
    pub stale_per_s: Option<f64>,
    /// "task exits", "control's late growth" or "evictions + growth".
    pub stale_from: Option<String>,
    /// Mean late slope of the variant's map (entries/s).
    pub growth_per_s: Option<f64>,
    /// Most scans timed out and evictions fell short of the stale rate.
    pub capacity_bound: bool,
    /// Why the map grows when it is not capacity-bound (or no scans ran).
    pub other_cause: Option<String>,
    /// The setting to change, when capacity-bound.
    pub advice: Option<String>,
}

/// Late-window deltas of one run.
#[derive(Default)]
struct Window {
    dt: f64,
    evictions: f64,
    scans: f64,
    timeouts: f64,
}

fn late_window(r: &RunSummary) -> Option<Window> {
    let last = r.series.last()?;
    let start = LATE_FRACTION * last.elapsed_s;
    let first = r.series.iter().find(|s| s.elapsed_s >= start)?;
    let dt = last.elapsed_s - first.elapsed_s;
    (dt > 0.0).then(|| Window {
        dt,
        evictions: last.evictions.saturating_sub(first.evictions) as f64,
        scans: last.scans.saturating_sub(first.scans) as f64,
        timeouts: last.scan_timeouts.saturating_sub(first.scan_timeouts) as f64,
    })
}

/// Task exits and seconds over the late half of `run<N>.maps.csv` (its churn
/// rows, when it marks them).
fn late_exits(path: &Path) -> Option<(f64, f64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n);
    let (ti, ei, churn) = (col("elapsed_s")?, col("tasks_exited")?, col("churning"));
    let rows: Vec<(f64, f64)> = lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            if f.len() != header.len() || churn.is_some_and(|k| f[k].trim() == "0") {
                return None;
            }
            Some((f[ti].parse().ok()?, f[ei].parse().ok()?))
        })
        .collect();
    let (t0, last) = (rows.first()?.0, *rows.last()?);
    let start = t0 + LATE_FRACTION * (last.0 - t0);
    let first = rows.iter().find(|r| r.0 >= start)?;
    let dt = last.0 - first.0;
    (dt > 0.0).then_some((last.1 - first.1, dt))
}

/// Nearest of 1, 2, 5 x 10^k at or above `x`.
pub fn nice_up(x: f64) -> f64 {
    let k = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * k)
        .find(|v| *v >= x * (1.0 - 1e-9))
        .unwrap_or(10.0 * k)
}

/// Nearest of 1, 2, 5 x 10^k at or below `x`.
pub fn nice_down(x: f64) -> f64 {
    let k = 10f64.powf(x.log10().floor());
    [5.0, 2.0, 1.0]
        .iter()
        .map(|m| m * k)
        .find(|v| *v <= x * (1.0 + 1e-9))
        .unwrap_or(k)
}

fn late_samples(r: &RunSummary) -> Vec<&scx_contract::sample::Sample> {
    let Some(last) = r.series.last() else {
        return Vec::new();
    };
    r.series
        .iter()
        .filter(|s| s.elapsed_s >= LATE_FRACTION * last.elapsed_s)
        .collect()
}

/// The cause of growth other than capacity, judged on the run whose late
/// slope is steepest.
fn other_cause(v: &VariantSummary, s: &Settings, cap: &Capacity) -> Option<String> {
    let worst = v
        .runs
        .iter()
        .filter(|r| r.stats.late_slope_per_s.is_some())
        .max_by(|a, b| {
            a.stats
                .late_slope_per_s
                .partial_cmp(&b.stats.late_slope_per_s)
                .unwrap_or(std::cmp::Ordering::Equal)
        })?;
    let late = late_samples(worst);
    let slope = worst.stats.late_slope_per_s.unwrap_or(0.0);
    let start = late.first()?.elapsed_s;
    if cap.scans_per_s == 0.0 {
        return Some(format!(
            "the cleanup never ran in the late window (0 scans after {} s): ops.dispatch did not reach it, or the scheduler has none",
            num(start)
        ));
    }
    // The map fills for max_age (plus an interval) before anything is
    // evictable; a late window that starts earlier still holds that ramp.
    if let Some(age) = s.max_age_ms {
        let fill_s = (age + s.interval_ms.unwrap_or(0.0)) / 1e3;
        if fill_s >= LATE_FRACTION * worst.stats.elapsed_s.unwrap_or(0.0) {
            let level = cap
                .stale_per_s
                .map(|r| {
                    format!(
                        " (about {} entries at {}/s stale)",
                        num((r * age / 1e3).round()),
                        num(r)
                    )
                })
                .unwrap_or_default();
            return Some(format!(
                "max age longer than the run allows: entries become evictable only after cleanup.max_age_ms ({} s) plus an interval, and run{}'s late window starts at {} s, so the map was still filling to its steady level{level}; run longer than {} s or lower cleanup.max_age_ms",
                num(age / 1e3), worst.iteration, num(start), num((2.0 * fill_s).ceil())
            ));
        }
    }
    let tasks = ls_slope(late.iter().map(|x| (x.elapsed_s, x.nr_tasks as f64)));
    if let Some(t) = tasks.filter(|t| slope > 0.0 && *t >= 0.5 * slope) {
        return Some(format!(
            "live tasks rose: run{}'s guest gained {} tasks/s in its late window while the map gained {} entries/s; live tasks' entries are not stale",
            worst.iteration, num(t), num(slope)
        ));
    }
    let before = worst
        .series
        .iter()
        .filter(|x| x.elapsed_s < start)
        .map(|x| x.map_entries)
        .max();
    let late_max = late.iter().map(|x| x.map_entries).max()?;
    if let Some(b) = before.filter(|b| late_max as f64 <= 1.05 * *b as f64) {
        return Some(format!(
            "a sawtooth, not growth: run{}'s late window never rose above {late_max} entries, no higher than the {b} reached before it; its fitted slope caught a rising edge (a longer run or shorter sampling interval smooths it)",
            worst.iteration
        ));
    }
    let timed = cap.timed_out_share.map_or("-".into(), pct);
    if cap.timed_out_share.is_some_and(|t| t >= MOST_TIMED_OUT) {
        return Some(format!(
            "at capacity but not short of the stale rate: {timed} of scans ran out of budget, yet evictions kept pace with entries going stale; the stale rate is underestimated, or what grows is not stale"
        ));
    }
    Some(format!(
        "not capacity-bound: only {timed} of scans ran out of budget, so the other passes finished, evicting all they found older than max age; what grows was younger than that at each pass, or the cleanup skips entries"
    ))
}

fn advice(cap: &Capacity, s: &Settings) -> String {
    let (stale, evict) = (cap.stale_per_s.unwrap_or(0.0), cap.evictions_per_s);
    if evict <= 0.0 {
        let budget = s
            .timeout_us
            .map_or(String::new(), |t| format!(" in its {} us", num(t)));
        return if s.own_binaries {
            format!("no scan evicted anything{budget}: give the scheduler's cleanup a larger budget per call")
        } else {
            format!(
                "no scan evicted anything{budget}: raise cleanup.timeout_us (by well over {}x)",
                num(MARGIN * 10.0)
            )
        };
    }
    let need = (stale / evict).max(1.0);
    let factor = need * MARGIN;
    let aim = format!(
        "{}x the capacity, to evict {}x the stale rate",
        num(nice_up(factor)),
        num(MARGIN)
    );
    if s.own_binaries {
        return format!(
            "give the scheduler's cleanup about {aim} (a larger budget per call or more calls)"
        );
    }
    let timeout = match s.timeout_us {
        Some(t) => format!(
            "raise cleanup.timeout_us from {} to {}",
            num(t),
            num(nice_up(t * factor))
        ),
        None => format!("raise cleanup.timeout_us {}x", num(nice_up(factor))),
    };
    let (interval, note) = match s.interval_ms {
        Some(i) if i / factor >= MIN_INTERVAL_MS => {
            let configured = 1e3 / i;
            let note = if cap.scans_per_s < 0.8 * configured {
                format!(
                    "; dispatch ran the cleanup only {}/s of the {}/s its interval allows",
                    num(cap.scans_per_s),
                    num(configured)
                )
            } else {
                String::new()
            };
            (
                format!(
                    " or lower cleanup.interval_ms from {} to {}",
                    num(i),
                    num(nice_down(i / factor))
                ),
                note,
            )
        }
        Some(_) => (String::new(), String::new()),
        None => (
            " or call it that much more often (cleanup.interval_ms)".to_string(),
            String::new(),
        ),
    };
    format!("{timeout}{interval}: {aim}{note}")
}

/// The late-window figures of a cleaning variant; `control_late_slope` is
/// control's mean late slope, the stale rate's second source. None when no
/// run has a late window.
pub fn measure(
    v: &VariantSummary,
    dir: &Path,
    control_late_slope: Option<f64>,
    s: &Settings,
) -> Option<Capacity> {
    let mut w = Window::default();
    let (mut exits, mut exits_dt) = (0.0, 0.0);
    for r in &v.runs {
        let Some(x) = late_window(r) else { continue };
        w.dt += x.dt;
        w.evictions += x.evictions;
        w.scans += x.scans;
        w.timeouts += x.timeouts;
        if let Some((e, dt)) = late_exits(&dir.join(format!("run{}.maps.csv", r.iteration))) {
            exits += e;
            exits_dt += dt;
        }
    }
    if w.dt <= 0.0 {
        return None;
    }
    let growth = mean(
        &v.runs
            .iter()
            .filter_map(|r| r.stats.late_slope_per_s)
            .collect::<Vec<_>>(),
    );
    let evictions_per_s = w.evictions / w.dt;
    let (stale_per_s, stale_from) = if exits_dt > 0.0 && exits > 0.0 {
        (Some(exits / exits_dt), Some("task exits"))
    } else if let Some(k) = control_late_slope.filter(|k| *k > 0.0) {
        (Some(k), Some("control's late growth"))
    } else if let Some(g) = growth.filter(|g| *g > 0.0) {
        (Some(evictions_per_s + g), Some("evictions + growth"))
    } else {
        (None, None)
    };
    let timed_out_share = (w.scans > 0.0).then(|| w.timeouts / w.scans);
    let evictions_per_scan = (w.scans > 0.0).then(|| w.evictions / w.scans);
    let most = timed_out_share.is_some_and(|t| t >= MOST_TIMED_OUT);
    let mut cap = Capacity {
        window_s: w.dt,
        evictions_per_s,
        scans_per_s: w.scans / w.dt,
        evictions_per_scan,
        timed_out_share,
        evictions_per_budget_ms: None,
        stale_per_s,
        stale_from: stale_from.map(str::to_string),
        growth_per_s: growth,
        capacity_bound: most && stale_per_s.is_some_and(|k| evictions_per_s < SHORT_OF * k),
        other_cause: None,
        advice: None,
    };
    if cap.capacity_bound {
        // Only a budget that ran out with stale entries left measures speed.
        cap.evictions_per_budget_ms = match (evictions_per_scan, s.timeout_us) {
            (Some(e), Some(t)) if t > 0.0 => Some(e / (t / 1e3)),
            _ => None,
        };
        cap.advice = Some(advice(&cap, s));
    } else {
        cap.other_cause = other_cause(v, s, &cap);
    }
    Some(cap)
}

/// "11 evictions/s (10.9 per scan, 1 scans/s, 98% of scans timed out, 109 per ms of budget)"
fn figures(c: &Capacity) -> String {
    let speed = c
        .evictions_per_budget_ms
        .map_or(String::new(), |e| format!(", {} per ms of budget", num(e)));
    format!(
        "{} evictions/s ({} per scan, {} scans/s, {} of scans timed out{speed})",
        num(c.evictions_per_s),
        c.evictions_per_scan.map_or("-".into(), num),
        num(c.scans_per_s),
        c.timed_out_share.map_or("-".into(), pct)
    )
}

fn stale(c: &Capacity) -> String {
    match (c.stale_per_s, &c.stale_from) {
        (Some(r), Some(f)) => format!("entries go stale at {}/s ({f})", num(r)),
        _ => "the stale rate is unknown (no exits counted, control did not grow)".into(),
    }
}

/// summary.txt's line for a variant: its figures against the stale rate.
pub fn line(c: &Capacity) -> String {
    format!("{}, {}", figures(c), stale(c))
}

const TCG_NOTE: &str = "under TCG the budget is guest time, which includes time its vCPU did not run, so a call evicts far fewer entries than under KVM";

/// The sentence test_plateaus adds for a variant: the diagnosis when it
/// failed, the figures (and a warning when near capacity) when it passed.
pub fn explain(c: &Capacity, status: Status, s: &Settings) -> String {
    let tcg = if s.tcg {
        format!("; {TCG_NOTE}")
    } else {
        String::new()
    };
    match status {
        Status::Fail if c.capacity_bound => format!(
            "capacity-bound: the cleanup achieved {} while {}; {}{tcg}",
            figures(c),
            stale(c),
            c.advice.as_deref().unwrap_or("")
        ),
        Status::Fail => format!(
            "{}; cleanup: {}, {}",
            c.other_cause.as_deref().unwrap_or("cause not found"),
            figures(c),
            stale(c)
        ),
        _ => {
            let near = if c.timed_out_share.is_some_and(|t| t >= MOST_TIMED_OUT) {
                format!("; near capacity: most scans used their whole budget{tcg}")
            } else {
                String::new()
            };
            format!("cleanup: {}, {}{near}", figures(c), stale(c))
        }
    }
}

/// Appends the diagnosis to every `<variant>_plateaus` row whose variant
/// has late-window figures.
pub fn annotate(criteria: &mut [Criterion], variants: &[VariantSummary], s: &Settings) {
    for k in criteria
        .iter_mut()
        .filter(|k| k.name.ends_with("_plateaus") && k.status != Status::Skip)
    {
        let Some(c) = k
            .variant
            .as_deref()
            .and_then(|n| variants.iter().find(|v| v.name == n))
            .and_then(|v| v.cleanup.as_ref())
        else {
            continue;
        };
        k.reason = format!("{}; {}", k.reason, explain(c, k.status, s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::collect::aggregate;
    use scx_contract::sample::{Sample, HEADER};
    use crate::report::runstats::{tests::sample, SeriesStats};

    /// (elapsed_s, map_entries, evictions, scans, scan_timeouts, nr_tasks)
    type Row = (f64, u64, u64, u64, u64, u64);

    fn run(iteration: u32, rows: &[Row]) -> RunSummary {
        let series: Vec<Sample> = rows
            .iter()
            .map(|&(t, e, ev, sc, to, tasks)| {
                let mut x = sample(t, e, ev);
                (x.scans, x.scan_timeouts, x.nr_tasks) = (sc, to, tasks);
                x
            })
            .collect();
        RunSummary {
            iteration,
            status: "ok".into(),
            failure: None,
            exit_kind: None,
            exit_reason: None,
            csv_truncated_line: None,
            stats: SeriesStats::of(&series),
            workload_metric: None,
            splats: 0,
            series,
        }
    }

    /// The seed's defaults under TCG as a new user met them: 100 us once a
    /// second, ~11 evictions per call, nearly every call out of budget,
    /// tasks exiting at 85/s, the map rising ~74/s. 0..60 s every 4 s.
    fn starved() -> RunSummary {
        let rows: Vec<Row> = (0..=15)
            .map(|i| {
                let t = 4.0 * i as f64;
                let scans = 4 * i as u64;
                let ev = if t > 5.0 { 44 * (i as u64 - 1) } else { 0 };
                (
                    t,
                    60 + 85 * 4 * i as u64 - ev,
                    ev,
                    scans,
                    scans.saturating_sub(1) * 49 / 50,
                    90,
                )
            })
            .collect();
        run(1, &rows)
    }

    fn maps_csv(dir: &Path, n: u32, exits_per_s: f64, secs: u32) {
        let mut s = "elapsed_s,tasks_exited,cgroups_destroyed,maps_bytes,churning,tracked_tasks,tracked_tasks.bytes\n".to_string();
        for t in (0..=secs).step_by(4) {
            s.push_str(&format!(
                "{t}.000,{},0,1048576,1,0,1048576\n",
                (exits_per_s * t as f64) as u64
            ));
        }
        std::fs::write(dir.join(format!("run{n}.maps.csv")), s).unwrap();
    }

    fn defaults_tcg() -> Settings {
        Settings {
            interval_ms: Some(1000.0),
            timeout_us: Some(100.0),
            max_age_ms: Some(5000.0),
            tcg: true,
            own_binaries: false,
        }
    }

    #[test]
    fn nice_numbers() {
        assert_eq!(
            [nice_up(1560.0), nice_up(2000.0), nice_up(3.1), nice_up(0.7)],
            [2000.0, 2000.0, 5.0, 1.0]
        );
        assert_eq!(
            [
                nice_down(64.0),
                nice_down(50.0),
                nice_down(190.0),
                nice_down(0.3)
            ],
            [50.0, 50.0, 100.0, 0.2]
        );
    }

    #[test]
    fn the_seeds_defaults_under_tcg_are_capacity_bound() {
        let d = tempfile::tempdir().unwrap();
        maps_csv(d.path(), 1, 85.0, 60);
        let v = aggregate("test", 1, vec![starved()]);
        let s = defaults_tcg();
        let c = measure(&v, d.path(), Some(80.0), &s).unwrap();
        // Late window 32..60 s (7 intervals of 4 s): 7 x 44 evictions, 28 scans, 27 timed out.
        assert_eq!(c.window_s, 28.0);
        assert!((c.evictions_per_s - 11.0).abs() < 1e-9, "{c:?}");
        assert_eq!(c.evictions_per_scan, Some(11.0));
        assert_eq!(c.scans_per_s, 1.0);
        assert!(c.timed_out_share.unwrap() > 0.95);
        assert_eq!(c.evictions_per_budget_ms, Some(110.0));
        assert_eq!(
            (c.stale_per_s, c.stale_from.as_deref()),
            (Some(85.0), Some("task exits"))
        );
        assert!(c.capacity_bound);
        // 85 / 11 = 7.7x short; aiming at 2x: 15.5x -> 100 us x 15.5 = 1545 -> 2000 us, 1000 ms / 15.5 = 65 -> 50 ms.
        assert_eq!(
            c.advice.as_deref(),
            Some("raise cleanup.timeout_us from 100 to 2000 or lower cleanup.interval_ms from 1000 to 50: 20x the capacity, to evict 2x the stale rate")
        );
        let text = explain(&c, Status::Fail, &s);
        assert!(
            text.starts_with("capacity-bound: the cleanup achieved 11 evictions/s (11 per scan, 1 scans/s, 96.4% of scans timed out, 110 per ms of budget) while entries go stale at 85/s (task exits); raise cleanup.timeout_us from 100 to 2000"),
            "{text}"
        );
        assert!(text.ends_with("; under TCG the budget is guest time, which includes time its vCPU did not run, so a call evicts far fewer entries than under KVM"), "{text}");
        // Without the TCG note under KVM; without maps.csv, control's growth is the stale rate.
        let kvm = Settings {
            tcg: false,
            ..defaults_tcg()
        };
        let e = tempfile::tempdir().unwrap();
        let c = measure(&v, e.path(), Some(80.0), &kvm).unwrap();
        assert_eq!(
            (c.stale_per_s, c.stale_from.as_deref()),
            (Some(80.0), Some("control's late growth"))
        );
        assert!(!explain(&c, Status::Fail, &kvm).contains("TCG"));
        // Neither: this variant's evictions plus its growth.
        let c = measure(&v, e.path(), None, &kvm).unwrap();
        assert_eq!(c.stale_from.as_deref(), Some("evictions + growth"));
        assert!((c.stale_per_s.unwrap() - 11.0 - c.growth_per_s.unwrap()).abs() < 1e-9);
    }

    #[test]
    fn end_to_end_through_the_report() {
        // The same data as files: the test_plateaus row of summary.json says it.
        let root = tempfile::tempdir().unwrap();
        let g = root.path().join("scx_simple/stress-ng");
        // run<N>.csv by column name, so columns added later read as 0
        let csv = |r: &RunSummary| {
            let mut s = format!("{HEADER}\n");
            for x in &r.series {
                let cells: Vec<String> = HEADER
                    .split(',')
                    .map(|c| match c {
                        "elapsed_s" => format!("{:.3}", x.elapsed_s),
                        "map_entries" => x.map_entries.to_string(),
                        "evictions" => x.evictions.to_string(),
                        "scans" => x.scans.to_string(),
                        "scan_timeouts" => x.scan_timeouts.to_string(),
                        "nr_tasks" => x.nr_tasks.to_string(),
                        "sched_state" => "enabled".into(),
                        _ => "0".into(),
                    })
                    .collect();
                s.push_str(&cells.join(","));
                s.push('\n');
            }
            s
        };
        let control: Vec<Row> = (0..=15)
            .map(|i| (4.0 * i as f64, 60 + 340 * i as u64, 0, 0, 0, 90))
            .collect();
        for (variant, r) in [("control", run(1, &control)), ("test", starved())] {
            std::fs::create_dir_all(g.join(variant)).unwrap();
            std::fs::write(g.join(variant).join("run1.csv"), csv(&r)).unwrap();
            maps_csv(&g.join(variant), 1, 85.0, 60);
        }
        std::fs::write(
            g.join("manifest.json"),
            r#"{"accel": "tcg,thread=single", "custom_binaries": [], "config": {"cleanup": {"interval_ms": 1000, "timeout_us": 100, "max_age_ms": 5000}}}"#,
        )
        .unwrap();
        let s = crate::report::summarize(root.path()).unwrap();
        let k = s.groups[0].criterion("test_plateaus").unwrap();
        assert_eq!(k.status, Status::Fail);
        assert!(
            k.reason
                .contains("; capacity-bound: the cleanup achieved 11 evictions/s"),
            "{}",
            k.reason
        );
        assert!(
            k.reason
                .contains("raise cleanup.timeout_us from 100 to 2000"),
            "{}",
            k.reason
        );
        assert!(k.reason.contains("under TCG"), "{}", k.reason);
        let c = s.groups[0]
            .variant("test")
            .unwrap()
            .cleanup
            .as_ref()
            .unwrap();
        assert_eq!(c.stale_from.as_deref(), Some("task exits"));
        assert!(s.groups[0].variant("control").unwrap().cleanup.is_none());
        assert!(s.to_json().contains("\"evictions_per_budget_ms\": 110.0"));
    }

    #[test]
    fn other_causes_are_named() {
        let d = tempfile::tempdir().unwrap();
        let s = Settings {
            tcg: false,
            ..defaults_tcg()
        };
        // max age 5 s in a 8 s run: the late window (>= 4 s) is still the ramp.
        let short: Vec<Row> = (0..=4)
            .map(|i| (2.0 * i as f64, 100 + 150 * i as u64, 0, 2 * i as u64, 0, 90))
            .collect();
        let v = aggregate("test", 1, vec![run(1, &short)]);
        let c = measure(&v, d.path(), Some(75.0), &s).unwrap();
        assert!(!c.capacity_bound);
        let why = c.other_cause.as_deref().unwrap();
        assert!(why.starts_with("max age longer than the run allows: entries become evictable only after cleanup.max_age_ms (5 s)"), "{why}");
        assert!(
            why.ends_with("run longer than 12 s or lower cleanup.max_age_ms"),
            "{why}"
        );

        // Passes finish, the level saws between 300 and 700 and the late window ends on a rising edge.
        let saw = [300, 500, 700, 300, 500, 700, 300, 400, 500, 600, 650];
        let rows: Vec<Row> = saw
            .iter()
            .enumerate()
            .map(|(i, &e)| (6.0 * i as f64, e, 100 * i as u64, 6 * i as u64, 0, 90))
            .collect();
        let v = aggregate("test", 1, vec![run(1, &rows)]);
        let c = measure(&v, d.path(), Some(50.0), &s).unwrap();
        let why = c.other_cause.as_deref().unwrap();
        assert!(why.starts_with("a sawtooth, not growth: run1's late window never rose above 700 entries, no higher than the 700"), "{why}");
        let text = explain(&c, Status::Fail, &s);
        assert!(text.contains("; cleanup: 16.7 evictions/s (16.7 per scan, 1 scans/s, 0% of scans timed out), entries go stale at 50/s (control's late growth)"), "{text}");

        // Live tasks: the guest's task count rises with the map.
        let rows: Vec<Row> = (0..=10)
            .map(|i| {
                (
                    6.0 * i as f64,
                    100 + 30 * i as u64,
                    10 * i as u64,
                    6 * i as u64,
                    0,
                    90 + 30 * i as u64,
                )
            })
            .collect();
        let v = aggregate("test", 1, vec![run(1, &rows)]);
        let why = measure(&v, d.path(), None, &s)
            .unwrap()
            .other_cause
            .unwrap();
        assert!(
            why.starts_with("live tasks rose: run1's guest gained 5 tasks/s"),
            "{why}"
        );

        // Most scans out of budget but the evictions match the stale rate: at capacity, not short of it.
        let rows: Vec<Row> = (0..=10)
            .map(|i| {
                (
                    6.0 * i as f64,
                    100 + 30 * i as u64,
                    300 * i as u64,
                    6 * i as u64,
                    6 * i as u64,
                    90,
                )
            })
            .collect();
        let v = aggregate("test", 1, vec![run(1, &rows)]);
        let c = measure(&v, d.path(), Some(50.0), &s).unwrap();
        assert!(!c.capacity_bound, "50/s evicted, 50/s stale");
        assert!(
            c.other_cause
                .as_deref()
                .unwrap()
                .starts_with("at capacity but not short of the stale rate: 100% of scans"),
            "{c:?}"
        );

        // No scans at all in the late window.
        let rows: Vec<Row> = (0..=10)
            .map(|i| (6.0 * i as f64, 100 + 30 * i as u64, 0, 0, 0, 90))
            .collect();
        let v = aggregate("test", 1, vec![run(1, &rows)]);
        let why = measure(&v, d.path(), Some(50.0), &s)
            .unwrap()
            .other_cause
            .unwrap();
        assert!(
            why.starts_with("the cleanup never ran in the late window"),
            "{why}"
        );
    }

    #[test]
    fn pass_shows_the_figures_and_warns_near_capacity() {
        let d = tempfile::tempdir().unwrap();
        let s = defaults_tcg();
        // Plateau at ~400, 80 evictions a scan, a third of scans cut short.
        let rows: Vec<Row> = (0..=15)
            .map(|i| {
                (
                    4.0 * i as f64,
                    400 + (i % 2) as u64 * 5,
                    320 * i as u64,
                    4 * i as u64,
                    4 * i as u64 / 3,
                    90,
                )
            })
            .collect();
        let v = aggregate("test", 1, vec![run(1, &rows)]);
        let c = measure(&v, d.path(), Some(80.0), &s).unwrap();
        let text = explain(&c, Status::Pass, &s);
        assert!(text.starts_with("cleanup: 80 evictions/s (80 per scan, 1 scans/s, 35.7% of scans timed out), entries go stale at 80/s"), "{text}");
        assert!(!text.contains("near capacity"), "{text}");
        // The same with every scan cut short: it passes, narrowly.
        let rows: Vec<Row> = (0..=15)
            .map(|i| {
                (
                    4.0 * i as f64,
                    400 + (i % 2) as u64 * 5,
                    320 * i as u64,
                    4 * i as u64,
                    4 * i as u64,
                    90,
                )
            })
            .collect();
        let v = aggregate("test", 1, vec![run(1, &rows)]);
        let c = measure(&v, d.path(), Some(80.0), &s).unwrap();
        let text = explain(&c, Status::Pass, &s);
        assert!(text.contains("(80 per scan, 1 scans/s, 100% of scans timed out), entries go stale at 80/s (control's late growth); near capacity: most scans used their whole budget; under TCG"), "{text}");
    }

    #[test]
    fn advice_without_settings_or_evictions() {
        let c = Capacity {
            evictions_per_s: 10.0,
            scans_per_s: 1.0,
            stale_per_s: Some(50.0),
            ..Default::default()
        };
        assert_eq!(advice(&c, &Settings::default()), "raise cleanup.timeout_us 10x or call it that much more often (cleanup.interval_ms): 10x the capacity, to evict 2x the stale rate");
        let own = Settings {
            own_binaries: true,
            ..Settings::default()
        };
        assert!(advice(&c, &own).starts_with("give the scheduler's cleanup about 10x"));
        let none = Capacity {
            evictions_per_s: 0.0,
            ..c.clone()
        };
        let tiny = Settings {
            timeout_us: Some(1.0),
            ..defaults_tcg()
        };
        assert_eq!(
            advice(&none, &tiny),
            "no scan evicted anything in its 1 us: raise cleanup.timeout_us (by well over 20x)"
        );
        // An interval that would drop below 10 ms is not advised; dispatch running it less often than allowed is said.
        let slow = Capacity {
            evictions_per_s: 1.0,
            stale_per_s: Some(100.0),
            scans_per_s: 0.5,
            ..Default::default()
        };
        assert_eq!(advice(&slow, &defaults_tcg()), "raise cleanup.timeout_us from 100 to 20000: 200x the capacity, to evict 2x the stale rate");
        let c = Capacity {
            evictions_per_s: 10.0,
            stale_per_s: Some(20.0),
            scans_per_s: 0.5,
            ..Default::default()
        };
        let a = advice(&c, &defaults_tcg());
        assert!(a.ends_with("lower cleanup.interval_ms from 1000 to 200: 5x the capacity, to evict 2x the stale rate; dispatch ran the cleanup only 0.500/s of the 1/s its interval allows"), "{a}");
    }

    #[test]
    fn settings_from_the_manifest() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            Settings::read(d.path(), &["kvm".into()]),
            Settings::default()
        );
        assert!(Settings::read(d.path(), &["tcg,thread=single".into()]).tcg);
        std::fs::write(
            d.path().join("manifest.json"),
            r#"{"accel": "kvm", "custom_binaries": ["/x"], "config": {"cleanup": {"interval_ms": 250, "timeout_us": 2000, "max_age_ms": 2000}}}"#,
        )
        .unwrap();
        let s = Settings::read(d.path(), &[]);
        assert_eq!(
            (
                s.interval_ms,
                s.timeout_us,
                s.max_age_ms,
                s.tcg,
                s.own_binaries
            ),
            (Some(250.0), Some(2000.0), Some(2000.0), false, true)
        );
    }
}
