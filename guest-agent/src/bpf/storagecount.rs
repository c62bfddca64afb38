//! Entries of a task-storage or cgroup-storage map (BPF_MAP_TYPE_TASK_STORAGE,
//! BPF_MAP_TYPE_CGRP_STORAGE), which have no GET_NEXT_KEY to walk: a task
//! iterator (bpf/count/task_storage_count.bpf.c) or a cgroup iterator from
//! the root (bpf/count/cgrp_storage_count.bpf.c) loaded against the watched
//! map asks it for every task or cgroup, creating nothing. O(tasks) or
//! O(cgroups) per read. Their entries live and die with their owners, so a
//! steady count under churn is the expected shape.
//!
//! The object is opened without its skeleton: pointing `target` at another
//! map (reuse_fd) renames it after that map, which a skeleton's by-name
//! lookup at load refuses.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags, Object, ObjectBuilder};

pub const BPF_MAP_TYPE_TASK_STORAGE: u32 = 29;
pub const BPF_MAP_TYPE_CGRP_STORAGE: u32 = 32;

const TASK_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/task_storage_count.bpf.o"));
const CGRP_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cgrp_storage_count.bpf.o"));

/// Whether a map of this type is counted here.
pub fn is_local_storage(map_type: u32) -> bool {
    map_type == BPF_MAP_TYPE_TASK_STORAGE || map_type == BPF_MAP_TYPE_CGRP_STORAGE
}

pub struct StorageCounter {
    obj: Object,
    link: libbpf_rs::Link,
}

impl StorageCounter {
    /// Load the iterator against the task- or cgroup-storage map behind `map`.
    pub fn new(map: BorrowedFd<'_>) -> Result<StorageCounter> {
        let cgrp = crate::bpf::maps::info(map)?.map_type == BPF_MAP_TYPE_CGRP_STORAGE;
        let (object, prog) = if cgrp { (CGRP_OBJECT, "count_cgrp_storage") } else { (TASK_OBJECT, "count_task_storage") };
        let mut open = ObjectBuilder::default().open_memory(object).context("opening the storage iterator")?;
        let mut target = open
            .maps_mut()
            .find(|m| m.name() == "target")
            .context("the storage iterator has no map `target`")?;
        target.reuse_fd(map).context("pointing the storage iterator at the map")?;
        let obj = open.load().context("loading the storage iterator")?;
        let p = obj.progs_mut().find(|p| p.name() == prog).context("the storage iterator has no program")?;
        let link = if cgrp {
            // every cgroup, from the root down
            let root = std::fs::File::open(crate::workloads::cgroup::CGROUP_FS).context("opening the cgroup root")?;
            let opts = libbpf_rs::CgroupIterOpts {
                order: libbpf_rs::CgroupIterOrder::DescendantsPre,
                ..libbpf_rs::CgroupIterOpts::from_fd(root.as_fd())
            };
            p.attach_iter_with_opts(libbpf_rs::IterOpts::Cgroup(opts)).context("attaching the cgroup iterator")?
        } else {
            p.attach().context("attaching the task iterator")?
        };
        Ok(StorageCounter { obj, link })
    }

    /// (tasks or cgroups holding an entry, tasks or cgroups visited)
    pub fn count(&mut self) -> Result<(u64, u64)> {
        // .bss holds `out`: u64 visited, u64 with_entry
        let bss = self.obj.maps().find(|m| m.name().to_string_lossy().ends_with(".bss")).context("no .bss map")?;
        let key = 0u32.to_ne_bytes();
        bss.update(&key, &[0u8; 16], MapFlags::ANY).context("resetting the iterator's counts")?;
        let mut it = libbpf_rs::Iter::new(&self.link).context("opening the task iterator")?;
        it.read_to_end(&mut Vec::new()).context("running the task iterator")?;
        let v = bss.lookup(&key, MapFlags::ANY)?.context("reading the iterator's counts")?;
        let word = |i: usize| u64::from_ne_bytes(v[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        Ok((word(1), word(0)))
    }
}
