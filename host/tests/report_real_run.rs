//! `report` on a result set taken from a real run (scx_simple, custom-churn,
//! TCG, config/quick-tcg.yaml, 30 s): the numbers must be the ones the CSV
//! files hold (checked by hand: 16 samples each, control max 9695 and mean
//! 4852.6875, test max 788 and mean 683.75, 9047 evictions in 118 scans).

use std::process::Command;

#[test]
fn report_of_a_real_run_gives_its_numbers() {
    let t = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real-run");
    // Work on a copy: report writes its files beside the results.
    let copy = t.path().join("results");
    let o = Command::new("cp").arg("-r").arg(&src).arg(&copy).status().unwrap();
    assert!(o.success());
    let group = copy.join("scx_simple/custom-churn");
    let out = Command::new(env!("CARGO_BIN_EXE_scx-vmctl")).arg("report").arg(&group).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(group.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["verdict"], "PASS");
    let g = &s["groups"][0];
    assert_eq!(g["scheduler"], "scx_simple");
    assert_eq!(g["accel"], serde_json::json!(["tcg,thread=single"]));
    let var = |name: &str| g["variants"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap().clone();
    let (c, tv) = (var("control"), var("test"));
    assert_eq!(c["samples"], 16);
    assert_eq!(c["map_entries_max"], 9695);
    assert_eq!(c["map_entries_mean"], 4852.6875);
    assert_eq!(c["evictions_total"], 0);
    assert_eq!(tv["map_entries_max"], 788);
    assert_eq!(tv["map_entries_mean"], 683.75);
    assert_eq!(tv["evictions_total"], 9047);
    assert_eq!(tv["scans_total"], 118);
    for crit in g["criteria"].as_array().unwrap() {
        assert_eq!(crit["status"], "PASS", "{crit}");
    }
    let text = std::fs::read_to_string(group.join("summary.txt")).unwrap();
    assert!(text.contains("max map entries: 9695") && text.contains("total evictions: 9047"), "{text}");
    for f in ["report.html", "junit.xml"] {
        assert!(group.join(f).exists(), "{f}");
    }
}
