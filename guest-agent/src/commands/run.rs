//! `run`: load a scheduler, drive a workload, sample, unload, and leave the
//! result files of docs/results.md in the output directory: run.csv,
//! run.json, dmesg.log, trace.log, workload.log.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::workloads::cgroup;
use scx_contract::config::Config;
use scx_contract::sample::SampleWriter;
use crate::exit::{self, code_of};
use crate::observers::kmsg::{self, Kmsg};
use crate::bpf::maps;
use scx_contract::names::{Scheduler, Variant, Workload};
use crate::commands::runinfo::{mark, RunInfo};
use crate::observers::sampler::{MapSource, Sampler};
use crate::scheduler::sched::{self, LoadOpts, Running};
use crate::signals;
use crate::observers::trace::TraceReader;
use crate::workloads::workload;

pub struct RunArgs {
    pub sched: Scheduler,
    pub variant: Variant,
    pub workload: Workload,
    pub duration: Duration,
    pub interval: Duration,
    /// sampling with no workload before it starts (leakcheck)
    pub baseline: Duration,
    pub out: PathBuf,
    pub config: Config,
    pub iteration: u32,
    pub accel: String,
    pub reset: String,
    pub kernel_btf: PathBuf,
    pub inject_error_after: Option<Duration>,
}

/// What a run needs besides its scheduler; shared with `run-bin`.
pub struct Drive<'a> {
    pub workload: Workload,
    pub config: &'a Config,
    pub duration: Duration,
    pub interval: Duration,
    /// sampling with the scheduler loaded and no workload before it starts
    pub baseline: Duration,
    pub out: &'a Path,
    pub inject_error_after: Option<Duration>,
    /// The highest BPF program id before the scheduler loaded: its
    /// programs, and so its maps, come after (schedmaps.rs).
    pub prog_baseline: u32,
}

/// What the body hands back to the record.
pub struct BodyResult {
    samples: u64,
    max_entries: u64,
    max_sample_ms: f64,
    outcome: workload::Outcome,
    failure: Option<String>,
}

pub fn run(a: RunArgs) -> Result<i32> {
    sched::check_sched_ext()?;
    let d = Drive {
        workload: a.workload,
        config: &a.config,
        duration: a.duration,
        interval: a.interval,
        baseline: a.baseline,
        out: &a.out,
        inject_error_after: a.inject_error_after,
        prog_baseline: crate::bpf::schedmaps::prog_last_id(),
    };
    let mut info = RunInfo::new(a.sched.as_str(), a.variant.as_str(), &d, a.iteration, &a.accel, &a.reset);
    info.ops_name = a.sched.ops_name(a.variant);
    frame(&mut info, &d, |cgroups, info| {
        let opts = LoadOpts { cleanup: &a.config.cleanup, kernel_btf: &a.kernel_btf };
        sched::with_scheduler(a.sched, a.variant, &opts, |s, report| {
            eprintln!(
                "agent: {} attached (load {:.0} ms, attach {:.0} ms)",
                report.ops_name, report.load_ms, report.attach_ms
            );
            mark("attached");
            write_verifier_json(&a.out, &report.verifier);
            info.load = Some(report);
            let body = body(&d, cgroups, s);
            unload(info, s, Duration::from_secs(5));
            mark("unloaded");
            body
        })
    })
}

/// Unload now, wait up to `wait` for the exit record, record it and the
/// final counters.
pub fn unload(info: &mut RunInfo, s: &mut dyn Running, wait: Duration) {
    s.detach();
    let deadline = Instant::now() + wait;
    while s.exit_info().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    info.counters = Some(s.counters());
    if let Some(e) = s.exit_info() {
        info.core.exit_kind = Some(e.kind_name());
        info.core.exit_reason = Some(e.describe());
        if e.is_error() {
            info.fail(format!("scheduler error ({}): {}", e.kind_name(), e.describe()));
        }
    } else {
        info.fail("the scheduler left no exit record after unloading");
    }
}

