// SPDX-License-Identifier: GPL-2.0
/* core/metrics.c: the registry and its text exposition (no server, no libraries). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "common.h"
#include "metrics.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

static int setup(void **state)
{
	(void)state;
	metrics_reset();
	return 0;
}

static char *render(void)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(metrics_render(&text, &len), 0);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	return text;
}

static void test_render_exact(void **state)
{
	char labels[METRICS_LABELS_MAX];
	char *text;

	(void)state;
	assert_int_equal(metrics_describe_oomsentry(), 0);
	assert_int_equal(metrics_add_counter(METRIC_EVENTS_TOTAL, "type=\"exec\"", 1), 0);
	assert_int_equal(metrics_add_counter(METRIC_EVENTS_TOTAL, "type=\"oom\"", 1), 0);
	assert_int_equal(metrics_add_counter(METRIC_EVENTS_TOTAL, "type=\"exec\"", 2), 0);
	assert_int_equal(metrics_set_gauge(METRIC_TRACKED_PROCESSES, NULL, 7), 0);
	assert_int_equal(metrics_set_gauge(METRIC_TRACKED_PROCESSES, "", 5), 0);
	assert_true(metrics_labels(labels, sizeof(labels), "instance", "default", NULL) > 0);
	assert_int_equal(metrics_set_gauge(METRIC_MEMORY_USAGE_BYTES, labels, 8589934592.0), 0);
	assert_true(metrics_labels(labels, sizeof(labels), "instance", "default", "action", "unload_models", "result",
				   "ok", NULL) > 0);
	assert_int_equal(metrics_add_counter(METRIC_ACTIONS_TOTAL, labels, 1), 0);
	/* Undescribed family: TYPE from the first use, no HELP line. */
	assert_int_equal(metrics_set_gauge("oomsentry_test_ratio", NULL, 0.25), 0);

	text = render();
	assert_string_equal(text,
			    "# HELP oomsentry_events_total Events received from the kernel probes, by type.\n"
			    "# TYPE oomsentry_events_total counter\n"
			    "oomsentry_events_total{type=\"exec\"} 3\n"
			    "oomsentry_events_total{type=\"oom\"} 1\n"
			    "# HELP oomsentry_tracked_processes Processes currently tracked.\n"
			    "# TYPE oomsentry_tracked_processes gauge\n"
			    "oomsentry_tracked_processes 5\n"
			    "# HELP oomsentry_memory_usage_bytes Memory charged to the instance's cgroup.\n"
			    "# TYPE oomsentry_memory_usage_bytes gauge\n"
			    "oomsentry_memory_usage_bytes{instance=\"default\"} 8589934592\n"
			    "# HELP oomsentry_actions_total Prevention actions taken, by action and result.\n"
			    "# TYPE oomsentry_actions_total counter\n"
			    "oomsentry_actions_total{instance=\"default\",action=\"unload_models\",result=\"ok\"} 1\n"
			    "# TYPE oomsentry_test_ratio gauge\n"
			    "oomsentry_test_ratio 0.25\n");
	free(text);
}

static void test_render_empty(void **state)
{
	char *text;

	(void)state;
	text = render();
	assert_string_equal(text, "");
	free(text);
	/* Described families without series stay out of the reply. */
	assert_int_equal(metrics_describe_oomsentry(), 0);
	text = render();
	assert_string_equal(text, "");
	free(text);
}

static void test_value_format(void **state)
{
	static const struct {
		double value;
		const char *text;
	} cases[] = {
		{ 0, "0" },
		{ -0.0, "0" },
		{ 1, "1" },
		{ -3, "-3" },
		{ 1.5, "1.5" },
		{ 0.1, "0.1" },
		{ 1.0 / 3, "0.33333333333333331" },
		{ 8589934592.0, "8589934592" },
		{ 1e20, "1e+20" },
		{ 123456789012345678.0, "1.2345678901234568e+17" },
		{ NAN, "NaN" },
		{ INFINITY, "+Inf" },
		{ -INFINITY, "-Inf" },
	};
	char expected[128];
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		char *text;

		metrics_reset();
		assert_int_equal(metrics_set_gauge("g", NULL, cases[i].value), 0);
		text = render();
		snprintf(expected, sizeof(expected), "# TYPE g gauge\ng %s\n", cases[i].text);
		assert_string_equal(text, expected);
		free(text);
	}
}

