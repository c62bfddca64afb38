//! What each subcommand does, on top of the library modules.

use crate::machine::accel::{self, AccelRequest};
use crate::cli::*;
use crate::config::Config;
use crate::artifacts::image;
use crate::artifacts::kernel::{self, KernelOptions};
use crate::paths;
use crate::machine::qemu::{self, VmSpec};
use crate::machine::ssh::{self, ToolKey};
use crate::machine::vm::{self, Launch, Vm};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Marks an error as the user's input (exit code 2) rather than the tool failing (3).
#[derive(Debug)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BadInput {}

pub fn bad(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(BadInput(format!("{e:#}")))
}

/// `bad(e)` when `e` carries an `E` that `is_bad` calls the user's input; else `e` as it is.
/// The decision is on the error's type and variant, never on its text.
fn bad_if<E>(e: anyhow::Error, is_bad: impl Fn(&E) -> bool) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    if e.chain().any(|c| c.downcast_ref::<E>().is_some_and(&is_bad)) {
        bad(e)
    } else {
        e
    }
}

pub fn exit_code(e: &anyhow::Error) -> i32 {
    let bad_input = |c: &(dyn std::error::Error + 'static)| {
        c.is::<BadInput>() || c.is::<scx_contract::names::UnknownName>() || c.is::<scx_contract::config::ConfigError>()
    };
    if e.chain().any(bad_input) {
        crate::exit::BAD_INPUT
    } else {
        crate::exit::TOOL_FAILED
    }
}

pub async fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Cmd::Kernel(KernelCmd::Build(a)) => kernel_build(a).await,
        Cmd::Kernel(KernelCmd::Path(f)) => {
            let opts = kernel_opts(&f, None, false);
            match kernel::cached(&opts).map_err(bad)? {
                Some(k) => println!("{}", k.bzimage().display()),
                None => bail!(BadInput(format!(
                    "this kernel is not built yet: run `scx-vmctl kernel build{}{}`",
                    f.source.as_deref().map(|s| format!(" --source {s}")).unwrap_or_default(),
                    if f.debug { " --debug" } else { "" }
                ))),
            }
            Ok(0)
        }
        Cmd::Image(ImageCmd::Build { force }) => {
            let t = std::time::Instant::now();
            let img = image::build(force).await?;
            println!(
                "image {} ready in {:.2} s: {} (host key {})",
                img.info.id,
                t.elapsed().as_secs_f64(),
                img.base().display(),
                img.info.host_key
            );
            Ok(0)
        }
        Cmd::Image(ImageCmd::Path) => {
            match image::cached().map_err(bad)? {
                Some(i) => println!("{}", i.base().display()),
                None => bail!(BadInput("the image is not built yet: run `scx-vmctl image build`".into())),
            }
            Ok(0)
        }
        Cmd::Agent(AgentCmd::Build(f)) => {
            let t = std::time::Instant::now();
            let k = kernel::build(&kernel_opts(&f, None, false)).await?;
            let a = crate::artifacts::agent::build(&k.vmlinux_h()).await?;
            println!("agent {} for kernel {} ready in {:.2} s: {}", a.id, k.info.id, t.elapsed().as_secs_f64(), a.path.display());
            Ok(0)
        }
        Cmd::Sched(c) => sched_cmd(c).await,
        Cmd::Probe => {
            let q = qemu::qemu_version().map_err(bad)?;
            let scratch = paths::state_dir();
            std::fs::create_dir_all(&scratch)?;
            let p = accel::probe_kvm(qemu::QEMU, &scratch, Duration::from_secs(5));
            println!("QEMU {q}");
            println!("kvm: {}", p.reason());
            println!("tcg: works (runs as {})", accel::Accel::Tcg.describe());
            println!("--accel auto picks: {}", if p == accel::KvmProbe::Works { "kvm" } else { "tcg" });
            Ok(0)
        }
        Cmd::Up(a) => up(a).await,
        Cmd::Ssh(a) => ssh_cmd(a).await,
        Cmd::Cp(a) => cp(a).await,
        Cmd::Status(a) => status(a).await,
        Cmd::List => list(),
        Cmd::Down(a) => down(a).await,
        Cmd::Selftest(a) => crate::selftest::run(a).await,
        Cmd::Experiment(a) => crate::experiment::run(*a).await,
        Cmd::Leakcheck(a) => crate::experiment::leakcheck(*a).await,
        Cmd::Report(a) => report(a),
        Cmd::Bench(a) => crate::bench::run(a).await,
    }
}

