//! The QEMU command line, as plain data turned into argv (no shell), and the
//! checks on the files it is given.

use crate::machine::accel::Accel;
use crate::machine::topology::Topology;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

pub const QEMU: &str = "qemu-system-x86_64";

/// Everything needed to start one guest. Serialized into the run directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VmSpec {
    pub name: String,
    /// What QEMU's `-kernel` loads: a bzImage, or for our own builds their
    /// PVH vmlinux (see `check_boot_kernel`).
    pub kernel: PathBuf,
    /// The cached base image; the VM boots a fresh qcow2 overlay of it.
    pub base_image: PathBuf,
    pub cpus: u32,
    pub memory_mib: u32,
    pub accel: Accel,
    /// Extra kernel command line, appended after ours.
    pub append: String,
    pub ssh_port: u16,
    /// The tool's public key ("ssh-ed25519 AAAA..."), handed to the guest init.
    pub authorized_key: String,
    /// NUMA nodes, LLCs, cores and threads (None: `cpus` flat vCPUs, one node).
    /// `cpus` and `memory_mib` are then the shape's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<Topology>,
    /// loops_per_jiffy preset on the command line (`calibration`): set under
    /// TCG for kernels whose HZ is known, so secondary vCPUs skip calibrating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lpj: Option<u64>,
    /// The local APIC timer's clock in Hz (`calibration`), for our kernels
    /// under TCG: the first vCPU skips calibrating it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lapic_timer_freq: Option<u64>,
}

/// Files inside a VM's private run directory.
pub struct RunFiles {
    pub dir: PathBuf,
}

impl RunFiles {
    pub fn new(dir: &Path) -> RunFiles {
        RunFiles { dir: dir.to_path_buf() }
    }
    pub fn qmp(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }
    pub fn serial(&self) -> PathBuf {
        self.dir.join("serial.log")
    }
    pub fn overlay(&self) -> PathBuf {
        self.dir.join("overlay.qcow2")
    }
    pub fn pidfile(&self) -> PathBuf {
        self.dir.join("qemu.pid")
    }
    pub fn qemu_log(&self) -> PathBuf {
        self.dir.join("qemu.log")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("vm.json")
    }
    pub fn events(&self) -> PathBuf {
        self.dir.join("qmp-events.log")
    }
}

/// The guest kernel command line. The address is slirp's fixed one; init is
/// tini (reaps orphans) running our shell init; the host key arrives here so
/// the image does not depend on who uses it.
pub fn kernel_cmdline(spec: &VmSpec) -> String {
    let key = spec.authorized_key.split_whitespace().take(2).collect::<Vec<_>>().join(":");
    // loglevel=6: the console prints notices and worse (the banner, errors,
    // splats, panics), not the ~19 KB of INFO lines each boot writes through
    // the emulated UART; dmesg keeps them all, and `--append loglevel=7`
    // (given later) brings them back. ip='s hostname field names the guest
    // (nothing else sets it: the kernel would take the IP address).
    let mut c = format!(
        "console=ttyS0 loglevel=6 root=/dev/vda rw rootfstype=ext4 \
         ip=10.0.2.15::10.0.2.2:255.255.255.0:scx-guest:eth0:off panic=-1 \
         scx_vmctl.key={key}"
    );
    if let Some(lpj) = spec.lpj {
        c.push_str(&format!(" lpj={lpj}"));
    }
    if let Some(hz) = spec.lapic_timer_freq {
        c.push_str(&format!(" lapic_timer_freq={hz}"));
    }
    if !spec.append.trim().is_empty() {
        c.push(' ');
        c.push_str(spec.append.trim());
    }
    // init= must come last: everything after `--` is init's own argv.
    c.push_str(" init=/usr/bin/tini -- /sbin/scx-init");
    c
}

