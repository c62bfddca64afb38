//! The bench's BPF object (bpf/bench/scan_bench.bpf.c): three hash maps
//! shaped like tracked_tasks, and per map a fill, a helper and a bpfscan
//! program, each run with BPF_PROG_RUN.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};

use anyhow::{bail, ensure, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{ProgramInput, ProgramMut};
use scx_contract::bench::Method;

use crate::bpf::maps;
use crate::skel::scan_bench::{ScanBenchSkel, ScanBenchSkelBuilder};

/// The map sizes the object has (max_entries of map_1k, map_16k, map_256k).
pub const SIZES: [u32; 3] = [1024, 16384, 262144];

/// One call's outcome, as the program recorded it.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub ret: i32,
    pub evicted: u32,
    /// bpfscan only (the helper does not report it)
    pub visited: u32,
    /// guest clock, measured in BPF around the scan
    pub ns: u64,
    /// outside interrupts (timer, devices, IPIs) this CPU took during the call
    pub irqs: u32,
    /// irq_work interrupts during the call (NO_PREALLOC frees raise them)
    pub irq_works: u32,
}

pub struct Fixture<'o> {
    skel: ScanBenchSkel<'o>,
    counter: maps::Counter,
}

/// `prealloc`: load the maps preallocated instead of NO_PREALLOC. Freeing
/// an element of a NO_PREALLOC map can raise an irq_work (the allocator
/// returning memory) that, with interrupts on as in a syscall program, runs
/// inside the call being timed; a preallocated map frees to a list.
pub fn open(storage: &mut MaybeUninit<libbpf_rs::OpenObject>, prealloc: bool) -> Result<Fixture<'_>> {
    let mut open = ScanBenchSkelBuilder::default().open(storage).context("opening the bench object")?;
    if prealloc {
        let m = &mut open.maps;
        for map in [&mut m.map_1k, &mut m.map_16k, &mut m.map_256k] {
            map.set_map_flags(0).context("making a bench map preallocated")?;
        }
    }
    crate::bpf::verifier::take();
    match open.load() {
        Ok(skel) => Ok(Fixture { skel, counter: maps::Counter::default() }),
        Err(e) => {
            let log = crate::bpf::verifier::take();
            bail!("the bench programs do not load: {e}\n{}", crate::bpf::verifier::tail(&log, 20).unwrap_or(log))
        }
    }
}

fn size_index(size: u32) -> Result<usize> {
    SIZES.iter().position(|s| *s == size).with_context(|| format!("no bench map of {size} entries (have {SIZES:?})"))
}

impl Fixture<'_> {
    fn prog(&self, kind: &str, size: u32) -> Result<&ProgramMut<'_>> {
        let p = &self.skel.progs;
        Ok(match (kind, size_index(size)?) {
            ("fill", 0) => &p.fill_1k,
            ("fill", 1) => &p.fill_16k,
            ("fill", 2) => &p.fill_256k,
            ("helper", 0) => &p.helper_1k,
            ("helper", 1) => &p.helper_16k,
            ("helper", 2) => &p.helper_256k,
            ("bpfscan", 0) => &p.bpfscan_1k,
            ("bpfscan", 1) => &p.bpfscan_16k,
            (_, _) => &p.bpfscan_256k,
        })
    }

    pub fn map_fd(&self, size: u32) -> Result<BorrowedFd<'_>> {
        let m = &self.skel.maps;
        Ok(match size_index(size)? {
            0 => m.map_1k.as_fd(),
            1 => m.map_16k.as_fd(),
            _ => m.map_256k.as_fd(),
        })
    }

    pub fn count(&mut self, size: u32) -> Result<u64> {
        let fd = match size_index(size)? {
            0 => self.skel.maps.map_1k.as_fd(),
            1 => self.skel.maps.map_16k.as_fd(),
            _ => self.skel.maps.map_256k.as_fd(),
        };
        self.counter.count(fd, 4, 24)
    }

    fn fill_range(&mut self, size: u32, from: u32, to: u32, delete: bool, all_stale: bool) -> Result<u32> {
        {
            let bss = self.skel.maps.bss_data.as_deref_mut().context("bss is mmapped")?;
            bss.arg_from = from;
            bss.arg_to = to;
            bss.arg_delete = delete as u32;
            bss.arg_all_stale = all_stale as u32;
            bss.out_done = u32::MAX;
        }
        self.prog("fill", size)?.test_run(ProgramInput::default()).context("BPF_PROG_RUN of fill")?;
        let done = self.skel.maps.bss_data.as_deref().context("bss is mmapped")?.out_done;
        ensure!(done != u32::MAX, "the fill program did not run");
        Ok(done)
    }

    /// Make the map hold all `size` keys: odd keys fresh, even keys stale
    /// (keys still present keep their value). Returns how many stale ones
    /// the map holds afterwards (size / 2).
    pub fn fill(&mut self, size: u32) -> Result<u64> {
        self.fill_as(size, false)?;
        Ok(size as u64 / 2)
    }

    /// An empty map filled with `size` stale entries.
    pub fn fill_all_stale(&mut self, size: u32) -> Result<u64> {
        self.clear(size)?;
        self.fill_as(size, true)?;
        Ok(size as u64)
    }

    fn fill_as(&mut self, size: u32, all_stale: bool) -> Result<()> {
        // Chunks, and rounds: a NO_PREALLOC insert can fail while the
        // allocator's per-CPU cache refills; the next round retries it.
        for _ in 0..20 {
            let mut from = 0;
            while from < size {
                let to = (from + 8192).min(size);
                self.fill_range(size, from, to, false, all_stale)?;
                from = to;
            }
            if self.count(size)? == size as u64 {
                return Ok(());
            }
        }
        bail!("could not fill the {size}-entry map (it holds {})", self.count(size)?)
    }

    /// An empty `size` map holding only `n` stale entries: sparse, its
    /// buckets nearly all empty.
    pub fn fill_sparse(&mut self, size: u32, n: u32) -> Result<u64> {
        self.clear(size)?;
        for _ in 0..20 {
            self.fill_range(size, 0, n, false, true)?;
            if self.count(size)? == n as u64 {
                return Ok(n as u64);
            }
        }
        bail!("could not put {n} entries into the {size}-entry map")
    }

    pub fn clear(&mut self, size: u32) -> Result<()> {
        self.fill_range(size, 0, size, true, false)?;
        ensure!(self.count(size)? == 0, "the {size}-entry map is not empty after clearing");
        Ok(())
    }

    /// One scan of the `size` map with a time budget.
    pub fn call(&mut self, method: Method, size: u32, timeout_ns: u64, max_age_ns: u64) -> Result<Call> {
        {
            let bss = self.skel.maps.bss_data.as_deref_mut().context("bss is mmapped")?;
            bss.arg_timeout_ns = timeout_ns;
            bss.arg_max_age_ns = max_age_ns;
            bss.out_ret = 0x7fff_ffff; // proves the program ran
        }
        let kind = method.as_str();
        self.prog(kind, size)?.test_run(ProgramInput::default()).with_context(|| format!("BPF_PROG_RUN of {kind}"))?;
        let b = self.skel.maps.bss_data.as_deref().context("bss is mmapped")?;
        ensure!(b.out_ret != 0x7fff_ffff, "{kind} did not run");
        Ok(Call { ret: b.out_ret, evicted: b.out_evicted, visited: b.out_visited, ns: b.out_ns, irqs: b.out_irqs, irq_works: b.out_irq_works })
    }
}
