//! The kernel's own sched_ext selftests (`tools/testing/selftests/sched_ext`),
//! which `selftest` runs in the guest after the helper's cases: the patched
//! kernel must pass as many of them as the unpatched one does.
//!
//! They are built from the kernel tree `kernel build` keeps
//! (`<cache>/kernel/work/<work-id>/src`) with the tree's own libbpf and
//! bpftool, against the tested kernel's own vmlinux (its BTF makes the tests'
//! vmlinux.h), and cached by kernel id under `<cache>/kselftest/<id>/runner`.
//! Their `runner` prints, per test, a block from `===== START =====` to
//! `=====  END  =====` ending in a TAP-like line (`ok N name # `, `ok N name
//! # SKIP `, `not ok N name # `), then `PASSED:`, `SKIPPED:` and `FAILED:`
//! totals; it exits 0 either way, so the verdict comes from those lines.

use crate::artifacts::kernel::Kernel;
use crate::paths;
use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const GUEST_PATH: &str = "/root/scx-kselftest-runner";
/// Bump when the build below changes what it makes (part of the cache path).
const RECIPE_VERSION: &str = "r1";
/// Under single-threaded TCG 6.12's 21 tests take about a minute; a hung test
/// must not hang `selftest`.
pub const RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20 * 60);

/// The kept build tree of the same kernel release as `k` (its tools/ are what
/// the selftests are built from; the kernel's BTF comes from `k` itself).
/// Trees of the same flavor (guest/debug) are preferred.
pub fn tree_for(k: &Kernel) -> Result<PathBuf> {
    let work = paths::cache_dir().join("kernel/work");
    let mut found = Vec::new();
    for e in std::fs::read_dir(&work).into_iter().flatten().flatten() {
        let tree = e.path().join("src");
        let release = std::fs::read_to_string(tree.join("include/config/kernel.release")).unwrap_or_default();
        if release.trim() == k.info.version && tree.join("tools/testing/selftests/sched_ext/Makefile").exists() {
            let debug = e.path().join("fragments/debug.config").exists();
            found.push(((debug == (k.info.flavor == "debug")), tree));
        }
    }
    found.sort_by_key(|(same_flavor, _)| !same_flavor);
    found.into_iter().next().map(|(_, t)| t).with_context(|| {
        format!(
            "no kept kernel tree of {} under {} to build the sched_ext selftests from: run `scx-vmctl kernel build` \
             for this kernel again (it keeps its tree), or skip them with --no-kernel-selftests",
            k.info.version,
            work.display()
        )
    })
}

/// Headers the runner's build needs from the host, and the package for each.
const BUILD_DEPS: &[(&str, &str)] = &[
    ("/usr/include/zstd.h", "libzstd-dev"),
    ("/usr/include/gelf.h", "libelf-dev"),
    ("/usr/include/zlib.h", "zlib1g-dev"),
];

/// Build (or find in the cache) the selftests' runner for kernel `k`.
pub async fn build(k: &Kernel) -> Result<PathBuf> {
    let dir = paths::cache_dir().join("kselftest").join(format!("{}-{RECIPE_VERSION}", k.info.id));
    let runner = dir.join("runner");
    if runner.exists() {
        return Ok(runner);
    }
    let missing: Vec<&str> = BUILD_DEPS.iter().filter(|(h, _)| !Path::new(h).exists()).map(|(_, p)| *p).collect();
    if !missing.is_empty() {
        bail!(
            "building the kernel's sched_ext selftests needs {}: apt-get install {}",
            missing.join(", "),
            missing.join(" ")
        );
    }
    for tool in ["make", "gcc", "clang-19", "llvm-strip-19"] {
        if crate::artifacts::kernel::which(tool).is_none() {
            bail!("building the kernel's sched_ext selftests needs {tool}: apt-get install make gcc clang-19 llvm-19");
        }
    }
    let tree = tree_for(k)?;
    let vmlinux = k.vmlinux();
    if !vmlinux.exists() {
        bail!("{} is missing: the kernel's BTF is needed to build its sched_ext selftests", vmlinux.display());
    }
    let id = k.info.id.clone();
    tokio::task::spawn_blocking(move || build_blocking(&tree, &vmlinux, &id, &dir)).await?
}

