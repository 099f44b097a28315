// SPDX-License-Identifier: GPL-2.0
/* Unit tests for learn.c: what an instance has shown, its time to effect per rung, and the file form. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common.h"
#include "learn.h"

#define MS (1000000ULL)

static void test_avg(void **state)
{
	struct learn_avg a = { 0 };

	(void)state;
	learn_avg_add(&a, 100);
	assert_int_equal(a.n, 1);
	assert_true(a.value == 100);
	learn_avg_add(&a, 200);
	assert_true(a.value == 150); /* a plain mean while young */
	learn_avg_add(&a, 300);
	assert_true(a.value == 200);
	learn_avg_add(&a, 1000); /* then a weight of 1/4 */
	assert_true(a.value == 400);
	/* garbage is ignored */
	learn_avg_add(&a, NAN);
	learn_avg_add(&a, -1);
	learn_avg_add(&a, INFINITY);
	learn_avg_add(&a, 1e30);
	learn_avg_add(NULL, 1);
	assert_int_equal(a.n, 4);
	assert_true(a.value == 400);
}

static void test_time_to_effect(void **state)
{
	struct learn_stats l;
	struct learn_now now = { 0 };
	uint64_t tte[POLICY_RUNG_COUNT];

	(void)state;
	learn_init(&l);
	/* nothing learnt: policy defaults (0) for all but a busy /free, which cannot be said */
	learn_time_to_effect(&l, &now, tte);
	for (unsigned r = 0; r < POLICY_RUNG_COUNT; r++)
		assert_int_equal(tte[r], 0);
	now.busy = true;
	now.running_elapsed_ms = 1000;
	learn_time_to_effect(&l, &now, tte);
	assert_true(tte[POLICY_RUNG_FREE_MODELS] == POLICY_TTE_UNKNOWN);
	assert_true(tte[POLICY_RUNG_FREE_ALL] == POLICY_TTE_UNKNOWN);

	/* progress from /ws: 25 % after 1 s leaves 3 s, plus the learnt 500 ms to apply */
	learn_note_free(&l, 1 << 30, 500);
	now.progress_known = true;
	now.progress = 0.25;
	learn_time_to_effect(&l, &now, tte);
	assert_int_equal(tte[POLICY_RUNG_FREE_MODELS], 3500 * MS);

	assert_int_equal(learn_running_ends_in_ns(&l, &now), 3000 * MS);
	/* earlier durations without progress: 10 s * 1.5 - 1 s elapsed + 0.5 s; expected to end in 9 s */
	now.progress_known = false;
	assert_int_equal(learn_running_ends_in_ns(&l, &now), 0);
	learn_note_generation(&l, 10000, false, 0);
	learn_time_to_effect(&l, &now, tte);
	assert_int_equal(tte[POLICY_RUNG_FREE_MODELS], 14500 * MS);
	assert_int_equal(learn_running_ends_in_ns(&l, &now), 9000 * MS);
	/* it ends within the longest recent duration: a 14 s prompt, then two of 10 s (14 * 0.81 = 11.3 s) */
	learn_note_generation(&l, 14000, false, 0);
	assert_int_equal(learn_running_ends_in_ns(&l, &now), 13000 * MS);
	learn_note_generation(&l, 10000, false, 0);
	learn_note_generation(&l, 10000, false, 0);
	assert_int_equal(learn_running_ends_in_ns(&l, &now), (uint64_t)(14000 * 0.81 - 1000) * MS);
	/* a prompt running far past what prompts took: unknown again */
	now.running_elapsed_ms = 17000;
	learn_time_to_effect(&l, &now, tte);
	assert_true(tte[POLICY_RUNG_FREE_MODELS] == POLICY_TTE_UNKNOWN);
	assert_int_equal(learn_running_ends_in_ns(&l, &now), 0);
	/* idle: just the apply time */
	now.busy = false;
	learn_time_to_effect(&l, &now, tte);
	assert_int_equal(tte[POLICY_RUNG_FREE_MODELS], 500 * MS);

	/* interrupt: node boundary + apply; restart: stop to release, else the grace as a prior; reap: grace */
	assert_int_equal(tte[POLICY_RUNG_INTERRUPT_REQUEUE], 0);
	now.stop_grace_ms = 3000;
	now.orphan_grace_ms = 5000;
	learn_time_to_effect(&l, &now, tte);
	assert_int_equal(tte[POLICY_RUNG_RESTART], 4000 * MS);
	assert_int_equal(tte[POLICY_RUNG_REAP_ORPHANS], 6000 * MS);
	learn_note_interrupt(&l, 800);
	learn_note_restart(&l, 1200, 9000, 300 << 20);
	learn_time_to_effect(&l, &now, tte);
	assert_int_equal(tte[POLICY_RUNG_INTERRUPT_REQUEUE], 1300 * MS);
	assert_int_equal(tte[POLICY_RUNG_RESTART], 1200 * MS);
	assert_int_equal(tte[POLICY_RUNG_KILL], 0);

	learn_time_to_effect(NULL, &now, tte);
	assert_int_equal(tte[POLICY_RUNG_RESTART], 0);
	learn_time_to_effect(&l, &now, NULL);
}

