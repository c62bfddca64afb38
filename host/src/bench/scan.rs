//! (c) scx_bpf_map_scan_timeout against the same eviction in pure BPF
//! (bpf_for_each_map_elem with a time budget), at 1k, 16k and 256k entries,
//! half of them stale. Two views:
//!
//! - throughput: one unbounded pass over the full map; entries scanned and
//!   evicted per ms of the calls (guest clock; the helper caps a call at
//!   1 ms, so its pass is several calls);
//! - sweep: calls with the cleanup budget (100 us) until every stale entry
//!   is gone, as dispatch makes them; pure BPF restarts at the head of the
//!   map each call and stalls once fresh entries fill its budget.
//! - drain: the same budgeted calls on an all-stale map; pure BPF deletes the
//!   head of the map first, then walks ever more empty buckets per call
//!   before its callback (where its clock check is) runs at all.
//! - overrun: the sweep again on preallocated maps (their frees raise no
//!   irq_work inside the call), repeated to >= 1000 calls.
//! - sparse: the largest map holding 16 stale entries (nearly every bucket
//!   empty); the helper reads its clock between empty buckets too.
//!
//! Budgeted speed is compared as evictions per call: every call gets the
//! same budget, and a count of calls is not skewed by the rare call the host
//! preempted (which a sum of durations is).
//!
//! Overrun rule (documented in README "Performance"): the helper reads the
//! clock every SCAN_CLOCK_BATCH (16) buckets or entries and after every
//! bucket it locked, so it may pass its budget by up to 16 entries' cost
//! (or one bucket's evictions); on top, 20% of the budget for what a
//! guest cannot see or avoid (under TCG: the other vCPU's turn, the host
//! preempting QEMU). Judged on the p99 of quiet calls (no interrupt at all)
//! on the dense preallocated, the drained and the sparse map, against the
//! issue's 20 us and against that margin; the pure-BPF loop's p99 and every
//! worst case are reported beside it.

use scx_contract::bench::{Method, ScanResult, SizeResult, Sweep, Throughput};
use serde::{Deserialize, Serialize};

/// Buckets or entries the helper walks between reads of the clock (the
/// hashtab patch's HTAB_SWEEP_CLOCK_BATCH).
pub const SCAN_CLOCK_BATCH: f64 = 16.0;
/// The p99 overrun asked for on dense, sparse and drained maps (issue 13).
pub const GOAL_P99_OVERRUN_NS: f64 = 20_000.0;
/// Helper entries scanned per ms over pure BPF's, asked for at 16k and 256k.
pub const GOAL_THROUGHPUT_RATIO: f64 = 1.5;
/// The share of the budget allowed for the environment (see the module comment).
pub const ENV_ALLOWANCE: f64 = 0.2;

/// One method's unbounded passes (the agent's [`Throughput`], inline in the
/// report's JSON) with the rates of the median pass.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThroughputReport {
    #[serde(flatten)]
    pub measured: Throughput,
    /// median of calls_ns: one whole pass, ns (guest clock)
    pub median_ns: u64,
    /// entries visited per ms of the median pass
    pub scanned_per_ms: f64,
    /// entries evicted per ms of the median pass
    pub evicted_per_ms: f64,
}

impl ThroughputReport {
    pub fn new(measured: Throughput) -> ThroughputReport {
        let median_ns = median(&measured.calls_ns);
        let scanned_per_ms = super::ratio(measured.visited as f64, median_ns as f64 / 1e6);
        let evicted_per_ms = super::ratio(measured.evicted as f64, median_ns as f64 / 1e6);
        ThroughputReport { measured, median_ns, scanned_per_ms, evicted_per_ms }
    }
}

/// One method's budgeted sweep (the agent's [`Sweep`], inline in the
/// report's JSON) with its eviction rates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepReport {
    #[serde(flatten)]
    pub measured: Sweep,
    /// evicted per ms spent in the calls
    pub evicted_per_ms: f64,
    /// evicted per call (each call has the same budget)
    pub evicted_per_call: f64,
}

impl SweepReport {
    pub fn new(measured: Sweep) -> SweepReport {
        let evicted_per_ms = super::ratio(measured.evicted as f64, measured.in_calls_ns as f64 / 1e6);
        let evicted_per_call = super::ratio(measured.evicted as f64, measured.calls as f64);
        SweepReport { measured, evicted_per_ms, evicted_per_call }
    }
}

