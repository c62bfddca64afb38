//! Fetching a kernel (or source tarball) given as an http(s) URL into the
//! cache, checked against a sha256 the user supplies.

use crate::paths;
use anyhow::Result;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a download was refused or failed. Callers decide on the variant
/// (`is_bad_input`), never on the message.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The sha256 the user gave is not 64 hex digits.
    #[error("`{0}` is not a sha256 (64 hex digits)")]
    BadChecksumArg(String),
    /// The bytes arrived, but they are not the ones the user's sha256 names.
    #[error("{what} from {url} has sha256 {got}, expected {expected}: refusing it (check the URL and the sha256 you gave)")]
    ChecksumMismatch { what: String, url: String, expected: String, got: String },
    /// The server answered with something other than the file.
    #[error("fetching {what} from {url}: HTTP {status}")]
    Http { what: String, url: String, status: reqwest::StatusCode },
    /// No answer (DNS, connect, TLS), or the transfer broke off.
    #[error("{doing}")]
    Transfer {
        doing: String,
        #[source]
        source: reqwest::Error,
    },
    /// Reading or writing the cache.
    #[error("{doing}")]
    Io {
        doing: String,
        #[source]
        source: std::io::Error,
    },
}

impl DownloadError {
    /// The user's input is wrong (a malformed sha256, or one the file does not
    /// have), rather than the network or the tool failing.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, DownloadError::BadChecksumArg(_) | DownloadError::ChecksumMismatch { .. })
    }
}

fn io_err(doing: String, source: std::io::Error) -> DownloadError {
    DownloadError::Io { doing, source }
}

pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

pub fn sha256_file(p: &Path) -> Result<String> {
    Ok(sha256_of(p)?)
}

