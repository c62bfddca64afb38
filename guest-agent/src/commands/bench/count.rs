//! Counting the entries of a 16k-entry hash map: the agent's way (batched
//! BPF_MAP_LOOKUP_BATCH, and its GET_NEXT_KEY fallback) against what the
//! original scripts did, `bpftool map dump id N` plus counting its output.
//! The bpftool side is timed from spawn to count, the count done in Rust
//! (a `| grep -c` pipeline, as in the scripts, would only add to it). Also
//! timed: the kernel's own element count read by a bpf_map iterator
//! (bpf_map_sum_elem_count), which costs the same at any map size.

use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use clap::Args;

use scx_contract::bench::{CountResult, Timings, Way};

use super::fixture;
use crate::bpf::maps;

#[derive(Args)]
pub struct CountArgs {
    /// map size (one of the bench maps: 1024, 16384, 262144)
    #[arg(long, default_value_t = 16384)]
    pub entries: u32,
    /// repetitions of the agent's counting (each way)
    #[arg(long, default_value_t = 40)]
    pub reps: u32,
    /// repetitions of bpftool map dump (slow: seconds each under TCG)
    #[arg(long, default_value_t = 5)]
    pub bpftool_reps: u32,
}

/// Entries in `bpftool map dump` output: one `key:` line each (plain
/// format) or one `"key":` member each (BTF-formatted maps).
pub fn count_dump(text: &str) -> u64 {
    text.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("key:") || l.starts_with("\"key\":"))
        .count() as u64
}

fn bpftool_dump(id: u32) -> Result<(u64, u64)> {
    let out = Command::new("bpftool")
        .args(["map", "dump", "id", &id.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("cannot run bpftool (is it in the image?)")?;
    ensure!(out.status.success(), "bpftool map dump failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    let text = String::from_utf8_lossy(&out.stdout);
    Ok((count_dump(&text), out.stdout.len() as u64))
}

pub fn run(a: &CountArgs) -> Result<CountResult> {
    super::pin_to_cpu0();
    let mut storage = MaybeUninit::uninit();
    let mut f = fixture::open(&mut storage, false)?;
    f.clear(a.entries)?;
    f.fill(a.entries)?;
    // An fd of our own, so the fixture stays free to run its programs.
    let owned = f.map_fd(a.entries)?.try_clone_to_owned()?;
    let fd = owned.as_fd();
    let id = maps::info(fd)?.id;
    let mut counter = maps::Counter::default();
    let mut elems = crate::bpf::elemcount::ElemCounter::new()?;
    let (mut batch_ns, mut next_ns, mut tool_ns, mut kern_ns) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut batch_n, mut next_n, mut tool_n, mut kern_n, mut bytes) = (0, 0, 0, 0, 0);
    // Interleaved, so drift on a shared host hits every way alike.
    let every = (a.reps / a.bpftool_reps.max(1)).max(1);
    for i in 0..a.reps.max(a.bpftool_reps) {
        if i < a.reps {
            let t = Instant::now();
            batch_n = counter.count(fd, 4, 24)?;
            batch_ns.push(t.elapsed().as_nanos() as u64);
            let t = Instant::now();
            next_n = counter.count_next_key(fd, 4)?;
            next_ns.push(t.elapsed().as_nanos() as u64);
            let t = Instant::now();
            kern_n = elems.count(id)?;
            kern_ns.push(t.elapsed().as_nanos() as u64);
        }
        if i % every == 0 && (tool_ns.len() as u32) < a.bpftool_reps {
            let t = Instant::now();
            (tool_n, bytes) = bpftool_dump(id)?;
            tool_ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    while (tool_ns.len() as u32) < a.bpftool_reps {
        let t = Instant::now();
        (tool_n, bytes) = bpftool_dump(id)?;
        tool_ns.push(t.elapsed().as_nanos() as u64);
    }
    f.clear(a.entries)?;
    Ok(CountResult {
        entries: a.entries,
        map_id: id,
        agent_batch: Way { count: batch_n, timings: Timings::of_ns(&batch_ns) },
        agent_next_key: Way { count: next_n, timings: Timings::of_ns(&next_ns) },
        bpftool: Way { count: tool_n, timings: Timings::of_ns(&tool_ns) },
        kernel_elem_count: Way { count: kern_n, timings: Timings::of_ns(&kern_ns) },
        bpftool_output_bytes: bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_both_dump_formats() {
        let plain = "key: 00 00 00 00  value: 01 00 00 00 00 00 00 00\nkey: 01 00 00 00  value: 02\nFound 2 elements\n";
        assert_eq!(count_dump(plain), 2);
        let btf = "[{\n        \"key\": 1,\n        \"value\": {\n            \"last_seen_ns\": 1\n        }\n    },{\n        \"key\": 2,\n        \"value\": {}\n    }\n]\n";
        assert_eq!(count_dump(btf), 2);
        assert_eq!(count_dump(""), 0);
    }
}
