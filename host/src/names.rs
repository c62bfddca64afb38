//! The closed sets of names users type. Schedulers, variants and workloads
//! are the agent's too, so they live in the contract crate (one parser for
//! both sides); the reset mode is the host's alone.

pub use scx_contract::names::{Scheduler, UnknownName, Variant, Workload};

use std::fmt;

/// How the guest is brought back to a clean state between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ResetMode {
    /// Every run starts a fresh QEMU from a saved state of a booted, checked
    /// guest (machine::snapshot); falls back to `overlay` where that fails.
    #[serde(rename = "snapshot")]
    Snapshot,
    /// Every run boots a fresh overlay of the base image.
    #[serde(rename = "overlay")]
    Overlay,
    /// One guest for all runs; the agent cleans it between them.
    #[serde(rename = "in-guest")]
    InGuest,
}

impl ResetMode {
    pub const ALL: &'static [ResetMode] = &[ResetMode::Snapshot, ResetMode::Overlay, ResetMode::InGuest];

    pub fn as_str(self) -> &'static str {
        match self {
            ResetMode::Snapshot => "snapshot",
            ResetMode::Overlay => "overlay",
            ResetMode::InGuest => "in-guest",
        }
    }

    pub fn parse(s: &str) -> Result<ResetMode, UnknownName> {
        ResetMode::ALL.iter().copied().find(|m| m.as_str() == s).ok_or_else(|| UnknownName {
            what: "reset mode",
            given: s.to_string(),
            valid: ResetMode::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", "),
        })
    }
}

impl fmt::Display for ResetMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ResetMode {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<ResetMode, UnknownName> {
        ResetMode::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_modes_round_trip_and_list_valid_names() {
        for m in ResetMode::ALL {
            assert_eq!(ResetMode::parse(m.as_str()).unwrap(), *m);
        }
        let e = ResetMode::parse("reboot").unwrap_err().to_string();
        assert_eq!(e, "unknown reset mode `reboot`; valid: snapshot, overlay, in-guest");
    }
}
