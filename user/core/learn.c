// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "learn.h"

/* Values beyond this are garbage (a corrupted file, a clock jump), not measurements. */
#define LEARN_VALUE_MAX 1e18

void learn_init(struct learn_stats *l)
{
	if (!l)
		return;
	memset(l, 0, sizeof(*l));
	la_costs_init(&l->models);
}

void learn_avg_add(struct learn_avg *a, double v)
{
	double w;

	if (!a || !isfinite(v) || v < 0 || v > LEARN_VALUE_MAX)
		return;
	if (a->n < UINT32_MAX)
		a->n++;
	w = a->n < 4 ? 1.0 / a->n : 0.25;
	a->value += w * (v - a->value);
}

void learn_note_free(struct learn_stats *l, uint64_t released_bytes, uint64_t apply_ms)
{
	if (!l)
		return;
	learn_avg_add(&l->free_released_bytes, (double)released_bytes);
	learn_avg_add(&l->free_apply_ms, (double)apply_ms);
}

void learn_note_floors(struct learn_stats *l, uint64_t prev_floor_bytes, uint64_t floor_bytes, uint64_t gens)
{
	if (!l || gens == 0)
		return;
	learn_avg_add(&l->unreleasable_per_gen_bytes,
		      floor_bytes > prev_floor_bytes ? (double)(floor_bytes - prev_floor_bytes) / (double)gens : 0.0);
}

void learn_note_generation(struct learn_stats *l, uint64_t duration_ms, bool clean_start, uint64_t excess_bytes)
{
	if (!l)
		return;
	learn_avg_add(&l->gen_duration_ms, (double)duration_ms);
	/* a slowly forgetting maximum: prompts vary, and one that has run less than the longest recent one is
	 * expected to end within the difference */
	if (l->gen_duration_max_ms.n < UINT32_MAX)
		l->gen_duration_max_ms.n++;
	l->gen_duration_max_ms.value = MAX((double)duration_ms, 0.9 * l->gen_duration_max_ms.value);
	if (clean_start && excess_bytes)
		learn_avg_add(&l->clean_cost_bytes, (double)excess_bytes);
}

void learn_note_interrupt(struct learn_stats *l, uint64_t ms)
{
	if (l)
		learn_avg_add(&l->interrupt_ms, (double)ms);
}

void learn_note_restart(struct learn_stats *l, uint64_t stop_ms, uint64_t back_ms, uint64_t floor_bytes)
{
	if (!l)
		return;
	learn_avg_add(&l->restart_stop_ms, (double)stop_ms);
	if (back_ms)
		learn_avg_add(&l->restart_back_ms, (double)back_ms);
	if (floor_bytes)
		learn_avg_add(&l->restart_floor_bytes, (double)floor_bytes);
}

void learn_note_kill(struct learn_stats *l, uint64_t ms)
{
	if (l)
		learn_avg_add(&l->kill_stop_ms, (double)ms);
}

#define LEARN_LAG_IGNORE_NS (10ULL * 1000000000ULL)

static double lag_decayed(const struct learn_lag *l, uint64_t now_ns)
{
	if (!l->n)
		return 0.0;
	if (now_ns <= l->at_ns)
		return l->max_ns;
	return l->max_ns * exp2(-(double)(now_ns - l->at_ns) / (double)LEARN_LAG_HALF_LIFE_NS);
}

void learn_lag_add(struct learn_lag *l, uint64_t lag_ns, uint64_t now_ns)
{
	if (!l || lag_ns > LEARN_LAG_IGNORE_NS)
		return;
	l->max_ns = MAX((double)lag_ns, lag_decayed(l, now_ns));
	l->at_ns = MAX(now_ns, l->at_ns);
	if (l->n < UINT64_MAX)
		l->n++;
}

uint64_t learn_lag_get(const struct learn_lag *l, uint64_t now_ns)
{
	double v;

	if (!l)
		return 0;
	v = lag_decayed(l, now_ns);
	return v > 0.0 ? (uint64_t)v : 0;
}

static uint64_t ms_ns(double ms)
{
	if (!(ms > 0))
		return 0;
	if (ms >= 1.8e13) /* ~ UINT64_MAX ns */
		return POLICY_TTE_UNKNOWN - 1;
	return (uint64_t)(ms * 1e6);
}

uint64_t learn_kill_tte_ns(const struct learn_stats *l)
{
	if (!l || !l->kill_stop_ms.n)
		return 0;
	return MAX(ms_ns(l->kill_stop_ms.value), 1000000ULL);
}

