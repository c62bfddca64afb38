//! The per-sample CSV of docs/results.md: fixed header, one line per sample,
//! flushed (and synced) as it is written so a crash loses at most one line.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

pub const HEADER: &str = "elapsed_s,map_entries,map_bytes,mem_free_kb,sunreclaim_kb,evictions,\
scans,scan_timeouts,scan_max_ns,sched_state,nr_tasks,false_evictions,track_ns,runs";

/// One row. Counters the source does not have are 0.
#[derive(Debug, Clone, Default, PartialEq)]
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
    pub sched_state: String,
    pub nr_tasks: u64,
    pub false_evictions: u64,
    pub track_ns: u64,
    pub runs: u64,
}

impl Sample {
    pub fn to_line(&self) -> String {
        // the state is a single word from sysfs; keep the CSV one field wide
        // even if a future kernel puts something odd there
        let state: String = self
            .sched_state
            .chars()
            .map(|c| if c == ',' || c.is_whitespace() { '_' } else { c })
            .collect();
        format!(
            "{:.3},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            self.elapsed_s,
            self.map_entries,
            self.map_bytes,
            self.mem_free_kb,
            self.sunreclaim_kb,
            self.evictions,
            self.scans,
            self.scan_timeouts,
            self.scan_max_ns,
            if state.is_empty() { "unknown" } else { &state },
            self.nr_tasks,
            self.false_evictions,
            self.track_ns,
            self.runs
        )
    }
}

pub struct CsvWriter {
    file: File,
}

impl CsvWriter {
    pub fn create(path: &Path) -> io::Result<Self> {
        let mut file = File::create(path)?;
        writeln!(file, "{HEADER}")?;
        file.sync_data()?;
        Ok(CsvWriter { file })
    }

    pub fn write(&mut self, s: &Sample) -> io::Result<()> {
        // one write per line: a reader never sees half a row
        self.file.write_all(format!("{}\n", s.to_line()).as_bytes())?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_contract() {
        assert_eq!(
            HEADER,
            "elapsed_s,map_entries,map_bytes,mem_free_kb,sunreclaim_kb,evictions,scans,\
             scan_timeouts,scan_max_ns,sched_state,nr_tasks,false_evictions,track_ns,runs"
        );
        assert_eq!(HEADER.split(',').count(), 14);
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
            sched_state: "enabled".into(),
            nr_tasks: 88,
            false_evictions: 2,
            track_ns: 5000,
            runs: 40,
        };
        assert_eq!(s.to_line(), "2.000,1234,98304,1800000,20480,7,3,1,100250,enabled,88,2,5000,40");
        assert_eq!(s.to_line().split(',').count(), HEADER.split(',').count());
    }

    #[test]
    fn odd_state_stays_one_field() {
        let s = Sample { sched_state: "a b,c".into(), ..Default::default() };
        assert_eq!(s.to_line().split(',').count(), 14);
        assert!(s.to_line().contains(",a_b_c,"));
        let e = Sample::default();
        assert!(e.to_line().contains(",unknown,"));
    }

    #[test]
    fn writer_writes_header_and_lines() {
        let dir = std::env::temp_dir().join(format!("csvtest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("run.csv");
        let mut w = CsvWriter::create(&p).unwrap();
        w.write(&Sample { sched_state: "enabled".into(), ..Default::default() }).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], HEADER);
        assert_eq!(lines[1], "0.000,0,0,0,0,0,0,0,0,enabled,0,0,0,0");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
