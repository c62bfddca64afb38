//! Small statistics: means, least-squares slopes and Student-t confidence
//! intervals, the methods docs/report.md describes; the t quantiles come from
//! statrs.

use serde::{Deserialize, Serialize};

/// t(0.975, df), Student's t quantile from statrs. A fractional df (Welch)
/// is rounded DOWN to a whole one, which gives a slightly wider, i.e.
/// conservative, interval. None for df < 1.
pub fn t975(df: f64) -> Option<f64> {
    use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
    // Also catches NaN.
    if df.is_nan() || df < 1.0 {
        return None;
    }
    if df.is_infinite() {
        return Some(Normal::standard().inverse_cdf(0.975));
    }
    Some(StudentsT::new(0.0, 1.0, df.floor()).ok()?.inverse_cdf(0.975))
}

pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        None
    } else {
        Some(xs.iter().sum::<f64>() / xs.len() as f64)
    }
}

/// Sample standard deviation (n - 1 in the denominator); None below 2 values.
pub fn sample_sd(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs)?;
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (xs.len() - 1) as f64).sqrt())
}

/// Least-squares slope of y over x; None when x has no spread (fewer than two
/// distinct x values), where a slope means nothing.
pub fn ls_slope(points: impl Iterator<Item = (f64, f64)> + Clone) -> Option<f64> {
    let (mut n, mut sx, mut sy) = (0usize, 0.0, 0.0);
    for (x, y) in points.clone() {
        n += 1;
        sx += x;
        sy += y;
    }
    if n < 2 {
        return None;
    }
    let (mx, my) = (sx / n as f64, sy / n as f64);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in points {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
    }
    if sxx <= 0.0 {
        None
    } else {
        Some(sxy / sxx)
    }
}

/// A mean with its 95% confidence interval over independent values (runs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation; null for n < 2.
    pub sd: Option<f64>,
    /// mean -/+ t(0.975, n-1) * sd / sqrt(n); null for n < 2.
    pub ci95_low: Option<f64>,
    pub ci95_high: Option<f64>,
}

impl Estimate {
    pub fn of(xs: &[f64]) -> Option<Estimate> {
        let mean = mean(xs)?;
        let n = xs.len();
        let sd = sample_sd(xs);
        let half = sd.and_then(|sd| Some(t975((n - 1) as f64)? * sd / (n as f64).sqrt()));
        Some(Estimate {
            n,
            mean,
            sd,
            ci95_low: half.map(|h| mean - h),
            ci95_high: half.map(|h| mean + h),
        })
    }

    /// Half width of the 95% interval, if there is one.
    pub fn half_width(&self) -> Option<f64> {
        Some(self.ci95_high? - self.mean)
    }
}

/// A change with a 95% interval (relative or absolute, per the caller).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub value: f64,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

impl Interval {
    /// True when the interval exists and does not contain 0.
    pub fn excludes_zero(&self) -> bool {
        matches!((self.low, self.high), (Some(l), Some(h)) if l > 0.0 || h < 0.0)
    }
}

/// Welch-Satterthwaite degrees of freedom for two variance terms v = s^2/n.
fn welch_df(va: f64, na: usize, vb: f64, nb: usize) -> f64 {
    let num = (va + vb) * (va + vb);
    let den = va * va / (na - 1) as f64 + vb * vb / (nb - 1) as f64;
    if den > 0.0 {
        num / den
    } else {
        f64::INFINITY
    }
}

/// Relative change of `b` against `a`: mean(b)/mean(a) - 1, with a 95% interval
/// from the delta method (var(R)/R^2 = sd_b^2/(n_b mean_b^2) + sd_a^2/(n_a mean_a^2))
/// and Welch-Satterthwaite degrees of freedom. The interval needs n >= 2 on both sides.
pub fn relative_change(a: &Estimate, b: &Estimate) -> Option<Interval> {
    if a.mean == 0.0 || !a.mean.is_finite() || !b.mean.is_finite() {
        return None;
    }
    let r = b.mean / a.mean;
    let value = r - 1.0;
    let (Some(sa), Some(sb)) = (a.sd, b.sd) else {
        return Some(Interval { value, low: None, high: None });
    };
    if b.mean == 0.0 {
        return Some(Interval { value, low: None, high: None });
    }
    let va = sa * sa / (a.n as f64 * a.mean * a.mean);
    let vb = sb * sb / (b.n as f64 * b.mean * b.mean);
    let t = t975(welch_df(va, a.n, vb, b.n));
    let half = t.map(|t| t * r.abs() * (va + vb).sqrt());
    Some(Interval { value, low: half.map(|h| value - h), high: half.map(|h| value + h) })
}

