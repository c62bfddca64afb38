//! Reader for `run<N>.csv` (docs/results.md). Strict about the header and
//! every complete line; tolerant only of a cut-off LAST line, which is what a
//! run that crashed mid-write leaves behind.

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};

/// The header line, exactly as docs/results.md defines it (the agent writes
/// the same: guest-agent/src/csv.rs).
pub const HEADER: &str = "elapsed_s,map_entries,map_bytes,mem_free_kb,sunreclaim_kb,evictions,scans,scan_timeouts,scan_max_ns,sched_state,nr_tasks,false_evictions,track_ns,runs";
const NFIELDS: usize = 14;
/// The header before false_evictions, track_ns and runs were added: such
/// files are still read, those three columns as 0.
pub const HEADER_V1: &str = "elapsed_s,map_entries,map_bytes,mem_free_kb,sunreclaim_kb,evictions,scans,scan_timeouts,scan_max_ns,sched_state,nr_tasks";
const NFIELDS_V1: usize = 11;

/// `/sys/kernel/sched_ext/state`, kept as a small enum so a long run costs no
/// allocation per sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedState {
    Prepping,
    Enabling,
    Enabled,
    Disabling,
    Disabled,
    Other,
}

impl SchedState {
    fn parse(word: &str) -> SchedState {
        match word {
            "prepping" => SchedState::Prepping,
            "enabling" => SchedState::Enabling,
            "enabled" => SchedState::Enabled,
            "disabling" => SchedState::Disabling,
            "disabled" => SchedState::Disabled,
            _ => SchedState::Other,
        }
    }
}

/// One line of run<N>.csv.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub elapsed_s: f64,
    pub map_entries: u64,
    pub map_bytes: u64,
    pub mem_free_kb: u64,
    pub sunreclaim_kb: u64,
    pub evictions: u64,
    pub scans: u64,
    pub scan_timeouts: u64,
    pub scan_max_ns: u64,
    pub sched_state: SchedState,
    pub nr_tasks: u64,
    /// Live tasks touched again after a scan evicted their entry (cumulative).
    pub false_evictions: u64,
    /// ns spent in the scheduler's tracking code (cumulative).
    pub track_ns: u64,
    /// ops.running calls (cumulative): track_ns / runs is the cost per run.
    pub runs: u64,
}

/// A parsed file: its samples, and the line number of a dropped cut-off last
/// line, if there was one.
#[derive(Clone, Debug, Default)]
pub struct CsvRun {
    pub samples: Vec<Sample>,
    pub truncated_line: Option<usize>,
}

/// Why one line is not a sample (the caller adds file and line).
#[derive(Debug)]
struct LineError(String);

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const COLUMNS: [&str; NFIELDS] = [
    "elapsed_s", "map_entries", "map_bytes", "mem_free_kb", "sunreclaim_kb", "evictions", "scans",
    "scan_timeouts", "scan_max_ns", "sched_state", "nr_tasks", "false_evictions", "track_ns", "runs",
];

fn count(fields: &[&str], i: usize) -> Result<u64, LineError> {
    fields[i]
        .parse::<u64>()
        .map_err(|_| LineError(format!("column {} is not a count: {:?}", COLUMNS[i], fields[i])))
}

/// `nfields`: NFIELDS, or NFIELDS_V1 for a file with the old header.
fn parse_line(line: &str, nfields: usize) -> Result<Sample, LineError> {
    let mut fields = [""; NFIELDS];
    let mut n = 0;
    for f in line.split(',') {
        if n < nfields {
            fields[n] = f;
        }
        n += 1;
    }
    if n != nfields {
        return Err(LineError(format!("expected {nfields} fields, got {n}")));
    }
    let extra = |i: usize| if nfields > i { count(&fields, i) } else { Ok(0) };
    let elapsed_s: f64 = fields[0]
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| LineError(format!("column elapsed_s is not a time: {:?}", fields[0])))?;
    if fields[9].is_empty() {
        return Err(LineError("column sched_state is empty".into()));
    }
    Ok(Sample {
        elapsed_s,
        map_entries: count(&fields, 1)?,
        map_bytes: count(&fields, 2)?,
        mem_free_kb: count(&fields, 3)?,
        sunreclaim_kb: count(&fields, 4)?,
        evictions: count(&fields, 5)?,
        scans: count(&fields, 6)?,
        scan_timeouts: count(&fields, 7)?,
        scan_max_ns: count(&fields, 8)?,
        sched_state: SchedState::parse(fields[9]),
        nr_tasks: count(&fields, 10)?,
        false_evictions: extra(11)?,
        track_ns: extra(12)?,
        runs: extra(13)?,
    })
}