/// Helper against pure BPF at one size.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Versus {
    /// helper scanned_per_ms / bpfscan scanned_per_ms (unbounded calls)
    pub throughput_ratio: f64,
    /// helper evicted_per_call / bpfscan evicted_per_call (budgeted sweeps, half stale)
    pub sweep_ratio: f64,
    /// the same on the all-stale map (drain), where neither stalls
    pub drain_ratio: f64,
    /// the helper's cost of one entry, from its unbounded call
    pub helper_entry_ns: f64,
    /// SCAN_CLOCK_BATCH entries + ENV_ALLOWANCE of the budget
    pub margin_ns: f64,
    pub helper_p99_quiet_overrun_ns: f64,
    pub bpfscan_p99_quiet_overrun_ns: f64,
    /// p99 overrun of quiet calls on the all-stale map
    #[serde(default)]
    pub helper_p99_drain_overrun_ns: f64,
    #[serde(default)]
    pub bpfscan_p99_drain_overrun_ns: f64,
    /// p99 overrun of quiet calls on the sparse map (largest size only)
    #[serde(default)]
    pub helper_p99_sparse_overrun_ns: Option<f64>,
    #[serde(default)]
    pub bpfscan_p99_sparse_overrun_ns: Option<f64>,
    pub helper_worst_quiet_overrun_ns: f64,
    /// worst call of all, interrupted ones included
    pub helper_worst_overrun_ns: f64,
    pub within_margin: bool,
}

/// The report's block for one map size: the agent's [`SizeResult`], every
/// entry with its rates, and the helper against pure BPF.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SizeReport {
    pub size: u32,
    pub stale: u64,
    pub throughput: Vec<ThroughputReport>,
    pub sweep: Vec<SweepReport>,
    /// budgeted sweeps of an all-stale map
    pub drain: Vec<SweepReport>,
    /// budgeted sweeps (half stale) of a preallocated map, to >= 1000 calls
    pub overrun: Vec<SweepReport>,
    /// budgeted sweeps of the map holding only 16 stale entries (largest
    /// size; empty, and still written, at the others)
    pub sparse: Vec<SweepReport>,
    pub versus: Versus,
}

/// The agent's `bench scan` output, plus the rates and comparisons.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scan {
    pub max_age_ns: u64,
    pub sizes: Vec<SizeReport>,
}

fn median(v: &[u64]) -> u64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    match s.len() {
        0 => 0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2,
    }
}

fn overrun(call_ns: u64, timeout_ns: u64) -> f64 {
    call_ns.saturating_sub(timeout_ns) as f64
}

impl SizeReport {
    pub fn new(measured: SizeResult) -> SizeReport {
        // every field named, so one the agent adds is not silently dropped here
        let SizeResult { size, stale, throughput, sweep, drain, overrun, sparse } = measured;
        let rate = |v: Vec<Sweep>| v.into_iter().map(SweepReport::new).collect();
        let mut r = SizeReport {
            size,
            stale,
            throughput: throughput.into_iter().map(ThroughputReport::new).collect(),
            sweep: rate(sweep),
            drain: rate(drain),
            overrun: rate(overrun),
            sparse: rate(sparse),
            versus: Versus::default(),
        };
        r.compare();
        r
    }

    pub fn throughput_of(&self, method: Method) -> Option<&ThroughputReport> {
        self.throughput.iter().find(|t| t.measured.method == method)
    }
    pub fn sweep_of(&self, method: Method) -> Option<&SweepReport> {
        self.sweep.iter().find(|t| t.measured.method == method)
    }
    pub fn drain_of(&self, method: Method) -> Option<&SweepReport> {
        self.drain.iter().find(|t| t.measured.method == method)
    }
    pub fn overrun_of(&self, method: Method) -> Option<&SweepReport> {
        self.overrun.iter().find(|t| t.measured.method == method)
    }

