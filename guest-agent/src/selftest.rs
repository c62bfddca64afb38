//! `selftest`: the contract of scx_bpf_map_scan_timeout(), checked in the
//! running kernel. Each case fills a map from user space with chosen
//! timestamps, calls the helper through a BPF_PROG_TYPE_SYSCALL program with
//! BPF_PROG_RUN (bpf/selftest/map_scan.bpf.c), and compares what it returned,
//! what it counted and what is left in the map with what the contract says.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapMut, ProgramInput};

use crate::skel::map_scan::{MapScanSkel, MapScanSkelBuilder, OpenMapScanSkel};

const EINVAL: i32 = 22;
const ETIMEDOUT: i32 = 110;
const SEC: u64 = 1_000_000_000;

/// CLOCK_MONOTONIC: what bpf_ktime_get_ns() reads.
fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * SEC + ts.tv_nsec as u64
}

/// "Long ago" for stale entries. A guest a few seconds after boot has a
/// monotonic clock below 10 s, so this is clamped (u64 must not wrap).
fn stale_at(now: u64) -> u64 {
    now.saturating_sub(10 * SEC).max(1)
}

/// The max age the cases pass: well below a stale entry's age, also right
/// after boot, and well above a fresh one's.
fn max_age(now: u64) -> u64 {
    (now / 4).clamp(1_000_000, 5 * SEC)
}

fn entry(last_seen: u64, payload: u64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&last_seen.to_ne_bytes());
    v[8..].copy_from_slice(&payload.to_ne_bytes());
    v
}

/// One helper call's outcome.
#[derive(Debug, Clone, Copy)]
struct Call {
    ret: i32,
    evicted: u32,
    ns: u64,
}

struct Fixture<'o> {
    skel: MapScanSkel<'o>,
}

impl<'o> Fixture<'o> {
    fn call(&mut self, which: &str, timeout_ns: u64, max_age_ns: u64) -> Result<Call> {
        {
            let bss = self.skel.maps.bss_data.as_deref_mut().context("bss is mmapped")?;
            bss.arg_timeout_ns = timeout_ns;
            bss.arg_max_age_ns = max_age_ns;
            bss.out_ret = 0x7fff_ffff; // proves the program ran
        }
        let progs = &self.skel.progs;
        let prog = match which {
            "hash" => &progs.scan_hash,
            "lru" => &progs.scan_lru,
            "array" => &progs.scan_array,
            "small" => &progs.scan_small,
            _ => bail!("no program for {which}"),
        };
        prog.test_run(ProgramInput::default()).with_context(|| format!("BPF_PROG_RUN of scan_{which}"))?;
        let bss = self.skel.maps.bss_data.as_deref().context("bss is mmapped")?;
        ensure!(bss.out_ret != 0x7fff_ffff, "scan_{which} did not run");
        Ok(Call { ret: bss.out_ret, evicted: bss.out_evicted, ns: bss.out_ns })
    }

    fn map(&self, which: &str) -> &MapMut<'o> {
        match which {
            "lru" => &self.skel.maps.lru_map,
            _ => &self.skel.maps.hash_map,
        }
    }

    /// Insert keys [from, to) all last seen at `t`.
    fn fill(&self, which: &str, from: u32, to: u32, t: u64) -> Result<()> {
        let m = self.map(which);
        for k in from..to {
            m.update(&k.to_ne_bytes(), &entry(t, k as u64), MapFlags::ANY)
                .with_context(|| format!("filling {which} map at key {k}"))?;
        }
        Ok(())
    }

    fn keys(&self, which: &str) -> Vec<u32> {
        let mut v: Vec<u32> = self.map(which).keys().map(|k| u32::from_ne_bytes(k[..4].try_into().unwrap())).collect();
        v.sort_unstable();
        v
    }

    fn clear(&self, which: &str) -> Result<()> {
        let m = self.map(which);
        for k in self.keys(which) {
            m.delete(&k.to_ne_bytes())?;
        }
        Ok(())
    }

    /// Call until a pass completes (ret 0); (total evicted, calls, longest call).
    fn sweep(&mut self, which: &str, timeout_ns: u64, max_age_ns: u64, max_calls: u32) -> Result<(u64, u32, u64)> {
        let (mut total, mut longest) = (0u64, 0u64);
        for calls in 1..=max_calls {
            let c = self.call(which, timeout_ns, max_age_ns)?;
            ensure!(c.ret == 0 || c.ret == -ETIMEDOUT, "call {calls} returned {}", c.ret);
            total += c.evicted as u64;
            longest = longest.max(c.ns);
            if c.ret == 0 {
                return Ok((total, calls, longest));
            }
        }
        bail!("no complete pass within {max_calls} calls ({total} evicted so far): the cursor starves part of the map")
    }
}