async fn sched_cmd(c: SchedCmd) -> Result<i32> {
    use crate::artifacts::sched_crate::{self as sc, SchedRef};
    match c {
        SchedCmd::Build { sched, force } => {
            let r = SchedRef::parse(&sched).map_err(bad)?;
            let t = std::time::Instant::now();
            let b = sc::build(&r, force).await?;
            eprintln!("{} ready in {:.2} s (built in {:.0} s)", b.label(), t.elapsed().as_secs_f64(), b.info.build_s);
            println!("{}", b.binary().display());
        }
        SchedCmd::List => {
            let all = sc::list();
            if all.is_empty() {
                println!("no scheduler built yet: `scx-vmctl sched build scx_bpfland@1.1.4` builds one");
            }
            for b in all {
                println!("{:<24} built in {:>5.0} s  {}  {}", b.label(), b.info.build_s, b.info.rustc, b.binary().display());
            }
        }
        SchedCmd::Path { sched } => {
            let r = SchedRef::parse(&sched).map_err(bad)?;
            match sc::cached(&r) {
                Some(b) => println!("{}", b.binary().display()),
                None => bail!(BadInput(format!("{r} is not built (with this toolchain): run `scx-vmctl sched build {r}`"))),
            }
        }
    }
    Ok(0)
}

fn kernel_opts(f: &KernelFlavor, jobs: Option<usize>, force: bool) -> KernelOptions {
    KernelOptions { source: f.source.clone(), source_sha256: f.source_sha256.clone(), debug: f.debug, jobs, force }
}

async fn kernel_build(a: KernelBuildArgs) -> Result<i32> {
    let t = std::time::Instant::now();
    let opts = kernel_opts(&a.flavor, a.jobs, a.force);
    let k = kernel::build(&opts).await?;
    println!(
        "kernel {} ({}) ready in {:.2} s: {}\n  vmlinux.h {}\n  helper {}: {}",
        k.info.version,
        k.info.id,
        t.elapsed().as_secs_f64(),
        k.bzimage().display(),
        k.vmlinux_h().display(),
        kernel::HELPER_KFUNC,
        if k.info.has_helper { "present" } else { "MISSING" }
    );
    Ok(0)
}

/// A guest kernel to boot, with an id recorded in results.
#[derive(Clone)]
pub struct KernelChoice {
    pub bzimage: PathBuf,
    pub id: String,
    /// Our own build (so vmlinux.h and kernel.json exist), if it is one.
    pub built: Option<kernel::Kernel>,
}

