//! The contract between `scx-vmctl` (host) and `scx-guest-agent` (guest):
//! every type one side writes and the other reads is defined here once, so
//! the two cannot drift apart. docs/results.md describes the files.
//!
//! - [`names`]: schedulers, variants, workloads (what both sides accept)
//! - [`exit`]: the agent's exit codes, which the host acts on
//! - [`sample`]: `run<N>.csv`, one [`sample::Sample`] per line
//! - [`run`]: the documented core of `run<N>.json`
//! - [`config`]: the workload and cleanup parameters the host sends
//! - [`splat`]: the kernel-log patterns that mean a splat
//! - [`bench`]: what `scx-guest-agent bench` prints for `scx-vmctl bench`

pub mod bench;
pub mod config;
pub mod exit;
pub mod names;
pub mod run;
pub mod sample;
pub mod splat;
