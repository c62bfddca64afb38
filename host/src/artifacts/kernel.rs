//! `scx-vmctl kernel build`: the guest kernel from Debian's linux-source-6.12
//! (or a tree or tarball URL), with our config fragment and the helper patch
//! series, cached under `<cache>/kernel/<id>/` where id hashes every input.
//!
//! The build tree itself is kept (`<cache>/kernel/work/<source>/`), so a
//! change to the patches rebuilds in seconds instead of a cold build: the
//! applied series is reversed and the new one applied, and make does the rest.

use crate::paths;
use crate::progress::Progress;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Bump when the build procedure changes in a way that changes the output.
const RECIPE_VERSION: &str = "kernel-recipe-1";
pub const DEFAULT_SOURCE: &str = "linux-source-6.12";
pub const HELPER_KFUNC: &str = "scx_bpf_map_scan_timeout";

#[derive(Debug, Clone, Default)]
pub struct KernelOptions {
    /// PKG (Debian linux-source package), DIR (a kernel tree) or URL (a tarball).
    pub source: Option<String>,
    pub source_sha256: Option<String>,
    pub debug: bool,
    pub jobs: Option<usize>,
    /// Rebuild even if cached.
    pub force: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelInfo {
    pub id: String,
    pub version: String,
    pub source: String,
    pub flavor: String,
    /// The kernel's BTF has the helper kfunc.
    pub has_helper: bool,
    pub has_sched_ext: bool,
    pub built_unix: u64,
    pub build_seconds: f64,
    /// Problems with the build that do not stop it (e.g. a too old pahole).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The pahole that made the BTF: "1.30 (Debian trixie (fetched))".
    #[serde(default)]
    pub pahole: String,
}

#[derive(Debug, Clone)]
pub struct Kernel {
    pub dir: PathBuf,
    pub info: KernelInfo,
}

impl Kernel {
    pub fn bzimage(&self) -> PathBuf {
        self.dir.join("bzImage")
    }
    pub fn vmlinux(&self) -> PathBuf {
        self.dir.join("vmlinux")
    }
    pub fn vmlinux_h(&self) -> PathBuf {
        self.dir.join("vmlinux.h")
    }
    /// vmlinux without its debug info, booted at its PVH entry (CONFIG_PVH):
    /// no firmware-run setup or decompression, ~0.4 s sooner under TCG.
    /// Builds from before CONFIG_PVH have none.
    pub fn pvh(&self) -> Option<PathBuf> {
        Some(self.dir.join("vmlinux.pvh")).filter(|p| p.exists())
    }

    pub fn build_log(&self) -> PathBuf {
        self.dir.join("build.log")
    }

    /// CONFIG_HZ of the build (from the config kept beside it).
    pub fn hz(&self) -> Option<u32> {
        crate::machine::calibration::config_hz(&std::fs::read_to_string(self.dir.join("config")).ok()?)
    }
}

/// Kernel sources by short name: the built-in Debian 12 one, and the newest
/// kernel Debian ships with sched_ext that the helper applies to (Debian 13's
/// backports, fetched from Debian's mirror; the nightly matrix runs both).
pub const NAMED_SOURCES: &[(&str, &str)] =
    &[("debian-6.12", "linux-source-6.12"), ("debian-7.3", "linux-source-7.3@trixie-backports")];

/// `debian-7.3` -> `linux-source-7.3@trixie-backports`; anything else as given
/// (so a kernel's id is the same whichever name built it).
pub fn canonical_source(s: &str) -> &str {
    NAMED_SOURCES.iter().find(|(n, _)| *n == s).map(|(_, c)| *c).unwrap_or(s)
}

enum Source {
    Pkg { name: String, tarball: PathBuf, version: String },
    Dir(PathBuf),
    Url { url: String, sha256: String },
}

impl Source {
    fn resolve(opts: &KernelOptions) -> Result<Source> {
        let s = canonical_source(opts.source.as_deref().unwrap_or(DEFAULT_SOURCE)).to_string();
        if crate::artifacts::download::is_url(&s) {
            let sha = opts.source_sha256.clone().with_context(|| {
                format!("a kernel source URL needs --source-sha256 HASH (the tarball is checked against it): {s}")
            })?;
            return Ok(Source::Url { url: s, sha256: sha });
        }
        if let Some((pkg, suite)) = crate::artifacts::debsrc::split(&s) {
            let (tarball, version) = crate::artifacts::debsrc::fetch(pkg, suite, opts.force)?;
            return Ok(Source::Pkg { name: s.clone(), tarball, version });
        }
        let p = Path::new(&s);
        if p.is_dir() {
            if !p.join("Makefile").exists() || !p.join("kernel/sched").is_dir() {
                bail!("--source {s} is a directory but not a Linux kernel tree (no Makefile or kernel/sched/)");
            }
            return Ok(Source::Dir(p.canonicalize()?));
        }
        if s.contains('/') {
            bail!(
                "--source {s}: no such directory; give a kernel tree, an http(s) tarball URL, a package name like \
                 {DEFAULT_SOURCE}, or a package from another Debian suite like linux-source-7.2@sid"
            );
        }
        let tarball = PathBuf::from(format!("/usr/src/{s}.tar.xz"));
        if !tarball.exists() {
            bail!(
                "kernel source package {s} is not installed ({} missing): apt-get install {s} \
                 (linux-source-6.12 is in bookworm-security)",
                tarball.display()
            );
        }
        let version = Command::new("dpkg-query")
            .args(["-W", "-f=${Version}", &s])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| {
                let m = std::fs::metadata(&tarball).ok();
                format!("size{}", m.map(|m| m.len()).unwrap_or(0))
            });
        Ok(Source::Pkg { name: s, tarball, version })
    }

