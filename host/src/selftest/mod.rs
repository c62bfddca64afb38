//! `scx-vmctl selftest`: boot a guest (or use a running one), copy the agent
//! in, and run its helper selftest: BPF_PROG_TYPE_SYSCALL programs that call
//! scx_bpf_map_scan_timeout, driven with BPF_PROG_RUN. Prints the agent's line
//! per case and `N passed, M failed`. Then the kernel's own sched_ext
//! selftests (kselftest.rs; `--no-kernel-selftests` skips them): one line per
//! test and `sched_ext selftests: P passed, S skipped, F failed`, and any
//! failure fails `selftest`. Last, the guest's dmesg over the whole run: any
//! lockdep, sleep-in-atomic, KASAN, WARNING or oops report fails it.

pub mod kselftest;

use crate::cli::SelftestArgs;
use crate::error::{bad, BadInput};
use crate::config::Config;
use crate::machine::vm::Vm;
use anyhow::{bail, Context, Result};
use std::io::Write;

/// dmesg lines that mean the debug kernel caught something: the contract's
/// kernel splat patterns (lockdep, KASAN, sleep in atomic, WARN, oops, ...),
/// not sched_ext's reports of a scheduler's error, which the kernel's own
/// selftests provoke on purpose.
pub fn debug_reports(dmesg: &str) -> Vec<String> {
    use scx_contract::splat::{classify, is_kernel_splat, LogKind};
    dmesg.lines().filter(|l| classify(l, LogKind::Dmesg).is_some_and(is_kernel_splat)).map(|l| l.trim().to_string()).collect()
}

pub async fn run(a: SelftestArgs) -> Result<i32> {
    let cfg = Config::default_config();
    let mut vm_args = a.vm.clone();
    let debug = a.debug;
    if debug && vm_args.kernel.is_none() {
        let k = crate::artifacts::kernel::build(&crate::artifacts::kernel::KernelOptions { debug: true, ..Default::default() }).await?;
        vm_args.kernel = Some(k.bzimage().display().to_string());
    }
    let want = !a.no_kernel_selftests;
    let (vm, owned, ktests) = match &a.vm_name {
        Some(n) => {
            let vm = Vm::attach(n).await.map_err(bad)?;
            let k = kselftest::built_kernel(&vm.state.spec.kernel);
            let t = kernel_tests(want, k.as_ref(), &vm.state.spec.kernel).await?;
            (vm, false, t)
        }
        None => {
            let name = format!("selftest{}", std::process::id());
            let p = crate::launch::prepare(&name, &vm_args, &cfg).await?;
            if let Some(n) = &p.notice {
                crate::errln!("{n}");
            }
            // Built before the boot: a build failure needs no guest.
            let t = kernel_tests(want, p.kernel.built.as_ref(), &p.kernel.bzimage).await?;
            crate::errln!("[selftest] booting {} ({})", p.spec.kernel.display(), p.spec.accel.describe());
            (crate::launch::boot(&p, &cfg, true, None).await?, true, t)
        }
    };
    let result = in_guest(&vm, debug, &ktests).await;
    if owned {
        let _ = vm.shutdown(true).await;
    }
    result
}

/// Whether and with what runner the kernel's sched_ext selftests run.
enum KernelTests {
    Off,
    /// Not a kernel `kernel build` made: no tree to build them from.
    NoTree(String),
    Runner(std::path::PathBuf),
}

async fn kernel_tests(want: bool, k: Option<&crate::artifacts::kernel::Kernel>, bzimage: &std::path::Path) -> Result<KernelTests> {
    Ok(match (want, k) {
        (false, _) => KernelTests::Off,
        (true, None) => KernelTests::NoTree(format!(
            "sched_ext selftests: not run ({} is not a kernel `scx-vmctl kernel build` made, so there is no tree to build \
             them from)",
            bzimage.display()
        )),
        (true, Some(k)) => KernelTests::Runner(kselftest::build(k).await?),
    })
}

