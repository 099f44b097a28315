// SPDX-License-Identifier: GPL-2.0
#include <stdio.h>
#include <string.h>
#include "probe_variants.h"

const struct pv_prog_info pv_progs[PV_N] = {
	[PV_EXEC] = { "handle_exec", "exec", PV_TP_SCHED_PROCESS_EXEC, false, true },
	[PV_FORK] = { "handle_fork", "fork", PV_TP_SCHED_PROCESS_FORK, false, true },
	[PV_EXIT] = { "handle_exit", "exit", PV_TP_SCHED_PROCESS_EXIT, false, true },
	[PV_MARK_VICTIM_TASK] = { "handle_mark_victim", "oom victim", PV_TP_MARK_VICTIM, false, true },
	[PV_MARK_VICTIM_PID] = { "handle_mark_victim_pid", "oom victim", PV_TP_MARK_VICTIM, false, true },
	[PV_OOM_SIGKILL] = { "handle_sigkill", "oom victim's task", PV_TP_SIGNAL_GENERATE, false, false },
	[PV_RSS_STAT] = { "handle_rss_stat", "rss", PV_TP_RSS_STAT, false, false },
	[PV_MEMCG_RECLAIM] = { "handle_memcg_reclaim", "memcg reclaim", PV_TP_MEMCG_RECLAIM_BEGIN, false, false },
	[PV_DIRECT_RECLAIM] = { "handle_direct_reclaim", "direct reclaim", PV_TP_DIRECT_RECLAIM_BEGIN, false, false },
	[PV_MEMCG_EVENTS] = { "handle_memcg_events", "memcg events", PV_TP_COUNT_MEMCG_EVENTS, false, false },
	[PV_ENTER_MMAP] = { "handle_enter_mmap", "mmap", -1, true, false },
	[PV_EXIT_MMAP] = { "handle_exit_mmap", "mmap exit", -1, true, false },
	[PV_ENTER_MUNMAP] = { "handle_enter_munmap", "munmap", -1, true, false },
};

const char *const pv_tp_names[PV_TP_N] = {
	[PV_TP_SCHED_PROCESS_EXEC] = "sched_process_exec",
	[PV_TP_SCHED_PROCESS_FORK] = "sched_process_fork",
	[PV_TP_SCHED_PROCESS_EXIT] = "sched_process_exit",
	[PV_TP_MARK_VICTIM] = "mark_victim",
	[PV_TP_SIGNAL_GENERATE] = "signal_generate",
	[PV_TP_RSS_STAT] = "rss_stat",
	[PV_TP_MEMCG_RECLAIM_BEGIN] = "mm_vmscan_memcg_reclaim_begin",
	[PV_TP_DIRECT_RECLAIM_BEGIN] = "mm_vmscan_direct_reclaim_begin",
	[PV_TP_COUNT_MEMCG_EVENTS] = "count_memcg_events",
};

static const char *const tp_missing[PV_TP_N] = {
	[PV_TP_SCHED_PROCESS_EXEC] = "no sched_process_exec tracepoint in this kernel's BTF",
	[PV_TP_SCHED_PROCESS_FORK] = "no sched_process_fork tracepoint in this kernel's BTF",
	[PV_TP_SCHED_PROCESS_EXIT] = "no sched_process_exit tracepoint in this kernel's BTF",
	[PV_TP_MARK_VICTIM] = "no mark_victim tracepoint in this kernel's BTF",
	[PV_TP_SIGNAL_GENERATE] = "no signal_generate tracepoint in this kernel's BTF",
	[PV_TP_RSS_STAT] = "no rss_stat tracepoint in this kernel's BTF (5.5 on)",
	[PV_TP_MEMCG_RECLAIM_BEGIN] = "no mm_vmscan_memcg_reclaim_begin tracepoint in this kernel's BTF",
	[PV_TP_DIRECT_RECLAIM_BEGIN] = "no mm_vmscan_direct_reclaim_begin tracepoint in this kernel's BTF",
	[PV_TP_COUNT_MEMCG_EVENTS] = "no count_memcg_events tracepoint in this kernel; "
				     "OOM kills are counted from the cgroup's files",
};

