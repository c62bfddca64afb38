//! `bench --peers`: boot to a usable guest, ours against virtme-ng's, on the
//! same bzImage, vCPUs, memory and accelerator, boots alternated so a noisy
//! host weighs on both alike.
//!
//! - ours: QEMU start to SSH ready (what every run waits for), booting the
//!   bzImage itself, the same file vng boots (`up`, given that bzImage or
//!   none, boots the PVH vmlinux our build keeps beside it instead: no
//!   decompressor, ~0.45 s sooner under TCG);
//! - vng: `vng --run BZIMAGE --exec true` start to exit, i.e. QEMU start to
//!   a command run and the guest powered off: vng shares the host's root
//!   over 9p and runs the command from its own init, no disk image and no
//!   SSH. On a host without udev, vng's init cannot find its virtio-serial
//!   ports, runs the command on the console instead and vng exits 255
//!   whatever the command returned (its output is lost at power-off about
//!   one time in four). So vng runs `--verbose`, its console on stderr (the
//!   kernel log on the serial line, as ours boots: no `quiet`), and the
//!   proof the command ran is vng's exit 0 or its init's line
//!   "script exited with code 0".
//!
//! virtme-ng comes from PyPI, pinned, into a venv in the cache (made once).

use crate::report::stats::Estimate;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const VNG_VERSION: &str = "1.42";
/// Boots of each side; alternated, ours first.
pub fn boots(short: bool) -> usize {
    if short {
        2
    } else {
        5
    }
}
/// virtme-ng-init's line once the command exited 0 (console fallback).
const VNG_RAN: &str = "virtme-ng-init: script exited with code 0";
/// A vng boot that takes this long is stuck (its own default is none).
const VNG_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Peers {
    pub vng_version: String,
    pub bzimage: String,
    pub accel: String,
    /// the command line vng was run with (BZIMAGE for the path)
    pub vng_command: String,
    /// QEMU start to SSH ready, per boot
    pub ours_s: Vec<f64>,
    pub ours: Option<Estimate>,
    /// `vng --run ... --exec true` start to exit, per boot
    pub vng_s: Vec<f64>,
    /// vng's exit status per boot (255 where its init fell back to the console)
    pub vng_exit: Vec<i32>,
    pub vng: Option<Estimate>,
    /// mean vng / mean ours: above 1, ours is ready sooner
    pub vng_over_ours: f64,
}

fn venv_dir() -> PathBuf {
    crate::paths::cache_dir().join("peers").join(format!("virtme-ng-{VNG_VERSION}"))
}

/// Debian's python3 where there is one: the venv must not depend on a
/// user's pyenv shim being on PATH later.
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn run_tool(cmd: &mut std::process::Command, what: &str, fix: &str) -> Result<()> {
    let o = cmd.output().with_context(|| format!("cannot run {what}: {fix}"))?;
    if !o.status.success() {
        bail!("{what} failed ({}): {}\n{fix}", o.status, super::last_lines(&String::from_utf8_lossy(&o.stderr), 8));
    }
    Ok(())
}

/// The venv's bin/ holding `vng` (and the `virtme-run` it calls through PATH).
/// Made in place, since a venv's scripts name their own path; `installed`
/// is written last, so a cut-off install is made again.
pub fn install() -> Result<PathBuf> {
    let dir = venv_dir();
    let bin = dir.join("bin");
    if dir.join("installed").exists() && bin.join("vng").exists() {
        return Ok(bin);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.parent().expect("peers/ has a parent"))?;
    crate::errln!("[bench] peers: installing virtme-ng {VNG_VERSION} from PyPI into {}", dir.display());
    run_tool(
        std::process::Command::new(python()).args(["-m", "venv"]).arg(&dir),
        "python3 -m venv",
        "install python3-venv (scripts/setup-host.sh does)",
    )?;
    run_tool(
        std::process::Command::new(bin.join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "--no-input"])
            .arg(format!("virtme-ng=={VNG_VERSION}")),
        &format!("pip install virtme-ng=={VNG_VERSION}"),
        "PyPI must be reachable (or a pip mirror set in PIP_INDEX_URL)",
    )?;
    std::fs::write(dir.join("installed"), VNG_VERSION)?;
    Ok(bin)
}

/// vng needs to mount the host's root over 9p: refuse a kernel without it
/// before booting it, naming what is missing.
pub fn kernel_can_run_vng(config: &str) -> Result<()> {
    let missing: Vec<&str> = ["CONFIG_NET_9P", "CONFIG_NET_9P_VIRTIO", "CONFIG_9P_FS"]
        .into_iter()
        .filter(|o| !config.lines().any(|l| l.trim() == format!("{o}=y")))
        .collect();
    if !missing.is_empty() {
        bail!("vng shares the host's root over 9p and this kernel lacks {} (built in)", missing.join(", "));
    }
    Ok(())
}

/// vng's arguments for the same guest as ours: TCG single-threaded like ours
/// (vng's own TCG default is multi-threaded), no KVM when we run without it.
pub fn vng_args(bzimage: &Path, cpus: u32, memory_mib: u32, kvm: bool) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--run".into(),
        bzimage.display().to_string(),
        "--cpus".into(),
        cpus.to_string(),
        "--memory".into(),
        format!("{memory_mib}M"),
        "--force-9p".into(),
        "--verbose".into(),
    ];
    if !kvm {
        // one argument: argparse takes a separate "-accel ..." for an option
        a.extend(["--disable-kvm".into(), "--qemu-opts=-accel tcg,thread=single".into()]);
    }
    a.extend(["--exec".into(), "true".into()]);
    a
}

