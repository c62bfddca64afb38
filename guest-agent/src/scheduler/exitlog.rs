//! How a scheduler we did not load ended, read from text: the kernel's
//! `sched_ext: BPF scheduler "NAME" disabled (REASON)` line (printed for
//! every disable, with `sched_ext: NAME: MSG` after it on errors) and the
//! `EXIT: REASON (MSG)` line that tools/sched_ext binaries print (their
//! UEI_REPORT). The reasons are the kernel's scx_exit_reason() strings, so
//! they give back the exit kind.

use crate::scheduler::sched::ExitInfo;

/// scx_exit_reason() of kernel/sched/ext.c and the enum scx_exit_kind value.
const REASONS: &[(&str, i32)] = &[
    ("unregistered from user space", 64),
    ("unregistered from BPF", 65),
    ("unregistered from the main kernel", 66),
    ("disabled by sysrq-S", 67),
    ("runtime error", 1024),
    ("scx_bpf_error", 1025),
    ("runnable task stall", 1026),
];

fn kind_of(reason: &str) -> Option<i32> {
    REASONS.iter().find(|(r, _)| *r == reason).map(|(_, k)| *k)
}

/// The last disable the kernel logged, from dmesg-style lines.
pub fn from_kernel(lines: &[String]) -> Option<ExitInfo> {
    let (i, name, reason) = lines.iter().enumerate().rev().find_map(|(i, l)| {
        let rest = &l[l.find("sched_ext: BPF scheduler \"")? + 26..];
        let (name, tail) = rest.split_once('"')?;
        let reason = tail.strip_prefix(" disabled (")?.strip_suffix(')')?;
        Some((i, name.to_string(), reason.to_string()))
    })?;
    // errors add "sched_ext: NAME: MSG" right after
    let prefix = format!("sched_ext: {name}: ");
    let msg = lines[i + 1..]
        .iter()
        .find_map(|l| l.find(&prefix).map(|p| l[p + prefix.len()..].trim().to_string()))
        .unwrap_or_default();
    Some(ExitInfo { kind: kind_of(&reason).unwrap_or(0), code: 0, reason, msg })
}

/// The binary's last `EXIT: reason (msg)` line, if it printed one.
pub fn from_output(text: &str) -> Option<ExitInfo> {
    let rest = text.lines().rev().find_map(|l| l.trim().strip_prefix("EXIT: "))?.trim();
    // the message is free text: split on a known reason, not on " ("
    let (reason, msg) = match REASONS.iter().find(|(r, _)| rest.starts_with(r)) {
        Some((r, _)) => {
            let m = rest[r.len()..].trim();
            (r.to_string(), m.strip_prefix('(').and_then(|m| m.strip_suffix(')')).unwrap_or(m).to_string())
        }
        None => (rest.to_string(), String::new()),
    };
    Some(ExitInfo { kind: kind_of(&reason).unwrap_or(0), code: 0, reason, msg })
}

/// The kernel's record wins (it always says what happened); the binary's
/// line may add the message the kernel logs only for errors.
pub fn combine(kernel: Option<ExitInfo>, output: Option<ExitInfo>) -> Option<ExitInfo> {
    match (kernel, output) {
        (Some(mut k), Some(o)) => {
            if k.msg.is_empty() && o.reason == k.reason {
                k.msg = o.msg;
            }
            Some(k)
        }
        (k, o) => k.or(o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kernel_unregistration() {
        let l = lines(&[
            "[   10.1] sched_ext: BPF scheduler \"simple\" enabled",
            "[   14.2] sched_ext: BPF scheduler \"simple\" disabled (unregistered from user space)",
        ]);
        let e = from_kernel(&l).unwrap();
        assert_eq!(e.kind_name(), "UNREG");
        assert_eq!(e.describe(), "unregistered from user space");
        assert!(!e.is_error());
        assert!(from_kernel(&l[..1]).is_none());
    }

    #[test]
    fn kernel_error_with_message() {
        let l = lines(&[
            "[5.0] sched_ext: BPF scheduler \"simple_test\" disabled (scx_bpf_error)",
            "[5.0] sched_ext: simple_test: injected error",
            "[5.0]    scx_bpf_error_bstr+0x6d/0x90",
        ]);
        let e = from_kernel(&l).unwrap();
        assert_eq!(e.kind_name(), "ERROR_BPF");
        assert!(e.is_error());
        assert_eq!(e.describe(), "scx_bpf_error (injected error)");
        let s = from_kernel(&lines(&["sched_ext: BPF scheduler \"x\" disabled (runnable task stall)"])).unwrap();
        assert_eq!(s.kind_name(), "ERROR_STALL");
    }

    #[test]
    fn binary_exit_lines() {
        let out = "local=10 global=3\nlocal=20 global=5\nEXIT: unregistered from user space\n";
        let e = from_output(out).unwrap();
        assert_eq!((e.kind_name().as_str(), e.msg.as_str()), ("UNREG", ""));
        let e = from_output("EXIT: unregistered from BPF (done (really))\n").unwrap();
        assert_eq!(e.kind_name(), "UNREG_BPF");
        assert_eq!(e.msg, "done (really)");
        let e = from_output("EXIT: something new\n").unwrap();
        assert_eq!((e.kind, e.reason.as_str()), (0, "something new"));
        assert!(from_output("no exit here\n").is_none());
    }

    #[test]
    fn kernel_wins_output_adds_message() {
        let k = from_kernel(&lines(&["sched_ext: BPF scheduler \"a\" disabled (unregistered from BPF)"]));
        let o = from_output("EXIT: unregistered from BPF (all done)");
        let e = combine(k.clone(), o).unwrap();
        assert_eq!(e.describe(), "unregistered from BPF (all done)");
        let other = from_output("EXIT: runtime error (x)");
        assert_eq!(combine(k, other).unwrap().describe(), "unregistered from BPF");
        assert_eq!(combine(None, from_output("EXIT: disabled by sysrq-S")).unwrap().kind_name(), "SYSRQ");
        assert!(combine(None, None).is_none());
    }
}
