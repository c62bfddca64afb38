//! cp: files in and out of a guest, by cp's rule (an existing directory
//! receives the copy; any other destination is its new name).

use super::vm::attach;
use crate::cli::CpArgs;
use crate::error::BadInput;
use crate::machine::{ssh, vm};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// "NAME:path" -> (NAME, path); a local path has no NAME.
pub fn split_remote(s: &str) -> Option<(&str, &str)> {
    let (n, p) = s.split_once(':')?;
    (vm::validate_name(n).is_ok() && !n.contains('/')).then_some((n, p))
}

pub async fn cp(a: CpArgs) -> Result<i32> {
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
            crate::errln!("copied {} to {name}:{}", src.display(), match &new_name {
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
                crate::errln!("copied {name}:{path} to {}", m.display());
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
    fn parents() {
        assert_eq!(split_parent("/root/x"), ("/root".into(), "x".into()));
        assert_eq!(split_parent("/x/"), ("/".into(), "x".into()));
        assert_eq!(split_parent("x"), (".".into(), "x".into()));
    }
}
