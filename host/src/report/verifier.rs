//! Verifier statistics of a variant's BPF programs, from the optional
//! `<variant>/verifier.json` (docs/results.md). Records follow veristat's JSON
//! output (`prog_name`, `verdict`, `total_insns`, `total_states`,
//! `peak_states`); `insns_processed` / `states` are accepted as aliases.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One program's verification cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifierProg {
    pub prog: String,
    /// Kernel the program was verified on, when the record or file says.
    #[serde(default)]
    pub kernel: Option<String>,
    /// "success" or "failure" (veristat's words), if given.
    #[serde(default)]
    pub verdict: Option<String>,
    /// Instructions processed by the verifier.
    pub insns: u64,
    /// Total states the verifier explored.
    pub states: u64,
    #[serde(default)]
    pub peak_states: Option<u64>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(alias = "prog")]
    prog_name: String,
    #[serde(default)]
    kernel: Option<String>,
    #[serde(default)]
    verdict: Option<String>,
    #[serde(alias = "insns_processed", alias = "insns")]
    total_insns: u64,
    #[serde(alias = "states")]
    total_states: u64,
    #[serde(default)]
    peak_states: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum File {
    List(Vec<Record>),
    Object { kernel: Option<String>, programs: Vec<Record> },
}

pub fn parse_str(text: &str, name: &str) -> Result<Vec<VerifierProg>> {
    let file: File = serde_json::from_str(text).with_context(|| {
        format!("{name}: expected a veristat-style JSON list of {{prog_name, total_insns, total_states}} or {{kernel, programs: [...]}}")
    })?;
    let (kernel, records) = match file {
        File::List(r) => (None, r),
        File::Object { kernel, programs } => (kernel, programs),
    };
    let mut progs: Vec<VerifierProg> = records
        .into_iter()
        .map(|r| VerifierProg {
            prog: r.prog_name,
            kernel: r.kernel.or_else(|| kernel.clone()),
            verdict: r.verdict,
            insns: r.total_insns,
            states: r.total_states,
            peak_states: r.peak_states,
        })
        .collect();
    progs.sort_by(|a, b| (&a.kernel, &a.prog).cmp(&(&b.kernel, &b.prog)));
    Ok(progs)
}

pub fn parse_file(path: &Path) -> Result<Vec<VerifierProg>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_str(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veristat_list() {
        let text = r#"[
          {"file_name": "scx_simple_test.bpf.o", "prog_name": "simple_dispatch", "verdict": "success",
           "duration": 812, "total_insns": 1543, "total_states": 121, "peak_states": 98, "mark_read_max_len": 4},
          {"file_name": "scx_simple_test.bpf.o", "prog_name": "simple_enqueue", "verdict": "success",
           "duration": 201, "total_insns": 310, "total_states": 22, "peak_states": 22, "mark_read_max_len": 2}
        ]"#;
        let v = parse_str(text, "verifier.json").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].prog.as_str(), v[0].insns, v[0].states), ("simple_dispatch", 1543, 121));
        assert_eq!(v[1].peak_states, Some(22));
    }

    #[test]
    fn object_with_kernel_and_aliases() {
        let text = r#"{"kernel": "6.12.57", "programs": [{"prog": "p", "insns_processed": 9, "states": 3}]}"#;
        let v = parse_str(text, "v").unwrap();
        assert_eq!(v[0].kernel.as_deref(), Some("6.12.57"));
        assert_eq!((v[0].insns, v[0].states), (9, 3));
    }

    #[test]
    fn garbage_names_the_file() {
        let err = parse_str("{\"x\": 1}", "control/verifier.json").unwrap_err().to_string();
        assert!(err.starts_with("control/verifier.json: "), "{err}");
    }
}
