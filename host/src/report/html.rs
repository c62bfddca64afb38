//! report.html: one self-contained page (inline CSS and SVG, no script, a
//! Content-Security-Policy that forbids any fetch) with the verdict table,
//! the figures and the plots of every group.

use std::fmt::Write as _;

use scx_contract::sample::Sample;
use super::fmt::{duration_ns, escape_xml as esc, num, pct, signed_pct};
use super::summary::{GroupSummary, Status, Summary, VariantSummary};
use super::svg::{Plot, Series};

/// Colors per variant; runs of one variant share its color and differ by dash.
fn color(variant: &str) -> &'static str {
    match variant {
        "control" => "#d62728",
        "test" => "#1f77b4",
        "bpfscan" => "#2ca02c",
        "exitdel" => "#ff7f0e",
        "taskstor" => "#8c564b",
        "custom" => "#9467bd",
        _ => "#7f7f7f",
    }
}

const DASHES: [&str; 5] = ["", "7 3", "2 2", "10 3 2 3", "4 4"];

fn series(g: &GroupSummary, value: impl Fn(&Sample) -> f64) -> Vec<Series> {
    let mut out = Vec::new();
    for v in &g.variants {
        for (i, r) in v.runs.iter().enumerate() {
            if r.series.is_empty() {
                continue;
            }
            out.push(Series {
                label: format!("{} run{}", v.name, r.iteration),
                color: color(&v.name),
                dash: DASHES[i % DASHES.len()],
                points: r.series.iter().map(|s| (s.elapsed_s, value(s))).collect(),
            });
        }
    }
    out
}

fn plot(title: &str, y_label: &str, from_zero: bool, series: Vec<Series>) -> String {
    Plot {
        title: title.into(),
        x_label: "elapsed since scheduler load (s)".into(),
        y_label: y_label.into(),
        y_from_zero: from_zero,
        series,
    }
    .render()
}

