//! VM lifecycle: a `VmSpec` becomes a running `Vm` (QEMU + QMP + SSH ready),
//! recorded in its private run directory so later commands (`ssh`, `status`,
//! `down`) find it; `down` powers it off and leaves nothing behind.

use crate::paths;
use crate::machine::qemu::{self, RunFiles, VmSpec};
use crate::machine::qmp::{Qmp, VmEvent};
use crate::machine::ssh::{Ssh, SshError, Target, ToolKey};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a run directory records about its VM (vm.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmState {
    pub spec: VmSpec,
    pub pid: u32,
    pub qemu_version: String,
    pub started_unix: u64,
    /// The guest's pinned SSH host key.
    pub host_key: String,
    pub kernel_id: String,
    pub image_id: String,
    /// Started by an experiment or test that will stop it (dies with it).
    pub owned: bool,
}

/// Inputs of a launch besides the spec.
pub struct Launch {
    pub spec: VmSpec,
    pub host_key: String,
    pub kernel_id: String,
    pub image_id: String,
    /// Kill QEMU if this process dies (experiments, tests); `up` leaves it running.
    pub owned: bool,
    pub boot_timeout: Duration,
    /// Where the run directory goes (default: the state dir's vms/<name>).
    pub run_dir: Option<PathBuf>,
    /// Start from a saved state instead of booting (machine::snapshot).
    pub restore: Option<Restore>,
}

/// A saved guest state to start from: QEMU's state file and the disk as it
/// was at the same moment (the VM writes to a fresh overlay of it).
#[derive(Debug, Clone)]
pub struct Restore {
    pub state: PathBuf,
    pub disk: PathBuf,
}

/// Lifecycle errors a caller decides on (by variant, never by message).
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// A live QEMU already owns this VM name (its run directory is in use).
    #[error("VM name `{name}` is in use (QEMU pid {pid}); pick another --name or run `scx-vmctl down {name}`")]
    NameInUse { name: String, pid: u32 },
}

impl VmError {
    /// The user's choice is the problem (exit 2), not the tool.
    pub fn is_bad_input(&self) -> bool {
        match self {
            VmError::NameInUse { .. } => true,
        }
    }
}

pub struct Vm {
    pub state: VmState,
    pub files: RunFiles,
    pub qmp: Option<Qmp>,
    key: Arc<russh::keys::PrivateKey>,
    child: Option<tokio::process::Child>,
    /// The connection the boot's readiness check made, for the first `ssh()`.
    ready: std::sync::Mutex<Option<Ssh>>,
}

pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.starts_with('-');
    if !ok {
        bail!("VM name `{name}` is not valid: use 1-32 letters, digits, - or _ (e.g. --name scx1)");
    }
    Ok(())
}

/// Is `pid` a QEMU started for VM `name`? (Guards against a reused pid.)
pub fn pid_is_vm(pid: u32, name: &str) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(c) => {
            let want = format!("scx-vmctl-{name},");
            String::from_utf8_lossy(&c).contains(&want)
        }
        Err(_) => false,
    }
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A free TCP port on 127.0.0.1 (QEMU binds it a moment later; a lost race is retried).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind a port on 127.0.0.1")?;
    Ok(l.local_addr()?.port())
}

/// Why a boot went wrong, read from the serial console; None while it looks fine.
pub fn diagnose_serial(serial: &str) -> Option<String> {
    let line_with = |pat: &str| serial.lines().find(|l| l.contains(pat)).map(|l| l.trim().to_string());
    if let Some(l) = line_with("VFS: Cannot open root device").or_else(|| line_with("VFS: Unable to mount root fs")) {
        return Some(format!(
            "the kernel cannot mount the root disk /dev/vda ({l}): it needs CONFIG_PCI=y, CONFIG_VIRTIO_PCI=y, \
             CONFIG_VIRTIO_BLK=y and CONFIG_EXT4_FS=y built in (not =m; there is no initramfs)"
        ));
    }
    if let Some(l) = line_with("No working init found").or_else(|| line_with("Requested init /usr/bin/tini failed")) {
        return Some(format!("the guest has no usable init ({l}): rebuild the image with `scx-vmctl image build --force`"));
    }
    if let Some(l) = line_with("Kernel panic - not syncing") {
        return Some(format!("the guest kernel panicked during boot: {l}"));
    }
    None
}

