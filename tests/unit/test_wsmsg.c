// SPDX-License-Identifier: GPL-2.0
/* ComfyUI websocket messages as server.py and execution.py send them, and what the daemon must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "common.h"
#include "wsmsg.h"

#define ID "3f0c6a1e-9d4b-4c56-8a0e-2b7f5e1d9c01"

static void test_parse_table(void **state)
{
	static const struct {
		const char *text;
		enum wsmsg_type type;
		bool wakes;
		int64_t queue_remaining; /* -1: absent */
		const char *prompt_id;
		int64_t timestamp_ms;
		const char *node;
		bool node_null;
	} t[] = {
		/* the first status after connecting carries the session id */
		{ "{\"type\": \"status\", \"data\": {\"status\": {\"exec_info\": {\"queue_remaining\": 0}}, \"sid\": \"abc\"}}",
		  WSMSG_STATUS, true, 0, "", 0, "", false },
		{ "{\"type\":\"status\",\"data\":{\"status\":{\"exec_info\":{\"queue_remaining\":7}}}}", WSMSG_STATUS, true, 7,
		  "", 0, "", false },
		/* older builds: status without exec_info still wakes */
		{ "{\"type\":\"status\",\"data\":{\"status\":{}}}", WSMSG_STATUS, true, -1, "", 0, "", false },
		{ "{\"type\":\"execution_start\",\"data\":{\"prompt_id\":\"" ID "\",\"timestamp\":1764511200123}}",
		  WSMSG_EXECUTION_START, true, -1, ID, 1764511200123, "", false },
		{ "{\"type\":\"execution_cached\",\"data\":{\"nodes\":[\"4\"],\"prompt_id\":\"" ID "\",\"timestamp\":5}}",
		  WSMSG_EXECUTION_CACHED, false, -1, ID, 5, "", false },
		{ "{\"type\":\"executing\",\"data\":{\"node\":\"3\",\"display_node\":\"3\",\"prompt_id\":\"" ID "\"}}",
		  WSMSG_EXECUTING, false, -1, ID, 0, "3", false },
		/* node null: the prompt is done */
		{ "{\"type\":\"executing\",\"data\":{\"node\":null,\"prompt_id\":\"" ID "\"}}", WSMSG_EXECUTING, true, -1, ID,
		  0, "", true },
		/* numeric node ids (hand-written prompts) */
		{ "{\"type\":\"executing\",\"data\":{\"node\":12}}", WSMSG_EXECUTING, false, -1, "", 0, "12", false },
		{ "{\"type\":\"progress\",\"data\":{\"value\":3,\"max\":20,\"prompt_id\":\"" ID "\",\"node\":\"3\"}}",
		  WSMSG_PROGRESS, false, -1, ID, 0, "3", false },
		{ "{\"type\":\"executed\",\"data\":{\"node\":\"9\",\"output\":{\"images\":[]},\"prompt_id\":\"" ID "\"}}",
		  WSMSG_EXECUTED, false, -1, ID, 0, "9", false },
		{ "{\"type\":\"execution_success\",\"data\":{\"prompt_id\":\"" ID "\",\"timestamp\":1764511200323.0}}",
		  WSMSG_EXECUTION_SUCCESS, true, -1, ID, 1764511200323, "", false },
		{ "{\"type\":\"execution_error\",\"data\":{\"prompt_id\":\"" ID "\",\"node_id\":\"3\",\"exception_type\":"
		  "\"torch.OutOfMemoryError\",\"traceback\":[\"x\"],\"current_inputs\":{\"a\":[1,2]},\"timestamp\":9}}",
		  WSMSG_EXECUTION_ERROR, true, -1, ID, 9, "", false },
		{ "{\"type\":\"execution_interrupted\",\"data\":{\"prompt_id\":\"" ID "\",\"node_id\":\"3\",\"executed\":[],"
		  "\"timestamp\":10}}",
		  WSMSG_EXECUTION_INTERRUPTED, true, -1, ID, 10, "", false },
		/* a custom node's event: data is not looked at */
		{ "{\"type\":\"crystools.monitor\",\"data\":[1,2,3]}", WSMSG_OTHER, false, -1, "", 0, "", false },
		{ "{\"type\":\"crystools.monitor\"}", WSMSG_OTHER, false, -1, "", 0, "", false },
		/* sent to every client at each node's start, step and end, whatever the prompt's client_id */
		{ "{\"type\":\"progress_state\",\"data\":{\"prompt_id\":\"" ID "\",\"nodes\":{\"3\":{\"value\":1,"
		  "\"max\":20,\"state\":\"running\",\"node_id\":\"3\",\"prompt_id\":\"" ID "\",\"display_node_id\":\"3\","
		  "\"parent_node_id\":null,\"real_node_id\":\"3\"}}}}", WSMSG_PROGRESS_STATE, false, -1, ID, 0, "", false },
		/* nodes only scanned: before prompt_id, escapes and brackets inside its strings, whitespace */
		{ " { \"data\" : { \"nodes\" : { \"4\" : { \"state\" : \"a\\\"}]b\\\\\", \"x\" : [ 1.5e3 , null , "
		  "true , { } , [ ] ] } } , \"prompt_id\" : \"" ID "\" } , \"type\" : \"progress_state\" } ",
		  WSMSG_PROGRESS_STATE, false, -1, ID, 0, "", false },
		/* what the scan does not follow goes to json-c whole: an escaped key, a key twice */
		{ "{\"type\":\"progress_state\",\"data\":{\"prompt\\u005fid\":\"" ID "\",\"nodes\":{}}}",
		  WSMSG_PROGRESS_STATE, false, -1, ID, 0, "", false },
		{ "{\"type\":\"progress_state\",\"data\":{\"prompt_id\":\"" ID "\",\"nodes\":{},\"nodes\":[]}}",
		  WSMSG_PROGRESS_STATE, false, -1, ID, 0, "", false },
		{ "{\"type\":\"progress\\u005fstate\",\"data\":{\"prompt_id\":\"" ID "\",\"nodes\":{}}}",
		  WSMSG_PROGRESS_STATE, false, -1, ID, 0, "", false },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct wsmsg m;
		char err[WSMSG_ERROR_MAX] = "";
		int r = wsmsg_parse(t[i].text, strlen(t[i].text), &m, err, sizeof(err));

		if (r != 0)
			fail_msg("row %zu: %d (%s)", i, r, err);
		assert_int_equal(m.type, t[i].type);
		assert_int_equal(wsmsg_wakes(&m), t[i].wakes);
		assert_int_equal(m.has_queue_remaining, t[i].queue_remaining >= 0);
		if (t[i].queue_remaining >= 0)
			assert_int_equal(m.queue_remaining, t[i].queue_remaining);
		assert_string_equal(m.prompt_id, t[i].prompt_id);
		assert_int_equal(m.timestamp_ms, t[i].timestamp_ms);
		assert_string_equal(m.node, t[i].node);
		assert_int_equal(m.node_null, t[i].node_null);
	}
}

