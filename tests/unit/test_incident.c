// SPDX-License-Identifier: GPL-2.0
/* core/incident.c and incident-render.c: the builder, incident.json both ways, the timeline and the SVG. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common.h"
#include "incident.h"
#include "incident-render.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

#include "incident-fixture.h"

static void test_timeline_exact(void **state)
{
	struct incident *inc = build();
	char *text;

	(void)state;
	assert_int_equal(incident_render_timeline(inc, &text), 0);
	assert_string_equal(text, expected_timeline);
	free(text);
	incident_free(inc);
}

static void test_timeline_edge_cases(void **state)
{
	_cleanup_incident_ struct incident *inc = NULL;
	char *text;

	(void)state;
	/* No samples, no events, no outcome; cgroup v1's "unlimited" is no limit. */
	assert_int_equal(incident_new("gpu/1", INCIDENT_TRIGGER_OOM_KILL, T0 + MSEC(40), &inc), 0);
	assert_int_equal(incident_render_timeline(inc, &text), 0);
	assert_string_equal(text, "oomsentry incident\n"
				  "instance:  gpu/1\n"
				  "trigger:   oom-kill\n"
				  "time:      2023-11-14 22:13:20 UTC\n"
				  "outcome:   unknown\n"
				  "memory:    no samples\n"
				  "\n"
				  "      time           usage  kind        event\n"
				  "    +0.0 s               -  trigger     oom-kill\n"
				  "\n"
				  "generations: none\n");
	free(text);

	assert_int_equal(incident_add_sample(inc, T0, MIB(100) + KIB(52), 9223372036854771712ULL), 0);
	assert_int_equal(incident_add_event(inc, T0, INCIDENT_EVENT_OOM_KILL, "OOM victim pid 1234\npython3\t\x01"), 0);
	assert_int_equal(incident_add_event(inc, T0 + SEC(2), INCIDENT_EVENT_NOTE, "after"), 0);
	assert_int_equal(incident_add_generation(inc, 7, NULL, 0, 0), 0);
	assert_int_equal(incident_set_outcome(inc, INCIDENT_OUTCOME_OOM_KILLED, "", 0), 0);
	assert_int_equal(incident_render_timeline(inc, &text), 0);
	assert_string_equal(text, "oomsentry incident\n"
				  "instance:  gpu/1\n"
				  "trigger:   oom-kill\n"
				  "time:      2023-11-14 22:13:20 UTC\n"
				  "outcome:   oom-killed\n"
				  "memory:    peak 100 MiB, no limit, 1 samples from +0.0 s to +0.0 s\n"
				  "\n"
				  "      time           usage  kind        event\n"
				  "    +0.0 s         100 MiB  oom-kill    OOM victim pid 1234 python3  \n"
				  "    +0.0 s         100 MiB  trigger     oom-kill\n"
				  "    +2.0 s         100 MiB  note        after\n"
				  "\n"
				  "generations:\n"
				  "   seq  prompt                                          peak        residual\n"
				  "     7  -                                                0 B             0 B\n");
	free(text);
}

