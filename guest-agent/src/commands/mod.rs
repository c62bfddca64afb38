//! The agent's subcommands: `run` (and `runinfo`, its run.json), `run-bin`,
//! `cycle`, `hold`, `reset`, `selftest`, `fixture`, `watch`.

pub mod run;
pub mod runbin;
pub mod runinfo;
pub mod cycle;
pub mod hold;
pub mod reset;
pub mod scan_bound;
pub mod selftest;
pub mod fixture;
pub mod watch;
pub mod bench;
