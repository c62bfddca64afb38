//! Kernel splat patterns, one list for every reader of kernel logs: the
//! agent (a run that splats fails), the host's report (the no_kernel_splat
//! criterion) and `selftest` on the debug kernel. Matching is line by line;
//! the first pattern in table order wins, so specific patterns come before
//! generic ones. docs/report.md lists them with their reasons.

use std::sync::OnceLock;

use regex::{Regex, RegexSet};

/// One pattern: a name, a regex on the line, and an optional regex that
/// clears a match (for normal lines that look like errors).
pub struct Pattern {
    pub name: &'static str,
    pub regex: &'static str,
    pub unless: Option<&'static str>,
    /// Only on kernel-timestamped lines in a serial log (user-space output
    /// shares the console and may say "WARNING:" harmlessly).
    pub needs_kernel_line: bool,
    /// sched_ext's report of a scheduler's own error: the run's exit kind
    /// records it, so the agent does not count it as a kernel splat (the
    /// report still quotes it).
    pub scheduler: bool,
}

const fn p(name: &'static str, regex: &'static str) -> Pattern {
    Pattern { name, regex, unless: None, needs_kernel_line: false, scheduler: false }
}

/// Optional printk prefix: syslog level, timestamp, caller id.
const PREFIX: &str = r"^(?:<\d+>)?(?:\[\s*\d+\.\d+\]\s?)?(?:\[\s*[CT]\d+\]\s?)?";
/// A kernel-timestamped line.
const KERNEL_LINE: &str = r"^(?:<\d+>)?\[\s*\d+\.\d+\]";

/// The documented pattern list, most specific first.
pub const PATTERNS: &[Pattern] = &[
    // sched_ext ejections: any "disabled (...)" but the orderly reasons.
    Pattern {
        name: "sched_ext_ejected",
        regex: r#"sched_ext: BPF scheduler "[^"]*" (?:disabled|errored)"#,
        unless: Some(r"disabled \((?:unregistered from |disabled by sysrq)"),
        needs_kernel_line: false,
        scheduler: true,
    },
    p("sched_ext_stall", r"failed to run for \d+(?:\.\d+)?s|runnable task stall"),
    Pattern { scheduler: true, ..p("sched_ext_bpf_error", r"\bscx_bpf_error") },
    Pattern {
        name: "sched_ext_error",
        regex: r"(?i)\bsched_ext: .*\b(?:error|errored|stall|stalled|watchdog|failed|invalid)\b",
        unless: Some(r"disabled \((?:unregistered from |disabled by sysrq)"),
        needs_kernel_line: false,
        scheduler: true,
    },
    p("kasan", r"\bBUG: KASAN: "),
    p("kfence_kmsan_kcsan", r"\bBUG: K(?:FENCE|MSAN|CSAN): "),
    p("ubsan", r"\bUBSAN: "),
    p(
        "lockdep",
        r"possible circular locking dependency detected|inconsistent lock state|possible recursive locking detected|suspicious RCU usage|bad unlock balance detected|possible irq lock inversion dependency detected|lock held when returning to user space|held lock freed|-safe -> \S+-unsafe lock order detected|BUG: MAX_LOCKDEP|DEBUG_LOCKS_WARN_ON",
    ),
    p(
        "rcu_stall",
        r"\brcu_\w+ (?:self-detected stall|detected (?:expedited )?stalls)|\brcu_\w+ kthread (?:starved|timer wakeup didn't happen)",
    ),
    p("hung_task", r"\bINFO: task \S.* blocked for more than \d+ seconds"),
    p("soft_lockup", r"\bBUG: soft lockup\b"),
    p("hard_lockup", r"Watchdog detected hard LOCKUP"),
    p("kernel_panic", r"Kernel panic - not syncing"),
    Pattern {
        name: "general_protection_fault",
        regex: r"\bgeneral protection fault\b",
        // "traps: prog[123] general protection fault ip:..." is a user-space crash.
        unless: Some(r"\btraps: "),
        needs_kernel_line: false,
        scheduler: false,
    },
    p("oops", r"\bOops(?:: | - )|Unable to handle kernel "),
    p("kernel_bug", r"\bkernel BUG at |\bBUG: "),
    // WARN_ON() and friends: "WARNING: CPU: 1 PID: 77 at file:line fn+off/len".
    p("warning", r"\bWARNING: CPU: \d+ PID: \d+"),
    Pattern {
        name: "warning_message",
        // Other kernel warnings, anchored at the message start: "RETBleed:
        // WARNING: ..." and "Spectre V2 : WARNING: ..." are boot-time notices.
        regex: r"^(?:<\d+>)?(?:\[\s*\d+\.\d+\]\s?)?(?:\[\s*[CT]\d+\]\s?)?WARNING: ",
        unless: None,
        needs_kernel_line: true,
        scheduler: false,
    },
    p("oom_kill", r"\binvoked oom-killer:|\bOut of memory: Killed process"),
];

/// Which log a text came from: dmesg holds only kernel lines, a serial
/// console also carries user-space output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    Dmesg,
    Serial,
}

