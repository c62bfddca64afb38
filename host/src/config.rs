//! The YAML configuration: `config/default.yaml` is embedded and complete; a
//! user's file overrides any subset of it. Unknown keys are rejected with the
//! file, line and the keys that would have been valid.

use anyhow::{bail, Context, Result};
use scx_contract::config::{Cleanup, Workloads};
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;
use std::path::Path;

pub const DEFAULT_YAML: &str = include_str!("../../config/default.yaml");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub vm: VmConfig,
    pub experiment: ExperimentConfig,
    /// The helper's cleanup settings, passed to the guest agent.
    pub cleanup: Cleanup,
    /// Per-workload parameters, passed to the guest agent (the contract's
    /// type, so a wrong value is refused here, with its file and line).
    pub workloads: Workloads,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VmConfig {
    pub cpus: u32,
    pub memory_mib: u32,
    /// A machine shape (machine/topology.rs), "" for flat vCPUs; experiments
    /// take a comma-separated list and run the matrix over it
    pub topology: String,
    pub accel: String,
    pub boot_timeout_s: u64,
    pub command_timeout_s: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    pub duration_s: f64,
    pub iterations: u32,
    pub interval_s: f64,
    pub variants: Vec<String>,
    pub reset: String,
    pub run_slack_s: u64,
}

impl Config {
    /// vm.topology as shapes: empty for flat vCPUs.
    pub fn topologies(&self) -> Result<Vec<crate::machine::topology::Topology>> {
        let mut out = Vec::new();
        for t in self.vm.topology.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            out.push(crate::machine::topology::Topology::parse(t)?);
        }
        Ok(out)
    }

    /// The embedded defaults.
    pub fn default_config() -> Config {
        Self::from_layers(&[("config/default.yaml", DEFAULT_YAML)]).expect("embedded default.yaml is valid")
    }

    /// Defaults overridden by `path`, if given.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        match path {
            None => Ok(Self::default_config()),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}: check the path given to --config", p.display()))?;
                Self::from_layers(&[("config/default.yaml", DEFAULT_YAML), (&p.display().to_string(), &text)])
            }
        }
    }

    /// Merge YAML documents in order (later ones win), checking each one's keys
    /// against the defaults so a typo is named with its line.
    pub fn from_layers(layers: &[(&str, &str)]) -> Result<Config> {
        let defaults: Value = serde_yaml_ng::from_str(DEFAULT_YAML).expect("embedded default.yaml parses");
        let mut merged = Value::Null;
        let mut cfg = None;
        for (name, text) in layers {
            let v: Value = serde_yaml_ng::from_str(text).map_err(|e| {
                let loc = e.location().map(|l| format!(":{}", l.line())).unwrap_or_default();
                anyhow::anyhow!("{name}{loc}: malformed YAML: {e}")
            })?;
            if v.is_null() {
                continue; // an empty file overrides nothing
            }
            check_keys(&v, &defaults, "", name, text)?;
            merge(&mut merged, v);
            // typed after every layer, so a wrong value is named in the file
            // (and at the line) that set it
            let typed: Result<Config, _> = serde_path_to_error::deserialize(merged.clone());
            cfg = Some(typed.map_err(|e| {
                let path = e.path().to_string();
                let line = find_path_line(text, &path).map(|l| format!(":{l}")).unwrap_or_default();
                anyhow::anyhow!("{name}{line}: invalid configuration value for `{path}`: {}", e.into_inner())
            })?);
        }
        let cfg = cfg.context("no configuration layer")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Values that parse but make no sense.
    pub fn validate(&self) -> Result<()> {
        let e = &self.experiment;
        if e.duration_s.is_nan() || e.duration_s <= 0.0 {
            bail!("experiment.duration_s must be > 0 (got {})", e.duration_s);
        }
        if e.iterations == 0 {
            bail!("experiment.iterations must be at least 1");
        }
        if e.interval_s.is_nan() || e.interval_s <= 0.0 {
            bail!("experiment.interval_s must be > 0 (got {})", e.interval_s);
        }
        if e.interval_s > e.duration_s {
            bail!(
                "experiment.interval_s ({}) is longer than experiment.duration_s ({}): no sample would be taken; lower the interval",
                e.interval_s,
                e.duration_s
            );
        }
        for v in &e.variants {
            crate::names::Variant::parse(v)?;
        }
        if e.variants.is_empty() {
            bail!("experiment.variants is empty: give at least one of control, test, bpfscan, exitdel, taskstor");
        }
        crate::names::ResetMode::parse(&e.reset)?;
        crate::machine::accel::AccelRequest::parse(&self.vm.accel)?;
        self.topologies()?;
        if self.vm.cpus == 0 || self.vm.memory_mib < 256 {
            bail!("vm.cpus must be >= 1 and vm.memory_mib >= 256");
        }
        if self.cleanup.interval_ms == 0 || self.cleanup.max_age_ms == 0 {
            bail!("cleanup.interval_ms and cleanup.max_age_ms must be > 0");
        }
        // the agent's own checks, here before a guest is booted
        scx_contract::config::Config { workloads: self.workloads.clone(), cleanup: self.cleanup.clone() }.validate()?;
        Ok(())
    }
}

