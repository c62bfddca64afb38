//! Files in and out of the guest as tar streams. Unpacking trusts nothing in
//! the archive: absolute paths, `..`, links and devices are refused, so a
//! hostile guest cannot write outside the destination directory.

use anyhow::{bail, Context, Result};
use std::path::{Component, Path, PathBuf};

/// A tar of `src` (file or directory) whose top entry is named `name`. Modes are kept.
pub fn pack(src: &Path, name: &str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(src).with_context(|| format!("cannot read {}", src.display()))?;
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    if meta.is_dir() {
        b.append_dir_all(name, src).with_context(|| format!("cannot pack directory {}", src.display()))?;
    } else {
        let mut f = std::fs::File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
        b.append_file(name, &mut f).with_context(|| format!("cannot pack {}", src.display()))?;
    }
    Ok(b.into_inner()?)
}

/// A relative path with only normal components, or an error naming the entry.
fn safe_relative(p: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::CurDir => {}
            Component::ParentDir => bail!("refusing archive entry with `..`: {}", p.display()),
            Component::RootDir | Component::Prefix(_) => {
                bail!("refusing archive entry with an absolute path: {}", p.display())
            }
        }
    }
    if out.as_os_str().is_empty() {
        bail!("refusing archive entry with an empty path");
    }
    Ok(out)
}

/// Unpack into `dest` (created if missing); returns the top-level paths made.
/// Only regular files and directories are accepted: results never need links,
/// and refusing them closes the "write through a planted symlink" hole.
pub fn unpack_safely(archive: &[u8], dest: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let dest = dest.canonicalize()?;
    let mut ar = tar::Archive::new(archive);
    // rwx bits only: we run as root, so a setuid/setgid bit from the guest's
    // archive would hand the guest a privileged binary on the host
    ar.set_preserve_permissions(false);
    ar.set_overwrite(true);
    let mut tops = Vec::new();
    for entry in ar.entries().context("not a tar stream")? {
        let mut entry = entry.context("corrupt tar stream")?;
        let raw = entry.path()?.into_owned();
        let rel = safe_relative(&raw)?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            bail!("refusing archive entry {} of type {:?}: only files and directories are copied", raw.display(), kind);
        }
        let target = dest.join(&rel);
        // A directory already on disk under dest could be a symlink planted
        // earlier by someone else: check the real parent stays inside.
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
            let real = parent.canonicalize()?;
            if !real.starts_with(&dest) {
                bail!("refusing archive entry {}: its directory resolves outside {}", raw.display(), dest.display());
            }
        }
        if std::fs::symlink_metadata(&target).map(|m| m.file_type().is_symlink()).unwrap_or(false) {
            bail!("refusing to write through symlink {}", target.display());
        }
        entry.unpack(&target).with_context(|| format!("cannot write {}", target.display()))?;
        if let Some(first) = rel.components().next() {
            let top = dest.join(first);
            if !tops.contains(&top) {
                tops.push(top);
            }
        }
    }
    Ok(tops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn raw_tar(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        // Built by hand so that hostile names reach the stream unchanged.
        let mut out = Vec::new();
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_old();
            let nb = name.as_bytes();
            h.as_old_mut().name[..nb.len()].copy_from_slice(nb);
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if let Some(l) = link {
                h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    #[test]
    fn setuid_setgid_and_sticky_bits_are_dropped() {
        let t = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        for (name, mode) in [("suid", 0o4755), ("sgid", 0o2750), ("sticky", 0o1777)] {
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_mode(mode);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append_data(&mut h, name, &b"#!"[..]).unwrap();
        }
        let ar = b.into_inner().unwrap();
        unpack_safely(&ar, t.path()).unwrap();
        for (name, want) in [("suid", 0o755), ("sgid", 0o750), ("sticky", 0o777)] {
            let mode = std::fs::metadata(t.path().join(name)).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, want, "{name}: {mode:o}");
        }
    }

    #[test]
    fn round_trip_keeps_content_and_mode() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/x.sh"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(src.join("sub/x.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
        let ar = pack(&src, "copy").unwrap();
        let tops = unpack_safely(&ar, &t.path().join("out")).unwrap();
        assert_eq!(tops, vec![t.path().join("out").canonicalize().unwrap().join("copy")]);
        let f = t.path().join("out/copy/sub/x.sh");
        assert_eq!(std::fs::read(&f).unwrap(), b"#!/bin/sh\n");
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o750);
    }

    #[test]
    fn hostile_archives_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("results");
        for (entries, want) in [
            (vec![("../evil", tar::EntryType::Regular, &b"x"[..], None)], "`..`"),
            (vec![("a/../../evil", tar::EntryType::Regular, &b"x"[..], None)], "`..`"),
            (vec![("/etc/evil", tar::EntryType::Regular, &b"x"[..], None)], "absolute path"),
            (vec![("link", tar::EntryType::Symlink, &b""[..], Some("/etc"))], "only files and directories"),
            (vec![("hl", tar::EntryType::Link, &b""[..], Some("/etc/passwd"))], "only files and directories"),
        ] {
            let e = unpack_safely(&raw_tar(&entries), &dest).unwrap_err().to_string();
            assert!(e.contains(want), "{entries:?}: {e}");
        }
        assert!(!t.path().join("evil").exists());
    }

    #[test]
    fn planted_symlink_in_destination_is_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("results");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, dest.join("d")).unwrap();
        let ar = raw_tar(&[("d/f", tar::EntryType::Regular, b"x", None)]);
        let e = unpack_safely(&ar, &dest).unwrap_err().to_string();
        assert!(e.contains("outside"), "{e}");
        assert!(!outside.join("f").exists());
    }
}
