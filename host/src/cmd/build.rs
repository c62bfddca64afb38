//! kernel, image, agent, sched and probe: the cached builds and the KVM probe.

use crate::artifacts::image;
use crate::artifacts::kernel::{self, KernelOptions};
use crate::cli::*;
use crate::error::{bad, BadInput};
use crate::machine::{accel, qemu};
use crate::paths;
use anyhow::{bail, Result};

pub async fn sched_cmd(c: SchedCmd) -> Result<i32> {
    use crate::artifacts::sched_crate::{self as sc, SchedRef};
    match c {
        SchedCmd::Build { sched, force } => {
            let r = SchedRef::parse(&sched).map_err(bad)?;
            let t = std::time::Instant::now();
            let b = sc::build(&r, force).await?;
            crate::errln!("{} ready in {:.2} s (built in {:.0} s)", b.label(), t.elapsed().as_secs_f64(), b.info.build_s);
            crate::outln!("{}", b.binary().display());
        }
        SchedCmd::List => {
            let all = sc::list();
            if all.is_empty() {
                crate::outln!("no scheduler built yet: `scx-vmctl sched build scx_bpfland@1.1.4` builds one");
            }
            for b in all {
                crate::outln!("{:<24} built in {:>5.0} s  {}  {}", b.label(), b.info.build_s, b.info.rustc, b.binary().display());
            }
        }
        SchedCmd::Path { sched } => {
            let r = SchedRef::parse(&sched).map_err(bad)?;
            match sc::cached(&r) {
                Some(b) => crate::outln!("{}", b.binary().display()),
                None => bail!(BadInput(format!("{r} is not built (with this toolchain): run `scx-vmctl sched build {r}`"))),
            }
        }
    }
    Ok(0)
}

pub fn kernel_opts(f: &KernelFlavor, jobs: Option<usize>, force: bool) -> KernelOptions {
    KernelOptions { source: f.source.clone(), source_sha256: f.source_sha256.clone(), debug: f.debug, jobs, force }
}

pub async fn kernel_build(a: KernelBuildArgs) -> Result<i32> {
    let t = std::time::Instant::now();
    let opts = kernel_opts(&a.flavor, a.jobs, a.force);
    let k = kernel::build(&opts).await?;
    crate::outln!(
        "kernel {} ({}) ready in {:.2} s: {}\n  vmlinux.h {}\n  helper {}: {}",
        k.info.version,
        k.info.id,
        t.elapsed().as_secs_f64(),
        k.bzimage().display(),
        k.vmlinux_h().display(),
        kernel::HELPER_KFUNC,
        if k.info.has_helper { "present" } else { "MISSING" }
    );
    Ok(0)
}


pub fn kernel_path(f: KernelFlavor) -> Result<i32> {
    let opts = kernel_opts(&f, None, false);
    match kernel::cached(&opts).map_err(bad)? {
        Some(k) => crate::outln!("{}", k.bzimage().display()),
        None => bail!(BadInput(format!(
            "this kernel is not built yet: run `scx-vmctl kernel build{}{}`",
            f.source.as_deref().map(|s| format!(" --source {s}")).unwrap_or_default(),
            if f.debug { " --debug" } else { "" }
        ))),
    }
    Ok(0)
}

pub async fn image_build(force: bool) -> Result<i32> {
    let t = std::time::Instant::now();
    let img = image::build(force).await?;
    crate::outln!(
        "image {} ready in {:.2} s: {} (host key {})",
        img.info.id,
        t.elapsed().as_secs_f64(),
        img.base().display(),
        img.info.host_key
    );
    Ok(0)
}

pub fn image_path() -> Result<i32> {
    match image::cached().map_err(bad)? {
        Some(i) => crate::outln!("{}", i.base().display()),
        None => bail!(BadInput("the image is not built yet: run `scx-vmctl image build`".into())),
    }
    Ok(0)
}

pub async fn agent_build(f: KernelFlavor) -> Result<i32> {
    let t = std::time::Instant::now();
    let k = kernel::build(&kernel_opts(&f, None, false)).await?;
    let a = crate::artifacts::agent::build(&k.vmlinux_h()).await?;
    crate::outln!("agent {} for kernel {} ready in {:.2} s: {}", a.id, k.info.id, t.elapsed().as_secs_f64(), a.path.display());
    Ok(0)
}

/// What `--accel auto` would pick here, and why.
pub fn probe(kernel: Option<&std::path::Path>) -> Result<i32> {
    let q = qemu::qemu_version().map_err(bad)?;
    if let Some(k) = kernel {
        qemu::check_bzimage(k).map_err(bad)?;
    }
    let scratch = paths::state_dir();
    std::fs::create_dir_all(&scratch)?;
    let p = accel::probe_kvm_for(qemu::QEMU, &scratch, kernel);
    crate::outln!("QEMU {q}");
    crate::outln!("kvm: {}", p.reason());
    if kernel.is_none() && p == accel::KvmProbe::Works {
        crate::outln!("     (firmware code only; --kernel BZIMAGE boots a kernel under KVM too, as --accel auto does)");
    }
    crate::outln!("tcg: works (runs as {})", accel::Accel::Tcg.describe());
    crate::outln!("--accel auto picks: {}", if p == accel::KvmProbe::Works { "kvm" } else { "tcg" });
    Ok(0)
}