/// Everything around the scheduler's part of a run: the kernel log and
/// trace from before it starts, the workload cgroups, and at the end the
/// result files (dmesg.log, trace.log, run.json). `inner` loads, drives and
/// unloads the scheduler. Returns the exit code.
pub fn frame(
    info: &mut RunInfo,
    d: &Drive<'_>,
    inner: impl FnOnce(&cgroup::Cgroups, &mut RunInfo) -> Result<BodyResult>,
) -> Result<i32> {
    fs::create_dir_all(d.out).with_context(|| format!("creating {}", d.out.display()))?;
    signals::install();
    let mut kmsg = Kmsg::open_at_end()?;
    let trace = TraceReader::start(&d.out.join("trace.log"))?;
    let mut code = exit::OK;

    let result = cgroup::setup(&d.config.workloads.cgroups).and_then(|cgroups| {
        if !cgroups.weighted {
            eprintln!("agent: no cpu controller in this kernel: cgroups get no weights");
        }
        inner(&cgroups, info)
    });

    match result {
        Ok(b) => {
            info.samples = b.samples;
            info.max_map_entries = b.max_entries;
            info.max_sample_ms = b.max_sample_ms;
            if let Some(f) = b.failure {
                info.fail(f);
            }
            info.core.workload_metric = Some(b.outcome.metric);
            info.workload_cut_rounds = b.outcome.cut_rounds;
            if let Some(e) = b.outcome.error {
                info.workload_error = Some(e.clone());
                info.fail(format!("workload: {e}"));
            }
        }
        Err(e) => {
            eprintln!("agent: {e:#}");
            info.fail(format!("{e:#}"));
            code = code_of(&e);
        }
    }
    if let Err(e) = cgroup::remove_all() {
        eprintln!("agent: {e:#}");
    }
    info.trace_lines = trace.finish();

    let lines = kmsg.read_new();
    let mut dmesg = fs::File::create(d.out.join("dmesg.log"))?;
    for l in &lines {
        writeln!(dmesg, "{l}")?;
    }
    info.core.splats = kmsg::splats(&lines);
    if let Some(first) = info.core.splats.first().cloned() {
        info.fail(format!("kernel splat: {first}"));
    }

    let json = info.to_json()?;
    fs::write(d.out.join("run.json"), json + "\n")?;
    if info.core.failed() {
        eprintln!("agent: run failed: {}", info.core.failure.as_deref().unwrap_or("?"));
        if code == exit::OK {
            code = exit::FAILED;
        }
    } else {
        eprintln!(
            "agent: run ok: {} samples, max {} map entries, {} evictions",
            info.samples,
            info.max_map_entries,
            info.counters.as_ref().map(|c| c.evictions).unwrap_or(0)
        );
    }
    Ok(code)
}

