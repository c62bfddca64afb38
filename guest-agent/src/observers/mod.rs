//! What the agent records during a run: the sampler (one CSV row of map and
//! memory figures), the kernel log (`kmsg`), bpf_printk lines (`trace`) and
//! our processes (`procs`).

pub mod sampler;
pub mod kmsg;
pub mod trace;
pub mod procs;
