//! Saved guests (`--reset snapshot`, `up --snapshot`) in real TCG guests: a
//! guest restored from the saved state holds nothing a previous guest from
//! the same state left (scheduler, maps, processes, files), its RNG is
//! reseeded and its clock is the host's; a state whose record does not
//! match what is asked for is never loaded; an experiment judged on
//! snapshot resets gets the verdicts overlay resets get.

mod common;
use common::*;
use std::time::{SystemTime, UNIX_EPOCH};

const CFG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/quick-tcg.yaml");
const AGENT: &str = "/root/scx-guest-agent";

fn sh(env: &Env, name: &str, script: &str) -> std::process::Output {
    env.run(&["ssh", name, "--", "sh", "-c", script])
}

fn ok(env: &Env, name: &str, script: &str) -> String {
    let o = sh(env, name, script);
    assert_eq!(o.status.code(), Some(0), "{script}\nstdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn up(env: &Env, name: &str) -> String {
    let o = env.run(&["up", "--snapshot", "--name", name]);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("restored     from the saved guest"), "{text}");
    text
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn restored_guests_start_clean_reseeded_and_on_time() {
    let env = Env::new();
    let first = up(&env, "snapa");
    assert!(first.contains("[snapshot] saved"), "the first use saves the guest: {first}");
    let dir = first.lines().find_map(|l| l.split("from the saved guest ").nth(1)).unwrap().split(" (agent").next().unwrap().to_string();

    // Dirty the first restored guest every way a run could: a scheduler
    // loaded with its maps, a stray process, a file, and note its RNG.
    ok(&env, "snapa", &format!("setsid {AGENT} hold --sched scx_simple --variant control </dev/null >/dev/null 2>&1 &"));
    ok(&env, "snapa", "i=0; until [ \"$(cat /sys/kernel/sched_ext/state)\" = enabled ]; do i=$((i+1)); [ $i -lt 600 ] || exit 9; sleep 0.1; done");
    ok(&env, "snapa", "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo dirt > /root/dirt; sync");
    assert!(ok(&env, "snapa", "bpftool map list").contains("tracked_tasks"));
    let uuid_a = ok(&env, "snapa", "cat /proc/sys/kernel/random/uuid");
    env.ok(&["down", "snapa", "--force"]);

    let second = up(&env, "snapb");
    assert!(!second.contains("[snapshot] saved"), "the saved guest is reused: {second}");
    assert_eq!(ok(&env, "snapb", "cat /sys/kernel/sched_ext/state"), "disabled");
    let maps = ok(&env, "snapb", "bpftool map list");
    assert!(!maps.contains("tracked_tasks"), "{maps}");
    assert_eq!(ok(&env, "snapb", "pgrep -x sleep; pgrep -f 'guest-agent [h]old'; ls /root/dirt 2>&1; true"), "ls: cannot access '/root/dirt': No such file or directory");
    assert!(ok(&env, "snapb", &format!("test -x {AGENT} && echo agent")).contains("agent"));
    // the same saved RNG state, yet another stream of numbers
    let uuid_b = ok(&env, "snapb", "cat /proc/sys/kernel/random/uuid");
    assert_ne!(uuid_a, uuid_b);
    // the guest's clock stood still while the state sat on disk; the restore sets it
    let before = now();
    let guest: f64 = ok(&env, "snapb", "date +%s.%N").parse().unwrap();
    let after = now();
    assert!(guest > before - 1.0 && guest < after + 1.0, "guest clock {guest}, host {before}..{after}");
    env.ok(&["down", "snapb", "--force"]);

    // A state under the right key whose record says it was saved from
    // another agent is refused and replaced, never loaded.
    let rec = std::path::Path::new(&dir).join("snapshot.json");
    let mut info: serde_json::Value = serde_json::from_slice(&std::fs::read(&rec).unwrap()).unwrap();
    info["inputs"]["agent_id"] = "0000000000000000".into();
    std::fs::write(&rec, serde_json::to_vec(&info).unwrap()).unwrap();
    let third = up(&env, "snapc");
    assert!(third.contains("not using a saved guest state") && third.contains("saved for another agent_id"), "{third}");
    assert!(third.contains("[snapshot] saved"), "{third}");
    env.ok(&["down", "snapc", "--force"]);
}

/// The verdict lines of a group's summary.json: (criterion, status).
fn verdicts(group: &std::path::Path) -> Vec<(String, String)> {
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(group.join("summary.json")).unwrap()).unwrap();
    s["groups"][0]["criteria"]
        .as_array()
        .unwrap_or_else(|| panic!("{s}"))
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["status"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn snapshot_resets_judge_as_overlay_resets_do() {
    let env = Env::new();
    let t = tempfile::tempdir().unwrap();
    let mut got = Vec::new();
    for reset in ["overlay", "snapshot"] {
        let out = t.path().join(reset);
        let o = env.run(&["experiment", "scx_simple", "custom-churn", "20", "1", "--config", CFG, "--reset", reset, "--out", out.to_str().unwrap()]);
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
        assert_eq!(o.status.code(), Some(0), "{reset}: {text}");
        let g = out.join("scx_simple/custom-churn");
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(g.join("manifest.json")).unwrap()).unwrap();
        for r in m["runs"].as_array().unwrap() {
            assert_eq!(r["reset"], reset, "{r}");
            assert_eq!(r["snapshot"].is_string(), reset == "snapshot", "{r}");
        }
        for v in ["control", "test"] {
            let run: serde_json::Value = serde_json::from_slice(&std::fs::read(g.join(v).join("run1.json")).unwrap()).unwrap();
            assert_eq!(run["reset"], reset);
            // a restored run's console starts with the boot its state came from
            let serial = std::fs::read_to_string(g.join(v).join("run1.serial.log")).unwrap();
            assert!(serial.contains("Linux version"), "{serial}");
            assert_eq!(serial.contains("restored from saved state"), reset == "snapshot", "{serial}");
        }
        got.push(verdicts(&g));
    }
    assert_eq!(got[0].len(), 6, "{got:?}");
    assert_eq!(got[0], got[1]);
}
