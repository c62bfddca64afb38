//! scx-guest-agent: the part of scx-vmctl that runs inside the guest.

mod btf;
mod cgroup;
mod churn;
mod cli;
mod config;
mod csv;
mod cycle;
mod exit;
mod kmsg;
mod maps;
mod names;
mod procs;
mod reset;
mod run;
mod runinfo;
mod sampler;
mod sched;
mod selftest;
mod signals;
mod trace;
mod verifier;
mod verifier_stats;
mod watch;
mod workload;

/// The twelve generated skeletons (see build.rs), one module per build.
#[allow(dead_code, unused_imports, non_snake_case, clippy::all)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/skeletons.rs"));
}

use clap::Parser;

use cli::{Cli, Cmd};

fn main() {
    let cli = Cli::parse();
    verifier::install();
    let result = match cli.cmd {
        Cmd::Run(r) => (|| {
            let (sched, variant, workload) = r.names()?;
            let config = r.config()?;
            run::run(run::RunArgs {
                sched,
                variant,
                workload,
                duration: cli::seconds("duration", r.duration)?,
                interval: cli::seconds("interval", r.interval)?,
                out: r.out.clone(),
                config,
                iteration: r.iteration,
                accel: r.accel.clone(),
                reset: r.reset.clone(),
                kernel_btf: r.kernel_btf.clone(),
                inject_error_after: r.inject_error_after.map(|s| cli::seconds("inject-error-after", s)).transpose()?,
            })
        })(),
        Cmd::Watch(w) => (|| {
            let interval = cli::seconds("interval", w.interval)?;
            let duration = w.duration.map(|d| cli::seconds("duration", d)).transpose()?;
            watch::watch(&w.map_name, interval, duration, &w.out)
        })(),
        Cmd::Reset => reset::reset(),
        Cmd::Selftest => selftest::selftest(),
        Cmd::Info(i) => info(&i.kernel_btf),
        Cmd::Cycle(c) => (|| {
            let s = names::Sched::parse(&c.sched)?;
            let v = names::Variant::parse(&c.variant)?;
            let hold = cli::seconds("hold", c.hold)?;
            cycle::cycle(s, v, c.count, hold, &config::Cleanup::default(), &c.kernel_btf)
        })(),
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
    use names::{Sched, Variant, WorkloadKind};
    let list = |v: Vec<&str>| v.join(" ");
    println!("schedulers: {}", list(Sched::ALL.iter().map(|s| s.as_str()).collect()));
    println!("variants: {}", list(Variant::ALL.iter().map(|s| s.as_str()).collect()));
    println!("workloads: {}", list(WorkloadKind::ALL.iter().map(|s| s.as_str()).collect()));
    println!("sched_ext: {}", sched::state());
    match btf::has_func(kernel_btf, sched::HELPER) {
        Ok(h) => println!("helper {}: {}", sched::HELPER, if h { "present" } else { "absent" }),
        Err(e) => println!("helper {}: unknown ({e:#})", sched::HELPER),
    }
    Ok(exit::OK)
}
