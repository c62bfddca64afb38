/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_nest: the Nest policy (Lawall et al., EuroSys '22) on sched_ext.
 *
 * Tasks are kept on a small "primary nest" of recently used cores instead
 * of being spread over every idle core: busy cores stay warm (caches,
 * higher frequency) and the rest can sleep deeply.
 *
 * - placement (wakeup): the previous core if it is in the nest and idle,
 *   else the most recently used idle nest core, else an idle core of the
 *   "reserve nest" (cores that recently left the primary nest, still warm),
 *   which is promoted; only then any idle core, which joins the nest.
 * - shrink: a nest core found idle for longer than `nest_shrink_ns` during
 *   a search is moved to the reserve (or dropped when the reserve is full).
 *   Compaction is lazy: no timers, it happens as wakeups look for cores.
 * - non-nest cores take queued work only when more tasks wait than the nest
 *   has cores, and then join the nest: the nest grows under load.
 *
 * Waiting tasks share one weighted-vtime queue, as in scx_simple.
 */
#include "scx_common.bpf.h"
#include "compat.h"
#include "track.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ	0
#define MAX_CPUS	512

const volatile u64 nest_shrink_ns = 8000000ULL;	/* ~2 ticks at HZ=250 */
const volatile u32 reserve_max = 5;		/* the paper's R_max */
const volatile u64 slice_ns = SCX_SLICE_DFL;

struct nest_cpu {
	u32 primary;		/* 1: in the primary nest */
	u32 reserve;		/* 1: in the reserve nest */
	u64 idle_since;		/* 0 while busy */
	u64 last_used;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct nest_cpu);
} nest_cpus SEC(".maps");

/* nest sizes and events, for the curious reader of the BSS */
u64 nr_primary;
u64 nr_reserve;
u64 nr_nest_grow;
u64 nr_nest_shrink;
u64 nr_nest_promote;

static u64 vtime_now;

static __always_inline struct nest_cpu *nest_cpu(s32 cpu)
{
	u32 idx = cpu;

	return bpf_map_lookup_elem(&nest_cpus, &idx);
}

static __always_inline void nest_join(struct nest_cpu *c)
{
	if (__sync_val_compare_and_swap(&c->primary, 0, 1) == 0)
		__sync_fetch_and_add(&nr_primary, 1);
}

/* from the reserve (warm) back into the primary nest */
static __always_inline void nest_promote(struct nest_cpu *c)
{
	if (__sync_val_compare_and_swap(&c->reserve, 1, 0) == 1) {
		__sync_fetch_and_sub(&nr_reserve, 1);
		__sync_fetch_and_add(&nr_nest_promote, 1);
	}
	nest_join(c);
}

/* the primary nest shrinks by one core that stayed idle too long */
static __always_inline void nest_demote(struct nest_cpu *c)
{
	if (__sync_val_compare_and_swap(&c->primary, 1, 0) != 1)
		return;
	__sync_fetch_and_sub(&nr_primary, 1);
	__sync_fetch_and_add(&nr_nest_shrink, 1);
	if (nr_reserve < reserve_max &&
	    __sync_val_compare_and_swap(&c->reserve, 0, 1) == 0)
		__sync_fetch_and_add(&nr_reserve, 1);
}

/*
 * Find an idle core for @p by the Nest rules and claim it (clear its idle
 * bit, so no other waker takes it too). Returns -1 if every core is busy.
 */
