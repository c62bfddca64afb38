//! `scx-vmctl experiment`: runs the variants of a scheduler under a workload,
//! alternating within each iteration, resetting the guest before every run,
//! pulling each run's files as soon as it ends, and then judging them with
//! `report`. The runner and the report meet only at the result files.

pub mod diagnose;
pub mod guest_run;
pub mod manifest;
pub mod saved;
pub mod plan;

use crate::cli::{ExperimentArgs, VmArgs};
use crate::error::{bad, BadInput};
use crate::launch::Prepared;
use crate::config::Config;
use crate::machine::snapshot::{self, Snapshot};
use crate::names::{ResetMode, Scheduler, Workload};
use crate::progress::Progress;
use crate::machine::vm::Vm;
use anyhow::{bail, Context, Result};
use guest_run::{Ending, GUEST_OUT};
use scx_contract::exit::LOAD_FAILED as AGENT_LOAD_FAILED;
use manifest::{KernelRef, Manifest, RunRecord};
use plan::RunId;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Every wait has a limit and says what it waited for.
async fn bounded<T>(secs: u64, what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(r) => r,
        Err(_) => bail!("timed out after {secs} s waiting for {what} (vm.command_timeout_s in the config)"),
    }
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A user's own scheduler binaries, by variant.
#[derive(Clone, Debug)]
pub struct Custom {
    pub bins: Vec<(String, PathBuf)>,
    /// None: the agent picks the scheduler's map (only with --sched)
    pub map_name: Option<String>,
    /// argv for each binary, in the order of `bins`
    pub args: Vec<Vec<String>>,
    /// --sched: the crates the binaries are built from, in the order of `bins`
    pub crates: Vec<crate::artifacts::sched_crate::SchedRef>,
    /// the built crates, name@version (after build_crates)
    pub crate_labels: Vec<String>,
    pub start_timeout_s: f64,
}

impl Custom {
    /// Build the --sched crates (cached) and point `bins` at them.
    pub async fn build_crates(&mut self) -> Result<Vec<crate::artifacts::sched_crate::Built>> {
        let mut built = Vec::new();
        for (i, r) in self.crates.clone().iter().enumerate() {
            let b = crate::artifacts::sched_crate::build(r, false).await?;
            crate::errln!("[sched] {} ready: {}", b.label(), b.binary().display());
            self.bins[i].1 = b.binary();
            self.crate_labels.push(b.label());
            built.push(b);
        }
        Ok(built)
    }
}

/// An experiment, everything decided before the first run: built from the
/// command line (`from_args`) or directly (`ours`, for bench and tests).
#[derive(Clone)]
pub struct ExperimentSpec {
    pub cfg: Config,
    /// the VM: kernel, image, accelerator, size
    pub vm: VmArgs,
    pub scheds: Vec<String>,
    pub workloads: Vec<Workload>,
    pub variants: Vec<String>,
    pub iterations: u32,
    pub duration: f64,
    pub interval: f64,
    pub reset: ResetMode,
    pub out: PathBuf,
    pub shard: Option<(u32, u32)>,
    pub resume: bool,
    /// with resume: redo the runs that failed too
    pub retry_failed: bool,
    pub force: bool,
    pub vm_name: Option<String>,
    pub custom: Option<Custom>,
    pub inject_error_after: Option<f64>,
    /// `leakcheck`: seconds of no-churn sampling before each workload
    pub leakcheck_baseline_s: Option<f64>,
}

impl ExperimentSpec {
    /// One of our schedulers under one workload, the configuration's other
    /// settings as given: what `bench` and tests run without a command line.
    pub fn ours(sched: Scheduler, workload: Workload, mut cfg: Config, vm: VmArgs, out: PathBuf) -> Result<ExperimentSpec> {
        if let Some(acc) = &vm.accel {
            cfg.vm.accel = acc.clone();
        }
        cfg.validate()?;
        Ok(ExperimentSpec {
            scheds: vec![sched.to_string()],
            workloads: vec![workload],
            variants: cfg.experiment.variants.clone(),
            iterations: cfg.experiment.iterations,
            duration: cfg.experiment.duration_s,
            interval: cfg.experiment.interval_s,
            reset: ResetMode::parse(&cfg.experiment.reset)?,
            out,
            shard: None,
            resume: false,
            retry_failed: false,
            force: false,
            vm_name: None,
            custom: None,
            inject_error_after: None,
            leakcheck_baseline_s: None,
            vm,
            cfg,
        })
    }

    /// The command line, checked; every complaint is bad input.
    pub fn from_args(a: &ExperimentArgs) -> Result<ExperimentSpec> {
        from_args(a)
    }
}

