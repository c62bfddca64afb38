//! `scx-vmctl selftest`: boot a guest (or use a running one), copy the agent
//! in, and run its helper selftest: BPF_PROG_TYPE_SYSCALL programs that call
//! scx_bpf_map_scan_timeout, driven with BPF_PROG_RUN. Prints the agent's line
//! per case and `N passed, M failed`; with the debug kernel it also fails on
//! any lockdep, sleep-in-atomic or KASAN report in the guest's dmesg.

use crate::cli::SelftestArgs;
use crate::commands::{bad, BadInput};
use crate::config::Config;
use crate::vm::Vm;
use anyhow::{bail, Context, Result};
use std::io::Write;

/// dmesg lines that mean the debug kernel caught the helper doing wrong.
pub const DEBUG_REPORTS: &[&str] = &[
    "WARNING: possible circular locking dependency",
    "WARNING: inconsistent lock state",
    "WARNING: possible recursive locking",
    "BUG: sleeping function called from invalid context",
    "BUG: scheduling while atomic",
    "BUG: KASAN:",
    "BUG: spinlock",
    "suspicious RCU usage",
    "WARNING: CPU:",
    "BUG: unable to handle",
    "Oops:",
];

pub fn debug_reports(dmesg: &str) -> Vec<String> {
    dmesg.lines().filter(|l| DEBUG_REPORTS.iter().any(|p| l.contains(p))).map(|l| l.trim().to_string()).collect()
}

pub async fn run(a: SelftestArgs) -> Result<i32> {
    let cfg = Config::default_config();
    let mut vm_args = a.vm.clone();
    let debug = a.debug;
    if debug && vm_args.kernel.is_none() {
        let k = crate::kernel::build(&crate::kernel::KernelOptions { debug: true, ..Default::default() }).await?;
        vm_args.kernel = Some(k.bzimage().display().to_string());
    }
    let (vm, owned) = match &a.vm_name {
        Some(n) => (Vm::attach(n).await.map_err(bad)?, false),
        None => {
            let name = format!("selftest{}", std::process::id());
            let p = crate::commands::prepare(&name, &vm_args, &cfg).await?;
            if let Some(n) = &p.notice {
                eprintln!("{n}");
            }
            eprintln!("[selftest] booting {} ({})", p.kernel.bzimage.display(), p.spec.accel.describe());
            (crate::commands::boot(&p, &cfg, true, None).await?, true)
        }
    };
    let result = in_guest(&vm, debug).await;
    if owned {
        let _ = vm.shutdown(true).await;
    }
    result
}

async fn in_guest(vm: &Vm, debug: bool) -> Result<i32> {
    let ssh = vm.ssh().await?;
    let h = crate::agent::vmlinux_h_from_guest(&ssh).await?;
    // Say plainly when the kernel lacks the helper, before any verifier dump.
    let o = ssh.exec("grep -qw scx_bpf_map_scan_timeout /proc/kallsyms").await?;
    if o.status != 0 {
        bail!(BadInput(
            "the guest kernel has no scx_bpf_map_scan_timeout (not in its symbols or BTF): build one with \
             `scx-vmctl kernel build` (vm-images/kernel/patches) and pass it with --kernel"
                .into()
        ));
    }
    let agent = crate::agent::build(&h).await?;
    crate::agent::install(&ssh, &agent).await?;
    ssh.exec("dmesg -C").await?;
    let t = std::time::Instant::now();
    let code = ssh
        .exec_streamed(&format!("{} selftest", crate::agent::GUEST_PATH), None, |err, d| {
            if err {
                let _ = std::io::stderr().write_all(d);
            } else {
                let _ = std::io::stdout().write_all(d);
                let _ = std::io::stdout().flush();
            }
        })
        .await
        .context("running the selftest in the guest")?;
    let dmesg = ssh.exec("dmesg").await?.stdout_str();
    let reports = debug_reports(&dmesg);
    eprintln!("[selftest] {:.1} s in the guest ({})", t.elapsed().as_secs_f64(), vm.state.spec.accel.describe());
    if !reports.is_empty() {
        println!("kernel reports in dmesg ({}):", if debug { "debug kernel" } else { "kernel" });
        for r in reports.iter().take(10) {
            println!("  {r}");
        }
        return Ok(crate::exit::CRITERION_FAILED);
    }
    if debug {
        println!("dmesg: no lockdep, sleep-in-atomic or KASAN report");
    }
    Ok(if code == 0 { crate::exit::OK } else { crate::exit::CRITERION_FAILED })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_debug_reports_only() {
        let d = "[ 1.0] sched_ext: BPF scheduler \"simple\" enabled\n\
                 [ 2.0] BUG: sleeping function called from invalid context at mm/slab.c:1\n\
                 [ 3.0] ok line\n\
                 [ 4.0] ==================================================================\n\
                 [ 4.0] BUG: KASAN: slab-out-of-bounds in scx_bpf_map_scan_timeout+0x1\n";
        let r = debug_reports(d);
        assert_eq!(r.len(), 2);
        assert!(r[1].contains("KASAN"));
        assert!(debug_reports("[ 1.0] all fine\n").is_empty());
    }
}
