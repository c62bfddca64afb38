//! Figures of one run's samples: level, growth over the whole run and over
//! its late window, counters, memory.

use serde::{Deserialize, Serialize};

use scx_contract::sample::{Sample, SchedState};
use super::stats::{ls_slope, mean};

/// The late window starts at this fraction of the run's last elapsed time.
pub const LATE_FRACTION: f64 = 0.5;
/// Fewer samples than this in the late window: no late slope (run too short).
pub const MIN_LATE_SAMPLES: usize = 3;

/// Per-run figures, as summary.json's `runs[]` carries them (null when the
/// run had too few samples for that figure).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesStats {
    pub samples: usize,
    /// elapsed_s of the last sample.
    pub elapsed_s: Option<f64>,
    pub map_entries_first: Option<u64>,
    pub map_entries_last: Option<u64>,
    pub map_entries_max: Option<u64>,
    pub map_entries_mean: Option<f64>,
    pub map_bytes_max: Option<u64>,
    /// Least-squares slope of map_entries over elapsed_s, whole run (entries/s).
    pub slope_per_s: Option<f64>,
    /// The same over the late window (elapsed_s >= LATE_FRACTION * last elapsed_s).
    pub late_slope_per_s: Option<f64>,
    /// Mean map_entries in the late window.
    pub late_mean: Option<f64>,
    /// late_slope_per_s times the late window's span: the fitted rise (entries).
    pub late_rise: Option<f64>,
    /// Counters at their highest (they are cumulative; the max survives a
    /// stray sample).
    pub evictions: u64,
    pub scans: u64,
    pub scan_timeouts: u64,
    pub scan_max_ns: u64,
    /// Live tasks touched again after losing their entry to a scan.
    #[serde(default)]
    pub false_evictions: u64,
    /// ns in the scheduler's tracking code, and its ops.running calls
    /// (0 in CSVs from before these columns).
    #[serde(default)]
    pub track_ns: u64,
    #[serde(default)]
    pub runs: u64,
    pub mem_free_kb_first: Option<u64>,
    pub mem_free_kb_last: Option<u64>,
    pub mem_free_kb_min: Option<u64>,
    pub sunreclaim_kb_first: Option<u64>,
    pub sunreclaim_kb_last: Option<u64>,
    pub sunreclaim_kb_max: Option<u64>,
    /// elapsed_s of the first sample whose sched_state is `disabled` while a
    /// later sample exists: the scheduler went away mid-run.
    pub disabled_at_s: Option<f64>,
}

impl SeriesStats {
    pub fn of(samples: &[Sample]) -> SeriesStats {
        let mut s = SeriesStats { samples: samples.len(), ..Default::default() };
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            return s;
        };
        s.elapsed_s = Some(last.elapsed_s);
        s.map_entries_first = Some(first.map_entries);
        s.map_entries_last = Some(last.map_entries);
        s.mem_free_kb_first = Some(first.mem_free_kb);
        s.mem_free_kb_last = Some(last.mem_free_kb);
        s.sunreclaim_kb_first = Some(first.sunreclaim_kb);
        s.sunreclaim_kb_last = Some(last.sunreclaim_kb);
        let (mut max, mut sum, mut bytes, mut free_min, mut sunr_max) = (0u64, 0f64, 0u64, u64::MAX, 0u64);
        for x in samples {
            max = max.max(x.map_entries);
            sum += x.map_entries as f64;
            bytes = bytes.max(x.map_bytes);
            free_min = free_min.min(x.mem_free_kb);
            sunr_max = sunr_max.max(x.sunreclaim_kb);
            s.evictions = s.evictions.max(x.evictions);
            s.scans = s.scans.max(x.scans);
            s.scan_timeouts = s.scan_timeouts.max(x.scan_timeouts);
            s.scan_max_ns = s.scan_max_ns.max(x.scan_max_ns);
            s.false_evictions = s.false_evictions.max(x.false_evictions);
            s.track_ns = s.track_ns.max(x.track_ns);
            s.runs = s.runs.max(x.runs);
        }
        s.map_entries_max = Some(max);
        s.map_entries_mean = Some(sum / samples.len() as f64);
        s.map_bytes_max = Some(bytes);
        s.mem_free_kb_min = Some(free_min);
        s.sunreclaim_kb_max = Some(sunr_max);