pub async fn resolve_kernel(vm: &VmArgs) -> Result<KernelChoice> {
    match &vm.kernel {
        None => {
            let k = kernel::default_kernel().await?;
            Ok(KernelChoice { bzimage: k.bzimage(), id: k.info.id.clone(), built: Some(k) })
        }
        Some(s) if crate::artifacts::download::is_url(s) => {
            let sha = vm.kernel_sha256.as_deref().ok_or_else(|| {
                bad(anyhow::anyhow!("--kernel {s} is a URL: give --kernel-sha256 HEX so the download can be checked"))
            })?;
            // A malformed --kernel-sha256, or one the file does not have, is the user's input.
            let p = crate::artifacts::download::fetch(s, sha, "kernel")
                .await
                .map_err(|e| bad_if(e, crate::artifacts::download::DownloadError::is_bad_input))?;
            qemu::check_bzimage(&p).map_err(bad)?;
            Ok(KernelChoice { bzimage: p, id: format!("sha256:{}", &sha[..16.min(sha.len())]), built: None })
        }
        Some(s) => {
            let p = PathBuf::from(s);
            qemu::check_bzimage(&p).map_err(bad)?;
            let sha = crate::artifacts::download::sha256_file(&p)?;
            // A kernel from our cache keeps its identity (and its vmlinux.h).
            let built = p.parent().and_then(|d| {
                let info: kernel::KernelInfo = serde_json::from_slice(&std::fs::read(d.join("kernel.json")).ok()?).ok()?;
                Some(kernel::Kernel { dir: d.to_path_buf(), info })
            });
            let id = built.as_ref().map(|k| k.info.id.clone()).unwrap_or_else(|| format!("sha256:{}", &sha[..16]));
            Ok(KernelChoice { bzimage: p.canonicalize()?, id, built })
        }
    }
}

/// The base image and its pinned host key.
pub async fn resolve_image(vm: &VmArgs) -> Result<image::Image> {
    match &vm.image {
        None => image::default_image().await,
        Some(p) => {
            let dir = p.parent().unwrap_or(Path::new("."));
            let info: image::ImageInfo = std::fs::read(dir.join("image.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| {
                    bad(anyhow::anyhow!(
                        "--image {}: no image.json beside it; give an image built by `scx-vmctl image build` \
                         (it records the guest host key that SSH pins)",
                        p.display()
                    ))
                })?;
            Ok(image::Image { dir: dir.to_path_buf(), info })
        }
    }
}

pub fn tool_key() -> Result<ToolKey> {
    ToolKey::load_or_create(&paths::state_dir().join("keys"))
}

/// Everything needed to boot: the decided accelerator, kernel, image and spec.
pub struct Prepared {
    pub spec: VmSpec,
    pub kernel: KernelChoice,
    pub image: image::Image,
    pub notice: Option<String>,
}

pub async fn prepare(name: &str, vm_args: &VmArgs, cfg: &Config) -> Result<Prepared> {
    vm::validate_name(name).map_err(bad)?;
    let req = AccelRequest::parse(vm_args.accel.as_deref().unwrap_or(&cfg.vm.accel)).map_err(bad)?;
    let cpus = vm_args.cpus.unwrap_or(cfg.vm.cpus);
    let memory = vm_args.memory.unwrap_or(cfg.vm.memory_mib);
    if cpus == 0 || memory < 256 {
        bail!(BadInput(format!("--cpus must be >= 1 and --memory >= 256 (got {cpus}, {memory})")));
    }
    qemu::qemu_version().map_err(bad)?; // QEMU missing: say which package before building anything
    let kernel = resolve_kernel(vm_args).await?;
    let image = resolve_image(vm_args).await?;
    let scratch = paths::state_dir();
    std::fs::create_dir_all(&scratch)?;
    let decision = accel::decide(req, || accel::probe_kvm(qemu::QEMU, &scratch, Duration::from_secs(5))).map_err(bad)?;
    let key = tool_key()?;
    let spec = VmSpec {
        name: name.to_string(),
        kernel: kernel.bzimage.clone(),
        base_image: image.base(),
        cpus,
        memory_mib: memory,
        accel: decision.accel,
        append: vm_args.append.clone(),
        ssh_port: vm::free_port()?,
        authorized_key: key.public_line.clone(),
    };
    Ok(Prepared { spec, kernel, image, notice: decision.notice })
}

