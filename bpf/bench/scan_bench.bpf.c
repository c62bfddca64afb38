/* SPDX-License-Identifier: GPL-2.0 */
/*
 * `scx-guest-agent bench`: scx_bpf_map_scan_timeout() against the same
 * eviction in plain BPF (bpf_for_each_map_elem with a time budget, as
 * bpf/include/track.h's bpfscan variant does), on hash maps of 1k, 16k and
 * 256k entries shaped like the schedulers' tracked_tasks (u32 key, 24-byte
 * value whose first u64 is the last-seen time, NO_PREALLOC; the agent can
 * load them preallocated instead).
 *
 * Every program is BPF_PROG_TYPE_SYSCALL, run with BPF_PROG_RUN: user space
 * sets the arguments in .bss, runs one program, reads the results back.
 * fill_* inserts the missing keys of [arg_from, arg_to) in the kernel
 * (bpf_loop), far faster than one syscall per entry under TCG; BPF_NOEXIST
 * so that a refill after a sweep re-inserts only what was evicted, and an
 * insert the allocator refused can simply be retried.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define ETIMEDOUT 110
#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))

extern int scx_bpf_map_scan_timeout(struct bpf_map *map, u64 timeout_ns,
				    u64 max_age_ns, u32 *evicted) __ksym;

/* the kernel's own element count of a map (hash maps keep one, 6.6+) */

/* this CPU's interrupt counters (x86), to tell calls an interrupt hit */
extern irq_cpustat_t irq_stat __ksym;
extern struct kernel_stat kstat __ksym;

char _license[] SEC("license") = "GPL";

/* the layout of track.h's struct tracked_task */
struct entry {
	u64 last_seen_ns;
	u64 first_seen_ns;
	u32 tgid;
	u32 nr_touches;
};

#define BENCH_MAP(name, n)					\
	struct {						\
		__uint(type, BPF_MAP_TYPE_HASH);		\
		__uint(map_flags, BPF_F_NO_PREALLOC);		\
		__uint(max_entries, n);				\
		__type(key, u32);				\
		__type(value, struct entry);			\
	} name SEC(".maps")

BENCH_MAP(map_1k, 1024);
BENCH_MAP(map_16k, 16384);
BENCH_MAP(map_256k, 262144);

/* arguments, set by user space before each run */
u64 arg_timeout_ns;
u64 arg_max_age_ns;
u32 arg_from;
u32 arg_to;
u32 arg_delete;		/* fill_*: delete [from, to) instead */
u32 arg_all_stale;	/* fill_*: every key stale, not only the even ones */

/* results */
int out_ret;		/* 0, -ETIMEDOUT, or the helper's error */
u32 out_evicted;
u32 out_visited;	/* bpfscan only: the helper does not report it */
u32 out_done;		/* fill_*: entries written or deleted */
u64 out_ns;		/* the call's duration, guest clock */
u32 out_irqs;		/* outside interrupts taken on this CPU during the call */
u32 out_irq_works;	/* irq_work interrupts taken during the call */

/*
 * Interrupts from outside the scan (device IRQs, the local timer, IPIs
 * from other CPUs) handled on this CPU so far. A call that took one also
 * paid for its handler and softirqs: under TCG tens of microseconds that
 * say nothing about the scan. irq_work is left out on purpose: freeing
 * evicted NO_PREALLOC elements raises it, so it is the scan's own cost.
 */
/*
 * x86's irq_cpustat_t names its counters up to 6.x; 7.x keeps them in
 * counts[], indexed by enum irq_stat_counts. Both layouts are declared as
 * CO-RE flavours and the one the running kernel has is read, so this object
 * builds against either kernel's vmlinux.h.
 */
typedef struct {
	unsigned int apic_timer_irqs;
	unsigned int x86_platform_ipis;
	unsigned int apic_irq_work_irqs;
	unsigned int irq_resched_count;
	unsigned int irq_call_count;
	unsigned int irq_tlb_count;
} __attribute__((preserve_access_index)) irq_cpustat_t___named;

typedef struct {
	unsigned int counts[16];
} __attribute__((preserve_access_index)) irq_cpustat_t___counts;

enum irq_stat_counts___local {
	IRQ_COUNT_APIC_TIMER___local = 1,
	IRQ_COUNT_IRQ_WORK___local = 4,
	IRQ_COUNT_X86_PLATFORM_IPI___local = 6,
	IRQ_COUNT_RESCHEDULE___local = 7,
	IRQ_COUNT_CALL_FUNCTION___local = 8,
	IRQ_COUNT_TLB___local = 9,
};

static __always_inline u32 irq_count(void *is, u64 idx)
{
	unsigned int *base = (unsigned int *)__builtin_preserve_access_index(&((irq_cpustat_t___counts *)is)->counts[0]);
	u32 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), base + idx);
	return v;
}