        let pts = samples.iter().map(|x| (x.elapsed_s, x.map_entries as f64));
        s.slope_per_s = ls_slope(pts);

        let start = LATE_FRACTION * last.elapsed_s;
        let late: Vec<&Sample> = samples.iter().filter(|x| x.elapsed_s >= start).collect();
        if late.len() >= MIN_LATE_SAMPLES {
            let pts = late.iter().map(|x| (x.elapsed_s, x.map_entries as f64));
            s.late_slope_per_s = ls_slope(pts);
            let levels: Vec<f64> = late.iter().map(|x| x.map_entries as f64).collect();
            s.late_mean = mean(&levels);
            let span = late[late.len() - 1].elapsed_s - late[0].elapsed_s;
            s.late_rise = s.late_slope_per_s.map(|k| k * span);
        }

        s.disabled_at_s = samples[..samples.len() - 1]
            .iter()
            .find(|x| x.sched_state == SchedState::Disabled)
            .map(|x| x.elapsed_s);
        s
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A sample with the fields the tests care about.
    pub fn sample(t: f64, entries: u64, evictions: u64) -> Sample {
        Sample {
            elapsed_s: t,
            map_entries: entries,
            map_bytes: entries * 64,
            mem_free_kb: 1_000_000 - entries,
            sunreclaim_kb: 40_000 + entries / 10,
            evictions,
            scans: (t as u64),
            scan_timeouts: 0,
            scan_max_ns: 20_000,
            sched_state: SchedState::Enabled,
            nr_tasks: 100,
            false_evictions: 0,
            track_ns: 0,
            runs: 0,
        }
    }

    #[test]
    fn growing_run() {
        // 100 + 10/s for 0..=10 s, every 2 s: 100,120,...,200
        let v: Vec<_> = (0..=5).map(|i| sample(2.0 * i as f64, 100 + 20 * i, 0)).collect();
        let s = SeriesStats::of(&v);
        assert_eq!(s.samples, 6);
        assert_eq!((s.map_entries_first, s.map_entries_last, s.map_entries_max), (Some(100), Some(200), Some(200)));
        assert_eq!(s.map_entries_mean, Some(150.0));
        assert!((s.slope_per_s.unwrap() - 10.0).abs() < 1e-9);
        // Late window: t >= 5: samples at 6, 8, 10 -> 160, 180, 200.
        assert!((s.late_slope_per_s.unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(s.late_mean, Some(180.0));
        assert!((s.late_rise.unwrap() - 40.0).abs() < 1e-9);
        assert_eq!(s.disabled_at_s, None);
    }

    #[test]
    fn plateau_run_and_counters() {
        let levels = [100, 300, 400, 410, 400, 405, 410, 400, 405];
        let v: Vec<_> = levels.iter().enumerate().map(|(i, &e)| sample(2.0 * i as f64, e, 50 * i as u64)).collect();
        let s = SeriesStats::of(&v);
        assert_eq!(s.evictions, 400);
        assert_eq!(s.scans, 16);
        assert!(s.late_slope_per_s.unwrap().abs() < 1.0);
    }

    #[test]
    fn short_and_empty_runs() {
        let s = SeriesStats::of(&[]);
        assert_eq!(s.samples, 0);
        assert!(s.map_entries_max.is_none() && s.slope_per_s.is_none());
        let s = SeriesStats::of(&[sample(0.0, 5, 0), sample(2.0, 6, 0)]);
        assert!(s.slope_per_s.is_some());
        assert!(s.late_slope_per_s.is_none(), "two samples leave no late window");
    }

    #[test]
    fn disabled_mid_run_is_noticed_but_not_at_the_end() {
        let mut v: Vec<_> = (0..5).map(|i| sample(i as f64, 10, 0)).collect();
        v[4].sched_state = SchedState::Disabled;
        assert_eq!(SeriesStats::of(&v).disabled_at_s, None);
        v[2].sched_state = SchedState::Disabled;
        assert_eq!(SeriesStats::of(&v).disabled_at_s, Some(2.0));
    }
}