/// Parses CSV text; `name` is only used in error messages.
///
/// Rules: the first line must equal [`HEADER`] (a trailing `\r` is allowed).
/// An empty file, or a header cut off before its newline, is a run that died
/// before its first flush: zero samples, flagged as truncated. Every complete
/// line must be a valid sample; the last line may be invalid only if it is
/// also unterminated (no `\n`), and is then dropped and flagged.
pub fn parse_str(text: &str, name: &str) -> Result<CsvRun> {
    let mut run = CsvRun::default();
    if text.is_empty() {
        run.truncated_line = Some(1);
        return Ok(run);
    }
    let mut lines = text.split_inclusive('\n').enumerate().peekable();
    let (_, first) = lines.next().expect("non-empty text has a line");
    let header = first.trim_end_matches('\n').trim_end_matches('\r');
    let nfields = if header == HEADER_V1 { NFIELDS_V1 } else { NFIELDS };
    if header != HEADER && header != HEADER_V1 {
        if !first.ends_with('\n') && HEADER.starts_with(header) {
            run.truncated_line = Some(1);
            return Ok(run);
        }
        anyhow::bail!(
            "{name}:1: unexpected CSV header\n  got:      {header}\n  expected: {HEADER}"
        );
    }
    while let Some((i, raw)) = lines.next() {
        let lineno = i + 1;
        let terminated = raw.ends_with('\n');
        let line = raw.trim_end_matches('\n').trim_end_matches('\r');
        let is_last = lines.peek().is_none();
        if line.is_empty() {
            if is_last {
                break;
            }
            anyhow::bail!("{name}:{lineno}: empty line in the middle of the samples");
        }
        match parse_line(line, nfields) {
            Ok(s) => run.samples.push(s),
            Err(_) if is_last && !terminated => run.truncated_line = Some(lineno),
            Err(e) => anyhow::bail!("{name}:{lineno}: {e}"),
        }
    }
    Ok(run)
}

