//! A kernel source package from another Debian suite (`--source
//! linux-source-7.2@sid`), fetched from Debian's mirror with a private apt
//! sources list and unpacked into the cache, without installing anything on
//! the host. The version found first is kept (a cache hit needs no network);
//! `kernel build --force` looks again.

use crate::paths;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const MIRROR: &str = "http://deb.debian.org/debian";

/// "linux-source-7.2@sid" -> ("linux-source-7.2", "sid")
pub fn split(s: &str) -> Option<(&str, &str)> {
    let (pkg, suite) = s.split_once('@')?;
    let ok = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.+".contains(&b));
    (ok(pkg) && ok(suite) && pkg.starts_with("linux-source")).then_some((pkg, suite))
}

fn apt(dir: &Path) -> Vec<String> {
    vec![
        format!("-oDir::Etc::SourceList={}", dir.join("sources.list").display()),
        "-oDir::Etc::SourceParts=/dev/null".into(),
        format!("-oDir::State::Lists={}", dir.join("lists").display()),
        format!("-oDir::Cache={}", dir.join("cache").display()),
    ]
}

/// A private apt setup for `suite` (sources list, lists and cache under
/// `<cache>/debian/<suite>/`), updated: its directory and apt's options.
pub fn suite_apt(suite: &str) -> Result<(PathBuf, Vec<String>)> {
    let dir = paths::cache_dir().join("debian").join(suite);
    for sub in ["lists/partial", "cache/archives/partial"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let mirror = if suite.ends_with("-security") { "http://deb.debian.org/debian-security" } else { MIRROR };
    std::fs::write(dir.join("sources.list"), format!("deb {mirror} {suite} main\n"))?;
    let a = apt(&dir);
    let up = Command::new("apt-get").args(&a).args(["update", "-qq"]).output().context("cannot run apt-get")?;
    if !up.status.success() {
        bail!("apt-get update for Debian suite {suite} failed: {}", String::from_utf8_lossy(&up.stderr).trim());
    }
    Ok((dir, a))
}

/// The tarball and Debian version of `pkg` in `suite`.
pub fn fetch(pkg: &str, suite: &str, refresh: bool) -> Result<(PathBuf, String)> {
    let dir = paths::cache_dir().join("debian").join(suite);
    let pin = dir.join(format!("{pkg}.version"));
    if !refresh {
        if let Ok(v) = std::fs::read_to_string(&pin) {
            let v = v.trim().to_string();
            let t = dir.join(format!("{pkg}_{v}.tar.xz"));
            if t.exists() {
                return Ok((t, v));
            }
        }
    }
    let (dir, a) = suite_apt(suite)?;
    let pol = Command::new("apt-cache").args(&a).args(["show", "--no-all-versions", pkg]).output()?;
    let version = String::from_utf8_lossy(&pol.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Version: ").map(|v| v.trim().to_string()))
        .with_context(|| format!("Debian suite {suite} has no package {pkg} (see `apt-cache search linux-source` there)"))?;
    let dl = Command::new("apt-get").args(&a).args(["download", &format!("{pkg}={version}")]).current_dir(&dir).output()?;
    if !dl.status.success() {
        bail!("downloading {pkg} {version} from {suite} failed: {}", String::from_utf8_lossy(&dl.stderr).trim());
    }
    let deb = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb") && p.file_name().unwrap().to_string_lossy().starts_with(pkg))
        .context("apt-get download left no .deb")?;
    let tarball = dir.join(format!("{pkg}_{version}.tar.xz"));
    let tmp = tarball.with_extension("part");
    // The .deb carries /usr/src/<pkg>.tar.xz: take just that file out of it.
    let st = Command::new("sh")
        .arg("-c")
        .arg("dpkg-deb --fsys-tarfile \"$1\" | tar -xO \"./usr/src/$2.tar.xz\" > \"$3\"")
        .arg("sh")
        .arg(&deb)
        .arg(pkg)
        .arg(&tmp)
        .status()?;
    let _ = std::fs::remove_file(&deb);
    if !st.success() || std::fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0) == 0 {
        let _ = std::fs::remove_file(&tmp);
        bail!("{} has no /usr/src/{pkg}.tar.xz", deb.display());
    }
    std::fs::rename(&tmp, &tarball)?;
    std::fs::write(&pin, format!("{version}\n"))?;
    Ok((tarball, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_at_suite() {
        assert_eq!(split("linux-source-7.2@sid"), Some(("linux-source-7.2", "sid")));
        assert_eq!(split("linux-source-7.2@trixie-backports"), Some(("linux-source-7.2", "trixie-backports")));
        assert_eq!(split("linux-source-6.12"), None);
        assert_eq!(split("bash@sid"), None, "only kernel sources");
        assert_eq!(split("linux-source@sid;rm"), None);
    }
}
