#!/usr/bin/env bash
# The composite action's (action.yml) main step: build what the inputs ask
# for, run the experiment, judge it (against a baseline if given), put the
# verdict table in the job summary and the exit code in the step's outputs.
# Inputs arrive as IN_* variables; SCX_VMCTL is the tool the action built.
set -uo pipefail
tool=${SCX_VMCTL:?the action builds the tool first}
out=${IN_OUT:-scx-vmctl-results}
code=3
finish() {
	echo "exit-code=$code" >> "${GITHUB_OUTPUT:-/dev/null}"
	exit 0 # the action's last step turns the code into the job's result
}
trap finish EXIT
set -e

vm=(--accel "${IN_ACCEL:-auto}")
if [ -n "${IN_KERNEL:-}" ]; then
	vm+=(--kernel "$IN_KERNEL")
else
	"$tool" kernel build --source "${IN_KERNEL_SOURCE:-linux-source-6.12}"
	vm+=(--kernel "$("$tool" kernel path --source "${IN_KERNEL_SOURCE:-linux-source-6.12}")")
fi
"$tool" image build
if [ -n "${IN_TOPOLOGY:-}" ]; then vm+=(--topology "$IN_TOPOLOGY"); fi
if [ -n "${IN_CONFIG:-}" ]; then vm+=(--config "$IN_CONFIG"); fi

picked=0
for x in "${IN_SCHEDULER:-}" "${IN_SCHED:-}" "${IN_SCHED_BIN:-}"; do [ -n "$x" ] && picked=$((picked + 1)); done
if [ "$picked" != 1 ]; then
	echo "scx-vmctl action: give exactly one of the inputs scheduler, sched, sched-bin (got $picked)" >&2
	code=2
	exit
fi
args=(experiment)
if [ -n "${IN_SCHEDULER:-}" ]; then
	args+=("$IN_SCHEDULER" "${IN_WORKLOADS:-hackbench}")
else
	if [ -n "${IN_SCHED:-}" ]; then args+=(--sched "$IN_SCHED"); else args+=(--sched-bin "$IN_SCHED_BIN"); fi
	if [ -n "${IN_SCHED_ARGS:-}" ]; then args+=(--sched-args "$IN_SCHED_ARGS"); fi
	if [ -n "${IN_MAP_NAME:-}" ]; then args+=(--map-name "$IN_MAP_NAME"); fi
	args+=("${IN_WORKLOADS:-hackbench}")
fi
args+=(--duration "${IN_DURATION:-30}" --iterations "${IN_ITERATIONS:-3}" --out "$out" --force "${vm[@]}")

set +e
"$tool" "${args[@]}"
code=$?
set -e
# 0 and 1 are verdicts; anything else is bad input or the tool failing
if [ "$code" -le 1 ] && [ -d "$out" ]; then
	rargs=(report "$out" --markdown "$out/summary.md")
	if [ -n "${IN_BASELINE:-}" ]; then rargs+=(--baseline "$IN_BASELINE"); fi
	set +e
	"$tool" "${rargs[@]}"
	rc=$?
	set -e
	if [ "$rc" -gt "$code" ]; then code=$rc; fi
	if [ -f "$out/summary.md" ]; then cat "$out/summary.md" >> "${GITHUB_STEP_SUMMARY:-/dev/null}"; fi
fi
