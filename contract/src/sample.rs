//! `run<N>.csv` (docs/results.md): a fixed header, one [`Sample`] per line.
//! The agent writes it a line at a time, synced, so a crash loses at most
//! the last line; the host reads it strictly, tolerating only a cut-off
//! last line, which is what a run that died mid-write leaves behind.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize, Serializer};

/// The header, the field names of [`Sample`] in order.
pub const HEADER: &str = "elapsed_s,map_entries,map_bytes,mem_free_kb,sunreclaim_kb,evictions,scans,\
scan_timeouts,scan_max_ns,sched_state,nr_tasks,false_evictions,track_ns,runs";
/// The header before false_evictions, track_ns and runs were added: such
/// files are still read, those three columns as 0.
pub const HEADER_V1: &str =
    "elapsed_s,map_entries,map_bytes,mem_free_kb,sunreclaim_kb,evictions,scans,scan_timeouts,scan_max_ns,sched_state,nr_tasks";

/// `/sys/kernel/sched_ext/state`, a small enum so a long run costs no
/// allocation per sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedState {
    Prepping,
    Enabling,
    Enabled,
    Disabling,
    Disabled,
    /// empty, unreadable, or a word a newer kernel added
    #[default]
    #[serde(other)]
    Unknown,
}

impl SchedState {
    /// The sysfs file's word (surrounding whitespace ignored).
    pub fn from_sysfs(word: &str) -> SchedState {
        serde_json::from_value(serde_json::Value::String(word.trim().to_string())).unwrap_or_default()
    }
}

/// One line of run<N>.csv. Counters the source does not have are 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// seconds since the scheduler was enabled, written with 3 decimals
    #[serde(serialize_with = "millis")]
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
    #[serde(default)]
    pub false_evictions: u64,
    /// ns spent in the scheduler's tracking code (cumulative).
    #[serde(default)]
    pub track_ns: u64,
    /// ops.running calls (cumulative): track_ns / runs is the cost per run.
    #[serde(default)]
    pub runs: u64,
}

fn millis<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:.3}"))
}

impl Sample {
    /// The CSV line, without its newline.
    pub fn to_line(&self) -> String {
        let mut w = csv::WriterBuilder::new().has_headers(false).terminator(csv::Terminator::Any(b'\n')).from_writer(vec![]);
        w.serialize(self).expect("a Sample always serializes");
        let mut bytes = w.into_inner().expect("writing to memory");
        bytes.pop();
        String::from_utf8(bytes).expect("numbers and a lowercase word")
    }
}

/// Writes run<N>.csv: the header at creation, then one synced write per line,
/// so a reader never sees half a row.
pub struct SampleWriter {
    file: File,
}

impl SampleWriter {
    pub fn create(path: &Path) -> io::Result<Self> {
        let mut file = File::create(path)?;
        writeln!(file, "{HEADER}")?;
        file.sync_data()?;
        Ok(SampleWriter { file })
    }

    pub fn write(&mut self, s: &Sample) -> io::Result<()> {
        self.file.write_all(format!("{}\n", s.to_line()).as_bytes())?;
        self.file.sync_data()
    }
}

/// A parsed file: its samples, and the line number of a dropped cut-off last
/// line, if there was one.
#[derive(Clone, Debug, Default)]
pub struct CsvRun {
    pub samples: Vec<Sample>,
    pub truncated_line: Option<usize>,
}

/// Why a run<N>.csv cannot be read: the file (as the caller named it), the
/// 1-based line (None: the file as a whole) and what is wrong there.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {msg}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct CsvError {
    pub file: String,
    pub line: Option<usize>,
    pub msg: String,
}

fn columns(header: &str) -> Vec<&str> {
    header.split(',').collect()
}

/// Parses CSV text; `name` is only used in error messages.
///
/// Rules: the first line must equal [`HEADER`] or [`HEADER_V1`] (a trailing
/// `\r` is allowed). An empty file, or a header cut off before its newline,
/// is a run that died before its first flush: zero samples, flagged as
/// truncated. Every complete line must be a valid sample; the last line may be
/// invalid only if it is also unterminated (no `\n`), and is then dropped and
/// flagged.
pub fn parse_str(text: &str, name: &str) -> Result<CsvRun, CsvError> {
    let err = |line: usize, msg: String| CsvError { file: name.to_string(), line: Some(line), msg };
    let mut run = CsvRun::default();
    if text.is_empty() {
        run.truncated_line = Some(1);
        return Ok(run);
    }
    let first = text.split_inclusive('\n').next().expect("non-empty text has a line");
    let header = first.trim_end_matches('\n').trim_end_matches('\r');
    if header != HEADER && header != HEADER_V1 {
        if !first.ends_with('\n') && HEADER.starts_with(header) {
            run.truncated_line = Some(1);
            return Ok(run);
        }
        return Err(err(1, format!("unexpected CSV header\n  got:      {header}\n  expected: {HEADER}")));
    }
    let cols = columns(header);
    // the csv crate skips blank lines; a blank line between samples means a
    // file was spliced, so refuse it here
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, l) in lines.iter().enumerate().skip(1) {
        if l.trim_end_matches(['\n', '\r']).is_empty() && i + 1 < lines.len() {
            return Err(err(i + 1, "empty line in the middle of the samples".into()));
        }
    }
    let terminated = text.ends_with('\n');
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(text.as_bytes());
    let headers = rdr.headers().map_err(|e| err(1, e.to_string()))?.clone();
    let records: Vec<_> = rdr.records().collect();
    let n = records.len();
    for (i, rec) in records.into_iter().enumerate() {
        let is_last = i + 1 == n;
        let rec = rec.map_err(|e| err(e.position().map_or(i + 2, |p| p.line() as usize), e.to_string()))?;
        let lineno = rec.position().map_or(i + 2, |p| p.line() as usize);
        match sample_of(&rec, &headers, &cols) {
            Ok(s) => run.samples.push(s),
            Err(_) if is_last && !terminated => run.truncated_line = Some(lineno),
            Err(msg) => return Err(err(lineno, msg)),
        }
    }
    Ok(run)
}