    /// What identifies the source's content (cheaply).
    fn identity(&self) -> Result<String> {
        Ok(match self {
            Source::Pkg { name, version, .. } => format!("pkg:{name}:{version}"),
            Source::Url { url, sha256 } => format!("url:{url}:{sha256}"),
            Source::Dir(d) => {
                let git = |args: &[&str]| -> Option<Vec<u8>> {
                    Command::new("git").arg("-C").arg(d).args(args).output().ok().filter(|o| o.status.success()).map(|o| o.stdout)
                };
                match git(&["rev-parse", "HEAD"]) {
                    Some(head) => {
                        let diff = git(&["diff", "HEAD"]).unwrap_or_default();
                        format!(
                            "dir:{}:{}:{}",
                            d.display(),
                            String::from_utf8_lossy(&head).trim(),
                            hex::encode(Sha256::digest(&diff))
                        )
                    }
                    None => format!("dir:{}:{}", d.display(), tree_stamp(d)?),
                }
            }
        })
    }

    fn describe(&self) -> String {
        match self {
            Source::Pkg { name, version, .. } => format!("{name} {version}"),
            Source::Url { url, .. } => url.clone(),
            Source::Dir(d) => d.display().to_string(),
        }
    }
}

/// Sizes and mtimes of every file of a non-git tree: changes when anything does.
fn tree_stamp(d: &Path) -> Result<String> {
    let mut h = Sha256::new();
    let mut stack = vec![d.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let m = e.metadata()?;
            if m.is_dir() {
                stack.push(e.path());
            } else {
                h.update(e.path().to_string_lossy().as_bytes());
                h.update(m.len().to_le_bytes());
                h.update(m.modified().map(|t| format!("{t:?}")).unwrap_or_default().as_bytes());
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// One patch file: its name and contents.
type Patch = (String, Vec<u8>);

/// The recipe inputs: config fragments, and the helper's patch series, one
/// per kernel version they were written for (`patches/<major.minor>/`).
struct Recipe {
    fragments: Vec<(String, String)>,
    series: Vec<(KVersion, Vec<Patch>)>,
}

/// A kernel's major.minor, as a series directory or a tree's Makefile names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KVersion(pub u32, pub u32);

impl KVersion {
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('.')?;
        Some(KVersion(a.parse().ok()?, b.parse().ok()?))
    }

    /// VERSION and PATCHLEVEL from a kernel tree's top Makefile.
    fn of_tree(tree: &Path) -> Result<Self> {
        let mk = std::fs::read_to_string(tree.join("Makefile")).with_context(|| format!("no Makefile in {}", tree.display()))?;
        let field =
            |k: &str| mk.lines().find_map(|l| l.strip_prefix(k).map(|v| v.trim_start_matches([' ', '=']).trim().to_string()));
        match (field("VERSION"), field("PATCHLEVEL")) {
            (Some(v), Some(p)) => KVersion::parse(&format!("{v}.{p}"))
                .with_context(|| format!("{}: VERSION {v:?} PATCHLEVEL {p:?} are not numbers", tree.display())),
            _ => bail!("{}: the Makefile names no VERSION and PATCHLEVEL: not a kernel tree?", tree.display()),
        }
    }
}

impl std::fmt::Display for KVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// The series for a tree of version `v`: the newest written for `v` or an
/// older kernel (hashtab.c and sched_ext change between releases, so each
/// series is a port, as a stable backport would be).
fn series_for(series: &[(KVersion, Vec<Patch>)], v: KVersion) -> Result<&[Patch]> {
    series.iter().filter(|(sv, _)| *sv <= v).max_by_key(|(sv, _)| *sv).map(|(_, p)| p.as_slice()).with_context(|| {
        let have: Vec<String> = series.iter().map(|(v, _)| v.to_string()).collect();
        format!(
            "the helper's patches (vm-images/kernel/patches/) are written for {} and none for a kernel as old as {v}: \
             use Linux 6.12 or later",
            have.join(", ")
        )
    })
}

fn recipe(debug: bool) -> Result<Recipe> {
    let k = paths::source_dir()?.join("vm-images/kernel");
    let mut fragments = vec![("guest.config".to_string(), std::fs::read_to_string(k.join("guest.config"))?)];
    if debug {
        fragments.push(("debug.config".to_string(), std::fs::read_to_string(k.join("debug.config"))?));
    }
    let mut series = Vec::new();
    let pdir = k.join("patches");
    for e in std::fs::read_dir(&pdir).with_context(|| format!("reading {}", pdir.display()))?.flatten() {
        let dir_name = e.file_name().to_string_lossy().into_owned();
        let Some(v) = KVersion::parse(&dir_name).filter(|_| e.path().is_dir()) else {
            bail!("{}: only one folder per kernel version (e.g. 6.12/) belongs here", e.path().display());
        };
        let mut names: Vec<_> = std::fs::read_dir(e.path())?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".patch"))
            .collect();
        names.sort();
        let mut patches = Vec::new();
        for n in names {
            let data = std::fs::read(e.path().join(&n))?;
            patches.push((n, data));
        }
        series.push((v, patches));
    }
    series.sort_by_key(|(v, _)| *v);
    Ok(Recipe { fragments, series })
}

