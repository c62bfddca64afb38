//! The QMP client: the `qapi` crate on tokio over the VM's unix socket. A task
//! pumps the socket (responses and events); events are logged to the run
//! directory and handed to whoever waits for them.

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use qapi::qmp;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UnixStream;
use tokio::sync::broadcast;

type Service = qapi::futures::QapiService<qapi::futures::QmpStreamTokio<tokio::io::WriteHalf<UnixStream>>>;

/// The events scx-vmctl acts on; others are logged and otherwise ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmEvent {
    Shutdown { guest: bool, reason: String },
    Powerdown,
    Reset,
    Stop,
    Resume,
    GuestPanicked,
    /// The QMP socket closed: QEMU exited.
    Closed,
}

pub struct Qmp {
    service: Service,
    events: broadcast::Sender<VmEvent>,
    pump: tokio::task::JoinHandle<()>,
}

impl Drop for Qmp {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

impl Qmp {
    /// Connect, retrying until `timeout` while QEMU creates the socket.
    pub async fn connect(socket: &Path, event_log: Option<PathBuf>, timeout: Duration) -> Result<Qmp> {
        // QEMU serves one QMP client at a time: a second one is never greeted,
        // so the whole handshake (greeting included) runs under the timeout.
        let handshake = async {
            let nego = loop {
                match qapi::futures::QmpStreamTokio::open_uds(socket).await {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        tokio::time::sleep(Duration::from_millis(20)).await; // QEMU is still creating it
                    }
                    Err(e) => return Err(e),
                }
            };
            nego.negotiate().await
        };
        let stream = match tokio::time::timeout(timeout, handshake).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(e).with_context(|| format!("QMP on {} failed", socket.display())),
            Err(_) => bail!(
                "QMP socket {} did not answer within {:?} (QEMU still starting, or another scx-vmctl holds the monitor)",
                socket.display(),
                timeout
            ),
        };
        let (service, mut events) = stream.into_parts();
        let (tx, _) = broadcast::channel(64);
        let sender = tx.clone();
        let pump = tokio::spawn(async move {
            let mut log = event_log.and_then(|p| std::fs::OpenOptions::new().create(true).append(true).open(p).ok());
            while let Some(item) = events.next().await {
                // An event this crate's schema does not know is a decode error:
                // log it and go on, the stream itself is fine.
                let ev = match item {
                    Ok(ev) => ev,
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => continue,
                    Err(_) => break,
                };
                if let Some(f) = log.as_mut() {
                    let _ = writeln!(f, "{}", serde_json::to_string(&ev).unwrap_or_default());
                }
                if let Some(v) = map_event(&ev) {
                    let _ = sender.send(v);
                }
            }
            let _ = sender.send(VmEvent::Closed);
        });
        Ok(Qmp { service, events: tx, pump })
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<VmEvent> {
        self.events.subscribe()
    }

    async fn run<C>(&self, cmd: C) -> Result<C::Ok>
    where
        C: qapi::Command + qapi::qmp::QmpCommand + 'static,
    {
        let name = C::NAME;
        match tokio::time::timeout(Duration::from_secs(10), self.service.execute(cmd)).await {
            Err(_) => bail!("QMP {name} got no answer within 10 s"),
            Ok(r) => r.map_err(|e| anyhow::anyhow!("QMP {name} failed: {e}")),
        }
    }

    pub async fn query_status(&self) -> Result<qmp::StatusInfo> {
        self.run(qmp::query_status {}).await
    }

    pub async fn query_version(&self) -> Result<String> {
        let v = self.run(qmp::query_version {}).await?;
        Ok(format!("{}.{}.{}", v.qemu.major, v.qemu.minor, v.qemu.micro))
    }

    /// ACPI power button: the guest init syncs and powers off.
    pub async fn system_powerdown(&self) -> Result<()> {
        self.run(qmp::system_powerdown {}).await.map(|_| ())
    }

    pub async fn system_reset(&self) -> Result<()> {
        self.run(qmp::system_reset {}).await.map(|_| ())
    }

    /// Ask QEMU to exit. The socket closes before an answer may arrive.
    pub async fn quit(&self) -> Result<()> {
        match self.run(qmp::quit {}).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("EOF") || e.to_string().contains("closed") => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn human(&self, command: &str) -> Result<String> {
        self.run(qmp::human_monitor_command { command_line: command.to_string(), cpu_index: None }).await
    }
}

fn map_event(ev: &qmp::Event) -> Option<VmEvent> {
    Some(match ev {
        qmp::Event::SHUTDOWN { data, .. } => VmEvent::Shutdown {
            guest: data.guest,
            reason: serde_json::to_value(data.reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        },
        qmp::Event::POWERDOWN { .. } => VmEvent::Powerdown,
        qmp::Event::RESET { .. } => VmEvent::Reset,
        qmp::Event::STOP { .. } => VmEvent::Stop,
        qmp::Event::RESUME { .. } => VmEvent::Resume,
        qmp::Event::GUEST_PANICKED { .. } => VmEvent::GuestPanicked,
        _ => return None,
    })
}

/// The run state as QMP spells it ("running", "paused", "guest-panicked", ...).
pub fn run_state_name(s: &qmp::StatusInfo) -> String {
    serde_json::to_value(s.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{:?}", s.status))
}
