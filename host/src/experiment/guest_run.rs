//! One run inside a guest: start the agent detached from the SSH session (so a
//! dropped connection loses nothing), follow its CSV live (so a guest that
//! dies still leaves every sample it took), watch QMP for panics, and pull the
//! run's files when it ends.

use crate::machine::qmp::VmEvent;
use crate::machine::ssh::{quote, Ssh, Target};
use anyhow::{Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

pub const GUEST_OUT: &str = "/root/out";

/// How a guest run ended, as the host saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The agent exited with this code.
    Exited(i32),
    /// The guest kernel panicked (QMP GUEST_PANICKED).
    Panicked,
    /// QEMU went away (killed, crashed, or the guest powered off).
    VmGone(String),
    /// No end within the run's time limit.
    TimedOut(Duration),
    /// SSH could not be re-established.
    Unreachable(String),
    /// Ctrl-C / SIGTERM to scx-vmctl.
    Interrupted,
}

/// What the host gathered while the run went on.
pub struct Live {
    /// Complete CSV lines seen so far (header included).
    pub csv: String,
    pub reconnects: u32,
    pub last_entries: Option<String>,
}

/// How long a run waits for a paused VM (QMP STOP) to resume.
pub const PAUSE_LIMIT: Duration = Duration::from_secs(30);

/// What a QMP event means for a run in progress: the end of it, or nothing.
/// A reset or a power-down request loses the run; a pause (STOP) is timed
/// until RESUME, see [`paused_too_long`].
pub fn on_event(ev: VmEvent, paused_at: &mut Option<Instant>) -> Option<Ending> {
    match ev {
        VmEvent::GuestPanicked => Some(Ending::Panicked),
        VmEvent::Shutdown { reason, .. } => Some(Ending::VmGone(format!("guest shut down ({reason})"))),
        VmEvent::Closed => Some(Ending::VmGone("QEMU exited".into())),
        VmEvent::Reset => Some(Ending::VmGone("the guest was reset during the run (QMP RESET: a reboot or a triple fault)".into())),
        VmEvent::Powerdown => Some(Ending::VmGone("the VM was asked to power off during the run (QMP POWERDOWN)".into())),
        VmEvent::Stop => {
            paused_at.get_or_insert_with(Instant::now);
            None
        }
        VmEvent::Resume => {
            *paused_at = None;
            None
        }
    }
}

/// A VM paused for longer than [`PAUSE_LIMIT`] ends the run: its clock and
/// the agent stand still, so waiting longer only hides the cause.
pub fn paused_too_long(paused_at: Option<Instant>, now: Instant) -> Option<Ending> {
    let since = paused_at?;
    (now.duration_since(since) >= PAUSE_LIMIT).then(|| {
        Ending::VmGone(format!(
            "the VM has been paused for {} s (QMP STOP without RESUME: an I/O error stop, or `stop` on its monitor)",
            PAUSE_LIMIT.as_secs()
        ))
    })
}

/// Follow a started agent until it ends. `alive` reports a dead QEMU.
/// From `expected_end` on, each poll waits in the guest for the agent's exit
/// (checking every 50 ms), so the end is seen at once rather than at the
/// next poll.
#[allow(clippy::too_many_arguments)]
pub async fn follow(
    ssh: &mut Ssh,
    target: &Target,
    events: &mut Option<broadcast::Receiver<VmEvent>>,
    mut alive: impl FnMut() -> Option<String>,
    limit: Duration,
    expected_end: Duration,
    interval: Duration,
    cancel: &mut watch::Receiver<bool>,
    mut progress: impl FnMut(&Live, Duration),
) -> (Ending, Live) {
    let start = Instant::now();
    let mut live = Live { csv: String::new(), reconnects: 0, last_entries: None };
    let mut partial = String::new();
    let poll = interval.min(Duration::from_secs(1)).max(Duration::from_millis(200));
    let mut paused_at: Option<Instant> = None;
    loop {
        if *cancel.borrow() {
            return (Ending::Interrupted, live);
        }
        if let Some(rx) = events.as_mut() {
            while let Ok(ev) = rx.try_recv() {
                if let Some(end) = on_event(ev, &mut paused_at) {
                    return (end, live);
                }
            }
        }
        if let Some(end) = paused_too_long(paused_at, Instant::now()) {
            return (end, live);
        }
        if let Some(why) = alive() {
            return (Ending::VmGone(why), live);
        }
        if start.elapsed() > limit {
            return (Ending::TimedOut(limit), live);
        }
        // One round trip: new CSV bytes, then the exit code if the agent is done.
        let offset = live.csv.len() + partial.len();
        let ending = start.elapsed() >= expected_end;
        let wait = if ending {
            format!("for i in $(seq 40); do [ -e {GUEST_OUT}/agent.exit ] && break; sleep 0.05; done; ")
        } else {
            String::new()
        };
        let cmd = format!(
            "{wait}tail -c +{} {out}/run.csv 2>/dev/null; printf '\\n@@exit:'; cat {out}/agent.exit 2>/dev/null",
            offset + 1,
            out = GUEST_OUT
        );
        match tokio::time::timeout(Duration::from_secs(10), ssh.exec(&cmd)).await {
            Ok(Ok(o)) => {
                let text = o.stdout_str();
                let (data, exit) = match text.rfind("\n@@exit:") {
                    Some(i) => (&text[..i], text[i + 8..].trim()),
                    None => (text.as_str(), ""),
                };
                partial.push_str(data);
                if let Some(end) = partial.rfind('\n') {
                    let complete: String = partial.drain(..=end).collect();
                    live.csv.push_str(&complete);
                    if let Some(last) = complete.lines().rev().find(|l| !l.starts_with("elapsed_s")) {
                        live.last_entries = last.split(',').nth(1).map(str::to_owned);
                    }
                }
                if !exit.is_empty() {
                    let code = exit.parse().unwrap_or(-1);
                    return (Ending::Exited(code), live);
                }
            }
            _ => {
                // The connection dropped (or hangs): reconnect with backoff; the
                // agent keeps running in the guest meanwhile.
                match reconnect(target, start, limit, cancel).await {
                    Ok(s) => {
                        *ssh = s;
                        live.reconnects += 1;
                        continue;
                    }
                    Err(e) => {
                        if alive().is_some() {
                            continue; // reported at the top of the loop
                        }
                        // SSH usually dies first; the QMP event that says why
                        // (a panic, a reset) arrives while we retry
                        if let Some(rx) = events.as_mut() {
                            while let Ok(ev) = rx.try_recv() {
                                if let Some(end) = on_event(ev, &mut paused_at) {
                                    return (end, live);
                                }
                            }
                        }
                        return (Ending::Unreachable(format!("{e:#}")), live);
                    }
                }
            }
        }
        progress(&live, start.elapsed());
        if ending {
            continue; // the next poll waits in the guest
        }
        tokio::select! {
            _ = tokio::time::sleep(poll.min(expected_end.saturating_sub(start.elapsed()))) => {}
            _ = cancel.changed() => {}
        }
    }
}