static void test_builder_validation(void **state)
{
	char long_text[INCIDENT_TEXT_MAX + 100];
	struct incident *inc = (struct incident *)&inc;
	size_t i;

	(void)state;
	assert_int_equal(incident_new(NULL, INCIDENT_TRIGGER_USAGE, T0, &inc), -EINVAL);
	assert_null(inc);
	assert_int_equal(incident_new("", INCIDENT_TRIGGER_USAGE, T0, &inc), -EINVAL);
	assert_int_equal(incident_new("x", (enum incident_trigger)99, T0, &inc), -EINVAL);
	assert_int_equal(incident_new("x", INCIDENT_TRIGGER_USAGE, T0, NULL), -EINVAL);
	memset(long_text, 'i', INCIDENT_INSTANCE_MAX + 1);
	long_text[INCIDENT_INSTANCE_MAX + 1] = '\0';
	assert_int_equal(incident_new(long_text, INCIDENT_TRIGGER_USAGE, T0, &inc), -EINVAL);
	long_text[INCIDENT_INSTANCE_MAX] = '\0';
	assert_int_equal(incident_new(long_text, INCIDENT_TRIGGER_USAGE, T0, &inc), 0);
	incident_free(inc);

	assert_int_equal(incident_new("x", INCIDENT_TRIGGER_RECLAIM, T0, &inc), 0);
	assert_int_equal(incident_add_sample(NULL, 0, 0, 0), -EINVAL);
	assert_int_equal(incident_add_event(inc, T0, INCIDENT_EVENT_NOTE, NULL), -EINVAL);
	assert_int_equal(incident_add_event(inc, T0, (enum incident_event_kind)42, "x"), -EINVAL);
	assert_int_equal(incident_add_eventf(inc, T0, INCIDENT_EVENT_NOTE, NULL), -EINVAL);
	assert_int_equal(incident_add_generation(NULL, 1, "p", 0, 0), -EINVAL);
	assert_int_equal(incident_set_outcome(inc, (enum incident_outcome)9, "x", 0), -EINVAL);
	assert_int_equal(incident_set_outcome(NULL, INCIDENT_OUTCOME_FAILED, "x", 0), -EINVAL);

	/* Sanitizing: one line of valid UTF-8, truncated without splitting a character. */
	assert_int_equal(incident_add_event(inc, T0, INCIDENT_EVENT_NOTE, "a\nb\tc\x01\xff \xc3\xa9\xe2\x82"), 0);
	assert_string_equal(inc->events[0].text, "a b c ? \xc3\xa9??");
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	assert_int_equal(incident_add_event(inc, T0, INCIDENT_EVENT_NOTE, long_text), 0);
	assert_int_equal(strlen(inc->events[1].text), INCIDENT_TEXT_MAX);
	memcpy(long_text + INCIDENT_TEXT_MAX - 1, "\xc3\xa9", 3);
	assert_int_equal(incident_add_event(inc, T0, INCIDENT_EVENT_NOTE, long_text), 0);
	assert_int_equal(strlen(inc->events[2].text), INCIDENT_TEXT_MAX - 1);

	/* Stable ordering by time. */
	assert_int_equal(incident_add_event(inc, T0 - 1, INCIDENT_EVENT_ACTION, "earlier"), 0);
	assert_string_equal(inc->events[0].text, "earlier");
	assert_string_equal(inc->events[1].text, "a b c ? \xc3\xa9??");

	/* Capacity. */
	for (i = inc->n_events; i < INCIDENT_MAX_EVENTS; i++)
		assert_int_equal(incident_add_event(inc, T0 + i, INCIDENT_EVENT_NOTE, "e"), 0);
	assert_int_equal(incident_add_event(inc, T0, INCIDENT_EVENT_NOTE, "one too many"), -ENOSPC);
	for (i = 0; i < INCIDENT_MAX_SAMPLES; i++)
		assert_int_equal(incident_add_sample(inc, T0 + i, i, 0), 0);
	assert_int_equal(incident_add_sample(inc, T0, 0, 0), -ENOSPC);
	for (i = 0; i < INCIDENT_MAX_GENERATIONS; i++)
		assert_int_equal(incident_add_generation(inc, i, "p", 0, 0), 0);
	assert_int_equal(incident_add_generation(inc, 0, "p", 0, 0), -ENOSPC);
	incident_free(inc);
	incident_free(NULL);
}