static void test_label_escaping(void **state)
{
	char labels[METRICS_LABELS_MAX];
	char small[8];
	char *text;
	double v;

	(void)state;
	assert_int_equal(metrics_labels(labels, sizeof(labels), "instance", "a\"b\\c\nd", NULL), 21);
	assert_string_equal(labels, "instance=\"a\\\"b\\\\c\\nd\"");
	/* Invalid UTF-8 becomes '?', valid multibyte text passes through. */
	assert_int_equal(metrics_labels(labels, sizeof(labels), "cgroup", "/x\xff\xc3\xa9", NULL), 14);
	assert_string_equal(labels, "cgroup=\"/x?\xc3\xa9\"");
	assert_int_equal(metrics_labels(labels, sizeof(labels), NULL), 0);
	assert_string_equal(labels, "");

	assert_int_equal(metrics_labels(labels, sizeof(labels), "bad-name", "x", NULL), -EINVAL);
	assert_int_equal(metrics_labels(labels, sizeof(labels), "9x", "x", NULL), -EINVAL);
	assert_int_equal(metrics_labels(labels, sizeof(labels), "a", (const char *)NULL, NULL), -EINVAL);
	assert_int_equal(metrics_labels(small, sizeof(small), "instance", "x", NULL), -ENOBUFS);
	assert_string_equal(small, "");

	assert_int_equal(metrics_labels(labels, sizeof(labels), "instance", "a\"b\\c\nd", "status", "ok", NULL), 33);
	assert_int_equal(metrics_add_counter(METRIC_GENERATIONS_TOTAL, labels, 2), 0);
	assert_int_equal(metrics_get(METRIC_GENERATIONS_TOTAL, labels, &v), 0);
	assert_true(v == 2);
	assert_int_equal(metrics_describe(METRIC_GENERATIONS_TOTAL, METRIC_COUNTER, "Help with \\ and\nnewline."), 0);
	text = render();
	assert_string_equal(text, "# HELP oomsentry_generations_total Help with \\\\ and\\nnewline.\n"
				  "# TYPE oomsentry_generations_total counter\n"
				  "oomsentry_generations_total{instance=\"a\\\"b\\\\c\\nd\",status=\"ok\"} 2\n");
	free(text);
}