fn short(h: &[u8]) -> String {
    hex::encode(h)[..16].to_string()
}

/// The cache id for these options, without building anything. The pahole
/// version is an input: it decides what the kernel's BTF holds.
fn ids(opts: &KernelOptions, pahole_version: &str) -> Result<(Source, Recipe, String, String)> {
    let src = Source::resolve(opts)?;
    let rec = recipe(opts.debug)?;
    let ident = src.identity()?;
    let mut h = Sha256::new();
    h.update(RECIPE_VERSION);
    h.update(&ident);
    h.update(format!("pahole:{pahole_version}"));
    for (n, f) in &rec.fragments {
        h.update(n);
        h.update(f);
    }
    // Every series: which one applies is known once the tree is unpacked.
    for (v, patches) in &rec.series {
        h.update(v.to_string());
        for (n, p) in patches {
            h.update(n);
            h.update(p);
        }
    }
    let id = short(&h.finalize());
    let flavor = if opts.debug { "debug" } else { "guest" };
    let work = short(&Sha256::digest(format!("{ident}:{flavor}")));
    Ok((src, rec, id, work))
}

fn kernel_root() -> PathBuf {
    paths::cache_dir().join("kernel")
}

fn load(dir: &Path) -> Option<Kernel> {
    let info: KernelInfo = serde_json::from_slice(&std::fs::read(dir.join("kernel.json")).ok()?).ok()?;
    let k = Kernel { dir: dir.to_path_buf(), info };
    (k.bzimage().exists() && k.vmlinux_h().exists()).then_some(k)
}

/// The cached kernel for these options, if built.
pub fn cached(opts: &KernelOptions) -> Result<Option<Kernel>> {
    let Ok(ph) = crate::artifacts::pahole::select(false, &mut |_| {}) else {
        return Ok(None);
    };
    let (_, _, id, _) = ids(opts, &ph.version)?;
    Ok(load(&kernel_root().join(&id)))
}