static s32 nest_claim_cpu(struct task_struct *p, s32 prev, u64 now)
{
	const struct cpumask *idle;
	struct nest_cpu *c;
	u32 nr = min_u64(scx_bpf_nr_cpu_ids(), MAX_CPUS);
	s32 cpu, best = -1;
	u64 best_used = 0;

	/* 1. the previous core: its caches hold the task's data */
	c = nest_cpu(prev);
	if (c && c->primary && bpf_cpumask_test_cpu(prev, p->cpus_ptr) &&
	    scx_bpf_test_and_clear_cpu_idle(prev))
		return prev;

	/* 2. the warmest idle nest core; drop cold ones on the way */
	idle = scx_bpf_get_idle_cpumask();
	bpf_for(cpu, 0, nr) {
		c = nest_cpu(cpu);
		if (!c || !c->primary || !bpf_cpumask_test_cpu(cpu, idle))
			continue;
		if (c->idle_since && now - c->idle_since > nest_shrink_ns) {
			nest_demote(c);
			continue;
		}
		if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		if (best < 0 || c->last_used > best_used) {
			best = cpu;
			best_used = c->last_used;
		}
	}
	scx_bpf_put_idle_cpumask(idle);
	if (best >= 0 && scx_bpf_test_and_clear_cpu_idle(best))
		return best;

	/* 3. a reserve core: recently used, so still warm */
	bpf_for(cpu, 0, nr) {
		c = nest_cpu(cpu);
		if (!c || !c->reserve || !bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		if (scx_bpf_test_and_clear_cpu_idle(cpu)) {
			nest_promote(c);
			return cpu;
		}
	}

	/* 4. any idle core: the nest has to grow */
	cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (cpu >= 0 && (c = nest_cpu(cpu))) {
		if (c->reserve)
			nest_promote(c);
		else if (!c->primary)
			__sync_fetch_and_add(&nr_nest_grow, 1);
		nest_join(c);
	}
	return cpu;
}

s32 SCX_OP(nest_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	s32 cpu = nest_claim_cpu(p, prev_cpu, bpf_ktime_get_ns());

	if (cpu < 0)
		return prev_cpu;	/* all busy: enqueue() queues it */
	scx_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
	__sync_fetch_and_add(&nr_dispatched, 1);
	return cpu;
}

void SCX_OP(nest_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 vtime = p->scx.dsq_vtime;
	s32 cpu;

	track_task(p);
	__sync_fetch_and_add(&nr_dispatched, 1);
	/*
	 * Pinned tasks run where they are queued (their rq's CPU is one they
	 * may use): a shared queue that non-nest cores ignore could strand them.
	 */
	if (p->nr_cpus_allowed != scx_bpf_nr_cpu_ids()) {
		scx_insert(p, SCX_DSQ_LOCAL, slice_ns, enq_flags);
		return;
	}
	if (vtime_before(vtime, vtime_now - slice_ns))
		vtime = vtime_now - slice_ns;
	scx_insert_vtime(p, SHARED_DSQ, slice_ns, vtime, enq_flags);

	/* wake a nest core for it if one is idle (or grow the nest) */
	cpu = nest_claim_cpu(p, scx_bpf_task_cpu(p), bpf_ktime_get_ns());
	if (cpu >= 0)
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
}

void SCX_OP(nest_dispatch, s32 cpu, struct task_struct *prev)
{
	struct nest_cpu *c = nest_cpu(cpu);

	track_dispatch();
	if (!c)
		return;
	if (c->primary) {
		scx_move_to_local(SHARED_DSQ);
		return;
	}
	/* outside the nest: help only when the nest is overloaded, then join */
	if (scx_bpf_dsq_nr_queued(SHARED_DSQ) > (s64)READ_ONCE(nr_primary) &&
	    scx_move_to_local(SHARED_DSQ)) {
		if (c->reserve)
			nest_promote(c);
		else if (!c->primary)
			__sync_fetch_and_add(&nr_nest_grow, 1);
		nest_join(c);
	}
}

void SCX_OP(nest_update_idle, s32 cpu, bool idle)
{
	struct nest_cpu *c = nest_cpu(cpu);
	u64 now = bpf_ktime_get_ns();

	if (!c)
		return;
	if (idle) {
		c->idle_since = now;
	} else {
		c->idle_since = 0;
		c->last_used = now;
	}
}

void SCX_OP(nest_running, struct task_struct *p)
{
	struct nest_cpu *c = nest_cpu(scx_bpf_task_cpu(p));

	track_running(p);
	if (c)
		c->last_used = bpf_ktime_get_ns();
	if (vtime_before(vtime_now, p->scx.dsq_vtime))
		vtime_now = p->scx.dsq_vtime;
}

void SCX_OP(nest_stopping, struct task_struct *p, bool runnable)
{
	p->scx.dsq_vtime += (slice_ns - p->scx.slice) * 100 / p->scx.weight;
}

void SCX_OP(nest_enable, struct task_struct *p)
{
	p->scx.dsq_vtime = vtime_now;
	track_task(p);
}

s32 SCX_OP_SLEEPABLE(nest_init)
{
	s32 ret = track_init();

	if (ret)
		return ret;
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

void SCX_OP(nest_exit, struct scx_exit_info *ei)
{
	exit_record_save(ei);
}

SCHED_OPS(
	.select_cpu	= (void *)nest_select_cpu,
	.enqueue	= (void *)nest_enqueue,
	.dispatch	= (void *)nest_dispatch,
	.update_idle	= (void *)nest_update_idle,
	.running	= (void *)nest_running,
	.stopping	= (void *)nest_stopping,
	.enable		= (void *)nest_enable,
	.init		= (void *)nest_init,
	.exit		= (void *)nest_exit,
	/* update_idle() would otherwise switch off the built-in idle tracking */
	.flags		= SCX_OPS_KEEP_BUILTIN_IDLE,
	.name		= SCX_OPS_NAME("nest"),
	TRACK_OPS	/* the variant's own ops: exitdel adds .exit_task */
);
