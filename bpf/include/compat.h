/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One source for 6.12 and newer kernels. 6.12 names the dispatch kfuncs
 * scx_bpf_dispatch / scx_bpf_dispatch_vtime / scx_bpf_consume; 6.13 renamed
 * them scx_bpf_dsq_insert / scx_bpf_dsq_insert_vtime /
 * scx_bpf_dsq_move_to_local and later kernels dropped the old names.
 *
 * Both spellings are declared __weak: libbpf resolves the one the running
 * kernel's BTF has and zeroes the other, and bpf_ksym_exists() lets the
 * verifier drop the branch for the missing one. The "___new" suffix is a
 * libbpf flavour (stripped when resolving), needed where the newer kernel
 * changed a return type: scx_bpf_dsq_insert() returns bool from 6.19.
 *
 * Ops flags cannot be picked here (a struct_ops initializer is a constant):
 * SCX_OPS_HAS_CGROUP_WEIGHT (6.12 only; 7.x refuses unknown flags) is set by
 * the agent's loader from the running kernel's BTF (guest-agent/src/scheduler/sched.rs).
 */
#ifndef __SCX_COMPAT_H
#define __SCX_COMPAT_H

/* 6.12 names */
void scx_bpf_dispatch(struct task_struct *p, u64 dsq_id, u64 slice,
		      u64 enq_flags) __ksym __weak;
void scx_bpf_dispatch_vtime(struct task_struct *p, u64 dsq_id, u64 slice,
			    u64 vtime, u64 enq_flags) __ksym __weak;
bool scx_bpf_consume(u64 dsq_id) __ksym __weak;

/* 6.13+ names; the insert return type changed once, so two flavours */
void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice,
			u64 enq_flags) __ksym __weak;
bool scx_bpf_dsq_insert___new(struct task_struct *p, u64 dsq_id, u64 slice,
			      u64 enq_flags) __ksym __weak;
void scx_bpf_dsq_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice,
			      u64 vtime, u64 enq_flags) __ksym __weak;
bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym __weak;

/* queue @p on @dsq_id in FIFO order (or on a local/builtin DSQ) */
static __always_inline void scx_insert(struct task_struct *p, u64 dsq_id,
				       u64 slice, u64 enq_flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert___new))
		scx_bpf_dsq_insert___new(p, dsq_id, slice, enq_flags);
	else if (bpf_ksym_exists(scx_bpf_dsq_insert))
		scx_bpf_dsq_insert(p, dsq_id, slice, enq_flags);
	else
		scx_bpf_dispatch(p, dsq_id, slice, enq_flags);
}

/* queue @p on the user DSQ @dsq_id ordered by @vtime */
static __always_inline void scx_insert_vtime(struct task_struct *p, u64 dsq_id,
					     u64 slice, u64 vtime, u64 enq_flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert_vtime))
		scx_bpf_dsq_insert_vtime(p, dsq_id, slice, vtime, enq_flags);
	else
		scx_bpf_dispatch_vtime(p, dsq_id, slice, vtime, enq_flags);
}

/* from ops.dispatch: move the first task of @dsq_id to this CPU */
static __always_inline bool scx_move_to_local(u64 dsq_id)
{
	if (bpf_ksym_exists(scx_bpf_dsq_move_to_local))
		return scx_bpf_dsq_move_to_local(dsq_id);
	return scx_bpf_consume(dsq_id);
}

#endif /* __SCX_COMPAT_H */
