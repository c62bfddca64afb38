//! One sample of the metrics in docs/results.md: the tracking map (entries,
//! memlock), memory (/proc/meminfo), the scheduler's counters and state,
//! and the number of tasks (/proc/loadavg).

use std::os::fd::BorrowedFd;

use scx_contract::sample::{SchedState, Sample};
use crate::bpf::maps;
use crate::scheduler::sched::{self, Counters};
use crate::bpf::storagecount::{is_local_storage, StorageCounter};

/// Where the map is and how to walk it.
pub struct MapSource<'a> {
    pub fd: BorrowedFd<'a>,
    pub key_size: u32,
    pub value_size: u32,
}

pub struct Sampler {
    counter: maps::Counter,
    /// The kernel's own count when the kernel has it (6.6+); else a walk.
    elems: Option<crate::bpf::elemcount::ElemCounter>,
    /// Task and cgroup storage cannot be walked: an iterator per map, by map id.
    tasks: std::collections::HashMap<u32, StorageCounter>,
    /// sizeof(struct bpf_local_storage_elem) from the kernel's BTF, once.
    selem_size: Option<u64>,
}

impl Sampler {
    pub fn new() -> Self {
        Sampler {
            counter: maps::Counter::default(),
            elems: crate::bpf::elemcount::ElemCounter::new().ok(),
            tasks: std::collections::HashMap::new(),
            selem_size: None,
        }
    }

    /// Entries of one map: the kernel's count, a task iterator, or a walk.
    pub fn count_entries(&mut self, m: &MapSource<'_>) -> anyhow::Result<u64> {
        let info = maps::info(m.fd).ok();
        if let Some(i) = info.as_ref().filter(|i| is_local_storage(i.map_type)) {
            let c = match self.tasks.entry(i.id) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(StorageCounter::new(m.fd)?),
            };
            return Ok(c.count()?.0);
        }
        if let Some(e) = self.elems.as_mut() {
            // The kernel keeps an element count for hash maps only: an array
            // (a user's per-CPU stats map) reads 0 there, so it is walked.
            if let Some(i) = info.filter(|i| maps::HASH_FAMILY.contains(&i.map_type)) {
                if let Ok(n) = e.count(i.id) {
                    return Ok(n);
                }
            }
        }
        self.counter.count(m.fd, m.key_size, m.value_size)
    }

    /// Bytes of one entry of a task/cgroup-storage map, which its memlock
    /// leaves out (it counts the map's buckets only): the kernel's
    /// `sizeof(struct bpf_local_storage_elem)` plus the value, as
    /// bpf_local_storage allocates it. 0 for other maps, whose memlock
    /// counts their elements.
    fn storage_elem_bytes(&mut self, m: &MapSource<'_>) -> u64 {
        let local = maps::info(m.fd).is_ok_and(|i| is_local_storage(i.map_type));
        if !local {
            return 0;
        }
        let selem = *self.selem_size.get_or_insert_with(|| {
            crate::bpf::btf::struct_size(std::path::Path::new("/sys/kernel/btf/vmlinux"), "bpf_local_storage_elem")
                .ok()
                .flatten()
                .unwrap_or(0)
        });
        if selem == 0 {
            return 0;
        }
        selem + m.value_size as u64
    }

    /// `map` None: the map is gone or was never found (entries 0).
    /// Errors reading one source leave its columns at 0 and are returned
    /// next to the sample so the caller can log them without losing the row.
    pub fn sample(
        &mut self,
        elapsed_s: f64,
        map: Option<&MapSource<'_>>,
        c: &Counters,
    ) -> (Sample, Option<String>) {
        let mut err = None;
        let (map_entries, map_bytes) = match map {
            Some(m) => match self.count_entries(m) {
                Ok(n) => (n, maps::memlock(m.fd) + n * self.storage_elem_bytes(m)),
                Err(e) => {
                    err = Some(format!("counting map entries: {e:#}"));
                    (0, maps::memlock(m.fd))
                }
            },
            None => (0, 0),
        };
        let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let s = Sample {
            elapsed_s,
            map_entries,
            map_bytes,
            mem_free_kb: meminfo_kb(&mem, "MemFree").unwrap_or(0),
            sunreclaim_kb: meminfo_kb(&mem, "SUnreclaim").unwrap_or(0),
            evictions: c.evictions,
            scans: c.scans,
            scan_timeouts: c.scan_timeouts,
            scan_max_ns: c.max_scan_ns,
            sched_state: SchedState::from_sysfs(&sched::state()),
            nr_tasks: loadavg_tasks(&load).unwrap_or(0),
            false_evictions: c.false_evictions,
            track_ns: c.track_ns,
            runs: c.running,
        };
        (s, err)
    }
}

/// "MemFree:  1834560 kB" -> 1834560
pub fn meminfo_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, rest) = l.split_once(':')?;
        if k != key {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// "0.52 0.31 0.12 2/143 1234" -> 143 (all tasks, running or not)
pub fn loadavg_tasks(text: &str) -> Option<u64> {
    let field = text.split_whitespace().nth(3)?;
    field.split_once('/')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo() {
        let t = "MemTotal:        2014588 kB\nMemFree:         1834560 kB\nSlab:  30000 kB\n\
                 SReclaimable:      10000 kB\nSUnreclaim:        20480 kB\n";
        assert_eq!(meminfo_kb(t, "MemFree"), Some(1834560));
        assert_eq!(meminfo_kb(t, "SUnreclaim"), Some(20480));
        assert_eq!(meminfo_kb(t, "Mem"), None);
    }

    #[test]
    fn loadavg() {
        assert_eq!(loadavg_tasks("0.52 0.31 0.12 2/143 1234\n"), Some(143));
        assert_eq!(loadavg_tasks("garbage"), None);
    }
}
