//! A cleanup that cannot keep up, in a real guest: with a 1 us budget per
//! call the test variant evicts next to nothing while custom-churn's tasks
//! exit by the hundred per second, and `test_plateaus` must say so itself:
//! capacity-bound, the figures it achieved against the task exits, and the
//! setting to change (`cleanup.timeout_us`). One boot, a 16 s run.

mod common;
use common::*;

#[test]
fn a_starved_cleanup_is_called_capacity_bound() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let cfg = t.path().join("tiny-budget.yaml");
    std::fs::write(
        &cfg,
        "cleanup:\n  interval_ms: 500\n  timeout_us: 1\n  max_age_ms: 1000\n",
    )
    .unwrap();
    let out = t.path().join("res");
    let o = env.run(&[
        "experiment",
        "scx_simple",
        "custom-churn",
        "16",
        "1",
        "--variants",
        "test",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "a criterion fails: {all}");

    let g = out.join("scx_simple/custom-churn");
    let s = json(&g.join("summary.json"));
    let k = s["groups"][0]["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "test_plateaus")
        .cloned()
        .unwrap();
    let why = k["reason"].as_str().unwrap();
    assert_eq!(k["status"], "FAIL", "{why}");
    for want in [
        "capacity-bound: the cleanup achieved ",
        " evictions/s (",
        " per scan, ",
        " scans/s, ",
        " of scans timed out",
        "while entries go stale at ",
        "/s (task exits)",
        "raise cleanup.timeout_us from 1 to ",
    ] {
        assert!(why.contains(want), "test_plateaus lacks {want:?}: {why}");
    }
    // The terminal verdict, summary.txt and junit.xml carry the same line.
    assert!(
        all.contains("FAIL test_plateaus: ") && all.contains("capacity-bound"),
        "{all}"
    );
    let txt = std::fs::read_to_string(g.join("summary.txt")).unwrap();
    assert!(txt.contains("cleanup capacity (late window): "), "{txt}");
    assert!(std::fs::read_to_string(g.join("junit.xml"))
        .unwrap()
        .contains("raise cleanup.timeout_us from 1 to "));

    // The figures: most calls out of budget, evictions far below the exits.
    let c = &s["groups"][0]["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "test")
        .unwrap()["cleanup"];
    let f = |k: &str| c[k].as_f64().unwrap_or_else(|| panic!("{k}: {c}"));
    assert!(f("timed_out_share") >= 0.5, "{c}");
    assert!(
        f("stale_per_s") > 50.0,
        "custom-churn: 32 tasks 10 times a second: {c}"
    );
    assert!(f("evictions_per_s") < 0.9 * f("stale_per_s"), "{c}");
    assert!(f("scans_per_s") > 0.5, "a call every 500 ms: {c}");
    assert_eq!(c["capacity_bound"], true, "{c}");
    // Under TCG the verdict says the budget is guest time.
    let tcg = json(&g.join("manifest.json"))["accel"]
        .as_str()
        .unwrap()
        .contains("tcg");
    assert_eq!(
        why.contains("under TCG the budget is guest time"),
        tcg,
        "{why}"
    );
}
