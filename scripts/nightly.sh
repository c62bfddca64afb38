#!/usr/bin/env bash
# The nightly job's steps, shared by .github/workflows/nightly.yml (KVM,
# 4 shards x kernels) and scripts/test.sh (a 2-shard mini matrix under TCG).
#
#   nightly.sh setup                       packages, tool, kernel, image, agent; prints the KVM probe
#   nightly.sh shard K N OUT               run shard K of N of the matrix into OUT/<kernel label>/
#   nightly.sh merge OUT BASELINE SHARD... merge shards into OUT, judge, compare with BASELINE
#                                          (a summary.json; "" for none), write OUT/summary.md
#
# The matrix comes from the environment (defaults in brackets):
#   NIGHTLY_SCHEDS [all]  NIGHTLY_WORKLOADS [all]  NIGHTLY_DURATION [60]  NIGHTLY_ITERATIONS [3]
#   NIGHTLY_VARIANTS [control,test,bpfscan]  NIGHTLY_ACCEL [auto]  NIGHTLY_CONFIG [config/default.yaml]
#   NIGHTLY_KERNEL_SOURCE [linux-source-6.12]  NIGHTLY_KERNEL_SHA256 (for a URL; kernel.org's
#   sha256sums.asc is used when empty)  NIGHTLY_KERNEL_LABEL [debian-6.12]
#   NIGHTLY_TIMING_GATE [1]: 0 reports throughput/overhead regressions without failing
#   (report --no-timing-gate), for shared machines where timings are noise
set -euo pipefail
cd "$(dirname "$0")/.."

: "${NIGHTLY_SCHEDS:=all}" "${NIGHTLY_WORKLOADS:=all}" "${NIGHTLY_DURATION:=60}" "${NIGHTLY_ITERATIONS:=3}"
: "${NIGHTLY_VARIANTS:=control,test,bpfscan}" "${NIGHTLY_ACCEL:=auto}" "${NIGHTLY_CONFIG:=config/default.yaml}"
: "${NIGHTLY_KERNEL_SOURCE:=linux-source-6.12}" "${NIGHTLY_KERNEL_SHA256:=}" "${NIGHTLY_KERNEL_LABEL:=debian-6.12}"

tool=${SCX_VMCTL_BIN:-./target/release/scx-vmctl}

kernel_args() {
	local sha=$NIGHTLY_KERNEL_SHA256
	if [[ $NIGHTLY_KERNEL_SOURCE == https://cdn.kernel.org/* && -z $sha ]]; then
		local dir=${NIGHTLY_KERNEL_SOURCE%/*} file=${NIGHTLY_KERNEL_SOURCE##*/}
		sha=$(curl -sSf "$dir/sha256sums.asc" | awk -v f="$file" '$2 == f { print $1 }')
		[ -n "$sha" ] || { echo "nightly.sh: no sha256 for $file in $dir/sha256sums.asc" >&2; exit 3; }
	fi
	printf '%s\n' --source "$NIGHTLY_KERNEL_SOURCE"
	if [ -n "$sha" ]; then printf '%s\n' --source-sha256 "$sha"; fi
}

case "${1:-}" in
setup)
	bash scripts/setup-host.sh
	cargo build --locked --release --bins
	mapfile -t kargs < <(kernel_args)
	"$tool" kernel build "${kargs[@]}"
	"$tool" image build
	"$tool" agent build "${kargs[@]}"
	"$tool" probe
	;;
shard)
	k=$2 n=$3 out=$4
	mapfile -t kargs < <(kernel_args)
	kernel=$("$tool" kernel path "${kargs[@]}")
	set +e
	"$tool" experiment "$NIGHTLY_SCHEDS" "$NIGHTLY_WORKLOADS" \
		--duration "$NIGHTLY_DURATION" --iterations "$NIGHTLY_ITERATIONS" \
		--variants "$NIGHTLY_VARIANTS" --accel "$NIGHTLY_ACCEL" --config "$NIGHTLY_CONFIG" \
		--kernel "$kernel" --shard "$k/$n" --out "$out/$NIGHTLY_KERNEL_LABEL" --force
	rc=$?
	set -e
	# A failed criterion is judged at merge time; only a tool failure fails the shard.
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then exit "$rc"; fi
	;;
merge)
	out=$2 baseline=$3
	shift 3
	# The merge job runs on a runner of its own: build the tool it needs there.
	if [ ! -x "$tool" ]; then cargo build --locked --release --bin scx-vmctl; fi
	args=(report merge "$@" --out "$out" --markdown "$out/summary.md")
	if [ -n "$baseline" ]; then
		args+=(--baseline "$baseline")
		if [ "${NIGHTLY_TIMING_GATE:-1}" = 0 ]; then args+=(--no-timing-gate); fi
	fi
	"$tool" "${args[@]}"
	;;
*)
	sed -n '2,18p' "$0" >&2
	exit 2
	;;
esac
