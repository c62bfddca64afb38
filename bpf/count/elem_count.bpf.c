/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The number of entries of one BPF map, without walking it: a bpf_map
 * iterator visits every map of the system and reads the kernel's own
 * element count of the one asked for (bpf_map_sum_elem_count, kept for hash
 * maps since 6.6). O(number of maps), whatever the map's size: the agent's
 * sampler uses it every sample (guest-agent/src/bpf/elemcount.rs).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern s64 bpf_map_sum_elem_count(const struct bpf_map *map) __ksym;

char _license[] SEC("license") = "GPL";

u32 arg_map_id;
s64 out_elem_count;	/* user space sets -1 before each read */

SEC("iter/bpf_map")
int count_elems(struct bpf_iter__bpf_map *ctx)
{
	struct bpf_map *map = ctx->map;

	if (map && map->id == arg_map_id)
		out_elem_count = bpf_map_sum_elem_count(map);
	return 0;
}