fn from_args(a: &ExperimentArgs) -> Result<ExperimentSpec> {
    let mut cfg = Config::load(a.config.as_deref())?;
    let custom = custom_setup(a)?;
    // With --sched-bin the positionals shift left: WORKLOAD [DURATION [ITERATIONS]].
    let (sched_arg, workload_arg, dur_pos, it_pos) = if custom.is_some() {
        if a.iterations_pos.is_some() {
            bail!("with --sched-bin the arguments are WORKLOAD [DURATION [ITERATIONS]]: one too many");
        }
        let d = a.workload.as_deref().map(|s| s.parse::<f64>()).transpose().map_err(|_| anyhow::anyhow!("DURATION must be a number of seconds"))?;
        let it = match a.duration_pos {
            Some(x) if x.fract() != 0.0 || x < 0.0 => bail!("ITERATIONS must be a whole number, not {x}"),
            x => x.map(|x| x as u32),
        };
        (None, a.scheduler.clone(), d, it)
    } else {
        if a.map_name.is_some() {
            bail!("--map-name goes with --sched-bin or --sched (a scheduler binary of your own)");
        }
        let w = a.workload.clone().ok_or_else(|| anyhow::anyhow!("missing WORKLOAD: stress-ng, hackbench, custom-churn, cgroup-churn, or all"))?;
        (Some(a.scheduler.clone()), w, a.duration_pos, a.iterations_pos)
    };
    if let Some(d) = a.duration.or(dur_pos) {
        cfg.experiment.duration_s = d;
    }
    if let Some(i) = a.iterations.or(it_pos) {
        cfg.experiment.iterations = i;
    }
    if let Some(i) = a.interval {
        cfg.experiment.interval_s = i;
    }
    if let Some(v) = &a.variants {
        cfg.experiment.variants = plan::parse_variants(v)?;
    }
    if let Some(r) = &a.reset {
        cfg.experiment.reset = r.clone();
    }
    if a.vm_name.is_some() {
        cfg.experiment.reset = "in-guest".into(); // a VM we did not boot cannot be re-booted per run
    }
    if let Some(acc) = &a.vm.accel {
        cfg.vm.accel = acc.clone();
    }
    if let Some(t) = &a.vm.topology {
        cfg.vm.topology = t.clone();
    }
    cfg.validate()?;
    let scheds: Vec<String> = match (&custom, sched_arg) {
        (Some(c), _) => vec![custom_group_name(&c.bins)],
        (None, Some(s)) => plan::expand_schedulers(&s)?.into_iter().map(|s| s.to_string()).collect(),
        (None, None) => unreachable!(),
    };
    let variants = match &custom {
        Some(c) => c.bins.iter().map(|(v, _)| v.clone()).collect(),
        None => cfg.experiment.variants.clone(),
    };
    Ok(ExperimentSpec {
        vm: a.vm.clone(),
        scheds,
        workloads: plan::expand_workloads(&workload_arg)?,
        variants,
        iterations: cfg.experiment.iterations,
        duration: cfg.experiment.duration_s,
        interval: cfg.experiment.interval_s,
        reset: ResetMode::parse(&cfg.experiment.reset)?,
        out: a.out.clone(),
        shard: a.shard.as_deref().map(plan::parse_shard).transpose()?,
        resume: a.resume,
        retry_failed: a.retry_failed,
        force: a.force,
        vm_name: a.vm_name.clone(),
        custom,
        inject_error_after: a.inject_error_after,
        leakcheck_baseline_s: None,
        cfg,
    })
}

/// --sched-bin or --sched, --map-name and --sched-args, checked: one binary
/// runs as variant `custom`, two as `control` and `test`.
fn custom_setup(a: &ExperimentArgs) -> Result<Option<Custom>> {
    let (bins, crates, flag): (Vec<PathBuf>, Vec<crate::artifacts::sched_crate::SchedRef>, &str) = match (&a.sched_bin, &a.sched) {
        (Some(b), _) => (b.clone(), Vec::new(), "--sched-bin"),
        (None, Some(refs)) => {
            let refs = refs.iter().map(|r| crate::artifacts::sched_crate::SchedRef::parse(r)).collect::<Result<Vec<_>>>()?;
            // the path is filled in once the crate is built (Custom::build_crates)
            (refs.iter().map(|r| PathBuf::from(&r.name)).collect(), refs, "--sched")
        }
        (None, None) => {
            if !a.sched_args.is_empty() {
                bail!("--sched-args goes with --sched or --sched-bin (our own schedulers take no arguments)");
            }
            return Ok(None);
        }
    };
    let map_name = match (&a.map_name, crates.is_empty() && !a.any_map) {
        (Some(m), _) => Some(m.clone()),
        (None, false) => None,
        (None, true) => bail!("--sched-bin needs --map-name NAME: the BPF map to watch"),
    };
    if map_name.as_ref().is_some_and(|m| m.trim().is_empty()) {
        bail!("--map-name: give the name of a BPF map of your scheduler (the kernel keeps its first 15 characters)");
    }
    if bins.is_empty() || bins.len() > 2 {
        bail!("{flag} takes one binary (variant custom) or two (control,test), not {}", bins.len());
    }
    if a.variants.is_some() {
        bail!("--variants does not go with {flag}: one binary runs as `custom`, two as control,test");
    }
    if a.inject_error_after.is_some() {
        bail!("--inject-error-after needs one of the built-in schedulers, not {flag}");
    }
    if crates.is_empty() {
        for b in &bins {
            if !b.is_file() {
                bail!("--sched-bin {}: no such file", b.display());
            }
        }
    }
    let args = split_sched_args(&a.sched_args, bins.len())?;
    let start_timeout_s = a.sched_start_timeout.unwrap_or(60.0);
    if !(start_timeout_s > 0.0 && start_timeout_s.is_finite()) {
        bail!("--sched-start-timeout must be a positive number of seconds, not {start_timeout_s}");
    }
    let names: &[&str] = if bins.len() == 1 { &["custom"] } else { &["control", "test"] };
    Ok(Some(Custom {
        bins: names.iter().map(|s| s.to_string()).zip(bins).collect(),
        map_name,
        args,
        crates,
        crate_labels: Vec::new(),
        start_timeout_s,
    }))
}

/// --sched-args, split into words like a shell would (no shell runs them):
/// none, one for every binary, or one per binary.
fn split_sched_args(given: &[String], nbins: usize) -> Result<Vec<Vec<String>>> {
    let split = |s: &String| {
        shell_words::split(s).map_err(|e| anyhow::anyhow!("--sched-args {s:?}: {e} (quote an argument with ' or \")"))
    };
    let words: Vec<Vec<String>> = given.iter().map(split).collect::<Result<_>>()?;
    match (words.len(), nbins) {
        (0, n) => Ok(vec![Vec::new(); n]),
        (1, n) => Ok(vec![words[0].clone(); n]),
        (2, 2) => Ok(words),
        (k, n) => bail!(
            "--sched-args given {k} times for {n} scheduler(s): give it once (for every variant) or once per scheduler, in the order of --sched/--sched-bin"
        ),
    }
}