/// Our init's lines on the console (vm-images/rootfs/init.sh writes them to
/// /dev/kmsg at level 4: the console shows no INFO lines, see kernel_cmdline).
pub const INIT_STARTED: &str = "scx-vmctl: init started";
pub const INIT_DONE: &str = "scx-vmctl: guest init done";
const INIT_NO_NETWORK: &str = "scx-vmctl: no network";

/// Why SSH never answered although the guest seems to have booted.
pub fn diagnose_no_ssh(serial: &str) -> Option<String> {
    if serial.contains(INIT_NO_NETWORK) {
        return Some(
            "the guest booted but configured no network: the kernel needs CONFIG_VIRTIO_NET=y, CONFIG_IP_PNP=y \
             and CONFIG_INET=y built in"
                .into(),
        );
    }
    // "Run /usr/bin/tini" and "Freeing unused kernel" are INFO lines, seen
    // with `--append loglevel=7` only.
    let reached_init = [INIT_STARTED, "Run /usr/bin/tini", "Freeing unused kernel"].iter().any(|m| serial.contains(m));
    if !reached_init && !serial.is_empty() {
        return Some(format!(
            "the guest kernel never started our init (no `{INIT_STARTED}` line; see the serial log, and \
             `--append loglevel=7` for all of the kernel's lines)"
        ));
    }
    None
}

/// The SSH server's line on the serial console once it listens: dropbear's
/// (`dropbear -F -E`, logged after it bound its port) or sshd's (`sshd -D -e`).
const SSHD_MARKERS: [&str; 2] = ["Not backgrounding", "Server listening on"];
/// An image without that line still boots: after this long, SSH is tried anyway.
const SSHD_MARKER_WAIT: Duration = Duration::from_secs(20);

