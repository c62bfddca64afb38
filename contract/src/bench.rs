//! `scx-guest-agent bench` output, read by `scx-vmctl bench`.
