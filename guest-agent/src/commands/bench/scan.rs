//! scx_bpf_map_scan_timeout against bpf_for_each_map_elem eviction (track.h's
//! bpfscan), on maps of 1k/16k/256k entries with every other key stale.
//!
//! - throughput: one call with an unbounded budget over a full map, so both
//!   visit every entry once: entries scanned and evicted per ms.
//! - sweep: calls with the cleanup budget (100 us by default) until every
//!   stale entry is gone, as a scheduler's dispatch would make them. The
//!   helper resumes at its cursor; bpfscan restarts at the head each call, so
//!   once the fresh entries at the head fill its budget it stops making
//!   progress ("stalled"). Records the worst single call against the budget.
//! - drain: the same budgeted calls on a map whose entries are all stale.
//!   bpfscan deletes the head of the map first, so each later call walks
//!   more empty buckets before its callback (where its clock check is) runs.
//! - overrun: the sweep again on preallocated maps, whose frees raise no
//!   irq_work inside the call, so a call no outside interrupt hit shows the
//!   scan's own overrun; bpfscan's is the environment's floor.
//! - sparse: the largest map holding only a few stale entries, so nearly
//!   every bucket is empty: the helper reads its clock between empty
//!   buckets too; bpfscan only in its callback, i.e. at an entry.
//!
//! The helper caps one call at 1 ms, so its "unbounded" throughput is one
//! whole pass made of as many calls as it takes, their durations summed.

use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use clap::Args;
use scx_contract::bench::{Method, ScanResult, SizeResult, Sweep, Throughput};

use super::fixture::{self, Call, Fixture};
use crate::commands::scan_bound::pass_bound;

const ETIMEDOUT: i32 = 110;

#[derive(Args)]
pub struct ScanArgs {
    /// map sizes, comma-separated (each one of 1024, 16384, 262144)
    #[arg(long, value_delimiter = ',', default_value = "1024,16384,262144")]
    pub sizes: Vec<u32>,
    /// budget of one call in the sweep, microseconds (config cleanup.timeout_us)
    #[arg(long, default_value_t = 100)]
    pub timeout_us: u64,
    /// unbounded throughput calls per method and size
    #[arg(long, default_value_t = 3)]
    pub reps: u32,
    /// bpfscan: consecutive calls evicting nothing before the sweep counts as stalled
    #[arg(long, default_value_t = 50)]
    pub stall_calls: u32,
    /// give up a sweep after this many seconds (it is then reported incomplete)
    #[arg(long, default_value_t = 60)]
    pub sweep_limit_s: u64,
    /// overrun sweeps repeat until they made this many calls (for a steady p99)
    #[arg(long, default_value_t = 1000)]
    pub overrun_calls: usize,
}

/// Entries older than this are evicted: stale ones were last seen at 1 ns.
const MAX_AGE_NS: u64 = 1_000_000_000;
/// "Unbounded": no full pass takes this long.
const UNBOUNDED_NS: u64 = 600 * 1_000_000_000;

/// Entries in the sparse map: a handful in 256k buckets.
const SPARSE_ENTRIES: u32 = 16;

/// The calls a helper pass over a `size` map may take (its buckets:
/// max_entries rounded up to a power of two, as hashtab sizes them).
fn helper_bound(size: u32) -> u64 {
    pass_bound(size.next_power_of_two() as u64, size as u64)
}

/// Finish the helper's current pass without evicting anything, so the next
/// call starts a pass at the first bucket.
fn helper_to_pass_start(f: &mut Fixture, size: u32) -> Result<()> {
    for _ in 0..helper_bound(size) {
        if f.call(Method::Helper, size, UNBOUNDED_NS, u64::MAX)?.ret == 0 {
            return Ok(());
        }
    }
    bail!("helper at {size}: no pass ended within {} calls", helper_bound(size))
}

