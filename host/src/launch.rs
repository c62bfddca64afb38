//! What a VM needs before it boots, decided from the command line and the
//! config: the accelerator, the kernel (ours, a file, or a checked URL), the
//! image and its pinned host key, the tool's SSH key; and the boot itself.
//! Shared by `up`, experiments, `selftest` and `bench`.

use crate::artifacts::image;
use crate::artifacts::kernel;
use crate::cli::VmArgs;
use crate::config::Config;
use crate::error::{bad, bad_if, BadInput};
use crate::machine::accel::{self, AccelRequest};
use crate::machine::qemu::{self, VmSpec};
use crate::machine::ssh::ToolKey;
use crate::machine::topology::Topology;
use crate::machine::vm::{self, Launch, Vm};
use crate::paths;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A guest kernel to boot, with an id recorded in results.
#[derive(Clone)]
pub struct KernelChoice {
    /// The bzImage (what the KVM probe and peers boot, and what a user gives).
    pub bzimage: PathBuf,
    pub id: String,
    /// Our own build (so vmlinux.h and kernel.json exist), if it is one.
    pub built: Option<kernel::Kernel>,
}

pub async fn resolve_kernel(vm: &VmArgs) -> Result<KernelChoice> {
    match &vm.kernel {
        None => {
            let k = kernel::default_kernel().await?;
            Ok(KernelChoice { bzimage: k.bzimage(), id: k.info.id.clone(), built: Some(k) })
        }
        Some(s) if crate::artifacts::download::is_url(s) => {
            let sha = vm.kernel_sha256.as_deref().ok_or_else(|| {
                bad(anyhow::anyhow!("--kernel {s} is a URL: give --kernel-sha256 HEX so the download can be checked"))
            })?;
            // A malformed --kernel-sha256, or one the file does not have, is the user's input.
            let p = crate::artifacts::download::fetch(s, sha, "kernel")
                .await
                .map_err(|e| bad_if(e, crate::artifacts::download::DownloadError::is_bad_input))?;
            qemu::check_bzimage(&p).map_err(bad)?;
            Ok(KernelChoice { bzimage: p, id: format!("sha256:{}", &sha[..16.min(sha.len())]), built: None })
        }
        Some(s) => {
            let p = PathBuf::from(s);
            qemu::check_bzimage(&p).map_err(bad)?;
            let sha = crate::artifacts::download::sha256_file(&p)?;
            // A kernel from our cache keeps its identity (and its vmlinux.h).
            let built = p.parent().and_then(|d| {
                let info: kernel::KernelInfo = serde_json::from_slice(&std::fs::read(d.join("kernel.json")).ok()?).ok()?;
                Some(kernel::Kernel { dir: d.to_path_buf(), info })
            });
            let id = built.as_ref().map(|k| k.info.id.clone()).unwrap_or_else(|| format!("sha256:{}", &sha[..16]));
            Ok(KernelChoice { bzimage: p.canonicalize()?, id, built })
        }
    }
}

/// The base image and its pinned host key.
pub async fn resolve_image(vm: &VmArgs) -> Result<image::Image> {
    match &vm.image {
        None => image::default_image().await,
        Some(p) => {
            let dir = p.parent().unwrap_or(Path::new("."));
            let info: image::ImageInfo = std::fs::read(dir.join("image.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| {
                    bad(anyhow::anyhow!(
                        "--image {}: no image.json beside it; give an image built by `scx-vmctl image build` \
                         (it records the guest host key that SSH pins)",
                        p.display()
                    ))
                })?;
            Ok(image::Image { dir: dir.to_path_buf(), info })
        }
    }
}

pub fn tool_key() -> Result<ToolKey> {
    ToolKey::load_or_create(&paths::state_dir().join("keys"))
}

/// Everything needed to boot: the decided accelerator, kernel, image and spec.
pub struct Prepared {
    pub spec: VmSpec,
    pub kernel: KernelChoice,
    pub image: image::Image,
    pub notice: Option<String>,
}

