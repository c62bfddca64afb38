//! `scx-vmctl report`: judge experiment results from their files alone.
//!
//! Input is the layout of docs/results.md; output and criteria are described
//! in docs/report.md. The CLI needs only these:
//!
//! ```text
//! summarize(dir) -> Result<Summary>         // dir = <out>/<sched>/<workload>, or any root above groups
//! write_all(dir, &summary) -> Result<()>    // summary.json, summary.txt, report.html, junit.xml
//! merge(&[shard_dirs], out) -> Result<Summary>  // copy shards into `out`, summarize, write_all
//! Summary::load(path) -> Result<Summary>    // an earlier summary.json (schema-checked)
//! compare_baseline(&current, &baseline) -> Comparison
//! summary.all_pass(), summary.exit_code(), comparison.exit_code()
//! format!("{summary}"), format!("{comparison}")  // short terminal verdicts
//! summary_markdown(&summary), comparison.to_markdown()  // CI job summary
//! splat::scan_text(text, LogKind, file)      // the splat scanner, for the runner
//! ```
//!
//! Errors (bad header, unreadable JSON, merge conflicts) name the file; the
//! CLI maps them to `exit::BAD_INPUT`.

pub mod baseline;
pub mod capacity;
pub mod collect;
pub mod criteria;
pub mod fmt;
pub mod html;
pub mod junit;
pub mod layout;
pub mod leak;
pub mod merge;
pub mod runinfo;
pub mod runstats;
pub mod splat;
pub mod stats;
pub mod summary;
pub mod svg;
pub mod text;
pub mod verifier;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use baseline::{compare_baseline, Comparison, Finding};
pub use merge::MergeStats;
pub use splat::{LogKind, Splat};
pub use summary::{Criterion, GroupSummary, Status, Summary, SCHEMA_VERSION};
pub use text::summary_markdown;

/// Builds the summary of every group at or below `dir`.
pub fn summarize(dir: &Path) -> Result<Summary> {
    let groups = layout::find_groups(dir)?;
    anyhow::ensure!(
        !groups.is_empty(),
        "{}: no results found (expected <scheduler>/<workload>/<variant>/run<N>.csv below it)",
        dir.display()
    );
    let groups = groups.iter().map(collect::group).collect::<Result<Vec<_>>>()?;
    Ok(Summary::new(groups))
}

fn write_set(dir: &Path, s: &Summary) -> Result<()> {
    let files = [
        ("summary.json", s.to_json()),
        ("summary.txt", text::summary_text(s)),
        ("report.html", html::report_html(s)),
        ("junit.xml", junit::junit_xml(s)),
    ];
    for (name, body) in files {
        let p = dir.join(name);
        // Write then rename, so a reader never sees half a file.
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, body).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// Writes summary.json, summary.txt, report.html and junit.xml into `dir`
/// (the directory that was summarized). When the summary spans groups below
/// `dir`, each group directory also gets its own four files.
pub fn write_all(dir: &Path, summary: &Summary) -> Result<()> {
    write_set(dir, summary)?;
    for g in summary.groups.iter().filter(|g| g.path != ".") {
        let gdir = dir.join(&g.path);
        if gdir.is_dir() {
            let one = Summary::new(vec![g.clone()]);
            write_set(&gdir, &one)?;
        }
    }
    Ok(())
}

/// `report merge SHARD... --out DIR`: copies the shards' result trees into
/// `out` (see [`merge`](mod@merge) for the rules), then summarizes `out` and writes
/// its report files. Returns the merged summary.
pub fn merge(shards: &[PathBuf], out: &Path) -> Result<Summary> {
    merge::merge_trees(shards, out)?;
    let s = summarize(out)?;
    write_all(out, &s)?;
    Ok(s)
}
