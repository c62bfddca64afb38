//! `scx-vmctl experiment` for real: a short control vs test experiment in TCG
//! guests, judged from the files it pulled; then the refusals and --resume.

mod common;
use common::*;

fn group(out: &std::path::Path) -> std::path::PathBuf {
    out.join("scx_simple/custom-churn")
}

#[test]
fn short_experiment_then_refusal_then_resume() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("res");
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/quick-tcg.yaml");
    // overlay resets: every run's console holds its own boot (snapshot resets: tests/snapshot.rs)
    let args = ["experiment", "scx_simple", "custom-churn", "20", "1", "--config", cfg, "--reset", "overlay", "--out", out.to_str().unwrap()];
    let o = env.run(&args);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("verdict: PASS"), "{text}");

    let g = group(&out);
    for v in ["control", "test"] {
        for f in ["run1.csv", "run1.json", "run1.dmesg.log", "run1.serial.log", "run1.workload.log", "run1.trace.log"] {
            assert!(g.join(v).join(f).exists(), "{v}/{f} missing");
        }
        let csv = std::fs::read_to_string(g.join(v).join("run1.csv")).unwrap();
        assert!(csv.starts_with(&format!("{}\n", scx_contract::sample::HEADER)), "{csv}");
        assert!(csv.lines().count() >= 8, "20 s at 2 s: {csv}");
        let run: serde_json::Value = serde_json::from_slice(&std::fs::read(g.join(v).join("run1.json")).unwrap()).unwrap();
        assert_eq!(run["status"], "ok");
        assert_eq!(run["accel"], "tcg,thread=single");
        assert_eq!(run["reset"], "overlay");
        assert_eq!(run["iteration"], 1);
        // the console of the run's own boot is kept
        let serial = std::fs::read_to_string(g.join(v).join("run1.serial.log")).unwrap();
        assert!(serial.contains("Linux version"), "{serial}");
    }
    // Every map of the scheduler, found from its programs (run<N>.maps.json),
    // sampled against task exits (run<N>.maps.csv).
    let mut last = Vec::new();
    for v in ["control", "test"] {
        let maps: serde_json::Value = serde_json::from_slice(&std::fs::read(g.join(v).join("run1.maps.json")).unwrap()).unwrap();
        let maps = maps.as_array().unwrap();
        let tt = maps.iter().find(|m| m["name"] == "tracked_tasks").unwrap_or_else(|| panic!("{v}: {maps:?}"));
        assert_eq!((&tt["type"], &tt["key_type"], &tt["value_type"], &tt["sampled"]), (&"hash".into(), &"u32".into(), &"struct tracked_task".into(), &true.into()), "{tt}");
        let bss = maps.iter().find(|m| m["name"].as_str().unwrap().ends_with(".bss")).unwrap_or_else(|| panic!("{v}: {maps:?}"));
        assert_eq!(bss["sampled"], false);
        assert!(bss["skipped"].as_str().unwrap().contains("array"), "{bss}");
        let csv = std::fs::read_to_string(g.join(v).join("run1.maps.csv")).unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(&header[..4], &["elapsed_s", "tasks_exited", "cgroups_destroyed", "maps_bytes"], "{csv}");
        let col = header.iter().position(|h| *h == "tracked_tasks").unwrap_or_else(|| panic!("{csv}"));
        let rows: Vec<Vec<u64>> = lines.map(|l| l.split(',').skip(1).map(|f| f.parse().unwrap()).collect()).collect();
        assert!(rows.len() >= 8, "{csv}");
        let (exits, entries) = (rows.last().unwrap()[0], rows.last().unwrap()[col - 1]);
        assert!(exits > 1000 && rows.windows(2).all(|w| w[1][0] >= w[0][0]), "task exits counted: {csv}");
        last.push((exits, entries));
    }
    assert!(last[0].1 * 2 > last[0].0, "control keeps an entry per exited task: {last:?}");
    assert!(last[1].1 * 2 < last[0].1, "test evicts them: {last:?}");
    // The report judges each map against exits: control's leaks, test's does not.
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(g.join("summary.json")).unwrap()).unwrap();
    let verdict = |v: &str| {
        let m = s["groups"][0]["maps"].as_array().unwrap().iter().find(|m| m["variant"] == v && m["map"] == "tracked_tasks").cloned();
        m.unwrap_or_else(|| panic!("{v}: {}", s["groups"][0]["maps"]))
    };
    let (c, t_) = (verdict("control"), verdict("test"));
    assert_eq!((&c["verdict"], &c["against"]), (&"LEAK".into(), &"tasks_exited".into()), "{c}");
    assert!(c["per_1000_exits"].as_f64().unwrap() > 500.0, "{c}");
    assert_eq!(t_["verdict"], "OK", "{t_}");
    let txt = std::fs::read_to_string(g.join("summary.txt")).unwrap();
    assert!(txt.contains("LEAK control/run1 tracked_tasks (hash u32 -> struct tracked_task)"), "{txt}");

    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(g.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["status"], "complete");
    assert_eq!(m["accel"], "tcg,thread=single");
    assert!(m["kernel"]["has_helper"].as_bool().unwrap());
    assert_eq!(m["runs"].as_array().unwrap().len(), 2);
    assert!(m["runs"][0]["boot_s"].as_f64().unwrap() > 0.0);
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(g.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["verdict"], "PASS");
    assert!(g.join("report.html").exists() && g.join("junit.xml").exists());
    // The experiment's VMs are gone.
    let left: Vec<_> = std::fs::read_dir(env.state.path().join("vms")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(left.is_empty(), "VM run directories left: {left:?}");

    // Results already there: refused without --resume or --force, nothing touched.
    let before = std::fs::read(g.join("control/run1.csv")).unwrap();
    let o = env.run(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("already holds results") && stderr(&o).contains("--resume"), "{}", stderr(&o));
    assert_eq!(std::fs::read(g.join("control/run1.csv")).unwrap(), before);

    // --resume: every run is finished, so none is redone.
    let mut resume = args.to_vec();
    resume.push("--resume");
    let o = env.run(&resume);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert_eq!(text.matches("done before, skipped").count(), 2, "{text}");
    assert_eq!(std::fs::read(g.join("control/run1.csv")).unwrap(), before);
}

