//! Issue 11 for real: schedulers of the sched-ext/scx project, built from
//! crates.io by `scx-vmctl sched build` (cached in the artifact cache, so a
//! second CI run does not build them again), run by `experiment --sched` in
//! a TCG guest on our kernel: they reach sched_ext `enabled`, are sampled,
//! stopped with SIGINT and judged, and the kernel's exit kind is recorded.
//!
//! Of different shape: scx_bpfland (all in BPF, per-task context in task
//! storage, counted here by a task iterator), scx_rusty (a user-space load
//! balancer over BPF) on 6.12, and scx_lavd (fexit hooks on the futex
//! functions, a syscall tracepoint) which needs a newer kernel: 6.12's
//! verifier refuses it, which the tool explains, and it runs on 7.3.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

const BPFLAND: &str = "scx_bpfland@1.1.4";
const RUSTY: &str = "scx_rusty@1.1.4";
const LAVD: &str = "scx_lavd@1.1.4";

/// (map_entries, sched_state) per row of a run<N>.csv.
fn csv(p: &Path) -> Vec<(u64, String)> {
    let t = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    t.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].parse().unwrap(), f[9].to_string())
        })
        .collect()
}

/// `sched build` (a cache hit after the first CI run); the binary's path.
fn build(env: &Env, r: &str) -> String {
    let t = Instant::now();
    let p = env.ok(&["sched", "build", r]).trim().to_string();
    eprintln!("sched build {r}: {:.1} s", t.elapsed().as_secs_f64());
    assert!(Path::new(&p).is_file(), "{p}");
    p
}

