//! scx-guest-agent: the part of scx-vmctl that runs inside the guest.

mod bpf;
mod cli;
mod commands;
mod exit;
mod observers;
mod scheduler;
mod signals;
mod workloads;

/// The twelve generated skeletons (see build.rs), one module per build.
#[allow(dead_code, unused_imports, non_snake_case, clippy::all)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/skeletons.rs"));
}

use clap::Parser;

use bpf::{btf, verifier};
use cli::{Cli, Cmd};
use commands::{bench, cycle, fixture, hold, reset, run, runbin, selftest, watch};
use scheduler::sched;
use workloads::churn;

fn main() {
    crate::commands::runinfo::start_clock();
    let cli = Cli::parse();
    verifier::install();
    let result = match cli.cmd {
        Cmd::Run(r) => (|| {
            let (sched, variant, workload) = r.names()?;
            let c = &r.common;
            run::run(run::RunArgs {
                sched,
                variant,
                workload,
                duration: cli::seconds("duration", c.duration)?,
                interval: cli::seconds("interval", c.interval)?,
                baseline: c.baseline()?,
                out: c.out.clone(),
                config: c.config()?,
                iteration: c.iteration,
                accel: c.accel.clone(),
                reset: c.reset.clone(),
                kernel_btf: r.kernel_btf.clone(),
                inject_error_after: r.inject_error_after.map(|s| cli::seconds("inject-error-after", s)).transpose()?,
            })
        })(),
        Cmd::RunBin(b) => (|| {
            let c = &b.common;
            runbin::run_bin(runbin::BinArgs {
                bin: b.bin.clone(),
                bin_args: b.bin_args.clone(),
                map_name: b.map_name.clone(),
                variant: b.variant.clone(),
                workload: scx_contract::names::Workload::parse(&c.workload)?,
                duration: cli::seconds("duration", c.duration)?,
                interval: cli::seconds("interval", c.interval)?,
                baseline: c.baseline()?,
                out: c.out.clone(),
                config: c.config()?,
                iteration: c.iteration,
                accel: c.accel.clone(),
                reset: c.reset.clone(),
                start_timeout: cli::seconds("start-timeout", b.start_timeout)?,
                stop_grace: cli::seconds("stop-grace", b.stop_grace)?,
            })
        })(),
        Cmd::Hold(h) => (|| {
            let s = scx_contract::names::Scheduler::parse(&h.sched)?;
            let v = scx_contract::names::Variant::parse(&h.variant)?;
            hold::hold(s, v, &h.cleanup()?, &h.kernel_btf)
        })(),
        Cmd::Watch(w) => (|| {
            let interval = cli::seconds("interval", w.interval)?;
            let duration = w.duration.map(|d| cli::seconds("duration", d)).transpose()?;
            watch::watch(&w.map_name, interval, duration, &w.out)
        })(),
        Cmd::Reset => reset::reset(),
        Cmd::Fixture(f) => fixture::fixture(&f.name),
        Cmd::Selftest => selftest::selftest(),
        Cmd::Info(i) => info(&i.kernel_btf),
        Cmd::Cycle(c) => (|| {
            let s = scx_contract::names::Scheduler::parse(&c.sched)?;
            let v = scx_contract::names::Variant::parse(&c.variant)?;
            let hold = cli::seconds("hold", c.hold)?;
            cycle::cycle(s, v, c.count, hold, &scx_contract::config::Cleanup::default(), &c.kernel_btf)
        })(),
        Cmd::Bench(b) => bench::run(b, std::path::PathBuf::from("/sys/kernel/btf/vmlinux")),
        Cmd::ChurnWorker(c) => cli::seconds("duration", c.duration)
            .and_then(|d| churn::worker(c.burst, c.rate_hz, c.task_us, d))
            .map(|_| exit::OK),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("scx-guest-agent: {e:#}");
            std::process::exit(exit::code_of(&e));
        }
    }
}

fn info(kernel_btf: &std::path::Path) -> anyhow::Result<i32> {
    use scx_contract::names::{Scheduler, Variant, Workload};
    let list = |v: Vec<&str>| v.join(" ");
    println!("schedulers: {}", list(Scheduler::ALL.iter().map(|s| s.as_str()).collect()));
    println!("variants: {}", list(Variant::ALL.iter().map(|s| s.as_str()).collect()));
    println!("workloads: {}", list(Workload::ALL.iter().map(|s| s.as_str()).collect()));
    println!("sched_ext: {}", sched::state());
    match btf::has_func(kernel_btf, sched::HELPER) {
        Ok(h) => println!("helper {}: {}", sched::HELPER, if h { "present" } else { "absent" }),
        Err(e) => println!("helper {}: unknown ({e:#})", sched::HELPER),
    }
    Ok(exit::OK)
}
