// SPDX-License-Identifier: GPL-2.0
/* journal: record building, the JSON line (types, escaping, limits), kind names and MESSAGE_IDs, and the
 * stdout lines of rec_emit in text and JSON mode (journal off: nothing is sent to the machine's journald). */
#include <errno.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <syslog.h>
#include <cmocka.h>
#include <sys/stat.h>
#include "common.h"
#include "journal.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

/* struct rec is 13 KB: static, so that nothing leaks when an assertion longjmps out */
static struct rec rec;
static char *json_out;

static int teardown(void **state)
{
	(void)state;
	free(json_out);
	json_out = NULL;
	journal_setup(NULL, false, false);
	return 0;
}

/* rec_to_json of rec, kept in json_out so that teardown frees it */
static const char *to_json(void)
{
	free(json_out);
	json_out = rec_to_json(&rec);
	assert_non_null(json_out);
	return json_out;
}

/* ---------------------------------------------------------------- kinds */

static void test_kind_names(void **state)
{
	static const char *const names[REC_MAX] = {
		[REC_EXEC] = "exec",
		[REC_FORK] = "fork",
		[REC_EXIT] = "exit",
		[REC_OOM_VICTIM] = "oom_victim",
		[REC_RSS] = "rss",
		[REC_MMAP] = "mmap",
		[REC_MUNMAP] = "munmap",
		[REC_RECLAIM] = "reclaim",
		[REC_MEMCG] = "memcg_event",
		[REC_GENERATION] = "generation",
		[REC_LEAK_SUSPECTED] = "leak_suspected",
		[REC_FORECAST] = "forecast",
		[REC_ACTION] = "action",
		[REC_DECISION] = "decision",
		[REC_ORPHAN] = "orphan",
		[REC_CRASH_LOOP] = "crash_loop",
		[REC_DAEMON] = "daemon",
		[REC_COMFY] = "comfy",
		[REC_PROCESS] = "process",
		[REC_INCIDENT] = "incident",
	};

	(void)state;
	for (int k = 0; k < REC_MAX; k++) {
		const char *id = rec_kind_message_id((enum rec_kind)k);

		assert_non_null(names[k]); /* a new kind needs a line here */
		assert_string_equal(rec_kind_name((enum rec_kind)k), names[k]);
		/* a MESSAGE_ID is 128 bits as 32 lower-case hex digits */
		if (strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32)
			fail_msg("kind %s: MESSAGE_ID '%s' is not 32 lower-case hex digits", names[k], id);
		for (int j = 0; j < k; j++) {
			assert_string_not_equal(rec_kind_name((enum rec_kind)j), names[k]);
			assert_string_not_equal(rec_kind_message_id((enum rec_kind)j), id);
		}
	}
	/* out of range: no crash, an obvious placeholder */
	assert_string_equal(rec_kind_name(REC_MAX), "unknown");
	assert_string_equal(rec_kind_message_id(REC_MAX), "");
	assert_string_equal(rec_kind_name((enum rec_kind)1000), "unknown");
	assert_string_equal(rec_kind_name((enum rec_kind)-1), "unknown");
	assert_string_equal(rec_kind_message_id((enum rec_kind)-1), "");
}

/* Every MESSAGE_ID has its catalog entry (deploy/oomsentry.catalog): journalctl -x explains the record. */
static void test_kind_catalog(void **state)
{
	char *text = NULL;
	size_t cap = 0;
	FILE *f = fopen(FIXTURES "/../../deploy/oomsentry.catalog", "re");

	(void)state;
	if (!f) {
		print_message("deploy/oomsentry.catalog not found from " FIXTURES "\n");
		skip();
	}
	ssize_t n = getdelim(&text, &cap, '\0', f);
	fclose(f);
	assert_true(n > 0);
	for (int k = 0; k < REC_MAX; k++) {
		char want[64];

		snprintf(want, sizeof(want), "\n-- %s\n", rec_kind_message_id((enum rec_kind)k));
		if (!strstr(text, want)) {
			free(text);
			fail_msg("no catalog entry for %s (%s)", rec_kind_name((enum rec_kind)k),
				 rec_kind_message_id((enum rec_kind)k));
		}
	}
	free(text);
}