fn open_fixture<'o>(storage: &'o mut MaybeUninit<libbpf_rs::OpenObject>, keep: &[&str]) -> Result<OpenMapScanSkel<'o>> {
    let mut open = MapScanSkelBuilder::default().open(storage).context("opening the selftest object")?;
    let p = &mut open.progs;
    for (name, prog) in [
        ("scan_hash", &mut p.scan_hash),
        ("scan_lru", &mut p.scan_lru),
        ("scan_array", &mut p.scan_array),
        ("scan_small", &mut p.scan_small),
        ("reject_not_map", &mut p.reject_not_map),
        ("reject_null_evicted", &mut p.reject_null_evicted),
    ] {
        prog.set_autoload(keep.contains(&name));
    }
    Ok(open)
}

/// A program that must not load: Ok(the verifier's last words) if refused.
fn expect_rejected(prog: &str) -> Result<String> {
    let mut storage = MaybeUninit::uninit();
    let open = open_fixture(&mut storage, &[prog])?;
    crate::verifier::take();
    let loaded = open.load().is_ok();
    if loaded {
        bail!("the verifier accepted {prog}");
    }
    let log = crate::verifier::take();
    // The whole log: 7.x ends it with a summary and advice, the reason
    // the verifier gave stands earlier.
    Ok(log)
}

type Case = fn(&mut Fixture) -> Result<String>;

fn full_pass(f: &mut Fixture) -> Result<String> {
    let now = now_ns();
    f.fill("hash", 0, 100, stale_at(now))?;
    f.fill("hash", 100, 200, now)?;
    let c = f.call("hash", SEC, max_age(now))?;
    ensure!(c.ret == 0, "returned {}, want 0 (a full pass)", c.ret);
    ensure!(c.evicted == 100, "evicted {}, want the 100 stale entries", c.evicted);
    let left = f.keys("hash");
    ensure!(left == (100..200).collect::<Vec<_>>(), "left {} entries, want exactly the 100 fresh ones", left.len());
    f.clear("hash")?;
    Ok(format!("100 stale evicted, 100 fresh kept, {} us", c.ns / 1000))
}

fn lru_hash(f: &mut Fixture) -> Result<String> {
    let now = now_ns();
    f.fill("lru", 0, 60, stale_at(now))?;
    f.fill("lru", 60, 100, now)?;
    let c = f.call("lru", SEC, max_age(now))?;
    ensure!(c.ret == 0 && c.evicted == 60, "returned {} evicting {}, want 0 evicting 60", c.ret, c.evicted);
    let left = f.keys("lru");
    ensure!(left == (60..100).collect::<Vec<_>>(), "left {:?}", left);
    f.clear("lru")?;
    Ok("LRU_HASH: 60 stale evicted, 40 fresh kept".into())
}

fn array_is_einval(f: &mut Fixture) -> Result<String> {
    let c = f.call("array", SEC, 0)?;
    ensure!(c.ret == -EINVAL && c.evicted == 0, "returned {} evicting {}, want -EINVAL", c.ret, c.evicted);
    Ok("ARRAY map: -EINVAL".into())
}

