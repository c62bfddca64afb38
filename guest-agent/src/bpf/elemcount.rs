//! A map's entry count from the kernel's own element count
//! (bpf/count/elem_count.bpf.c), read through a bpf_map iterator: O(number
//! of maps) per read whatever the map's size, where walking a 16k-entry map
//! costs ~10-30 ms of a TCG guest's CPU (docs/bench.md, (a) and (b)).

use std::io::Read;
use std::mem::MaybeUninit;

use anyhow::{ensure, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use crate::skel::elem_count::{ElemCountSkel, ElemCountSkelBuilder};

pub struct ElemCounter {
    skel: ElemCountSkel<'static>,
    link: libbpf_rs::Link,
}

impl ElemCounter {
    /// Load and attach the iterator; fails on a kernel without
    /// bpf_map_sum_elem_count (before 6.6), where callers walk the map instead.
    pub fn new() -> Result<ElemCounter> {
        // One counter lives as long as the agent: its object storage may too.
        let storage = Box::leak(Box::new(MaybeUninit::uninit()));
        let skel = ElemCountSkelBuilder::default()
            .open(storage)
            .context("opening the element-count iterator")?
            .load()
            .context("loading the element-count iterator")?;
        let link = skel.progs.count_elems.attach().context("attaching the element-count iterator")?;
        Ok(ElemCounter { skel, link })
    }

    pub fn count(&mut self, map_id: u32) -> Result<u64> {
        {
            let bss = self.skel.maps.bss_data.as_deref_mut().context("bss is mmapped")?;
            bss.arg_map_id = map_id;
            bss.out_elem_count = -1;
        }
        let mut it = libbpf_rs::Iter::new(&self.link).context("opening the map iterator")?;
        it.read_to_end(&mut Vec::new()).context("running the map iterator")?;
        let n = self.skel.maps.bss_data.as_deref().context("bss is mmapped")?.out_elem_count;
        ensure!(n >= 0, "the map iterator did not see map {map_id}");
        Ok(n as u64)
    }
}
