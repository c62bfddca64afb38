//! What sampling costs: a real scheduler loaded (control, so its map keeps
//! what it holds), its tracked_tasks grown to a realistic size with entries
//! of made-up pids, then the same sample + CSV line as `run` takes, at the
//! run's interval. CPU time per sample from CLOCK_THREAD_CPUTIME_ID (exact
//! sum_exec_runtime, not tick-sampled), and the whole process's CPU time
//! over the span, which also counts anything the agent does between samples.

use std::ffi::c_void;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use clap::Args;
use libbpf_rs::libbpf_sys as sys;
use scx_contract::bench::{SamplerResult, Timings};

use scx_contract::config::Cleanup;
use scx_contract::sample::SampleWriter;
use crate::bpf::maps;
use scx_contract::names::{Scheduler, Variant};
use crate::observers::sampler::{MapSource, Sampler};
use crate::scheduler::sched::{self, LoadOpts};

#[derive(Args)]
pub struct SamplerArgs {
    #[arg(long, default_value = "scx_simple")]
    pub sched: String,
    #[arg(long, default_value = "control")]
    pub variant: String,
    /// grow the scheduler's map to this many entries
    #[arg(long, default_value_t = 16384)]
    pub entries: u64,
    #[arg(long, default_value_t = 10)]
    pub samples: u32,
    /// seconds between samples
    #[arg(long, default_value_t = 2.0)]
    pub interval: f64,
    /// where the sample lines go (on the disk, like run.csv: each line is synced)
    #[arg(long, default_value = "/root/bench-sampler.csv")]
    pub csv: std::path::PathBuf,
}

/// Made-up pids start above PID_MAX_LIMIT (4M), so no real task collides.
const FAKE_PID_BASE: u32 = 1 << 23;

fn grow(fd: BorrowedFd<'_>, value_size: u32, want: u64) -> Result<u64> {
    let mut counter = maps::Counter::default();
    let have = counter.count(fd, 4, value_size)?;
    let now = super::clock_ns_monotonic();
    let mut value = vec![0u8; value_size as usize];
    value[..8].copy_from_slice(&now.to_ne_bytes());
    value[8..16].copy_from_slice(&now.to_ne_bytes());
    for i in 0..want.saturating_sub(have) as u32 {
        let key = FAKE_PID_BASE + i;
        // SAFETY: key and value buffers of the map's sizes, alive for the call.
        let ret = unsafe {
            sys::bpf_map_update_elem(
                fd.as_raw_fd(),
                &key as *const u32 as *const c_void,
                value.as_ptr() as *const c_void,
                sys::BPF_NOEXIST as u64,
            )
        };
        if ret < 0 && ret != -libc::EEXIST {
            bail!("growing tracked_tasks to {want} entries: update failed at {i}: errno {}", -ret);
        }
    }
    counter.count(fd, 4, value_size)
}

pub fn run(a: &SamplerArgs, kernel_btf: &Path) -> Result<SamplerResult> {
    let (s, v) = (Scheduler::parse(&a.sched)?, Variant::parse(&a.variant)?);
    ensure!(a.interval > 0.0 && a.samples > 0, "--interval and --samples must be positive");
    sched::check_sched_ext()?;
    let cleanup = Cleanup::default();
    let opts = LoadOpts { cleanup: &cleanup, kernel_btf };
    let interval = Duration::from_secs_f64(a.interval);
    let csv_path = a.csv.clone();
    // every map of the scheduler is sampled too (maps.csv), as in every run
    let maps_dir = csv_path.with_extension("maps");
    let prog_baseline = crate::bpf::schedmaps::prog_last_id();
    let r = sched::with_scheduler(s, v, &opts, |running, report| {
        let fd = running.tracked_map();
        let mi = maps::info(fd)?;
        let grown = grow(fd, mi.value_size, a.entries)?;
        eprintln!("bench sampler: {} attached, tracked_tasks holds {grown} entries", report.ops_name);
        let mut csv = SampleWriter::create(&csv_path)?;
        let mut sampler = Sampler::new();
        std::fs::create_dir_all(&maps_dir)?;
        let mut all_maps =
            crate::bpf::schedmaps::SchedMaps::discover(prog_baseline, crate::bpf::schedmaps::Exits::attach().ok(), &maps_dir)?;
        let (mut cpu, mut wall, mut entries) = (Vec::new(), Vec::new(), Vec::new());
        let t0 = Instant::now();
        let p0 = super::process_cpu_ns();
        for i in 0..a.samples {
            let next = t0 + interval * i;
            if let Some(d) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            let (c0, w0) = (super::thread_cpu_ns(), Instant::now());
            let map = MapSource { fd: running.tracked_map(), key_size: mi.key_size, value_size: mi.value_size };
            let (row, err) = sampler.sample(t0.elapsed().as_secs_f64(), Some(&map), &running.counters());
            if let Some(e) = err {
                bail!("sample {i}: {e}");
            }
            all_maps.sample(t0.elapsed().as_secs_f64(), true, &mut sampler)?;
            csv.write(&row)?;
            cpu.push(super::thread_cpu_ns() - c0);
            wall.push(w0.elapsed().as_nanos() as u64);
            entries.push(row.map_entries);
        }
        // The span ends where the next sample would start.
        let end = t0 + interval * a.samples;
        if let Some(d) = end.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let process_cpu_ns = super::process_cpu_ns() - p0;
        let span_ns = t0.elapsed().as_nanos() as u64;
        let mut counter = maps::Counter::default();
        let mut count_cpu = Vec::new();
        for _ in 0..a.samples.min(5) {
            let c0 = super::thread_cpu_ns();
            counter.count(running.tracked_map(), mi.key_size, mi.value_size)?;
            count_cpu.push(super::thread_cpu_ns() - c0);
        }
        Ok(SamplerResult {
            ops_name: report.ops_name,
            interval_s: a.interval,
            samples: a.samples,
            map_entries_min: entries.iter().copied().min().unwrap_or(0),
            map_entries_max: entries.iter().copied().max().unwrap_or(0),
            cpu_per_sample: Timings::of_ns(&cpu),
            wall_per_sample: Timings::of_ns(&wall),
            process_cpu_ns,
            span_ns,
            count_cpu: Timings::of_ns(&count_cpu),
        })
    });
    let _ = std::fs::remove_file(&csv_path);
    let _ = std::fs::remove_dir_all(&maps_dir);
    r
}
