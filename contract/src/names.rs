//! The closed sets of names both sides accept: schedulers, variants,
//! workloads. One parser for both, so the agent never accepts a name the
//! host refuses; a wrong name is answered with the valid ones.

use std::fmt;

/// A name outside its set. Callers map it to "bad input" (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}`; valid: {valid}")]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    /// the canonical names, comma-separated
    pub valid: String,
}

macro_rules! names {
    ($ty:ident, $what:literal, { $($var:ident => $s:literal $(| $alias:literal)*),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $ty { $(#[serde(rename = $s $(, alias = $alias)*)] $var),+ }

        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$var),+];

            /// The canonical name (what results and file names use).
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$var => $s),+ }
            }

            /// The canonical name or one of its aliases.
            pub fn parse(s: &str) -> Result<$ty, UnknownName> {
                match s {
                    $($s $(| $alias)* => Ok($ty::$var),)+
                    _ => Err(UnknownName { what: $what, given: s.to_string(), valid: [$($s),+].join(", ") }),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<$ty, UnknownName> { $ty::parse(s) }
        }
    };
}

names!(Scheduler, "scheduler", {
    Simple => "scx_simple" | "simple",
    Cfsish => "scx_cfsish" | "cfsish",
    Flatcg => "scx_flatcg" | "flatcg",
    Nest => "scx_nest" | "nest",
});

names!(Variant, "variant", {
    Control => "control",
    Test => "test",
    Bpfscan => "bpfscan",
    Exitdel => "exitdel",
    Taskstor => "taskstor",
});

names!(Workload, "workload", {
    StressNg => "stress-ng",
    Hackbench => "hackbench",
    CustomChurn => "custom-churn",
    CgroupChurn => "cgroup-churn",
});

impl Scheduler {
    /// ops.name without the variant, as /sys/kernel/sched_ext/root/ops shows it
    pub fn ops_base(self) -> &'static str {
        self.as_str().trim_start_matches("scx_")
    }

    /// The kernel-visible ops name of one build, e.g. "flatcg_test".
    pub fn ops_name(self, v: Variant) -> String {
        format!("{}_{}", self.ops_base(), v.as_str())
    }
}

/// True for the ops name of one of our builds: tells ours from others.
pub fn is_our_ops_name(name: &str) -> bool {
    Scheduler::ALL.iter().any(|s| Variant::ALL.iter().any(|v| s.ops_name(*v) == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_names_and_aliases_and_lists_valid_names() {
        for s in Scheduler::ALL {
            assert_eq!(Scheduler::parse(s.as_str()).unwrap(), *s);
        }
        assert_eq!(Scheduler::parse("nest").unwrap(), Scheduler::Nest);
        let e = Scheduler::parse("scx_rusty").unwrap_err();
        assert_eq!(e.given, "scx_rusty");
        assert_eq!(e.to_string(), "unknown scheduler `scx_rusty`; valid: scx_simple, scx_cfsish, scx_flatcg, scx_nest");
        assert!(Variant::parse("tst").unwrap_err().to_string().ends_with("control, test, bpfscan, exitdel, taskstor"));
        assert!(Workload::parse("fio").unwrap_err().to_string().contains("stress-ng, hackbench, custom-churn, cgroup-churn"));
        assert_eq!("taskstor".parse::<Variant>().unwrap(), Variant::Taskstor);
    }

    #[test]
    fn serde_writes_canonical_names_and_reads_aliases() {
        assert_eq!(serde_json::to_string(&Scheduler::Flatcg).unwrap(), "\"scx_flatcg\"");
        assert_eq!(serde_json::from_str::<Scheduler>("\"flatcg\"").unwrap(), Scheduler::Flatcg);
        assert_eq!(serde_json::to_string(&Workload::CustomChurn).unwrap(), "\"custom-churn\"");
        assert!(serde_json::from_str::<Workload>("\"fio\"").is_err());
    }

    #[test]
    fn ops_names() {
        assert_eq!(Scheduler::Flatcg.ops_name(Variant::Bpfscan), "flatcg_bpfscan");
        assert_eq!(Scheduler::Nest.ops_name(Variant::Taskstor), "nest_taskstor");
        assert!(is_our_ops_name("cfsish_exitdel"));
        assert!(is_our_ops_name("simple_control"));
        assert!(!is_our_ops_name("rusty"));
    }
}
