/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-task tracking shared by all four schedulers, and the ways of (not)
 * cleaning it up, picked at build time with -DSCX_VARIANT:
 *
 *   0 control   never cleans: entries of exited tasks pile up (the leak)
 *   1 test      scx_bpf_map_scan_timeout() from ops.dispatch, once per interval
 *   2 bpfscan   the same eviction in plain BPF: bpf_for_each_map_elem with a
 *               time budget, deleting stale entries from the callback
 *   3 exitdel   the hash map of control, plus deleting the task's entry from
 *               ops.exit_task (what most real schedulers do)
 *   4 taskstor  per-task state in BPF_MAP_TYPE_TASK_STORAGE instead of the
 *               hash map: the kernel frees it with the task
 *
 * control, test and bpfscan never delete an entry when its task exits (no
 * ops.exit_task cleanup): that is the situation the helper is meant for.
 * exitdel and taskstor are the fixes schedulers use today, to measure the
 * helper against.
 *
 * Every variant counts false evictions (nr_false_evictions): a task that
 * had an entry and is touched again without one, i.e. a live task whose
 * entry a scan evicted because it slept longer than max_age. A marker in
 * task storage (tracked_seen), which no scan touches and the kernel frees
 * with the task, remembers that the task had an entry.
 */
#ifndef __SCX_TRACK_H
#define __SCX_TRACK_H

#define SCX_VARIANT_CONTROL	0
#define SCX_VARIANT_TEST	1
#define SCX_VARIANT_BPFSCAN	2
#define SCX_VARIANT_EXITDEL	3
#define SCX_VARIANT_TASKSTOR	4

#ifndef SCX_VARIANT
#error "build with -DSCX_VARIANT=0 (control), 1 (test), 2 (bpfscan), 3 (exitdel) or 4 (taskstor)"
#endif

#if SCX_VARIANT == SCX_VARIANT_CONTROL
#define SCX_VARIANT_NAME "control"
#elif SCX_VARIANT == SCX_VARIANT_TEST
#define SCX_VARIANT_NAME "test"
#elif SCX_VARIANT == SCX_VARIANT_BPFSCAN
#define SCX_VARIANT_NAME "bpfscan"
#elif SCX_VARIANT == SCX_VARIANT_EXITDEL
#define SCX_VARIANT_NAME "exitdel"
#elif SCX_VARIANT == SCX_VARIANT_TASKSTOR
#define SCX_VARIANT_NAME "taskstor"
#else
#error "SCX_VARIANT must be 0, 1, 2, 3 or 4"
#endif

/* ops.name, e.g. "nest_bpfscan": what /sys/kernel/sched_ext/root/ops shows */
#define SCX_OPS_NAME(base) base "_" SCX_VARIANT_NAME

/*
 * pids are bounded by pid_max (32768 on small machines), so the leak
 * saturates there; 65536 leaves room for a raised pid_max. NO_PREALLOC so
 * that the map's memory (fdinfo memlock) grows with its entries.
 */
#define TRACK_MAX_ENTRIES	65536

struct tracked_task {
	u64 last_seen_ns;	/* must stay first: the helper reads it */
	u64 first_seen_ns;
	u32 tgid;
	u32 nr_touches;
};

#if SCX_VARIANT == SCX_VARIANT_TASKSTOR
/* same name and value, so the agent samples it as it does the hash map */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tracked_task);
} tracked_tasks SEC(".maps");
#else
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, TRACK_MAX_ENTRIES);
	__type(key, u32);
	__type(value, struct tracked_task);
} tracked_tasks SEC(".maps");
#endif

/* a task had an entry once (false-eviction detection; see the top) */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, u32);
} tracked_seen SEC(".maps");

/* set by the loader from the cleanup: section of the config */
const volatile u64 cleanup_interval_ns = 1000000000ULL;	/* 1 s */
const volatile u64 cleanup_timeout_ns = 100000ULL;	/* 100 us */
const volatile u64 cleanup_max_age_ns = 5000000000ULL;	/* 5 s */

/* read by the agent every sample (BSS, mmapped) */
u64 nr_evictions;
u64 nr_scans;
u64 nr_scan_timeouts;
u64 max_scan_ns;
u64 nr_scan_busy;	/* test: another CPU held the map's cursor */
u64 nr_track_fail;	/* inserts refused: map full, or the allocator's per-CPU
			 * cache ran dry (enable inserts every task in a row
			 * with IRQs off, before the cache can refill) */
u64 nr_running;		/* ops.running calls: proof tasks run under us */
u64 nr_dispatched;	/* tasks queued to a DSQ by this scheduler */
u64 nr_false_evictions;	/* live tasks touched again after losing their entry */
u64 nr_track_ns;	/* ns spent in the tracking code (insert/refresh, the
			 * cleanup scan, the exit_task delete): the variant's
			 * cost, per ops.running call = nr_track_ns / nr_running */
