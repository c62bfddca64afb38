#!/usr/bin/env bash
# The test suite, from a fresh Debian 12 machine (as root) to a verdict:
# installs packages, builds the tool, the guest kernel and image (cached in
# ~/.cache/scx-vmctl, so a second run skips them), then runs every test.
# Tests boot real QEMU guests (TCG here, KVM where it works).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

stage() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

stage "host packages"
bash scripts/setup-host.sh

stage "build scx-vmctl"
cargo build --locked --bins

stage "guest kernel (cold build ~9 min on 2 cores; cached afterwards)"
./target/debug/scx-vmctl kernel build

stage "guest image"
./target/debug/scx-vmctl image build

stage "guest agent and its BPF schedulers, built against the guest kernel's BTF"
./target/debug/scx-vmctl agent build

stage "guest agent unit tests (built against the guest kernel's BTF)"
SCX_VMLINUX_H="$(dirname "$(./target/debug/scx-vmctl kernel path)")/vmlinux.h" \
	cargo test --locked -p scx-guest-agent

stage "tests (real QEMU guests)"
cargo test --locked -p scx-vmctl -- --test-threads=2

stage "done"
