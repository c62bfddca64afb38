//! The success criteria and their thresholds (docs/report.md explains why
//! these numbers). Each criterion yields PASS, FAIL or SKIP with one line of
//! reason.

use super::fmt::{num, one_line, pct};
use scx_contract::run::exit_kind_is_error;
use super::runstats::{LATE_FRACTION, MIN_LATE_SAMPLES};
use super::splat::{message_of, Splat};
use super::summary::{Criterion, RunSummary, Status, VariantSummary};

/// control grows: the fitted rise over the late window must exceed this share
/// of the window's mean level (and both slopes must be positive).
pub const GROWTH_MIN_LATE_RISE: f64 = 0.10;
/// test plateaus (level rule): fitted late rise at most this share of the
/// late window's mean level.
pub const PLATEAU_MAX_LATE_RISE: f64 = 0.10;
/// test plateaus (control rule): late slope at most this share of control's
/// mean late slope.
pub const PLATEAU_MAX_SLOPE_VS_CONTROL: f64 = 0.10;

/// Variants judged like `test` (each gets its own rows).
pub const CLEANING_VARIANTS: [&str; 2] = ["test", "bpfscan"];
/// Variants that free entries with their task instead of scanning (exitdel,
/// taskstor): bounded like test, below control, and no false evictions.
pub const EXIT_VARIANTS: [&str; 2] = ["exitdel", "taskstor"];

fn crit(name: impl Into<String>, variant: Option<&str>, status: Status, reason: impl Into<String>) -> Criterion {
    Criterion { name: name.into(), variant: variant.map(str::to_string), status, reason: one_line(&reason.into()) }
}

/// Runs whose late window could be judged, with their figures.
fn late_runs(v: &VariantSummary) -> Vec<(&RunSummary, f64, f64, f64)> {
    v.runs
        .iter()
        .filter_map(|r| Some((r, r.stats.late_slope_per_s?, r.stats.late_rise?, r.stats.late_mean?)))
        .collect()
}

fn too_short(variant: &str) -> String {
    format!(
        "no {variant} run has {MIN_LATE_SAMPLES} samples in its late window (elapsed >= {}% of the run)",
        (LATE_FRACTION * 100.0) as u32
    )
}

pub fn control_grows(control: Option<&VariantSummary>) -> Criterion {
    let name = "control_grows";
    let Some(c) = control else {
        return crit(name, Some("control"), Status::Skip, "no control runs");
    };
    let runs = late_runs(c);
    if runs.is_empty() {
        return crit(name, Some("control"), Status::Skip, too_short("control"));
    }
    let mut failures = Vec::new();
    for (r, late_slope, rise, level) in &runs {
        let slope = r.stats.slope_per_s.unwrap_or(0.0);
        if slope <= 0.0 || *late_slope <= 0.0 {
            failures.push(format!(
                "run{}: slope {} entries/s, late {} entries/s (both must be > 0)",
                r.iteration, num(slope), num(*late_slope)
            ));
        } else if *rise <= GROWTH_MIN_LATE_RISE * level {
            failures.push(format!(
                "run{}: late-window rise {} entries is {} of its mean level {} (needs > {})",
                r.iteration, num(*rise), pct(rise / level), num(*level), pct(GROWTH_MIN_LATE_RISE)
            ));
        }
    }
    let slope = c.slope_per_s.as_ref().map_or(0.0, |e| e.mean);
    if failures.is_empty() {
        crit(name, Some("control"), Status::Pass, format!(
            "{}/{} runs grow, mean slope {} entries/s, max {} entries",
            runs.len(), runs.len(), num(slope), c.map_entries_max.unwrap_or(0)
        ))
    } else {
        crit(name, Some("control"), Status::Fail, format!("{} of {} runs do not grow; {}", failures.len(), runs.len(), failures[0]))
    }
}