pub async fn prepare(name: &str, vm_args: &VmArgs, cfg: &Config) -> Result<Prepared> {
    vm::validate_name(name).map_err(bad)?;
    let req = AccelRequest::parse(vm_args.accel.as_deref().unwrap_or(&cfg.vm.accel)).map_err(bad)?;
    let mut cpus = vm_args.cpus.unwrap_or(cfg.vm.cpus);
    let mut memory = vm_args.memory.unwrap_or(cfg.vm.memory_mib);
    if cpus == 0 || memory < 256 {
        bail!(BadInput(format!("--cpus must be >= 1 and --memory >= 256 (got {cpus}, {memory})")));
    }
    let shape = vm_args.topology.as_deref().unwrap_or(&cfg.vm.topology).trim();
    let topology = if shape.is_empty() {
        None
    } else {
        if shape.contains(',') {
            bail!(BadInput(format!(
                "--topology {shape}: one machine has one shape; a list is for `experiment`, which runs each"
            )));
        }
        let t = Topology::parse(shape).map_err(|e| bad(e.into()))?;
        if vm_args.cpus.is_some_and(|c| c != t.cpus()) {
            bail!(BadInput(format!("--cpus {cpus} and --topology {shape} ({} vCPUs) disagree: give one of them", t.cpus())));
        }
        cpus = t.cpus();
        memory = t.total_memory(memory);
        Some(t)
    };
    qemu::qemu_version().map_err(bad)?; // QEMU missing: say which package before building anything
    let kernel = resolve_kernel(vm_args).await?;
    let image = resolve_image(vm_args).await?;
    let scratch = paths::state_dir();
    std::fs::create_dir_all(&scratch)?;
    let decision = accel::decide(req, || accel::probe_kvm_for(qemu::QEMU, &scratch, Some(&kernel.bzimage))).map_err(bad)?;
    let key = tool_key()?;
    // Calibrations told, not measured (machine::calibration): only under TCG
    // (KVM's `-cpu host` has a constant TSC and the TSC-deadline timer, and
    // the kernel skips both itself), and only for our builds: a user's bzImage
    // has no config to read HZ from (a wrong lpj would scale every udelay),
    // nor our patch that reads lapic_timer_freq=.
    use crate::machine::calibration as cal;
    let ours = kernel.built.as_ref().filter(|_| decision.accel == accel::Accel::Tcg);
    let lpj = ours.and_then(|k| k.hz()).and_then(|hz| cal::host_tsc_mhz().map(|mhz| cal::lpj(mhz, hz)));
    let lapic_timer_freq = ours.map(|_| cal::QEMU_APIC_BUS_HZ);
    let spec = VmSpec {
        name: name.to_string(),
        kernel: kernel.boot_file(),
        base_image: image.base(),
        cpus,
        memory_mib: memory,
        accel: decision.accel,
        append: vm_args.append.clone(),
        ssh_port: vm::free_port()?,
        authorized_key: key.public_line.clone(),
        topology,
        lpj,
        lapic_timer_freq,
    };
    Ok(Prepared { spec, kernel, image, notice: decision.notice })
}

impl KernelChoice {
    /// What the guest boots: our own build's PVH vmlinux where it has one
    /// (the same build as its bzImage, booted without the decompressor),
    /// else the bzImage.
    pub fn boot_file(&self) -> PathBuf {
        self.built.as_ref().and_then(|k| k.pvh()).unwrap_or_else(|| self.bzimage.clone())
    }
}

/// Boot a prepared VM.
pub async fn boot(p: &Prepared, cfg: &Config, owned: bool, run_dir: Option<PathBuf>) -> Result<Vm> {
    start(p, cfg, owned, run_dir, None).await
}

/// Start a prepared VM from a saved state instead of booting it.
pub async fn restore(p: &Prepared, cfg: &Config, owned: bool, from: vm::Restore) -> Result<Vm> {
    start(p, cfg, owned, None, Some(from)).await
}

async fn start(p: &Prepared, cfg: &Config, owned: bool, run_dir: Option<PathBuf>, restore: Option<vm::Restore>) -> Result<Vm> {
    let key = tool_key()?;
    Vm::launch(
        Launch {
            spec: p.spec.clone(),
            host_key: p.image.info.host_key.clone(),
            kernel_id: p.kernel.id.clone(),
            image_id: p.image.info.id.clone(),
            owned,
            boot_timeout: Duration::from_secs(cfg.vm.boot_timeout_s),
            run_dir,
            restore,
        },
        &key,
    )
    .await
}

