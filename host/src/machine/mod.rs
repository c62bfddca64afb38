//! The VM and how the host talks to it: the accelerator probe (`accel`),
//! QEMU's command line and overlays (`qemu`), the QMP client (`qmp`), the
//! SSH transport (`ssh`), files in and out as tar streams (`transfer`), a
//! VM's lifecycle and run directory (`vm`), saved guest states that runs
//! start from instead of booting (`snapshot`), and machine shapes: NUMA
//! nodes, LLCs, cores, threads (`topology`); the clock rates a TCG guest is
//! told rather than measuring them at boot (`calibration`).

pub mod accel;
pub mod calibration;
pub mod qemu;
pub mod qmp;
pub mod snapshot;
pub mod ssh;
pub mod topology;
pub mod transfer;
pub mod vm;
