//! Every map a loaded scheduler's programs use, found without being told:
//! the programs created since the run began (its struct_ops programs and any
//! tracing ones beside them) name their maps in their object info. Each map
//! of the hash family, task storage or cgroup storage is sampled every interval into
//! maps.csv (a column per map, entries, and memlock per map and in total),
//! next to the number of tasks exited and cgroups destroyed since the start
//! (bpf/count/exits.bpf.c), which is what a leak grows with. Arrays and the
//! like are listed in maps.json with the reason they are not sampled. Maps
//! that only the scheduler's user half holds (no program uses them) are out
//! of reach here.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use libbpf_rs::libbpf_sys as sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use serde::Serialize;

use crate::bpf::maps::{self, MapInfo};
use crate::observers::sampler::{MapSource, Sampler};
use crate::skel::exits::{ExitsSkel, ExitsSkelBuilder};
use crate::bpf::storagecount::is_local_storage;

/// The agent's own programs (counting iterators, exit counters): never the scheduler's.
const OURS: &[&str] = &["count_elems", "count_task_stor", "count_cgrp_stor", "count_task_exit", "count_cgroup_rm"];

/// The highest program id in use now: programs loaded later have larger ids.
pub fn prog_last_id() -> u32 {
    let (mut id, mut next) = (0u32, 0u32);
    // SAFETY: next is a live u32 that the call writes the following id into.
    while unsafe { sys::bpf_prog_get_next_id(id, &mut next) } == 0 {
        id = next;
    }
    id
}