/// Boot a prepared VM.
pub async fn boot(p: &Prepared, cfg: &Config, owned: bool, run_dir: Option<PathBuf>) -> Result<Vm> {
    let key = tool_key()?;
    Vm::launch(
        Launch {
            spec: p.spec.clone(),
            host_key: p.image.info.host_key.clone(),
            kernel_id: p.kernel.id.clone(),
            image_id: p.image.info.id.clone(),
            owned,
            boot_timeout: Duration::from_secs(cfg.vm.boot_timeout_s),
            run_dir,
        },
        &key,
    )
    .await
}

async fn up(a: UpArgs) -> Result<i32> {
    let cfg = Config::load(a.config.as_deref()).map_err(bad)?;
    if let Ok(st) = vm::read_state(&paths::vm_dir(&a.name)) {
        if vm::pid_is_vm(st.pid, &a.name) {
            return Err(bad(vm::VmError::NameInUse { name: a.name.clone(), pid: st.pid }.into()));
        }
    }
    let p = prepare(&a.name, &a.vm, &cfg).await?;
    if let Some(n) = &p.notice {
        eprintln!("{n}");
    }
    let t = std::time::Instant::now();
    let mut prog = crate::progress::Progress::new("up").every(Duration::from_secs(10));
    prog.update(&format!("booting {} ({}, {} vCPUs, {} MiB)", a.name, p.spec.accel.describe(), p.spec.cpus, p.spec.memory_mib));
    // Another `up` may have taken the name while this one prepared.
    let vm = boot(&p, &cfg, false, None).await.map_err(|e| bad_if(e, vm::VmError::is_bad_input))?;
    prog.finish(&format!("{} is up", a.name));
    let st = &vm.state;
    println!("VM {} is up ({:.1} s to SSH)", st.spec.name, t.elapsed().as_secs_f64());
    println!("  accelerator  {} (QEMU {})", st.spec.accel.describe(), st.qemu_version);
    println!("  kernel       {} ({})", st.spec.kernel.display(), st.kernel_id);
    println!("  image        {} ({})", st.spec.base_image.display(), st.image_id);
    println!("  ssh          127.0.0.1:{} (host key pinned)", st.spec.ssh_port);
    println!("  qemu pid     {}", st.pid);
    println!("  run dir      {}", vm.files.dir.display());
    println!("connect:  scx-vmctl ssh {}      stop:  scx-vmctl down {}", st.spec.name, st.spec.name);
    // plain ssh checks the same pinned key: a known_hosts file of one line
    let known = vm.files.dir.join("known_hosts");
    paths::write_atomic(&known, format!("[127.0.0.1]:{} {}\n", st.spec.ssh_port, st.host_key.trim()).as_bytes())?;
    println!(
        "or:       ssh -i {} -p {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes root@127.0.0.1",
        tool_key()?.path.display(),
        st.spec.ssh_port,
        known.display()
    );
    Ok(0)
}

/// NAME, or the only running VM.
pub fn pick_name(name: Option<String>) -> Result<String> {
    if let Some(n) = name {
        vm::validate_name(&n).map_err(bad)?;
        return Ok(n);
    }
    let alive: Vec<String> = vm::list().into_iter().filter(|l| l.alive).map(|l| l.name).collect();
    match alive.len() {
        0 => bail!(BadInput("no VM is running: start one with `scx-vmctl up`".into())),
        1 => Ok(alive.into_iter().next().unwrap()),
        _ => bail!(BadInput(format!("several VMs are running ({}): name one", alive.join(", ")))),
    }
}

async fn attach(name: &str) -> Result<Vm> {
    Vm::attach(name).await.map_err(bad)
}

async fn ssh_cmd(a: SshArgs) -> Result<i32> {
    let name = pick_name(a.name)?;
    let vm = attach(&name).await?;
    let s = vm.ssh().await?;
    let code = if a.cmd.is_empty() {
        s.interactive().await?
    } else {
        use std::io::Write;
        let cmd = ssh::join_argv(&a.cmd);
        s.exec_streamed(&cmd, None, |err, d| {
            if err {
                let _ = std::io::stderr().write_all(d);
            } else {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(d);
                let _ = o.flush();
            }
        })
        .await?
    };
    s.close().await;
    Ok(code as i32)
}

