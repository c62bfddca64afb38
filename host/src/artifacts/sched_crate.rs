//! Schedulers of the sched-ext/scx project, built from crates.io
//! (`scx-vmctl sched build scx_bpfland@1.1.4`) into the cache:
//! `<cache>/sched/<crate>-<version>-<key>/bin/<crate>`, keyed by crate,
//! version, the Rust toolchain and the BPF clang. Their BPF code is compiled
//! against the vmlinux.h the scx crates ship and loads through CO-RE, so the
//! guest kernel is not part of the key. All crates share one cargo target
//! directory (`<cache>/sched/target`): scx_utils, libbpf-rs and bindgen are
//! built once for all of them.

use crate::paths;
use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const RECIPE_VERSION: &str = "sched-crate-1";

/// `scx_bpfland` or `scx_bpfland@1.1.4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedRef {
    pub name: String,
    pub version: Option<String>,
}

impl SchedRef {
    pub fn parse(s: &str) -> Result<SchedRef> {
        let (name, version) = match s.split_once('@') {
            Some((n, v)) => (n, Some(v)),
            None => (s, None),
        };
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && name.as_bytes()[0].is_ascii_alphabetic();
        if !name_ok {
            bail!("`{s}`: a scheduler crate is NAME or NAME@VERSION, e.g. scx_bpfland@1.1.4");
        }
        if let Some(v) = version {
            let ok = !v.is_empty()
                && v.as_bytes()[0].is_ascii_digit()
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b));
            if !ok {
                bail!("`{s}`: `{v}` is not a version; give one as on crates.io, e.g. {name}@1.1.4");
            }
        }
        Ok(SchedRef { name: name.to_string(), version: version.map(str::to_string) })
    }
}

impl std::fmt::Display for SchedRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// What `sched build` leaves beside the binary (build.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildInfo {
    pub name: String,
    pub version: String,
    pub key: String,
    pub rustc: String,
    pub bpf_clang: String,
    /// wall time of the cargo build, seconds
    pub build_s: f64,
    pub built_unix: u64,
}

#[derive(Debug, Clone)]
pub struct Built {
    pub dir: PathBuf,
    pub info: BuildInfo,
}

impl Built {
    pub fn binary(&self) -> PathBuf {
        self.dir.join("bin").join(&self.info.name)
    }
    pub fn label(&self) -> String {
        format!("{}@{}", self.info.name, self.info.version)
    }
}

pub fn root() -> PathBuf {
    paths::cache_dir().join("sched")
}

fn target_dir() -> PathBuf {
    root().join("target")
}

fn first_line(cmd: &str, args: &[&str]) -> Option<String> {
    let o = Command::new(cmd).args(args).stdin(Stdio::null()).output().ok()?;
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_string())
}

/// The clang the scx build scripts compile BPF with (`BPF_CLANG`, default `clang`).
fn bpf_clang() -> Option<String> {
    if let Ok(c) = std::env::var("BPF_CLANG") {
        return Some(c);
    }
    ["clang", "clang-19"].iter().find(|c| crate::artifacts::kernel::which(c).is_some()).map(|c| c.to_string())
}

/// libclang for bindgen: clang-sys finds it under /usr/lib/llvm-*/lib, or LIBCLANG_PATH.
fn libclang_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LIBCLANG_PATH") {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("llvm-"))
        .map(|e| e.path().join("lib"))
        .filter(|d| d.join("libclang.so").exists() || has_libclang_so(d))
        .collect();
    dirs.sort();
    dirs.pop()
}