fn throughput(f: &mut Fixture, m: Method, size: u32, reps: u32) -> Result<Throughput> {
    let mut t = Throughput { method: m, calls_ns: Vec::new(), evicted: 0, visited: size as u64, left: 0 };
    for _ in 0..reps {
        if m == Method::Helper {
            helper_to_pass_start(f, size)?;
        }
        let stale = f.fill(size)?;
        let (mut ns, mut evicted, mut calls) = (0u64, 0u64, 0u64);
        loop {
            let c = f.call(m, size, UNBOUNDED_NS, MAX_AGE_NS)?;
            ns += c.ns;
            evicted += c.evicted as u64;
            calls += 1;
            if m == Method::Bpfscan {
                ensure!(c.ret == 0, "bpfscan at {size}: an unbounded call returned {}", c.ret);
                ensure!(c.visited == size, "bpfscan at {size}: visited {} entries", c.visited);
            }
            match c.ret {
                0 => break,
                r if r == -ETIMEDOUT && calls < helper_bound(size) => {}
                r => bail!("{m:?} at {size}: call {calls} of an unbounded pass returned {r}"),
            }
        }
        ensure!(evicted == stale, "{m:?} at {size}: evicted {evicted} of {stale} stale entries");
        t.calls_ns.push(ns);
        t.evicted = evicted;
        t.left = f.count(size)?;
        ensure!(t.left == size as u64 - stale, "{m:?} at {size}: {} entries left, want {}", t.left, size as u64 - stale);
    }
    Ok(t)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

/// What a sweep is made of.
#[derive(Clone, Copy)]
struct Kind {
    /// every entry stale (drain) rather than every other one
    all_stale: bool,
    /// a quiet call must have taken no irq_work either (preallocated maps)
    strict: bool,
    /// repeat the sweep (refilled) until this many calls were made, so a
    /// small map still gives enough calls for a steady p99
    min_calls: usize,
    /// only this many (stale) entries in the map
    sparse: Option<u32>,
}

/// The calls of one sweep: (durations, quiet durations, evicted, timeouts, stalled).
type Round = (Vec<u64>, Vec<u64>, u64, u64, bool);

fn round(f: &mut Fixture, m: Method, size: u32, a: &ScanArgs, k: Kind, stale: u64, limit: Instant) -> Result<Round> {
    let timeout_ns = a.timeout_us * 1000;
    let helper_bound = helper_bound(size);
    let (mut durations, mut quiet) = (Vec::new(), Vec::new());
    let (mut evicted, mut timeouts, mut idle) = (0u64, 0u64, 0u32);
    loop {
        let c: Call = f.call(m, size, timeout_ns, MAX_AGE_NS)?;
        if c.ret != 0 && c.ret != -ETIMEDOUT {
            bail!("{m:?} sweep at {size}: a call returned {}", c.ret);
        }
        durations.push(c.ns);
        if c.irqs == 0 && (!k.strict || c.irq_works == 0) {
            quiet.push(c.ns);
        }
        evicted += c.evicted as u64;
        timeouts += (c.ret == -ETIMEDOUT) as u64;
        idle = if c.evicted == 0 { idle + 1 } else { 0 };
        let done = match m {
            // one whole pass from the start of the map, ended by ret 0
            Method::Helper => c.ret == 0,
            Method::Bpfscan => evicted == stale,
        };
        if done {
            return Ok((durations, quiet, evicted, timeouts, false));
        }
        if m == Method::Helper && durations.len() as u64 > helper_bound {
            bail!("helper sweep at {size}: no complete pass within {helper_bound} calls (cursor starves)");
        }
        if m == Method::Bpfscan && idle >= a.stall_calls {
            return Ok((durations, quiet, evicted, timeouts, true));
        }
        if Instant::now() > limit {
            return Ok((durations, quiet, evicted, timeouts, false));
        }
    }
}

fn sweep(f: &mut Fixture, m: Method, size: u32, a: &ScanArgs, k: Kind) -> Result<Sweep> {
    let start = Instant::now();
    let limit = start + Duration::from_secs(a.sweep_limit_s);
    let (mut durations, mut quiet) = (Vec::new(), Vec::new());
    let (mut evicted, mut timeouts, mut rounds, mut complete, mut stalled, mut left) = (0, 0, 0u32, true, false, 0);
    while rounds == 0 || (durations.len() < k.min_calls && rounds < 500 && Instant::now() < limit) {
        let (stale, filled) = match k.sparse {
            Some(n) => (f.fill_sparse(size, n)?, n as u64),
            None if k.all_stale => (f.fill_all_stale(size)?, size as u64),
            None => (f.fill(size)?, size as u64),
        };
        let (d, q, e, t, st) = round(f, m, size, a, k, stale, limit)?;
        left = f.count(size)?;
        ensure!(left == filled - e, "{m:?} sweep at {size}: {left} left after evicting {e}");
        complete &= e == stale;
        stalled |= st;
        (evicted, timeouts, rounds) = (evicted + e, timeouts + t, rounds + 1);
        durations.extend(d);
        quiet.extend(q);
    }
    let timeout_ns = a.timeout_us * 1000;
    let mut sorted = durations.clone();
    sorted.sort_unstable();
    quiet.sort_unstable();
    Ok(Sweep {
        method: m,
        timeout_ns,
        rounds,
        calls: durations.len() as u64,
        complete,
        stalled,
        evicted,
        left,
        in_calls_ns: durations.iter().sum(),
        wall_ns: start.elapsed().as_nanos() as u64,
        timeouts,
        p50_call_ns: percentile(&sorted, 0.5),
        p99_call_ns: percentile(&sorted, 0.99),
        worst_call_ns: sorted.last().copied().unwrap_or(0),
        over_budget: durations.iter().filter(|d| **d > timeout_ns).count() as u64,
        quiet_calls: quiet.len() as u64,
        p99_quiet_call_ns: percentile(&quiet, 0.99),
        worst_quiet_call_ns: quiet.last().copied().unwrap_or(0),
    })
}

pub fn run(a: &ScanArgs) -> Result<ScanResult> {
    super::pin_to_cpu0();
    let mut storage = MaybeUninit::uninit();
    let mut f = fixture::open(&mut storage, false)?;
    let mut pre_storage = MaybeUninit::uninit();
    let mut pre = fixture::open(&mut pre_storage, true)?;
    let mut sizes = Vec::new();
    for (i, &size) in a.sizes.iter().enumerate() {
        f.clear(size)?;
        // Alternate which method goes first, so drift does not favour one.
        let order = if i % 2 == 0 { [Method::Helper, Method::Bpfscan] } else { [Method::Bpfscan, Method::Helper] };
        let mut r = SizeResult {
            size,
            stale: size as u64 / 2,
            throughput: Vec::new(),
            sweep: Vec::new(),
            drain: Vec::new(),
            overrun: Vec::new(),
            sparse: Vec::new(),
        };
        for m in order {
            eprintln!("bench scan: {m:?} at {size} entries: throughput");
            r.throughput.push(throughput(&mut f, m, size, a.reps)?);
        }
        for m in order {
            eprintln!("bench scan: {m:?} at {size} entries: sweep with a {} us budget", a.timeout_us);
            r.sweep.push(sweep(&mut f, m, size, a, Kind { all_stale: false, strict: false, min_calls: 0, sparse: None })?);
        }
        for m in order {
            eprintln!("bench scan: {m:?} at {size} entries: all stale, {} us budget", a.timeout_us);
            r.drain.push(sweep(&mut f, m, size, a, Kind { all_stale: true, strict: false, min_calls: 0, sparse: None })?);
        }
        if size == *a.sizes.iter().max().unwrap_or(&size) {
            for m in order {
                eprintln!("bench scan: {m:?} at {size} buckets holding {SPARSE_ENTRIES} entries, {} us budget", a.timeout_us);
                let k = Kind { all_stale: true, strict: false, min_calls: a.overrun_calls / 4, sparse: Some(SPARSE_ENTRIES) };
                r.sparse.push(sweep(&mut f, m, size, a, k)?);
            }
        }
        f.clear(size)?;
        pre.clear(size)?;
        for m in order {
            eprintln!("bench scan: {m:?} at {size} entries: preallocated, {} us budget", a.timeout_us);
            r.overrun.push(sweep(&mut pre, m, size, a, Kind { all_stale: false, strict: true, min_calls: a.overrun_calls, sparse: None })?);
        }
        pre.clear(size)?;
        sizes.push(r);
    }
    Ok(ScanResult { max_age_ns: MAX_AGE_NS, sizes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(percentile(&v, 0.5), 6);
        assert_eq!(percentile(&v, 0.99), 10);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