/// "NAME:path" -> (NAME, path); a local path has no NAME.
pub fn split_remote(s: &str) -> Option<(&str, &str)> {
    let (n, p) = s.split_once(':')?;
    (vm::validate_name(n).is_ok() && !n.contains('/')).then_some((n, p))
}

async fn cp(a: CpArgs) -> Result<i32> {
    match (split_remote(&a.src), split_remote(&a.dst)) {
        (Some(_), Some(_)) => bail!(BadInput("cp: copy between two guests is not supported; go through a local directory".into())),
        (None, None) => bail!(BadInput("cp: one side must be NAME:path in a guest (e.g. scx:/root)".into())),
        (None, Some((name, dst))) => {
            let src = Path::new(&a.src);
            if !src.exists() {
                bail!(BadInput(format!("cp: {} does not exist", src.display())));
            }
            let vm = attach(name).await?;
            let s = vm.ssh().await?;
            let dst = if dst.is_empty() { "/root" } else { dst };
            let (dir, new_name) = match s.path_kind(dst).await? {
                Some(ssh::PathKind::Dir) => (dst.to_string(), None),
                _ if dst.ends_with('/') => bail!(BadInput(format!("cp: {name}:{dst} is not a directory in the guest"))),
                Some(ssh::PathKind::Other) if src.is_dir() => {
                    bail!(BadInput(format!("cp: cannot copy directory {} onto file {name}:{dst}", src.display())))
                }
                _ => {
                    let (parent, base) = split_parent(dst);
                    if s.path_kind(&parent).await? != Some(ssh::PathKind::Dir) {
                        bail!(BadInput(format!("cp: {name}:{parent} is not a directory in the guest (create it first)")));
                    }
                    (parent, Some(base))
                }
            };
            s.upload(src, &dir, new_name.as_deref()).await?;
            s.close().await;
            eprintln!("copied {} to {name}:{}", src.display(), match &new_name {
                Some(_) => dst.to_string(),
                None => format!("{}/", dir.trim_end_matches('/')),
            });
        }
        (Some((name, path)), None) => {
            let vm = attach(name).await?;
            let s = vm.ssh().await?;
            let Some(kind) = s.path_kind(path).await? else {
                bail!(BadInput(format!("cp: {name}:{path} does not exist in the guest")));
            };
            let dest = Path::new(&a.dst);
            let made = if dest.is_dir() {
                s.download(path, dest).await?
            } else {
                if a.dst.ends_with('/') {
                    bail!(BadInput(format!("cp: {} is not a directory", dest.display())));
                }
                if kind == ssh::PathKind::Dir && dest.exists() {
                    bail!(BadInput(format!("cp: cannot copy directory {name}:{path} onto file {}", dest.display())));
                }
                download_as(&s, path, dest).await?
            };
            s.close().await;
            for m in made {
                eprintln!("copied {name}:{path} to {}", m.display());
            }
        }
    }
    Ok(0)
}

/// "/a/b/c" -> ("/a/b", "c"); "c" -> (".", "c"). Trailing slashes ignored.
fn split_parent(p: &str) -> (String, String) {
    let p = p.trim_end_matches('/');
    match p.rsplit_once('/') {
        Some(("", base)) => ("/".into(), base.into()),
        Some((dir, base)) => (dir.into(), base.into()),
        None => (".".into(), p.into()),
    }
}