fn status_cell(s: Status) -> String {
    format!(r#"<td class="{}">{}</td>"#, s.as_str().to_lowercase(), s)
}

fn verdict_table(out: &mut String, g: &GroupSummary) {
    out.push_str("<table class=\"verdict\"><tr><th>criterion</th><th>verdict</th><th>reason</th></tr>");
    for c in &g.criteria {
        let _ = write!(out, "<tr><td>{}</td>{}<td>{}</td></tr>", esc(&c.name), status_cell(c.status), esc(&c.reason));
    }
    out.push_str("</table>");
}

fn opt<T: ToString>(x: Option<T>) -> String {
    x.map_or_else(|| "-".into(), |v| v.to_string())
}

/// A row of the figures table: its label and how to get a variant's cell.
type Row = (&'static str, fn(&VariantSummary) -> String);

fn figures_table(out: &mut String, vs: &[VariantSummary]) {
    let rows: [Row; 17] = [
        ("files found", |v| v.files_found.to_string()),
        ("samples", |v| v.samples.to_string()),
        ("max map entries", |v| opt(v.map_entries_max)),
        ("mean map entries", |v| opt(v.map_entries_mean.map(num))),
        ("BPF memory max (bytes)", |v| opt(v.map_bytes_max)),
        ("tracking cost (ns per ops.running)", |v| opt(v.track_ns_per_run.map(num))),
        ("false evictions", |v| v.false_evictions_total.to_string()),
        ("growth slope (entries/s)", |v| {
            v.slope_per_s.as_ref().map_or("-".into(), |e| match e.half_width() {
                Some(h) => format!("{} &plusmn; {}", num(e.mean), num(h)),
                None => num(e.mean),
            })
        }),
        ("late-window slope (entries/s)", |v| opt(v.late_slope_per_s.as_ref().map(|e| num(e.mean)))),
        ("total evictions", |v| v.evictions_total.to_string()),
        ("scans", |v| v.scans_total.to_string()),
        ("evictions per scan", |v| opt(v.eviction_cost.evictions_per_scan.map(num))),
        ("longest scan", |v| duration_ns(v.eviction_cost.scan_max_ns)),
        ("scans timed out", |v| opt(v.eviction_cost.scan_timeout_share.map(pct))),
        ("CPU share scanning (upper bound)", |v| opt(v.eviction_cost.scan_time_share_max.map(pct))),
        ("SUnreclaim growth per run (KiB)", |v| opt(v.memory.sunreclaim_kb_growth.as_ref().map(|e| num(e.mean)))),
        ("workload metric", |v| {
            v.throughput.as_ref().map_or("-".into(), |t| {
                let h = t.estimate.half_width().map_or(String::new(), |h| format!(" &plusmn; {}", num(h)));
                format!("{} {}{h} (n={})", esc(&t.metric), num(t.estimate.mean), t.estimate.n)
            })
        }),
    ];
    out.push_str("<table class=\"figures\"><tr><th></th>");
    for v in vs {
        let _ = write!(out, "<th>{}</th>", esc(&v.name));
    }
    out.push_str("</tr>");
    for (label, f) in rows {
        let _ = write!(out, "<tr><td>{label}</td>");
        for v in vs {
            let _ = write!(out, "<td>{}</td>", f(v));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

fn group_html(out: &mut String, g: &GroupSummary) {
    let c = g.counts();
    let mut kernel = g.kernel.as_deref().map_or(String::new(), |k| format!(" &middot; kernel {}", esc(k)));
    if let Some(t) = &g.topology {
        kernel.push_str(&format!(" &middot; topology {}", esc(t)));
    }
    let _ = write!(
        out,
        r#"<section class="group"><h2>{} / {}{kernel} <span class="badge {}">{}</span></h2>"#,
        esc(&g.scheduler),
        esc(&g.workload),
        c.verdict().as_str().to_lowercase(),
        c.verdict()
    );
    if !g.accel.is_empty() || !g.reset.is_empty() {
        let _ = write!(out, "<p class=\"meta\">accel {} &middot; reset {}</p>", esc(&g.accel.join(", ")), esc(&g.reset.join(", ")));
    }
    verdict_table(out, g);
    out.push_str("<h3>Figures</h3>");
    figures_table(out, &g.variants);
    if !g.throughput_changes.is_empty() {
        out.push_str("<table class=\"figures\"><tr><th>variant vs control</th><th>metric</th><th>change</th><th>95% CI</th><th>assessment</th></tr>");
        for t in &g.throughput_changes {
            let ci = match (t.ci95_low, t.ci95_high) {
                (Some(l), Some(h)) => format!("{} .. {}", signed_pct(l), signed_pct(h)),
                _ => "-".into(),
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{ci}</td><td>{}</td></tr>",
                esc(&t.variant), esc(&t.metric), signed_pct(t.relative_change), esc(&t.assessment)
            );
        }
        out.push_str("</table>");
    }
    out.push_str("<h3>Plots</h3><div class=\"plots\">");
    out.push_str(&plot("Map entries over time", "map entries", true, series(g, |s| s.map_entries as f64)));
    out.push_str(&plot("Free memory (MemFree)", "MemFree (KiB)", false, series(g, |s| s.mem_free_kb as f64)));
    out.push_str(&plot("Unreclaimable slab (SUnreclaim)", "SUnreclaim (KiB)", false, series(g, |s| s.sunreclaim_kb as f64)));
    out.push_str(&plot("Cumulative evictions", "evictions", true, series(g, |s| s.evictions as f64)));
    out.push_str("</div>");
    let leaks: Vec<_> = g.maps.iter().filter(|m| m.verdict == "LEAK").collect();
    if !g.maps.is_empty() {
        out.push_str("<h3>Maps against exits</h3><ul>");
        for m in &g.maps {
            let _ = write!(out, "<li>{}</li>", esc(&super::leak::line(m)));
        }
        out.push_str("</ul><div class=\"plots\">");
        for m in leaks {
            out.push_str(
                &Plot {
                    title: format!("{} run{}: {} entries vs {}", m.variant, m.iteration, m.map, m.against.replace('_', " ")),
                    x_label: m.against.replace('_', " "),
                    y_label: "map entries".into(),
                    y_from_zero: true,
                    series: vec![Series { label: m.map.clone(), color: "#c0392b", dash: "", points: m.points.clone() }],
                }
                .render(),
            );
        }
        out.push_str("</div>");
    }
    if !g.splats.is_empty() {
        out.push_str("<h3>Kernel splats</h3>");
        for s in &g.splats {
            let line = s.line.map_or(String::new(), |l| format!(":{l}"));
            let _ = write!(out, "<p><b>{}</b> {}{line}</p><pre>", esc(&s.pattern), esc(&s.file));
            for l in &s.lines {
                out.push_str(&esc(l));
                out.push('\n');
            }
            out.push_str("</pre>");
        }
    }
    if !g.notes.is_empty() {
        out.push_str("<h3>Notes</h3><ul>");
        for n in &g.notes {
            let _ = write!(out, "<li>{}</li>", esc(n));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;background:#fff}\
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f2f2f2}.pass{background:#d8f5d0}.fail{background:#f9d0d0}.skip{background:#eeeeee}\
.badge{font-size:14px;padding:2px 8px;border-radius:4px;vertical-align:middle}\
.plots svg{display:block;margin:8px 0;border:1px solid #ddd}pre{background:#f7f7f7;padding:8px;overflow:auto}\
.meta{color:#555}section.group{border-top:2px solid #999;margin-top:24px}";

/// The whole page.
pub fn report_html(s: &Summary) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
<title>scx-vmctl report: {v}</title><style>{STYLE}</style></head><body>\
<h1>scx-vmctl report <span class=\"badge {c}\">{v}</span></h1>\
<p class=\"meta\">{gen} &middot; summary schema {sv} &middot; {p} pass, {f} fail, {k} skip</p>",
        v = s.verdict,
        c = s.verdict.as_str().to_lowercase(),
        gen = esc(&s.generator),
        sv = s.schema_version,
        p = s.counts.pass,
        f = s.counts.fail,
        k = s.counts.skip,
    );
    if s.groups.len() > 1 {
        out.push_str("<table class=\"verdict\"><tr><th>group</th><th>verdict</th><th>pass</th><th>fail</th><th>skip</th></tr>");
        for g in &s.groups {
            let c = g.counts();
            let _ = write!(
                out,
                "<tr><td>{}</td>{}<td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&g.key()), status_cell(c.verdict()), c.pass, c.fail, c.skip
            );
        }
        out.push_str("</table>");
    }
    for g in &s.groups {
        group_html(&mut out, g);
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::Criterion;

    #[test]
    fn page_is_self_contained_and_has_all_plots() {
        let g = GroupSummary {
            path: ".".into(),
            scheduler: "scx_simple".into(),
            workload: "hackbench".into(),
            kernel: None,
            topology: None,
            accel: vec!["kvm".into()],
            reset: vec!["overlay".into()],
            variants: vec![],
            throughput_changes: vec![],
            criteria: vec![Criterion { name: "control_grows".into(), variant: None, status: Status::Skip, reason: "no control runs".into() }],
            splats: vec![],
            notes: vec![],
            maps: vec![],
        };
        let html = report_html(&Summary::new(vec![g]));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("default-src 'none'"));
        for bad in ["<script", "http://", "https://", "<link", "@import"] {
            let hits: Vec<_> = html.match_indices(bad).map(|(i, _)| &html[i.saturating_sub(20)..i + 30]).collect();
            // The only URL allowed is the SVG namespace.
            assert!(hits.iter().all(|h| h.contains("www.w3.org/2000/svg")), "{bad}: {hits:?}");
        }
        assert_eq!(html.matches("<svg").count(), 4);
        assert!(html.contains(r#"<td class="skip">SKIP</td>"#));
        assert!(html.contains("no samples"));
    }
}
