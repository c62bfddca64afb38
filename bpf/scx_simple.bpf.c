/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_simple: one global queue ordered by weighted virtual time.
 *
 * Every task carries a vtime that advances by its run time divided by its
 * weight, and the CPU that needs work takes the task with the smallest
 * vtime. Weight therefore buys CPU share in proportion. A task that slept
 * may not bank more than one slice of credit, or it would monopolise the
 * CPUs after waking up.
 */
#include "scx_common.bpf.h"
#include "compat.h"
#include "track.h"

char _license[] SEC("license") = "GPL";

#define SHARED_DSQ	0

/* vtime of the most recently started task: the clock new tasks join at */
static u64 vtime_now;

s32 SCX_OP(simple_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu;

	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	/* an idle CPU needs no arbitration: run there right away */
	if (is_idle) {
		scx_insert(p, SCX_DSQ_LOCAL, SCX_SLICE_DFL, 0);
		__sync_fetch_and_add(&nr_dispatched, 1);
	}
	return cpu;
}

void SCX_OP(simple_enqueue, struct task_struct *p, u64 enq_flags)
{
	u64 vtime = p->scx.dsq_vtime;

	track_task(p);
	/* cap the credit of a task that slept to one slice */
	if (vtime_before(vtime, vtime_now - SCX_SLICE_DFL))
		vtime = vtime_now - SCX_SLICE_DFL;
	scx_insert_vtime(p, SHARED_DSQ, SCX_SLICE_DFL, vtime, enq_flags);
	__sync_fetch_and_add(&nr_dispatched, 1);
}

void SCX_OP(simple_dispatch, s32 cpu, struct task_struct *prev)
{
	track_dispatch();
	scx_move_to_local(SHARED_DSQ);
}

void SCX_OP(simple_running, struct task_struct *p)
{
	track_running(p);
	/*
	 * Tasks leave the queue in vtime order, so the running task's vtime
	 * is the queue's front. Racy across CPUs, but only ever moves forward
	 * and an off-by-a-bit clock costs nothing but a little fairness.
	 */
	if (vtime_before(vtime_now, p->scx.dsq_vtime))
		vtime_now = p->scx.dsq_vtime;
}

void SCX_OP(simple_stopping, struct task_struct *p, bool runnable)
{
	/*
	 * Charge what the task used of its slice, scaled by 100/weight (100 is
	 * the default weight, nice 0). A yield zeroes the slice and is charged
	 * as a full slice, which is what a yield deserves here.
	 */
	u64 used = SCX_SLICE_DFL - p->scx.slice;

	p->scx.dsq_vtime += used * 100 / p->scx.weight;
}

void SCX_OP(simple_enable, struct task_struct *p)
{
	/* joins at the current clock: neither owed nor owing */
	p->scx.dsq_vtime = vtime_now;
	track_task(p);
}

s32 SCX_OP_SLEEPABLE(simple_init)
{
	s32 ret = track_init();

	if (ret)
		return ret;
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

void SCX_OP(simple_exit, struct scx_exit_info *ei)
{
	exit_record_save(ei);
}

SCHED_OPS(
	.select_cpu	= (void *)simple_select_cpu,
	.enqueue	= (void *)simple_enqueue,
	.dispatch	= (void *)simple_dispatch,
	.running	= (void *)simple_running,
	.stopping	= (void *)simple_stopping,
	.enable		= (void *)simple_enable,
	.init		= (void *)simple_init,
	.exit		= (void *)simple_exit,
	.name		= SCX_OPS_NAME("simple"),
	TRACK_OPS	/* the variant's own ops: exitdel adds .exit_task */
);
