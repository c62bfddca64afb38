#!/bin/sh
# scx-vmctl guest init (run by tini as PID 1): mount, network, sshd.
# No systemd, so the guest answers SSH a few seconds after QEMU starts.
mount -t proc proc /proc
mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
ip link set lo up 2>/dev/null
# eth0 got 10.0.2.15 from the kernel's ip= parameter (slirp's fixed address)

# The host passes its public key on the command line (scx_vmctl.key=TYPE:BASE64),
# so one image serves any host key pair.
mkdir -p -m 700 /root/.ssh
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	scx_vmctl.key=*)
		k=${arg#scx_vmctl.key=}
		echo "${k%%:*} ${k#*:} scx-vmctl" > /root/.ssh/authorized_keys ;;
	esac
done
chmod 600 /root/.ssh/authorized_keys 2>/dev/null

# ACPI power button (QMP system_powerdown): sync and power off at once.
# (evdev reads must take a whole 24-byte input_event, hence -c 24.)
for d in /sys/class/input/input*; do
	if [ "$(cat "$d/name" 2>/dev/null)" = "Power Button" ]; then
		ev=$(basename "$(ls -d "$d"/event* 2>/dev/null | head -n1)")
		[ -n "$ev" ] && ( head -c 24 "/dev/input/$ev" >/dev/null &&
			echo s > /proc/sysrq-trigger && echo u > /proc/sysrq-trigger &&
			echo o > /proc/sysrq-trigger ) &
	fi
done

mkdir -p /run/sshd
echo "scx-vmctl: guest init done, starting sshd" > /dev/kmsg
exec /usr/sbin/sshd -D -e
