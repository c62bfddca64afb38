//! `fixture cgleak`: load a test fixture scheduler (bpf/fixtures/) and keep
//! it attached until SIGINT or SIGTERM, for leakcheck's own tests through
//! `--sched-bin` (behind a two-line script). Not one of the schedulers an
//! experiment compares.

use std::io::Write;
use std::mem::MaybeUninit;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use crate::exit::OK;
use crate::skel::scx_cgleak::ScxCgleakSkelBuilder;
use crate::{sched, signals};

pub fn fixture(name: &str) -> Result<i32> {
    if name != "cgleak" {
        return Err(crate::exit::Exit::new(crate::exit::BAD_INPUT, format!("unknown fixture `{name}`; valid: cgleak")).into());
    }
    signals::install();
    if sched::state() != "disabled" {
        bail!("another sched_ext scheduler is attached (state {})", sched::state());
    }
    let mut storage = MaybeUninit::uninit();
    let skel = ScxCgleakSkelBuilder::default().open(&mut storage).context("opening the cgleak fixture")?;
    let mut skel = skel.load().context("loading the cgleak fixture")?;
    let link = skel.maps.sched_ops.attach_struct_ops().context("attaching the cgleak fixture")?;
    println!("fixture: cgleak enabled; SIGINT or SIGTERM unloads it");
    let _ = std::io::stdout().flush();
    while !signals::stopping() && sched::state() == "enabled" {
        signals::sleep(Duration::from_millis(100));
    }
    let ejected = !signals::stopping();
    let state = sched::state();
    drop(link);
    if ejected {
        // the kernel disabled it (its reason is in dmesg)
        eprintln!("EXIT: disabled by the kernel (sched_ext state `{state}`)");
        return Ok(crate::exit::FAILED);
    }
    eprintln!("EXIT: unregistered from user space");
    Ok(OK)
}
