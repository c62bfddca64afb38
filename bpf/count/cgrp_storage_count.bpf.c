/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The number of cgroups holding an entry in one cgroup-storage map (what
 * scx_flatcg's cgrp_ctxs is): like task storage it has no GET_NEXT_KEY, so a
 * cgroup iterator walks the hierarchy from the root and asks the map for
 * every cgroup, creating nothing. `target` is pointed at the watched map
 * before loading (guest-agent/src/bpf/storagecount.rs).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, u64);
} target SEC(".maps");

/* one variable, so its layout in .bss is fixed: user space reads 16 bytes */
struct {
	u64 cgroups;	/* cgroups visited */
	u64 with_entry;	/* of which hold an entry in `target` */
} out;

SEC("iter/cgroup")
int count_cgrp_storage(struct bpf_iter__cgroup *ctx)
{
	struct cgroup *cgrp = ctx->cgroup;

	if (!cgrp)
		return 0;
	out.cgroups++;
	/* flags 0: look up only, never create */
	if (bpf_cgrp_storage_get(&target, cgrp, NULL, 0))
		out.with_entry++;
	return 0;
}
