//! A small SVG line-plot writer: axes with round-number ticks, labels, a
//! legend, one polyline per series. Enough for report.html, no dependency.

use std::fmt::Write as _;

use super::fmt::escape_xml;

/// Points kept per series; longer series are thinned (evenly, keeping the
/// last point) so a long run does not bloat the page.
pub const MAX_POINTS: usize = 1500;

pub struct Series {
    pub label: String,
    pub color: &'static str,
    /// SVG stroke-dasharray, "" for solid.
    pub dash: &'static str,
    pub points: Vec<(f64, f64)>,
}

pub struct Plot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Start the y axis at 0 (counts) rather than at the data's minimum.
    pub y_from_zero: bool,
    pub series: Vec<Series>,
}

const W: f64 = 760.0;
const PLOT_W: f64 = 520.0;
const H: f64 = 320.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 50.0;

/// A round step (1, 2, 5 x 10^k) giving about `target` ticks over `span`.
fn nice_step(span: f64, target: f64) -> f64 {
    if span.is_nan() || span <= 0.0 {
        return 1.0;
    }
    let raw = span / target;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f < 1.5 { 1.0 } else if f < 3.0 { 2.0 } else if f < 7.0 { 5.0 } else { 10.0 };
    nice * mag
}

/// Axis range widened to whole ticks, and the ticks.
pub fn ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 1.0, lo + 1.0) };
    let step = nice_step(hi - lo, 5.0);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let n = ((end - start) / step).round() as usize;
    let t = (0..=n).map(|i| start + i as f64 * step).collect();
    (start, end, t)
}

/// Tick label: 1500000 -> "1.5M", 2000 -> "2k", 0.25 -> "0.25".
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    let (x, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    let s = if s == "-0" { "0" } else { s };
    format!("{s}{suffix}")
}

fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let stride = points.len().div_ceil(MAX_POINTS);
    let mut v: Vec<_> = points.iter().copied().step_by(stride).collect();
    if v.last() != points.last() {
        v.push(*points.last().expect("non-empty"));
    }
    v
}

