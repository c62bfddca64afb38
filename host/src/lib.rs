//! scx-vmctl: boot QEMU guests with a sched_ext kernel, run BPF schedulers in
//! them under stress, and judge whether `scx_bpf_map_scan_timeout` keeps their
//! task maps bounded.
//!
//! Where things live: `cli` (clap) and `commands` (what each subcommand does);
//! `kernel`, `image`, `sched_crate` (cached artifacts; scx schedulers from crates.io); `accel`, `qemu`, `vm` (VM lifecycle);
//! `qmp` (QMP client), `ssh` (SSH transport), `transfer` (tar in/out);
//! `report` (summary, verdict, HTML, JUnit).

pub mod accel;
pub mod agent;
pub mod bench;
pub mod btf;
pub mod cli;
pub mod commands;
pub mod config;
pub mod debsrc;
pub mod download;
pub mod exit;
pub mod experiment;
pub mod image;
pub mod kernel;
pub mod kselftest;
pub mod names;
pub mod pahole;
pub mod paths;
pub mod progress;
pub mod qemu;
pub mod qmp;
pub mod report;
pub mod sched_crate;
pub mod selftest;
pub mod ssh;
pub mod term;
pub mod transfer;
pub mod vm;
