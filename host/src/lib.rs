//! scx-vmctl: boot QEMU guests with a sched_ext kernel, run BPF schedulers in
//! them under stress, and judge whether `scx_bpf_map_scan_timeout` keeps their
//! task maps bounded.
//!
//! Where things live: `cli` (clap) and `cmd/` (what each subcommand does);
//! `error` (bad input vs tool failure, exit codes); `launch` (kernel, image,
//! accelerator and key decided, then the boot);
//! `machine/` (the VM: accelerator, QEMU, the QMP client, the SSH transport,
//! tar in/out); `artifacts/` (cached builds: kernel, image, agent, scx
//! schedulers from crates.io); `experiment/` (plans, runs, manifests);
//! `report/` (summary, verdict, leak check, HTML, JUnit); `bench/`;
//! `selftest/` (the helper's contract and the kernel's sched_ext selftests).
//! What host and guest exchange is the `scx_contract` crate.

pub mod artifacts;
pub mod bench;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod error;
pub mod exit;
pub mod experiment;
pub mod launch;
pub mod names;
pub mod paths;
pub mod machine;
pub mod progress;
pub mod report;
pub mod selftest;
pub mod term;

/// `println!` that never panics: a reader that went away (`experiment ... |
/// head`) must not cost a running experiment its results or leave a guest
/// behind, so a failed write to stdout is dropped and the work goes on.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `print!` that never panics (see `outln!`).
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

/// `eprintln!` that never panics (see `outln!`): `experiment ... 2>&1 | head`.
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
