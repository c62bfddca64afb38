//! `scx-guest-agent bench` output, read by `scx-vmctl bench`.
//!
//! Each `bench` subcommand prints one JSON object on stdout: `bench count` a
//! [`CountResult`], `bench sampler` a [`SamplerResult`], `bench scan` a
//! [`ScanResult`]. The host parses exactly these types, then derives its
//! ratios and goals from them (host/src/bench/); docs/bench.md describes the
//! report that results. Times are guest-clock: under single-threaded TCG one
//! host thread runs every vCPU in turn, so a duration includes time the vCPU
//! waited. Units are in the names: `_ns`, `_ms`, `_s`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Summary of repeated timings of one thing, in ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// repetitions timed
    pub n: usize,
    /// median duration, ms (the mean of the middle two for an even n)
    pub median_ms: f64,
    /// mean duration, ms
    pub mean_ms: f64,
    /// shortest, ms
    pub min_ms: f64,
    /// longest, ms
    pub max_ms: f64,
}

impl Timings {
    /// The summary of durations in ns (all zero when there are none).
    pub fn of_ns(ns: &[u64]) -> Timings {
        let mut v: Vec<f64> = ns.iter().map(|n| *n as f64 / 1e6).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n == 0 {
            0.0
        } else if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Timings {
            n,
            median_ms: median,
            mean_ms: if n == 0 { 0.0 } else { v.iter().sum::<f64>() / n as f64 },
            min_ms: v.first().copied().unwrap_or(0.0),
            max_ms: v.last().copied().unwrap_or(0.0),
        }
    }
}

/// One way of counting a map's entries in `bench count`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Way {
    /// entries this way counted (in the last repetition)
    pub count: u64,
    /// duration of one count, from start to the number in hand
    pub timings: Timings,
}

/// `bench count`: counting the entries of a filled hash map, the agent's way
/// against `bpftool map dump` plus counting its output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountResult {
    /// entries in the map (its max_entries, every key present)
    pub entries: u32,
    /// the map's BPF id (what `bpftool map dump id` is given)
    pub map_id: u32,
    /// maps::Counter: BPF_MAP_LOOKUP_BATCH, what the sampler does every interval
    pub agent_batch: Way,
    /// maps::Counter's fallback: one BPF_MAP_GET_NEXT_KEY per entry
    pub agent_next_key: Way,
    /// `bpftool map dump id N`, timed from spawn to its output counted
    pub bpftool: Way,
    /// the kernel's own count, bpf_map_sum_elem_count from an iter/bpf_map
    /// program: the same cost at any map size
    pub kernel_elem_count: Way,
    /// size of one bpftool dump's output, bytes
    pub bpftool_output_bytes: u64,
}

/// `bench sampler`: what sampling costs with a scheduler loaded and its
/// tracked_tasks map grown, sampled at the run's interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplerResult {
    /// the loaded scheduler's sched_ext ops name (e.g. simple_control)
    pub ops_name: String,
    /// seconds between samples
    pub interval_s: f64,
    /// samples taken
    pub samples: u32,
    /// fewest entries the map held at a sample
    pub map_entries_min: u64,
    /// most entries the map held at a sample
    pub map_entries_max: u64,
    /// CPU time of one sample, the sampling thread's (CLOCK_THREAD_CPUTIME_ID)
    pub cpu_per_sample: Timings,
    /// wall time of one sample
    pub wall_per_sample: Timings,
    /// CPU time of the whole agent process from the first sample to the end
    /// of the last interval, ns (anything it did between samples included)
    pub process_cpu_ns: u64,
    /// wall time of that span, ns
    pub span_ns: u64,
    /// CPU time of counting the map alone (the main part of a sample),
    /// measured after the span
    pub count_cpu: Timings,
}

/// Which scan a `bench scan` call makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// scx_bpf_map_scan_timeout, which resumes at its cursor
    Helper,
    /// pure BPF: bpf_for_each_map_elem with a time budget (track.h's
    /// bpfscan), which restarts at the head of the map each call
    Bpfscan,
}

