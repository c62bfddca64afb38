//! Choosing the accelerator. `/dev/kvm` existing proves nothing: on some nested
//! hosts QEMU dies with "KVM internal error" as soon as the guest runs, or
//! refuses `-cpu host`. So KVM is probed by running real guest code: a 64 KiB
//! BIOS whose reset vector writes to QEMU's isa-debug-exit port. QEMU then
//! exits with a known code in a fraction of a second if, and only if, KVM
//! really executes guest instructions with the CPU model we would use.
//!
//! Under TCG, sched_ext needs single-threaded TCG: loading and unloading a
//! scheduler patches kernel text on every CPU (static keys), which races under
//! multi-threaded TCG and oopses the guest (see README, "Acceleration").

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelRequest {
    Auto,
    Kvm,
    Tcg,
}

impl AccelRequest {
    pub fn parse(s: &str) -> Result<AccelRequest> {
        match s {
            "auto" => Ok(AccelRequest::Auto),
            "kvm" => Ok(AccelRequest::Kvm),
            "tcg" => Ok(AccelRequest::Tcg),
            _ => bail!("unknown accelerator `{s}`; valid: auto, kvm, tcg"),
        }
    }
}

/// What the KVM probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvmProbe {
    Works,
    /// /dev/kvm missing: no virtualization on this host (or kvm module not loaded).
    NoDevice,
    /// /dev/kvm exists but cannot be opened read-write.
    NoAccess(String),
    /// QEMU could not run a guest with KVM; the reason is QEMU's own words.
    Broken(String),
}

impl KvmProbe {
    pub fn reason(&self) -> String {
        match self {
            KvmProbe::Works => "KVM works".into(),
            KvmProbe::NoDevice => "/dev/kvm does not exist (no hardware virtualization or kvm module not loaded)".into(),
            KvmProbe::NoAccess(e) => format!("/dev/kvm cannot be opened: {e} (add the user to group kvm or fix the udev rule)"),
            KvmProbe::Broken(e) => format!("/dev/kvm exists but QEMU cannot run a guest with it: {e}"),
        }
    }
}

/// The accelerator a VM runs with, recorded in every result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// The QEMU arguments for this accelerator.
    pub fn qemu_args(self) -> Vec<String> {
        match self {
            Accel::Kvm => vec!["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()],
            // thread=single: see the module comment.
            Accel::Tcg => vec!["-accel".into(), "tcg,thread=single".into(), "-cpu".into(), "max".into()],
        }
    }

    /// Accelerator and mode as recorded in results and shown by `status`.
    pub fn describe(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg,thread=single",
        }
    }
}

/// The decision. `notice` is the one line to print when falling back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub accel: Accel,
    pub notice: Option<String>,
}

/// Decide from the request and a (lazily run) probe. Pure, so both paths are unit-tested.
pub fn decide(req: AccelRequest, probe: impl FnOnce() -> KvmProbe) -> Result<Decision> {
    match req {
        AccelRequest::Tcg => Ok(Decision { accel: Accel::Tcg, notice: None }),
        AccelRequest::Kvm => match probe() {
            KvmProbe::Works => Ok(Decision { accel: Accel::Kvm, notice: None }),
            other => bail!("--accel kvm: {}; use --accel tcg or --accel auto", other.reason()),
        },
        AccelRequest::Auto => match probe() {
            KvmProbe::Works => Ok(Decision { accel: Accel::Kvm, notice: None }),
            other => Ok(Decision {
                accel: Accel::Tcg,
                notice: Some(format!(
                    "note: KVM not usable ({}); falling back to TCG (single-threaded, slower)",
                    other.reason()
                )),
            }),
        },
    }
}

/// Exit code QEMU gives when the probe BIOS writes 0x2a to isa-debug-exit: (0x2a << 1) | 1.
const PROBE_EXIT: i32 = 85;

/// The probe firmware: 64 KiB of `hlt` with, at the reset vector (0xFFFF0),
/// `mov al, 0x2a; out 0xf4, al; hlt; jmp $`.
pub fn probe_bios() -> Vec<u8> {
    let mut rom = vec![0xf4u8; 64 * 1024];
    let code = [0xb0, 0x2a, 0xe6, 0xf4, 0xf4, 0xeb, 0xfe];
    let at = rom.len() - 16;
    rom[at..at + code.len()].copy_from_slice(&code);
    rom
}

/// Interpret how the probe QEMU ended. Pure, for unit tests.
pub fn classify_probe(exit_code: Option<i32>, stderr: &str, timed_out: bool) -> KvmProbe {
    if exit_code == Some(PROBE_EXIT) {
        return KvmProbe::Works;
    }
    let first = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(if timed_out { "the probe guest never ran (timed out)" } else { "QEMU exited without running the guest" });
    let msg = if stderr.contains("KVM internal error") {
        format!("KVM internal error while running guest code ({first})")
    } else {
        first.to_string()
    };
    KvmProbe::Broken(msg)
}