fn has_libclang_so(d: &Path) -> bool {
    std::fs::read_dir(d)
        .map(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libclang-") && e.file_name().to_string_lossy().contains(".so")))
        .unwrap_or(false)
}

/// What the host lacks to build an scx crate, each as (what, Debian package).
pub fn missing_prerequisites() -> Vec<(&'static str, &'static str)> {
    let mut m = Vec::new();
    if crate::artifacts::kernel::which("cargo").is_none() {
        m.push(("cargo (a Rust toolchain, 1.91 or newer for scx 1.1.x)", "rustup"));
    }
    if bpf_clang().is_none() {
        m.push(("clang for the BPF programs", "clang-19"));
    }
    if libclang_dir().is_none() {
        m.push(("libclang for bindgen", "libclang-19-dev"));
    }
    if crate::artifacts::kernel::which("pkg-config").is_none() {
        m.push(("pkg-config", "pkg-config"));
    } else {
        for (lib, pkg) in [("libelf", "libelf-dev"), ("zlib", "zlib1g-dev")] {
            let ok = Command::new("pkg-config").args(["--exists", lib]).status().map(|s| s.success()).unwrap_or(false);
            if !ok {
                m.push((if lib == "zlib" { "zlib" } else { "libelf" }, pkg));
            }
        }
    }
    m
}

/// Install what is missing through scripts/setup-host.sh (as root), then
/// say in one line what is still missing.
fn ensure_prerequisites(p: &mut Progress) -> Result<()> {
    let missing = missing_prerequisites();
    if missing.is_empty() {
        return Ok(());
    }
    let pkgs: Vec<&str> = missing.iter().map(|(_, p)| *p).filter(|p| *p != "rustup").collect();
    let script = paths::source_dir().ok().map(|d| d.join("scripts/setup-host.sh")).filter(|s| s.is_file());
    if let (false, Some(script)) = (pkgs.is_empty(), script) {
        // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            p.note(&format!("installing host packages for scheduler builds ({}) with {}", pkgs.join(", "), script.display()));
            let st = Command::new("bash").arg(&script).stdin(Stdio::null()).status().context("cannot run bash")?;
            if !st.success() {
                bail!("{} failed ({st}): install {} by hand", script.display(), pkgs.join(" "));
            }
        }
    }
    let still = missing_prerequisites();
    if let Some((what, pkg)) = still.first() {
        if *pkg == "rustup" {
            bail!("building a scheduler crate needs {what}: install one with rustup and re-run");
        }
        bail!(
            "building a scheduler crate needs {what}: apt-get install {} (or run scripts/setup-host.sh as root)",
            still.iter().map(|(_, p)| *p).collect::<Vec<_>>().join(" ")
        );
    }
    Ok(())
}

/// The newest version of `name` on crates.io (`cargo info`).
fn newest_version(name: &str) -> Result<String> {
    let o = Command::new("cargo")
        .args(["info", name])
        .env("CARGO_TERM_COLOR", "never")
        .stdin(Stdio::null())
        .output()
        .context("cannot run cargo")?;
    let text = String::from_utf8_lossy(&o.stdout);
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        if err.contains("could not find") {
            bail!(crate::error::BadInput(format!("crates.io has no crate `{name}` (the scx schedulers are scx_bpfland, scx_lavd, scx_rusty, ...)")));
        }
        bail!("cannot ask crates.io for `{name}`'s newest version: {}", err.trim().lines().last().unwrap_or(""));
    }
    text.lines()
        .find_map(|l| l.trim().strip_prefix("version:").map(|v| v.split_whitespace().next().unwrap_or("").to_string()))
        .filter(|v| !v.is_empty())
        .with_context(|| format!("`cargo info {name}` printed no version"))
}

fn toolchain() -> (String, String) {
    let rustc = first_line("rustc", &["-V"]).unwrap_or_else(|| "rustc unknown".into());
    let clang = bpf_clang().and_then(|c| first_line(&c, &["--version"])).unwrap_or_else(|| "clang unknown".into());
    (rustc, clang)
}

pub fn key(name: &str, version: &str, rustc: &str, clang: &str) -> String {
    let mut h = Sha256::new();
    for part in [RECIPE_VERSION, name, version, rustc, clang] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())[..16].to_string()
}

fn load(dir: &Path) -> Option<Built> {
    let info: BuildInfo = serde_json::from_slice(&std::fs::read(dir.join("build.json")).ok()?).ok()?;
    let b = Built { dir: dir.to_path_buf(), info };
    b.binary().is_file().then_some(b)
}

/// Every scheduler built so far.
pub fn list() -> Vec<Built> {
    let mut v: Vec<Built> = std::fs::read_dir(root())
        .map(|rd| rd.flatten().filter_map(|e| load(&e.path())).collect())
        .unwrap_or_default();
    v.sort_by(|a, b| a.info.name.cmp(&b.info.name).then(version_cmp(&a.info.version, &b.info.version)));
    v
}

