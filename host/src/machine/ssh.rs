//! The SSH transport: russh with the tool's own ed25519 key, the guest's host
//! key pinned from the image build (a mismatch is an error, never a silent
//! accept), commands with streamed output, and files moved as tar streams over
//! an exec channel.

use anyhow::{bail, Context, Result};
use russh::client;
use russh::keys::{ssh_key, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::ChannelMsg;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The tool's key pair, made once; the private half is 0600.
pub struct ToolKey {
    pub private: Arc<PrivateKey>,
    /// "ssh-ed25519 AAAA... scx-vmctl"
    pub public_line: String,
    pub path: PathBuf,
}

impl ToolKey {
    pub fn load_or_create(dir: &Path) -> Result<ToolKey> {
        crate::paths::private_dir(dir)?;
        let path = dir.join("id_ed25519");
        if !path.exists() {
            let mut seed = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
                .context("cannot read /dev/urandom for a new key")?;
            let kp = ssh_key::private::Ed25519Keypair::from_seed(&seed);
            let mut key = PrivateKey::from(kp);
            key.set_comment("scx-vmctl");
            let pem = key.to_openssh(ssh_key::LineEnding::LF).context("cannot encode the new key")?;
            // Create with 0600 from the start: the key never exists world-readable.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode_0600()
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            f.write_all(pem.as_bytes())?;
            std::fs::write(path.with_extension("pub"), format!("{}\n", key.public_key().to_openssh()?))?;
        }
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!("private key {} has mode {:o}; it must be 0600: chmod 600 {}", path.display(), mode, path.display());
        }
        let key = PrivateKey::read_openssh_file(&path).with_context(|| format!("cannot read key {}", path.display()))?;
        let public_line = key.public_key().to_openssh()?;
        Ok(ToolKey { private: Arc::new(key), public_line, path })
    }
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}
impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

/// Why a connection (or the wait for one) failed, for callers that decide on it:
/// a wrong host key stops the retries, a guest that never answered gets a diagnosis.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The guest offered another host key than the image recorded; retrying will not help.
    #[error(
        "SSH host key mismatch on 127.0.0.1:{port}: the guest offered {got}, the image was built with {expected}; \
         refusing to connect (rebuild the image or check what listens on that port)"
    )]
    HostKeyMismatch { port: u16, expected: String, got: String },
    /// One attempt got no SSH handshake in time.
    #[error("SSH to 127.0.0.1:{port} timed out after {timeout:?}")]
    Timeout { port: u16, timeout: Duration },
    /// One attempt failed otherwise (refused, reset, protocol error).
    #[error("SSH to 127.0.0.1:{port} failed")]
    Connect {
        port: u16,
        #[source]
        source: russh::Error,
    },
    /// The handshake worked but the guest refused the tool's key.
    #[error("SSH key authentication as root failed on 127.0.0.1:{port} (was the VM started by this user's key?)")]
    AuthRejected { port: u16 },
    /// `wait_ready` gave up: no attempt succeeded within `total`.
    #[error("guest SSH did not answer within {total:?} (last attempt: {last})")]
    NotAnswering { total: Duration, last: String },
}

impl SshError {
    /// Retrying the same target cannot succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SshError::HostKeyMismatch { .. })
    }
}

/// Where and whom to connect to.
#[derive(Clone)]
pub struct Target {
    pub port: u16,
    /// The guest's host key as recorded at image build ("ssh-ed25519 AAAA...").
    pub host_key: String,
    pub key: Arc<PrivateKey>,
}

struct Pinned {
    expected: PublicKey,
    mismatch: Arc<std::sync::Mutex<Option<String>>>,
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(&mut self, offered: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let ok = match offered {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key.key_data() == self.expected.key_data(),
            russh::keys::PublicKeyOrCertificate::Certificate(_) => false,
        };
        if !ok {
            let got = match offered {
                russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key.to_openssh().unwrap_or_default(),
                _ => "a certificate".into(),
            };
            *self.mismatch.lock().unwrap() = Some(got);
        }
        Ok(ok)
    }
}

/// Output of a command run to completion.
/// A guest path that exists: a directory, or anything else (a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Dir,
    Other,
}

#[derive(Debug)]
pub struct Output {
    pub status: u32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

pub struct Ssh {
    handle: client::Handle<Pinned>,
}

/// Quote one word for the remote POSIX shell. Commands are argv joined with
/// this, never user text pasted into a command line.
pub fn quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

pub fn join_argv<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter().map(|a| quote(a.as_ref())).collect::<Vec<_>>().join(" ")
}

