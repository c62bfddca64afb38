//! The subcommands: `run` dispatches the parsed command line to one small
//! module per group of subcommands. Nothing else in the crate depends on
//! this module.

mod build;
mod cp;
mod report;
mod vm;

use crate::cli::*;
use anyhow::Result;

pub async fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Cmd::Kernel(KernelCmd::Build(a)) => build::kernel_build(a).await,
        Cmd::Kernel(KernelCmd::Path(f)) => build::kernel_path(f),
        Cmd::Image(ImageCmd::Build { force }) => build::image_build(force).await,
        Cmd::Image(ImageCmd::Path) => build::image_path(),
        Cmd::Agent(AgentCmd::Build(f)) => build::agent_build(f).await,
        Cmd::Sched(c) => build::sched_cmd(c).await,
        Cmd::Probe { kernel } => build::probe(kernel.as_deref()),
        Cmd::Up(a) => vm::up(a).await,
        Cmd::Ssh(a) => vm::ssh_cmd(a).await,
        Cmd::Cp(a) => cp::cp(a).await,
        Cmd::Status(a) => vm::status(a).await,
        Cmd::List => vm::list(),
        Cmd::Down(a) => vm::down(a).await,
        Cmd::Selftest(a) => crate::selftest::run(a).await,
        Cmd::Experiment(a) => crate::experiment::run(*a).await,
        Cmd::Leakcheck(a) => crate::experiment::leakcheck(*a).await,
        Cmd::Report(a) => report::report(a),
        Cmd::Bench(a) => crate::bench::run(a).await,
    }
}