/* ---------------------------------------------------------------- building */

static void test_rec_build(void **state)
{
	(void)state;
	memset(&rec, 0x5a, sizeof(rec));
	rec_init(&rec, REC_OOM_VICTIM, LOG_WARNING);
	assert_int_equal(rec.kind, REC_OOM_VICTIM);
	assert_int_equal(rec.priority, LOG_WARNING);
	assert_string_equal(rec.message, "");
	assert_int_equal(rec.n_fields, 0);

	rec_add(&rec, "PID", "%d", 4242);
	rec_add(&rec, "COMM", "%s", "python3");
	rec_add(&rec, "RSS_BYTES", "%llu", (unsigned long long)GIB(12));
	rec_message(&rec, "OOM victim pid %d (%s), RSS %llu", 4242, "python3", (unsigned long long)GIB(12));
	assert_int_equal(rec.n_fields, 3);
	assert_string_equal(rec.fields[0].key, "PID");
	assert_string_equal(rec.fields[0].value, "4242");
	assert_string_equal(rec.fields[2].key, "RSS_BYTES");
	assert_string_equal(rec.fields[2].value, "12884901888");
	assert_string_equal(rec.message, "OOM victim pid 4242 (python3), RSS 12884901888");
	/* fields keep their order; keys are lower-cased; "event" and "priority" first, "message" last */
	assert_string_equal(to_json(), "{\"event\":\"oom_victim\",\"priority\":4,\"pid\":4242,\"comm\":\"python3\","
				       "\"rss_bytes\":12884901888,\"message\":\"OOM victim pid 4242 (python3), RSS "
				       "12884901888\"}");
	/* rec_message replaces, rec_init starts over */
	rec_message(&rec, "second");
	assert_string_equal(rec.message, "second");
	rec_init(&rec, REC_DAEMON, LOG_INFO);
	assert_string_equal(to_json(), "{\"event\":\"daemon\",\"priority\":6,\"message\":\"\"}");
}

