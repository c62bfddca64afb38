//! Just enough BTF to answer "does this kernel have function X / struct Y?"
//! from a vmlinux's .BTF section or a raw /sys/kernel/btf/vmlinux blob, e.g.
//! whether a kernel carries `scx_bpf_map_scan_timeout` before we try to load
//! a scheduler that calls it.

use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::path::Path;

const KIND_STRUCT: u32 = 4;
const KIND_FUNC: u32 = 12;

pub struct Btf {
    funcs: HashSet<String>,
    structs: HashSet<String>,
}

fn u16le(b: &[u8], o: usize) -> Result<u16> {
    Ok(u16::from_le_bytes(b.get(o..o + 2).context("truncated")?.try_into()?))
}
fn u32le(b: &[u8], o: usize) -> Result<u32> {
    Ok(u32::from_le_bytes(b.get(o..o + 4).context("truncated")?.try_into()?))
}
fn u64le(b: &[u8], o: usize) -> Result<u64> {
    Ok(u64::from_le_bytes(b.get(o..o + 8).context("truncated")?.try_into()?))
}

/// Bytes of kind-specific data after a 12-byte btf_type (include/uapi/linux/btf.h).
fn extra(kind: u32, vlen: usize) -> Result<usize> {
    Ok(match kind {
        1 => 4,              // INT
        2 => 0,              // PTR
        3 => 12,             // ARRAY
        4 | 5 => 12 * vlen,  // STRUCT, UNION: members
        6 => 8 * vlen,       // ENUM
        7..=12 => 0,         // FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC
        13 => 8 * vlen,      // FUNC_PROTO: params
        14 => 4,             // VAR
        15 => 12 * vlen,     // DATASEC
        16 => 0,             // FLOAT
        17 => 4,             // DECL_TAG
        18 => 0,             // TYPE_TAG
        19 => 12 * vlen,     // ENUM64
        k => bail!("unknown BTF kind {k}"),
    })
}

impl Btf {
    /// Parse a raw BTF blob (what /sys/kernel/btf/vmlinux holds).
    pub fn parse(b: &[u8]) -> Result<Btf> {
        if u16le(b, 0)? != 0xeb9f {
            bail!("not BTF (bad magic)");
        }
        let hdr_len = u32le(b, 4)? as usize;
        let type_off = u32le(b, 8)? as usize;
        let type_len = u32le(b, 12)? as usize;
        let str_off = u32le(b, 16)? as usize;
        let str_len = u32le(b, 20)? as usize;
        let types = b.get(hdr_len + type_off..hdr_len + type_off + type_len).context("BTF types out of range")?;
        let strs = b.get(hdr_len + str_off..hdr_len + str_off + str_len).context("BTF strings out of range")?;
        let name = |off: u32| -> String {
            let s = &strs[(off as usize).min(strs.len())..];
            let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
            String::from_utf8_lossy(&s[..end]).into_owned()
        };
        let (mut funcs, mut structs) = (HashSet::new(), HashSet::new());
        let mut o = 0;
        while o + 12 <= types.len() {
            let name_off = u32le(types, o)?;
            let info = u32le(types, o + 4)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            match kind {
                KIND_FUNC => {
                    funcs.insert(name(name_off));
                }
                KIND_STRUCT => {
                    structs.insert(name(name_off));
                }
                _ => {}
            }
            o += 12 + extra(kind, vlen)?;
        }
        Ok(Btf { funcs, structs })
    }

    /// The .BTF section of an ELF64 little-endian file (a vmlinux).
    pub fn from_elf_file(path: &Path) -> Result<Btf> {
        let b = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_elf(&b).with_context(|| format!("{}: no usable BTF", path.display()))
    }

    pub fn from_elf(b: &[u8]) -> Result<Btf> {
        if b.get(..4) != Some(b"\x7fELF") || b.get(4) != Some(&2) {
            bail!("not an ELF64 file");
        }
        let shoff = u64le(b, 0x28)? as usize;
        let shentsize = u16le(b, 0x3a)? as usize;
        let shnum = u16le(b, 0x3c)? as usize;
        let shstrndx = u16le(b, 0x3e)? as usize;
        let sh = |i: usize| shoff + i * shentsize;
        let strtab_off = u64le(b, sh(shstrndx) + 0x18)? as usize;
        for i in 0..shnum {
            let name_off = u32le(b, sh(i))? as usize;
            let n = &b[strtab_off + name_off..];
            if n.starts_with(b".BTF\0") {
                let off = u64le(b, sh(i) + 0x18)? as usize;
                let size = u64le(b, sh(i) + 0x20)? as usize;
                return Self::parse(b.get(off..off + size).context(".BTF out of range")?);
            }
        }
        bail!("no .BTF section (kernel built without CONFIG_DEBUG_INFO_BTF)")
    }

    pub fn has_func(&self, name: &str) -> bool {
        self.funcs.contains(name)
    }

    pub fn has_struct(&self, name: &str) -> bool {
        self.structs.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made blob: INT "int", FUNC_PROTO, FUNC "my_kfunc", STRUCT "s" with one member.
    fn blob() -> Vec<u8> {
        let strs = b"\0int\0my_kfunc\0s\0m\0".to_vec();
        let mut t = Vec::new();
        let ty = |t: &mut Vec<u8>, name: u32, kind: u32, vlen: u32, size: u32| {
            t.extend(name.to_le_bytes());
            t.extend(((kind << 24) | vlen).to_le_bytes());
            t.extend(size.to_le_bytes());
        };
        ty(&mut t, 1, 1, 0, 4);
        t.extend(32u32.to_le_bytes()); // INT encoding
        ty(&mut t, 0, 13, 1, 1); // FUNC_PROTO returning int, one param
        t.extend([0u8; 8]);
        ty(&mut t, 5, 12, 0, 2); // FUNC my_kfunc -> proto 2
        ty(&mut t, 14, 4, 1, 4); // STRUCT s, one member
        t.extend([16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        let mut b = Vec::new();
        b.extend(0xeb9fu16.to_le_bytes());
        b.push(1);
        b.push(0);
        b.extend(24u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend((t.len() as u32).to_le_bytes());
        b.extend((t.len() as u32).to_le_bytes());
        b.extend((strs.len() as u32).to_le_bytes());
        b.extend(&t);
        b.extend(&strs);
        b
    }

    #[test]
    fn finds_funcs_and_structs() {
        let btf = Btf::parse(&blob()).unwrap();
        assert!(btf.has_func("my_kfunc"));
        assert!(!btf.has_func("int"));
        assert!(btf.has_struct("s"));
        assert!(!btf.has_struct("sched_ext_ops"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(Btf::parse(b"not btf at all, no magic here").is_err());
        assert!(Btf::from_elf(b"\x7fELF\x01 32-bit").is_err());
    }
}
