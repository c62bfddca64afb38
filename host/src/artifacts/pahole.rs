//! The pahole the kernel is built with. Kernels from 7.x make the BPF-facing
//! prototypes of sched_ext kfuncs with implicit arguments (KF_IMPLICIT_ARGS)
//! from pahole's kfunc decl tags, which need pahole >= 1.26; Debian 12 has
//! 1.24. When the host's is older, Debian 13's pahole and the libraries it
//! links (its own glibc included, since 12's is too old for it) are fetched
//! from Debian's mirror, unpacked into the cache and run through that glibc's
//! loader: nothing is installed on the host. Every kernel is built with the
//! same pahole >= 1.26, and its version is part of the kernel's cache key.

use crate::artifacts::debsrc;
use crate::paths;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// 1.26 as major * 100 + minor, as the kernel's CONFIG_PAHOLE_VERSION has it.
pub const MIN: u32 = 126;
/// The suite whose pahole is fetched (1.30 there).
pub const SUITE: &str = "trixie";
/// pahole and the shared objects it loads, as Debian 13 names them.
const PKGS: [&str; 9] =
    ["pahole", "libdw1t64", "libelf1t64", "libbpf1", "libc6", "zlib1g", "libzstd1", "liblzma5", "libbz2-1.0"];

#[derive(Debug, Clone, PartialEq)]
pub struct Pahole {
    /// What to pass to make as PAHOLE=.
    pub cmd: PathBuf,
    /// "1.30"
    pub version: String,
    /// "host" or "Debian trixie (fetched)"
    pub origin: String,
}

/// "v1.30\n" -> 130
pub fn version_number(v: &str) -> Option<u32> {
    let v = v.trim().trim_start_matches('v');
    let (maj, min) = v.split_once('.')?;
    let min: String = min.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some(maj.parse::<u32>().ok()? * 100 + min.parse::<u32>().ok()?)
}

fn version_of(cmd: &Path) -> Option<String> {
    let out = Command::new(cmd).arg("--version").output().ok().filter(|o| o.status.success())?;
    let v = String::from_utf8_lossy(&out.stdout).trim().trim_start_matches('v').to_string();
    version_number(&v).map(|_| v)
}

fn dir() -> PathBuf {
    paths::cache_dir().join("pahole").join(SUITE)
}

/// The script that runs the fetched pahole with the fetched glibc.
fn wrapper_script(root: &Path) -> String {
    let lib = root.join("usr/lib/x86_64-linux-gnu");
    format!(
        "#!/bin/sh\n# Debian {SUITE}'s pahole with its own libraries (written by scx-vmctl, src/pahole.rs)\n\
         exec '{}' --library-path '{}' '{}' \"$@\"\n",
        lib.join("ld-linux-x86-64.so.2").display(),
        lib.display(),
        root.join("usr/bin/pahole").display()
    )
}

/// The fetched pahole if it is in the cache and runs.
fn fetched() -> Option<Pahole> {
    let cmd = dir().join("pahole");
    let version = version_of(&cmd)?;
    Some(Pahole { cmd, version, origin: format!("Debian {SUITE} (fetched)") })
}

/// Fetch Debian 13's pahole into the cache (about 4.3 MB of .debs).
fn fetch() -> Result<Pahole> {
    let d = dir();
    let (apt_dir, args) = debsrc::suite_apt(SUITE)?;
    let dl = apt_dir.join("pahole-debs");
    let _ = std::fs::remove_dir_all(&dl);
    std::fs::create_dir_all(&dl)?;
    let out = Command::new("apt-get").args(&args).arg("download").args(PKGS).current_dir(&dl).output().context("cannot run apt-get")?;
    if !out.status.success() {
        bail!("downloading pahole from Debian {SUITE} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let tmp = d.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let root = d.join("root");
    std::fs::create_dir_all(tmp.join("root"))?;
    for e in std::fs::read_dir(&dl)?.flatten() {
        let st = Command::new("dpkg-deb").arg("-x").arg(e.path()).arg(tmp.join("root")).status().context("cannot run dpkg-deb")?;
        if !st.success() {
            bail!("unpacking {} failed", e.path().display());
        }
    }
    let _ = std::fs::remove_dir_all(&dl);
    // The script names the final root, so it is written for there and the
    // directory moved into place whole.
    std::fs::write(tmp.join("pahole"), wrapper_script(&root))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.join("pahole"), std::fs::Permissions::from_mode(0o755))?;
    let _ = std::fs::remove_dir_all(&d);
    std::fs::rename(&tmp, &d)?;
    fetched().with_context(|| format!("the pahole fetched from Debian {SUITE} does not run ({})", d.join("pahole").display()))
}

/// The pahole for a kernel build: the host's when it is >= 1.26, else Debian
/// 13's from the cache, fetched when `may_fetch`. If it cannot be had, the
/// host's older one is used with a warning (6.12 builds fine with it; the
/// kernel build notes what a 7.x tree loses).
pub fn select(may_fetch: bool, warn: &mut dyn FnMut(&str)) -> Result<Pahole> {
    let host = crate::artifacts::kernel::which("pahole").and_then(|p| version_of(&p).map(|v| (p, v)));
    if let Some((cmd, version)) = &host {
        if version_number(version).unwrap_or(0) >= MIN {
            return Ok(Pahole { cmd: cmd.clone(), version: version.clone(), origin: "host".into() });
        }
    }
    if let Some(p) = fetched() {
        return Ok(p);
    }
    let err = if may_fetch {
        match fetch() {
            Ok(p) => return Ok(p),
            Err(e) => e,
        }
    } else {
        anyhow::anyhow!("not fetched yet")
    };
    match host {
        Some((cmd, version)) => {
            if may_fetch {
                warn(&format!("warning: pahole {version} is older than 1.26 and Debian {SUITE}'s could not be fetched ({err:#}); building with it"));
            }
            Ok(Pahole { cmd, version, origin: "host".into() })
        }
        None => bail!("pahole is needed to build the kernel and Debian {SUITE}'s could not be fetched ({err:#}): apt-get install dwarves"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(version_number("v1.24\n"), Some(124));
        assert_eq!(version_number("1.30"), Some(130));
        assert_eq!(version_number("v1.26-rc1"), Some(126));
        assert_eq!(version_number("pahole"), None);
        assert!(version_number("v1.24").unwrap() < MIN && version_number("v1.26").unwrap() >= MIN);
    }

    #[test]
    fn wrapper_runs_the_fetched_loader_on_the_fetched_binary() {
        let s = wrapper_script(Path::new("/c/pahole/trixie/root"));
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains(
            "exec '/c/pahole/trixie/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' --library-path \
             '/c/pahole/trixie/root/usr/lib/x86_64-linux-gnu' '/c/pahole/trixie/root/usr/bin/pahole' \"$@\""
        ), "{s}");
    }
}