static __always_inline u64 irq_events(void)
{
	void *is = bpf_this_cpu_ptr(&irq_stat);
	struct kernel_stat *ks = bpf_this_cpu_ptr(&kstat);
	irq_cpustat_t___named *n = is;

	if (bpf_core_field_exists(n->apic_timer_irqs))
		return (u64)BPF_CORE_READ(n, apic_timer_irqs) + BPF_CORE_READ(n, irq_resched_count) +
		       BPF_CORE_READ(n, irq_call_count) + BPF_CORE_READ(n, irq_tlb_count) +
		       BPF_CORE_READ(n, x86_platform_ipis) + ks->irqs_sum;
	return (u64)irq_count(is, bpf_core_enum_value(enum irq_stat_counts___local, IRQ_COUNT_APIC_TIMER___local)) +
	       irq_count(is, bpf_core_enum_value(enum irq_stat_counts___local, IRQ_COUNT_RESCHEDULE___local)) +
	       irq_count(is, bpf_core_enum_value(enum irq_stat_counts___local, IRQ_COUNT_CALL_FUNCTION___local)) +
	       irq_count(is, bpf_core_enum_value(enum irq_stat_counts___local, IRQ_COUNT_TLB___local)) +
	       irq_count(is, bpf_core_enum_value(enum irq_stat_counts___local, IRQ_COUNT_X86_PLATFORM_IPI___local)) +
	       ks->irqs_sum;
}

static __always_inline u32 irq_works(void)
{
	void *is = bpf_this_cpu_ptr(&irq_stat);
	irq_cpustat_t___named *n = is;

	if (bpf_core_field_exists(n->apic_irq_work_irqs))
		return BPF_CORE_READ(n, apic_irq_work_irqs);
	return irq_count(is, bpf_core_enum_value(enum irq_stat_counts___local, IRQ_COUNT_IRQ_WORK___local));
}

/*
 * Stale entries (even keys) were last seen at time 1; fresh ones (odd keys)
 * carry a time far in the future, so they stay fresh however long a sweep
 * takes (both scans skip entries with now <= last_seen).
 */
#define FRESH_FUTURE_NS (3600ULL * 1000000000ULL)

struct fill_ctx {
	u64 now;
	u32 done;
};

#define FILL_PROG(prog, map)						\
static long prog##_cb(u64 i, struct fill_ctx *c)			\
{									\
	u32 key = arg_from + (u32)i;					\
	struct entry e = {};						\
									\
	if (arg_delete) {						\
		if (!bpf_map_delete_elem(&map, &key))			\
			c->done++;					\
		return 0;						\
	}								\
	e.last_seen_ns = (key & 1) && !arg_all_stale ?			\
			 c->now + FRESH_FUTURE_NS : 1;			\
	e.first_seen_ns = c->now;					\
	e.tgid = key;							\
	if (!bpf_map_update_elem(&map, &key, &e, BPF_NOEXIST))		\
		c->done++;						\
	return 0;							\
}									\
SEC("syscall")								\
int prog(void *ctx)							\
{									\
	struct fill_ctx c = { .now = bpf_ktime_get_ns() };		\
									\
	if (arg_to > arg_from)						\
		bpf_loop(arg_to - arg_from, prog##_cb, &c, 0);		\
	out_done = c.done;						\
	return 0;							\
}

FILL_PROG(fill_1k, map_1k)
FILL_PROG(fill_16k, map_16k)
FILL_PROG(fill_256k, map_256k)

#define HELPER_PROG(prog, map)						\
SEC("syscall")								\
int prog(void *ctx)							\
{									\
	u32 evicted = 0;						\
	u64 irqs = irq_events();					\
	u32 works = irq_works();					\
	u64 t0 = bpf_ktime_get_ns();					\
									\
	out_ret = scx_bpf_map_scan_timeout((struct bpf_map *)&map,	\
					   arg_timeout_ns,		\
					   arg_max_age_ns, &evicted);	\
	out_ns = bpf_ktime_get_ns() - t0;				\
	out_irqs = irq_events() - irqs;					\
	out_irq_works = irq_works() - works;				\
	out_evicted = evicted;						\
	out_visited = 0;						\
	return 0;							\
}

HELPER_PROG(helper_1k, map_1k)
HELPER_PROG(helper_16k, map_16k)
HELPER_PROG(helper_256k, map_256k)

/* the same walk as track.h's bpfscan variant, budget and age from .bss */
struct bpfscan_ctx {
	u64 start;
	u32 visited;
	u32 evicted;
	bool timed_out;
};

#define BPFSCAN_MIN_BATCH 8

static long bpfscan_cb(struct bpf_map *map, u32 *key, struct entry *e,
		       struct bpfscan_ctx *c)
{
	u64 now = bpf_ktime_get_ns();
	u64 seen = READ_ONCE(e->last_seen_ns);

	if (c->visited >= BPFSCAN_MIN_BATCH && now - c->start >= arg_timeout_ns) {
		c->timed_out = true;
		return 1;
	}
	c->visited++;
	if (now > seen && now - seen > arg_max_age_ns &&
	    !bpf_map_delete_elem(map, key))
		c->evicted++;
	return 0;
}

#define BPFSCAN_PROG(prog, map)						\
SEC("syscall")								\
int prog(void *ctx)							\
{									\
	u64 irqs = irq_events();					\
	u32 works = irq_works();					\
	struct bpfscan_ctx c = { .start = bpf_ktime_get_ns() };	\
									\
	bpf_for_each_map_elem(&map, bpfscan_cb, &c, 0);			\
	out_ns = bpf_ktime_get_ns() - c.start;				\
	out_irqs = irq_events() - irqs;					\
	out_irq_works = irq_works() - works;				\
	out_ret = c.timed_out ? -ETIMEDOUT : 0;				\
	out_evicted = c.evicted;					\
	out_visited = c.visited;					\
	return 0;							\
}

BPFSCAN_PROG(bpfscan_1k, map_1k)
BPFSCAN_PROG(bpfscan_16k, map_16k)
BPFSCAN_PROG(bpfscan_256k, map_256k)