static void test_generations_per_restart(void **state)
{
	struct learn_stats l;

	(void)state;
	learn_init(&l);
	assert_int_equal(learn_generations_per_restart(&l, 1ULL << 30, 0.95), -1);
	/* fresh server 200 MiB, a generation from clean costs 400 MiB, 100 MiB stays per generation; limit 1 GiB,
	 * threshold 972.8 MiB: generation k peaks at 200 + (k-1)*100 + 400 -> 4 fit (the 4th peaks at 900) */
	learn_note_restart(&l, 1000, 0, 200ULL << 20);
	learn_note_generation(&l, 5000, true, 400ULL << 20);
	learn_note_floors(&l, 200ULL << 20, 400ULL << 20, 2);
	assert_int_equal(learn_generations_per_restart(&l, 1ULL << 30, 0.95), 4);
	/* no leak: no bound */
	learn_init(&l);
	learn_note_restart(&l, 1000, 0, 200ULL << 20);
	learn_note_generation(&l, 5000, true, 400ULL << 20);
	learn_note_floors(&l, 400ULL << 20, 300ULL << 20, 1);
	assert_int_equal(learn_generations_per_restart(&l, 1ULL << 30, 0.95), -1);
	/* not even one fits */
	learn_note_floors(&l, 0, 1ULL << 30, 1);
	learn_note_generation(&l, 5000, true, 2ULL << 30);
	assert_int_equal(learn_generations_per_restart(&l, 1ULL << 30, 0.95), 0);
	assert_int_equal(learn_generations_per_restart(&l, 0, 0.95), -1);
	assert_int_equal(learn_generations_per_restart(&l, 1ULL << 30, NAN), -1);
}

/* A SIGKILL's stop is learnt apart from a SIGTERM's: what the brink's last resort needs. */
static void test_kill_tte(void **state)
{
	struct learn_stats l;

	(void)state;
	learn_init(&l);
	assert_int_equal(learn_kill_tte_ns(&l), 0); /* never measured */
	assert_int_equal(learn_kill_tte_ns(NULL), 0);
	learn_note_restart(&l, 900, 2000, 0); /* a SIGTERM stop is not a kill */
	assert_int_equal(learn_kill_tte_ns(&l), 0);
	learn_note_kill(&l, 0); /* under a ms: 1 ms, 0 would read as "not measured" */
	assert_int_equal(learn_kill_tte_ns(&l), 1000000);
	learn_note_kill(&l, 8);
	assert_int_equal(learn_kill_tte_ns(&l), 4000000);
}

/* The event lag: a maximum forgetting by half every LEARN_LAG_HALF_LIFE_NS, not an average (one late look is what
 * lets the kernel in first). */
static void test_event_lag(void **state)
{
	const uint64_t ms = 1000000ULL, t0 = 1000ULL * 1000 * ms, hl = LEARN_LAG_HALF_LIFE_NS;
	struct learn_lag lag = { 0 };

	(void)state;
	assert_int_equal(learn_lag_get(&lag, t0), 0);
	assert_int_equal(learn_lag_get(NULL, t0), 0);
	learn_lag_add(&lag, 1 * ms, t0);
	learn_lag_add(&lag, 40 * ms, t0 + 1 * ms);
	learn_lag_add(&lag, 2 * ms, t0 + 2 * ms); /* a quick one does not lower it */
	assert_true(learn_lag_get(&lag, t0 + 2 * ms) > 39 * ms);
	/* a half-life later half of it is left, two later a quarter */
	assert_true(llabs((long long)learn_lag_get(&lag, t0 + 1 * ms + hl) - (long long)(20 * ms)) < 1000);
	assert_true(llabs((long long)learn_lag_get(&lag, t0 + 1 * ms + 2 * hl) - (long long)(10 * ms)) < 1000);
	/* a new spike above what is left takes over */
	learn_lag_add(&lag, 15 * ms, t0 + 1 * ms + 2 * hl);
	assert_int_equal(learn_lag_get(&lag, t0 + 1 * ms + 2 * hl), 15 * ms);
	/* a clock oddity or a stopped daemon is no lag of a look */
	learn_lag_add(&lag, 30ULL * 1000 * ms, t0 + 1 * ms + 2 * hl);
	assert_int_equal(learn_lag_get(&lag, t0 + 1 * ms + 2 * hl), 15 * ms);
	/* an event handled out of order (an earlier now) neither decays nor moves the clock back */
	learn_lag_add(&lag, 5 * ms, t0);
	assert_int_equal(learn_lag_get(&lag, t0 + 1 * ms + 2 * hl), 15 * ms);
}