/// Sample while the workload runs; stop early if the scheduler dies.
pub fn body(a: &Drive<'_>, cgroups: &cgroup::Cgroups, s: &mut dyn Running) -> Result<BodyResult> {
    let t0 = Instant::now();
    let mut csv = SampleWriter::create(&a.out.join("run.csv"))?;
    let mi = maps::info(s.tracked_map())?;
    let value_size = maps::walk_value_size(&mi);
    let mut sampler = Sampler::new();
    let mut samples = 0u64;
    let mut max_entries = 0u64;
    let mut max_sample_ms = 0f64;
    let mut failure = None;

    // Every map of the scheduler, beside the one run.csv follows (maps.csv).
    let exits = crate::bpf::schedmaps::Exits::attach().map_err(|e| eprintln!("agent: no exit counts: {e:#}")).ok();
    let mut all_maps = match crate::bpf::schedmaps::SchedMaps::discover(a.prog_baseline, exits, a.out) {
        Ok(m) => Some(m),
        Err(e) => {
            eprintln!("agent: maps.csv: {e:#}");
            None
        }
    };
    let mut churning = false;
    let mut take = |s: &dyn Running, csv: &mut SampleWriter, churning: bool| -> Result<()> {
        let t = Instant::now();
        let map = MapSource { fd: s.tracked_map(), key_size: mi.key_size, value_size };
        let elapsed = t0.elapsed().as_secs_f64();
        let (row, err) = sampler.sample(elapsed, Some(&map), &s.counters());
        if let Some(e) = err {
            eprintln!("agent: sample: {e}");
        }
        if let Some(m) = all_maps.as_mut() {
            m.sample(elapsed, churning, &mut sampler).context("writing maps.csv")?;
        }
        max_entries = max_entries.max(row.map_entries);
        csv.write(&row).context("writing run.csv")?;
        samples += 1;
        max_sample_ms = max_sample_ms.max(t.elapsed().as_secs_f64() * 1e3);
        Ok(())
    };

    take(s, &mut csv, churning)?;
    // The no-workload phase: what the scheduler's maps do with time alone.
    let mut next = t0 + a.interval;
    while t0.elapsed() + Duration::from_millis(1) < a.baseline && !signals::stopping() && s.exit_info().is_none() {
        let now = Instant::now();
        if next > now {
            signals::sleep(next - now);
        }
        take(s, &mut csv, churning)?;
        next += a.interval;
    }
    let work_t0 = Instant::now();
    churning = true;
    mark("workload_start");
    let wl = workload::start(a.workload, &a.config.workloads, cgroups, a.duration, &a.out.join("workload.log"))?;
    let mut injected = false;
    if !a.baseline.is_zero() {
        next = work_t0 + a.interval;
    }
    // the last sample is taken at the deadline, however late the others ran
    let deadline = work_t0 + a.duration;
    loop {
        let now = Instant::now();
        let at = next.min(deadline);
        if at > now {
            signals::sleep(at - now);
        }
        if signals::stopping() {
            failure = Some("stopped by a signal before the end".to_string());
            take(s, &mut csv, churning)?;
            break;
        }
        take(s, &mut csv, churning)?;
        if let Some(e) = s.exit_info() {
            failure = Some(format!("scheduler exited during the run ({}): {}", e.kind_name(), e.describe()));
            break;
        }
        let st = sched::state();
        if st != "enabled" {
            // the exit record usually follows within moments and says more
            let end = Instant::now() + Duration::from_secs(2);
            while s.exit_info().is_none() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            failure = Some(match s.exit_info() {
                Some(e) => format!("scheduler exited during the run ({}): {}", e.kind_name(), e.describe()),
                None => format!("sched_ext state became `{st}` during the run"),
            });
            break;
        }
        if work_t0.elapsed() + Duration::from_millis(1) >= a.duration {
            break;
        }
        if let Some(after) = a.inject_error_after {
            if !injected && work_t0.elapsed() >= after {
                eprintln!("agent: injecting an error into the scheduler");
                s.inject_error();
                injected = true;
            }
        }
        next += a.interval;
        // a slow sample must not make the next ones bunch up
        if next < Instant::now() {
            next = Instant::now() + a.interval;
        }
    }
    mark("workload_deadline");
    let outcome = wl.stop(Duration::from_secs(5));
    mark("workload_stopped");
    Ok(BodyResult { samples, max_entries, max_sample_ms, outcome, failure })
}

/// verifier.json beside the run's files: veristat-like records per program,
/// with the kernel they were verified on (docs/results.md).
fn write_verifier_json(out: &std::path::Path, progs: &[crate::bpf::verifier_stats::ProgStats]) {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let doc = serde_json::json!({ "kernel": kernel, "programs": progs });
    if let Err(e) = fs::write(out.join("verifier.json"), format!("{doc:#}\n")) {
        eprintln!("agent: cannot write verifier.json: {e}");
    }
}
