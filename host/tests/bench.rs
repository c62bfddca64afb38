//! `scx-vmctl bench --short --json F` in a real TCG guest: the JSON is
//! complete and its counts add up. No timing thresholds: these machines are
//! shared, so only consistency is checked, never speed.

mod common;
use common::*;
use serde_json::Value;

fn num(v: &Value, path: &str) -> f64 {
    let mut cur = v;
    for k in path.split('.') {
        cur = match k.parse::<usize>() {
            Ok(i) => &cur[i],
            Err(_) => &cur[k],
        };
    }
    cur.as_f64().unwrap_or_else(|| panic!("{path} is not a number: {cur}"))
}

fn no_process_mentions(dir: &std::path::Path) -> bool {
    let want = dir.display().to_string();
    std::fs::read_dir("/proc").unwrap().flatten().all(|e| {
        std::fs::read(e.path().join("cmdline")).map(|c| !String::from_utf8_lossy(&c).contains(&want)).unwrap_or(true)
    })
}

fn check_count(r: &Value) {
    let c = &r["count"];
    assert_eq!(num(r, "count.entries"), 16384.0);
    for way in ["agent_batch", "agent_next_key", "bpftool", "kernel_elem_count"] {
        assert_eq!(num(c, &format!("{way}.count")), 16384.0, "{way} miscounted: {c}");
        assert!(num(c, &format!("{way}.timings.n")) >= 1.0);
        assert!(num(c, &format!("{way}.timings.median_ms")) > 0.0);
    }
    assert!(num(c, "bpftool_output_bytes") > 0.0);
    assert!(num(c, "speedup").is_finite() && num(c, "speedup") > 0.0);
}

fn check_sampler(r: &Value) {
    let s = &r["sampler"];
    assert_eq!(s["ops_name"], "simple_control");
    assert_eq!(num(s, "samples"), 3.0);
    assert_eq!(num(s, "cpu_per_sample.n"), 3.0);
    assert!(num(s, "map_entries_min") >= 16384.0, "the map was not grown: {s}");
    assert!(num(s, "span_ns") > 0.0 && num(s, "process_cpu_ns") > 0.0);
    assert!(num(s, "vcpu_percent").is_finite());
    assert!(num(s, "count_cpu.n") >= 1.0);
}

fn check_scan(r: &Value) {
    let sizes = r["scan"]["sizes"].as_array().expect("scan.sizes");
    let got: Vec<f64> = sizes.iter().map(|s| num(s, "size")).collect();
    assert_eq!(got, vec![1024.0, 16384.0]);
    for z in sizes {
        let size = num(z, "size");
        let stale = num(z, "stale");
        assert_eq!(stale, size / 2.0);
        for m in ["helper", "bpfscan"] {
            let t = z["throughput"].as_array().unwrap().iter().find(|t| t["method"] == m).expect("throughput per method");
            assert_eq!(num(t, "evicted"), stale, "{m} at {size}: {t}");
            assert_eq!(num(t, "left"), size - stale);
            assert_eq!(num(t, "visited"), size);
            assert!(!t["calls_ns"].as_array().unwrap().is_empty());
            let w = z["sweep"].as_array().unwrap().iter().find(|t| t["method"] == m).expect("sweep per method");
            assert_eq!(num(w, "evicted") + num(w, "left"), size, "{m} sweep at {size}: {w}");
            assert!(num(w, "evicted") <= stale && num(w, "calls") >= 1.0);
            assert!(num(w, "worst_call_ns") >= num(w, "p99_call_ns"));
        }
        for w in z["drain"].as_array().expect("drain sweeps") {
            // all stale: both methods evict every entry, neither can stall
            assert_eq!(num(w, "evicted"), size, "all-stale sweep at {size}: {w}");
            assert_eq!((num(w, "left"), &w["complete"]), (0.0, &Value::Bool(true)), "{w}");
        }
        for w in z["overrun"].as_array().expect("overrun sweeps") {
            let rounds = num(w, "rounds");
            assert!(rounds >= 1.0 && num(w, "evicted") <= stale * rounds, "{w}");
            assert!(num(w, "quiet_calls") <= num(w, "calls"));
            if w["method"] == "helper" {
                assert_eq!(num(w, "evicted"), stale * rounds, "the helper finishes every round: {w}");
            }
        }
        assert_eq!((z["drain"].as_array().unwrap().len(), z["overrun"].as_array().unwrap().len()), (2, 2));
        let h = z["sweep"].as_array().unwrap().iter().find(|t| t["method"] == "helper").unwrap();
        assert_eq!(h["complete"], true, "the helper's cursor must finish every sweep: {h}");
        assert_eq!(num(h, "evicted"), stale);
        let v = &z["versus"];
        for k in ["throughput_ratio", "sweep_ratio", "drain_ratio", "helper_entry_ns", "margin_ns"] {
            assert!(num(v, k).is_finite() && num(v, k) > 0.0, "versus.{k}: {v}");
        }
        assert!(v["within_margin"].is_boolean());
    }
}