static void test_label_validation(void **state)
{
	static const struct {
		const char *labels;
		int expected;
	} cases[] = {
		{ "a=\"b\"", 0 },
		{ "a=\"b\",c_2=\"\"", 0 },
		{ "a=\"x\\\"y\\\\z\\n\"", 0 },
		{ "_a=\"\xc3\xa9\"", 0 },
		{ "a=b", -EINVAL },
		{ "a=\"b", -EINVAL },
		{ "a=\"b\",", -EINVAL },
		{ "a=\"b\"c=\"d\"", -EINVAL },
		{ "=\"b\"", -EINVAL },
		{ "1a=\"b\"", -EINVAL },
		{ "a-b=\"c\"", -EINVAL },
		{ "a=\"b\nc\"", -EINVAL },
		{ "a=\"b\\tc\"", -EINVAL },
		{ "a:b=\"c\"", -EINVAL },
		{ "{a=\"b\"}", -EINVAL },
		{ "a=\"b\" ", -EINVAL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int r = metrics_set_gauge("g", cases[i].labels, 1);

		if (r != cases[i].expected)
			fail_msg("labels '%s': got %d, want %d", cases[i].labels, r, cases[i].expected);
	}
}

static void test_name_validation(void **state)
{
	char long_name[METRICS_NAME_MAX + 1];
	char long_help[METRICS_HELP_MAX + 1];

	(void)state;
	assert_int_equal(metrics_set_gauge(NULL, NULL, 1), -EINVAL);
	assert_int_equal(metrics_set_gauge("", NULL, 1), -EINVAL);
	assert_int_equal(metrics_set_gauge("1abc", NULL, 1), -EINVAL);
	assert_int_equal(metrics_set_gauge("a-b", NULL, 1), -EINVAL);
	assert_int_equal(metrics_set_gauge("ns:sub_name", NULL, 1), 0);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(metrics_set_gauge(long_name, NULL, 1), -EINVAL);
	long_name[METRICS_NAME_MAX - 1] = '\0';
	assert_int_equal(metrics_set_gauge(long_name, NULL, 1), 0);
	memset(long_help, 'h', sizeof(long_help) - 1);
	long_help[sizeof(long_help) - 1] = '\0';
	assert_int_equal(metrics_describe("x", METRIC_GAUGE, long_help), -EINVAL);
	assert_int_equal(metrics_describe("x", (enum metric_type)7, "h"), -EINVAL);
}

static void test_counter_semantics(void **state)
{
	double v = -1;

	(void)state;
	assert_int_equal(metrics_add_counter("c_total", NULL, 1.5), 0);
	assert_int_equal(metrics_add_counter("c_total", NULL, 2), 0);
	assert_int_equal(metrics_get("c_total", NULL, &v), 0);
	assert_true(v == 3.5);
	assert_int_equal(metrics_add_counter("c_total", NULL, -1), -EINVAL);
	assert_int_equal(metrics_add_counter("c_total", NULL, NAN), -EINVAL);
	assert_int_equal(metrics_get("c_total", NULL, &v), 0);
	assert_true(v == 3.5);
	/* Absolute counters (BPF stats): set, and a reset of the source is accepted. */
	assert_int_equal(metrics_set_counter("c_total", NULL, 10), 0);
	assert_int_equal(metrics_get("c_total", NULL, &v), 0);
	assert_true(v == 10);
	assert_int_equal(metrics_set_counter("c_total", NULL, 4), 0);
	assert_int_equal(metrics_get("c_total", NULL, &v), 0);
	assert_true(v == 4);
	assert_int_equal(metrics_set_counter("c_total", NULL, -1), -EINVAL);
	assert_int_equal(metrics_set_counter("c_total", NULL, NAN), -EINVAL);
	assert_int_equal(metrics_set_counter("g_other", NULL, 1), 0);
	assert_int_equal(metrics_set_gauge("g_other", NULL, 1), -EINVAL);
	/* Type clashes are refused both ways. */
	assert_int_equal(metrics_set_gauge("c_total", NULL, 1), -EINVAL);
	assert_int_equal(metrics_describe("c_total", METRIC_GAUGE, "x"), -EINVAL);
	assert_int_equal(metrics_set_gauge("g", NULL, 1), 0);
	assert_int_equal(metrics_add_counter("g", NULL, 1), -EINVAL);
	/* A described family without series may still change type. */
	assert_int_equal(metrics_describe("later", METRIC_GAUGE, "x"), 0);
	assert_int_equal(metrics_describe("later", METRIC_COUNTER, "y"), 0);
	assert_int_equal(metrics_add_counter("later", NULL, 1), 0);

	assert_int_equal(metrics_get("nope", NULL, &v), -ENOENT);
	assert_int_equal(metrics_get("c_total", "a=\"b\"", &v), -ENOENT);
	assert_int_equal(metrics_get("bad name", NULL, &v), -EINVAL);
	assert_int_equal(metrics_render(NULL, NULL), -EINVAL);
}

static void test_capacity(void **state)
{
	char labels[METRICS_LABELS_MAX];
	char name[32];
	unsigned i;
	char *text;
	double v;

	(void)state;
	for (i = 0; i < METRICS_MAX_SERIES; i++) {
		assert_true(metrics_labels(labels, sizeof(labels), "i", (snprintf(name, sizeof(name), "%u", i), name),
					   NULL) > 0);
		assert_int_equal(metrics_set_gauge("many", labels, i), 0);
	}
	assert_null(metrics_take_full_warning());
	assert_int_equal(metrics_set_gauge("many", "i=\"overflow\"", 1), -ENOSPC);
	/* said once, however many series are dropped */
	assert_string_equal(metrics_take_full_warning(), "series table");
	assert_null(metrics_take_full_warning());
	assert_int_equal(metrics_add_counter("other_total", NULL, 1), -ENOSPC);
	/* Existing series keep working. */
	assert_int_equal(metrics_set_gauge("many", "i=\"511\"", 42), 0);
	assert_int_equal(metrics_get("many", "i=\"511\"", &v), 0);
	assert_true(v == 42);
	text = render();
	assert_non_null(strstr(text, "many{i=\"0\"} 0\nmany{i=\"1\"} 1\n"));
	assert_non_null(strstr(text, "many{i=\"511\"} 42\n"));
	assert_null(strstr(text, "overflow"));
	free(text);

	metrics_reset();
	for (i = 0; i < METRICS_MAX_FAMILIES; i++) {
		snprintf(name, sizeof(name), "fam_%u", i);
		assert_int_equal(metrics_describe(name, METRIC_GAUGE, NULL), 0);
	}
	assert_int_equal(metrics_describe("fam_extra", METRIC_GAUGE, NULL), -ENOSPC);
	assert_string_equal(metrics_take_full_warning(), "family table");
	assert_int_equal(metrics_set_gauge("fam_extra", NULL, 1), -ENOSPC);
	assert_int_equal(metrics_set_gauge("fam_63", NULL, 1), 0);
	text = render();
	assert_string_equal(text, "# TYPE fam_63 gauge\nfam_63 1\n");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_render_exact, setup),
		cmocka_unit_test_setup(test_render_empty, setup),
		cmocka_unit_test_setup(test_value_format, setup),
		cmocka_unit_test_setup(test_label_escaping, setup),
		cmocka_unit_test_setup(test_label_validation, setup),
		cmocka_unit_test_setup(test_name_validation, setup),
		cmocka_unit_test_setup(test_counter_semantics, setup),
		cmocka_unit_test_setup(test_capacity, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
