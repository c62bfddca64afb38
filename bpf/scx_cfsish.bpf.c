/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_cfsish: the core of CFS on top of sched_ext.
 *
 * - vruntime: each task's run time, measured with timestamps and scaled by
 *   100/weight, so heavier tasks age more slowly and get more CPU.
 * - min_vruntime: a monotonic floor that follows the smallest vruntime
 *   being run. New tasks start there, so they are neither owed nor owing.
 * - sleeper credit: a waking task is placed at most `sleeper_credit_ns`
 *   of weighted time below the floor, so interactive tasks get the CPU
 *   soon after waking but a long sleep cannot be banked.
 * - slice: the scheduling latency is shared among runnable tasks by weight
 *   (latency * w / total runnable weight), never below a minimum
 *   granularity, so the slice shrinks as the load grows.
 *
 * One global vtime-ordered queue stands in for CFS's per-CPU rbtrees;
 * that trades cache affinity for perfect global fairness, which is fine
 * for the small VMs this project runs in.
 */
#include "scx_common.bpf.h"
#include "compat.h"
#include "track.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ	0

const volatile u64 sched_latency_ns = 6000000ULL;	/* CFS: 6 ms */
const volatile u64 min_granularity_ns = 750000ULL;	/* CFS: 0.75 ms */
const volatile u64 sleeper_credit_ns = 3000000ULL;	/* half the latency */

static u64 min_vruntime;
static u64 nr_runnable;		/* tasks runnable under us, running or queued */
static u64 runnable_weight;	/* their summed weight */

struct task_ctx {
	u64 started_at;		/* when it last got a CPU, 0 if not running */
	u64 counted_weight;	/* weight added to runnable_weight, 0 if none */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctxs SEC(".maps");

/* weighted share of the latency, clamped to [min_granularity, latency] */
static __always_inline u64 task_slice(struct task_struct *p)
{
	u64 total = READ_ONCE(runnable_weight);
	u64 slice;

	if (total <= p->scx.weight)
		return sched_latency_ns;
	slice = sched_latency_ns * p->scx.weight / total;
	return max_u64(slice, min_granularity_ns);
}

s32 SCX_OP(cfsish_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu;

	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle) {
		/*
		 * Nobody competes on an idle CPU; still apply the wakeup
		 * placement so the vruntime stays meaningful when it queues.
		 */
		u64 floor = min_vruntime - sleeper_credit_ns;

		if (vtime_before(p->scx.dsq_vtime, floor))
			p->scx.dsq_vtime = floor;
		scx_insert(p, SCX_DSQ_LOCAL, task_slice(p), 0);
		__sync_fetch_and_add(&nr_dispatched, 1);
	}
	return cpu;
}

void SCX_OP(cfsish_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 vruntime = p->scx.dsq_vtime;

	track_task(p);
	/*
	 * Bounded sleeper credit, applied on wakeup only: a preempted task
	 * keeps its exact vruntime.
	 */
	if (enq_flags & SCX_ENQ_WAKEUP) {
		u64 floor = min_vruntime - sleeper_credit_ns;

		if (vtime_before(vruntime, floor))
			vruntime = floor;
		p->scx.dsq_vtime = vruntime;
	}
	scx_insert_vtime(p, SHARED_DSQ, task_slice(p), vruntime, enq_flags);
	__sync_fetch_and_add(&nr_dispatched, 1);
}

void SCX_OP(cfsish_dispatch, s32 cpu, struct task_struct *prev)
{
	track_dispatch();
	scx_move_to_local(SHARED_DSQ);
}

void SCX_OP(cfsish_runnable, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);

	if (!tctx)
		return;
	/*
	 * Remember the weight we added: a renice while runnable must not
	 * make quiescent() subtract a different number.
	 */
	tctx->counted_weight = p->scx.weight;
	__sync_fetch_and_add(&nr_runnable, 1);
	__sync_fetch_and_add(&runnable_weight, tctx->counted_weight);
}

void SCX_OP(cfsish_quiescent, struct task_struct *p, u64 deq_flags)
{
	struct task_ctx *tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);

	if (!tctx || !tctx->counted_weight)
		return;
	__sync_fetch_and_sub(&nr_runnable, 1);
	__sync_fetch_and_sub(&runnable_weight, tctx->counted_weight);
	tctx->counted_weight = 0;
}

void SCX_OP(cfsish_running, struct task_struct *p)
{
	struct task_ctx *tctx;

	track_running(p);
	tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);
	if (tctx)
		tctx->started_at = bpf_ktime_get_ns();
	/* the floor follows the front of the queue and never goes back */
	if (vtime_before(min_vruntime, p->scx.dsq_vtime))
		min_vruntime = p->scx.dsq_vtime;
}

void SCX_OP(cfsish_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx;
	u64 now = bpf_ktime_get_ns(), ran;

	tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);
	if (!tctx || !tctx->started_at)
		return;
	/* real elapsed time, not slice arithmetic: yields are charged fairly */
	ran = now - tctx->started_at;
	tctx->started_at = 0;
	p->scx.dsq_vtime += ran * 100 / p->scx.weight;
}

s32 SCX_OP(cfsish_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	/* may sleep here: allocate the per-task context up front */
	if (!bpf_task_storage_get(&task_ctxs, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE))
		return -ENOMEM;
	return 0;
}

void SCX_OP(cfsish_enable, struct task_struct *p)
{
	/*
	 * Start new tasks one weighted slice above the floor (CFS's
	 * START_DEBIT), so a fork storm cannot push existing work aside.
	 */
	p->scx.dsq_vtime = min_vruntime + task_slice(p) * 100 / p->scx.weight;
	track_task(p);
}

s32 SCX_OP_SLEEPABLE(cfsish_init)
{
	s32 ret = track_init();

	if (ret)
		return ret;
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

void SCX_OP(cfsish_exit, struct scx_exit_info *ei)
{
	exit_record_save(ei);
}

SCHED_OPS(
	.select_cpu	= (void *)cfsish_select_cpu,
	.enqueue	= (void *)cfsish_enqueue,
	.dispatch	= (void *)cfsish_dispatch,
	.runnable	= (void *)cfsish_runnable,
	.quiescent	= (void *)cfsish_quiescent,
	.running	= (void *)cfsish_running,
	.stopping	= (void *)cfsish_stopping,
	.init_task	= (void *)cfsish_init_task,
	.enable		= (void *)cfsish_enable,
	.init		= (void *)cfsish_init,
	.exit		= (void *)cfsish_exit,
	.name		= SCX_OPS_NAME("cfsish"),
	TRACK_OPS	/* the variant's own ops: exitdel adds .exit_task */
);
