//! `hold`: load one of our builds and keep it attached until SIGINT or
//! SIGTERM, then unload and print `EXIT: reason (msg)` on stderr, as the
//! kernel's tools/sched_ext schedulers do. This makes any of our twelve
//! builds usable as "a user's own scheduler binary" (`run-bin`, `watch`,
//! `experiment --sched-bin`), e.g. behind a two-line wrapper script.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use scx_contract::config::Cleanup;
use crate::exit::{FAILED, OK};
use scx_contract::names::{Scheduler, Variant};
use crate::scheduler::sched::{self, LoadOpts};
use crate::signals;

pub fn hold(s: Scheduler, v: Variant, cleanup: &Cleanup, kernel_btf: &Path) -> Result<i32> {
    signals::install();
    let opts = LoadOpts { cleanup, kernel_btf };
    sched::with_scheduler(s, v, &opts, |r, rep| {
        println!(
            "hold: {} enabled (load {:.0} ms, attach {:.0} ms); SIGINT or SIGTERM unloads it",
            rep.ops_name, rep.load_ms, rep.attach_ms
        );
        let _ = std::io::stdout().flush();
        // also stop when the kernel ejects it (error, stall, SysRq-S)
        while !signals::stopping() && r.exit_info().is_none() {
            signals::sleep(Duration::from_millis(100));
        }
        r.detach();
        let end = Instant::now() + Duration::from_secs(5);
        while r.exit_info().is_none() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let c = r.counters();
        println!("hold: {} task runs, {} evictions, {} scans", c.running, c.evictions, c.scans);
        Ok(match r.exit_info() {
            Some(e) => {
                eprintln!("EXIT: {}", e.describe());
                if e.is_error() { FAILED } else { OK }
            }
            None => {
                eprintln!("EXIT: no exit record");
                FAILED
            }
        })
    })
}