struct Compiled {
    set: RegexSet,
    each: Vec<Regex>,
    unless: Vec<Option<Regex>>,
    kernel_line: Regex,
    prefix: Regex,
}

fn compiled() -> &'static Compiled {
    static C: OnceLock<Compiled> = OnceLock::new();
    C.get_or_init(|| Compiled {
        set: RegexSet::new(PATTERNS.iter().map(|p| p.regex)).expect("splat patterns compile"),
        each: PATTERNS.iter().map(|p| Regex::new(p.regex).expect("splat pattern compiles")).collect(),
        unless: PATTERNS
            .iter()
            .map(|p| p.unless.map(|u| Regex::new(u).expect("splat exception compiles")))
            .collect(),
        kernel_line: Regex::new(KERNEL_LINE).expect("kernel line regex"),
        prefix: Regex::new(PREFIX).expect("prefix regex"),
    })
}

/// The name of the first pattern that flags `line`, if any.
pub fn classify(line: &str, kind: LogKind) -> Option<&'static str> {
    let c = compiled();
    let matches = c.set.matches(line);
    if !matches.matched_any() {
        return None;
    }
    for i in matches.iter() {
        let pat = &PATTERNS[i];
        if c.unless[i].as_ref().is_some_and(|u| u.is_match(line)) {
            continue;
        }
        if pat.needs_kernel_line && kind == LogKind::Serial && !c.kernel_line.is_match(line) {
            continue;
        }
        debug_assert!(c.each[i].is_match(line));
        return Some(pat.name);
    }
    None
}

/// Strips the printk prefix, for a shorter quote in one-line reasons.
pub fn message_of(line: &str) -> &str {
    let c = compiled();
    let end = c.prefix.find(line).map_or(0, |m| m.end());
    &line[end..]
}

