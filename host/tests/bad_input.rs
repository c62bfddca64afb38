//! Bad input and bad circumstances, each answered with one line naming the
//! problem and the fix, a non-zero exit, nothing lost and nothing left
//! running: downloads with the wrong sha256, a stale run directory, a missing
//! tool, a scheduler ejected mid-run, a full disk.

mod common;
use common::*;
use std::io::{Read, Write};
use std::path::Path;

/// Serve one file over HTTP on loopback for `n` requests.
fn serve(body: Vec<u8>, n: usize) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(n) {
            let mut s = s.unwrap();
            let mut req = [0u8; 2048];
            let _ = s.read(&mut req);
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = s.write_all(&body);
        }
    });
    port
}

#[test]
fn kernel_url_is_checked_against_its_sha256() {
    let env = Env::new();
    let kernel = env.ok(&["kernel", "path"]).trim().to_string();
    let bytes = std::fs::read(&kernel).unwrap();
    let good = sha256(Path::new(&kernel));
    let port = serve(bytes, 2);
    let url = format!("http://127.0.0.1:{port}/bzImage");
    let wrong = "0".repeat(64);
    let run = |args: &[&str]| env.cmd().args(args).output().unwrap();
    let o = run(&["up", "--name", "dl1", "--kernel", &url, "--kernel-sha256", &wrong]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&format!("has sha256 {good}, expected {wrong}")), "{e}");
    // Progress lines may precede it; the error itself is the one last line.
    assert!(e.trim().lines().last().unwrap().starts_with("error: "), "{e}");
    assert_eq!(e.lines().filter(|l| l.starts_with("error")).count(), 1, "{e}");
    assert!(!qemu_running("dl1"));
    // The same URL with the right sha256 boots.
    let o = run(&["up", "--name", "dl1", "--kernel", &url, "--kernel-sha256", &good]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    env.ok(&["down", "dl1"]);
}

#[test]
fn stale_run_directory_is_reported_and_cleaned() {
    let env = Env::new();
    env.ok(&["up", "--name", "stale1"]);
    let pid = env.vm_json("stale1")["pid"].as_i64().unwrap() as i32;
    // QEMU dies without `down` (a crash): its run directory stays behind.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    for _ in 0..50 {
        if !qemu_running("stale1") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let l = env.ok(&["list"]);
    assert!(l.contains("stale1") && l.contains("stale"), "{l}");
    let o = env.run(&["ssh", "stale1", "--", "true"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
    // `up` with the same name cleans it up and says so.
    let o = env.run(&["up", "--name", "stale1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("removing the stale run directory"), "{}", stderr(&o));
    env.ok(&["down", "stale1"]);
    // And `down` of a stale one removes it.
    env.ok(&["up", "--name", "stale2"]);
    let pid = env.vm_json("stale2")["pid"].as_i64().unwrap() as i32;
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let t = std::time::Instant::now();
    while qemu_running("stale2") {
        assert!(t.elapsed() < std::time::Duration::from_secs(10), "QEMU survived SIGKILL");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let d = env.ok(&["down", "stale2"]);
    assert!(d.contains("stale run directory"), "{d}");
    assert!(!env.vm_dir("stale2").exists());
}

#[test]
fn missing_mmdebstrap_names_the_package() {
    let env = Env::new();
    let o = env.cmd().args(["image", "build", "--force"]).env("PATH", "/nonexistent").output().unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("apt-get install mmdebstrap"), "{}", stderr(&o));
}

#[test]
fn scheduler_ejection_is_recorded_and_later_runs_are_unaffected() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("res");
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/quick-tcg.yaml");
    let o = env.run(&[
        "experiment", "scx_simple", "custom-churn", "12", "1", "--config", cfg, "--out", out.to_str().unwrap(),
        "--inject-error-after", "4",
    ]);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert_eq!(o.status.code(), Some(1), "the verdict fails, the tool does not: {text}");
    let g = out.join("scx_simple/custom-churn");
    let c: serde_json::Value = serde_json::from_slice(&std::fs::read(g.join("control/run1.json")).unwrap()).unwrap();
    assert_eq!(c["status"], "failed", "{c}");
    assert!(c["exit_kind"].as_str().unwrap().contains("ERROR"), "{c}");
    assert!(c["exit_reason"].as_str().unwrap().contains("injected error"), "{c}");
    let tst: serde_json::Value = serde_json::from_slice(&std::fs::read(g.join("test/run1.json")).unwrap()).unwrap();
    assert_eq!(tst["status"], "ok", "the next run is unaffected: {tst}");
    assert!(text.contains("FAIL no_scheduler_error"), "{text}");
}

#[test]
fn full_disk_while_writing_results_fails_cleanly() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("tiny");
    std::fs::create_dir_all(&out).unwrap();
    // 48 KiB: room for the manifest and a few files, not for a whole run.
    let m = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", "size=48k", "tmpfs"]).arg(&out).status().unwrap();
    assert!(m.success(), "mount tmpfs (tests run as root)");
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/quick-tcg.yaml");
    let o = env.run(&["experiment", "scx_simple", "custom-churn", "8", "1", "--config", cfg, "--out", out.to_str().unwrap()]);
    let e = stderr(&o);
    let _ = std::process::Command::new("umount").arg(&out).status();
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(e.contains("disk full") || e.contains("No space left"), "{e}");
    let left: Vec<_> = std::fs::read_dir(env.state.path().join("vms")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(left.is_empty(), "VMs left behind: {left:?}");
}
