// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "carry.h"
#include "common.h"

#define S(x) ((uint64_t)(x) * 1000000000ULL)

static void fill(struct carry *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->boot_id, sizeof(c->boot_id), "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0");
	c->pid = 4242;
	snprintf(c->url, sizeof(c->url), "http://127.0.0.1:8188");
	c->written_ns = S(1000);
	c->server_pid = 777;
	c->server_start_ns = S(12);
	c->requeue_pending = true;
	snprintf(c->requeue_id, sizeof(c->requeue_id), "a1b2c3d4-0000-4000-8000-000000000001");
	c->requeue_number = 17;
	c->requeue_prompt_json = strdup("{\"1\":{\"class_type\":\"KSampler\",\"inputs\":{\"seed\":3}}}");
	c->requeue_extra_json = strdup("{\"client_id\":\"ui-1\"}");
	c->requeue_deadline_ns = S(1030);
	snprintf(c->requeued_id, sizeof(c->requeued_id), "old-requeue");
	c->interrupt_sent_ns = S(999);
	policy_state_init(&c->ps);
	c->ps.usage_pressure = true;
	c->ps.floor = POLICY_RUNG_INTERRUPT_REQUEUE;
	c->ps.awaiting = true;
	c->ps.last_rung = POLICY_RUNG_INTERRUPT_REQUEUE;
	c->ps.last_act_ns = S(999);
	c->ps.deadline_ns = S(1010);
	c->ps.acted[POLICY_RUNG_FREE_ALL] = true;
	c->ps.acted_ns[POLICY_RUNG_FREE_ALL] = S(990);
	c->ps.acted[POLICY_RUNG_INTERRUPT_REQUEUE] = true;
	c->ps.acted_ns[POLICY_RUNG_INTERRUPT_REQUEUE] = S(999);
	c->ps.restart_mark_valid = true;
	c->ps.restart_mark = 5;
	c->ps.prev_usage_bytes = UINT64_MAX - 1; /* the whole range survives the text */
	snprintf(c->giveup.e[3].prompt_id, sizeof(c->giveup.e[3].prompt_id), "big-one");
	c->giveup.e[3].stops = 1;
	c->giveup.e[3].conclusive = true;
	c->giveup.e[3].need_bytes = 5ULL << 30;
	c->giveup.e[3].floor_bytes = 25ULL << 20;
	c->giveup.e[3].seen_ns = S(998);
	c->generations_completed = 9;
	snprintf(c->free_pending_prompt, sizeof(c->free_pending_prompt), "a1b2c3d4-0000-4000-8000-000000000001");
	c->free_sent_usage_bytes = 3ULL << 30;
	c->floor_valid = true;
	c->floor_bytes = 1ULL << 30;
	c->floor_gens = 8;
	c->restart_sent_ns = 0;
	c->resend_free = true;
	c->resend_free_memory = true;
	snprintf(c->resend_interrupt, sizeof(c->resend_interrupt), "a1b2c3d4-0000-4000-8000-000000000001");
	c->incident_json = strdup("{\"version\":1,\"instance\":\"default\"}");
}

static void test_round_trip(void **state)
{
	struct carry c, back;
	char *text = NULL, *again = NULL;
	(void)state;

	fill(&c);
	assert_int_equal(carry_to_json(&c, &text), 0);
	assert_int_equal(carry_parse(text, strlen(text), &back), 0);
	assert_string_equal(back.boot_id, c.boot_id);
	assert_int_equal(back.pid, 4242);
	assert_string_equal(back.url, "http://127.0.0.1:8188");
	assert_int_equal(back.written_ns, S(1000));
	assert_int_equal(back.server_pid, 777);
	assert_int_equal(back.server_start_ns, S(12));
	assert_true(back.requeue_pending);
	assert_string_equal(back.requeue_id, c.requeue_id);
	assert_int_equal(back.requeue_number, 17);
	assert_string_equal(back.requeue_prompt_json, c.requeue_prompt_json);
	assert_string_equal(back.requeue_extra_json, c.requeue_extra_json);
	assert_int_equal(back.requeue_deadline_ns, S(1030));
	assert_string_equal(back.requeued_id, "old-requeue");
	assert_int_equal(back.interrupt_sent_ns, S(999));
	/* the policy's state, every byte of it (no padding in it holds anything: both were zeroed) */
	assert_memory_equal(&back.ps, &c.ps, sizeof(c.ps));
	assert_memory_equal(&back.giveup, &c.giveup, sizeof(c.giveup));
	assert_int_equal(back.generations_completed, 9);
	assert_string_equal(back.free_pending_prompt, c.free_pending_prompt);
	assert_int_equal(back.free_sent_usage_bytes, 3ULL << 30);
	assert_true(back.floor_valid);
	assert_int_equal(back.floor_bytes, 1ULL << 30);
	assert_int_equal(back.floor_gens, 8);
	assert_string_equal(back.incident_json, c.incident_json);
	assert_true(back.resend_free);
	assert_false(back.resend_unload);
	assert_true(back.resend_free_memory);
	assert_string_equal(back.resend_interrupt, c.resend_interrupt);
	/* and the text of what was read back is the text it was read from */
	assert_int_equal(carry_to_json(&back, &again), 0);
	assert_string_equal(again, text);
	free(text);
	free(again);
	carry_free(&back);
	carry_free(&c);
	carry_free(&c); /* twice is fine */

	/* nothing in flight: no requeue prompt, no incident */
	memset(&c, 0, sizeof(c));
	c.pid = 1;
	policy_state_init(&c.ps);
	assert_int_equal(carry_to_json(&c, &text), 0);
	assert_int_equal(carry_parse(text, strlen(text), &back), 0);
	assert_false(back.requeue_pending);
	assert_null(back.requeue_prompt_json);
	assert_null(back.incident_json);
	free(text);
	carry_free(&back);
}

