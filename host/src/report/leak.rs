//! Growth of every map of the scheduler against exits (run<N>.maps.csv and
//! maps.json, written by the agent): entries regressed on tasks exited and
//! on cgroups destroyed, whichever explains more (R²), with a 95% interval
//! on the slope. A map whose slope is clearly above zero and which has not
//! levelled off by the second half of the run is `LEAK`; others are `OK`.
//! It names the map, its key and value types, the entries it gains per
//! 1,000 exits and when it would reach max_entries at the run's churn rate.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::stats::t975;

/// Slopes below this many entries per 1,000 exits are not a leak worth naming.
pub const MIN_PER_1000: f64 = 10.0;
/// A late-half slope below this share of the whole run's is a plateau.
pub const PLATEAU_SHARE: f64 = 0.25;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapGrowth {
    pub variant: String,
    pub iteration: u32,
    pub map: String,
    #[serde(rename = "type")]
    pub map_type: String,
    pub key_type: String,
    pub value_type: String,
    pub max_entries: u64,
    /// tasks_exited or cgroups_destroyed
    pub against: String,
    pub exits: u64,
    pub entries_last: u64,
    pub per_1000_exits: f64,
    pub ci95_low: Option<f64>,
    pub ci95_high: Option<f64>,
    pub r2: f64,
    /// slope over the second half of the samples, per 1,000 exits
    pub late_per_1000_exits: Option<f64>,
    pub exits_per_s: f64,
    /// seconds until max_entries at this churn rate (LEAK only)
    pub time_to_full_s: Option<f64>,
    /// growth in leakcheck's no-churn baseline phase, entries/s
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_per_s: Option<f64>,
    /// LEAK or OK
    pub verdict: String,
    pub reason: String,
    /// (exits, entries) of the churn phase, for report.html's plot (LEAK only)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<(f64, f64)>,
}

/// (slope, its standard error when n > 2, R²)
pub type Fit = (f64, Option<f64>, f64);

/// Least squares fit of y on x.
pub fn fit(pts: &[(f64, f64)]) -> Option<Fit> {
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return None;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let b = sxy / sxx;
    let sse = (syy - b * sxy).max(0.0);
    let r2 = if syy > 0.0 { (1.0 - sse / syy).clamp(0.0, 1.0) } else { 0.0 };
    let se = (pts.len() > 2).then(|| (sse / (n - 2.0) / sxx).sqrt());
    Some((b, se, r2))
}

struct Table {
    header: Vec<String>,
    rows: Vec<Vec<f64>>,
}

fn read_csv(p: &Path) -> Option<Table> {
    let text = std::fs::read_to_string(p).ok()?;
    let mut lines = text.lines();
    let header: Vec<String> = lines.next()?.split(',').map(str::to_string).collect();
    let rows = lines
        .filter_map(|l| {
            let r: Vec<f64> = l.split(',').map(|f| f.parse::<f64>()).collect::<Result<_, _>>().ok()?;
            (r.len() == header.len()).then_some(r)
        })
        .collect();
    Some(Table { header, rows })
}

#[derive(Deserialize)]
struct MapMeta {
    column: String,
    name: String,
    #[serde(rename = "type")]
    map_type: String,
    #[serde(default)]
    key_type: String,
    #[serde(default)]
    value_type: String,
    #[serde(default)]
    max_entries: u64,
    sampled: bool,
}

