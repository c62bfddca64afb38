//! Why a user's scheduler exited before sched_ext was enabled, in one line:
//! read from its own output (scx_utils' and libbpf's messages) and the
//! guest kernel's log, naming what the guest lacks (a kernel option, a
//! kfunc, a struct_ops field, an attach point) and what to do about it.

use regex::Regex;

/// Kernel options the scx schedulers need, by what their loaders print when
/// an option is missing.
const OPTION_HINTS: &[(&str, &str)] = &[
    ("CONFIG_FUNCTION_TRACER", "kernel is missing CONFIG_FUNCTION_TRACER"),
    ("CONFIG_FTRACE_SYSCALLS", "syscalls/sys_enter_"),
    ("CONFIG_IKCONFIG_PROC", "/proc/config.gz"),
    ("CONFIG_NUMA", "/sys/devices/system/node"),
    ("CONFIG_SCHED_MC (LLC domains)", "/sys/devices/system/cpu/cpu0/cache"),
];

fn first_match(re: &str, text: &str) -> Option<String> {
    Regex::new(re).ok()?.captures(text).and_then(|c| c.get(1)).map(|m| m.as_str().to_string())
}

/// The one-line explanation, or None when nothing we know is in the logs.
pub fn explain(sched_log: &str, dmesg: &str) -> Option<String> {
    let both = format!("{sched_log}\n{dmesg}");
    if let Some(l) = both.lines().find(|l| l.contains("kernel is missing CONFIG_")) {
        let opt = first_match(r"missing (CONFIG_[A-Z0-9_]+)", l).unwrap_or_default();
        return Some(format!("the guest kernel lacks {opt} (the scheduler says: {}): build it with {opt}=y", l.trim()));
    }
    // libbpf: a kfunc the program calls is not in the kernel
    if let Some(k) = first_match(r"extern \(func ksym\) '([A-Za-z0-9_]+)': not found in kernel", &both) {
        return Some(format!("the guest kernel has no kfunc `{k}`, which the scheduler's BPF calls: use a kernel that has it (a newer one?)"));
    }
    // libbpf: a sched_ext_ops member the scheduler sets is not in this kernel
    if let Some(m) = first_match(r"struct_ops init_kern [A-Za-z0-9_]+: member ([A-Za-z0-9_]+) not found in kernel BTF", &both) {
        return Some(format!("the guest kernel's sched_ext_ops has no field `{m}`, which the scheduler sets: use a newer kernel"));
    }
    if let Some(l) = both.lines().find(|l| l.contains(".dump() missing, kernel too old")) {
        return Some(format!("the guest kernel's sched_ext is too old for this scheduler ({})", l.trim()));
    }
    // fentry/fexit/tp_btf to a function or tracepoint the kernel lacks
    if let Some(f) = first_match(r"failed to find kernel BTF type ID of '([A-Za-z0-9_]+)'", &both) {
        return Some(format!(
            "the guest kernel has no `{f}` for the scheduler's fentry/fexit/tp_btf program to attach to (inlined, renamed or configured out)"
        ));
    }
    if let Some(tp) = first_match(r"failed to (?:create|attach) tracepoint '?([a-z_]+/[a-z_0-9]+)'?", &both) {
        let opt = if tp.starts_with("syscalls/") { "CONFIG_FTRACE_SYSCALLS" } else { "the tracepoint's subsystem" };
        return Some(format!("the guest kernel has no tracepoint {tp}: build it with {opt}=y"));
    }
    if both.contains("kprobe") && (both.contains("failed to create kprobe") || both.contains("Failed to attach kprobe")) {
        return Some("the scheduler could not attach a kprobe: build the guest kernel with CONFIG_KPROBES=y and CONFIG_KPROBE_EVENTS=y".into());
    }
    for (opt, needle) in OPTION_HINTS {
        if let Some(l) = both.lines().find(|l| l.contains(needle) && (l.contains("No such file") || l.contains("not found") || l.contains("missing"))) {
            return Some(format!("the guest kernel seems to lack {opt}: {}", l.trim()));
        }
    }
    // sched_ext's own word on why it refused or dropped the scheduler
    if let Some(r) = first_match(r#"sched_ext: BPF scheduler "[^"]*" (?:errored|disabled)[^\n]*\(([^)]*)\)"#, dmesg) {
        let stamp = Regex::new(r"^\s*\[\s*[0-9.]+\]\s*").expect("valid regex");
        let detail = dmesg.lines().skip_while(|l| !l.contains("sched_ext: BPF scheduler")).nth(1).unwrap_or("");
        let detail = stamp.replace(detail, "");
        let detail = detail.trim();
        return Some(format!("sched_ext refused the scheduler ({r}){}", if detail.is_empty() { String::new() } else { format!(": {detail}") }));
    }
    if let Some(p) = first_match(r"libbpf: prog '([A-Za-z0-9_]+)': BPF program load failed", &both) {
        // the verifier's reason is the last line of its log before libbpf's END marker
        let log: Vec<&str> = both
            .lines()
            .skip_while(|l| !l.contains("BPF program load failed"))
            .take_while(|l| !l.contains("-- END PROG LOAD LOG --"))
            .filter(|l| !l.contains("libbpf: prog") && !l.trim().is_empty() && !l.starts_with("processed ") && !l.starts_with("verification time"))
            .collect();
        let why = log.last().map(|l| l.trim()).unwrap_or("");
        return Some(format!("the guest kernel's verifier rejected BPF program `{p}`{}", if why.is_empty() { String::new() } else { format!(": {why}") }));
    }
    if both.contains("Operation not permitted") {
        return Some("the scheduler was not permitted a BPF operation (it must run as root with CAP_BPF/CAP_SYS_ADMIN)".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[test]
    fn missing_function_tracer() {
        let log = "23:10:01 [INFO] scx_bpfland 1.1.4\nError: kernel is missing CONFIG_FUNCTION_TRACER\n";
        let e = explain(log, "").unwrap();
        assert!(e.starts_with("the guest kernel lacks CONFIG_FUNCTION_TRACER"), "{e}");
        assert!(e.contains("CONFIG_FUNCTION_TRACER=y"), "{e}");
    }

    #[test]
    fn missing_kfunc_field_and_attach_point() {
        let e = explain("libbpf: extern (func ksym) 'scx_bpf_dsq_move_set_slice': not found in kernel or module BTFs\n", "").unwrap();
        assert!(e.contains("no kfunc `scx_bpf_dsq_move_set_slice`"), "{e}");
        let e = explain("libbpf: struct_ops init_kern bpfland_ops: member cgroup_set_bandwidth not found in kernel BTF\n", "").unwrap();
        assert!(e.contains("no field `cgroup_set_bandwidth`"), "{e}");
        let e = explain("libbpf: prog 'fexit___futex_wait': failed to find kernel BTF type ID of '__futex_wait': -ESRCH\n", "").unwrap();
        assert!(e.contains("no `__futex_wait`"), "{e}");
        let e = explain("libbpf: prog 'x': failed to create tracepoint 'syscalls/sys_enter_execve' perf event: No such file or directory\n", "").unwrap();
        assert!(e.contains("CONFIG_FTRACE_SYSCALLS=y"), "{e}");
    }

    #[test]
    fn kernel_refusal_and_verifier() {
        let dmesg = "[ 12.3] sched_ext: BPF scheduler \"bpfland\" disabled (runtime error)\n[ 12.3] sched_ext: bpfland: invalid CPU 7\n";
        let e = explain("", dmesg).unwrap();
        assert_eq!(e, "sched_ext refused the scheduler (runtime error): sched_ext: bpfland: invalid CPU 7");
        let log = "libbpf: prog 'bpfland_enqueue': BPF program load failed: Permission denied\nlibbpf: prog 'bpfland_enqueue': -- BEGIN PROG LOAD LOG --\n0: R1=ctx() R10=fp0\nR1 invalid mem access 'scalar'\nprocessed 12 insns\n-- END PROG LOAD LOG --\nlibbpf: failed to load object\n";
        let e = explain(log, "").unwrap();
        assert!(e.contains("rejected BPF program `bpfland_enqueue`") && e.contains("R1 invalid mem access"), "{e}");
        assert_eq!(e.lines().count(), 1);
    }

    #[test]
    fn nothing_known() {
        assert_eq!(explain("Error: something else\n", "[ 1.0] booted\n"), None);
    }
}
