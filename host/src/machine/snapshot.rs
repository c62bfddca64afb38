//! Saved guest states for `--reset snapshot`. A guest is booted once, its
//! agent (and a user's scheduler binaries) installed and checked, brought to
//! the state a run starts from, then saved: QEMU's RAM and device state into
//! a mapped-ram file and its disk overlay, frozen at the same moment. Every
//! run then starts a fresh QEMU that loads that state over a fresh overlay of
//! that disk, instead of booting.
//!
//! A state is kept in the cache under a hash of everything the saved guest
//! depends on (QEMU, kernel, image, agent, the files copied in, the machine's
//! shape, the tool's key) and those inputs are compared again on use, so a
//! state saved from another kernel, image or agent is never loaded.

use crate::machine::qemu::VmSpec;
use crate::machine::vm::{Restore, Vm};
use crate::paths;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bumped when what a saved state holds, or how it is made, changes.
pub const FORMAT: u32 = 1;
/// Saved states kept besides the one in use (each is a few hundred MB on disk).
const KEEP: usize = 3;

/// Everything a saved guest depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    pub format: u32,
    pub qemu_version: String,
    pub kernel_id: String,
    pub kernel_path: String,
    pub image_id: String,
    pub base_image: String,
    pub agent_id: String,
    /// Files copied into the guest besides the agent: (guest path, sha256).
    pub files: Vec<(String, String)>,
    pub cpus: u32,
    pub memory_mib: u32,
    /// the machine's shape ("" for flat vCPUs)
    pub topology: String,
    pub accel: String,
    pub append: String,
    pub authorized_key: String,
}

impl Inputs {
    pub fn new(spec: &VmSpec, kernel_id: &str, image_id: &str, agent_id: &str, qemu_version: &str, files: Vec<(String, String)>) -> Inputs {
        Inputs {
            format: FORMAT,
            qemu_version: qemu_version.to_string(),
            kernel_id: kernel_id.to_string(),
            kernel_path: spec.kernel.display().to_string(),
            image_id: image_id.to_string(),
            base_image: spec.base_image.display().to_string(),
            agent_id: agent_id.to_string(),
            files,
            cpus: spec.cpus,
            memory_mib: spec.memory_mib,
            topology: spec.topology.map(|t| t.to_string()).unwrap_or_default(),
            accel: spec.accel.describe().to_string(),
            append: spec.append.trim().to_string(),
            authorized_key: spec.authorized_key.clone(),
        }
    }

    pub fn key(&self) -> String {
        let j = serde_json::to_vec(self).expect("inputs serialize");
        hex::encode(&Sha256::digest(&j)[..8])
    }
}

/// snapshot.json beside the state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Info {
    pub inputs: Inputs,
    pub made_unix: u64,
    /// Seconds from QEMU start to the state on disk.
    pub make_s: f64,
    /// Seconds the save itself took (pause, write, quit).
    pub save_s: f64,
    /// Bytes of the state file actually on disk (zero pages are holes).
    pub state_bytes: u64,
}

pub struct Snapshot {
    pub dir: PathBuf,
    pub info: Info,
}

impl Snapshot {
    pub fn key(&self) -> String {
        self.info.inputs.key()
    }

    /// The console of the boot the state was saved from.
    pub fn boot_serial(&self) -> PathBuf {
        self.dir.join("boot.serial.log")
    }

    pub fn restore(&self) -> Restore {
        Restore { state: state_file(&self.dir), disk: disk_file(&self.dir) }
    }
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join("state.ram")
}
fn disk_file(dir: &Path) -> PathBuf {
    dir.join("disk.qcow2")
}

pub fn root() -> PathBuf {
    paths::cache_dir().join("snapshots")
}

/// Why a saved state on disk cannot be used for `want`, or None if it can.
pub fn mismatch(have: &Inputs, want: &Inputs) -> Option<String> {
    let (a, b) = (serde_json::to_value(have).ok()?, serde_json::to_value(want).ok()?);
    let (a, b) = (a.as_object()?, b.as_object()?);
    let changed: Vec<&str> = b.keys().filter(|k| a.get(*k) != b.get(*k)).map(|k| k.as_str()).collect();
    (!changed.is_empty()).then(|| format!("saved for another {}", changed.join(", ")))
}

/// The saved state for `want` in `root`, if there is one made from exactly
/// these inputs with its files in place.
pub fn find_in(root: &Path, want: &Inputs) -> Result<Option<Snapshot>, String> {
    let dir = root.join(want.key());
    let Ok(b) = std::fs::read(dir.join("snapshot.json")) else { return Ok(None) };
    let info: Info = serde_json::from_slice(&b).map_err(|e| format!("{}: unreadable ({e})", dir.display()))?;
    if let Some(why) = mismatch(&info.inputs, want) {
        return Err(format!("{}: {why}", dir.display()));
    }
    for f in [state_file(&dir), disk_file(&dir)] {
        if !f.is_file() {
            return Err(format!("{}: {} is missing", dir.display(), f.display()));
        }
    }
    // the base image must be the one the disk was saved on top of
    if !Path::new(&want.base_image).is_file() {
        return Err(format!("{}: base image {} is gone", dir.display(), want.base_image));
    }
    let _ = filetime_touch(&dir);
    Ok(Some(Snapshot { dir, info }))
}

