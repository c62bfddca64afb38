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

use super::scan_bound::pass_bound;
use crate::skel::map_scan::{MapScanSkel, MapScanSkelBuilder, OpenMapScanSkel};

const EPERM: i32 = 1;
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

/// The names of the 20 maps of scan_many, as the skeleton calls them.
const MANY: u32 = 20;

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
        if let Some(i) = which.strip_prefix("many") {
            let bss = self.skel.maps.bss_data.as_deref_mut().context("bss is mmapped")?;
            bss.arg_many = i.parse()?;
        }
        let progs = &self.skel.progs;
        let prog = match which {
            "hash" => &progs.scan_hash,
            "lru" => &progs.scan_lru,
            "array" => &progs.scan_array,
            "small" => &progs.scan_small,
            "churn" => &progs.scan_churn,
            "sparse" => &progs.scan_sparse,
            "rdonly" => &progs.scan_rdonly,
            "lock" => &progs.scan_lock,
            "timer" => &progs.scan_timer,
            w if w.starts_with("many") => &progs.scan_many,
            _ => bail!("no program for {which}"),
        };
        prog.test_run(ProgramInput::default()).with_context(|| format!("BPF_PROG_RUN of scan_{which}"))?;
        let bss = self.skel.maps.bss_data.as_deref().context("bss is mmapped")?;
        ensure!(bss.out_ret != 0x7fff_ffff, "scan_{which} did not run");
        Ok(Call { ret: bss.out_ret, evicted: bss.out_evicted, ns: bss.out_ns })
    }

    fn map(&self, which: &str) -> &MapMut<'o> {
        let m = &self.skel.maps;
        match which {
            "lru" => &m.lru_map,
            "churn" => &m.churn_map,
            "sparse" => &m.sparse_map,
            "rdonly" => &m.rdonly_map,
            "lock" => &m.lock_map,
            "timer" => &m.timer_map,
            "many0" => &m.many_0,
            "many1" => &m.many_1,
            "many2" => &m.many_2,
            "many3" => &m.many_3,
            "many4" => &m.many_4,
            "many5" => &m.many_5,
            "many6" => &m.many_6,
            "many7" => &m.many_7,
            "many8" => &m.many_8,
            "many9" => &m.many_9,
            "many10" => &m.many_10,
            "many11" => &m.many_11,
            "many12" => &m.many_12,
            "many13" => &m.many_13,
            "many14" => &m.many_14,
            "many15" => &m.many_15,
            "many16" => &m.many_16,
            "many17" => &m.many_17,
            "many18" => &m.many_18,
            "many19" => &m.many_19,
            _ => &m.hash_map,
        }
    }

    /// Insert key `k` last seen at `t`, the value sized as the map wants
    /// (special-field maps have larger values; the kernel ignores those bytes).
    fn put(&self, which: &str, k: u32, t: u64) -> Result<()> {
        let m = self.map(which);
        let mut v = vec![0u8; m.value_size() as usize];
        v[..8].copy_from_slice(&t.to_ne_bytes());
        m.update(&k.to_ne_bytes(), &v, MapFlags::ANY).with_context(|| format!("inserting key {k} into the {which} map"))
    }

    /// Insert keys [from, to) all last seen at `t`.
    fn fill(&self, which: &str, from: u32, to: u32, t: u64) -> Result<()> {
        for k in from..to {
            self.put(which, k, t)?;
        }
        Ok(())
    }

    /// Fill sparse_map's keys [from, to) in the kernel (bpf_loop): fast.
    fn fill_sparse(&mut self, from: u32, to: u32, t: u64) -> Result<u32> {
        {
            let bss = self.skel.maps.bss_data.as_deref_mut().context("bss is mmapped")?;
            bss.arg_from = from;
            bss.arg_to = to;
            bss.arg_seen = t;
        }
        self.skel.progs.fill_sparse.test_run(ProgramInput::default()).context("BPF_PROG_RUN of fill_sparse")?;
        Ok(self.skel.maps.bss_data.as_deref().context("bss is mmapped")?.out_filled)
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

    /// Finish the pass in progress without evicting anything (no age is
    /// too old), so the next call starts a pass at the first bucket: the
    /// cursor is the map's and outlives a case.
    fn to_pass_start(&mut self, which: &str) -> Result<()> {
        for _ in 0..pass_bound(262_144, 0) {
            if self.call(which, SEC, u64::MAX)?.ret == 0 {
                return Ok(());
            }
        }
        bail!("the {which} map's pass never ended")
    }

    /// Call until a pass completes (ret 0); (total evicted, calls, longest call).
    fn sweep(&mut self, which: &str, timeout_ns: u64, max_age_ns: u64, max_calls: u64) -> Result<(u64, u64, u64)> {
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
        ("scan_churn", &mut p.scan_churn),
        ("scan_sparse", &mut p.scan_sparse),
        ("scan_rdonly", &mut p.scan_rdonly),
        ("scan_lock", &mut p.scan_lock),
        ("scan_timer", &mut p.scan_timer),
        ("scan_many", &mut p.scan_many),
        ("fill_sparse", &mut p.fill_sparse),
        ("reject_not_map", &mut p.reject_not_map),
        ("reject_null_evicted", &mut p.reject_null_evicted),
        ("reject_dummy_test_1", &mut p.reject_dummy_test_1),
    ] {
        prog.set_autoload(keep.contains(&name));
    }
    // The other struct_ops is only ever loaded to be refused.
    open.maps.reject_dummy_ops.set_autocreate(keep.contains(&"reject_dummy_test_1"))?;
    Ok(open)
}

