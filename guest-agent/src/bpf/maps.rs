//! The kernel's BPF maps through BPF syscalls (libbpf's thin wrappers): find
//! a map by name (BPF_MAP_GET_NEXT_ID, GET_FD_BY_ID, OBJ_GET_INFO_BY_FD),
//! count its entries in batches (BPF_MAP_LOOKUP_BATCH, with GET_NEXT_KEY
//! as the fallback), read its memlock from fdinfo. No bpftool, no fork:
//! this runs every sample and must stay cheap at tens of thousands of entries.

use std::ffi::c_void;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use anyhow::{bail, Result};
use libbpf_rs::libbpf_sys as sys;

pub const BPF_MAP_TYPE_ARRAY: u32 = 2;

#[derive(Debug, Clone)]
pub struct MapInfo {
    pub id: u32,
    pub name: String,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub btf_id: u32,
    pub btf_key_type_id: u32,
    pub btf_value_type_id: u32,
}

fn neg_errno(ret: i32) -> io::Error {
    // libbpf returns -errno
    io::Error::from_raw_os_error(if ret < 0 { -ret } else { ret })
}

pub fn info(fd: BorrowedFd<'_>) -> Result<MapInfo> {
    let mut info = sys::bpf_map_info::default();
    let mut len = std::mem::size_of::<sys::bpf_map_info>() as u32;
    // SAFETY: info is a bpf_map_info of `len` bytes and fd is open; both outlive the call.
    let ret = unsafe { sys::bpf_map_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
    if ret < 0 {
        bail!("BPF_OBJ_GET_INFO_BY_FD: {}", neg_errno(ret));
    }
    let name: Vec<u8> = info.name.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
    Ok(MapInfo {
        id: info.id,
        name: String::from_utf8_lossy(&name).into_owned(),
        map_type: info.type_,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        btf_id: info.btf_id,
        btf_key_type_id: info.btf_key_type_id,
        btf_value_type_id: info.btf_value_type_id,
    })
}

pub fn open_by_id(id: u32) -> Result<OwnedFd> {
    // SAFETY: takes only an id, no pointers; returns a new fd or -errno.
    let fd = unsafe { sys::bpf_map_get_fd_by_id(id) };
    if fd < 0 {
        bail!("BPF_MAP_GET_FD_BY_ID {id}: {}", neg_errno(fd));
    }
    // SAFETY: fd is fresh from BPF_MAP_GET_FD_BY_ID and owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Every map in the kernel, with an fd (maps can vanish while we walk:
/// those are skipped).
pub fn all() -> Vec<(MapInfo, OwnedFd)> {
    let mut out = Vec::new();
    let mut id = 0u32;
    loop {
        let mut next = 0u32;
        // SAFETY: next is a live u32 that the call writes the following id into.
        if unsafe { sys::bpf_map_get_next_id(id, &mut next) } < 0 {
            break;
        }
        id = next;
        if let Ok(fd) = open_by_id(id) {
            if let Ok(i) = info(fd.as_fd()) {
                out.push((i, fd));
            }
        }
    }
    out
}

/// The highest map id in use now: maps created later have larger ids
/// (the kernel hands them out cyclically, so this holds until 2^31 maps).
pub fn last_id() -> u32 {
    let (mut id, mut next) = (0u32, 0u32);
    // SAFETY: next is a live u32 that the call writes the following id into.
    while unsafe { sys::bpf_map_get_next_id(id, &mut next) } == 0 {
        id = next;
    }
    id
}

/// Map types whose kernel keeps an element count (kernel/bpf/hashtab.c,
/// 6.6+): HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH, HASH_OF_MAPS.
pub const HASH_FAMILY: [u32; 5] = [1, 5, 9, 10, 13];

/// The value size to walk a map with: a per-CPU map's batch lookup returns
/// one 8-byte-aligned value per possible CPU, and the buffer must hold them.
pub fn walk_value_size(mi: &MapInfo) -> u32 {
    const PERCPU: [u32; 4] = [5, 6, 10, 21]; // PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE
    if !PERCPU.contains(&mi.map_type) {
        return mi.value_size;
    }
    // SAFETY: no arguments; libbpf only parses /sys/devices/system/cpu/possible (and caches it).
    let cpus = unsafe { sys::libbpf_num_possible_cpus() }.max(1) as u32;
    ((mi.value_size + 7) & !7) * cpus
}

/// Maps whose (kernel-truncated, 15 chars) name is `name`.
pub fn find_by_name(name: &str) -> Vec<(MapInfo, OwnedFd)> {
    let want: String = name.chars().take(15).collect();
    all().into_iter().filter(|(i, _)| i.name == want).collect()
}

/// Counts a map's entries. Keeps its buffers between calls so sampling
/// does not allocate.
pub struct Counter {
    keys: Vec<u8>,
    values: Vec<u8>,
    batch: u32,
    batch_ok: bool,
}

impl Default for Counter {
    fn default() -> Self {
        Counter { keys: Vec::new(), values: Vec::new(), batch: 4096, batch_ok: true }
    }
}

impl Counter {
    pub fn count(&mut self, fd: BorrowedFd<'_>, key_size: u32, value_size: u32) -> Result<u64> {
        if self.batch_ok {
            match self.count_batched(fd, key_size, value_size) {
                Ok(n) => return Ok(n),
                // old kernels or map types without batch ops
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOTSUP) | Some(524)) => {
                    self.batch_ok = false
                }
                Err(e) => bail!("BPF_MAP_LOOKUP_BATCH: {e}"),
            }
        }
        self.count_next_key(fd, key_size)
    }

    fn count_batched(&mut self, fd: BorrowedFd<'_>, key_size: u32, value_size: u32) -> io::Result<u64> {
        // values of per-CPU maps are bigger; we only count plain ones here,
        // so value_size is right; round up to 8 as the kernel does
        let vsz = (value_size as usize + 7) & !7;
        let mut total = 0u64;
        // the hash map's batch cursor is a bucket index (u32); 8 bytes is
        // enough for every map type that supports batches
        let mut in_batch = [0u8; 8];
        let mut out_batch = [0u8; 8];
        let mut first = true;
        loop {
            let n = self.batch as usize;
            if self.keys.len() < n * key_size as usize {
                self.keys.resize(n * key_size as usize, 0);
            }
            if self.values.len() < n * vsz {
                self.values.resize(n * vsz, 0);
            }
            let mut count = self.batch;
            // SAFETY: keys and values have room for `count` (= self.batch) entries of key_size and vsz
            // bytes; they, the 8-byte cursors and count all outlive the call.
            let ret = unsafe {
                sys::bpf_map_lookup_batch(
                    fd.as_raw_fd(),
                    if first { std::ptr::null_mut() } else { in_batch.as_mut_ptr() as *mut c_void },
                    out_batch.as_mut_ptr() as *mut c_void,
                    self.keys.as_mut_ptr() as *mut c_void,
                    self.values.as_mut_ptr() as *mut c_void,
                    &mut count,
                    std::ptr::null(),
                )
            };
            if ret < 0 {
                let err = neg_errno(ret);
                match err.raw_os_error() {
                    // end of the map; `count` holds the last partial batch
                    Some(libc::ENOENT) => return Ok(total + count as u64),
                    // one hash bucket holds more than a batch: grow, retry
                    Some(libc::ENOSPC) if self.batch < 1 << 20 => {
                        self.batch *= 2;
                        continue;
                    }
                    _ => return Err(err),
                }
            }
            total += count as u64;
            in_batch = out_batch;
            first = false;
        }
    }

    pub fn count_next_key(&mut self, fd: BorrowedFd<'_>, key_size: u32) -> Result<u64> {
        let ks = key_size as usize;
        let mut cur = vec![0u8; ks];
        let mut next = vec![0u8; ks];
        let mut n = 0u64;
        let mut first = true;
        loop {
            // SAFETY: cur and next are key_size bytes each, the size the kernel reads and writes,
            // and both outlive the call.
            let ret = unsafe {
                sys::bpf_map_get_next_key(
                    fd.as_raw_fd(),
                    if first { std::ptr::null() } else { cur.as_ptr() as *const c_void },
                    next.as_mut_ptr() as *mut c_void,
                )
            };
            if ret < 0 {
                let err = neg_errno(ret);
                if err.raw_os_error() == Some(libc::ENOENT) {
                    return Ok(n);
                }
                bail!("BPF_MAP_GET_NEXT_KEY: {err}");
            }
            n += 1;
            std::mem::swap(&mut cur, &mut next);
            first = false;
            // a map being rewritten under us could cycle; stop somewhere sane
            if n > 1 << 26 {
                bail!("map walk did not end");
            }
        }
    }
}