/// `<variant>_plateaus` for a cleaning variant.
pub fn plateaus(v: Option<&VariantSummary>, variant: &str, control: Option<&VariantSummary>) -> Criterion {
    let name = format!("{variant}_plateaus");
    let Some(v) = v else {
        return crit(name, Some(variant), Status::Skip, format!("no {variant} runs"));
    };
    let runs = late_runs(v);
    if runs.is_empty() {
        return crit(name, Some(variant), Status::Skip, too_short(variant));
    }
    // Control's late slope is the yardstick when control did grow.
    let reference = control
        .and_then(|c| c.late_slope_per_s.as_ref())
        .map(|e| e.mean)
        .filter(|m| *m > 0.0);
    let mut failures = Vec::new();
    let mut worst: Option<(f64, f64, f64)> = None;
    for (r, late_slope, rise, level) in &runs {
        let by_level = *rise <= PLATEAU_MAX_LATE_RISE * level;
        let by_control = reference.is_some_and(|k| *late_slope <= PLATEAU_MAX_SLOPE_VS_CONTROL * k);
        if worst.is_none_or(|(s, _, _)| *late_slope > s) {
            worst = Some((*late_slope, *rise, *level));
        }
        if !(by_level || by_control) {
            let vs = match reference {
                Some(k) => format!(
                    "late slope {} entries/s is {} of control's {} (limit {})",
                    num(*late_slope), pct(late_slope / k), num(k), pct(PLATEAU_MAX_SLOPE_VS_CONTROL)
                ),
                None => format!("late slope {} entries/s (control did not grow)", num(*late_slope)),
            };
            failures.push(format!(
                "run{}: {vs} and late-window rise {} is {} of its level {} (limit {})",
                r.iteration, num(*rise), pct(rise / level.max(1.0)), num(*level), pct(PLATEAU_MAX_LATE_RISE)
            ));
        }
    }
    if failures.is_empty() {
        let (s, rise, level) = worst.expect("runs is not empty");
        let vs = reference.map_or(String::new(), |k| format!(" vs control {} entries/s", num(k)));
        crit(name, Some(variant), Status::Pass, format!(
            "{}/{} runs flat in their late window: steepest late slope {} entries/s{vs}, rise {} at level {}",
            runs.len(), runs.len(), num(s), num(rise), num(level)
        ))
    } else {
        crit(name, Some(variant), Status::Fail, format!("{} of {} runs still grow; {}", failures.len(), runs.len(), failures[0]))
    }
}

pub fn evictions_positive(v: Option<&VariantSummary>, variant: &str) -> Criterion {
    let name = format!("{variant}_evictions_positive");
    let Some(v) = v else {
        return crit(name, Some(variant), Status::Skip, format!("no {variant} runs"));
    };
    let with_samples: Vec<_> = v.runs.iter().filter(|r| r.stats.samples > 0).collect();
    if with_samples.is_empty() {
        return crit(name, Some(variant), Status::Skip, format!("no {variant} samples"));
    }
    let evicting = with_samples.iter().filter(|r| r.stats.evictions > 0).count();
    if v.evictions_total > 0 {
        crit(name, Some(variant), Status::Pass, format!(
            "{} evictions in {} runs ({evicting} of them evicted), {} scans",
            v.evictions_total, with_samples.len(), v.scans_total
        ))
    } else {
        crit(name, Some(variant), Status::Fail, format!(
            "no evictions in {} runs ({} scans)", with_samples.len(), v.scans_total
        ))
    }
}

pub fn max_below_control(v: Option<&VariantSummary>, variant: &str, control: Option<&VariantSummary>) -> Criterion {
    let name = format!("{variant}_max_below_control_max");
    let (Some(t), Some(c)) = (v.and_then(|v| v.map_entries_max), control.and_then(|c| c.map_entries_max)) else {
        return crit(name, Some(variant), Status::Skip, format!("needs samples of both control and {variant}"));
    };
    let status = if t < c { Status::Pass } else { Status::Fail };
    let op = if t < c { "<" } else { ">=" };
    crit(name, Some(variant), status, format!("{variant} max {t} {op} control max {c} entries"))
}

/// No run failed, no run ended with an error exit kind, no scheduler went
/// away mid-run (sched_state `disabled` before the last sample).
pub fn no_scheduler_error(variants: &[VariantSummary]) -> Criterion {
    let name = "no_scheduler_error";
    let mut problems = Vec::new();
    let (mut runs, mut with_json) = (0, 0);
    for v in variants {
        for r in &v.runs {
            runs += 1;
            let known = r.status != "unknown";
            with_json += usize::from(known);
            let id = format!("{}/run{}", v.name, r.iteration);
            if known && !r.status.eq_ignore_ascii_case("ok") {
                problems.push(format!("{id} {}: {}", r.status, r.failure.as_deref().unwrap_or("no reason given")));
            } else if let Some(k) = r.exit_kind.as_deref().filter(|k| exit_kind_is_error(k)) {
                problems.push(format!("{id} exit {k}: {}", r.exit_reason.as_deref().unwrap_or("")));
            } else if let Some(t) = r.stats.disabled_at_s {
                problems.push(format!("{id}: sched_state disabled at {} s, before the run ended", num(t)));
            }
        }
    }
    // Some runs with run<N>.json and some without: the missing ones died.
    if with_json > 0 {
        for v in variants {
            for r in v.runs.iter().filter(|r| r.status == "unknown") {
                problems.push(format!("{}/run{}: run{}.json missing (run did not finish?)", v.name, r.iteration, r.iteration));
            }
        }
    }
    if let Some(first) = problems.first() {
        return crit(name, None, Status::Fail, format!("{} problem(s); first: {first}", problems.len()));
    }
    if with_json == 0 {
        return crit(name, None, Status::Skip, "no run<N>.json files: how the runs ended is unknown");
    }
    crit(name, None, Status::Pass, format!("{runs} runs ended ok, no error exit, scheduler enabled throughout"))
}

