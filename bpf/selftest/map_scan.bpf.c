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
#include <bpf/bpf_tracing.h>

#define BPF_F_RDONLY_PROG	(1U << 7)

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
/* a small map for the churn case: few buckets, so a pass is short */
SCAN_MAP(churn_map, BPF_MAP_TYPE_HASH, 1024, struct entry);
/* a sparse map: 256k buckets for a handful of entries */
SCAN_MAP(sparse_map, BPF_MAP_TYPE_HASH, 262144, struct entry);

/* the program may read this map but not write it */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_RDONLY_PROG);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, struct entry);
} rdonly_map SEC(".maps");

/* values whose first u64 is a time stamp, with a special field after it */
struct locked_entry {
	u64 last_seen_ns;
	struct bpf_spin_lock lock;
};

struct timer_entry {
	u64 last_seen_ns;
	struct bpf_timer timer;
};

SCAN_MAP(lock_map, BPF_MAP_TYPE_HASH, 16, struct locked_entry);
SCAN_MAP(timer_map, BPF_MAP_TYPE_HASH, 16, struct timer_entry);

/* more maps than the first design's 16-slot cursor table held */
#define NR_MANY 20
#define MANY(i) SCAN_MAP(many_##i, BPF_MAP_TYPE_HASH, 256, struct entry)
MANY(0); MANY(1); MANY(2); MANY(3); MANY(4); MANY(5); MANY(6); MANY(7); MANY(8); MANY(9);
MANY(10); MANY(11); MANY(12); MANY(13); MANY(14); MANY(15); MANY(16); MANY(17); MANY(18); MANY(19);

/* scan_many: which of many_0..19 to scan */
u32 arg_many;

/* fill_sparse: insert keys [arg_from, arg_to) into sparse_map, last seen at arg_seen */
u32 arg_from;
u32 arg_to;
u64 arg_seen;
u32 out_filled;

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
SCAN_PROG(scan_churn, churn_map)
SCAN_PROG(scan_sparse, sparse_map)
SCAN_PROG(scan_rdonly, rdonly_map)
SCAN_PROG(scan_lock, lock_map)
SCAN_PROG(scan_timer, timer_map)

#define MANY_CASE(i)							\
	case i:								\
		out_ret = scx_bpf_map_scan_timeout(			\
			(struct bpf_map *)&many_##i, arg_timeout_ns,	\
			arg_max_age_ns, &evicted);			\
		break;

SEC("syscall")
int scan_many(void *ctx)
{
	u32 evicted = 0;
	u64 t0 = bpf_ktime_get_ns();

	switch (arg_many) {
	MANY_CASE(0) MANY_CASE(1) MANY_CASE(2) MANY_CASE(3) MANY_CASE(4)
	MANY_CASE(5) MANY_CASE(6) MANY_CASE(7) MANY_CASE(8) MANY_CASE(9)
	MANY_CASE(10) MANY_CASE(11) MANY_CASE(12) MANY_CASE(13) MANY_CASE(14)
	MANY_CASE(15) MANY_CASE(16) MANY_CASE(17) MANY_CASE(18) MANY_CASE(19)
	default:
		out_ret = -1;
	}
	out_ns = bpf_ktime_get_ns() - t0;
	out_evicted = evicted;
	return 0;
}

static long fill_one(u32 i, void *ctx)
{
	u32 key = arg_from + i;
	struct entry e = { .last_seen_ns = arg_seen, .payload = key };

	if (!bpf_map_update_elem(&sparse_map, &key, &e, BPF_ANY))
		out_filled++;
	return 0;
}

/* many entries at once: one syscall each is slow under TCG */
SEC("syscall")
int fill_sparse(void *ctx)
{
	out_filled = 0;
	if (arg_to > arg_from)
		bpf_loop(arg_to - arg_from, fill_one, NULL, 0);
	return 0;
}

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

/*
 * Only sched_ext may call the helper among struct_ops: another struct_ops
 * type that calls it must be refused. bpf_dummy_ops (the kernel's own
 * struct_ops for tests) loads without module support, which TCP congestion
 * control needs; it is loaded, never registered.
 */
SEC("struct_ops/reject_dummy_test_1")
int BPF_PROG(reject_dummy_test_1, struct bpf_dummy_ops_state *state)
{
	u32 evicted = 0;

	out_ret = scx_bpf_map_scan_timeout((struct bpf_map *)&hash_map, 1, 1, &evicted);
	return 0;
}

SEC(".struct_ops")
struct bpf_dummy_ops reject_dummy_ops = {
	.test_1	= (void *)reject_dummy_test_1,
};
