//! Finding result files: `<root>/.../<scheduler>/<workload>/<variant>/run<N>.*`.
//!
//! A directory is a *group* (one scheduler x workload) when one of its
//! subdirectories holds a `run<N>.csv` or `run<N>.json`; that subdirectory is a
//! *variant*. Groups may sit at any depth below the directory given (at most
//! [`MAX_DEPTH`]), so a kernel level above `<scheduler>` works too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// How deep below the given directory groups are looked for.
pub const MAX_DEPTH: usize = 6;

/// Variants in report order; anything else follows alphabetically.
pub const KNOWN_VARIANTS: [&str; 6] = ["control", "test", "bpfscan", "exitdel", "taskstor", "custom"];

/// The files of one run (iteration) of one variant; any may be missing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunFiles {
    pub iteration: u32,
    pub csv: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub dmesg: Option<PathBuf>,
    pub serial: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VariantDir {
    pub name: String,
    pub path: PathBuf,
    /// Sorted by iteration.
    pub runs: Vec<RunFiles>,
    /// `verifier.json`, if the runner recorded verifier statistics.
    pub verifier: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GroupDir {
    pub path: PathBuf,
    /// Relative to the directory searched, "." when it is that directory.
    pub rel: String,
    pub scheduler: String,
    pub workload: String,
    /// Path components above `<scheduler>` (e.g. a kernel level), joined by '/'.
    pub prefix: Option<String>,
    pub variants: Vec<VariantDir>,
}

/// `run12.dmesg.log` -> (12, "dmesg.log").
pub fn parse_run_name(name: &str) -> Option<(u32, &str)> {
    let rest = name.strip_prefix("run")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || rest.as_bytes().get(digits) != Some(&b'.') {
        return None;
    }
    Some((rest[..digits].parse().ok()?, &rest[digits + 1..]))
}

fn variant_rank(name: &str) -> (usize, String) {
    let rank = KNOWN_VARIANTS.iter().position(|v| *v == name).unwrap_or(KNOWN_VARIANTS.len());
    (rank, name.to_string())
}

fn sorted_entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading directory {}", dir.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading directory {}", dir.display()))?;
    v.sort_by_key(|e| e.file_name());
    Ok(v)
}

/// Reads one variant directory; None when it holds no run files.
pub fn read_variant(path: &Path) -> Result<Option<VariantDir>> {
    let mut runs: BTreeMap<u32, RunFiles> = BTreeMap::new();
    let mut verifier = None;
    for e in sorted_entries(path)? {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "verifier.json" {
            verifier = Some(e.path());
            continue;
        }
        let Some((n, kind)) = parse_run_name(&name) else { continue };
        let slot: fn(&mut RunFiles) -> &mut Option<PathBuf> = match kind {
            "csv" => |r: &mut RunFiles| &mut r.csv,
            "json" => |r: &mut RunFiles| &mut r.json,
            "dmesg.log" => |r: &mut RunFiles| &mut r.dmesg,
            "serial.log" => |r: &mut RunFiles| &mut r.serial,
            _ => continue,
        };
        let run = runs.entry(n).or_insert_with(|| RunFiles { iteration: n, ..Default::default() });
        *slot(run) = Some(e.path());
    }
    // A run exists for the report only with its CSV or its JSON.
    runs.retain(|_, r| r.csv.is_some() || r.json.is_some());
    if runs.is_empty() {
        return Ok(None);
    }
    Ok(Some(VariantDir {
        name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        path: path.to_path_buf(),
        runs: runs.into_values().collect(),
        verifier,
    }))
}

fn read_group(path: &Path) -> Result<Option<Vec<VariantDir>>> {
    let mut variants = Vec::new();
    for e in sorted_entries(path)? {
        if e.file_type()?.is_dir() && !e.file_name().to_string_lossy().starts_with('.') {
            if let Some(v) = read_variant(&e.path())? {
                variants.push(v);
            }
        }
    }
    variants.sort_by_key(|v| variant_rank(&v.name));
    Ok((!variants.is_empty()).then_some(variants))
}

