/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The number of tasks holding an entry in one task-storage map (what
 * scx_bpfland's task_ctx_stor and most scx schedulers keep per task): task
 * storage has no GET_NEXT_KEY, so a task iterator visits every task and asks
 * the map for it without creating anything. User space points `target` at
 * the scheduler's map before loading (bpf_map__reuse_fd), so one load per
 * watched map (guest-agent/src/bpf/storagecount.rs).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, u64);
} target SEC(".maps");

/* one variable, so its layout in .bss is fixed: user space reads 16 bytes */
struct {
	u64 tasks;	/* tasks visited */
	u64 with_entry;	/* of which hold an entry in `target` */
} out;

SEC("iter/task")
int count_task_storage(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	if (!task)
		return 0;
	out.tasks++;
	/* flags 0: look up only, never create */
	if (bpf_task_storage_get(&target, task, NULL, 0))
		out.with_entry++;
	return 0;
}