/// argv for QEMU (without the program name). `incoming`: start paused,
/// waiting for a saved state to be loaded over QMP (`-incoming defer`); the
/// rest of the command line must be the one the state was saved from.
pub fn qemu_args(spec: &VmSpec, files: &RunFiles, incoming: bool) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |s: &[&str]| a.extend(s.iter().map(|x| x.to_string()));
    push(&["-name", &format!("scx-vmctl-{},process=scx-vmctl-{}", spec.name, spec.name)]);
    push(&["-M", "pc", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]);
    push(&["-m", &spec.memory_mib.to_string()]);
    match &spec.topology {
        Some(t) => a.extend(t.qemu_args(spec.memory_mib)),
        None => a.extend(["-smp".to_string(), spec.cpus.to_string()]),
    }
    let mut accel = spec.accel.qemu_args();
    if spec.accel == Accel::Tcg && spec.topology.is_some() {
        // TCG's `max` is an AMD model whose legacy CPUID leaves the kernel
        // reads as fewer packages than given (2 sockets of 2 cores: one); as
        // an Intel model it gives leaves 4 and 0xB, which carry the shape
        for x in accel.iter_mut().filter(|x| x.as_str() == "max") {
            *x = "max,vendor=GenuineIntel".into();
        }
    }
    a.extend(accel);
    let mut push = |s: &[&str]| a.extend(s.iter().map(|x| x.to_string()));
    push(&["-kernel", &spec.kernel.to_string_lossy(), "-append", &kernel_cmdline(spec)]);
    // The overlay is thrown away after the VM: cache=unsafe skips host flushes.
    push(&[
        "-drive",
        &format!("file={},if=virtio,format=qcow2,cache=unsafe,discard=unmap", files.overlay().display()),
    ]);
    // SSH reachable from this host's loopback only.
    push(&["-netdev", &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{}-:22", spec.ssh_port)]);
    push(&["-device", "virtio-net-pci,netdev=n0", "-device", "virtio-rng-pci"]);
    // A new VM generation id at every QEMU start: a guest restored from a
    // saved state learns it (ACPI notify) and reseeds its RNG (CONFIG_VMGENID).
    push(&["-device", "vmgenid,guid=auto"]);
    // A guest panic becomes a QMP GUEST_PANICKED event and pauses the guest for inspection.
    push(&["-device", "pvpanic-pci", "-action", "panic=pause"]);
    push(&["-chardev", &format!("file,id=serial0,path={}", files.serial().display()), "-serial", "chardev:serial0"]);
    push(&["-qmp", &format!("unix:{},server=on,wait=off", files.qmp().display())]);
    push(&["-pidfile", &files.pidfile().to_string_lossy()]);
    if incoming {
        push(&["-incoming", "defer"]);
    }
    a
}

/// A bzImage carries "HdrS" at 0x202 (the x86 boot protocol header).
pub fn check_bzimage(path: &Path) -> Result<()> {
    let mut f = std::fs::File::open(path).with_context(|| {
        format!("kernel {}: cannot open it; give a bzImage path (or build one: scx-vmctl kernel build)", path.display())
    })?;
    if f.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        bail!("kernel {} is a directory; give the bzImage file (arch/x86/boot/bzImage)", path.display());
    }
    let mut hdr = [0u8; 0x206];
    let n = f.read(&mut hdr).with_context(|| format!("kernel {}: cannot read it", path.display()))?;
    if n < hdr.len() || &hdr[0x202..0x206] != b"HdrS" {
        bail!(
            "kernel {} is not an x86 bzImage (no boot header); give arch/x86/boot/bzImage, not vmlinux or a compressed image",
            path.display()
        );
    }
    Ok(())
}

