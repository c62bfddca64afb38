//! (d) What cleanup costs the workload: hackbench time under scx_simple,
//! test (the helper evicting from dispatch) vs control (no cleanup), over n
//! alternating runs of a real `scx-vmctl experiment`, with t-based 95%
//! confidence intervals (report/stats.rs). The same experiment's manifest
//! gives the run overheads of (e).

use crate::cli::{Cli, Cmd, VmArgs};
use crate::report::stats::{relative_change, Estimate};
use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const SCHEDULER: &str = "scx_simple";
pub const WORKLOAD: &str = "hackbench";

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

/// The experiment's command line, so that it is checked like the user's.
fn argv(vm: &VmArgs, out: &Path, duration: f64, iterations: u32) -> Vec<String> {
    let mut a: Vec<String> = ["scx-vmctl", "experiment", SCHEDULER, WORKLOAD, "--variants", "control,test", "--force"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(["--duration".into(), duration.to_string(), "--iterations".into(), iterations.to_string()]);
    a.extend(["--out".into(), out.display().to_string()]);
    let opt = |a: &mut Vec<String>, flag: &str, v: Option<String>| {
        if let Some(v) = v {
            a.extend([flag.to_string(), v]);
        }
    };
    opt(&mut a, "--kernel", vm.kernel.clone());
    opt(&mut a, "--kernel-sha256", vm.kernel_sha256.clone());
    opt(&mut a, "--image", vm.image.as_ref().map(|p| p.display().to_string()));
    opt(&mut a, "--cpus", vm.cpus.map(|c| c.to_string()));
    opt(&mut a, "--memory", vm.memory.map(|m| m.to_string()));
    opt(&mut a, "--accel", vm.accel.clone());
    if !vm.append.is_empty() {
        a.extend(["--append".into(), vm.append.clone()]);
    }
    a
}

/// Run the experiment into `out`; returns its exit code.
pub async fn run_experiment(vm: &VmArgs, out: &Path, short: bool) -> Result<i32> {
    let (duration, iterations) = plan(short);
    let cli = Cli::try_parse_from(argv(vm, out, duration, iterations)).context("the bench's experiment command line")?;
    let Cmd::Experiment(args) = cli.command else { bail!("not an experiment command") };
    let code = crate::experiment::run(*args).await?;
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
        scheduler: SCHEDULER.into(),
        workload: WORKLOAD.into(),
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
    fn experiment_argv_parses_and_carries_vm_flags() {
        let vm = VmArgs {
            kernel: Some("/k/bzImage".into()),
            kernel_sha256: None,
            image: None,
            cpus: Some(2),
            memory: None,
            accel: Some("tcg".into()),
            append: String::new(),
        };
        let a = argv(&vm, Path::new("/tmp/o"), 6.0, 2);
        let cli = Cli::try_parse_from(&a).unwrap();
        let Cmd::Experiment(e) = cli.command else { panic!("not an experiment") };
        assert_eq!(e.scheduler, "scx_simple");
        assert_eq!(e.iterations, Some(2));
        assert_eq!(e.vm.kernel.as_deref(), Some("/k/bzImage"));
        assert_eq!(e.vm.accel.as_deref(), Some("tcg"));
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
