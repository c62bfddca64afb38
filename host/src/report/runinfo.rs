//! Reading `run<N>.json` (docs/results.md). Its type is the contract's
//! RunCore: what the agent writes, every field optional so that a runner
//! adding fields, or an older one lacking some, does not break the report.

use std::path::Path;

use anyhow::{Context, Result};
use scx_contract::run::RunCore;

pub fn load(path: &Path) -> Result<RunCore> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a valid run<N>.json", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run3.json");
        std::fs::write(&p, "{\"status\": ").unwrap();
        let err = format!("{:#}", load(&p).unwrap_err());
        assert!(err.contains("run3.json"), "{err}");
    }
}
