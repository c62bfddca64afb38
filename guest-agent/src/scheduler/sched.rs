//! Loading one of the twenty scheduler builds through its skeleton,
//! attaching it as struct_ops, and reading its BSS (counters, exit record)
//! while it runs. The twenty skeleton types differ only in name, so one
//! macro writes the loader for each; everything else is shared.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::Link;

use scx_contract::config::Cleanup;
use crate::exit::{Exit, BAD_INPUT, LOAD_FAILED};
use scx_contract::names::{Scheduler, Variant};
use crate::bpf::{btf, verifier};
use crate::skel;

pub const HELPER: &str = "scx_bpf_map_scan_timeout";
pub const STATE: &str = "/sys/kernel/sched_ext/state";
pub const ROOT_OPS: &str = "/sys/kernel/sched_ext/root/ops";

/// /sys/kernel/sched_ext/state: enabled, disabled, enabling, disabling;
/// "unsupported" on a kernel without sched_ext.
pub fn state() -> String {
    std::fs::read_to_string(STATE)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unsupported".into())
}

/// ops.name of the attached scheduler, if one is attached.
pub fn root_ops() -> Option<String> {
    std::fs::read_to_string(ROOT_OPS).ok().map(|s| s.trim().to_string())
}

/// Cumulative counters from the scheduler's BSS (see bpf/include/track.h).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Counters {
    pub evictions: u64,
    pub scans: u64,
    pub scan_timeouts: u64,
    pub max_scan_ns: u64,
    pub scan_busy: u64,
    pub track_fail: u64,
    pub running: u64,
    pub dispatched: u64,
    /// Live tasks touched again after a scan evicted their entry.
    pub false_evictions: u64,
    /// ns spent in the tracking code (insert/refresh, scans, exit deletes).
    pub track_ns: u64,
    /// exitdel: entries deleted by ops.exit_task.
    pub exit_deletes: u64,
}

/// What ops.exit recorded (our own copy of the kernel's scx_exit_info).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExitInfo {
    pub kind: i32,
    pub code: i64,
    pub reason: String,
    pub msg: String,
}

impl ExitInfo {
    /// enum scx_exit_kind without its SCX_EXIT_ prefix.
    pub fn kind_name(&self) -> String {
        match self.kind {
            0 => "NONE".into(),
            1 => "DONE".into(),
            64 => "UNREG".into(),
            65 => "UNREG_BPF".into(),
            66 => "UNREG_KERN".into(),
            67 => "SYSRQ".into(),
            1024 => "ERROR".into(),
            1025 => "ERROR_BPF".into(),
            1026 => "ERROR_STALL".into(),
            k => format!("KIND_{k}"),
        }
    }

    pub fn is_error(&self) -> bool {
        self.kind >= 1024
    }

    /// "reason (message)" as the kernel would print it.
    pub fn describe(&self) -> String {
        if self.msg.is_empty() {
            self.reason.clone()
        } else {
            format!("{} ({})", self.reason, self.msg)
        }
    }
}

fn c_string(bytes: &[i8]) -> String {
    let b: Vec<u8> = bytes.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
    String::from_utf8_lossy(&b).into_owned()
}

/// A loaded, attached scheduler.
pub trait Running {
    fn counters(&self) -> Counters;
    /// Some once the scheduler has exited (ops.exit ran).
    fn exit_info(&self) -> Option<ExitInfo>;
    /// Ask the scheduler to fail with scx_bpf_error("injected error").
    fn inject_error(&mut self);
    /// The `tracked_tasks` map.
    fn tracked_map(&self) -> BorrowedFd<'_>;
    /// Drop the struct_ops link: the kernel unregisters the scheduler.
    fn detach(&mut self);
}

pub struct LoadOpts<'a> {
    pub cleanup: &'a Cleanup,
    /// BTF to look for the helper in (normally /sys/kernel/btf/vmlinux)
    pub kernel_btf: &'a Path,
}

/// Facts about the load for the run's records.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadReport {
    pub ops_name: String,
    pub load_ms: f64,
    pub attach_ms: f64,
    /// veristat-like figures per program (written to verifier.json)
    pub verifier: Vec<crate::bpf::verifier_stats::ProgStats>,
}

/// The test variant needs the helper: say so before libbpf fails on it.
pub fn check_helper(variant: Variant, kernel_btf: &Path) -> Result<()> {
    if variant != Variant::Test {
        return Ok(());
    }
    match btf::has_func(kernel_btf, HELPER) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Exit::new(
            LOAD_FAILED,
            format!(
                "the test variant needs the kernel helper {HELPER}, which this kernel lacks \
                 (not in {}); the other variants run without it",
                kernel_btf.display()
            ),
        )
        .into()),
        Err(e) => Err(Exit::new(LOAD_FAILED, format!("cannot check for {HELPER}: {e:#}")).into()),
    }
}

