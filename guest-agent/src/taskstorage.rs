//! Entries of a task-storage map (BPF_MAP_TYPE_TASK_STORAGE), which has no
//! GET_NEXT_KEY to walk: a task iterator (bpf/count/task_storage_count.bpf.c)
//! loaded against the watched map asks it for every task, creating nothing.
//! O(tasks) per read. The map's entries live and die with their tasks, so a
//! steady count under churn is the expected shape.
//!
//! The object is opened without its skeleton: pointing `target` at another
//! map (reuse_fd) renames it after that map, which a skeleton's by-name
//! lookup at load refuses.

use std::io::Read;
use std::os::fd::BorrowedFd;

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags, Object, ObjectBuilder};

pub const BPF_MAP_TYPE_TASK_STORAGE: u32 = 29;

const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/task_storage_count.bpf.o"));

pub struct TaskStorageCounter {
    obj: Object,
    link: libbpf_rs::Link,
}

impl TaskStorageCounter {
    /// Load the iterator against the task-storage map behind `map`.
    pub fn new(map: BorrowedFd<'_>) -> Result<TaskStorageCounter> {
        let mut open = ObjectBuilder::default().open_memory(OBJECT).context("opening the task-storage iterator")?;
        let mut target = open
            .maps_mut()
            .find(|m| m.name() == "target")
            .context("the task-storage iterator has no map `target`")?;
        target.reuse_fd(map).context("pointing the task-storage iterator at the map")?;
        let obj = open.load().context("loading the task-storage iterator")?;
        let link = obj
            .progs_mut()
            .find(|p| p.name() == "count_task_storage")
            .context("the task-storage iterator has no program")?
            .attach()
            .context("attaching the task iterator")?;
        Ok(TaskStorageCounter { obj, link })
    }

    /// (tasks holding an entry, tasks visited)
    pub fn count(&mut self) -> Result<(u64, u64)> {
        // .bss holds `out`: u64 tasks, u64 with_entry
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