/// Difference of means b - a with a Welch 95% interval (n >= 2 on both sides).
pub fn difference(a: &Estimate, b: &Estimate) -> Interval {
    let value = b.mean - a.mean;
    let (Some(sa), Some(sb)) = (a.sd, b.sd) else {
        return Interval { value, low: None, high: None };
    };
    let va = sa * sa / a.n as f64;
    let vb = sb * sb / b.n as f64;
    let half = t975(welch_df(va, a.n, vb, b.n)).map(|t| t * (va + vb).sqrt());
    Interval { value, low: half.map(|h| value - h), high: half.map(|h| value + h) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn t_quantiles_match_the_tables_and_round_df_down() {
        let t = |df: f64| t975(df).unwrap();
        // the printed tables' values, to their 3 decimals
        for (df, want) in [(1.0, 12.706), (2.0, 4.303), (5.0, 2.571), (10.0, 2.228), (30.0, 2.042), (120.0, 1.980)] {
            assert!((t(df) - want).abs() < 5e-4, "t({df}) = {} not {want}", t(df));
        }
        assert_eq!(t(2.9), t(2.0), "a fractional df rounds down: wider interval");
        assert!((t(35.0) - 2.030).abs() < 5e-4);
        assert!((t(f64::INFINITY) - 1.960).abs() < 5e-4);
        assert_eq!(t975(0.5), None);
        assert_eq!(t975(f64::NAN), None);
    }

    #[test]
    fn slope_of_a_line_and_of_noise() {
        let pts = [(0.0, 10.0), (2.0, 30.0), (4.0, 50.0), (6.0, 70.0)];
        assert!(close(ls_slope(pts.iter().copied()).unwrap(), 10.0));
        // Symmetric zig-zag around a flat level has slope 0.
        let flat = [(0.0, 5.0), (1.0, 7.0), (2.0, 5.0), (3.0, 7.0), (4.0, 5.0), (5.0, 7.0), (6.0, 5.0)];
        assert!(ls_slope(flat.iter().copied()).unwrap().abs() < 0.2);
        assert_eq!(ls_slope([(1.0, 1.0)].iter().copied()), None);
        assert_eq!(ls_slope([(1.0, 1.0), (1.0, 2.0)].iter().copied()), None);
    }

    #[test]
    fn estimate_matches_hand_computation() {
        // mean 2, sd 1, half = t(2) / sqrt(3) (t pinned by the quantile test)
        let e = Estimate::of(&[1.0, 2.0, 3.0]).unwrap();
        assert!(close(e.mean, 2.0));
        assert!(close(e.sd.unwrap(), 1.0));
        let half = t975(2.0).unwrap() / 3f64.sqrt();
        assert!(close(e.ci95_low.unwrap(), 2.0 - half));
        assert!(close(e.ci95_high.unwrap(), 2.0 + half));
        let single = Estimate::of(&[4.0]).unwrap();
        assert_eq!((single.sd, single.ci95_low), (None, None));
        assert!(Estimate::of(&[]).is_none());
    }

    #[test]
    fn relative_change_delta_method() {
        let a = Estimate::of(&[10.0, 11.0, 12.0]).unwrap(); // mean 11, sd 1
        let b = Estimate::of(&[12.0, 13.0, 14.0]).unwrap(); // mean 13, sd 1
        let c = relative_change(&a, &b).unwrap();
        let r = 13.0 / 11.0;
        assert!(close(c.value, r - 1.0));
        let va: f64 = 1.0 / (3.0 * 121.0);
        let vb: f64 = 1.0 / (3.0 * 169.0);
        let df = (va + vb).powi(2) / (va * va / 2.0 + vb * vb / 2.0);
        assert!(df > 3.0 && df < 4.0);
        let half = t975(3.0).unwrap() * r * (va + vb).sqrt();
        assert!(close(c.low.unwrap(), r - 1.0 - half));
        assert!(close(c.high.unwrap(), r - 1.0 + half));
        assert!(!c.excludes_zero(), "n = 3 with sd 1 cannot tell 11 from 13");
        let b = Estimate::of(&[15.0, 15.5, 16.0]).unwrap();
        assert!(relative_change(&a, &b).unwrap().excludes_zero());
        // One run on a side: a value but no interval.
        let one = Estimate::of(&[12.0]).unwrap();
        let c = relative_change(&a, &one).unwrap();
        assert!(c.low.is_none() && !c.excludes_zero());
    }

    #[test]
    fn difference_welch() {
        let a = Estimate::of(&[1.0, 2.0, 3.0]).unwrap();
        let b = Estimate::of(&[1.0, 2.0, 3.0]).unwrap();
        let d = difference(&a, &b);
        assert_eq!(d.value, 0.0);
        assert!(!d.excludes_zero());
        // Equal variances and n: df = 2(n-1) = 4.
        let half = t975(4.0).unwrap() * (2.0f64 / 3.0).sqrt();
        assert!(close(d.high.unwrap(), half));
    }
}