impl Method {
    /// The JSON word: "helper" | "bpfscan".
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Helper => "helper",
            Method::Bpfscan => "bpfscan",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One method's unbounded passes over a full map (half of it stale).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub method: Method,
    /// per repetition, ns in the calls of one whole pass (guest clock,
    /// measured in BPF). The helper caps a call at 1 ms, so its pass may be
    /// several calls, their durations summed; bpfscan's is one call.
    pub calls_ns: Vec<u64>,
    /// entries one pass evicted (== the stale ones)
    pub evicted: u64,
    /// entries one pass visited: the map's size (checked for bpfscan)
    pub visited: u64,
    /// entries left after the pass (== size - stale)
    pub left: u64,
}

/// Calls of one method with the cleanup budget until every stale entry is
/// gone, as a scheduler's dispatch would make them; possibly several rounds,
/// each from a refilled map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub method: Method,
    /// budget of one call, ns
    pub timeout_ns: u64,
    /// sweeps made (each from a refilled map); only the overrun and sparse
    /// sweeps repeat, until they made enough calls for a steady p99
    pub rounds: u32,
    /// calls made, over all rounds
    pub calls: u64,
    /// every stale entry evicted, in every round
    pub complete: bool,
    /// bpfscan: stopped after `--stall-calls` calls in a row evicted nothing
    pub stalled: bool,
    /// entries evicted, over all rounds
    pub evicted: u64,
    /// entries left after the last round
    pub left: u64,
    /// sum of the calls' own durations, ns (guest clock, measured in BPF)
    pub in_calls_ns: u64,
    /// wall time of the whole sweep including the BPF_PROG_RUN syscalls, ns
    pub wall_ns: u64,
    /// calls that ended on their budget (-ETIMEDOUT)
    pub timeouts: u64,
    /// median duration of a call, ns
    pub p50_call_ns: u64,
    /// 99th percentile duration of a call, ns
    pub p99_call_ns: u64,
    /// longest call, ns
    pub worst_call_ns: u64,
    /// calls longer than timeout_ns
    pub over_budget: u64,
    /// calls no outside interrupt hit (nor any irq_work, on preallocated
    /// maps): their overrun is the scan's own
    pub quiet_calls: u64,
    /// 99th percentile duration of a quiet call, ns
    pub p99_quiet_call_ns: u64,
    /// longest quiet call, ns
    pub worst_quiet_call_ns: u64,
}

/// `bench scan` at one map size; each list holds one entry per method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeResult {
    /// the map's max_entries (1024, 16384 or 262144)
    pub size: u32,
    /// stale entries in a half-stale fill (size / 2)
    pub stale: u64,
    /// unbounded passes over the half-stale map
    pub throughput: Vec<Throughput>,
    /// budgeted sweeps of the half-stale map
    pub sweep: Vec<Sweep>,
    /// budgeted sweeps of an all-stale map
    pub drain: Vec<Sweep>,
    /// budgeted sweeps (half stale) of the preallocated map of this size,
    /// repeated to `--overrun-calls` calls
    pub overrun: Vec<Sweep>,
    /// budgeted sweeps of this map holding only a few (16) stale entries,
    /// nearly every bucket empty; the largest size only, absent otherwise
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sparse: Vec<Sweep>,
}