static void test_fields(void **state)
{
	const char *s = "{\"type\":\"status\",\"data\":{\"status\":{\"exec_info\":{\"queue_remaining\":2}},\"sid\":\"s1\"}}";
	const char *p = "{\"type\":\"progress\",\"data\":{\"value\":4,\"max\":20}}";
	const char *e = "{\"type\":\"execution_error\",\"data\":{\"exception_type\":\"RuntimeError\"}}";
	struct wsmsg m;

	(void)state;
	assert_int_equal(wsmsg_parse(s, strlen(s), &m, NULL, 0), 0);
	assert_string_equal(m.sid, "s1");
	assert_string_equal(m.type_name, "status");
	assert_int_equal(wsmsg_parse(p, strlen(p), &m, NULL, 0), 0);
	assert_int_equal(m.progress_value, 4);
	assert_int_equal(m.progress_max, 20);
	assert_int_equal(wsmsg_parse(e, strlen(e), &m, NULL, 0), 0);
	assert_string_equal(m.exception_type, "RuntimeError");
	/* length, not NUL, ends the text */
	assert_int_equal(wsmsg_parse(s, strlen(s) - 1, &m, NULL, 0), -EPROTO);
	assert_int_equal(m.type, WSMSG_OTHER); /* zeroed on error */
	assert_string_equal(wsmsg_type_name(WSMSG_EXECUTION_SUCCESS), "execution_success");
	assert_string_equal(wsmsg_type_name(_WSMSG_TYPE_MAX), "invalid");
	assert_false(wsmsg_wakes(NULL));
	assert_int_equal(wsmsg_parse(s, strlen(s), NULL, NULL, 0), -EINVAL);
}

