//! The VM and how the host talks to it: the accelerator probe (`accel`),
//! QEMU's command line and overlays (`qemu`), the QMP client (`qmp`), the
//! SSH transport (`ssh`), files in and out as tar streams (`transfer`), a
//! VM's lifecycle and run directory (`vm`), and saved guest states that runs
//! start from instead of booting (`snapshot`).

pub mod accel;
pub mod qemu;
pub mod qmp;
pub mod snapshot;
pub mod ssh;
pub mod transfer;
pub mod vm;
