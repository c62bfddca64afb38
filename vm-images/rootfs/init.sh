#!/bin/sh
# scx-vmctl guest init (run by tini as PID 1): mount, network, SSH server.
# No systemd, so the guest answers SSH a few seconds after QEMU starts.
# Few processes: under TCG each fork+exec costs ~20 ms of boot.
# The kernel's console prints notices and worse only (loglevel=6), so the
# host reads the boot's progress from these lines (written at level 4).
[ -b /dev/vda ] || mount -t devtmpfs dev /dev # a kernel without DEVTMPFS_MOUNT
echo "scx-vmctl: init started" > /dev/kmsg
mkdir -p /dev/pts /dev/shm
mount -a -T /etc/scx-vmctl.fstab
# lo and eth0 (10.0.2.15, slirp's fixed address) are up from the kernel's ip=
# parameter; its default route says so (the kernel's own IP-Config line is
# below the console's level).
net=
while read -r ifc dst rest; do
	[ "$ifc" = eth0 ] && [ "$dst" = 00000000 ] && net=1
done < /proc/net/route
[ -n "$net" ] || echo "scx-vmctl: no network: eth0 has no route (kernel ip= not applied)" > /dev/kmsg

# The host passes its public key on the command line (scx_vmctl.key=TYPE:BASE64),
# so one image serves any host key pair.
mkdir -p -m 700 /root/.ssh /run/sshd # sshd wants its privsep dir root's, not writable by others
read -r cmdline < /proc/cmdline
for arg in $cmdline; do
	case "$arg" in
	scx_vmctl.key=*)
		k=${arg#scx_vmctl.key=}
		umask 077
		echo "${k%%:*} ${k#*:} scx-vmctl" > /root/.ssh/authorized_keys
		umask 022 ;;
	esac
done

# ACPI power button (QMP system_powerdown): sync and power off at once.
# (evdev reads must take a whole 24-byte input_event, hence -c 24.)
for d in /sys/class/input/input*; do
	name=
	read -r name < "$d/name" 2>/dev/null
	[ "$name" = "Power Button" ] || continue
	for e in "$d"/event*; do
		[ -e "$e" ] && ( head -c 24 "/dev/input/${e##*/}" >/dev/null &&
			echo s > /proc/sysrq-trigger && echo u > /proc/sysrq-trigger &&
			echo o > /proc/sysrq-trigger ) &
		break
	done
done

echo "scx-vmctl: guest init done, starting the SSH server" > /dev/kmsg
# dropbear, with the image's OpenSSH host key converted at image build: under
# TCG it listens ~0.2 s sooner than sshd and a handshake costs ~0.25 s less
# (one small process, no privsep re-exec). sshd stays as the fallback; its
# -r: no re-exec per connection (~50 ms each).
key=/etc/dropbear/dropbear_ed25519_host_key
if [ -x /usr/sbin/dropbear ] && [ -s $key ]; then
	exec /usr/sbin/dropbear -F -E -s -p 22 -r $key
fi
exec /usr/sbin/sshd -D -e -r
