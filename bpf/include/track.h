/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-task tracking shared by all four schedulers, and the three ways of
 * (not) cleaning it up, picked at build time with -DSCX_VARIANT:
 *
 *   0 control  never cleans: entries of exited tasks pile up (the leak)
 *   1 test     scx_bpf_map_scan_timeout() from ops.dispatch, once per interval
 *   2 bpfscan  the same eviction in plain BPF: bpf_for_each_map_elem with a
 *              time budget, deleting stale entries from the callback
 *
 * Entries are deliberately never deleted when a task exits (no ops.exit_task
 * cleanup) in any variant: that is the situation the helper is meant for.
 */
#ifndef __SCX_TRACK_H
#define __SCX_TRACK_H

#define SCX_VARIANT_CONTROL	0
#define SCX_VARIANT_TEST	1
#define SCX_VARIANT_BPFSCAN	2

#ifndef SCX_VARIANT
#error "build with -DSCX_VARIANT=0 (control), 1 (test) or 2 (bpfscan)"
#endif

#if SCX_VARIANT == SCX_VARIANT_CONTROL
#define SCX_VARIANT_NAME "control"
#elif SCX_VARIANT == SCX_VARIANT_TEST
#define SCX_VARIANT_NAME "test"
#elif SCX_VARIANT == SCX_VARIANT_BPFSCAN
#define SCX_VARIANT_NAME "bpfscan"
#else
#error "SCX_VARIANT must be 0, 1 or 2"
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

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, TRACK_MAX_ENTRIES);
	__type(key, u32);
	__type(value, struct tracked_task);
} tracked_tasks SEC(".maps");

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

/* the agent sets this to 1 to make the scheduler fail (fault tests) */
u32 inject_error;

static u64 last_cleanup_ns;

/* remember @p as seen now; inserts on first sight */
static __always_inline void track_task(struct task_struct *p)
{
	u32 pid = p->pid;
	u64 now = bpf_ktime_get_ns();
	struct tracked_task *t, fresh = {};

	t = bpf_map_lookup_elem(&tracked_tasks, &pid);
	if (t) {
		WRITE_ONCE(t->last_seen_ns, now);
		t->nr_touches++;
		return;
	}
	fresh.last_seen_ns = now;
	fresh.first_seen_ns = now;
	fresh.tgid = p->tgid;
	fresh.nr_touches = 1;
	/* NOEXIST: another CPU may have inserted it meanwhile; either wins */
	if (bpf_map_update_elem(&tracked_tasks, &pid, &fresh, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&tracked_tasks, &pid))
		__sync_fetch_and_add(&nr_track_fail, 1);
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

#else /* control */

static __always_inline void track_cleanup(void) {}
static __always_inline s32 track_init(void) { return 0; }

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