impl Ssh {
    /// One connection attempt: TCP, handshake, host key check, key auth.
    pub async fn connect(t: &Target, timeout: Duration) -> Result<Ssh> {
        let expected = PublicKey::from_openssh(t.host_key.trim())
            .with_context(|| format!("pinned host key is malformed: {}", t.host_key))?;
        let mismatch = Arc::new(std::sync::Mutex::new(None));
        let handler = Pinned { expected, mismatch: mismatch.clone() };
        let config = Arc::new(client::Config {
            keepalive_interval: Some(Duration::from_secs(5)),
            keepalive_max: 6,
            nodelay: true,
            ..Default::default()
        });
        let addr = ("127.0.0.1", t.port);
        let port = t.port;
        let mut handle = match tokio::time::timeout(timeout, client::connect(config, addr, handler)).await {
            Err(_) => return Err(SshError::Timeout { port, timeout }.into()),
            Ok(Err(e)) => {
                if let Some(got) = mismatch.lock().unwrap().take() {
                    return Err(SshError::HostKeyMismatch { port, expected: t.host_key.trim().to_string(), got }.into());
                }
                return Err(SshError::Connect { port, source: e }.into());
            }
            Ok(Ok(h)) => h,
        };
        let auth = tokio::time::timeout(
            timeout,
            handle.authenticate_publickey("root", PrivateKeyWithHashAlg::new(t.key.clone(), None)),
        )
        .await
        .context("SSH authentication timed out")??;
        if !auth.success() {
            return Err(SshError::AuthRejected { port }.into());
        }
        Ok(Ssh { handle })
    }

