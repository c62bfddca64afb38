/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_flatcg: cgroup weights, flattened into one level.
 *
 * Walking the cgroup tree at every scheduling decision is what makes
 * hierarchical fair scheduling expensive. Instead each cgroup gets a
 * "hierarchical weight" (hweight): the product, down its path, of its share
 * among the *active* siblings at each level. Then every cgroup competes
 * directly with every other one, like leaves of a one-level tree:
 *
 *   root ─┬─ A (100) ─┬─ B (100)      B and C each get 1/3 * 1/2 = 1/6,
 *         │           └─ C (100)      D gets 2/3 (while all are busy);
 *         └─ D (200)                  if C goes idle, B gets A's whole 1/3.
 *
 * A cgroup's own tasks compete with its children as one entity of the
 * default weight (100), as CFS treats a group's tasks, so root's tasks
 * (sshd, kthreads, the agent) keep a share next to the workload cgroups.
 *
 * Two levels of virtual time:
 *   - per cgroup, cvtime: run time charged as time * ONE / hweight; the CPU
 *     that needs work picks the cgroup with the lowest cvtime that has
 *     queued tasks and then keeps serving it for `cgrp_slice_ns`.
 *   - per task, inside its cgroup's DSQ: weighted vtime as in scx_simple.
 *
 * Activity is tracked with atomic reference counts (own runnable tasks plus
 * active children), so no lock is taken; a renice racing an activation
 * can leave a weight sum briefly off, which only skews shares a little.
 *
 * Cgroups live in a fixed table scanned linearly in dispatch: O(cgroups)
 * per pick, which is fine for tens of cgroups (a VM under test); a tree
 * keyed by cvtime would be the next step for thousands. Cgroups beyond the
 * table share the fallback queue.
 */
#include "scx_common.bpf.h"
#include "compat.h"
#include "track.h"

char _license[] SEC("license") = "GPL";

#define FALLBACK_DSQ	0		/* cgroup ids start at 1 */
#define MAX_CGRPS	256
#define HWEIGHT_ONE	(1ULL << 16)
#define DFL_WEIGHT	100

const volatile u64 cgrp_slice_ns = 10000000ULL;	/* keep a cgroup 10 ms */
const volatile u64 task_slice_ns = SCX_SLICE_DFL;

static u64 cvtime_now;		/* cvtime of the cgroup picked last */
static u64 hweight_gen = 1;	/* bumped when any active set changes */
static u32 nr_slots;		/* high-water mark of used table slots */

struct cgrp_ctx {
	u32 weight;		/* cpu.weight */
	s32 slot;		/* index in cgrp_slots, -1 if none */
	u64 nr_runnable;	/* own runnable tasks */
	u64 active_refs;	/* (nr_runnable > 0) + number of active children */
	u64 child_wsum;		/* summed weight of active children */
	u64 hweight;		/* cached hweight of the own tasks */
	u64 hweight_gen;
	u64 tvtime_now;		/* task vtime clock inside this cgroup */
};

struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cgrp_ctx);
} cgrp_ctxs SEC(".maps");

struct cgrp_slot {
	u64 cgid;		/* 0: free */
	u64 cvtime;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CGRPS);
	__type(key, u32);
	__type(value, struct cgrp_slot);
} cgrp_slots SEC(".maps");

struct cpu_ctx {
	u64 cur_cgid;		/* cgroup this CPU is serving */
	u64 cur_until;		/* ... until then */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct cpu_ctx);
} cpu_ctxs SEC(".maps");