/// The result group of user binaries: the one binary's file name, or what
/// two names share (`mysched_control`, `mysched_test` -> `mysched`).
pub fn custom_group_name(bins: &[(String, PathBuf)]) -> String {
    let names: Vec<String> =
        bins.iter().map(|(_, p)| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect();
    let common = match names.as_slice() {
        [one] => one.clone(),
        [a, b] => a.chars().zip(b.chars()).take_while(|(x, y)| x == y).map(|(x, _)| x).collect(),
        _ => String::new(),
    };
    let common = common.trim_end_matches(['_', '-', '.']).to_string();
    if common.is_empty() || common.starts_with('.') {
        "custom".into()
    } else {
        common
    }
}

pub fn group_dir(out: &Path, sched: &str, w: Workload) -> PathBuf {
    out.join(sched).join(w.as_str())
}

/// Refuse to mix new runs with old results unless told to; check writability.
fn check_out(s: &ExperimentSpec) -> Result<()> {
    std::fs::create_dir_all(&s.out).map_err(|e| {
        bad(anyhow::anyhow!("output directory {} cannot be created: {e}; choose another with --out", s.out.display()))
    })?;
    let probe = s.out.join(format!(".scx-vmctl-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"x").map_err(|e| {
        bad(anyhow::anyhow!("output directory {} is not writable: {e}; choose another with --out", s.out.display()))
    })?;
    let _ = std::fs::remove_file(&probe);
    for sched in &s.scheds {
        for w in &s.workloads {
            let g = group_dir(&s.out, sched, *w);
            let has = g.join("manifest.json").exists()
                || s.variants.iter().any(|v| std::fs::read_dir(g.join(v)).map(|mut d| d.next().is_some()).unwrap_or(false));
            if has && !s.resume && !s.force {
                bail!(BadInput(format!(
                    "{} already holds results: pass --resume to continue them, --force to replace them, or --out DIR",
                    g.display()
                )));
            }
            if has && s.force {
                for v in &s.variants {
                    let _ = std::fs::remove_dir_all(g.join(v));
                }
                for f in ["manifest.json", "summary.json", "summary.txt", "report.html", "junit.xml"] {
                    let _ = std::fs::remove_file(g.join(f));
                }
            }
        }
    }
    Ok(())
}

/// The experiment's state shared by its runs.
struct Runner {
    s: ExperimentSpec,
    prepared: Prepared,
    agent: Option<crate::artifacts::agent::Agent>,
    vm: Option<Vm>,
    /// The current VM has the agent (and the custom binaries) installed.
    installed: bool,
    checked_kernel: bool,
    vm_seq: u32,
    cancel: watch::Receiver<bool>,
    manifests: BTreeMap<PathBuf, Manifest>,
    qemu_version: String,
    /// Whether a run has started (fault injection hits the first one only).
    first_run_done: bool,
    /// A user's scheduler could not be enabled: why, in one line.
    load_failure: Option<String>,
    /// The saved state runs start from (`--reset snapshot`), once made or found.
    snapshot: Option<Snapshot>,
    /// Why snapshot resets were given up for overlay ones, if they were.
    snapshot_off: Option<String>,
}

pub async fn run(a: ExperimentArgs) -> Result<i32> {
    run_with(a, None).await
}

/// `leakcheck`: an experiment with a no-churn baseline before each run's
/// workload, judged on every map of the scheduler (report/leak.rs).
/// Defaults differ: one iteration of 20 s, and all three of our variants.
pub async fn leakcheck(l: crate::cli::LeakcheckArgs) -> Result<i32> {
    let mut a = l.exp;
    if !(l.baseline_s > 0.0 && l.baseline_s.is_finite()) {
        bail!(BadInput(format!("--baseline-s must be a positive number of seconds, not {}", l.baseline_s)));
    }
    let custom = a.sched_bin.is_some() || a.sched.is_some();
    // with --sched/--sched-bin the positionals are WORKLOAD [DURATION [ITERATIONS]]
    let (dur_given, it_given) = if custom {
        (a.workload.is_some() || a.duration.is_some(), a.duration_pos.is_some() || a.iterations.is_some())
    } else {
        (a.duration_pos.is_some() || a.duration.is_some(), a.iterations_pos.is_some() || a.iterations.is_some())
    };
    if !dur_given {
        a.duration = Some(20.0);
    }
    if !it_given {
        a.iterations = Some(1);
    }
    if a.variants.is_none() && !custom {
        a.variants = Some(vec!["control".into(), "test".into(), "bpfscan".into()]);
    }
    a.any_map = true;
    run_with(a, Some(l.baseline_s)).await
}

async fn run_with(a: ExperimentArgs, leakcheck_baseline_s: Option<f64>) -> Result<i32> {
    let mut s = ExperimentSpec::from_args(&a).map_err(bad)?;
    s.leakcheck_baseline_s = leakcheck_baseline_s;
    run_spec(s).await
}

/// Run an experiment; its exit code (0 pass, 1 a criterion failed, 130 interrupted).
/// Run the experiment; with several machine shapes (vm.topology a,b), once
/// per shape into `<out>/<shape>/`, then a summary of the matrix in `<out>`.
pub async fn run_spec(s: ExperimentSpec) -> Result<i32> {
    let shapes = s.cfg.topologies()?;
    if shapes.len() <= 1 {
        let mut s = s;
        s.vm.topology = shapes.first().map(|t| t.to_string());
        return run_shape(s).await;
    }
    let mut code = crate::exit::OK;
    for t in &shapes {
        let mut one = s.clone();
        one.vm.topology = Some(t.to_string());
        one.cfg.vm.topology = t.to_string();
        one.out = s.out.join(t.label());
        crate::errln!("[topology] {t}: {} vCPUs, results in {}", t.cpus(), one.out.display());
        let c = run_shape(one).await?;
        if c == crate::exit::INTERRUPTED {
            return Ok(c);
        }
        code = code.max(c);
    }
    let summary = crate::report::summarize(&s.out)?;
    crate::report::write_all(&s.out, &summary)?;
    crate::outln!("matrix summary over {} shapes: {}", shapes.len(), s.out.join("summary.txt").display());
    Ok(code)
}

async fn run_shape(mut s: ExperimentSpec) -> Result<i32> {
    if let Some(c) = s.custom.as_mut() {
        if !c.crates.is_empty() {
            let built = c.build_crates().await?;
            // results are grouped by crate and version: scx_bpfland-1.1.4
            let labels: Vec<String> = built.iter().map(|b| format!("{}-{}", b.info.name, b.info.version)).collect();
            s.scheds = vec![if labels.len() == 2 && labels[0] != labels[1] { labels.join("-vs-") } else { labels[0].clone() }];
        }
    }
    check_out(&s)?;
    let all = plan::runs(&s.scheds, &s.workloads, &s.variants, s.iterations, s.shard);
    if all.is_empty() {
        crate::outln!("shard {} has no runs of this matrix; nothing to do", s.shard.map(|(k, n)| format!("{k}/{n}")).unwrap_or_default());
        return Ok(crate::exit::OK);
    }
    let name = format!("exp{}", std::process::id());
    let prepared = crate::launch::prepare(&name, &s.vm, &s.cfg).await?;
    if let Some(n) = &prepared.notice {
        crate::errln!("{n}");
    }
    // A kernel our build knows cannot run sched_ext schedulers: say so before booting.
    if let (Some(note), None) = (prepared.kernel.built.as_ref().and_then(|k| k.info.notes.first()), &s.custom) {
        bail!(BadInput(format!("kernel {}: {note}", prepared.kernel.id)));
    }
    let agent = match &prepared.kernel.built {
        Some(k) => Some(crate::artifacts::agent::build(&k.vmlinux_h()).await?),
        None => None, // a kernel we did not build: its BTF is read from the first guest
    };
    let (cancel_tx, cancel) = watch::channel(false);
    // First Ctrl-C/SIGTERM: stop after saving what the current run has; second: exit now.
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
        for round in 0..2 {
            tokio::select! {
                _ = async { match int.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
                _ = async { match term.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
            }
            if round == 0 {
                crate::errln!("\ninterrupted: saving the current run's samples and powering the VM down (again to quit at once)");
                let _ = cancel_tx.send(true);
            } else {
                crate::errln!("interrupted twice: quitting; QEMU dies with us");
                std::process::exit(crate::exit::INTERRUPTED);
            }
        }
    });
    let qemu_version = crate::machine::qemu::qemu_version()?;
    let mut r = Runner {
        s,
        prepared,
        agent,
        vm: None,
        installed: false,
        checked_kernel: false,
        vm_seq: 0,
        cancel,
        manifests: BTreeMap::new(),
        qemu_version,
        first_run_done: false,
        load_failure: None,
        snapshot: None,
        snapshot_off: None,
    };
    let result = r.run_all(&all).await;
    if let Some(vm) = r.vm.take() {
        shutdown_vm(vm, r.s.vm_name.is_some()).await;
    }
    let interrupted = *r.cancel.borrow();
    for (dir, m) in r.manifests.iter_mut() {
        m.status = if interrupted { "interrupted".into() } else if result.is_ok() { "complete".into() } else { "failed".into() };
        m.finished_unix = Some(now_unix());
        m.save(&dir.join("manifest.json"))?;
    }
    result?;
    if interrupted {
        crate::errln!("stopped; finished runs are kept. Continue with the same command plus --resume");
        return Ok(crate::exit::INTERRUPTED);
    }
    // Judge each group from its files alone, as `scx-vmctl report` would.
    let mut code = crate::exit::OK;
    let dirs: Vec<PathBuf> = r.manifests.keys().cloned().collect();
    for dir in &dirs {
        let summary = crate::report::summarize(dir)?;
        crate::report::write_all(dir, &summary)?;
        crate::outln!("\n{}", std::fs::read_to_string(dir.join("summary.txt")).unwrap_or_default());
        crate::outln!("results: {}  (report.html, junit.xml, summary.json beside it)", dir.display());
        if summary.exit_code() != 0 {
            code = crate::exit::CRITERION_FAILED;
        }
    }
    if dirs.len() > 1 {
        let summary = crate::report::summarize(&r.s.out)?;
        crate::report::write_all(&r.s.out, &summary)?;
        crate::outln!("matrix summary: {}", r.s.out.join("summary.txt").display());
    }
    Ok(code)
}

/// Remove `run<n>.*` (and its hidden live mirror) from a variant directory.
fn remove_run_files(vdir: &Path, n: u32) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(vdir) else { return Ok(()) };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let name = name.strip_prefix('.').unwrap_or(&name);
        if crate::report::layout::parse_run_name(name).is_some_and(|(k, _)| k == n) {
            std::fs::remove_file(e.path()).with_context(|| format!("cannot remove {}", e.path().display()))?;
        }
    }
    Ok(())
}

