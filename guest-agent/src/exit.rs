//! Exit codes of the agent, in one place. The host maps them to its own
//! messages, so keep them stable.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success; for `reset`: the guest is clean |
//! | 1 | the run failed (scheduler error or exit, workload failure, I/O) |
//! | 2 | bad input: unknown scheduler/variant/workload, bad flag or config |
//! | 3 | `reset`: the guest is not clean (reasons on stderr) |
//! | 4 | the scheduler could not be loaded (verifier, missing helper, attach) |

use std::fmt;

pub const OK: i32 = 0;
pub const FAILED: i32 = 1;
pub const BAD_INPUT: i32 = 2;
pub const NOT_CLEAN: i32 = 3;
pub const LOAD_FAILED: i32 = 4;

/// An error that knows which exit code it maps to.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub msg: String,
}

impl Exit {
    pub fn new(code: i32, msg: impl Into<String>) -> Self {
        Exit { code, msg: msg.into() }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Exit {}

/// The exit code for any error: an `Exit` anywhere in the chain wins.
pub fn code_of(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|e| e.downcast_ref::<Exit>().map(|x| x.code))
        .unwrap_or(FAILED)
}