    /// Retry `connect` until `deadline` (the guest is still booting); `alive` is
    /// asked between attempts and stops the wait with its error (QEMU died, ...).
    pub async fn wait_ready(
        t: &Target,
        total: Duration,
        mut alive: impl FnMut() -> Result<()>,
    ) -> Result<Ssh> {
        let start = tokio::time::Instant::now();
        let mut last_err = None;
        while start.elapsed() < total {
            alive()?;
            match Ssh::connect(t, Duration::from_secs(5)).await {
                Ok(s) => return Ok(s),
                Err(e) => {
                    // A wrong host key will not fix itself.
                    if e.downcast_ref::<SshError>().is_some_and(SshError::is_permanent) {
                        return Err(e);
                    }
                    last_err = Some(e);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let last = last_err.map(|e| format!("{e:#}")).unwrap_or_default();
        Err(SshError::NotAnswering { total, last }.into())
    }

    /// Run `cmd` in the guest's shell; stdout/stderr chunks go to `sink` as they come.
    pub async fn exec_streamed(
        &self,
        cmd: &str,
        stdin: Option<Vec<u8>>,
        mut sink: impl FnMut(bool, &[u8]),
    ) -> Result<u32> {
        let mut ch = self.handle.channel_open_session().await.context("cannot open an SSH channel")?;
        ch.exec(true, cmd).await.context("SSH exec failed")?;
        if let Some(data) = stdin {
            // Whole packets (data_bytes) rather than 8 KiB writes: far fewer
            // packets for the TCG guest to decrypt.
            ch.data_bytes(data).await.context("sending stdin over SSH failed")?;
        }
        ch.eof().await.ok();
        let mut status = None;
        while let Some(msg) = ch.wait().await {
            match msg {
                ChannelMsg::Data { data } => sink(false, &data),
                ChannelMsg::ExtendedData { data, ext: 1 } => sink(true, &data),
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    bail!("remote command killed by signal {signal_name:?}: {cmd}")
                }
                _ => {}
            }
        }
        status.ok_or_else(|| anyhow::anyhow!("SSH channel closed before the command exited (connection lost?): {cmd}"))
    }

    /// Run `cmd` with `stdin` sent as it arrives (a pipe into `scx-vmctl ssh`),
    /// so a guest command can start before the input ends; EOF when the
    /// receiver closes. Output goes to `sink` as in `exec_streamed`.
    pub async fn exec_piped(
        &self,
        cmd: &str,
        mut stdin: tokio::sync::mpsc::Receiver<Vec<u8>>,
        mut sink: impl FnMut(bool, &[u8]),
    ) -> Result<u32> {
        let mut ch = self.handle.channel_open_session().await.context("cannot open an SSH channel")?;
        ch.exec(true, cmd).await.context("SSH exec failed")?;
        let mut stdin_open = true;
        let mut status = None;
        loop {
            tokio::select! {
                chunk = stdin.recv(), if stdin_open => match chunk {
                    Some(d) => ch.data_bytes(d).await.context("sending stdin over SSH failed")?,
                    None => { stdin_open = false; ch.eof().await.ok(); }
                },
                m = ch.wait() => match m {
                    Some(ChannelMsg::Data { data }) => sink(false, &data),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => sink(true, &data),
                    Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                        bail!("remote command killed by signal {signal_name:?}: {cmd}")
                    }
                    Some(_) => {}
                    None => break,
                },
            }
        }
        status.ok_or_else(|| anyhow::anyhow!("SSH channel closed before the command exited (connection lost?): {cmd}"))
    }

    /// Run to completion, capturing output.
    pub async fn exec(&self, cmd: &str) -> Result<Output> {
        self.exec_input(cmd, None).await
    }

    pub async fn exec_input(&self, cmd: &str, stdin: Option<Vec<u8>>) -> Result<Output> {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let status = self
            .exec_streamed(cmd, stdin, |err, d| if err { stderr.extend_from_slice(d) } else { stdout.extend_from_slice(d) })
            .await?;
        Ok(Output { status, stdout, stderr })
    }

    /// Run and fail unless it exits 0, quoting its stderr.
    pub async fn check(&self, cmd: &str) -> Result<Output> {
        let o = self.exec(cmd).await?;
        if o.status != 0 {
            bail!("`{cmd}` failed in the guest (exit {}): {}", o.status, o.stderr_str().trim());
        }
        Ok(o)
    }

    /// Copy a local file or directory into guest directory `remote_dir` (made if missing).
    pub async fn upload(&self, local: &Path, remote_dir: &str, name: Option<&str>) -> Result<()> {
        let local = local.to_path_buf();
        let name = name
            .map(str::to_owned)
            .or_else(|| local.file_name().map(|n| n.to_string_lossy().into_owned()))
            .context("source has no file name")?;
        let archive = tokio::task::spawn_blocking(move || crate::machine::transfer::pack(&local, &name)).await??;
        let cmd = format!("mkdir -p {d} && tar -x -p -f - -C {d}", d = quote(remote_dir));
        let o = self.exec_input(&cmd, Some(archive)).await?;
        if o.status != 0 {
            bail!("unpacking in the guest under {remote_dir} failed: {}", o.stderr_str().trim());
        }
        Ok(())
    }

    /// What `path` is in the guest (symlinks followed), None when it does not exist.
    pub async fn path_kind(&self, path: &str) -> Result<Option<PathKind>> {
        let q = quote(path);
        let o = self.exec(&format!("if [ -d {q} ]; then echo dir; elif [ -e {q} ]; then echo other; else echo none; fi")).await?;
        Ok(match o.stdout_str().trim() {
            "dir" => Some(PathKind::Dir),
            "other" => Some(PathKind::Other),
            _ => None,
        })
    }

    /// Copy guest file or directory `remote` into local directory `local_dir`.
    pub async fn download(&self, remote: &str, local_dir: &Path) -> Result<Vec<PathBuf>> {
        let p = Path::new(remote);
        let parent = p.parent().filter(|x| !x.as_os_str().is_empty()).unwrap_or(Path::new("/"));
        let base = p.file_name().context("remote path has no file name")?;
        let cmd = format!(
            "tar -c -f - -C {} {}",
            quote(&parent.to_string_lossy()),
            quote(&base.to_string_lossy())
        );
        let o = self.exec(&cmd).await?;
        if o.status != 0 {
            bail!("reading {remote} in the guest failed: {}", o.stderr_str().trim());
        }
        let dir = local_dir.to_path_buf();
        tokio::task::spawn_blocking(move || crate::machine::transfer::unpack_safely(&o.stdout[..], &dir)).await?
    }

    /// An interactive login shell on a pseudo-terminal; returns the shell's exit code.
    pub async fn interactive(&self) -> Result<u32> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut ch = self.handle.channel_open_session().await?;
        let (cols, rows) = crate::term::size().unwrap_or((80, 24));
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
        ch.request_pty(true, &term, cols, rows, 0, 0, &[]).await?;
        ch.request_shell(true).await?;
        let _raw = crate::term::RawMode::enable();
        let mut stdin = tokio::io::stdin();
        let mut stdout = tokio::io::stdout();
        let mut buf = vec![0u8; 4096];
        let mut stdin_open = true;
        let mut code = 0;
        loop {
            tokio::select! {
                r = stdin.read(&mut buf), if stdin_open => match r {
                    Ok(0) | Err(_) => { stdin_open = false; ch.eof().await.ok(); }
                    Ok(n) => ch.data(&buf[..n]).await?,
                },
                m = ch.wait() => match m {
                    Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                        stdout.write_all(&data).await?;
                        stdout.flush().await?;
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => code = exit_status,
                    Some(_) => {}
                    None => break,
                },
            }
        }
        Ok(code)
    }

