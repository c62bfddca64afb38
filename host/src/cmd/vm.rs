//! up, ssh, status, list, down: one VM's lifecycle from the command line.

use crate::cli::*;
use crate::config::Config;
use crate::error::{bad, bad_if, BadInput};
use crate::launch::{boot, prepare, tool_key};
use crate::machine::ssh;
use crate::machine::vm::{self, Vm};
use crate::paths;
use anyhow::{bail, Result};
use std::time::Duration;

pub async fn up(a: UpArgs) -> Result<i32> {
    let cfg = Config::load(a.config.as_deref()).map_err(bad)?;
    if let Ok(st) = vm::read_state(&paths::vm_dir(&a.name)) {
        if vm::pid_is_vm(st.pid, &a.name) {
            return Err(bad(vm::VmError::NameInUse { name: a.name.clone(), pid: st.pid }.into()));
        }
    }
    let p = prepare(&a.name, &a.vm, &cfg).await?;
    if let Some(n) = &p.notice {
        crate::errln!("{n}");
    }
    let t = std::time::Instant::now();
    let mut prog = crate::progress::Progress::new("up").every(Duration::from_secs(10));
    let from = if a.snapshot { Some(saved_guest(&p, &cfg).await?) } else { None };
    let t = if from.is_some() { std::time::Instant::now() } else { t };
    let how = if from.is_some() { "restoring" } else { "booting" };
    prog.update(&format!("{how} {} ({}, {} vCPUs, {} MiB)", a.name, p.spec.accel.describe(), p.spec.cpus, p.spec.memory_mib));
    // Another `up` may have taken the name while this one prepared.
    let vm = match &from {
        None => boot(&p, &cfg, false, None).await,
        Some(s) => crate::launch::restore(&p, &cfg, false, s.restore()).await,
    }
    .map_err(|e| bad_if(e, vm::VmError::is_bad_input))?;
    prog.finish(&format!("{} is up", a.name));
    let st = &vm.state;
    // plain ssh checks the same pinned key: a known_hosts file of one line,
    // written before any print (a reader that closes the pipe early ends us)
    let known = vm.files.dir.join("known_hosts");
    paths::write_atomic(&known, format!("[127.0.0.1]:{} {}\n", st.spec.ssh_port, st.host_key.trim()).as_bytes())?;
    let key_path = tool_key()?.path;
    crate::outln!("VM {} is up ({:.2} s to SSH)", st.spec.name, t.elapsed().as_secs_f64());
    if let Some(s) = &from {
        crate::outln!("  restored     from the saved guest {} (agent {})", s.dir.display(), s.info.inputs.agent_id);
    }
    crate::outln!("  accelerator  {} (QEMU {})", st.spec.accel.describe(), st.qemu_version);
    crate::outln!("  kernel       {} ({})", st.spec.kernel.display(), st.kernel_id);
    crate::outln!("  image        {} ({})", st.spec.base_image.display(), st.image_id);
    crate::outln!("  ssh          127.0.0.1:{} (host key pinned)", st.spec.ssh_port);
    crate::outln!("  qemu pid     {}", st.pid);
    crate::outln!("  run dir      {}", vm.files.dir.display());
    crate::outln!("connect:  scx-vmctl ssh {}      stop:  scx-vmctl down {}", st.spec.name, st.spec.name);
    crate::outln!(
        "or:       ssh -i {} -p {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes root@127.0.0.1",
        key_path.display(),
        st.spec.ssh_port,
        known.display()
    );
    Ok(0)
}