/// A program's name and the ids of the maps it uses.
fn prog_maps(id: u32) -> Result<(String, Vec<u32>)> {
    // SAFETY: takes only an id, no pointers; returns a new fd or -errno.
    let fd = unsafe { sys::bpf_prog_get_fd_by_id(id) };
    if fd < 0 {
        bail!("BPF_PROG_GET_FD_BY_ID {id}: {}", std::io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: a fresh fd from the kernel, owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut cap = 64usize;
    loop {
        let mut ids = vec![0u32; cap];
        let mut info =
            sys::bpf_prog_info { nr_map_ids: ids.len() as u32, map_ids: ids.as_mut_ptr() as u64, ..Default::default() };
        let mut len = std::mem::size_of::<sys::bpf_prog_info>() as u32;
        // SAFETY: info and the map_ids buffer it points at outlive the call;
        // the kernel writes at most nr_map_ids ids.
        let ret = unsafe { sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
        if ret < 0 {
            bail!("BPF_OBJ_GET_INFO_BY_FD (prog {id}): {}", std::io::Error::from_raw_os_error(-ret));
        }
        // the kernel says how many the program has: ask again with room for all
        if info.nr_map_ids as usize > cap {
            cap = info.nr_map_ids as usize;
            continue;
        }
        ids.truncate(info.nr_map_ids as usize);
        let name: Vec<u8> = info.name.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
        return Ok((String::from_utf8_lossy(&name).into_owned(), ids));
    }
}

/// The kernel's name for a map type (include/uapi/linux/bpf.h).
pub fn type_name(t: u32) -> &'static str {
    const NAMES: &[&str] = &[
        "unspec", "hash", "array", "prog_array", "perf_event_array", "percpu_hash", "percpu_array", "stack_trace",
        "cgroup_array", "lru_hash", "lru_percpu_hash", "lpm_trie", "array_of_maps", "hash_of_maps", "devmap", "sockmap",
        "cpumap", "xskmap", "sockhash", "cgroup_storage", "reuseport_sockarray", "percpu_cgroup_storage", "queue", "stack",
        "sk_storage", "devmap_hash", "struct_ops", "ringbuf", "inode_storage", "task_storage", "bloom_filter",
        "user_ringbuf", "cgrp_storage", "arena",
    ];
    NAMES.get(t as usize).copied().unwrap_or("unknown")
}

/// Why a map of this type is not sampled, or None when it is.
pub fn skip_reason(t: u32) -> Option<&'static str> {
    match t {
        _ if maps::HASH_FAMILY.contains(&t) || is_local_storage(t) => None,
        2 | 6 | 3 | 4 | 8 | 12 | 14 | 16 | 17 | 20 => Some("an array: its entries are fixed at max_entries"),
        27 | 31 => Some("a ring buffer: it holds no entries to count"),
        26 => Some("struct_ops: the scheduler's ops themselves"),
        33 => Some("an arena: its memory is pages, not map entries"),
        19 | 21 => Some("legacy cgroup storage: one entry per attached cgroup"),
        24 | 28 => Some("socket or inode storage: freed with its owner"),
        22 | 23 => Some("a queue or stack: no keys to walk"),
        11 | 30 => Some("a trie or bloom filter: not counted"),
        _ => Some("a type the agent does not count"),
    }
}

/// One map of the scheduler, as maps.json describes it.
#[derive(Debug, Clone, Serialize)]
pub struct MapRecord {
    pub id: u32,
    pub name: String,
    /// maps.csv column (the name, or name#id when two share it)
    pub column: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// from the map's BTF, "" when it has none
    pub key_type: String,
    pub value_type: String,
    /// the programs of the scheduler that use it
    pub programs: Vec<String>,
    pub sampled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

struct Watched {
    info: MapInfo,
    fd: OwnedFd,
}

/// Tasks exited and cgroups destroyed since attach.
pub struct Exits {
    skel: ExitsSkel<'static>,
    _links: Vec<libbpf_rs::Link>,
}

impl Exits {
    pub fn attach() -> Result<Exits> {
        // Lives as long as the run: its object storage may too.
        let storage = Box::leak(Box::new(MaybeUninit::uninit()));
        let skel = ExitsSkelBuilder::default().open(storage).context("opening the exit counters")?.load().context("loading the exit counters")?;
        let links = vec![
            skel.progs.count_task_exit.attach().context("attaching to sched_process_exit")?,
            skel.progs.count_cgroup_rmdir.attach().context("attaching to cgroup_rmdir")?,
        ];
        Ok(Exits { skel, _links: links })
    }

    /// (tasks exited, cgroups destroyed)
    pub fn read(&self) -> (u64, u64) {
        match self.skel.maps.bss_data.as_deref() {
            Some(b) => (b.exits.tasks_exited, b.exits.cgroups_destroyed),
            None => (0, 0),
        }
    }
}

pub struct SchedMaps {
    watched: Vec<Watched>,
    exits: Option<Exits>,
    file: File,
}

impl SchedMaps {
    /// Find the maps of the programs loaded after `prog_baseline` and start
    /// maps.csv (and maps.json) in `out`.
    pub fn discover(prog_baseline: u32, exits: Option<Exits>, out: &Path) -> Result<SchedMaps> {
        let mut users: std::collections::BTreeMap<u32, BTreeSet<String>> = Default::default();
        let (mut id, mut next) = (prog_baseline, 0u32);
        // SAFETY: next is a live u32 that the call writes the following id into.
        while unsafe { sys::bpf_prog_get_next_id(id, &mut next) } == 0 {
            id = next;
            let Ok((name, ids)) = prog_maps(id) else { continue };
            if OURS.contains(&name.as_str()) {
                continue;
            }
            for m in ids {
                users.entry(m).or_default().insert(name.clone());
            }
        }
        let mut watched = Vec::new();
        let mut records = Vec::new();
        for (mid, progs) in users {
            let Ok(fd) = maps::open_by_id(mid) else { continue };
            let Ok(info) = maps::info(fd.as_fd()) else { continue };
            let skipped = skip_reason(info.map_type).map(str::to_string);
            records.push(MapRecord {
                id: mid,
                name: info.name.clone(),
                column: info.name.clone(),
                type_name: type_name(info.map_type).to_string(),
                key_size: info.key_size,
                value_size: info.value_size,
                max_entries: info.max_entries,
                key_type: crate::bpf::btf::type_name(info.btf_id, info.btf_key_type_id),
                value_type: crate::bpf::btf::type_name(info.btf_id, info.btf_value_type_id),
                programs: progs.into_iter().collect(),
                sampled: skipped.is_none(),
                skipped,
            });
            if records.last().is_some_and(|r| r.sampled) {
                watched.push(Watched { info, fd });
            }
        }
        // a column per map name; two maps of one name keep their ids apart
        let names: Vec<String> = records.iter().map(|r| r.name.clone()).collect();
        for r in records.iter_mut() {
            if names.iter().filter(|n| **n == r.name).count() > 1 {
                r.column = format!("{}#{}", r.name, r.id);
            }
        }
        std::fs::write(out.join("maps.json"), serde_json::to_string_pretty(&records)? + "\n").context("writing maps.json")?;
        let mut file = File::create(out.join("maps.csv")).context("creating maps.csv")?;
        let cols: Vec<&MapRecord> = records.iter().filter(|r| r.sampled).collect();
        let mut header = String::from("elapsed_s,tasks_exited,cgroups_destroyed,maps_bytes,churning");
        for r in &cols {
            header.push_str(&format!(",{}", csv_field(&r.column)));
        }
        for r in &cols {
            header.push_str(&format!(",{}", csv_field(&format!("{}.bytes", r.column))));
        }
        writeln!(file, "{header}")?;
        Ok(SchedMaps { watched, exits, file })
    }

    /// One row of maps.csv: entries of every watched map, their memlock, the exits.
    /// `churning`: the workload runs (0 in leakcheck's no-churn baseline).
    pub fn sample(&mut self, elapsed_s: f64, churning: bool, sampler: &mut Sampler) -> Result<()> {
        let (tasks, cgroups) = self.exits.as_ref().map(|e| e.read()).unwrap_or((0, 0));
        let mut entries = Vec::with_capacity(self.watched.len());
        let mut bytes = Vec::with_capacity(self.watched.len());
        for w in &self.watched {
            let src = MapSource { fd: w.fd.as_fd(), key_size: w.info.key_size, value_size: maps::walk_value_size(&w.info) };
            entries.push(sampler.count_entries(&src).unwrap_or(0));
            bytes.push(maps::memlock(w.fd.as_fd()));
        }
        let total: u64 = bytes.iter().sum();
        let mut line = format!("{elapsed_s:.3},{tasks},{cgroups},{total},{}", churning as u8);
        for v in entries.iter().chain(bytes.iter()) {
            line.push_str(&format!(",{v}"));
        }
        writeln!(self.file, "{line}")?;
        self.file.flush()?;
        Ok(())
    }
}

/// A map name as one CSV field (names are [A-Za-z0-9_.], but be safe).
fn csv_field(s: &str) -> String {
    s.chars().map(|c| if c == ',' || c == '"' || c.is_whitespace() { '_' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_maps_are_sampled() {
        for t in [1, 5, 9, 10, 13, 29, 32] {
            assert_eq!(skip_reason(t), None, "{}", type_name(t));
        }
        assert!(skip_reason(2).unwrap().contains("array"));
        assert!(skip_reason(6).unwrap().contains("array"));
        assert!(skip_reason(27).unwrap().contains("ring buffer"));
        assert!(skip_reason(33).unwrap().contains("arena"));
        assert_eq!(type_name(29), "task_storage");
        assert_eq!(type_name(33), "arena");
        assert_eq!(type_name(26), "struct_ops");
        assert_eq!(type_name(99), "unknown");
    }

    #[test]
    fn our_programs_are_named_as_the_kernel_truncates_them() {
        // the kernel keeps 15 characters of a program's name
        for full in ["count_elems", "count_task_storage", "count_cgrp_storage", "count_task_exit", "count_cgroup_rmdir"] {
            let kept: String = full.chars().take(15).collect();
            assert!(OURS.contains(&kept.as_str()), "{kept}");
        }
    }
}
