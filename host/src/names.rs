//! The closed sets of names users type: schedulers, variants, workloads, reset
//! modes. A wrong name is answered with the list of valid ones.

use anyhow::{bail, Result};
use std::fmt;

macro_rules! name_enum {
    ($ty:ident, $what:literal, { $($var:ident => $s:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $ty { $(#[serde(rename = $s)] $var),+ }

        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$var),+];

            pub fn as_str(self) -> &'static str {
                match self { $($ty::$var => $s),+ }
            }

            pub fn parse(s: &str) -> Result<$ty> {
                match s {
                    $($s => Ok($ty::$var),)+
                    _ => bail!(
                        "unknown {} `{}`; valid: {}",
                        $what,
                        s,
                        [$($s),+].join(", ")
                    ),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = anyhow::Error;
            fn from_str(s: &str) -> Result<$ty> { $ty::parse(s) }
        }
    };
}

name_enum!(Scheduler, "scheduler", {
    Simple => "scx_simple",
    Cfsish => "scx_cfsish",
    Flatcg => "scx_flatcg",
    Nest => "scx_nest",
});

name_enum!(Variant, "variant", {
    Control => "control",
    Test => "test",
    Bpfscan => "bpfscan",
    Exitdel => "exitdel",
    Taskstor => "taskstor",
});

name_enum!(Workload, "workload", {
    StressNg => "stress-ng",
    Hackbench => "hackbench",
    CustomChurn => "custom-churn",
    CgroupChurn => "cgroup-churn",
});

name_enum!(ResetMode, "reset mode", {
    Overlay => "overlay",
    InGuest => "in-guest",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors_list_valid_names() {
        for s in Scheduler::ALL {
            assert_eq!(Scheduler::parse(s.as_str()).unwrap(), *s);
        }
        let e = Scheduler::parse("scx_rusty").unwrap_err().to_string();
        assert_eq!(e, "unknown scheduler `scx_rusty`; valid: scx_simple, scx_cfsish, scx_flatcg, scx_nest");
        let e = Workload::parse("fio").unwrap_err().to_string();
        assert!(e.contains("stress-ng, hackbench, custom-churn"), "{e}");
        assert_eq!(Variant::parse("bpfscan").unwrap(), Variant::Bpfscan);
        assert_eq!(Variant::parse("taskstor").unwrap(), Variant::Taskstor);
        assert!(Variant::parse("exit").unwrap_err().to_string().ends_with("control, test, bpfscan, exitdel, taskstor"));
    }
}