static void test_format_parse(void **state)
{
	struct learn_stats l, back;
	char buf[16384], small[40];
	char name[LA_NAME_MAX + 20];

	(void)state;
	learn_init(&l);
	learn_note_free(&l, 437ULL << 20, 1500);
	learn_note_floors(&l, 100ULL << 20, 350ULL << 20, 1);
	learn_note_generation(&l, 7000, true, 512ULL << 20);
	learn_note_generation(&l, 5000, false, 0);
	learn_note_interrupt(&l, 900);
	learn_note_restart(&l, 1100, 8000, 180ULL << 20);
	learn_note_kill(&l, 3);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	assert_int_equal(la_costs_learn(&l.models, "checkpoint:flux dev.safetensors", 11ULL << 30, 7), 0);
	assert_int_equal(la_costs_learn(&l.models, name, 3, 8), 0);
	/* a name that would forge a line is left out of the file */
	assert_int_equal(la_costs_learn(&l.models, "checkpoint:x\nfree_apply_ms 1 1", 5, 9), 0);

	assert_true(learn_format(&l, buf, sizeof(buf)) > 0);
	assert_int_equal(strncmp(buf, "oomsentry-learn 1\nfree_released_bytes 458227712 1\n", 50), 0);
	assert_int_equal(learn_parse(buf, &back), 0);
	assert_true(back.free_released_bytes.value == l.free_released_bytes.value);
	assert_int_equal(back.free_released_bytes.n, 1);
	assert_true(back.gen_duration_ms.value == 6000 && back.gen_duration_ms.n == 2);
	assert_true(back.unreleasable_per_gen_bytes.value == (double)(250ULL << 20));
	assert_true(back.restart_stop_ms.value == 1100);
	assert_true(back.kill_stop_ms.value == 3 && back.kill_stop_ms.n == 1);
	assert_int_equal(learn_kill_tte_ns(&back), 3000000);
	assert_true(back.restart_back_ms.value == 8000);
	assert_true(back.interrupt_ms.value == 900);
	assert_true(back.clean_cost_bytes.value == (double)(512ULL << 20));
	assert_non_null(la_costs_find(&back.models, "checkpoint:flux dev.safetensors"));
	assert_int_equal(la_costs_find(&back.models, "checkpoint:flux dev.safetensors")->bytes, 11ULL << 30);
	assert_int_equal(la_costs_find(&back.models, "checkpoint:flux dev.safetensors")->last_used, 7);
	name[LA_NAME_MAX - 1] = 0; /* stored truncated */
	assert_non_null(la_costs_find(&back.models, name));
	assert_int_equal(la_costs_find(&back.models, name)->bytes, 3);
	assert_int_equal(back.models.n, 2);
	assert_true(back.free_apply_ms.value == 1500 && back.free_apply_ms.n == 1);

	/* too small: -ENOBUFS, still a string */
	assert_int_equal(learn_format(&l, small, sizeof(small)), -ENOBUFS);
	assert_true(strlen(small) < sizeof(small));
	assert_int_equal(learn_format(NULL, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(learn_format(&l, buf, 0), -EINVAL);

	/* damaged or foreign files */
	assert_int_equal(learn_parse("", &back), -EINVAL);
	assert_int_equal(learn_parse("oomsentry-learn 2\nfree_apply_ms 1 1\n", &back), -EINVAL);
	assert_int_equal(learn_parse("something else\n", &back), -EINVAL);
	assert_int_equal(learn_parse("oomsentry-learn 1", &back), -EINVAL);
	assert_int_equal(learn_parse(NULL, &back), -EINVAL);
	assert_int_equal(learn_parse(buf, NULL), -EINVAL);
	assert_int_equal(learn_parse("oomsentry-learn 1\n"
				     "free_apply_ms -5 1\n"
				     "free_released_bytes nan 1\n"
				     "gen_duration_ms 1e300 2\n"
				     "interrupt_ms 700 0\n"
				     "restart_stop_ms 800 99999999999\n"
				     "restart_back_ms 800 3 trailing\n"
				     "unknown_key 5 5\n"
				     "model 5 1\n"
				     "model x 1 2 name\n"
				     "model 5 0 2 name\n"
				     "clean_cost_bytes 1024 2\n"
				     "restart_floor_bytes 2048 1",
				     &back),
			 0);
	assert_int_equal(back.free_apply_ms.n, 0);
	assert_int_equal(back.free_released_bytes.n, 0);
	assert_int_equal(back.gen_duration_ms.n, 0);
	assert_int_equal(back.interrupt_ms.n, 0);
	assert_int_equal(back.restart_stop_ms.n, 0);
	assert_int_equal(back.restart_back_ms.n, 0);
	assert_true(back.clean_cost_bytes.value == 1024 && back.clean_cost_bytes.n == 2);
	assert_true(back.restart_floor_bytes.value == 2048);
	assert_int_equal(back.models.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_avg),
		cmocka_unit_test(test_time_to_effect),
		cmocka_unit_test(test_generations_per_restart),
		cmocka_unit_test(test_kill_tte),
		cmocka_unit_test(test_event_lag),
		cmocka_unit_test(test_format_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
