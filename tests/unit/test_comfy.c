// SPDX-License-Identifier: GPL-2.0
/* comfy.c: reply parsers on ComfyUI-shaped fixtures and malformed input, and the libcurl transport against
 * tiny HTTP servers running in a thread of this test (no simulator needed). */
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

#define ID_RUNNING "3f0c6a1e-9d4b-4c56-8a0e-2b7f5e1d9c01"
#define ID_FRONT "b2c4e6a8-1111-4222-8333-944455556666"
#define ID_FLOAT "c0ffee00-0000-4000-8000-000000000014"
#define ID_OOM "5d6e7f80-aaaa-4bbb-8ccc-dddddddddddd"

static char *read_fixture(const char *name, size_t *ret_len)
{
	char path[512];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/comfy/%s", FIXTURES, name);
	f = fopen(path, "re");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (ret_len)
		*ret_len = (size_t)n;
	return buf;
}

/* Compares JSON text semantically (json-c re-serialises, key order and spacing may differ). */
static void assert_json_equal(const char *a, const char *b)
{
	struct json_tokener *tok = json_tokener_new_ex(COMFY_JSON_MAX_DEPTH);
	json_object *ja, *jb;

	ja = json_tokener_parse_ex(tok, a, (int)strlen(a));
	json_tokener_reset(tok);
	jb = json_tokener_parse_ex(tok, b, (int)strlen(b));
	json_tokener_free(tok);
	assert_non_null(ja);
	assert_non_null(jb);
	if (!json_object_equal(ja, jb))
		fail_msg("JSON differs:\n%s\n%s", a, b);
	json_object_put(ja);
	json_object_put(jb);
}

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

/* ======================================================================================================= */
/* In-process HTTP servers                                                                                  */
/* ======================================================================================================= */

enum srv_mode {
	SRV_ROUTES,   /* answer by route table, keep-alive */
	SRV_SILENT,   /* read the request, never answer */
	SRV_RAW,      /* send `raw` verbatim, close */
	SRV_BIG,      /* stream big_bytes of JSON-ish filler, close */
};

struct route {
	const char *method;
	const char *path;
	int status;
	const char *body;
};

struct req {
	char method[16];
	char path[512];
	char headers[8192];
	char body[65536];
	size_t body_len;
};

struct srv {
	int lfd;
	int port;
	pthread_t thread;
	atomic_bool stop;
	pthread_mutex_t lock;
	/* set by the test (under lock once the thread runs) */
	enum srv_mode mode;
	const struct route *routes;
	size_t n_routes;
	const char *raw;
	size_t raw_len;
	size_t big_bytes;
	bool big_content_length;
	/* recorded by the server */
	struct req last;
	int n_requests;
	int n_connections;
	size_t big_sent;
};

static bool send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool wait_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) > 0;
}

/* Reads one request; 1 on success, 0 on EOF/error. */
static int read_request(int fd, struct req *r)
{
	char buf[16384];
	size_t len = 0, hdr_len, cl = 0;
	char *end, *p;

	memset(r, 0, sizeof(*r));
	for (;;) {
		ssize_t n;

		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end)
			break;
		if (len + 1 >= sizeof(buf) || !wait_readable(fd, 5000))
			return 0;
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			return 0;
		len += (size_t)n;
	}
	hdr_len = (size_t)(end - buf) + 4;
	if (sscanf(buf, "%15s %511s", r->method, r->path) != 2)
		return 0;
	snprintf(r->headers, sizeof(r->headers), "%.*s", (int)hdr_len, buf);
	for (p = r->headers; (p = strchr(p, '\n')); p++)
		if (strncasecmp(p + 1, "Content-Length:", 15) == 0)
			cl = strtoul(p + 16, NULL, 10);
	if (cl >= sizeof(r->body))
		return 0;
	r->body_len = MIN(len - hdr_len, cl);
	memcpy(r->body, buf + hdr_len, r->body_len);
	while (r->body_len < cl) {
		ssize_t n;

		if (!wait_readable(fd, 5000))
			return 0;
		n = recv(fd, r->body + r->body_len, cl - r->body_len, 0);
		if (n <= 0)
			return 0;
		r->body_len += (size_t)n;
	}
	r->body[r->body_len] = '\0';
	return 1;
}

