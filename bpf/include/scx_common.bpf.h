/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Our minimal sched_ext support header: the kfuncs our schedulers call,
 * error/exit reporting, and the struct_ops boilerplate. Only what we use is
 * declared, so a kernel that lacks something fails loudly at load time
 * instead of at some later call.
 */
#ifndef __SCX_COMMON_BPF_H
#define __SCX_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define EINVAL		22
#define ENOMEM		12
#define ENOENT		2
#define EBUSY		16
#define ENOSPC		28
#define EOPNOTSUPP	95
#define ETIMEDOUT	110

#define PF_KTHREAD	0x00200000

#define READ_ONCE(x)		(*(volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v)	(*(volatile typeof(x) *)&(x) = (v))

/* sched_ext kfuncs present under the same name from 6.12 on */
s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym;
s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags,
			   bool *is_idle) __ksym;
s32 scx_bpf_dsq_nr_queued(u64 dsq_id) __ksym;
void scx_bpf_destroy_dsq(u64 dsq_id) __ksym;
void scx_bpf_kick_cpu(s32 cpu, u64 flags) __ksym;
bool scx_bpf_test_and_clear_cpu_idle(s32 cpu) __ksym;
s32 scx_bpf_pick_idle_cpu(const struct cpumask *cpus_allowed, u64 flags) __ksym;
const struct cpumask *scx_bpf_get_idle_cpumask(void) __ksym;
void scx_bpf_put_idle_cpumask(const struct cpumask *cpumask) __ksym;
u32 scx_bpf_nr_cpu_ids(void) __ksym;
s32 scx_bpf_task_cpu(const struct task_struct *p) __ksym;
struct cgroup *scx_bpf_task_cgroup(struct task_struct *p) __ksym;
void scx_bpf_error_bstr(char *fmt, unsigned long long *data, u32 data_len) __ksym;

/* generic BPF kfuncs */
bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *cpumask) __ksym;
struct cgroup *bpf_cgroup_ancestor(struct cgroup *cgrp, int level) __ksym;
struct cgroup *bpf_cgroup_from_id(u64 cgid) __ksym;
void bpf_cgroup_release(struct cgroup *cgrp) __ksym;

/*
 * scx_error("fmt", args...): abort the scheduler with a formatted message.
 * The kfunc takes the arguments as a u64 array; the format string must live
 * in a map (static data), hence the static array.
 */
#define scx_error(fmt, args...)						\
({									\
	static char __scx_fmt[] = fmt;					\
	unsigned long long __scx_args[___bpf_narg(args) + 1] = {};	\
	_Pragma("GCC diagnostic push")					\
	_Pragma("GCC diagnostic ignored \"-Wint-conversion\"")		\
	___bpf_fill(__scx_args, args);					\
	_Pragma("GCC diagnostic pop")					\
	scx_bpf_error_bstr(__scx_fmt, __scx_args, sizeof(__scx_args));	\
})

/* ops entry points: SEC names tell libbpf which struct_ops member they are */
#define SCX_OP(name, args...)		SEC("struct_ops/" #name) BPF_PROG(name, ##args)
#define SCX_OP_SLEEPABLE(name, args...)	SEC("struct_ops.s/" #name) BPF_PROG(name, ##args)

/*
 * Every scheduler names its ops map `sched_ops`, so the agent attaches all
 * twelve builds the same way; the kernel-visible name (root/ops) carries the
 * scheduler and the variant, e.g. "simple_test".
 */
#define SCHED_OPS(...)							\
	SEC(".struct_ops.link") struct sched_ext_ops sched_ops = { __VA_ARGS__ }

/* signed compare so that vtime wrap-around does not invert the order */
static __always_inline bool vtime_before(u64 a, u64 b)
{
	return (s64)(a - b) < 0;
}

static __always_inline u64 min_u64(u64 a, u64 b) { return a < b ? a : b; }
static __always_inline u64 max_u64(u64 a, u64 b) { return a > b ? a : b; }

/*
 * Exit information, copied out of the kernel's scx_exit_info in ops.exit so
 * the agent can report why the scheduler stopped even after the kernel
 * freed its own copy. `kind` is written last: non-zero means complete.
 */
#define EXIT_REASON_LEN	128
#define EXIT_MSG_LEN	1024

struct exit_record {
	s32 kind;
	s32 _pad;
	s64 exit_code;
	char reason[EXIT_REASON_LEN];
	char msg[EXIT_MSG_LEN];
};

struct exit_record exit_record;

static __always_inline void exit_record_save(struct scx_exit_info *ei)
{
	bpf_probe_read_kernel_str(exit_record.reason, sizeof(exit_record.reason),
				  ei->reason);
	bpf_probe_read_kernel_str(exit_record.msg, sizeof(exit_record.msg),
				  ei->msg);
	exit_record.exit_code = ei->exit_code;
	/* full barrier: a reader that sees kind sees the strings too */
	__sync_lock_test_and_set(&exit_record.kind, ei->kind);
}

#endif /* __SCX_COMMON_BPF_H */
