#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine (as root) to a verdict: installs
# packages, builds the tool, the guest kernel (with the helper), the image and
# the guest agent (all cached in ~/.cache/scx-vmctl), then runs a real
# experiment: scx_simple control vs test under the custom-churn workload in a
# QEMU guest, and judges it. Exit 0 when every criterion holds.
# Arguments are passed to `scx-vmctl experiment` (default: a short TCG profile).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

bash scripts/setup-host.sh
cargo build --locked --release --bins
./target/release/scx-vmctl kernel build
./target/release/scx-vmctl image build
if [ $# -eq 0 ]; then
	set -- scx_simple custom-churn --config config/quick-tcg.yaml --out results --force
fi
exec ./target/release/scx-vmctl experiment "$@"