fn sha256_of(p: &Path) -> Result<String, DownloadError> {
    let mut f = std::fs::File::open(p).map_err(|e| io_err(format!("cannot open {}", p.display()), e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).map_err(|e| io_err(format!("cannot read {}", p.display()), e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn check_hex(s: &str) -> Result<String, DownloadError> {
    let s = s.trim().to_ascii_lowercase();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DownloadError::BadChecksumArg(s));
    }
    Ok(s)
}

/// Download `url` into the cache unless a file with `sha256` is already there.
/// A failure is a [`DownloadError`] inside the `anyhow::Error`.
pub async fn fetch(url: &str, sha256: &str, what: &str) -> Result<PathBuf> {
    Ok(fetch_into(&paths::cache_dir().join("downloads"), url, sha256, what).await?)
}

/// `fetch` with the downloads directory given (`<root>/<sha256>/<name>`).
async fn fetch_into(root: &Path, url: &str, sha256: &str, what: &str) -> Result<PathBuf, DownloadError> {
    let want = check_hex(sha256)?;
    let name = url.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("download");
    let dir = root.join(&want);
    let dest = dir.join(name);
    if dest.exists() && sha256_of(&dest)? == want {
        return Ok(dest);
    }
    std::fs::create_dir_all(&dir).map_err(|e| io_err(format!("cannot create {}", dir.display()), e))?;
    let mut progress = crate::progress::Progress::new("download");
    let resp = reqwest::get(url)
        .await
        .map_err(|source| DownloadError::Transfer { doing: format!("cannot fetch {what} from {url}"), source })?;
    if !resp.status().is_success() {
        return Err(DownloadError::Http { what: what.into(), url: url.into(), status: resp.status() });
    }
    let total = resp.content_length();
    let tmp = dir.join(format!(".{name}.part"));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io_err(format!("cannot create {}", tmp.display()), e))?;
    let mut h = Sha256::new();
    let mut got = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|source| DownloadError::Transfer { doing: format!("download of {url} broke off"), source })?;
        h.update(&chunk);
        f.write_all(&chunk).map_err(|e| io_err(format!("cannot write {}", tmp.display()), e))?;
        got += chunk.len() as u64;
        progress.update(&match total {
            Some(t) => format!("{url}: {} of {} MiB", got >> 20, t >> 20),
            None => format!("{url}: {} MiB", got >> 20),
        });
    }
    f.sync_all().map_err(|e| io_err(format!("cannot write {}", tmp.display()), e))?;
    let have = hex::encode(h.finalize());
    if have != want {
        let _ = std::fs::remove_file(&tmp);
        return Err(DownloadError::ChecksumMismatch { what: what.into(), url: url.into(), expected: want, got: have });
    }
    std::fs::rename(&tmp, &dest).map_err(|e| io_err(format!("cannot move the download to {}", dest.display()), e))?;
    progress.finish(&format!("fetched {url} ({} MiB)", got >> 20));
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"not really a kernel\n";

    fn sha(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    /// A tiny HTTP server on 127.0.0.1: GET /k/bzImage is BODY, anything else 404.
    async fn serve() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let mut resp = if req.starts_with(b"GET /k/bzImage ") {
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", BODY.len()).into_bytes()
                    } else {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
                    };
                    if req.starts_with(b"GET /k/bzImage ") {
                        resp.extend_from_slice(BODY);
                    }
                    let _ = s.write_all(&resp).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn malformed_sha256_is_bad_input() {
        let t = tempfile::tempdir().unwrap();
        let e = fetch_into(t.path(), "http://127.0.0.1:9/k/bzImage", "abc", "kernel").await.unwrap_err();
        assert!(matches!(e, DownloadError::BadChecksumArg(_)), "{e:?}");
        assert!(e.is_bad_input());
        assert_eq!(e.to_string(), "`abc` is not a sha256 (64 hex digits)");
    }

    #[tokio::test]
    async fn checksum_mismatch_is_bad_input_and_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let base = serve().await;
        let url = format!("{base}/k/bzImage");
        let want = sha(b"another kernel");
        let e = fetch_into(t.path(), &url, &want, "kernel").await.unwrap_err();
        match &e {
            DownloadError::ChecksumMismatch { expected, got, url: u, what } => {
                assert_eq!((expected, got, u, what.as_str()), (&want, &sha(BODY), &url, "kernel"));
            }
            other => panic!("not a mismatch: {other:?}"),
        }
        assert!(e.is_bad_input());
        assert!(e.to_string().contains(&format!("has sha256 {}, expected {want}", sha(BODY))), "{e}");
        assert!(std::fs::read_dir(t.path().join(&want)).unwrap().next().is_none(), "a partial file was left");
        // Through the anyhow boundary the variant is still there to decide on.
        let a = anyhow::Error::from(e).context("resolving --kernel");
        assert!(a.downcast_ref::<DownloadError>().is_some_and(DownloadError::is_bad_input));
    }

    #[tokio::test]
    async fn right_checksum_is_cached() {
        let t = tempfile::tempdir().unwrap();
        let base = serve().await;
        let url = format!("{base}/k/bzImage");
        let want = sha(BODY).to_ascii_uppercase(); // any case is accepted
        let p = fetch_into(t.path(), &url, &want, "kernel").await.unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), BODY);
        assert_eq!(p, t.path().join(sha(BODY)).join("bzImage"));
        // The cached copy is used without asking the server again.
        let again = fetch_into(t.path(), "http://127.0.0.1:9/k/bzImage", &want, "kernel").await.unwrap();
        assert_eq!(again, p);
    }

    #[tokio::test]
    async fn http_and_connection_errors_are_not_bad_input() {
        let t = tempfile::tempdir().unwrap();
        let base = serve().await;
        let e = fetch_into(t.path(), &format!("{base}/nope"), &sha(BODY), "kernel").await.unwrap_err();
        assert!(matches!(&e, DownloadError::Http { status, .. } if status.as_u16() == 404), "{e:?}");
        assert!(!e.is_bad_input());
        assert!(e.to_string().ends_with("HTTP 404 Not Found"), "{e}");
        // A port nobody listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = fetch_into(t.path(), &format!("http://127.0.0.1:{port}/k/bzImage"), &sha(BODY), "kernel").await.unwrap_err();
        assert!(matches!(e, DownloadError::Transfer { .. }), "{e:?}");
        assert!(!e.is_bad_input());
        assert!(e.to_string().starts_with("cannot fetch kernel from http://127.0.0.1:"), "{e}");
    }
}
