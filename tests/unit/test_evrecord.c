// SPDX-License-Identifier: GPL-2.0
/* core/evrecord.c: ring buffer records as long as their type needs, read into a whole struct os_event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "evrecord.h"

/* A record as the BPF side writes it: the header and this type's member, then bytes that are not the record's
 * (the ring's next record) which the decoder must not read into the event. */
static size_t make_record(unsigned char *buf, size_t cap, __u32 type, size_t len)
{
	struct os_event e;

	memset(buf, 0xa5, cap);
	memset(&e, 0, sizeof(e));
	e.type = type;
	e.pid = 4242;
	e.ts_ns = 123456789;
	memcpy(e.comm, "python3", 8);
	switch (type) {
	case OS_EV_RSS:
		e.rss.rss_bytes = 1ULL << 30;
		e.rss.shmem_bytes = 7;
		break;
	case OS_EV_EXEC:
		strcpy(e.exec.filename, "/usr/bin/python3");
		e.exec.filename[OS_FILENAME_LEN - 1] = 'z';
		break;
	case OS_EV_FORK:
		e.fork.child_pid = 4343;
		break;
	case OS_EV_MUNMAP:
		e.mmap.len = 1 << 20;
		e.mmap.fd = -1;
		break;
	default:
		break;
	}
	memcpy(buf, &e, len < sizeof(e) ? len : sizeof(e));
	return len;
}

struct len_case {
	const char *name;
	__u32 type;
	size_t want; /* the record's length */
};

/* The lengths the ring's room depends on (docs/performance.md, "burst room"): the header is 48 bytes, and only exec
 * carries the 256-byte filename. */
static const struct len_case lens[] = {
	{ "exec: the header and the filename", OS_EV_EXEC, 48 + 256 },
	{ "fork: the header and the child's pid", OS_EV_FORK, 48 + 4 },
	{ "exit: code and maxrss", OS_EV_EXIT, 48 + 16 },
	{ "oom victim: five counters and two ints", OS_EV_OOM_VICTIM, 48 + 40 },
	{ "rss: four byte counts", OS_EV_RSS, 48 + 32 },
	{ "mmap", OS_EV_MMAP, 48 + 40 },
	{ "munmap: the mmap member", OS_EV_MUNMAP, 48 + 40 },
	{ "reclaim", OS_EV_RECLAIM, 48 + 24 },
	{ "memcg", OS_EV_MEMCG, 48 + 24 },
	{ "unknown type: no length of its own", OS_EV_MAX, 0 },
	{ "type 0: no length of its own", 0, 0 },
};

static void test_lengths(void **state)
{
	(void)state;
	assert_int_equal(OS_EVENT_HEADER_SIZE, 48);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		print_message("%s\n", lens[i].name);
		assert_int_equal(os_event_size(lens[i].type), lens[i].want);
	}
	/* every record but exec's is at most 88 bytes: more than three times as many as 304-byte records in a ring */
	for (__u32 t = OS_EV_FORK; t < OS_EV_MAX; t++)
		assert_true(os_event_size(t) <= 88);
}

struct dec_case {
	const char *name;
	__u32 type;
	long delta; /* record length less the type's length */
	bool ok;
};

static const struct dec_case decs[] = {
	{ "rss at its length", OS_EV_RSS, 0, true },
	{ "rss one byte short", OS_EV_RSS, -1, false },
	{ "rss with a longer record (a newer object with a longer member)", OS_EV_RSS, 16, true },
	{ "exec at its length", OS_EV_EXEC, 0, true },
	{ "exec 8 bytes short (an old layout's filename)", OS_EV_EXEC, -8, false },
	{ "fork at its length (not a multiple of 8)", OS_EV_FORK, 0, true },
	{ "munmap at its length", OS_EV_MUNMAP, 0, true },
};

static void test_decode(void **state)
{
	unsigned char buf[sizeof(struct os_event) + 64];

	(void)state;
	for (size_t i = 0; i < sizeof(decs) / sizeof(decs[0]); i++) {
		struct os_event e;
		size_t len = (size_t)((long)os_event_size(decs[i].type) + decs[i].delta);

		print_message("%s\n", decs[i].name);
		make_record(buf, sizeof(buf), decs[i].type, len);
		memset(&e, 0x11, sizeof(e));
		assert_int_equal(evrecord_decode(buf, len, &e), decs[i].ok);
		if (!decs[i].ok) {
			/* untouched */
			assert_int_equal(e.pid, 0x11111111);
			continue;
		}
		assert_int_equal(e.type, decs[i].type);
		assert_int_equal(e.pid, 4242);
		assert_int_equal(e.ts_ns, 123456789);
		assert_string_equal(e.comm, "python3");
		/* past the record: zero, never the ring's next bytes (0xa5) */
		for (size_t b = len < sizeof(e) ? len : sizeof(e); b < sizeof(e); b++)
			assert_int_equal(((unsigned char *)&e)[b], 0);
		switch (decs[i].type) {
		case OS_EV_RSS:
			assert_int_equal(e.rss.rss_bytes, 1ULL << 30);
			assert_int_equal(e.rss.shmem_bytes, 7);
			break;
		case OS_EV_EXEC:
			assert_string_equal(e.exec.filename, "/usr/bin/python3");
			assert_int_equal(e.exec.filename[OS_FILENAME_LEN - 1], 'z');
			break;
		case OS_EV_FORK:
			assert_int_equal(e.fork.child_pid, 4343);
			break;
		case OS_EV_MUNMAP:
			assert_int_equal(e.mmap.len, 1 << 20);
			assert_int_equal(e.mmap.fd, -1);
			break;
		default:
			break;
		}
	}
}

static void test_short_or_unknown(void **state)
{
	unsigned char buf[sizeof(struct os_event)];
	struct os_event e;

	(void)state;
	make_record(buf, sizeof(buf), OS_EV_MAX + 7, OS_EVENT_HEADER_SIZE);
	/* an unknown type: the header alone, the rest zero */
	assert_true(evrecord_decode(buf, OS_EVENT_HEADER_SIZE, &e));
	assert_int_equal(e.type, OS_EV_MAX + 7);
	assert_int_equal(e.rss.rss_bytes, 0);
	/* shorter than the header: nothing to read */
	assert_false(evrecord_decode(buf, OS_EVENT_HEADER_SIZE - 1, &e));
	assert_false(evrecord_decode(buf, 0, &e));
	assert_false(evrecord_decode(NULL, 100, &e));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_decode),
		cmocka_unit_test(test_short_or_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
