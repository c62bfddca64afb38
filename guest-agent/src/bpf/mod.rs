//! The kernel's BPF objects as the agent sees them: maps found and counted
//! (`maps`, `schedmaps`, `elemcount`, `storagecount`), BTF queries (`btf`),
//! and the verifier's words and statistics (`verifier`, `verifier_stats`).

pub mod btf;
pub mod maps;
pub mod schedmaps;
pub mod elemcount;
pub mod storagecount;
pub mod verifier;
pub mod verifier_stats;
