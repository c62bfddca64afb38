//! Comparing a summary with an earlier one (`report --baseline FILE`).
//! Groups are matched by kernel/scheduler/workload. What counts as a
//! regression, with thresholds, is listed in docs/report.md.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use super::fmt::{num, pct, signed_pct};
use super::stats::difference;
use super::summary::{GroupSummary, Status, Summary, ThroughputChange, VariantSummary};

/// Throughput compared without a confidence interval (a side with n < 2):
/// a change for the worse beyond this share is a regression.
pub const THROUGHPUT_FALLBACK_THRESHOLD: f64 = 0.10;
/// A throughput change smaller than this share is never a regression, even
/// when its CI excludes 0: a rate-limited workload (custom-churn) repeats
/// nearly the same figure, its CI shrinks to nothing, and a 0.003% dip would
/// otherwise fail the night.
pub const THROUGHPUT_MIN_CHANGE: f64 = 0.05;
/// Verifier instructions or states growing beyond this share: a regression.
pub const VERIFIER_GROWTH_THRESHOLD: f64 = 0.10;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// The group's key (kernel/scheduler/workload).
    pub group: String,
    /// criterion_regressed, separation_lost, throughput_regressed,
    /// overhead_grew, verifier_grew, verifier_failed (regressions);
    /// criterion_fixed, criterion_not_judged, throughput_improved,
    /// group_missing, group_new, verifier_prog_missing (notes).
    pub kind: String,
    pub detail: String,
}

/// Regressions measured in time, which `--no-timing-gate` reports without failing.
pub const TIMING_KINDS: [&str; 2] = ["throughput_regressed", "overhead_grew"];

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Comparison {
    pub regressions: Vec<Finding>,
    pub notes: Vec<Finding>,
}

impl Comparison {
    /// Timing findings (throughput_regressed, overhead_grew) become notes:
    /// for runs on a shared machine, where timings are noise (`report
    /// --no-timing-gate`, used by CI here; the nightly KVM runner gates).
    pub fn timings_as_notes(mut self) -> Self {
        let (timing, rest): (Vec<_>, Vec<_>) =
            self.regressions.into_iter().partition(|f| TIMING_KINDS.contains(&f.kind.as_str()));
        self.regressions = rest;
        self.notes.extend(timing.into_iter().map(|mut f| {
            f.detail = format!("not gated (--no-timing-gate): {}", f.detail);
            f
        }));
        self
    }

    pub fn is_regression(&self) -> bool {
        !self.regressions.is_empty()
    }

    /// OK, or CRITERION_FAILED on a regression (crate::exit).
    pub fn exit_code(&self) -> i32 {
        if self.is_regression() {
            crate::exit::CRITERION_FAILED
        } else {
            crate::exit::OK
        }
    }

    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "### Baseline comparison: {}\n\n",
            if self.is_regression() { "REGRESSION" } else { "no regression" }
        );
        if self.regressions.is_empty() && self.notes.is_empty() {
            out.push_str("Nothing changed.\n");
            return out;
        }
        out.push_str("| | group | kind | detail |\n|---|---|---|---|\n");
        for (tag, list) in [("regression", &self.regressions), ("note", &self.notes)] {
            for f in list {
                out.push_str(&format!(
                    "| {tag} | {} | {} | {} |\n",
                    f.group.replace('|', "\\|"),
                    f.kind,
                    f.detail.replace('|', "\\|")
                ));
            }
        }
        out
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.regressions {
            writeln!(f, "REGRESSION {} {}: {}", r.group, r.kind, r.detail)?;
        }
        for n in &self.notes {
            writeln!(f, "note {} {}: {}", n.group, n.kind, n.detail)?;
        }
        write!(
            f,
            "baseline: {} ({} regressions, {} notes)",
            if self.is_regression() { "REGRESSION" } else { "no regression" },
            self.regressions.len(),
            self.notes.len()
        )
    }
}

struct Out<'a> {
    c: &'a mut Comparison,
    group: String,
}

impl Out<'_> {
    fn reg(&mut self, kind: &str, detail: String) {
        self.c.regressions.push(Finding { group: self.group.clone(), kind: kind.into(), detail });
    }
    fn note(&mut self, kind: &str, detail: String) {
        self.c.notes.push(Finding { group: self.group.clone(), kind: kind.into(), detail });
    }
}

fn criteria(o: &mut Out, cur: &GroupSummary, base: &GroupSummary) {
    for b in &base.criteria {
        let now = cur.criterion(&b.name).map(|c| (c.status, c.reason.as_str()));
        match (b.status, now) {
            (Status::Pass, Some((Status::Fail, reason))) => {
                o.reg("criterion_regressed", format!("{} passed in the baseline, now fails: {reason}", b.name))
            }
            (Status::Pass, Some((Status::Skip, _)) | None) => {
                o.note("criterion_not_judged", format!("{} passed in the baseline, now not judged", b.name))
            }
            (Status::Fail, Some((Status::Pass, _))) => {
                o.note("criterion_fixed", format!("{} failed in the baseline, now passes", b.name))
            }
            _ => {}
        }
    }
}

/// control grows, <v> plateaus and <v> max < control max, all three.
fn separated(g: &GroupSummary, v: &str) -> Option<bool> {
    let names = ["control_grows".to_string(), format!("{v}_plateaus"), format!("{v}_max_below_control_max")];
    let mut all = true;
    for n in &names {
        all &= g.criterion(n)?.status == Status::Pass;
    }
    Some(all)
}

