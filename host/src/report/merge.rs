//! Merging shards: every shard is an experiment `--out` root; their files are
//! copied into one tree under `out` (same relative paths), from which one
//! summary is built as from any results directory.
//!
//! Rules: derived outputs (summary.json, summary.txt, report.html, junit.xml)
//! are not copied, they are rebuilt. A file present in several shards with the
//! same bytes is copied once. A `manifest.json` that differs between shards is
//! kept as `manifest.<K>.json` (K = the shard's 1-based position) next to the
//! first one. Any other file that differs is an error naming both copies:
//! shards of one matrix never write the same run.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Files `write_all` produces; never copied from a shard.
pub const DERIVED: [&str; 4] = ["summary.json", "summary.txt", "report.html", "junit.xml"];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeStats {
    pub copied: usize,
    pub identical_skipped: usize,
    pub manifests_renamed: usize,
}

fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
    let ma = std::fs::metadata(a)?;
    let mb = std::fs::metadata(b)?;
    if ma.len() != mb.len() {
        return Ok(false);
    }
    Ok(std::fs::read(a)? == std::fs::read(b)?)
}

fn copy_tree(src: &Path, rel: &Path, out: &Path, shard: usize, origin: &mut Vec<(PathBuf, PathBuf)>, st: &mut MergeStats) -> Result<()> {
    let dir = src.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let r = rel.join(&name);
        let ft = e.file_type()?;
        if ft.is_dir() {
            std::fs::create_dir_all(out.join(&r)).with_context(|| format!("creating {}", out.join(&r).display()))?;
            copy_tree(src, &r, out, shard, origin, st)?;
            continue;
        }
        if !ft.is_file() || DERIVED.iter().any(|d| name == *d) {
            continue;
        }
        let from = e.path();
        let mut to = out.join(&r);
        if to.exists() {
            if same_bytes(&from, &to)? {
                st.identical_skipped += 1;
                continue;
            }
            if name == "manifest.json" {
                to = to.with_file_name(format!("manifest.{shard}.json"));
                st.manifests_renamed += 1;
            } else {
                let first = origin.iter().find(|(t, _)| *t == to).map(|(_, f)| f.clone()).unwrap_or_default();
                anyhow::bail!(
                    "merge conflict: {} and {} differ (two shards wrote the same run?)",
                    first.display(),
                    from.display()
                );
            }
        }
        std::fs::copy(&from, &to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        origin.push((to, from));
        st.copied += 1;
    }
    Ok(())
}

/// `p` made absolute with symlinks resolved as far as it exists.
fn resolved(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))?;
    let mut base = abs.as_path();
    let mut tail = Vec::new();
    while !base.exists() {
        let (Some(parent), Some(name)) = (base.parent(), base.file_name()) else { return Ok(abs) };
        tail.push(name.to_owned());
        base = parent;
    }
    let mut r = std::fs::canonicalize(base)?;
    r.extend(tail.iter().rev());
    Ok(r)
}

/// Copies the shards' result files into `out`, which must be absent or empty
/// and must not lie inside a shard.
pub fn merge_trees(shards: &[PathBuf], out: &Path) -> Result<MergeStats> {
    anyhow::ensure!(!shards.is_empty(), "merge: no shard directories given");
    if out.exists() {
        let mut it = std::fs::read_dir(out).with_context(|| format!("{}: not a readable directory", out.display()))?;
        anyhow::ensure!(it.next().is_none(), "merge: output directory {} is not empty", out.display());
    }
    let out_abs = resolved(out)?;
    let mut roots = Vec::new();
    for s in shards {
        let abs = std::fs::canonicalize(s).with_context(|| format!("merge: shard {} not found", s.display()))?;
        anyhow::ensure!(abs.is_dir(), "merge: shard {} is not a directory", s.display());
        anyhow::ensure!(
            !out_abs.starts_with(&abs) && !abs.starts_with(&out_abs),
            "merge: output {} overlaps shard {}",
            out.display(),
            s.display()
        );
        roots.push(abs);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut st = MergeStats::default();
    let mut origin = Vec::new();
    for (i, abs) in roots.iter().enumerate() {
        copy_tree(abs, Path::new(""), &out_abs, i + 1, &mut origin, &mut st)?;
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn put(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn copies_dedupes_renames_and_refuses_conflicts() {
        let t = tempfile::tempdir().unwrap();
        let (a, b, out) = (t.path().join("a"), t.path().join("b"), t.path().join("out"));
        put(&a, "s/w/control/run1.csv", "c1");
        put(&a, "s/w/manifest.json", "{\"shard\":1}");
        put(&a, "s/w/summary.json", "{}");
        put(&b, "s/w/control/run2.csv", "c2");
        put(&b, "s/w/manifest.json", "{\"shard\":2}");
        put(&b, "s/w/README", "same");
        put(&a, "s/w/README", "same");
        let st = merge_trees(&[a.clone(), b.clone()], &out).unwrap();
        assert_eq!(st, MergeStats { copied: 5, identical_skipped: 1, manifests_renamed: 1 });
        assert!(out.join("s/w/control/run1.csv").exists() && out.join("s/w/control/run2.csv").exists());
        assert_eq!(fs::read_to_string(out.join("s/w/manifest.2.json")).unwrap(), "{\"shard\":2}");
        assert!(!out.join("s/w/summary.json").exists());

        // Non-empty output refused.
        assert!(merge_trees(std::slice::from_ref(&a), &out).unwrap_err().to_string().contains("not empty"));

        // Same run in two shards with different bytes: error naming both.
        put(&b, "s/w/control/run1.csv", "different");
        let err = merge_trees(&[a.clone(), b.clone()], &t.path().join("out2")).unwrap_err().to_string();
        assert!(err.contains("merge conflict") && err.contains("a/s/w/control/run1.csv") && err.contains("b/s/w/control/run1.csv"), "{err}");

        // Output inside a shard refused.
        let err = merge_trees(std::slice::from_ref(&a), &a.join("merged")).unwrap_err().to_string();
        assert!(err.contains("overlaps"), "{err}");
    }
}