async fn in_guest(vm: &Vm, debug: bool, ktests: &KernelTests) -> Result<i32> {
    let ssh = vm.ssh().await?;
    let h = crate::artifacts::agent::vmlinux_h_from_guest(&ssh).await?;
    // Say plainly when the kernel lacks the helper, before any verifier dump.
    let o = ssh.exec("grep -qw scx_bpf_map_scan_timeout /proc/kallsyms").await?;
    if o.status != 0 {
        bail!(BadInput(
            "the guest kernel has no scx_bpf_map_scan_timeout (not in its symbols or BTF): build one with \
             `scx-vmctl kernel build` (vm-images/kernel/patches) and pass it with --kernel"
                .into()
        ));
    }
    let agent = crate::artifacts::agent::build(&h).await?;
    crate::artifacts::agent::install(&ssh, &agent).await?;
    ssh.exec("dmesg -C").await?;
    let t = std::time::Instant::now();
    let code = ssh
        .exec_streamed(&format!("{} selftest", crate::artifacts::agent::GUEST_PATH), None, |err, d| {
            if err {
                let _ = std::io::stderr().write_all(d);
            } else {
                let _ = std::io::stdout().write_all(d);
                let _ = std::io::stdout().flush();
            }
        })
        .await
        .context("running the selftest in the guest")?;
    let mut ok = code == 0;
    match ktests {
        KernelTests::Off => {}
        KernelTests::NoTree(why) => crate::outln!("{why}"),
        KernelTests::Runner(runner) => ok &= run_kernel_tests(&ssh, runner).await?,
    }
    // Read after both parts: the kernel's tests load and fail schedulers on
    // purpose, and must not make the kernel complain either.
    let dmesg = ssh.exec("dmesg").await?.stdout_str();
    let reports = debug_reports(&dmesg);
    crate::errln!("[selftest] {:.1} s in the guest ({})", t.elapsed().as_secs_f64(), vm.state.spec.accel.describe());
    if !reports.is_empty() {
        crate::outln!("kernel reports in dmesg ({}):", if debug { "debug kernel" } else { "kernel" });
        for r in reports.iter().take(10) {
            crate::outln!("  {r}");
        }
        return Ok(crate::exit::CRITERION_FAILED);
    }
    if debug {
        crate::outln!("dmesg: no lockdep, sleep-in-atomic or KASAN report");
    }
    Ok(if ok { crate::exit::OK } else { crate::exit::CRITERION_FAILED })
}

/// Copy the runner in, run every test, print one line each and the totals.
/// False when a test failed or the runner did not finish.
async fn run_kernel_tests(ssh: &crate::machine::ssh::Ssh, runner: &std::path::Path) -> Result<bool> {
    let name = kselftest::GUEST_PATH.rsplit('/').next().unwrap_or("scx-kselftest-runner");
    ssh.upload(runner, "/root", Some(name)).await.context("copying the sched_ext selftests' runner in")?;
    let t = std::time::Instant::now();
    let mut s = kselftest::Stream::default();
    // Line-buffered: a test that forks must not make its children flush
    // copies of the runner's pending output. `; exit $?` keeps the shell
    // around, so a crash is an exit code, not a lost channel.
    let r = kselftest::GUEST_PATH;
    let cmd =
        format!("if command -v stdbuf >/dev/null; then stdbuf -oL -eL {r} -q 2>&1; else {r} -q 2>&1; fi; exit $?");
    let run = tokio::time::timeout(
        kselftest::RUN_TIMEOUT,
        ssh.exec_streamed(&cmd, None, |_, d| s.feed(d, &mut std::io::stdout())),
    )
    .await;
    s.finish(&mut std::io::stdout());
    let r = &s.results;
    let problem = match run {
        Err(_) => Some(format!("the runner did not finish within {} s", kselftest::RUN_TIMEOUT.as_secs())),
        Ok(Err(e)) => Some(format!("running them failed: {e:#}")),
        Ok(Ok(code)) if !r.complete => Some(format!("the runner stopped (exit {code}) before its totals")),
        Ok(Ok(_)) => None,
    };
    crate::errln!("[selftest] kernel sched_ext selftests: {:.1} s in the guest", t.elapsed().as_secs_f64());
    crate::outln!("{}", r.summary());
    if problem.is_some() || r.failed > 0 {
        let log = std::env::temp_dir().join(format!("scx-vmctl-kselftest-{}.log", std::process::id()));
        let saved = std::fs::write(&log, &s.transcript).map(|_| format!(" (their full output: {})", log.display()));
        crate::outln!(
            "sched_ext selftests FAILED{}{}",
            problem.map(|p| format!(": {p}")).unwrap_or_default(),
            saved.unwrap_or_default()
        );
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_debug_reports_only() {
        let d = "[ 1.0] sched_ext: BPF scheduler \"simple\" enabled\n\
                 [ 1.5] sched_ext: BPF scheduler \"exit\" disabled (runtime error)\n\
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