/// A program that must not load: Ok(the verifier's last words) if refused.
fn expect_rejected(prog: &str) -> Result<String> {
    let mut storage = MaybeUninit::uninit();
    let open = open_fixture(&mut storage, &[prog])?;
    crate::bpf::verifier::take();
    let loaded = open.load().is_ok();
    if loaded {
        bail!("the verifier accepted {prog}");
    }
    let log = crate::bpf::verifier::take();
    // The whole log: 7.x ends it with a summary and advice, the reason
    // the verifier gave stands earlier.
    Ok(log)
}

type Case = fn(&mut Fixture) -> Result<String>;

fn full_pass(f: &mut Fixture) -> Result<String> {
    let now = now_ns();
    f.fill("hash", 0, 100, stale_at(now))?;
    f.fill("hash", 100, 200, now)?;
    // A call is capped at 1 ms: the 65536 buckets may take a few.
    let (evicted, calls, longest) = f.sweep("hash", SEC, max_age(now), pass_bound(65536, 200))?;
    ensure!(evicted == 100, "evicted {evicted}, want the 100 stale entries");
    let left = f.keys("hash");
    ensure!(left == (100..200).collect::<Vec<_>>(), "left {} entries, want exactly the 100 fresh ones", left.len());
    f.clear("hash")?;
    Ok(format!("100 stale evicted, 100 fresh kept, a pass in {calls} calls (longest {} us)", longest / 1000))
}