pub fn no_kernel_splat(splats: &[Splat], logs_scanned: usize) -> Criterion {
    let name = "no_kernel_splat";
    if let Some(s) = splats.first() {
        let line = s.line.map_or(String::new(), |l| format!(":{l}"));
        let quote = s.lines.first().map_or("", |l| message_of(l));
        return crit(name, None, Status::Fail, format!(
            "{} splat(s); first: {}{line} [{}] {quote}", splats.len(), s.file, s.pattern
        ));
    }
    if logs_scanned == 0 {
        return crit(name, None, Status::Skip, "no dmesg or serial logs to scan");
    }
    crit(name, None, Status::Pass, format!("{logs_scanned} logs scanned, no splat"))
}

/// `<variant>_no_false_evictions`: an entry freed with its task never goes
/// while the task lives.
pub fn no_false_evictions(v: Option<&VariantSummary>, variant: &str) -> Criterion {
    let name = format!("{variant}_no_false_evictions");
    let Some(v) = v else {
        return crit(name, Some(variant), Status::Skip, format!("no {variant} runs"));
    };
    if !v.runs.iter().any(|r| r.stats.runs > 0) {
        return crit(name, Some(variant), Status::Skip, "no run has the false_evictions counters (CSV from before them)");
    }
    let runs = v.runs.iter().filter(|r| r.stats.samples > 0).count();
    if v.false_evictions_total == 0 {
        crit(name, Some(variant), Status::Pass, format!("0 false evictions in {runs} runs"))
    } else {
        crit(name, Some(variant), Status::Fail, format!(
            "{} live tasks lost their entry in {runs} runs", v.false_evictions_total
        ))
    }
}

