//! What a run needs, built once and cached under ~/.cache/scx-vmctl keyed by
//! a hash of its inputs: the guest kernel and its patch series (`kernel`,
//! from Debian sources via `debsrc`, BTF by `pahole`), the guest image
//! (`image`), the guest agent (`agent`, against the kernel's `btf`), the scx
//! project's schedulers from crates.io (`sched_crate`), and checked
//! downloads (`download`).

pub mod agent;
pub mod btf;
pub mod debsrc;
pub mod download;
pub mod image;
pub mod kernel;
pub mod pahole;
pub mod sched_crate;