/// Reads and parses one run<N>.csv; errors name the file and line.
pub fn parse_file(path: &Path) -> Result<CsvRun> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("{}: not UTF-8 text", path.display()))?;
    parse_str(text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(lines: &[&str]) -> String {
        let mut s = String::from(HEADER);
        s.push('\n');
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    const L1: &str = "0.000,120,65536,1843200,40960,0,0,0,0,enabled,131,0,1500,10";
    const L2: &str = "2.001,480,131072,1838000,41210,35,2,0,41000,enabled,498,3,90000,600";

    #[test]
    fn parses_real_looking_lines() {
        let run = parse_str(&file(&[L1, L2]), "run1.csv").unwrap();
        assert_eq!(run.samples.len(), 2);
        assert_eq!(run.truncated_line, None);
        let s = run.samples[1];
        assert_eq!(s.elapsed_s, 2.001);
        assert_eq!((s.map_entries, s.map_bytes, s.mem_free_kb, s.sunreclaim_kb), (480, 131072, 1838000, 41210));
        assert_eq!((s.evictions, s.scans, s.scan_timeouts, s.scan_max_ns), (35, 2, 0, 41000));
        assert_eq!((s.sched_state, s.nr_tasks), (SchedState::Enabled, 498));
        assert_eq!((s.false_evictions, s.track_ns, s.runs), (3, 90000, 600));
    }

    #[test]
    fn files_with_the_old_header_are_read_with_the_new_columns_zero() {
        let text = format!("{HEADER_V1}\n2.001,480,131072,1838000,41210,35,2,0,41000,enabled,498\n");
        let run = parse_str(&text, "old.csv").unwrap();
        let s = run.samples[0];
        assert_eq!((s.map_entries, s.nr_tasks, s.false_evictions, s.track_ns, s.runs), (480, 498, 0, 0, 0));
        // an old-width line under the new header is still an error
        let err = parse_str(&file(&["2.001,480,131072,1838000,41210,35,2,0,41000,enabled,498"]), "r").unwrap_err();
        assert!(err.to_string().contains("expected 14 fields, got 11"), "{err}");
    }

    #[test]
    fn the_agent_writes_this_header() {
        let src = include_str!("../../../guest-agent/src/csv.rs");
        let start = src.find("pub const HEADER: &str = \"").expect("the agent's HEADER") + 26;
        let end = start + src[start..].find("\";").expect("end of the agent's HEADER");
        let agent: String = src[start..end].split("\\\n").map(str::trim_start).collect();
        assert_eq!(agent, HEADER);
    }

    #[test]
    fn crlf_and_missing_final_newline_of_a_complete_line() {
        let text = format!("{HEADER}\r\n{L1}\r\n{L2}");
        let run = parse_str(&text, "x").unwrap();
        assert_eq!(run.samples.len(), 2);
        assert_eq!(run.truncated_line, None);
    }

    #[test]
    fn cut_off_last_line_is_dropped_and_flagged() {
        let text = format!("{}2.001,480,1310", file(&[L1]));
        let run = parse_str(&text, "x").unwrap();
        assert_eq!(run.samples.len(), 1);
        assert_eq!(run.truncated_line, Some(3));
    }

    #[test]
    fn bad_line_in_the_middle_is_an_error_naming_file_and_line() {
        let err = parse_str(&file(&[L1, "2.0,oops,1,1,1,1,1,1,1,enabled,1,0,0,0", L2]), "res/test/run2.csv")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("res/test/run2.csv:3: "), "{err}");
        assert!(err.contains("map_entries"), "{err}");
        // A bad but newline-terminated last line is not a crash artefact.
        let err = parse_str(&file(&[L1, "2.0,1,1"]), "r.csv").unwrap_err().to_string();
        assert!(err.starts_with("r.csv:3: expected 14 fields, got 3"), "{err}");
    }

    #[test]
    fn wrong_header_is_an_error() {
        let text = "elapsed,map_entries\n0,1\n";
        let err = parse_str(text, "run1.csv").unwrap_err().to_string();
        assert!(err.starts_with("run1.csv:1: unexpected CSV header"), "{err}");
        assert!(err.contains(HEADER));
        // Reordered columns are just as wrong.
        let swapped = HEADER.replace("map_entries,map_bytes", "map_bytes,map_entries");
        assert!(parse_str(&format!("{swapped}\n"), "r").is_err());
    }

    #[test]
    fn empty_or_half_written_header_means_no_samples() {
        assert_eq!(parse_str("", "r").unwrap().truncated_line, Some(1));
        let run = parse_str("elapsed_s,map_ent", "r").unwrap();
        assert!(run.samples.is_empty());
        assert_eq!(run.truncated_line, Some(1));
        let run = parse_str(&format!("{HEADER}\n"), "r").unwrap();
        assert!(run.samples.is_empty() && run.truncated_line.is_none());
    }

    #[test]
    fn rejects_negative_and_nan_values() {
        assert!(parse_str(&file(&["-1.0,1,1,1,1,1,1,1,1,enabled,1,0,0,0"]), "r").is_err());
        assert!(parse_str(&file(&["NaN,1,1,1,1,1,1,1,1,enabled,1,0,0,0"]), "r").is_err());
        assert!(parse_str(&file(&["1.0,-5,1,1,1,1,1,1,1,enabled,1,0,0,0"]), "r").is_err());
        assert!(parse_str(&file(&["1.0,5,1,1,1,1,1,1,1,,1,0,0,0"]), "r").is_err());
    }

    #[test]
    fn unknown_state_word_is_kept_as_other() {
        let run = parse_str(&file(&["1.0,5,1,1,1,1,1,1,1,weird,1,0,0,0"]), "r").unwrap();
        assert_eq!(run.samples[0].sched_state, SchedState::Other);
    }
}
