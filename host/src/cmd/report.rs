//! report: judge a result directory, merge shards, compare with a baseline.

use crate::cli::ReportArgs;
use crate::error::{bad, BadInput};
use anyhow::{bail, Result};

pub fn report(a: ReportArgs) -> Result<i32> {
    use crate::report;
    let merge = a.dirs.first().is_some_and(|d| d.as_os_str() == "merge");
    let (summary, dir) = if merge {
        let shards = &a.dirs[1..];
        let out = a.out.clone().ok_or_else(|| bad(anyhow::anyhow!("report merge needs --out DIR for the combined results")))?;
        if shards.is_empty() {
            bail!(BadInput("report merge needs at least one shard directory: report merge DIR... --out DIR".into()));
        }
        (report::merge(shards, &out).map_err(bad)?, out)
    } else {
        let [dir] = &a.dirs[..] else {
            bail!(BadInput("report takes one result directory (or: report merge DIR... --out DIR)".into()));
        };
        let s = report::summarize(dir).map_err(bad)?;
        report::write_all(dir, &s)?;
        (s, dir.clone())
    };
    crate::outln!("{summary}");
    crate::outln!("written: {}/{{summary.txt,summary.json,report.html,junit.xml}}", dir.display());
    let mut code = summary.exit_code();
    let mut md = report::summary_markdown(&summary);
    if let Some(b) = &a.baseline {
        let base = report::Summary::load(b).map_err(bad)?;
        let mut cmp = report::compare_baseline(&summary, &base);
        if a.no_timing_gate {
            cmp = cmp.timings_as_notes();
        }
        crate::outln!("{cmp}");
        md.push('\n');
        md.push_str(&cmp.to_markdown());
        code = code.max(cmp.exit_code());
    }
    if let Some(p) = &a.markdown {
        std::fs::write(p, md).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display()))?;
    }
    Ok(code)
}