async fn reconnect(target: &Target, start: Instant, limit: Duration, cancel: &watch::Receiver<bool>) -> Result<Ssh> {
    let mut delay = Duration::from_millis(250);
    let mut last = None;
    for _ in 0..8 {
        if *cancel.borrow() || start.elapsed() > limit {
            break;
        }
        match Ssh::connect(target, Duration::from_secs(10)).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(8));
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("gave up")).context("SSH to the guest could not be re-established"))
}

/// Start `argv` detached in the guest; its exit code lands in GUEST_OUT/agent.exit.
pub async fn start_detached(ssh: &Ssh, argv: &[String]) -> Result<()> {
    let cmd = format!(
        "rm -rf {out} && mkdir -p {out} && cd {out} && \
         (setsid sh -c '{argv}; echo $? > {out}/agent.exit.tmp; mv {out}/agent.exit.tmp {out}/agent.exit' \
         > {out}/agent.log 2>&1 < /dev/null &)",
        out = GUEST_OUT,
        argv = crate::machine::ssh::join_argv(argv).replace('\'', "'\\''"),
    );
    ssh.check(&cmd).await.context("starting the agent in the guest")?;
    Ok(())
}

/// Ask a running agent to stop early (it unloads and writes what it has).
pub async fn stop_agent(ssh: &Ssh) {
    let _ = ssh
        .exec("pkill -TERM -f '^/root/scx-guest-agent run' ; for i in $(seq 50); do [ -e /root/out/agent.exit ] && break; sleep 0.1; done")
        .await;
}

/// Pull GUEST_OUT into `dest` (a fresh local directory).
pub async fn pull(ssh: &Ssh, dest: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(dest);
    std::fs::create_dir_all(dest)?;
    ssh.download(GUEST_OUT, dest).await.with_context(|| format!("pulling {GUEST_OUT} from the guest"))?;
    Ok(())
}

/// The tail of a guest file, for error messages.
pub async fn guest_tail(ssh: &Ssh, path: &str, lines: usize) -> String {
    match ssh.exec(&format!("tail -n {lines} {}", quote(path))).await {
        Ok(o) => o.stdout_str().trim().to_string(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod event_tests {
    use super::*;

    fn gone(e: Option<Ending>) -> String {
        match e {
            Some(Ending::VmGone(why)) => why,
            _ => panic!("not VmGone"),
        }
    }

    #[test]
    fn reset_and_powerdown_end_the_run_with_their_cause() {
        let mut p = None;
        assert!(gone(on_event(VmEvent::Reset, &mut p)).contains("QMP RESET"));
        assert!(gone(on_event(VmEvent::Powerdown, &mut p)).contains("QMP POWERDOWN"));
        assert!(matches!(on_event(VmEvent::GuestPanicked, &mut p), Some(Ending::Panicked)));
        assert!(gone(on_event(VmEvent::Shutdown { guest: true, reason: "guest-shutdown".into() }, &mut p)).contains("guest-shutdown"));
    }

    #[test]
    fn a_pause_is_timed_until_resume() {
        let mut p = None;
        assert!(on_event(VmEvent::Stop, &mut p).is_none());
        let t0 = p.expect("STOP starts the clock");
        assert!(paused_too_long(p, t0 + PAUSE_LIMIT / 2).is_none());
        // a second STOP does not restart the clock
        assert!(on_event(VmEvent::Stop, &mut p).is_none());
        assert_eq!(p, Some(t0));
        assert!(gone(paused_too_long(p, t0 + PAUSE_LIMIT)).contains("paused for 30 s"));
        assert!(on_event(VmEvent::Resume, &mut p).is_none());
        assert!(p.is_none() && paused_too_long(p, t0 + PAUSE_LIMIT * 2).is_none());
    }
}