async fn shutdown_vm(vm: Vm, reused: bool) {
    if reused {
        return; // the user's VM stays up
    }
    // The overlay is thrown away: no need for a graceful power-off.
    let _ = vm.shutdown(true).await;
}

impl Runner {
    async fn run_all(&mut self, all: &[RunId]) -> Result<()> {
        let total = all.len();
        for (k, run) in all.iter().enumerate() {
            if *self.cancel.borrow() {
                break;
            }
            let dir = group_dir(&self.s.out, &run.sched, run.workload);
            self.manifest_for(&dir, run)?;
            if self.manifests[&dir].finished(&run.variant, run.iteration, self.s.retry_failed) {
                crate::errln!("[run {}/{}] {}: done before, skipped (--resume)", k + 1, total, run.label());
                continue;
            }
            if self.s.retry_failed {
                // a failed run's files go before it is redone: none of them may
                // be mistaken for the new run's
                remove_run_files(&dir.join(&run.variant), run.iteration)?;
            }
            self.ensure_snapshot().await?;
            let rec = self.one(run, k + 1, total, &dir).await?;
            let m = self.manifests.get_mut(&dir).unwrap();
            m.record(rec);
            if self.snapshot_off.is_some() {
                m.snapshot_fallback = self.snapshot_off.clone();
            }
            m.save(&dir.join("manifest.json"))?;
            if let Some(why) = &self.load_failure {
                let logs = dir.join(&run.variant).join(format!("run{}.scheduler.log", run.iteration));
                bail!("{why} (its output: {})", logs.display());
            }
        }
        Ok(())
    }