fn load_error(what: &str, err: libbpf_rs::Error) -> anyhow::Error {
    load_error_from(what, err, &verifier::take())
}

/// A failed load with our own log buffers (verifier_stats): libbpf printed
/// no log, so add the failed program's where verifier::tail looks.
fn load_error_logged(what: &str, err: libbpf_rs::Error, bufs: &crate::bpf::verifier_stats::LogBufs) -> anyhow::Error {
    let mut out = verifier::take();
    if let Some(log) = verifier::failed_prog(&out).and_then(|p| bufs.log_of(&p)) {
        out.push_str(&format!("-- BEGIN PROG LOAD LOG --\n{log}\n-- END PROG LOAD LOG --\n"));
    }
    load_error_from(what, err, &out)
}

fn load_error_from(what: &str, err: libbpf_rs::Error, out: &str) -> anyhow::Error {
    let detail = match verifier::tail(out, 20) {
        Some(t) => format!("verifier rejected the program; last lines of its log:\n{t}"),
        None => verifier::errors(out, 10),
    };
    Exit::new(LOAD_FAILED, format!("{what}: {err}\n{detail}").trim_end().to_string()).into()
}

macro_rules! builds {
    ($( $sched:ident $variant:ident => $module:ident, $Builder:ident, $Skel:ident; )*) => {
        /// Load and attach `sched`/`variant`, run `f` with it, detach.
        pub fn with_scheduler<R>(
            sched: Scheduler,
            variant: Variant,
            opts: &LoadOpts<'_>,
            f: impl FnOnce(&mut dyn Running, LoadReport) -> Result<R>,
        ) -> Result<R> {
            check_helper(variant, opts.kernel_btf)?;
            if state() != "disabled" {
                return Err(Exit::new(
                    LOAD_FAILED,
                    format!(
                        "another sched_ext scheduler is attached (state {}, ops {}); run `reset` first",
                        state(),
                        root_ops().unwrap_or_default()
                    ),
                ).into());
            }
            verifier::take();
            match (sched, variant) {
                $( (Scheduler::$sched, Variant::$variant) => {
                    struct Loaded<'o> {
                        skel: skel::$module::$Skel<'o>,
                        link: Option<Link>,
                        ops_name: String,
                    }

                    impl Running for Loaded<'_> {
                        fn counters(&self) -> Counters {
                            let b = self.skel.maps.bss_data.as_deref().expect("bss is mmapped");
                            // the scheduler writes these concurrently
                            // SAFETY: p points at a u64 in the skeleton's mmapped .bss, alive while the skeleton is.
                            let rd = |p: &u64| unsafe { std::ptr::read_volatile(p) };
                            Counters {
                                evictions: rd(&b.nr_evictions),
                                scans: rd(&b.nr_scans),
                                scan_timeouts: rd(&b.nr_scan_timeouts),
                                max_scan_ns: rd(&b.max_scan_ns),
                                scan_busy: rd(&b.nr_scan_busy),
                                track_fail: rd(&b.nr_track_fail),
                                running: rd(&b.nr_running),
                                dispatched: rd(&b.nr_dispatched),
                                false_evictions: rd(&b.nr_false_evictions),
                                track_ns: rd(&b.nr_track_ns),
                                exit_deletes: rd(&b.nr_exit_deletes),
                            }
                        }

                        fn exit_info(&self) -> Option<ExitInfo> {
                            let b = self.skel.maps.bss_data.as_deref().expect("bss is mmapped");
                            // SAFETY: b points at the skeleton's mmapped .bss, alive while self.skel is;
                            // exit_record is plain integers and byte arrays.
                            let r = unsafe { std::ptr::read_volatile(&b.exit_record) };
                            (r.kind != 0).then(|| ExitInfo {
                                kind: r.kind,
                                code: r.exit_code,
                                reason: c_string(&r.reason),
                                msg: c_string(&r.msg),
                            })
                        }

                        fn inject_error(&mut self) {
                            let b = self.skel.maps.bss_data.as_deref_mut().expect("bss is mmapped");
                            // SAFETY: b points at the skeleton's mmapped, writable .bss, alive while self.skel is.
                            unsafe { std::ptr::write_volatile(&mut b.inject_error, 1) };
                        }

                        fn tracked_map(&self) -> BorrowedFd<'_> {
                            self.skel.maps.tracked_tasks.as_fd()
                        }

                        fn detach(&mut self) {
                            self.link.take();
                        }
                    }

                    let mut storage = MaybeUninit::uninit();
                    let t0 = Instant::now();
                    let mut open = skel::$module::$Builder::default()
                        .open(&mut storage)
                        .map_err(|e| load_error("opening the BPF object", e))?;
                    {
                        let ro = open.maps.rodata_data.as_deref_mut().expect("rodata exists");
                        ro.cleanup_interval_ns = opts.cleanup.interval_ns();
                        ro.cleanup_timeout_ns = opts.cleanup.timeout_ns();
                        ro.cleanup_max_age_ns = opts.cleanup.max_age_ns();
                    }
                    // 6.12 wants SCX_OPS_HAS_CGROUP_WEIGHT from a cgroup scheduler;
                    // later kernels dropped the flag and refuse unknown ones.
                    if sched == Scheduler::Flatcg {
                        if let Ok(Some(f)) = crate::bpf::btf::enum_value(opts.kernel_btf, "scx_ops_flags", "SCX_OPS_HAS_CGROUP_WEIGHT") {
                            open.struct_ops.sched_ops_mut().flags |= f;
                        }
                    }
                    let log_bufs = crate::bpf::verifier_stats::prepare(open.open_object_mut());
                    let mut skel = open
                        .load()
                        .map_err(|e| load_error_logged(&format!("loading {}", sched.ops_name(variant)), e, &log_bufs))?;
                    let load_ms = t0.elapsed().as_secs_f64() * 1e3;

                    let t1 = Instant::now();
                    let link = match skel.maps.sched_ops.attach_struct_ops() {
                        Ok(l) => l,
                        Err(e) => {
                            // ops.init may have failed: the exit record says why
                            let why = {
                                let b = skel.maps.bss_data.as_deref().expect("bss is mmapped");
                                // SAFETY: b points at the loaded skel's mmapped .bss, alive here;
                                // exit_record is plain integers and byte arrays.
                                let r = unsafe { std::ptr::read_volatile(&b.exit_record) };
                                if r.kind != 0 {
                                    format!(": {} ({})", c_string(&r.reason), c_string(&r.msg))
                                } else {
                                    String::new()
                                }
                            };
                            let mut err = load_error("attaching the struct_ops", e);
                            if !why.is_empty() {
                                err = err.context(format!("the scheduler refused to start{why}"));
                            }
                            return Err(err);
                        }
                    };
                    let attach_ms = t1.elapsed().as_secs_f64() * 1e3;
                    let mut loaded = Loaded { skel, link: Some(link), ops_name: sched.ops_name(variant) };
                    verify_attached(&loaded.ops_name, || loaded.exit_info())?;
                    let report = LoadReport {
                        ops_name: loaded.ops_name.clone(),
                        load_ms,
                        attach_ms,
                        verifier: log_bufs.collect(),
                    };
                    let result = f(&mut loaded, report);
                    loaded.detach();
                    result
                } )*
            }
        }
    };
}