#[test]
fn bad_experiment_input_is_one_line_and_exit_2() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("r");
    let o_ = out.to_str().unwrap();
    let yaml_bad = t.path().join("bad.yaml");
    std::fs::write(&yaml_bad, "experiment:\n  duration_s: 10\n  itrations: 2\n").unwrap();
    let yaml_broken = t.path().join("broken.yaml");
    std::fs::write(&yaml_broken, "experiment:\n  duration_s: [10\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["experiment", "scx_rusty", "hackbench", "--out", o_], "valid: scx_simple, scx_cfsish, scx_flatcg, scx_nest"),
        (vec!["experiment", "scx_simple", "fio", "--out", o_], "valid: stress-ng, hackbench, custom-churn"),
        (vec!["experiment", "scx_simple", "hackbench", "0", "--out", o_], "duration_s must be > 0"),
        (vec!["experiment", "scx_simple", "hackbench", "--duration", "-5", "--out", o_], "duration_s must be > 0"),
        (vec!["experiment", "scx_simple", "hackbench", "10", "0", "--out", o_], "iterations must be at least 1"),
        (vec!["experiment", "scx_simple", "hackbench", "4", "--interval", "5", "--out", o_], "longer than experiment.duration_s"),
        (vec!["experiment", "scx_simple", "hackbench", "--variants", "control,tset", "--out", o_], "unknown variant `tset`"),
        (vec!["experiment", "scx_simple", "hackbench", "--config", yaml_bad.to_str().unwrap(), "--out", o_], "bad.yaml:3: unknown key `experiment.itrations`"),
        (vec!["experiment", "scx_simple", "hackbench", "--config", yaml_broken.to_str().unwrap(), "--out", o_], "broken.yaml:"),
        (vec!["experiment", "scx_simple", "hackbench", "--out", "/etc/hostname/results"], "cannot be created"),
        (vec!["experiment", "scx_simple", "hackbench", "--shard", "3/2", "--out", o_], "--shard 3/2"),
        (vec!["experiment", "scx_simple", "hackbench", "--reset", "reboot", "--out", o_], "unknown reset mode"),
    ];
    for (args, want) in cases {
        let o = env.run(&args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: want {want:?} in {e}");
        assert_eq!(e.trim().lines().count(), 1, "{args:?}: one line: {e}");
    }
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(), "nothing written on bad input");
}

/// cgroup-churn: cgroups made with cpu.weight and cpu.max, used by short
/// tasks and removed, counted in the guest beside every map of scx_flatcg.
#[test]
fn cgroup_churn_makes_uses_and_removes_cgroups() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("res");
    let args = ["experiment", "scx_flatcg", "cgroup-churn", "8", "1", "--variants", "control", "--out", out.to_str().unwrap()];
    // stdout is a pipe nobody reads (`experiment ... | head -1` once head has
    // gone): the run goes on to its results, no panic on the failed print.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = env.cmd().args(args).stdout(writer).output().unwrap();
    let text = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    let d = out.join("scx_flatcg/cgroup-churn/control");
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("run1.json")).unwrap()).unwrap();
    assert_eq!(run["status"], "ok", "{run}");
    assert_eq!(run["workload_metric"]["name"], "cgroups_per_s", "{run}");
    assert!(run["workload_metric"]["value"].as_f64().unwrap() > 1.0, "{run}");
    let wl = std::fs::read_to_string(d.join("run1.workload.log")).unwrap();
    let line = wl.lines().find(|l| l.contains("cgroups:")).unwrap_or_else(|| panic!("{wl}"));
    let nums: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(nums.len() >= 2 && nums[0] == nums[1] && nums[0] >= 10, "every cgroup made was removed: {line}");
    let csv = std::fs::read_to_string(d.join("run1.maps.csv")).unwrap();
    let last: Vec<&str> = csv.lines().last().unwrap().split(',').collect();
    let destroyed: u64 = last[2].parse().unwrap();
    assert!(destroyed >= nums[1], "the guest counted the removals (cgroup_rmdir): {destroyed} of {line}");
    let maps: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("run1.maps.json")).unwrap()).unwrap();
    let cg = maps.as_array().unwrap().iter().find(|m| m["name"] == "cgrp_ctxs").unwrap_or_else(|| panic!("{maps}"));
    assert_eq!((&cg["type"], &cg["sampled"]), (&"cgrp_storage".into(), &true.into()), "{cg}");
    // cgroup storage, counted by a cgroup iterator, is freed with its cgroups
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let k = header.iter().position(|h| *h == "cgrp_ctxs").unwrap_or_else(|| panic!("{csv}"));
    let counts: Vec<u64> = csv.lines().skip(1).map(|l| l.split(',').nth(k).unwrap().parse().unwrap()).collect();
    assert!(counts.iter().all(|c| *c >= 3 && *c < 20), "the run's cgroups and a few churn ones, never all {destroyed}: {counts:?}");
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("scx_flatcg/cgroup-churn/summary.json")).unwrap()).unwrap();
    let v = s["groups"][0]["maps"].as_array().unwrap().iter().find(|m| m["map"] == "cgrp_ctxs").cloned().unwrap_or_else(|| panic!("{s}"));
    assert_eq!(v["verdict"], "OK", "{v}");
}