static void test_json_value_types(void **state)
{
	static const struct {
		const char *value;
		const char *json; /* what follows "value": */
	} cases[] = {
		{ "0", "0" },
		{ "42", "42" },
		{ "-3", "-3" },
		{ "-0", "0" },
		{ "9223372036854775807", "9223372036854775807" },
		{ "-9223372036854775808", "-9223372036854775808" },
		{ "0x1f", "\"0x1f\"" },
		{ "1.5", "\"1.5\"" },
		{ "-1.5", "\"-1.5\"" },
		{ "12abc", "\"12abc\"" },
		{ "1e3", "\"1e3\"" },
		{ "", "\"\"" },
		{ "-", "\"-\"" },
		{ "--1", "\"--1\"" },
		{ "+5", "\"+5\"" },
		{ " 5", "\" 5\"" },
		{ "5 ", "\"5 \"" },
		{ "5\n", "\"5\\n\"" },
		{ "-9223372036854775809", "\"-9223372036854775809\"" }, /* below INT64_MIN: kept exact as a string */
		{ "99999999999999999999999", "\"99999999999999999999999\"" },
		{ "yes", "\"yes\"" },
		{ "NaN", "\"NaN\"" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char want[256];

		rec_init(&rec, REC_RSS, LOG_INFO);
		rec_add(&rec, "VALUE", "%s", cases[i].value);
		snprintf(want, sizeof(want), "{\"event\":\"rss\",\"priority\":6,\"value\":%s,\"message\":\"\"}",
			 cases[i].json);
		if (strcmp(to_json(), want))
			fail_msg("value \"%s\": got %s, want %s", cases[i].value, json_out, want);
	}
}

/* An integer is a JSON number "so that consumers need no conversion" (journal.c) — but values above INT64_MAX
 * go out as strings: loop.c emits LIMIT_BYTES=%llu of effective_limit_bytes, which is CG_UNLIMITED
 * (18446744073709551615) for a cgroup without a limit, so the same key is a number on one line, a string on the
 * next. */
static void test_json_value_u64(void **state)
{
	(void)state;
	rec_init(&rec, REC_MEMCG, LOG_INFO);
	rec_add(&rec, "LIMIT_BYTES", "%llu", (unsigned long long)UINT64_MAX);
	rec_add(&rec, "USAGE_BYTES", "%llu", (unsigned long long)INT64_MAX + 1);
	to_json();
	assert_string_equal(json_out, "{\"event\":\"memcg_event\",\"priority\":6,\"limit_bytes\":18446744073709551615,"
				      "\"usage_bytes\":9223372036854775808,\"message\":\"\"}");
}

static void test_json_keys(void **state)
{
	char longkey[64];

	(void)state;
	rec_init(&rec, REC_GENERATION, LOG_NOTICE);
	rec_add(&rec, "PROMPT_ID", "%s", "3f2a");
	rec_add(&rec, "Mixed_Case9", "%s", "x");
	rec_add(&rec, "already_lower", "%d", 1);
	memset(longkey, 'K', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = 0;
	rec_add(&rec, longkey, "%d", 2); /* cut to 31 characters */
	assert_int_equal(strlen(rec.fields[3].key), sizeof(rec.fields[3].key) - 1);
	assert_string_equal(to_json(), "{\"event\":\"generation\",\"priority\":5,\"prompt_id\":\"3f2a\",\"mixed_case9\":"
				       "\"x\",\"already_lower\":1,\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\":2,\"message\":\"\"}");
	/* the same key twice: one JSON member, the last value */
	rec_init(&rec, REC_RSS, LOG_INFO);
	rec_add(&rec, "PID", "%d", 1);
	rec_add(&rec, "PID", "%d", 2);
	assert_string_equal(to_json(), "{\"event\":\"rss\",\"priority\":6,\"pid\":2,\"message\":\"\"}");
}

/* json-c's own parser gives back exactly what went in */
static void roundtrip(const char *text)
{
	struct json_object *o, *v;

	rec_init(&rec, REC_COMFY, LOG_ERR);
	rec_add(&rec, "ERROR", "%s", text);
	rec_message(&rec, "%s", text);
	to_json();
	assert_null(strchr(json_out, '\n')); /* one line */
	o = json_tokener_parse(json_out);
	if (!o)
		fail_msg("not JSON: %s", json_out);
	assert_true(json_object_object_get_ex(o, "message", &v));
	assert_string_equal(json_object_get_string(v), text);
	assert_true(json_object_object_get_ex(o, "error", &v));
	assert_true(json_object_is_type(v, json_type_string));
	assert_string_equal(json_object_get_string(v), text);
	assert_true(json_object_object_get_ex(o, "event", &v));
	assert_string_equal(json_object_get_string(v), "comfy");
	assert_true(json_object_object_get_ex(o, "priority", &v));
	assert_int_equal(json_object_get_int(v), LOG_ERR);
	json_object_put(o);
}

static void test_json_escaping(void **state)
{
	char ctl[40];

	(void)state;
	roundtrip("say \"hi\"");
	roundtrip("back\\slash \\n not a newline");
	roundtrip("two\nlines\r\n\ttabbed");
	roundtrip("url http://127.0.0.1:8188/prompt </script>");
	roundtrip("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x92\xa5"); /* UTF-8 passes through */
	roundtrip("{\"json\": [1, 2]}");
	for (int i = 1; i < 32; i++)
		ctl[i - 1] = (char)i;
	ctl[31] = 0x7f;
	ctl[32] = 0;
	roundtrip(ctl);

	/* the exact escapes: \" \\ \n \t \u0001; '/' is left alone */
	rec_init(&rec, REC_DAEMON, LOG_INFO);
	rec_message(&rec, "a\"b\\c\nd\te\x01/f");
	assert_string_equal(to_json(), "{\"event\":\"daemon\",\"priority\":6,\"message\":\"a\\\"b\\\\c\\nd\\te\\u0001/f\"}");
}

static bool valid_utf8(const unsigned char *s)
{
	while (*s) {
		int n = *s < 0x80 ? 0 : (*s & 0xe0) == 0xc0 ? 1 : (*s & 0xf0) == 0xe0 ? 2 : (*s & 0xf8) == 0xf0 ? 3 : -1;

		if (n < 0 || (n == 1 && *s < 0xc2))
			return false;
		s++;
		for (int i = 0; i < n; i++, s++)
			if ((*s & 0xc0) != 0x80)
				return false;
	}
	return true;
}

/* A process name or command line is whatever bytes the process chose; the JSON line must still be valid UTF-8
 * (RFC 8259), or a consumer decoding the line (Python's json.loads on a str, jq) rejects it. */
static void test_json_invalid_utf8(void **state)
{
	(void)state;
	rec_init(&rec, REC_EXEC, LOG_INFO);
	rec_add(&rec, "COMM", "%s", "py\xff\xfe");
	rec_message(&rec, "exec pid 7 %s", "py\xc3(");
	to_json();
	if (!valid_utf8((const unsigned char *)json_out))
		fail_msg("JSON line is not valid UTF-8: %s", json_out);
}

static void test_limits(void **state)
{
	char big[1200];
	struct json_object *o, *v;

	(void)state;
	rec_init(&rec, REC_INCIDENT, LOG_CRIT);
	for (int i = 0; i < REC_MAX_FIELDS + 8; i++)
		rec_add(&rec, i < REC_MAX_FIELDS ? "F" : "EXTRA", "%d", i);
	/* the fields past REC_MAX_FIELDS are dropped, nothing overflows */
	assert_int_equal(rec.n_fields, REC_MAX_FIELDS);
	assert_string_equal(rec.fields[REC_MAX_FIELDS - 1].key, "F");
	assert_string_equal(rec.fields[REC_MAX_FIELDS - 1].value, "31");
	assert_null(strstr(to_json(), "extra"));
	for (int i = 0; i < REC_MAX_FIELDS; i++)
		snprintf(rec.fields[i].key, sizeof(rec.fields[i].key), "F%d", i);
	o = json_tokener_parse(to_json());
	assert_non_null(o);
	assert_int_equal(json_object_object_length(o), REC_MAX_FIELDS + 3);
	assert_true(json_object_object_get_ex(o, "f31", &v));
	assert_int_equal(json_object_get_int(v), 31);
	json_object_put(o);

	/* long values and messages are cut, NUL-terminated */
	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	rec_init(&rec, REC_COMFY, LOG_INFO);
	rec_add(&rec, "BODY", "%s", big);
	rec_message(&rec, "%s%s", big, big);
	assert_int_equal(strlen(rec.fields[0].value), sizeof(rec.fields[0].value) - 1);
	assert_int_equal(strlen(rec.message), sizeof(rec.message) - 1);
	o = json_tokener_parse(to_json());
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "body", &v));
	assert_int_equal(json_object_get_string_len(v), sizeof(rec.fields[0].value) - 1);
	json_object_put(o);
}