/// Download `remote` to the new local name `dest`: unpacked beside it in a
/// private directory first, then renamed, so a failed copy leaves no half file.
async fn download_as(s: &ssh::Ssh, remote: &str, dest: &Path) -> Result<Vec<PathBuf>> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        bail!(BadInput(format!("cp: {} is not a directory (create it first)", parent.display())));
    }
    let tmp = parent.join(format!(".scx-vmctl-cp.{}", std::process::id()));
    let result = async {
        std::fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let made = s.download(remote, &tmp).await?;
        let [top] = made.as_slice() else { bail!("cp: the guest sent {} top-level entries for {remote}", made.len()) };
        std::fs::rename(top, dest).with_context(|| format!("cannot move the copy to {}", dest.display()))?;
        Ok(vec![dest.to_path_buf()])
    }
    .await;
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

async fn status(a: NameArg) -> Result<i32> {
    let name = pick_name(a.name)?;
    let mut vm = attach(&name).await?;
    let run_state = match vm.connect_qmp().await {
        Ok(()) => match vm.qmp.as_ref().unwrap().query_status().await {
            Ok(s) => crate::machine::qmp::run_state_name(&s),
            Err(e) => format!("unknown ({e})"),
        },
        Err(e) => format!("unknown ({e:#})"),
    };
    let st = &vm.state;
    let up = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs().saturating_sub(st.started_unix);
    println!("VM {name}");
    println!("  state        {run_state}");
    println!("  accelerator  {} (QEMU {})", st.spec.accel.describe(), st.qemu_version);
    println!("  uptime       {}", crate::progress::fmt_elapsed(Duration::from_secs(up)));
    println!("  ssh port     127.0.0.1:{}", st.spec.ssh_port);
    println!("  qemu pid     {}", st.pid);
    println!("  vcpus/mem    {} / {} MiB", st.spec.cpus, st.spec.memory_mib);
    println!("  kernel       {} ({})", st.spec.kernel.display(), st.kernel_id);
    println!("  image        {}", st.image_id);
    // QMP events seen by any scx-vmctl attached to this VM (RESET, STOP, GUEST_PANICKED, ...).
    let events = std::fs::read_to_string(vm.files.events()).unwrap_or_default();
    let names: Vec<String> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_owned))
        .collect();
    if !names.is_empty() {
        println!("  qmp events   {}", names[names.len().saturating_sub(8)..].join(", "));
    }
    Ok(0)
}

fn list() -> Result<i32> {
    let vms = vm::list();
    if vms.is_empty() {
        println!("no VMs (start one with `scx-vmctl up`)");
        return Ok(0);
    }
    println!("{:<16} {:<8} {:<20} {:>6} {:>8}", "NAME", "STATE", "ACCEL", "PORT", "PID");
    for l in vms {
        match l.state {
            Some(s) => println!(
                "{:<16} {:<8} {:<20} {:>6} {:>8}",
                l.name,
                if l.alive { "running" } else { "stale" },
                s.spec.accel.describe(),
                s.spec.ssh_port,
                s.pid
            ),
            None => println!("{:<16} {:<8}", l.name, "broken"),
        }
    }
    Ok(0)
}

async fn down(a: DownArgs) -> Result<i32> {
    let names: Vec<String> = if a.all {
        vm::list().into_iter().map(|l| l.name).collect()
    } else {
        vec![match a.name {
            Some(n) => {
                vm::validate_name(&n).map_err(bad)?;
                n
            }
            None => pick_name(None)?,
        }]
    };
    for name in names {
        if vm::remove_stale(&name)? {
            println!("{name}: was not running; removed its stale run directory");
            continue;
        }
        let vm = match Vm::attach(&name).await {
            Ok(v) => v,
            Err(_) => bail!(BadInput(format!("no VM named `{name}` is running (see `scx-vmctl list`)"))),
        };
        vm.shutdown(a.force).await?;
        println!("{name}: powered down, nothing left running");
    }
    Ok(0)
}