    pub async fn close(self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_argv() {
        assert_eq!(quote("ls"), "ls");
        assert_eq!(quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(join_argv(&["echo", "a;b", "c"]), "echo 'a;b' c");
    }

    #[test]
    fn key_is_made_once_with_mode_0600() {
        let t = tempfile::tempdir().unwrap();
        let k1 = ToolKey::load_or_create(t.path()).unwrap();
        let k2 = ToolKey::load_or_create(t.path()).unwrap();
        assert_eq!(k1.public_line, k2.public_line);
        assert!(k1.public_line.starts_with("ssh-ed25519 "));
        let mode = std::fs::metadata(&k1.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&k1.path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = ToolKey::load_or_create(t.path()).err().unwrap().to_string();
        assert!(e.contains("must be 0600"), "{e}");
    }

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]))
    }

    fn target(port: u16, pinned: &PrivateKey) -> Target {
        Target { port, host_key: pinned.public_key().to_openssh().unwrap(), key: Arc::new(key(9)) }
    }

    /// The error of a connection expected to fail.
    fn failed(r: Result<Ssh>) -> anyhow::Error {
        match r {
            Ok(_) => panic!("connected"),
            Err(e) => e,
        }
    }

    struct NoAuth;
    impl russh::server::Handler for NoAuth {
        type Error = russh::Error;
    }

    #[tokio::test]
    async fn host_key_mismatch_is_typed_and_ends_the_wait() {
        // An SSH server on 127.0.0.1 whose host key is not the pinned one.
        let served = key(1);
        let config = Arc::new(russh::server::Config { keys: vec![served.clone()], ..Default::default() });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let config = config.clone();
                tokio::spawn(async move {
                    if let Ok(session) = russh::server::run_stream(config, s, NoAuth).await {
                        let _ = session.await;
                    }
                });
            }
        });
        let pinned = key(2);
        let t = target(port, &pinned);
        let start = std::time::Instant::now();
        let e = failed(Ssh::wait_ready(&t, Duration::from_secs(30), || Ok(())).await);
        assert!(start.elapsed() < Duration::from_secs(10), "retried a host key mismatch for {:?}", start.elapsed());
        let s = e.downcast_ref::<SshError>().unwrap_or_else(|| panic!("untyped: {e:#}"));
        let SshError::HostKeyMismatch { port: p, expected, got } = s else { panic!("{s:?}") };
        assert_eq!(*p, port);
        assert_eq!(expected, &pinned.public_key().to_openssh().unwrap());
        assert_eq!(got, &served.public_key().to_openssh().unwrap());
        assert!(s.is_permanent());
        assert!(e.to_string().starts_with(&format!("SSH host key mismatch on 127.0.0.1:{port}: the guest offered ssh-ed25519 ")));
    }

    #[tokio::test]
    async fn silent_port_times_out_and_wait_gives_up_typed() {
        // Accepts TCP, never says a word: one attempt times out.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                conns.push(s);
            }
        });
        let t = target(port, &key(2));
        let e = failed(Ssh::connect(&t, Duration::from_millis(200)).await);
        let s = e.downcast_ref::<SshError>().unwrap_or_else(|| panic!("untyped: {e:#}"));
        assert!(matches!(s, SshError::Timeout { port: p, .. } if *p == port), "{s:?}");
        assert!(!s.is_permanent());
        held.abort();

        // Nobody listens: attempts are refused until the wait gives up.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let t = target(port, &key(2));
        let e = failed(Ssh::wait_ready(&t, Duration::from_millis(300), || Ok(())).await);
        let s = e.downcast_ref::<SshError>().unwrap_or_else(|| panic!("untyped: {e:#}"));
        assert!(matches!(s, SshError::NotAnswering { total, .. } if *total == Duration::from_millis(300)), "{s:?}");
        assert!(e.to_string().starts_with("guest SSH did not answer within 300ms (last attempt: SSH to 127.0.0.1:"), "{e}");

        // `alive` failing ends the wait with its own error, not NotAnswering.
        let e = failed(Ssh::wait_ready(&t, Duration::from_secs(5), || anyhow::bail!("QEMU exited")).await);
        assert!(e.downcast_ref::<SshError>().is_none());
        assert_eq!(e.to_string(), "QEMU exited");
    }
}
