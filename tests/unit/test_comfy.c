// SPDX-License-Identifier: GPL-2.0
/* core/comfy.c: the reply parsers on ComfyUI-shaped fixtures and malformed input (no server, no libcurl). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <pthread.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "comfy.h"
#include "common.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

#include "comfy-fixtures.h"

/* ======================================================================================================= */
/* Parsers on real-shaped replies                                                                           */
/* ======================================================================================================= */

static void test_system_stats_cuda(void **state)
{
	_cleanup_free_ char *json = NULL;
	struct comfy_system_stats s;
	char err[COMFY_ERROR_MAX] = "";
	size_t len;
	(void)state;

	json = read_fixture("system_stats_cuda.json", &len);
	assert_int_equal(comfy_parse_system_stats(json, len, &s, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(s.ram_total_bytes, UINT64_C(134850293760));
	assert_int_equal(s.ram_free_bytes, UINT64_C(101542285312));
	assert_string_equal(s.os, "posix");
	assert_string_equal(s.comfyui_version, "0.3.27");
	assert_string_equal(s.python_version, "3.12.3 (main, Feb  4 2025, 14:48:35) [GCC 13.3.0]");
	assert_string_equal(s.pytorch_version, "2.6.0+cu124");
	assert_int_equal(s.n_devices, 1);
	assert_string_equal(s.device_name, "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync");
	assert_string_equal(s.device_type, "cuda");
	assert_int_equal(s.vram_total_bytes, UINT64_C(25386352640));
	assert_int_equal(s.vram_free_bytes, UINT64_C(23911989248));
	assert_int_equal(s.torch_vram_total_bytes, 0);
	assert_int_equal(s.torch_vram_free_bytes, 0);
}

static void test_system_stats_cpu_old(void **state)
{
	_cleanup_free_ char *json = NULL;
	struct comfy_system_stats s;
	size_t len;
	(void)state;

	/* Older builds: no comfyui_version/pytorch_version; a CPU device has "index": null. */
	json = read_fixture("system_stats_cpu_old.json", &len);
	assert_int_equal(comfy_parse_system_stats(json, len, &s, NULL, 0), 0);
	assert_int_equal(s.ram_total_bytes, UINT64_C(16777216000));
	assert_int_equal(s.ram_free_bytes, UINT64_C(8388608000));
	assert_string_equal(s.comfyui_version, "");
	assert_string_equal(s.pytorch_version, "");
	assert_int_equal(s.n_devices, 1);
	assert_string_equal(s.device_type, "cpu");
	assert_int_equal(s.vram_total_bytes, UINT64_C(16777216000));
	assert_int_equal(s.torch_vram_free_bytes, UINT64_C(8388608000));
}

static void test_system_stats_truncates_long_strings(void **state)
{
	char json[1024], name[400];
	struct comfy_system_stats s;
	(void)state;

	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	snprintf(json, sizeof(json), "{\"system\": {\"ram_total\": 1, \"ram_free\": 0, \"python_version\": \"%s\"}}",
		 name);
	assert_int_equal(comfy_parse_system_stats(json, strlen(json), &s, NULL, 0), 0);
	assert_int_equal(strlen(s.python_version), sizeof(s.python_version) - 1);
	assert_int_equal(s.n_devices, 0);
}

static void test_queue_idle(void **state)
{
	_cleanup_free_ char *json = NULL;
	struct comfy_queue q;
	size_t len;
	(void)state;

	json = read_fixture("queue_idle.json", &len);
	assert_int_equal(comfy_parse_queue(json, len, &q, NULL, 0), 0);
	assert_int_equal(q.n_running, 0);
	assert_int_equal(q.n_pending, 0);
	assert_null(q.running);
	assert_null(q.pending);
	comfy_queue_free(&q);
	comfy_queue_free(&q);
	comfy_queue_free(NULL);
}

/* The element `idx` of queue list `key` in the fixture, re-serialised, to compare what the parser kept. */
static char *fixture_item_elem(const char *json, const char *key, size_t idx, size_t elem)
{
	struct json_tokener *tok = json_tokener_new_ex(COMFY_JSON_MAX_DEPTH);
	json_object *root = json_tokener_parse_ex(tok, json, (int)strlen(json)), *list, *v;
	char *s;

	json_tokener_free(tok);
	assert_non_null(root);
	assert_true(json_object_object_get_ex(root, key, &list));
	v = json_object_array_get_idx(json_object_array_get_idx(list, idx), elem);
	s = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	json_object_put(root);
	return s;
}

static void test_queue_busy(void **state)
{
	_cleanup_free_ char *json = NULL, *prompt0 = NULL, *extra0 = NULL;
	struct comfy_queue q;
	char err[COMFY_ERROR_MAX] = "";
	size_t len;
	(void)state;

	json = read_fixture("queue_busy.json", &len);
	assert_int_equal(comfy_parse_queue(json, len, &q, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(q.n_running, 1);
	assert_int_equal(q.n_pending, 2);

	assert_int_equal(q.running[0].number, 12);
	assert_string_equal(q.running[0].prompt_id, ID_RUNNING);
	prompt0 = fixture_item_elem(json, "queue_running", 0, 2);
	extra0 = fixture_item_elem(json, "queue_running", 0, 3);
	assert_json_equal(q.running[0].prompt_json, prompt0);
	assert_json_equal(q.running[0].extra_data_json, extra0);
	assert_string_equal(q.running[0].outputs_json, "[\"9\"]");
	/* The seed is above 2^32 and must survive the round trip exactly (it is resubmitted). */
	assert_non_null(strstr(q.running[0].prompt_json, "\"seed\":156680208700286"));
	assert_non_null(strstr(q.running[0].prompt_json, "\"cfg\":8.0,"));
	assert_non_null(strstr(q.running[0].extra_data_json, "\"client_id\":\"a8f2e6c4b1d04b5e9f3a7c2d1e0b9f8a\""));

	/* Requeued at the front: negative number; \u00e9 arrives as UTF-8. */
	assert_int_equal(q.pending[0].number, -13);
	assert_string_equal(q.pending[0].prompt_id, ID_FRONT);
	assert_string_equal(q.pending[0].prompt_json,
			    "{\"9\":{\"inputs\":{\"filename_prefix\":\"ComfyUI/\xc3\xa9t\xc3\xa9\",\"images\":[\"8\",0]},"
			    "\"class_type\":\"SaveImage\"}}");
	assert_string_equal(q.pending[0].extra_data_json, "{\"client_id\":\"oomsentry\"}");
	/* A client-chosen number is a Python float in the reply. */
	assert_int_equal(q.pending[1].number, 14);
	assert_string_equal(q.pending[1].prompt_id, ID_FLOAT);
	assert_string_equal(q.pending[1].extra_data_json, "{}");
	assert_string_equal(q.pending[1].outputs_json, "[\"9\"]");
	comfy_queue_free(&q);
	assert_null(q.running);
	assert_int_equal(q.n_pending, 0);
}

static void test_queue_extra_elements_and_fractional_number(void **state)
{
	const char *json = "{\"queue_running\": [], \"queue_pending\": [[2.75, \"p\", {}, {}, [], {\"future\": 1}],"
			   " [-0.5, \"q\", {}, {}, []]]}";
	struct comfy_queue q;
	(void)state;

	assert_int_equal(comfy_parse_queue(json, strlen(json), &q, NULL, 0), 0);
	assert_int_equal(q.n_pending, 2);
	assert_int_equal(q.pending[0].number, 2);
	assert_int_equal(q.pending[1].number, -1);
	comfy_queue_free(&q);
}

static void test_queue_many_items(void **state)
{
	const size_t n = 5000;
	size_t cap = n * 48 + 64, off = 0;
	_cleanup_free_ char *json = malloc(cap);
	struct comfy_queue q;
	(void)state;

	assert_non_null(json);
	off += (size_t)snprintf(json + off, cap - off, "{\"queue_running\": [], \"queue_pending\": [");
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(json + off, cap - off, "%s[%zu, \"id-%zu\", {}, {}, [\"9\"]]", i ? "," : "",
					i, i);
	off += (size_t)snprintf(json + off, cap - off, "]}");
	assert_true(off < cap);
	assert_int_equal(comfy_parse_queue(json, off, &q, NULL, 0), 0);
	assert_int_equal(q.n_pending, n);
	assert_int_equal(q.pending[n - 1].number, (int64_t)n - 1);
	assert_string_equal(q.pending[n - 1].prompt_id, "id-4999");
	comfy_queue_free(&q);
}

static void test_history_success(void **state)
{
	_cleanup_free_ char *json = NULL;
	struct comfy_history_item h;
	size_t len;
	(void)state;

	json = read_fixture("history_success.json", &len);
	assert_int_equal(comfy_parse_history_item(json, len, ID_RUNNING, &h, NULL, 0), 0);
	assert_true(h.found);
	assert_int_equal(h.status, COMFY_STATUS_SUCCESS);
	assert_string_equal(h.status_str, "success");
	assert_true(h.completed);
	assert_true(h.msg_success);
	assert_false(h.msg_error);
	assert_false(h.msg_interrupted);
	assert_int_equal(h.start_ms, INT64_C(1754400001000));
	assert_int_equal(h.end_ms, INT64_C(1754400009750));
	assert_string_equal(h.exception_type, "");

	/* Same reply, other id: not ours. */
	assert_int_equal(comfy_parse_history_item(json, len, ID_OOM, &h, NULL, 0), 0);
	assert_false(h.found);
	assert_int_equal(h.status, COMFY_STATUS_NONE);
}

static void test_history_error_oom(void **state)
{
	_cleanup_free_ char *json = NULL;
	struct comfy_history_item h;
	size_t len;
	(void)state;

	json = read_fixture("history_error_oom.json", &len);
	assert_int_equal(comfy_parse_history_item(json, len, ID_OOM, &h, NULL, 0), 0);
	assert_true(h.found);
	assert_int_equal(h.status, COMFY_STATUS_ERROR);
	assert_string_equal(h.status_str, "error");
	assert_false(h.completed);
	assert_false(h.msg_success);
	assert_true(h.msg_error);
	assert_false(h.msg_interrupted);
	assert_int_equal(h.start_ms, INT64_C(1754400100000));
	assert_int_equal(h.end_ms, INT64_C(1754400142318));
	assert_string_equal(h.exception_type, "torch.OutOfMemoryError");
	assert_string_equal(h.exception_message,
			    "Allocation on device \nThis error means you ran out of memory on your GPU.");
}

static void test_history_interrupted(void **state)
{
	_cleanup_free_ char *json = NULL;
	struct comfy_history_item h;
	size_t len;
	(void)state;

	json = read_fixture("history_interrupted.json", &len);
	assert_int_equal(comfy_parse_history_item(json, len, ID_FRONT, &h, NULL, 0), 0);
	assert_true(h.found);
	assert_int_equal(h.status, COMFY_STATUS_ERROR);
	assert_false(h.completed);
	assert_true(h.msg_interrupted);
	assert_false(h.msg_error);
	assert_int_equal(h.start_ms, INT64_C(1754400200000));
	assert_int_equal(h.end_ms, INT64_C(1754400203456));
}

static void test_history_empty_and_variants(void **state)
{
	_cleanup_free_ char *json = NULL;
	struct comfy_history_item h;
	size_t len;
	(void)state;

	json = read_fixture("history_empty.json", &len);
	assert_int_equal(comfy_parse_history_item(json, len, ID_RUNNING, &h, NULL, 0), 0);
	assert_false(h.found);

	/* status null (PromptQueue.task_done without status), other status_str, no messages. */
	static const char no_status[] = "{\"p\": {\"prompt\": [], \"outputs\": {}, \"status\": null}}";
	assert_int_equal(comfy_parse_history_item(no_status, strlen(no_status), "p", &h, NULL, 0), 0);
	assert_true(h.found);
	assert_int_equal(h.status, COMFY_STATUS_NONE);
	assert_int_equal(h.start_ms, 0);

	static const char other[] = "{\"p\": {\"status\": {\"status_str\": \"cancelled\", \"completed\": false}}}";
	assert_int_equal(comfy_parse_history_item(other, strlen(other), "p", &h, NULL, 0), 0);
	assert_int_equal(h.status, COMFY_STATUS_OTHER);
	assert_string_equal(h.status_str, "cancelled");
	assert_int_equal(h.end_ms, 0);
}

static void test_prompt_replies(void **state)
{
	_cleanup_free_ char *ok = NULL, *bad = NULL, *old = NULL;
	struct comfy_prompt_reply p;
	char err[COMFY_ERROR_MAX] = "";
	size_t len;
	(void)state;

	ok = read_fixture("prompt_ok.json", &len);
	assert_int_equal(comfy_parse_prompt_reply(ok, len, &p, err, sizeof(err)), 0);
	assert_string_equal(p.prompt_id, ID_RUNNING);
	assert_int_equal(p.number, 12);
	assert_int_equal(p.n_node_errors, 0);
	assert_string_equal(p.error_message, "");

	bad = read_fixture("prompt_error.json", &len);
	assert_int_equal(comfy_parse_prompt_reply(bad, len, &p, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "ComfyUI rejected the prompt: Prompt outputs failed validation (1 node errors)");
	assert_string_equal(p.prompt_id, "");
	assert_int_equal(p.number, COMFY_NUMBER_NONE);
	assert_int_equal(p.n_node_errors, 1);
	assert_string_equal(p.error_type, "prompt_outputs_failed_validation");
	assert_string_equal(p.error_message, "Prompt outputs failed validation");

	old = read_fixture("prompt_error_old.json", &len);
	assert_int_equal(comfy_parse_prompt_reply(old, len, &p, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "ComfyUI rejected the prompt: no prompt");
	assert_string_equal(p.error_type, "");
	assert_int_equal(p.n_node_errors, 0);

	static const char details[] = "{\"error\": {\"type\": \"invalid_prompt\", \"message\": \"Cannot execute because a "
				      "node is missing the class_type property.\", \"details\": \"Node ID '#3'\", "
				      "\"extra_info\": {}}, \"node_errors\": {}}";
	assert_int_equal(comfy_parse_prompt_reply(details, strlen(details), &p, err, sizeof(err)), -EBADMSG);
	assert_string_equal(p.error_message,
			    "Cannot execute because a node is missing the class_type property.: Node ID '#3'");

	/* Partial success: accepted, some outputs had errors; a float number from a client-chosen value. */
	static const char partial[] = "{\"prompt_id\": \"x\", \"number\": 7.0, \"node_errors\": {\"4\": {}, \"5\": {}}}";
	assert_int_equal(comfy_parse_prompt_reply(partial, strlen(partial), &p, NULL, 0), 0);
	assert_int_equal(p.number, 7);
	assert_int_equal(p.n_node_errors, 2);
}

/* ======================================================================================================= */
/* Parsers on malformed input (table-driven)                                                                */
/* ======================================================================================================= */

enum parser { P_SYS, P_QUEUE, P_HIST, P_PROMPT, P_ALL };

struct bad_case {
	const char *name;
	enum parser parser;
	const char *json;
	size_t len;              /* 0: strlen(json) */
	int rc;
	const char *error;       /* exact message */
};

#define QI(item) "{\"queue_running\": [" item "], \"queue_pending\": []}"
#define HS(status) "{\"ID\": {\"status\": " status "}}"
#define SYS(fields) "{\"system\": {" fields "}}"

static const struct bad_case bad_cases[] = {
	{ "empty", P_ALL, "", 0, -EPROTO, "not JSON: empty" },
	{ "whitespace only", P_ALL, "   \n", 0, -EPROTO, "not JSON: unexpected end of data at byte 4" },
	{ "truncated", P_QUEUE, "{\"queue_running\": [[1, \"ab", 0, -EPROTO,
	  "not JSON: unexpected end of data at byte 26" },
	{ "truncated in key", P_ALL, "{\"sys", 0, -EPROTO, "not JSON: unexpected end of data at byte 5" },
	{ "trailing garbage", P_QUEUE, "{\"queue_running\": [], \"queue_pending\": []} x", 0, -EPROTO,
	  "not JSON: trailing garbage at byte 43" },
	{ "two objects", P_ALL, "{} {}", 0, -EPROTO, "not JSON: trailing garbage at byte 3" },
	{ "NUL byte", P_ALL, "{\"a\"\0: 1}", 9, -EPROTO, "not JSON: NUL byte at byte 4" },
	{ "NUL after value", P_ALL, "{}\0", 3, -EPROTO, "not JSON: NUL byte at byte 2" },
	{ "array at top", P_ALL, "[]", 0, -EPROTO, "expected a JSON object, got array" },
	{ "null at top", P_ALL, "null", 0, -EPROTO, "expected a JSON object, got null" },
	{ "number at top", P_ALL, "123", 0, -EPROTO, "expected a JSON object, got int" },
	{ "string at top", P_ALL, "\"{}\"", 0, -EPROTO, "expected a JSON object, got string" },
	{ "syntax", P_ALL, "{\"a\" 1}", 0, -EPROTO, "not JSON: object property name separator ':' expected at byte 5" },
	{ "bad literal", P_ALL, "{\"a\": tru}", 0, -EPROTO, "not JSON: boolean expected at byte 9" },
	{ "invalid utf-8", P_ALL, "{\"a\": \"\xff\"}", 0, -EPROTO, "not JSON: invalid utf-8 string at byte 7" },
	{ "html error page", P_ALL, "<html><body>502 Bad Gateway</body></html>", 0, -EPROTO,
	  "not JSON: unexpected character at byte 0" },

	/* /queue */
	{ "queue: missing running", P_QUEUE, "{\"queue_pending\": []}", 0, -EPROTO, "queue_running: missing" },
	{ "queue: missing pending", P_QUEUE, "{\"queue_running\": []}", 0, -EPROTO, "queue_pending: missing" },
	{ "queue: running is null", P_QUEUE, "{\"queue_running\": null, \"queue_pending\": []}", 0, -EPROTO,
	  "queue_running: missing" },
	{ "queue: string where list", P_QUEUE, "{\"queue_running\": \"[]\", \"queue_pending\": []}", 0, -EPROTO,
	  "queue_running: expected array, got string" },
	{ "queue: item not a list", P_QUEUE, "{\"queue_running\": [], \"queue_pending\": [{\"number\": 1}]}", 0,
	  -EPROTO, "queue_pending[0]: expected array, got object" },
	{ "queue: item with 2 elements", P_QUEUE, QI("[1, \"a\"]"), 0, -EPROTO,
	  "queue_running[0]: expected at least 5 elements, got 2" },
	{ "queue: second item bad", P_QUEUE,
	  "{\"queue_running\": [], \"queue_pending\": [[1, \"a\", {}, {}, []], [2, \"b\", {}, {}]]}", 0, -EPROTO,
	  "queue_pending[1]: expected at least 5 elements, got 4" },
	{ "queue: number as string", P_QUEUE, QI("[\"1\", \"a\", {}, {}, []]"), 0, -EPROTO,
	  "queue_running[0][0] (number): expected a number, got string" },
	{ "queue: number null", P_QUEUE, QI("[null, \"a\", {}, {}, []]"), 0, -EPROTO,
	  "queue_running[0][0] (number): expected a number, got null" },
	{ "queue: number huge", P_QUEUE, QI("[99999999999999999999, \"a\", {}, {}, []]"), 0, -EPROTO,
	  "queue_running[0][0] (number): number 18446744073709551615 out of range "
	  "[-9007199254740992, 9007199254740992]" },
	{ "queue: number huge negative", P_QUEUE, QI("[-99999999999999999999, \"a\", {}, {}, []]"), 0, -EPROTO,
	  "queue_running[0][0] (number): number -9223372036854775808 out of range "
	  "[-9007199254740992, 9007199254740992]" },
	{ "queue: number 2^53+1", P_QUEUE, QI("[9007199254740993, \"a\", {}, {}, []]"), 0, -EPROTO,
	  "queue_running[0][0] (number): number 9007199254740993 out of range "
	  "[-9007199254740992, 9007199254740992]" },
	{ "queue: number 1e400", P_QUEUE, QI("[1e400, \"a\", {}, {}, []]"), 0, -EPROTO,
	  "queue_running[0][0] (number): number 1e400 out of range [-9007199254740992, 9007199254740992]" },
	{ "queue: number NaN", P_QUEUE, QI("[NaN, \"a\", {}, {}, []]"), 0, -EPROTO,
	  "queue_running[0][0] (number): number NaN out of range [-9007199254740992, 9007199254740992]" },
	{ "queue: prompt_id not a string", P_QUEUE, QI("[1, 42, {}, {}, []]"), 0, -EPROTO,
	  "queue_running[0][1] (prompt_id): expected string, got int" },
	{ "queue: prompt_id empty", P_QUEUE, QI("[1, \"\", {}, {}, []]"), 0, -EPROTO,
	  "queue_running[0][1] (prompt_id): 0 bytes, expected 1..63" },
	{ "queue: prompt_id 64 bytes", P_QUEUE,
	  QI("[1, \"0123456789012345678901234567890123456789012345678901234567890123\", {}, {}, []]"), 0, -EPROTO,
	  "queue_running[0][1] (prompt_id): 64 bytes, expected 1..63" },
	{ "queue: prompt_id with NUL", P_QUEUE, QI("[1, \"a\\u0000b\", {}, {}, []]"), 0, -EPROTO,
	  "queue_running[0][1] (prompt_id): contains control characters" },
	{ "queue: prompt_id with newline", P_QUEUE, QI("[1, \"a\\nb\", {}, {}, []]"), 0, -EPROTO,
	  "queue_running[0][1] (prompt_id): contains control characters" },
	{ "queue: prompt is a list", P_QUEUE, QI("[1, \"a\", [], {}, []]"), 0, -EPROTO,
	  "queue_running[0][2] (prompt): expected object, got array" },
	{ "queue: extra_data null", P_QUEUE, QI("[1, \"a\", {}, null, []]"), 0, -EPROTO,
	  "queue_running[0][3] (extra_data): expected object, got null" },
	{ "queue: outputs string", P_QUEUE, QI("[1, \"a\", {}, {}, \"9\"]"), 0, -EPROTO,
	  "queue_running[0][4] (outputs): expected array, got string" },

	/* /system_stats */
	{ "sys: missing system", P_SYS, "{\"devices\": []}", 0, -EPROTO, "system: missing" },
	{ "sys: system is a list", P_SYS, "{\"system\": []}", 0, -EPROTO, "system: expected object, got array" },
	{ "sys: missing ram_total", P_SYS, SYS("\"ram_free\": 1"), 0, -EPROTO, "system.ram_total: missing" },
	{ "sys: ram_total as string", P_SYS, SYS("\"ram_total\": \"123\", \"ram_free\": 1"), 0, -EPROTO,
	  "system.ram_total: expected a number, got string" },
	{ "sys: ram_free negative", P_SYS, SYS("\"ram_total\": 1, \"ram_free\": -1"), 0, -EPROTO,
	  "system.ram_free: number -1 out of range [0, 1152921504606846976]" },
	{ "sys: ram_total bool", P_SYS, SYS("\"ram_total\": true, \"ram_free\": 1"), 0, -EPROTO,
	  "system.ram_total: expected a number, got boolean" },
	{ "sys: version as number", P_SYS, SYS("\"ram_total\": 1, \"ram_free\": 1, \"comfyui_version\": 3"), 0,
	  -EPROTO, "system.comfyui_version: expected string, got int" },
	{ "sys: devices object", P_SYS, "{\"system\": {\"ram_total\": 1, \"ram_free\": 1}, \"devices\": {}}", 0,
	  -EPROTO, "devices: expected array, got object" },
	{ "sys: device string", P_SYS, "{\"system\": {\"ram_total\": 1, \"ram_free\": 1}, \"devices\": [\"cuda\"]}",
	  0, -EPROTO, "devices[0]: expected object, got string" },
	{ "sys: vram huge", P_SYS,
	  "{\"system\": {\"ram_total\": 1, \"ram_free\": 1}, \"devices\": [{\"vram_total\": 2305843009213693952}]}",
	  0, -EPROTO, "devices[0].vram_total: number 2305843009213693952 out of range [0, 1152921504606846976]" },

	/* /history/{id} (asked for "ID") */
	{ "hist: entry is a list", P_HIST, "{\"ID\": []}", 0, -EPROTO, "history entry: expected object, got array" },
	{ "hist: status string", P_HIST, HS("\"success\""), 0, -EPROTO, "status: expected object, got string" },
	{ "hist: status_str missing", P_HIST, HS("{\"completed\": true}"), 0, -EPROTO, "status.status_str: missing" },
	{ "hist: status_str number", P_HIST, HS("{\"status_str\": 1, \"completed\": true}"), 0, -EPROTO,
	  "status.status_str: expected string, got int" },
	{ "hist: completed as string", P_HIST, HS("{\"status_str\": \"success\", \"completed\": \"true\"}"), 0,
	  -EPROTO, "status.completed: expected boolean, got string" },
	{ "hist: messages object", P_HIST,
	  HS("{\"status_str\": \"success\", \"completed\": true, \"messages\": {}}"), 0, -EPROTO,
	  "status.messages: expected array, got object" },
	{ "hist: message not a list", P_HIST,
	  HS("{\"status_str\": \"success\", \"completed\": true, \"messages\": [\"execution_start\"]}"), 0, -EPROTO,
	  "status.messages[0]: expected array, got string" },
	{ "hist: message 1 element", P_HIST,
	  HS("{\"status_str\": \"success\", \"completed\": true, \"messages\": [[\"execution_start\"]]}"), 0, -EPROTO,
	  "status.messages[0]: expected 2 elements, got 1" },
	{ "hist: event not a string", P_HIST,
	  HS("{\"status_str\": \"success\", \"completed\": true, \"messages\": [[1, {}]]}"), 0, -EPROTO,
	  "status.messages[0][0] (event): expected string, got int" },
	{ "hist: data not an object", P_HIST,
	  HS("{\"status_str\": \"success\", \"completed\": true, \"messages\": [[\"execution_start\", 5]]}"), 0,
	  -EPROTO, "status.messages[0][1]: expected object, got int" },
	{ "hist: timestamp string", P_HIST,
	  HS("{\"status_str\": \"success\", \"completed\": true, \"messages\": [[\"x\", {}], "
	     "[\"execution_start\", {\"timestamp\": \"1\"}]]}"),
	  0, -EPROTO, "status.messages[1][1].timestamp: expected a number, got string" },
	{ "hist: timestamp negative", P_HIST,
	  HS("{\"status_str\": \"success\", \"completed\": true, \"messages\": "
	     "[[\"execution_success\", {\"timestamp\": -5}]]}"),
	  0, -EPROTO, "status.messages[0][1].timestamp: number -5 out of range [0, 9007199254740992]" },
	{ "hist: exception_message list", P_HIST,
	  HS("{\"status_str\": \"error\", \"completed\": false, \"messages\": "
	     "[[\"execution_error\", {\"exception_message\": [\"oom\"]}]]}"),
	  0, -EPROTO, "status.messages[0][1].exception_message: expected string, got array" },

	/* POST /prompt reply */
	{ "prompt: prompt_id missing", P_PROMPT, "{\"number\": 1, \"node_errors\": {}}", 0, -EPROTO,
	  "prompt_id: missing" },
	{ "prompt: prompt_id number", P_PROMPT, "{\"prompt_id\": 5, \"number\": 1}", 0, -EPROTO,
	  "prompt_id: expected string, got int" },
	{ "prompt: number missing", P_PROMPT, "{\"prompt_id\": \"a\", \"node_errors\": {}}", 0, -EPROTO,
	  "number: missing" },
	{ "prompt: number as string", P_PROMPT, "{\"prompt_id\": \"a\", \"number\": \"3\"}", 0, -EPROTO,
	  "number: expected a number, got string" },
	{ "prompt: node_errors string", P_PROMPT, "{\"prompt_id\": \"a\", \"number\": 1, \"node_errors\": \"\"}", 0,
	  -EPROTO, "node_errors: expected object, got string" },
	{ "prompt: error int", P_PROMPT, "{\"error\": 400}", 0, -EPROTO, "error: expected object or string, got int" },
	{ "prompt: error message list", P_PROMPT, "{\"error\": {\"message\": []}}", 0, -EPROTO,
	  "error.message: expected string, got array" },
};

static int run_parser(enum parser p, const char *json, size_t len, char *err, size_t errsz)
{
	int r;

	switch (p) {
	case P_SYS: {
		struct comfy_system_stats s;

		memset(&s, 0xaa, sizeof(s));
		r = comfy_parse_system_stats(json, len, &s, err, errsz);
		if (r < 0) {
			static const struct comfy_system_stats zero;
			assert_memory_equal(&s, &zero, sizeof(s));
		}
		return r;
	}
	case P_QUEUE: {
		struct comfy_queue q;

		r = comfy_parse_queue(json, len, &q, err, errsz);
		if (r < 0) {
			assert_null(q.running);
			assert_null(q.pending);
			assert_int_equal(q.n_running + q.n_pending, 0);
		}
		comfy_queue_free(&q);
		return r;
	}
	case P_HIST: {
		struct comfy_history_item h;

		r = comfy_parse_history_item(json, len, "ID", &h, err, errsz);
		if (r < 0)
			assert_false(h.found);
		return r;
	}
	case P_PROMPT: {
		struct comfy_prompt_reply pr;

		r = comfy_parse_prompt_reply(json, len, &pr, err, errsz);
		if (r < 0) {
			assert_string_equal(pr.prompt_id, "");
			assert_int_equal(pr.number, COMFY_NUMBER_NONE);
		}
		return r;
	}
	default:
		fail();
	}
	return 0;
}

static void test_malformed_table(void **state)
{
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		size_t len = c->len ? c->len : strlen(c->json);

		for (int p = P_SYS; p < P_ALL; p++) {
			char err[COMFY_ERROR_MAX] = "";
			int r;

			if (c->parser != P_ALL && c->parser != (enum parser)p)
				continue;
			r = run_parser((enum parser)p, c->json, len, err, sizeof(err));
			if (r != c->rc || strcmp(err, c->error) != 0)
				fail_msg("case '%s' parser %d: got %d '%s', want %d '%s'", c->name, p, r, err, c->rc,
					 c->error);
			/* A NULL error buffer is fine too. */
			assert_int_equal(run_parser((enum parser)p, c->json, len, NULL, 0), c->rc);
		}
	}
}

static char *nested(size_t depth, size_t *ret_len)
{
	/* {"queue_running": [[[[...]]]]} */
	size_t len = 18 + 2 * depth + 1;
	char *s = malloc(len + 1);

	assert_non_null(s);
	memcpy(s, "{\"queue_running\":", 17);
	memset(s + 17, '[', depth);
	memset(s + 17 + depth, ']', depth);
	s[17 + 2 * depth] = '}';
	s[18 + 2 * depth] = '\0';
	*ret_len = strlen(s);
	return s;
}

static void test_deep_nesting(void **state)
{
	static const size_t depths[] = { COMFY_JSON_MAX_DEPTH - 1, COMFY_JSON_MAX_DEPTH, COMFY_JSON_MAX_DEPTH + 1, 100000 };
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(depths); i++) {
		size_t len;
		_cleanup_free_ char *s = nested(depths[i], &len);
		char err[COMFY_ERROR_MAX], want[COMFY_ERROR_MAX];
		struct comfy_queue q;
		int r = comfy_parse_queue(s, len, &q, err, sizeof(err));

		assert_int_equal(r, -EPROTO);
		if (depths[i] < COMFY_JSON_MAX_DEPTH) {
			/* Parses; then the first item is not a queue entry. */
			assert_string_equal(err, "queue_running[0]: expected at least 5 elements, got 1");
		} else {
			/* The root object is level 1: the 128th '[' (byte 17 + 127) is one too deep. */
			snprintf(want, sizeof(want), "not JSON: nesting deeper than %d levels at byte %d",
				 COMFY_JSON_MAX_DEPTH, 17 + COMFY_JSON_MAX_DEPTH - 1);
			assert_string_equal(err, want);
		}
		comfy_queue_free(&q);
	}
}

static void test_huge_inputs(void **state)
{
	const size_t n = 4u << 20;
	_cleanup_free_ char *s = malloc(n + 64);
	struct comfy_history_item h;
	struct comfy_queue q;
	char err[COMFY_ERROR_MAX];
	size_t len;
	(void)state;

	assert_non_null(s);
	/* 4 MiB of whitespace, then nothing. */
	memset(s, ' ', n);
	assert_int_equal(comfy_parse_queue(s, n, &q, err, sizeof(err)), -EPROTO);
	assert_string_equal(err, "not JSON: unexpected end of data at byte 4194304");

	/* A 4 MiB string value: fine, and ignored. */
	len = (size_t)sprintf(s, "{\"x\": \"");
	memset(s + len, 'a', n);
	len += n;
	len += (size_t)sprintf(s + len, "\"}");
	assert_int_equal(comfy_parse_history_item(s, len, "ID", &h, err, sizeof(err)), 0);
	assert_false(h.found);

	/* Over the json-c int length limit is refused before parsing (no allocation of that size here). */
	assert_int_equal(comfy_parse_queue(s, (size_t)INT32_MAX + 1, &q, err, sizeof(err)), -EPROTO);
	assert_string_equal(err, "not JSON: 2147483648 bytes is too large to parse");
}

static void test_parser_bad_args(void **state)
{
	struct comfy_history_item h;
	char err[COMFY_ERROR_MAX];
	(void)state;

	assert_int_equal(comfy_parse_queue("{}", 2, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(comfy_parse_system_stats("{}", 2, NULL, NULL, 0), -EINVAL);
	assert_int_equal(comfy_parse_history_item("{}", 2, NULL, &h, err, sizeof(err)), -EINVAL);
	assert_int_equal(comfy_parse_history_item(NULL, 5, "ID", &h, err, sizeof(err)), -EINVAL);
	assert_int_equal(comfy_parse_history_item(NULL, 0, "ID", &h, err, sizeof(err)), -EPROTO);
	/* A tiny error buffer truncates, never overflows. */
	assert_int_equal(comfy_parse_queue("[]", 2, &(struct comfy_queue){}, err, 5), -EPROTO);
	assert_string_equal(err, "expe");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_system_stats_cuda),
		cmocka_unit_test(test_system_stats_cpu_old),
		cmocka_unit_test(test_system_stats_truncates_long_strings),
		cmocka_unit_test(test_queue_idle),
		cmocka_unit_test(test_queue_busy),
		cmocka_unit_test(test_queue_extra_elements_and_fractional_number),
		cmocka_unit_test(test_queue_many_items),
		cmocka_unit_test(test_history_success),
		cmocka_unit_test(test_history_error_oom),
		cmocka_unit_test(test_history_interrupted),
		cmocka_unit_test(test_history_empty_and_variants),
		cmocka_unit_test(test_prompt_replies),
		cmocka_unit_test(test_malformed_table),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_huge_inputs),
		cmocka_unit_test(test_parser_bad_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