u64 nr_exit_deletes;	/* exitdel: entries deleted by ops.exit_task */

/* the agent sets this to 1 to make the scheduler fail (fault tests) */
u32 inject_error;

static u64 last_cleanup_ns;

static __always_inline void track_charge(u64 start)
{
	__sync_fetch_and_add(&nr_track_ns, bpf_ktime_get_ns() - start);
}

/*
 * @p has no entry: if it had one before, a scan evicted it while the task
 * lived (a false eviction); else mark it as having one from now on. Only
 * the miss path pays for this.
 */
static __always_inline void track_note_insert(struct task_struct *p)
{
	if (bpf_task_storage_get(&tracked_seen, p, 0, 0))
		__sync_fetch_and_add(&nr_false_evictions, 1);
	else
		bpf_task_storage_get(&tracked_seen, p, 0,
				     BPF_LOCAL_STORAGE_GET_F_CREATE);
}

#if SCX_VARIANT == SCX_VARIANT_TASKSTOR

static __always_inline void track_touch(struct task_struct *p, u64 now)
{
	struct tracked_task *t, fresh = {};

	t = bpf_task_storage_get(&tracked_tasks, p, 0, 0);
	if (t) {
		WRITE_ONCE(t->last_seen_ns, now);
		t->nr_touches++;
		return;
	}
	track_note_insert(p);
	fresh.last_seen_ns = now;
	fresh.first_seen_ns = now;
	fresh.tgid = p->tgid;
	fresh.nr_touches = 1;
	/* created with @fresh as its value; another CPU's creation wins */
	if (!bpf_task_storage_get(&tracked_tasks, p, &fresh,
				  BPF_LOCAL_STORAGE_GET_F_CREATE))
		__sync_fetch_and_add(&nr_track_fail, 1);
}

#else

static __always_inline void track_touch(struct task_struct *p, u64 now)
{
	u32 pid = p->pid;
	struct tracked_task *t, fresh = {};

	t = bpf_map_lookup_elem(&tracked_tasks, &pid);
	if (t) {
		WRITE_ONCE(t->last_seen_ns, now);
		t->nr_touches++;
		return;
	}
	track_note_insert(p);
	fresh.last_seen_ns = now;
	fresh.first_seen_ns = now;
	fresh.tgid = p->tgid;
	fresh.nr_touches = 1;
	/* NOEXIST: another CPU may have inserted it meanwhile; either wins */
	if (bpf_map_update_elem(&tracked_tasks, &pid, &fresh, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&tracked_tasks, &pid))
		__sync_fetch_and_add(&nr_track_fail, 1);
}

#endif

/* remember @p as seen now; inserts on first sight */
static __always_inline void track_task(struct task_struct *p)
{
	u64 now = bpf_ktime_get_ns();

	track_touch(p, now);
	track_charge(now);
}

/* keep max_scan_ns a true maximum even if two CPUs race */
static __always_inline void scan_record_duration(u64 dur)
{
	u64 old;
	int i;

	for (i = 0; i < 8; i++) {
		old = max_scan_ns;
		if (dur <= old ||
		    __sync_val_compare_and_swap(&max_scan_ns, old, dur) == old)
			break;
	}
}

/*
 * Claim this interval's cleanup slot: of all CPUs whose dispatch sees the
 * interval expired, only the one whose compare-and-swap moves the
 * timestamp forward scans.
 */
static __always_inline bool cleanup_slot_claim(u64 now)
{
	u64 last = last_cleanup_ns;

	if (now - last < cleanup_interval_ns)
		return false;
	return __sync_val_compare_and_swap(&last_cleanup_ns, last, now) == last;
}

#if SCX_VARIANT == SCX_VARIANT_TEST

/*
 * The kernel declares the map as `struct bpf_map *map__map` (the __map
 * suffix makes the verifier demand a map, i.e. &some_map). libbpf checks
 * that this prototype matches the kernel's, and a weak extern that does not
 * match silently counts as missing: keep the two in step.
 */
int scx_bpf_map_scan_timeout(struct bpf_map *map, u64 timeout_ns, u64 max_age_ns,
			     u32 *evicted) __ksym __weak;