static void skip(struct pv_choice *c, int prog, const char *why)
{
	c->load[prog] = false;
	c->skip_reason[prog] = why;
}

void pv_choose(const struct pv_facts *f, struct pv_choice *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < PV_N; i++) {
		c->load[i] = true;
		c->counted[i] = true;
		if (pv_progs[i].tp >= 0 && !f->tp[pv_progs[i].tp])
			skip(c, i, tp_missing[pv_progs[i].tp]);
	}

	/* mark_victim: the victim's task since 6.8, its pid before; exactly one variant counts */
	if (!f->tp[PV_TP_MARK_VICTIM]) {
		c->counted[PV_MARK_VICTIM_PID] = false;
		c->load[PV_MARK_VICTIM_PID] = c->load[PV_OOM_SIGKILL] = false;
		c->counted[PV_OOM_SIGKILL] = false;
		c->skip_reason[PV_MARK_VICTIM_PID] = c->skip_reason[PV_OOM_SIGKILL] = NULL;
	} else if (f->mark_victim == PV_ARG_TASK) {
		c->load[PV_MARK_VICTIM_PID] = c->load[PV_OOM_SIGKILL] = false;
		c->counted[PV_MARK_VICTIM_PID] = c->counted[PV_OOM_SIGKILL] = false;
		c->oom_variant = "victim task from mark_victim";
	} else if (f->mark_victim == PV_ARG_INT) {
		c->load[PV_MARK_VICTIM_TASK] = false;
		c->counted[PV_MARK_VICTIM_TASK] = false;
		c->oom_variant = c->load[PV_OOM_SIGKILL] ? "victim pid from mark_victim, task from the OOM killer's SIGKILL"
							 : "victim pid from mark_victim, task only when it is the allocator";
	} else {
		skip(c, PV_MARK_VICTIM_TASK, "mark_victim passes neither a task nor a pid in this kernel");
		c->load[PV_MARK_VICTIM_PID] = c->load[PV_OOM_SIGKILL] = false;
		c->counted[PV_MARK_VICTIM_PID] = c->counted[PV_OOM_SIGKILL] = false;
	}

	/* mm->rss_stat, read by the RSS steps and the OOM victim's RSS; the BPF side picks the same layout by CO-RE */
	if (f->mm_rss_stat_struct)
		c->rss_variant = "atomic mm counters (before 6.2)";
	else if (f->rss_stat_percpu)
		c->rss_variant = "per-CPU mm counters (6.2 on)";
	else
		skip(c, PV_RSS_STAT, "unknown layout of mm->rss_stat in this kernel");

	if (!f->want_memcg_events) {
		c->load[PV_MEMCG_EVENTS] = false;
		c->counted[PV_MEMCG_EVENTS] = false;
		c->skip_reason[PV_MEMCG_EVENTS] = NULL;
	}
}

int pv_missing_essentials(const bool attached[PV_N], char *buf, size_t size)
{
	static const int lifecycle[] = { PV_EXEC, PV_FORK, PV_EXIT };
	size_t len = 0;
	int n = 0;

	if (size)
		buf[0] = 0;
	for (size_t i = 0; i < sizeof(lifecycle) / sizeof(lifecycle[0]); i++) {
		if (attached[lifecycle[i]])
			continue;
		if (len < size)
			len += (size_t)snprintf(buf + len, size - len, "%s%s", n ? ", " : "", pv_progs[lifecycle[i]].what);
		n++;
	}
	if (!attached[PV_MARK_VICTIM_TASK] && !attached[PV_MARK_VICTIM_PID]) {
		if (len < size)
			snprintf(buf + len, size - len, "%s%s", n ? ", " : "", "oom victim");
		n++;
	}
	return n;
}

int pv_prog_by_name(const char *name)
{
	for (int i = 0; i < PV_N; i++)
		if (!strcmp(pv_progs[i].prog, name))
			return i;
	return -1;
}
