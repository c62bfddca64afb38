#!/usr/bin/env bash
# Install what scx-vmctl needs on a Debian 12 (bookworm) host, as root.
# Idempotent: a second run installs nothing new. Used by the README's commands and .ci/run.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" != 0 ]; then
	echo "setup-host.sh: run as root (it installs Debian packages)" >&2
	exit 2
fi
. /etc/os-release
case "${VERSION_CODENAME:-}" in
bookworm) ;;
trixie) echo "setup-host.sh: Debian 13: QEMU 10 and pahole 1.30 from its own suite" >&2 ;;
*) echo "setup-host.sh: written for Debian 12 (bookworm), this is ${PRETTY_NAME:-unknown}; continuing" >&2 ;;
esac

codename=${VERSION_CODENAME:-bookworm}
# linux-source-6.12 comes with security updates (bookworm-security on Debian 12).
if ! grep -rqs "${codename}-security" /etc/apt/sources.list /etc/apt/sources.list.d/; then
	cat > /etc/apt/sources.list.d/scx-vmctl-security.sources <<SRC
Types: deb
URIs: http://deb.debian.org/debian-security
Suites: ${codename}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
qemu_suite=()
if [ "$codename" = bookworm ]; then
	# QEMU 10 (faster TCG boots than bookworm's 7.2) comes from bookworm-backports;
	# qemu-utils must come from the same suite or apt removes one of them.
	if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
		cat > /etc/apt/sources.list.d/scx-vmctl-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	fi
	qemu_suite=(-t bookworm-backports)
fi

apt-get update -qq
apt-get install -y -qq --no-install-recommends "${qemu_suite[@]}" qemu-system-x86 qemu-utils >/dev/null
# From the same suite too: on a fresh Debian 12 the backports QEMU pulls
# libbpf1 and libelf1 from bookworm-backports, which bookworm's libbpf-dev and
# libelf-dev then cannot be installed beside ("held broken packages"; found
# by running the nightly workflow in a fresh root, scripts/wfrun.py).
# linux-source-6.12 itself stays on the security suite: backports carries an
# older 6.12 (6.12.95) that -t would prefer, and the helper's patches are
# written against the current one.
ksrc=linux-source-6.12
[ "$codename" = bookworm ] && ksrc="linux-source-6.12/${codename}-security"
apt-get install -y -qq --no-install-recommends "${qemu_suite[@]}" \
	"$ksrc" make gcc flex bison bc libelf-dev libssl-dev dwarves patch xz-utils lz4 \
	clang-19 llvm-19 libclang-19-dev libbpf-dev bpftool pkg-config zlib1g-dev libzstd-dev \
	mmdebstrap e2fsprogs ca-certificates git curl openssh-client python3-yaml python3-venv \
	chromium >/dev/null

if ! command -v npm >/dev/null; then
	apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

if ! command -v cargo >/dev/null; then
	echo "setup-host.sh: cargo not found: install a Rust toolchain (https://rustup.rs) and re-run" >&2
	exit 2
fi
echo "setup-host.sh: host ready ($(qemu-system-x86_64 --version | head -n1))"
