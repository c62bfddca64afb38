//! `scx-vmctl leakcheck` for real, in TCG guests: it finds the leaking map
//! in every control variant of our four schedulers and nothing in their
//! test and bpfscan variants; a fixture of ours that leaks per cgroup
//! (through a key's padding) is flagged under cgroup-churn and not under task
//! churn; scx_bpfland from crates.io, whose task storage holds steady, raises
//! no alarm. Nobody names a map: the agent finds them from the programs.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

const QUICK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/quick-tcg.yaml");

fn criteria(group: &Path) -> Vec<Value> {
    let s: Value = serde_json::from_slice(&std::fs::read(group.join("summary.json")).unwrap()).unwrap();
    s["groups"][0]["criteria"].as_array().unwrap().clone()
}

/// The status of `map_bounded:<map>` for `variant`.
fn map_status(c: &[Value], variant: &str, map: &str) -> String {
    let name = format!("map_bounded:{map}");
    c.iter()
        .find(|c| c["name"] == name.as_str() && c["variant"] == variant)
        .unwrap_or_else(|| panic!("no {name} for {variant}: {c:?}"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn leakcheck_flags_every_control_variant_and_no_test_or_bpfscan() {
    let env = Env::new();
    let name = format!("lk-{}", std::process::id());
    env.ok(&["up", "--name", &name]);
    let tmp = tempfile::tempdir().unwrap();
    // quick-tcg's cleanup with a 5 ms budget: the map-op helper keeps to its
    // budget while it walks the 65536 buckets, so at 2 ms a 12 s scx_nest
    // run was capacity-bound (63% of scans timed out) and still ramping.
    let cfg = tmp.path().join("leakcheck-tcg.yaml");
    std::fs::write(&cfg, std::fs::read_to_string(QUICK).unwrap().replace("timeout_us: 2000", "timeout_us: 5000")).unwrap();
    assert!(std::fs::read_to_string(&cfg).unwrap().contains("timeout_us: 5000"));
    for sched in ["scx_simple", "scx_cfsish", "scx_flatcg", "scx_nest"] {
        let t = Instant::now();
        let out = tmp.path().join(sched);
        let o = env.run(&[
            "leakcheck", "--vm", &name, sched, "custom-churn", "12", "--config", cfg.to_str().unwrap(), "--out", out.to_str().unwrap(),
        ]);
        let all = text(&o);
        assert_eq!(o.status.code(), Some(1), "a leak is exit 1: {all}");
        eprintln!("leakcheck {sched} (3 runs): {:.1} s", t.elapsed().as_secs_f64());
        let g = out.join(sched).join("custom-churn");
        let c = criteria(&g);
        assert_eq!(map_status(&c, "control", "tracked_tasks"), "FAIL", "{all}");
        assert_eq!(map_status(&c, "test", "tracked_tasks"), "PASS", "{all}");
        assert_eq!(map_status(&c, "bpfscan", "tracked_tasks"), "PASS", "{all}");
        // only the control's tracked_tasks fails; every other map of every variant holds
        let failed: Vec<&Value> = c.iter().filter(|c| c["status"] == "FAIL").collect();
        assert_eq!(failed.len(), 1, "{failed:?}");
        let line = failed[0]["reason"].as_str().unwrap();
        assert!(line.starts_with("LEAK control/run1 tracked_tasks (hash u32 -> struct tracked_task): +"), "{line}");
        assert!(line.contains("per 1,000 tasks exited") && line.contains("max_entries 65536 reached in"), "{line}");
        let m: Value = serde_json::from_slice(&std::fs::read(g.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(m["leakcheck_baseline_s"], 6.0, "{m}");
        // the no-churn baseline is in maps.csv
        let csv = std::fs::read_to_string(g.join("control/run1.maps.csv")).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let k = header.iter().position(|h| *h == "churning").unwrap();
        let phases: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').nth(k).unwrap()).collect();
        assert!(phases.iter().filter(|p| **p == "0").count() >= 3 && phases.last() == Some(&"1"), "{csv}");
        let junit = std::fs::read_to_string(g.join("junit.xml")).unwrap();
        assert!(junit.contains("map_bounded:tracked_tasks"), "{junit}");
    }
}

#[test]
fn a_per_cgroup_leak_is_found_under_cgroup_churn_only_and_bpfland_raises_no_alarm() {
    let env = Env::new();
    let name = format!("lkf-{}", std::process::id());
    env.ok(&["up", "--name", &name]);
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("cgleak");
    std::fs::write(&script, "#!/bin/sh\nexec /root/scx-guest-agent fixture cgleak\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = |workload: &str, out: &Path| {
        env.run(&[
            "leakcheck", "--vm", &name, "--sched-bin", script.to_str().unwrap(), workload, "12", "--out", out.to_str().unwrap(),
        ])
    };

    let out = tmp.path().join("cg");
    let o = run("cgroup-churn", &out);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    let c = criteria(&out.join("cgleak/cgroup-churn"));
    assert_eq!(map_status(&c, "custom", "cg_state"), "FAIL", "{all}");
    // Under cgroup-churn a cgroup's tasks exit with it, so the line may name
    // either; the task-churn run below is what tells a per-cgroup leak apart.
    let line = c.iter().find(|c| c["status"] == "FAIL").unwrap()["reason"].as_str().unwrap().to_string();
    assert!(line.starts_with("LEAK custom/run1 cg_state (hash struct cg_key -> u64): +"), "{line}");
    let csv = std::fs::read_to_string(out.join("cgleak/cgroup-churn/custom/run1.maps.csv")).unwrap();
    let last: Vec<u64> = csv.lines().last().unwrap().split(',').skip(1).map(|f| f.parse().unwrap()).collect();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let k = header.iter().position(|h| *h == "cg_state").unwrap();
    assert!(last[k - 1] + 10 >= last[1], "an entry left per removed cgroup: {} entries, {} removed", last[k - 1], last[1]);

    let out = tmp.path().join("task");
    let o = run("custom-churn", &out);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "no leak under task churn: {all}");
    assert_eq!(map_status(&criteria(&out.join("cgleak/custom-churn")), "custom", "cg_state"), "PASS", "{all}");

    // A crates.io scheduler: every map it samples holds under task churn.
    let out = tmp.path().join("bpfland");
    let o = env.run(&[
        "leakcheck", "--vm", &name, "--sched", "scx_bpfland@1.1.4", "custom-churn", "12", "--out", out.to_str().unwrap(),
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let c = criteria(&out.join("scx_bpfland-1.1.4/custom-churn"));
    assert_eq!(map_status(&c, "custom", "task_ctx_stor"), "PASS", "{all}");
    assert!(c.iter().all(|c| c["status"] == "PASS"), "{c:?}");
}