/// Build (or find in the cache) the kernel for `opts`.
pub async fn build(opts: &KernelOptions) -> Result<Kernel> {
    let ph = crate::artifacts::pahole::select(true, &mut |w| crate::errln!("kernel: {w}"))?;
    let (src, rec, id, work_id) = ids(opts, &ph.version)?;
    let out = kernel_root().join(&id);
    if !opts.force {
        if let Some(k) = load(&out) {
            return Ok(k);
        }
    }
    for (tool, pkg) in
        [("make", "make"), ("gcc", "gcc"), ("flex", "flex"), ("bison", "bison"), ("bc", "bc"), ("bpftool", "bpftool"), ("lz4", "lz4"), ("objcopy", "binutils")]
    {
        if which(tool).is_none() {
            bail!("{tool} is needed to build the kernel: apt-get install {pkg} (all at once: see README, Setup)");
        }
    }
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || build_blocking(&opts, src, rec, &id, &work_id, &ph)).await?
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(tool)).find(|p| p.is_file())
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("")
        );
    }
    Ok(())
}

fn build_blocking(
    opts: &KernelOptions,
    src: Source,
    rec: Recipe,
    id: &str,
    work_id: &str,
    ph: &crate::artifacts::pahole::Pahole,
) -> Result<Kernel> {
    // Kconfig reads pahole's version too (CONFIG_PAHOLE_VERSION), so every
    // make sees the same one.
    let pahole_arg = format!("PAHOLE={}", ph.cmd.display());
    let started = Instant::now();
    let mut p = Progress::new("kernel");
    let root = kernel_root();
    let work = root.join("work").join(work_id);
    let tree = work.join("src");
    std::fs::create_dir_all(&work)?;
    p.note(&format!(
        "building {} ({}), id {id}, pahole {} ({})",
        src.describe(),
        if opts.debug { "debug" } else { "guest" },
        ph.version,
        ph.origin
    ));

    let fresh = !tree.join("Makefile").exists();
    if fresh {
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::create_dir_all(&tree)?;
        p.update("unpacking the source");
        let tarball = match &src {
            Source::Pkg { tarball, .. } => Some(tarball.clone()),
            Source::Url { url, sha256 } => {
                Some(tokio::runtime::Handle::current().block_on(crate::artifacts::download::fetch(url, sha256, "kernel source"))?)
            }
            Source::Dir(_) => None,
        };
        match (&src, tarball) {
            (_, Some(t)) => run(
                Command::new("tar").arg("-xf").arg(&t).arg("-C").arg(&tree).arg("--strip-components=1"),
                "unpacking the kernel source",
            )?,
            (Source::Dir(d), None) => {
                // A private copy: the user's tree is never patched or built in.
                run(
                    Command::new("sh")
                        .arg("-c")
                        .arg("tar -C \"$1\" --exclude=.git -cf - . | tar -C \"$2\" -xf -")
                        .arg("sh")
                        .arg(d)
                        .arg(&tree),
                    "copying the kernel tree",
                )?;
            }
            _ => unreachable!(),
        }
    }
    let version = KVersion::of_tree(&tree)?;
    apply_patches(&tree, &work, series_for(&rec.series, version)?, &mut p)?;

    p.update("configuring");
    let frag_dir = work.join("fragments");
    std::fs::create_dir_all(&frag_dir)?;
    let mut frag_paths = Vec::new();
    for (n, f) in &rec.fragments {
        let fp = frag_dir.join(n);
        std::fs::write(&fp, f)?;
        frag_paths.push(fp);
    }
    run(Command::new("make").arg("-C").arg(&tree).arg(&pahole_arg).arg("-s").arg("allnoconfig"), "make allnoconfig")?;
    run(
        Command::new(tree.join("scripts/kconfig/merge_config.sh")).current_dir(&tree).arg("-m").arg(".config").args(&frag_paths),
        "merging the config fragments",
    )?;
    run(Command::new("make").arg("-C").arg(&tree).arg(&pahole_arg).arg("-s").arg("olddefconfig"), "make olddefconfig")?;
    let config = std::fs::read_to_string(tree.join(".config"))?;
    let (missing, gone) = split_gone(
        &tree,
        missing_options(&rec.fragments.iter().map(|(_, f)| f.as_str()).collect::<Vec<_>>().join("\n"), &config),
    );
    if !gone.is_empty() {
        // e.g. SCHED_DEBUG, folded into the scheduler for good after 6.12
        p.note(&format!("not in this kernel's Kconfig, skipped: {}", gone.join(", ")));
    }
    if !missing.is_empty() {
        bail!(
            "the kernel config lost options the recipe asks for (a dependency is missing in this tree?): {}",
            missing.join(", ")
        );
    }

    // The final link is what runs pahole, and kbuild does not relink when
    // only pahole changed: drop the linked images so BTF is made again.
    let pahole_stamp = work.join("pahole.used");
    let used = format!("{} {}", ph.version, ph.cmd.display());
    if std::fs::read_to_string(&pahole_stamp).ok().as_deref() != Some(used.as_str()) {
        for f in ["vmlinux", "vmlinux.unstripped"] {
            let _ = std::fs::remove_file(tree.join(f));
        }
    }

    let jobs = opts.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() + 1).unwrap_or(2));
    let log_path = work.join("build.log");
    let expected: usize =
        std::fs::read_to_string(work.join("objects.count")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    let mut child = Command::new("make")
        .arg("-C")
        .arg(&tree)
        .arg(format!("-j{jobs}"))
        .arg(&pahole_arg)
        .arg("bzImage")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run make")?;
    let stderr = child.stderr.take().unwrap();
    let err_log = log_path.clone();
    // stderr goes to the same log (after stdout's lines) so warnings are kept.
    let err_thread =
        std::thread::spawn(move || -> Vec<String> { std::io::BufReader::new(stderr).lines().map_while(Result::ok).collect() });
    let mut log = std::io::BufWriter::new(std::fs::File::create(&log_path)?);
    let mut compiled = 0usize;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line?;
        use std::io::Write;
        writeln!(log, "{line}")?;
        if line.trim_start().starts_with("CC ") || line.trim_start().starts_with("AS ") {
            compiled += 1;
            let of = if expected > 0 { format!("{compiled}/~{expected}") } else { compiled.to_string() };
            p.update(&format!("compiling: {of} files ({jobs} jobs, log {})", err_log.display()));
        }
    }
    let status = child.wait()?;
    let errs = err_thread.join().unwrap_or_default();
    {
        use std::io::Write;
        for l in &errs {
            writeln!(log, "{l}")?;
        }
    }
    drop(log);
    if !status.success() {
        let first_err =
            errs.iter().find(|l| l.contains("error")).cloned().unwrap_or_else(|| errs.last().cloned().unwrap_or_default());
        bail!("kernel build failed: {first_err}\n(full log: {})", log_path.display());
    }
    std::fs::write(&pahole_stamp, &used)?;
    // A cold build's count is the next cold build's progress denominator.
    if fresh && compiled > 0 {
        let _ = std::fs::write(work.join("objects.count"), compiled.to_string());
    }

    p.update("collecting bzImage, vmlinux and vmlinux.h");
    let tmp = root.join(format!(".tmp-{id}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    std::fs::copy(tree.join("arch/x86/boot/bzImage"), tmp.join("bzImage"))?;
    std::fs::copy(tree.join("vmlinux"), tmp.join("vmlinux"))?;
    std::fs::copy(tree.join(".config"), tmp.join("config"))?;
    std::fs::copy(&log_path, tmp.join("build.log"))?;
    if std::fs::read_to_string(tree.join(".config"))?.lines().any(|l| l == "CONFIG_PVH=y") {
        // 166 MB with DWARF, ~27 MB without: QEMU reads the whole file at every start
        let o = Command::new("objcopy").arg("--strip-debug").arg(tree.join("vmlinux")).arg(tmp.join("vmlinux.pvh")).output()?;
        if !o.status.success() {
            bail!("objcopy could not strip vmlinux for the PVH boot: {}", String::from_utf8_lossy(&o.stderr).trim());
        }
    }
    let h = Command::new("bpftool").args(["btf", "dump", "file"]).arg(tmp.join("vmlinux")).args(["format", "c"]).output()?;
    if !h.status.success() {
        bail!("bpftool could not dump the kernel's BTF: {}", String::from_utf8_lossy(&h.stderr).trim());
    }
    std::fs::write(tmp.join("vmlinux.h"), &h.stdout)?;
    let btf = crate::artifacts::btf::Btf::from_elf_file(&tmp.join("vmlinux"))?;
    let notes: Vec<String> = pahole_note(&tree, &ph.version).into_iter().collect();
    for n in &notes {
        p.note(&format!("warning: {n}"));
    }
    let version = Command::new("make").arg("-C").arg(&tree).arg(&pahole_arg).arg("-s").arg("kernelrelease").output()?;
    let info = KernelInfo {
        id: id.to_string(),
        version: String::from_utf8_lossy(&version.stdout).trim().to_string(),
        source: src.describe(),
        flavor: if opts.debug { "debug".into() } else { "guest".into() },
        has_helper: btf.has_func(HELPER_KFUNC),
        has_sched_ext: btf.has_struct("sched_ext_ops"),
        built_unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(),
        build_seconds: started.elapsed().as_secs_f64(),
        notes,
        pahole: format!("{} ({})", ph.version, ph.origin),
    };
    std::fs::write(tmp.join("kernel.json"), serde_json::to_vec_pretty(&info)?)?;
    let out = root.join(id);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::rename(&tmp, &out)?;
    p.finish(&format!("built {} ({}) -> {}", info.version, info.id, out.display()));
    Ok(Kernel { dir: out, info })
}

/// Kernels from 7.x give many sched_ext kfuncs an implicit `aux` argument
/// (KF_IMPLICIT_ARGS); the BPF-facing prototypes are made at build time from
/// pahole's kfunc decl tags, which pahole < 1.26 does not emit. Such a kernel
/// boots and the helper works, but no sched_ext scheduler can load on it.
fn pahole_note(tree: &Path, v: &str) -> Option<String> {
    let btf_h = std::fs::read_to_string(tree.join("include/linux/btf.h")).unwrap_or_default();
    if !btf_h.contains("KF_IMPLICIT_ARGS") {
        return None;
    }
    (crate::artifacts::pahole::version_number(v)? < crate::artifacts::pahole::MIN).then(|| {
        format!(
            "pahole {v} is older than 1.26: this kernel's sched_ext kfuncs with implicit arguments \
             (KF_IMPLICIT_ARGS) get no BPF-facing prototypes, so schedulers will not load on it \
             (the helper does); it was built with this pahole because Debian 13's could not be fetched (see the warning above): retry with Debian's mirror reachable, or install dwarves >= 1.26"
        )
    })
}

/// Reverse the previously applied series if it differs, then apply ours.
fn apply_patches(tree: &Path, work: &Path, patches: &[Patch], p: &mut Progress) -> Result<()> {
    let applied_dir = work.join("applied-patches");
    let mut applied: Vec<(String, Vec<u8>)> = Vec::new();
    if applied_dir.is_dir() {
        let mut names: Vec<_> =
            std::fs::read_dir(&applied_dir)?.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        for n in names {
            applied.push((n.clone(), std::fs::read(applied_dir.join(&n))?));
        }
    }
    if applied == patches {
        return Ok(());
    }
    // Files both series leave as they were keep their times, so make does
    // not rebuild everything that includes a header neither series changed
    // (include/linux/bpf.h reaches ~1500 objects).
    let touched: std::collections::BTreeSet<String> =
        applied.iter().chain(patches.iter()).flat_map(|(_, d)| files_of_patch(d)).collect();
    let before: Vec<(String, Vec<u8>, std::time::SystemTime)> = touched
        .iter()
        .filter_map(|f| {
            let path = tree.join(f);
            Some((f.clone(), std::fs::read(&path).ok()?, std::fs::metadata(&path).ok()?.modified().ok()?))
        })
        .collect();
    for (n, data) in applied.iter().rev() {
        p.update(&format!("reverting {n}"));
        patch(tree, data, true)
            .with_context(|| format!("cannot revert {n} from the build tree; remove {} to start over", work.display()))?;
        std::fs::remove_file(applied_dir.join(n))?;
    }
    std::fs::create_dir_all(&applied_dir)?;
    for (n, data) in patches {
        p.update(&format!("applying {n}"));
        patch(tree, data, false).with_context(|| format!("patch {n} does not apply to this kernel tree"))?;
        std::fs::write(applied_dir.join(n), data)?;
    }
    for (f, old, mtime) in before {
        let path = tree.join(&f);
        if std::fs::read(&path).ok().as_ref() == Some(&old) {
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|h| h.set_modified(mtime))
                .with_context(|| format!("restoring the time of {f}"))?;
        }
    }
    Ok(())
}

