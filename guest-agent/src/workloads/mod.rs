//! What runs while a scheduler is measured: stress-ng, hackbench, the
//! agent's own churn and cgroup churn (`workload`, `churn`), in the run's
//! cgroups (`cgroup`).

pub mod workload;
pub mod churn;
pub mod cgroup;