/// `bench scan`: scx_bpf_map_scan_timeout against bpf_for_each_map_elem
/// eviction, per map size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanResult {
    /// entries last seen longer ago than this are stale and evicted, ns
    pub max_age_ns: u64,
    /// one per `--sizes` entry, in that order
    pub sizes: Vec<SizeResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned + PartialEq + fmt::Debug>(v: &T) -> String {
        let text = serde_json::to_string(v).unwrap();
        let back: T = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, v, "{text}");
        text
    }

    /// Written as literals: serde_json (without float_roundtrip) parses
    /// short decimals exactly, not every 17-digit one.
    fn timings(n: usize, median_ms: f64, mean_ms: f64, min_ms: f64, max_ms: f64) -> Timings {
        Timings { n, median_ms, mean_ms, min_ms, max_ms }
    }

    fn sweep(method: Method, size: u64, evicted: u64, sparse: bool) -> Sweep {
        Sweep {
            method,
            timeout_ns: 100_000,
            rounds: if sparse { 30 } else { 1 },
            calls: 40,
            complete: method == Method::Helper,
            stalled: method == Method::Bpfscan,
            evicted,
            left: size - evicted,
            in_calls_ns: 4_100_000,
            wall_ns: 5_300_000,
            timeouts: 39,
            p50_call_ns: 100_400,
            p99_call_ns: 131_000,
            worst_call_ns: 402_000,
            over_budget: 39,
            quiet_calls: 35,
            p99_quiet_call_ns: 104_000,
            worst_quiet_call_ns: 108_500,
        }
    }

    fn size_result(size: u32, sparse: bool) -> SizeResult {
        let (n, stale) = (size as u64, size as u64 / 2);
        let tp = |method, ns: u64| Throughput { method, calls_ns: vec![ns, ns + 1_500, ns - 700], evicted: stale, visited: n, left: n - stale };
        let both = |evicted_helper, evicted_bpfscan| {
            vec![sweep(Method::Helper, n, evicted_helper, false), sweep(Method::Bpfscan, n, evicted_bpfscan, false)]
        };
        SizeResult {
            size,
            stale,
            throughput: vec![tp(Method::Helper, 61 * n), tp(Method::Bpfscan, 95 * n)],
            sweep: both(stale, stale / 8),
            drain: both(n, n),
            overrun: both(stale, stale / 8),
            sparse: if sparse { vec![sweep(Method::Helper, 16, 16, true), sweep(Method::Bpfscan, 16, 16, true)] } else { Vec::new() },
        }
    }

    #[test]
    fn count_round_trips() {
        let c = CountResult {
            entries: 16384,
            map_id: 42,
            agent_batch: Way { count: 16384, timings: timings(40, 1.25, 1.3125, 1.104, 2.875) },
            agent_next_key: Way { count: 16384, timings: timings(40, 9.5, 9.71, 9.02, 14.3) },
            bpftool: Way { count: 16384, timings: timings(5, 2150.25, 2201.5, 2098.4, 2380.0) },
            kernel_elem_count: Way { count: 16384, timings: timings(40, 0.041, 0.0437, 0.038, 0.112) },
            bpftool_output_bytes: 2_179_072,
        };
        let text = round_trip(&c);
        assert!(text.contains(r#""agent_batch":{"count":16384,"timings":{"n":40,"median_ms":1.25,"#), "{text}");
    }

    #[test]
    fn sampler_round_trips() {
        let s = SamplerResult {
            ops_name: "simple_control".into(),
            interval_s: 2.0,
            samples: 15,
            map_entries_min: 16384,
            map_entries_max: 16391,
            cpu_per_sample: timings(15, 1.8, 1.92, 1.61, 3.04),
            wall_per_sample: timings(15, 2.6, 2.75, 2.2, 4.9),
            process_cpu_ns: 310_000_000,
            span_ns: 30_000_412_000,
            count_cpu: timings(5, 1.2, 1.23, 1.18, 1.31),
        };
        round_trip(&s);
    }

    #[test]
    fn scan_round_trips() {
        let s = ScanResult { max_age_ns: 1_000_000_000, sizes: vec![size_result(1024, false), size_result(262144, true)] };
        let text = round_trip(&s);
        assert!(text.contains(r#""method":"helper""#) && text.contains(r#""method":"bpfscan""#), "{text}");
        // sparse is written only where there is one (the largest size)
        assert_eq!(text.matches(r#""sparse":"#).count(), 1, "{text}");
    }

    #[test]
    fn method_words() {
        assert_eq!(serde_json::to_string(&Method::Bpfscan).unwrap(), r#""bpfscan""#);
        assert_eq!(serde_json::from_str::<Method>(r#""helper""#).unwrap(), Method::Helper);
        assert!(serde_json::from_str::<Method>(r#""Helper""#).is_err());
        assert_eq!(format!("[{:<8}]", Method::Helper), "[helper  ]");
    }

    #[test]
    fn timings_median_and_extremes() {
        let t = Timings::of_ns(&[3_000_000, 1_000_000, 2_000_000, 10_000_000]);
        assert_eq!(t.n, 4);
        assert_eq!(t.median_ms, 2.5);
        assert_eq!(t.min_ms, 1.0);
        assert_eq!(t.max_ms, 10.0);
        assert_eq!(t.mean_ms, 4.0);
        assert_eq!(Timings::of_ns(&[]).n, 0);
    }
}
