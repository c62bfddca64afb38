//! Issue 5 item 7 for real: `experiment --sched-bin PATH[,PATH] --map-name NAME`
//! with scheduler binaries we did not build into the agent, in a TCG guest.
//!
//! Two kinds of user binary: the kernel tree's own tools/sched_ext scx_simple,
//! built here from the Debian source the kernel build unpacked (a third-party
//! binary: its map `stats` is a per-CPU array, it has none of our counters);
//! and two-line scripts that run our agent's `hold` (one of our builds held
//! until SIGINT), which give a leaking `tracked_tasks` map with counters, so
//! control vs test gets the full verdict. Neither is committed.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const QUICK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/quick-tcg.yaml");

/// (map_entries, evictions, sched_state) per row of a run<N>.csv.
fn csv(p: &Path) -> Vec<(u64, u64, String)> {
    let t = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    t.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].parse().unwrap(), f[5].parse().unwrap(), f[9].to_string())
        })
        .collect()
}

/// tools/sched_ext/scx_simple from the kernel tree `scx-vmctl kernel build`
/// unpacked, built against the guest kernel's BTF into `out` (nothing is
/// written into the tree).
fn build_tree_scx_simple(env: &Env, out: &Path) -> PathBuf {
    let cache = std::env::var_os("SCX_VMCTL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/scx-vmctl"));
    let bzimage = env.ok(&["kernel", "path"]);
    let vmlinux = Path::new(bzimage.trim()).with_file_name("vmlinux");
    // The default kernel's tree: the cache may also hold newer kernels' trees.
    let info = json(&vmlinux.with_file_name("kernel.json"));
    let version = info["version"].as_str().unwrap().to_string();
    let mut nums = version.split(['.', '-']);
    let (major, minor) = (nums.next().unwrap().to_string(), nums.next().unwrap().to_string());
    let same_version = |tree: &Path| {
        let mk = std::fs::read_to_string(tree.join("../../Makefile")).unwrap_or_default();
        mk.lines().any(|l| l.trim() == format!("VERSION = {major}")) && mk.lines().any(|l| l.trim() == format!("PATCHLEVEL = {minor}"))
    };
    let mut trees: Vec<PathBuf> = std::fs::read_dir(cache.join("kernel/work"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("src/tools/sched_ext"))
                .filter(|p| p.join("Makefile").exists() && same_version(p))
                .collect()
        })
        .unwrap_or_default();
    trees.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    let tree = trees
        .pop()
        .unwrap_or_else(|| panic!("no {major}.{minor} kernel tree with tools/sched_ext under {}/kernel/work", cache.display()));
    std::fs::create_dir_all(out).unwrap();
    let t = Instant::now();
    let o = Command::new("make")
        .arg("-C")
        .arg(&tree)
        .arg(format!("O={}", out.display()))
        .arg("CLANG=clang-19")
        .arg(format!("VMLINUX_BTF={}", vmlinux.display()))
        .args(["-j2", "scx_simple"])
        .output()
        .unwrap();
    assert!(o.status.success(), "building {}/scx_simple failed:\n{}", tree.display(), text(&o));
    eprintln!("kernel tree's scx_simple built in {:.1} s", t.elapsed().as_secs_f64());
    out.join("build/bin/scx_simple")
}