fn check_keys(user: &Value, defaults: &Value, prefix: &str, file: &str, text: &str) -> Result<()> {
    let (Value::Mapping(u), Value::Mapping(d)) = (user, defaults) else {
        return Ok(()); // scalars and lists are checked by their types
    };
    for (k, v) in u {
        let key = k.as_str().map(str::to_owned).unwrap_or_else(|| format!("{k:?}"));
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match d.get(k) {
            Some(dv) => check_keys(v, dv, &path, file, text)?,
            None => {
                let valid: Vec<String> = d.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect();
                let line = find_key_line(text, &key).map(|l| format!(":{l}")).unwrap_or_default();
                let under = if prefix.is_empty() { "at the top level".to_string() } else { format!("under `{prefix}`") };
                bail!("{file}{line}: unknown key `{path}`; valid keys {under}: {}", valid.join(", "));
            }
        }
    }
    Ok(())
}

/// First line (1-based) where `key:` starts a mapping entry.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines().position(|l| {
        let t = l.trim_start().trim_start_matches("- ");
        t.strip_prefix(key).is_some_and(|r| r.trim_start().starts_with(':'))
            || t.strip_prefix(&format!("\"{key}\"")).is_some_and(|r| r.trim_start().starts_with(':'))
    })
    .map(|i| i + 1)
}

/// The line of a dotted key path (`workloads.hackbench.groups`): each key
/// searched for after its parent's line.
fn find_path_line(text: &str, path: &str) -> Option<usize> {
    let mut from = 0;
    for key in path.split('.') {
        from += find_key_line(&text.lines().skip(from).collect::<Vec<_>>().join("\n"), key)?;
    }
    (from > 0).then_some(from)
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Mapping(a), Value::Mapping(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_validate() {
        let c = Config::default_config();
        assert_eq!(c.cleanup.interval_ms, 1000);
        assert_eq!(c.cleanup.timeout_us, 100);
        assert_eq!(c.cleanup.max_age_ms, 5000);
        assert_eq!(c.experiment.variants, vec!["control", "test"]);
        assert_eq!(c.workloads, Workloads::default());
    }

    #[test]
    fn override_keeps_the_rest() {
        let c = Config::from_layers(&[("d", DEFAULT_YAML), ("u.yaml", "experiment:\n  duration_s: 10\n")]).unwrap();
        assert_eq!(c.experiment.duration_s, 10.0);
        assert_eq!(c.experiment.iterations, 3);
        assert_eq!(c.vm.cpus, 2);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = Config::from_layers(&[("d", DEFAULT_YAML), ("u.yaml", "vm:\n  cpus: 2\n  cpu_count: 4\n")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("u.yaml:3"), "{err}");
        assert!(err.contains("vm.cpu_count"), "{err}");
        assert!(err.contains("memory_mib"), "lists the valid keys: {err}");
    }

    #[test]
    fn unknown_top_level_key() {
        let err = Config::from_layers(&[("d", DEFAULT_YAML), ("u.yaml", "vms:\n  cpus: 2\n")]).unwrap_err().to_string();
        assert!(err.contains("u.yaml:1") && err.contains("`vms`"), "{err}");
    }

    #[test]
    fn malformed_yaml_has_a_line() {
        let err = Config::from_layers(&[("d", DEFAULT_YAML), ("u.yaml", "vm:\n  cpus: [1,\n")]).unwrap_err().to_string();
        assert!(err.starts_with("u.yaml:") && err.contains("malformed YAML"), "{err}");
    }

    #[test]
    fn bad_values_are_refused() {
        for (yaml, want) in [
            ("experiment:\n  duration_s: 0\n", "duration_s must be > 0"),
            ("experiment:\n  duration_s: -5\n", "duration_s must be > 0"),
            ("experiment:\n  iterations: 0\n", "iterations must be at least 1"),
            ("experiment:\n  duration_s: 4\n  interval_s: 5\n", "longer than experiment.duration_s"),
            ("experiment:\n  variants: [control, tset]\n", "unknown variant `tset`"),
            ("experiment:\n  reset: reboot\n", "unknown reset mode"),
            ("vm:\n  accel: hvf\n", "unknown accelerator"),
            ("vm:\n  cpus: many\n", "u.yaml:2: invalid configuration value for `vm.cpus`"),
            ("workloads:\n  hackbench:\n    groups: many\n", "u.yaml:3: invalid configuration value for `workloads.hackbench.groups`"),
            ("experiment:\n  iterations: 2\nworkloads:\n  stress-ng:\n    duration_s: soon\n", "u.yaml:5: invalid configuration value for `workloads.stress-ng.duration_s`"),
            ("workloads:\n  hackbench:\n    groups: 0\n", "groups, loops and fds must be at least 1"),
        ] {
            let err = format!("{:#}", Config::from_layers(&[("d", DEFAULT_YAML), ("u.yaml", yaml)]).unwrap_err());
            assert!(err.contains(want), "{yaml:?}: {err}");
        }
    }

    #[test]
    fn empty_file_is_the_defaults() {
        let c = Config::from_layers(&[("d", DEFAULT_YAML), ("u.yaml", "")]).unwrap();
        assert_eq!(c, Config::default_config());
    }
}
