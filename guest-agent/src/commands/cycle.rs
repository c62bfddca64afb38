//! `cycle`: load and unload one build N times in a row, as CI does to catch
//! load/unload races (static-key flips, the enable/disable paths). Each
//! cycle must reach `enabled`, see tasks run under the scheduler (its
//! ops.running counter moves) and end with an orderly unregistration; the
//! kernel log must stay free of splats.

use std::time::{Duration, Instant};

use anyhow::Result;

use scx_contract::config::Cleanup;
use crate::exit::{Exit, FAILED, OK};
use crate::observers::kmsg::{self, Kmsg};
use scx_contract::names::{Scheduler, Variant};
use crate::scheduler::sched::{self, LoadOpts};
use crate::signals;

pub fn cycle(
    s: Scheduler,
    v: Variant,
    count: u32,
    hold: Duration,
    cleanup: &Cleanup,
    kernel_btf: &std::path::Path,
) -> Result<i32> {
    signals::install();
    let mut kmsg = Kmsg::open_at_end()?;
    let opts = LoadOpts { cleanup, kernel_btf };
    let mut load_ms = Vec::new();
    for i in 1..=count {
        if signals::stopping() {
            break;
        }
        let t = Instant::now();
        let (ran, exit) = sched::with_scheduler(s, v, &opts, |r, rep| {
            load_ms.push(rep.load_ms + rep.attach_ms);
            let before = r.counters().running;
            // wait until tasks have been scheduled by us, up to `hold` x 10
            let end = Instant::now() + hold * 10;
            std::thread::sleep(hold);
            while r.counters().running == before && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            let ran = r.counters().running - before;
            r.detach();
            let end = Instant::now() + Duration::from_secs(5);
            while r.exit_info().is_none() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok((ran, r.exit_info()))
        })?;
        let exit = exit.ok_or_else(|| Exit::new(FAILED, format!("cycle {i}: no exit record")))?;
        println!(
            "cycle {i}/{count}: {} load+attach {:.0} ms, {ran} task runs, exit {} ({}), {:.2} s",
            s.ops_name(v),
            load_ms.last().copied().unwrap_or(0.0),
            exit.kind_name(),
            exit.describe(),
            t.elapsed().as_secs_f64()
        );
        if exit.is_error() || ran == 0 {
            return Err(Exit::new(FAILED, format!("cycle {i}: exit {} ({}), {ran} task runs", exit.kind_name(), exit.describe())).into());
        }
        // the kernel finishes disabling in a worker: let it settle
        let end = Instant::now() + Duration::from_secs(5);
        while sched::state() != "disabled" && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let lines = kmsg.read_new();
    let splats = kmsg::splats(&lines);
    if !load_ms.is_empty() {
        let n = load_ms.len() as f64;
        let mean = load_ms.iter().sum::<f64>() / n;
        let max = load_ms.iter().cloned().fold(0.0, f64::max);
        let min = load_ms.iter().cloned().fold(f64::INFINITY, f64::min);
        println!("{}: {} cycles, load+attach ms min {min:.0} mean {mean:.0} max {max:.0}", s.ops_name(v), load_ms.len());
    }
    if !splats.is_empty() {
        for l in &splats {
            eprintln!("splat: {l}");
        }
        return Err(Exit::new(FAILED, format!("{} kernel splat(s) during the cycles", splats.len())).into());
    }
    Ok(OK)
}