fn lru_hash(f: &mut Fixture) -> Result<String> {
    let now = now_ns();
    f.fill("lru", 0, 60, stale_at(now))?;
    f.fill("lru", 60, 100, now)?;
    let (evicted, _, _) = f.sweep("lru", SEC, max_age(now), pass_bound(4096, 100))?;
    ensure!(evicted == 60, "evicted {evicted}, want 60");
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
    let (evicted, calls, _) = f.sweep("hash", SEC, 0, pass_bound(65536, 0))?;
    ensure!(evicted == 0, "evicted {evicted} from an empty map");
    Ok(format!("empty map: a pass in {calls} calls, nothing evicted"))
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
    let rest_bound = pass_bound(65536, N as u64);
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
    let (evicted, calls, _) = f.sweep("hash", 1_000, max_age(now), pass_bound(65536, 4000))?;
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
    const MAX_PASSES: u32 = 20;
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
        // At least two complete passes, so the second sweeps what the first
        // raced with; more while stale entries remain: a bucket the updater
        // holds locked is skipped (trylock) and waits for the next pass, and
        // under TCG a vCPU can be descheduled holding it for a whole slice.
        while passes < 2 || (evicted < STALE as u64 && passes < MAX_PASSES) {
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
    let (evicted, calls, passes) = r?;
    let left = f.keys("hash");
    ensure!(evicted == STALE as u64, "evicted {evicted} in {passes} passes, want {STALE}");
    ensure!(left == (STALE..STALE + FRESH).collect::<Vec<_>>(), "{} left, want the {FRESH} refreshed entries", left.len());
    f.clear("hash")?;
    Ok(format!(
        "{STALE} stale + {FRESH} refreshed from CPU {} ({updates} updates during {calls} calls, {passes} passes, on {cpus} CPUs): counts add up",
        if cpus > 1 { 1 } else { 0 }
    ))
}

/// Bug 1: a map the program may not write must not be written by the helper.
fn rdonly_map_is_eperm(f: &mut Fixture) -> Result<String> {
    let now = now_ns();
    f.fill("rdonly", 0, 4, stale_at(now))?;
    let c = f.call("rdonly", SEC, max_age(now))?;
    ensure!(c.ret == -EPERM && c.evicted == 0, "returned {} evicting {}, want -EPERM evicting nothing", c.ret, c.evicted);
    ensure!(f.keys("rdonly").len() == 4, "{} of 4 entries left", f.keys("rdonly").len());
    f.clear("rdonly")?;
    Ok("BPF_F_RDONLY_PROG map: -EPERM, 4 stale entries untouched".into())
}

/// Bug 2: values with special fields (here a spin lock, a timer) are refused.
fn special_fields_are_einval(f: &mut Fixture) -> Result<String> {
    let now = now_ns();
    for which in ["lock", "timer"] {
        f.fill(which, 0, 4, stale_at(now))?;
        let c = f.call(which, SEC, max_age(now))?;
        ensure!(c.ret == -EINVAL && c.evicted == 0, "{which} map: returned {} evicting {}, want -EINVAL", c.ret, c.evicted);
        ensure!(f.keys(which).len() == 4, "{which} map: {} of 4 entries left", f.keys(which).len());
        f.clear(which)?;
    }
    Ok("bpf_spin_lock and bpf_timer values: -EINVAL, entries untouched".into())
}

/// Bug 3: deleting the entry the sweep would resume at (exit_task, user
/// space) must not restart the pass. Half the live entries are replaced
/// between calls, as a fork and exit storm would; the pass still ends
/// within its bound and no live entry is evicted.
fn cursor_survives_churn(f: &mut Fixture) -> Result<String> {
    const LIVE: u32 = 256;
    const CHURN: usize = 128;
    let future = now_ns() + 3600 * SEC; // never stale
    f.fill("churn", 0, LIVE, future)?;
    let bound = pass_bound(1024, 2 * LIVE as u64);
    let mut next_key = LIVE;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for calls in 1..=bound {
        let c = f.call("churn", 1_000, 10 * SEC)?;
        ensure!(c.evicted == 0, "call {calls} evicted {} live entries", c.evicted);
        match c.ret {
            0 => {
                ensure!(calls > 1, "one call swept the whole map: the budget was not enforced");
                return Ok(format!(
                    "{LIVE} live entries, {CHURN} replaced between calls: the pass ended after {calls} calls (bound {bound})"
                ));
            }
            r if r == -ETIMEDOUT => {}
            r => bail!("call {calls} returned {r}"),
        }
        let mut keys = f.keys("churn");
        for _ in 0..CHURN {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let k = keys.swap_remove((rng % keys.len() as u64) as usize);
            f.map("churn").delete(&k.to_ne_bytes())?;
            f.put("churn", next_key, future)?;
            next_key += 1;
        }
    }
    bail!("no pass ended within {bound} calls while entries were replaced: the cursor restarts when its entry goes")
}

/// Bug 4: a sparse map (256k buckets, 2 entries) must stop at the budget,
/// empty buckets included, and still finish a pass within its bound.
fn sparse_map_budget(f: &mut Fixture) -> Result<String> {
    let now = now_ns();
    f.fill("sparse", 7, 8, stale_at(now))?;
    f.fill("sparse", 200_000, 200_001, stale_at(now))?;
    let first = f.call("sparse", 1_000, max_age(now))?;
    ensure!(
        first.ret == -ETIMEDOUT,
        "first call returned {} after {} us, want -ETIMEDOUT: empty buckets were walked without looking at the clock",
        first.ret,
        first.ns / 1000
    );
    let bound = pass_bound(262_144, 2);
    let (rest, calls, longest) = f.sweep("sparse", 1_000, max_age(now), bound)?;
    ensure!(first.evicted as u64 + rest == 2, "evicted {} of 2", first.evicted as u64 + rest);
    Ok(format!(
        "262144 buckets, 2 stale entries, 1 us budget: -ETIMEDOUT, pass done in {} calls (bound {bound}), longest {} us",
        calls + 1,
        longest.max(first.ns) / 1000
    ))
}

/// Bug 4 too: an unbounded budget is capped (1 ms in the kernel).
fn budget_is_capped(f: &mut Fixture) -> Result<String> {
    const N: u32 = 200_000;
    // Last seen at 1 ns, but no age is too old: the call walks all of them.
    let filled = f.fill_sparse(0, N, 1)?;
    ensure!(filled == N, "filled {filled} of {N}");
    let c = f.call("sparse", u64::MAX, u64::MAX)?;
    let r = (|| {
        ensure!(
            c.ret == -ETIMEDOUT && c.evicted == 0,
            "a u64::MAX budget over {N} entries returned {} after {} us, want -ETIMEDOUT (the cap)",
            c.ret,
            c.ns / 1000
        );
        Ok(format!("u64::MAX budget over {N} entries: -ETIMEDOUT after {} us", c.ns / 1000))
    })();
    // Empty it again: every entry is older than 1 ns.
    // (The capped call left the cursor mid-pass: finish that pass, then one whole.)
    let (a, _, _) = f.sweep("sparse", SEC, 1, pass_bound(262_144, N as u64))?;
    let (b, _, _) = f.sweep("sparse", SEC, 1, pass_bound(262_144, N as u64))?;
    ensure!(a + b == N as u64, "cleanup evicted {} of {N}", a + b);
    r
}

/// Bug 5: the cursor belongs to the map: 20 maps swept in turn (more than
/// the first design's 16 cursor slots) each finish a pass within its bound.
fn many_maps_keep_their_cursors(f: &mut Fixture) -> Result<String> {
    const LIVE: u32 = 128;
    let future = now_ns() + 3600 * SEC;
    for i in 0..MANY {
        f.fill(&format!("many{i}"), 0, LIVE, future)?;
    }
    let bound = pass_bound(256, LIVE as u64);
    let mut done = vec![0u64; MANY as usize];
    for round in 1..=bound {
        for i in 0..MANY {
            if done[i as usize] > 0 {
                continue;
            }
            let c = f.call(&format!("many{i}"), 1_000, 10 * SEC)?;
            ensure!(c.evicted == 0, "map {i}: evicted {} live entries", c.evicted);
            match c.ret {
                0 => done[i as usize] = round,
                r if r == -ETIMEDOUT => {}
                r => bail!("map {i}: returned {r}"),
            }
        }
    }
    let open: Vec<u32> = (0..MANY).filter(|&i| done[i as usize] == 0).collect();
    for i in 0..MANY {
        f.clear(&format!("many{i}"))?;
    }
    ensure!(open.is_empty(), "maps {open:?} never finished a pass in {bound} rounds: their cursors were lost");
    Ok(format!(
        "{MANY} maps swept in turn, 1 us budget: every pass ended within {} rounds (bound {bound})",
        done.iter().max().unwrap_or(&0)
    ))
}

/// Run every case; print one line each and the tally. Exit code 0 or 1.
pub fn selftest() -> Result<i32> {
    let mut results: Vec<(String, Result<String>)> = Vec::new();
    let mut storage = MaybeUninit::uninit();
    let open = open_fixture(
        &mut storage,
        &[
            "scan_hash",
            "scan_lru",
            "scan_array",
            "scan_small",
            "scan_churn",
            "scan_sparse",
            "scan_rdonly",
            "scan_lock",
            "scan_timer",
            "scan_many",
            "fill_sparse",
        ],
    )?;
    crate::bpf::verifier::take();
    let skel = match open.load() {
        Ok(s) => s,
        Err(e) => {
            let log = crate::bpf::verifier::take();
            bail!("the selftest programs do not load: {e}\n{}", crate::bpf::verifier::tail(&log, 20).unwrap_or(log));
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
        ("read-only map is -EPERM", rdonly_map_is_eperm),
        ("special fields are -EINVAL", special_fields_are_einval),
        ("cursor survives deletes of its entry", cursor_survives_churn),
        ("sparse map keeps the budget", sparse_map_budget),
        ("budget is capped", budget_is_capped),
        ("20 maps keep their own cursors", many_maps_keep_their_cursors),
    ];
    for (name, case) in cases {
        let r = f.to_pass_start("hash").and_then(|_| f.to_pass_start("lru")).and_then(|_| case(&mut f));
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
        (
            "verifier refuses another struct_ops type calling it",
            "reject_dummy_test_1",
            &["calling kernel function scx_bpf_map_scan_timeout is not allowed"][..],
        ),
    ] {
        let r = expect_rejected(prog).and_then(|log| {
            let hit = log.lines().map(str::trim).find(|l| reasons.iter().any(|r| l.to_lowercase().contains(&r.to_lowercase())));
            match hit {
                Some(l) => Ok(format!("refused: {l}")),
                None => bail!(
                    "refused, but not for that reason (none of {reasons:?}); the log ends:\n{}",
                    crate::bpf::verifier::tail(&log, 6).unwrap_or(log)
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