    fn manifest_for(&mut self, dir: &Path, run: &RunId) -> Result<()> {
        if self.manifests.contains_key(dir) {
            return Ok(());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join("manifest.json");
        let p = &self.prepared;
        let fresh = Manifest {
            manifest_version: manifest::MANIFEST_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            scheduler: run.sched.clone(),
            workload: run.workload.to_string(),
            status: "running".into(),
            started_unix: now_unix(),
            finished_unix: None,
            accel: p.spec.accel.describe().to_string(),
            qemu_version: self.qemu_version.clone(),
            kernel: KernelRef {
                id: p.kernel.id.clone(),
                path: p.kernel.bzimage.display().to_string(),
                version: p.kernel.built.as_ref().map(|k| k.info.version.clone()),
                has_helper: p.kernel.built.as_ref().map(|k| k.info.has_helper),
            },
            image_id: p.image.info.id.clone(),
            agent_id: self.agent.as_ref().map(|a| a.id.clone()).unwrap_or_default(),
            reset: self.s.reset.to_string(),
            topology: p.spec.topology.map(|t| t.to_string()),
            variants: self.s.variants.clone(),
            iterations: self.s.iterations,
            shard: self.s.shard.map(|(k, n)| format!("{k}/{n}")),
            custom_binaries: self.s.custom.as_ref().map(|c| c.bins.iter().map(|(_, p)| p.display().to_string()).collect()).unwrap_or_default(),
            sched_crates: self.s.custom.as_ref().map(|c| c.crate_labels.clone()).unwrap_or_default(),
            sched_args: self.s.custom.as_ref().filter(|c| c.args.iter().any(|a| !a.is_empty())).map(|c| c.args.clone()).unwrap_or_default(),
            leakcheck_baseline_s: self.s.leakcheck_baseline_s,
            config: self.s.cfg.clone(),
            snapshot_fallback: None,
            runs: Vec::new(),
        };
        let m = if self.s.resume && path.exists() {
            let mut old = Manifest::load(&path)?;
            let changed = old.resume_conflicts(&fresh);
            if !changed.is_empty() {
                bail!(BadInput(format!(
                    "{}: --resume would mix runs made differently; changed: {}. Use --force to start over, or --out DIR",
                    path.display(),
                    changed.join(", ")
                )));
            }
            old.status = "running".into();
            old
        } else {
            fresh
        };
        m.save(&path)?;
        self.manifests.insert(dir.to_path_buf(), m);
        Ok(())
    }

    /// Boot a fresh VM (overlay reset, or the first run, or after a crash).
    async fn fresh_vm(&mut self) -> Result<f64> {
        if let Some(vm) = self.vm.take() {
            shutdown_vm(vm, self.s.vm_name.is_some()).await;
        }
        let t = Instant::now();
        let vm = match &self.s.vm_name {
            Some(n) => Vm::attach(n).await.map_err(bad)?,
            None => {
                self.vm_seq += 1;
                let mut p = self.prepared.spec.clone();
                p.name = format!("{}-{}", self.prepared.spec.name, self.vm_seq);
                p.ssh_port = crate::machine::vm::free_port()?;
                let prep = Prepared { spec: p, kernel: self.prepared.kernel.clone(), image: self.prepared.image.clone(), notice: None };
                crate::launch::boot(&prep, &self.s.cfg, true, None).await?
            }
        };
        self.vm = Some(vm);
        self.installed = false;
        Ok(t.elapsed().as_secs_f64())
    }

    /// The reset this run gets: the one asked for, but overlay once snapshot
    /// resets failed.
    fn reset_now(&self) -> ResetMode {
        match (self.s.reset, &self.snapshot_off) {
            (ResetMode::Snapshot, Some(_)) => ResetMode::Overlay,
            (m, _) => m,
        }
    }

    /// Start this run's VM from the saved state, making it first if there is
    /// none. If that fails for a reason other than the user's input: one line
    /// why, and overlay resets from here on.
    async fn restored_vm(&mut self) -> Result<f64> {
        match self.try_restore().await {
            Ok(s) => Ok(s),
            Err(e) => {
                self.give_up_snapshots(e)?;
                self.fresh_vm().await
            }
        }
    }

    /// Make (or find) the saved state before the first run, so its cost is
    /// not counted as a run's. A failure is handled as in `restored_vm`.
    async fn ensure_snapshot(&mut self) -> Result<()> {
        if self.reset_now() != ResetMode::Snapshot || self.snapshot.is_some() {
            return Ok(());
        }
        match self.make_snapshot().await {
            Ok(s) => {
                self.snapshot = Some(s);
                Ok(())
            }
            Err(e) => self.give_up_snapshots(e),
        }
    }

    /// Snapshot resets failed: the user's input or an interruption ends the
    /// experiment; anything else is said in one line and overlay resets
    /// take over.
    fn give_up_snapshots(&mut self, e: anyhow::Error) -> Result<()> {
        if crate::error::exit_code(&e) == crate::exit::BAD_INPUT || *self.cancel.borrow() {
            return Err(e);
        }
        let why = format!("{e:#}").lines().next().unwrap_or_default().to_string();
        crate::errln!("note: snapshot reset failed ({why}); falling back to overlay resets (a fresh boot per run)");
        self.snapshot = None;
        self.snapshot_off = Some(why);
        Ok(())
    }

    async fn try_restore(&mut self) -> Result<f64> {
        if let Some(vm) = self.vm.take() {
            shutdown_vm(vm, false).await;
        }
        if self.snapshot.is_none() {
            self.snapshot = Some(self.make_snapshot().await?);
        }
        let t = Instant::now();
        let from = self.snapshot.as_ref().unwrap().restore();
        self.vm_seq += 1;
        let mut p = self.prepared.spec.clone();
        p.name = format!("{}-{}", self.prepared.spec.name, self.vm_seq);
        p.ssh_port = crate::machine::vm::free_port()?;
        let prep = Prepared { spec: p, kernel: self.prepared.kernel.clone(), image: self.prepared.image.clone(), notice: None };
        self.vm = Some(crate::launch::restore(&prep, &self.s.cfg, true, from).await?);
        // the saved guest has the agent and the binaries, checked and clean
        self.installed = true;
        Ok(t.elapsed().as_secs_f64())
    }

    fn snapshot_inputs(&self) -> Result<snapshot::Inputs> {
        let agent = self.agent.as_ref().map(|a| a.id.clone()).unwrap_or_default();
        let bins = self.s.custom.as_ref().map(|c| c.bins.clone()).unwrap_or_default();
        saved::inputs(&self.prepared, &agent, &bins, &self.qemu_version)
    }

    /// A saved state for this experiment's guest: the one in the cache made
    /// from exactly these inputs, else a guest booted, checked, given the
    /// agent and the binaries, and sealed (experiment/saved.rs).
    async fn make_snapshot(&mut self) -> Result<Snapshot> {
        if self.agent.is_some() {
            if let Some(s) = saved::find(&self.snapshot_inputs()?) {
                crate::errln!("[snapshot] runs start from the saved guest {}", s.dir.display());
                return Ok(s);
            }
        }
        let t = Instant::now();
        crate::errln!("[snapshot] booting a guest to save for the runs to start from");
        self.fresh_vm().await?;
        let limit_s = self.s.cfg.vm.command_timeout_s;
        let ssh = bounded(limit_s, "SSH to the guest", async { self.vm.as_ref().unwrap().ssh().await }).await?;
        bounded(limit_s, "the guest kernel check", self.check_kernel(&ssh)).await?;
        bounded(limit_s.max(120), "the agent to be installed", self.install(&ssh)).await?;
        ssh.close().await;
        // a kernel we did not build has its agent (and so its key) only now
        let inputs = self.snapshot_inputs()?;
        let vm = self.vm.take().unwrap();
        saved::seal(vm, &inputs, t).await
    }

    /// Check once that the guest kernel can run what was asked.
    async fn check_kernel(&mut self, ssh: &crate::machine::ssh::Ssh) -> Result<()> {
        if self.checked_kernel {
            return Ok(());
        }

        let o = ssh.exec("test -e /sys/kernel/sched_ext/state && echo scx; grep -qw scx_bpf_map_scan_timeout /proc/kallsyms && echo helper").await?;
        let out = o.stdout_str();
        if !out.contains("scx") {
            bail!(BadInput(
                "the guest kernel has no sched_ext (/sys/kernel/sched_ext missing): build it with CONFIG_SCHED_CLASS_EXT=y (scx-vmctl kernel build does)".into()
            ));
        }
        if !out.contains("helper") && self.s.variants.iter().any(|v| v == "test") && self.s.custom.is_none() {
            bail!(BadInput(
                "the guest kernel lacks scx_bpf_map_scan_timeout, so the test variant cannot load: use a kernel with \
                 vm-images/kernel/patches applied (scx-vmctl kernel build), or --variants control,bpfscan,exitdel,taskstor"
                    .into()
            ));
        }
        self.checked_kernel = true;
        Ok(())
    }

    async fn install(&mut self, ssh: &crate::machine::ssh::Ssh) -> Result<()> {
        if self.installed {
            return Ok(());
        }
        if self.agent.is_none() {
            let h = crate::artifacts::agent::vmlinux_h_from_guest(ssh).await?;
            self.agent = Some(crate::artifacts::agent::build(&h).await?);
            let id = self.agent.as_ref().unwrap().id.clone();
            for m in self.manifests.values_mut() {
                m.agent_id = id.clone();
            }
        }
        crate::artifacts::agent::install(ssh, self.agent.as_ref().unwrap()).await?;
        if let Some(c) = &self.s.custom {
            for (v, p) in &c.bins {
                let to = saved::custom_path(v);
                let (dir, name) = to.rsplit_once('/').unwrap_or(("/root", v));
                ssh.upload(p, dir, Some(name)).await.with_context(|| format!("copying {} in", p.display()))?;
            }
        }
        self.installed = true;
        Ok(())
    }

    fn agent_argv(&self, run: &RunId) -> Vec<String> {
        let cfg = serde_json::json!({
            "cleanup": self.s.cfg.cleanup,
            "workloads": self.s.cfg.workloads,
        });
        let mut argv: Vec<String> = vec![crate::artifacts::agent::GUEST_PATH.into()];
        match &self.s.custom {
            None => argv.extend(
                [
                    "run", "--sched", &run.sched, "--variant", &run.variant, "--workload", run.workload.as_str(),
                    "--duration", &self.s.duration.to_string(), "--interval", &self.s.interval.to_string(),
                    "--out", GUEST_OUT, "--config-json", &cfg.to_string(),
                    "--iteration", &run.iteration.to_string(), "--accel", self.prepared.spec.accel.describe(),
                    "--reset", self.reset_now().as_str(),
                ]
                .iter()
                .map(|s| s.to_string()),
            ),
            Some(c) => {
                argv.extend(
                    [
                        "run-bin", "--bin", &saved::custom_path(&run.variant),
                        "--variant", &run.variant, "--workload", run.workload.as_str(),
                        "--duration", &self.s.duration.to_string(), "--interval", &self.s.interval.to_string(),
                        "--out", GUEST_OUT, "--config-json", &cfg.to_string(),
                        "--start-timeout", &c.start_timeout_s.to_string(),
                    ]
                    .iter()
                    .map(|s| s.to_string()),
                );
                if let Some(m) = &c.map_name {
                    argv.push(format!("--map-name={m}"));
                }
                let i = c.bins.iter().position(|(v, _)| v == &run.variant).unwrap_or(0);
                // `=` keeps an argument that starts with '-' an argument (the guest runs argv, no shell)
                argv.extend(c.args[i].iter().map(|w| format!("--bin-arg={w}")));
            }
        }
        if let Some(b) = self.s.leakcheck_baseline_s {
            argv.extend(["--baseline".to_string(), b.to_string()]);
        }
        // Fault injection (testing the pipeline): only the experiment's first run.
        if let (Some(secs), false) = (self.s.inject_error_after, self.first_run_done) {
            argv.extend(["--inject-error-after".to_string(), secs.to_string()]);
        }
        argv
    }

    /// One run, start to files on disk. Errors here are the tool failing;
    /// a run that fails (panic, ejection, timeout) is recorded and returned.
    async fn one(&mut self, run: &RunId, k: usize, total: usize, dir: &Path) -> Result<RunRecord> {
        let t0 = Instant::now();
        let started = now_unix();
        let mut prog = Progress::new(&format!("run {k}/{total}")).every(Duration::from_secs(10));
        prog.update(&format!("{}: resetting the guest ({})", run.label(), self.reset_now()));
        let vm_dead = match self.vm.as_mut() {
            Some(v) => !v.is_alive(),
            None => true,
        };
        let boot_s = match self.reset_now() {
            ResetMode::Snapshot => self.restored_vm().await?,
            ResetMode::Overlay => self.fresh_vm().await?,
            ResetMode::InGuest if vm_dead => self.fresh_vm().await?,
            ResetMode::InGuest => 0.0,
        };
        // what this run really got (a failed snapshot falls back to overlay)
        let reset_used = self.reset_now();
        let snapshot_key = (reset_used == ResetMode::Snapshot).then(|| self.snapshot.as_ref().map(|s| s.key())).flatten();
        let setup_t = Instant::now();
        let (target, serial_path, mut events) = {
            let vm = self.vm.as_ref().unwrap();
            (vm.target(), vm.files.serial(), vm.qmp.as_ref().map(|q| q.subscribe()))
        };
        let limit_s = self.s.cfg.vm.command_timeout_s;
        let mut ssh = bounded(limit_s, "SSH to the guest", async { self.vm.as_ref().unwrap().ssh().await }).await?;
        bounded(limit_s, "the guest kernel check", self.check_kernel(&ssh)).await?;
        bounded(limit_s.max(120), "the agent to be installed", self.install(&ssh)).await?;
        if reset_used == ResetMode::InGuest {
            let o = ssh.exec(&format!("{} reset", crate::artifacts::agent::GUEST_PATH)).await?;
            if o.status != 0 {
                let why = format!("in-guest reset left the guest dirty: {}", (o.stderr_str() + &o.stdout_str()).trim());
                return self.failed_early(run, dir, started, t0, boot_s, &why).await;
            }
        }
        // A VM booted for this run keeps its whole console (the boot is part of
        // the run); a reused one keeps only what this run added.
        let serial_offset = if boot_s > 0.0 { 0 } else { std::fs::metadata(&serial_path).map(|m| m.len()).unwrap_or(0) };
        guest_run::start_detached(&ssh, &self.agent_argv(run)).await?;
        self.first_run_done = true;
        let setup_s = setup_t.elapsed().as_secs_f64();

        let work_t = Instant::now();
        let limit = Duration::from_secs_f64(self.s.duration) + Duration::from_secs(self.s.cfg.experiment.run_slack_s);
        let interval = Duration::from_secs_f64(self.s.interval);
        let expected_end = Duration::from_secs_f64(self.s.duration + self.s.leakcheck_baseline_s.unwrap_or(0.0));
        let label = run.label();
        let dur = self.s.duration;
        let mut cancel = self.cancel.clone();
        // The samples followed so far, on disk as they arrive: nothing is lost
        // if this process dies mid-run, and tests can wait on the file.
        let live_path = dir.join(&run.variant).join(format!(".run{}.csv.live", run.iteration));
        std::fs::create_dir_all(dir.join(&run.variant)).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut mirrored = 0;
        let vm_ref = self.vm.as_mut().unwrap();
        let (ending, live) = guest_run::follow(
            &mut ssh,
            &target,
            &mut events,
            || (!vm_ref.is_alive()).then(|| "QEMU is gone (killed or crashed)".to_string()),
            limit,
            expected_end,
            interval,
            &mut cancel,
            |live, el| {
                if live.csv.len() > mirrored && crate::paths::write_atomic(&live_path, live.csv.as_bytes()).is_ok() {
                    mirrored = live.csv.len();
                }
                prog.update(&format!(
                    "{label}: {:.0}/{dur:.0} s, map entries {}",
                    el.as_secs_f64(),
                    live.last_entries.as_deref().unwrap_or("-")
                ))
            },
        )
        .await;
        let workload_s = work_t.elapsed().as_secs_f64();

        // Bring the files home: a live guest gives all of them; a dead one
        // leaves the samples the host followed and the serial log.
        let pull_t = Instant::now();
        let stage = dir.join(format!(".pull-{}-{}", run.variant, run.iteration));
        let mut failure: Option<String> = None;
        let guest_alive = matches!(ending, Ending::Exited(_) | Ending::TimedOut(_) | Ending::Interrupted);
        if matches!(ending, Ending::TimedOut(_) | Ending::Interrupted) {
            guest_run::stop_agent(&ssh).await;
        }
        let pulled = if guest_alive {
            bounded(self.s.cfg.vm.command_timeout_s, "the run's files to be pulled", guest_run::pull(&ssh, &stage)).await.err()
        } else {
            None
        };
        match &ending {
            Ending::Exited(0) => {}
            Ending::Exited(c) => {
                let tail = guest_run::guest_tail(&ssh, "/root/out/agent.log", 5).await;
                failure = Some(format!("the agent exited {c}: {}", tail.lines().last().unwrap_or("")));
            }
            Ending::Panicked => failure = Some("the guest kernel panicked (QMP GUEST_PANICKED); see the serial log".into()),
            Ending::VmGone(w) => failure = Some(format!("the VM went away mid-run: {w}")),
            Ending::TimedOut(d) => failure = Some(format!("the run did not end within {} s (duration + run_slack_s)", d.as_secs())),
            Ending::Unreachable(e) => failure = Some(format!("the guest stopped answering SSH: {e}")),
            Ending::Interrupted => failure = Some("interrupted by the user".into()),
        }
        if let (Some(e), None) = (&pulled, &failure) {
            failure = Some(format!("pulling the results failed: {e:#}"));
        }
        ssh.close().await;
        let status = match (&ending, &failure) {
            (Ending::Interrupted, _) => "interrupted",
            (_, Some(_)) => "failed",
            _ => "ok",
        };
        // A user's scheduler that never got sched_ext enabled: say what the
        // guest lacks and stop (the next runs would fail the same way).
        if let (Some(_), Ending::Exited(AGENT_LOAD_FAILED)) = (&self.s.custom, &ending) {
            failure = Some(self.explain_load_failure(&stage, run));
            self.load_failure = failure.clone();
        }
        self.store(run, dir, &stage, &live.csv, &serial_path, serial_offset, status, failure.clone(), started)?;
        let _ = std::fs::remove_dir_all(&stage);
        let _ = std::fs::remove_file(&live_path);
        let pull_s = pull_t.elapsed().as_secs_f64();
        let wall_s = t0.elapsed().as_secs_f64();
        if !guest_alive || reset_used != ResetMode::InGuest {
            if let Some(vm) = self.vm.take() {
                shutdown_vm(vm, self.s.vm_name.is_some()).await;
            }
        }
        let msg = match &failure {
            None => format!("{}: ok (wall {wall_s:.1} s, boot {boot_s:.1} s, overhead {:.1} s)", run.label(), (wall_s - self.s.duration).max(0.0)),
            Some(f) => format!("{}: {} ({f})", run.label(), status.to_uppercase()),
        };
        prog.note(&msg);
        if live.reconnects > 0 {
            prog.note(&format!("SSH to the guest dropped and was re-established {} time(s); nothing was lost", live.reconnects));
        }
        Ok(RunRecord {
            variant: run.variant.clone(),
            iteration: run.iteration,
            status: status.into(),
            failure,
            started_unix: started,
            wall_s,
            boot_s,
            setup_s,
            workload_s,
            pull_s,
            overhead_s: (wall_s - self.s.duration).max(0.0),
            reset: reset_used.to_string(),
            snapshot: snapshot_key,
        })
    }

    /// One line from the scheduler's output and the guest's dmesg (pulled into `stage`).
    fn explain_load_failure(&self, stage: &Path, run: &RunId) -> String {
        let read = |f: &str| std::fs::read_to_string(stage.join("out").join(f)).unwrap_or_default();
        let (log, dmesg) = (read("scheduler.log"), read("dmesg.log"));
        let name = &run.sched;
        let why = diagnose::explain(&log, &dmesg).unwrap_or_else(|| {
            let last = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(no output)");
            format!("no known cause in its output or the kernel log; its last line: {}", last.trim())
        });
        format!("{name} exited before sched_ext was enabled: {why}")
    }

    async fn failed_early(&mut self, run: &RunId, dir: &Path, started: u64, t0: Instant, boot_s: f64, why: &str) -> Result<RunRecord> {
        let serial = self.vm.as_ref().map(|v| v.files.serial()).unwrap_or_default();
        self.store(run, dir, Path::new("/nonexistent"), "", &serial, 0, "failed", Some(why.into()), started)?;
        Ok(RunRecord {
            variant: run.variant.clone(),
            iteration: run.iteration,
            status: "failed".into(),
            failure: Some(why.into()),
            started_unix: started,
            wall_s: t0.elapsed().as_secs_f64(),
            boot_s,
            setup_s: 0.0,
            workload_s: 0.0,
            pull_s: 0.0,
            overhead_s: 0.0,
            reset: ResetMode::InGuest.to_string(),
            snapshot: None,
        })
    }

    /// Files of one run into <group>/<variant>/run<N>.*; run<N>.json gets the host's view.
    #[allow(clippy::too_many_arguments)]
    fn store(
        &self,
        run: &RunId,
        dir: &Path,
        stage: &Path,
        live_csv: &str,
        serial: &Path,
        serial_offset: u64,
        status: &str,
        failure: Option<String>,
        started: u64,
    ) -> Result<()> {
        let vdir = dir.join(&run.variant);
        std::fs::create_dir_all(&vdir).with_context(|| format!("cannot create {}", vdir.display()))?;
        let n = run.iteration;
        let pulled = stage.join("out");
        let write = |name: &str, data: &[u8]| -> Result<()> {
            crate::paths::write_atomic(&vdir.join(name), data)
                .with_context(|| format!("cannot write results into {} (disk full?)", vdir.display()))
        };
        // The CSV: the guest's file when we have it, else what the host followed live.
        let csv = std::fs::read(pulled.join("run.csv")).ok().filter(|c| c.len() >= live_csv.len());
        match csv {
            Some(c) => write(&format!("run{n}.csv"), &c)?,
            None if !live_csv.is_empty() => write(&format!("run{n}.csv"), live_csv.as_bytes())?,
            None => {}
        }
        if let Ok(rd) = std::fs::read_dir(&pulled) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(stem) = name.strip_suffix(".log") {
                    std::fs::copy(e.path(), vdir.join(format!("run{n}.{stem}.log")))
                        .with_context(|| format!("cannot write results into {} (disk full?)", vdir.display()))?;
                }
            }
        }
        // Every map of the scheduler, sampled beside run.csv (the agent's schedmaps.rs).
        for (from, to) in [("maps.csv", format!("run{n}.maps.csv")), ("maps.json", format!("run{n}.maps.json"))] {
            if let Ok(b) = std::fs::read(pulled.join(from)) {
                write(&to, &b)?;
            }
        }
        // Verifier statistics belong to the variant's build, not to a run.
        if let Ok(v) = std::fs::read(pulled.join("verifier.json")) {
            write("verifier.json", &v)?;
        }
        // The serial console of this run's span; a restored guest's starts
        // with the console of the boot its saved state came from.
        if let Ok(all) = std::fs::read(serial) {
            let from = (serial_offset as usize).min(all.len());
            let mut text = Vec::new();
            if let (ResetMode::Snapshot, Some(snap)) = (self.reset_now(), &self.snapshot) {
                text = std::fs::read(snap.boot_serial()).unwrap_or_default();
                text.extend(format!("--- scx-vmctl: restored from saved state {} ---\n", snap.key()).as_bytes());
            }
            text.extend(&all[from..]);
            write(&format!("run{n}.serial.log"), &text)?;
        }
        let mut info: serde_json::Value = std::fs::read(pulled.join("run.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        let obj = info.as_object_mut().context("run.json is not an object")?;
        obj.insert("scheduler".into(), run.sched.clone().into());
        obj.insert("workload".into(), run.workload.as_str().into());
        obj.insert("variant".into(), run.variant.clone().into());
        obj.insert("iteration".into(), n.into());
        obj.insert("accel".into(), self.prepared.spec.accel.describe().into());
        obj.insert("reset".into(), self.reset_now().to_string().into());
        obj.insert("duration_s".into(), self.s.duration.into());
        obj.insert("interval_s".into(), self.s.interval.into());
        obj.entry("started_unix").or_insert(started.into());
        // The host's verdict wins over the agent's when the host saw worse.
        let agent_failed = obj.get("status").and_then(|s| s.as_str()).is_some_and(|s| s != "ok");
        if status != "ok" || !agent_failed {
            obj.insert("status".into(), status.into());
        }
        if let Some(f) = failure {
            obj.insert("failure".into(), f.into());
        }
        write(&format!("run{n}.json"), &serde_json::to_vec_pretty(&info)?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::custom_group_name;
    use std::path::PathBuf;

    fn bins(paths: &[&str]) -> Vec<(String, PathBuf)> {
        paths.iter().map(|p| ("v".to_string(), PathBuf::from(p))).collect()
    }

    #[test]
    fn custom_group_names() {
        assert_eq!(custom_group_name(&bins(&["/x/scx_simple"])), "scx_simple");
        assert_eq!(custom_group_name(&bins(&["/a/mysched_control", "/b/mysched_test"])), "mysched");
        assert_eq!(custom_group_name(&bins(&["/a/ctl-v1", "/b/ctl-v2"])), "ctl-v");
        assert_eq!(custom_group_name(&bins(&["/a/alpha", "/b/beta"])), "custom");
        assert_eq!(custom_group_name(&bins(&["/a/.x", "/b/.y"])), "custom");
    }
}
