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

/// A QMP command that did not succeed, by cause. Callers decide on the variant
/// (`is_closed`), never on the message.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// QEMU answered with an error: the command itself failed.
    #[error("QMP {command} failed: {error}")]
    Refused { command: &'static str, error: qapi::Error },
    /// The socket failed; see `is_closed`.
    #[error("QMP {command} failed: {error}")]
    Io { command: &'static str, error: std::io::Error },
    /// QEMU kept the socket open but did not answer.
    #[error("QMP {command} got no answer within 10 s")]
    NoAnswer { command: &'static str },
}

impl QmpError {
    /// QEMU closed the monitor (it exited, or is exiting) before answering.
    pub fn is_closed(&self) -> bool {
        matches!(self, QmpError::Io { error, .. } if is_closed_io(error))
    }
}

/// The io error kinds of a peer that went away: qapi reports a stream that
/// ended (or dropped the pending command) as UnexpectedEof, a write to a
/// closed socket fails with BrokenPipe or ConnectionReset.
fn is_closed_io(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), UnexpectedEof | BrokenPipe | ConnectionReset | ConnectionAborted | NotConnected)
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
        Ok(self.execute(cmd).await?)
    }

    async fn execute<C>(&self, cmd: C) -> Result<C::Ok, QmpError>
    where
        C: qapi::Command + qapi::qmp::QmpCommand + 'static,
    {
        let command = C::NAME;
        match tokio::time::timeout(Duration::from_secs(10), self.service.execute(cmd)).await {
            Err(_) => Err(QmpError::NoAnswer { command }),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(qapi::ExecuteError::Qapi(error))) => Err(QmpError::Refused { command, error }),
            Ok(Err(qapi::ExecuteError::Io(error))) => Err(QmpError::Io { command, error }),
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
        match self.execute(qmp::quit {}).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_closed() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Pause the vCPUs (QMP `stop`).
    pub async fn stop(&self) -> Result<()> {
        self.run(qmp::stop {}).await.map(|_| ())
    }

    /// Run the vCPUs again (QMP `cont`).
    pub async fn cont(&self) -> Result<()> {
        self.run(qmp::cont {}).await.map(|_| ())
    }

    /// Save the whole VM state into `file` (mapped-ram: every RAM page at a
    /// fixed offset, zero pages left as holes) and wait until it is written.
    pub async fn save_to_file(&self, file: &Path, timeout: Duration) -> Result<qmp::MigrationInfo> {
        self.mapped_ram().await?;
        self.run(qmp::migrate { uri: Some(format!("file:{}", file.display())), channels: None, detach: None, resume: None })
            .await?;
        let t = std::time::Instant::now();
        loop {
            let info = self.run(qmp::query_migrate {}).await?;
            match info.status {
                Some(qmp::MigrationStatus::completed) => return Ok(info),
                Some(qmp::MigrationStatus::failed) | Some(qmp::MigrationStatus::cancelled) => {
                    bail!("saving the VM state failed: {}", info.error_desc.as_deref().unwrap_or("QEMU gave no reason"))
                }
                _ if t.elapsed() > timeout => bail!("saving the VM state did not finish within {timeout:?}"),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Load the VM state saved by [`Qmp::save_to_file`] into a QEMU started
    /// with `-incoming defer`; returns once it is loaded (the VM stays paused).
    pub async fn load_from_file(&self, file: &Path, timeout: Duration) -> Result<()> {
        self.mapped_ram().await?;
        self.run(qmp::migrate_incoming { uri: Some(format!("file:{}", file.display())), channels: None, exit_on_error: Some(false) })
            .await?;
        let t = std::time::Instant::now();
        loop {
            let st = self.query_status().await?;
            if st.status != qmp::RunState::inmigrate {
                let info = self.run(qmp::query_migrate {}).await?;
                return match info.status {
                    Some(qmp::MigrationStatus::completed) => Ok(()),
                    other => bail!(
                        "loading the VM state failed ({}): {}",
                        serde_json::to_string(&other).unwrap_or_default(),
                        info.error_desc.as_deref().unwrap_or("QEMU gave no reason; see qemu.log")
                    ),
                };
            }
            if t.elapsed() > timeout {
                bail!("loading the VM state did not finish within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn mapped_ram(&self) -> Result<()> {
        let cap = qmp::MigrationCapabilityStatus { capability: qmp::MigrationCapability::mapped_ram, state: true };
        self.run(qmp::migrate_set_capabilities { capabilities: vec![cap] }).await.map(|_| ())
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    const OK: Option<&str> = Some(r#"{"return": {}}"#);

    /// A QMP peer on a unix socket: greets, then answers each command line with
    /// the next of `answers`; a None closes the socket without answering.
    fn fake_qemu(dir: &Path, answers: Vec<Option<&'static str>>) -> PathBuf {
        let sock = dir.join("qmp.sock");
        let l = tokio::net::UnixListener::bind(&sock).unwrap();
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (r, mut w) = tokio::io::split(s);
            let greeting = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 8}, "package": ""}, "capabilities": []}}"#;
            w.write_all(format!("{greeting}\n").as_bytes()).await.unwrap();
            let mut lines = tokio::io::BufReader::new(r).lines();
            for a in answers {
                if lines.next_line().await.ok().flatten().is_none() {
                    return;
                }
                match a {
                    Some(a) => w.write_all(format!("{a}\n").as_bytes()).await.unwrap(),
                    None => return, // both halves dropped: the socket closes
                }
            }
            // Out of answers: keep the socket open, say nothing.
            let _ = lines.next_line().await;
        });
        sock
    }

    async fn connect(sock: &Path) -> Qmp {
        Qmp::connect(sock, None, Duration::from_secs(5)).await.unwrap()
    }

    #[tokio::test]
    async fn quit_answered_by_a_closed_socket_is_success() {
        let t = tempfile::tempdir().unwrap();
        let q = connect(&fake_qemu(t.path(), vec![OK, None])).await;
        let mut rx = q.subscribe();
        q.quit().await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), VmEvent::Closed);
        // A command after the close is classified the same way, and is an error for anything but quit.
        let e = q.execute(qmp::system_powerdown {}).await.unwrap_err();
        assert!(e.is_closed(), "{e:?}");
        let e = q.system_powerdown().await.unwrap_err();
        assert!(e.downcast_ref::<QmpError>().is_some_and(QmpError::is_closed), "{e:#}");
        q.quit().await.unwrap();
    }

    #[tokio::test]
    async fn quit_answered_normally_is_success() {
        let t = tempfile::tempdir().unwrap();
        let q = connect(&fake_qemu(t.path(), vec![OK, OK])).await;
        q.quit().await.unwrap();
    }

    #[tokio::test]
    async fn refused_command_is_not_a_closed_socket() {
        let t = tempfile::tempdir().unwrap();
        // The desc even says "closed": the type decides, not the text.
        let no = Some(r#"{"error": {"class": "GenericError", "desc": "monitor closed for business"}}"#);
        let q = connect(&fake_qemu(t.path(), vec![OK, no, no])).await;
        let e = q.system_reset().await.unwrap_err();
        assert_eq!(e.to_string(), "QMP system_reset failed: monitor closed for business");
        let typed = e.downcast_ref::<QmpError>().unwrap();
        assert!(matches!(typed, QmpError::Refused { command: "system_reset", .. }), "{typed:?}");
        assert!(!typed.is_closed());
        let e = q.quit().await.unwrap_err();
        assert!(matches!(e.downcast_ref::<QmpError>(), Some(QmpError::Refused { command: "quit", .. })), "{e:#}");
    }

    #[test]
    fn closed_io_kinds() {
        use std::io::{Error, ErrorKind};
        for k in [ErrorKind::UnexpectedEof, ErrorKind::BrokenPipe, ErrorKind::ConnectionReset] {
            assert!(QmpError::Io { command: "quit", error: Error::from(k) }.is_closed(), "{k:?}");
        }
        for k in [ErrorKind::InvalidData, ErrorKind::PermissionDenied, ErrorKind::TimedOut] {
            assert!(!QmpError::Io { command: "quit", error: Error::from(k) }.is_closed(), "{k:?}");
        }
        assert!(!QmpError::NoAnswer { command: "quit" }.is_closed());
    }
}
