//! `fixture cgleak|timerwrite`: load a test fixture scheduler (bpf/fixtures/)
//! and keep it attached until SIGINT or SIGTERM: cgleak for leakcheck's own
//! tests through `--sched-bin` (behind a two-line script), timerwrite for the
//! helper on the debug kernel. Not schedulers an experiment compares.

use std::io::Write;
use std::mem::MaybeUninit;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use crate::exit::OK;
use crate::skel::scx_cgleak::ScxCgleakSkelBuilder;
use crate::skel::scx_timerwrite::ScxTimerwriteSkelBuilder;
use crate::scheduler::sched;
use crate::signals;

pub fn fixture(name: &str) -> Result<i32> {
    if !matches!(name, "cgleak" | "timerwrite") {
        return Err(crate::exit::Exit::new(crate::exit::BAD_INPUT, format!("unknown fixture `{name}`; valid: cgleak, timerwrite")).into());
    }
    signals::install();
    if sched::state() != "disabled" {
        bail!("another sched_ext scheduler is attached (state {})", sched::state());
    }
    if name == "timerwrite" {
        return timerwrite();
    }
    let mut storage = MaybeUninit::uninit();
    let skel = ScxCgleakSkelBuilder::default().open(&mut storage).context("opening the cgleak fixture")?;
    let mut skel = skel.load().context("loading the cgleak fixture")?;
    let link = skel.maps.sched_ops.attach_struct_ops().context("attaching the cgleak fixture")?;
    println!("fixture: cgleak enabled; SIGINT or SIGTERM unloads it");
    let _ = std::io::stdout().flush();
    hold(link, name)
}

/// Keep the scheduler attached until a signal (Ok) or the kernel ejects it.
fn hold(link: libbpf_rs::Link, name: &str) -> Result<i32> {
    while !signals::stopping() && sched::state() == "enabled" {
        signals::sleep(Duration::from_millis(100));
    }
    let ejected = !signals::stopping();
    let state = sched::state();
    drop(link);
    if ejected {
        // the kernel disabled it (its reason is in dmesg)
        eprintln!("EXIT: {name} disabled by the kernel (sched_ext state `{state}`)");
        return Ok(crate::exit::FAILED);
    }
    eprintln!("EXIT: unregistered from user space");
    Ok(OK)
}

/// The helper swept from every dispatch while a bpf_timer writes the same
/// map (for the debug kernel: lockdep and KASAN watch both sides).
fn timerwrite() -> Result<i32> {
    let mut storage = MaybeUninit::uninit();
    let skel = ScxTimerwriteSkelBuilder::default().open(&mut storage).context("opening the timerwrite fixture")?;
    let mut skel = skel.load().context("loading the timerwrite fixture")?;
    let link = skel.maps.sched_ops.attach_struct_ops().context("attaching the timerwrite fixture")?;
    println!("fixture: timerwrite enabled; SIGINT or SIGTERM unloads it");
    let _ = std::io::stdout().flush();
    let code = hold(link, "timerwrite")?;
    let b = skel.maps.bss_data.as_deref().context("bss is mmapped")?;
    println!(
        "timerwrite: {} scans evicted {} entries ({} busy), the timer ran {} times writing {} entries; scan error {}",
        b.nr_scans, b.nr_evictions, b.nr_busy, b.nr_timer_runs, b.nr_timer_writes, b.scan_error
    );
    if b.scan_error != 0 || b.nr_scans == 0 || b.nr_evictions == 0 || b.nr_timer_runs == 0 {
        eprintln!("EXIT: timerwrite did not exercise both sides (or a scan failed)");
        return Ok(crate::exit::FAILED);
    }
    Ok(code)
}
