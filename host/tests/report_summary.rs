//! `report` on a small result tree: the numbers in summary.json, worked out
//! by hand from the samples in report_util (t = 0, 2, ..., 10 s; the late
//! window is t >= 5 s, i.e. the samples at 6, 8 and 10 s).

mod report_util;

use serde_json::Value;

use scx_vmctl::report::{self, Status};

/// t(0.975, 1) = tan(0.475 pi), the 95% quantile for two runs.
const T1: f64 = 12.706204736174707;

fn close(v: &Value, want: f64) {
    let got = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "got {got}, want {want}");
}

fn summarize_written() -> (tempfile::TempDir, Value) {
    let t = tempfile::tempdir().unwrap();
    report_util::good_group(t.path());
    report_util::bad_group(t.path());
    let s = report::summarize(t.path()).unwrap();
    report::write_all(t.path(), &s).unwrap();
    let json: Value = serde_json::from_str(&std::fs::read_to_string(t.path().join("summary.json")).unwrap()).unwrap();
    (t, json)
}

fn variant<'a>(g: &'a Value, name: &str) -> &'a Value {
    g["variants"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap()
}

fn criterion<'a>(g: &'a Value, name: &str) -> &'a Value {
    g["criteria"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap()
}

#[test]
fn report_top_level_and_groups() {
    let (_t, j) = summarize_written();
    assert_eq!(j["schema_version"], 1);
    assert_eq!(j["verdict"], "FAIL");
    // Good group: 3 + 3 (test) + 3 (bpfscan) rows, all PASS; bad group: 2 PASS, 4 FAIL.
    assert_eq!(j["counts"], serde_json::json!({"pass": 11, "fail": 4, "skip": 0}));
    let groups = j["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["path"], "scx_nest/stress-ng");
    assert_eq!(groups[1]["path"], "scx_simple/hackbench");
    assert_eq!(groups[1]["kernel"], "6.12.57");
    assert_eq!(groups[0]["kernel"], Value::Null);
    assert_eq!(groups[1]["accel"], serde_json::json!(["tcg,thread=single"]));
    assert_eq!(groups[1]["reset"], serde_json::json!(["overlay"]));
}

#[test]
fn report_control_figures() {
    let (_t, j) = summarize_written();
    let c = variant(&j["groups"][1], "control");
    assert_eq!(c["files_found"], 2);
    assert_eq!(c["samples"], 12);
    assert_eq!(c["map_entries_max"], 350);
    // (100+140+...+300 + 100+150+...+350) / 12 = (1200 + 1350) / 12
    close(&c["map_entries_mean"], 212.5);
    assert_eq!(c["map_bytes_max"], 1048576);
    // Slopes 20 and 25 entries/s: mean 22.5, sd sqrt(12.5), half width t(1) * sd / sqrt 2 = 12.7062 * 2.5.
    close(&c["slope_per_s"]["mean"], 22.5);
    close(&c["slope_per_s"]["sd"], 12.5f64.sqrt());
    close(&c["slope_per_s"]["ci95_low"], 22.5 - T1 * 2.5);
    close(&c["slope_per_s"]["ci95_high"], 22.5 + T1 * 2.5);
    close(&c["late_slope_per_s"]["mean"], 22.5);
    assert_eq!(c["evictions_total"], 0);
    assert_eq!(c["eviction_cost"]["evictions_per_scan"], Value::Null);
    // MemFree drops 5000 and 6000 KiB; SUnreclaim grows 500 and 600 KiB.
    assert_eq!(c["memory"]["mem_free_kb_min"], 494000);
    close(&c["memory"]["mem_free_kb_drop"]["mean"], 5500.0);
    assert_eq!(c["memory"]["sunreclaim_kb_max"], 40600);
    close(&c["memory"]["sunreclaim_kb_growth"]["mean"], 550.0);
    // hackbench 2.0 and 2.2 s: mean 2.1, sd sqrt(0.02), half t(1) * 0.1.
    let tp = &c["throughput"];
    assert_eq!(tp["metric"], "hackbench_time_s");
    assert_eq!(tp["higher_is_better"], false);
    assert_eq!(tp["n"], 2);
    close(&tp["mean"], 2.1);
    close(&tp["ci95_low"], 2.1 - T1 * 0.1);
    close(&tp["ci95_high"], 2.1 + T1 * 0.1);
    // Per run.
    let r1 = &c["runs"][0];
    assert_eq!(r1["iteration"], 1);
    assert_eq!(r1["status"], "ok");
    assert_eq!(r1["samples"], 6);
    close(&r1["elapsed_s"], 10.0);
    close(&r1["slope_per_s"], 20.0);
    close(&r1["late_slope_per_s"], 20.0);
    close(&r1["late_mean"], 260.0); // (220 + 260 + 300) / 3
    close(&r1["late_rise"], 80.0); // 20 entries/s over 6..10 s
    assert_eq!(r1["map_entries_first"], 100);
    assert_eq!(r1["map_entries_last"], 300);
    close(&r1["map_entries_mean"], 200.0);
    assert_eq!(r1["splats"], 0);
    assert_eq!(r1["csv_truncated_line"], Value::Null);
}

#[test]
fn report_test_and_bpfscan_figures() {
    let (_t, j) = summarize_written();
    let g = &j["groups"][1];
    let t = variant(g, "test");
    assert_eq!(t["map_entries_max"], 170);
    // (100+160+170+165+170+165 + 100+150+160*4) / 12 = (930 + 890) / 12
    close(&t["map_entries_mean"], 1820.0 / 12.0);
    // Whole-run slopes: run1 350/70 = 5, run2 330/70; late slopes both 0.
    close(&t["runs"][0]["slope_per_s"], 5.0);
    close(&t["runs"][1]["slope_per_s"], 330.0 / 70.0);
    close(&t["slope_per_s"]["mean"], (5.0 + 330.0 / 70.0) / 2.0);
    close(&t["late_slope_per_s"]["mean"], 0.0);
    close(&t["runs"][0]["late_mean"], 500.0 / 3.0);
    // Counters: evictions 300 + 240, scans 10 + 10, one timeout, longest scan 52 us.
    assert_eq!(t["evictions_total"], 540);
    assert_eq!(t["scans_total"], 20);
    assert_eq!(t["scan_timeouts_total"], 1);
    let cost = &t["eviction_cost"];
    close(&cost["evictions_per_scan"], 27.0);
    assert_eq!(cost["scan_max_ns"], 52000);
    close(&cost["scan_timeout_share"], 0.05);
    // (10 x 52000 + 10 x 40000) ns over 20 s of runs.
    close(&cost["scan_time_share_max"], 4.6e-5);
    close(&t["memory"]["mem_free_kb_drop"]["mean"], 550.0);
    close(&t["memory"]["sunreclaim_kb_growth"]["mean"], 55.0);
    close(&t["throughput"]["mean"], 2.2);
    assert_eq!(t["verifier"][0]["prog"], "simple_dispatch");
    assert_eq!(t["verifier"][0]["insns"], 1543);
    assert_eq!(t["verifier"][0]["states"], 121);

    let b = variant(g, "bpfscan");
    assert_eq!(b["map_entries_max"], 140);
    assert_eq!(b["evictions_total"], 100);
    close(&b["eviction_cost"]["scan_time_share_max"], 9.5e-5);
    assert_eq!(b["throughput"]["n"], 1);
    assert_eq!(b["throughput"]["ci95_low"], Value::Null);

    // test vs control: 2.2 / 2.1 - 1, delta-method CI with Welch df 1.996 -> t(1).
    let changes = g["throughput_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2);
    let tc = &changes[0];
    assert_eq!(tc["variant"], "test");
    assert_eq!(tc["against"], "control");
    close(&tc["relative_change"], 2.2 / 2.1 - 1.0);
    close(&tc["ci95_low"], -0.8286714974093106);
    close(&tc["ci95_high"], 0.9239095926474059);
    assert_eq!(tc["assessment"], "no significant change");
    assert_eq!(changes[1]["variant"], "bpfscan");
    close(&changes[1]["relative_change"], 2.05 / 2.1 - 1.0);
    assert_eq!(changes[1]["assessment"], "no interval (n < 2)");
}

#[test]
fn report_verdicts_of_the_good_group() {
    let (_t, j) = summarize_written();
    let g = &j["groups"][1];
    let names: Vec<_> = g["criteria"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, [
        "control_grows", "test_plateaus", "test_evictions_positive", "test_max_below_control_max",
        "bpfscan_plateaus", "bpfscan_evictions_positive", "bpfscan_max_below_control_max",
        "no_scheduler_error", "no_kernel_splat",
    ]);
    for c in g["criteria"].as_array().unwrap() {
        assert_eq!(c["status"], "PASS", "{c}");
    }
    assert_eq!(criterion(g, "test_max_below_control_max")["reason"], "test max 170 < control max 350 entries");
    assert_eq!(criterion(g, "test_evictions_positive")["reason"], "540 evictions in 2 runs (2 of them evicted), 20 scans");
    assert_eq!(criterion(g, "control_grows")["reason"], "2/2 runs grow, mean slope 22.5 entries/s, max 350 entries");
    // 5 dmesg logs and one serial log, the serial one with a user-space "WARNING:" line.
    assert_eq!(criterion(g, "no_kernel_splat")["reason"], "6 logs scanned, no splat");
    assert_eq!(criterion(g, "test_plateaus")["variant"], "test");
    assert_eq!(criterion(g, "no_scheduler_error")["variant"], Value::Null);
}

#[test]
fn report_verdicts_of_the_bad_group() {
    let (_t, j) = summarize_written();
    let g = &j["groups"][0];
    let status = |n: &str| criterion(g, n)["status"].as_str().unwrap().to_string();
    assert_eq!(status("control_grows"), "PASS");
    assert_eq!(status("test_max_below_control_max"), "PASS");
    assert_eq!(status("test_plateaus"), "FAIL");
    assert_eq!(status("test_evictions_positive"), "FAIL");
    assert_eq!(status("no_scheduler_error"), "FAIL");
    assert_eq!(status("no_kernel_splat"), "FAIL");
    assert!(g["criteria"].as_array().unwrap().iter().all(|c| !c["name"].as_str().unwrap().starts_with("bpfscan")));
    // Late slope 15 vs control's 25 (60%), rise 15 x 4 = 60 at level (140+170+200)/3 = 170 (35.3%).
    assert_eq!(
        criterion(g, "test_plateaus")["reason"],
        "1 of 1 runs still grow; run1: late slope 15 entries/s is 60% of control's 25 (limit 10%) and late-window rise 60 is 35.3% of its level 170 (limit 10%); \
         not capacity-bound: only 0% of scans ran out of budget, so the other passes finished, evicting all they found older than max age; \
         what grows was younger than that at each pass, or the cleanup skips entries; \
         cleanup: 0 evictions/s (0 per scan, 0.500 scans/s, 0% of scans timed out), entries go stale at 25/s (control's late growth)"
    );
    assert_eq!(criterion(g, "test_evictions_positive")["reason"], "no evictions in 1 runs (6 scans)");
    assert_eq!(
        criterion(g, "no_scheduler_error")["reason"],
        "1 problem(s); first: test/run1 failed: scheduler ejected: runnable task stall"
    );
    assert_eq!(
        criterion(g, "no_kernel_splat")["reason"],
        "2 splat(s); first: test/run1.dmesg.log:4 [warning] WARNING: CPU: 1 PID: 377 at kernel/sched/ext.c:1789 dispatch_enqueue+0x1a2/0x3c0"
    );
    let splats = g["splats"].as_array().unwrap();
    assert_eq!(splats[1]["pattern"], "sched_ext_ejected");
    assert_eq!(splats[1]["line"], 12);
    assert_eq!(splats[1]["lines"].as_array().unwrap().len(), 5);
    assert_eq!(splats[1]["lines"][1], "[   33.902018] sched_ext: nest: kworker/u8:2[61] failed to run for 30.144s");
    // The cut-off last CSV line is dropped and noted; the failed run's metric is left out.
    let c = variant(g, "control");
    assert_eq!(c["runs"][0]["csv_truncated_line"], 8);
    assert_eq!(c["runs"][0]["samples"], 6);
    assert_eq!(g["notes"][0], "control/run1.csv: cut-off line 8 dropped (run ended mid-write)");
    assert_eq!(variant(g, "test")["throughput"], Value::Null);
    assert_eq!(g["throughput_changes"], serde_json::json!([]));
    assert_eq!(variant(g, "test")["runs"][0]["exit_kind"], "ERROR_STALL");
}

#[test]
fn report_written_files_and_api() {
    let (t, _) = summarize_written();
    for f in ["summary.json", "summary.txt", "report.html", "junit.xml"] {
        assert!(t.path().join(f).is_file(), "{f}");
        // Each group directory gets its own set too.
        assert!(t.path().join("scx_simple/hackbench").join(f).is_file(), "{f}");
    }
    let s = report::summarize(t.path()).unwrap();
    assert!(!s.all_pass());
    assert_eq!(s.exit_code(), scx_vmctl::exit::CRITERION_FAILED);
    let good = report::summarize(&t.path().join("scx_simple/hackbench")).unwrap();
    assert!(good.all_pass());
    assert_eq!(good.exit_code(), scx_vmctl::exit::OK);
    assert_eq!(good.groups[0].path, ".");
    assert_eq!(good.groups[0].scheduler, "scx_simple");
    // Per-group summary.json equals summarizing that group alone (bar the path).
    let per: report::Summary = report::Summary::load(&t.path().join("scx_simple/hackbench/summary.json")).unwrap();
    assert_eq!(per.groups[0].criteria, good.groups[0].criteria);
    assert_eq!(per.verdict, Status::Pass);

    let txt = std::fs::read_to_string(t.path().join("summary.txt")).unwrap();
    for want in [
        "=== scx_simple / hackbench (kernel 6.12.57) ===",
        "control:\n  files found: 2\n  max map entries: 350\n  mean map entries: 212.5\n  total evictions: 0\n",
        "test:\n  files found: 2\n  max map entries: 170\n  mean map entries: 151.7\n  total evictions: 540\n",
        "eviction cost: 20 scans, 27 evictions/scan, longest scan 52 us, 5% of scans timed out",
        "throughput test vs control: hackbench_time_s +4.76% (95% CI -82.9% .. +92.4%): no significant change",
        "  FAIL test_plateaus: 1 of 1 runs still grow;",
        "verifier: simple_dispatch 1543 insns, 121 states",
    ] {
        assert!(txt.contains(want), "summary.txt lacks {want:?}:\n{txt}");
    }
    let term = s.to_string();
    assert!(term.contains("6.12.57/scx_simple/hackbench: PASS (9 pass, 0 fail, 0 skip)"), "{term}");
    assert!(term.contains("scx_nest/stress-ng: FAIL (2 pass, 4 fail, 0 skip)\n  FAIL test_plateaus: "), "{term}");
    assert!(term.ends_with("verdict: FAIL (11 pass, 4 fail, 0 skip)"), "{term}");
    let md = report::summary_markdown(&s);
    assert!(md.contains("| scx_nest/stress-ng | FAIL | PASS | FAIL | FAIL | PASS | FAIL | FAIL |"), "{md}");
}
