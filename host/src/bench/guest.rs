//! The in-guest part of the bench: boot one VM (timed from QEMU start to SSH
//! ready), copy the agent in, run its `bench count`, `bench scan` and
//! `bench sampler` one after the other, power the VM off.

use super::count::Count;
use super::machine::Machine;
use super::overhead::{self, BootTimeline};
use super::sampler::Sampler;
use super::scan::Scan;
use scx_contract::bench::{CountResult, SamplerResult, ScanResult};
use crate::cli::VmArgs;
use crate::config::Config;
use crate::machine::ssh::{join_argv, Ssh};
use crate::machine::vm::Vm;
use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use std::time::Instant;

pub struct InGuest {
    pub count: Count,
    pub scan: Scan,
    pub sampler: Sampler,
    pub boot: BootTimeline,
}

pub async fn run(vm_args: &VmArgs, cfg: &Config, short: bool, m: &mut Machine) -> Result<InGuest> {
    let name = format!("bench{}", std::process::id());
    let p = crate::launch::prepare(&name, vm_args, cfg).await?;
    if let Some(n) = &p.notice {
        crate::errln!("{n}");
    }
    m.accel = p.spec.accel.describe().to_string();
    m.guest_cpus = p.spec.cpus;
    m.guest_memory_mib = p.spec.memory_mib;
    m.kernel_id = p.kernel.id.clone();
    m.image_id = p.image.info.id.clone();
    crate::errln!("[bench] booting {} ({})", p.spec.kernel.display(), m.accel);
    let t = Instant::now();
    let vm = crate::launch::boot(&p, cfg, true, None).await?;
    let qemu_to_ssh = t.elapsed().as_secs_f64();
    let serial = std::fs::read_to_string(vm.files.serial()).unwrap_or_default();
    let boot = overhead::timeline(&serial, qemu_to_ssh);
    let vmlinux_h = p.kernel.built.as_ref().map(|k| k.vmlinux_h());
    let r = measure(&vm, vmlinux_h, cfg, short, m).await;
    let _ = vm.shutdown(true).await;
    let (count, scan, sampler) = r?;
    Ok(InGuest { count, scan, sampler, boot })
}

async fn measure(
    vm: &Vm,
    vmlinux_h: Option<std::path::PathBuf>,
    cfg: &Config,
    short: bool,
    m: &mut Machine,
) -> Result<(Count, Scan, Sampler)> {
    let ssh = vm.ssh().await?;
    let h = match vmlinux_h {
        Some(h) => h,
        None => crate::artifacts::agent::vmlinux_h_from_guest(&ssh).await?,
    };
    let agent = crate::artifacts::agent::build(&h).await?;
    crate::artifacts::agent::install(&ssh, &agent).await?;
    m.agent_id = agent.id.clone();
    m.guest_kernel = ssh.exec("uname -r").await?.stdout_str().trim().to_string();
    crate::errln!("[bench] (a) counting a 16k-entry map: agent vs bpftool map dump");
    let count = Count::new(agent_json::<CountResult>(&ssh, &super::count::agent_args(short)).await?);
    crate::errln!("[bench] (c) helper vs pure-BPF eviction");
    let scan = Scan::new(agent_json::<ScanResult>(&ssh, &super::scan::agent_args(short, cfg.cleanup.timeout_us)).await?);
    crate::errln!("[bench] (b) sampler CPU time with scx_simple loaded");
    let sampler = Sampler::new(agent_json::<SamplerResult>(&ssh, &super::sampler::agent_args(short)).await?);
    ssh.close().await;
    Ok((count, scan, sampler))
}

/// Run `scx-guest-agent bench ARGS` and parse the JSON line it prints.
async fn agent_json<T: DeserializeOwned>(ssh: &Ssh, args: &[String]) -> Result<T> {
    let cmd = format!("{} bench {}", crate::artifacts::agent::GUEST_PATH, join_argv(args));
    let o = ssh.exec(&cmd).await?;
    if o.status != 0 {
        bail!("`{cmd}` exited {} in the guest:\n{}", o.status, super::last_lines(&o.stderr_str(), 10));
    }
    let out = o.stdout_str();
    let line = out.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("`{cmd}` printed no result JSON: {}", out.trim()))
}