/* Returns whether to keep the connection open. */
static bool serve(struct srv *s, int fd, const struct req *r)
{
	enum srv_mode mode;
	char head[512];

	pthread_mutex_lock(&s->lock);
	mode = s->mode;
	pthread_mutex_unlock(&s->lock);

	switch (mode) {
	case SRV_SILENT:
		while (!atomic_load(&s->stop) && wait_readable(fd, 5000)) {
			char c[256];

			if (recv(fd, c, sizeof(c), 0) <= 0)
				break;
		}
		return false;
	case SRV_RAW:
		send_all(fd, s->raw, s->raw_len);
		return false;
	case SRV_BIG: {
		static char chunk[65536];
		size_t sent = 0;
		int n;

		memset(chunk, ' ', sizeof(chunk));
		if (s->big_content_length)
			n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				     "Content-Length: %zu\r\n\r\n", s->big_bytes);
		else
			n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				     "Connection: close\r\n\r\n");
		if (send_all(fd, head, (size_t)n))
			while (sent < s->big_bytes && send_all(fd, chunk, MIN(sizeof(chunk), s->big_bytes - sent)))
				sent += MIN(sizeof(chunk), s->big_bytes - sent);
		pthread_mutex_lock(&s->lock);
		s->big_sent = sent;
		pthread_mutex_unlock(&s->lock);
		return false;
	}
	case SRV_ROUTES:
	default:
		for (size_t i = 0; i < s->n_routes; i++) {
			const struct route *rt = &s->routes[i];
			size_t blen = rt->body ? strlen(rt->body) : 0;
			int n;

			if (strcmp(rt->method, r->method) != 0 || strcmp(rt->path, r->path) != 0)
				continue;
			n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
				     "Content-Length: %zu\r\n\r\n", rt->status, blen);
			return send_all(fd, head, (size_t)n) && send_all(fd, rt->body ? rt->body : "", blen);
		}
		static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 14\r\n\r\n404: Not Found";
		return send_all(fd, nf, sizeof(nf) - 1);
	}
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	int cfd = -1;

	while (!atomic_load(&s->stop)) {
		struct pollfd p[2] = { { .fd = s->lfd, .events = POLLIN }, { .fd = cfd, .events = POLLIN } };
		struct req *r;

		if (poll(p, cfd >= 0 ? 2 : 1, 20) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			int nfd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

			if (nfd < 0)
				continue;
			if (cfd >= 0)
				close(cfd);
			cfd = nfd;
			pthread_mutex_lock(&s->lock);
			s->n_connections++;
			pthread_mutex_unlock(&s->lock);
			continue;
		}
		if (cfd < 0 || !p[1].revents)
			continue;
		r = malloc(sizeof(*r));
		assert_non_null(r);
		if (!read_request(cfd, r)) {
			free(r);
			close(cfd);
			cfd = -1;
			continue;
		}
		pthread_mutex_lock(&s->lock);
		s->last = *r;
		s->n_requests++;
		pthread_mutex_unlock(&s->lock);
		if (!serve(s, cfd, r)) {
			close(cfd);
			cfd = -1;
		}
		free(r);
	}
	if (cfd >= 0)
		close(cfd);
	return NULL;
}

static int listen_any(int *ret_port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	*ret_port = ntohs(a.sin_port);
	return fd;
}

static struct srv *srv_start(enum srv_mode mode)
{
	struct srv *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->mode = mode;
	s->lfd = listen_any(&s->port);
	pthread_mutex_init(&s->lock, NULL);
	atomic_init(&s->stop, false);
	assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
	return s;
}