/// Judge every sampled map of one run.
pub fn analyze_run(variant: &str, iteration: u32, csv: &Path, json: &Path) -> Vec<MapGrowth> {
    let (Some(t), Ok(meta)) = (read_csv(csv), std::fs::read(json)) else { return Vec::new() };
    let Ok(meta) = serde_json::from_slice::<Vec<MapMeta>>(&meta) else { return Vec::new() };
    let col = |name: &str| t.header.iter().position(|h| h == name);
    let (Some(ti), Some(ei), Some(ci)) = (col("elapsed_s"), col("tasks_exited"), col("cgroups_destroyed")) else {
        return Vec::new();
    };
    // leakcheck's no-churn phase (churning 0) apart from the churn
    let (baseline, churn): (Vec<Vec<f64>>, Vec<Vec<f64>>) = match col("churning") {
        Some(k) => t.rows.iter().cloned().partition(|r| r[k] == 0.0),
        None => (Vec::new(), t.rows.clone()),
    };
    let mut out = Vec::new();
    for m in meta.iter().filter(|m| m.sampled) {
        let Some(yi) = col(&m.column) else { continue };
        if let Some(mut g) = judge(variant, iteration, m, &churn, ti, [("tasks_exited", ei), ("cgroups_destroyed", ci)], yi) {
            grows_with_time(&mut g, &baseline, ti, yi);
            out.push(g);
        }
    }
    out
}

/// A map that grew as fast with no churn (the baseline phase) as under it
/// grows with time, not with exits (a statistics ring, a history): not a
/// leak of exits.
fn grows_with_time(g: &mut MapGrowth, baseline: &[Vec<f64>], ti: usize, yi: usize) {
    if baseline.len() < 3 {
        return;
    }
    let Some((per_s, _, _)) = fit(&baseline.iter().map(|r| (r[ti], r[yi])).collect::<Vec<_>>()) else { return };
    g.baseline_per_s = Some(per_s);
    let churn_per_s = g.per_1000_exits / 1e3 * g.exits_per_s;
    if g.verdict == "LEAK" && per_s > 0.5 * churn_per_s {
        g.verdict = "OK".into();
        g.time_to_full_s = None;
        g.points.clear();
        g.reason = format!("grows with time, not exits: {per_s:.1} entries/s with no churn vs {churn_per_s:.1}/s under it");
    }
}