void learn_time_to_effect(const struct learn_stats *l, const struct learn_now *now,
			  uint64_t ret_tte_ns[POLICY_RUNG_COUNT])
{
	double apply;

	if (!ret_tte_ns)
		return;
	memset(ret_tte_ns, 0, sizeof(uint64_t) * POLICY_RUNG_COUNT);
	if (!l || !now)
		return;
	apply = l->free_apply_ms.n ? l->free_apply_ms.value : 0.0;

	if (!now->busy) {
		ret_tte_ns[POLICY_RUNG_FREE_MODELS] = ms_ns(apply);
	} else {
		double elapsed = (double)now->running_elapsed_ms, remaining = -1;

		if (now->progress_known && isfinite(now->progress) && now->progress >= 0.02 && now->progress < 1.0)
			remaining = elapsed * (1.0 - now->progress) / now->progress;
		else if (l->gen_duration_ms.n && l->gen_duration_ms.value * 1.5 > elapsed)
			remaining = l->gen_duration_ms.value * 1.5 - elapsed;
		/* 1 ms at least: 0 would mean "use the policy's default" */
		ret_tte_ns[POLICY_RUNG_FREE_MODELS] = remaining < 0 ? POLICY_TTE_UNKNOWN : MAX(ms_ns(remaining + apply), 1000000ULL);
	}
	ret_tte_ns[POLICY_RUNG_FREE_ALL] = ret_tte_ns[POLICY_RUNG_FREE_MODELS];
	if (l->interrupt_ms.n)
		ret_tte_ns[POLICY_RUNG_INTERRUPT_REQUEUE] = MAX(ms_ns(l->interrupt_ms.value + apply), 1000000ULL);
	if (l->restart_stop_ms.n)
		ret_tte_ns[POLICY_RUNG_RESTART] = MAX(ms_ns(l->restart_stop_ms.value), 1000000ULL);
	else if (now->stop_grace_ms)
		ret_tte_ns[POLICY_RUNG_RESTART] = ms_ns((double)now->stop_grace_ms + 1000.0);
	if (now->orphan_grace_ms)
		ret_tte_ns[POLICY_RUNG_REAP_ORPHANS] = ms_ns((double)now->orphan_grace_ms + 1000.0);
}

uint64_t learn_running_ends_in_ns(const struct learn_stats *l, const struct learn_now *now)
{
	double elapsed;

	if (!l || !now || !now->busy)
		return 0;
	elapsed = (double)now->running_elapsed_ms;
	if (now->progress_known && isfinite(now->progress) && now->progress >= 0.02 && now->progress < 1.0)
		return ms_ns(elapsed * (1.0 - now->progress) / now->progress);
	if (l->gen_duration_max_ms.n && l->gen_duration_max_ms.value > elapsed)
		return ms_ns(l->gen_duration_max_ms.value - elapsed);
	return 0;
}

int64_t learn_generations_per_restart(const struct learn_stats *l, uint64_t limit_bytes, double margin)
{
	double thr, room, per;

	if (!l || !limit_bytes || !(margin > 0 && margin <= 1) || !l->restart_floor_bytes.n || !l->clean_cost_bytes.n ||
	    !l->unreleasable_per_gen_bytes.n)
		return -1;
	per = l->unreleasable_per_gen_bytes.value;
	if (!(per > 0))
		return -1;
	thr = (double)limit_bytes * margin;
	/* generation k (1-based) starts on floor + (k - 1) * per and peaks at that + clean cost */
	room = thr - l->restart_floor_bytes.value - l->clean_cost_bytes.value;
	if (room < 0)
		return 0;
	return (int64_t)MIN(floor(room / per) + 1.0, 1e9);
}

/* ---- text form ---- */

static const struct {
	const char *key;
	size_t off;
} avg_keys[] = {
	{ "free_released_bytes", offsetof(struct learn_stats, free_released_bytes) },
	{ "free_apply_ms", offsetof(struct learn_stats, free_apply_ms) },
	{ "unreleasable_per_gen_bytes", offsetof(struct learn_stats, unreleasable_per_gen_bytes) },
	{ "clean_cost_bytes", offsetof(struct learn_stats, clean_cost_bytes) },
	{ "gen_duration_ms", offsetof(struct learn_stats, gen_duration_ms) },
	{ "gen_duration_max_ms", offsetof(struct learn_stats, gen_duration_max_ms) },
	{ "interrupt_ms", offsetof(struct learn_stats, interrupt_ms) },
	{ "restart_stop_ms", offsetof(struct learn_stats, restart_stop_ms) },
	{ "kill_stop_ms", offsetof(struct learn_stats, kill_stop_ms) },
	{ "restart_back_ms", offsetof(struct learn_stats, restart_back_ms) },
	{ "restart_floor_bytes", offsetof(struct learn_stats, restart_floor_bytes) },
};