static void srv_stop(struct srv *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	close(s->lfd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void srv_set_raw(struct srv *s, const char *raw)
{
	pthread_mutex_lock(&s->lock);
	s->mode = SRV_RAW;
	s->raw = raw;
	s->raw_len = strlen(raw);
	pthread_mutex_unlock(&s->lock);
}

static struct req srv_last(struct srv *s, int *ret_n_requests)
{
	struct req r;

	pthread_mutex_lock(&s->lock);
	r = s->last;
	if (ret_n_requests)
		*ret_n_requests = s->n_requests;
	pthread_mutex_unlock(&s->lock);
	return r;
}

static struct comfy_client *client_for(int port, const char *prefix, int total_ms, const char *auth)
{
	char url[128];
	struct comfy_client *c = NULL;
	struct comfy_config cfg = { .base_url = url, .total_timeout_ms = total_ms, .auth_header = auth };

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, prefix ? prefix : "");
	assert_int_equal(comfy_client_new(&cfg, &c), 0);
	assert_non_null(c);
	return c;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parses a request body, checks it is an object with exactly the given keys (NULL-terminated). */
static json_object *body_with_keys(const struct req *r, ...)
{
	json_object *o = json_tokener_parse(r->body);
	size_t n = 0;
	va_list ap;
	const char *k;

	if (!o || !json_object_is_type(o, json_type_object))
		fail_msg("request body is not a JSON object: '%s'", r->body);
	va_start(ap, r);
	while ((k = va_arg(ap, const char *))) {
		if (!json_object_object_get_ex(o, k, NULL))
			fail_msg("request body lacks key '%s': %s", k, r->body);
		n++;
	}
	va_end(ap);
	if ((size_t)json_object_object_length(o) != n)
		fail_msg("request body has %d keys, want %zu: %s", json_object_object_length(o), n, r->body);
	return o;
}

static bool body_bool(json_object *o, const char *key)
{
	json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	assert_true(json_object_is_type(v, json_type_boolean));
	return json_object_get_boolean(v);
}

/* ======================================================================================================= */
/* Transport tests                                                                                          */
/* ======================================================================================================= */

static void test_client_new_validation(void **state)
{
	static const char *const bad_urls[] = {
		"ftp://127.0.0.1:8188", "file:///etc/passwd", "http://", "not a url", "http://h:1/x?q=1",
		"http://h:1/#frag", "127.0.0.1:8188", "http://h:99999", "",
	};
	static const char *const bad_auth[] = {
		"Authorization Bearer x", ": x", "Auth orization: x", "X: a\r\nY: b", "X: a\n",
	};
	struct comfy_client *c = (void *)1;
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(bad_urls); i++) {
		struct comfy_config cfg = { .base_url = bad_urls[i] };

		if (comfy_client_new(&cfg, &c) != -EINVAL)
			fail_msg("URL '%s' accepted", bad_urls[i]);
		assert_null(c);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad_auth); i++) {
		struct comfy_config cfg = { .auth_header = bad_auth[i] };

		if (comfy_client_new(&cfg, &c) != -EINVAL)
			fail_msg("auth header '%s' accepted", bad_auth[i]);
	}
	assert_int_equal(comfy_client_new(NULL, NULL), -EINVAL);

	assert_int_equal(comfy_client_new(NULL, &c), 0);
	assert_string_equal(comfy_client_authority(c), "127.0.0.1:8188");
	assert_string_equal(comfy_last_error(c), "");
	c = comfy_client_free(c);
	assert_null(c);
	assert_null(comfy_client_free(NULL));

	struct comfy_config https = { .base_url = "https://comfy.example:443/api/", .auth_header = "X-Key: v" };
	assert_int_equal(comfy_client_new(&https, &c), 0);
	assert_string_equal(comfy_client_authority(c), "comfy.example:443");
	c = comfy_client_free(c);
	struct comfy_config v6 = { .base_url = "http://[::1]:8190" };
	assert_int_equal(comfy_client_new(&v6, &c), 0);
	assert_string_equal(comfy_client_authority(c), "[::1]:8190");
	c = comfy_client_free(c);
}

