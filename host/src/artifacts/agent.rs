//! The guest agent as the host sees it: built (with its BPF objects embedded)
//! for a given guest kernel's BTF, cached by the hash of that BTF and of the
//! agent and BPF sources, and copied into a guest over SSH.

use crate::paths;
use crate::progress::Progress;
use crate::machine::ssh::Ssh;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const GUEST_PATH: &str = "/root/scx-guest-agent";
const RECIPE_VERSION: &str = "agent-recipe-1";

#[derive(Debug, Clone)]
pub struct Agent {
    pub path: PathBuf,
    pub id: String,
}

fn hash_tree(h: &mut Sha256, root: &Path, dir: &Path) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let name = e.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            hash_tree(h, root, &p)?;
        } else {
            h.update(p.strip_prefix(root).unwrap_or(&p).to_string_lossy().as_bytes());
            h.update(std::fs::read(&p)?);
        }
    }
    Ok(())
}

/// The id of the agent built from the current sources against `vmlinux_h`.
pub fn agent_id(vmlinux_h: &Path) -> Result<String> {
    let src = paths::source_dir()?;
    let mut h = Sha256::new();
    h.update(RECIPE_VERSION);
    h.update(std::fs::read(vmlinux_h).with_context(|| format!("cannot read {}", vmlinux_h.display()))?);
    // the agent is built from these trees: its own, the contract it shares
    // with the host, and the BPF sources
    for dir in ["guest-agent", "contract", "bpf"] {
        hash_tree(&mut h, &src, &src.join(dir))?;
    }
    h.update(std::fs::read(src.join("Cargo.lock")).unwrap_or_default());
    Ok(hex::encode(h.finalize())[..16].to_string())
}

/// Build (or find in the cache) the agent for a kernel whose BTF is `vmlinux_h`.
pub async fn build(vmlinux_h: &Path) -> Result<Agent> {
    let id = agent_id(vmlinux_h)?;
    let dir = paths::cache_dir().join("agent").join(&id);
    let path = dir.join("scx-guest-agent");
    if path.exists() {
        return Ok(Agent { path, id });
    }
    for tool in ["cargo", "clang-19"] {
        if crate::artifacts::kernel::which(tool).is_none() {
            let pkg = if tool == "cargo" { "a Rust toolchain (https://rustup.rs)" } else { "apt-get install clang-19 llvm-19 libbpf-dev" };
            bail!("{tool} is needed to build the guest agent: {pkg}");
        }
    }
    let vmlinux_h = vmlinux_h.to_path_buf();
    tokio::task::spawn_blocking(move || build_blocking(&vmlinux_h, id, dir)).await?
}

fn build_blocking(vmlinux_h: &Path, id: String, dir: PathBuf) -> Result<Agent> {
    let src = paths::source_dir()?;
    // One cargo target per checkout: cargo keys a build script's output by
    // package, not by path, so two checkouts sharing a target dir could ship
    // each other's BPF objects.
    let checkout = hex::encode(Sha256::digest(src.to_string_lossy().as_bytes()))[..12].to_string();
    let target = paths::cache_dir().join("agent").join(format!("target-{checkout}"));
    let mut p = Progress::new("agent").every(std::time::Duration::from_secs(15));
    p.note(&format!("building the guest agent and its BPF schedulers against {} (id {id})", vmlinux_h.display()));
    let mut child = Command::new("cargo")
        .current_dir(&src)
        .args(["build", "--release", "--locked", "-p", "scx-guest-agent", "--target-dir"])
        .arg(&target)
        .env("SCX_VMLINUX_H", vmlinux_h)
        .env("CARGO_TERM_COLOR", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run cargo")?;
    let mut log = Vec::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line?;
        if let Some(c) = line.trim_start().strip_prefix("Compiling ") {
            p.update(&format!("compiling {c}"));
        }
        log.push(line);
    }
    if !child.wait()?.success() {
        // The interesting part of a cargo failure is its first error and what follows.
        let from = log.iter().position(|l| l.contains("error")).unwrap_or(log.len().saturating_sub(30));
        bail!("building the guest agent failed:\n{}", log[from..].iter().take(40).cloned().collect::<Vec<_>>().join("\n"));
    }
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("scx-guest-agent");
    let tmp = dir.join(".scx-guest-agent.tmp");
    std::fs::copy(target.join("release/scx-guest-agent"), &tmp)?;
    std::fs::rename(&tmp, &path)?;
    p.finish(&format!("agent {id} ready"));
    Ok(Agent { path, id })
}

/// Copy the agent into the guest (as GUEST_PATH).
pub async fn install(ssh: &Ssh, agent: &Agent) -> Result<()> {
    ssh.upload(&agent.path, "/root", Some("scx-guest-agent")).await.context("copying the guest agent in")
}

/// A vmlinux.h for a kernel we did not build, from the running guest's BTF.
pub async fn vmlinux_h_from_guest(ssh: &Ssh) -> Result<PathBuf> {
    let o = ssh.exec("cat /sys/kernel/btf/vmlinux").await?;
    if o.status != 0 || o.stdout.is_empty() {
        bail!("the guest kernel has no /sys/kernel/btf/vmlinux: it needs CONFIG_DEBUG_INFO_BTF=y (and sched_ext needs it too)");
    }
    let sha = hex::encode(Sha256::digest(&o.stdout));
    let dir = paths::cache_dir().join("btf").join(&sha[..16]);
    let h = dir.join("vmlinux.h");
    if h.exists() {
        return Ok(h);
    }
    std::fs::create_dir_all(&dir)?;
    let raw = dir.join("vmlinux.btf");
    std::fs::write(&raw, &o.stdout)?;
    let out = Command::new("bpftool").args(["btf", "dump", "file"]).arg(&raw).args(["format", "c"]).output()
        .context("cannot run bpftool (apt-get install bpftool)")?;
    if !out.status.success() {
        bail!("bpftool could not read the guest's BTF: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    std::fs::write(&h, &out.stdout)?;
    Ok(h)
}