/// The files a unified diff writes (its `+++ b/PATH` lines).
fn files_of_patch(data: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(data)
        .lines()
        .filter_map(|l| l.strip_prefix("+++ "))
        .filter_map(|l| l.split(['\t', ' ']).next())
        .filter_map(|f| f.strip_prefix("b/"))
        .map(str::to_string)
        .collect()
}

fn patch(tree: &Path, data: &[u8], reverse: bool) -> Result<()> {
    use std::io::Write;
    let mut c = Command::new("patch");
    c.current_dir(tree).args(["-p1", "-s", "-N", "--no-backup-if-mismatch"]);
    if reverse {
        c.arg("-R");
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run patch (apt-get install patch)")?;
    child.stdin.take().unwrap().write_all(data)?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{}{}", String::from_utf8_lossy(&out.stdout).trim(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Split missing options into those the tree knows (a real problem) and those
/// no Kconfig file of the tree defines any more (renamed or removed upstream).
fn split_gone(tree: &Path, missing: Vec<String>) -> (Vec<String>, Vec<String>) {
    if missing.is_empty() {
        return (missing, Vec::new());
    }
    let mut defined = std::collections::HashSet::new();
    let mut stack = vec![tree.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if p.is_dir() && !name.starts_with('.') {
                stack.push(p);
            } else if name.starts_with("Kconfig") {
                for l in std::fs::read_to_string(&p).unwrap_or_default().lines() {
                    if let Some(sym) = l.trim().strip_prefix("config ").or_else(|| l.trim().strip_prefix("menuconfig ")) {
                        defined.insert(format!("CONFIG_{}", sym.trim()));
                    }
                }
            }
        }
    }
    missing.into_iter().partition(|m| {
        let sym = m.split(['=', ' ']).next().unwrap_or("");
        defined.contains(sym)
    })
}

/// Options of `fragment` (=y/=n/"..." lines and "is not set") that `.config` does not have.
pub fn missing_options(fragment: &str, config: &str) -> Vec<String> {
    use std::collections::HashMap;
    let mut have: HashMap<&str, &str> = HashMap::new();
    for l in config.lines() {
        if let Some((k, v)) = l.split_once('=') {
            if k.starts_with("CONFIG_") {
                have.insert(k, v);
            }
        } else if let Some(k) = l.strip_prefix("# ").and_then(|r| r.strip_suffix(" is not set")) {
            have.insert(k, "n");
        }
    }
    // Later lines (a later fragment) override earlier ones, as merge_config does.
    let mut want: Vec<(&str, &str)> = Vec::new();
    for l in fragment.lines() {
        let l = l.trim();
        let kv = if let Some((k, v)) = l.split_once('=') {
            k.starts_with("CONFIG_").then_some((k, v))
        } else {
            l.strip_prefix("# ").and_then(|r| r.strip_suffix(" is not set")).map(|k| (k, "n"))
        };
        if let Some((k, v)) = kv {
            want.retain(|(x, _)| *x != k);
            want.push((k, v));
        }
    }
    let mut missing = Vec::new();
    for (k, v) in want {
        match (v, have.get(k).copied()) {
            ("n", None) | ("n", Some("n")) => {}
            ("n", Some(_)) => missing.push(format!("{k} unset")),
            (v, got) if got == Some(v) => {}
            (v, _) => missing.push(format!("{k}={v}")),
        }
    }
    missing
}

/// The kernel `up` and `experiment` use when none is given: built if missing.
pub async fn default_kernel() -> Result<Kernel> {
    build(&KernelOptions::default()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_a_patch_writes() {
        let d = b"From: x\n---\n--- a/include/linux/bpf.h\n+++ b/include/linux/bpf.h\n@@ -1 +1 @@\n--- /dev/null\n+++ b/kernel/sched/x.c\t2026-01-01\n";
        assert_eq!(files_of_patch(d), vec!["include/linux/bpf.h", "kernel/sched/x.c"]);
    }

    #[test]
    fn series_picked_by_kernel_version() {
        let series =
            vec![(KVersion(6, 12), vec![("a".to_string(), vec![1])]), (KVersion(7, 3), vec![("b".to_string(), vec![2])])];
        assert_eq!(series_for(&series, KVersion(6, 12)).unwrap()[0].0, "a");
        assert_eq!(series_for(&series, KVersion(6, 18)).unwrap()[0].0, "a");
        assert_eq!(series_for(&series, KVersion(7, 3)).unwrap()[0].0, "b");
        assert_eq!(series_for(&series, KVersion(7, 10)).unwrap()[0].0, "b");
        let e = series_for(&series, KVersion(6, 6)).unwrap_err().to_string();
        assert!(e.contains("6.12, 7.3") && e.contains("6.6"), "{e}");
        assert_eq!(KVersion::parse("6.12"), Some(KVersion(6, 12)));
        assert!(KVersion(6, 12) < KVersion(7, 3) && KVersion(6, 9) < KVersion(6, 12));
        assert_eq!(KVersion::parse("x.1"), None);
    }

    #[test]
    fn tree_version_from_makefile() {
        let d = std::env::temp_dir().join(format!("kv{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("Makefile"), "# SPDX\nVERSION = 7\nPATCHLEVEL = 3\nSUBLEVEL = 4\n").unwrap();
        assert_eq!(KVersion::of_tree(&d).unwrap(), KVersion(7, 3));
        std::fs::write(d.join("Makefile"), "all:\n").unwrap();
        assert!(KVersion::of_tree(&d).unwrap_err().to_string().contains("VERSION"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_repository_series_cover_both_kernels() {
        let r = recipe(false).unwrap();
        for v in [KVersion(6, 12), KVersion(7, 3)] {
            let s = series_for(&r.series, v).unwrap();
            assert_eq!(s.len(), 3, "{v}: the map op, the kfunc, the boot parameter");
            assert!(
                s[0].0.contains("hashtab")
                    && s[1].0.contains("scx_bpf_map_scan_timeout")
                    && s[2].0.contains("lapic_timer_freq"),
                "{v}: {:?}",
                s.iter().map(|p| &p.0).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn named_sources() {
        assert_eq!(canonical_source("debian-7.3"), "linux-source-7.3@trixie-backports");
        assert_eq!(canonical_source("debian-6.12"), DEFAULT_SOURCE);
        assert_eq!(canonical_source("linux-source-7.2@sid"), "linux-source-7.2@sid");
        for (_, c) in NAMED_SOURCES {
            assert!(*c == DEFAULT_SOURCE || crate::artifacts::debsrc::split(c).is_some(), "{c}");
        }
    }

    #[test]
    fn missing_options_are_found() {
        let frag = "CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_S=\"x\"\n# comment\n";
        let cfg = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\nCONFIG_S=\"x\"\n";
        assert_eq!(missing_options(frag, cfg), vec!["CONFIG_B=y", "CONFIG_C unset"]);
        assert!(missing_options("CONFIG_A=y\n# CONFIG_Z is not set\n", "CONFIG_A=y\n").is_empty());
        // a later fragment overrides an earlier one
        assert!(missing_options("CONFIG_L=\"a\"\nCONFIG_L=\"b\"\n", "CONFIG_L=\"b\"\n").is_empty());
    }

    #[test]
    fn options_the_tree_no_longer_defines_are_told_apart() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("kernel/sched")).unwrap();
        std::fs::write(t.path().join("kernel/sched/Kconfig.x"), "config SCHED_CLASS_EXT\n\tbool\nmenuconfig CGROUPS\n").unwrap();
        let (missing, gone) = split_gone(
            t.path(),
            vec!["CONFIG_SCHED_CLASS_EXT=y".into(), "CONFIG_CGROUPS=y".into(), "CONFIG_SCHED_DEBUG=y".into()],
        );
        assert_eq!(missing, vec!["CONFIG_SCHED_CLASS_EXT=y", "CONFIG_CGROUPS=y"]);
        assert_eq!(gone, vec!["CONFIG_SCHED_DEBUG=y"]);
    }

    #[test]
    fn the_shipped_fragment_names_what_the_guest_needs() {
        let f = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../vm-images/kernel/guest.config")).unwrap();
        for opt in [
            "CONFIG_VIRTIO_BLK=y",
            "CONFIG_VIRTIO_NET=y",
            "CONFIG_VIRTIO_CONSOLE=y",
            "CONFIG_EXT4_FS=y",
            "CONFIG_SERIAL_8250_CONSOLE=y",
            "CONFIG_BPF_SYSCALL=y",
            "CONFIG_BPF_JIT=y",
            "CONFIG_DEBUG_INFO_BTF=y",
            "CONFIG_SCHED_CLASS_EXT=y",
            "CONFIG_EXT_GROUP_SCHED=y",
            "CONFIG_CGROUPS=y",
            "CONFIG_PVH=y",
        ] {
            assert!(f.lines().any(|l| l.trim() == opt), "{opt} missing from guest.config");
        }
        assert!(!f.contains("=m"), "everything is built in");
    }
}