/* text with one part replaced: every way a file can be wrong is refused whole */
static char *mutate(const char *text, const char *from, const char *to)
{
	const char *p = strstr(text, from);
	char *out;

	if (!p)
		fail_msg("'%s' not in %s", from, text);
	out = malloc(strlen(text) + strlen(to) + 1);
	assert_non_null(out);
	sprintf(out, "%.*s%s%s", (int)(p - text), text, to, p + strlen(from));
	return out;
}

static void test_refused(void **state)
{
	static const struct {
		const char *from, *to;
	} cases[] = {
		{ "\"version\":1", "\"version\":2" },
		{ "\"version\":1", "\"version\":\"1\"" },
		{ "\"pid\":4242", "\"pid\":0" },
		{ "\"url\":\"http://127.0.0.1:8188\"", "\"url\":8188" },
		{ "\"pid\":4242", "\"pid\":-5" },
		{ "\"server_pid\":777", "\"server_pid\":4294967296" },
		{ "\"floor\":4", "\"floor\":7" },          /* no such rung */
		{ "\"last_rung\":4", "\"last_rung\":-1" },
		{ "\"awaiting\":true", "\"awaiting\":1" },
		{ "\"deadline_ns\":", "\"deadline_nz\":" },   /* a field missing */
		{ "\"acted\":[false,false,false,true", "\"acted\":[false,false,true" }, /* one rung short */
		{ "\"requeue_prompt\":{", "\"requeue_prompt\":[{" }, /* (and so unbalanced: not JSON at all) */
		{ "\"requeue_prompt\":", "\"requeue_prompt_x\":" }, /* a requeue owed without its prompt */
		{ "\"slot\":3", "\"slot\":32" },
		{ "\"stops\":1", "\"stops\":-1" },
		{ "\"conclusive\":true", "\"fresh\":true" }, /* a give-up entry of the format before the evidence */
		{ "\"prompt_id\":\"big-one\"", "\"prompt_id\":\"\"" },
		{ "\"incident\":\"", "\"incident\":{\"x\":\"" },
		{ "\"boot_id\":\"0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\"",
		  "\"boot_id\":\"0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0-and-then-some-more\"" },
	};
	struct carry c, back;
	char *text = NULL;
	(void)state;

	fill(&c);
	assert_int_equal(carry_to_json(&c, &text), 0);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *bad = mutate(text, cases[i].from, cases[i].to);
		int r = carry_parse(bad, strlen(bad), &back);

		if (r != -EBADMSG)
			fail_msg("case %zu (%s -> %s): %d, want -EBADMSG", i, cases[i].from, cases[i].to, r);
		assert_int_equal(back.pid, 0); /* nothing half-filled */
		free(bad);
	}
	/* not JSON, trailing garbage, nothing */
	assert_int_equal(carry_parse("{", 1, &back), -EBADMSG);
	{
		size_t n = strlen(text);
		char *tail = malloc(n + 3);

		assert_non_null(tail);
		memcpy(tail, text, n);
		memcpy(tail + n, "{}", 3);
		assert_int_equal(carry_parse(tail, n + 2, &back), -EBADMSG);
		free(tail);
	}
	assert_int_equal(carry_parse(NULL, 0, &back), -EBADMSG);
	assert_int_equal(carry_parse(text, strlen(text), NULL), -EINVAL);
	free(text);
	/* and a carry that cannot be written is said so */
	c.ps.floor = (enum policy_rung)POLICY_RUNG_COUNT;
	assert_int_equal(carry_to_json(&c, &text), -EINVAL);
	c.ps.floor = POLICY_RUNG_NONE;
	free(c.requeue_prompt_json);
	c.requeue_prompt_json = strdup("[1]");
	assert_int_equal(carry_to_json(&c, &text), -EINVAL);
	assert_int_equal(carry_to_json(NULL, &text), -EINVAL);
	free(text);
	carry_free(&c);
}

static void test_applies(void **state)
{
	static const char *boot = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";
	static const struct {
		const char *boot;
		int32_t pid;
		uint64_t now_ns;
		bool want;
	} cases[] = {
		{ "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", 4242, S(1000), true },          /* at once */
		{ "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", 4242, S(1000) + CARRY_MAX_AGE_NS, true },
		{ "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", 4242, S(1000) + CARRY_MAX_AGE_NS + 1, false }, /* too old */
		{ "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", 4242, S(999), false },         /* written in the future */
		{ "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", 4243, S(1000), false },        /* another daemon */
		{ "ffffffff-4f50-6172-8394-a5b6c7d8e9f0", 4242, S(1000), false },        /* another boot */
		{ "", 4242, S(1000), false },
	};
	struct carry c = { .pid = 4242, .written_ns = S(1000) };
	(void)state;

	snprintf(c.boot_id, sizeof(c.boot_id), "%s", boot);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (carry_applies(&c, cases[i].boot, cases[i].pid, cases[i].now_ns) != cases[i].want)
			fail_msg("case %zu: want %d", i, cases[i].want);
	assert_false(carry_applies(NULL, boot, 4242, S(1000)));
	assert_false(carry_applies(&c, NULL, 4242, S(1000)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_applies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
