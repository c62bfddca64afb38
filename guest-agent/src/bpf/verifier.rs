//! libbpf's messages, captured instead of printed: a verifier rejection can
//! be thousands of lines, of which the last few say why. We keep everything
//! libbpf says during a load and show the tail of the verifier's log.

use std::sync::Mutex;

use libbpf_rs::PrintLevel;

static CAPTURED: Mutex<String> = Mutex::new(String::new());

fn capture(level: PrintLevel, msg: String) {
    if level == PrintLevel::Debug {
        return;
    }
    if let Ok(mut c) = CAPTURED.lock() {
        // bound the memory even for a pathological log
        if c.len() < 64 << 20 {
            c.push_str(&msg);
        }
    }
}

/// Route libbpf's output into the capture buffer (call once, early).
pub fn install() {
    libbpf_rs::set_print(Some((PrintLevel::Info, capture)));
}

/// Take what libbpf said since the last call.
pub fn take() -> String {
    CAPTURED.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default()
}

/// The last `n` lines of the last verifier log in `libbpf_out`, prefixed
/// with libbpf's own error lines (which name the program and the errno).
/// None when there is no verifier log in it.
pub fn tail(libbpf_out: &str, n: usize) -> Option<String> {
    let begin = libbpf_out.rfind("-- BEGIN PROG LOAD LOG --")?;
    let end = libbpf_out[begin..]
        .find("-- END PROG LOAD LOG --")
        .map(|e| begin + e)
        .unwrap_or(libbpf_out.len());
    let body_start = libbpf_out[begin..].find('\n').map(|i| begin + i + 1).unwrap_or(end);
    let body: Vec<&str> = libbpf_out[body_start.min(end)..end]
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let skip = body.len().saturating_sub(n);

    let mut out = String::new();
    // libbpf's own summary lines: "prog 'x': BPF program load failed: ..."
    for l in libbpf_out.lines().filter(|l| l.contains("failed") && !l.contains("BEGIN PROG")) {
        out.push_str(l.trim());
        out.push('\n');
    }
    if skip > 0 {
        out.push_str(&format!("... ({skip} earlier verifier lines omitted)\n"));
    }
    for l in &body[skip..] {
        out.push_str(l);
        out.push('\n');
    }
    Some(out)
}

/// The program libbpf failed to load: "prog 'NAME': BPF program load failed".
pub fn failed_prog(libbpf_out: &str) -> Option<String> {
    libbpf_out.lines().find_map(|l| {
        let rest = &l[l.find("prog '")? + 6..];
        let (name, tail) = rest.split_once('\'')?;
        tail.starts_with(": BPF program load failed").then(|| name.to_string())
    })
}

/// libbpf's error lines (warnings) when there is no verifier log: e.g. a
/// kfunc missing from the kernel's BTF.
pub fn errors(libbpf_out: &str, n: usize) -> String {
    let lines: Vec<&str> = libbpf_out.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_of_the_log() {
        let mut log = String::from(
            "libbpf: prog 'simple_enqueue': BPF program load failed: Permission denied\n\
             libbpf: prog 'simple_enqueue': -- BEGIN PROG LOAD LOG --\n",
        );
        for i in 0..100 {
            log.push_str(&format!("{i}: (b7) r1 = 0\n"));
        }
        log.push_str("R2 invalid mem access 'scalar'\nprocessed 100 insns\n");
        log.push_str("-- END PROG LOAD LOG --\nlibbpf: failed to load object 'x'\n");
        let t = tail(&log, 20).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("BPF program load failed"));
        assert!(t.contains("(82 earlier verifier lines omitted)"), "{t}");
        assert_eq!(*lines.last().unwrap(), "processed 100 insns");
        assert!(t.contains("R2 invalid mem access"));
        assert!(!t.contains("\n0: (b7)"));
        assert_eq!(t.lines().filter(|l| l.contains("(b7)")).count(), 18);
    }

    #[test]
    fn failed_program_name() {
        let out = "libbpf: prog 'simple_enqueue': BPF program load failed: Permission denied\n\
                   libbpf: prog 'simple_enqueue': failed to load: -13\n";
        assert_eq!(failed_prog(out).as_deref(), Some("simple_enqueue"));
        assert_eq!(failed_prog("libbpf: prog 'x': failed to load: -13\n"), None);
    }

    #[test]
    fn no_log_no_tail() {
        assert!(tail("libbpf: extern (func ksym) 'x': not found\n", 20).is_none());
        assert_eq!(errors("a\n\nb\nc\n", 2), "b\nc");
    }
}