/// Xen's ELF note type for the 32-bit PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY):
/// QEMU boots an ELF kernel that carries it straight at that entry, without
/// the bzImage's real-mode setup and decompressor.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// Does this ELF file carry the PVH entry note (a vmlinux built with CONFIG_PVH)?
/// Generic over the reader so a 27 MB vmlinux is read only where its
/// headers and notes are (`object::ReadCache`), not whole, per launch.
pub fn is_pvh_elf<'a, R: object::ReadRef<'a>>(data: R) -> bool {
    use object::read::elf::{FileHeader, ProgramHeader};
    let Ok(h) = object::elf::FileHeader64::<object::Endianness>::parse(data) else {
        return false;
    };
    let Ok(endian) = h.endian() else {
        return false;
    };
    let Ok(phdrs) = h.program_headers(endian, data) else {
        return false;
    };
    phdrs.iter().any(|ph| {
        let Ok(Some(mut notes)) = ph.notes(endian, data) else {
            return false;
        };
        while let Ok(Some(n)) = notes.next() {
            if n.name() == b"Xen" && n.n_type(endian) == XEN_ELFNOTE_PHYS32_ENTRY {
                return true;
            }
        }
        false
    })
}

/// A kernel QEMU can boot: a bzImage, or an ELF vmlinux with the PVH note.
pub fn check_boot_kernel(path: &Path) -> Result<()> {
    // Not readable, or not an ELF: check_bzimage says what is wrong with it.
    let Ok(mut file) = std::fs::File::open(path) else { return check_bzimage(path) };
    let mut magic = [0u8; 4];
    if file.read_exact(&mut magic).is_err() || magic != *b"\x7fELF" {
        return check_bzimage(path);
    }
    // ReadCache reads at absolute offsets: the magic already read does not matter.
    if !is_pvh_elf(&object::ReadCache::new(file)) {
        bail!(
            "kernel {} is an ELF vmlinux without a PVH entry note (CONFIG_PVH); give arch/x86/boot/bzImage",
            path.display()
        );
    }
    Ok(())
}

/// `qemu-system-x86_64 --version`'s first line's version number.
pub fn qemu_version() -> Result<String> {
    // Asked by several steps of one launch (~15 ms an exec): run it once per process.
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(v) = VERSION.get() {
        return Ok(v.clone());
    }
    let out = std::process::Command::new(QEMU).arg("--version").output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!("{QEMU} is not installed: apt-get install qemu-system-x86 (from bookworm-backports for QEMU 10)")
        } else {
            anyhow::anyhow!("cannot run {QEMU}: {e}")
        }
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = parse_qemu_version(&text).unwrap_or_else(|| text.lines().next().unwrap_or("").to_string());
    Ok(VERSION.get_or_init(|| v).clone())
}

pub fn parse_qemu_version(s: &str) -> Option<String> {
    let l = s.lines().next()?;
    let i = l.find("version ")?;
    Some(l[i + 8..].split_whitespace().next()?.to_string())
}