fn build_blocking(tree: &Path, vmlinux: &Path, id: &str, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    // A private output directory: two `selftest`s building at once do not mix.
    let out = dir.join(format!("build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let log_path = dir.join("build.log");
    let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let src = tree.join("tools/testing/selftests/sched_ext");
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let mut p = Progress::new("kselftest").every(std::time::Duration::from_secs(15));
    p.note(&format!(
        "building the kernel's sched_ext selftests from {} for kernel {id} (log {})",
        src.display(),
        log_path.display()
    ));
    let mut child = Command::new("make")
        .arg("-C")
        .arg(&src)
        .arg(format!("-j{jobs}"))
        .arg(format!("OUTPUT={}", out.display()))
        .arg(format!("VMLINUX_BTF={}", vmlinux.display()))
        .args(["CLANG=clang-19", "LLVM_STRIP=llvm-strip-19"])
        // Nothing from a calling make (cargo test under make, a CI job) or the
        // user's environment may redirect the build.
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .env_remove("O")
        .env_remove("KBUILD_OUTPUT")
        .env_remove("VMLINUX_H")
        .env_remove("LLVM")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log.try_clone()?)
        .spawn()
        .context("cannot run make")?;
    let mut logw = std::io::BufWriter::new(log);
    let mut steps = 0usize;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line?;
        writeln!(logw, "{line}")?;
        steps += 1;
        p.update(&format!("{steps} steps"));
    }
    logw.flush()?;
    let status = child.wait()?;
    let built = out.join("runner");
    if !status.success() || !built.exists() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let first = text
            .lines()
            .find(|l| l.contains("error:") || l.contains("Error ") || l.contains("*** "))
            .map(|l| format!(": {}", l.trim()))
            .unwrap_or_default();
        let _ = std::fs::remove_dir_all(&out);
        bail!("building the kernel's sched_ext selftests failed (see {}){first}", log_path.display());
    }
    let tmp = dir.join(format!(".runner.{}", std::process::id()));
    std::fs::copy(&built, &tmp)?;
    std::fs::rename(&tmp, dir.join("runner"))?;
    let _ = std::fs::remove_dir_all(&out);
    p.finish("sched_ext selftests built");
    Ok(dir.join("runner"))
}

/// The kernel `k` a VM booted, if it is one of ours (its bzImage sits next to kernel.json).
pub fn built_kernel(bzimage: &Path) -> Option<Kernel> {
    let d = bzimage.parent()?;
    let info: crate::artifacts::kernel::KernelInfo = serde_json::from_slice(&std::fs::read(d.join("kernel.json")).ok()?).ok()?;
    Some(Kernel { dir: d.to_path_buf(), info })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Skip,
    Fail,
}

/// `ok 3 create_dsq # `, `ok 4 hotplug # SKIP `, `not ok 5 exit # `: status, number, name.
pub fn result_line(l: &str) -> Option<(Status, u32, &str)> {
    let (fail, rest) = match l.strip_prefix("not ok ") {
        Some(r) => (true, r),
        None => (false, l.strip_prefix("ok ")?),
    };
    let (num, rest) = rest.split_once(' ')?;
    let num = num.parse::<u32>().ok()?;
    let (name, directive) = rest.split_once(" #").unwrap_or((rest, ""));
    let status = if fail {
        Status::Fail
    } else if directive.trim_start().starts_with("SKIP") {
        Status::Skip
    } else {
        Status::Pass
    };
    Some((status, num, name.trim()))
}

/// What the runner reported.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Results {
    pub passed: u32,
    pub skipped: u32,
    pub failed: u32,
    /// Failed or skipped tests and the last line of their output (the reason).
    pub failures: Vec<(String, String)>,
    pub skips: Vec<(String, String)>,
    /// The runner printed its totals (it did not die half way), and they
    /// agree with the per-test lines.
    pub complete: bool,
}

impl Results {
    pub fn ok(&self) -> bool {
        self.complete && self.failed == 0
    }
    pub fn summary(&self) -> String {
        format!("sched_ext selftests: {} passed, {} skipped, {} failed", self.passed, self.skipped, self.failed)
    }
}