fn judge(
    variant: &str,
    iteration: u32,
    m: &MapMeta,
    rows: &[Vec<f64>],
    ti: usize,
    xs: [(&str, usize); 2],
    yi: usize,
) -> Option<MapGrowth> {
    // The x that explains more of the map's entries. Under cgroup-churn a
    // cgroup's tasks exit before it is removed, so both move in step and
    // the data cannot tell them apart: say so (task churn can).
    let mut best: Option<(&str, usize, Fit)> = None;
    let mut r2s = Vec::new();
    for (name, xi) in xs {
        let pts: Vec<(f64, f64)> = rows.iter().map(|r| (r[xi], r[yi])).collect();
        if let Some(f) = fit(&pts) {
            r2s.push(f.2);
            if best.as_ref().is_none_or(|b| f.2 > b.2 .2) {
                best = Some((name, xi, f));
            }
        }
    }
    let in_step = r2s.len() == 2 && (r2s[0] - r2s[1]).abs() < 0.01;
    let last = rows.last()?;
    let first = rows.first()?;
    let entries_last = last[yi] as u64;
    let base = MapGrowth {
        variant: variant.into(),
        iteration,
        map: m.name.clone(),
        map_type: m.map_type.clone(),
        key_type: m.key_type.clone(),
        value_type: m.value_type.clone(),
        max_entries: m.max_entries,
        against: String::new(),
        exits: 0,
        entries_last,
        per_1000_exits: 0.0,
        ci95_low: None,
        ci95_high: None,
        r2: 0.0,
        late_per_1000_exits: None,
        exits_per_s: 0.0,
        time_to_full_s: None,
        baseline_per_s: None,
        verdict: "OK".into(),
        reason: String::new(),
        points: Vec::new(),
    };
    let Some((against, xi, (b, se, r2))) = best else {
        return Some(MapGrowth { reason: "no exits during the run: nothing to regress on".into(), ..base });
    };
    let dt = last[ti] - first[ti];
    let dx = last[xi] - first[xi];
    let (lo, hi) = match (se, t975(rows.len() as f64 - 2.0)) {
        (Some(se), Some(t)) => (Some((b - t * se) * 1e3), Some((b + t * se) * 1e3)),
        _ => (None, None),
    };
    let half = &rows[rows.len() / 2..];
    let late_fit = fit(&half.iter().map(|r| (r[xi], r[yi])).collect::<Vec<_>>());
    let late = late_fit.map(|f| f.0 * 1e3);
    // the second half's own interval: a level that only wobbles reaches 0
    let late_lo = match (late_fit, t975(half.len() as f64 - 2.0)) {
        (Some((b, Some(se), _)), Some(t)) => Some((b - t * se) * 1e3),
        _ => None,
    };
    let per_1000 = b * 1e3;
    let exits_per_s = if dt > 0.0 { dx / dt } else { 0.0 };
    let mut g = MapGrowth {
        against: against.into(),
        exits: last[xi] as u64,
        per_1000_exits: per_1000,
        ci95_low: lo,
        ci95_high: hi,
        r2,
        late_per_1000_exits: late,
        exits_per_s,
        ..base
    };
    let clearly_up = lo.is_some_and(|l| l > 0.0) && per_1000 >= MIN_PER_1000;
    let levelled = late.is_some_and(|l| l < PLATEAU_SHARE * per_1000 || l < MIN_PER_1000) || late_lo.is_some_and(|l| l <= 0.0);
    if per_1000 >= MIN_PER_1000 && levelled {
        let ci = late_lo.map(|l| format!(" (95% CI from {l:.1})")).unwrap_or_default();
        g.reason = format!("plateaus: {:.1} per 1,000 exits in the second half{ci}", late.unwrap_or(0.0));
    } else if !clearly_up {
        g.reason = match lo {
            None => "too few samples for an interval".into(),
            Some(_) if per_1000 < MIN_PER_1000 => format!("bounded: {per_1000:.1} per 1,000 exits"),
            Some(l) => format!("bounded: the slope's interval reaches {l:.1} per 1,000 exits"),
        };
    } else {
        g.verdict = "LEAK".into();
        let rate = b * exits_per_s; // entries per second
        if m.max_entries > entries_last && rate > 0.0 {
            g.time_to_full_s = Some((m.max_entries - entries_last) as f64 / rate);
        }
        g.reason = format!("grows {per_1000:.0} per 1,000 {}", against.replace('_', " "));
        if in_step {
            g.reason.push_str(" (tasks exited and cgroups destroyed moved in step: run task churn to tell them apart)");
        }
        g.points = rows.iter().map(|r| (r[xi], r[yi])).collect();
    }
    Some(g)
}

/// A leakcheck's criterion for one map of one run: `map_bounded:<map>`.
pub fn criterion(g: &MapGrowth) -> super::summary::Criterion {
    super::summary::Criterion {
        name: format!("map_bounded:{}", g.map),
        variant: Some(g.variant.clone()),
        status: if g.verdict == "LEAK" { super::summary::Status::Fail } else { super::summary::Status::Pass },
        reason: line(g),
    }
}

