/* SPDX-License-Identifier: GPL-2.0 */
/*
 * In-guest tests of scx_bpf_map_scan_timeout(), driven from user space with
 * BPF_PROG_RUN on BPF_PROG_TYPE_SYSCALL programs (the helper is registered
 * for them), so every call is deterministic: user space fills a map with
 * chosen timestamps, runs one program, and reads the helper's return value
 * and eviction count back from .bss.
 *
 * The reject_* programs must NOT load: the agent loads each alone and
 * expects the verifier to refuse it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern int scx_bpf_map_scan_timeout(struct bpf_map *map, u64 timeout_ns,
				    u64 max_age_ns, u32 *evicted) __ksym;

char _license[] SEC("license") = "GPL";

struct entry {
	u64 last_seen_ns;	/* what the helper reads */
	u64 payload;
};

#define SCAN_MAP(name, kind, n, vtype)			\
	struct {					\
		__uint(type, kind);			\
		__uint(max_entries, n);			\
		__type(key, u32);			\
		__type(value, vtype);			\
	} name SEC(".maps")

SCAN_MAP(hash_map, BPF_MAP_TYPE_HASH, 65536, struct entry);
SCAN_MAP(lru_map, BPF_MAP_TYPE_LRU_HASH, 4096, struct entry);
SCAN_MAP(array_map, BPF_MAP_TYPE_ARRAY, 16, struct entry);
SCAN_MAP(small_map, BPF_MAP_TYPE_HASH, 16, u32);	/* 4-byte values */

/* the call's arguments, set by user space before each run */
u64 arg_timeout_ns;
u64 arg_max_age_ns;

/* the call's results */
int out_ret;
u32 out_evicted;
u64 out_ns;	/* how long the call took */

#define SCAN_PROG(prog, map)						\
SEC("syscall")								\
int prog(void *ctx)							\
{									\
	u32 evicted = 0;						\
	u64 t0 = bpf_ktime_get_ns();					\
									\
	out_ret = scx_bpf_map_scan_timeout((struct bpf_map *)&map,	\
					   arg_timeout_ns,		\
					   arg_max_age_ns, &evicted);	\
	out_ns = bpf_ktime_get_ns() - t0;				\
	out_evicted = evicted;						\
	return 0;							\
}

SCAN_PROG(scan_hash, hash_map)
SCAN_PROG(scan_lru, lru_map)
SCAN_PROG(scan_array, array_map)
SCAN_PROG(scan_small, small_map)

/* The first argument must be a map: a pointer to the stack is refused. */
SEC("syscall")
int reject_not_map(void *ctx)
{
	u64 fake[4] = {};
	u32 evicted = 0;

	out_ret = scx_bpf_map_scan_timeout((struct bpf_map *)fake, 1, 1, &evicted);
	return 0;
}

/* `evicted` may not be NULL: a maybe-NULL map value pointer is refused. */
SEC("syscall")
int reject_null_evicted(void *ctx)
{
	u32 key = 0;
	u32 *maybe = bpf_map_lookup_elem(&small_map, &key);

	out_ret = scx_bpf_map_scan_timeout((struct bpf_map *)&hash_map, 1, 1, maybe);
	return 0;
}