static void test_refused(void **state)
{
	static const struct {
		const char *text;
		const char *reason; /* a word the reason must contain */
	} t[] = {
		{ "", "empty" },
		{ "[]", "object" },
		{ "{\"type\":\"status\"", "JSON" },
		{ "{\"type\":\"status\",\"data\":{}} x", "trailing" },
		{ "{\"data\":{}}", "type" },
		{ "{\"type\":5,\"data\":{}}", "type" },
		{ "{\"type\":\"status\"}", "data" },
		{ "{\"type\":\"status\",\"data\":[]}", "data" },
		{ "{\"type\":\"status\",\"data\":{\"status\":7}}", "status" },
		{ "{\"type\":\"status\",\"data\":{\"status\":{\"exec_info\":[]}}}", "exec_info" },
		{ "{\"type\":\"status\",\"data\":{\"status\":{\"exec_info\":{\"queue_remaining\":\"3\"}}}}", "number" },
		{ "{\"type\":\"status\",\"data\":{\"status\":{\"exec_info\":{\"queue_remaining\":-1}}}}", "range" },
		{ "{\"type\":\"status\",\"data\":{\"status\":{\"exec_info\":{\"queue_remaining\":1e300}}}}", "range" },
		{ "{\"type\":\"status\",\"data\":{\"status\":{\"exec_info\":{\"queue_remaining\":18446744073709551615}}}}",
		  "range" },
		{ "{\"type\":\"execution_start\",\"data\":{\"prompt_id\":7.5}}", "prompt_id" },
		{ "{\"type\":\"execution_start\",\"data\":{\"prompt_id\":\"\"}}", "prompt_id" },
		{ "{\"type\":\"execution_start\",\"data\":{\"prompt_id\":"
		  "\"0123456789012345678901234567890123456789012345678901234567890123456789\"}}",
		  "prompt_id" },
		{ "{\"type\":\"execution_success\",\"data\":{\"timestamp\":\"now\"}}", "timestamp" },
		{ "{\"type\":\"execution_success\",\"data\":{\"timestamp\":NaN}}", "range" },
		{ "{\"type\":\"executing\",\"data\":{\"node\":{}}}", "node" },
		{ "{\"type\":\"progress\",\"data\":{\"value\":true}}", "value" },
		/* what is only scanned is still JSON, and the rest still checked */
		{ "{\"type\":\"progress_state\",\"data\":{\"prompt_id\":\"" ID "\",\"nodes\":{\"3\":}}}", "JSON" },
		{ "{\"type\":\"progress_state\",\"data\":{\"prompt_id\":\"" ID "\",\"nodes\":[}}", "JSON" },
		{ "{\"type\":\"progress_state\",\"data\":{\"prompt_id\":7.5,\"nodes\":{}}}", "prompt_id" },
		{ "{\"type\":\"progress_state\",\"data\":{\"prompt_id\":\"" ID "\",\"nodes\":{}}} x", "trailing" },
		{ "{\"type\":\"crystools.monitor\",\"data\":[1,}", "JSON" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct wsmsg m;
		char err[WSMSG_ERROR_MAX] = "";
		int r = wsmsg_parse(t[i].text, strlen(t[i].text), &m, err, sizeof(err));

		if (r != -EPROTO)
			fail_msg("row %zu (%s): %d, expected -EPROTO", i, t[i].text, r);
		if (!strstr(err, t[i].reason))
			fail_msg("row %zu: reason \"%s\" lacks \"%s\"", i, err, t[i].reason);
	}
	/* a NUL inside the text */
	assert_int_equal(wsmsg_parse("{\"type\":\"status\"\0}", 18, &(struct wsmsg){ 0 }, NULL, 0), -EPROTO);
}

static void test_deep_nesting(void **state)
{
	char buf[4096];
	size_t n = 0;
	struct wsmsg m;

	(void)state;
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{\"type\":\"execution_error\",\"data\":{\"x\":");
	for (int i = 0; i < WSMSG_MAX_DEPTH + 5; i++)
		buf[n++] = '[';
	for (int i = 0; i < WSMSG_MAX_DEPTH + 5; i++)
		buf[n++] = ']';
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "}}");
	assert_int_equal(wsmsg_parse(buf, n, &m, NULL, 0), -EPROTO);
}