fn check_workload_and_overhead(r: &Value) {
    let w = &r["workload"];
    assert_eq!(w["workload"], "hackbench");
    let n = num(w, "iterations");
    assert_eq!(n, 2.0);
    let values = |side: &str| w[side]["values"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect::<Vec<_>>();
    let (c, t) = (values("control"), values("test"));
    assert_eq!((c.len() + t.len()) as f64 + num(w, "failed_runs"), 2.0 * n, "{w}");
    assert!(c.iter().chain(&t).all(|x| *x > 0.0));
    let group = std::path::PathBuf::from(w["results_dir"].as_str().expect("results kept beside the JSON"));
    assert!(group.join("manifest.json").is_file(), "{}", group.display());

    let o = &r["overhead"];
    let runs = o["runs"].as_array().unwrap();
    assert_eq!(runs.len() as f64, 2.0 * n);
    for run in runs {
        assert!(num(run, "wall_s") >= num(o, "duration_s"), "{run}");
        assert!(num(run, "boot_s") > 0.0 && num(run, "setup_s") > 0.0);
        let parts = num(run, "boot_s") + num(run, "setup_s") + num(run, "workload_s") + num(run, "pull_s");
        assert!(parts <= num(run, "wall_s") + 0.01, "parts add up to more than the wall time: {run}");
    }
    assert!(num(o, "boot_s.n") >= 1.0 && num(o, "bench_vm_boot.qemu_to_ssh_s") > 0.0);
    // (e) side by side: the same experiment with each reset mode, each run with the reset asked for
    let resets = o["resets"].as_array().expect("overhead.resets");
    let modes: Vec<&str> = resets.iter().map(|c| c["reset"].as_str().unwrap()).collect();
    assert_eq!(modes, ["snapshot", "overlay", "in-guest"]);
    for c in resets {
        let runs = c["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2, "{c}");
        assert_eq!(num(c, "other_reset_runs"), 0.0, "{c}");
        for run in runs {
            assert_eq!(run["status"], "ok", "{c}");
            assert!(num(run, "wall_s") >= num(c, "duration_s"), "{run}");
        }
        assert_eq!(num(c, "overhead_s.n"), 2.0, "{c}");
    }
    assert!(num(o, "bench_vm_boot.kernel_s") > 0.0, "serial log timestamps not found: {o}");
}

/// `--peers`: the same bzImage booted by virtme-ng (from PyPI), boots
/// alternated; every boot timed, none left running.
fn check_peers(r: &Value) {
    let p = &r["peers"];
    assert_eq!(p["vng_version"], "1.42", "{p}");
    for side in ["ours_s", "vng_s"] {
        let xs = p[side].as_array().unwrap_or_else(|| panic!("peers.{side}: {p}"));
        assert_eq!(xs.len(), 2, "{side}: {p}");
        assert!(xs.iter().all(|x| x.as_f64().unwrap() > 0.0), "{side}: {p}");
    }
    assert_eq!(num(p, "ours.n"), 2.0);
    assert_eq!(num(p, "vng.n"), 2.0);
    assert!(num(p, "vng_over_ours") > 0.0);
    let cmd = p["vng_command"].as_str().unwrap();
    assert!(cmd.starts_with("vng --run BZIMAGE") && cmd.contains("--exec"), "{cmd}");
    assert_eq!(p["vng_exit"].as_array().map(|a| a.len()), Some(2), "{p}");
    assert!(std::path::Path::new(p["bzimage"].as_str().unwrap()).is_file(), "{p}");
    let vng_left = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline")).map(|c| String::from_utf8_lossy(&c).contains("virtme")).unwrap_or(false)
    });
    assert!(!vng_left, "a vng process or its QEMU is still running");
}

#[test]
fn bench_short_writes_complete_consistent_json() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = env.ok(&["bench", "--short", "--peers", "--json", json.to_str().unwrap()]);
    assert!(out.contains("goals") && out.contains("(a) counting") && out.contains("vng / ours"), "{out}");
    let r: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["bench_version"], 1);
    assert_eq!(r["mode"], "short");
    let m = &r["machine"];
    assert!(!m["accel"].as_str().unwrap().is_empty() && !m["qemu_version"].as_str().unwrap().is_empty());
    assert!(num(m, "guest_cpus") >= 1.0 && !m["guest_kernel"].as_str().unwrap().is_empty());
    check_count(&r);
    check_sampler(&r);
    check_scan(&r);
    check_workload_and_overhead(&r);
    check_peers(&r);
    let goals = r["goals"].as_array().unwrap();
    let ids: Vec<&str> = goals.iter().map(|g| g["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "count_speedup",
            "sampler_cpu",
            "scan_speed_unbounded",
            "scan_speed_large",
            "scan_speed_budgeted",
            "scan_overrun_20us",
            "scan_overrun",
            "run_overhead",
            "boot_to_ssh"
        ]
    );
    assert!(goals.iter().all(|g| g["met"].is_boolean() && g["value"].is_number()));
    assert!(no_process_mentions(env.state.path()), "a QEMU of the bench is still running");
}
