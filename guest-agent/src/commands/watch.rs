//! `watch`: sample the tracking map of a scheduler we did not load (a
//! user's own binary), found by name among the kernel's maps. If the same
//! object has a .bss with our counter names, they are read too.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::bpf::btf;
use scx_contract::sample::{SampleWriter, SchedState};
use crate::exit::{Exit, FAILED};
use crate::bpf::maps::{self, MapInfo};
use crate::observers::sampler::{MapSource, Sampler};
use crate::scheduler::sched::{self, Counters};
use crate::signals;

/// The counters of a foreign scheduler, read from its .bss by BTF offsets.
pub struct Bss {
    fd: OwnedFd,
    value_size: u32,
    offsets: HashMap<String, u32>,
}

impl Bss {
    pub fn counters(&self) -> Counters {
        let rd = |name: &str| {
            self.offsets
                .get(name)
                .and_then(|off| maps::read_u64_at(self.fd.as_fd(), self.value_size, *off).ok())
                .unwrap_or(0)
        };
        Counters {
            evictions: rd("nr_evictions"),
            scans: rd("nr_scans"),
            scan_timeouts: rd("nr_scan_timeouts"),
            max_scan_ns: rd("max_scan_ns"),
            scan_busy: rd("nr_scan_busy"),
            track_fail: rd("nr_track_fail"),
            running: rd("nr_running"),
            dispatched: rd("nr_dispatched"),
            false_evictions: rd("nr_false_evictions"),
            track_ns: rd("nr_track_ns"),
            exit_deletes: rd("nr_exit_deletes"),
        }
    }
}

/// A .bss map holding `nr_evictions`, nearest by id to the tracking map:
/// libbpf creates an object's maps one after the other. Only maps with an
/// id above `newer_than` count (0: any).
pub fn find_bss(near: u32, newer_than: u32) -> Option<Bss> {
    let mut best: Option<(u32, Bss)> = None;
    for (mi, fd) in maps::all() {
        if mi.id <= newer_than || mi.map_type != maps::BPF_MAP_TYPE_ARRAY || !mi.name.ends_with(".bss") || mi.btf_id == 0 {
            continue;
        }
        let Ok(vars) = btf::datasec_vars(mi.btf_id, mi.btf_value_type_id) else { continue };
        let offsets: HashMap<String, u32> =
            vars.into_iter().filter(|(_, _, size)| *size == 8).map(|(n, off, _)| (n, off)).collect();
        if !offsets.contains_key("nr_evictions") {
            continue;
        }
        let dist = mi.id.abs_diff(near);
        if best.as_ref().is_none_or(|(d, _)| dist < *d) {
            best = Some((dist, Bss { fd, value_size: mi.value_size, offsets }));
        }
    }
    best.map(|(_, b)| b)
}

pub fn watch(name: &str, interval: Duration, duration: Option<Duration>, out: &Path) -> Result<i32> {
    signals::install();
    let mut found = maps::find_by_name(name);
    if found.is_empty() {
        return Err(Exit::new(FAILED, format!("no BPF map named `{name}` in the kernel")).into());
    }
    // several (e.g. a leftover): the newest is the running scheduler's
    found.sort_by_key(|(mi, _)| mi.id);
    if found.len() > 1 {
        let ids: Vec<String> = found.iter().map(|(m, _)| m.id.to_string()).collect();
        eprintln!("watch: {} maps named `{name}` (ids {}); watching the newest", found.len(), ids.join(", "));
    }
    let (mi, fd): (MapInfo, OwnedFd) = found.pop().unwrap();
    let bss = find_bss(mi.id, 0);
    let value_size = maps::walk_value_size(&mi);
    eprintln!(
        "watch: map `{}` id {} ({} entries max){}",
        mi.name,
        mi.id,
        mi.max_entries,
        if bss.is_some() { ", counters from its .bss" } else { ", no counters found" }
    );

    let mut csv = SampleWriter::create(out)?;
    let mut sampler = Sampler::new();
    let was_enabled = sched::state() == "enabled";
    let t0 = Instant::now();
    let mut next = t0;
    loop {
        let counters = bss.as_ref().map(|b| b.counters()).unwrap_or_default();
        let src = MapSource { fd: fd.as_fd(), key_size: mi.key_size, value_size };
        let (row, err) = sampler.sample(t0.elapsed().as_secs_f64(), Some(&src), &counters);
        if let Some(e) = err {
            eprintln!("watch: {e}");
        }
        csv.write(&row)?;
        // we hold the map open, so it cannot vanish: stop when its
        // scheduler is gone instead
        if was_enabled && row.sched_state == SchedState::Disabled {
            eprintln!("watch: the scheduler was unloaded; stopping");
            break;
        }
        if duration.is_some_and(|d| t0.elapsed() >= d) || signals::stopping() {
            break;
        }
        next += interval;
        let now = Instant::now();
        if next > now {
            signals::sleep(next - now);
        }
        if signals::stopping() {
            break;
        }
    }
    Ok(0)
}