/// `memlock:` of the map's fdinfo: what the kernel charges for it, which
/// for a NO_PREALLOC hash grows with its entries.
pub fn memlock(fd: BorrowedFd<'_>) -> u64 {
    let path = format!("/proc/self/fdinfo/{}", fd.as_raw_fd());
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| parse_fdinfo_field(&s, "memlock"))
        .unwrap_or(0)
}

pub fn parse_fdinfo_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if k.trim() == field {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// Reads a u64 variable of a global data map (.bss/.data) by offset: the
/// counters of a scheduler we did not load.
pub fn read_u64_at(fd: BorrowedFd<'_>, value_size: u32, offset: u32) -> Result<u64> {
    let mut buf = vec![0u8; value_size as usize];
    let key = 0u32;
    // SAFETY: key is a u32, an array map's key; buf holds value_size bytes (the caller passes
    // the map's); both outlive the call.
    let ret = unsafe {
        sys::bpf_map_lookup_elem(
            fd.as_raw_fd(),
            &key as *const u32 as *const c_void,
            buf.as_mut_ptr() as *mut c_void,
        )
    };
    if ret < 0 {
        bail!("BPF_MAP_LOOKUP_ELEM: {}", neg_errno(ret));
    }
    let o = offset as usize;
    if o + 8 > buf.len() {
        bail!("offset {offset} outside the value");
    }
    Ok(u64::from_ne_bytes(buf[o..o + 8].try_into().unwrap()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_parsing() {
        let t = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\nmap_type:\t1\nkey_size:\t4\n\
                 value_size:\t24\nmax_entries:\t65536\nmap_flags:\t0x1\nmap_extra:\t0x0\n\
                 memlock:\t1581056\nmap_id:\t12\nfrozen:\t0\n";
        assert_eq!(parse_fdinfo_field(t, "memlock"), Some(1581056));
        assert_eq!(parse_fdinfo_field(t, "map_id"), Some(12));
        assert_eq!(parse_fdinfo_field(t, "nope"), None);
    }
}