static void test_connection_refused(void **state)
{
	struct comfy_client *c;
	struct comfy_queue q;
	char want[128];
	int port, fd;
	(void)state;

	/* A port that was just free: nobody listens. */
	fd = listen_any(&port);
	close(fd);
	c = client_for(port, NULL, 0, NULL);
	assert_int_equal(comfy_get_queue(c, &q), -ECONNREFUSED);
	snprintf(want, sizeof(want), "connection refused to 127.0.0.1:%d", port);
	assert_string_equal(comfy_last_error(c), want);
	assert_int_equal(q.n_running + q.n_pending, 0);
	comfy_queue_free(&q);
	assert_int_equal(comfy_free(c, true, false), -ECONNREFUSED);
	comfy_client_free(c);
}

static void test_timeout(void **state)
{
	struct srv *s = srv_start(SRV_SILENT);
	struct comfy_client *c = client_for(s->port, NULL, 300, NULL);
	struct comfy_history_item h;
	int64_t t0, dt;
	(void)state;

	t0 = now_ms();
	assert_int_equal(comfy_get_history_item(c, "abc", &h), -ETIMEDOUT);
	dt = now_ms() - t0;
	assert_true(dt >= 250);
	assert_true(dt < 1500);
	assert_string_equal(comfy_last_error(c), "timeout after 300 ms on /history/abc");
	assert_false(h.found);
	comfy_client_free(c);
	srv_stop(s);
}

struct raw_case {
	const char *name;
	const char *raw;
	int rc;
	const char *error;       /* exact, "%d" replaced by the port where present */
};