/* A name is written on one line after numbers: a newline in it would forge lines. */
static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

struct tbuf {
	char *buf;
	size_t size, len;
	bool overflow;
};

_printf_(2, 3) static void tb_printf(struct tbuf *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= t->size - t->len) {
		t->overflow = true;
		return;
	}
	t->len += (size_t)n;
}

int learn_format(const struct learn_stats *l, char *buf, size_t size)
{
	struct tbuf t = { buf, size, 0, false };

	if (!l || !buf || size == 0)
		return -EINVAL;
	buf[0] = '\0';
	tb_printf(&t, "oomsentry-learn %d\n", LEARN_FORMAT_VERSION);
	for (size_t i = 0; i < ARRAY_SIZE(avg_keys); i++) {
		const struct learn_avg *a = (const struct learn_avg *)((const char *)l + avg_keys[i].off);

		if (a->n)
			tb_printf(&t, "%s %.17g %u\n", avg_keys[i].key, a->value, a->n);
	}
	for (size_t i = 0; i < LA_COSTS_MAX; i++) {
		const struct la_cost *c = la_costs_get_entry(&l->models, i);

		if (c && c->name[0] && !has_control(c->name))
			tb_printf(&t, "model %llu %u %llu %s\n", (unsigned long long)c->bytes, c->samples,
				  (unsigned long long)c->last_used, c->name);
	}
	if (t.overflow) {
		buf[size - 1] = '\0';
		return -ENOBUFS;
	}
	return (int)t.len;
}

static bool parse_avg(const char *s, struct learn_avg *ret, const char **ret_rest)
{
	char *end;
	double v;
	unsigned long long n;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || !isfinite(v) || v < 0 || v > LEARN_VALUE_MAX || *end != ' ')
		return false;
	s = end + 1;
	if (*s < '0' || *s > '9')
		return false;
	n = strtoull(s, &end, 10);
	if (end == s || errno || n == 0 || n > UINT32_MAX)
		return false;
	ret->value = v;
	ret->n = (uint32_t)n;
	if (ret_rest)
		*ret_rest = end;
	return true;
}

int learn_parse(const char *text, struct learn_stats *ret)
{
	const char *line, *nl;
	char hdr[32];
	int ver;

	if (!text || !ret)
		return -EINVAL;
	learn_init(ret);
	nl = strchr(text, '\n');
	if (!nl || (size_t)(nl - text) >= sizeof(hdr))
		return -EINVAL;
	memcpy(hdr, text, (size_t)(nl - text));
	hdr[nl - text] = '\0';
	if (sscanf(hdr, "oomsentry-learn %d", &ver) != 1 || ver != LEARN_FORMAT_VERSION)
		return -EINVAL;

	for (line = nl + 1; *line; line = nl ? nl + 1 : line + strlen(line)) {
		char one[LA_NAME_MAX + 128];
		size_t len;
		const char *rest;
		struct learn_avg a;

		nl = strchr(line, '\n');
		len = nl ? (size_t)(nl - line) : strlen(line);
		if (len >= sizeof(one))
			continue;
		memcpy(one, line, len);
		one[len] = '\0';
		if (strncmp(one, "model ", 6) == 0) {
			unsigned long long bytes, used;
			unsigned samples;
			int off = 0;

			if (sscanf(one + 6, "%llu %u %llu %n", &bytes, &samples, &used, &off) == 3 && off > 0 &&
			    one[6 + off] && samples > 0 && bytes <= (unsigned long long)LEARN_VALUE_MAX)
				la_costs_set(&ret->models, one + 6 + off, bytes, samples, used);
			continue;
		}
		for (size_t i = 0; i < ARRAY_SIZE(avg_keys); i++) {
			size_t kl = strlen(avg_keys[i].key);

			if (strncmp(one, avg_keys[i].key, kl) == 0 && one[kl] == ' ' && parse_avg(one + kl + 1, &a, &rest) &&
			    *rest == '\0')
				*(struct learn_avg *)((char *)ret + avg_keys[i].off) = a;
		}
	}
	return 0;
}