fn separation(o: &mut Out, cur: &GroupSummary, base: &GroupSummary) {
    for v in ["test", "bpfscan"] {
        if separated(base, v) == Some(true) && separated(cur, v) != Some(true) {
            let ratio = |g: &GroupSummary| {
                Some(g.variant(v)?.map_entries_max? as f64 / g.variant("control")?.map_entries_max?.max(1) as f64)
            };
            let r = match (ratio(base), ratio(cur)) {
                (Some(b), Some(c)) => format!("; {v} max / control max was {}, now {}", num(b), num(c)),
                _ => String::new(),
            };
            o.reg("separation_lost", format!("control grows while {v} plateaus below it held in the baseline, not now{r}"));
        }
    }
}

fn throughput(o: &mut Out, cur: &VariantSummary, base: &VariantSummary) {
    let (Some(c), Some(b)) = (&cur.throughput, &base.throughput) else { return };
    if c.metric != b.metric {
        return;
    }
    let d = difference(&b.estimate, &c.estimate);
    let worse = (d.value < 0.0) == c.higher_is_better && d.value != 0.0;
    let rel = if b.estimate.mean != 0.0 { d.value / b.estimate.mean } else { 0.0 };
    let detail = |how: &str| {
        let ci = match (d.low, d.high) {
            (Some(l), Some(h)) => format!("difference 95% CI {} .. {}", num(l), num(h)),
            _ => format!("no CI (n < 2), threshold {}", pct(THROUGHPUT_FALLBACK_THRESHOLD)),
        };
        let ci = if d.low.is_some() {
            format!("{ci}, floor {}", pct(THROUGHPUT_MIN_CHANGE))
        } else {
            ci
        };
        format!(
            "{}: {} {how} {} -> {} ({}; {ci})",
            cur.name, c.metric, num(b.estimate.mean), num(c.estimate.mean), signed_pct(rel)
        )
    };
    let beyond = rel.abs() > THROUGHPUT_MIN_CHANGE
        && if d.low.is_some() { d.excludes_zero() } else { rel.abs() > THROUGHPUT_FALLBACK_THRESHOLD };
    if beyond && worse {
        o.reg("throughput_regressed", detail("worse"));
    } else if beyond {
        o.note("throughput_improved", detail("better"));
    }
}

fn overhead(o: &mut Out, cur: &ThroughputChange, base: &ThroughputChange) {
    let (Some(cl), Some(ch), Some(bl), Some(bh)) = (cur.ci95_low, cur.ci95_high, base.ci95_low, base.ci95_high) else {
        return;
    };
    // Disjoint intervals, the current one on the worse side.
    let worse = if cur.higher_is_better { ch < bl } else { cl > bh };
    if worse {
        o.reg("overhead_grew", format!(
            "{} vs control {}: {} (CI {} .. {}), baseline {} (CI {} .. {})",
            cur.variant, cur.metric,
            signed_pct(cur.relative_change), signed_pct(cl), signed_pct(ch),
            signed_pct(base.relative_change), signed_pct(bl), signed_pct(bh)
        ));
    }
}

fn verifier(o: &mut Out, seen: &mut BTreeSet<String>, sched: &str, cur: &VariantSummary, base: &VariantSummary) {
    for b in &base.verifier {
        let key = format!("{}/{sched}/{}/{}", b.kernel.as_deref().unwrap_or("-"), cur.name, b.prog);
        // Verifier cost is per scheduler, not per workload: judge it once.
        if !seen.insert(key) {
            continue;
        }
        let Some(c) = cur.verifier.iter().find(|c| c.prog == b.prog && c.kernel == b.kernel) else {
            o.note("verifier_prog_missing", format!("{} {}: no verifier statistics now", cur.name, b.prog));
            continue;
        };
        if b.verdict.as_deref() == Some("success") && c.verdict.as_deref().is_some_and(|v| v != "success") {
            o.reg("verifier_failed", format!("{} {}: verified in the baseline, now {}", cur.name, c.prog, c.verdict.as_deref().unwrap_or("")));
        }
        for (what, now, was) in [("insns", c.insns, b.insns), ("states", c.states, b.states)] {
            if was > 0 && now as f64 > was as f64 * (1.0 + VERIFIER_GROWTH_THRESHOLD) {
                o.reg("verifier_grew", format!(
                    "{} {}: {what} {was} -> {now} ({}, threshold +{})",
                    cur.name, c.prog, signed_pct(now as f64 / was as f64 - 1.0), pct(VERIFIER_GROWTH_THRESHOLD)
                ));
            }
        }
    }
}

/// Everything that got worse (regressions) or merely changed (notes).
pub fn compare_baseline(current: &Summary, baseline: &Summary) -> Comparison {
    let mut c = Comparison::default();
    let mut seen = BTreeSet::new();
    for b in &baseline.groups {
        let mut o = Out { c: &mut c, group: b.key() };
        let Some(cur) = current.groups.iter().find(|g| g.key() == b.key()) else {
            o.note("group_missing", "in the baseline, not in this run".into());
            continue;
        };
        criteria(&mut o, cur, b);
        separation(&mut o, cur, b);
        for bv in &b.variants {
            if let Some(cv) = cur.variant(&bv.name) {
                throughput(&mut o, cv, bv);
                verifier(&mut o, &mut seen, &cur.scheduler, cv, bv);
            }
        }
        for bt in &b.throughput_changes {
            if let Some(ct) = cur.throughput_changes.iter().find(|t| t.variant == bt.variant && t.metric == bt.metric) {
                overhead(&mut o, ct, bt);
            }
        }
    }
    for g in &current.groups {
        if !baseline.groups.iter().any(|b| b.key() == g.key()) {
            c.notes.push(Finding { group: g.key(), kind: "group_new".into(), detail: "not in the baseline".into() });
        }
    }
    c
}
