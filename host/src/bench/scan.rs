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
//! clock every SCAN_CLOCK_BATCH (16) buckets or entries, so it may pass its
//! budget by up to 16 entries' cost; on top, 20% of the budget for what a
//! guest cannot see or avoid (under TCG: the other vCPU's turn, the host
//! preempting QEMU). Judged on the p99 of quiet calls (no interrupt at all)
//! on the dense preallocated, the drained and the sparse map, against the
//! issue's 20 us and against that margin; the pure-BPF loop's p99 and every
//! worst case are reported beside it.

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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Throughput {
    /// helper | bpfscan
    pub method: String,
    /// each unbounded call's duration, ns (guest clock)
    pub calls_ns: Vec<u64>,
    pub evicted: u64,
    pub visited: u64,
    pub left: u64,
    #[serde(default)]
    pub median_ns: u64,
    #[serde(default)]
    pub scanned_per_ms: f64,
    #[serde(default)]
    pub evicted_per_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sweep {
    pub method: String,
    pub timeout_ns: u64,
    /// sweeps made, each from a refilled map (overrun sweeps repeat to 1000 calls)
    pub rounds: u32,
    pub calls: u64,
    pub complete: bool,
    pub stalled: bool,
    pub evicted: u64,
    pub left: u64,
    pub in_calls_ns: u64,
    pub wall_ns: u64,
    pub timeouts: u64,
    pub p50_call_ns: u64,
    pub p99_call_ns: u64,
    pub worst_call_ns: u64,
    pub over_budget: u64,
    pub quiet_calls: u64,
    pub p99_quiet_call_ns: u64,
    pub worst_quiet_call_ns: u64,
    /// evicted per ms spent in the calls
    #[serde(default)]
    pub evicted_per_ms: f64,
    /// evicted per call (each call has the same budget)
    #[serde(default)]
    pub evicted_per_call: f64,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SizeResult {
    pub size: u32,
    pub stale: u64,
    pub throughput: Vec<Throughput>,
    pub sweep: Vec<Sweep>,
    /// budgeted sweeps of an all-stale map
    pub drain: Vec<Sweep>,
    /// budgeted sweeps (half stale) of a preallocated map, to >= 1000 calls
    pub overrun: Vec<Sweep>,
    /// budgeted sweeps of the map holding only 16 stale entries (largest size)
    #[serde(default)]
    pub sparse: Vec<Sweep>,
    #[serde(default)]
    pub versus: Versus,
}

/// The agent's `bench scan` output, plus the comparisons.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scan {
    pub max_age_ns: u64,
    pub sizes: Vec<SizeResult>,
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

impl SizeResult {
    pub fn throughput_of(&self, method: &str) -> Option<&Throughput> {
        self.throughput.iter().find(|t| t.method == method)
    }
    pub fn sweep_of(&self, method: &str) -> Option<&Sweep> {
        self.sweep.iter().find(|t| t.method == method)
    }
    pub fn drain_of(&self, method: &str) -> Option<&Sweep> {
        self.drain.iter().find(|t| t.method == method)
    }
    pub fn overrun_of(&self, method: &str) -> Option<&Sweep> {
        self.overrun.iter().find(|t| t.method == method)
    }

    fn derive(&mut self) {
        for t in &mut self.throughput {
            t.median_ns = median(&t.calls_ns);
            t.scanned_per_ms = super::ratio(t.visited as f64, t.median_ns as f64 / 1e6);
            t.evicted_per_ms = super::ratio(t.evicted as f64, t.median_ns as f64 / 1e6);
        }
        for s in self.sweep.iter_mut().chain(self.drain.iter_mut()).chain(self.overrun.iter_mut()).chain(self.sparse.iter_mut()) {
            s.evicted_per_ms = super::ratio(s.evicted as f64, s.in_calls_ns as f64 / 1e6);
            s.evicted_per_call = super::ratio(s.evicted as f64, s.calls as f64);
        }
        let (Some(ht), Some(bt), Some(hs), Some(bs), Some(hd), Some(bd), Some(ho), Some(bo)) = (
            self.throughput_of("helper"),
            self.throughput_of("bpfscan"),
            self.sweep_of("helper"),
            self.sweep_of("bpfscan"),
            self.drain_of("helper"),
            self.drain_of("bpfscan"),
            self.overrun_of("helper"),
            self.overrun_of("bpfscan"),
        ) else {
            return;
        };
        let helper_entry_ns = super::ratio(ht.median_ns as f64, ht.visited as f64);
        let bpfscan_p99 = overrun(bo.p99_quiet_call_ns, bo.timeout_ns);
        let helper_p99 = overrun(ho.p99_quiet_call_ns, ho.timeout_ns);
        let margin_ns = SCAN_CLOCK_BATCH * helper_entry_ns + ENV_ALLOWANCE * ho.timeout_ns as f64;
        let sparse_of = |m: &str| self.sparse.iter().find(|w| w.method == m).map(|w| overrun(w.p99_quiet_call_ns, w.timeout_ns));
        self.versus = Versus {
            throughput_ratio: super::ratio(ht.scanned_per_ms, bt.scanned_per_ms),
            sweep_ratio: super::ratio(hs.evicted_per_call, bs.evicted_per_call),
            drain_ratio: super::ratio(hd.evicted_per_call, bd.evicted_per_call),
            helper_entry_ns,
            margin_ns,
            helper_p99_quiet_overrun_ns: helper_p99,
            bpfscan_p99_quiet_overrun_ns: bpfscan_p99,
            helper_p99_drain_overrun_ns: overrun(hd.p99_quiet_call_ns, hd.timeout_ns),
            bpfscan_p99_drain_overrun_ns: overrun(bd.p99_quiet_call_ns, bd.timeout_ns),
            helper_p99_sparse_overrun_ns: sparse_of("helper"),
            bpfscan_p99_sparse_overrun_ns: sparse_of("bpfscan"),
            helper_worst_quiet_overrun_ns: overrun(ho.worst_quiet_call_ns, ho.timeout_ns),
            helper_worst_overrun_ns: [hs, hd, ho].iter().map(|w| overrun(w.worst_call_ns, w.timeout_ns)).fold(0.0, f64::max),
            within_margin: ho.quiet_calls > 0 && helper_p99 <= margin_ns,
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
    pub fn derive(&mut self) {
        for s in &mut self.sizes {
            s.derive();
        }
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

    fn sweep(method: &str, p99: u64, worst: u64, in_calls_ns: u64, evicted: u64) -> Sweep {
        Sweep {
            method: method.into(),
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
            evicted_per_ms: 0.0,
            evicted_per_call: 0.0,
        }
    }

    #[test]
    fn ratios_and_margin() {
        let tp = |m: &str, ns| Throughput {
            method: m.into(),
            calls_ns: vec![ns, ns + 10, ns - 10],
            evicted: 512,
            visited: 1024,
            left: 512,
            median_ns: 0,
            scanned_per_ms: 0.0,
            evicted_per_ms: 0.0,
        };
        let mut s = SizeResult {
            size: 1024,
            stale: 512,
            throughput: vec![tp("helper", 1_024_000), tp("bpfscan", 512_000)],
            sweep: vec![sweep("helper", 110_000, 300_000, 2_000_000, 512), sweep("bpfscan", 120_000, 130_000, 1_000_000, 64)],
            drain: vec![sweep("helper", 110_000, 150_000, 2_000_000, 1024), sweep("bpfscan", 120_000, 130_000, 1_000_000, 1024)],
            // preallocated: helper p99 overrun 10 us; bpfscan: 20 us
            overrun: vec![sweep("helper", 110_000, 150_000, 2_000_000, 512), sweep("bpfscan", 120_000, 130_000, 1_000_000, 64)],
            sparse: vec![sweep("helper", 104_000, 150_000, 2_000_000, 16), sweep("bpfscan", 900_000, 900_000, 1_000_000, 16)],
            versus: Versus::default(),
        };
        s.derive();
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
}
