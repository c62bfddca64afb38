//! Small BTF queries through libbpf: does the kernel have a kfunc, and
//! where do named variables sit in a data section (a scheduler's .bss).

use std::ffi::{CStr, CString};
use std::path::Path;

use anyhow::{bail, Result};
use libbpf_rs::libbpf_sys as sys;

/// Owned libbpf `struct btf`.
struct Btf(*mut sys::btf);

impl Drop for Btf {
    fn drop(&mut self) {
        unsafe { sys::btf__free(self.0) }
    }
}

impl Btf {
    fn parse(path: &Path) -> Result<Btf> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())?;
        let p = unsafe { sys::btf__parse(c.as_ptr(), std::ptr::null_mut()) };
        if p.is_null() {
            bail!("cannot read BTF from {}: {}", path.display(), std::io::Error::last_os_error());
        }
        Ok(Btf(p))
    }

    fn from_kernel_id(id: u32) -> Result<Btf> {
        let p = unsafe { sys::btf__load_from_kernel_by_id(id) };
        if p.is_null() {
            bail!("cannot load BTF object {id}: {}", std::io::Error::last_os_error());
        }
        Ok(Btf(p))
    }

    fn name(&self, off: u32) -> String {
        let p = unsafe { sys::btf__name_by_offset(self.0, off) };
        if p.is_null() {
            return String::new();
        }
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// True if the BTF at `path` (normally /sys/kernel/btf/vmlinux) has a
/// function named `name`: how we tell a kernel with the helper from one
/// without, before trying to load anything.
pub fn has_func(path: &Path, name: &str) -> Result<bool> {
    let btf = Btf::parse(path)?;
    let c = CString::new(name)?;
    let id = unsafe { sys::btf__find_by_name_kind(btf.0, c.as_ptr(), sys::BTF_KIND_FUNC) };
    Ok(id > 0)
}

/// The value of enumerator `value` of `enum name` in the BTF at `path`, if
/// the kernel has it: how the loader tells which ops flags this kernel knows.
pub fn enum_value(path: &Path, name: &str, value: &str) -> Result<Option<u64>> {
    let btf = Btf::parse(path)?;
    let c = CString::new(name)?;
    for kind in [sys::BTF_KIND_ENUM64, sys::BTF_KIND_ENUM] {
        let id = unsafe { sys::btf__find_by_name_kind(btf.0, c.as_ptr(), kind) };
        if id <= 0 {
            continue;
        }
        let t = unsafe { sys::btf__type_by_id(btf.0, id as u32) };
        if t.is_null() {
            continue;
        }
        // SAFETY: the members (btf_enum or btf_enum64) follow the btf_type
        // record; vlen counts them (include/uapi/linux/btf.h).
        unsafe {
            let vlen = ((*t).info & 0xffff) as usize;
            let members = t.add(1).cast::<u32>();
            let stride = if kind == sys::BTF_KIND_ENUM64 { 3 } else { 2 };
            for i in 0..vlen {
                let m = members.add(i * stride);
                if btf.name(*m) == value {
                    let v = if stride == 3 {
                        (*m.add(1) as u64) | ((*m.add(2) as u64) << 32)
                    } else {
                        *m.add(1) as i32 as i64 as u64
                    };
                    return Ok(Some(v));
                }
            }
        }
    }
    Ok(None)
}

/// `sizeof(struct name)` in the BTF at `path`, if it has that struct.
pub fn struct_size(path: &Path, name: &str) -> Result<Option<u64>> {
    let btf = Btf::parse(path)?;
    let c = CString::new(name)?;
    let id = unsafe { sys::btf__find_by_name_kind(btf.0, c.as_ptr(), sys::BTF_KIND_STRUCT) };
    if id <= 0 {
        return Ok(None);
    }
    let size = unsafe { sys::btf__resolve_size(btf.0, id as u32) };
    Ok((size > 0).then_some(size as u64))
}

/// (name, offset, size) of every variable of the DATASEC `type_id` in the
/// kernel BTF object `btf_id`: the layout of a map like `prog.bss`.
pub fn datasec_vars(btf_id: u32, type_id: u32) -> Result<Vec<(String, u32, u32)>> {
    let btf = Btf::from_kernel_id(btf_id)?;
    let t = unsafe { sys::btf__type_by_id(btf.0, type_id) };
    if t.is_null() {
        bail!("BTF type {type_id} not found");
    }
    let info = unsafe { (*t).info };
    let kind = (info >> 24) & 0x1f;
    if kind != sys::BTF_KIND_DATASEC {
        bail!("BTF type {type_id} is not a data section");
    }
    let vlen = (info & 0xffff) as usize;
    // the var_secinfo array follows the btf_type header in memory
    let infos = unsafe {
        std::slice::from_raw_parts(
            (t as *const u8).add(std::mem::size_of::<sys::btf_type>()) as *const sys::btf_var_secinfo,
            vlen,
        )
    };
    let mut vars = Vec::with_capacity(vlen);
    for si in infos {
        let v = unsafe { sys::btf__type_by_id(btf.0, si.type_) };
        if v.is_null() {
            continue;
        }
        vars.push((btf.name(unsafe { (*v).name_off }), si.offset, si.size));
    }
    Ok(vars)
}

/// A readable name for type `type_id` of the kernel BTF object `btf_id`
/// (a map's key or value type): `struct task_ctx`, `u32`, `pid_t`; "" when
/// the map has no BTF for it.
pub fn type_name(btf_id: u32, type_id: u32) -> String {
    if btf_id == 0 || type_id == 0 {
        return String::new();
    }
    let Ok(btf) = Btf::from_kernel_id(btf_id) else { return String::new() };
    let t = unsafe { sys::btf__type_by_id(btf.0, type_id) };
    if t.is_null() {
        return String::new();
    }
    // SAFETY: t points at a btf_type record inside `btf`, alive here.
    let (info, name_off) = unsafe { ((*t).info, (*t).name_off) };
    let name = btf.name(name_off);
    let kind = (info >> 24) & 0x1f;
    let tag = match kind {
        k if k == sys::BTF_KIND_STRUCT => "struct ",
        k if k == sys::BTF_KIND_UNION => "union ",
        k if k == sys::BTF_KIND_ENUM || k == sys::BTF_KIND_ENUM64 => "enum ",
        k if k == sys::BTF_KIND_PTR => return "pointer".into(),
        k if k == sys::BTF_KIND_ARRAY => return "array".into(),
        _ => "",
    };
    if name.is_empty() {
        format!("{}(anonymous)", tag)
    } else {
        format!("{tag}{name}")
    }
}