fn sample_of(rec: &csv::StringRecord, headers: &csv::StringRecord, cols: &[&str]) -> Result<Sample, String> {
    if rec.len() != cols.len() {
        return Err(format!("expected {} fields, got {}", cols.len(), rec.len()));
    }
    let field = |e: &csv::Error| match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => err.field(),
        _ => None,
    };
    let s: Sample = rec.deserialize(Some(headers)).map_err(|e| match field(&e) {
        Some(f) => {
            let (col, val) = (cols[f as usize], rec.get(f as usize).unwrap_or(""));
            format!("column {col} is not a {}: {val:?}", if f == 0 { "time" } else { "count" })
        }
        None => e.to_string(),
    })?;
    if !(s.elapsed_s.is_finite() && s.elapsed_s >= 0.0) {
        return Err(format!("column elapsed_s is not a time: {:?}", rec.get(0).unwrap_or("")));
    }
    if rec.get(9).is_some_and(str::is_empty) {
        return Err("column sched_state is empty".into());
    }
    Ok(s)
}

/// Reads and parses one run<N>.csv; errors name the file and line.
pub fn parse_file(path: &Path) -> Result<CsvRun, CsvError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| CsvError { file: name.clone(), line: None, msg: format!("cannot read: {e}") })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| CsvError { file: name.clone(), line: None, msg: "not UTF-8 text".into() })?;
    parse_str(text, &name)
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
    fn header_is_the_sample_fields_in_order() {
        assert_eq!(HEADER.split(',').count(), 14);
        let mut w = csv::Writer::from_writer(vec![]);
        w.serialize(Sample::default()).unwrap();
        let out = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(out.lines().next().unwrap(), HEADER);
        assert!(HEADER.starts_with(HEADER_V1));
    }

    #[test]
    fn line_format() {
        let s = Sample {
            elapsed_s: 2.0004,
            map_entries: 1234,
            map_bytes: 98304,
            mem_free_kb: 1800000,
            sunreclaim_kb: 20480,
            evictions: 7,
            scans: 3,
            scan_timeouts: 1,
            scan_max_ns: 100250,
            sched_state: SchedState::Enabled,
            nr_tasks: 88,
            false_evictions: 2,
            track_ns: 5000,
            runs: 40,
        };
        assert_eq!(s.to_line(), "2.000,1234,98304,1800000,20480,7,3,1,100250,enabled,88,2,5000,40");
        assert!(Sample::default().to_line().contains(",unknown,"));
    }

    #[test]
    fn sysfs_words() {
        assert_eq!(SchedState::from_sysfs("enabled\n"), SchedState::Enabled);
        assert_eq!(SchedState::from_sysfs("disabling"), SchedState::Disabling);
        assert_eq!(SchedState::from_sysfs(""), SchedState::Unknown);
        assert_eq!(SchedState::from_sysfs("a b,c"), SchedState::Unknown);
    }

    #[test]
    fn what_the_writer_writes_the_reader_reads_back() {
        let dir = std::env::temp_dir().join(format!("contract-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("run1.csv");
        let mut w = SampleWriter::create(&p).unwrap();
        let samples: Vec<Sample> = (0..5u64)
            .map(|i| Sample {
                elapsed_s: i as f64 * 2.0 + 0.25,
                map_entries: 100 * i,
                evictions: i,
                sched_state: if i == 4 { SchedState::Disabled } else { SchedState::Enabled },
                runs: 7 * i,
                ..Default::default()
            })
            .collect();
        for s in &samples {
            w.write(s).unwrap();
        }
        let run = parse_file(&p).unwrap();
        assert_eq!(run.samples, samples);
        assert_eq!(run.truncated_line, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
        let err = parse_str(&format!("{}\n{L2}\n", file(&[L1])), "r.csv").unwrap_err().to_string();
        assert!(err.starts_with("r.csv:3: empty line"), "{err}");
    }

    #[test]
    fn file_level_errors_name_the_file_without_a_line() {
        let dir = std::env::temp_dir().join(format!("contract-csv-junk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("run1.csv");
        std::fs::write(&p, [0xff, 0xfe, 0x00, 0x41]).unwrap();
        assert_eq!(parse_file(&p).unwrap_err().to_string(), format!("{}: not UTF-8 text", p.display()));
        std::fs::remove_dir_all(&dir).unwrap();
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
    fn unknown_state_word_is_kept_as_unknown() {
        let run = parse_str(&file(&["1.0,5,1,1,1,1,1,1,1,weird,1,0,0,0"]), "r").unwrap();
        assert_eq!(run.samples[0].sched_state, SchedState::Unknown);
    }
}
