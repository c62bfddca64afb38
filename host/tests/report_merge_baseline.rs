//! Merging shards into one summary, and comparing with a baseline summary.

mod report_util;

use std::path::Path;

use report_util::{csv_text, put};
use scx_vmctl::report::{self, stats::Estimate, Summary};

/// Moves every run<N>.* with N in `iters` (and copies the rest) from `full`
/// into `shard`: the iteration split `--shard K/N` makes.
fn shard_of(full: &Path, shard: &Path, iters: &[u32]) {
    for e in walk(full) {
        let rel = e.strip_prefix(full).unwrap();
        let name = rel.file_name().unwrap().to_string_lossy().into_owned();
        let keep = match report::layout::parse_run_name(&name) {
            Some((n, _)) => iters.contains(&n),
            None => true,
        };
        if keep {
            put(&shard.join(rel), &std::fs::read_to_string(&e).unwrap());
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn report_merged_shards_equal_the_whole() {
    let t = tempfile::tempdir().unwrap();
    let full = t.path().join("full");
    report_util::good_group(&full);
    report_util::bad_group(&full);
    let (a, b, out) = (t.path().join("shard1"), t.path().join("shard2"), t.path().join("merged"));
    shard_of(&full, &a, &[1]);
    shard_of(&full, &b, &[2]);
    // Each shard writes its own summary; merge must not copy those.
    let sa = report::summarize(&a).unwrap();
    report::write_all(&a, &sa).unwrap();

    let merged = report::merge(&[a.clone(), b.clone()], &out).unwrap();
    let whole = report::summarize(&full).unwrap();
    assert_eq!(merged, whole);
    assert!(out.join("summary.json").is_file() && out.join("junit.xml").is_file());
    assert!(out.join("scx_simple/hackbench/report.html").is_file());
    let again = Summary::load(&out.join("summary.json")).unwrap();
    assert_eq!(again.counts, whole.counts);

    // The same run in both shards, with different bytes: refused, naming both.
    put(&b.join("scx_simple/hackbench/test/run1.csv"), &csv_text(&[(0.0, 1, 1, 1, 0, 0, 0, 0)]));
    let err = format!("{:#}", report::merge(&[a, b], &t.path().join("merged2")).unwrap_err());
    assert!(err.contains("merge conflict") && err.contains("shard2/scx_simple/hackbench/test/run1.csv"), "{err}");
}

fn good() -> (tempfile::TempDir, Summary) {
    let t = tempfile::tempdir().unwrap();
    report_util::good_group(t.path());
    let s = report::summarize(t.path()).unwrap();
    (t, s)
}

#[test]
fn report_same_results_are_no_regression() {
    let (_t, s) = good();
    let c = report::compare_baseline(&s, &s);
    assert!(!c.is_regression(), "{c}");
    assert!(c.notes.is_empty(), "{c}");
    assert_eq!(c.exit_code(), scx_vmctl::exit::OK);
}

#[test]
fn report_failing_criterion_and_lost_separation() {
    let (t, base) = good();
    // Test run 1 now keeps growing like control.
    let g = t.path().join("scx_simple/hackbench");
    let rows: Vec<_> = (0..6).map(|i| (2.0 * i as f64, 100 + 40 * i, 500000, 40000, 10 * i, i, 0, 1000)).collect();
    put(&g.join("test/run1.csv"), &csv_text(&rows));
    let cur = report::summarize(t.path()).unwrap();
    let c = report::compare_baseline(&cur, &base);
    let kinds: Vec<_> = c.regressions.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["criterion_regressed", "separation_lost"], "{c}");
    assert_eq!(c.regressions[0].group, "6.12.57/scx_simple/hackbench");
    assert!(c.regressions[0].detail.starts_with("test_plateaus passed in the baseline, now fails: "), "{c}");
    // test max 300 / control max 350 now, 170 / 350 before.
    assert!(c.regressions[1].detail.ends_with("test max / control max was 0.486, now 0.857"), "{c}");
    assert_eq!(c.exit_code(), scx_vmctl::exit::CRITERION_FAILED);
    assert!(c.to_markdown().contains("| regression | 6.12.57/scx_simple/hackbench | criterion_regressed |"));
    // The other way round it is a fix, not a regression.
    let back = report::compare_baseline(&base, &cur);
    assert!(!back.is_regression(), "{back}");
    assert_eq!(back.notes[0].kind, "criterion_fixed");
}

fn set_throughput(s: &mut Summary, variant: &str, values: &[f64]) {
    let v = s.groups[0].variants.iter_mut().find(|v| v.name == variant).unwrap();
    v.throughput.as_mut().unwrap().estimate = Estimate::of(values).unwrap();
}

#[test]
fn report_throughput_beyond_the_interval() {
    let (_t, mut base) = good();
    let mut cur = base.clone();
    // hackbench time (lower is better): 2.0 +/- 0.05 before, 2.4 +/- 0.05 now, n = 5.
    set_throughput(&mut base, "test", &[1.95, 2.0, 2.05, 1.98, 2.02]);
    set_throughput(&mut cur, "test", &[2.35, 2.4, 2.45, 2.38, 2.42]);
    let c = report::compare_baseline(&cur, &base);
    assert_eq!(c.regressions.len(), 1, "{c}");
    assert_eq!(c.regressions[0].kind, "throughput_regressed");
    assert!(c.regressions[0].detail.starts_with("test: hackbench_time_s worse 2 -> 2.40 (+20%; difference 95% CI "), "{c}");
    // Within noise: no finding.
    set_throughput(&mut cur, "test", &[1.9, 2.1, 2.05, 1.95, 2.0]);
    assert!(report::compare_baseline(&cur, &base).regressions.is_empty());
    // Faster is an improvement note.
    set_throughput(&mut cur, "test", &[1.5, 1.52, 1.48, 1.5, 1.5]);
    let c = report::compare_baseline(&cur, &base);
    assert!(!c.is_regression() && c.notes[0].kind == "throughput_improved", "{c}");
    // n = 1 on a side: the 10% fallback threshold decides.
    set_throughput(&mut base, "bpfscan", &[2.0]);
    set_throughput(&mut cur, "bpfscan", &[2.15]);
    assert!(!report::compare_baseline(&cur, &base).is_regression());
    set_throughput(&mut cur, "bpfscan", &[2.25]);
    let c = report::compare_baseline(&cur, &base);
    assert_eq!(c.regressions[0].kind, "throughput_regressed", "{c}");
    assert!(c.regressions[0].detail.contains("no CI (n < 2), threshold 10%"), "{c}");
}

#[test]
fn report_tiny_throughput_change_with_a_collapsed_ci_is_no_regression() {
    // What failed CI once: custom-churn runs at a fixed rate, so both sides
    // repeat nearly the same figure, the CI collapses and a 0.003% change for
    // the worse "excludes 0". (Here: hackbench seconds, lower is better.)
    let (_t, base) = good();
    let mut cur = base.clone();
    let mut base = base;
    set_throughput(&mut base, "test", &[2.0, 2.00001, 1.99999]);
    set_throughput(&mut cur, "test", &[2.00006, 2.00007, 2.00005]);
    let c = report::compare_baseline(&cur, &base);
    assert!(!c.is_regression(), "{c}");
    // Beyond the 5% floor and outside the CI it is one.
    set_throughput(&mut cur, "test", &[2.2, 2.2001, 2.1999]);
    let c = report::compare_baseline(&cur, &base);
    assert_eq!(c.regressions[0].kind, "throughput_regressed", "{c}");
    assert!(c.regressions[0].detail.contains("floor 5%"), "{c}");
}

#[test]
fn report_no_timing_gate_keeps_timing_findings_as_notes_only() {
    let (_t, base) = good();
    let mut cur = base.clone();
    let mut base = base;
    set_throughput(&mut base, "test", &[2.0, 2.01, 1.99]);
    set_throughput(&mut cur, "test", &[2.5, 2.51, 2.49]);
    // A criterion regression alongside: that one still fails.
    let c = report::compare_baseline(&cur, &base).timings_as_notes();
    assert!(!c.is_regression(), "{c}");
    let n = c.notes.iter().find(|n| n.kind == "throughput_regressed").expect("kept as a note");
    assert!(n.detail.starts_with("not gated (--no-timing-gate): test: "), "{c}");
    let crit = &mut cur.groups[0].criteria[0];
    crit.status = report::summary::Status::Fail;
    let c = report::compare_baseline(&cur, &base).timings_as_notes();
    assert!(c.is_regression() && c.regressions[0].kind == "criterion_regressed", "{c}");
    assert!(c.regressions.iter().all(|r| !report::baseline::TIMING_KINDS.contains(&r.kind.as_str())), "{c}");
    assert!(c.notes.iter().any(|n| n.kind == "throughput_regressed"), "{c}");
}

#[test]
fn report_helper_overhead_grew() {
    let (_t, base) = good();
    let mut cur = base.clone();
    let mut base = base;
    let tc = &mut base.groups[0].throughput_changes[0];
    (tc.relative_change, tc.ci95_low, tc.ci95_high) = (0.01, Some(-0.02), Some(0.04));
    let tc = &mut cur.groups[0].throughput_changes[0];
    (tc.relative_change, tc.ci95_low, tc.ci95_high) = (0.12, Some(0.08), Some(0.16));
    let c = report::compare_baseline(&cur, &base);
    assert_eq!(c.regressions.len(), 1, "{c}");
    assert_eq!(c.regressions[0].kind, "overhead_grew");
    assert_eq!(
        c.regressions[0].detail,
        "test vs control hackbench_time_s: +12% (CI +8% .. +16%), baseline +1% (CI -2% .. +4%)"
    );
}

#[test]
fn report_verifier_growth_threshold() {
    let (_t, base) = good();
    let mut cur = base.clone();
    let progs = &mut cur.groups[0].variants.iter_mut().find(|v| v.name == "test").unwrap().verifier;
    progs[0].insns = 1543 * 110 / 100; // +10%: at the threshold, fine
    progs[1].states = 25; // 22 -> 25: +13.6%
    let c = report::compare_baseline(&cur, &base);
    assert_eq!(c.regressions.len(), 1, "{c}");
    assert_eq!(c.regressions[0].kind, "verifier_grew");
    assert_eq!(c.regressions[0].detail, "test simple_enqueue: states 22 -> 25 (+13.6%, threshold +10%)");
    progs_fail(&mut cur);
    let c = report::compare_baseline(&cur, &base);
    assert!(c.regressions.iter().any(|f| f.kind == "verifier_failed"), "{c}");
}

fn progs_fail(s: &mut Summary) {
    let v = s.groups[0].variants.iter_mut().find(|v| v.name == "test").unwrap();
    v.verifier[0].verdict = Some("failure".into());
}

#[test]
fn report_missing_and_new_groups_are_notes() {
    let (_t, base) = good();
    let t2 = tempfile::tempdir().unwrap();
    report_util::bad_group(t2.path());
    let cur = report::summarize(t2.path()).unwrap();
    let c = report::compare_baseline(&cur, &base);
    assert!(!c.is_regression(), "{c}");
    let kinds: Vec<_> = c.notes.iter().map(|f| (f.group.as_str(), f.kind.as_str())).collect();
    assert_eq!(kinds, [("6.12.57/scx_simple/hackbench", "group_missing"), ("scx_nest/stress-ng", "group_new")]);
    assert!(c.to_string().ends_with("baseline: no regression (0 regressions, 2 notes)"));
}

#[test]
fn report_baseline_round_trips_through_summary_json() {
    let (t, s) = good();
    report::write_all(t.path(), &s).unwrap();
    let loaded = Summary::load(&t.path().join("summary.json")).unwrap();
    // Series are not in the JSON; every judged figure is.
    assert_eq!(loaded.groups[0].criteria, s.groups[0].criteria);
    assert_eq!(loaded.groups[0].variants[1].throughput, s.groups[0].variants[1].throughput);
    assert!(loaded.groups[0].variants[0].runs[0].series.is_empty());
    assert!(!report::compare_baseline(&s, &loaded).is_regression());
}