static const struct raw_case raw_cases[] = {
	{ "truncated JSON", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 26\r\n\r\n"
			    "{\"queue_running\": [[1, \"ab",
	  -EPROTO, "reply from /queue is not JSON: unexpected end of data at byte 26" },
	{ "body shorter than Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"queue_run",
	  -EPROTO, "reply from /queue truncated after 11 bytes" },
	{ "close-delimited truncated JSON", "HTTP/1.0 200 OK\r\n\r\n{\"queue_running\": []",
	  -EPROTO, "reply from /queue is not JSON: unexpected end of data at byte 20" },
	{ "truncated after a value", "HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n{\"queue_running\":1",
	  -EPROTO, "reply from /queue is not JSON: unexpected end of data at byte 18" },
	{ "wrong types", "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n{\"queue_running\": {}, \"queue_pending\": []}",
	  -EPROTO, "unexpected reply from /queue: queue_running: expected array, got object" },
	{ "empty 200", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", -EPROTO, "reply from /queue is not JSON: empty" },
	{ "HTTP 500", "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 55\r\n\r\n"
		      "500 Internal Server Error\n\nServer got itself in trouble",
	  -EBADMSG, "HTTP 500 from /queue: 500 Internal Server Error" },
	{ "HTTP 404 empty", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", -EBADMSG, "HTTP 404 from /queue" },
	{ "HTTP 403", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", -EACCES,
	  "HTTP 403 from /queue (auth header missing or rejected)" },
	{ "redirect", "HTTP/1.1 302 Found\r\nLocation: http://192.0.2.1:8188/queue\r\nContent-Length: 0\r\n\r\n",
	  -EBADMSG, "HTTP 302 from /queue: redirect to http://192.0.2.1:8188/queue not followed" },
	{ "not HTTP", "SSH-2.0-OpenSSH_9.2\r\n", -EPROTO, NULL },
	{ "closed without reply", "", -ECONNRESET, "127.0.0.1:%d closed the connection without replying to /queue" },
};

static void test_bad_servers(void **state)
{
	struct srv *s = srv_start(SRV_RAW);
	struct comfy_client *c = client_for(s->port, NULL, 2000, NULL);
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(raw_cases); i++) {
		const struct raw_case *rc = &raw_cases[i];
		struct comfy_queue q;
		char want[256];
		int r, n;

		srv_set_raw(s, rc->raw);
		r = comfy_get_queue(c, &q);
		if (r != rc->rc)
			fail_msg("case '%s': got %d (%s), want %d", rc->name, r, comfy_last_error(c), rc->rc);
		if (rc->error) {
			snprintf(want, sizeof(want), rc->error, s->port);
			if (strcmp(comfy_last_error(c), want) != 0)
				fail_msg("case '%s': got '%s', want '%s'", rc->name, comfy_last_error(c), want);
		} else {
			assert_true(strlen(comfy_last_error(c)) > 0);
		}
		assert_null(q.running);
		comfy_queue_free(&q);
		/* Redirects are not followed: the server saw exactly one request per case. */
		srv_last(s, &n);
		assert_int_equal(n, (int)i + 1);
	}
	comfy_client_free(c);
	srv_stop(s);
}

static void test_reply_too_big(void **state)
{
	static const struct route routes[] = {
		{ "GET", "/system_stats", 200, "{\"system\": {\"ram_total\": 10, \"ram_free\": 5}, \"devices\": []}" },
	};
	struct srv *s = srv_start(SRV_BIG);
	struct comfy_client *c = client_for(s->port, NULL, 5000, NULL);
	struct comfy_system_stats st;
	struct comfy_queue q;
	(void)state;

	/* 20 MiB without Content-Length: the write callback stops at the limit (default 8 MiB). */
	s->big_bytes = 20u << 20;
	assert_int_equal(comfy_get_queue(c, &q), -EMSGSIZE);
	assert_string_equal(comfy_last_error(c), "reply from /queue exceeds 8388608 bytes");
	assert_true(comfy_last_reply_bytes(c) <= COMFY_DEFAULT_MAX_REPLY_BYTES);
	assert_true(comfy_last_reply_bytes(c) > COMFY_DEFAULT_MAX_REPLY_BYTES - (1u << 20));
	comfy_queue_free(&q);

	/* Announced 20 MiB: refused from the header, nothing buffered. */
	pthread_mutex_lock(&s->lock);
	s->big_content_length = true;
	pthread_mutex_unlock(&s->lock);
	assert_int_equal(comfy_get_queue(c, &q), -EMSGSIZE);
	assert_string_equal(comfy_last_error(c), "reply from /queue exceeds 8388608 bytes");
	assert_int_equal(comfy_last_reply_bytes(c), 0);
	comfy_queue_free(&q);

	/* The client recovers on the next call. */
	pthread_mutex_lock(&s->lock);
	s->mode = SRV_ROUTES;
	s->routes = routes;
	s->n_routes = ARRAY_SIZE(routes);
	pthread_mutex_unlock(&s->lock);
	assert_int_equal(comfy_get_system_stats(c, &st), 0);
	assert_int_equal(st.ram_total_bytes, 10);
	assert_string_equal(comfy_last_error(c), "");
	comfy_client_free(c);
	srv_stop(s);
}

static void test_small_reply_limit(void **state)
{
	struct srv *s = srv_start(SRV_RAW);
	struct comfy_config cfg = { .max_reply_bytes = 16 };
	struct comfy_client *c;
	struct comfy_queue q;
	char url[64];
	(void)state;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", s->port);
	cfg.base_url = url;
	assert_int_equal(comfy_client_new(&cfg, &c), 0);
	srv_set_raw(s, "HTTP/1.0 200 OK\r\n\r\n{\"queue_running\": [], \"queue_pending\": []}");
	assert_int_equal(comfy_get_queue(c, &q), -EMSGSIZE);
	assert_true(comfy_last_reply_bytes(c) <= 16);
	comfy_client_free(c);
	srv_stop(s);
}

static void test_round_trip(void **state)
{
	_cleanup_free_ char *queue = read_fixture("queue_busy.json", NULL);
	_cleanup_free_ char *stats = read_fixture("system_stats_cuda.json", NULL);
	_cleanup_free_ char *hist = read_fixture("history_success.json", NULL);
	_cleanup_free_ char *prompt_ok = read_fixture("prompt_ok.json", NULL);
	const struct route routes[] = {
		{ "GET", "/api/queue", 200, queue },
		{ "GET", "/api/system_stats", 200, stats },
		{ "GET", "/api/history/" ID_RUNNING, 200, hist },
		{ "GET", "/api/history/a%20b%2Fc%3Fd%25e%23f", 200, "{}" },
		{ "POST", "/api/free", 200, NULL },
		{ "POST", "/api/interrupt", 200, NULL },
		{ "POST", "/api/queue", 200, NULL },
		{ "POST", "/api/prompt", 200, prompt_ok },
	};
	struct srv *s = srv_start(SRV_ROUTES);
	struct comfy_client *c;
	struct comfy_system_stats st;
	struct comfy_history_item h;
	struct comfy_queue q;
	char new_id[COMFY_PROMPT_ID_MAX];
	json_object *o, *v;
	struct req r;
	int n;
	(void)state;

	s->routes = routes;
	s->n_routes = ARRAY_SIZE(routes);
	/* A path prefix (reverse proxy or ComfyUI's /api alias), trailing slash stripped. */
	c = client_for(s->port, "/api/", 0, "Authorization: Bearer s3cret");

	assert_int_equal(comfy_get_system_stats(c, &st), 0);
	assert_int_equal(st.ram_total_bytes, UINT64_C(134850293760));
	r = srv_last(s, NULL);
	assert_string_equal(r.method, "GET");
	assert_non_null(strstr(r.headers, "\r\nAuthorization: Bearer s3cret\r\n"));
	assert_non_null(strstr(r.headers, "\r\nAccept: application/json\r\n"));

	assert_int_equal(comfy_get_queue(c, &q), 0);
	assert_int_equal(q.n_running, 1);
	assert_int_equal(q.n_pending, 2);
	assert_string_equal(q.running[0].prompt_id, ID_RUNNING);
	assert_true(comfy_last_reply_bytes(c) == strlen(queue));

	assert_int_equal(comfy_get_history_item(c, ID_RUNNING, &h), 0);
	assert_true(h.found);
	assert_int_equal(h.end_ms, INT64_C(1754400009750));
	/* Ids are escaped into the path: space, '/', '?', '%' and '#' must not change the route. */
	assert_int_equal(comfy_get_history_item(c, "a b/c?d%e#f", &h), 0);
	assert_false(h.found);
	assert_string_equal(srv_last(s, NULL).path, "/api/history/a%20b%2Fc%3Fd%25e%23f");
	assert_int_equal(comfy_get_history_item(c, "", &h), -EINVAL);
	assert_int_equal(comfy_get_history_item(c, NULL, &h), -EINVAL);

	/* /free: exactly the documented bodies. */
	assert_int_equal(comfy_free(c, true, false), 0);
	r = srv_last(s, NULL);
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.path, "/api/free");
	assert_non_null(strstr(r.headers, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strstr(r.headers, "\r\nAuthorization: Bearer s3cret\r\n"));
	o = body_with_keys(&r, "unload_models", NULL);
	assert_true(body_bool(o, "unload_models"));
	json_object_put(o);
	assert_int_equal(comfy_free(c, true, true), 0);
	r = srv_last(s, NULL);
	o = body_with_keys(&r, "unload_models", "free_memory", NULL);
	assert_true(body_bool(o, "unload_models"));
	assert_true(body_bool(o, "free_memory"));
	json_object_put(o);
	srv_last(s, &n);
	assert_int_equal(comfy_free(c, false, false), -EINVAL);
	srv_last(s, &n);
	assert_int_equal(n, 6); /* the invalid call sent nothing */

	/* /interrupt with and without a prompt id. */
	assert_int_equal(comfy_interrupt(c, ID_RUNNING), 0);
	r = srv_last(s, NULL);
	assert_string_equal(r.path, "/api/interrupt");
	o = body_with_keys(&r, "prompt_id", NULL);
	assert_true(json_object_object_get_ex(o, "prompt_id", &v));
	assert_string_equal(json_object_get_string(v), ID_RUNNING);
	json_object_put(o);
	assert_int_equal(comfy_interrupt(c, NULL), 0);
	r = srv_last(s, NULL);
	json_object_put(body_with_keys(&r, NULL));

	/* Requeue the running item at the front under its original id. */
	assert_int_equal(comfy_submit_prompt(c, q.running[0].prompt_json, q.running[0].extra_data_json,
					     q.running[0].prompt_id, true, COMFY_NUMBER_NONE, new_id), 0);
	assert_string_equal(new_id, ID_RUNNING);
	assert_string_equal(comfy_last_error(c), "");
	r = srv_last(s, NULL);
	assert_string_equal(r.path, "/api/prompt");
	assert_null(strstr(r.headers, "Expect:"));
	o = body_with_keys(&r, "prompt", "extra_data", "prompt_id", "front", NULL);
	assert_true(body_bool(o, "front"));
	assert_true(json_object_object_get_ex(o, "prompt_id", &v));
	assert_string_equal(json_object_get_string(v), ID_RUNNING);
	assert_true(json_object_object_get_ex(o, "prompt", &v));
	assert_json_equal(json_object_to_json_string(v), q.running[0].prompt_json);
	assert_true(json_object_object_get_ex(o, "extra_data", &v));
	assert_json_equal(json_object_to_json_string(v), q.running[0].extra_data_json);
	json_object_put(o);

	/* With its original (negative) number instead of front. */
	assert_int_equal(comfy_submit_prompt(c, q.pending[0].prompt_json, q.pending[0].extra_data_json,
					     q.pending[0].prompt_id, false, q.pending[0].number, NULL), 0);
	r = srv_last(s, NULL);
	o = body_with_keys(&r, "prompt", "extra_data", "prompt_id", "number", NULL);
	assert_true(json_object_object_get_ex(o, "number", &v));
	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal(json_object_get_int64(v), -13);
	json_object_put(o);

	/* Minimal: just a prompt. */
	assert_int_equal(comfy_submit_prompt(c, "{\"1\": {}}", NULL, NULL, false, COMFY_NUMBER_NONE, new_id), 0);
	r = srv_last(s, NULL);
	json_object_put(body_with_keys(&r, "prompt", NULL));

	/* Bad arguments are refused before any request. */
	srv_last(s, &n);
	assert_int_equal(comfy_submit_prompt(c, "[1]", NULL, NULL, false, COMFY_NUMBER_NONE, new_id), -EINVAL);
	assert_string_equal(comfy_last_error(c), "prompt to submit: expected a JSON object, got array");
	assert_string_equal(new_id, "");
	assert_int_equal(comfy_submit_prompt(c, "{\"1\":", NULL, NULL, false, COMFY_NUMBER_NONE, NULL), -EINVAL);
	assert_string_equal(comfy_last_error(c), "prompt to submit: not JSON: unexpected end of data at byte 5");
	assert_int_equal(comfy_submit_prompt(c, "{}", "null", NULL, false, COMFY_NUMBER_NONE, NULL), -EINVAL);
	assert_int_equal(comfy_submit_prompt(c, "{}", NULL, "bad\nid", false, COMFY_NUMBER_NONE, NULL), -EINVAL);
	assert_int_equal(comfy_submit_prompt(c, "{}", NULL, NULL, false, INT64_MAX, NULL), -EINVAL);
	assert_int_equal(comfy_submit_prompt(c, NULL, NULL, NULL, false, COMFY_NUMBER_NONE, NULL), -EINVAL);
	assert_int_equal(comfy_interrupt(c, ""), -EINVAL);
	{
		int n2;

		srv_last(s, &n2);
		assert_int_equal(n2, n);
	}

	/* Delete pending items. */
	const char *ids[] = { q.pending[0].prompt_id, q.pending[1].prompt_id };
	assert_int_equal(comfy_delete_from_queue(c, ids, 2), 0);
	r = srv_last(s, NULL);
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.path, "/api/queue");
	o = body_with_keys(&r, "delete", NULL);
	assert_true(json_object_object_get_ex(o, "delete", &v));
	assert_int_equal(json_object_array_length(v), 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 0)), ID_FRONT);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 1)), ID_FLOAT);
	json_object_put(o);
	assert_int_equal(comfy_delete_from_queue(c, NULL, 0), 0);
	assert_int_equal(comfy_delete_from_queue(c, (const char *[]){ "ok", NULL }, 2), -EINVAL);

	/* One keep-alive connection carried everything. */
	pthread_mutex_lock(&s->lock);
	assert_int_equal(s->n_connections, 1);
	pthread_mutex_unlock(&s->lock);

	comfy_queue_free(&q);
	comfy_client_free(c);
	srv_stop(s);
}

