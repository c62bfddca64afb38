//! scx-vmctl: boot QEMU guests with a sched_ext kernel, run BPF schedulers in
//! them under stress, and judge whether `scx_bpf_map_scan_timeout` keeps their
//! task maps bounded.

pub mod exit;
pub mod report;