/// A "user binary" that is one of our builds, held until SIGINT.
fn hold_script(dir: &Path, name: &str, variant: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nexec /root/scx-guest-agent hold --sched scx_simple --variant {variant} \
             --cleanup-interval-ms 250 --cleanup-timeout-us 2000 --cleanup-max-age-ms 2000\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn user_binaries_as_custom_or_control_and_test() {
    let env = Env::new();
    let tmp = tempfile::tempdir().unwrap();
    let tree_simple = build_tree_scx_simple(&env, &tmp.path().join("tools"));
    let ctl = hold_script(tmp.path(), "mysched_control", "control");
    let tst = hold_script(tmp.path(), "mysched_test", "test");
    let name = format!("custom-{}", std::process::id());
    env.ok(&["up", "--name", &name]);

    // Two binaries: control and test, judged like our own schedulers.
    let t = Instant::now();
    let out1 = tmp.path().join("res1");
    let bins = format!("{},{}", ctl.display(), tst.display());
    let o = env.run(&[
        "experiment", "--vm", &name, "--sched-bin", &bins, "--map-name", "tracked_tasks", "custom-churn", "16", "1",
        "--config", QUICK, "--out", out1.to_str().unwrap(),
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("verdict: PASS (6 pass, 0 fail, 0 skip)"), "{all}");
    eprintln!("control+test binaries, 16 s runs: {:.1} s", t.elapsed().as_secs_f64());
    let g = out1.join("mysched/custom-churn");
    let mut maxima = Vec::new();
    for v in ["control", "test"] {
        let d = g.join(v);
        for f in ["run1.csv", "run1.json", "run1.scheduler.log", "run1.dmesg.log", "run1.workload.log", "run1.trace.log"] {
            assert!(d.join(f).exists(), "{v}/{f} missing");
        }
        let r = json(&d.join("run1.json"));
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["variant"], v);
        assert_eq!(r["ops_name"], format!("simple_{v}").as_str());
        assert_eq!(r["exit_kind"], "UNREG", "{r}");
        assert_eq!(r["bin"]["counters_from_bss"], true, "{r}");
        assert_eq!(r["bin"]["stopped_by"], "SIGINT", "{r}");
        let log = std::fs::read_to_string(d.join("run1.scheduler.log")).unwrap();
        assert!(log.contains(&format!("hold: simple_{v} enabled")) && log.contains("EXIT: unregistered from user space"), "{log}");
        let rows = csv(&d.join("run1.csv"));
        assert!(rows.len() >= 8 && rows.iter().all(|r| r.2 == "enabled"), "{rows:?}");
        maxima.push((rows.iter().map(|r| r.0).max().unwrap(), rows.last().unwrap().1));
    }
    eprintln!("max map entries control {} test {}, test evictions {}", maxima[0].0, maxima[1].0, maxima[1].1);
    assert!(maxima[1].1 > 0, "the test binary's evictions come from its .bss");
    let m = json(&g.join("manifest.json"));
    assert_eq!(m["custom_binaries"].as_array().unwrap().len(), 2, "{m}");
    assert_eq!(json(&g.join("summary.json"))["verdict"], "PASS");
    assert!(g.join("report.html").exists() && g.join("junit.xml").exists());

    // One third-party binary, run as variant `custom`; its map is a per-CPU array.
    let t = Instant::now();
    let out2 = tmp.path().join("res2");
    let o = env.run(&[
        "experiment", "--vm", &name, "--sched-bin", tree_simple.to_str().unwrap(), "--map-name", "stats",
        "custom-churn", "8", "1", "--out", out2.to_str().unwrap(),
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("PASS no_scheduler_error"), "{all}");
    eprintln!("kernel tree's scx_simple, 8 s run: {:.1} s", t.elapsed().as_secs_f64());
    let d = out2.join("scx_simple/custom-churn/custom");
    let rows = csv(&d.join("run1.csv"));
    assert!(rows.len() >= 4, "{rows:?}");
    assert!(rows.iter().all(|r| r.0 == 2 && r.1 == 0 && r.2 == "enabled"), "two per-CPU entries, no counters: {rows:?}");
    let r = json(&d.join("run1.json"));
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["ops_name"], "simple");
    assert_eq!((&r["exit_kind"], &r["exit_reason"]), (&Value::from("UNREG"), &Value::from("unregistered from user space")));
    assert_eq!(r["bin"]["counters_from_bss"], false);
    assert_eq!(r["bin"]["map_type"], 6, "BPF_MAP_TYPE_PERCPU_ARRAY");
    assert!(r["counters"].is_null(), "{r}");
    let log = std::fs::read_to_string(d.join("run1.scheduler.log")).unwrap();
    assert!(log.contains("local=") && log.contains("EXIT: unregistered from user space"), "{log}");

    // The agent's refusals, in the same guest (the experiments installed it).
    let ssh = |script: &str| env.run(&["ssh", &name, "--", "sh", "-c", script]);
    let o = ssh("/root/scx-guest-agent run-bin --bin /root/custom/custom --map-name tracked_tasks --workload custom-churn --duration 2 --out /root/e1");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("created no BPF map named `tracked_tasks`; its maps: ") && stderr(&o).contains("stats"), "{}", stderr(&o));
    let o = ssh("/root/scx-guest-agent run-bin --bin /bin/false --map-name stats --workload custom-churn --duration 2 --out /root/e2");
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("ended (exit 1) before sched_ext was enabled"), "{}", stderr(&o));
    // A binary that ignores SIGINT is stopped with SIGTERM, and that is recorded.
    let o = ssh(
        "printf '#!/bin/sh\\ntrap \"\" INT\\n/root/custom/custom &\\nwhile :; do sleep 1; done\\n' > /root/stubborn && chmod +x /root/stubborn && \
         /root/scx-guest-agent run-bin --bin /root/stubborn --map-name stats --workload custom-churn --duration 2 --stop-grace 2 --out /root/e3 && \
         cat /root/e3/run.json && cat /sys/kernel/sched_ext/state",
    );
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("\"stopped_by\": \"SIGTERM\"") && all.contains("ignored SIGINT"), "{all}");
    assert!(String::from_utf8_lossy(&o.stdout).trim_end().ends_with("disabled"), "{all}");
}

#[test]
fn sched_bin_bad_input_is_one_line_and_exit_2() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let bin = hold_script(t.path(), "mine", "control");
    let b = bin.to_str().unwrap();
    let out = t.path().join("r");
    let o_ = out.to_str().unwrap();
    let three = format!("{b},{b},{b}");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["experiment", "--sched-bin", "/nonexistent/sched", "--map-name", "m", "custom-churn", "--out", o_], "no such file"),
        (vec!["experiment", "--sched-bin", b, "custom-churn", "--out", o_], "--sched-bin needs --map-name"),
        (vec!["experiment", "--sched-bin", &three, "--map-name", "m", "custom-churn", "--out", o_], "one binary (variant custom) or two"),
        (vec!["experiment", "--sched-bin", b, "--map-name", "m", "custom-churn", "--variants", "control", "--out", o_], "--variants does not go with --sched-bin"),
        (vec!["experiment", "scx_simple", "custom-churn", "--map-name", "m", "--out", o_], "--map-name goes with --sched-bin"),
        (vec!["experiment", "--sched-bin", b, "--map-name", "m", "custom-churn", "10", "1", "3", "--out", o_], "WORKLOAD [DURATION [ITERATIONS]]"),
        (vec!["experiment", "--sched-bin", b, "--map-name", "m", "custom-churn", "10", "1.5", "--out", o_], "ITERATIONS must be a whole number"),
        (vec!["experiment", "--sched-bin", b, "--map-name", "m", "fio", "--out", o_], "valid: stress-ng, hackbench, custom-churn"),
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
