//! Odd and hostile inputs: the report either copes (a crashed run) or stops
//! with an error that names the file.

mod report_util;

use report_util::{csv_text, put, run_json};
use scx_contract::sample::HEADER;
use scx_vmctl::report::{self, Status};

fn err_of(dir: &std::path::Path) -> String {
    format!("{:#}", report::summarize(dir).unwrap_err())
}

#[test]
fn report_wrong_header_names_file_and_line() {
    let t = tempfile::tempdir().unwrap();
    let g = report_util::good_group(t.path());
    // An older header without map_bytes.
    put(&g.join("test/run2.csv"), "elapsed_s,map_entries,mem_free_kb\n0.000,100,500000\n");
    let err = err_of(t.path());
    assert!(err.contains("test/run2.csv:1: unexpected CSV header"), "{err}");
    assert!(err.contains(HEADER), "{err}");
}

#[test]
fn report_garbage_in_the_middle_names_file_and_line() {
    let t = tempfile::tempdir().unwrap();
    let g = report_util::good_group(t.path());
    let mut text = csv_text(&[(0.0, 1, 1, 1, 0, 0, 0, 0), (2.0, 2, 1, 1, 0, 0, 0, 0)]);
    text = text.replacen("2.000,2,", "2.000,two,", 1) + "4.000,3,1048576,1,1,0,0,0,0,enabled,150\n";
    put(&g.join("control/run1.csv"), &text);
    let err = err_of(t.path());
    assert!(err.contains("control/run1.csv:3: column map_entries is not a count: \"two\""), "{err}");
}

#[test]
fn report_binary_junk_and_bad_json_are_errors_naming_the_file() {
    let t = tempfile::tempdir().unwrap();
    let g = report_util::good_group(t.path());
    std::fs::write(g.join("test/run1.csv"), [0xff, 0xfe, 0x00, 0x41]).unwrap();
    assert!(err_of(t.path()).contains("test/run1.csv: not UTF-8"));
    report_util::good_group(t.path());
    put(&g.join("bpfscan/run1.json"), "{\"status\": \"ok\",");
    assert!(err_of(t.path()).contains("bpfscan/run1.json: not a valid run<N>.json"));
}

#[test]
fn report_crashed_runs_are_tolerated() {
    let t = tempfile::tempdir().unwrap();
    let g = t.path().join("scx_flatcg/custom-churn");
    // control: cut off in the middle of a number, no newline.
    let rows: Vec<_> = (0..8).map(|i| (2.0 * i as f64, 100 + 30 * i, 1000, 100, 0, 0, 0, 0)).collect();
    put(&g.join("control/run1.csv"), &(csv_text(&rows) + "16.000,34"));
    put(&g.join("control/run1.json"), &run_json("scx_flatcg", "custom-churn", "control", 1, ("churn_ops", 10.0, true)));
    // test: died before the header was complete; its JSON says so.
    put(&g.join("test/run1.csv"), "elapsed_s,map_entries,map_by");
    let mut j: serde_json::Value =
        serde_json::from_str(&run_json("scx_flatcg", "custom-churn", "test", 1, ("churn_ops", 10.0, true))).unwrap();
    j["status"] = "failed".into();
    j["failure"] = "guest died: Kernel panic - not syncing: Fatal exception".into();
    put(&g.join("test/run1.json"), &j.to_string());
    put(&g.join("test/run1.serial.log"), "[   5.1] Kernel panic - not syncing: Fatal exception\n[   5.1] Kernel Offset: disabled\n");
    // test run2 has samples but no run2.json: it never finished.
    put(&g.join("test/run2.csv"), &csv_text(&rows[..3]));

    let s = report::summarize(t.path()).unwrap();
    let gs = &s.groups[0];
    let c = gs.variant("control").unwrap();
    assert_eq!(c.runs[0].stats.samples, 8);
    assert_eq!(c.runs[0].csv_truncated_line, Some(10));
    let tv = gs.variant("test").unwrap();
    assert_eq!(tv.runs[0].stats.samples, 0);
    assert_eq!(tv.runs[0].csv_truncated_line, Some(1));
    assert_eq!(tv.runs[1].status, "unknown");
    assert_eq!(gs.criterion("control_grows").unwrap().status, Status::Pass);
    let err = gs.criterion("no_scheduler_error").unwrap();
    assert_eq!(err.status, Status::Fail);
    assert!(err.reason.starts_with("2 problem(s); first: test/run1 failed: guest died"), "{}", err.reason);
    let splat = gs.criterion("no_kernel_splat").unwrap();
    assert_eq!(splat.status, Status::Fail);
    assert!(splat.reason.contains("test/run1.serial.log:1 [kernel_panic] Kernel panic - not syncing"), "{}", splat.reason);
    // test_plateaus is judged on run2 alone (3 samples: too short for a late window).
    assert_eq!(gs.criterion("test_plateaus").unwrap().status, Status::Skip);
    assert_eq!(gs.notes.len(), 2);
    // Writing still works; report.html shows the failure.
    report::write_all(t.path(), &s).unwrap();
    let html = std::fs::read_to_string(t.path().join("report.html")).unwrap();
    assert!(html.contains("Kernel panic - not syncing"));
}

#[test]
fn report_html_escapes_hostile_names_and_logs() {
    let t = tempfile::tempdir().unwrap();
    let g = t.path().join("<script>alert(1)").join("w&l");
    put(&g.join("control/run1.csv"), &csv_text(&[(0.0, 1, 1, 1, 0, 0, 0, 0)]));
    put(&g.join("control/run1.dmesg.log"), "[ 1.0] BUG: unable to handle page fault <img src=x onerror=alert(1)>\n");
    let s = report::summarize(t.path()).unwrap();
    report::write_all(t.path(), &s).unwrap();
    let html = std::fs::read_to_string(t.path().join("report.html")).unwrap();
    assert!(!html.contains("<script>") && !html.contains("<img"));
    assert!(html.contains("&lt;script&gt;alert(1)") && html.contains("w&amp;l"));
    let junit = std::fs::read_to_string(t.path().join("junit.xml")).unwrap();
    assert!(!junit.contains("<img"));
}

#[test]
fn report_empty_or_missing_directories() {
    let t = tempfile::tempdir().unwrap();
    let err = err_of(t.path());
    assert!(err.contains("no results found"), "{err}");
    let err = err_of(&t.path().join("nope"));
    assert!(err.contains("nope: no such directory"), "{err}");
    put(&t.path().join("file"), "x");
    assert!(err_of(&t.path().join("file")).contains("not a directory"));
}

#[test]
fn report_schema_version_is_checked_on_load() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("summary.json");
    put(&p, r#"{"schema_version": 99, "groups": []}"#);
    let err = format!("{:#}", report::Summary::load(&p).unwrap_err());
    assert!(err.contains("schema_version 99") && err.contains("summary.json"), "{err}");
    put(&p, r#"{"groups": []}"#);
    assert!(format!("{:#}", report::Summary::load(&p).unwrap_err()).contains("no schema_version"));
}