/// Probe KVM for real. Takes well under a second when KVM works; a broken KVM
/// (which leaves QEMU paused rather than exiting) is cut off after `timeout`.
pub fn probe_kvm(qemu: &str, scratch: &Path, timeout: Duration) -> KvmProbe {
    let dev = Path::new("/dev/kvm");
    if !dev.exists() {
        return KvmProbe::NoDevice;
    }
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open(dev) {
        return KvmProbe::NoAccess(e.to_string());
    }
    let bios = scratch.join("kvm-probe.rom");
    if let Err(e) = std::fs::write(&bios, probe_bios()) {
        return KvmProbe::Broken(format!("cannot write probe firmware {}: {e}", bios.display()));
    }
    let mut child = match Command::new(qemu)
        .args(["-M", "pc", "-nodefaults", "-no-user-config", "-display", "none", "-m", "16"])
        .args(Accel::Kvm.qemu_args())
        .arg("-bios")
        .arg(&bios)
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-no-reboot"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return KvmProbe::Broken(format!("cannot run {qemu}: {e}")),
    };
    let (status, timed_out) = wait_or_kill(&mut child, timeout);
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    let _ = std::fs::remove_file(&bios);
    classify_probe(status.and_then(|s| s.code()), &err, timed_out)
}

/// Wait for a probe's QEMU to exit; past `timeout`, kill it. The exit status
/// (None when killed or unknown) and whether it timed out.
fn wait_or_kill(child: &mut std::process::Child, timeout: Duration) -> (Option<std::process::ExitStatus>, bool) {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return (Some(st), false),
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return (None, true);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return (None, false),
        }
    }
}

/// What the guest kernel's serial console says about a KVM boot test: it
/// must have run as far as looking for its root disk (there is none, so it
/// panics and QEMU, with `-no-reboot`, exits). Pure, for unit tests.
pub fn classify_kernel_probe(serial: &str, timed_out: bool) -> KvmProbe {
    if serial.contains("Kernel panic - not syncing") || serial.contains("Run /") {
        return KvmProbe::Works;
    }
    let last = serial.lines().rev().map(str::trim).find(|l| !l.is_empty());
    KvmProbe::Broken(match (last, timed_out) {
        (None, true) => "the guest kernel printed nothing under KVM (the host's KVM cannot run it; its dmesg may say why)".into(),
        (Some(l), true) => format!("the guest kernel stopped early under KVM; its last line: {l}"),
        (None, false) => "QEMU exited before the guest kernel printed anything under KVM".into(),
        (Some(l), false) => format!("the guest kernel did not get far under KVM; its last line: {l}"),
    })
}

