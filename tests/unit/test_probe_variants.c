// SPDX-License-Identifier: GPL-2.0
/* Which BPF program variant each kernel gets, from the facts its BTF gives (probe_variants.c). The kernels are the
 * ones vmtest boots: Debian 11 (5.10), 12 (6.1), 13 (6.12), and a current one (6.18, the test machines). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "probe_variants.h"

#define assert_contains(hay, needle)                                                                    \
	do {                                                                                            \
		if (!(hay) || !strstr((hay), (needle)))                                                 \
			fail_msg("\"%s\" does not contain \"%s\"", (hay) ? (hay) : "(null)", (needle)); \
	} while (0)

static struct pv_facts all_tracepoints(void)
{
	struct pv_facts f;

	memset(&f, 0, sizeof(f));
	for (int i = 0; i < PV_TP_N; i++)
		f.tp[i] = true;
	return f;
}

/* 6.18: mark_victim(task, uid), rss_stat as percpu_counter[], count_memcg_events present */
static struct pv_facts kernel_6_18(void)
{
	struct pv_facts f = all_tracepoints();

	f.mark_victim = PV_ARG_TASK;
	f.rss_stat_percpu = true;
	return f;
}

/* 6.12 (trixie): the task variant of mark_victim (6.8 on), per-CPU counters (6.2 on), no count_memcg_events */
static struct pv_facts kernel_6_12(void)
{
	struct pv_facts f = kernel_6_18();

	f.tp[PV_TP_COUNT_MEMCG_EVENTS] = false;
	return f;
}

/* 6.1 (bookworm): mark_victim(int pid), struct mm_rss_stat of atomics */
static struct pv_facts kernel_6_1(void)
{
	struct pv_facts f = kernel_6_12();

	f.mark_victim = PV_ARG_INT;
	f.rss_stat_percpu = false;
	f.mm_rss_stat_struct = true;
	return f;
}

/* 5.10 (bullseye): as 6.1 for oomsentry's purposes */
static struct pv_facts kernel_5_10(void)
{
	return kernel_6_1();
}

static int counted(const struct pv_choice *c)
{
	int n = 0;

	for (int i = 0; i < PV_N; i++)
		n += c->counted[i];
	return n;
}

static void assert_loaded_exactly(const struct pv_choice *c, const int *progs, int n)
{
	for (int i = 0; i < PV_N; i++) {
		bool want = false;

		for (int j = 0; j < n; j++)
			want |= progs[j] == i;
		if (c->load[i] != want)
			fail_msg("%s: load=%d, expected %d", pv_progs[i].prog, c->load[i], want);
	}
}

static void test_mark_victim_task_variant(void **state)
{
	struct pv_facts f = kernel_6_12();
	struct pv_choice c;

	(void)state;
	pv_choose(&f, &c);
	assert_true(c.load[PV_MARK_VICTIM_TASK]);
	assert_false(c.load[PV_MARK_VICTIM_PID]);
	assert_false(c.load[PV_OOM_SIGKILL]);
	/* the variant not chosen is not a missing probe */
	assert_false(c.counted[PV_MARK_VICTIM_PID]);
	assert_null(c.skip_reason[PV_MARK_VICTIM_PID]);
	assert_contains(c.oom_variant, "victim task");
}

static void test_mark_victim_pid_variant(void **state)
{
	struct pv_facts f = kernel_6_1();
	struct pv_choice c;

	(void)state;
	pv_choose(&f, &c);
	assert_false(c.load[PV_MARK_VICTIM_TASK]);
	assert_false(c.counted[PV_MARK_VICTIM_TASK]);
	assert_true(c.load[PV_MARK_VICTIM_PID]);
	/* the pid alone names no task: the OOM killer's SIGKILL does */
	assert_true(c.load[PV_OOM_SIGKILL]);
	assert_true(c.counted[PV_OOM_SIGKILL]);
	assert_contains(c.oom_variant, "SIGKILL");
}

