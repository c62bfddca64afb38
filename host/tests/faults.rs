//! Faults an experiment must survive, injected for real into TCG guests: a
//! guest kernel panic, QEMU killed from outside, the SSH connection cut, and
//! Ctrl-C to scx-vmctl. Each costs at most the run it hit, never earlier
//! results, and never leaves QEMU behind.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const CFG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/quick-tcg.yaml");

fn start_experiment(env: &Env, out: &Path, extra: &[&str]) -> Child {
    let mut c = env.cmd();
    c.args(["experiment", "scx_simple", "custom-churn", "--config", CFG, "--out", out.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().unwrap()
}

/// Wait until the VM of the run in progress has an agent that wrote
/// `min_lines` CSV lines; its name. (Runs are one at a time; a VM booted to
/// be saved for snapshot resets runs no agent.)
fn wait_for_samples(env: &Env, min_lines: usize, timeout: Duration) -> String {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(rd) = std::fs::read_dir(env.state.path().join("vms")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let o = env.run(&["ssh", &name, "--", "sh", "-c", "cat /root/out/run.csv 2>/dev/null | wc -l"]);
                let n: usize = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(0);
                if n >= min_lines {
                    return name;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("no experiment VM produced {min_lines} CSV lines within {timeout:?}");
}

/// Wait until the host itself holds `min_lines` lines (header included) of
/// run `n` of `variant`: the runner mirrors what it followed to a hidden file
/// beside the results as it arrives.
fn wait_for_host_lines(out: &Path, variant: &str, n: u32, min_lines: usize, timeout: Duration) {
    let p = out.join(format!("scx_simple/custom-churn/{variant}/.run{n}.csv.live"));
    let start = Instant::now();
    while std::fs::read_to_string(&p).map(|s| s.lines().count()).unwrap_or(0) < min_lines {
        assert!(start.elapsed() < timeout, "the host did not hold {min_lines} lines of {} within {timeout:?}", p.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn finish(child: Child) -> (Option<i32>, String) {
    let o = child.wait_with_output().unwrap();
    (o.status.code(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

fn run_json(out: &Path, variant: &str, n: u32) -> serde_json::Value {
    let p: PathBuf = out.join(format!("scx_simple/custom-churn/{variant}/run{n}.json"));
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn csv_lines(out: &Path, variant: &str, n: u32) -> usize {
    std::fs::read_to_string(out.join(format!("scx_simple/custom-churn/{variant}/run{n}.csv"))).map(|s| s.lines().count()).unwrap_or(0)
}

fn no_vm_left(env: &Env) {
    let left: Vec<_> = std::fs::read_dir(env.state.path().join("vms")).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "run directories left: {left:?}");
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        assert!(!(cmd.contains("qemu-system") && cmd.contains(env.state.path().to_str().unwrap())), "QEMU left: {cmd}");
    }
}

#[test]
fn guest_panic_costs_one_run() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("res");
    let child = start_experiment(&env, &out, &["--duration", "20"]);
    // The host follows the guest's CSV once a second and a panic loses what
    // it had not fetched yet: panic once the host holds 3 lines.
    let vm = wait_for_samples(&env, 3, Duration::from_secs(300));
    wait_for_host_lines(&out, "control", 1, 3, Duration::from_secs(60));
    // The guest kernel panics mid-run (the SSH session dies with it).
    let _ = env.run(&["ssh", &vm, "--", "sh", "-c", "echo c > /proc/sysrq-trigger"]);
    let (code, text) = finish(child);
    assert_eq!(code, Some(1), "a failed run fails the verdict, not the tool: {text}");
    let c = run_json(&out, "control", 1);
    assert_eq!(c["status"], "failed", "{c}");
    assert_eq!(c["reset"], "snapshot", "the default: a guest restored from the saved one panicked: {c}");
    assert!(c["failure"].as_str().unwrap().contains("panicked"), "{c}");
    assert!(csv_lines(&out, "control", 1) >= 3, "the samples taken before the panic are kept");
    let serial = std::fs::read_to_string(out.join("scx_simple/custom-churn/control/run1.serial.log")).unwrap();
    assert!(serial.contains("Kernel panic") || serial.contains("sysrq: Trigger a crash"), "serial log kept: {serial}");
    // The next run went on in a fresh guest (restored from the saved one).
    assert_eq!(run_json(&out, "test", 1)["status"], "ok");
    let summary = std::fs::read_to_string(out.join("scx_simple/custom-churn/summary.txt")).unwrap();
    assert!(summary.contains("panicked"), "the summary names the failed run and why: {summary}");
    no_vm_left(&env);

    // --resume alone keeps the failed run; --retry-failed redoes it (and only it).
    let again = |extra: &[&str]| {
        let mut c = env.cmd();
        c.args(["experiment", "scx_simple", "custom-churn", "--config", CFG, "--out", out.to_str().unwrap(), "--duration", "20"]);
        let o = c.args(extra).output().unwrap();
        (o.status.code(), format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o)))
    };
    let (code, text) = again(&["--resume"]);
    assert_eq!(text.matches("done before, skipped").count(), 2, "{code:?} {text}");
    let (code, text) = again(&["--resume", "--retry-failed"]);
    assert_eq!(text.matches("done before, skipped").count(), 1, "{text}");
    assert!(code == Some(0) || code == Some(1), "a verdict, not a tool failure: {text}");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("scx_simple/custom-churn/manifest.json")).unwrap()).unwrap();
    assert!(m["runs"].as_array().unwrap().iter().all(|r| r["status"] == "ok"), "{m}");
    let c = run_json(&out, "control", 1);
    assert_eq!(c["status"], "ok", "{c}");
    assert!(!out.join("scx_simple/custom-churn/control/run1.serial.log").exists() || !std::fs::read_to_string(
        out.join("scx_simple/custom-churn/control/run1.serial.log")).unwrap().contains("sysrq: Trigger a crash"),
        "the failed run's files were replaced");
    no_vm_left(&env);
}

#[test]
fn qemu_killed_from_outside_is_noticed_at_once() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("res");
    let child = start_experiment(&env, &out, &["--duration", "20"]);
    let vm = wait_for_samples(&env, 3, Duration::from_secs(300));
    wait_for_host_lines(&out, "control", 1, 2, Duration::from_secs(60));
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(env.vm_dir(&vm).join("vm.json")).unwrap()).unwrap();
    let pid = st["pid"].as_i64().unwrap() as i32;
    let killed = Instant::now();
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let (code, text) = finish(child);
    assert_eq!(code, Some(1), "{text}");
    let c = run_json(&out, "control", 1);
    assert_eq!(c["status"], "failed");
    assert_eq!(c["reset"], "snapshot", "a restored guest's QEMU was killed: {c}");
    assert!(c["failure"].as_str().unwrap().contains("went away"), "{c}");
    assert!(csv_lines(&out, "control", 1) >= 2);
    assert_eq!(run_json(&out, "test", 1)["status"], "ok", "the next run recovers");
    // One more full run (~30 s + boot) took place after the kill: no hang waiting for the dead VM.
    assert!(killed.elapsed() < Duration::from_secs(150), "{:?}", killed.elapsed());
    no_vm_left(&env);
}

#[test]
fn ssh_cut_mid_run_reconnects_and_loses_nothing() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("res");
    let child = start_experiment(&env, &out, &["--duration", "20", "--variants", "control"]);
    let vm = wait_for_samples(&env, 2, Duration::from_secs(300));
    // Kill every SSH session process in the guest (the listener survives):
    // the runner's connection drops and must be re-established. dropbear
    // runs each session as `dropbear ... -2 FD`, sshd (the fallback) as
    // `sshd: root@...`.
    let _ = env.run(&["ssh", &vm, "--", "sh", "-c", "pkill -KILL -f 'dropbear .* -2 [0-9]|sshd: root' ; true"]);
    let (code, text) = finish(child);
    assert!(text.contains("re-established"), "{text}");
    let c = run_json(&out, "control", 1);
    assert_eq!(c["status"], "ok", "{c} {text}");
    // 20 s at 2 s: every sample is there although the connection dropped.
    assert!(csv_lines(&out, "control", 1) >= 10, "{}", csv_lines(&out, "control", 1));
    assert!(code == Some(0) || code == Some(1), "{text}");
    no_vm_left(&env);
}

#[test]
fn sigint_keeps_results_and_resume_finishes() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("res");
    let child = start_experiment(&env, &out, &["--duration", "12", "--iterations", "2"]);
    // Let run 1 finish and run 2 start, then Ctrl-C.
    let start = Instant::now();
    while !out.join("scx_simple/custom-churn/control/run1.json").exists() {
        assert!(start.elapsed() < Duration::from_secs(180), "run 1 never finished");
        std::thread::sleep(Duration::from_millis(300));
    }
    wait_for_samples(&env, 3, Duration::from_secs(300));
    wait_for_host_lines(&out, "test", 1, 2, Duration::from_secs(60));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let (code, text) = finish(child);
    assert_eq!(code, Some(130), "{text}");
    let g = out.join("scx_simple/custom-churn");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(g.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["status"], "interrupted");
    let runs = m["runs"].as_array().unwrap();
    assert_eq!(runs[0]["status"], "ok");
    assert!(runs.iter().any(|r| r["status"] == "interrupted"), "{m}");
    assert!(csv_lines(&out, "test", 1) >= 2, "the interrupted run's samples are flushed");
    no_vm_left(&env);
    let first = std::fs::read(g.join("control/run1.csv")).unwrap();

    // --resume: run 1 is not redone, the rest is.
    let o = env.run(&[
        "experiment", "scx_simple", "custom-churn", "--config", CFG, "--out", out.to_str().unwrap(),
        "--duration", "12", "--iterations", "2", "--resume",
    ]);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(o.status.code() == Some(0) || o.status.code() == Some(1), "{text}");
    assert_eq!(text.matches("done before, skipped").count(), 1, "{text}");
    assert_eq!(std::fs::read(g.join("control/run1.csv")).unwrap(), first, "finished run untouched");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(g.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["status"], "complete");
    assert_eq!(m["runs"].as_array().unwrap().len(), 4);
    assert!(m["runs"].as_array().unwrap().iter().all(|r| r["status"] == "ok"), "{m}");
    no_vm_left(&env);
}