/// Dotted versions compared part by part, numbers as numbers.
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| s.split(['.', '-', '+']).map(|p| p.parse::<u64>().map_err(|_| p.to_string())).collect::<Vec<_>>();
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let o = match (x, y) {
            (Ok(x), Ok(y)) => x.cmp(y),
            (Ok(_), Err(_)) => std::cmp::Ordering::Greater,
            (Err(_), Ok(_)) => std::cmp::Ordering::Less,
            (Err(x), Err(y)) => x.cmp(y),
        };
        if o.is_ne() {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

/// A built scheduler for this toolchain, without building: the version
/// asked for, or the newest one built.
pub fn cached(r: &SchedRef) -> Option<Built> {
    let (rustc, clang) = toolchain();
    let mine: Vec<Built> = list()
        .into_iter()
        .filter(|b| b.info.name == r.name && b.info.key == key(&b.info.name, &b.info.version, &rustc, &clang))
        .collect();
    match &r.version {
        Some(v) => mine.into_iter().find(|b| &b.info.version == v),
        None => mine.into_iter().last(),
    }
}

/// Build `r` from crates.io (or find it in the cache) and return it.
pub async fn build(r: &SchedRef, force: bool) -> Result<Built> {
    let r = r.clone();
    tokio::task::spawn_blocking(move || build_blocking(&r, force)).await?
}

/// The cache directory of `name@version` for the toolchain on the host now.
fn build_dir(name: &str, version: &str) -> (PathBuf, String, String, String) {
    let (rustc, clang) = toolchain();
    let key = key(name, version, &rustc, &clang);
    (root().join(format!("{name}-{version}-{key}")), key, rustc, clang)
}

fn build_blocking(r: &SchedRef, force: bool) -> Result<Built> {
    let mut p = Progress::new("sched").every(std::time::Duration::from_secs(30));
    // A cache hit needs none of the build's prerequisites.
    if !force {
        if let Some(b) = cached(r) {
            return Ok(b);
        }
    }
    ensure_prerequisites(&mut p)?;
    let version = match &r.version {
        Some(v) => v.clone(),
        None => newest_version(&r.name)?,
    };
    // (computed after the prerequisites: installing clang changes the key)
    let (dir, key, rustc, clang) = build_dir(&r.name, &version);
    if !force {
        if let Some(b) = load(&dir) {
            return Ok(b);
        }
    }
    std::fs::create_dir_all(root())?;
    let staging = root().join(format!(".build-{}-{}-{}", r.name, version, std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    p.note(&format!(
        "building {}@{version} from crates.io with cargo ({rustc}, BPF with {clang}); shared target {} \
         (a cold build takes ~12 min on 2 cores, later crates reuse scx_utils and libbpf-rs)",
        r.name,
        target_dir().display()
    ));
    let t = std::time::Instant::now();
    let mut cmd = Command::new("cargo");
    cmd.args(["install", "--locked", "--force", "--root"])
        .arg(&staging)
        .args(["--version", &format!("={version}"), &r.name])
        .env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_TERM_COLOR", "never")
        .env("CARGO_TERM_PROGRESS_WHEN", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(c) = bpf_clang() {
        cmd.env("BPF_CLANG", c);
    }
    if let Some(d) = libclang_dir() {
        cmd.env("LIBCLANG_PATH", d);
    }
    let mut child = cmd.spawn().context("cannot run cargo")?;
    let log_path = root().join(format!("{}-{version}.build.log", r.name));
    let mut log = Vec::new();
    let mut compiled = 0;
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line?;
        if let Some(c) = line.trim_start().strip_prefix("Compiling ") {
            compiled += 1;
            p.update(&format!("{}@{version}: compiling {c} ({compiled} crates so far)", r.name));
        }
        log.push(line);
    }
    let status = child.wait()?;
    let _ = std::fs::write(&log_path, log.join("\n"));
    if !status.success() {
        let _ = std::fs::remove_dir_all(&staging);
        let why = explain_failure(&r.name, &version, &log, &rustc);
        if why.bad_input {
            bail!(crate::error::BadInput(why.line));
        }
        bail!("{} (cargo's output: {})", why.line, log_path.display());
    }
    let info = BuildInfo {
        name: r.name.clone(),
        version: version.clone(),
        key,
        rustc,
        bpf_clang: clang,
        build_s: t.elapsed().as_secs_f64(),
        built_unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    };
    if !staging.join("bin").join(&r.name).is_file() {
        let _ = std::fs::remove_dir_all(&staging);
        bail!("cargo installed no binary called {} from crate {}@{version}", r.name, r.name);
    }
    std::fs::write(staging.join("build.json"), serde_json::to_vec_pretty(&info)?)?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&staging, &dir).with_context(|| format!("cannot move the build into {}", dir.display()))?;
    p.finish(&format!("{}@{version} built ({compiled} crates compiled)", r.name));
    load(&dir).context("the build left no binary")
}

pub struct Failure {
    pub line: String,
    pub bad_input: bool,
}

/// One line saying what a failed cargo build lacked.
pub fn explain_failure(name: &str, version: &str, log: &[String], rustc: &str) -> Failure {
    let text = log.join("\n");
    let has = |s: &str| text.contains(s);
    let fail = |line: String| Failure { line, bad_input: false };
    if has("could not find `") && has("in registry") {
        return Failure {
            line: format!("crates.io has no {name} version {version} (see `cargo info {name}` for the versions there)"),
            bad_input: true,
        };
    }
    if let Some(l) = log.iter().find(|l| l.contains("requires rustc") || l.contains("rustc") && l.contains("is not supported by")) {
        return fail(format!("{name}@{version} needs a newer Rust toolchain than {rustc}: {}", l.trim()));
    }
    if has("Unable to find libclang") || has("couldn't find any valid shared libraries matching: ['libclang.so'") {
        return fail(format!("{name}@{version}: bindgen found no libclang: apt-get install libclang-19-dev"));
    }
    for (lib, pkg) in [("libelf", "libelf-dev"), ("zlib", "zlib1g-dev"), ("libseccomp", "libseccomp-dev"), ("openssl", "libssl-dev")] {
        if has(&format!("Package {lib} was not found")) || has(&format!("`{lib}.pc`")) || has(&format!("{lib}.pc` needs to be installed")) {
            return fail(format!("{name}@{version} needs {lib}: apt-get install {pkg}"));
        }
    }
    if has("gelf.h: No such file") || has("libelf.h: No such file") {
        return fail(format!("{name}@{version} needs libelf's headers: apt-get install libelf-dev"));
    }
    if has("zlib.h: No such file") {
        return fail(format!("{name}@{version} needs zlib's headers: apt-get install zlib1g-dev"));
    }
    if has("pkg-config") && (has("not found") || has("No such file")) && !has("Package ") {
        return fail(format!("{name}@{version}: pkg-config is missing: apt-get install pkg-config"));
    }
    if has("Failed to execute clang") || has("clang: not found") || has("\"clang\"") && has("No such file") {
        return fail(format!("{name}@{version}: no clang for the BPF programs: apt-get install clang-19 (BPF_CLANG=clang-19)"));
    }
    if has("failed to get `") || has("failed to download") || has("Couldn't resolve host") {
        return fail(format!("{name}@{version}: cargo could not download its dependencies from crates.io"));
    }
    let first = log.iter().position(|l| l.trim_start().starts_with("error")).map(|i| log[i].trim().to_string());
    fail(format!("building {name}@{version} failed: {}", first.unwrap_or_else(|| "cargo exited with an error".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_parse() {
        assert_eq!(SchedRef::parse("scx_bpfland").unwrap(), SchedRef { name: "scx_bpfland".into(), version: None });
        assert_eq!(
            SchedRef::parse("scx_lavd@1.1.4").unwrap(),
            SchedRef { name: "scx_lavd".into(), version: Some("1.1.4".into()) }
        );
        for bad in ["", "@1.0", "scx bpfland", "scx_bpfland@", "scx_bpfland@v1", "../x", "x@1;rm"] {
            assert!(SchedRef::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(SchedRef::parse("scx_rusty@1.1.4").unwrap().to_string(), "scx_rusty@1.1.4");
    }

    #[test]
    fn versions_order_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(version_cmp("1.1.10", "1.1.4"), Greater);
        assert_eq!(version_cmp("1.1.4", "1.1.4"), Equal);
        assert_eq!(version_cmp("1.2", "1.1.9"), Greater);
        assert_eq!(version_cmp("1.1.4-rc1", "1.1.4"), Greater);
    }

    #[test]
    fn keys_change_with_every_input() {
        let k = key("scx_bpfland", "1.1.4", "rustc 1.95.0", "clang 19");
        assert_eq!(k.len(), 16);
        assert_ne!(k, key("scx_bpfland", "1.1.5", "rustc 1.95.0", "clang 19"));
        assert_ne!(k, key("scx_lavd", "1.1.4", "rustc 1.95.0", "clang 19"));
        assert_ne!(k, key("scx_bpfland", "1.1.4", "rustc 1.96.0", "clang 19"));
        assert_ne!(k, key("scx_bpfland", "1.1.4", "rustc 1.95.0", "clang 20"));
    }

    #[test]
    fn failures_name_what_is_missing() {
        let l = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
        let f = explain_failure("scx_x", "1.0.0", &l("error: could not find `scx_x` in registry `crates-io` with version `=1.0.0`"), "r");
        assert!(f.bad_input && f.line.contains("no scx_x version 1.0.0"), "{}", f.line);
        let f = explain_failure("scx_x", "1.0.0", &l("thread 'main' panicked at bindgen: Unable to find libclang: \"couldn't find\""), "r");
        assert!(f.line.contains("libclang-19-dev") && !f.bad_input, "{}", f.line);
        let f = explain_failure("scx_x", "1.0.0", &l("  The system library `libelf` required by crate `libbpf-sys` was not found.\n  The file `libelf.pc` needs to be installed"), "r");
        assert!(f.line.contains("libelf-dev"), "{}", f.line);
        let f = explain_failure("scx_x", "1.0.0", &l("error: package `scx_utils v1.1.4` cannot be built because it requires rustc 1.91 or newer, while the currently active rustc version is 1.80.0"), "rustc 1.80.0");
        assert!(f.line.contains("newer Rust toolchain") && f.line.contains("1.91"), "{}", f.line);
        let f = explain_failure("scx_x", "1.0.0", &l("warning: x\nerror[E0308]: mismatched types\nmore"), "r");
        assert_eq!(f.line, "building scx_x@1.0.0 failed: error[E0308]: mismatched types");
        assert_eq!(f.line.lines().count(), 1);
    }
}
