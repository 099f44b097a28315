/* SPDX-License-Identifier: GPL-2.0 */
/* Which BPF programs to load on the running kernel, decided from facts read out of its BTF (pure: no libbpf).
 *
 * Kernels from 5.10 on differ in what oomsentry's tracepoints pass and in the layout of what they point to; each
 * program either fits as it is, comes in variants of which exactly one is loaded, or is skipped with a reason. */
#ifndef OOMSENTRY_PROBE_VARIANTS_H
#define OOMSENTRY_PROBE_VARIANTS_H

#include <stdbool.h>
#include <stddef.h>

/* The BPF programs of bpf/oomsentry.bpf.c, in attach order. */
enum pv_prog {
	PV_EXEC,
	PV_FORK,
	PV_EXIT,
	PV_MARK_VICTIM_TASK, /* mark_victim(struct task_struct *, uid_t): 6.8 on */
	PV_MARK_VICTIM_PID,  /* mark_victim(int pid): before 6.8, with PV_OOM_SIGKILL to find the task */
	PV_OOM_SIGKILL,
	PV_RSS_STAT,
	PV_MEMCG_RECLAIM,
	PV_DIRECT_RECLAIM,
	PV_MEMCG_EVENTS,
	PV_ENTER_MMAP,
	PV_EXIT_MMAP,
	PV_ENTER_MUNMAP,
	PV_N,
};

/* Tracepoints that tp_btf programs attach to: each needs its btf_trace_<name> typedef in the kernel's BTF. */
enum pv_tp {
	PV_TP_SCHED_PROCESS_EXEC,
	PV_TP_SCHED_PROCESS_FORK,
	PV_TP_SCHED_PROCESS_EXIT,
	PV_TP_MARK_VICTIM,
	PV_TP_SIGNAL_GENERATE,
	PV_TP_RSS_STAT,
	PV_TP_MEMCG_RECLAIM_BEGIN,
	PV_TP_DIRECT_RECLAIM_BEGIN,
	PV_TP_COUNT_MEMCG_EVENTS,
	PV_TP_N,
};

/* The tracepoint of each enum pv_tp, as in btf_trace_<name>. */
extern const char *const pv_tp_names[PV_TP_N];

/* What the first argument of a tracepoint (after the context) is. */
enum pv_arg {
	PV_ARG_UNKNOWN,
	PV_ARG_TASK, /* struct task_struct * */
	PV_ARG_INT,  /* an integer (a pid) */
};

struct pv_facts {
	bool tp[PV_TP_N];          /* btf_trace_<tracepoint> exists */
	enum pv_arg mark_victim;   /* the first argument of btf_trace_mark_victim */
	bool mm_rss_stat_struct;   /* struct mm_rss_stat exists: mm->rss_stat is atomics (before 6.2) */
	bool rss_stat_percpu;      /* mm_struct.rss_stat is an array of struct percpu_counter (6.2 on) */
	bool want_memcg_events;    /* configured: count_memcg_events fires on every page fault, so it is opt-in */
};

struct pv_choice {
	bool load[PV_N];
	const char *skip_reason[PV_N]; /* why a program that applies is not loaded; NULL when loaded or a variant */
	bool counted[PV_N];            /* part of "n of N probes" (a variant not chosen or an opt-in left off is not) */
	const char *oom_variant;       /* how OOM victims are found, for the startup record */
	const char *rss_variant;       /* which mm counters RSS is read from */
};

struct pv_prog_info {
	const char *prog;    /* the BPF program's function name */
	const char *what;    /* its name in records */
	int tp;              /* enum pv_tp it attaches to, -1 for tracefs (classic) tracepoints */
	bool needs_tracefs;
	bool essential;      /* without it, oomsentry falls back to polling */
};

extern const struct pv_prog_info pv_progs[PV_N];

void pv_choose(const struct pv_facts *f, struct pv_choice *c);

/* The essential programs that are not attached, as "exit, oom victim" into buf; returns how many. The OOM victim is
 * present when either variant is attached. */
int pv_missing_essentials(const bool attached[PV_N], char *buf, size_t size);

/* enum pv_prog of a BPF program name, -1 when unknown. */
int pv_prog_by_name(const char *name);

#endif
