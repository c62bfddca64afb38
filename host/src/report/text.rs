//! summary.txt (in the spirit of the original aggregate step), the short
//! terminal verdict (`Display for Summary`) and a markdown table for CI job
//! summaries.

use std::fmt::{self, Write as _};

use super::fmt::{duration_ns, num, pct, signed_pct};
use super::stats::Estimate;
use super::summary::{GroupSummary, Status, Summary, VariantSummary};

/// "2.10 s (95% CI 0.829 .. 3.37, n=2)"; `unit` follows the value.
fn ci(e: &Estimate, unit: &str) -> String {
    match (e.ci95_low, e.ci95_high) {
        (Some(l), Some(h)) => format!("{}{unit} (95% CI {} .. {}, n={})", num(e.mean), num(l), num(h), e.n),
        _ => format!("{}{unit} (n={})", num(e.mean), e.n),
    }
}

fn title(g: &GroupSummary) -> String {
    let mut about: Vec<String> = g.kernel.iter().map(|k| format!("kernel {k}")).collect();
    about.extend(g.topology.iter().map(|t| format!("topology {t}")));
    match about.is_empty() {
        false => format!("{} / {} ({})", g.scheduler, g.workload, about.join(", ")),
        true => format!("{} / {}", g.scheduler, g.workload),
    }
}

