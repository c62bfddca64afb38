//! Fetching a kernel (or source tarball) given as an http(s) URL into the
//! cache, checked against a sha256 the user supplies.

use crate::paths;
use anyhow::{bail, Context, Result};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

pub fn sha256_file(p: &Path) -> Result<String> {
    let mut f = std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn check_hex(s: &str) -> Result<String> {
    let s = s.trim().to_ascii_lowercase();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("`{s}` is not a sha256 (64 hex digits)");
    }
    Ok(s)
}

/// Download `url` into the cache unless a file with `sha256` is already there.
pub async fn fetch(url: &str, sha256: &str, what: &str) -> Result<PathBuf> {
    let want = check_hex(sha256)?;
    let name = url.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("download");
    let dir = paths::cache_dir().join("downloads").join(&want);
    let dest = dir.join(name);
    if dest.exists() && sha256_file(&dest)? == want {
        return Ok(dest);
    }
    std::fs::create_dir_all(&dir)?;
    let mut progress = crate::progress::Progress::new("download");
    let resp = reqwest::get(url).await.with_context(|| format!("cannot fetch {what} from {url}"))?;
    if !resp.status().is_success() {
        bail!("fetching {what} from {url}: HTTP {}", resp.status());
    }
    let total = resp.content_length();
    let tmp = dir.join(format!(".{name}.part"));
    let mut f = std::fs::File::create(&tmp)?;
    let mut h = Sha256::new();
    let mut got = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.with_context(|| format!("download of {url} broke off"))?;
        h.update(&chunk);
        f.write_all(&chunk)?;
        got += chunk.len() as u64;
        progress.update(&match total {
            Some(t) => format!("{url}: {} of {} MiB", got >> 20, t >> 20),
            None => format!("{url}: {} MiB", got >> 20),
        });
    }
    f.sync_all()?;
    let have = hex::encode(h.finalize());
    if have != want {
        let _ = std::fs::remove_file(&tmp);
        bail!("{what} from {url} has sha256 {have}, expected {want}: refusing it (check the URL and the sha256 you gave)");
    }
    std::fs::rename(&tmp, &dest)?;
    progress.finish(&format!("fetched {url} ({} MiB)", got >> 20));
    Ok(dest)
}
