//! Exit codes of `scx-vmctl`, in one place (documented in README.md).

/// Everything asked for was done; for `experiment`/`report`, every criterion held.
pub const OK: i32 = 0;
/// The tool worked, but the verdict is FAIL: a success criterion did not hold
/// (or, with `--baseline`, a regression was found).
pub const CRITERION_FAILED: i32 = 1;
/// Bad input: unknown name, bad flag value, missing file, VM name in use. Also clap's code.
pub const BAD_INPUT: i32 = 2;
/// The tool failed: QEMU, SSH, a build or a guest broke before a verdict could be given.
pub const TOOL_FAILED: i32 = 3;
/// Interrupted by SIGINT/SIGTERM; partial results were kept (resume with `--resume`).
pub const INTERRUPTED: i32 = 130;