fn opt<T: ToString>(x: Option<T>) -> String {
    x.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn variant_text(out: &mut String, v: &VariantSummary) {
    let w = |out: &mut String, s: String| {
        out.push_str("  ");
        out.push_str(&s);
        out.push('\n');
    };
    let _ = writeln!(out, "{}:", v.name);
    w(out, format!("files found: {}", v.files_found));
    w(out, format!("max map entries: {}", opt(v.map_entries_max)));
    w(out, format!("mean map entries: {}", opt(v.map_entries_mean.map(num))));
    w(out, format!("total evictions: {}", v.evictions_total));
    let failed = v.runs.iter().filter(|r| r.status != "ok" && r.status != "unknown").count();
    w(out, format!("runs: {} ({} samples, {failed} failed)", v.runs.len(), v.samples));
    if let Some(s) = &v.slope_per_s {
        let late = v.late_slope_per_s.as_ref().map_or("-".into(), |e| num(e.mean));
        w(out, format!("growth slope: {}; late window {late} entries/s", ci(s, " entries/s")));
    }
    if let Some(b) = v.map_bytes_max {
        w(out, format!("map memory max: {b} bytes"));
    }
    if let Some(c) = v.track_ns_per_run {
        w(out, format!("tracking cost: {} ns per ops.running call", num(c)));
    }
    w(out, format!("false evictions: {}", v.false_evictions_total));
    let m = &v.memory;
    let drop = m.mem_free_kb_drop.as_ref().map_or("-".into(), |e| num(e.mean));
    let growth = m.sunreclaim_kb_growth.as_ref().map_or("-".into(), |e| num(e.mean));
    w(out, format!(
        "memory: MemFree min {} KiB (drop {drop} KiB per run), SUnreclaim max {} KiB (growth {growth} KiB per run)",
        opt(m.mem_free_kb_min), opt(m.sunreclaim_kb_max)
    ));
    if v.scans_total > 0 || v.evictions_total > 0 {
        let c = &v.eviction_cost;
        w(out, format!(
            "eviction cost: {} scans, {} evictions/scan, longest scan {}, {} of scans timed out, scanning <= {} of a CPU",
            v.scans_total,
            opt(c.evictions_per_scan.map(num)),
            duration_ns(c.scan_max_ns),
            opt(c.scan_timeout_share.map(pct)),
            opt(c.scan_time_share_max.map(pct)),
        ));
    }
    if let Some(c) = &v.cleanup {
        w(out, format!("cleanup capacity (late window): {}", super::capacity::line(c)));
    }
    if let Some(t) = &v.throughput {
        let dir = if t.higher_is_better { "higher" } else { "lower" };
        w(out, format!("{} ({dir} is better): {}", t.metric, ci(&t.estimate, "")));
    }
    for p in &v.verifier {
        let k = p.kernel.as_deref().map_or(String::new(), |k| format!(" on {k}"));
        w(out, format!("verifier{k}: {} {} insns, {} states", p.prog, p.insns, p.states));
    }
}

/// One line per variant with the figures that compare the ways of keeping
/// the map bounded: entries, BPF memory, tracking cost, throughput, false
/// evictions.
fn side_by_side(out: &mut String, vs: &[VariantSummary]) {
    let rows: Vec<[String; 6]> = vs
        .iter()
        .map(|v| {
            [
                v.name.clone(),
                opt(v.map_entries_max),
                opt(v.map_bytes_max),
                opt(v.track_ns_per_run.map(num)),
                v.throughput.as_ref().map_or("-".into(), |t| num(t.estimate.mean)),
                v.false_evictions_total.to_string(),
            ]
        })
        .collect();
    let head = ["variant", "max entries", "BPF bytes max", "track ns/run", "throughput", "false evictions"];
    let width = |i: usize| rows.iter().map(|r| r[i].len()).chain([head[i].len()]).max().unwrap_or(0);
    let widths: Vec<usize> = (0..6).map(width).collect();
    let line = |out: &mut String, cells: &[&str]| {
        let mut l = String::from(" ");
        for (i, c) in cells.iter().enumerate() {
            let _ = write!(l, " {c:>w$}", w = widths[i]);
        }
        let _ = writeln!(out, "{}", l.trim_end());
    };
    let _ = writeln!(out, "side by side:");
    line(out, &head);
    for r in &rows {
        line(out, &r.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

/// The full human summary of one group.
pub fn group_text(g: &GroupSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "=== {} ===", title(g));
    if !g.accel.is_empty() || !g.reset.is_empty() {
        let _ = writeln!(out, "accel: {}; reset: {}", g.accel.join(", "), g.reset.join(", "));
    }
    for v in &g.variants {
        variant_text(&mut out, v);
    }
    if g.variants.len() > 1 {
        side_by_side(&mut out, &g.variants);
    }
    for c in &g.throughput_changes {
        let range = match (c.ci95_low, c.ci95_high) {
            (Some(l), Some(h)) => format!(" (95% CI {} .. {})", signed_pct(l), signed_pct(h)),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "throughput {} vs {}: {} {}{range}: {}",
            c.variant, c.against, c.metric, signed_pct(c.relative_change), c.assessment
        );
    }
    let _ = writeln!(out, "verdict:");
    for c in &g.criteria {
        let _ = writeln!(out, "  {} {}: {}", c.status, c.name, c.reason);
    }
    if !g.splats.is_empty() {
        let _ = writeln!(out, "splats:");
        for s in &g.splats {
            let line = s.line.map_or(String::new(), |l| format!(":{l}"));
            let _ = writeln!(out, "  {}{line} [{}]", s.file, s.pattern);
            for l in &s.lines {
                let _ = writeln!(out, "    {l}");
            }
        }
    }
    if !g.maps.is_empty() {
        let _ = writeln!(out, "maps (every sampled map of the scheduler, against exits):");
        for m in &g.maps {
            let _ = writeln!(out, "  {}", super::leak::line(m));
        }
    }
    if !g.notes.is_empty() {
        let _ = writeln!(out, "notes:");
        for n in &g.notes {
            let _ = writeln!(out, "  {n}");
        }
    }
    out
}

/// summary.txt for a whole summary.
pub fn summary_text(s: &Summary) -> String {
    let mut out = format!(
        "{} report (summary schema {})\nverdict: {} ({} pass, {} fail, {} skip)\n",
        s.generator, s.schema_version, s.verdict, s.counts.pass, s.counts.fail, s.counts.skip
    );
    for g in &s.groups {
        out.push('\n');
        out.push_str(&group_text(g));
    }
    out
}

/// The short terminal verdict: one line per group, failing criteria below it.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for g in &self.groups {
            let c = g.counts();
            writeln!(f, "{}: {} ({} pass, {} fail, {} skip)", g.key(), c.verdict(), c.pass, c.fail, c.skip)?;
            for k in g.criteria.iter().filter(|k| k.status == Status::Fail) {
                writeln!(f, "  FAIL {}: {}", k.name, k.reason)?;
            }
        }
        write!(
            f,
            "verdict: {} ({} pass, {} fail, {} skip)",
            self.verdict, self.counts.pass, self.counts.fail, self.counts.skip
        )
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// A markdown table (for a CI job summary): one row per group, one column per
/// criterion name, then the failing reasons.
pub fn summary_markdown(s: &Summary) -> String {
    let mut names: Vec<&str> = Vec::new();
    for g in &s.groups {
        for c in &g.criteria {
            if !names.contains(&c.name.as_str()) {
                names.push(&c.name);
            }
        }
    }
    let mut out = format!("### scx-vmctl: {}\n\n| group | verdict |", s.verdict);
    for n in &names {
        let _ = write!(out, " {n} |");
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(names.len()));
    out.push('\n');
    for g in &s.groups {
        let _ = write!(out, "| {} | {} |", md_cell(&g.key()), g.counts().verdict());
        for n in &names {
            let cell = g.criterion(n).map_or("", |c| c.status.as_str());
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    let fails: Vec<_> = s
        .groups
        .iter()
        .flat_map(|g| g.criteria.iter().filter(|c| c.status == Status::Fail).map(move |c| (g, c)))
        .collect();
    if !fails.is_empty() {
        out.push('\n');
        for (g, c) in fails {
            let _ = writeln!(out, "- **{}** `{}`: {}", md_cell(&g.key()), c.name, md_cell(&c.reason));
        }
    }
    out
}