fn tail(path: &Path, lines: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

impl Vm {
    /// Start QEMU and return once the guest answers SSH.
    pub async fn launch(l: Launch, key: &ToolKey) -> Result<Vm> {
        validate_name(&l.spec.name)?;
        let dir = l.run_dir.clone().unwrap_or_else(|| paths::vm_dir(&l.spec.name));
        if dir.exists() {
            match read_state(&dir) {
                Ok(st) if pid_is_vm(st.pid, &st.spec.name) => {
                    return Err(VmError::NameInUse { name: st.spec.name, pid: st.pid }.into());
                }
                _ => {
                    crate::errln!("note: removing the stale run directory of a VM that is gone: {}", dir.display());
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("cannot remove stale run directory {}", dir.display()))?;
                }
            }
        }
        qemu::check_boot_kernel(&l.spec.kernel)?;
        let qemu_version = qemu::qemu_version()?;
        paths::private_dir(&dir)?;
        let files = RunFiles::new(&dir);
        let result = Self::start(l, key, files, qemu_version).await;
        if result.is_err() {
            // Nothing left running; the serial log is kept for the post-mortem.
            let keep = paths::state_dir().join("logs");
            let _ = std::fs::create_dir_all(&keep);
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let saved = keep.join(format!("{name}-{}.serial.log", now_unix()));
            let _ = std::fs::copy(dir.join("serial.log"), &saved);
            let _ = std::fs::remove_dir_all(&dir);
            return result.map_err(|e| e.context(format!("serial log kept in {}", saved.display())));
        }
        result
    }

    async fn start(l: Launch, key: &ToolKey, files: RunFiles, qemu_version: String) -> Result<Vm> {
        let backing = l.restore.as_ref().map(|r| r.disk.as_path()).unwrap_or(&l.spec.base_image);
        qemu::create_overlay(backing, &files.overlay())?;
        let mut spec = l.spec.clone();
        let mut attempt = 0;
        let (child, qmp) = loop {
            attempt += 1;
            let args = qemu::qemu_args(&spec, &files, l.restore.is_some());
            let log = std::fs::File::create(files.qemu_log())?;
            let mut cmd = tokio::process::Command::new(qemu::QEMU);
            cmd.args(&args).stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log);
            let owned = l.owned;
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    // Own session: a Ctrl-C at the terminal reaches scx-vmctl, which
                    // then powers the guest down in order.
                    libc::setsid();
                    if owned {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    }
                    Ok(())
                });
            }
            let mut child = cmd.spawn().map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    anyhow::anyhow!("{} is not installed: apt-get install qemu-system-x86", qemu::QEMU)
                } else {
                    anyhow::anyhow!("cannot start {}: {e}", qemu::QEMU)
                }
            })?;
            match Qmp::connect(&files.qmp(), Some(files.events()), Duration::from_secs(10)).await {
                Ok(q) => break (child, q),
                Err(e) => {
                    let _ = child.kill().await;
                    let log = std::fs::read_to_string(files.qemu_log()).unwrap_or_default();
                    if log.contains("host forwarding rule") && attempt < 4 {
                        spec.ssh_port = free_port()?; // lost the port race
                        continue;
                    }
                    bail!("QEMU did not start: {}", if log.trim().is_empty() { format!("{e:#}") } else { log.trim().to_string() });
                }
            }
        };
        let pid = child.id().unwrap_or(0);
        let state = VmState {
            spec,
            pid,
            qemu_version,
            started_unix: now_unix(),
            host_key: l.host_key.clone(),
            kernel_id: l.kernel_id,
            image_id: l.image_id,
            owned: l.owned,
        };
        paths::write_atomic(&files.state(), &serde_json::to_vec_pretty(&state)?)?;
        let mut vm = Vm { state, files, qmp: Some(qmp), key: key.private.clone(), child: Some(child), ready: Default::default() };
        let ready = match &l.restore {
            None => vm.wait_ssh(l.boot_timeout, true).await,
            Some(r) => vm.resume_from(r, l.boot_timeout).await,
        };
        if let Err(e) = ready {
            vm.kill().await;
            return Err(e);
        }
        Ok(vm)
    }

    /// Load the saved state into this (paused, `-incoming defer`) QEMU, run
    /// it, and mend what a restore leaves stale in the guest: its wall clock
    /// stood still while the state sat on disk, and its RNG state is the one
    /// every restore of this file starts with (vmgenid reseeds it too).
    async fn resume_from(&mut self, r: &Restore, timeout: Duration) -> Result<()> {
        let qmp = self.qmp.as_ref().context("no QMP connection to load the state through")?;
        qmp.load_from_file(&r.state, timeout).await?;
        qmp.cont().await?;
        // sshd is already listening in the saved guest: no console line to wait for
        self.wait_ssh(timeout, false).await?;
        let ssh = self.ssh().await?;
        let mut seed = [0u8; 32];
        std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
        let o = ssh
            .exec(&format!(
                "date -u -s @{}.{:09} >/dev/null && printf %s {} > /dev/urandom",
                now.as_secs(),
                now.subsec_nanos(),
                hex::encode(seed)
            ))
            .await?;
        if o.status != 0 {
            bail!("setting the restored guest's clock failed: {}", o.stderr_str().trim());
        }
        self.keep_ssh(ssh);
        Ok(())
    }

    /// Keep a connection for the next `ssh()` (a handshake costs a TCG
    /// guest 0.2-0.6 s).
    fn keep_ssh(&self, ssh: Ssh) {
        if let Ok(mut r) = self.ready.lock() {
            *r = Some(ssh);
        }
    }

    /// Save this VM's whole state into `state` and its disk into `disk` (the
    /// overlay, moved), then end QEMU and remove the run directory. The VM is
    /// paused first, so memory and disk are taken at the same moment.
    pub async fn save(mut self, state: &Path, disk: &Path, timeout: Duration) -> Result<qapi::qmp::MigrationInfo> {
        let result = async {
            let qmp = self.qmp.as_ref().context("no QMP connection to save the state through")?;
            qmp.stop().await?;
            let info = qmp.save_to_file(state, timeout).await?;
            qmp.quit().await?;
            Ok::<_, anyhow::Error>(info)
        }
        .await;
        if !self.wait_gone(Duration::from_secs(5)).await {
            self.kill().await;
        }
        let moved = match &result {
            Ok(_) => crate::paths::move_file(&self.files.overlay(), disk)
                .with_context(|| format!("cannot move the saved disk to {}", disk.display())),
            Err(_) => Ok(()),
        };
        let cleaned = self.cleanup();
        let info = result?;
        moved?;
        cleaned?;
        Ok(info)
    }

    async fn wait_ssh(&mut self, timeout: Duration, console_marker: bool) -> Result<()> {
        let target = self.target();
        let serial = self.files.serial();
        let qemu_log = self.files.qemu_log();
        let mut events = self.qmp.as_ref().map(|q| q.subscribe());
        let child = self.child.as_mut();
        let mut child = child;
        let start = std::time::Instant::now();
        let mut check = || -> Result<()> {
            // The serial log explains more than "QEMU exited" or "panicked", so it goes first.
            let s = std::fs::read_to_string(&serial).unwrap_or_default();
            if let Some(why) = diagnose_serial(&s) {
                bail!("{why}");
            }
            if let Some(rx) = events.as_mut() {
                while let Ok(ev) = rx.try_recv() {
                    if ev == VmEvent::GuestPanicked {
                        bail!("the guest kernel panicked during boot:\n{}", tail(&serial, 20));
                    }
                }
            }
            if let Some(c) = child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    bail!("QEMU exited during boot ({st}): {}\n{}", tail(&qemu_log, 5), tail(&serial, 15));
                }
            }
            Ok(())
        };
        // Attempts made before the guest's network is up stall in slirp (its SYN is
        // lost and retried seconds later), so wait for sshd's own line first:
        // measured 5.5 s -> ~3 s from QEMU start to SSH ready under TCG.
        while console_marker && start.elapsed() < SSHD_MARKER_WAIT.min(timeout) {
            check()?;
            if std::fs::read_to_string(&serial).is_ok_and(|s| SSHD_MARKERS.iter().any(|m| s.contains(m))) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let r = Ssh::wait_ready(&target, timeout.saturating_sub(start.elapsed()), check).await;
        match r {
            Ok(ssh) => {
                self.keep_ssh(ssh);
                Ok(())
            }
            Err(e) => {
                let s = std::fs::read_to_string(&serial).unwrap_or_default();
                match diagnose_no_ssh(&s) {
                    Some(why) if matches!(e.downcast_ref::<SshError>(), Some(SshError::NotAnswering { .. })) => {
                        bail!("{why} ({e})")
                    }
                    _ => Err(e),
                }
            }
        }
    }

    /// A running VM by name, from its run directory.
    pub async fn attach(name: &str) -> Result<Vm> {
        validate_name(name)?;
        let dir = paths::vm_dir(name);
        Self::attach_dir(&dir, name).await
    }

    pub async fn attach_dir(dir: &Path, name: &str) -> Result<Vm> {
        let state = read_state(dir).map_err(|_| {
            anyhow::anyhow!("no VM named `{name}` is running (see `scx-vmctl list`; start one with `scx-vmctl up --name {name}`)")
        })?;
        if !pid_is_vm(state.pid, &state.spec.name) {
            bail!(
                "VM `{name}` is not running (QEMU pid {} is gone; its run directory is stale: `scx-vmctl down {name}` removes it)",
                state.pid
            );
        }
        let files = RunFiles::new(dir);
        let key = ToolKey::load_or_create(&paths::state_dir().join("keys"))?;
        Ok(Vm { state, files, qmp: None, key: key.private, child: None, ready: Default::default() })
    }

    /// Connect to the monitor of an attached VM (`status`, `down`). QEMU serves
    /// one QMP client at a time, so this fails while an experiment holds it.
    pub async fn connect_qmp(&mut self) -> Result<()> {
        if self.qmp.is_none() {
            self.qmp = Some(Qmp::connect(&self.files.qmp(), Some(self.files.events()), Duration::from_secs(3)).await?);
        }
        Ok(())
    }

    pub fn target(&self) -> Target {
        Target { port: self.state.spec.ssh_port, host_key: self.state.host_key.clone(), key: self.key.clone() }
    }

    pub fn name(&self) -> &str {
        &self.state.spec.name
    }

    /// An SSH connection to the guest: the one the boot made, if it is
    /// still unused, else a new one.
    pub async fn ssh(&self) -> Result<Ssh> {
        if let Some(s) = self.ready.lock().ok().and_then(|mut r| r.take()) {
            return Ok(s);
        }
        Ssh::connect(&self.target(), Duration::from_secs(15)).await
    }

    pub fn is_alive(&mut self) -> bool {
        if let Some(c) = self.child.as_mut() {
            return matches!(c.try_wait(), Ok(None));
        }
        pid_is_vm(self.state.pid, &self.state.spec.name)
    }

    /// Power off in order: ACPI power button, then QMP quit, then SIGKILL.
    /// Always ends with no QEMU and no run directory.
    pub async fn shutdown(mut self, force: bool) -> Result<()> {
        let _ = self.connect_qmp().await; // without it, the kill below still works
        if !force {
            if let Some(q) = self.qmp.as_ref() {
                let mut rx = q.subscribe();
                if q.system_powerdown().await.is_ok() {
                    let _ = tokio::time::timeout(Duration::from_secs(10), async {
                        loop {
                            match rx.recv().await {
                                Ok(VmEvent::Shutdown { .. }) | Ok(VmEvent::Closed) | Err(_) => break,
                                _ => {}
                            }
                        }
                    })
                    .await;
                }
            }
        }
        if self.wait_gone(Duration::from_millis(500)).await {
            return self.cleanup();
        }
        if let Some(q) = self.qmp.as_ref() {
            let _ = q.quit().await;
        }
        if !self.wait_gone(Duration::from_secs(5)).await {
            self.kill().await;
        }
        self.cleanup()
    }

    async fn wait_gone(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if !self.is_alive() {
                if let Some(c) = self.child.as_mut() {
                    let _ = c.wait().await;
                }
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL QEMU and wait for it to be gone.
    pub async fn kill(&mut self) {
        self.qmp = None;
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill().await;
            return;
        }
        if pid_is_vm(self.state.pid, &self.state.spec.name) {
            // SAFETY: plain kill(2) on a pid we just checked is this VM's QEMU.
            unsafe { libc::kill(self.state.pid as i32, libc::SIGKILL) };
        }
        let _ = self.wait_gone(Duration::from_secs(5)).await;
    }

    fn cleanup(self) -> Result<()> {
        std::fs::remove_dir_all(&self.files.dir)
            .with_context(|| format!("cannot remove run directory {}", self.files.dir.display()))
    }

    /// Kill and remove the run directory without a graceful power-off (on failure paths).
    pub async fn destroy(mut self) {
        self.kill().await;
        let _ = std::fs::remove_dir_all(&self.files.dir);
    }
}

