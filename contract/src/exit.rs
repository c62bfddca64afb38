//! The agent's exit codes. The host decides on them (a load failure is
//! reported with the verifier's words, a dirty guest is reset harder), so
//! they are part of the contract and stable.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success; for `reset`: the guest is clean |
//! | 1 | the run failed (scheduler error or exit, workload failure, I/O) |
//! | 2 | bad input: unknown scheduler/variant/workload, bad flag or config |
//! | 3 | `reset`: the guest is not clean (reasons on stderr) |
//! | 4 | the scheduler could not be loaded (verifier, missing helper, attach) |

pub const OK: i32 = 0;
pub const FAILED: i32 = 1;
pub const BAD_INPUT: i32 = 2;
pub const NOT_CLEAN: i32 = 3;
pub const LOAD_FAILED: i32 = 4;