/// One vng boot, timed from its start to its exit; its process group is
/// killed if it hangs, so no QEMU is left behind.
async fn vng_once(bin: &Path, args: &[String]) -> Result<(f64, i32)> {
    use std::os::unix::process::CommandExt as _;
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = std::process::Command::new(bin.join("vng"));
    cmd.args(args)
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let t = Instant::now();
    let child = tokio::process::Command::from(cmd).kill_on_drop(true).spawn().context("cannot start vng")?;
    let pgid = child.id().unwrap_or(0) as i32;
    match tokio::time::timeout(VNG_TIMEOUT, child.wait_with_output()).await {
        Ok(o) => {
            let o = o?;
            let secs = t.elapsed().as_secs_f64();
            let err = String::from_utf8_lossy(&o.stderr);
            let ran = o.status.success() || err.contains(VNG_RAN) || String::from_utf8_lossy(&o.stdout).contains(VNG_RAN);
            if !ran {
                bail!("vng exited {} and its init never said {VNG_RAN:?}: {}", o.status, super::last_lines(&err, 12));
            }
            Ok((secs, o.status.code().unwrap_or(-1)))
        }
        Err(_) => {
            if pgid > 0 {
                // SAFETY: kill(2) on the process group this function created; no memory is touched.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
            }
            bail!("vng did not finish within {} s (killed)", VNG_TIMEOUT.as_secs())
        }
    }
}

/// Our boot: QEMU start to SSH ready, then powered off.
async fn ours_once(vm: &crate::cli::VmArgs, cfg: &crate::config::Config, i: usize) -> Result<f64> {
    let mut p = crate::launch::prepare(&format!("peers{}-{i}", std::process::id()), vm, cfg).await?;
    // the bzImage vng boots, not our build's PVH vmlinux beside it
    p.spec.kernel = p.kernel.bzimage.clone();
    let t = Instant::now();
    let v = crate::launch::boot(&p, cfg, true, None).await?;
    let secs = t.elapsed().as_secs_f64();
    v.shutdown(false).await?;
    Ok(secs)
}

pub async fn run(vm: &crate::cli::VmArgs, short: bool) -> Result<Peers> {
    let cfg = crate::config::Config::default_config();
    let p = crate::launch::prepare(&format!("peers{}", std::process::id()), vm, &cfg).await?;
    let config = match &p.kernel.built {
        Some(k) => std::fs::read_to_string(k.dir.join("config")).unwrap_or_default(),
        None => String::new(),
    };
    if !config.is_empty() {
        kernel_can_run_vng(&config).context("bench --peers")?;
    }
    let bin = install()?;
    let kvm = matches!(p.spec.accel, crate::machine::accel::Accel::Kvm);
    let args = vng_args(&p.kernel.bzimage, p.spec.cpus, p.spec.memory_mib, kvm);
    let shown: Vec<String> = args.iter().map(|a| if *a == p.kernel.bzimage.display().to_string() { "BZIMAGE".into() } else { a.clone() }).collect();
    let (mut ours, mut vng, mut exits) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..boots(short) {
        crate::errln!("[bench] peers: boot {} of {}: scx-vmctl, then vng", i + 1, boots(short));
        ours.push(ours_once(vm, &cfg, i).await?);
        let (secs, code) = vng_once(&bin, &args).await?;
        vng.push(secs);
        exits.push(code);
    }
    let (o, g) = (Estimate::of(&ours), Estimate::of(&vng));
    let ratio = super::ratio(g.as_ref().map(|e| e.mean).unwrap_or(0.0), o.as_ref().map(|e| e.mean).unwrap_or(0.0));
    Ok(Peers {
        vng_version: VNG_VERSION.into(),
        bzimage: p.kernel.bzimage.display().to_string(),
        accel: p.spec.accel.describe().into(),
        vng_command: format!("vng {}", crate::machine::ssh::join_argv(&shown)),
        ours_s: ours,
        ours: o,
        vng_s: vng,
        vng_exit: exits,
        vng: g,
        vng_over_ours: ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vng_runs_the_same_guest_as_ours() {
        let tcg = vng_args(Path::new("/k/bzImage"), 2, 2048, false);
        let s = tcg.join(" ");
        assert!(s.starts_with("--run /k/bzImage --cpus 2 --memory 2048M --force-9p --verbose"), "{s}");
        assert!(s.contains("--disable-kvm --qemu-opts=-accel tcg,thread=single"), "{s}");
        assert!(s.ends_with("--exec true"), "{s}");
        let kvm = vng_args(Path::new("/k/bzImage"), 4, 1024, true).join(" ");
        assert!(!kvm.contains("disable-kvm") && !kvm.contains("tcg"), "{kvm}");
    }

    #[test]
    fn a_kernel_without_9p_is_refused_by_name() {
        let e = kernel_can_run_vng("CONFIG_NET_9P=y\n# CONFIG_9P_FS is not set\n").unwrap_err().to_string();
        assert!(e.contains("CONFIG_NET_9P_VIRTIO, CONFIG_9P_FS") && !e.contains("CONFIG_NET_9P,"), "{e}");
        kernel_can_run_vng("CONFIG_NET_9P=y\nCONFIG_NET_9P_VIRTIO=y\nCONFIG_9P_FS=y\n").unwrap();
    }
}