static void test_strings(void **state)
{
	static const struct {
		int (*from)(const char *);
		const char *text;
		int value;
	} cases[] = {
		{ incident_trigger_from_string, "forecast", INCIDENT_TRIGGER_FORECAST },
		{ incident_trigger_from_string, "usage", INCIDENT_TRIGGER_USAGE },
		{ incident_trigger_from_string, "reclaim", INCIDENT_TRIGGER_RECLAIM },
		{ incident_trigger_from_string, "oom-kill", INCIDENT_TRIGGER_OOM_KILL },
		{ incident_trigger_from_string, "oom", -EINVAL },
		{ incident_trigger_from_string, NULL, -EINVAL },
		{ incident_event_kind_from_string, "generation", INCIDENT_EVENT_GENERATION },
		{ incident_event_kind_from_string, "oom-kill", INCIDENT_EVENT_OOM_KILL },
		{ incident_event_kind_from_string, "", -EINVAL },
		{ incident_outcome_from_string, "dry-run", INCIDENT_OUTCOME_DRY_RUN },
		{ incident_outcome_from_string, "oom-killed", INCIDENT_OUTCOME_OOM_KILLED },
		{ incident_outcome_from_string, "PREVENTED", -EINVAL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++)
		assert_int_equal(cases[i].from(cases[i].text), cases[i].value);
	assert_string_equal(incident_trigger_to_string(INCIDENT_TRIGGER_OOM_KILL), "oom-kill");
	assert_null(incident_trigger_to_string(_INCIDENT_TRIGGER_MAX));
	assert_null(incident_event_kind_to_string((enum incident_event_kind)-1));
	assert_null(incident_outcome_to_string(_INCIDENT_OUTCOME_MAX));
}

static void test_from_json(void **state)
{
#define HEAD "{\"format\": \"oomsentry-incident\", \"version\": 1, \"instance\": \"i\", \"trigger\": \"usage\", " \
	     "\"ts_ns\": 5"
	static const struct {
		const char *json;
		int r;
	} cases[] = {
		{ HEAD "}", 0 },
		{ HEAD "} \n", 0 },
		{ HEAD ", \"samples\": [], \"events\": null, \"generations\": []}", 0 },
		{ HEAD ", \"samples\": [{\"ts_ns\": 1, \"usage_bytes\": 18446744073709551615}]}", 0 },
		{ HEAD ", \"events\": [{\"ts_ns\": 1, \"kind\": \"from-the-future\", \"text\": \"x\"}]}", 0 },
		{ HEAD ", \"outcome\": {\"result\": \"new-kind\"}}", 0 },
		{ HEAD "} x", -EBADMSG },
		{ HEAD, -EBADMSG },
		{ "[]", -EBADMSG },
		{ "", -EBADMSG },
		{ "{\"format\": \"oomsentry-incident\", \"version\": 2, \"instance\": \"i\", \"trigger\": \"usage\", "
		  "\"ts_ns\": 5}", -EBADMSG },
		{ "{\"format\": \"oomsentry-incident\", \"version\": 1, \"trigger\": \"usage\", \"ts_ns\": 5}", -EBADMSG },
		{ "{\"format\": \"oomsentry-incident\", \"version\": 1, \"instance\": \"\", \"trigger\": \"usage\", "
		  "\"ts_ns\": 5}", -EBADMSG },
		{ "{\"format\": \"oomsentry-incident\", \"version\": 1, \"instance\": \"i\", \"trigger\": \"boom\", "
		  "\"ts_ns\": 5}", -EBADMSG },
		{ "{\"format\": \"oomsentry-incident\", \"version\": 1, \"instance\": \"i\", \"trigger\": \"usage\", "
		  "\"ts_ns\": -5}", -EBADMSG },
		{ "{\"format\": \"oomsentry-incident\", \"version\": 1, \"instance\": \"i\", \"trigger\": \"usage\", "
		  "\"ts_ns\": \"5\"}", -EBADMSG },
		{ HEAD ", \"samples\": {}}", -EBADMSG },
		{ HEAD ", \"samples\": [1]}", -EBADMSG },
		{ HEAD ", \"samples\": [{\"ts_ns\": 1}]}", -EBADMSG },
		{ HEAD ", \"samples\": [{\"ts_ns\": 1, \"usage_bytes\": -1}]}", -EBADMSG },
		{ HEAD ", \"samples\": [{\"ts_ns\": 1, \"usage_bytes\": 1.5}]}", -EBADMSG },
		{ HEAD ", \"events\": [{\"ts_ns\": 1, \"kind\": \"note\"}]}", -EBADMSG },
		{ HEAD ", \"events\": [{\"ts_ns\": 1, \"kind\": 3, \"text\": \"x\"}]}", -EBADMSG },
		{ HEAD ", \"generations\": [{\"prompt_id\": \"p\"}]}", -EBADMSG },
		{ HEAD ", \"outcome\": \"prevented\"}", -EBADMSG },
		{ HEAD ", \"outcome\": {\"text\": \"x\"}}", -EBADMSG },
	};
	struct incident *inc;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int r = incident_from_json(cases[i].json, &inc);

		if (r != cases[i].r)
			fail_msg("case %zu (%s): got %d, want %d", i, cases[i].json, r, cases[i].r);
		if (r == 0)
			assert_non_null(inc);
		else
			assert_null(inc);
		incident_free(inc);
	}
	assert_int_equal(incident_from_json(NULL, &inc), -EBADMSG);
	assert_int_equal(incident_from_json("{}", NULL), -EINVAL);

	/* Unknown kinds and outcomes degrade to note/unknown instead of hiding the report. */
	assert_int_equal(incident_from_json(HEAD ", \"events\": [{\"ts_ns\": 1, \"kind\": \"x\", \"text\": \"t\"}], "
					    "\"outcome\": {\"result\": \"x\", \"freed_bytes\": 7}}", &inc), 0);
	assert_int_equal(inc->events[0].kind, INCIDENT_EVENT_NOTE);
	assert_int_equal(inc->outcome, INCIDENT_OUTCOME_UNKNOWN);
	assert_true(inc->freed_bytes == 7);
	incident_free(inc);
#undef HEAD
}

static void test_json_round_trip(void **state)
{
	_cleanup_incident_ struct incident *inc = build(), *back = NULL;
	char *a, *b;

	(void)state;
	assert_int_equal(incident_to_json(inc, &a), 0);
	assert_int_equal(incident_from_json(a, &back), 0);
	assert_int_equal(incident_to_json(back, &b), 0);
	assert_string_equal(a, b);
	free(a);
	free(b);
	assert_int_equal(incident_to_json(NULL, &a), -EINVAL);
	assert_int_equal(incident_render_svg(inc, NULL), -EINVAL);
	assert_int_equal(incident_render_timeline(NULL, &a), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timeline_exact),
		cmocka_unit_test(test_timeline_edge_cases),
		cmocka_unit_test(test_builder_validation),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_from_json),
		cmocka_unit_test(test_json_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