/* A progress_state of a 500-node workflow (~90 KiB, as comfy_execution/progress.py sends every node that has
 * started): its prompt_id, and a ':' made ';' anywhere in the nodes refuses it (no string here holds one) */
static void test_big_progress_state(void **state)
{
	size_t cap = 500 * 256 + 256, n = 0;
	char *buf = test_malloc(cap);
	struct wsmsg m;

	(void)state;
	n += (size_t)snprintf(buf + n, cap - n, "{\"type\":\"progress_state\",\"data\":{\"prompt_id\":\"" ID
			      "\",\"nodes\":{");
	for (int i = 0; i < 500; i++)
		n += (size_t)snprintf(buf + n, cap - n,
				      "%s\"%d\":{\"value\":%d,\"max\":20,\"state\":\"%s\",\"node_id\":\"%d\",\"prompt_id\":"
				      "\"" ID "\",\"display_node_id\":\"%d\",\"parent_node_id\":null,\"real_node_id\":\"%d\"}",
				      i ? "," : "", i, i % 20, i % 3 ? "finished" : "running", i, i, i);
	n += (size_t)snprintf(buf + n, cap - n, "}}}");
	assert_true(n < cap);
	assert_int_equal(wsmsg_parse(buf, n, &m, NULL, 0), 0);
	assert_int_equal(m.type, WSMSG_PROGRESS_STATE);
	assert_string_equal(m.prompt_id, ID);
	for (size_t at = 100, k = 0; at < n; at++) {
		if (buf[at] != ':' || k++ % 97)
			continue;
		buf[at] = ';';
		assert_int_equal(wsmsg_parse(buf, n, &m, NULL, 0), -EPROTO);
		buf[at] = ':';
	}
	test_free(buf);
}

/* The prompt's end: what the last resort takes as proof that it is not owed again. A node's start or a step is not. */
static void test_ends_prompt(void **state)
{
	static const struct {
		enum wsmsg_type type;
		bool node_null;
		bool ends;
	} t[] = {
		{ WSMSG_EXECUTION_SUCCESS, false, true },
		{ WSMSG_EXECUTION_ERROR, false, true },
		{ WSMSG_EXECUTION_INTERRUPTED, false, true },
		{ WSMSG_EXECUTING, true, true },
		{ WSMSG_EXECUTING, false, false },
		{ WSMSG_EXECUTION_START, false, false },
		{ WSMSG_EXECUTION_CACHED, false, false },
		{ WSMSG_EXECUTED, false, false },
		{ WSMSG_PROGRESS, false, false },
		{ WSMSG_PROGRESS_STATE, false, false },
		{ WSMSG_STATUS, false, false },
		{ WSMSG_OTHER, false, false },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct wsmsg m = { .type = t[i].type, .node_null = t[i].node_null };

		if (wsmsg_ends_prompt(&m) != t[i].ends)
			fail_msg("row %zu (%s): ends %d", i, wsmsg_type_name(t[i].type), !t[i].ends);
	}
	assert_false(wsmsg_ends_prompt(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_ends_prompt),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_big_progress_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
