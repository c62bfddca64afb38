//! Which runs an experiment makes, in which order, and which of them a shard
//! owns. Pure, so the order and the sharding are unit-tested.

use crate::names::{Scheduler, Variant, Workload};
use anyhow::{bail, Result};

/// One run: a variant of a scheduler under a workload, in an iteration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId {
    /// Scheduler name (one of ours, or the name given to a user's binary).
    pub sched: String,
    pub workload: Workload,
    pub variant: String,
    pub iteration: u32,
}

impl RunId {
    pub fn label(&self) -> String {
        format!("{} {} {} #{}", self.sched, self.workload, self.variant, self.iteration)
    }
}

/// `all` or one name.
pub fn expand_schedulers(s: &str) -> Result<Vec<Scheduler>> {
    if s == "all" {
        return Ok(Scheduler::ALL.to_vec());
    }
    Ok(vec![Scheduler::parse(s).map_err(|e| anyhow::anyhow!("{e} (or all)"))?])
}

pub fn expand_workloads(s: &str) -> Result<Vec<Workload>> {
    if s == "all" {
        // the seed's three; cgroup-churn (what leaks per cgroup) is asked for by name
        return Ok(Workload::ALL.iter().copied().filter(|w| *w != Workload::CgroupChurn).collect());
    }
    Ok(vec![Workload::parse(s).map_err(|e| anyhow::anyhow!("{e} (or all)"))?])
}

pub fn parse_variants(v: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for s in v {
        let s = s.trim();
        Variant::parse(s)?;
        if out.iter().any(|x| x == s) {
            bail!("variant `{s}` given twice in --variants");
        }
        out.push(s.to_string());
    }
    if out.is_empty() {
        bail!("--variants is empty: give at least one of control, test, bpfscan, exitdel, taskstor");
    }
    Ok(out)
}

/// `K/N` with 1 <= K <= N.
pub fn parse_shard(s: &str) -> Result<(u32, u32)> {
    let bad = || anyhow::anyhow!("--shard {s}: expected K/N with 1 <= K <= N, e.g. --shard 2/4");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u32, u32) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// All runs in order: per (scheduler, workload), per iteration, the variants
/// in the order given, so control and test alternate (C1 T1 C2 T2 ...) and
/// drift on the host hits both alike. A shard keeps whole (scheduler,
/// workload, iteration) units, so a C/T pair is never split; unit u belongs to
/// shard (u mod N) + 1, which covers the matrix exactly once over N shards.
pub fn runs(
    scheds: &[String],
    workloads: &[Workload],
    variants: &[String],
    iterations: u32,
    shard: Option<(u32, u32)>,
) -> Vec<RunId> {
    let mut out = Vec::new();
    let mut unit = 0u32;
    for s in scheds {
        for w in workloads {
            for it in 1..=iterations {
                let mine = match shard {
                    None => true,
                    Some((k, n)) => unit % n == k - 1,
                };
                unit += 1;
                if !mine {
                    continue;
                }
                for v in variants {
                    out.push(RunId { sched: s.clone(), workload: *w, variant: v.clone(), iteration: it });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn control_and_test_alternate() {
        let r = runs(&names(&["scx_simple"]), &[Workload::StressNg], &names(&["control", "test"]), 3, None);
        let order: Vec<String> = r.iter().map(|x| format!("{}{}", &x.variant[..1], x.iteration)).collect();
        assert_eq!(order, ["c1", "t1", "c2", "t2", "c3", "t3"]);
    }

    #[test]
    fn shards_cover_the_matrix_exactly_once() {
        let scheds = names(&["scx_simple", "scx_cfsish", "scx_flatcg", "scx_nest"]);
        let wl = Workload::ALL.to_vec();
        let vars = names(&["control", "test", "bpfscan"]);
        let all: Vec<RunId> = runs(&scheds, &wl, &vars, 3, None);
        for n in 1..=7 {
            let mut seen = HashSet::new();
            let mut count = 0;
            for k in 1..=n {
                let part = runs(&scheds, &wl, &vars, 3, Some((k, n)));
                for r in &part {
                    assert!(seen.insert(r.clone()), "{r:?} in two shards of {n}");
                }
                count += part.len();
                // a unit's variants stay together and in order
                for c in part.chunks(3) {
                    assert!(c.iter().all(|r| r.iteration == c[0].iteration && r.sched == c[0].sched));
                    assert_eq!(c[0].variant, "control");
                }
            }
            assert_eq!(count, all.len(), "n={n}");
            assert_eq!(seen.len(), all.len());
        }
        // deterministic
        assert_eq!(runs(&scheds, &wl, &vars, 3, Some((2, 3))), runs(&scheds, &wl, &vars, 3, Some((2, 3))));
    }

    #[test]
    fn argument_parsing() {
        assert_eq!(parse_shard("2/4").unwrap(), (2, 4));
        for bad in ["0/4", "5/4", "1/0", "a/b", "3"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        assert_eq!(expand_schedulers("all").unwrap().len(), 4);
        let e = expand_schedulers("scx_foo").unwrap_err().to_string();
        assert!(e.contains("scx_simple, scx_cfsish, scx_flatcg, scx_nest") && e.contains("or all"), "{e}");
        let e = expand_workloads("fio").unwrap_err().to_string();
        assert!(e.contains("stress-ng, hackbench, custom-churn"), "{e}");
        assert!(parse_variants(&names(&["control", "control"])).is_err());
        assert!(parse_variants(&names(&["control", "tset"])).unwrap_err().to_string().contains("valid: control, test, bpfscan"));
    }
}