/// Save `vm` (booted from the inputs' kernel and image, the agent installed,
/// reset) as the state for `inputs`. `booted` is when its QEMU started.
pub async fn save_in(root: &Path, vm: Vm, inputs: &Inputs, booted: Instant) -> Result<Snapshot> {
    std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    let key = inputs.key();
    let tmp = root.join(format!(".{key}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let t = Instant::now();
    let _ = std::fs::copy(vm.files.serial(), tmp.join("boot.serial.log"));
    let saved = vm.save(&state_file(&tmp), &disk_file(&tmp), Duration::from_secs(300)).await;
    if let Err(e) = saved {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let info = Info {
        inputs: inputs.clone(),
        made_unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        make_s: booted.elapsed().as_secs_f64(),
        save_s: t.elapsed().as_secs_f64(),
        state_bytes: allocated(&state_file(&tmp)),
    };
    paths::write_atomic(&tmp.join("snapshot.json"), &serde_json::to_vec_pretty(&info)?)?;
    let dir = root.join(&key);
    // Another experiment may have saved the same state meanwhile: either copy
    // serves, so the one already in place stays (a run may be using it).
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    prune(root, &key);
    let info: Info = serde_json::from_slice(&std::fs::read(dir.join("snapshot.json"))?)?;
    Ok(Snapshot { dir, info })
}

/// Bytes a sparse file really takes.
fn allocated(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).map(|m| m.blocks() * 512).unwrap_or(0)
}

fn filetime_touch(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir.join("snapshot.json"))?.set_modified(std::time::SystemTime::now())
}

/// Keep the `KEEP` most recently used saved states besides `keep`.
fn prune(root: &Path, keep: &str) {
    let Ok(rd) = std::fs::read_dir(root) else { return };
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = rd
        .flatten()
        .filter(|e| e.file_name() != keep && !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| Some((e.path().join("snapshot.json").metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    for (_, d) in dirs.into_iter().skip(KEEP) {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::accel::Accel;

    fn spec() -> VmSpec {
        VmSpec {
            name: "t".into(),
            kernel: "/k/bzImage".into(),
            base_image: "/i/base.qcow2".into(),
            cpus: 2,
            memory_mib: 2048,
            accel: Accel::Tcg,
            append: String::new(),
            ssh_port: 2222,
            authorized_key: "ssh-ed25519 AAAA scx-vmctl".into(),
            topology: None,
            lpj: None,
            lapic_timer_freq: None,
        }
    }

    fn inputs() -> Inputs {
        Inputs::new(&spec(), "k1", "i1", "a1", "10.0.2", vec![])
    }

    #[test]
    fn every_input_changes_the_key_but_the_port_and_name_do_not() {
        let base = inputs();
        let mut other = spec();
        other.ssh_port = 4444;
        other.name = "u".into();
        assert_eq!(Inputs::new(&other, "k1", "i1", "a1", "10.0.2", vec![]).key(), base.key());
        let variants = [
            Inputs::new(&spec(), "k2", "i1", "a1", "10.0.2", vec![]),
            Inputs::new(&spec(), "k1", "i2", "a1", "10.0.2", vec![]),
            Inputs::new(&spec(), "k1", "i1", "a2", "10.0.2", vec![]),
            Inputs::new(&spec(), "k1", "i1", "a1", "10.1.0", vec![]),
            Inputs::new(&spec(), "k1", "i1", "a1", "10.0.2", vec![("/root/custom/custom".into(), "ab".into())]),
            Inputs { cpus: 4, ..base.clone() },
            Inputs { memory_mib: 1024, ..base.clone() },
            Inputs { topology: "1n2l1c1t".into(), ..base.clone() },
            Inputs { accel: "kvm".into(), ..base.clone() },
            Inputs { append: "nokaslr".into(), ..base.clone() },
            Inputs { authorized_key: "ssh-ed25519 BBBB".into(), ..base.clone() },
        ];
        for v in &variants {
            assert_ne!(v.key(), base.key(), "{v:?}");
            assert!(mismatch(&base, v).is_some());
        }
        assert_eq!(mismatch(&base, &variants[2]).unwrap(), "saved for another agent_id");
    }

    #[test]
    fn a_state_saved_for_other_inputs_is_never_found() {
        let t = tempfile::tempdir().unwrap();
        let want = inputs();
        assert!(find_in(t.path(), &want).unwrap().is_none());
        // a state under the right key whose record says it came from another agent
        let dir = t.path().join(want.key());
        std::fs::create_dir_all(&dir).unwrap();
        let info = Info {
            inputs: Inputs { agent_id: "old".into(), ..want.clone() },
            made_unix: 0,
            make_s: 0.0,
            save_s: 0.0,
            state_bytes: 0,
        };
        std::fs::write(dir.join("snapshot.json"), serde_json::to_vec(&info).unwrap()).unwrap();
        std::fs::write(state_file(&dir), b"x").unwrap();
        std::fs::write(disk_file(&dir), b"x").unwrap();
        let e = find_in(t.path(), &want).err().unwrap();
        assert!(e.ends_with("saved for another agent_id"), "{e}");
        // the right record, but a file gone
        let info = Info { inputs: want.clone(), ..info };
        std::fs::write(dir.join("snapshot.json"), serde_json::to_vec(&info).unwrap()).unwrap();
        std::fs::remove_file(state_file(&dir)).unwrap();
        assert!(find_in(t.path(), &want).err().unwrap().contains("state.ram is missing"));
    }
}