pub fn read_state(dir: &Path) -> Result<VmState> {
    let p = dir.join("vm.json");
    let s = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_slice(&s).with_context(|| format!("corrupt {}", p.display()))
}

/// A VM as `list` shows it.
pub struct Listed {
    pub name: String,
    pub state: Option<VmState>,
    pub alive: bool,
}

pub fn list() -> Vec<Listed> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(paths::vms_dir()) else { return out };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let state = read_state(&e.path()).ok();
        let alive = state.as_ref().is_some_and(|s| pid_is_vm(s.pid, &s.spec.name));
        out.push(Listed { name, state, alive });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// `down` of a VM whose QEMU is gone: remove what it left.
pub fn remove_stale(name: &str) -> Result<bool> {
    let dir = paths::vm_dir(name);
    if !dir.exists() {
        return Ok(false);
    }
    if let Ok(st) = read_state(&dir) {
        if pid_is_vm(st.pid, &st.spec.name) {
            return Ok(false);
        }
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        validate_name("scx1").unwrap();
        validate_name("a_b-c").unwrap();
        for bad in ["", "-x", "a/b", "a b", "../x", &"x".repeat(33)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serial_diagnosis_names_config_options() {
        let s = "[ 1.0] VFS: Cannot open root device \"vda\" or unknown-block(0,0): error -6\n\
                 [ 1.0] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n";
        let d = diagnose_serial(s).unwrap();
        assert!(d.contains("CONFIG_VIRTIO_BLK=y") && d.contains("CONFIG_EXT4_FS=y"), "{d}");
        assert!(diagnose_serial("[ 1.0] Run /usr/bin/tini as init process\n").is_none());
        // What init.sh writes at the console's quiet level (loglevel=6).
        let quiet = "[ 0.0] Linux version 6.12\n[ 1.3] scx-vmctl: init started\n";
        let n = diagnose_no_ssh(&format!("{quiet}[ 1.4] scx-vmctl: no network: eth0 has no route\n")).unwrap();
        assert!(n.contains("CONFIG_VIRTIO_NET=y"), "{n}");
        assert!(diagnose_no_ssh(&format!("{quiet}[ 1.5] scx-vmctl: guest init done, starting the SSH server\n")).is_none());
        let k = diagnose_no_ssh("[ 0.0] Linux version 6.12\n[ 0.9] virtio_blk virtio2: [vda]\n").unwrap();
        assert!(k.contains("never started our init") && k.contains("loglevel=7"), "{k}");
        // A verbose console (loglevel=7) shows the kernel's own line.
        assert!(diagnose_no_ssh("[ 1.3] Run /usr/bin/tini as init process\n").is_none());
    }

    #[test]
    fn free_port_is_loopback_bindable() {
        let p = free_port().unwrap();
        assert!(p > 0);
        std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
    }
}