builds! {
    Simple Control => scx_simple_control, ScxSimpleControlSkelBuilder, ScxSimpleControlSkel;
    Simple Test => scx_simple_test, ScxSimpleTestSkelBuilder, ScxSimpleTestSkel;
    Simple Bpfscan => scx_simple_bpfscan, ScxSimpleBpfscanSkelBuilder, ScxSimpleBpfscanSkel;
    Simple Exitdel => scx_simple_exitdel, ScxSimpleExitdelSkelBuilder, ScxSimpleExitdelSkel;
    Simple Taskstor => scx_simple_taskstor, ScxSimpleTaskstorSkelBuilder, ScxSimpleTaskstorSkel;
    Cfsish Control => scx_cfsish_control, ScxCfsishControlSkelBuilder, ScxCfsishControlSkel;
    Cfsish Test => scx_cfsish_test, ScxCfsishTestSkelBuilder, ScxCfsishTestSkel;
    Cfsish Bpfscan => scx_cfsish_bpfscan, ScxCfsishBpfscanSkelBuilder, ScxCfsishBpfscanSkel;
    Cfsish Exitdel => scx_cfsish_exitdel, ScxCfsishExitdelSkelBuilder, ScxCfsishExitdelSkel;
    Cfsish Taskstor => scx_cfsish_taskstor, ScxCfsishTaskstorSkelBuilder, ScxCfsishTaskstorSkel;
    Flatcg Control => scx_flatcg_control, ScxFlatcgControlSkelBuilder, ScxFlatcgControlSkel;
    Flatcg Test => scx_flatcg_test, ScxFlatcgTestSkelBuilder, ScxFlatcgTestSkel;
    Flatcg Bpfscan => scx_flatcg_bpfscan, ScxFlatcgBpfscanSkelBuilder, ScxFlatcgBpfscanSkel;
    Flatcg Exitdel => scx_flatcg_exitdel, ScxFlatcgExitdelSkelBuilder, ScxFlatcgExitdelSkel;
    Flatcg Taskstor => scx_flatcg_taskstor, ScxFlatcgTaskstorSkelBuilder, ScxFlatcgTaskstorSkel;
    Nest Control => scx_nest_control, ScxNestControlSkelBuilder, ScxNestControlSkel;
    Nest Test => scx_nest_test, ScxNestTestSkelBuilder, ScxNestTestSkel;
    Nest Bpfscan => scx_nest_bpfscan, ScxNestBpfscanSkelBuilder, ScxNestBpfscanSkel;
    Nest Exitdel => scx_nest_exitdel, ScxNestExitdelSkelBuilder, ScxNestExitdelSkel;
    Nest Taskstor => scx_nest_taskstor, ScxNestTaskstorSkelBuilder, ScxNestTaskstorSkel;
}

