//! Issue 13: the helper against what schedulers do today, in a real TCG
//! guest. One short experiment runs control, exitdel (delete in
//! ops.exit_task), taskstor (task storage) and test (the helper) under churn:
//! control grows, exitdel and taskstor stay bounded with no false evictions,
//! and the report shows, per variant, map entries, BPF memory, tracking cost,
//! throughput and false evictions.

mod common;
use common::*;

#[test]
fn exitdel_and_taskstor_stay_bounded_without_false_evictions() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("res");
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/quick-tcg.yaml");
    let started = std::time::Instant::now();
    let o = env.run(&[
        "experiment", "scx_simple", "custom-churn", "20", "1", "--variants", "control,exitdel,taskstor,test",
        "--config", cfg, "--out", out.to_str().unwrap(),
    ]);
    let all = text(&o);
    eprintln!("4 runs in {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("verdict: PASS"), "{all}");

    let g = out.join("scx_simple/custom-churn");
    let s = json(&g.join("summary.json"));
    let group = &s["groups"][0];
    let crit = |name: &str| {
        group["criteria"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no criterion {name}: {group}"))
            .clone()
    };
    assert_eq!(crit("control_grows")["status"], "PASS", "{all}");
    for v in ["exitdel", "taskstor"] {
        for c in ["plateaus", "max_below_control_max", "no_false_evictions"] {
            assert_eq!(crit(&format!("{v}_{c}"))["status"], "PASS", "{v}_{c}: {all}");
        }
    }
    let variant = |name: &str| {
        group["variants"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("{name}")).clone()
    };
    let control_max = variant("control")["map_entries_max"].as_u64().unwrap();
    for v in ["control", "exitdel", "taskstor", "test"] {
        let x = variant(v);
        let cost = x["track_ns_per_run"].as_f64().unwrap_or_else(|| panic!("{v}: no tracking cost: {x}"));
        assert!(cost > 0.0, "{v}: {x}");
        assert!(x["map_bytes_max"].as_u64().unwrap() > 0, "{v}: {x}");
        assert!(x["throughput"]["mean"].as_f64().is_some(), "{v}: {x}");
        eprintln!(
            "{v:<9} max entries {:>6}  BPF bytes {:>8}  track ns/run {:>7.0}  {} {:>10.1}  false evictions {}",
            x["map_entries_max"], x["map_bytes_max"], cost, x["throughput"]["metric"].as_str().unwrap(),
            x["throughput"]["mean"].as_f64().unwrap(), x["false_evictions_total"]
        );
        if v != "control" {
            assert!(x["map_entries_max"].as_u64().unwrap() * 2 < control_max, "{v} bounded well below control: {x}");
        }
    }
    // taskstor keeps the map's name, as task storage; its memory counts its entries
    let maps = json(&g.join("taskstor/run1.maps.json"));
    let tt = maps.as_array().unwrap().iter().find(|m| m["name"] == "tracked_tasks").unwrap().clone();
    assert_eq!(tt["type"], "task_storage", "{tt}");
    let csv = std::fs::read_to_string(g.join("taskstor/run1.csv")).unwrap();
    let last: Vec<u64> = csv.lines().last().unwrap().split(',').skip(1).filter_map(|f| f.parse().ok()).collect();
    assert!(last[1] > 24 * last[0], "entries x (element + value) counted in map_bytes: {csv}");

    let txt = std::fs::read_to_string(g.join("summary.txt")).unwrap();
    assert!(txt.contains("side by side:") && txt.contains("false evictions"), "{txt}");
    let html = std::fs::read_to_string(g.join("report.html")).unwrap();
    assert!(html.contains("tracking cost (ns per ops.running)") && html.contains("<th>taskstor</th>"), "report.html");
}
