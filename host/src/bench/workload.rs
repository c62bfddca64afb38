//! (d) What cleanup costs the workload: hackbench time under scx_simple,
//! test (the helper evicting from dispatch) vs control (no cleanup), over n
//! alternating runs of a real `scx-vmctl experiment`, with t-based 95%
//! confidence intervals (report/stats.rs). The same experiment's manifest
//! gives the run overheads of (e).

use crate::cli::VmArgs;
use crate::config::Config;
use crate::experiment::ExperimentSpec;
use crate::names::{self, Scheduler};
use crate::report::stats::{relative_change, Estimate};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const SCHEDULER: Scheduler = Scheduler::Simple;
pub const WORKLOAD: names::Workload = names::Workload::Hackbench;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Side {
    /// the metric of each run, in iteration order (failed runs left out)
    pub values: Vec<f64>,
    pub estimate: Option<Estimate>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    /// mean(test) / mean(control) - 1
    pub value: f64,
    pub ci95_low: Option<f64>,
    pub ci95_high: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workload {
    pub scheduler: String,
    pub workload: String,
    /// hackbench_time_s: mean seconds of one hackbench invocation in a run
    pub metric: String,
    pub lower_is_better: bool,
    pub duration_s: f64,
    pub iterations: u32,
    /// the experiment's exit code (1: a criterion such as "test plateaus" failed; not a bench failure)
    pub experiment_exit: i32,
    pub failed_runs: u32,
    pub control: Side,
    pub test: Side,
    /// test vs control, relative; the interval needs n >= 2 on both sides
    pub change: Option<Change>,
    /// the experiment's result group, kept when --json was given (else null: removed)
    pub results_dir: Option<String>,
}

pub fn plan(short: bool) -> (f64, u32) {
    if short {
        (6.0, 2)
    } else {
        (20.0, 3)
    }
}

/// The bench's experiment: scx_simple under hackbench, control and test.
fn spec(vm: &VmArgs, out: &Path, short: bool) -> Result<ExperimentSpec> {
    let (duration, iterations) = plan(short);
    let mut cfg = Config::default_config();
    cfg.experiment.duration_s = duration;
    cfg.experiment.iterations = iterations;
    cfg.experiment.variants = vec!["control".into(), "test".into()];
    let mut spec = ExperimentSpec::ours(SCHEDULER, WORKLOAD, cfg, vm.clone(), out.to_path_buf())?;
    spec.force = true;
    Ok(spec)
}

/// Run the experiment into `out`; returns its exit code.
pub async fn run_experiment(vm: &VmArgs, out: &Path, short: bool) -> Result<i32> {
    let code = crate::experiment::run_spec(spec(vm, out, short)?).await?;
    if code == crate::exit::INTERRUPTED {
        bail!("the experiment was interrupted");
    }
    Ok(code)
}

fn side(group: &Path, variant: &str, iterations: u32, failed: &mut u32) -> Result<Side> {
    let mut values = Vec::new();
    for n in 1..=iterations {
        let p = group.join(variant).join(format!("run{n}.json"));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?)
            .with_context(|| format!("{} is not JSON", p.display()))?;
        let ok = v["status"].as_str() == Some("ok");
        match v["workload_metric"]["value"].as_f64() {
            Some(x) if ok && x.is_finite() && x > 0.0 => values.push(x),
            _ => *failed += 1,
        }
    }
    Ok(Side { estimate: Estimate::of(&values), values })
}

/// The hackbench figures from the experiment's result group.
pub fn collect(group: &Path, short: bool, experiment_exit: i32) -> Result<Workload> {
    let (duration, iterations) = plan(short);
    let mut failed = 0;
    let control = side(group, "control", iterations, &mut failed)?;
    let test = side(group, "test", iterations, &mut failed)?;
    let change = match (&control.estimate, &test.estimate) {
        (Some(c), Some(t)) => {
            relative_change(c, t).map(|i| Change { value: i.value, ci95_low: i.low, ci95_high: i.high })
        }
        _ => None,
    };
    Ok(Workload {
        scheduler: SCHEDULER.to_string(),
        workload: WORKLOAD.to_string(),
        metric: "hackbench_time_s".into(),
        lower_is_better: true,
        duration_s: duration,
        iterations,
        experiment_exit,
        failed_runs: failed,
        control,
        test,
        change,
        results_dir: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_carries_the_plan_and_the_vm_flags() {
        let vm = VmArgs {
            kernel: Some("/k/bzImage".into()),
            kernel_sha256: None,
            image: None,
            cpus: Some(2),
            memory: None,
            accel: Some("tcg".into()),
            append: String::new(),
            topology: None,
        };
        let s = spec(&vm, Path::new("/tmp/o"), true).unwrap();
        assert_eq!((s.scheds.as_slice(), s.workloads.as_slice()), (&["scx_simple".to_string()][..], &[WORKLOAD][..]));
        assert_eq!((s.duration, s.iterations, s.variants.as_slice()), (6.0, 2, &["control".to_string(), "test".into()][..]));
        assert_eq!(s.vm.kernel.as_deref(), Some("/k/bzImage"));
        assert_eq!(s.cfg.vm.accel, "tcg", "--accel reaches the config");
        assert!(s.force && !s.resume);
    }

    #[test]
    fn collects_values_and_the_change() {
        let t = tempfile::tempdir().unwrap();
        for (v, xs) in [("control", [2.0, 2.2]), ("test", [2.1, 2.3])] {
            std::fs::create_dir_all(t.path().join(v)).unwrap();
            for (i, x) in xs.iter().enumerate() {
                let j = serde_json::json!({"status": "ok", "workload_metric": {"name": "hackbench_time_s", "value": x}});
                std::fs::write(t.path().join(v).join(format!("run{}.json", i + 1)), j.to_string()).unwrap();
            }
        }
        let w = collect(t.path(), true, 0).unwrap();
        assert_eq!(w.control.values, vec![2.0, 2.2]);
        assert_eq!(w.failed_runs, 0);
        let c = w.change.unwrap();
        assert!((c.value - (2.2 / 2.1 - 1.0)).abs() < 1e-9);
        assert!(c.ci95_low.unwrap() < c.value && c.value < c.ci95_high.unwrap());
    }
}
