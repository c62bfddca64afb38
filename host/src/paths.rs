//! Where things live: the artifact cache, per-VM run directories, the tool's
//! key pair and the project's recipes. Every location can be moved with an
//! environment variable, which the tests use to stay out of the user's way.

use anyhow::{bail, Context, Result};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"))
}

/// Built kernels, images, agents and downloads, keyed by the hash of their inputs.
/// `$SCX_VMCTL_CACHE`, else `$XDG_CACHE_HOME/scx-vmctl`, else `~/.cache/scx-vmctl`.
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("SCX_VMCTL_CACHE") {
        return PathBuf::from(p);
    }
    match std::env::var_os("XDG_CACHE_HOME") {
        Some(x) if !x.is_empty() => PathBuf::from(x).join("scx-vmctl"),
        _ => home().join(".cache/scx-vmctl"),
    }
}

/// Running VMs and the tool's SSH key pair.
/// `$SCX_VMCTL_STATE`, else `~/.local/state/scx-vmctl`.
pub fn state_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("SCX_VMCTL_STATE") {
        return PathBuf::from(p);
    }
    home().join(".local/state/scx-vmctl")
}

/// One private directory per VM: QMP socket, serial log, overlay, pid.
pub fn vms_dir() -> PathBuf {
    state_dir().join("vms")
}

pub fn vm_dir(name: &str) -> PathBuf {
    vms_dir().join(name)
}

/// The project checkout holding vm-images/, bpf/, guest-agent/ and config/.
/// `$SCX_VMCTL_SRC`, else the tree this binary was built from.
pub fn source_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("SCX_VMCTL_SRC") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("host/ has a parent")
            .to_path_buf(),
    };
    if !dir.join("vm-images").is_dir() {
        bail!(
            "{} is not an scx-vmctl checkout (no vm-images/): set SCX_VMCTL_SRC to the repository",
            dir.display()
        );
    }
    Ok(dir)
}

/// Create `dir` (and parents) with mode 0700, and make sure an existing one is 0700 too.
pub fn private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot set mode 0700 on {}", dir.display()))?;
    Ok(())
}

/// Move a file, copying it when `to` is on another file system (a job
/// container's workspace volume and its home, for one), where rename fails.
pub fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            std::fs::copy(from, to)?;
            std::fs::remove_file(from)
        }
        r => r,
    }
}

/// Write a file atomically (temp file + rename), so a crash never leaves half a file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}tmp",
        path.extension().map(|e| format!("{}.", e.to_string_lossy())).unwrap_or_default()
    ));
    std::fs::write(&tmp, data).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_file_crosses_file_systems() {
        use std::os::unix::fs::MetadataExt;
        // /dev/shm is a tmpfs; the source tree is not
        let a = tempfile::tempdir_in("/dev/shm").unwrap();
        let b = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let dev = |p: &Path| std::fs::metadata(p).unwrap().dev();
        assert_ne!(dev(a.path()), dev(b.path()), "needs two file systems");
        let (from, to) = (a.path().join("disk"), b.path().join("disk"));
        std::fs::write(&from, b"qcow2").unwrap();
        assert_eq!(std::fs::rename(&from, &to).unwrap_err().kind(), std::io::ErrorKind::CrossesDevices);
        move_file(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"qcow2");
        assert!(!from.exists());
    }

    #[test]
    fn private_dir_is_0700_even_if_it_existed() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&d).unwrap();
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn write_atomic_replaces_content() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("x.json");
        write_atomic(&f, b"one").unwrap();
        write_atomic(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1, "no temp file left");
    }
}
