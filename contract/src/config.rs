//! Workload and cleanup parameters, what the host sends the agent: defaults,
//! the `workloads:` and `cleanup:` sections of config/default.yaml (other
//! top-level sections belong to the host and are ignored here), a JSON
//! override from the host, and individual flags, applied in that order.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub workloads: Workloads,
    pub cleanup: Cleanup,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workloads {
    /// Child cgroups (of /sys/fs/cgroup/scx-vmctl) the workload is split
    /// over, name -> cpu.weight; different weights give scx_flatcg something
    /// to do. Empty: one cgroup of default weight.
    pub cgroups: BTreeMap<String, u32>,
    #[serde(rename = "stress-ng")]
    pub stress_ng: StressNg,
    pub hackbench: Hackbench,
    #[serde(rename = "custom-churn")]
    pub churn: Churn,
    #[serde(rename = "cgroup-churn")]
    pub cgroup_churn: CgroupChurn,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StressNg {
    /// fork stressors in total (`stress-ng --fork N`), split over the cgroups
    pub processes: u32,
    /// seconds; 0: the whole run
    pub duration_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hackbench {
    /// -g: groups of senders and receivers
    pub groups: u32,
    /// -l: messages each sender sends
    pub loops: u32,
    /// -f: senders/receivers per group
    pub fds: u32,
    /// -T: threads instead of processes
    pub threads: bool,
    /// stop after this many runs per cgroup; 0: repeat until the run ends
    pub max_runs: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Churn {
    /// tasks spawned per burst, split over the cgroups
    pub burst: u32,
    /// bursts per second
    pub rate_hz: f64,
    /// how long each task spins before it exits, microseconds
    pub task_us: u64,
    /// seconds; 0: the whole run
    pub duration_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CgroupChurn {
    /// cgroups created (and, once their tasks are gone, removed) per second
    pub rate_hz: f64,
    /// short tasks run in each cgroup before it is removed
    pub tasks: u32,
    /// what each cgroup's cpu.max gets ("QUOTA PERIOD" in microseconds, or "max")
    pub cpu_max: String,
    /// seconds; 0: the whole run
    pub duration_s: f64,
}

impl Default for CgroupChurn {
    fn default() -> Self {
        CgroupChurn { rate_hz: 10.0, tasks: 2, cpu_max: "50000 100000".into(), duration_s: 0.0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cleanup {
    /// how often ops.dispatch runs a cleanup (test and bpfscan variants)
    pub interval_ms: u64,
    /// time budget of one cleanup call
    pub timeout_us: u64,
    /// entries not seen for longer than this are evicted
    pub max_age_ms: u64,
}

impl Default for Workloads {
    fn default() -> Self {
        Workloads {
            cgroups: [("light", 50), ("normal", 100), ("heavy", 200)]
                .into_iter()
                .map(|(n, w)| (n.to_string(), w))
                .collect(),
            stress_ng: StressNg::default(),
            hackbench: Hackbench::default(),
            churn: Churn::default(),
            cgroup_churn: CgroupChurn::default(),
        }
    }
}

impl Default for StressNg {
    fn default() -> Self {
        StressNg { processes: 4, duration_s: 0.0 }
    }
}

impl Default for Hackbench {
    fn default() -> Self {
        Hackbench { groups: 4, loops: 100, fds: 20, threads: false, max_runs: 0 }
    }
}

impl Default for Churn {
    fn default() -> Self {
        Churn { burst: 32, rate_hz: 10.0, task_us: 200, duration_s: 0.0 }
    }
}

impl Default for Cleanup {
    fn default() -> Self {
        Cleanup { interval_ms: 1000, timeout_us: 100, max_age_ms: 5000 }
    }
}

impl Cleanup {
    pub fn interval_ns(&self) -> u64 {
        self.interval_ms * 1_000_000
    }
    pub fn timeout_ns(&self) -> u64 {
        self.timeout_us * 1_000
    }
    pub fn max_age_ns(&self) -> u64 {
        self.max_age_ms * 1_000_000
    }
}

/// Recursively overlay `over` onto `base`: objects merge key by key, any
/// other value replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// Overlay one layer: sections merge key by key, except the cgroup set,
/// which a layer replaces as a whole (so a layer can also remove cgroups).
fn overlay(base: &mut Value, layer: Value) {
    let mut layer = ours(layer);
    let cgroups = layer
        .get_mut("workloads")
        .and_then(|w| w.as_object_mut())
        .and_then(|w| w.remove("cgroups"));
    merge(base, layer);
    if let Some(cg) = cgroups {
        base["workloads"]["cgroups"] = cg;
    }
}

/// Keep only our sections; the host's config file has others.
fn ours(v: Value) -> Value {
    let mut out = serde_json::Map::new();
    if let Value::Object(mut m) = v {
        for key in ["workloads", "cleanup"] {
            if let Some(section) = m.remove(key) {
                if !section.is_null() {
                    out.insert(key.to_string(), section);
                }
            }
        }
    }
    Value::Object(out)
}

/// Why a configuration is refused. All of them are bad input.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The YAML text does not parse (the error carries line and column).
    #[error("parsing the YAML config: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// The JSON override does not parse.
    #[error("parsing --config-json: {0}")]
    Json(#[source] serde_json::Error),
    /// A key we do not know or a value of the wrong type.
    #[error("invalid configuration: {0}")]
    Shape(#[source] serde_json::Error),
    /// Well-formed, but out of range; names the key and what is allowed.
    #[error("{0}")]
    Value(String),
}

macro_rules! bail {
    ($($t:tt)*) => { return Err(ConfigError::Value(format!($($t)*))) };
}

impl Config {
    /// Defaults, then the YAML text (if any), then the JSON text (if any).
    pub fn load(yaml: Option<&str>, json: Option<&str>) -> Result<Config, ConfigError> {
        let mut v = serde_json::to_value(Config::default()).expect("the defaults serialize");
        if let Some(y) = yaml {
            let y: Value = serde_yaml_ng::from_str(y)?;
            overlay(&mut v, y);
        }
        if let Some(j) = json {
            let j: Value = serde_json::from_str(j).map_err(ConfigError::Json)?;
            overlay(&mut v, j);
        }
        let cfg: Config = serde_json::from_value(v).map_err(ConfigError::Shape)?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.workloads;
        for (name, weight) in &w.cgroups {
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                bail!("workloads.cgroups: name {name:?}: use letters, digits, '-' and '_'");
            }
            if !(1..=10000).contains(weight) {
                bail!("workloads.cgroups.{name}: weight {weight} is outside 1..=10000");
            }
        }
        if w.stress_ng.processes == 0 {
            bail!("workloads.stress-ng.processes must be at least 1");
        }
        if w.hackbench.groups == 0 || w.hackbench.loops == 0 || w.hackbench.fds == 0 {
            bail!("workloads.hackbench: groups, loops and fds must be at least 1");
        }
        if w.churn.burst == 0 || !(w.churn.rate_hz > 0.0 && w.churn.rate_hz <= 10000.0) {
            bail!("workloads.custom-churn: burst >= 1 and 0 < rate_hz <= 10000");
        }
        let cc = &w.cgroup_churn;
        if cc.tasks == 0 || !(cc.rate_hz > 0.0 && cc.rate_hz <= 1000.0) {
            bail!("workloads.cgroup-churn: tasks >= 1 and 0 < rate_hz <= 1000");
        }
        let quota_ok = |q: &str| q == "max" || q.parse::<u64>().is_ok_and(|v| v >= 1000);
        match cc.cpu_max.split_whitespace().collect::<Vec<_>>().as_slice() {
            [q] | [q, _] if quota_ok(q) => {}
            _ => bail!("workloads.cgroup-churn.cpu_max: \"QUOTA PERIOD\" in microseconds (quota >= 1000) or \"max\", not {:?}", cc.cpu_max),
        }
        for d in [w.stress_ng.duration_s, w.churn.duration_s, w.cgroup_churn.duration_s] {
            if !(d >= 0.0 && d.is_finite()) {
                bail!("workload duration_s must be >= 0 (0: the whole run)");
            }
        }
        if self.cleanup.interval_ms == 0 {
            bail!("cleanup.interval_ms must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let c = Config::load(None, None).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.cleanup.interval_ns(), 1_000_000_000);
        assert_eq!(c.cleanup.timeout_ns(), 100_000);
        assert_eq!(c.cleanup.max_age_ns(), 5_000_000_000);
    }

    #[test]
    fn yaml_then_json_override() {
        let yaml = "
vm: {memory_mib: 2048}          # the host's section: ignored here
workloads:
  stress-ng: {processes: 12}
  hackbench: {groups: 2}
cleanup:
  interval_ms: 500
";
        let json = r#"{"workloads": {"hackbench": {"loops": 7}}, "cleanup": {"timeout_us": 250}}"#;
        let c = Config::load(Some(yaml), Some(json)).unwrap();
        assert_eq!(c.workloads.stress_ng.processes, 12);
        assert_eq!(c.workloads.hackbench.groups, 2);
        assert_eq!(c.workloads.hackbench.loops, 7);
        assert_eq!(c.workloads.hackbench.fds, Hackbench::default().fds);
        assert_eq!(c.cleanup.interval_ms, 500);
        assert_eq!(c.cleanup.timeout_us, 250);
        assert_eq!(c.cleanup.max_age_ms, 5000);
    }

    #[test]
    fn unknown_keys_in_our_sections_are_errors() {
        let err = Config::load(None, Some(r#"{"workloads": {"stress_ng": {}}}"#)).unwrap_err();
        assert!(format!("{err:#}").contains("stress_ng"), "{err:#}");
        let err = Config::load(Some("cleanup: {interval: 3}"), None).unwrap_err();
        assert!(format!("{err:#}").contains("interval"), "{err:#}");
    }

    #[test]
    fn bad_values_are_rejected() {
        for j in [
            r#"{"workloads": {"stress-ng": {"processes": 0}}}"#,
            r#"{"workloads": {"cgroups": {"a/b": 100}}}"#,
            r#"{"workloads": {"cgroups": {"a": 0}}}"#,
            r#"{"workloads": {"custom-churn": {"rate_hz": 0}}}"#,
            r#"{"workloads": {"custom-churn": {"duration_s": -1}}}"#,
            r#"{"cleanup": {"interval_ms": 0}}"#,
        ] {
            assert!(Config::load(None, Some(j)).is_err(), "{j}");
        }
    }

    #[test]
    fn a_layer_replaces_the_cgroup_set() {
        let c = Config::load(None, Some(r#"{"workloads": {"cgroups": {"only": 300}}}"#)).unwrap();
        assert_eq!(c.workloads.cgroups.len(), 1);
        assert_eq!(c.workloads.cgroups["only"], 300);
        let c = Config::load(None, Some(r#"{"workloads": {"cgroups": {}}}"#)).unwrap();
        assert!(c.workloads.cgroups.is_empty());
    }

    #[test]
    fn repo_default_yaml_parses_to_defaults() {
        let text = include_str!("../../config/default.yaml");
        let c = Config::load(Some(text), None).unwrap();
        assert_eq!(c, Config::default(), "config/default.yaml and Config::default() disagree");
    }
}