static void test_mark_victim_pid_without_signal_tracepoint(void **state)
{
	struct pv_facts f = kernel_6_1();
	struct pv_choice c;

	(void)state;
	f.tp[PV_TP_SIGNAL_GENERATE] = false;
	pv_choose(&f, &c);
	assert_true(c.load[PV_MARK_VICTIM_PID]);
	assert_false(c.load[PV_OOM_SIGKILL]);
	assert_contains(c.skip_reason[PV_OOM_SIGKILL], "signal_generate");
	assert_contains(c.oom_variant, "only when it is the allocator");
}

static void test_mark_victim_unknown_prototype_is_skipped(void **state)
{
	struct pv_facts f = kernel_6_18();
	struct pv_choice c;

	(void)state;
	f.mark_victim = PV_ARG_UNKNOWN;
	pv_choose(&f, &c);
	assert_false(c.load[PV_MARK_VICTIM_TASK] || c.load[PV_MARK_VICTIM_PID] || c.load[PV_OOM_SIGKILL]);
	assert_contains(c.skip_reason[PV_MARK_VICTIM_TASK], "neither a task nor a pid");
	assert_null(c.oom_variant);
}

static void test_no_mark_victim_tracepoint(void **state)
{
	struct pv_facts f = kernel_6_18();
	struct pv_choice c;

	(void)state;
	f.tp[PV_TP_MARK_VICTIM] = false;
	pv_choose(&f, &c);
	assert_false(c.load[PV_MARK_VICTIM_TASK] || c.load[PV_MARK_VICTIM_PID]);
	/* counted once, with its reason */
	assert_true(c.counted[PV_MARK_VICTIM_TASK]);
	assert_false(c.counted[PV_MARK_VICTIM_PID]);
	assert_contains(c.skip_reason[PV_MARK_VICTIM_TASK], "mark_victim");
}

static void test_rss_percpu_counters(void **state)
{
	struct pv_facts f = kernel_6_12();
	struct pv_choice c;

	(void)state;
	pv_choose(&f, &c);
	assert_true(c.load[PV_RSS_STAT]);
	assert_contains(c.rss_variant, "per-CPU");
}

static void test_rss_atomic_counters(void **state)
{
	struct pv_facts f = kernel_6_1();
	struct pv_choice c;

	(void)state;
	pv_choose(&f, &c);
	assert_true(c.load[PV_RSS_STAT]);
	assert_contains(c.rss_variant, "atomic");
}

static void test_rss_unknown_layout_is_skipped(void **state)
{
	struct pv_facts f = kernel_6_18();
	struct pv_choice c;

	(void)state;
	f.rss_stat_percpu = false;
	pv_choose(&f, &c);
	assert_false(c.load[PV_RSS_STAT]);
	assert_true(c.counted[PV_RSS_STAT]);
	assert_contains(c.skip_reason[PV_RSS_STAT], "rss_stat");
	/* the rest is unaffected */
	assert_true(c.load[PV_EXIT] && c.load[PV_MARK_VICTIM_TASK]);
}

static void test_memcg_events_opt_in(void **state)
{
	struct pv_facts f = kernel_6_18();
	struct pv_choice c;

	(void)state;
	pv_choose(&f, &c);
	assert_false(c.load[PV_MEMCG_EVENTS]);
	assert_false(c.counted[PV_MEMCG_EVENTS]);
	f.want_memcg_events = true;
	pv_choose(&f, &c);
	assert_true(c.load[PV_MEMCG_EVENTS]);
	assert_true(c.counted[PV_MEMCG_EVENTS]);
}

static void test_memcg_events_wanted_but_missing(void **state)
{
	struct pv_facts f = kernel_6_12();
	struct pv_choice c;

	(void)state;
	f.want_memcg_events = true;
	pv_choose(&f, &c);
	assert_false(c.load[PV_MEMCG_EVENTS]);
	assert_true(c.counted[PV_MEMCG_EVENTS]);
	assert_contains(c.skip_reason[PV_MEMCG_EVENTS], "count_memcg_events");
}

