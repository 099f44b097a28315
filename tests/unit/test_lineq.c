// SPDX-License-Identifier: GPL-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "lineq.h"

/* Every line in the tables is 9 bytes, as is a notice below 10 drops: the queue's room counts in lines. */
#define LINE (sizeof(struct lineq_line) + 10)

static size_t notice(uint64_t dropped, char *buf, size_t size, void *ctx)
{
	(void)ctx;
	return (size_t)snprintf(buf, size, "dropped %llu", (unsigned long long)dropped);
}

enum { PUSH, POP, GAP };

struct op {
	int what;
	const char *text; /* PUSH: the line; POP: the line expected (NULL: none) */
	int want;         /* PUSH: enum lineq_result; GAP: whether the notice went in */
};

#define Q LINEQ_QUEUED
#define QG LINEQ_QUEUED_AFTER_GAP
#define D1 LINEQ_DROPPED_FIRST
#define D LINEQ_DROPPED

struct scenario {
	const char *name;
	size_t lines; /* the room, in lines */
	bool with_notice;
	struct op ops[20];
	size_t n_ops;
	uint64_t want_total;
};

static void run(const struct scenario *s)
{
	struct lineq q;

	lineq_init(&q, s->lines * LINE, s->with_notice ? notice : NULL, NULL);
	for (size_t i = 0; i < s->n_ops; i++) {
		const struct op *o = &s->ops[i];
		struct lineq_line *l;

		switch (o->what) {
		case PUSH: {
			int got = lineq_push(&q, o->text, strlen(o->text));
			if (got != o->want)
				fail_msg("%s op %zu: push %s: %d, want %d", s->name, i, o->text, got, o->want);
			break;
		}
		case GAP:
			if (lineq_close_gap(&q) != (bool)o->want)
				fail_msg("%s op %zu: close_gap: %d, want %d", s->name, i, !o->want, o->want);
			break;
		case POP:
			l = lineq_pop(&q);
			if (!o->text) {
				if (l)
					fail_msg("%s op %zu: popped %.*s, want nothing", s->name, i, (int)l->len, l->text);
				break;
			}
			if (!l)
				fail_msg("%s op %zu: nothing popped, want %s", s->name, i, o->text);
			if (l->len != strlen(o->text) + 1 || memcmp(l->text, o->text, l->len - 1) || l->text[l->len - 1] != '\n')
				fail_msg("%s op %zu: popped %.*s, want %s", s->name, i, (int)l->len, l->text, o->text);
			free(l);
			break;
		}
		if (q.bytes > q.cap)
			fail_msg("%s op %zu: %zu bytes queued beyond the cap %zu", s->name, i, q.bytes, q.cap);
	}
	assert_int_equal(q.dropped_total, s->want_total);
	lineq_clear(&q);
	assert_null(q.head);
	assert_int_equal(q.bytes, 0);
}

#define SCENARIO(nm, room, notes, total, ...)                                                                 \
	{ .name = nm, .lines = room, .with_notice = notes, .want_total = total, .ops = { __VA_ARGS__ },         \
	  .n_ops = sizeof((struct op[]){ __VA_ARGS__ }) / sizeof(struct op) }

static const struct scenario scenarios[] = {
	/* the gap closes only when the notice and the next line both fit: the notice sits exactly where lines went
	 * missing, and says how many */
	SCENARIO("gap", 3, true, 4,
		 { PUSH, "line-0001", Q }, { PUSH, "line-0002", Q }, { PUSH, "line-0003", Q },
		 { PUSH, "line-0004", D1 }, { PUSH, "line-0005", D }, { POP, "line-0001" },
		 { PUSH, "line-0006", D }, { POP, "line-0002" }, { PUSH, "line-0007", QG },
		 { PUSH, "line-0008", D1 }, { POP, "line-0003" }, { POP, "dropped 3" }, { POP, "line-0007" },
		 { POP, NULL }),
	/* two episodes, each with its own first drop and its own count */
	SCENARIO("episodes", 3, true, 3,
		 { PUSH, "line-0001", Q }, { PUSH, "line-0002", Q }, { PUSH, "line-0003", Q },
		 { PUSH, "line-0004", D1 }, { PUSH, "line-0005", D }, { POP, "line-0001" }, { POP, "line-0002" },
		 { PUSH, "line-0006", QG }, { PUSH, "line-0007", D1 }, { POP, "line-0003" }, { POP, "dropped 2" },
		 { PUSH, "line-0008", QG }, { POP, "line-0006" }, { POP, "dropped 1" }, { POP, "line-0008" },
		 { POP, NULL }),
	/* at exit no line may follow: the notice goes in alone once there is room for it */
	SCENARIO("close at exit", 2, true, 1,
		 { PUSH, "line-0001", Q }, { PUSH, "line-0002", Q }, { PUSH, "line-0003", D1 }, { GAP, NULL, false },
		 { POP, "line-0001" }, { GAP, NULL, true }, { GAP, NULL, false }, { POP, "line-0002" },
		 { POP, "dropped 1" }, { POP, NULL }),
	/* a line larger than the whole queue is dropped; those after it are not */
	SCENARIO("too long", 2, true, 1,
		 { PUSH, "a line far longer than the room that the queue has for two lines of nine bytes", D1 },
		 { PUSH, "line-0001", QG }, { POP, "dropped 1" }, { POP, "line-0001" }, { POP, NULL }),
	/* without a notice the gap is only counted, and forgotten at exit */
	SCENARIO("no notice", 1, false, 2,
		 { PUSH, "line-0001", Q }, { PUSH, "line-0002", D1 }, { PUSH, "line-0003", D }, { GAP, NULL, false },
		 { POP, "line-0001" }, { PUSH, "line-0004", Q }, { POP, "line-0004" }, { POP, NULL }),
};

static void test_scenarios(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		run(&scenarios[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scenarios),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