/// The names of the patterns the agent counts as kernel splats: all but
/// sched_ext's reports of a scheduler's own error.
pub fn is_kernel_splat(name: &str) -> bool {
    PATTERNS.iter().any(|p| p.name == name && !p.scheduler)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(line: &str) -> Option<&'static str> {
        classify(line, LogKind::Dmesg)
    }

    #[test]
    fn every_pattern_compiles_and_has_a_unique_name() {
        let _ = compiled();
        let mut names: Vec<_> = PATTERNS.iter().map(|p| p.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), PATTERNS.len());
    }

    #[test]
    fn normal_sched_ext_lines_are_not_errors() {
        for l in [
            r#"[   12.345678] sched_ext: BPF scheduler "simple" enabled"#,
            r#"[   42.000001] sched_ext: BPF scheduler "simple" disabled (unregistered from user space)"#,
            r#"[   42.000001] sched_ext: BPF scheduler "flatcg" disabled (unregistered from BPF)"#,
            r#"[   42.000001] sched_ext: BPF scheduler "nest" disabled (unregistered from the main kernel)"#,
            r#"[   42.000001] sched_ext: BPF scheduler "simple" disabled (disabled by sysrq-S)"#,
            r#"[    9.1] sched_ext: "flatcg" does not implement cgroup cpu.weight"#,
            // boot lines of the guest kernel's 9p (for vng) hold "stall" in "Installing"
            "[    1.260630] 9p: Installing v9fs 9p2000 file system support",
            "[    1.377398] 9pnet: Installing 9P2000 support",
        ] {
            assert_eq!(hit(l), None, "{l}");
        }
    }

    #[test]
    fn sched_ext_ejections_and_stalls() {
        let cases = [
            (r#"[   31.337000] sched_ext: BPF scheduler "simple" disabled (runtime error)"#, "sched_ext_ejected"),
            (r#"[   31.337000] sched_ext: BPF scheduler "simple" disabled (runnable task stall)"#, "sched_ext_ejected"),
            (r#"[   31.337000] sched_ext: BPF scheduler "simple" disabled (scx_bpf_error)"#, "sched_ext_ejected"),
            (r#"[   31.3] sched_ext: BPF scheduler "simple" disabled (stall)"#, "sched_ext_ejected"),
            (r#"[   31.3] sched_ext: BPF scheduler "simple" disabled (watchdog failed to check in for 5.000s)"#, "sched_ext_ejected"),
            (r#"[   31.3] sched_ext: BPF scheduler "simple" errored, disabling"#, "sched_ext_ejected"),
            ("[   31.3] sched_ext: simple: kworker/u4:1[45] failed to run for 30.368s", "sched_ext_stall"),
            ("[   31.4]   scx_bpf_error_bstr+0x6e/0x90", "sched_ext_bpf_error"),
            ("[   31.4] sched_ext: simple: scx_bpf_error (invalid DSQ ID 0x0000000000001234)", "sched_ext_bpf_error"),
            ("[    5.0] sched_ext: ops.init() failed (-22)", "sched_ext_error"),
        ];
        for (l, want) in cases {
            assert_eq!(hit(l), Some(want), "{l}");
        }
    }

    #[test]
    fn kernel_splats() {
        let cases = [
            ("[  100.1] WARNING: CPU: 1 PID: 234 at kernel/sched/ext.c:1789 dispatch_enqueue+0x1a2/0x3c0", "warning"),
            ("WARNING: CPU: 0 PID: 1 at mm/slub.c:1 x+0x1/0x2", "warning"),
            ("[   20.2] BUG: kernel NULL pointer dereference, address: 0000000000000008", "kernel_bug"),
            ("[   20.2] kernel BUG at kernel/sched/ext.c:2345!", "kernel_bug"),
            ("[   20.2] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580", "kernel_bug"),
            ("[   20.3] Oops: 0000 [#1] PREEMPT SMP NOPTI", "oops"),
            ("[   20.3] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI", "oops"),
            ("[   20.3] Oops: general protection fault, probably for non-canonical address 0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI", "general_protection_fault"),
            ("[   20.3] general protection fault: 0000 [#1] SMP", "general_protection_fault"),
            ("[   20.9] Kernel panic - not syncing: Fatal exception", "kernel_panic"),
            ("[   50.0] WARNING: possible circular locking dependency detected", "lockdep"),
            ("[   50.0] WARNING: inconsistent lock state", "lockdep"),
            ("[   50.0] WARNING: suspicious RCU usage", "lockdep"),
            ("[   60.0] BUG: KASAN: slab-use-after-free in scx_bpf_map_scan_timeout+0x1f4/0x3a0", "kasan"),
            ("[   60.0] UBSAN: array-index-out-of-bounds in kernel/sched/ext.c:512:9", "ubsan"),
            ("[   70.0] rcu: INFO: rcu_preempt self-detected stall on CPU", "rcu_stall"),
            ("[   70.0] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:", "rcu_stall"),
            ("[   70.0] INFO: rcu_sched self-detected stall on CPU", "rcu_stall"),
            ("[   70.0] rcu: rcu_preempt kthread starved for 10502 jiffies!", "rcu_stall"),
            ("[  245.7] INFO: task kworker/0:1:12 blocked for more than 122 seconds.", "hung_task"),
            ("[   80.0] watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [stress-ng:4242]", "soft_lockup"),
            ("[   80.0] NMI watchdog: Watchdog detected hard LOCKUP on cpu 1", "hard_lockup"),
            ("[   90.0] stress-ng invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0", "oom_kill"),
            ("<4>[   90.0] WARNING: CPU: 0 PID: 9 at x", "warning"),
            ("[   90.0] [    T123] WARNING: CPU: 0 PID: 123 at kernel/bpf/hashtab.c:1 y", "warning"),
        ];
        for (l, want) in cases {
            assert_eq!(hit(l), Some(want), "{l}");
        }
    }

    #[test]
    fn benign_boot_and_user_lines() {
        for l in [
            "[    0.081234] RETBleed: WARNING: Spectre v2 mitigation leaves CPU vulnerable to RETBleed attacks, data leaks possible!",
            "[    0.081234] Spectre V2 : WARNING: Unprivileged eBPF is enabled with eIBRS on, data leaks possible via Spectre v2 BHB attacks!",
            "[    0.512000] NMI watchdog: Perf NMI watchdog permanently disabled",
            "[    0.600000] kasan: KernelAddressSanitizer initialized",
            "[    1.000000] rcu: Hierarchical RCU implementation.",
            "[    1.000000] rcu: \tRCU restricting CPUs from NR_CPUS=64 to nr_cpu_ids=2.",
            "[    2.000000] DEBUG: not a bug",
            "[   33.000000] traps: hackbench[1234] general protection fault ip:7f00 sp:7ffd error:0 in libc.so.6",
            "[    1.2] x86/cpu: User Mode Instruction Prevention (UMIP) activated",
            "[    3.4] workqueue: blk_mq_run_work_fn hogged CPU for >10000us 4 times, consider switching to WQ_UNBOUND",
        ] {
            assert_eq!(hit(l), None, "{l}");
        }
        // On a serial console a bare "WARNING:" from user space is not a kernel warning.
        assert_eq!(classify("WARNING: UNPROTECTED PRIVATE KEY FILE!", LogKind::Serial), None);
        assert_eq!(classify("[   5.0] WARNING: at foo", LogKind::Serial), Some("warning_message"));
        assert_eq!(classify("WARNING: at foo", LogKind::Dmesg), Some("warning_message"));
        assert_eq!(classify("WARNING: CPU: 0 PID: 1 at x", LogKind::Serial), Some("warning"));
    }

    #[test]
    fn message_of_strips_the_printk_prefix() {
        assert_eq!(message_of("[   20.3] Oops: 0000 [#1]"), "Oops: 0000 [#1]");
        assert_eq!(message_of("no prefix"), "no prefix");
    }

    #[test]
    fn scheduler_errors_are_not_kernel_splats_but_stalls_are() {
        assert!(!is_kernel_splat("sched_ext_ejected") && !is_kernel_splat("sched_ext_bpf_error"));
        assert!(!is_kernel_splat("sched_ext_error"));
        assert!(is_kernel_splat("sched_ext_stall") && is_kernel_splat("kasan") && is_kernel_splat("warning"));
        assert!(!is_kernel_splat("no_such_pattern"));
    }
}
