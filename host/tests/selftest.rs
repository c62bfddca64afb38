//! The helper's contract, checked in a real guest kernel by `scx-vmctl
//! selftest` (BPF_PROG_RUN on syscall programs, see bpf/selftest/).

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
    ] {
        assert!(out.contains(case), "missing {case:?} in:\n{out}");
    }
    assert!(out.trim_end().ends_with("10 passed, 0 failed"), "{out}");
}