static void test_prompt_rejected(void **state)
{
	_cleanup_free_ char *err_body = read_fixture("prompt_error.json", NULL);
	const struct route routes[] = {
		{ "POST", "/prompt", 400, err_body },
	};
	const struct route routes_garbage[] = {
		{ "POST", "/prompt", 400, "{\"detail\": \"nope\"}" },
	};
	const struct route routes_500[] = {
		{ "POST", "/prompt", 500, "oops" },
	};
	struct srv *s = srv_start(SRV_ROUTES);
	struct comfy_client *c = client_for(s->port, NULL, 0, NULL);
	char id[COMFY_PROMPT_ID_MAX] = "stale";
	(void)state;

	s->routes = routes;
	s->n_routes = 1;
	assert_int_equal(comfy_submit_prompt(c, "{\"4\": {}}", "{}", ID_RUNNING, true, COMFY_NUMBER_NONE, id),
			 -EBADMSG);
	assert_string_equal(comfy_last_error(c),
			    "ComfyUI rejected the prompt: Prompt outputs failed validation (1 node errors)");
	assert_string_equal(id, "");

	pthread_mutex_lock(&s->lock);
	s->routes = routes_garbage;
	pthread_mutex_unlock(&s->lock);
	assert_int_equal(comfy_submit_prompt(c, "{}", NULL, NULL, false, COMFY_NUMBER_NONE, id), -EBADMSG);
	assert_string_equal(comfy_last_error(c), "HTTP 400 from /prompt; prompt_id: missing");

	pthread_mutex_lock(&s->lock);
	s->routes = routes_500;
	pthread_mutex_unlock(&s->lock);
	assert_int_equal(comfy_submit_prompt(c, "{}", NULL, NULL, false, COMFY_NUMBER_NONE, id), -EBADMSG);
	assert_string_equal(comfy_last_error(c), "HTTP 500 from /prompt: oops");

	comfy_client_free(c);
	srv_stop(s);
}

static int teardown_all(void **state)
{
	(void)state;
	comfy_global_cleanup();
	return 0;
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
		cmocka_unit_test(test_client_new_validation),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_bad_servers),
		cmocka_unit_test(test_reply_too_big),
		cmocka_unit_test(test_small_reply_limit),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_prompt_rejected),
	};

	comfy_global_init();
	return cmocka_run_group_tests(tests, NULL, teardown_all);
}
