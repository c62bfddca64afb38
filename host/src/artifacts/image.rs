//! `scx-vmctl image build`: a Debian root filesystem from
//! `vm-images/rootfs/recipe.yaml` (mmdebstrap from Debian's mirror), our init
//! and sshd settings, made into ext4 with `mkfs.ext4 -d` (no mount, no loop
//! device) and then a qcow2 base, cached by the recipe's hash. The guest's SSH
//! host key is made here and recorded so every VM of this image can be pinned.

use crate::artifacts::kernel::which;
use crate::paths;
use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const RECIPE_VERSION: &str = "image-recipe-2";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub suite: String,
    pub mirror: String,
    pub variant: String,
    pub packages: Vec<String>,
    pub size_mib: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageInfo {
    pub id: String,
    /// "ssh-ed25519 AAAA..." of the guest, pinned by the host.
    pub host_key: String,
    pub suite: String,
    pub packages: Vec<String>,
    pub built_unix: u64,
    pub build_seconds: f64,
    pub qcow2_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct Image {
    pub dir: PathBuf,
    pub info: ImageInfo,
}

impl Image {
    pub fn base(&self) -> PathBuf {
        self.dir.join("base.qcow2")
    }
}

struct Inputs {
    recipe: Recipe,
    init: Vec<u8>,
    fstab: Vec<u8>,
    sshd: Vec<u8>,
    id: String,
}

fn inputs() -> Result<Inputs> {
    let d = paths::source_dir()?.join("vm-images/rootfs");
    let text = std::fs::read_to_string(d.join("recipe.yaml"))?;
    let recipe: Recipe = serde_yaml_ng::from_str(&text).context("vm-images/rootfs/recipe.yaml")?;
    let init = std::fs::read(d.join("init.sh"))?;
    let fstab = std::fs::read(d.join("fstab"))?;
    let sshd = std::fs::read(d.join("sshd.conf"))?;
    let mut h = Sha256::new();
    h.update(RECIPE_VERSION);
    h.update(&text);
    h.update(&init);
    h.update(&fstab);
    h.update(&sshd);
    let id = hex::encode(h.finalize())[..16].to_string();
    Ok(Inputs { recipe, init, fstab, sshd, id })
}

fn root() -> PathBuf {
    paths::cache_dir().join("image")
}

fn load(dir: &Path) -> Option<Image> {
    let info: ImageInfo = serde_json::from_slice(&std::fs::read(dir.join("image.json")).ok()?).ok()?;
    let img = Image { dir: dir.to_path_buf(), info };
    img.base().exists().then_some(img)
}

pub fn cached() -> Result<Option<Image>> {
    Ok(load(&root().join(inputs()?.id)))
}

/// Build (or find in the cache) the image of the current recipe.
pub async fn build(force: bool) -> Result<Image> {
    let inp = inputs()?;
    let out = root().join(&inp.id);
    if !force {
        if let Some(i) = load(&out) {
            return Ok(i);
        }
    }
    for (tool, pkg) in [("mmdebstrap", "mmdebstrap"), ("mkfs.ext4", "e2fsprogs"), ("qemu-img", "qemu-utils")] {
        if which(tool).is_none() && which(&format!("/sbin/{tool}")).is_none() && !Path::new("/sbin").join(tool).exists() {
            bail!("{tool} is needed to build the guest image: apt-get install {pkg}");
        }
    }
    tokio::task::spawn_blocking(move || build_blocking(inp)).await?
}

pub async fn default_image() -> Result<Image> {
    build(false).await
}

fn build_blocking(inp: Inputs) -> Result<Image> {
    let started = Instant::now();
    let mut p = Progress::new("image").every(std::time::Duration::from_secs(10));
    let r = &inp.recipe;
    p.note(&format!("building Debian {} ({} packages), id {}", r.suite, r.packages.len(), inp.id));
    let tmp = root().join(format!(".tmp-{}-{}", inp.id, std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let result = (|| -> Result<Image> {
        let rootfs = tmp.join("rootfs");
        let mut child = Command::new("mmdebstrap")
            .arg(format!("--variant={}", r.variant))
            .arg(format!("--include={}", r.packages.join(",")))
            .arg("--verbose")
            // dropbear reads its own key format only: the same ed25519 host
            // key openssh-server made, so the pinned key is one either way.
            .arg(
                "--customize-hook=mkdir -p \"$1/etc/dropbear\" && chroot \"$1\" dropbearconvert openssh dropbear \
                 /etc/ssh/ssh_host_ed25519_key /etc/dropbear/dropbear_ed25519_host_key",
            )
            .arg(&r.suite)
            .arg(&rootfs)
            .arg(&r.mirror)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run mmdebstrap (apt-get install mmdebstrap)")?;
        let stdout = child.stdout.take().unwrap();
        let out_thread = std::thread::spawn(move || std::io::BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>());
        let mut log = Vec::new();
        for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
            let line = line?;
            if let Some(step) = line.strip_prefix("I: ") {
                p.update(&format!("mmdebstrap: {step}"));
            }
            log.push(line);
        }
        let _ = out_thread.join();
        std::fs::write(tmp.join("mmdebstrap.log"), log.join("\n"))?;
        if !child.wait()?.success() {
            let tail: Vec<&str> = log.iter().rev().take(8).map(String::as_str).collect();
            bail!(
                "mmdebstrap failed (mirror {} reachable? suite {}):\n{}",
                r.mirror,
                r.suite,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        p.update("installing init and sshd settings");
        install(&rootfs.join("sbin/scx-init"), &inp.init, 0o755)?;
        install(&rootfs.join("etc/scx-vmctl.fstab"), &inp.fstab, 0o644)?;
        install(&rootfs.join("etc/ssh/sshd_config.d/scx-vmctl.conf"), &inp.sshd, 0o644)?;
        std::fs::write(rootfs.join("etc/hostname"), "scx-guest\n")?;
        std::fs::write(rootfs.join("etc/scx-vmctl-image"), format!("{}\n", inp.id))?;
        // One host key type only, so there is exactly one key to pin.
        for kind in ["rsa", "ecdsa"] {
            for suffix in ["", ".pub"] {
                let _ = std::fs::remove_file(rootfs.join(format!("etc/ssh/ssh_host_{kind}_key{suffix}")));
            }
        }
        let pubkey = std::fs::read_to_string(rootfs.join("etc/ssh/ssh_host_ed25519_key.pub"))
            .context("the image has no ed25519 host key (openssh-server missing from the recipe?)")?;
        let host_key = pubkey.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        // Results and agents live here; keep the apt lists out (smaller image).
        let _ = std::fs::remove_dir_all(rootfs.join("var/lib/apt/lists"));
        std::fs::create_dir_all(rootfs.join("var/lib/apt/lists/partial"))?;

        p.update("mkfs.ext4 -d");
        let raw = tmp.join("root.ext4");
        let mkfs = if Path::new("/sbin/mkfs.ext4").exists() { "/sbin/mkfs.ext4".to_string() } else { "mkfs.ext4".to_string() };
        let o = Command::new(mkfs)
            // Inode tables and journal zeroed here: otherwise every boot of a
            // fresh overlay runs ext4lazyinit, writing in the background
            // through the boot and the workload (qcow2 keeps zeros sparse).
            .args(["-q", "-F", "-L", "scxroot", "-E", "lazy_itable_init=0,lazy_journal_init=0", "-d"])
            .arg(&rootfs)
            .arg(&raw)
            .arg(format!("{}M", r.size_mib))
            .output()?;
        if !o.status.success() {
            bail!("mkfs.ext4 -d failed: {}", String::from_utf8_lossy(&o.stderr).trim());
        }
        p.update("qemu-img convert to qcow2");
        let base = tmp.join("base.qcow2");
        let o = Command::new("qemu-img").args(["convert", "-O", "qcow2"]).arg(&raw).arg(&base).output()?;
        if !o.status.success() {
            bail!("qemu-img convert failed: {}", String::from_utf8_lossy(&o.stderr).trim());
        }
        std::fs::remove_file(&raw)?;
        std::fs::remove_dir_all(&rootfs).context("cannot remove the temporary rootfs")?;
        let info = ImageInfo {
            id: inp.id.clone(),
            host_key,
            suite: r.suite.clone(),
            packages: r.packages.clone(),
            built_unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(),
            build_seconds: started.elapsed().as_secs_f64(),
            qcow2_bytes: std::fs::metadata(&base)?.len(),
        };
        std::fs::write(tmp.join("image.json"), serde_json::to_vec_pretty(&info)?)?;
        let out = root().join(&inp.id);
        let _ = std::fs::remove_dir_all(&out);
        std::fs::rename(&tmp, &out)?;
        Ok(Image { dir: out, info })
    })();
    match result {
        Ok(img) => {
            p.finish(&format!("built image {} ({} MiB qcow2) -> {}", img.info.id, img.info.qcow2_bytes >> 20, img.dir.display()));
            Ok(img)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

fn install(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(path, data)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_has_what_the_experiments_need() {
        let inp = inputs().unwrap();
        for p in ["openssh-server", "stress-ng", "rt-tests", "libelf1", "zlib1g", "kmod", "procps", "iproute2", "bpftool", "tini"] {
            assert!(inp.recipe.packages.iter().any(|x| x == p), "{p} missing from recipe.yaml");
        }
        assert_eq!(inp.id.len(), 16);
        assert_eq!(inp.id, inputs().unwrap().id, "the id is a pure function of the recipe");
    }
}