struct task_ctx {
	u64 started_at;		/* 0 when not running */
	u64 counted_cgid;	/* cgroup whose nr_runnable counts this task */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctxs SEC(".maps");

static __always_inline struct cgrp_ctx *cgrp_ctx(struct cgroup *cgrp)
{
	return bpf_cgrp_storage_get(&cgrp_ctxs, cgrp, 0, 0);
}

static __always_inline struct cgrp_slot *slot_of(struct cgrp_ctx *c)
{
	u32 idx;

	if (c->slot < 0)
		return NULL;
	idx = c->slot;
	return bpf_map_lookup_elem(&cgrp_slots, &idx);
}

/*
 * Take (@get) or drop one active reference on @cgrp and carry the change up
 * as long as it flips a cgroup between idle and active: a cgroup that
 * becomes active adds its weight to its parent's active sum and takes a
 * reference on the parent, and the reverse when it goes idle.
 */
static void cgrp_ref(struct cgroup *cgrp, bool get)
{
	int level = cgrp->level, i;

	bpf_for(i, 0, level + 1) {
		int l = level - i;
		struct cgroup *anc, *parent;
		struct cgrp_ctx *c, *pc;
		bool flipped;
		u32 weight;

		anc = bpf_cgroup_ancestor(cgrp, l);
		if (!anc)
			break;
		c = cgrp_ctx(anc);
		if (!c) {
			bpf_cgroup_release(anc);
			break;
		}
		if (get)
			flipped = __sync_fetch_and_add(&c->active_refs, 1) == 0;
		else
			flipped = __sync_sub_and_fetch(&c->active_refs, 1) == 0;
		weight = c->weight;
		bpf_cgroup_release(anc);
		if (!flipped || !l)
			break;

		parent = bpf_cgroup_ancestor(cgrp, l - 1);
		if (!parent)
			break;
		pc = cgrp_ctx(parent);
		if (pc) {
			if (get)
				__sync_fetch_and_add(&pc->child_wsum, weight);
			else
				__sync_fetch_and_sub(&pc->child_wsum, weight);
		}
		bpf_cgroup_release(parent);
	}
	__sync_fetch_and_add(&hweight_gen, 1);
}

/* a cgroup's competing weight at its parent: children plus own tasks */
static __always_inline u64 level_wsum(struct cgrp_ctx *c)
{
	return c->child_wsum + (c->nr_runnable ? DFL_WEIGHT : 0);
}

/* hweight of @cgrp's own tasks; recomputed only when activity changed */
static u64 cgrp_hweight(struct cgroup *cgrp, struct cgrp_ctx *c)
{
	u64 gen = hweight_gen, h = HWEIGHT_ONE;
	int level = cgrp->level, l;

	if (c->hweight_gen == gen && c->hweight)
		return c->hweight;

	bpf_for(l, 1, level + 1) {
		struct cgroup *anc, *parent;
		struct cgrp_ctx *ac, *pc;
		u64 w = 0, sum = 0;

		anc = bpf_cgroup_ancestor(cgrp, l);
		if (!anc)
			break;
		ac = cgrp_ctx(anc);
		if (ac)
			w = ac->weight;
		bpf_cgroup_release(anc);

		parent = bpf_cgroup_ancestor(cgrp, l - 1);
		if (!parent)
			break;
		pc = cgrp_ctx(parent);
		if (pc)
			sum = level_wsum(pc);
		bpf_cgroup_release(parent);

		/* a racing deactivation may have taken us out of the sum */
		if (!w)
			break;
		h = h * w / max_u64(sum, w);
	}
	/* own tasks share the cgroup with its active children */
	if (c->child_wsum)
		h = h * DFL_WEIGHT / (c->child_wsum + DFL_WEIGHT);

	h = max_u64(h, 1);
	c->hweight = h;
	c->hweight_gen = gen;
	return h;
}

s32 SCX_OP(fcg_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu;

	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	/* idle CPU: run now; stopping() still charges the cgroup */
	if (is_idle) {
		scx_insert(p, SCX_DSQ_LOCAL, task_slice_ns, 0);
		__sync_fetch_and_add(&nr_dispatched, 1);
	}
	return cpu;
}

void SCX_OP(fcg_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct cgroup *cgrp;
	struct cgrp_ctx *c;
	u64 vtime, cgid;

	track_task(p);
	__sync_fetch_and_add(&nr_dispatched, 1);

	/* per-CPU kthreads are already on the only rq they can use */
	if (p->nr_cpus_allowed == 1 && (p->flags & PF_KTHREAD)) {
		scx_insert(p, SCX_DSQ_LOCAL, task_slice_ns, enq_flags);
		return;
	}
	/*
	 * Other pinned tasks would sit in a cgroup queue that CPUs they cannot
	 * use keep looking at; a shared fallback queue, drained first by every
	 * CPU, plus a kick of their CPU keeps them moving.
	 */
	if (p->nr_cpus_allowed != scx_bpf_nr_cpu_ids())
		goto fallback;

	cgrp = scx_bpf_task_cgroup(p);
	c = cgrp_ctx(cgrp);
	if (!c || c->slot < 0) {
		bpf_cgroup_release(cgrp);
		goto fallback;
	}
	cgid = cgrp->kn->id;
	vtime = p->scx.dsq_vtime;
	/* sleep credit inside the cgroup: at most one slice */
	if (vtime_before(vtime, c->tvtime_now - task_slice_ns))
		vtime = c->tvtime_now - task_slice_ns;
	bpf_cgroup_release(cgrp);
	scx_insert_vtime(p, cgid, task_slice_ns, vtime, enq_flags);
	return;

fallback:
	scx_insert(p, FALLBACK_DSQ, task_slice_ns, enq_flags);
	scx_bpf_kick_cpu(scx_bpf_task_cpu(p), SCX_KICK_IDLE);
}

/* move the first task of the lowest-cvtime busy cgroup here */
static bool pick_cgroup(struct cpu_ctx *cpuc, u64 now)
{
	u32 i, n = nr_slots;
	s32 best = -1;
	u64 best_cv = 0, best_id = 0;

	bpf_for(i, 0, n) {
		struct cgrp_slot *s = bpf_map_lookup_elem(&cgrp_slots, &i);
		u64 cgid;

		if (!s || !(cgid = s->cgid))
			continue;
		if (scx_bpf_dsq_nr_queued(cgid) <= 0)
			continue;
		if (best < 0 || vtime_before(s->cvtime, best_cv)) {
			best = i;
			best_cv = s->cvtime;
			best_id = cgid;
		}
	}
	if (best < 0 || !scx_move_to_local(best_id))
		return false;

	cpuc->cur_cgid = best_id;
	cpuc->cur_until = now + cgrp_slice_ns;
	if (vtime_before(cvtime_now, best_cv))
		cvtime_now = best_cv;
	return true;
}

void SCX_OP(fcg_dispatch, s32 cpu, struct task_struct *prev)
{
	struct cpu_ctx *cpuc;
	u32 zero = 0;
	u64 now;
	int tries;

	track_dispatch();
	if (scx_move_to_local(FALLBACK_DSQ))
		return;

	cpuc = bpf_map_lookup_elem(&cpu_ctxs, &zero);
	if (!cpuc)
		return;
	now = bpf_ktime_get_ns();
	/* stay with the current cgroup for its slice: fewer switches, warm caches */
	if (cpuc->cur_cgid && vtime_before(now, cpuc->cur_until) &&
	    scx_move_to_local(cpuc->cur_cgid))
		return;
	cpuc->cur_cgid = 0;

	/* another CPU may drain the chosen queue first: look again */
	for (tries = 0; tries < 4; tries++)
		if (pick_cgroup(cpuc, now))
			return;
}

void SCX_OP(fcg_runnable, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);
	struct cgroup *cgrp;
	struct cgrp_ctx *c;