fn report(a: ReportArgs) -> Result<i32> {
    use crate::report;
    let merge = a.dirs.first().is_some_and(|d| d.as_os_str() == "merge");
    let (summary, dir) = if merge {
        let shards = &a.dirs[1..];
        let out = a.out.clone().ok_or_else(|| bad(anyhow::anyhow!("report merge needs --out DIR for the combined results")))?;
        if shards.is_empty() {
            bail!(BadInput("report merge needs at least one shard directory: report merge DIR... --out DIR".into()));
        }
        (report::merge(shards, &out).map_err(bad)?, out)
    } else {
        let [dir] = &a.dirs[..] else {
            bail!(BadInput("report takes one result directory (or: report merge DIR... --out DIR)".into()));
        };
        let s = report::summarize(dir).map_err(bad)?;
        report::write_all(dir, &s)?;
        (s, dir.clone())
    };
    println!("{summary}");
    println!("written: {}/{{summary.txt,summary.json,report.html,junit.xml}}", dir.display());
    let mut code = summary.exit_code();
    let mut md = report::summary_markdown(&summary);
    if let Some(b) = &a.baseline {
        let base = report::Summary::load(b).map_err(bad)?;
        let mut cmp = report::compare_baseline(&summary, &base);
        if a.no_timing_gate {
            cmp = cmp.timings_as_notes();
        }
        println!("{cmp}");
        md.push('\n');
        md.push_str(&cmp.to_markdown());
        code = code.max(cmp.exit_code());
    }
    if let Some(p) = &a.markdown {
        std::fs::write(p, md).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?;
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths() {
        assert_eq!(split_remote("scx:/root"), Some(("scx", "/root")));
        assert_eq!(split_remote("./a:b"), None);
        assert_eq!(split_remote("/tmp/x"), None);
        assert_eq!(split_remote("vm1:"), Some(("vm1", "")));
    }

    #[test]
    fn bad_input_maps_to_exit_2() {
        assert_eq!(exit_code(&bad(anyhow::anyhow!("x"))), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("qemu died")), 3);
        assert_eq!(exit_code(&bad(anyhow::anyhow!("x")).context("while doing y")), 2);
    }

    #[test]
    fn typed_errors_decide_bad_input() {
        use crate::artifacts::download::DownloadError;
        let in_use = || anyhow::Error::from(vm::VmError::NameInUse { name: "scx1".into(), pid: 42 });
        let e = bad_if(in_use(), vm::VmError::is_bad_input);
        assert_eq!(exit_code(&e), 2);
        assert_eq!(e.to_string(), "VM name `scx1` is in use (QEMU pid 42); pick another --name or run `scx-vmctl down scx1`");
        // Found under context too, and the whole message is kept.
        let e = bad_if(in_use().context("booting scx1"), vm::VmError::is_bad_input);
        assert_eq!(exit_code(&e), 2);
        assert!(e.to_string().starts_with("booting scx1: VM name `scx1` is in use"), "{e}");

        let mismatch = DownloadError::ChecksumMismatch {
            what: "kernel".into(),
            url: "http://127.0.0.1/bzImage".into(),
            expected: "a".repeat(64),
            got: "b".repeat(64),
        };
        assert_eq!(exit_code(&bad_if(mismatch.into(), DownloadError::is_bad_input)), 2);
        assert_eq!(exit_code(&bad_if(DownloadError::BadChecksumArg("xyz".into()).into(), DownloadError::is_bad_input)), 2);
        let http = DownloadError::Http {
            what: "kernel".into(),
            url: "http://127.0.0.1/bzImage".into(),
            status: reqwest::StatusCode::NOT_FOUND,
        };
        assert_eq!(exit_code(&bad_if(http.into(), DownloadError::is_bad_input)), 3);
        // Text alone decides nothing: an untyped error saying "expected" or "is in use" stays a tool failure.
        assert_eq!(exit_code(&bad_if(anyhow::anyhow!("expected x, is in use"), DownloadError::is_bad_input)), 3);
        assert_eq!(exit_code(&bad_if(anyhow::anyhow!("VM name `a` is in use"), vm::VmError::is_bad_input)), 3);
    }
}