/// Finds every group at or below `root`, sorted by relative path.
pub fn find_groups(root: &Path) -> Result<Vec<GroupDir>> {
    let meta = std::fs::metadata(root).with_context(|| format!("{}: no such directory", root.display()))?;
    anyhow::ensure!(meta.is_dir(), "{}: not a directory", root.display());
    let abs = std::fs::canonicalize(root).with_context(|| format!("resolving {}", root.display()))?;
    let mut out = Vec::new();
    walk(&abs, &mut Vec::new(), &mut out)?;
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn walk(dir: &Path, rel: &mut Vec<String>, out: &mut Vec<GroupDir>) -> Result<()> {
    if let Some(variants) = read_group(dir)? {
        out.push(make_group(dir, rel, variants));
        return Ok(());
    }
    if rel.len() >= MAX_DEPTH {
        return Ok(());
    }
    for e in sorted_entries(dir)? {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type()?.is_dir() && !name.starts_with('.') {
            rel.push(name);
            walk(&e.path(), rel, out)?;
            rel.pop();
        }
    }
    Ok(())
}

fn make_group(dir: &Path, rel: &[String], variants: Vec<VariantDir>) -> GroupDir {
    // Names come from the path (the layout contract): <scheduler>/<workload>.
    let comp = |p: Option<&Path>| {
        p.and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    };
    let workload = comp(Some(dir));
    let scheduler = comp(dir.parent());
    let prefix = (rel.len() > 2).then(|| rel[..rel.len() - 2].join("/"));
    GroupDir {
        path: dir.to_path_buf(),
        rel: if rel.is_empty() { ".".into() } else { rel.join("/") },
        scheduler,
        workload,
        prefix,
        variants,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn run_names() {
        assert_eq!(parse_run_name("run1.csv"), Some((1, "csv")));
        assert_eq!(parse_run_name("run12.dmesg.log"), Some((12, "dmesg.log")));
        assert_eq!(parse_run_name("run.csv"), None);
        assert_eq!(parse_run_name("runx1.csv"), None);
        assert_eq!(parse_run_name("run1csv"), None);
        assert_eq!(parse_run_name("summary.json"), None);
    }

    #[test]
    fn finds_groups_at_any_depth_and_orders_variants() {
        let t = tempfile::tempdir().unwrap();
        let touch = |p: &str| {
            let p = t.path().join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "").unwrap();
        };
        touch("scx_simple/hackbench/test/run1.csv");
        touch("scx_simple/hackbench/test/run1.dmesg.log");
        touch("scx_simple/hackbench/control/run1.csv");
        touch("scx_simple/hackbench/control/run2.json");
        touch("scx_simple/hackbench/control/run3.dmesg.log"); // log alone: no run
        touch("scx_simple/hackbench/bpfscan/run1.csv");
        touch("scx_simple/hackbench/bpfscan/verifier.json");
        touch("6.13/scx_nest/stress-ng/control/run1.csv");
        touch("scx_simple/notes/readme.txt");
        let groups = find_groups(t.path()).unwrap();
        assert_eq!(groups.len(), 2);
        let g = &groups[1];
        assert_eq!((g.rel.as_str(), g.scheduler.as_str(), g.workload.as_str()), ("scx_simple/hackbench", "scx_simple", "hackbench"));
        assert_eq!(g.prefix, None);
        let names: Vec<_> = g.variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["control", "test", "bpfscan"]);
        assert_eq!(g.variants[0].runs.len(), 2);
        assert!(g.variants[0].runs[1].csv.is_none() && g.variants[0].runs[1].json.is_some());
        assert!(g.variants[1].runs[0].dmesg.is_some());
        assert!(g.variants[2].verifier.is_some());
        assert_eq!(groups[0].prefix.as_deref(), Some("6.13"));
        assert_eq!(groups[0].scheduler, "scx_nest");

        // Pointing at the group itself.
        let one = find_groups(&t.path().join("scx_simple/hackbench")).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!((one[0].rel.as_str(), one[0].scheduler.as_str()), (".", "scx_simple"));
    }

    #[test]
    fn missing_directory_is_a_clear_error() {
        let err = find_groups(Path::new("/nonexistent/results")).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/results"), "{err}");
    }
}