/* The whole choice per kernel vmtest boots: what loads, and how many probes "n of N" counts. */
static void test_each_kernel(void **state)
{
	static const int task_set[] = { PV_EXEC, PV_FORK, PV_EXIT, PV_MARK_VICTIM_TASK, PV_RSS_STAT, PV_MEMCG_RECLAIM,
					PV_DIRECT_RECLAIM, PV_ENTER_MMAP, PV_EXIT_MMAP, PV_ENTER_MUNMAP };
	static const int pid_set[] = { PV_EXEC, PV_FORK, PV_EXIT, PV_MARK_VICTIM_PID, PV_OOM_SIGKILL, PV_RSS_STAT,
				       PV_MEMCG_RECLAIM, PV_DIRECT_RECLAIM, PV_ENTER_MMAP, PV_EXIT_MMAP,
				       PV_ENTER_MUNMAP };
	struct {
		struct pv_facts (*facts)(void);
		const int *set;
		int n;
	} kernels[] = {
		{ kernel_5_10, pid_set, 11 },
		{ kernel_6_1, pid_set, 11 },
		{ kernel_6_12, task_set, 10 },
		{ kernel_6_18, task_set, 10 },
	};

	(void)state;
	for (size_t k = 0; k < sizeof(kernels) / sizeof(kernels[0]); k++) {
		struct pv_facts f = kernels[k].facts();
		struct pv_choice c;

		pv_choose(&f, &c);
		assert_loaded_exactly(&c, kernels[k].set, kernels[k].n);
		assert_int_equal(counted(&c), kernels[k].n);
		for (int i = 0; i < PV_N; i++)
			if (c.load[i])
				assert_null(c.skip_reason[i]);
	}
}

static void test_missing_essentials(void **state)
{
	bool attached[PV_N];
	char buf[128];

	(void)state;
	for (int i = 0; i < PV_N; i++)
		attached[i] = true;
	attached[PV_MARK_VICTIM_PID] = false; /* the other variant is enough */
	attached[PV_RSS_STAT] = attached[PV_ENTER_MMAP] = false;
	assert_int_equal(pv_missing_essentials(attached, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");

	attached[PV_MARK_VICTIM_TASK] = false;
	assert_int_equal(pv_missing_essentials(attached, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "oom victim");

	attached[PV_EXIT] = false;
	assert_int_equal(pv_missing_essentials(attached, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "exit, oom victim");

	/* a short buffer is cut, never overrun */
	assert_int_equal(pv_missing_essentials(attached, buf, 4), 2);
	assert_string_equal(buf, "exi");
}

static void test_names(void **state)
{
	(void)state;
	assert_int_equal(pv_prog_by_name("handle_mark_victim_pid"), PV_MARK_VICTIM_PID);
	assert_int_equal(pv_prog_by_name("handle_rss_stat"), PV_RSS_STAT);
	assert_int_equal(pv_prog_by_name("handle_nothing"), -1);
	assert_int_equal(pv_prog_by_name(""), -1);
	for (int i = 0; i < PV_N; i++)
		assert_int_equal(pv_prog_by_name(pv_progs[i].prog), i);
	assert_string_equal(pv_tp_names[PV_TP_MARK_VICTIM], "mark_victim");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mark_victim_task_variant),
		cmocka_unit_test(test_mark_victim_pid_variant),
		cmocka_unit_test(test_mark_victim_pid_without_signal_tracepoint),
		cmocka_unit_test(test_mark_victim_unknown_prototype_is_skipped),
		cmocka_unit_test(test_no_mark_victim_tracepoint),
		cmocka_unit_test(test_rss_percpu_counters),
		cmocka_unit_test(test_rss_atomic_counters),
		cmocka_unit_test(test_rss_unknown_layout_is_skipped),
		cmocka_unit_test(test_memcg_events_opt_in),
		cmocka_unit_test(test_memcg_events_wanted_but_missing),
		cmocka_unit_test(test_each_kernel),
		cmocka_unit_test(test_missing_essentials),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