fn small_value_is_einval(f: &mut Fixture) -> Result<String> {
    f.skel.maps.small_map.update(&1u32.to_ne_bytes(), &0u32.to_ne_bytes(), MapFlags::ANY)?;
    let c = f.call("small", SEC, 0)?;
    ensure!(c.ret == -EINVAL && c.evicted == 0, "returned {} evicting {}, want -EINVAL", c.ret, c.evicted);
    ensure!(f.skel.maps.small_map.lookup(&1u32.to_ne_bytes(), MapFlags::ANY)?.is_some(), "the entry was touched");
    Ok("4-byte values: -EINVAL, map untouched".into())
}

fn empty_map(f: &mut Fixture) -> Result<String> {
    f.clear("hash")?;
    let c = f.call("hash", SEC, 0)?;
    ensure!(c.ret == 0 && c.evicted == 0, "returned {} evicting {}, want 0 and 0", c.ret, c.evicted);
    Ok("empty map: 0, nothing evicted".into())
}

fn tiny_timeout_and_cursor(f: &mut Fixture) -> Result<String> {
    const N: u32 = 50_000;
    let t = Instant::now();
    let now = now_ns();
    f.fill("hash", 0, N, stale_at(now))?;
    let fill_ms = t.elapsed().as_millis();
    let first = f.call("hash", 1_000, max_age(now))?;
    ensure!(first.ret == -ETIMEDOUT, "first call returned {}, want -ETIMEDOUT", first.ret);
    ensure!(first.evicted > 0 && first.evicted < N, "first call evicted {}, want a partial count", first.evicted);
    let rest_bound = N / 8 + 2; // at least 8 entries per call (SCAN_MIN_BATCH)
    let (rest, calls, longest) = f.sweep("hash", 1_000, max_age(now), rest_bound)?;
    let total = first.evicted as u64 + rest;
    ensure!(total == N as u64, "evicted {total} in all, want {N}");
    ensure!(f.keys("hash").is_empty(), "{} entries left", f.keys("hash").len());
    Ok(format!(
        "50000 stale, 1 us budget: first call -ETIMEDOUT after {} evictions; {} more calls evicted the rest (bound {}); \
         longest call {} us (fill took {fill_ms} ms)",
        first.evicted,
        calls,
        rest_bound,
        longest.max(first.ns) / 1000
    ))
}

fn cursor_keeps_fresh_entries(f: &mut Fixture) -> Result<String> {
    let now = now_ns();
    // Interleave stale and fresh keys so every call window holds both.
    for k in 0..4000u32 {
        let t = if k % 2 == 0 { stale_at(now) } else { now + 60 * SEC };
        f.map("hash").update(&k.to_ne_bytes(), &entry(t, 0), MapFlags::ANY)?;
    }
    let (evicted, calls, _) = f.sweep("hash", 1_000, max_age(now), 4000 / 8 + 2)?;
    ensure!(evicted == 2000, "evicted {evicted}, want the 2000 stale");
    let left = f.keys("hash");
    ensure!(left.len() == 2000 && left.iter().all(|k| k % 2 == 1), "wrong survivors");
    f.clear("hash")?;
    Ok(format!("4000 mixed entries, 1 us budget: exactly the 2000 stale evicted over {calls} calls"))
}

fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one bit set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn concurrent_updates(f: &mut Fixture) -> Result<String> {
    const STALE: u32 = 20_000;
    const FRESH: u32 = 2_000;
    let now = now_ns();
    f.fill("hash", 0, STALE, stale_at(now))?;
    f.fill("hash", STALE, STALE + FRESH, now)?;
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    // Another CPU keeps refreshing the fresh entries while this one sweeps.
    let map = libbpf_rs::MapHandle::try_from(f.map("hash"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let updater = std::thread::spawn(move || -> Result<u64> {
        pin_to(if cpus > 1 { 1 } else { 0 });
        let mut n = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            for k in STALE..STALE + FRESH {
                map.update(&k.to_ne_bytes(), &entry(now_ns(), n), MapFlags::EXIST)?;
                n += 1;
            }
        }
        Ok(n)
    });
    pin_to(0);
    let r = (|| -> Result<(u64, u32, u32)> {
        let (mut evicted, mut calls, mut passes) = (0u64, 0u32, 0u32);
        // Two complete passes, so the second sweeps what the first raced with.
        while passes < 2 {
            let c = f.call("hash", 50_000, max_age(now))?;
            ensure!(c.ret == 0 || c.ret == -ETIMEDOUT, "returned {}", c.ret);
            evicted += c.evicted as u64;
            calls += 1;
            passes += (c.ret == 0) as u32;
            ensure!(calls < 100_000, "no end");
        }
        Ok((evicted, calls, passes))
    })();
    stop.store(true, Ordering::Relaxed);
    let updates = updater.join().map_err(|_| anyhow::anyhow!("updater panicked"))??;
    let (evicted, calls, _) = r?;
    let left = f.keys("hash");
    ensure!(evicted == STALE as u64, "evicted {evicted}, want {STALE}");
    ensure!(left == (STALE..STALE + FRESH).collect::<Vec<_>>(), "{} left, want the {FRESH} refreshed entries", left.len());
    f.clear("hash")?;
    Ok(format!(
        "{STALE} stale + {FRESH} refreshed from CPU {} ({updates} updates during {calls} calls on {cpus} CPUs): counts add up",
        if cpus > 1 { 1 } else { 0 }
    ))
}

/// Run every case; print one line each and the tally. Exit code 0 or 1.
pub fn selftest() -> Result<i32> {
    let mut results: Vec<(String, Result<String>)> = Vec::new();
    let mut storage = MaybeUninit::uninit();
    let open = open_fixture(&mut storage, &["scan_hash", "scan_lru", "scan_array", "scan_small"])?;
    crate::verifier::take();
    let skel = match open.load() {
        Ok(s) => s,
        Err(e) => {
            let log = crate::verifier::take();
            bail!("the selftest programs do not load: {e}\n{}", crate::verifier::tail(&log, 20).unwrap_or(log));
        }
    };
    let mut f = Fixture { skel };
    let cases: &[(&str, Case)] = &[
        ("full pass: stale evicted, fresh kept", full_pass),
        ("LRU_HASH", lru_hash),
        ("ARRAY map is -EINVAL", array_is_einval),
        ("4-byte value is -EINVAL", small_value_is_einval),
        ("empty map", empty_map),
        ("tiny timeout on 50,000 entries, cursor resumes", tiny_timeout_and_cursor),
        ("cursor passes keep fresh entries", cursor_keeps_fresh_entries),
        ("updates from another CPU during scans", concurrent_updates),
    ];
    for (name, case) in cases {
        let r = case(&mut f);
        let _ = f.clear("hash");
        let _ = f.clear("lru");
        results.push((name.to_string(), r));
    }
    // The verifier's words for the reason, as 6.12 and as 7.x put them
    // (7.3: "R1 is fp expected STRUCT bpf_map or map_ptr").
    for (name, prog, reasons) in [
        (
            "verifier refuses a non-map first argument",
            "reject_not_map",
            &["isn't map pointer", "expected struct bpf_map"][..],
        ),
        (
            "verifier refuses a maybe-NULL evicted pointer",
            "reject_null_evicted",
            &["Possibly NULL pointer passed to trusted", "Add a NULL check and call the kfunc only on the non-NULL path"][..],
        ),
    ] {
        let r = expect_rejected(prog).and_then(|log| {
            let hit = log.lines().map(str::trim).find(|l| reasons.iter().any(|r| l.to_lowercase().contains(&r.to_lowercase())));
            match hit {
                Some(l) => Ok(format!("refused: {l}")),
                None => bail!(
                    "refused, but not for that reason (none of {reasons:?}); the log ends:\n{}",
                    crate::verifier::tail(&log, 6).unwrap_or(log)
                ),
            }
        });
        results.push((name.to_string(), r));
    }
    let mut failed = 0;
    for (name, r) in &results {
        match r {
            Ok(detail) => println!("ok   {name}: {detail}"),
            Err(e) => {
                failed += 1;
                println!("FAIL {name}: {e:#}");
            }
        }
    }
    println!("{} passed, {} failed", results.len() - failed, failed);
    Ok(if failed == 0 { 0 } else { 1 })
}