/// All criteria of one group, in report order.
pub fn evaluate(variants: &[VariantSummary], splats: &[Splat], logs_scanned: usize) -> Vec<Criterion> {
    let find = |n: &str| variants.iter().find(|v| v.name == n);
    let control = find("control");
    let mut out = vec![control_grows(control)];
    for name in CLEANING_VARIANTS {
        let v = find(name);
        // bpfscan is optional: its rows appear only when it ran.
        if v.is_none() && name != "test" {
            continue;
        }
        out.push(plateaus(v, name, control));
        out.push(evictions_positive(v, name));
        out.push(max_below_control(v, name, control));
    }
    // exitdel and taskstor: rows only when they ran.
    for name in EXIT_VARIANTS {
        let Some(v) = find(name) else { continue };
        out.push(plateaus(Some(v), name, control));
        out.push(max_below_control(Some(v), name, control));
        out.push(no_false_evictions(Some(v), name));
    }
    out.push(no_scheduler_error(variants));
    out.push(no_kernel_splat(splats, logs_scanned));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::collect::aggregate;
    use crate::report::runstats::{tests::sample, SeriesStats};

    fn run(iteration: u32, levels: &[u64], evictions: u64) -> RunSummary {
        let series: Vec<_> = levels.iter().enumerate().map(|(i, &e)| sample(2.0 * i as f64, e, evictions)).collect();
        RunSummary {
            iteration,
            status: "ok".into(),
            failure: None,
            exit_kind: Some("UNREG_USER".into()),
            exit_reason: None,
            csv_truncated_line: None,
            stats: SeriesStats::of(&series),
            workload_metric: None,
            splats: 0,
            series,
        }
    }

    fn variant(name: &str, runs: Vec<RunSummary>) -> VariantSummary {
        aggregate(name, runs.len(), runs)
    }

    const GROWING: [u64; 6] = [100, 200, 300, 400, 500, 600];

    #[test]
    fn growth_needs_a_rising_late_window() {
        let c = variant("control", vec![run(1, &GROWING, 0)]);
        assert_eq!(control_grows(Some(&c)).status, Status::Pass);
        // Rose early, then flat: the late window does not grow.
        let c = variant("control", vec![run(1, &GROWING, 0), run(2, &[100, 500, 600, 600, 602, 604], 0)]);
        let k = control_grows(Some(&c));
        assert_eq!(k.status, Status::Fail);
        assert!(k.reason.starts_with("1 of 2 runs do not grow; run2: late-window rise "), "{}", k.reason);
        assert_eq!(control_grows(None).status, Status::Skip);
        let short = variant("control", vec![run(1, &[1, 2], 0)]);
        assert_eq!(control_grows(Some(&short)).status, Status::Skip);
    }

    #[test]
    fn plateau_by_level_or_by_control() {
        let c = variant("control", vec![run(1, &GROWING, 0)]); // late slope 50/s
        // Flat: passes by level.
        let t = variant("test", vec![run(1, &[100, 300, 400, 402, 398, 400], 5)]);
        assert_eq!(plateaus(Some(&t), "test", Some(&c)).status, Status::Pass);
        // Small level, noisy: rise 2 x 4 s = 8 on level 10 fails the level rule,
        // but 2 entries/s is 4% of control's 50: passes by the control rule.
        let t = variant("test", vec![run(1, &[0, 10, 10, 6, 10, 14], 5)]);
        assert_eq!(plateaus(Some(&t), "test", Some(&c)).status, Status::Pass);
        assert_eq!(plateaus(Some(&t), "test", None).status, Status::Fail);
        // Growing at 40% of control: fails both.
        let t = variant("test", vec![run(1, &[100, 140, 180, 220, 260, 300], 5)]);
        let k = plateaus(Some(&t), "test", Some(&c));
        assert_eq!(k.status, Status::Fail);
        assert!(k.reason.contains("late slope 20 entries/s is 40% of control's 50"), "{}", k.reason);
        assert_eq!(k.name, "test_plateaus");
        assert_eq!(plateaus(None, "bpfscan", Some(&c)).name, "bpfscan_plateaus");
    }

    #[test]
    fn evictions_and_maxima() {
        let c = variant("control", vec![run(1, &GROWING, 0)]);
        let t = variant("test", vec![run(1, &[100, 150, 150, 150, 150, 150], 0)]);
        assert_eq!(evictions_positive(Some(&t), "test").status, Status::Fail);
        let t = variant("test", vec![run(1, &[100, 150, 150, 150, 150, 150], 7)]);
        assert_eq!(evictions_positive(Some(&t), "test").status, Status::Pass);
        assert_eq!(max_below_control(Some(&t), "test", Some(&c)).status, Status::Pass);
        let k = max_below_control(Some(&c), "test", Some(&c));
        assert_eq!((k.status, k.reason.as_str()), (Status::Fail, "test max 600 >= control max 600 entries"));
        assert_eq!(max_below_control(None, "test", Some(&c)).status, Status::Skip);
    }

    #[test]
    fn scheduler_errors() {
        let mut ok = run(1, &GROWING, 0);
        let v = |r: RunSummary| vec![variant("test", vec![r])];
        assert_eq!(no_scheduler_error(&v(ok.clone())).status, Status::Pass);
        ok.exit_kind = Some("ERROR_BPF".into());
        ok.exit_reason = Some("invalid DSQ ID 0x1234".into());
        let k = no_scheduler_error(&v(ok.clone()));
        assert_eq!(k.reason, "1 problem(s); first: test/run1 exit ERROR_BPF: invalid DSQ ID 0x1234");
        ok.exit_kind = None;
        ok.stats.disabled_at_s = Some(12.0);
        assert!(no_scheduler_error(&v(ok.clone())).reason.contains("sched_state disabled at 12 s"));
        ok.status = "unknown".into();
        ok.stats.disabled_at_s = None;
        assert_eq!(no_scheduler_error(&v(ok)).status, Status::Skip);
    }

    #[test]
    fn bpfscan_rows_only_when_present() {
        let c = variant("control", vec![run(1, &GROWING, 0)]);
        let names = |vs: &[VariantSummary]| evaluate(vs, &[], 1).into_iter().map(|k| k.name).collect::<Vec<_>>();
        assert_eq!(names(std::slice::from_ref(&c)).len(), 6);
        let b = variant("bpfscan", vec![run(1, &[100, 150, 150, 150, 150, 150], 3)]);
        let n = names(&[c, b]);
        assert_eq!(n.len(), 9);
        assert!(n.contains(&"bpfscan_max_below_control_max".to_string()));
    }

    #[test]
    fn exit_variants_are_bounded_and_never_lose_a_live_entry() {
        let c = variant("control", vec![run(1, &GROWING, 0)]);
        let mut r = run(1, &[100, 150, 150, 150, 150, 150], 0);
        r.stats.runs = 500;
        let mut e = variant("exitdel", vec![r]);
        let n: Vec<_> = evaluate(&[c.clone(), e.clone()], &[], 1).into_iter().map(|k| (k.name, k.status)).collect();
        for want in ["exitdel_plateaus", "exitdel_max_below_control_max", "exitdel_no_false_evictions"] {
            assert!(n.contains(&(want.to_string(), Status::Pass)), "{want}: {n:?}");
        }
        assert!(!n.iter().any(|(k, _)| k.starts_with("taskstor")), "{n:?}");
        e.false_evictions_total = 4;
        let k = no_false_evictions(Some(&e), "exitdel");
        assert_eq!((k.status, k.reason.as_str()), (Status::Fail, "4 live tasks lost their entry in 1 runs"));
        e.runs[0].stats.runs = 0;
        assert_eq!(no_false_evictions(Some(&e), "exitdel").status, Status::Skip);
    }
}
