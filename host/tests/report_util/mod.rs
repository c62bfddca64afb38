//! Builds small result trees (docs/results.md layout) for the report tests.
#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};

use scx_contract::sample::HEADER;

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// One sample: (elapsed_s, map_entries, mem_free_kb, sunreclaim_kb,
/// evictions, scans, scan_timeouts, scan_max_ns). map_bytes is fixed at
/// 1048576 (a preallocated map), sched_state `enabled`, nr_tasks 150.
pub type Row = (f64, u64, u64, u64, u64, u64, u64, u64);

pub fn csv_text(rows: &[Row]) -> String {
    let mut s = format!("{HEADER}\n");
    for &(t, e, free, sunr, ev, scans, to, max) in rows {
        s.push_str(&format!("{t:.3},{e},1048576,{free},{sunr},{ev},{scans},{to},{max},enabled,150,0,0,0\n"));
    }
    s
}

pub fn put(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

pub fn run_json(sched: &str, workload: &str, variant: &str, n: u32, metric: (&str, f64, bool)) -> String {
    serde_json::json!({
        "scheduler": sched, "workload": workload, "variant": variant, "iteration": n,
        "status": "ok", "failure": null, "exit_kind": "UNREG_USER", "exit_reason": "",
        "workload_metric": {"name": metric.0, "value": metric.1, "higher_is_better": metric.2},
        "duration_s": 10.0, "interval_s": 2.0, "started_unix": 1764000000 + n as i64 * 60,
        "accel": "tcg,thread=single", "reset": "overlay", "splats": []
    })
    .to_string()
}

/// Writes run<N>.csv, run<N>.json and a clean dmesg log for one run.
pub fn write_run(group: &Path, variant: &str, n: u32, rows: &[Row], json: &str) {
    let dir = group.join(variant);
    put(&dir.join(format!("run{n}.csv")), &csv_text(rows));
    put(&dir.join(format!("run{n}.json")), json);
    let clean = std::fs::read_to_string(data("dmesg_clean.log")).unwrap();
    put(&dir.join(format!("run{n}.dmesg.log")), &clean);
}

/// Group 1: `scx_simple/hackbench` on kernel 6.12.57 (from manifest.json),
/// control x2, test x2, bpfscan x1, every criterion passing. The numbers are
/// chosen so the expected figures can be worked out by hand (see
/// report_summary.rs).
pub fn good_group(root: &Path) -> PathBuf {
    let g = root.join("scx_simple/hackbench");
    let j = |v: &str, n: u32, x: f64| run_json("scx_simple", "hackbench", v, n, ("hackbench_time_s", x, false));
    put(&g.join("manifest.json"), r#"{"kernel": {"release": "6.12.57", "sha256": "ab12"}, "accel": "tcg,thread=single"}"#);
    write_run(&g, "control", 1, &[
        (0.0, 100, 500000, 40000, 0, 0, 0, 0),
        (2.0, 140, 499000, 40100, 0, 0, 0, 0),
        (4.0, 180, 498000, 40200, 0, 0, 0, 0),
        (6.0, 220, 497000, 40300, 0, 0, 0, 0),
        (8.0, 260, 496000, 40400, 0, 0, 0, 0),
        (10.0, 300, 495000, 40500, 0, 0, 0, 0),
    ], &j("control", 1, 2.0));
    write_run(&g, "control", 2, &[
        (0.0, 100, 500000, 40000, 0, 0, 0, 0),
        (2.0, 150, 498800, 40120, 0, 0, 0, 0),
        (4.0, 200, 497600, 40240, 0, 0, 0, 0),
        (6.0, 250, 496400, 40360, 0, 0, 0, 0),
        (8.0, 300, 495200, 40480, 0, 0, 0, 0),
        (10.0, 350, 494000, 40600, 0, 0, 0, 0),
    ], &j("control", 2, 2.2));
    write_run(&g, "test", 1, &[
        (0.0, 100, 500000, 40000, 0, 0, 0, 0),
        (2.0, 160, 499500, 40050, 20, 2, 0, 30000),
        (4.0, 170, 499400, 40060, 80, 4, 0, 45000),
        (6.0, 165, 499400, 40060, 150, 6, 1, 45000),
        (8.0, 170, 499400, 40060, 220, 8, 1, 52000),
        (10.0, 165, 499400, 40060, 300, 10, 1, 52000),
    ], &j("test", 1, 2.1));
    write_run(&g, "test", 2, &[
        (0.0, 100, 500000, 40000, 0, 0, 0, 0),
        (2.0, 150, 499600, 40040, 10, 2, 0, 25000),
        (4.0, 160, 499500, 40050, 60, 4, 0, 40000),
        (6.0, 160, 499500, 40050, 120, 6, 0, 40000),
        (8.0, 160, 499500, 40050, 180, 8, 0, 40000),
        (10.0, 160, 499500, 40050, 240, 10, 0, 40000),
    ], &j("test", 2, 2.3));
    write_run(&g, "bpfscan", 1, &[
        (0.0, 100, 500000, 40000, 0, 0, 0, 0),
        (2.0, 130, 499700, 40030, 10, 2, 0, 90000),
        (4.0, 140, 499600, 40040, 40, 4, 0, 90000),
        (6.0, 140, 499600, 40040, 60, 6, 0, 95000),
        (8.0, 140, 499600, 40040, 80, 8, 0, 95000),
        (10.0, 140, 499600, 40040, 100, 10, 0, 95000),
    ], &j("bpfscan", 1, 2.05));
    put(&g.join("control/run1.serial.log"), &std::fs::read_to_string(data("serial_clean.log")).unwrap());
    put(&g.join("test/verifier.json"), r#"[
      {"file_name": "scx_simple_test.bpf.o", "prog_name": "simple_dispatch", "verdict": "success", "total_insns": 1543, "total_states": 121, "peak_states": 98},
      {"file_name": "scx_simple_test.bpf.o", "prog_name": "simple_enqueue", "verdict": "success", "total_insns": 310, "total_states": 22, "peak_states": 22}
    ]"#);
    g
}

/// Group 2: `scx_nest/stress-ng`, one run per variant, where the test run
/// keeps growing, never evicts, was ejected for a stall and left a WARNING;
/// control's CSV ends in a cut-off line.
pub fn bad_group(root: &Path) -> PathBuf {
    let g = root.join("scx_nest/stress-ng");
    let control = csv_text(&[
        (0.0, 50, 600000, 30000, 0, 0, 0, 0),
        (2.0, 100, 599000, 30100, 0, 0, 0, 0),
        (4.0, 150, 598000, 30200, 0, 0, 0, 0),
        (6.0, 200, 597000, 30300, 0, 0, 0, 0),
        (8.0, 250, 596000, 30400, 0, 0, 0, 0),
        (10.0, 300, 595000, 30500, 0, 0, 0, 0),
    ]) + "12.001,35";
    put(&g.join("control/run1.csv"), &control);
    put(&g.join("control/run1.json"), &run_json("scx_nest", "stress-ng", "control", 1, ("bogo_ops_per_s", 1000.0, true)));
    put(&g.join("control/run1.dmesg.log"), &std::fs::read_to_string(data("dmesg_clean.log")).unwrap());
    put(&g.join("test/run1.csv"), &csv_text(&[
        (0.0, 50, 600000, 30000, 0, 1, 0, 1000),
        (2.0, 80, 599500, 30050, 0, 2, 0, 1000),
        (4.0, 110, 599000, 30100, 0, 3, 0, 1000),
        (6.0, 140, 598500, 30150, 0, 4, 0, 1000),
        (8.0, 170, 598000, 30200, 0, 5, 0, 1000),
        (10.0, 200, 597500, 30250, 0, 6, 0, 1000),
    ]));
    let mut j: serde_json::Value =
        serde_json::from_str(&run_json("scx_nest", "stress-ng", "test", 1, ("bogo_ops_per_s", 900.0, true))).unwrap();
    j["status"] = "failed".into();
    j["failure"] = "scheduler ejected: runnable task stall".into();
    j["exit_kind"] = "ERROR_STALL".into();
    j["exit_reason"] = "kworker/u8:2[61] failed to run for 30.144s".into();
    put(&g.join("test/run1.json"), &j.to_string());
    put(&g.join("test/run1.dmesg.log"), &std::fs::read_to_string(data("dmesg_stall.log")).unwrap());
    g
}
