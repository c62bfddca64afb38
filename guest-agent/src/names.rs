//! The closed sets of names the agent accepts. A wrong name is answered
//! with the valid ones (exit code 2).

use crate::exit::{Exit, BAD_INPUT};

macro_rules! names {
    ($ty:ident, $what:literal, { $($var:ident => $s:literal $(| $alias:literal)*),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $ty { $($var),+ }

        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$var),+];

            pub fn as_str(self) -> &'static str {
                match self { $($ty::$var => $s),+ }
            }

            pub fn parse(s: &str) -> Result<$ty, Exit> {
                match s {
                    $($s $(| $alias)* => Ok($ty::$var),)+
                    _ => Err(Exit::new(BAD_INPUT, format!(
                        "unknown {} `{}`; valid: {}", $what, s, [$($s),+].join(", ")))),
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(Sched, "scheduler", {
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

names!(WorkloadKind, "workload", {
    StressNg => "stress-ng",
    Hackbench => "hackbench",
    CustomChurn => "custom-churn",
    CgroupChurn => "cgroup-churn",
});

impl Sched {
    /// ops.name without the variant, as /sys/kernel/sched_ext/root/ops shows it
    pub fn ops_base(self) -> &'static str {
        self.as_str().trim_start_matches("scx_")
    }
}

impl Sched {
    /// The kernel-visible ops name of one build, e.g. "flatcg_test".
    pub fn ops_name(self, v: Variant) -> String {
        format!("{}_{}", self.ops_base(), v.as_str())
    }
}

/// Variant suffixes our ops names end with: tells our schedulers from others.
pub fn is_our_ops_name(name: &str) -> bool {
    Sched::ALL
        .iter()
        .any(|s| Variant::ALL.iter().any(|v| s.ops_name(*v) == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lists_valid_names() {
        assert_eq!(Sched::parse("scx_nest").unwrap(), Sched::Nest);
        assert_eq!(Sched::parse("nest").unwrap(), Sched::Nest);
        let e = Sched::parse("scx_rusty").unwrap_err();
        assert_eq!(e.code, BAD_INPUT);
        assert_eq!(
            e.msg,
            "unknown scheduler `scx_rusty`; valid: scx_simple, scx_cfsish, scx_flatcg, scx_nest"
        );
        assert!(Variant::parse("tst").unwrap_err().msg.contains("control, test, bpfscan, exitdel, taskstor"));
        assert!(WorkloadKind::parse("fio")
            .unwrap_err()
            .msg
            .contains("stress-ng, hackbench, custom-churn"));
    }

    #[test]
    fn ops_names() {
        assert_eq!(Sched::Flatcg.ops_name(Variant::Bpfscan), "flatcg_bpfscan");
        assert_eq!(Sched::Nest.ops_name(Variant::Taskstor), "nest_taskstor");
        assert!(is_our_ops_name("cfsish_exitdel"));
        assert!(is_our_ops_name("simple_control"));
        assert!(!is_our_ops_name("rusty"));
    }
}