impl Plot {
    pub fn render(&self) -> String {
        let legend_rows = self.series.len() as f64;
        let height = H.max(TOP + 24.0 + legend_rows * 18.0);
        let plot_h = H - TOP - BOTTOM;
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{W}" height="{height}" viewBox="0 0 {W} {height}" role="img" aria-label="{t}"><title>{t}</title>"#,
            t = escape_xml(&self.title)
        );
        let _ = write!(out, r##"<rect x="0" y="0" width="{W}" height="{height}" fill="#ffffff"/>"##);
        let _ = write!(
            out,
            r#"<text x="{}" y="20" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
            LEFT + PLOT_W / 2.0,
            escape_xml(&self.title)
        );
        let all: Vec<(f64, f64)> = self.series.iter().flat_map(|s| s.points.iter().copied()).collect();
        if all.is_empty() {
            let _ = write!(
                out,
                r##"<text x="{}" y="{}" font-size="14" fill="#666" text-anchor="middle">no samples</text></svg>"##,
                LEFT + PLOT_W / 2.0,
                TOP + plot_h / 2.0
            );
            return out;
        }
        let fold = |f: fn(f64, f64) -> f64, init: f64, pick: fn(&(f64, f64)) -> f64| all.iter().map(pick).fold(init, f);
        let (xmin, xmax) = (fold(f64::min, f64::INFINITY, |p| p.0), fold(f64::max, f64::NEG_INFINITY, |p| p.0));
        let (ymin, ymax) = (fold(f64::min, f64::INFINITY, |p| p.1), fold(f64::max, f64::NEG_INFINITY, |p| p.1));
        let (x0, x1, xt) = ticks(xmin.min(0.0), xmax);
        let (y0, y1, yt) = ticks(if self.y_from_zero { ymin.min(0.0) } else { ymin }, ymax);
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * PLOT_W;
        let sy = |y: f64| TOP + plot_h - (y - y0) / (y1 - y0) * plot_h;

        // Grid and tick labels.
        for &t in &yt {
            let y = sy(t);
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
                LEFT + PLOT_W, LEFT - 6.0, y + 4.0, tick_label(t)
            );
        }
        for &t in &xt {
            let x = sx(t);
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#eeeeee"/><text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
                TOP + plot_h, TOP + plot_h + 16.0, tick_label(t)
            );
        }
        // Axes and their labels.
        let _ = write!(
            out,
            r##"<path class="axis" d="M{LEFT},{TOP} V{:.1} H{:.1}" fill="none" stroke="#333"/>"##,
            TOP + plot_h,
            LEFT + PLOT_W
        );
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
            LEFT + PLOT_W / 2.0,
            H - 10.0,
            escape_xml(&self.x_label)
        );
        let _ = write!(
            out,
            r#"<text x="16" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"#,
            TOP + plot_h / 2.0,
            TOP + plot_h / 2.0,
            escape_xml(&self.y_label)
        );
        // Data.
        for s in &self.series {
            let pts = thin(&s.points);
            let mut d = String::with_capacity(pts.len() * 14);
            for (x, y) in pts {
                let _ = write!(d, "{:.1},{:.1} ", sx(x), sy(y));
            }
            let dash = if s.dash.is_empty() { String::new() } else { format!(r#" stroke-dasharray="{}""#, s.dash) };
            let _ = write!(
                out,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.8"{dash} points="{}"><title>{}</title></polyline>"#,
                s.color,
                d.trim_end(),
                escape_xml(&s.label)
            );
        }
        // Legend, right of the plot.
        let lx = LEFT + PLOT_W + 18.0;
        for (i, s) in self.series.iter().enumerate() {
            let y = TOP + 8.0 + i as f64 * 18.0;
            let dash = if s.dash.is_empty() { String::new() } else { format!(r#" stroke-dasharray="{}""#, s.dash) };
            let _ = write!(
                out,
                r#"<g class="legend"><line x1="{lx}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="2.5"{dash}/><text x="{}" y="{}" font-size="12">{}</text></g>"#,
                lx + 26.0,
                s.color,
                lx + 32.0,
                y + 4.0,
                escape_xml(&s.label)
            );
        }
        out.push_str("</svg>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_ticks() {
        let (lo, hi, t) = ticks(0.0, 57.0);
        assert_eq!((lo, hi), (0.0, 60.0));
        assert_eq!(t, vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
        let (lo, hi, _) = ticks(1_812_000.0, 1_845_000.0);
        assert!(lo <= 1_812_000.0 && hi >= 1_845_000.0);
        let (lo, hi, t) = ticks(5.0, 5.0);
        assert!(lo < 5.0 && hi > 5.0 && t.len() >= 2);
    }

    #[test]
    fn labels() {
        assert_eq!(tick_label(1_500_000.0), "1.5M");
        assert_eq!(tick_label(20_000.0), "20k");
        assert_eq!(tick_label(2000.0), "2000");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(0.0), "0");
    }

    #[test]
    fn renders_lines_axes_and_legend() {
        let p = Plot {
            title: "map entries <over> time".into(),
            x_label: "elapsed (s)".into(),
            y_label: "entries".into(),
            y_from_zero: true,
            series: vec![
                Series { label: "control run1".into(), color: "#d62728", dash: "", points: vec![(0.0, 1.0), (2.0, 5.0)] },
                Series { label: "test run1".into(), color: "#1f77b4", dash: "6 3", points: vec![(0.0, 1.0), (2.0, 2.0)] },
            ],
        };
        let svg = p.render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("map entries &lt;over&gt; time"));
        assert!(svg.contains("elapsed (s)") && svg.contains(">control run1<"));
        assert!(svg.contains(r#"stroke-dasharray="6 3""#));
        let empty = Plot { series: vec![], ..p }.render();
        assert!(empty.contains("no samples") && !empty.contains("<polyline"));
    }

    #[test]
    fn thins_long_series() {
        let pts: Vec<_> = (0..10_000).map(|i| (i as f64, i as f64)).collect();
        let t = thin(&pts);
        assert!(t.len() <= MAX_POINTS + 1);
        assert_eq!(t.last(), pts.last());
    }
}