	if (!tctx)
		return;
	cgrp = scx_bpf_task_cgroup(p);
	c = cgrp_ctx(cgrp);
	if (c) {
		tctx->counted_cgid = cgrp->kn->id;
		if (__sync_fetch_and_add(&c->nr_runnable, 1) == 0) {
			struct cgrp_slot *s = slot_of(c);

			/* an idle cgroup may not bank more than one slice */
			if (s && vtime_before(s->cvtime, cvtime_now - cgrp_slice_ns))
				s->cvtime = cvtime_now - cgrp_slice_ns;
			cgrp_ref(cgrp, true);
		}
	}
	bpf_cgroup_release(cgrp);
}

void SCX_OP(fcg_quiescent, struct task_struct *p, u64 deq_flags)
{
	struct task_ctx *tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);
	struct cgroup *cgrp;
	struct cgrp_ctx *c;

	if (!tctx || !tctx->counted_cgid)
		return;
	/* undo exactly what runnable() counted, even if the task moved */
	cgrp = bpf_cgroup_from_id(tctx->counted_cgid);
	tctx->counted_cgid = 0;
	if (!cgrp)
		return;
	c = cgrp_ctx(cgrp);
	if (c && __sync_sub_and_fetch(&c->nr_runnable, 1) == 0)
		cgrp_ref(cgrp, false);
	bpf_cgroup_release(cgrp);
}

void SCX_OP(fcg_running, struct task_struct *p)
{
	struct task_ctx *tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);
	struct cgroup *cgrp;
	struct cgrp_ctx *c;

	track_running(p);
	if (tctx)
		tctx->started_at = bpf_ktime_get_ns();

	cgrp = scx_bpf_task_cgroup(p);
	c = cgrp_ctx(cgrp);
	/* the cgroup's task clock follows the front of its queue */
	if (c && vtime_before(c->tvtime_now, p->scx.dsq_vtime))
		c->tvtime_now = p->scx.dsq_vtime;
	bpf_cgroup_release(cgrp);
}

void SCX_OP(fcg_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = bpf_task_storage_get(&task_ctxs, p, 0, 0);
	struct cgroup *cgrp;
	struct cgrp_ctx *c;
	struct cgrp_slot *s;
	u64 ran;

	if (!tctx || !tctx->started_at)
		return;
	ran = bpf_ktime_get_ns() - tctx->started_at;
	tctx->started_at = 0;
	p->scx.dsq_vtime += ran * 100 / p->scx.weight;

	/*
	 * Charge the cgroup for real run time, whichever path the task took
	 * to the CPU (queue or direct dispatch to an idle CPU).
	 */
	cgrp = scx_bpf_task_cgroup(p);
	c = cgrp_ctx(cgrp);
	if (c && (s = slot_of(c)))
		__sync_fetch_and_add(&s->cvtime,
				     ran * HWEIGHT_ONE / cgrp_hweight(cgrp, c));
	bpf_cgroup_release(cgrp);
}