/// Boot `kernel` under KVM with no disk, up to its root-mount panic: the
/// firmware probe proves KVM runs real-mode code, not that it runs a Linux
/// kernel (seen here: a PVM host runs the probe and stalls the kernel in
/// its first second, "kvm-pvm: INTERNAL_ERROR in batch emul"). Under 1 s
/// where KVM works. The verdict is kept per kernel, QEMU and host boot, so
/// later commands do not pay for it again.
pub fn probe_kvm_kernel(qemu: &str, scratch: &Path, kernel: &Path, timeout: Duration) -> KvmProbe {
    use sha2::Digest;
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let meta = std::fs::metadata(kernel).ok();
    let stamp = format!(
        "{}|{:?}|{:?}|{}|{}",
        kernel.display(),
        meta.as_ref().map(|m| m.len()),
        meta.and_then(|m| m.modified().ok()),
        boot_id.trim(),
        super::qemu::qemu_version().unwrap_or_default()
    );
    // in the artifact cache, not the state dir: tests give each VM state a
    // directory of its own but share the cache
    let dir = crate::paths::cache_dir().join("kvm-probe");
    let _ = std::fs::create_dir_all(&dir);
    let cache = dir.join(format!("{}.json", hex::encode(&sha2::Sha256::digest(stamp)[..8])));
    if let Some(p) = std::fs::read(&cache).ok().and_then(|b| serde_json::from_slice::<Option<String>>(&b).ok()) {
        return p.map(KvmProbe::Broken).unwrap_or(KvmProbe::Works);
    }
    let serial = scratch.join(format!("kvm-kernel-probe-{}.serial", std::process::id()));
    let mut child = match Command::new(qemu)
        .args(["-M", "pc", "-nodefaults", "-no-user-config", "-display", "none", "-m", "256", "-no-reboot"])
        .args(Accel::Kvm.qemu_args())
        .arg("-kernel")
        .arg(kernel)
        .args(["-append", "console=ttyS0 panic=-1 root=/dev/nonexistent"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return KvmProbe::Broken(format!("cannot run {qemu}: {e}")),
    };
    let (_, timed_out) = wait_or_kill(&mut child, timeout);
    let out = std::fs::read_to_string(&serial).unwrap_or_default();
    let _ = std::fs::remove_file(&serial);
    let p = classify_kernel_probe(&out, timed_out);
    let verdict = match &p {
        KvmProbe::Works => None,
        other => Some(other.reason().trim_start_matches("/dev/kvm exists but QEMU cannot run a guest with it: ").to_string()),
    };
    let _ = std::fs::write(&cache, serde_json::to_vec(&verdict).unwrap_or_default());
    p
}

/// The firmware probe, then, where it passes and a kernel is given, the
/// kernel probe: whether KVM can run this VM.
pub fn probe_kvm_for(qemu: &str, scratch: &Path, kernel: Option<&Path>) -> KvmProbe {
    match (probe_kvm(qemu, scratch, Duration::from_secs(5)), kernel) {
        (KvmProbe::Works, Some(k)) => probe_kvm_kernel(qemu, scratch, k, Duration::from_secs(10)),
        (p, _) => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn tcg_request_never_probes() {
        let probed = Cell::new(false);
        let d = decide(AccelRequest::Tcg, || {
            probed.set(true);
            KvmProbe::Works
        })
        .unwrap();
        assert_eq!(d.accel, Accel::Tcg);
        assert!(!probed.get());
    }

    #[test]
    fn auto_uses_kvm_when_it_works() {
        let d = decide(AccelRequest::Auto, || KvmProbe::Works).unwrap();
        assert_eq!(d, Decision { accel: Accel::Kvm, notice: None });
        assert_eq!(d.accel.qemu_args(), ["-accel", "kvm", "-cpu", "host"]);
    }

    #[test]
    fn auto_falls_back_with_one_line() {
        for p in [
            KvmProbe::NoDevice,
            KvmProbe::NoAccess("Permission denied".into()),
            KvmProbe::Broken("KVM internal error".into()),
        ] {
            let d = decide(AccelRequest::Auto, || p.clone()).unwrap();
            assert_eq!(d.accel, Accel::Tcg);
            let n = d.notice.unwrap();
            assert!(!n.contains('\n') && n.contains("falling back to TCG"), "{n}");
        }
    }

    #[test]
    fn kvm_request_fails_with_the_reason() {
        let e = decide(AccelRequest::Kvm, || KvmProbe::Broken("KVM internal error while running guest code".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("KVM internal error") && e.contains("--accel tcg"), "{e}");
        let e = decide(AccelRequest::Kvm, || KvmProbe::NoDevice).unwrap_err().to_string();
        assert!(e.contains("/dev/kvm does not exist"), "{e}");
    }

    #[test]
    fn tcg_is_single_threaded() {
        assert_eq!(Accel::Tcg.qemu_args()[1], "tcg,thread=single");
        assert_eq!(Accel::Tcg.describe(), "tcg,thread=single");
    }

    #[test]
    fn probe_outcomes_are_classified() {
        assert_eq!(classify_probe(Some(85), "", false), KvmProbe::Works);
        let p = classify_probe(
            None,
            "KVM internal error. Suberror: 1\nextra data[0]: 0x0000000000000000\nemulation failure\n",
            true,
        );
        assert!(matches!(p, KvmProbe::Broken(ref m) if m.starts_with("KVM internal error")), "{p:?}");
        let p = classify_probe(Some(1), "qemu-system-x86_64: CPU model 'host' requires KVM or HVF\n", false);
        assert!(matches!(p, KvmProbe::Broken(ref m) if m.contains("CPU model 'host'")), "{p:?}");
        assert!(matches!(classify_probe(None, "", true), KvmProbe::Broken(ref m) if m.contains("timed out")));
    }

    #[test]
    fn a_kernel_that_reaches_its_root_mount_under_kvm_passes() {
        let ok = "[ 0.5] VFS: Cannot open root device \"nonexistent\"\n[ 0.5] Kernel panic - not syncing: VFS: Unable to mount root fs\n";
        assert_eq!(classify_kernel_probe(ok, false), KvmProbe::Works);
        // the PVM host: nothing at all on the console, QEMU cut off
        let p = classify_kernel_probe("", true);
        assert!(matches!(p, KvmProbe::Broken(ref m) if m.starts_with("the guest kernel printed nothing under KVM")), "{p:?}");
        let p = classify_kernel_probe("[ 0.0] Linux version 6.12\n[ 0.1] smpboot: CPU0\n", true);
        assert!(matches!(p, KvmProbe::Broken(ref m) if m.ends_with("its last line: [ 0.1] smpboot: CPU0")), "{p:?}");
    }

    #[test]
    fn probe_bios_has_the_reset_vector_code() {
        let rom = probe_bios();
        assert_eq!(rom.len(), 65536);
        assert_eq!(&rom[0xfff0..0xfff7], &[0xb0, 0x2a, 0xe6, 0xf4, 0xf4, 0xeb, 0xfe]);
    }
}
