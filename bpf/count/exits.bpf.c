/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tasks exited and cgroups destroyed since the agent attached: the x-axis of
 * a leak (entries per exit), not time. Raw tracepoints, one counter each
 * (guest-agent/src/bpf/schedmaps.rs reads them every sample).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

/* one variable, so its layout in .bss is fixed: user space reads 16 bytes */
struct {
	u64 tasks_exited;
	u64 cgroups_destroyed;
} exits;

SEC("tp_btf/sched_process_exit")
int BPF_PROG(count_task_exit, struct task_struct *p)
{
	__sync_fetch_and_add(&exits.tasks_exited, 1);
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(count_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	__sync_fetch_and_add(&exits.cgroups_destroyed, 1);
	return 0;
}