s32 SCX_OP(fcg_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	struct cgrp_ctx *c;

	if (!bpf_task_storage_get(&task_ctxs, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE))
		return -ENOMEM;
	c = cgrp_ctx(args->cgroup);
	if (c)
		p->scx.dsq_vtime = c->tvtime_now;
	return 0;
}

void SCX_OP(fcg_enable, struct task_struct *p)
{
	track_task(p);
}

s32 SCX_OP_SLEEPABLE(fcg_cgroup_init, struct cgroup *cgrp,
		     struct scx_cgroup_init_args *args)
{
	u64 cgid = cgrp->kn->id;
	struct cgrp_ctx *c;
	s32 ret;
	u32 i;

	ret = scx_bpf_create_dsq(cgid, -1);
	if (ret)
		return ret;
	c = bpf_cgrp_storage_get(&cgrp_ctxs, cgrp, 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c) {
		scx_bpf_destroy_dsq(cgid);
		return -ENOMEM;
	}
	c->weight = args->weight;
	c->slot = -1;

	/* claim a free table slot; none left means the fallback queue */
	bpf_for(i, 0, MAX_CGRPS) {
		struct cgrp_slot *s = bpf_map_lookup_elem(&cgrp_slots, &i);

		if (!s || __sync_val_compare_and_swap(&s->cgid, 0, cgid))
			continue;
		s->cvtime = cvtime_now;
		c->slot = i;
		/* grow the scanned range; never shrinks, freed slots get reused */
		bpf_repeat(8) {
			u32 n = nr_slots;

			if (n > i || __sync_val_compare_and_swap(&nr_slots, n, i + 1) == n)
				break;
		}
		break;
	}
	return 0;
}

void SCX_OP(fcg_cgroup_exit, struct cgroup *cgrp)
{
	struct cgrp_ctx *c = cgrp_ctx(cgrp);
	struct cgrp_slot *s;

	if (c && (s = slot_of(c))) {
		s->cgid = 0;
		c->slot = -1;
	}
	scx_bpf_destroy_dsq(cgrp->kn->id);
}

void SCX_OP(fcg_cgroup_set_weight, struct cgroup *cgrp, u32 weight)
{
	struct cgrp_ctx *c = cgrp_ctx(cgrp), *pc;
	struct cgroup *parent;
	u32 old;

	if (!c)
		return;
	old = c->weight;
	c->weight = weight;
	/* an active cgroup's weight is part of its parent's sum */
	if (c->active_refs && cgrp->level) {
		parent = bpf_cgroup_ancestor(cgrp, cgrp->level - 1);
		if (parent) {
			pc = cgrp_ctx(parent);
			if (pc)
				__sync_fetch_and_add(&pc->child_wsum,
						     (u64)weight - old);
			bpf_cgroup_release(parent);
		}
	}
	__sync_fetch_and_add(&hweight_gen, 1);
}

void SCX_OP(fcg_cgroup_move, struct task_struct *p, struct cgroup *from,
	    struct cgroup *to)
{
	struct cgrp_ctx *fc = cgrp_ctx(from), *tc = cgrp_ctx(to);

	/* keep the task's lag, not its absolute vtime: clocks differ */
	if (fc && tc)
		p->scx.dsq_vtime = tc->tvtime_now + (p->scx.dsq_vtime - fc->tvtime_now);
}

s32 SCX_OP_SLEEPABLE(fcg_init)
{
	s32 ret = track_init();

	if (ret)
		return ret;
	return scx_bpf_create_dsq(FALLBACK_DSQ, -1);
}

void SCX_OP(fcg_exit, struct scx_exit_info *ei)
{
	exit_record_save(ei);
}

SCHED_OPS(
	.select_cpu		= (void *)fcg_select_cpu,
	.enqueue		= (void *)fcg_enqueue,
	.dispatch		= (void *)fcg_dispatch,
	.runnable		= (void *)fcg_runnable,
	.quiescent		= (void *)fcg_quiescent,
	.running		= (void *)fcg_running,
	.stopping		= (void *)fcg_stopping,
	.init_task		= (void *)fcg_init_task,
	.enable			= (void *)fcg_enable,
	.cgroup_init		= (void *)fcg_cgroup_init,
	.cgroup_exit		= (void *)fcg_cgroup_exit,
	.cgroup_set_weight	= (void *)fcg_cgroup_set_weight,
	.cgroup_move		= (void *)fcg_cgroup_move,
	.init			= (void *)fcg_init,
	.exit			= (void *)fcg_exit,
	/*
	 * SCX_OPS_HAS_CGROUP_WEIGHT exists in 6.12 (it only silences a
	 * warning) and is gone later, where weights always come: the loader
	 * sets it when the running kernel's BTF has it (compat.h).
	 */
	.name			= SCX_OPS_NAME("flatcg"),
	TRACK_OPS	/* the variant's own ops: exitdel adds .exit_task */
);
