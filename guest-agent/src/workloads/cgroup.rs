//! The workload's cgroups: children of /sys/fs/cgroup/scx-vmctl with the
//! cpu controller enabled and their own cpu.weight, so scx_flatcg has real
//! cgroups of different weight to schedule (the others ignore them).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub const CGROUP_FS: &str = "/sys/fs/cgroup";
pub const PARENT: &str = "/sys/fs/cgroup/scx-vmctl";

#[derive(Debug)]
pub struct Leaf {
    pub name: String,
    pub path: PathBuf,
    pub weight: u32,
}

#[derive(Debug)]
pub struct Cgroups {
    pub leaves: Vec<Leaf>,
    /// false when the kernel offers no cpu controller: weights not applied
    pub weighted: bool,
}

fn write(path: &Path, what: &str) -> Result<()> {
    fs::write(path, what).with_context(|| format!("writing {what:?} to {}", path.display()))
}

/// Create the cgroups of `spec` (name -> cpu.weight); an empty spec gives
/// one cgroup "workload" of default weight.
pub fn setup(spec: &BTreeMap<String, u32>) -> Result<Cgroups> {
    let controllers = fs::read_to_string(Path::new(CGROUP_FS).join("cgroup.controllers"))
        .context("cgroup2 is not mounted at /sys/fs/cgroup")?;
    let weighted = controllers.split_whitespace().any(|c| c == "cpu");

    fs::create_dir_all(PARENT).with_context(|| format!("creating {PARENT}"))?;
    if weighted {
        write(&Path::new(CGROUP_FS).join("cgroup.subtree_control"), "+cpu")?;
        write(&Path::new(PARENT).join("cgroup.subtree_control"), "+cpu")?;
    }
    let mut leaves = Vec::new();
    let default = BTreeMap::from([("workload".to_string(), 100)]);
    for (name, weight) in if spec.is_empty() { &default } else { spec } {
        let path = Path::new(PARENT).join(name);
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        if weighted {
            write(&path.join("cpu.weight"), &weight.to_string())?;
        }
        leaves.push(Leaf { name: name.clone(), path, weight: *weight });
    }
    Ok(Cgroups { leaves, weighted })
}

/// Make `cmd`'s process start in `leaf` and lead its own process group (so
/// the whole tree it forks can be signalled at once). The cgroup.procs file
/// is opened here and written from the child before exec: writing "0"
/// moves the writer itself, so no task of the workload ever runs outside.
pub fn spawn_into(cmd: &mut Command, leaf: &Leaf) -> Result<std::process::Child> {
    let procs = File::options()
        .write(true)
        .open(leaf.path.join("cgroup.procs"))
        .with_context(|| format!("opening {}/cgroup.procs", leaf.path.display()))?;
    let fd = procs.as_raw_fd();
    // SAFETY: the hook only calls setpgid and write, both async-signal-safe, and allocates nothing;
    // fd stays valid in the child because `procs` is dropped only after spawn.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::write(fd, b"0\n".as_ptr() as *const libc::c_void, 2) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().with_context(|| format!("starting {:?}", cmd.get_program()))?;
    drop(procs);
    Ok(child)
}

/// Remove our cgroups (they must be empty); waits a little for exiting
/// tasks to leave them.
pub fn remove_all() -> Result<()> {
    let parent = Path::new(PARENT);
    if !parent.exists() {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut last_err = None;
        if let Ok(rd) = fs::read_dir(parent) {
            for e in rd.flatten() {
                if e.path().is_dir() {
                    if let Err(err) = fs::remove_dir(e.path()) {
                        last_err = Some((e.path(), err));
                    }
                }
            }
        }
        match (last_err, fs::remove_dir(parent)) {
            (None, Ok(())) => return Ok(()),
            (Some((p, e)), _) if Instant::now() > deadline => {
                return Err(anyhow::anyhow!("cannot remove {}: {e}", p.display()))
            }
            (None, Err(e)) if Instant::now() > deadline => {
                return Err(anyhow::anyhow!("cannot remove {PARENT}: {e}"))
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
