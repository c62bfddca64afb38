//! `bench`: measurements made inside the guest, each printed as one JSON
//! object on stdout for `scx-vmctl bench` (host/src/bench/) to collect.
//! Those objects are scx_contract::bench's types, which the host parses.
//! Timings here are guest-clock: under single-threaded TCG one host thread
//! runs every vCPU in turn, so a duration includes time the vCPU waited.
//!
//!   count    the agent's map counting vs `bpftool map dump` + counting
//!   scan     scx_bpf_map_scan_timeout vs bpf_for_each_map_elem eviction
//!   sampler  CPU time of one sample with a scheduler loaded

mod count;
mod fixture;
mod sampler;
mod scan;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct BenchCli {
    #[command(subcommand)]
    pub what: BenchCmd,
}

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Fill a 16k-entry hash map; time the agent's counting and `bpftool map dump`
    Count(count::CountArgs),
    /// Helper vs bpf_for_each_map_elem: throughput, budgeted sweeps, worst call
    Scan(scan::ScanArgs),
    /// Load a scheduler, grow its map, and measure the CPU time of each sample
    Sampler(sampler::SamplerArgs),
}

pub fn run(b: BenchCli, kernel_btf: PathBuf) -> Result<i32> {
    let json = match b.what {
        BenchCmd::Count(a) => serde_json::to_value(count::run(&a)?)?,
        BenchCmd::Scan(a) => serde_json::to_value(scan::run(&a)?)?,
        BenchCmd::Sampler(a) => serde_json::to_value(sampler::run(&a, &kernel_btf)?)?,
    };
    println!("{json}");
    Ok(crate::exit::OK)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_MONOTONIC, what bpf_ktime_get_ns() reads.
pub fn clock_ns_monotonic() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CPU time of this thread / process (all threads), ns.
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}
pub fn process_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// Keep the measuring thread on one vCPU so its calls do not migrate mid-way.
pub fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t with one bit set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
