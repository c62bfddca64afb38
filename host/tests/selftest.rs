//! The helper's contract, checked in a real guest kernel by `scx-vmctl
//! selftest` (BPF_PROG_RUN on syscall programs, see bpf/selftest/), and the
//! kernel's own sched_ext selftests passing on the patched kernel.

mod common;
use common::*;

#[test]
fn helper_selftest_passes_in_the_guest() {
    let env = Env::new();
    let o = env.run(&["selftest"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    for case in [
        "ok   full pass",
        "ok   LRU_HASH",
        "ok   ARRAY map is -EINVAL",
        "ok   4-byte value is -EINVAL",
        "ok   empty map",
        "ok   tiny timeout on 50,000 entries",
        "ok   updates from another CPU",
        "ok   verifier refuses a non-map first argument: refused: pointer in R1 isn't map pointer",
        "ok   verifier refuses a maybe-NULL evicted pointer: refused: Possibly NULL pointer passed to trusted arg3",
        // the six bugs of the first design (issue 13), each failed on it
        "ok   read-only map is -EPERM",
        "ok   special fields are -EINVAL",
        "ok   cursor survives deletes of its entry",
        "ok   sparse map keeps the budget",
        "ok   budget is capped",
        "ok   20 maps keep their own cursors",
        "ok   verifier refuses another struct_ops type calling it: refused: calling kernel function scx_bpf_map_scan_timeout is not allowed",
    ] {
        assert!(out.contains(case), "missing {case:?} in:\n{out}");
    }
    assert!(out.lines().any(|l| l == "17 passed, 0 failed"), "{out}");
    // Then the kernel's own sched_ext selftests, built from the kept kernel
    // tree: some ran, none failed (skips, e.g. for too few CPUs, are fine).
    let line = out.lines().find(|l| l.starts_with("sched_ext selftests: ")).unwrap_or_else(|| panic!("{out}"));
    let n: Vec<u32> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    let [passed, _skipped, failed] = n[..] else { panic!("{line}") };
    assert!(passed > 0 && failed == 0, "{line}\n{out}");
    assert!(out.contains("kernel ok   minimal"), "{out}");
}
