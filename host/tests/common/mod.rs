//! Shared by the integration tests: run the real `scx-vmctl` binary with a
//! private state directory (its own VMs and key) and the shared artifact
//! cache (kernel and image are built once, by the first test that needs them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub struct Env {
    pub state: tempfile::TempDir,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_scx-vmctl")
}

/// Build (or find cached) the default kernel, image and agent once per test binary.
pub fn artifacts() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        for args in [&["kernel", "build"][..], &["image", "build"][..], &["agent", "build"][..]] {
            let o = Command::new(bin()).args(args).output().unwrap();
            assert!(
                o.status.success(),
                "scx-vmctl {args:?} failed:\n{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    });
}

impl Env {
    pub fn new() -> Env {
        artifacts();
        Env { state: tempfile::tempdir().unwrap() }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("SCX_VMCTL_STATE", self.state.path());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Run and insist on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "scx-vmctl {args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn vm_dir(&self, name: &str) -> PathBuf {
        self.state.path().join("vms").join(name)
    }

    pub fn vm_json(&self, name: &str) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.vm_dir(name).join("vm.json")).unwrap()).unwrap()
    }
}

impl Drop for Env {
    /// Never leave a QEMU behind, whatever the test did.
    fn drop(&mut self) {
        let _ = Command::new(bin())
            .env("SCX_VMCTL_STATE", self.state.path())
            .args(["down", "--all", "--force"])
            .output();
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Is any process running with this QEMU -name?
pub fn qemu_running(name: &str) -> bool {
    let want = format!("scx-vmctl-{name},");
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline")).map(|c| String::from_utf8_lossy(&c).contains(&want)).unwrap_or(false)
    })
}

pub fn sha256(p: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

/// stdout and stderr of a command, for assertion messages.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A JSON file, or a panic naming it.
pub fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}