#[test]
fn crates_io_schedulers_load_run_and_are_judged() {
    let env = Env::new();
    let bpfland = build(&env, BPFLAND);
    let rusty = build(&env, RUSTY);
    assert!(bpfland.ends_with("/bin/scx_bpfland") && rusty.ends_with("/bin/scx_rusty"), "{bpfland} {rusty}");
    let list = env.ok(&["sched", "list"]);
    assert!(list.contains(BPFLAND) && list.contains(&bpfland) && list.contains(RUSTY), "{list}");
    assert_eq!(env.ok(&["sched", "path", BPFLAND]).trim(), bpfland);

    let name = format!("scx-{}", std::process::id());
    env.ok(&["up", "--name", &name]);
    let tmp = tempfile::tempdir().unwrap();

    // scx_bpfland by crate, with arguments, no --map-name: the agent picks
    // its task-storage map, whose entries are the live tasks it tracks.
    let t = Instant::now();
    let out1 = tmp.path().join("bpfland");
    let o = env.run(&[
        "experiment", "--vm", &name, "--sched", BPFLAND, "--sched-args", "--slice-us 5000 --verbose", "custom-churn", "16", "1",
        "--out", out1.to_str().unwrap(),
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("verdict: PASS"), "{all}");
    eprintln!("scx_bpfland, one 16 s run: {:.1} s", t.elapsed().as_secs_f64());
    let g = out1.join("scx_bpfland-1.1.4/custom-churn");
    let d = g.join("custom");
    for f in ["run1.csv", "run1.json", "run1.scheduler.log", "run1.dmesg.log", "run1.workload.log"] {
        assert!(d.join(f).exists(), "{f} missing");
    }
    let r = json(&d.join("run1.json"));
    assert_eq!(r["status"], "ok", "{r}");
    assert!(r["ops_name"].as_str().unwrap().starts_with("bpfland"), "{r}");
    assert_eq!((&r["exit_kind"], &r["exit_reason"]), (&Value::from("UNREG"), &Value::from("unregistered from user space")), "{r}");
    assert_eq!(r["bin"]["map_name"], "task_ctx_stor", "{r}");
    assert_eq!(r["bin"]["map_type"], 29, "BPF_MAP_TYPE_TASK_STORAGE: {r}");
    assert_eq!(r["bin"]["args"], serde_json::json!(["--slice-us", "5000", "--verbose"]), "argv, no shell: {r}");
    assert_eq!(r["bin"]["stopped_by"], "SIGINT", "{r}");
    let rows = csv(&d.join("run1.csv"));
    assert!(rows.len() >= 6 && rows.iter().all(|r| r.1 == "enabled"), "{rows:?}");
    assert!(rows.iter().all(|r| r.0 > 10), "every live task holds a task_ctx_stor entry: {rows:?}");
    let log = std::fs::read_to_string(d.join("run1.scheduler.log")).unwrap();
    assert!(log.contains("libbpf"), "--verbose reached the scheduler (libbpf details): {log}");
    // Its maps, found from its programs: task storage sampled, arrays not.
    let maps = json(&d.join("run1.maps.json"));
    let maps = maps.as_array().unwrap();
    let ctx = maps.iter().find(|m| m["name"] == "task_ctx_stor").unwrap_or_else(|| panic!("{maps:?}"));
    assert_eq!((&ctx["type"], &ctx["sampled"]), (&Value::from("task_storage"), &Value::from(true)), "{ctx}");
    assert!(ctx["value_type"].as_str().unwrap().starts_with("struct "), "{ctx}");
    assert!(maps.iter().any(|m| m["sampled"] == false && m["skipped"].as_str().unwrap().contains("array")), "{maps:?}");
    let mcsv = std::fs::read_to_string(d.join("run1.maps.csv")).unwrap();
    assert!(mcsv.lines().next().unwrap().split(',').any(|h| h == "task_ctx_stor"), "{mcsv}");
    // task storage is freed with its tasks: no leak under task churn
    let s = json(&g.join("summary.json"));
    let tc = s["groups"][0]["maps"].as_array().unwrap().iter().find(|m| m["map"] == "task_ctx_stor").cloned();
    let tc = tc.unwrap_or_else(|| panic!("{s}"));
    assert_eq!(tc["verdict"], "OK", "{tc}");
    let m = json(&g.join("manifest.json"));
    assert_eq!(m["sched_crates"], serde_json::json!([BPFLAND]), "{m}");
    assert_eq!(m["sched_args"], serde_json::json!([["--slice-us", "5000", "--verbose"]]), "{m}");
    assert_eq!(json(&g.join("summary.json"))["verdict"], "PASS");

    // scx_rusty, another shape: a user-space load balancer over BPF, its
    // per-task state in arena-backed task storage (found without --map-name).
    let t = Instant::now();
    let out2 = tmp.path().join("rusty");
    let o = env.run(&["experiment", "--vm", &name, "--sched", RUSTY, "hackbench", "16", "1", "--out", out2.to_str().unwrap()]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("verdict: PASS"), "{all}");
    eprintln!("scx_rusty, one 16 s run: {:.1} s", t.elapsed().as_secs_f64());
    let d = out2.join("scx_rusty-1.1.4/hackbench/custom");
    let r = json(&d.join("run1.json"));
    assert_eq!(r["status"], "ok", "{r}");
    assert!(r["ops_name"].as_str().unwrap().starts_with("rusty"), "{r}");
    assert_eq!(r["exit_kind"], "UNREG", "{r}");
    assert_eq!(r["bin"]["map_type"], 29, "{r}");
    assert_eq!(r["bin"]["stopped_by"], "SIGINT", "{r}");
    let rows = csv(&d.join("run1.csv"));
    assert!(rows.len() >= 6 && rows.iter().all(|r| r.1 == "enabled"), "{rows:?}");
    assert!(rows.iter().map(|r| r.0).max().unwrap() > 100, "hackbench's tasks hold entries: {rows:?}");

    // A guest kernel without the function tracer, as scx_utils sees it: the
    // scheduler runs in a mount namespace where /proc/sys/kernel (and so
    // ftrace_enabled, scx_utils' probe for CONFIG_FUNCTION_TRACER) is an
    // empty tmpfs. It exits before sched_ext is enabled; the tool says why
    // in one line, exits 3 and keeps the scheduler's output.
    env.ok(&["cp", &bpfland, &format!("{name}:/root/")]);
    let script = tmp.path().join("noftrace");
    std::fs::write(
        &script,
        "#!/bin/sh\nexec unshare -m sh -c 'mount -t tmpfs none /proc/sys/kernel && exec /root/scx_bpfland \"$@\"' sh \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out3 = tmp.path().join("noftrace-res");
    let o = env.run(&[
        "experiment", "--vm", &name, "--sched-bin", script.to_str().unwrap(), "--map-name", "task_ctx_stor", "custom-churn", "8", "1",
        "--out", out3.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: noftrace exited before sched_ext was enabled: the guest kernel lacks CONFIG_FUNCTION_TRACER")
            && last.contains("CONFIG_FUNCTION_TRACER=y"),
        "{err}"
    );
    let d = out3.join("noftrace/custom-churn/custom");
    let log = std::fs::read_to_string(d.join("run1.scheduler.log")).unwrap_or_else(|e| panic!("the scheduler's log is kept: {e}\n{err}"));
    assert!(log.contains("kernel is missing CONFIG_FUNCTION_TRACER"), "{log}");
    let r = json(&d.join("run1.json"));
    assert_eq!(r["status"], "failed", "{r}");
    assert!(r["failure"].as_str().unwrap().contains("lacks CONFIG_FUNCTION_TRACER"), "{r}");
    assert_eq!(json(&out3.join("noftrace/custom-churn/manifest.json"))["status"], "failed");
}

/// The newer kernel as a user gets it: `kernel build --source debian-7.3`.
fn kernel_73(env: &Env) -> String {
    let t = Instant::now();
    env.ok(&["kernel", "build", "--source", "debian-7.3"]);
    eprintln!("kernel build --source debian-7.3: {:.1} s", t.elapsed().as_secs_f64());
    env.ok(&["kernel", "path", "--source", "debian-7.3"]).trim().to_string()
}

#[test]
fn lavd_is_refused_by_6_12_with_the_reason_and_runs_on_7_3() {
    let env = Env::new();
    build(&env, LAVD);
    let k73 = kernel_73(&env);
    let tmp = tempfile::tempdir().unwrap();

    // 6.12 (the default kernel): a real kernel that lacks what lavd needs.
    let out = tmp.path().join("612");
    let o = env.run(&["experiment", "--sched", LAVD, "custom-churn", "8", "1", "--out", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: scx_lavd-1.1.4 exited before sched_ext was enabled: the guest kernel's verifier rejected BPF program `"),
        "{err}"
    );
    let d = out.join("scx_lavd-1.1.4/custom-churn/custom");
    assert!(std::fs::read_to_string(d.join("run1.scheduler.log")).unwrap().contains("BPF program load failed"));

    // 7.3, fresh guests (overlay reset): loads, runs, is judged.
    let t = Instant::now();
    let out = tmp.path().join("73");
    let o = env.run(&[
        "experiment", "--kernel", &k73, "--sched", LAVD, "--sched-args", "--performance", "hackbench", "16", "1", "--out",
        out.to_str().unwrap(),
    ]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("verdict: PASS"), "{all}");
    eprintln!("scx_lavd on 7.3, one 16 s run with a boot: {:.1} s", t.elapsed().as_secs_f64());
    let g = out.join("scx_lavd-1.1.4/hackbench");
    let r = json(&g.join("custom/run1.json"));
    assert_eq!(r["status"], "ok", "{r}");
    assert!(r["ops_name"].as_str().unwrap().starts_with("lavd"), "{r}");
    assert_eq!(r["exit_kind"], "UNREG", "{r}");
    assert_eq!(r["bin"]["stopped_by"], "SIGINT", "{r}");
    let rows = csv(&g.join("custom/run1.csv"));
    assert!(rows.len() >= 6 && rows.iter().all(|r| r.1 == "enabled"), "{rows:?}");
    let m = json(&g.join("manifest.json"));
    assert!(m["kernel"]["version"].as_str().unwrap().starts_with("7.3"), "{m}");
}

#[test]
fn sched_bad_input_is_one_line_and_exit_2() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let o_ = t.path().join("r");
    let o_ = o_.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["sched", "build", "scx bpfland"], "a scheduler crate is NAME or NAME@VERSION"),
        (vec!["sched", "build", "scx_bpfland@latest"], "`latest` is not a version"),
        (vec!["sched", "path", "scx_nosuch@9.9.9"], "scx_nosuch@9.9.9 is not built"),
        (vec!["experiment", "--sched", "scx_bpfland@1.1.4", "--sched-args", "-a", "--sched-args", "-b", "--sched-args", "-c", "custom-churn", "--out", o_], "--sched-args given 3 times for 1 scheduler(s)"),
        (vec!["experiment", "--sched", "scx_bpfland@1.1.4", "--sched-args", "--x 'unclosed", "custom-churn", "--out", o_], "--sched-args \"--x 'unclosed\""),
        (vec!["experiment", "scx_simple", "custom-churn", "--sched-args", "-v", "--out", o_], "--sched-args goes with --sched or --sched-bin"),
        (vec!["experiment", "--sched", "scx_bpfland@1.1.4", "--sched-bin", "/bin/true", "custom-churn", "--out", o_], "cannot be used with"),
        (vec!["experiment", "--sched", "scx_bpfland@1.1.4", "--variants", "control", "custom-churn", "--out", o_], "--variants does not go with --sched"),
        // crates.io answers: a version it does not have is the user's input
        (vec!["sched", "build", "scx_bpfland@0.0.1"], "crates.io has no scx_bpfland version 0.0.1"),
    ];
    for (args, want) in cases {
        let o = env.run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: want {want:?} in {err}");
        assert!(err.lines().filter(|l| !l.trim().is_empty()).count() <= 3, "{args:?}: short: {err}");
    }
}