/// One line for summary.txt.
pub fn line(g: &MapGrowth) -> String {
    let ci = match (g.ci95_low, g.ci95_high) {
        (Some(l), Some(h)) => format!(" (95% CI {l:.0} .. {h:.0})"),
        _ => String::new(),
    };
    let types = match (g.key_type.as_str(), g.value_type.as_str()) {
        ("", "") => g.map_type.clone(),
        (k, v) => format!("{} {} -> {}", g.map_type, if k.is_empty() { "?" } else { k }, if v.is_empty() { "?" } else { v }),
    };
    let full = g
        .time_to_full_s
        .map(|s| format!("; max_entries {} reached in {:.0} s at {:.0} exits/s", g.max_entries, s, g.exits_per_s))
        .unwrap_or_default();
    format!(
        "{} {}/run{} {} ({types}): {:+.0} entries per 1,000 {}{ci}, {} entries after {} exits: {}{full}",
        g.verdict,
        g.variant,
        g.iteration,
        g.map,
        g.per_1000_exits,
        g.against.replace('_', " "),
        g.entries_last,
        g.exits,
        g.reason
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(col: &str, max: u64) -> MapMeta {
        MapMeta {
            column: col.into(),
            name: col.into(),
            map_type: "hash".into(),
            key_type: "u32".into(),
            value_type: "struct v".into(),
            max_entries: max,
            sampled: true,
        }
    }

    #[test]
    fn fit_by_hand() {
        // y = 2x + 1 exactly
        let (b, se, r2) = fit(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0), (3.0, 7.0)]).unwrap();
        assert!((b - 2.0).abs() < 1e-12 && se.unwrap() < 1e-9 && (r2 - 1.0).abs() < 1e-12);
        // x = 0,1,2,3; y = 0,2,1,3: b = 0.8, SSE = 1.8, se = sqrt(1.8/2/5) = 0.424
        let (b, se, r2) = fit(&[(0.0, 0.0), (1.0, 2.0), (2.0, 1.0), (3.0, 3.0)]).unwrap();
        assert!((b - 0.8).abs() < 1e-12, "{b}");
        assert!((se.unwrap() - (0.18f64).sqrt()).abs() < 1e-12);
        assert!((r2 - 0.64).abs() < 1e-12, "{r2}");
        assert!(fit(&[(1.0, 1.0), (1.0, 2.0)]).is_none(), "no spread in x");
    }

    /// rows: elapsed, tasks_exited, cgroups_destroyed, entries
    fn rows(f: impl Fn(f64) -> (f64, f64, f64)) -> Vec<Vec<f64>> {
        (0..10).map(|i| {
            let t = i as f64 * 2.0;
            let (e, c, y) = f(t);
            vec![t, e, c, y]
        })
        .collect()
    }

    #[test]
    fn a_map_that_keeps_an_entry_per_exit_leaks() {
        // 300 exits/s, one entry kept per exit, 1,000 live at the start
        let r = rows(|t| (300.0 * t, 0.0, 1000.0 + 300.0 * t + if (t as i64) % 4 == 0 { 3.0 } else { -3.0 }));
        let g = judge("control", 1, &meta("tracked_tasks", 65536), &r, 0, [("tasks_exited", 1), ("cgroups_destroyed", 2)], 3).unwrap();
        assert_eq!(g.verdict, "LEAK", "{g:?}");
        assert_eq!(g.against, "tasks_exited");
        assert!((g.per_1000_exits - 1000.0).abs() < 5.0, "{g:?}");
        let ttf = g.time_to_full_s.unwrap();
        // (65536 - 6400) / 300 per s
        assert!((ttf - (65536.0 - g.entries_last as f64) / 300.0).abs() < 2.0, "{ttf}");
        assert!(line(&g).starts_with("LEAK control/run1 tracked_tasks (hash u32 -> struct v): +1000 entries per 1,000 tasks exited"), "{}", line(&g));
    }

    #[test]
    fn plateau_bounded_and_cgroup_leaks_are_told_apart() {
        // grows then levels off at 700: test variant
        let r = rows(|t| (300.0 * t, 0.0, (300.0 * t).min(700.0)));
        let g = judge("test", 1, &meta("tracked_tasks", 65536), &r, 0, [("tasks_exited", 1), ("cgroups_destroyed", 2)], 3).unwrap();
        assert_eq!(g.verdict, "OK", "{g:?}");
        assert!(g.reason.starts_with("plateaus"), "{g:?}");
        // flat: task storage freed with its tasks
        let r = rows(|t| (300.0 * t, 0.0, 60.0 + if (t as i64) % 4 == 0 { 2.0 } else { 0.0 }));
        let g = judge("custom", 1, &meta("task_ctx_stor", 0), &r, 0, [("tasks_exited", 1), ("cgroups_destroyed", 2)], 3).unwrap();
        assert_eq!(g.verdict, "OK", "{g:?}");
        assert!(g.reason.starts_with("bounded"), "{g:?}");
        // one entry per removed cgroup, task exits at a different, wobbling pace
        let r = rows(|t| (250.0 * t + if (t as i64) % 4 == 0 { 400.0 } else { 0.0 }, 10.0 * t, 5.0 + 10.0 * t));
        let g = judge("custom", 1, &meta("cgrp_map", 1024), &r, 0, [("tasks_exited", 1), ("cgroups_destroyed", 2)], 3).unwrap();
        assert_eq!((g.verdict.as_str(), g.against.as_str()), ("LEAK", "cgroups_destroyed"), "{g:?}");
        assert!((g.per_1000_exits - 1000.0).abs() < 1.0);
        // a ramp to an eviction equilibrium, then a wobbling level (flatcg bpfscan, seen for real)
        let levels = [60.0, 640.0, 700.0, 760.0, 690.0, 745.0, 700.0, 760.0, 705.0, 746.0];
        let r: Vec<Vec<f64>> = levels.iter().enumerate().map(|(i, y)| vec![i as f64 * 2.0, 650.0 * i as f64, 0.0, *y]).collect();
        let g = judge("bpfscan", 1, &meta("tracked_tasks", 65536), &r, 0, [("tasks_exited", 1), ("cgroups_destroyed", 2)], 3).unwrap();
        assert_eq!(g.verdict, "OK", "{g:?}");
        assert!(g.reason.starts_with("plateaus"), "{g:?}");
        // per-cgroup growth with task exits in lockstep (2 per cgroup): flagged, and said to be ambiguous
        let r = rows(|t| (20.0 * t, 10.0 * t, 5.0 + 10.0 * t));
        let g = judge("custom", 1, &meta("cg_state", 16384), &r, 0, [("tasks_exited", 1), ("cgroups_destroyed", 2)], 3).unwrap();
        assert_eq!(g.verdict, "LEAK", "{g:?}");
        assert!(g.reason.contains("moved in step"), "{g:?}");
        // a ring that grows with time, churn or not: OK once the baseline shows it
        let ring = rows(|t| (300.0 * t, 0.0, 50.0 * t + if (t as i64) % 4 == 0 { 5.0 } else { 0.0 }));
        let mut g = judge("custom", 1, &meta("history", 4096), &ring, 0, [("tasks_exited", 1), ("cgroups_destroyed", 2)], 3).unwrap();
        assert_eq!(g.verdict, "LEAK", "without a baseline it looks like one: {g:?}");
        let quiet = rows(|t| (2.0 * t, 0.0, 50.0 * t));
        grows_with_time(&mut g, &quiet, 0, 3);
        assert_eq!(g.verdict, "OK", "{g:?}");
        assert!(g.reason.starts_with("grows with time, not exits: 50.0 entries/s with no churn"), "{g:?}");
        let mut leak = judge("control", 1, &meta("tracked_tasks", 65536), &rows(|t| (300.0 * t, 0.0, 300.0 * t + (t as i64 % 3) as f64)), 0, [("tasks_exited", 1), ("cgroups_destroyed", 2)], 3).unwrap();
        grows_with_time(&mut leak, &rows(|t| (2.0 * t, 0.0, 60.0 + (t as i64 % 2) as f64)), 0, 3);
        assert_eq!(leak.verdict, "LEAK", "flat with no churn, steep under it: {leak:?}");
        // no exits at all
        let r = rows(|_| (0.0, 0.0, 10.0));
        let g = judge("custom", 1, &meta("m", 8), &r, 0, [("tasks_exited", 1), ("cgroups_destroyed", 2)], 3).unwrap();
        assert_eq!(g.verdict, "OK");
        assert!(g.reason.contains("no exits"), "{g:?}");
    }
}