    /// The helper against pure BPF (left at its default without both methods
    /// in every list).
    fn compare(&mut self) {
        use Method::{Bpfscan, Helper};
        let (Some(ht), Some(bt), Some(hs), Some(bs), Some(hd), Some(bd), Some(ho), Some(bo)) = (
            self.throughput_of(Helper),
            self.throughput_of(Bpfscan),
            self.sweep_of(Helper),
            self.sweep_of(Bpfscan),
            self.drain_of(Helper),
            self.drain_of(Bpfscan),
            self.overrun_of(Helper),
            self.overrun_of(Bpfscan),
        ) else {
            return;
        };
        let p99 = |w: &SweepReport| overrun(w.measured.p99_quiet_call_ns, w.measured.timeout_ns);
        let worst = |w: &SweepReport| overrun(w.measured.worst_call_ns, w.measured.timeout_ns);
        let helper_entry_ns = super::ratio(ht.median_ns as f64, ht.measured.visited as f64);
        let helper_p99 = p99(ho);
        let margin_ns = SCAN_CLOCK_BATCH * helper_entry_ns + ENV_ALLOWANCE * ho.measured.timeout_ns as f64;
        let sparse_of = |m: Method| self.sparse.iter().find(|w| w.measured.method == m).map(p99);
        self.versus = Versus {
            throughput_ratio: super::ratio(ht.scanned_per_ms, bt.scanned_per_ms),
            sweep_ratio: super::ratio(hs.evicted_per_call, bs.evicted_per_call),
            drain_ratio: super::ratio(hd.evicted_per_call, bd.evicted_per_call),
            helper_entry_ns,
            margin_ns,
            helper_p99_quiet_overrun_ns: helper_p99,
            bpfscan_p99_quiet_overrun_ns: p99(bo),
            helper_p99_drain_overrun_ns: p99(hd),
            bpfscan_p99_drain_overrun_ns: p99(bd),
            helper_p99_sparse_overrun_ns: sparse_of(Helper),
            bpfscan_p99_sparse_overrun_ns: sparse_of(Bpfscan),
            helper_worst_quiet_overrun_ns: overrun(ho.measured.worst_quiet_call_ns, ho.measured.timeout_ns),
            helper_worst_overrun_ns: [hs, hd, ho].into_iter().map(worst).fold(0.0, f64::max),
            within_margin: ho.measured.quiet_calls > 0 && helper_p99 <= margin_ns,
        };
    }

    /// The helper's worst p99 overrun of quiet calls over the dense
    /// (preallocated), drained and sparse maps of this size.
    pub fn helper_worst_p99_overrun_ns(&self) -> f64 {
        let v = &self.versus;
        v.helper_p99_quiet_overrun_ns.max(v.helper_p99_drain_overrun_ns).max(v.helper_p99_sparse_overrun_ns.unwrap_or(0.0))
    }
}

impl Scan {
    pub fn new(measured: ScanResult) -> Scan {
        let ScanResult { max_age_ns, sizes } = measured;
        Scan { max_age_ns, sizes: sizes.into_iter().map(SizeReport::new).collect() }
    }
}