/// The saved guest `experiment --reset snapshot` starts from, for this
/// kernel, image and machine: found, or booted, given the agent and sealed.
async fn saved_guest(p: &crate::launch::Prepared, cfg: &Config) -> Result<crate::machine::snapshot::Snapshot> {
    use crate::experiment::saved;
    let Some(k) = &p.kernel.built else {
        bail!(BadInput(
            "up --snapshot needs a kernel built by `scx-vmctl kernel build` (the agent in the saved guest is built against it)".into()
        ));
    };
    let agent = crate::artifacts::agent::build(&k.vmlinux_h()).await?;
    let want = saved::inputs(p, &agent.id, &[], &crate::machine::qemu::qemu_version()?)?;
    if let Some(s) = saved::find(&want) {
        return Ok(s);
    }
    let t = std::time::Instant::now();
    crate::errln!("[snapshot] booting a guest to save (once for this kernel, image, agent and machine)");
    let mut spec = p.spec.clone();
    spec.name = format!("{}-save", p.spec.name);
    spec.ssh_port = vm::free_port()?;
    let prep = crate::launch::Prepared { spec, kernel: p.kernel.clone(), image: p.image.clone(), notice: None };
    let guest = boot(&prep, cfg, true, None).await?;
    let ssh = guest.ssh().await?;
    crate::artifacts::agent::install(&ssh, &agent).await?;
    ssh.close().await;
    saved::seal(guest, &want, t).await
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

pub async fn attach(name: &str) -> Result<Vm> {
    Vm::attach(name).await.map_err(bad)
}

pub async fn ssh_cmd(a: SshArgs) -> Result<i32> {
    let name = pick_name(a.name)?;
    let vm = attach(&name).await?;
    let s = vm.ssh().await?;
    let code = if a.cmd.is_empty() {
        s.interactive().await?
    } else {
        use std::io::Write;
        let cmd = ssh_command_line(&a.cmd);
        s.exec_piped(&cmd, stdin_chunks(), |err, d| {
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

/// The local stdin, read on a thread of its own (a blocking read cannot be
/// cancelled; a detached thread ends with the process, where tokio's stdin
/// would hold the runtime's shutdown until the input ends). A terminal is not
/// read: a command with no pty would take keystrokes as data, so it gets EOF
/// at once, as `ssh -n` does (`scx-vmctl ssh NAME` alone gives a shell).
fn stdin_chunks() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    use std::io::{IsTerminal, Read};
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    if !std::io::stdin().is_terminal() {
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut input = std::io::stdin().lock();
            loop {
                match input.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.blocking_send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
    rx
}

/// What `ssh NAME -- ...` runs: a lone argument is a command line for the
/// guest's shell (as OpenSSH takes it); several keep their argv, quoted.
fn ssh_command_line(argv: &[String]) -> String {
    match argv {
        [line] => line.clone(),
        _ => ssh::join_argv(argv),
    }
}

pub async fn status(a: NameArg) -> Result<i32> {
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
    crate::outln!("VM {name}");
    crate::outln!("  state        {run_state}");
    crate::outln!("  accelerator  {} (QEMU {})", st.spec.accel.describe(), st.qemu_version);
    crate::outln!("  uptime       {}", crate::progress::fmt_elapsed(Duration::from_secs(up)));
    crate::outln!("  ssh port     127.0.0.1:{}", st.spec.ssh_port);
    crate::outln!("  qemu pid     {}", st.pid);
    crate::outln!("  vcpus/mem    {} / {} MiB", st.spec.cpus, st.spec.memory_mib);
    crate::outln!("  kernel       {} ({})", st.spec.kernel.display(), st.kernel_id);
    crate::outln!("  image        {}", st.image_id);
    // QMP events seen by any scx-vmctl attached to this VM (RESET, STOP, GUEST_PANICKED, ...).
    let events = std::fs::read_to_string(vm.files.events()).unwrap_or_default();
    let names: Vec<String> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_owned))
        .collect();
    if !names.is_empty() {
        crate::outln!("  qmp events   {}", names[names.len().saturating_sub(8)..].join(", "));
    }
    Ok(0)
}

pub fn list() -> Result<i32> {
    let vms = vm::list();
    if vms.is_empty() {
        crate::outln!("no VMs (start one with `scx-vmctl up`)");
        return Ok(0);
    }
    crate::outln!("{:<16} {:<8} {:<20} {:>6} {:>8}", "NAME", "STATE", "ACCEL", "PORT", "PID");
    for l in vms {
        match l.state {
            Some(s) => crate::outln!(
                "{:<16} {:<8} {:<20} {:>6} {:>8}",
                l.name,
                if l.alive { "running" } else { "stale" },
                s.spec.accel.describe(),
                s.spec.ssh_port,
                s.pid
            ),
            None => crate::outln!("{:<16} {:<8}", l.name, "broken"),
        }
    }
    Ok(0)
}

pub async fn down(a: DownArgs) -> Result<i32> {
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
            crate::outln!("{name}: was not running; removed its stale run directory");
            continue;
        }
        let vm = match Vm::attach(&name).await {
            Ok(v) => v,
            Err(_) => bail!(BadInput(format!("no VM named `{name}` is running (see `scx-vmctl list`)"))),
        };
        vm.shutdown(a.force).await?;
        crate::outln!("{name}: powered down, nothing left running");
    }
    Ok(0)
}