/* ---------------------------------------------------------------- rec_emit */

/* What the writer thread wrote to f (a temporary file) once the queue is flushed. */
static char *emitted(FILE *f)
{
	struct timespec ts;
	char *buf;
	long len;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	assert_int_equal(journal_flush((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec + 10000000000ULL), 0);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	return buf;
}

static void test_emit_text(void **state)
{
	FILE *out = tmpfile();
	char *buf;

	(void)state;
	assert_non_null(out);
	journal_setup(out, false, false);
	assert_false(journal_connected());

	rec_init(&rec, REC_RSS, LOG_INFO);
	rec_add(&rec, "PID", "%d", 4242);
	rec_message(&rec, "pid 4242 python3 RSS 1.0G (+64M)");
	assert_int_equal(rec_emit(&rec), 0);
	rec_init(&rec, REC_LEAK_SUSPECTED, LOG_WARNING);
	rec_message(&rec, "residual grows");
	assert_int_equal(rec_emit(&rec), 0);
	rec_init(&rec, REC_MAX, LOG_INFO);
	rec_message(&rec, "odd kind");
	assert_int_equal(rec_emit(&rec), 0);
	rec_init(&rec, REC_EXIT, LOG_INFO);
	assert_int_equal(rec_emit(&rec), 0);
	/* written by the writer thread, in order */
	buf = emitted(out);
	assert_string_equal(buf, "rss            pid 4242 python3 RSS 1.0G (+64M)\n"
				 "leak_suspected residual grows\n"
				 "unknown        odd kind\n"
				 "exit           \n");
	journal_setup(NULL, false, false);
	fclose(out);
	free(buf);
}

static void test_emit_json(void **state)
{
	FILE *out = tmpfile();
	char *buf;

	(void)state;
	assert_non_null(out);
	journal_setup(out, true, false);
	rec_init(&rec, REC_ACTION, LOG_NOTICE);
	rec_add(&rec, "RUNG", "%s", "reap_orphans");
	rec_add(&rec, "PID", "%d", 77);
	rec_add(&rec, "FREED_BYTES", "%llu", (unsigned long long)MIB(512));
	rec_message(&rec, "reaped orphan pid %d (\"python3\")", 77);
	assert_int_equal(rec_emit(&rec), 0);
	rec_init(&rec, REC_DAEMON, LOG_INFO);
	rec_message(&rec, "line\nbreak");
	assert_int_equal(rec_emit(&rec), 0);
	buf = emitted(out);
	assert_string_equal(buf, "{\"event\":\"action\",\"priority\":5,\"rung\":\"reap_orphans\",\"pid\":77,"
				 "\"freed_bytes\":536870912,\"message\":\"reaped orphan pid 77 (\\\"python3\\\")\"}\n"
				 "{\"event\":\"daemon\",\"priority\":6,\"message\":\"line\\nbreak\"}\n");
	journal_setup(NULL, false, false);
	fclose(out);
	free(buf);
}

static void test_emit_nowhere(void **state)
{
	(void)state;
	journal_setup(NULL, true, false);
	assert_false(journal_connected());
	rec_init(&rec, REC_FORK, LOG_DEBUG);
	rec_message(&rec, "goes nowhere");
	assert_int_equal(rec_emit(&rec), 0);
}

static void test_journal_stream(void **state)
{
	static const char *const bad[] = { "", ":", "12", "12:", ":34", "12:34x", "-1:2", "a:b", " 12:34", "12 :34" };
	uint64_t dev = 0, ino = 0;
	char env[64];
	struct stat st;
	FILE *f = tmpfile();
	(void)state;

	assert_int_equal(journal_parse_stream("64769:1234567", &dev, &ino), 0);
	assert_int_equal(dev, 64769);
	assert_int_equal(ino, 1234567);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(journal_parse_stream(bad[i], &dev, &ino), -EINVAL);
	assert_int_equal(journal_parse_stream(NULL, &dev, &ino), -EINVAL);

	/* the stream is recognised by device and inode, nothing else */
	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	unsetenv("JOURNAL_STREAM");
	assert_false(journal_is_stream(fileno(f)));
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	assert_true(journal_is_stream(fileno(f)));
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", env, 1);
	assert_false(journal_is_stream(fileno(f)));
	unsetenv("JOURNAL_STREAM");
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journal_stream),
		cmocka_unit_test_teardown(test_kind_names, teardown),
		cmocka_unit_test_teardown(test_kind_catalog, teardown),
		cmocka_unit_test_teardown(test_rec_build, teardown),
		cmocka_unit_test_teardown(test_json_value_types, teardown),
		cmocka_unit_test_teardown(test_json_value_u64, teardown),
		cmocka_unit_test_teardown(test_json_keys, teardown),
		cmocka_unit_test_teardown(test_json_escaping, teardown),
		cmocka_unit_test_teardown(test_json_invalid_utf8, teardown),
		cmocka_unit_test_teardown(test_limits, teardown),
		cmocka_unit_test_teardown(test_emit_text, teardown),
		cmocka_unit_test_teardown(test_emit_json, teardown),
		cmocka_unit_test_teardown(test_emit_nowhere, teardown),
	};

	return cmocka_run_group_tests_name("journal", tests, NULL, NULL);
}