pub fn agent_args(short: bool, timeout_us: u64) -> Vec<String> {
    let (sizes, reps) = if short { ("1024,16384", 1) } else { ("1024,16384,262144", 3) };
    ["scan", "--sizes", sizes, "--reps", &reps.to_string(), "--timeout-us", &timeout_us.to_string()]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(method: Method, p99: u64, worst: u64, in_calls_ns: u64, evicted: u64) -> Sweep {
        Sweep {
            method,
            timeout_ns: 100_000,
            rounds: 1,
            calls: 10,
            complete: true,
            stalled: false,
            evicted,
            left: 0,
            in_calls_ns,
            wall_ns: in_calls_ns,
            timeouts: 9,
            p50_call_ns: 100_000,
            p99_call_ns: worst,
            worst_call_ns: worst,
            over_budget: 9,
            quiet_calls: 9,
            p99_quiet_call_ns: p99,
            worst_quiet_call_ns: p99,
        }
    }

    #[test]
    fn ratios_and_margin() {
        use Method::{Bpfscan, Helper};
        let tp = |method, ns| Throughput { method, calls_ns: vec![ns, ns + 10, ns - 10], evicted: 512, visited: 1024, left: 512 };
        let s = SizeReport::new(SizeResult {
            size: 1024,
            stale: 512,
            throughput: vec![tp(Helper, 1_024_000), tp(Bpfscan, 512_000)],
            sweep: vec![sweep(Helper, 110_000, 300_000, 2_000_000, 512), sweep(Bpfscan, 120_000, 130_000, 1_000_000, 64)],
            drain: vec![sweep(Helper, 110_000, 150_000, 2_000_000, 1024), sweep(Bpfscan, 120_000, 130_000, 1_000_000, 1024)],
            // preallocated: helper p99 overrun 10 us; bpfscan: 20 us
            overrun: vec![sweep(Helper, 110_000, 150_000, 2_000_000, 512), sweep(Bpfscan, 120_000, 130_000, 1_000_000, 64)],
            sparse: vec![sweep(Helper, 104_000, 150_000, 2_000_000, 16), sweep(Bpfscan, 900_000, 900_000, 1_000_000, 16)],
        });
        let v = &s.versus;
        assert_eq!(s.throughput[0].median_ns, 1_024_000);
        assert!((s.throughput[0].scanned_per_ms - 1000.0).abs() < 1e-9);
        assert!((v.throughput_ratio - 0.5).abs() < 1e-9, "helper half as fast: {}", v.throughput_ratio);
        assert!((v.sweep_ratio - 8.0).abs() < 1e-9, "512 vs 64 in 10 calls each: {}", v.sweep_ratio);
        assert!((v.drain_ratio - 1.0).abs() < 1e-9, "1024 in 10 calls each: {}", v.drain_ratio);
        assert!((s.sweep[0].evicted_per_ms - 256.0).abs() < 1e-9);
        assert!((v.helper_entry_ns - 1000.0).abs() < 1e-9);
        assert!((v.margin_ns - 36_000.0).abs() < 1e-9, "16 entries + 20% of 100 us: {}", v.margin_ns);
        assert_eq!(v.bpfscan_p99_quiet_overrun_ns, 20_000.0);
        assert_eq!(v.helper_worst_overrun_ns, 200_000.0, "the worst of all three helper sweeps");
        assert!(v.within_margin);
        assert_eq!(v.helper_p99_drain_overrun_ns, 10_000.0);
        assert_eq!(v.helper_p99_sparse_overrun_ns, Some(4_000.0));
        assert_eq!(v.bpfscan_p99_sparse_overrun_ns, Some(800_000.0));
        assert_eq!(s.helper_worst_p99_overrun_ns(), 10_000.0);
    }

    /// What the agent prints for `bench scan --sizes 1024,16384` (no sparse
    /// member below the largest size), as the host reads and reports it.
    #[test]
    fn parses_the_agents_line_and_keeps_the_report_flat() {
        let sweep = |m: &str, evicted: u64| {
            serde_json::json!({"method": m, "timeout_ns": 100000, "rounds": 1, "calls": 8, "complete": true, "stalled": false,
                "evicted": evicted, "left": 0, "in_calls_ns": 800000, "wall_ns": 900000, "timeouts": 7, "p50_call_ns": 100100,
                "p99_call_ns": 104000, "worst_call_ns": 104000, "over_budget": 7, "quiet_calls": 8,
                "p99_quiet_call_ns": 103000, "worst_quiet_call_ns": 103500})
        };
        let size = |n: u64, sparse: bool| {
            let tp = |m: &str, ns: u64| serde_json::json!({"method": m, "calls_ns": [ns], "evicted": n / 2, "visited": n, "left": n / 2});
            let mut z = serde_json::json!({"size": n, "stale": n / 2,
                "throughput": [tp("helper", 50 * n), tp("bpfscan", 100 * n)],
                "sweep": [sweep("helper", n / 2), sweep("bpfscan", n / 4)],
                "drain": [sweep("helper", n), sweep("bpfscan", n)],
                "overrun": [sweep("helper", n / 2), sweep("bpfscan", n / 2)]});
            if sparse {
                z["sparse"] = serde_json::json!([sweep("helper", 16), sweep("bpfscan", 16)]);
            }
            z
        };
        let line = serde_json::json!({"max_age_ns": 1000000000u64, "sizes": [size(1024, false), size(16384, true)]}).to_string();
        let scan = Scan::new(serde_json::from_str::<ScanResult>(&line).unwrap());
        let z = &scan.sizes[0];
        assert_eq!(z.throughput_of(Method::Bpfscan).unwrap().median_ns, 102_400);
        assert!((z.versus.throughput_ratio - 2.0).abs() < 1e-9, "{:?}", z.versus);
        assert!((z.versus.sweep_ratio - 2.0).abs() < 1e-9, "{:?}", z.versus);
        assert_eq!(z.versus.helper_p99_sparse_overrun_ns, None);
        assert_eq!(scan.sizes[1].versus.helper_p99_sparse_overrun_ns, Some(3_000.0));
        // the report keeps every agent field inline, beside what the host derived
        let report = serde_json::to_value(&scan).unwrap();
        let t = &report["sizes"][0]["throughput"][0];
        assert_eq!((&t["method"], &t["visited"], &t["median_ns"]), (&"helper".into(), &1024.into(), &51_200.into()));
        let w = &report["sizes"][1]["sparse"][1];
        assert_eq!((&w["method"], &w["p99_quiet_call_ns"], &w["evicted_per_call"]), (&"bpfscan".into(), &103000.into(), &2.0.into()));
        assert_eq!(report["sizes"][0]["sparse"], serde_json::json!([]), "written, empty, below the largest size");
        assert!(report["sizes"][0]["versus"]["within_margin"].is_boolean());
        let back: Scan = serde_json::from_value(report).unwrap();
        assert_eq!(back.sizes[1].sparse[0].measured, scan.sizes[1].sparse[0].measured);
    }
}