/// Reads the runner's output as it streams in, prints one line per test
/// (and a failed test's output), and counts.
#[derive(Default)]
pub struct Stream {
    pending: Vec<u8>,
    block: Vec<String>,
    totals: [Option<u32>; 3],
    /// Result lines counted so far: only the next number counts (see `line`).
    seen: u32,
    pub results: Results,
    /// The whole output, for a log when something failed.
    pub transcript: String,
}

/// Lines of a failed test's output shown (the rest is in the log).
const FAIL_LINES: usize = 30;

impl Stream {
    pub fn feed(&mut self, data: &[u8], out: &mut impl Write) {
        self.pending.extend_from_slice(data);
        while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.pending.drain(..=i).collect();
            let line = String::from_utf8_lossy(&raw[..raw.len() - 1]).trim_end_matches('\r').to_string();
            self.line(&line, out);
        }
    }

    /// The end of the output: a last line without a newline is read too.
    pub fn finish(&mut self, out: &mut impl Write) {
        if !self.pending.is_empty() {
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.pending)).to_string();
            self.line(&line, out);
        }
        let r = &mut self.results;
        r.complete = self.totals == [Some(r.passed), Some(r.skipped), Some(r.failed)];
    }

    fn line(&mut self, line: &str, out: &mut impl Write) {
        self.transcript.push_str(line);
        self.transcript.push('\n');
        if line == "===== START =====" {
            self.block.clear();
            return;
        }
        for (i, k) in ["PASSED:", "SKIPPED:", "FAILED:"].iter().enumerate() {
            if let Some(v) = line.strip_prefix(k) {
                self.totals[i] = v.trim().parse().ok();
                return;
            }
        }
        // Tests that fork (hotplug, init_enable_count) can make a child
        // flush a copy of the runner's unflushed stdout, replaying earlier
        // results; the runner is run line-buffered, and a result whose
        // number is not the next one is not counted either way.
        // A test's own output may hold TAP-like lines too (7.3's rt_stall
        // prints "ok 1 PASS: ..."): the result names the block's test.
        let testing = self.block.iter().find_map(|l| l.strip_prefix("TEST: ")).map(str::to_string);
        let Some((status, name)) = result_line(line)
            .filter(|(_, n, name)| *n == self.seen + 1 && testing.as_deref().is_none_or(|t| t == *name))
            .map(|(s, _, n)| (s, n))
        else {
            self.block.push(line.to_string());
            return;
        };
        self.seen += 1;
        // The block's lines after "OUTPUT:" are the test's own.
        let output: Vec<&String> = match self.block.iter().position(|l| l == "OUTPUT:") {
            Some(i) => self.block[i + 1..].iter().filter(|l| !l.trim().is_empty()).collect(),
            None => self.block.iter().filter(|l| !l.trim().is_empty() && !l.starts_with("TEST: ")).collect(),
        };
        let reason = output.last().map(|l| l.trim().to_string()).unwrap_or_default();
        let r = &mut self.results;
        match status {
            Status::Pass => {
                r.passed += 1;
                let _ = writeln!(out, "kernel ok   {name}");
            }
            Status::Skip => {
                r.skipped += 1;
                r.skips.push((name.to_string(), reason.clone()));
                let why = if reason.is_empty() { String::new() } else { format!(": {reason}") };
                let _ = writeln!(out, "kernel skip {name}{why}");
            }
            Status::Fail => {
                r.failed += 1;
                r.failures.push((name.to_string(), reason));
                let _ = writeln!(out, "kernel FAIL {name}");
                for l in &output[output.len().saturating_sub(FAIL_LINES)..] {
                    let _ = writeln!(out, "    {l}");
                }
            }
        }
        let _ = out.flush();
        self.block.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_result_lines() {
        assert_eq!(result_line("ok 1 create_dsq # "), Some((Status::Pass, 1, "create_dsq")));
        assert_eq!(result_line("ok 12 hotplug # SKIP "), Some((Status::Skip, 12, "hotplug")));
        assert_eq!(result_line("not ok 3 reload_loop # "), Some((Status::Fail, 3, "reload_loop")));
        assert_eq!(result_line("ok 3 exit"), Some((Status::Pass, 3, "exit")));
        assert_eq!(result_line("ok"), None);
        assert_eq!(result_line("ok so far"), None);
        assert_eq!(result_line("libbpf: prog 'x': ok 1 y"), None);
    }

    const RUN: &str = "===== START =====\nTEST: create_dsq\nOUTPUT:\nok 1 create_dsq # \n=====  END  =====\n\
        ===== START =====\nTEST: hotplug\nOUTPUT:\nneeds 2 CPUs\nok 2 hotplug # SKIP \n=====  END  =====\n\
        ===== START =====\nTEST: exit\nOUTPUT:\nlibbpf: noise\nERR: exit.c:42\nExpected skel (0)\nnot ok 3 exit # \n=====  END  =====\n\
        \n\n=============================\n\nRESULTS:\n\nPASSED:  1\nSKIPPED: 1\nFAILED:  1\n";

    #[test]
    fn counts_and_prints_a_run_fed_in_pieces() {
        let mut s = Stream::default();
        let mut out = Vec::new();
        for chunk in RUN.as_bytes().chunks(7) {
            s.feed(chunk, &mut out);
        }
        s.finish(&mut out);
        let r = &s.results;
        assert_eq!((r.passed, r.skipped, r.failed, r.complete), (1, 1, 1, true));
        assert_eq!(r.skips, vec![("hotplug".to_string(), "needs 2 CPUs".to_string())]);
        assert_eq!(r.failures, vec![("exit".to_string(), "Expected skel (0)".to_string())]);
        assert!(!r.ok());
        assert_eq!(r.summary(), "sched_ext selftests: 1 passed, 1 skipped, 1 failed");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "kernel ok   create_dsq\nkernel skip hotplug: needs 2 CPUs\nkernel FAIL exit\n    libbpf: noise\n    \
             ERR: exit.c:42\n    Expected skel (0)\n"
        );
        assert_eq!(s.transcript, RUN);
    }

    #[test]
    fn output_replayed_by_a_forked_child_is_not_counted_twice() {
        // What a fully buffered stdout gave on 6.12: the children of a
        // forking test flushed copies of "ok 1 .. ok 8" again and again.
        let replay = "===== START =====\nTEST: create_dsq\nOUTPUT:\nok 1 create_dsq # \n=====  END  =====\n";
        let mut s = Stream::default();
        let mut out = Vec::new();
        let text =
            RUN.replacen("===== START =====\nTEST: exit", &format!("{replay}{replay}===== START =====\nTEST: exit"), 1);
        s.feed(text.as_bytes(), &mut out);
        s.finish(&mut out);
        assert_eq!((s.results.passed, s.results.skipped, s.results.failed, s.results.complete), (1, 1, 1, true));
        assert_eq!(String::from_utf8(out).unwrap().matches("kernel ok   create_dsq").count(), 1);
    }

    #[test]
    fn a_tests_own_tap_lines_are_its_output() {
        // 7.3's rt_stall prints "ok 1 PASS: ..." lines of its own.
        let run = "ok 1 create_dsq # \n===== START =====\nTEST: rt_stall\nOUTPUT:\nok 1 PASS: FAIR task got more\n\
                   ok 2 PASS: EXT task got more\nok 2 rt_stall # \nPASSED:  2\nSKIPPED: 0\nFAILED:  0\n";
        let mut s = Stream::default();
        let mut out = Vec::new();
        s.feed(run.as_bytes(), &mut out);
        s.finish(&mut out);
        assert!(s.results.ok() && s.results.passed == 2, "{:?}", s.results);
        assert_eq!(String::from_utf8(out).unwrap(), "kernel ok   create_dsq\nkernel ok   rt_stall\n");
    }

    #[test]
    fn a_runner_that_dies_half_way_is_not_complete() {
        let mut s = Stream::default();
        let mut out = Vec::new();
        let cut = RUN.find("===== START =====\nTEST: exit").unwrap();
        s.feed(&RUN.as_bytes()[..cut], &mut out);
        s.feed(b"===== START =====\nTEST: exit\nOUTPUT:\nSegmentation fault", &mut out);
        s.finish(&mut out);
        assert_eq!((s.results.passed, s.results.skipped, s.results.failed), (1, 1, 0));
        assert!(!s.results.complete && !s.results.ok());
        // All passing, totals present: ok.
        let mut s = Stream::default();
        s.feed(b"ok 1 a # \nok 2 b # \nPASSED:  2\nSKIPPED: 0\nFAILED:  0\n", &mut out);
        s.finish(&mut out);
        assert!(s.results.ok());
    }
}