/// After attach the kernel must report our scheduler as the enabled one.
/// A failing ops.init does not fail the attach: the kernel disables the
/// scheduler right after and reports why through ops.exit, so wait for that.
fn verify_attached(ops_name: &str, exit_info: impl Fn() -> Option<ExitInfo>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(e) = exit_info() {
            return Err(Exit::new(
                LOAD_FAILED,
                format!("{ops_name} stopped right after attaching ({}): {}", e.kind_name(), e.describe()),
            )
            .into());
        }
        let st = state();
        let ops = root_ops();
        if st == "enabled" && ops.as_deref() == Some(ops_name) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Exit::new(
                LOAD_FAILED,
                format!(
                    "attached, but sched_ext reports state `{st}` and ops `{}` (expected enabled, {ops_name})",
                    ops.unwrap_or_default()
                ),
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Used by `run` for a clear message when the name pair is fine but the
/// kernel has no sched_ext at all.
pub fn check_sched_ext() -> Result<()> {
    if !Path::new(STATE).exists() {
        return Err(Exit::new(BAD_INPUT, "this kernel has no sched_ext (/sys/kernel/sched_ext missing)").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_kinds() {
        let e = ExitInfo { kind: 1025, code: 0, reason: "scx_bpf_error".into(), msg: "injected error".into() };
        assert_eq!(e.kind_name(), "ERROR_BPF");
        assert!(e.is_error());
        assert_eq!(e.describe(), "scx_bpf_error (injected error)");
        let u = ExitInfo { kind: 64, code: 0, reason: "unregistered from user space".into(), msg: String::new() };
        assert_eq!(u.kind_name(), "UNREG");
        assert!(!u.is_error());
        assert_eq!(u.describe(), "unregistered from user space");
    }

    #[test]
    fn a_rejection_shows_the_end_of_the_verifier_log() {
        let mut out = String::from(
            "libbpf: prog 'simple_enqueue': BPF program load failed: Permission denied\n\
             libbpf: prog 'simple_enqueue': -- BEGIN PROG LOAD LOG --\n",
        );
        for i in 0..500 {
            out.push_str(&format!("{i}: (bf) r{} = r1\n", i % 9));
        }
        out.push_str("R2 invalid mem access 'scalar'\nprocessed 500 insns (limit 1000000)\n-- END PROG LOAD LOG --\n");
        let e = load_error_from("loading simple_test", libbpf_rs::Error::from_raw_os_error(13), &out);
        assert_eq!(crate::exit::code_of(&e), LOAD_FAILED);
        let msg = format!("{e:#}");
        assert!(msg.starts_with("loading simple_test: "), "{msg}");
        assert!(msg.contains("verifier rejected the program; last lines of its log:"), "{msg}");
        assert!(msg.contains("(482 earlier verifier lines omitted)"), "{msg}");
        assert!(msg.contains("R2 invalid mem access 'scalar'"), "{msg}");
        assert!(msg.ends_with("processed 500 insns (limit 1000000)"), "{msg}");
        assert!(!msg.contains("\n0: (bf)"), "the head of the log is left out: {msg}");
        assert!(msg.lines().count() <= 25, "{} lines: {msg}", msg.lines().count());
    }

    #[test]
    fn c_strings_stop_at_nul() {
        let mut b = [0i8; 8];
        for (i, c) in b"abc".iter().enumerate() {
            b[i] = *c as i8;
        }
        assert_eq!(c_string(&b), "abc");
    }
}