static __always_inline void track_cleanup(void)
{
	u64 start = bpf_ktime_get_ns(), dur;
	u32 evicted = 0;
	int ret;

	if (!cleanup_slot_claim(start))
		return;
	if (!bpf_ksym_exists(scx_bpf_map_scan_timeout)) {
		scx_error("scx_bpf_map_scan_timeout missing in this kernel");
		return;
	}

	ret = scx_bpf_map_scan_timeout((struct bpf_map *)&tracked_tasks,
				       cleanup_timeout_ns, cleanup_max_age_ns,
				       &evicted);
	dur = bpf_ktime_get_ns() - start;
	__sync_fetch_and_add(&nr_track_ns, dur);

	if (ret == -EBUSY) {
		__sync_fetch_and_add(&nr_scan_busy, 1);
		return;
	}
	if (ret && ret != -ETIMEDOUT) {
		scx_error("scx_bpf_map_scan_timeout failed: %d", ret);
		return;
	}
	__sync_fetch_and_add(&nr_scans, 1);
	__sync_fetch_and_add(&nr_evictions, evicted);
	if (ret == -ETIMEDOUT)
		__sync_fetch_and_add(&nr_scan_timeouts, 1);
	scan_record_duration(dur);
	if (evicted)
		bpf_printk("scan: evicted %u in %llu ns (ret %d)", evicted, dur, ret);
}

/* refuse to start without the helper rather than fail on the first scan */
static __always_inline s32 track_init(void)
{
	if (!bpf_ksym_exists(scx_bpf_map_scan_timeout)) {
		scx_error("scx_bpf_map_scan_timeout missing in this kernel");
		return -EOPNOTSUPP;
	}
	return 0;
}

#elif SCX_VARIANT == SCX_VARIANT_BPFSCAN

/* visit at least this many entries per call, like the helper does */
#define BPFSCAN_MIN_BATCH	8

struct bpfscan_ctx {
	u64 start;
	u32 visited;
	u32 evicted;
	bool timed_out;
};

static long bpfscan_cb(struct bpf_map *map, u32 *key, struct tracked_task *t,
		       struct bpfscan_ctx *ctx)
{
	u64 now = bpf_ktime_get_ns();
	u64 seen = READ_ONCE(t->last_seen_ns);

	if (ctx->visited >= BPFSCAN_MIN_BATCH &&
	    now - ctx->start >= cleanup_timeout_ns) {
		ctx->timed_out = true;
		return 1;	/* stop the walk */
	}
	ctx->visited++;
	/* deleting the element being visited is allowed for hash maps */
	if (now > seen && now - seen > cleanup_max_age_ns &&
	    !bpf_map_delete_elem(map, key))
		ctx->evicted++;
	return 0;
}

/*
 * Unlike the helper there is no cursor: every walk starts at the head of
 * the map. Stale entries at the head get deleted, so later walks still
 * reach further, but live entries near the head are revisited each time.
 */
static __always_inline void track_cleanup(void)
{
	struct bpfscan_ctx ctx = {};
	u64 dur;

	ctx.start = bpf_ktime_get_ns();
	if (!cleanup_slot_claim(ctx.start))
		return;

	bpf_for_each_map_elem(&tracked_tasks, bpfscan_cb, &ctx, 0);
	dur = bpf_ktime_get_ns() - ctx.start;
	__sync_fetch_and_add(&nr_track_ns, dur);

	__sync_fetch_and_add(&nr_scans, 1);
	__sync_fetch_and_add(&nr_evictions, ctx.evicted);
	if (ctx.timed_out)
		__sync_fetch_and_add(&nr_scan_timeouts, 1);
	scan_record_duration(dur);
	if (ctx.evicted)
		bpf_printk("bpfscan: evicted %u in %llu ns (visited %u)",
			   ctx.evicted, dur, ctx.visited);
}

static __always_inline s32 track_init(void) { return 0; }

#else /* control, exitdel, taskstor: no scan */

static __always_inline void track_cleanup(void) {}
static __always_inline s32 track_init(void) { return 0; }

#endif

#if SCX_VARIANT == SCX_VARIANT_EXITDEL

/*
 * ops.exit_task: the task is being freed (or the scheduler unloaded), so
 * its entry goes. Keyed by pid like the map: should the pid already have
 * been reused by a task that inserted an entry of its own, that entry goes
 * too, and its next touch counts as a false eviction.
 */
void SCX_OP(track_exit_task, struct task_struct *p, struct scx_exit_task_args *args)
{
	u64 start = bpf_ktime_get_ns();
	u32 pid = p->pid;

	if (!bpf_map_delete_elem(&tracked_tasks, &pid))
		__sync_fetch_and_add(&nr_exit_deletes, 1);
	track_charge(start);
}

/* the variant's own ops, in every scheduler's SCHED_OPS(...) */
#define TRACK_OPS	.exit_task = (void *)track_exit_task,

#else

#define TRACK_OPS

#endif

/*
 * Called at the top of every ops.dispatch: the fault-injection check and
 * the variant's cleanup. dispatch runs whenever a CPU looks for work, so
 * neither needs a timer.
 */
static __always_inline void track_dispatch(void)
{
	if (inject_error) {
		scx_error("injected error");
		return;
	}
	track_cleanup();
}

/* from ops.running: count it and refresh the task's entry */
static __always_inline void track_running(struct task_struct *p)
{
	__sync_fetch_and_add(&nr_running, 1);
	track_task(p);
}

#endif /* __SCX_TRACK_H */
