//! Small BTF queries through `libbpf_rs::btf`: does the kernel have a kfunc,
//! which value an enumerator has, how big a struct is, where named variables
//! sit in a data section (a scheduler's .bss), what a map's key type is called.

use std::io::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use libbpf_rs::btf::types::{DataSec, Enum, Enum64, Func, Struct};
use libbpf_rs::btf::{BtfKind, BtfType, TypeId};
use libbpf_rs::{libbpf_sys as sys, Btf, HasSize};

fn parse(path: &Path) -> Result<Btf<'static>> {
    Btf::from_path(path).with_context(|| format!("cannot read BTF from {}", path.display()))
}

/// The kernel's BTF object `id` (a loaded program's or map's). libbpf-rs
/// loads BTF from a file or a program id only, so the object's raw bytes are
/// read by id and parsed from a memfd.
fn from_kernel_id(id: u32) -> Result<Btf<'static>> {
    // SAFETY: a plain syscall wrapper; the fd it returns is owned below.
    let fd = unsafe { sys::bpf_btf_get_fd_by_id(id) };
    if fd < 0 {
        bail!("cannot open BTF object {id}: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned to us by the kernel and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let get = |buf: &mut Vec<u8>| -> Result<u32> {
        let mut info = sys::bpf_btf_info { btf: buf.as_mut_ptr() as u64, btf_size: buf.len() as u32, ..Default::default() };
        let mut len = std::mem::size_of::<sys::bpf_btf_info>() as u32;
        // SAFETY: info is a bpf_btf_info of `len` bytes, and info.btf points
        // at `btf_size` writable bytes (or is null with size 0).
        let r = unsafe { sys::bpf_obj_get_info_by_fd(fd.as_raw_fd(), (&mut info as *mut sys::bpf_btf_info).cast(), &mut len) };
        if r != 0 {
            bail!("cannot read BTF object {id}: {}", std::io::Error::last_os_error());
        }
        Ok(info.btf_size)
    };
    let mut raw = Vec::new();
    let size = get(&mut raw)?;
    raw.resize(size as usize, 0);
    get(&mut raw)?;
    let mut mem = memfd("btf")?;
    mem.write_all(&raw).context("writing BTF into a memfd")?;
    Btf::from_path(format!("/proc/self/fd/{}", mem.as_raw_fd())).with_context(|| format!("cannot parse BTF object {id}"))
}

fn memfd(name: &str) -> Result<std::fs::File> {
    let c = std::ffi::CString::new(name)?;
    // SAFETY: c is a valid NUL-terminated name; the fd returned is owned below.
    let fd = unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        bail!("memfd_create: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh memfd nothing else owns.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

fn name_of(t: &BtfType<'_>) -> String {
    t.name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// True if the BTF at `path` (normally /sys/kernel/btf/vmlinux) has a
/// function named `name`: how we tell a kernel with the helper from one
/// without, before trying to load anything.
pub fn has_func(path: &Path, name: &str) -> Result<bool> {
    Ok(parse(path)?.type_by_name::<Func>(name).is_some())
}

/// The value of enumerator `value` of `enum name` in the BTF at `path`, if
/// the kernel has it: how the loader tells which ops flags this kernel knows.
pub fn enum_value(path: &Path, name: &str, value: &str) -> Result<Option<u64>> {
    let btf = parse(path)?;
    let is = |n: Option<&std::ffi::OsStr>| n.is_some_and(|n| n == value);
    if let Some(e) = btf.type_by_name::<Enum64>(name) {
        return Ok(e.iter().find(|m| is(m.name)).map(|m| m.value as u64));
    }
    if let Some(e) = btf.type_by_name::<Enum>(name) {
        return Ok(e.iter().find(|m| is(m.name)).map(|m| m.value as u64));
    }
    Ok(None)
}

/// `sizeof(struct name)` in the BTF at `path`, if it has that struct.
pub fn struct_size(path: &Path, name: &str) -> Result<Option<u64>> {
    Ok(parse(path)?.type_by_name::<Struct>(name).map(|s| s.size() as u64).filter(|s| *s > 0))
}

/// (name, offset, size) of every variable of the DATASEC `type_id` in the
/// kernel BTF object `btf_id`: the layout of a map like `prog.bss`.
pub fn datasec_vars(btf_id: u32, type_id: u32) -> Result<Vec<(String, u32, u32)>> {
    let btf = from_kernel_id(btf_id)?;
    let Some(sec) = btf.type_by_id::<DataSec>(TypeId::from(type_id)) else {
        bail!("BTF type {type_id} is not a data section");
    };
    Ok(sec
        .iter()
        .filter_map(|v| {
            let var = btf.type_by_id::<BtfType>(v.ty)?;
            Some((name_of(&var), v.offset, v.size as u32))
        })
        .collect())
}

/// A readable name for type `type_id` of the kernel BTF object `btf_id`
/// (a map's key or value type): `struct task_ctx`, `u32`, `pid_t`; "" when
/// the map has no BTF for it.
pub fn type_name(btf_id: u32, type_id: u32) -> String {
    if btf_id == 0 || type_id == 0 {
        return String::new();
    }
    let Ok(btf) = from_kernel_id(btf_id) else { return String::new() };
    let Some(t) = btf.type_by_id::<BtfType>(TypeId::from(type_id)) else { return String::new() };
    let tag = match t.kind() {
        BtfKind::Struct => "struct ",
        BtfKind::Union => "union ",
        BtfKind::Enum | BtfKind::Enum64 => "enum ",
        BtfKind::Ptr => return "pointer".into(),
        BtfKind::Array => return "array".into(),
        _ => "",
    };
    match name_of(&t) {
        n if n.is_empty() => format!("{tag}(anonymous)"),
        n => format!("{tag}{n}"),
    }
}
