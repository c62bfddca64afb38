//! The saved guest that runs start from (`--reset snapshot`, `up --snapshot`):
//! the one in the cache made from exactly this kernel, image, agent,
//! scheduler binaries and machine, or a new one, sealed from a booted guest
//! that has them installed.

use crate::artifacts::agent;
use crate::launch::Prepared;
use crate::machine::snapshot::{self, Inputs, Snapshot};
use crate::machine::vm::Vm;
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Instant;

/// Where a user's scheduler binary goes in the guest (`run-bin --bin`).
pub fn custom_path(variant: &str) -> String {
    format!("/root/custom/{variant}")
}

/// What the saved guest of `p` holds: the agent `agent_id` and `bins`.
pub fn inputs(p: &Prepared, agent_id: &str, bins: &[(String, PathBuf)], qemu_version: &str) -> Result<Inputs> {
    let mut files = Vec::new();
    for (v, path) in bins {
        files.push((custom_path(v), crate::artifacts::download::sha256_file(path)?));
    }
    Ok(Inputs::new(&p.spec, &p.kernel.id, &p.image.info.id, agent_id, qemu_version, files))
}

/// The saved guest for `want`, if the cache has one made from exactly it; a
/// state under its key that was made otherwise is said and not used.
pub fn find(want: &Inputs) -> Option<Snapshot> {
    match snapshot::find_in(&snapshot::root(), want) {
        Ok(s) => s,
        Err(why) => {
            crate::errln!("note: not using a saved guest state: {why}; saving a new one");
            None
        }
    }
}

/// Bring `vm` (booted for this, agent and binaries installed) to the state a
/// run starts from with the agent's reset (no scheduler, no leftover maps,
/// workload leftovers killed, caches dropped) and save it.
pub async fn seal(vm: Vm, want: &Inputs, booted: Instant) -> Result<Snapshot> {
    let ssh = vm.ssh().await?;
    let o = ssh.exec(&format!("{} reset", agent::GUEST_PATH)).await?;
    ssh.close().await;
    if o.status != 0 {
        bail!("the guest to save is not clean after the agent's reset: {}", (o.stderr_str() + &o.stdout_str()).trim());
    }
    let s = snapshot::save_in(&snapshot::root(), vm, want, booted).await?;
    crate::errln!(
        "[snapshot] saved {} in {:.1} s (the save itself {:.1} s, {:.0} MB on disk)",
        s.dir.display(),
        s.info.make_s,
        s.info.save_s,
        s.info.state_bytes as f64 / 1e6
    );
    Ok(s)
}