/// Make `qemu-img create -b base` the VM's fresh overlay.
pub fn create_overlay(base: &Path, overlay: &Path) -> Result<()> {
    let out = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(base)
        .arg(overlay)
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!("qemu-img is not installed: apt-get install qemu-utils")
            } else {
                anyhow::anyhow!("cannot run qemu-img: {e}")
            }
        })?;
    if !out.status.success() {
        bail!("qemu-img create overlay of {} failed: {}", base.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(accel: Accel) -> VmSpec {
        VmSpec {
            name: "t1".into(),
            kernel: "/k/bzImage".into(),
            base_image: "/i/base.qcow2".into(),
            cpus: 2,
            memory_mib: 2048,
            accel,
            append: "quiet".into(),
            ssh_port: 2222,
            authorized_key: "ssh-ed25519 AAAAC3Nza scx-vmctl".into(),
            topology: None,
            lpj: None,
            lapic_timer_freq: None,
        }
    }

    #[test]
    fn a_topology_shapes_the_machine() {
        let mut s = spec(Accel::Tcg);
        s.topology = Some(Topology::parse("2n2l1c2t").unwrap());
        s.cpus = 8;
        let j = qemu_args(&s, &RunFiles::new(Path::new("/r")), false).join(" ");
        assert!(j.contains("-smp 8,sockets=4,cores=1,threads=2 "), "{j}");
        assert!(j.contains("-numa node,nodeid=1,memdev=node1 -numa cpu,node-id=1,socket-id=2 -numa cpu,node-id=1,socket-id=3"), "{j}");
        assert!(j.contains("-cpu max,vendor=GenuineIntel"), "{j}");
        // KVM passes the host's CPU model through as it is
        s.accel = Accel::Kvm;
        let j = qemu_args(&s, &RunFiles::new(Path::new("/r")), false).join(" ");
        assert!(j.contains("-cpu host ") && !j.contains("vendor"), "{j}");
    }

    #[test]
    fn argv_has_loopback_forward_qmp_and_single_threaded_tcg() {
        let a = qemu_args(&spec(Accel::Tcg), &RunFiles::new(Path::new("/run/x")), false);
        let j = a.join(" ");
        assert!(j.contains("hostfwd=tcp:127.0.0.1:2222-:22"), "{j}");
        assert!(j.contains("-accel tcg,thread=single"), "{j}");
        assert!(j.contains("-qmp unix:/run/x/qmp.sock,server=on,wait=off"), "{j}");
        assert!(j.contains("file=/run/x/overlay.qcow2,if=virtio"), "{j}");
        assert!(j.contains("path=/run/x/serial.log"), "{j}");
        let k = a.iter().position(|x| x == "-append").unwrap();
        let cmdline = &a[k + 1];
        assert!(cmdline.contains("scx_vmctl.key=ssh-ed25519:AAAAC3Nza "), "{cmdline}");
        assert!(cmdline.contains(" quiet ") && cmdline.ends_with("init=/usr/bin/tini -- /sbin/scx-init"), "{cmdline}");
        // a quiet console; the user's --append (here `quiet`) comes later and wins
        assert!(cmdline.find("loglevel=6").unwrap() < cmdline.find(" quiet ").unwrap(), "{cmdline}");
        assert!(cmdline.contains(":scx-guest:eth0:off "), "{cmdline}");
    }

    #[test]
    fn preset_calibrations_come_before_the_users_append() {
        let mut s = spec(Accel::Tcg);
        let c = kernel_cmdline(&s);
        assert!(!c.contains("lpj=") && !c.contains("lapic_timer_freq="), "{c}");
        s.lpj = Some(8_400_000);
        s.lapic_timer_freq = Some(1_000_000_000);
        s.append = "lpj=1 lapic_timer_freq=2".into();
        let c = kernel_cmdline(&s);
        // the kernel takes the last: a user's own values win
        assert!(c.find(" lpj=8400000 ").unwrap() < c.find(" lpj=1 ").unwrap(), "{c}");
        assert!(c.find(" lapic_timer_freq=1000000000 ").unwrap() < c.find(" lapic_timer_freq=2 ").unwrap(), "{c}");
    }

    #[test]
    fn a_restore_differs_from_its_boot_only_by_waiting_for_the_state() {
        // QEMU loads a saved state only into the machine it was saved from.
        let files = RunFiles::new(Path::new("/run/x"));
        let mut boot = qemu_args(&spec(Accel::Tcg), &files, false);
        let restore = qemu_args(&spec(Accel::Tcg), &files, true);
        boot.extend(["-incoming".to_string(), "defer".to_string()]);
        assert_eq!(boot, restore);
        assert!(restore.join(" ").contains("-device vmgenid,guid=auto"));
    }

    #[test]
    fn kvm_argv_uses_host_cpu() {
        let j = qemu_args(&spec(Accel::Kvm), &RunFiles::new(Path::new("/r")), false).join(" ");
        assert!(j.contains("-accel kvm -cpu host"), "{j}");
        assert!(!j.contains("tcg"), "{j}");
    }

    #[test]
    fn bzimage_check() {
        let t = tempfile::tempdir().unwrap();
        let bad = t.path().join("vmlinux");
        std::fs::write(&bad, b"\x7fELF not a bzimage, long enough to have a header............................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................").unwrap();
        let e = check_bzimage(&bad).unwrap_err().to_string();
        assert!(e.contains("not an x86 bzImage"), "{e}");
        let e = check_bzimage(&t.path().join("missing")).unwrap_err().to_string();
        assert!(e.contains("cannot open"), "{e}");
        let e = check_bzimage(t.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        let mut good = vec![0u8; 0x300];
        good[0x202..0x206].copy_from_slice(b"HdrS");
        let g = t.path().join("bzImage");
        std::fs::write(&g, good).unwrap();
        check_bzimage(&g).unwrap();
        // an ELF is a boot kernel only with the PVH note
        let e = check_boot_kernel(&bad).unwrap_err().to_string();
        assert!(e.contains("not an x86 bzImage") || e.contains("without a PVH entry note"), "{e}");
        check_boot_kernel(&g).unwrap();
        // not readable as a file: the bzImage check names what is wrong
        let e = check_boot_kernel(&t.path().join("missing")).unwrap_err().to_string();
        assert!(e.contains("cannot open"), "{e}");
        let e = check_boot_kernel(t.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }

    /// An ELF64 with one PT_NOTE segment holding one note (name, type).
    fn elf_with_note(name: &[u8], n_type: u32) -> Vec<u8> {
        let mut desc = name.to_vec();
        desc.push(0);
        while !desc.len().is_multiple_of(4) {
            desc.push(0);
        }
        let mut note = Vec::new();
        note.extend((name.len() as u32 + 1).to_le_bytes());
        note.extend(4u32.to_le_bytes());
        note.extend(n_type.to_le_bytes());
        note.extend(&desc);
        note.extend(0x0100_0000u32.to_le_bytes());
        let (ehsize, phsize) = (64u64, 56u64);
        let mut f = vec![0u8; 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // 64-bit
        f[5] = 1; // little-endian
        f[6] = 1; // version
        f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        f[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[32..40].copy_from_slice(&ehsize.to_le_bytes()); // e_phoff
        f[52..54].copy_from_slice(&(ehsize as u16).to_le_bytes());
        f[54..56].copy_from_slice(&(phsize as u16).to_le_bytes());
        f[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let mut ph = vec![0u8; phsize as usize];
        ph[..4].copy_from_slice(&4u32.to_le_bytes()); // PT_NOTE
        ph[8..16].copy_from_slice(&(ehsize + phsize).to_le_bytes()); // p_offset
        ph[32..40].copy_from_slice(&(note.len() as u64).to_le_bytes()); // p_filesz
        ph[48..56].copy_from_slice(&4u64.to_le_bytes()); // p_align
        f.extend(ph);
        f.extend(note);
        f
    }

    #[test]
    fn pvh_note_is_recognised() {
        assert!(is_pvh_elf(&elf_with_note(b"Xen", XEN_ELFNOTE_PHYS32_ENTRY)[..]));
        assert!(!is_pvh_elf(&elf_with_note(b"Xen", 17)[..]), "another Xen note is not the entry");
        assert!(!is_pvh_elf(&elf_with_note(b"GNU", XEN_ELFNOTE_PHYS32_ENTRY)[..]));
        assert!(!is_pvh_elf(&b"\x7fELF short"[..]));
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("vmlinux.pvh");
        std::fs::write(&p, elf_with_note(b"Xen", XEN_ELFNOTE_PHYS32_ENTRY)).unwrap();
        check_boot_kernel(&p).unwrap();
        std::fs::write(&p, elf_with_note(b"Xen", 17)).unwrap();
        let e = check_boot_kernel(&p).unwrap_err().to_string();
        assert!(e.contains("without a PVH entry note"), "{e}");
    }

    #[test]
    fn version_parse() {
        assert_eq!(
            parse_qemu_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n").as_deref(),
            Some("10.0.2")
        );
    }
}
