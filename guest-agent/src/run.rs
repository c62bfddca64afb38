//! `run`: load a scheduler, drive a workload, sample, unload, and leave the
//! result files of docs/results.md in the output directory: run.csv,
//! run.json, dmesg.log, trace.log, workload.log.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::cgroup;
use crate::config::Config;
use crate::csv::CsvWriter;
use crate::exit::{self, code_of};
use crate::kmsg::{self, Kmsg};
use crate::maps;
use crate::names::{Sched, Variant, WorkloadKind};
use crate::runinfo::RunInfo;
use crate::sampler::{MapSource, Sampler};
use crate::sched::{self, LoadOpts, Running};
use crate::signals;
use crate::trace::TraceReader;
use crate::workload;

pub struct RunArgs {
    pub sched: Sched,
    pub variant: Variant,
    pub workload: WorkloadKind,
    pub duration: Duration,
    pub interval: Duration,
    pub out: PathBuf,
    pub config: Config,
    pub iteration: u32,
    pub accel: String,
    pub reset: String,
    pub kernel_btf: PathBuf,
    pub inject_error_after: Option<Duration>,
}

/// What the body hands back to the record.
struct BodyResult {
    samples: u64,
    max_entries: u64,
    max_sample_ms: f64,
    outcome: workload::Outcome,
    failure: Option<String>,
}

pub fn run(a: RunArgs) -> Result<i32> {
    sched::check_sched_ext()?;
    fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    signals::install();
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);

    let mut info = RunInfo {
        scheduler: a.sched.as_str().into(),
        workload: a.workload.as_str().into(),
        variant: a.variant.as_str().into(),
        iteration: a.iteration,
        status: "ok",
        failure: None,
        exit_kind: "NONE".into(),
        exit_reason: String::new(),
        workload_metric: None,
        duration_s: a.duration.as_secs_f64(),
        interval_s: a.interval.as_secs_f64(),
        started_unix,
        accel: a.accel.clone(),
        reset: a.reset.clone(),
        splats: Vec::new(),
        ops_name: a.sched.ops_name(a.variant),
        load: None,
        counters: None,
        samples: 0,
        max_map_entries: 0,
        max_sample_ms: 0.0,
        trace_lines: 0,
        workload_error: None,
        config: a.config.clone(),
        agent_version: env!("CARGO_PKG_VERSION"),
    };

    let mut kmsg = Kmsg::open_at_end()?;
    let trace = TraceReader::start(&a.out.join("trace.log"))?;
    let mut code = exit::OK;

    let result = cgroup::setup(&a.config.workloads.cgroups).and_then(|cgroups| {
        if !cgroups.weighted {
            eprintln!("agent: no cpu controller in this kernel: cgroups get no weights");
        }
        let opts = LoadOpts { cleanup: &a.config.cleanup, kernel_btf: &a.kernel_btf };
        sched::with_scheduler(a.sched, a.variant, &opts, |s, report| {
            eprintln!(
                "agent: {} attached (load {:.0} ms, attach {:.0} ms)",
                report.ops_name, report.load_ms, report.attach_ms
            );
            write_verifier_json(&a.out, &report.verifier);
            info.load = Some(report);
            let body = body(&a, &cgroups, s);
            // unload now and wait for ops.exit's record
            s.detach();
            let deadline = Instant::now() + Duration::from_secs(5);
            while s.exit_info().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            info.counters = Some(s.counters());
            if let Some(e) = s.exit_info() {
                info.exit_kind = e.kind_name();
                info.exit_reason = e.describe();
                if e.is_error() {
                    info.fail(format!("scheduler error ({}): {}", e.kind_name(), e.describe()));
                }
            } else {
                info.fail("the scheduler left no exit record after unloading");
            }
            body
        })
    });

    match result {
        Ok(b) => {
            info.samples = b.samples;
            info.max_map_entries = b.max_entries;
            info.max_sample_ms = b.max_sample_ms;
            if let Some(f) = b.failure {
                info.fail(f);
            }
            info.workload_metric = Some(b.outcome.metric);
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
    let mut dmesg = fs::File::create(a.out.join("dmesg.log"))?;
    for l in &lines {
        writeln!(dmesg, "{l}")?;
    }
    info.splats = kmsg::splats(&lines);
    if let Some(first) = info.splats.first().cloned() {
        info.fail(format!("kernel splat: {first}"));
    }

    let json = serde_json::to_string_pretty(&info)?;
    fs::write(a.out.join("run.json"), json + "\n")?;
    if info.status != "ok" {
        eprintln!("agent: run failed: {}", info.failure.as_deref().unwrap_or("?"));
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
fn body(a: &RunArgs, cgroups: &cgroup::Cgroups, s: &mut dyn Running) -> Result<BodyResult> {
    let t0 = Instant::now();
    let mut csv = CsvWriter::create(&a.out.join("run.csv"))?;
    let mi = maps::info(s.tracked_map())?;
    let mut sampler = Sampler::new();
    let mut samples = 0u64;
    let mut max_entries = 0u64;
    let mut max_sample_ms = 0f64;
    let mut failure = None;

    let mut take = |s: &dyn Running, csv: &mut CsvWriter| -> Result<()> {
        let t = Instant::now();
        let map = MapSource { fd: s.tracked_map(), key_size: mi.key_size, value_size: mi.value_size };
        let (row, err) = sampler.sample(t0.elapsed().as_secs_f64(), Some(&map), &s.counters());
        if let Some(e) = err {
            eprintln!("agent: sample: {e}");
        }
        max_entries = max_entries.max(row.map_entries);
        csv.write(&row).context("writing run.csv")?;
        samples += 1;
        max_sample_ms = max_sample_ms.max(t.elapsed().as_secs_f64() * 1e3);
        Ok(())
    };

    take(s, &mut csv)?;
    let wl = workload::start(a.workload, &a.config.workloads, cgroups, a.duration, &a.out.join("workload.log"))?;
    let mut injected = false;
    let mut next = t0 + a.interval;
    loop {
        let now = Instant::now();
        if next > now {
            signals::sleep(next - now);
        }
        if signals::stopping() {
            failure = Some("stopped by a signal before the end".to_string());
            take(s, &mut csv)?;
            break;
        }
        take(s, &mut csv)?;
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
        if t0.elapsed() + Duration::from_millis(1) >= a.duration {
            break;
        }
        if let Some(after) = a.inject_error_after {
            if !injected && t0.elapsed() >= after {
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
    let outcome = wl.stop(Duration::from_secs(5));
    Ok(BodyResult { samples, max_entries, max_sample_ms, outcome, failure })
}

/// verifier.json beside the run's files: veristat-like records per program,
/// with the kernel they were verified on (docs/results.md).
fn write_verifier_json(out: &std::path::Path, progs: &[crate::verifier_stats::ProgStats]) {
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let doc = serde_json::json!({ "kernel": kernel, "programs": progs });
    if let Err(e) = fs::write(out.join("verifier.json"), format!("{doc:#}\n")) {
        eprintln!("agent: cannot write verifier.json: {e}");
    }
}
